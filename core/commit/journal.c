/* journal.c - render, parse and durably store the relink journal.
 *
 * The parser is written for hostile input (fuzz/ drives it): every
 * length is checked against the remaining bytes and the caps of journal.h
 * before anything is allocated, and every line carries its own CRC, so a
 * torn or edited journal is refused as a whole (the text form: rectext.h).
 */
#include "journal.h"
#include "rectext.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <errno.h>
#include <limits.h>
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
	free(j->live.job_id);
	free(j->live.qmp);
	for (int i = 0; i < j->live.nlp; i++)
		free(j->live.lp[i].path);
	free(j->live.lp);
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

int journal_render(const struct journal *j, char **buf, size_t *len,
		   struct img_err *e)
{
	struct rt_buf s = { 0 };

	*buf = NULL;
	*len = 0;
	rt_add(&s, "imgraph-journal %d", JOURNAL_VERSION);
	rt_end_line(&s);
	rt_add(&s, "tx %016llx %lld %s", (unsigned long long)j->txid,
	       (long long)j->created,
	       j->state == JOURNAL_RELINKED ? "RELINKED" : "PREPARED");
	rt_end_line(&s);
	rt_add(&s, "base %llu %llu", (unsigned long long)j->base_dev,
	       (unsigned long long)j->base_ino);
	rt_str(&s, j->base_path);
	rt_str(&s, j->base_fmt);
	rt_end_line(&s);
	rt_add(&s, "top %llu %llu", (unsigned long long)j->top_dev,
	       (unsigned long long)j->top_ino);
	rt_str(&s, j->top_path);
	rt_str(&s, j->top_fmt);
	rt_add(&s, " %d", j->empty_top ? 1 : 0);
	rt_end_line(&s);
	if (j->users.path) {
		rt_add(&s, "users");
		rt_str(&s, j->users.path);
		rt_add(&s, " %08x %08x", j->users.old_crc, j->users.new_crc);
		rt_hex(&s, j->users.old_data, j->users.old_len);
		rt_hex(&s, j->users.new_data, j->users.new_len);
		rt_end_line(&s);
	}
	if (j->live.present) {
		rt_add(&s, "live %lld", (long long)j->live.pid);
		rt_str(&s, j->live.job_id);
		rt_add(&s, " %s %d", j->live.finalized ? "FINALIZED" : "STARTED",
		       j->live.active ? 1 : 0);
		rt_str(&s, j->live.qmp);
		rt_add(&s, " %d", j->live.nlp);
		rt_end_line(&s);
		for (int i = 0; i < j->live.nlp; i++) {
			rt_add(&s, "lparent %d %llu %llu", i,
			       (unsigned long long)j->live.lp[i].dev,
			       (unsigned long long)j->live.lp[i].ino);
			rt_str(&s, j->live.lp[i].path);
			rt_end_line(&s);
		}
	}
	rt_add(&s, "parents %d", j->nparents);
	rt_end_line(&s);
	for (int i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		rt_add(&s, "parent %d %llu %llu", i,
		       (unsigned long long)p->dev, (unsigned long long)p->ino);
		rt_str(&s, p->path);
		rt_add(&s, " %u %08x %08x %u", p->hdr_len, p->old_crc,
		       p->new_crc, p->off);
		rt_hex(&s, p->old_bytes, p->len);
		rt_hex(&s, p->new_bytes, p->len);
		rt_str(&s, p->old_name);
		rt_str(&s, p->old_fmt);
		rt_str(&s, p->new_name);
		rt_str(&s, p->new_fmt);
		rt_add(&s, " %d", p->relative ? 1 : 0);
		rt_end_line(&s);
	}
	return rt_finish(&s, "journal", buf, len, e);
}

/* ---- parsing ----------------------------------------------------------- */

/* A string field of the journal (at most JOURNAL_MAX_STR bytes). */
static int parse_str(struct rt_parser *c, int i, const char *what,
		     bool nullable, char **out)
{
	return rt_str_field(c, i, what, nullable, JOURNAL_MAX_STR, out);
}

