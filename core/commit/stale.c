/* stale.c - render, parse and durably update the stale record; see
 * stale.h. */
#include "stale.h"
#include "rectext.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void drop_prot(struct stale_tx *t)
{
	for (int i = 0; i < t->nrd; i++)
		free(t->rd[i].path);
	free(t->rd);
	free(t->prot_top);
	t->rd = NULL;
	t->prot_top = NULL;
	t->nrd = 0;
	t->prot = false;
}

void stale_tx_clear(struct stale_tx *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	t->v = NULL;
	t->n = 0;
	drop_prot(t);
}

void stale_free(struct stale_record *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->ntx; i++)
		stale_tx_clear(&r->tx[i]);
	free(r->tx);
	free(r->base_path);
	free(r);
}

/* ---- text --------------------------------------------------------------- */

/* The prot line and its readers. */
static void render_prot(struct rt_buf *s, const struct stale_tx *t)
{
	rt_add(s, "prot %llu %d", (unsigned long long)t->prot_done, t->nrd);
	rt_str(s, t->prot_top);
	rt_end_line(s);
	for (int k = 0; k < t->nrd; k++) {
		rt_add(s, "reader %llu %llu", (unsigned long long)t->rd[k].dev,
		       (unsigned long long)t->rd[k].ino);
		rt_str(s, t->rd[k].path);
		rt_end_line(s);
	}
}

int stale_render(const struct stale_record *r, char **buf, size_t *len,
		 struct img_err *e)
{
	struct rt_buf s = { 0 };
	int version = 1;

	/* Version 1 unless a prot line needs 2: what earlier imgraphs read. */
	for (int i = 0; i < r->ntx; i++)
		if (r->tx[i].prot)
			version = 2;
	rt_add(&s, "imgraph-stale %d", version);
	rt_end_line(&s);
	rt_add(&s, "base %llu %llu", (unsigned long long)r->base_dev,
	       (unsigned long long)r->base_ino);
	rt_str(&s, r->base_path);
	rt_end_line(&s);
	for (int i = 0; i < r->ntx; i++) {
		const struct stale_tx *t = &r->tx[i];

		rt_add(&s, "tx %016llx %lld %s %llu %llu %d",
		       (unsigned long long)t->txid, (long long)t->created,
		       t->state == STALE_DONE ? "DONE" : "PENDING",
		       (unsigned long long)t->top_dev,
		       (unsigned long long)t->top_ino, t->n);
		rt_end_line(&s);
		for (int k = 0; k < t->n; k++) {
			const struct stale_img *m = &t->v[k];

			rt_add(&s, "img %s %llu %llu",
			       m->role == STALE_TOP ? "top" : "inter",
			       (unsigned long long)m->dev,
			       (unsigned long long)m->ino);
			rt_str(&s, m->path);
			rt_end_line(&s);
		}
		if (t->prot)
			render_prot(&s, t);
	}
	return rt_finish(&s, "stale record", buf, len, e);
}

static int parse_img(struct rt_parser *c, struct stale_img *m)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0 ||
	    (r = rt_expect(c, "img", 5)) < 0)
		return r;
	if (rt_tok_is(&c->f[1], "inter"))
		m->role = STALE_INTER;
	else if (rt_tok_is(&c->f[1], "top"))
		m->role = STALE_TOP;
	else
		return rt_err(c, "unknown image role");
	if (rt_u64(&c->f[2], UINT64_MAX, &m->dev) < 0 ||
	    rt_u64(&c->f[3], UINT64_MAX, &m->ino) < 0)
		return rt_err(c, "img: bad dev/ino");
	return rt_name_field(c, 4, "path", STALE_MAX_STR, &m->path);
}

static int parse_reader(struct rt_parser *c, struct stale_reader *m)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0 ||
	    (r = rt_expect(c, "reader", 4)) < 0)
		return r;
	if (rt_u64(&c->f[1], UINT64_MAX, &m->dev) < 0 ||
	    rt_u64(&c->f[2], UINT64_MAX, &m->ino) < 0)
		return rt_err(c, "reader: bad dev/ino");
	return rt_name_field(c, 3, "path", STALE_MAX_STR, &m->path);
}

