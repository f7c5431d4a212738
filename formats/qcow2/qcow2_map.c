/* qcow2_map.c - the map_status op: block status with host offsets, as
 * qemu-img map reports them.
 *
 * Host offsets come from the same walk as block_status (qcow2_read.c), so
 * extents also end where the host offset stops being contiguous.  Plain
 * data lying in a hole of the file (or past its end) reads as zeros; QEMU
 * asks the file system about that only when it suspects "metadata
 * preallocation", and so do we, with QEMU's heuristic, so that `imgraph
 * map` matches `qemu-img map` exactly.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* The refcount table as far as the file holds it (the header check lets
 * the table end in a partial last cluster; entries past the end of the
 * file are absent, so they stay 0). */
static int read_reft(struct img *img, uint64_t file_size, uint8_t *rt,
		     size_t rt_bytes, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t off = s->h.refcount_table_offset;
	size_t n = rt_bytes;
	int r;

	if (off >= file_size)
		return err_set(e, EINVAL, "%s: the refcount table at %llu is "
			       "past the end of the file", img->path, ull(off));
	if (n > file_size - off)
		n = (size_t)(file_size - off);
	r = io_pread_full(img->fd, rt, n, off);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the refcount "
				     "table", img->path);
	return 0;
}

/* Count clusters with a non-zero refcount, stopping at limit. */
static int count_referenced(struct img *img, uint64_t file_size,
			    const uint8_t *rt, size_t rt_bytes, uint64_t limit,
			    uint64_t *count, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size;
	uint64_t per_blk = cs * 8 / (uint64_t)s->refcount_bits;
	uint64_t end = (file_size + cs - 1) / cs;
	uint8_t *blk = malloc(cs);
	int r = 0;

	*count = 0;
	if (!blk)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint64_t ti = 0; ti * per_blk < end && *count < limit &&
	     ti < rt_bytes / 8; ti++) {
		uint64_t bo = qcow2_be64(rt + ti * 8) & QCOW2_REFT_OFFSET_MASK;
		if (!bo)
			continue;
		if (bo % cs || bo >= file_size) {
			r = err_set(e, EINVAL, "%s: refcount table entry %llu: "
				    "block offset %llu is unaligned or past "
				    "the end of the file", img->path, ull(ti),
				    ull(bo));
			break;
		}
		r = io_pread_full(img->fd, blk, cs, bo);
		if (r < 0) {
			r = err_set_errno(e, -r, "%s: cannot read refcount "
					  "block at %llu", img->path, ull(bo));
			break;
		}
		for (uint64_t i = 0; i < per_blk && ti * per_blk + i < end &&
		     *count < limit; i++)
			*count += qcow2_rc_entry_get(blk, s->refcount_bits, i)
				  != 0;
	}
	free(blk);
	return r;
}

/* QEMU's qcow2_detect_metadata_preallocation (7.2): "preallocated" when at
 * least max(real * 10 / 9, real + 2) clusters have a non-zero refcount,
 * real being the clusters the file occupies on disk. */
static int detect_prealloc(struct img *img, bool *prealloc, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size;
	size_t rt_bytes = (size_t)s->h.refcount_table_clusters * cs;
	uint64_t count;
	struct stat sb;
	uint8_t *rt;
	int r;

	*prealloc = false;
	r = io_fstat(img->fd, &sb);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	uint64_t real_clusters = (uint64_t)sb.st_blocks * 512 / cs;
	uint64_t threshold = real_clusters * 10 / 9;
	if (threshold < real_clusters + 2)
		threshold = real_clusters + 2;

	rt = calloc(1, rt_bytes);
	if (!rt)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = read_reft(img, (uint64_t)sb.st_size, rt, rt_bytes, e);
	if (r >= 0)
		r = count_referenced(img, (uint64_t)sb.st_size, rt, rt_bytes,
				     threshold, &count, e);
	free(rt);
	if (r < 0)
		return r;
	*prealloc = count >= threshold;
	return 0;
}

/* Whether map_status asks the file system about holes (decided once per
 * open image, as QEMU does).  Like QEMU, a damaged refcount structure only
 * turns the heuristic off; the map still works. */
static bool suspect_prealloc(struct img *img)
{
	struct qcow2_state *s = img->priv;

	if (s->map_prealloc == QCOW2_PREALLOC_UNKNOWN) {
		bool p;
		if (detect_prealloc(img, &p, NULL) < 0)
			p = false;
		s->map_prealloc = p ? QCOW2_PREALLOC_YES : QCOW2_PREALLOC_NO;
	}
	return s->map_prealloc == QCOW2_PREALLOC_YES;
}

/* Data at host offset h (*pnum bytes): ask the file system, as QEMU's
 * block layer asks file-posix, whether it lies in a hole or past EOF (then
 * it reads as zeros); *pnum ends where that changes or at the end of the
 * file. */
static void data_in_hole(struct img *img, uint64_t h, uint64_t *pnum,
			 bool *zero)
{
	int fd = qcow2_data_fd(img);
	struct stat sb;

	if (io_fstat(fd, &sb) < 0)
		return;
	uint64_t fsz = (uint64_t)sb.st_size;
	if (h >= fsz) {
		*zero = true;
		return;
	}
	off_t d = lseek(fd, (off_t)h, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO)     /* only a hole up to EOF */
			*zero = true;
		else if (*pnum > fsz - h)
			*pnum = fsz - h;
		return;
	}
	if ((uint64_t)d > h) {
		*zero = true;
		if (*pnum > (uint64_t)d - h)
			*pnum = (uint64_t)d - h;
		return;
	}
	off_t ho = lseek(fd, (off_t)h, SEEK_HOLE);
	uint64_t end = ho > (off_t)h ? (uint64_t)ho : fsz;
	if (*pnum > end - h)
		*pnum = end - h;
}

int qcow2_map_status(struct img *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, struct img_map *m, struct img_err *e)
{
	uint64_t host = 0;
	bool has_host = false;
	int bs = qcow2_status_walk(img, off, len, pnum, true, &host, &has_host,
				   e);

	if (bs < 0)
		return bs;
	m->offset_valid = has_host;
	m->offset = host;
	/* Only a compressed cluster is data without a host cluster. */
	m->compressed = bs == IMG_BS_DATA && !has_host;
	/* Data of an image with a data file lives there (NULL: the image). */
	m->file = ((struct qcow2_state *)img->priv)->data_path;
	if (bs == IMG_BS_DATA && has_host && suspect_prealloc(img))
		data_in_hole(img, host, pnum, &m->zero);
	return bs;
}
