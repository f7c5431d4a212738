/* esc.c - control characters in names, escaped like ls (see esc.h). */
#include "esc.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s that is safe to print (not a
 * C1 control), or 0. */
static size_t utf8_ok(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	uint32_t cp;

	if (!n || s[0] > 0xf4)
		return 0;
	cp = s[0] & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/* The escape for byte c into out (NUL-terminated), "" if it is printed
 * as is. */
static void one(unsigned char c, char out[5])
{
	static const char named[] = "abtnvfr";

	if (c >= 7 && c <= 13)
		out[0] = '\\', out[1] = named[c - 7], out[2] = 0;
	else if (c == '\\')
		out[0] = '\\', out[1] = '\\', out[2] = 0;
	else if (c < 0x20 || c >= 0x7f) {
		out[0] = '\\';
		out[1] = (char)('0' + (c >> 6));
		out[2] = (char)('0' + (c >> 3 & 7));
		out[3] = (char)('0' + (c & 7));
		out[4] = 0;
	} else
		out[0] = 0;
}

/* Bytes at p printed as they are: one printable ASCII byte or one safe
 * UTF-8 sequence; 0 when p needs an escape (or is the end). */
static size_t plain_len(const unsigned char *p)
{
	return *p >= 0x20 && *p < 0x7f && *p != '\\' ? 1
	       : *p >= 0x80 ? utf8_ok(p) : 0;
}

/* Walk s: fn gets each piece (plain or escape) in order.  With runs, a
 * run of plain pieces comes as one (a file takes it in one fwrite, not a
 * call per byte); without, each piece alone (a bounded buffer drops the
 * first piece that does not fit, never half of one). */
static void walk(const char *s, bool runs,
		 void (*fn)(void *, const char *, size_t), void *ctx)
{
	const unsigned char *p = (const unsigned char *)s;
	char e[5];

	while (p && *p) {
		const unsigned char *q = p;
		size_t n;

		while (*q && (n = plain_len(q))) {
			q += n;
			if (!runs)
				break;
		}
		if (q > p) {
			fn(ctx, (const char *)p, (size_t)(q - p));
			p = q;
			continue;
		}
		one(*p++, e);
		fn(ctx, e, strlen(e));
	}
}

struct sink {
	char *buf;
	size_t len, pos;
	bool full;
};

static void to_buf(void *ctx, const char *s, size_t n)
{
	struct sink *k = ctx;

	if (k->full || k->pos + n >= k->len) {
		k->full = true;
		return;
	}
	memcpy(k->buf + k->pos, s, n);
	k->pos += n;
}

const char *esc_ctl(const char *s, char *buf, size_t len)
{
	struct sink k = { buf, len, 0, false };

	if (!len)
		return buf;
	walk(s, false, to_buf, &k);
	buf[k.pos] = 0;
	return buf;
}

static void to_file(void *ctx, const char *s, size_t n)
{
	fwrite(s, 1, n, ctx);
}

void esc_put(FILE *f, const char *s)
{
	walk(s, true, to_file, f);
}

static void mark(void *ctx, const char *s, size_t n)
{
	(void)n;
	if (*s == '\\')
		*(bool *)ctx = true;
}

bool esc_needed(const char *s)
{
	bool any = false;

	walk(s, true, mark, &any);
	return any;
}
