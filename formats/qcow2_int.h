/* qcow2_int.h - state shared by the qcow2 driver files (not a public API).
 *
 *   qcow2_header.c  parse + validate header and extensions
 *   qcow2_backing.c backing_header / set_backing (the safe cluster-0 rewrite)
 *   qcow2_read.c    L1/L2 lookup, block status, reads, compressed clusters
 *   qcow2_alloc.c   refcounts, cluster allocation, writes, zeroes, grow,
 *                   make_empty, flush
 *   qcow2_create.c  create
 *   qcow2_check.c   check (refcounts against references)
 *   qcow2.c         the ops table, open/close/info
 *
 * All on-disk integers are big-endian.
 */
#ifndef IMGRAPH_QCOW2_INT_H
#define IMGRAPH_QCOW2_INT_H

#include "format.h"

#define QCOW2_MAGIC 0x514649fbu

#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS    (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW   (1ull << 1)

#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
#define QCOW2_EXT_CRYPTO       0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_L1E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L1E_RESERVED     0x7f000000000001ffull
#define QCOW2_L2E_STD_RESERVED 0x3f000000000001feull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull

#define QCOW2_MAX_L1_BYTES     (32u << 20)   /* QEMU's cap */
#define QCOW2_MAX_REFT_BYTES   (8u << 20)
#define QCOW2_MAX_VSIZE        (1ull << 61)  /* our cap on virtual size */
#define QCOW2_MAX_EXTENSIONS   1024          /* iteration cap */

/* One header extension kept verbatim (unknown ones, and known ones we
 * re-emit unchanged on rewrite). */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;                /* owned */
};

struct qcow2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
};

struct qcow2_state {
	struct qcow2_header h;
	uint32_t cluster_size;
	uint32_t l2_entries;          /* entries per L2 table */
	int l2_entry_bytes;           /* 8 or 16 (extended L2) */
	bool extl2;
	uint32_t subcluster_size;     /* cluster_size / 32 with extl2, else cluster_size */
	int refcount_bits;
	uint64_t file_size;           /* at open, updated as we append */

	uint8_t *header_cluster;      /* cluster 0 as read, owned */
	struct qcow2_ext *exts;       /* in file order, owned */
	int nexts;
	char *backing_name;           /* NUL-terminated or NULL, owned */
	char *backing_fmt;            /* or NULL, owned */
	char *data_file_name;         /* or NULL, owned */

	uint64_t *l1;                 /* host-endian copy of the active L1, owned */

	/* Small L2 cache (read path); the write path may add its own. */
	uint64_t l2_cache_off;
	uint8_t *l2_cache;            /* one L2 table, raw big-endian bytes */

	/* Refcount table, host-endian, loaded lazily by the write/check path. */
	uint64_t *reft;
	uint32_t reft_entries;

	const char *write_refusal;    /* static string or NULL */
	void *alloc;                  /* qcow2_alloc.c private state */
};

static inline uint64_t qcow2_be64(const uint8_t *p)
{
	return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) |
	       ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32) |
	       ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
	       ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void qcow2_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* qcow2_header.c */
/* Parse and validate cluster 0 and the extensions; fill s (not the L1). */
int qcow2_parse_header(struct qcow2_state *s, const char *path, int fd,
		       uint64_t file_size, struct img_err *e);
void qcow2_free_header(struct qcow2_state *s);

/* qcow2_backing.c */
int qcow2_backing_header(struct img *img, const char *name, const char *fmt,
			 uint8_t **buf, size_t *len, struct img_err *e);
int qcow2_set_backing(struct img *img, const char *name, const char *fmt,
		      struct img_err *e);

/* qcow2_read.c */
int qcow2_load_l1(struct img *img, struct img_err *e);
/* Raw L2 entry (first 64-bit word) and extended bitmap for guest offset off. */
int qcow2_get_l2_entry(struct img *img, uint64_t off, uint64_t *entry,
		       uint64_t *bitmap, struct img_err *e);
int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct img_err *e);
int qcow2_pread(struct img *img, uint64_t off, void *buf, size_t len,
		struct img_err *e);

/* qcow2_alloc.c */
int qcow2_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
		 struct img_err *e);
int qcow2_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		       struct img_err *e);
int qcow2_grow(struct img *img, uint64_t new_size, struct img_err *e);
int qcow2_make_empty(struct img *img, struct img_err *e);
int qcow2_flush(struct img *img, struct img_err *e);
void qcow2_alloc_free(struct qcow2_state *s);

/* qcow2_create.c */
int qcow2_create(const char *path, const struct img_create_opts *o,
		 struct img_err *e);

/* qcow2_check.c */
int qcow2_check(struct img *img, struct img_check *out, struct img_err *e);

#endif
