/* qcow2_hdr.h - the qcow2 on-disk layout: where each header field lives,
 * the header extensions, the bits of table entries, and the fixed parts of
 * snapshot-table and bitmap-directory entries.
 *
 * The one place these numbers are written down: the driver (parser,
 * backing rewrite, create, check, resize), the unit tests' image crafter
 * (tests/unit/qcow2_craft.h) and the shell poker of the hostile corpus and
 * the fuzz seeds (tests/hostile/poke.sh reads the QCOW2_HDR_* lines of this
 * file, so keep them as plain "#define NAME NUMBER").
 *
 * All on-disk integers are big-endian; the accessors are at the end.
 */
#ifndef IMGRAPH_QCOW2_HDR_H
#define IMGRAPH_QCOW2_HDR_H

#include <stdint.h>

#define QCOW2_MAGIC 0x514649fbu        /* "QFI\xfb" */

/* Header fields: byte offset in cluster 0 (width in the comment). */
#define QCOW2_HDR_MAGIC 0                        /* u32 */
#define QCOW2_HDR_VERSION 4                      /* u32 */
#define QCOW2_HDR_BACKING_FILE_OFFSET 8          /* u64 */
#define QCOW2_HDR_BACKING_FILE_SIZE 16           /* u32 */
#define QCOW2_HDR_CLUSTER_BITS 20                /* u32 */
#define QCOW2_HDR_SIZE 24                        /* u64 */
#define QCOW2_HDR_CRYPT_METHOD 32                /* u32 */
#define QCOW2_HDR_L1_SIZE 36                     /* u32 */
#define QCOW2_HDR_L1_TABLE_OFFSET 40             /* u64 */
#define QCOW2_HDR_REFCOUNT_TABLE_OFFSET 48       /* u64 */
#define QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS 56     /* u32 */
#define QCOW2_HDR_NB_SNAPSHOTS 60                /* u32 */
#define QCOW2_HDR_SNAPSHOTS_OFFSET 64            /* u64 */
/* Version 3 only (a version 2 header ends at QCOW2_HDR_V2_LEN). */
#define QCOW2_HDR_INCOMPATIBLE_FEATURES 72       /* u64 */
#define QCOW2_HDR_COMPATIBLE_FEATURES 80         /* u64 */
#define QCOW2_HDR_AUTOCLEAR_FEATURES 88          /* u64 */
#define QCOW2_HDR_REFCOUNT_ORDER 96              /* u32 */
#define QCOW2_HDR_HEADER_LENGTH 100              /* u32 */
/* Only when header_length > QCOW2_HDR_V3_MIN_LEN. */
#define QCOW2_HDR_COMPRESSION_TYPE 104           /* u8 */

#define QCOW2_HDR_V2_LEN 72            /* the whole version 2 header */
#define QCOW2_HDR_V3_MIN_LEN 104       /* smallest version 3 header_length */
#define QCOW2_HDR_V3_LEN 112           /* what qemu-img writes (padded to 8) */

/* Header updates that must be one write rely on these pairs being
 * adjacent: l1_size + l1_table_offset (grow) and refcount_table_offset +
 * refcount_table_clusters (refcount table relocation). */
_Static_assert(QCOW2_HDR_L1_TABLE_OFFSET == QCOW2_HDR_L1_SIZE + 4,
	       "l1_size and l1_table_offset are adjacent");
_Static_assert(QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS ==
	       QCOW2_HDR_REFCOUNT_TABLE_OFFSET + 8,
	       "refcount table offset and size are adjacent");

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS    (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW   (1ull << 1)

/* Header extensions: records of { u32 type, u32 length, data } padded to
 * 8 bytes, from header_length up to an END record. */
#define QCOW2_EXT_TYPE 0                         /* u32 */
#define QCOW2_EXT_LEN 4                          /* u32 */
#define QCOW2_EXT_DATA 8                         /* first data byte */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
#define QCOW2_EXT_CRYPTO       0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

/* Feature name table entry: u8 type, u8 bit, 46 bytes of name. */
#define QCOW2_FEATURE_ENTRY 48
#define QCOW2_FEATURE_TYPE 0
#define QCOW2_FEATURE_BIT 1
#define QCOW2_FEATURE_NAME 2
#define QCOW2_FEATURE_NAME_LEN 46

/* Bitmaps extension data. */
#define QCOW2_BITMAPS_NB 0                       /* u32 */
#define QCOW2_BITMAPS_DIR_SIZE 8                 /* u64 */
#define QCOW2_BITMAPS_DIR_OFFSET 16              /* u64 */
#define QCOW2_BITMAPS_EXT_LEN 24
/* Bitmap directory entry (fixed part, then extra data and name). */
#define QCOW2_BMDIR_TABLE_OFFSET 0               /* u64 */
#define QCOW2_BMDIR_TABLE_SIZE 8                 /* u32 */
#define QCOW2_BMDIR_NAME_SIZE 18                 /* u16 */
#define QCOW2_BMDIR_EXTRA_SIZE 20                /* u32 */
#define QCOW2_BMDIR_FIXED 24
#define QCOW2_BMT_OFFSET_MASK 0x00fffffffffffe00ull

/* Full-disk encryption extension data. */
#define QCOW2_CRYPTO_OFFSET 0                    /* u64 */
#define QCOW2_CRYPTO_LENGTH 8                    /* u64 */
#define QCOW2_CRYPTO_EXT_LEN 16

/* Snapshot table entry (fixed part, then extra data, id and name). */
#define QCOW2_SNAP_L1_TABLE_OFFSET 0             /* u64 */
#define QCOW2_SNAP_L1_SIZE 8                     /* u32 */
#define QCOW2_SNAP_ID_SIZE 12                    /* u16 */
#define QCOW2_SNAP_NAME_SIZE 14                  /* u16 */
#define QCOW2_SNAP_EXTRA_SIZE 36                 /* u32 */
#define QCOW2_SNAP_FIXED 40

/* L1, L2 and refcount table entries. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_L1E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L1E_RESERVED     0x7f000000000001ffull
#define QCOW2_L2E_STD_RESERVED 0x3f000000000001feull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull
/* Extended L2: the second u64 holds 32 "allocated" bits (low half) and
 * 32 "reads as zeros" bits (high half), one per subcluster. */
#define QCOW2_L2_BITMAP_ALL_ALLOC 0xffffffffull
#define QCOW2_L2_BITMAP_ALL_ZERO  0xffffffff00000000ull

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

static inline uint16_t qcow2_be16(const uint8_t *p)
{
	return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
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

#endif