/* "prot DONE N TOPPATH" (the next line) and its N readers. */
static int parse_prot(struct rt_parser *c, struct stale_tx *t)
{
	uint64_t v;
	int r;

	if ((r = rt_next_line(c, false)) < 0 ||
	    (r = rt_expect(c, "prot", 4)) < 0)
		return r;
	if (rt_u64(&c->f[1], INT64_MAX, &t->prot_done) < 0)
		return rt_err(c, "prot: bad offset");
	if (rt_u64(&c->f[2], STALE_MAX_IMGS, &v) < 0 ||
	    v > (c->len - c->pos) / 16)
		return rt_err(c, "prot: bad reader count");
	if ((r = rt_name_field(c, 3, "top path", STALE_MAX_STR,
			       &t->prot_top)) < 0)
		return r;
	t->prot = true;
	if (v && !(t->rd = calloc((size_t)v, sizeof(*t->rd))))
		return rt_oom(c);
	for (uint64_t i = 0; i < v; i++) {
		t->nrd = (int)i + 1;
		if ((r = parse_reader(c, &t->rd[i])) < 0)
			return r;
	}
	return 0;
}

static bool next_is(const struct rt_parser *c, const char *key)
{
	size_t n = strlen(key);

	return c->len - c->pos > n && !memcmp(c->buf + c->pos, key, n) &&
	       c->buf[c->pos + n] == ' ';
}

/* "tx TXID CREATED STATE TOPDEV TOPINO N" (the current line), its N
 * images and (version 2) its prot line. */
static int parse_tx(struct rt_parser *c, struct stale_tx *t, int version)
{
	uint64_t v;
	int r;

	if ((r = rt_expect(c, "tx", 7)) < 0)
		return r;
	if (rt_hex64(&c->f[1], &t->txid) < 0)
		return rt_err(c, "bad transaction id");
	if (rt_u64(&c->f[2], INT64_MAX, &v) < 0)
		return rt_err(c, "bad creation time");
	t->created = (int64_t)v;
	if (rt_tok_is(&c->f[3], "PENDING"))
		t->state = STALE_PENDING;
	else if (rt_tok_is(&c->f[3], "DONE"))
		t->state = STALE_DONE;
	else
		return rt_err(c, "unknown state");
	if (rt_u64(&c->f[4], UINT64_MAX, &t->top_dev) < 0 ||
	    rt_u64(&c->f[5], UINT64_MAX, &t->top_ino) < 0)
		return rt_err(c, "tx: bad top dev/ino");
	/* An img line is at least ~30 bytes: a count the rest of the input
	 * cannot hold is refused before allocating. */
	if (rt_u64(&c->f[6], STALE_MAX_IMGS, &v) < 0 ||
	    v > (c->len - c->pos) / 16)
		return rt_err(c, "bad image count");
	if (v && !(t->v = calloc((size_t)v, sizeof(*t->v))))
		return rt_oom(c);
	for (uint64_t i = 0; i < v; i++) {
		t->n = (int)i + 1;
		if ((r = parse_img(c, &t->v[i])) < 0)
			return r;
	}
	if (version >= 2 && next_is(c, "prot"))
		return parse_prot(c, t);
	return 0;
}

static int parse_head(struct rt_parser *c, struct stale_record *s,
		      int *version)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0)
		return r;
	if (c->nf != 2 || !rt_tok_is(&c->f[0], "imgraph-stale"))
		return rt_err(c, "not an imgraph stale record (bad magic)");
	if (rt_tok_is(&c->f[1], "1"))
		*version = 1;
	else if (rt_tok_is(&c->f[1], "2"))
		*version = 2;
	else
		return rt_err(c, "unsupported stale record version");
	if ((r = rt_next_line(c, false)) < 0 ||
	    (r = rt_expect(c, "base", 4)) < 0)
		return r;
	if (rt_u64(&c->f[1], UINT64_MAX, &s->base_dev) < 0 ||
	    rt_u64(&c->f[2], UINT64_MAX, &s->base_ino) < 0)
		return rt_err(c, "base: bad dev/ino");
	return rt_name_field(c, 3, "base path", STALE_MAX_STR, &s->base_path);
}