static int parse_parent(struct rt_parser *c, int idx, struct journal_parent *p)
{
	uint64_t v;
	size_t n1, n2;
	int r;

	if ((r = rt_expect(c, "parent", 16)) < 0)
		return r;
	if (rt_u64(&c->f[1], JOURNAL_MAX_PARENTS, &v) < 0 || (int)v != idx)
		return rt_err(c, "parent index out of order");
	if (rt_u64(&c->f[2], UINT64_MAX, &p->dev) < 0 ||
	    rt_u64(&c->f[3], UINT64_MAX, &p->ino) < 0)
		return rt_err(c, "parent %d: bad dev/ino", idx);
	if ((r = parse_str(c, 4, "path", false, &p->path)) < 0)
		return r;
	if (rt_u64(&c->f[5], JOURNAL_MAX_HDRLEN, &v) < 0 || v == 0)
		return rt_err(c, "parent %d: bad header length", idx);
	p->hdr_len = (uint32_t)v;
	if (rt_hex32(&c->f[6], &p->old_crc) < 0 ||
	    rt_hex32(&c->f[7], &p->new_crc) < 0)
		return rt_err(c, "parent %d: bad header CRC", idx);
	if (rt_u64(&c->f[8], JOURNAL_MAX_HDRLEN, &v) < 0)
		return rt_err(c, "parent %d: bad range offset", idx);
	p->off = (uint32_t)v;
	r = rt_bytes(&c->f[9], JOURNAL_MAX_RANGE, &p->old_bytes, &n1, NULL);
	if (r == 0)
		r = rt_bytes(&c->f[10], JOURNAL_MAX_RANGE, &p->new_bytes,
				&n2, NULL);
	if (r == -2)
		return rt_oom(c);
	if (r < 0)
		return rt_err(c, "parent %d: bad OLD/NEW bytes", idx);
	if (n1 != n2 || n1 == 0)
		return rt_err(c, "parent %d: OLD and NEW differ in length", idx);
	if ((uint64_t)p->off + n1 > p->hdr_len)
		return rt_err(c, "parent %d: range past the header length", idx);
	p->len = (uint32_t)n1;
	if (!memcmp(p->old_bytes, p->new_bytes, n1))
		return rt_err(c, "parent %d: OLD equals NEW", idx);
	if ((r = parse_str(c, 11, "old name", true, &p->old_name)) < 0 ||
	    (r = parse_str(c, 12, "old format", true, &p->old_fmt)) < 0 ||
	    (r = parse_str(c, 13, "new name", false, &p->new_name)) < 0 ||
	    (r = parse_str(c, 14, "new format", false, &p->new_fmt)) < 0)
		return r;
	if (rt_tok_is(&c->f[15], "0") || rt_tok_is(&c->f[15], "1"))
		p->relative = c->f[15].p[0] == '1';
	else
		return rt_err(c, "parent %d: bad relative flag", idx);
	return 0;
}

/* "imgraph-journal 1" and "tx TXID CREATED STATE". */
static int parse_head(struct rt_parser *c, struct journal *j)
{
	uint64_t v;
	int r;

	if ((r = rt_next_line(c, false)) < 0)
		return r;
	if (c->nf != 2 || !rt_tok_is(&c->f[0], "imgraph-journal"))
		return rt_err(c, "not an imgraph journal (bad magic)");
	if (!rt_tok_is(&c->f[1], "1"))
		return rt_err(c, "unsupported journal version");
	if ((r = rt_next_line(c, false)) < 0 || (r = rt_expect(c, "tx", 4)) < 0)
		return r;
	if (rt_hex64(&c->f[1], &j->txid) < 0)
		return rt_err(c, "bad transaction id");
	if (rt_u64(&c->f[2], INT64_MAX, &v) < 0)
		return rt_err(c, "bad creation time");
	j->created = (int64_t)v;
	if (rt_tok_is(&c->f[3], "PREPARED"))
		j->state = JOURNAL_PREPARED;
	else if (rt_tok_is(&c->f[3], "RELINKED"))
		j->state = JOURNAL_RELINKED;
	else
		return rt_err(c, "unknown state");
	return 0;
}

/* "base DEV INO PATH FMT" and "top DEV INO PATH FMT EMPTY". */
static int parse_base_top(struct rt_parser *c, struct journal *j)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0 || (r = rt_expect(c, "base", 5)) < 0)
		return r;
	if (rt_u64(&c->f[1], UINT64_MAX, &j->base_dev) < 0 ||
	    rt_u64(&c->f[2], UINT64_MAX, &j->base_ino) < 0)
		return rt_err(c, "base: bad dev/ino");
	if ((r = parse_str(c, 3, "base path", false, &j->base_path)) < 0 ||
	    (r = parse_str(c, 4, "base format", false, &j->base_fmt)) < 0)
		return r;
	if ((r = rt_next_line(c, false)) < 0 || (r = rt_expect(c, "top", 6)) < 0)
		return r;
	if (rt_u64(&c->f[1], UINT64_MAX, &j->top_dev) < 0 ||
	    rt_u64(&c->f[2], UINT64_MAX, &j->top_ino) < 0)
		return rt_err(c, "top: bad dev/ino");
	if ((r = parse_str(c, 3, "top path", false, &j->top_path)) < 0 ||
	    (r = parse_str(c, 4, "top format", false, &j->top_fmt)) < 0)
		return r;
	if (!rt_tok_is(&c->f[5], "0") && !rt_tok_is(&c->f[5], "1"))
		return rt_err(c, "top: bad empty flag");
	j->empty_top = c->f[5].p[0] == '1';
	return 0;
}

