/* foreign.c - helpers of the read-only foreign-format drivers; see
 * foreign.h. */
#include "foreign.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

int fr_bad(struct img *img, const char *fmt, const char *field,
	   struct img_err *e, const char *what, ...)
{
	char buf[IMG_ERR_MSG_MAX / 2];
	va_list ap;

	va_start(ap, what);
	vsnprintf(buf, sizeof(buf), what, ap);
	va_end(ap);
	return err_set(e, EINVAL, "%s: %s field '%s' %s", img->path, fmt, field,
		       buf);
}

int fr_file_size(struct img *img, uint64_t *size, struct img_err *e)
{
	struct stat st;
	int r = io_fstat(img->fd, &st);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	*size = (uint64_t)st.st_size;
	return 0;
}

int fr_read(struct img *img, uint64_t fsize, const char *fmt,
	    const char *field, uint64_t off, void *buf, size_t len,
	    struct img_err *e)
{
	int r;

	if (off > fsize || len > fsize - off)
		return err_set(e, EINVAL,
			       "%s: %s %s at offset %llu (%zu bytes) runs past "
			       "the end of the file (%llu bytes)", img->path,
			       fmt, field, fr_ull(off), len, fr_ull(fsize));
	r = io_pread_full(img->fd, buf, len, off);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the %s %s at "
				     "offset %llu", img->path, fmt, field,
				     fr_ull(off));
	return 0;
}

int fr_table(struct img *img, const char *fmt, const char *field,
	     uint64_t n, size_t esize, void **out, struct img_err *e)
{
	*out = NULL;
	if (n == 0)
		return 0;
	if (n > FR_TABLE_MAX / esize)
		return err_set(e, EFBIG,
			       "%s: %s %s has %llu entries of %zu bytes, over "
			       "the limit of %u MiB", img->path, fmt, field,
			       fr_ull(n), esize, FR_TABLE_MAX >> 20);
	*out = malloc((size_t)n * esize);
	if (!*out)
		return err_set(e, ENOMEM, "%s: out of memory for the %s %s",
			       img->path, fmt, field);
	return 0;
}

int fr_info(struct img *img, const char *fmt, uint32_t cluster_size,
	    struct img_info *o, struct img_err *e)
{
	int r = img_info_base(img, o, e);

	if (r < 0)
		return r;
	o->format = fmt;
	o->cluster_size = cluster_size;
	return 0;
}

int fr_check_read(struct img *img, uint64_t off, size_t len,
		  struct img_err *e)
{
	if (off > img->virtual_size || len > img->virtual_size - off)
		return err_set(e, EINVAL, "%s: read at %llu+%zu is past the end "
			       "of the image (%llu)", img->path, fr_ull(off),
			       len, fr_ull(img->virtual_size));
	return 0;
}

static int map_step(struct img *img, fr_map_fn map, uint64_t off,
		    uint64_t len, struct fr_extent *x, struct img_err *e)
{
	int r;

	memset(x, 0, sizeof(*x));
	r = map(img, off, len, x, e);
	if (r < 0)
		return r;
	if (x->len == 0 || x->len > len)
		return err_set(e, EIO, "%s: internal error: map step at %llu "
			       "gave %llu bytes of %llu", img->path,
			       fr_ull(off), fr_ull(x->len), fr_ull(len));
	return 0;
}

int fr_block_status(struct img *img, fr_map_fn map, uint64_t off,
		    uint64_t len, uint64_t *pnum, struct img_err *e)
{
	struct fr_extent x;
	int r;

	if (off >= img->virtual_size || len == 0)
		return err_set(e, EINVAL, "%s: block status at %llu+%llu is "
			       "outside the image (%llu)", img->path,
			       fr_ull(off), fr_ull(len),
			       fr_ull(img->virtual_size));
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	r = map_step(img, map, off, len, &x, e);
	if (r < 0)
		return r;
	*pnum = x.len;
	return x.bs;
}

int fr_pread_mapped(struct img *img, fr_map_fn map, uint64_t off, void *buf,
		    size_t len, struct img_err *e)
{
	uint8_t *b = buf;
	int r = fr_check_read(img, off, len, e);

	while (r == 0 && len) {
		struct fr_extent x;
		r = map_step(img, map, off, len, &x, e);
		if (r < 0)
			break;
		size_t n = x.len < len ? (size_t)x.len : len;
		if (x.bs == IMG_BS_DATA) {
			ssize_t got = io_pread(img->fd, b, n, x.host);
			if (got < 0)
				return err_set_errno(e, (int)-got,
						     "%s: guest offset %llu: "
						     "cannot read file offset "
						     "%llu", img->path,
						     fr_ull(off),
						     fr_ull(x.host));
			/* A block cut short by the end of the file reads
			 * as zeros, as in QEMU. */
			if ((size_t)got < n)
				memset(b + got, 0, n - (size_t)got);
		} else {
			memset(b, 0, n);
		}
		b += n;
		off += n;
		len -= n;
	}
	return r;
}

int fr_inflate(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	z_stream z;
	int r;

	if (inlen > UINT32_MAX || outlen > UINT32_MAX)
		return -EIO;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = inflate(&z, Z_FINISH);
	size_t got = outlen - z.avail_out;
	inflateEnd(&z);
	return r == Z_STREAM_END && got == outlen ? 0 : -EIO;
}

/* Append code point c to out as UTF-8; false when it does not fit. */
static bool put_utf8(uint32_t c, char *out, size_t outsz, size_t *k)
{
	uint8_t u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (uint8_t)(0xc0 | c >> 6);
		u[1] = (uint8_t)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (uint8_t)(0xe0 | c >> 12);
		u[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		u[2] = (uint8_t)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | c >> 18);
		u[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
		u[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		u[3] = (uint8_t)(0x80 | (c & 0x3f));
		n = 4;
	}
	if (outsz - *k <= n)
		return false;
	memcpy(out + *k, u, n);
	*k += n;
	return true;
}

int fr_utf16_to_utf8(const uint8_t *in, size_t nbytes, bool big_endian,
		     char *out, size_t outsz)
{
	size_t k = 0;

	if (outsz == 0)
		return -ENAMETOOLONG;
	for (size_t i = 0; i + 1 < nbytes; i += 2) {
		uint32_t c = big_endian ? fr_be16(in + i) : fr_le16(in + i);
		if (c == 0)
			break;
		if (c >= 0xdc00 && c < 0xe000)
			return -EINVAL;
		if (c >= 0xd800 && c < 0xdc00) {
			uint32_t lo;
			if (i + 3 >= nbytes)
				return -EINVAL;
			lo = big_endian ? fr_be16(in + i + 2)
					: fr_le16(in + i + 2);
			if (lo < 0xdc00 || lo >= 0xe000)
				return -EINVAL;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		if (!put_utf8(c, out, outsz, &k))
			return -ENAMETOOLONG;
	}
	out[k] = '\0';
	return 0;
}

void fr_windows_path(char *path)
{
	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
}
