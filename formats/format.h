/* format.h - the image format driver contract.
 *
 * One const struct img_format per format (like QEMU's BlockDriver or an
 * nbdkit plugin).  Optional ops are NULL; callers then fall back or report
 * ENOTSUP.  Drivers do all I/O through core/io.h and report failures through
 * struct img_err (message names the file and the header field), never print.
 *
 * Ownership: img_open() returns an owned struct img freed by img_close().
 * Strings inside struct img_info / img_backing are owned by the struct img
 * and valid until img_close() or the next set_backing on it.
 */
#ifndef IMGRAPH_FORMAT_H
#define IMGRAPH_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

#define IMG_BACKING_NAME_MAX 1023   /* qcow2 spec limit */
#define IMG_FORMAT_NAME_MAX  15     /* QEMU rejects backing-fmt >= 16 bytes */
#define IMG_PROBE_BYTES      2048   /* QEMU's BLOCK_PROBE_BUF_SIZE */

/* Block status of ONE layer (not the chain). */
enum img_bs {
	IMG_BS_UNALLOC = 0,   /* not allocated here: defer to the backing file */
	IMG_BS_DATA    = 1,   /* data stored in this layer */
	IMG_BS_ZERO    = 2,   /* reads as zeros here, hides the backing file */
};

/* Open flags */
#define IMG_O_RDWR      0x1
/* Open even with features we cannot write (dirty, corrupt, encryption,
 * snapshots...), read-only: for info/check/map and the pool scan. */
#define IMG_O_INSPECT   0x2

/* An internal snapshot, as `qemu-img info` lists it. */
struct img_snapshot_info {
	const char *id;
	const char *name;
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	bool has_icount;              /* false: not recorded (-1 on disk) */
	uint64_t icount;
};

/* A persistent dirty bitmap (qcow2 bitmaps extension). */
struct img_bitmap_info {
	const char *name;
	uint64_t granularity;         /* bytes */
	bool in_use, autoload;        /* qemu-img's flags "in-use", "auto" */
};

/* One LUKS key slot; offsets in bytes. */
struct img_luks_slot {
	bool active;
	uint32_t iters, stripes;      /* meaningful when active */
	uint64_t key_offset;
};

#define IMG_LUKS_SLOTS 8

/* An encryption header, as `qemu-img info` shows it ("encrypt" of a qcow2
 * image, the format-specific data of a luks image). */
struct img_encrypt_info {
	const char *format;           /* "luks" or "aes" (qcow/qcow2 legacy) */
	/* LUKS only (NULL / 0 otherwise): */
	const char *cipher_alg;       /* "aes-256" ... (QEMU's names) */
	const char *cipher_mode;      /* "xts", "cbc" ... */
	const char *ivgen_alg;        /* "plain64", "essiv" ... */
	const char *ivgen_hash_alg;   /* NULL when the mode names none */
	const char *hash_alg;
	const char *uuid;
	uint64_t payload_offset;      /* bytes */
	uint32_t master_key_iters;
	struct img_luks_slot slots[IMG_LUKS_SLOTS];
};

/* One extent file of a format whose data lives in several files (vmdk). */
struct img_extent_info {
	const char *filename;         /* as opened: descriptor's dir + name */
	const char *type;             /* "SPARSE", "FLAT"; "" for the sparse
				       * extent of a one-file image */
	uint64_t virtual_size;
	uint32_t cluster_size;        /* 0: flat (no grains) */
	bool compressed;
};

struct img_info {
	const char *format;           /* the driver's name */
	uint64_t virtual_size;
	uint64_t actual_size;         /* st_blocks * 512 */
	uint64_t file_size;           /* st_size */
	uint32_t cluster_size;        /* 0 for raw */
	int version;                  /* qcow2 2 or 3; 0 for raw */
	int refcount_bits;
	int compression_type;         /* 0 zlib, 1 zstd */
	bool dirty, corrupt, lazy_refcounts, extended_l2;
	bool data_file;               /* external data file */
	bool encrypted;
	bool bitmaps;                 /* autoclear bit 0 */
	uint32_t nb_snapshots;
	uint64_t incompatible_features, compatible_features, autoclear_features;
	/* Why we refuse to write this image, or NULL when writable by us. */
	const char *write_refusal;

	/* What `qemu-img info` prints beyond the basics.  Arrays and strings
	 * are owned by the struct img, like the rest.  A driver leaves what
	 * its format does not have NULL / 0. */
	bool no_dirty_flag;           /* qemu-img prints no dirty-flag */
	const char *data_file_name;   /* external data file, as recorded */
	bool data_file_raw;
	const struct img_snapshot_info *snapshots;  /* nb_snapshots entries */
	const struct img_bitmap_info *bitmap_list;
	uint32_t nb_bitmaps;
	const struct img_encrypt_info *encrypt;     /* NULL: not encrypted or
						     * nothing to show */
	const char *create_type;      /* vmdk subformat ("monolithicSparse") */
	bool has_cid;                 /* vmdk content ids */
	uint32_t cid, parent_cid;
	const struct img_extent_info *extents;
	uint32_t nb_extents;
};

struct img_backing {
	const char *name;             /* as stored, NUL-terminated; NULL: none */
	const char *format;           /* backing-format extension; NULL: none */
};

