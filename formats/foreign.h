/* foreign.h - what the read-only drivers of foreign formats share (vpc,
 * vhdx, vdi, parallels, dmg, bochs, cloop): byte order, reads that stay
 * inside the file and name the field they are for, one size rule for
 * in-memory tables, the mapped read loop, zlib chunks and UTF-16 names.
 *
 * Every limit a hostile header could push (table sizes, chunk sizes) is
 * one of the constants below, so that memory stays bounded whatever the
 * file claims, and every refusal is an img_err naming the file and the
 * field ("x.vhd: vpc field 'max_table_entries' is ...").
 */
#ifndef IMGRAPH_FOREIGN_H
#define IMGRAPH_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Bytes of any one table a driver keeps in memory (block allocation
 * tables, chunk lists, offset lists): 64 MiB holds 16 Mi entries of 4 bytes,
 * e.g. 16 TiB of VDI at 1 MiB per block. */
#define FR_TABLE_MAX (64u << 20)
/* Bytes of one compressed chunk, before or after inflating (QEMU's dmg and
 * cloop limits). */
#define FR_CHUNK_MAX (64u << 20)

static inline uint16_t fr_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t fr_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static inline uint64_t fr_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)fr_le32(b) | (uint64_t)fr_le32(b + 4) << 32;
}

static inline uint16_t fr_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t fr_be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static inline uint64_t fr_be64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)fr_be32(b) << 32 | fr_be32(b + 4);
}

static inline unsigned long long fr_ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* "PATH: FMT field 'FIELD' <what>" with EINVAL; returns -EINVAL. */
int fr_bad(struct img *img, const char *fmt, const char *field,
	   struct img_err *e, const char *what, ...)
	__attribute__((format(printf, 5, 6)));

/* st_size of img's file. */
int fr_file_size(struct img *img, uint64_t *size, struct img_err *e);

/* Read exactly len bytes at off for FIELD.  The range must lie inside the
 * file of fsize bytes: otherwise EINVAL "... runs past the end of the
 * file", so a hostile offset never becomes a read of zeros. */
int fr_read(struct img *img, uint64_t fsize, const char *fmt,
	    const char *field, uint64_t off, void *buf, size_t len,
	    struct img_err *e);

/* malloc n entries of esize bytes for the table FIELD, refused (EFBIG,
 * naming the field) past FR_TABLE_MAX.  *out is NULL for n == 0. */
int fr_table(struct img *img, const char *fmt, const char *field,
	     uint64_t n, size_t esize, void **out, struct img_err *e);

/* img_info for a read-only format: sizes from the file, the format name
 * and cluster size given, and the write refusal every such format has. */
int fr_info(struct img *img, const char *fmt, uint32_t cluster_size,
	    struct img_info *o, struct img_err *e);

/* One step of a driver's address map: [off, off + len) of THIS layer has
 * status bs (enum img_bs) and, for IMG_BS_DATA, its bytes start at file
 * offset host and are contiguous in the file for all len bytes. */
struct fr_extent {
	int bs;
	uint64_t len;
	uint64_t host;
};
/* Fill *x for the extent that starts at off (off < virtual size, len > 0);
 * x->len must be > 0 and <= len. */
typedef int (*fr_map_fn)(struct img *img, uint64_t off, uint64_t len,
			 struct fr_extent *x, struct img_err *e);

/* block_status and pread on top of a map step. */
int fr_block_status(struct img *img, fr_map_fn map, uint64_t off,
		    uint64_t len, uint64_t *pnum, struct img_err *e);
int fr_pread_mapped(struct img *img, fr_map_fn map, uint64_t off, void *buf,
		    size_t len, struct img_err *e);
/* The bounds every pread checks first: off + len inside the image. */
int fr_check_read(struct img *img, uint64_t off, size_t len,
		  struct img_err *e);

/* Inflate one zlib (RFC 1950) stream in[0, inlen) into exactly outlen
 * bytes.  0, or -EIO when the data is not such a stream or inflates to
 * any other length (the output buffer bounds a "zlib bomb"). */
int fr_inflate(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen);

/* UTF-16 (big- or little-endian) of nbytes to a NUL-terminated UTF-8 name
 * in out (outsz bytes), stopping at a NUL character.  -EINVAL for an
 * unpaired surrogate or a control character (never a file name we would
 * show or follow), -ENAMETOOLONG when it does not fit. */
int fr_utf16_to_utf8(const uint8_t *in, size_t nbytes, bool big_endian,
		     char *out, size_t outsz);

/* Turn a Windows path as stored by Hyper-V and Virtual PC (".\\a.vhd",
 * "C:\\x\\a.vhd") into the separators of this system, in place. */
void fr_windows_path(char *path);

#endif
