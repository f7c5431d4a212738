/* journal.c - render, parse and durably store the relink journal.
 *
 * The parser is written for hostile input (fuzz/ drives it): every
 * length is checked against the remaining bytes and the caps of journal.h
 * before anything is allocated, and every line carries its own CRC, so a
 * torn or edited journal is refused as a whole.
 */
#include "journal.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

uint32_t journal_crc(const void *buf, size_t len)
{
	return journal_crc_more((uint32_t)crc32(0L, Z_NULL, 0), buf, len);
}

uint32_t journal_crc_more(uint32_t crc, const void *buf, size_t len)
{
	uLong c = crc;
	const Bytef *p = buf;

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	free(j->base_path);
	free(j->base_fmt);
	free(j->top_path);
	free(j->top_fmt);
	free(j->users.path);
	free(j->users.old_data);
	free(j->users.new_data);
	for (int i = 0; i < j->nparents; i++) {
		struct journal_parent *p = &j->parents[i];
		free(p->path);
		free(p->old_bytes);
		free(p->new_bytes);
		free(p->old_name);
		free(p->old_fmt);
		free(p->new_name);
		free(p->new_fmt);
	}
	free(j->parents);
	free(j);
}

/* ---- rendering --------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	size_t line_start;
	int oom;
};

static void sb_reserve(struct sbuf *s, size_t n)
{
	if (s->oom || s->len + n + 1 <= s->cap)
		return;
	size_t nc = s->cap ? s->cap : 4096;
	while (nc < s->len + n + 1)
		nc *= 2;
	char *np = realloc(s->p, nc);
	if (!np) {
		s->oom = 1;
		return;
	}
	s->p = np;
	s->cap = nc;
}

static void sb_add(struct sbuf *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *s, const char *fmt, ...)
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
	sb_reserve(s, (size_t)n);
	if (s->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

static void sb_hex(struct sbuf *s, const void *data, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	const uint8_t *d = data;

	sb_add(s, " ");
	if (!data) {
		sb_add(s, "-");
		return;
	}
	if (n == 0) {           /* empty but present: a lone '=' */
		sb_add(s, "=");
		return;
	}
	sb_reserve(s, 2 * n);
	if (s->oom)
		return;
	for (size_t i = 0; i < n; i++) {
		s->p[s->len++] = hx[d[i] >> 4];
		s->p[s->len++] = hx[d[i] & 15];
	}
	s->p[s->len] = 0;
}

static void sb_str(struct sbuf *s, const char *str)
{
	sb_hex(s, str, str ? strlen(str) : 0);
}

static void sb_end_line(struct sbuf *s)
{
	if (s->oom)
		return;
	uint32_t c = journal_crc(s->p + s->line_start, s->len - s->line_start);
	sb_add(s, " *%08x\n", c);
	s->line_start = s->len;
}

int journal_render(const struct journal *j, char **buf, size_t *len,
		   struct img_err *e)
{
	struct sbuf s = { 0 };

	*buf = NULL;
	*len = 0;
	sb_add(&s, "imgraph-journal %d", JOURNAL_VERSION);
	sb_end_line(&s);
	sb_add(&s, "tx %016llx %lld %s", (unsigned long long)j->txid,
	       (long long)j->created,
	       j->state == JOURNAL_RELINKED ? "RELINKED" : "PREPARED");
	sb_end_line(&s);
	sb_add(&s, "base %llu %llu", (unsigned long long)j->base_dev,
	       (unsigned long long)j->base_ino);
	sb_str(&s, j->base_path);
	sb_str(&s, j->base_fmt);
	sb_end_line(&s);
	sb_add(&s, "top %llu %llu", (unsigned long long)j->top_dev,
	       (unsigned long long)j->top_ino);
	sb_str(&s, j->top_path);
	sb_str(&s, j->top_fmt);
	sb_add(&s, " %d", j->empty_top ? 1 : 0);
	sb_end_line(&s);
	if (j->users.path) {
		sb_add(&s, "users");
		sb_str(&s, j->users.path);
		sb_add(&s, " %08x %08x", j->users.old_crc, j->users.new_crc);
		sb_hex(&s, j->users.old_data, j->users.old_len);
		sb_hex(&s, j->users.new_data, j->users.new_len);
		sb_end_line(&s);
	}
	sb_add(&s, "parents %d", j->nparents);
	sb_end_line(&s);
	for (int i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		sb_add(&s, "parent %d %llu %llu", i,
		       (unsigned long long)p->dev, (unsigned long long)p->ino);
		sb_str(&s, p->path);
		sb_add(&s, " %u %08x %08x %u", p->hdr_len, p->old_crc,
		       p->new_crc, p->off);
		sb_hex(&s, p->old_bytes, p->len);
		sb_hex(&s, p->new_bytes, p->len);
		sb_str(&s, p->old_name);
		sb_str(&s, p->old_fmt);
		sb_str(&s, p->new_name);
		sb_str(&s, p->new_fmt);
		sb_add(&s, " %d", p->relative ? 1 : 0);
		sb_end_line(&s);
	}
	if (!s.oom)
		sb_add(&s, "end %08x\n", journal_crc(s.p, s.len));
	if (s.oom) {
		free(s.p);
		return err_set(e, ENOMEM, "journal: out of memory");
	}
	*buf = s.p;
	*len = s.len;
	return 0;
}