/* Result of a consistency check (qemu-img check's classes). */
struct img_check {
	uint64_t corruptions;
	uint64_t leaks;
	uint64_t check_errors;        /* could not complete some part */
	uint64_t allocated_clusters, total_clusters, fragmented_clusters;
	uint64_t compressed_clusters;
	uint64_t image_end_offset;
	/* Up to this many messages like qemu-img's ("Leaked cluster 6
	 * refcount=1 reference=0", "ERROR cluster 6 refcount=0 reference=1"). */
#define IMG_CHECK_MSGS 64
	char *msgs[IMG_CHECK_MSGS];   /* owned; freed by img_check_free() */
	int nmsgs;
	uint64_t msgs_dropped;
};
void img_check_free(struct img_check *c);

struct img_create_opts {
	uint64_t size;                /* virtual size in bytes */
	const char *backing;          /* backing name to record, or NULL */
	const char *backing_fmt;      /* required when backing is set */
	/* qcow2 options (0 / -1 = default) */
	uint32_t cluster_size;        /* default 65536 */
	int compat;                   /* 2 => 0.10, 3 => 1.1 (default) */
	int extended_l2;              /* 0/1 */
	int refcount_bits;            /* default 16 */
};

struct img;

struct img_format {
	const char *name;

	/* Score for the first bytes of a file (len may be short; at most
	 * IMG_PROBE_BYTES are given): 0 = no, 1 = raw's "anything", 100 =
	 * magic and version match. */
	int (*probe)(const uint8_t *buf, size_t len);

	int (*open)(struct img *img, int flags, struct img_err *e);
	void (*close)(struct img *img);

	int (*get_info)(struct img *img, struct img_info *out, struct img_err *e);
	/* Optional: formats without backing files leave it NULL (no backing). */
	int (*get_backing)(struct img *img, struct img_backing *out,
			   struct img_err *e);

	/* Optional.  Build the bytes that rewrite the backing link (name and
	 * format; name NULL removes it): *buf (malloc'd, caller frees) replaces
	 * file range [0, *len).  Nothing is written.  -ENOSPC when the name does
	 * not fit the header, -EINVAL when it is over 1023 bytes. */
	int (*backing_header)(struct img *img, const char *name, const char *fmt,
			      uint8_t **buf, size_t *len, struct img_err *e);
	/* Optional: backing_header + one pwrite + fdatasync + reload. */
	int (*set_backing)(struct img *img, const char *name, const char *fmt,
			   struct img_err *e);

	/* Status of [off, off+len) in THIS layer: returns enum img_bs >= 0 and
	 * sets *pnum (> 0, <= len) to the length with that same status;
	 * -errno on error.  off < virtual size. */
	int (*block_status)(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e);

	/* Read THIS layer's bytes; unallocated and zero ranges read as zeros. */
	int (*pread)(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e);

	/* Optional write side (NULL => read-only format). */
	int (*pwrite)(struct img *img, uint64_t off, const void *buf, size_t len,
		      struct img_err *e);
	/* Make [off, off+len) read as zeros in this layer and hide the backing
	 * file (qcow2 v3: zero clusters; v2 with a backing file: literal zeros;
	 * raw: punch holes where possible). */
	int (*write_zeroes)(struct img *img, uint64_t off, uint64_t len,
			    struct img_err *e);
	/* Grow the virtual size (never shrinks). */
	int (*grow)(struct img *img, uint64_t new_size, struct img_err *e);
	/* Drop every allocation so the layer defers to its backing file. */
	int (*make_empty)(struct img *img, struct img_err *e);
	/* Make everything written so far durable (data, then metadata). */
	int (*flush)(struct img *img, struct img_err *e);
	/* Optional write batching (see img.h); NULL: not batched. */
	int (*batch_begin)(struct img *img, struct img_err *e);
	int (*batch_end)(struct img *img, struct img_err *e);

	int (*create)(const char *path, const struct img_create_opts *o,
		      struct img_err *e);
	int (*check)(struct img *img, struct img_check *out, struct img_err *e);

	/* Optional: can img read through backing (its backing file, opened)?
	 * -EINVAL with the reason when the format itself refuses the link
	 * (vmdk: the parent's CID differs from parentCID, so QEMU fails every
	 * read that reaches the parent).  NULL: any backing file is fine. */
	int (*check_backing)(struct img *img, struct img *backing,
			     struct img_err *e);
};

struct img {
	const struct img_format *drv;
	char *path;                   /* as given to img_open, owned */
	int fd;
	int flags;
	uint64_t virtual_size;        /* kept current by the driver */
	void *priv;                   /* driver state */
};

extern const struct img_format img_format_raw;
extern const struct img_format img_format_qcow2;
extern const struct img_format img_format_qcow;    /* qcow version 1 */
extern const struct img_format img_format_qed;
extern const struct img_format img_format_vmdk;
extern const struct img_format img_format_luks;

/* Registry (registry.c). */
const struct img_format *img_format_find(const char *name);
/* Highest-scoring format for these bytes (raw when nothing else matches). */
const struct img_format *img_format_probe(const uint8_t *buf, size_t len);

/* Open path with format fmt (NULL = probe; *probed set when non-NULL).
 * Refuses non-regular files without opening them for reading blocking. */
int img_open(const char *path, const char *fmt, int flags, struct img **out,
	     bool *probed, struct img_err *e);
/* Open on an fd already opened by the caller (the fd is dup'd). */
int img_open_fd(int fd, const char *path, const char *fmt, int flags,
		struct img **out, bool *probed, struct img_err *e);
void img_close(struct img *img);

#endif
