/* format.h - the image format driver contract.
 *
 * One const struct img_format per format (like QEMU's BlockDriver or an
 * nbdkit plugin), listed in registry.c.  Callers above formats/ never call
 * an op: they call the wrappers of formats/img.h, which hold the answer for
 * every op a driver leaves NULL (the table below says which).
 *
 * Drivers do all I/O through formats/io/io.h (so the fault and power-cut
 * modes see it) and report failures through struct img_err: the message
 * names the file and the header field, the driver never prints.  Every read
 * of a header or of metadata is full or an error (io_pread_full): a short
 * read never becomes zeros that are acted upon.  Memory and time stay
 * bounded whatever the header claims.
 *
 * A READ-ONLY driver fills name, probe, open, close, get_info,
 * block_status and pread; one whose images have backing files adds
 * get_backing (and block_status answers IMG_BS_UNALLOC where the backing
 * file shows through).  Everything else may stay NULL.  img_open refuses
 * IMG_O_RDWR for a driver that can write nothing (no pwrite, no
 * backing_header), and img_get_info reports such images as not writable,
 * so a plan refuses them as a base before a commit starts.
 *
 * A driver that opens further files named inside the image (extents, an
 * external data file) resolves their names like backing names (relative to
 * the image's directory, json:/protocol names refused), opens them
 * read-only through io_open, and with IMG_O_PROBED set opens none outside
 * the image's directory: the bytes that chose the driver may be a guest's.
 *
 * Ownership: img_open() returns an owned struct img freed by img_close().
 * Strings inside struct img_info / img_backing / img_map are owned by the
 * struct img and valid until img_close() or the next set_backing on it.
 */
#ifndef IMGRAPH_FORMAT_H
#define IMGRAPH_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

struct stat;

#define IMG_BACKING_NAME_MAX 1023   /* what qcow2 can store */
#define IMG_FORMAT_NAME_MAX  15     /* QEMU rejects backing-fmt >= 16 bytes */
/* Bytes a probe sees at most (QEMU's BLOCK_PROBE_BUF_SIZE): whoever probes
 * reads this much from offset 0, or the whole file when it is shorter. */
#define IMG_PROBE_BYTES      2048
/* Bytes at the end of a file that a trailer probe (probe_tail) sees. */
#define IMG_PROBE_TAIL       1024

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
/* Set by img_open when the format was probed rather than named (callers
 * never pass it): see the note on further files above. */
#define IMG_O_PROBED    0x4

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
	/* Clusters per L2 table where a table spans several (qed's
	 * table_size); 0: one (qcow2). */
	uint32_t l2_table_clusters;
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

/* Where the data of a range lives (qemu-img map's offset and file). */
struct img_map {
	/* The byte offset of the range in `file` is known (QEMU's
	 * BDRV_BLOCK_OFFSET_VALID): plain data, preallocated zeros, an
	 * unallocated subcluster of an allocated cluster.  Compressed data
	 * has none. */
	bool offset_valid;
	uint64_t offset;
	/* Stored data that reads as zeros because its file has a hole there
	 * (or ends before it): qemu-img map then says "zero" too. */
	bool zero;
	/* The file that holds the data: an external data file or an extent
	 * names its own; img_map_status sets img->path when the driver
	 * leaves it NULL. */
	const char *file;
	/* Data stored compressed (qcow2): no host offset, read by inflating;
	 * the cluster map draws it apart from plain data. */
	bool compressed;
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

struct img;
struct io_copy_ctx;             /* formats/io/io.h */
/* For drivers' get_info: zero *out, then fill format (the driver's name),
 * virtual_size, and actual_size and file_size from the file. */
int img_info_base(struct img *img, struct img_info *out, struct img_err *e);

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


/* The ops.  REQUIRED ones must be set; for an OPTIONAL one left NULL the
 * wrapper in img.h answers as its comment says. */
struct img_format {
	const char *name;             /* REQUIRED: "qcow2", "raw", ... */

