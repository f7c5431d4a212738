/* trash.c - the trash record and moving files into the trash; see
 * trash.h (putting back and purging: trash_undo.c). */
#include "trash_int.h"
#include "rectext.h"
#include "formats/io/io.h"
#include "core/graph/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the record --------------------------------------------------------- */

void trash_record_free(struct trash_record *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	free(r->base);
	free(r);
}

int trash_render(const struct trash_record *r, char **buf, size_t *len,
		 struct img_err *e)
{
	struct rt_buf s = { 0 };

	rt_add(&s, "imgraph-trash 1");
	rt_end_line(&s);
	rt_add(&s, "tx %016llx %lld", (unsigned long long)r->txid,
	       (long long)r->created);
	rt_str(&s, r->base);
	rt_add(&s, " %d", r->n);
	rt_end_line(&s);
	for (int i = 0; i < r->n; i++) {
		rt_add(&s, "file");
		rt_str(&s, r->v[i].name);
		rt_add(&s, " %llu %llu %llu", (unsigned long long)r->v[i].dev,
		       (unsigned long long)r->v[i].ino,
		       (unsigned long long)r->v[i].size);
		rt_end_line(&s);
	}
	return rt_finish(&s, "trash record", buf, len, e);
}

static int parse_file(struct rt_parser *c, struct trash_file *f)
{
	int r;

	if ((r = rt_next_line(c, false)) < 0 ||
	    (r = rt_expect(c, "file", 5)) < 0 ||
	    (r = rt_name_field(c, 1, "name", NAME_MAX, &f->name)) < 0)
		return r;
	if (strchr(f->name, '/') || !strcmp(f->name, ".") ||
	    !strcmp(f->name, ".."))
		return rt_err(c, "file name is not one path component");
	if (rt_u64(&c->f[2], UINT64_MAX, &f->dev) < 0 ||
	    rt_u64(&c->f[3], UINT64_MAX, &f->ino) < 0 ||
	    rt_u64(&c->f[4], INT64_MAX, &f->size) < 0)
		return rt_err(c, "file: bad dev/ino/size");
	return 0;
}

static int parse_body(struct rt_parser *c, struct trash_record *t)
{
	uint64_t v;
	int r;

	if ((r = rt_next_line(c, false)) < 0)
		return r;
	if (c->nf != 2 || !rt_tok_is(&c->f[0], "imgraph-trash") ||
	    !rt_tok_is(&c->f[1], "1"))
		return rt_err(c, "not an imgraph trash record (bad magic or "
			      "version)");
	if ((r = rt_next_line(c, false)) < 0 || (r = rt_expect(c, "tx", 5)) < 0)
		return r;
	if (rt_hex64(&c->f[1], &t->txid) < 0)
		return rt_err(c, "bad transaction id");
	if (rt_u64(&c->f[2], INT64_MAX, &v) < 0)
		return rt_err(c, "bad creation time");
	t->created = (int64_t)v;
	if ((r = rt_name_field(c, 3, "base", PATH_MAX, &t->base)) < 0)
		return r;
	if (rt_u64(&c->f[4], TRASH_MAX_FILES, &v) < 0 ||
	    v > (c->len - c->pos) / 16)
		return rt_err(c, "bad file count");
	if (v && !(t->v = calloc((size_t)v, sizeof(*t->v))))
		return rt_oom(c);
	for (uint64_t i = 0; i < v; i++) {
		t->n = (int)i + 1;
		if ((r = parse_file(c, &t->v[i])) < 0)
			return r;
	}
	return rt_end(c);
}

int trash_parse(const char *buf, size_t len, struct trash_record **out,
		struct img_err *e)
{
	struct rt_parser c = { .what = "trash record", .buf = buf, .len = len,
			       .e = e };
	struct trash_record *t;
	int r;