/* ---- parsing ----------------------------------------------------------- */

#define MAX_FIELDS 20

struct tok {
	const char *p;
	size_t n;
};

struct pctx {
	const char *buf;
	size_t len, pos;
	int lineno;
	struct tok f[MAX_FIELDS];
	int nf;
	struct img_err *e;
};

static int perr(struct pctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int perr(struct pctx *c, const char *fmt, ...)
{
	char m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return err_set(c->e, EINVAL, "journal line %d: %s", c->lineno, m);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int parse_hex32(const struct tok *t, uint32_t *out)
{
	uint32_t v = 0;

	if (t->n != 8)
		return -1;
	for (size_t i = 0; i < 8; i++) {
		int h = hexval(t->p[i]);
		if (h < 0)
			return -1;
		v = (v << 4) | (uint32_t)h;
	}
	*out = v;
	return 0;
}

static int parse_u64(const struct tok *t, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (t->n == 0 || t->n > 20 || (t->n > 1 && t->p[0] == '0'))
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return -1;
		unsigned d = (unsigned)(t->p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Bytes field: "-" => NULL (*n = 0, *null = 1), "=" => empty, else hex. */
static int parse_bytes(const struct tok *t, size_t max, uint8_t **out,
		       size_t *n, bool *is_null)
{
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
		*out = malloc(1);
		return *out ? 0 : -2;
	}
	if (t->n % 2 || t->n / 2 > max)
		return -1;
	uint8_t *b = malloc(t->n / 2 + 1);
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

/* A string: no NUL, no newline; "-" => NULL when nullable. */
static int parse_str(struct pctx *c, int i, const char *what, bool nullable,
		     char **out)
{
	uint8_t *b;
	size_t n;
	bool isnull;
	int r = parse_bytes(&c->f[i], JOURNAL_MAX_STR, &b, &n, &isnull);

	*out = NULL;
	if (r == -2)
		return err_set(c->e, ENOMEM, "journal: out of memory");
	if (r < 0 || (isnull && !nullable))
		return perr(c, "field '%s' is not a valid hex string", what);
	if (isnull)
		return 0;
	if (memchr(b, 0, n) || memchr(b, '\n', n) || (n == 0 && !nullable)) {
		free(b);
		return perr(c, "field '%s' holds a NUL, a newline or nothing",
			    what);
	}
	*out = (char *)b;
	return 0;
}

/* Split the next line into fields after checking its CRC.  Returns 0, or
 * -EINVAL.  The "end" line has no per-line CRC and is handled apart. */
static int next_line(struct pctx *c, bool is_end)
{
	const char *s, *nl, *star;
	size_t n;

	c->lineno++;
	if (c->pos >= c->len)
		return perr(c, "unexpected end of journal (truncated)");
	s = c->buf + c->pos;
	nl = memchr(s, '\n', c->len - c->pos);
	if (!nl)
		return perr(c, "line not terminated (truncated)");
	n = (size_t)(nl - s);
	c->pos += n + 1;
	if (!is_end) {
		uint32_t want;
		struct tok t;
		if (n < 11)
			return perr(c, "line too short");
		star = s + n - 10;
		if (star[0] != ' ' || star[1] != '*')
			return perr(c, "line has no CRC");
		t.p = star + 2;
		t.n = 8;
		if (parse_hex32(&t, &want) < 0)
			return perr(c, "malformed line CRC");
		if (journal_crc(s, (size_t)(star - s)) != want)
			return perr(c, "line CRC mismatch");
		n = (size_t)(star - s);
	}
	c->nf = 0;
	for (size_t i = 0; i <= n;) {
		size_t j = i;
		while (j < n && s[j] != ' ')
			j++;
		if (j == i)
			return perr(c, "empty field");
		if (c->nf == MAX_FIELDS)
			return perr(c, "too many fields");
		c->f[c->nf].p = s + i;
		c->f[c->nf].n = j - i;
		c->nf++;
		i = j + 1;
	}
	return 0;
}

static bool tok_is(const struct tok *t, const char *w)
{
	size_t n = strlen(w);
	return t->n == n && !memcmp(t->p, w, n);
}

static int expect(struct pctx *c, const char *key, int nfields)
{
	if (c->nf < 1 || !tok_is(&c->f[0], key))
		return perr(c, "expected a '%s' record", key);
	if (c->nf != nfields)
		return perr(c, "'%s' record has %d fields, expected %d", key,
			    c->nf, nfields);
	return 0;
}

static int parse_parent(struct pctx *c, int idx, struct journal_parent *p)
{
	uint64_t v;
	size_t n1, n2;
	int r;

	if ((r = expect(c, "parent", 16)) < 0)
		return r;
	if (parse_u64(&c->f[1], JOURNAL_MAX_PARENTS, &v) < 0 || (int)v != idx)
		return perr(c, "parent index out of order");
	if (parse_u64(&c->f[2], UINT64_MAX, &p->dev) < 0 ||
	    parse_u64(&c->f[3], UINT64_MAX, &p->ino) < 0)
		return perr(c, "parent %d: bad dev/ino", idx);
	if ((r = parse_str(c, 4, "path", false, &p->path)) < 0)
		return r;
	if (parse_u64(&c->f[5], JOURNAL_MAX_HDRLEN, &v) < 0 || v == 0)
		return perr(c, "parent %d: bad header length", idx);
	p->hdr_len = (uint32_t)v;
	if (parse_hex32(&c->f[6], &p->old_crc) < 0 ||
	    parse_hex32(&c->f[7], &p->new_crc) < 0)
		return perr(c, "parent %d: bad header CRC", idx);
	if (parse_u64(&c->f[8], JOURNAL_MAX_HDRLEN, &v) < 0)
		return perr(c, "parent %d: bad range offset", idx);
	p->off = (uint32_t)v;
	r = parse_bytes(&c->f[9], JOURNAL_MAX_RANGE, &p->old_bytes, &n1, NULL);
	if (r == 0)
		r = parse_bytes(&c->f[10], JOURNAL_MAX_RANGE, &p->new_bytes,
				&n2, NULL);
	if (r == -2)
		return err_set(c->e, ENOMEM, "journal: out of memory");
	if (r < 0)
		return perr(c, "parent %d: bad OLD/NEW bytes", idx);
	if (n1 != n2 || n1 == 0)
		return perr(c, "parent %d: OLD and NEW differ in length", idx);
	if ((uint64_t)p->off + n1 > p->hdr_len)
		return perr(c, "parent %d: range past the header length", idx);
	p->len = (uint32_t)n1;
	if (!memcmp(p->old_bytes, p->new_bytes, n1))
		return perr(c, "parent %d: OLD equals NEW", idx);
	if ((r = parse_str(c, 11, "old name", true, &p->old_name)) < 0 ||
	    (r = parse_str(c, 12, "old format", true, &p->old_fmt)) < 0 ||
	    (r = parse_str(c, 13, "new name", false, &p->new_name)) < 0 ||
	    (r = parse_str(c, 14, "new format", false, &p->new_fmt)) < 0)
		return r;
	if (tok_is(&c->f[15], "0") || tok_is(&c->f[15], "1"))
		p->relative = c->f[15].p[0] == '1';
	else
		return perr(c, "parent %d: bad relative flag", idx);
	return 0;
}

/* "imgraph-journal 1" and "tx TXID CREATED STATE". */
static int parse_head(struct pctx *c, struct journal *j)
{
	uint64_t v;
	int r;

	if ((r = next_line(c, false)) < 0)
		return r;
	if (c->nf != 2 || !tok_is(&c->f[0], "imgraph-journal"))
		return perr(c, "not an imgraph journal (bad magic)");
	if (!tok_is(&c->f[1], "1"))
		return perr(c, "unsupported journal version");
	if ((r = next_line(c, false)) < 0 || (r = expect(c, "tx", 4)) < 0)
		return r;
	if (c->f[1].n != 16)
		return perr(c, "bad transaction id");
	for (int i = 0; i < 16; i++) {
		int h = hexval(c->f[1].p[i]);
		if (h < 0)
			return perr(c, "bad transaction id");
		j->txid = (j->txid << 4) | (uint64_t)h;
	}
	if (parse_u64(&c->f[2], INT64_MAX, &v) < 0)
		return perr(c, "bad creation time");
	j->created = (int64_t)v;
	if (tok_is(&c->f[3], "PREPARED"))
		j->state = JOURNAL_PREPARED;
	else if (tok_is(&c->f[3], "RELINKED"))
		j->state = JOURNAL_RELINKED;
	else
		return perr(c, "unknown state");
	return 0;
}

/* "base DEV INO PATH FMT" and "top DEV INO PATH FMT EMPTY". */
static int parse_base_top(struct pctx *c, struct journal *j)
{
	int r;

	if ((r = next_line(c, false)) < 0 || (r = expect(c, "base", 5)) < 0)
		return r;
	if (parse_u64(&c->f[1], UINT64_MAX, &j->base_dev) < 0 ||
	    parse_u64(&c->f[2], UINT64_MAX, &j->base_ino) < 0)
		return perr(c, "base: bad dev/ino");
	if ((r = parse_str(c, 3, "base path", false, &j->base_path)) < 0 ||
	    (r = parse_str(c, 4, "base format", false, &j->base_fmt)) < 0)
		return r;
	if ((r = next_line(c, false)) < 0 || (r = expect(c, "top", 6)) < 0)
		return r;
	if (parse_u64(&c->f[1], UINT64_MAX, &j->top_dev) < 0 ||
	    parse_u64(&c->f[2], UINT64_MAX, &j->top_ino) < 0)
		return perr(c, "top: bad dev/ino");
	if ((r = parse_str(c, 3, "top path", false, &j->top_path)) < 0 ||
	    (r = parse_str(c, 4, "top format", false, &j->top_fmt)) < 0)
		return r;
	if (!tok_is(&c->f[5], "0") && !tok_is(&c->f[5], "1"))
		return perr(c, "top: bad empty flag");
	j->empty_top = c->f[5].p[0] == '1';
	return 0;
}

/* The optional "users" record; reads the line after it (or after top). */
static int parse_users(struct pctx *c, struct journal_users *u)
{
	int r;

	if ((r = next_line(c, false)) < 0)
		return r;
	if (c->nf < 1 || !tok_is(&c->f[0], "users"))
		return 0;
	if ((r = expect(c, "users", 6)) < 0 ||
	    (r = parse_str(c, 1, "users path", false, &u->path)) < 0)
		return r;
	if (parse_hex32(&c->f[2], &u->old_crc) < 0 ||
	    parse_hex32(&c->f[3], &u->new_crc) < 0)
		return perr(c, "users: bad CRC");
	r = parse_bytes(&c->f[4], JOURNAL_MAX_USERS, &u->old_data,
			&u->old_len, NULL);
	if (r == 0)
		r = parse_bytes(&c->f[5], JOURNAL_MAX_USERS, &u->new_data,
				&u->new_len, NULL);
	if (r == -2)
		return err_set(c->e, ENOMEM, "journal: out of memory");
	if (r < 0 || journal_crc(u->old_data, u->old_len) != u->old_crc ||
	    journal_crc(u->new_data, u->new_len) != u->new_crc)
		return perr(c, "users: content does not match its CRC");
	return next_line(c, false);
}

/* "parents N" (the current line) and the N parent records. */
static int parse_parents(struct pctx *c, struct journal *j)
{
	uint64_t v;
	int r;

	if ((r = expect(c, "parents", 2)) < 0)
		return r;
	if (parse_u64(&c->f[1], JOURNAL_MAX_PARENTS, &v) < 0)
		return perr(c, "bad parent count");
	/* Each parent line is at least ~60 bytes: a count the remaining
	 * input cannot hold is refused before allocating. */
	if (v > (c->len - c->pos) / 32)
		return perr(c, "parent count %llu larger than the journal",
			    (unsigned long long)v);
	if (v) {
		j->parents = calloc((size_t)v, sizeof(*j->parents));
		if (!j->parents)
			return err_set(c->e, ENOMEM, "journal: out of memory");
	}
	for (uint64_t i = 0; i < v; i++) {
		j->nparents = (int)i + 1;
		if ((r = next_line(c, false)) < 0 ||
		    (r = parse_parent(c, (int)i, &j->parents[i])) < 0)
			return r;
	}
	if (v == 0 && !j->users.path && !j->empty_top)
		return perr(c, "journal describes no change");
	return 0;
}

/* "end CRC" over every byte before it, and nothing after. */
static int parse_end(struct pctx *c)
{
	size_t body = c->pos;
	uint32_t want;
	int r;

	if ((r = next_line(c, true)) < 0)
		return r;
	if (c->nf != 2 || !tok_is(&c->f[0], "end") ||
	    parse_hex32(&c->f[1], &want) < 0)
		return perr(c, "expected the 'end' record");
	if (journal_crc(c->buf, body) != want)
		return perr(c, "whole-journal CRC mismatch");
	if (c->pos != c->len)
		return err_set(c->e, EINVAL, "journal: data after the 'end' "
			       "record");
	return 0;
}

/* Two records for one file would make recovery ambiguous. */
static int check_distinct(const struct journal *j, struct img_err *e)
{
	for (int a = 0; a < j->nparents; a++)
		for (int b = a + 1; b < j->nparents; b++)
			if (j->parents[a].dev == j->parents[b].dev &&
			    j->parents[a].ino == j->parents[b].ino)
				return err_set(e, EINVAL, "journal: parents %d "
					       "and %d are the same file", a, b);
	return 0;
}

int journal_parse(const char *buf, size_t len, struct journal **out,
		  struct img_err *e)
{
	struct pctx c = { .buf = buf, .len = len, .e = e };
	struct journal *j;
	int r;

	*out = NULL;
	if (len > JOURNAL_MAX_BYTES)
		return err_set(e, EINVAL, "journal: %zu bytes, more than the "
			       "%llu allowed", len,
			       (unsigned long long)JOURNAL_MAX_BYTES);
	j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, ENOMEM, "journal: out of memory");
	if ((r = parse_head(&c, j)) < 0 ||
	    (r = parse_base_top(&c, j)) < 0 ||
	    (r = parse_users(&c, &j->users)) < 0 ||
	    (r = parse_parents(&c, j)) < 0 ||
	    (r = parse_end(&c)) < 0 ||
	    (r = check_distinct(j, e)) < 0) {
		journal_free(j);
		return r;
	}
	*out = j;
	return 0;
}

/* ---- files ------------------------------------------------------------- */

int journal_path_for(const char *base_path, char *out, size_t outlen,
		     struct img_err *e)
{
	const char *slash = strrchr(base_path, '/');
	int n;

	if (slash)
		n = snprintf(out, outlen, "%.*s/%s%s",
			     (int)(slash - base_path), base_path,
			     JOURNAL_PREFIX, slash + 1);
	else
		n = snprintf(out, outlen, "%s%s", JOURNAL_PREFIX, base_path);
	if (n < 0 || (size_t)n >= outlen)
		return err_set(e, ENAMETOOLONG, "%s: journal path too long",
			       base_path);
	return 0;
}

int journal_write(const char *path, const struct journal *j,
		  struct img_err *e)
{
	char *buf;
	size_t len;
	int r = journal_render(j, &buf, &len, e);

	if (r < 0)
		return r;
	r = io_replace_file(path, buf, len, 0600, e);
	free(buf);
	if (r < 0)
		err_prefix(e, "journal: ");
	return r;
}

int journal_read(const char *path, struct journal **out, struct img_err *e)
{
	char *buf;
	size_t len;
	int r;

	*out = NULL;
	r = io_read_file(path, JOURNAL_MAX_BYTES, 1, &buf, &len);
	/* ELOOP: a symlink at the journal's name, which we never write. */
	if (r == -EINVAL || r == -EFBIG || r == -ELOOP)
		return err_set(e, EINVAL, "%s: not a plausible journal "
			       "(type or size)", path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read journal", path);
	r = journal_parse(buf, len, out, e);
	free(buf);
	if (r < 0)
		err_prefix(e, "%s: ", path);
	return r;
}

int journal_remove(const char *path, struct img_err *e)
{
	int r = io_unlink(path);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot remove journal", path);
	r = io_fsync_dir_of(path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot sync the directory",
				     path);
	return 0;
}