	/* OPTIONAL (NULL: never chosen by probing, only by name).  Score for
	 * the first bytes of a file (len <= IMG_PROBE_BYTES, may be short):
	 * 0 = no, 1 = raw's "anything", 100 = magic and version match. */
	int (*probe)(const uint8_t *buf, size_t len);
	/* Optional: score for the last bytes of a file, for formats whose
	 * signature is a trailer (a fixed VHD's footer, a DMG's koly block):
	 * tail holds the file's last len bytes (len <= IMG_PROBE_TAIL, less
	 * for a smaller file).  Same scale as probe; a head match of 100
	 * should win over a trailer. */
	int (*probe_tail)(const uint8_t *tail, size_t len);

	/* REQUIRED.  Read and check the header, set img->virtual_size and
	 * img->priv.  On failure free what was allocated (close is not
	 * called).  flags: IMG_O_*. */
	int (*open)(struct img *img, int flags, struct img_err *e);
	/* OPTIONAL (NULL: nothing to free).  Frees img->priv; a writable
	 * driver flushes first, as QEMU does at close. */
	void (*close)(struct img *img);

	/* REQUIRED.  info->format is the driver's name; write_refusal says
	 * why imgraph must not write this image (NULL: writable). */
	int (*get_info)(struct img *img, struct img_info *out, struct img_err *e);
	/* OPTIONAL (NULL: the format has no backing files; { NULL, NULL }). */
	int (*get_backing)(struct img *img, struct img_backing *out,
			   struct img_err *e);

	/* OPTIONAL (NULL: -ENOTSUP, "cannot rewrite the backing link").
	 * Build the bytes that rewrite the backing link (name and format;
	 * name NULL removes it): *buf (malloc'd, caller frees) replaces file
	 * range [0, *len).  Nothing is written.  -ENOSPC when the name does
	 * not fit the header, -EINVAL when it is over 1023 bytes. */
	int (*backing_header)(struct img *img, const char *name, const char *fmt,
			      uint8_t **buf, size_t *len, struct img_err *e);
	/* OPTIONAL (NULL: -ENOTSUP): backing_header + one pwrite + fdatasync
	 * + reload. */
	int (*set_backing)(struct img *img, const char *name, const char *fmt,
			   struct img_err *e);

	/* REQUIRED.  Status of [off, off+len) in THIS layer: returns enum
	 * img_bs >= 0 and sets *pnum (> 0, <= len) to the length with that
	 * same status; -errno on error.  off < virtual size. */
	int (*block_status)(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e);
	/* OPTIONAL (NULL: block_status with no offset known, file img->path).
	 * block_status plus where the data lives, for `imgraph map`: extents
	 * also end where the offset stops being contiguous or known, where
	 * m->zero changes, or where the file changes.  m starts zeroed. */
	int (*map_status)(struct img *img, uint64_t off, uint64_t len,
			  uint64_t *pnum, struct img_map *m, struct img_err *e);

	/* REQUIRED.  Read THIS layer's bytes; unallocated and zero ranges
	 * read as zeros. */
	int (*pread)(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e);