/* The transactions, up to the "end" line (left for rt_end). */
static int parse_txs(struct rt_parser *c, struct stale_record *s,
		     int version)
{
	while (c->len - c->pos < 4 || memcmp(c->buf + c->pos, "end ", 4)) {
		struct stale_tx *nv;
		int r;

		if (s->ntx == STALE_MAX_TX)
			return rt_err(c, "more than %d transactions",
				      STALE_MAX_TX);
		if ((r = rt_next_line(c, false)) < 0)
			return r;
		nv = realloc(s->tx, sizeof(*nv) * (size_t)(s->ntx + 1));
		if (!nv)
			return rt_oom(c);
		s->tx = nv;
		memset(&nv[s->ntx], 0, sizeof(*nv));
		s->ntx++;
		if ((r = parse_tx(c, &nv[s->ntx - 1], version)) < 0)
			return r;
	}
	return 0;
}

int stale_parse(const char *buf, size_t len, struct stale_record **out,
		struct img_err *e)
{
	struct rt_parser c = { .what = "stale record", .buf = buf, .len = len,
			       .e = e };
	struct stale_record *s;
	int r, version = 1;

	*out = NULL;
	if (len > STALE_MAX_BYTES)
		return err_set(e, EINVAL, "stale record: %zu bytes, more than "
			       "the %u allowed", len, STALE_MAX_BYTES);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "stale record: out of memory");
	if ((r = parse_head(&c, s, &version)) < 0 ||
	    (r = parse_txs(&c, s, version)) < 0 ||
	    (r = rt_end(&c)) < 0) {
		stale_free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* ---- files -------------------------------------------------------------- */

int stale_path_for(const char *base_path, char *out, size_t outlen,
		   struct img_err *e)
{
	const char *slash = strrchr(base_path, '/');
	int n;

	if (slash)
		n = snprintf(out, outlen, "%.*s/%s%s%s",
			     (int)(slash - base_path), base_path,
			     STALE_PREFIX, slash + 1, STALE_SUFFIX);
	else
		n = snprintf(out, outlen, "%s%s%s", STALE_PREFIX, base_path,
			     STALE_SUFFIX);
	if (n < 0 || (size_t)n >= outlen)
		return err_set(e, ENAMETOOLONG, "%s: stale record path too "
			       "long", base_path);
	return 0;
}

int stale_read(const char *path, struct stale_record **out,
	       struct img_err *e)
{
	char *buf;
	size_t len;
	int r;

	*out = NULL;
	r = io_read_file(path, STALE_MAX_BYTES, 1, &buf, &len);
	if (r == -ENOENT)
		return err_set(e, ENOENT, "%s: no stale record", path);
	/* ELOOP: a symlink at the record's name, which we never write. */
	if (r == -EINVAL || r == -EFBIG || r == -ELOOP)
		return err_set(e, EINVAL, "%s: not a plausible stale record "
			       "(type or size)", path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the stale record",
				     path);
	r = stale_parse(buf, len, out, e);
	free(buf);
	if (r < 0)
		err_prefix(e, "%s: ", path);
	return r;
}

static int stale_write(const char *path, const struct stale_record *s,
		       struct img_err *e)
{
	char *buf;
	size_t len;
	int r = stale_render(s, &buf, &len, e);

	if (r < 0)
		return r;
	r = io_replace_file(path, buf, len, 0644, e);
	free(buf);
	if (r < 0)
		err_prefix(e, "stale record: ");
	return r;
}

/* ---- updates ------------------------------------------------------------ */

/* Keep image m unless its path now holds another file. */
static bool img_current(const struct stale_img *m)
{
	struct stat st;

	if (stat(m->path, &st) < 0)
		return true;    /* gone (or unreadable): kept, marks nothing */
	return (uint64_t)st.st_dev == m->dev && (uint64_t)st.st_ino == m->ino;
}

/* Drop replaced images, transactions left empty, earlier PENDING
 * transactions of top (folded into the new one) and the oldest beyond
 * the cap (leaving room for one more). */
static void prune(struct stale_record *s, const struct stale_tx *add)
{
	int k = 0;

	for (int i = 0; i < s->ntx; i++) {
		struct stale_tx *t = &s->tx[i];
		int m = 0;

		for (int j = 0; j < t->n; j++) {
			if (img_current(&t->v[j]))
				t->v[m++] = t->v[j];
			else
				free(t->v[j].path);
		}
		t->n = m;
		if ((!t->n && !t->prot) || (t->state == STALE_PENDING &&
			      t->top_dev == add->top_dev &&
			      t->top_ino == add->top_ino) ||
		    s->ntx - i >= STALE_MAX_TX) {
			stale_tx_clear(t);
			continue;
		}
		s->tx[k++] = *t;
	}
	s->ntx = k;
}

static int readers_copy(struct stale_tx *dst, const struct stale_reader *rd,
			int nrd)
{
	dst->rd = calloc((size_t)nrd + 1, sizeof(*dst->rd));
	dst->nrd = 0;
	if (!dst->rd)
		return -ENOMEM;
	for (int i = 0; i < nrd; i++) {
		dst->rd[i] = rd[i];
		if (!(dst->rd[i].path = strdup(rd[i].path)))
			return -ENOMEM;
		dst->nrd = i + 1;
	}
	return 0;
}

static int tx_copy(struct stale_tx *dst, const struct stale_tx *src)
{
	*dst = *src;
	dst->rd = NULL;
	dst->nrd = 0;
	dst->prot_top = NULL;
	dst->v = calloc((size_t)src->n + 1, sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	if (src->prot && (!(dst->prot_top = strdup(src->prot_top ?
						   src->prot_top : "-")) ||
			  readers_copy(dst, src->rd, src->nrd) < 0))
		return -ENOMEM;
	for (int i = 0; i < src->n; i++) {
		dst->v[i] = src->v[i];
		dst->v[i].path = strdup(src->v[i].path);
		if (!dst->v[i].path) {
			dst->n = i;
			return -ENOMEM;
		}
	}
	return 0;
}

/* The record beside base_path for base, or a new empty one. */
static int load_for(const char *path, const char *base_path,
		    uint64_t base_dev, uint64_t base_ino,
		    struct stale_record **out, struct img_err *e)
{
	struct stale_record *s;
	int r = stale_read(path, &s, e);

	if (r == 0 && s->base_dev == base_dev && s->base_ino == base_ino) {
		*out = s;
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	err_clear(e);
	stale_free(s);          /* another file's record: replaced */
	s = calloc(1, sizeof(*s));
	if (!s || !(s->base_path = strdup(base_path))) {
		stale_free(s);
		return err_set(e, ENOMEM, "stale record: out of memory");
	}
	s->base_dev = base_dev;
	s->base_ino = base_ino;
	*out = s;
	return 0;
}

int stale_begin(const char *base_path, uint64_t base_dev, uint64_t base_ino,
		const struct stale_tx *tx, struct img_err *e)
{
	struct stale_record *s = NULL;
	struct stale_tx *nv;
	char path[PATH_MAX];
	int r = stale_path_for(base_path, path, sizeof(path), e);

	if (r == 0)
		r = load_for(path, base_path, base_dev, base_ino, &s, e);
	if (r < 0)
		return r;
	prune(s, tx);
	nv = realloc(s->tx, sizeof(*nv) * (size_t)(s->ntx + 1));
	if (!nv) {
		stale_free(s);
		return err_set(e, ENOMEM, "stale record: out of memory");
	}
	s->tx = nv;
	r = tx_copy(&nv[s->ntx], tx);
	s->ntx++;
	nv[s->ntx - 1].state = STALE_PENDING;
	if (r < 0)
		r = err_set(e, ENOMEM, "stale record: out of memory");
	else
		r = stale_write(path, s, e);
	stale_free(s);
	return r;
}

/* The record beside base_path, when it is base's (base_dev:base_ino):
 * 1 and *out (stale_free), its path in path; 0 when there is none or it is
 * another file's (left alone); -errno with e filled when it cannot be
 * read. */
static int stale_load_for(const char *base_path, uint64_t base_dev,
			  uint64_t base_ino, char path[PATH_MAX],
			  struct stale_record **out, struct img_err *e)
{
	int r = stale_path_for(base_path, path, PATH_MAX, e);

	*out = NULL;
	if (r == 0)
		r = stale_read(path, out, e);
	if (r == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (r < 0)
		return r;
	if ((*out)->base_dev != base_dev || (*out)->base_ino != base_ino) {
		stale_free(*out);
		*out = NULL;
		return 0;
	}
	return 1;
}

int stale_set_state(const char *base_path, uint64_t base_dev,
		    uint64_t base_ino, uint64_t txid, enum stale_state state,
		    struct img_err *e)
{
	struct stale_record *s;
	char path[PATH_MAX];
	int r = stale_load_for(base_path, base_dev, base_ino, path, &s, e);

	if (r <= 0)
		return r;
	r = 0;
	for (int i = 0; i < s->ntx; i++) {
		if (s->tx[i].txid != txid || s->tx[i].state == state)
			continue;
		s->tx[i].state = state;
		if (state == STALE_DONE)
			drop_prot(&s->tx[i]);   /* the copy is over */
		r = stale_write(path, s, e);
		break;
	}
	stale_free(s);
	return r;
}

int stale_set_prot(const char *base_path, uint64_t base_dev,
		   uint64_t base_ino, uint64_t txid, uint64_t done,
		   const struct stale_reader *rd, int nrd, struct img_err *e)
{
	struct stale_record *s;
	char path[PATH_MAX];
	int r = stale_load_for(base_path, base_dev, base_ino, path, &s, e);

	if (r <= 0)
		return r;
	r = 0;
	for (int i = 0; i < s->ntx; i++) {
		struct stale_tx *t = &s->tx[i];

		if (t->txid != txid || t->state != STALE_PENDING || !t->prot)
			continue;
		for (int k = 0; k < t->nrd; k++)
			free(t->rd[k].path);
		free(t->rd);
		t->prot_done = done;
		r = readers_copy(t, rd, nrd);
		if (r < 0)
			r = err_set(e, ENOMEM, "stale record: out of memory");
		else
			r = stale_write(path, s, e);
		break;
	}
	stale_free(s);
	return r;
}

int stale_find_prot(const char *base_path, uint64_t base_dev,
		    uint64_t base_ino, uint64_t top_dev, uint64_t top_ino,
		    struct stale_tx *out, struct img_err *e)
{
	struct stale_record *s;
	char path[PATH_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	r = stale_load_for(base_path, base_dev, base_ino, path, &s, e);
	if (r <= 0)
		return r;
	r = 0;
	for (int i = s->ntx - 1; i >= 0; i--) {
		const struct stale_tx *t = &s->tx[i];

		if (t->state != STALE_PENDING || !t->prot ||
		    t->top_dev != top_dev || t->top_ino != top_ino)
			continue;
		r = tx_copy(out, t) < 0 ? -ENOMEM : 1;
		if (r < 0) {
			stale_tx_clear(out);
			r = err_set(e, ENOMEM, "stale record: out of memory");
		}
		break;
	}
	stale_free(s);
	return r;
}
