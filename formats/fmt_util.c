/* fmt_util.c - helpers shared by the foreign-format drivers; see
 * fmt_util.h. */
#include "fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <zlib.h>

int fmt_bad_field(struct img_err *e, const char *path, const char *kind,
		  const char *field, const char *what, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, what);
	vsnprintf(msg, sizeof(msg), what, ap);
	va_end(ap);
	return err_set(e, EINVAL, "%s: %s header field '%s' %s", path, kind,
		       field, msg);
}

int fmt_check_range(struct img_err *e, const char *path, const char *kind,
		    const char *field, const char *what, uint64_t off,
		    uint64_t len, uint64_t file_size)
{
	if (off <= file_size && len <= file_size - off)
		return 0;
	return fmt_bad_field(e, path, kind, field,
			     "is %llu; the %llu-byte %s ends past the end of "
			     "the file (%llu bytes)", (unsigned long long)off,
			     (unsigned long long)len, what,
			     (unsigned long long)file_size);
}

int fmt_pread(int fd, const char *path, const char *what, void *buf,
	      size_t len, uint64_t off, struct img_err *e)
{
	int r = io_pread_full(fd, buf, len, off);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read %s (%zu bytes at "
				     "offset %llu)", path, what, len,
				     (unsigned long long)off);
	return 0;
}

long fmt_inflate(const uint8_t *in, size_t inlen, uint8_t *out,
		 size_t outlen, int window_bits, int *ended)
{
	z_stream z = { 0 };
	long n;
	int r;

	*ended = 0;
	if (inlen > UINT_MAX || outlen > UINT_MAX)
		return -1;
	if (inflateInit2(&z, window_bits) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = inflate(&z, Z_FINISH);
	n = (long)(outlen - z.avail_out);
	inflateEnd(&z);
	if (r == Z_STREAM_END)
		*ended = 1;
	else if (r != Z_BUF_ERROR && r != Z_OK)
		return -1;
	return n;
}

void fmt_printable(const char *s, size_t n, char *out, size_t outlen)
{
	size_t k = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < n && s[i] && k + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[k] = '\0';
}