	/* The write side: OPTIONAL, each NULL => -ENOTSUP.  A commit into a
	 * base needs pwrite, write_zeroes and grow (img_can_write). */
	int (*pwrite)(struct img *img, uint64_t off, const void *buf, size_t len,
		      struct img_err *e);
	/* OPTIONAL (NULL: img_can_pwrite_file is false; callers read and
	 * pwrite).  pwrite with the bytes taken from file src at soff
	 * instead of memory, moved by io_copy_range (formats/io/io.h):
	 * extents shared where the file systems can, else copied in the
	 * kernel, else read and written; ctx says how.  Same contract as
	 * pwrite (whole clusters over a backing file, data durable before
	 * what points at it); a qcow2 base writes new clusters in runs as
	 * contiguous as the guest range, so one clone covers many. */
	int (*pwrite_file)(struct img *img, uint64_t off, uint64_t len,
			   int src, uint64_t soff, struct io_copy_ctx *ctx,
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
	/* OPTIONAL (NULL: 0; nothing is cached above the file).  Make
	 * everything written so far durable (data, then metadata). */
	int (*flush)(struct img *img, struct img_err *e);
	/* OPTIONAL (NULL: 0; writes are not batched).  See img.h. */
	int (*batch_begin)(struct img *img, struct img_err *e);
	int (*batch_end)(struct img *img, struct img_err *e);

	/* OPTIONAL (NULL: -ENOTSUP, "cannot create"). */
	int (*create)(const char *path, const struct img_create_opts *o,
		      struct img_err *e);
	/* OPTIONAL (NULL: -ENOTSUP; `imgraph check` exits 63 as qemu-img
	 * does for formats without checks). */
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
	int flags;                    /* IMG_O_* as opened */
	uint64_t virtual_size;        /* kept current by the driver */
	void *priv;                   /* driver state */
	/* During open only (NULL otherwise): the file's first head_len
	 * bytes, when the opener has read them already (the pool scan
	 * probes them), so a driver parses its header without reading it
	 * again. */
	const uint8_t *head;
	size_t head_len;
	bool fd_borrowed;             /* fd is the opener's: not closed here */
	/* img_open_borrowed only (NULL otherwise): the opener's fstat of
	 * fd, valid until img_close; img_fstat answers from it (the scan
	 * reads an image and closes it at once). */
	const struct stat *st;
};
/* fstat of img->fd, or img->st when the opener gave it. */
int img_fstat(struct img *img, struct stat *st);

extern const struct img_format img_format_raw;
extern const struct img_format img_format_qcow2;
/* Read-only drivers of foreign formats (formats/foreign.h). */
extern const struct img_format img_format_vpc;
extern const struct img_format img_format_vhdx;
extern const struct img_format img_format_vdi;
extern const struct img_format img_format_parallels;
extern const struct img_format img_format_dmg;
extern const struct img_format img_format_bochs;
extern const struct img_format img_format_cloop;
extern const struct img_format img_format_qcow;    /* qcow version 1 */
extern const struct img_format img_format_qed;
extern const struct img_format img_format_vmdk;
extern const struct img_format img_format_luks;

/* Registry (registry.c). */
const struct img_format *img_format_find(const char *name);
/* Highest-scoring format for these bytes (raw when nothing else matches). */
const struct img_format *img_format_probe(const uint8_t *buf, size_t len);
/* The same for the first hlen and the last tlen bytes of a file (tail may
 * be NULL); the first best score in registry order wins. */
const struct img_format *img_format_probe_ends(const uint8_t *head,
					       size_t hlen,
					       const uint8_t *tail,
					       size_t tlen);
/* Probe an open file by its first IMG_PROBE_BYTES and last IMG_PROBE_TAIL
 * bytes (a block device: by its head only).  0 or -errno. */
int img_probe_fd(int fd, const struct img_format **out);

/* Open path with format fmt (NULL = probe; *probed set when non-NULL).
 * Refuses non-regular files without opening them for reading blocking. */
int img_open(const char *path, const char *fmt, int flags, struct img **out,
	     bool *probed, struct img_err *e);
/* Open with driver drv on an fd (dup'd), without probing or the registry:
 * for img_open_fd, and for tests of a driver not in the registry.  Refuses
 * IMG_O_RDWR when the driver can write nothing (-EROFS). */
int img_open_drv(const struct img_format *drv, int fd, const char *path,
		 int flags, struct img **out, struct img_err *e);
/* Open on an fd already opened by the caller (the fd is dup'd). */
int img_open_fd(int fd, const char *path, const char *fmt, int flags,
		struct img **out, bool *probed, struct img_err *e);
/* For the pool scan, which opens each image once: open with format fmt
 * (named; the caller probed) on fd, a regular file the caller checked and
 * keeps open until img_close, which leaves it open (no dup, no close).
 * st: the caller's fstat of fd (img_fstat answers from it).  head: the
 * file's first hlen bytes as the caller read them (hlen may be short of
 * the file size; NULL: none), which the driver parses instead of reading
 * them again. */
int img_open_borrowed(int fd, const char *path, const char *fmt, int flags,
		      const struct stat *st, const uint8_t *head, size_t hlen,
		      struct img **out, struct img_err *e);
void img_close(struct img *img);

#endif
