/* rectext.c - render and parse the line-and-CRC text records; see
 * rectext.h. */
#include "rectext.h"
#include "journal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

static void rt_reserve(struct rt_buf *s, size_t n)
{
	size_t nc;
	char *np;

	if (s->oom || s->len + n + 1 <= s->cap)
		return;
	nc = s->cap ? s->cap : 4096;
	while (nc < s->len + n + 1)
		nc *= 2;
	np = realloc(s->p, nc);
	if (!np) {
		s->oom = 1;
		return;
	}
	s->p = np;
	s->cap = nc;
}

void rt_add(struct rt_buf *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->oom = 1;
		return;
	}
	rt_reserve(s, (size_t)n);
	if (s->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

void rt_hex(struct rt_buf *s, const void *data, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	const uint8_t *d = data;

	rt_add(s, " ");
	if (!data) {
		rt_add(s, "-");
		return;
	}
	if (n == 0) {           /* empty but present: a lone '=' */
		rt_add(s, "=");
		return;
	}
	rt_reserve(s, 2 * n);
	if (s->oom)
		return;
	for (size_t i = 0; i < n; i++) {
		s->p[s->len++] = hx[d[i] >> 4];
		s->p[s->len++] = hx[d[i] & 15];
	}
	s->p[s->len] = 0;
}

void rt_str(struct rt_buf *s, const char *str)
{
	rt_hex(s, str, str ? strlen(str) : 0);
}

void rt_end_line(struct rt_buf *s)
{
	uint32_t c;

	if (s->oom)
		return;
	c = journal_crc(s->p + s->line_start, s->len - s->line_start);
	rt_add(s, " *%08x\n", c);
	s->line_start = s->len;
}

int rt_finish(struct rt_buf *s, const char *what, char **buf, size_t *len,
	      struct img_err *e)
{
	*buf = NULL;
	*len = 0;
	if (!s->oom)
		rt_add(s, "end %08x\n", journal_crc(s->p, s->len));
	if (s->oom) {
		free(s->p);
		s->p = NULL;
		return err_set(e, ENOMEM, "%s: out of memory", what);
	}
	*buf = s->p;
	*len = s->len;
	s->p = NULL;
	return 0;
}

/* ---- parsing ------------------------------------------------------------ */

int rt_err(struct rt_parser *c, const char *fmt, ...)
{
	char m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return err_set(c->e, EINVAL, "%s line %d: %s", c->what, c->lineno, m);
}

int rt_oom(struct rt_parser *c)
{
	return err_set(c->e, ENOMEM, "%s: out of memory", c->what);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int hex_fixed(const struct rt_tok *t, size_t digits, uint64_t *out)
{
	uint64_t v = 0;

	if (t->n != digits)
		return -1;
	for (size_t i = 0; i < digits; i++) {
		int h = hexval(t->p[i]);
		if (h < 0)
			return -1;
		v = (v << 4) | (uint64_t)h;
	}
	*out = v;
	return 0;
}

int rt_hex32(const struct rt_tok *t, uint32_t *out)
{
	uint64_t v;

	if (hex_fixed(t, 8, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int rt_hex64(const struct rt_tok *t, uint64_t *out)
{
	return hex_fixed(t, 16, out);
}

int rt_u64(const struct rt_tok *t, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (t->n == 0 || t->n > 20 || (t->n > 1 && t->p[0] == '0'))
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		unsigned d;

		if (t->p[i] < '0' || t->p[i] > '9')
			return -1;
		d = (unsigned)(t->p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int rt_bytes(const struct rt_tok *t, size_t max, uint8_t **out, size_t *n,
	     bool *is_null)
{
	uint8_t *b;

	*out = NULL;
	*n = 0;
	if (is_null)
		*is_null = false;
	if (t->n == 1 && t->p[0] == '-') {
		if (!is_null)
			return -1;
		*is_null = true;
		return 0;
	}
	if (t->n == 1 && t->p[0] == '=') {
		*out = calloc(1, 1);
		return *out ? 0 : -2;
	}
	if (t->n % 2 || t->n / 2 > max)
		return -1;
	b = malloc(t->n / 2 + 1);
	if (!b)
		return -2;
	for (size_t i = 0; i < t->n / 2; i++) {
		int hi = hexval(t->p[2 * i]), lo = hexval(t->p[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(b);
			return -1;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	b[t->n / 2] = 0;
	*out = b;
	*n = t->n / 2;
	return 0;
}

int rt_str_field(struct rt_parser *c, int i, const char *name, bool nullable,
		 size_t max, char **out)
{
	uint8_t *b;
	size_t n;
	bool isnull;
	int r = rt_bytes(&c->f[i], max, &b, &n, &isnull);

	*out = NULL;
	if (r == -2)
		return rt_oom(c);
	if (r < 0 || (isnull && !nullable))
		return rt_err(c, "field '%s' is not a valid hex string", name);
	if (isnull)
		return 0;
	if (memchr(b, 0, n) || memchr(b, '\n', n) || (n == 0 && !nullable)) {
		free(b);
		return rt_err(c, "field '%s' holds a NUL, a newline or nothing",
			      name);
	}
	*out = (char *)b;
	return 0;
}

int rt_name_field(struct rt_parser *c, int i, const char *name, size_t max,
		  char **out)
{
	uint8_t *b;
	size_t n;
	int r = rt_bytes(&c->f[i], max, &b, &n, NULL);

	*out = NULL;
	if (r == -2)
		return rt_oom(c);
	if (r < 0)
		return rt_err(c, "field '%s' is not a valid hex string", name);
	if (!n || memchr(b, 0, n)) {
		free(b);
		return rt_err(c, "field '%s' is empty or holds a NUL", name);
	}
	*out = (char *)b;
	return 0;
}

/* The CRC of a line that has one ("... *CRC"): *n becomes the length of
 * the text before " *". */
static int line_crc(struct rt_parser *c, const char *s, size_t *n)
{
	const char *star;
	struct rt_tok t;
	uint32_t want;

	if (*n < 11)
		return rt_err(c, "line too short");
	star = s + *n - 10;
	if (star[0] != ' ' || star[1] != '*')
		return rt_err(c, "line has no CRC");
	t.p = star + 2;
	t.n = 8;
	if (rt_hex32(&t, &want) < 0)
		return rt_err(c, "malformed line CRC");
	if (journal_crc(s, (size_t)(star - s)) != want)
		return rt_err(c, "line CRC mismatch");
	*n = (size_t)(star - s);
	return 0;
}

int rt_next_line(struct rt_parser *c, bool is_end)
{
	const char *s, *nl;
	size_t n;
	int r;

	c->lineno++;
	if (c->pos >= c->len)
		return rt_err(c, "unexpected end of %s (truncated)", c->what);
	s = c->buf + c->pos;
	nl = memchr(s, '\n', c->len - c->pos);
	if (!nl)
		return rt_err(c, "line not terminated (truncated)");
	n = (size_t)(nl - s);
	c->pos += n + 1;
	if (!is_end && (r = line_crc(c, s, &n)) < 0)
		return r;
	c->nf = 0;
	for (size_t i = 0; i <= n;) {
		size_t j = i;
		while (j < n && s[j] != ' ')
			j++;
		if (j == i)
			return rt_err(c, "empty field");
		if (c->nf == RT_MAX_FIELDS)
			return rt_err(c, "too many fields");
		c->f[c->nf].p = s + i;
		c->f[c->nf].n = j - i;
		c->nf++;
		i = j + 1;
	}
	return 0;
}

bool rt_tok_is(const struct rt_tok *t, const char *w)
{
	size_t n = strlen(w);

	return t->n == n && !memcmp(t->p, w, n);
}

int rt_expect(struct rt_parser *c, const char *key, int nfields)
{
	if (c->nf < 1 || !rt_tok_is(&c->f[0], key))
		return rt_err(c, "expected a '%s' record", key);
	if (c->nf != nfields)
		return rt_err(c, "'%s' record has %d fields, expected %d", key,
			      c->nf, nfields);
	return 0;
}

int rt_end(struct rt_parser *c)
{
	size_t body = c->pos;
	uint32_t want;
	int r;

	if ((r = rt_next_line(c, true)) < 0)
		return r;
	if (c->nf != 2 || !rt_tok_is(&c->f[0], "end") ||
	    rt_hex32(&c->f[1], &want) < 0)
		return rt_err(c, "expected the 'end' record");
	if (journal_crc(c->buf, body) != want)
		return rt_err(c, "the CRC of the whole %s does not match",
			      c->what);
	if (c->pos != c->len)
		return err_set(c->e, EINVAL, "%s: data after the 'end' record",
			       c->what);
	return 0;
}