	*out = NULL;
	if (len > TRASH_MAX_BYTES)
		return err_set(e, EINVAL, "trash record: %zu bytes, more than "
			       "the %u allowed", len, TRASH_MAX_BYTES);
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(e, ENOMEM, "trash record: out of memory");
	r = parse_body(&c, t);
	if (r < 0) {
		trash_record_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* ---- shared steps ------------------------------------------------------- */

void trash_txname(uint64_t txid, char *buf, size_t len)
{
	snprintf(buf, len, "%016llx", (unsigned long long)txid);
}

const char *trash_split(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
	return slash ? slash + 1 : path;
}

int trash_open(int dfd, const char *dir, bool create, bool *created,
	       struct img_err *e)
{
	struct stat ds, ts;
	int r, tfd;

	*created = false;
	if (create) {
		r = io_mkdirat(dfd, TRASH_DIR, 0700);
		if (r < 0 && r != -EEXIST)
			return err_set_errno(e, -r, "%s/%s: cannot create the "
					     "trash", dir, TRASH_DIR);
		*created = r == 0;
	}
	tfd = io_openat(dfd, TRASH_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
			0);
	if (tfd == -ENOENT && !create)
		return -ENOENT;
	if (tfd < 0)
		return err_set_errno(e, -tfd, "%s/%s: cannot open the trash "
				     "(a symlink there is never followed)",
				     dir, TRASH_DIR);
	if (io_fstat(dfd, &ds) < 0 || io_fstat(tfd, &ts) < 0 ||
	    ts.st_uid != geteuid() || (ts.st_mode & 022) ||
	    ts.st_dev != ds.st_dev) {
		io_close(tfd);
		return err_set(e, EPERM, "%s/%s: not a private directory of "
			       "ours on the file system of %s; refusing to "
			       "use it as the trash", dir, TRASH_DIR, dir);
	}
	return tfd;
}

int trash_read_record(int tfd, const char *name, struct trash_record **out,
		      struct img_err *e)
{
	struct stat st;
	char *buf = NULL;
	int fd, r;

	*out = NULL;
	fd = io_openat(tfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s/%s: cannot open", TRASH_DIR,
				     name);
	r = io_fstat(fd, &st);
	if (r == 0 && (!S_ISREG(st.st_mode) || st.st_size > TRASH_MAX_BYTES))
		r = -EINVAL;
	if (r == 0 && !(buf = malloc((size_t)st.st_size + 1)))
		r = -ENOMEM;
	if (r == 0)
		r = io_pread_full(fd, buf, (size_t)st.st_size, 0);
	io_close(fd);
	if (r == 0)
		r = trash_parse(buf, (size_t)st.st_size, out, e);
	else
		err_set_errno(e, -r, "%s/%s: cannot read the record",
			      TRASH_DIR, name);
	free(buf);
	return r;
}

/* ---- moving in ---------------------------------------------------------- */

void trash_report_free(struct trash_report *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		free(r->v[i].path);
		free(r->v[i].trash);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* May name (in dfd) move?  0: yes (*st filled), 1: no (why filled),
 * -errno: we could not look. */
static int file_check(int dfd, const char *name, const struct trash_req *q,
		      struct stat *st, char *why, size_t wlen,
		      struct img_err *e)
{
	dev_t dev = (dev_t)q->dev;
	ino_t ino = (ino_t)q->ino;
	struct lock_opener *op = NULL;
	struct lock_state ls = { 0 };
	int fd, no = 0, r;

	fd = io_openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		       O_NOCTTY, 0);
	if (fd < 0) {
		snprintf(why, wlen, "%s", fd == -ELOOP ? "it is a symlink "
			 "(remove it by hand)" : strerror(-fd));
		return 1;
	}
	if (io_fstat(fd, st) < 0 || !S_ISREG(st->st_mode) ||
	    st->st_dev != dev || st->st_ino != ino) {
		io_close(fd);
		snprintf(why, wlen, "it is no longer the file the commit "
			 "read (dev:ino changed)");
		return 1;
	}
	r = lock_probe_fd(fd, &ls);
	io_close(fd);
	if (r == 0 && (ls.held || ls.unshared)) {
		snprintf(why, wlen, "a process holds QEMU's locks on it");
		return 1;
	}
	r = lock_find_openers(&dev, &ino, 1, &op, &no, e);
	if (r < 0)
		return r;
	if (no)
		snprintf(why, wlen, "process %d (%s) has it open", (int)op[0].pid,
			 op[0].comm[0] ? op[0].comm : "?");
	free(op);
	return no ? 1 : 0;
}

/* One directory's share of a trash_move. */
struct move_dir {
	char dir[PATH_MAX];
	int dfd, tfd, xfd;
	bool made_trash, made_tx, made_rec;   /* by this move, for undo */
	int *idx;                  /* request indexes in this directory */
	int n;
	struct trash_record rec;
};

static int outcome_init(struct trash_report *rep, const struct trash_req *v,
			int n)
{
	rep->v = calloc((size_t)n + 1, sizeof(*rep->v));
	if (!rep->v)
		return -ENOMEM;
	rep->n = n;
	for (int i = 0; i < n; i++)
		if (!(rep->v[i].path = strdup(v[i].path)))
			return -ENOMEM;
	return 0;
}

/* Pre-check every file of md; the ones that may move go into md->rec. */
static int group_check(struct move_dir *md, const struct trash_req *v,
		       struct trash_report *rep, struct img_err *e)
{
	md->rec.v = calloc((size_t)md->n, sizeof(*md->rec.v));
	if (!md->rec.v)
		return err_set(e, ENOMEM, "trash: out of memory");
	for (int k = 0; k < md->n; k++) {
		struct trash_outcome *o = &rep->v[md->idx[k]];
		const char *name = strrchr(o->path, '/');
		struct trash_file *f = &md->rec.v[md->rec.n];
		struct stat st;
		int r;

		name = name ? name + 1 : o->path;
		r = file_check(md->dfd, name, &v[md->idx[k]], &st, o->why,
			       sizeof(o->why), e);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (!(f->name = strdup(name)))
			return err_set(e, ENOMEM, "trash: out of memory");
		f->dev = (uint64_t)st.st_dev;
		f->ino = (uint64_t)st.st_ino;
		f->size = (uint64_t)st.st_blocks * 512;
		md->rec.n++;
	}
	return 0;
}

/* The transaction's directory and its record, durable before any file
 * moves. */
static int group_prepare(struct move_dir *md, struct img_err *e)
{
	char tx[32], rec[48], *buf;
	bool created;
	size_t len;
	int fd, r;

	md->tfd = trash_open(md->dfd, md->dir, true, &created, e);
	if (md->tfd < 0)
		return md->tfd;
	md->made_trash = created;
	if (created && (r = io_fsync(md->dfd)) < 0)
		return err_set_errno(e, -r, "%s: cannot sync", md->dir);
	trash_txname(md->rec.txid, tx, sizeof(tx));
	snprintf(rec, sizeof(rec), "%s%s", tx, TRASH_REC_SUFFIX);
	r = io_mkdirat(md->tfd, tx, 0700);
	if (r < 0)
		return err_set_errno(e, -r, "%s/%s/%s: cannot create", md->dir,
				     TRASH_DIR, tx);
	md->made_tx = true;
	md->xfd = io_openat(md->tfd, tx, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
			    0);
	if (md->xfd < 0)
		return err_set_errno(e, -md->xfd, "%s/%s/%s: cannot open",
				     md->dir, TRASH_DIR, tx);
	if ((r = trash_render(&md->rec, &buf, &len, e)) < 0)
		return r;
	fd = io_openat(md->tfd, rec, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
		       0600);
	md->made_rec = fd >= 0;
	r = fd < 0 ? fd : io_pwrite(fd, buf, len, 0);
	if (r == 0)
		r = io_fsync(fd);
	if (fd >= 0)
		io_close(fd);
	free(buf);
	if (r == 0)
		r = io_fsync(md->tfd);
	if (r < 0)
		return err_set_errno(e, -r, "%s/%s/%s: cannot write the record",
				     md->dir, TRASH_DIR, rec);
	return 0;
}

/* Re-check one file just before it moves, then rename it into the
 * transaction's directory (never over anything). */
static int move_one(struct move_dir *md, const struct trash_file *f,
		    const struct trash_req *q, struct trash_outcome *o,
		    struct img_err *e)
{
	char tx[32];
	struct stat st;
	int r = file_check(md->dfd, f->name, q, &st, o->why, sizeof(o->why),
			   e);

	if (r != 0)
		return r < 0 ? r : 0;
	r = io_renameat(md->dfd, f->name, md->xfd, f->name, 1);
	if (r < 0)
		return err_set_errno(e, -r, "%s/%s: cannot move into the trash",
				     md->dir, f->name);
	if (fstatat(md->xfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino) {
		/* swapped between the check and the rename: put it back */
		io_renameat(md->xfd, f->name, md->dfd, f->name, 1);
		snprintf(o->why, sizeof(o->why), "it changed while being moved");
		return 0;
	}
	trash_txname(md->rec.txid, tx, sizeof(tx));
	if (asprintf(&o->trash, "%s/%s/%s/%s", md->dir, TRASH_DIR, tx,
		     f->name) < 0)
		o->trash = NULL;
	o->moved = true;
	o->bytes = f->size;
	return 0;
}

static int group_move(struct move_dir *md, const struct trash_req *v,
		      struct trash_report *rep, struct img_err *e)
{
	int r = 0, sr;

	for (int k = 0; k < md->n && r == 0; k++) {
		struct trash_outcome *o = &rep->v[md->idx[k]];
		const char *name = strrchr(o->path, '/');

		name = name ? name + 1 : o->path;
		for (int i = 0; i < md->rec.n && r == 0; i++)
			if (!strcmp(md->rec.v[i].name, name))
				r = move_one(md, &md->rec.v[i], &v[md->idx[k]],
					     o, e);
		if (o->moved) {
			rep->moved++;
			rep->bytes += o->bytes;
		}
	}
	/* whatever moved is made durable, even after a failure */
	sr = io_fsync(md->xfd);
	if (sr == 0)
		sr = io_fsync(md->dfd);
	if (sr < 0 && r == 0)
		r = err_set_errno(e, -sr, "%s: cannot sync the trash", md->dir);
	return r;
}

static void group_close(struct move_dir *md)
{
	if (md->xfd >= 0)
		io_close(md->xfd);
	if (md->tfd >= 0)
		io_close(md->tfd);
	if (md->dfd >= 0)
		io_close(md->dfd);
	for (int i = 0; i < md->rec.n; i++)
		free(md->rec.v[i].name);
	free(md->rec.v);
	free(md->idx);
}

/* group_prepare failed (ENOSPC...), or group_move did before any file
 * of the directory moved: what group_prepare made goes again (the record
 * first: a directory without one is what purge takes as an orphan),
 * rather than a transaction of nothing that no command shows. */
static void group_unprepare(struct move_dir *md)
{
	char tx[32], rec[48];

	trash_txname(md->rec.txid, tx, sizeof(tx));
	snprintf(rec, sizeof(rec), "%s%s", tx, TRASH_REC_SUFFIX);
	if (md->made_rec)
		io_unlinkat(md->tfd, rec, 0);
	if (md->made_tx)
		io_unlinkat(md->tfd, tx, AT_REMOVEDIR);
	if (md->made_rec || md->made_tx)
		io_fsync(md->tfd);
	if (md->made_trash && io_unlinkat(md->dfd, TRASH_DIR,
					  AT_REMOVEDIR) == 0)
		io_fsync(md->dfd);
}

static int group_run(struct move_dir *md, const struct trash_req *v,
		     struct trash_report *rep, struct img_err *e)
{
	int r;

	md->dfd = io_open(md->dir, O_RDONLY | O_DIRECTORY, 0);
	if (md->dfd < 0)
		return err_set_errno(e, -md->dfd, "%s: cannot open", md->dir);
	r = group_check(md, v, rep, e);
	if (r == 0 && md->rec.n) {
		r = group_prepare(md, e);
		if (r < 0 && md->tfd >= 0)
			group_unprepare(md);
	}
	if (r == 0 && md->rec.n) {
		int moved = 0;

		r = group_move(md, v, rep, e);
		for (int k = 0; k < md->n; k++)
			moved += rep->v[md->idx[k]].moved;
		if (r < 0 && !moved)
			group_unprepare(md);
	}
	return r;
}

/* Do requests i and k lie in one directory?  By its identity: one
 * directory named two ways (through a symlink) has one trash, and one
 * transaction directory there. */
static bool same_dir(const struct trash_req *v, const struct stat *ds,
		     const bool *dok, int i, int k)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (dok[i] && dok[k])
		return ds[i].st_dev == ds[k].st_dev &&
		       ds[i].st_ino == ds[k].st_ino;
	trash_split(v[i].path, a, sizeof(a));
	trash_split(v[k].path, b, sizeof(b));
	return !strcmp(a, b);
}

int trash_move(const struct trash_req *v, int n, uint64_t txid,
	       const char *base, struct trash_report *rep, struct img_err *e)
{
	bool *done = calloc((size_t)n + 1, sizeof(*done));
	bool *dok = calloc((size_t)n + 1, sizeof(*dok));
	struct stat *ds = calloc((size_t)n + 1, sizeof(*ds));
	int r = 0;

	memset(rep, 0, sizeof(*rep));
	if (!done || !dok || !ds || outcome_init(rep, v, n) < 0) {
		free(done);
		free(dok);
		free(ds);
		return err_set(e, ENOMEM, "trash: out of memory");
	}
	for (int i = 0; i < n; i++) {
		char d[PATH_MAX];

		trash_split(v[i].path, d, sizeof(d));
		dok[i] = stat(d, &ds[i]) == 0;
	}
	for (int i = 0; i < n && r == 0; i++) {
		struct move_dir md = { .dfd = -1, .tfd = -1, .xfd = -1 };

		if (done[i])
			continue;
		trash_split(v[i].path, md.dir, sizeof(md.dir));
		md.idx = calloc((size_t)n, sizeof(int));
		if (!md.idx) {
			r = err_set(e, ENOMEM, "trash: out of memory");
			break;
		}
		for (int k = i; k < n; k++) {
			if (!done[k] && same_dir(v, ds, dok, i, k)) {
				done[k] = true;
				md.idx[md.n++] = k;
			}
		}
		md.rec.txid = txid;
		md.rec.created = (int64_t)time(NULL);
		md.rec.base = (char *)base;
		r = group_run(&md, v, rep, e);
		md.rec.base = NULL;
		group_close(&md);
	}
	free(done);
	free(dok);
	free(ds);
	return r;
}
