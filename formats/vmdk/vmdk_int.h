/* vmdk_int.h - state shared by the vmdk driver files (not a public API).
 *
 *   vmdk_desc.c    the descriptor text: createType, CID, parentCID,
 *                  parentFileNameHint and the extent lines (pure parsing)
 *   vmdk_extent.c  extent files: opened inside the descriptor's directory
 *                  only, sparse headers (and the stream footer), grain
 *                  directories, a small pool of open descriptors
 *   vmdk_read.c    block status and reads (flat, sparse, compressed grains)
 *   vmdk.c         the ops table: probe, open/close, info, backing
 *
 * Sparse extent header (little-endian, after the 4-byte magic "KDMV"):
 * version u32 @4, flags u32 @8, capacity u64 @12 (sectors), granularity
 * u64 @20 (sectors per grain), desc_offset u64 @28, desc_size u64 @36,
 * num_gtes_per_gt u32 @44, rgd_offset u64 @48, gd_offset u64 @56 (sectors;
 * all-ones: "at the end", read the footer), grain_offset u64 @64,
 * compressAlgorithm u16 @77.  Grain directory and grain tables hold u32
 * sector numbers: 0 unallocated, 1 a zeroed grain when flag bit 2 is set.
 */
#ifndef IMGRAPH_VMDK_INT_H
#define IMGRAPH_VMDK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/format.h"

#define VMDK_SECTOR          512u
#define VMDK_DESC_SIZE       (20u * VMDK_SECTOR)   /* where CIDs are read */
#define VMDK_DESC_MAX        ((1u << 20) - 1)      /* descriptor text cap */
#define VMDK_MAX_EXTENTS     4096u
#define VMDK_MAX_OPEN        32                    /* extent fds kept open */
#define VMDK_FNAME_MAX       511u                  /* QEMU's %511[...] */
#define VMDK_HINT_MAX        4095u                 /* QEMU's PATH_MAX buffer */
#define VMDK_MAX_GRAIN       0x200000u             /* sectors (QEMU's cap) */
#define VMDK_MAX_ZGRAIN      4096u                 /* sectors: compressed */
#define VMDK_MAX_GD          (32u << 20)           /* entries (QEMU's cap) */
#define VMDK_MAX_SECTORS     (1ull << 52)          /* 2^61 bytes in all */

/* One RW extent line of a descriptor. */
struct vmdk_line {
	int lineno;
	uint64_t sectors;
	char type[11];                /* FLAT, SPARSE, VMFS, VMFSSPARSE ... */
	char fname[VMDK_FNAME_MAX + 1];
	uint64_t flat_offset;         /* sectors; FLAT (and VMFS: 0) */
};

struct vmdk_extent {
	int lineno;                   /* descriptor line (0: the image itself) */
	char *path;                   /* as opened: descriptor's dir + name */
	char *name;                   /* relative to the descriptor's dir */
	const char *type;             /* static: "FLAT", "SPARSE" ... or "" */
	bool flat, compressed, has_marker, zero_grain;
	uint64_t start;               /* first guest byte */
	uint64_t length;              /* bytes */
	uint64_t flat_offset;         /* bytes into the file (flat) */
	uint64_t grain;               /* sectors per grain (sparse) */
	uint32_t gtes;                /* grain table entries */
	uint32_t gd_entries;
	uint32_t *gd;                 /* grain directory, host-endian */
	uint32_t gt_sector;           /* cached grain table, 0: none */
	uint32_t *gt;
	uint64_t file_size;
	uint64_t alloc_bytes;         /* st_blocks * 512 at open */
	dev_t dev;
	ino_t ino;
	int fd;                       /* -1 while closed */
	bool shared_fd;               /* fd is img->fd (never closed here) */
	uint64_t last_use;
};

struct vmdk_state {
	char *create_type;
	uint32_t cid, parent_cid;
	char *parent_hint;            /* backing file name, NULL: none */
	char *dir_prefix;             /* descriptor's dir as given + "/" */
	int dirfd;                    /* O_PATH fd of that directory */
	struct vmdk_extent *ext;
	uint32_t n;
	int nopen;
	uint64_t tick;
	uint8_t *zin, *zout;          /* compressed grain buffers */
	const struct vmdk_extent *zout_ext;   /* grain inflated in zout */
	uint64_t zout_sector;
	uint64_t zout_len;
	struct img_extent_info *info_ext;
	dev_t dev;                    /* the descriptor (or monolithic) file */
	ino_t ino;
};

/* ---- vmdk_desc.c ---- */
/* QEMU's descriptor lookups on NUL-terminated text: key="value" at the
 * first occurrence of key (1 found, 0 absent, -1 malformed: no closing
 * quote or longer than outlen - 1). */
int vmdk_desc_string(const char *text, const char *key, char *out,
		     size_t outlen);
/* CID (parent false) or parentCID, hex after "CID=" at the first
 * occurrence of the word, as QEMU reads it.  0 found, -1 absent/bad. */
int vmdk_desc_cid(const char *text, bool parent, uint32_t *cid);
/* Every RW extent line QEMU would use, in order.  *lines is malloc'd.
 * Lines QEMU skips are skipped; a line QEMU calls invalid is an error
 * naming path and the line number. */
int vmdk_desc_extents(const char *text, const char *path,
		      struct vmdk_line **lines, uint32_t *n,
		      struct img_err *e);
/* Is a createType value one QEMU opens from a descriptor file? */
bool vmdk_desc_type_ok(const char *ct);

/* ---- vmdk_extent.c ---- */
/* Open every extent of lines (relative to s->dirfd), parse sparse headers
 * and grain directories, append them to s->ext. */
int vmdk_open_lines(struct img *img, const struct vmdk_line *lines,
		    uint32_t n, struct img_err *e);
/* The image file itself is one sparse extent (monolithicSparse,
 * streamOptimized).  *desc_at: set to the byte offset of an embedded
 * descriptor to use instead when the header has capacity 0 (else 0). */
int vmdk_open_self(struct img *img, uint64_t *desc_at, struct img_err *e);
/* An open fd for ext (reopened, identity checked, when it was closed). */
int vmdk_extent_fd(struct img *img, struct vmdk_extent *ext,
		   struct img_err *e);
void vmdk_free_extents(struct vmdk_state *s);

/* ---- vmdk_read.c ---- */
int vmdk_block_status(struct img *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, struct img_err *e);
int vmdk_pread(struct img *img, uint64_t off, void *buf, size_t len,
	       struct img_err *e);

#endif
