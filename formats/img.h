/* img.h - what the layers above call on an image: one wrapper per driver
 * op, holding the fallback for an op a driver leaves NULL.
 *
 * Nothing outside formats/ calls through img->drv; a read-only driver, or
 * one without backing files, fills only what it has (format.h lists the
 * required ops) and these wrappers answer for the rest: -ENOTSUP naming
 * the file and the format for a write op, "no backing file" for
 * get_backing, no known offset for map_status, 0 for flush and batching.
 */
#ifndef IMGRAPH_IMG_H
#define IMGRAPH_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* The driver's name ("qcow2", "raw"). */
const char *img_format_name(const struct img *img);
/* True for the raw format: the file is the disk, with no header of ours. */
bool img_is_raw(const struct img *img);

/* For a driver without the write ops a commit needs (img_can_write) and no
 * reason of its own, write_refusal says that the format is read-only. */
int img_get_info(struct img *img, struct img_info *out, struct img_err *e);
/* No get_backing op: *out is { NULL, NULL } (the format has no backing). */
int img_get_backing(struct img *img, struct img_backing *out,
		    struct img_err *e);
/* True when the driver can rewrite its backing link (backing_header). */
bool img_can_set_backing(const struct img *img);
int img_backing_header(struct img *img, const char *name, const char *fmt,
		       uint8_t **buf, size_t *len, struct img_err *e);
int img_set_backing(struct img *img, const char *name, const char *fmt,
		    struct img_err *e);

int img_block_status(struct img *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, struct img_err *e);
/* block_status plus where the data lives (struct img_map, format.h);
 * m->file is never NULL afterwards.  No map_status op: the block status
 * with no offset known, in img->path. */
int img_map_status(struct img *img, uint64_t off, uint64_t len,
		   uint64_t *pnum, struct img_map *m, struct img_err *e);
int img_pread(struct img *img, uint64_t off, void *buf, size_t len,
	      struct img_err *e);

/* True when the driver has the write ops a commit needs into a base
 * (pwrite, write_zeroes, grow). */
bool img_can_write(const struct img *img);
int img_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
	       struct img_err *e);
/* True when the driver writes from another file (pwrite_file). */
bool img_can_pwrite_file(const struct img *img);
int img_pwrite_file(struct img *img, uint64_t off, uint64_t len, int src,
		    uint64_t soff, struct io_copy_ctx *ctx, struct img_err *e);
/* The file descriptor that holds the bytes m describes (m filled by
 * img_map_status of img), to read or clone them with io_copy_range; -1
 * when their place is not known (compressed data) or they live in
 * another file (an external data file, an extent). */
int img_data_fd(const struct img *img, const struct img_map *m);
int img_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     struct img_err *e);
int img_grow(struct img *img, uint64_t new_size, struct img_err *e);
/* No make_empty op: -ENOTSUP. */
int img_make_empty(struct img *img, struct img_err *e);
/* No flush op: 0 (nothing is cached above the file). */
int img_flush(struct img *img, struct img_err *e);

/* Optional write batching on an image opened read-write.
 *
 * Between img_batch_begin() and img_batch_end() the driver may keep the
 * metadata of pwrite/write_zeroes calls (new L2 and L1 entries) pending and
 * link it all behind ONE fdatasync, instead of one per L2 table per call.
 * The crash rule is unchanged: data, refcounts and new tables are durable
 * before any entry that points at them, so a crash leaks clusters and never
 * corrupts.  What a batch changes:
 *  - guest reads of this handle (pread, block_status) may not see the
 *    batch's writes before img_batch_end(); use only pwrite and
 *    write_zeroes on it meanwhile (grow, flush, make_empty and close
 *    commit the pending writes first);
 *  - a failing write may lose the batch's earlier writes too (their
 *    clusters leak); the image stays consistent;
 *  - memory: at most a few MiB of pending L2 tables (qcow2: 6 MiB), then
 *    the batch commits by itself and goes on.
 * Drivers without the batch ops ignore both calls (0). */
int img_batch_begin(struct img *img, struct img_err *e);
/* Links everything pending (does not flush: call img_flush for
 * durability). */
int img_batch_end(struct img *img, struct img_err *e);

/* Can img read through backing (its backing file, opened)?  0 when the
 * format has no rule about it; -EINVAL naming both files when it refuses
 * the link (vmdk parent CID).  See check_backing in format.h. */
int img_check_backing(struct img *img, struct img *backing,
		      struct img_err *e);
/* True when images of format fmt (a driver's name) have such a rule, so
 * that a scan opens only those pairs to ask. */
bool img_format_checks_backing(const char *fmt);

/* True when the driver has a consistency check. */
bool img_can_check(const struct img *img);
/* *out is filled on success (free with img_check_free) and holds nothing
 * to free on failure. */
int img_check(struct img *img, struct img_check *out, struct img_err *e);

/* True when images of this format can be created. */
bool img_format_can_create(const struct img_format *fmt);
/* Create an image of format fmt at path; -ENOTSUP when the format cannot
 * be created. */
int img_create(const struct img_format *fmt, const char *path,
	       const struct img_create_opts *o, struct img_err *e);

#endif
