/* trash_undo.c - what the trash holds, putting files back (undelete) and
 * freeing the space (purge); see trash.h. */
#include "trash_int.h"
#include "formats/io/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One directory's trash, opened. */
struct tdir {
	char dir[PATH_MAX];
	int dfd, tfd;
};

static void tdir_close(struct tdir *t)
{
	if (t->tfd >= 0)
		io_close(t->tfd);
	if (t->dfd >= 0)
		io_close(t->dfd);
	t->tfd = t->dfd = -1;
}

/* Open the trash of path's directory: 1 when there is one, 0 when not. */
static int tdir_open(const char *path, struct tdir *t, struct img_err *e)
{
	struct stat st;
	bool created;

	t->dfd = t->tfd = -1;
	if (stat(path, &st) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
	if (S_ISDIR(st.st_mode))
		snprintf(t->dir, sizeof(t->dir), "%s", path);
	else
		trash_split(path, t->dir, sizeof(t->dir));
	t->dfd = io_open(t->dir, O_RDONLY | O_DIRECTORY, 0);
	if (t->dfd < 0)
		return err_set_errno(e, -t->dfd, "%s: cannot open", t->dir);
	t->tfd = trash_open(t->dfd, t->dir, false, &created, e);
	if (t->tfd == -ENOENT) {
		tdir_close(t);
		return 0;
	}
	if (t->tfd < 0) {
		int r = t->tfd;
		tdir_close(t);
		return r;
	}
	return 1;
}

/* Is name a record's name ("%016llx.rec")?  *txid set when it is. */
static bool record_name(const char *name, uint64_t *txid)
{
	char *end;

	if (strlen(name) != 16 + strlen(TRASH_REC_SUFFIX) ||
	    strcmp(name + 16, TRASH_REC_SUFFIX))
		return false;
	for (int i = 0; i < 16; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	*txid = strtoull(name, &end, 16);
	return end == name + 16;
}

/* Call fn for every record name in the trash (in readdir order). */
static int each_record(struct tdir *t,
		       int (*fn)(struct tdir *, const char *, uint64_t,
				 void *),
		       void *opaque, struct img_err *e)
{
	int fd = dup(t->tfd), r = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return err_set_errno(e, errno, "%s/%s: cannot list", t->dir,
				     TRASH_DIR);
	}
	rewinddir(d);
	while (r == 0 && (de = readdir(d))) {
		uint64_t txid;

		if (record_name(de->d_name, &txid))
			r = fn(t, de->d_name, txid, opaque);
	}
	closedir(d);
	return r;
}

/* The transaction's directory, or -1 when it is gone. */
static int open_txdir(struct tdir *t, uint64_t txid)
{
	char tx[32];
	int fd;

	trash_txname(txid, tx, sizeof(tx));
	fd = io_openat(t->tfd, tx, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	return fd < 0 ? -1 : fd;
}

/* Is the record's file f in the trash (xfd) as recorded? */
static bool in_trash(int xfd, const struct trash_file *f, struct stat *st)
{
	return xfd >= 0 && fstatat(xfd, f->name, st, AT_SYMLINK_NOFOLLOW) == 0
	       && (uint64_t)st->st_dev == f->dev &&
	       (uint64_t)st->st_ino == f->ino && S_ISREG(st->st_mode);
}

/* ---- summary ------------------------------------------------------------ */

static int sum_record(struct tdir *t, const char *name, uint64_t txid,
		      void *opaque)
{
	struct trash_summary *s = opaque;
	struct trash_record *rec;
	int xfd, files = 0;

	if (trash_read_record(t->tfd, name, &rec, NULL) < 0)
		return 0;       /* unreadable: purge reports it */
	xfd = open_txdir(t, txid);
	for (int i = 0; i < rec->n; i++) {
		struct stat st;

		if (in_trash(xfd, &rec->v[i], &st)) {
			files++;
			s->bytes += (uint64_t)st.st_blocks * 512;
		}
	}
	if (xfd >= 0)
		io_close(xfd);
	if (files) {
		s->files += files;
		s->ntx++;
		if (rec->created > s->last_created ||
		    (rec->created == s->last_created && txid > s->last_txid)) {
			s->last_created = rec->created;
			s->last_txid = txid;
		}
	}
	trash_record_free(rec);
	return 0;
}

int trash_summary_dir(const char *dir, struct trash_summary *s,
		      struct img_err *e)
{
	struct tdir t;
	int r;

	memset(s, 0, sizeof(*s));
	r = tdir_open(dir, &t, e);
	if (r <= 0)
		return r;
	r = each_record(&t, sum_record, s, e);
	tdir_close(&t);
	return r;
}

/* ---- reports ------------------------------------------------------------ */

void trash_op_report_free(struct trash_op_report *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static struct trash_op_item *report_add(struct trash_op_report *rep,
					const struct tdir *t,
					const char *name)
{
	struct trash_op_item *nv = realloc(rep->v, sizeof(*nv) *
					   (size_t)(rep->n + 1));

	if (!nv)
		return NULL;
	rep->v = nv;
	memset(&nv[rep->n], 0, sizeof(*nv));
	if (asprintf(&nv[rep->n].path, "%s/%s", t->dir, name) < 0)
		return NULL;
	return &nv[rep->n++];
}

/* Remove the transaction's directory (when empty) and its record, then
 * the trash itself when nothing is left in it. */
static int drop_tx(struct tdir *t, const char *recname, uint64_t txid,
		   struct img_err *e)
{
	char tx[32];
	int r;

	trash_txname(txid, tx, sizeof(tx));
	r = io_unlinkat(t->tfd, tx, AT_REMOVEDIR);
	if (r == -ENOTEMPTY || r == -EEXIST)
		return 0;       /* something else is in there: keep both */
	if (r < 0 && r != -ENOENT)
		return err_set_errno(e, -r, "%s/%s/%s: cannot remove", t->dir,
				     TRASH_DIR, tx);
	r = io_unlinkat(t->tfd, recname, 0);
	if (r == 0)
		r = io_fsync(t->tfd);
	if (r < 0 && r != -ENOENT)
		return err_set_errno(e, -r, "%s/%s/%s: cannot remove", t->dir,
				     TRASH_DIR, recname);
	return 0;
}

/* The trash itself goes once nothing is left in it (also after a crash
 * that emptied it but left it standing). */
static void drop_empty_trash(struct tdir *t)
{
	if (io_unlinkat(t->dfd, TRASH_DIR, AT_REMOVEDIR) == 0)
		io_fsync(t->dfd);
}

/* A transaction directory without its record is what a crash leaves
 * between making the directory and writing the record (nothing moved
 * yet), or after dropping the record last: remove it when empty. */
static int drop_orphans(struct tdir *t)
{
	int fd = dup(t->tfd), removed = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char rec[NAME_MAX + 8];
		uint64_t txid;
		struct stat st;

		if (strlen(de->d_name) != 16)
			continue;
		snprintf(rec, sizeof(rec), "%s%s", de->d_name,
			 TRASH_REC_SUFFIX);
		if (!record_name(rec, &txid) ||
		    fstatat(t->tfd, rec, &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		removed += io_unlinkat(t->tfd, de->d_name, AT_REMOVEDIR) == 0;
	}
	closedir(d);
	if (removed)
		io_fsync(t->tfd);
	return 0;
}

/* ---- undelete ----------------------------------------------------------- */

struct pick {
	uint64_t txid;
	int64_t created;
	bool found;
};

static int pick_last(struct tdir *t, const char *name, uint64_t txid,
		     void *opaque)
{
	struct pick *pk = opaque;
	struct trash_summary s = { 0 };

	sum_record(t, name, txid, &s);
	if (s.files && (!pk->found || s.last_created > pk->created ||
			(s.last_created == pk->created && txid > pk->txid))) {
		pk->found = true;
		pk->txid = txid;
		pk->created = s.last_created;
	}
	return 0;
}

/* Put file f back: RESTORED, IN_PLACE or REFUSED; -errno on I/O error. */
static int restore_file(struct tdir *t, int xfd, const struct trash_file *f,
			struct trash_op_item *it, struct img_err *e)
{
	struct stat st;
	int r;

	if (!in_trash(xfd, f, &st)) {
		bool here = fstatat(t->dfd, f->name, &st,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
			    (uint64_t)st.st_dev == f->dev &&
			    (uint64_t)st.st_ino == f->ino;
		it->result = here ? TRASH_IN_PLACE : TRASH_REFUSED;
		if (!here)
			snprintf(it->msg, sizeof(it->msg), "not in the trash any "
				 "more, and not at its old path");
		return 0;
	}
	r = io_renameat(xfd, f->name, t->dfd, f->name, 1);
	if (r == -EEXIST) {
		it->result = TRASH_REFUSED;
		snprintf(it->msg, sizeof(it->msg), "its old path is taken by "
			 "another file; not overwritten (it stays in the "
			 "trash)");
		return 0;
	}
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot put back", it->path);
	it->result = TRASH_RESTORED;
	it->bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

static int undelete_record(struct tdir *t, const char *name, uint64_t txid,
			   void *opaque)
{
	struct trash_op_report *rep = opaque;
	struct trash_record *rec;
	struct img_err e;
	int xfd, refused = 0, r = 0;

	if (txid != rep->txid)
		return 0;
	err_clear(&e);
	if ((r = trash_read_record(t->tfd, name, &rec, &e)) < 0)
		return r == -ENOMEM ? r : 0;
	xfd = open_txdir(t, txid);
	for (int i = 0; i < rec->n && r == 0; i++) {
		struct trash_op_item *it = report_add(rep, t, rec->v[i].name);

		if (!it) {
			r = -ENOMEM;
			break;
		}
		r = restore_file(t, xfd, &rec->v[i], it, NULL);
		refused += it->result == TRASH_REFUSED;
		rep->done += it->result == TRASH_RESTORED;
	}
	rep->refused += refused;
	if (xfd >= 0) {
		io_fsync(xfd);
		io_close(xfd);
	}
	if (r == 0 && io_fsync(t->dfd) < 0)
		r = -EIO;
	if (r == 0 && !refused)
		r = drop_tx(t, name, txid, NULL);
	trash_record_free(rec);
	return r;
}

/* Run fn on the trash of every path (the same directory once). */
static int each_trash(char *const *paths, int npaths,
		      int (*fn)(struct tdir *, void *), void *opaque,
		      struct img_err *e)
{
	char *dot = ".";
	struct stat seen[64];
	int nseen = 0, r = 0;

	if (npaths == 0) {
		paths = &dot;
		npaths = 1;
	}
	for (int i = 0; i < npaths && r == 0; i++) {
		struct tdir t;
		struct stat ds;
		bool dup = false;

		r = tdir_open(paths[i], &t, e);
		if (r <= 0)
			continue;
		if (io_fstat(t.tfd, &ds) == 0)
			for (int k = 0; k < nseen; k++)
				dup |= seen[k].st_dev == ds.st_dev &&
				       seen[k].st_ino == ds.st_ino;
		if (!dup && nseen < 64)
			seen[nseen++] = ds;
		r = dup ? 0 : fn(&t, opaque);
		if (r < 0)
			err_set_errno(e, -r, "%s/%s", t.dir, TRASH_DIR);
		tdir_close(&t);
	}
	return r < 0 ? r : 0;
}

static int undelete_pick(struct tdir *t, void *opaque)
{
	return each_record(t, pick_last, opaque, NULL);
}

static int undelete_dir(struct tdir *t, void *opaque)
{
	int r = each_record(t, undelete_record, opaque, NULL);

	drop_empty_trash(t);
	return r;
}

int trash_undelete(char *const *paths, int npaths, uint64_t txid,
		   struct trash_op_report *rep, struct img_err *e)
{
	struct pick pk = { .txid = txid, .found = txid != 0 };
	int r;

	memset(rep, 0, sizeof(*rep));
	if (!txid && (r = each_trash(paths, npaths, undelete_pick, &pk, e)) < 0)
		return r;
	if (!pk.found)
		return err_set(e, ENOENT, "the trash holds nothing to put back");
	rep->txid = pk.txid;
	r = each_trash(paths, npaths, undelete_dir, rep, e);
	if (r < 0)
		return r;
	if (!rep->n)
		return err_set(e, ENOENT, "the trash holds no transaction "
			       "%016llx", (unsigned long long)pk.txid);
	if (rep->refused)
		return err_set(e, EEXIST, "%d file%s could not be put back "
			       "(nothing was overwritten)", rep->refused,
			       rep->refused == 1 ? "" : "s");
	return 0;
}

/* ---- purge -------------------------------------------------------------- */

/* Remove the record's files that are in the trash as recorded. */
static int purge_files(struct tdir *t, int xfd,
		       const struct trash_record *rec,
		       struct trash_op_report *rep)
{
	for (int i = 0; i < rec->n; i++) {
		struct trash_op_item *it;
		struct stat st;
		int r;

		if (!in_trash(xfd, &rec->v[i], &st))
			continue;
		if (!(it = report_add(rep, t, rec->v[i].name)))
			return -ENOMEM;
		r = io_unlinkat(xfd, rec->v[i].name, 0);
		if (r < 0) {
			it->result = TRASH_KEPT;
			snprintf(it->msg, sizeof(it->msg), "cannot remove: %s",
				 strerror(-r));
			rep->refused++;
			continue;
		}
		it->result = TRASH_PURGED;
		it->bytes = (uint64_t)st.st_blocks * 512;
		rep->bytes += it->bytes;
		rep->done++;
	}
	return 0;
}

static int purge_record(struct tdir *t, const char *name, uint64_t txid,
			void *opaque)
{
	struct trash_op_report *rep = opaque;
	struct trash_record *rec = NULL;
	int xfd, r = 0;

	if (rep->txid && txid != rep->txid)
		return 0;
	xfd = open_txdir(t, txid);
	if (trash_read_record(t->tfd, name, &rec, NULL) == 0)
		r = purge_files(t, xfd, rec, rep);
	/* An unreadable record was torn by a crash before any file moved
	 * (the record is durable first): its directory is empty then, and
	 * drop_tx removes nothing that is not. */
	if (xfd >= 0) {
		io_fsync(xfd);
		io_close(xfd);
	}
	if (r == 0)
		r = drop_tx(t, name, txid, NULL);
	trash_record_free(rec);
	return r;
}

static int purge_dir(struct tdir *t, void *opaque)
{
	struct trash_op_report *rep = opaque;
	int r = each_record(t, purge_record, opaque, NULL);

	if (r == 0 && !rep->txid)
		r = drop_orphans(t);
	drop_empty_trash(t);
	return r;
}

int trash_purge(char *const *paths, int npaths, uint64_t txid,
		struct trash_op_report *rep, struct img_err *e)
{
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->txid = txid;
	r = each_trash(paths, npaths, purge_dir, rep, e);
	if (r < 0)
		return r;
	if (rep->refused)
		return err_set(e, EIO, "%d file%s could not be removed",
			       rep->refused, rep->refused == 1 ? "" : "s");
	return 0;
}