/* The optional "users" record; reads the line after it (or after top). */
static int parse_users(struct rt_parser *c, struct journal_users *u)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0)
		return r;
	if (c->nf < 1 || !rt_tok_is(&c->f[0], "users"))
		return 0;
	if ((r = rt_expect(c, "users", 6)) < 0 ||
	    (r = parse_str(c, 1, "users path", false, &u->path)) < 0)
		return r;
	if (rt_hex32(&c->f[2], &u->old_crc) < 0 ||
	    rt_hex32(&c->f[3], &u->new_crc) < 0)
		return rt_err(c, "users: bad CRC");
	r = rt_bytes(&c->f[4], JOURNAL_MAX_USERS, &u->old_data,
			&u->old_len, NULL);
	if (r == 0)
		r = rt_bytes(&c->f[5], JOURNAL_MAX_USERS, &u->new_data,
				&u->new_len, NULL);
	if (r == -2)
		return rt_oom(c);
	if (r < 0 || journal_crc(u->old_data, u->old_len) != u->old_crc ||
	    journal_crc(u->new_data, u->new_len) != u->new_crc)
		return rt_err(c, "users: content does not match its CRC");
	return rt_next_line(c, false);
}

/* The optional "live" record and its lparent lines (the current line
 * is "live" or what follows); reads the line after them. */
static int parse_live(struct rt_parser *c, struct journal_live *l)
{
	uint64_t v;
	int r;

	if (c->nf < 1 || !rt_tok_is(&c->f[0], "live"))
		return 0;
	if ((r = rt_expect(c, "live", 7)) < 0)
		return r;
	l->present = true;
	if (rt_u64(&c->f[1], INT32_MAX, &v) < 0 || v == 0)
		return rt_err(c, "live: bad PID");
	l->pid = (int64_t)v;
	if ((r = parse_str(c, 2, "job id", false, &l->job_id)) < 0)
		return r;
	if (rt_tok_is(&c->f[3], "STARTED") || rt_tok_is(&c->f[3], "FINALIZED"))
		l->finalized = rt_tok_is(&c->f[3], "FINALIZED");
	else
		return rt_err(c, "live: unknown stage");
	if (!rt_tok_is(&c->f[4], "0") && !rt_tok_is(&c->f[4], "1"))
		return rt_err(c, "live: bad active flag");
	l->active = c->f[4].p[0] == '1';
	if ((r = parse_str(c, 5, "QMP socket", false, &l->qmp)) < 0)
		return r;
	if (rt_u64(&c->f[6], JOURNAL_MAX_LIVE, &v) < 0 ||
	    v > (c->len - c->pos) / 16)
		return rt_err(c, "live: bad overlay count");
	if (v && !(l->lp = calloc((size_t)v, sizeof(*l->lp))))
		return rt_oom(c);
	for (uint64_t i = 0; i < v; i++) {
		struct journal_lparent *lp = &l->lp[i];

		l->nlp = (int)i + 1;
		if ((r = rt_next_line(c, false)) < 0 ||
		    (r = rt_expect(c, "lparent", 5)) < 0)
			return r;
		if (rt_u64(&c->f[1], JOURNAL_MAX_LIVE, &v) < 0 || v != i)
			return rt_err(c, "lparent index out of order");
		if (rt_u64(&c->f[2], UINT64_MAX, &lp->dev) < 0 ||
		    rt_u64(&c->f[3], UINT64_MAX, &lp->ino) < 0)
			return rt_err(c, "lparent %d: bad dev/ino", (int)i);
		if ((r = parse_str(c, 4, "path", false, &lp->path)) < 0)
			return r;
	}
	return rt_next_line(c, false);
}

/* "parents N" (the current line) and the N parent records. */
static int parse_parents(struct rt_parser *c, struct journal *j)
{
	uint64_t v;
	int r;

	if ((r = rt_expect(c, "parents", 2)) < 0)
		return r;
	if (rt_u64(&c->f[1], JOURNAL_MAX_PARENTS, &v) < 0)
		return rt_err(c, "bad parent count");
	/* Each parent line is at least ~60 bytes: a count the remaining
	 * input cannot hold is refused before allocating. */
	if (v > (c->len - c->pos) / 32)
		return rt_err(c, "parent count %llu larger than the journal",
			    (unsigned long long)v);
	if (v) {
		j->parents = calloc((size_t)v, sizeof(*j->parents));
		if (!j->parents)
			return rt_oom(c);
	}
	for (uint64_t i = 0; i < v; i++) {
		j->nparents = (int)i + 1;
		if ((r = rt_next_line(c, false)) < 0 ||
		    (r = parse_parent(c, (int)i, &j->parents[i])) < 0)
			return r;
	}
	if (v == 0 && !j->users.path && !j->empty_top && !j->live.present)
		return rt_err(c, "journal describes no change");
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
	struct rt_parser c = { .what = "journal", .buf = buf, .len = len,
				.e = e };
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
	    (r = parse_live(&c, &j->live)) < 0 ||
	    (r = parse_parents(&c, j)) < 0 ||
	    (r = rt_end(&c)) < 0 ||
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
