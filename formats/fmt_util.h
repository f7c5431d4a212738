/* fmt_util.h - small helpers shared by the format drivers that parse a
 * foreign header (qcow v1, qed, vmdk, luks): endian loads, the "file +
 * field + what is wrong" error, range checks against the file size, exact
 * reads and inflate.
 *
 * Every error names the file and the header field, like the qcow2 driver's:
 *   "PATH: qed header field 'cluster_size' is 1000; must be a power of two"
 */
#ifndef IMGRAPH_FMT_UTIL_H
#define IMGRAPH_FMT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

static inline uint16_t fmt_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fmt_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t fmt_le64(const uint8_t *p)
{
	return (uint64_t)fmt_le32(p) | ((uint64_t)fmt_le32(p + 4) << 32);
}

static inline uint16_t fmt_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t fmt_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t fmt_be64(const uint8_t *p)
{
	return ((uint64_t)fmt_be32(p) << 32) | fmt_be32(p + 4);
}

/* EINVAL: "PATH: KIND header field 'FIELD' <what>" (what is printf). */
int fmt_bad_field(struct img_err *e, const char *path, const char *kind,
		  const char *field, const char *what, ...)
	__attribute__((format(printf, 5, 6)));

/* 0 when [off, off + len) lies inside a file of file_size bytes; else
 * EINVAL naming the field that holds off ("... is OFF; the LEN-byte WHAT
 * ends past the end of the file (SIZE bytes)"), also on overflow. */
int fmt_check_range(struct img_err *e, const char *path, const char *kind,
		    const char *field, const char *what, uint64_t off,
		    uint64_t len, uint64_t file_size);

/* Read exactly len bytes at off; a short read (EOF) or an I/O error fills
 * e with "PATH: cannot read WHAT at OFF". */
int fmt_pread(int fd, const char *path, const char *what, void *buf,
	      size_t len, uint64_t off, struct img_err *e);

/* Inflate in[0..inlen) into out[0..outlen), stopping when either runs
 * out.  window_bits as for zlib's inflateInit2 (15: zlib wrapper, -12:
 * raw deflate).  Returns the number of bytes produced, or -1 for data that
 * is not deflate; *ended tells whether the stream's end was reached. */
long fmt_inflate(const uint8_t *in, size_t inlen, uint8_t *out,
		 size_t outlen, int window_bits, int *ended);

/* Copy at most n bytes of s (stopping at NUL) into out for a message,
 * replacing anything but printable ASCII with '?'; out is NUL-terminated. */
void fmt_printable(const char *s, size_t n, char *out, size_t outlen);

#endif
