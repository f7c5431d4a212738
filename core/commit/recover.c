/* recover.c - classify, plan and execute journal recovery (see recover.h). */
#include "recover.h"
#include "formats/img.h"
#include "formats/io/io.h"
#include "formats/io/io_cut.h"
#include "lock_hold.h"
#include "core/graph/perm.h"
#include "relink.h"
#include "formats/format.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_SECTOR 512u

/* Messages may be cut at the item's buffer size; that is fine for a
 * report line, so truncation is not an error here. */
static void item_msg(struct rec_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void item_msg(struct rec_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
	va_end(ap);
}

const char *rec_class_name(enum rec_class c)
{
	switch (c) {
	case REC_OLD: return "OLD";
	case REC_NEW: return "NEW";
	case REC_TORN: return "TORN";
	case REC_FOREIGN: return "FOREIGN";
	case REC_MISSING: return "MISSING";
	}
	return "?";
}

/* ---- pure classification ------------------------------------------------ */

enum rec_class recover_classify(const struct journal_parent *p,
				const uint8_t *cur, size_t cur_len,
				bool same_file)
{
	bool all_old = true, all_new = true;
	uint32_t c;

	if (!same_file)
		return REC_MISSING;
	if (!p->old_bytes || !p->new_bytes || p->len == 0 ||
	    (uint64_t)p->off + p->len > p->hdr_len || cur_len < p->hdr_len)
		return REC_FOREIGN;
	for (uint32_t a = 0; a < p->len; a += REC_SECTOR) {
		uint32_t n = p->len - a < REC_SECTOR ? p->len - a : REC_SECTOR;
		bool o = !memcmp(cur + p->off + a, p->old_bytes + a, n);
		bool w = !memcmp(cur + p->off + a, p->new_bytes + a, n);
		if (!o && !w)
			return REC_FOREIGN;
		all_old &= o;
		all_new &= w;
	}
	/* Everything outside the range must be what the journal saw: the
	 * crc of [0, hdr_len) with the range taken as OLD must be old_crc. */
	c = journal_crc(cur, p->off);
	/* crc32 is streamable: continue over OLD, then the tail. */
	c = journal_crc_more(c, p->old_bytes, p->len);
	c = journal_crc_more(c, cur + p->off + p->len,
			     p->hdr_len - p->off - p->len);
	if (c != p->old_crc)
		return REC_FOREIGN;
	if (all_new)
		return REC_NEW;
	if (all_old)
		return REC_OLD;
	return REC_TORN;
}

enum rec_class recover_classify_users(const struct journal_users *u,
				      const uint8_t *cur, size_t len,
				      bool exists)
{
	if (!exists)
		return REC_MISSING;
	if (len == u->new_len && journal_crc(cur, len) == u->new_crc &&
	    (!len || !memcmp(cur, u->new_data, len)))
		return REC_NEW;
	if (len == u->old_len && journal_crc(cur, len) == u->old_crc &&
	    (!len || !memcmp(cur, u->old_data, len)))
		return REC_OLD;
	return REC_FOREIGN;
}

/* ---- pure planning ------------------------------------------------------ */

static int plan_add(struct rec_plan *p, int cap, enum rec_action_kind k,
		    int index, bool to_new)
{
	if (p->n >= cap)
		return -ENOMEM;
	p->v[p->n++] = (struct rec_action){ k, index, to_new };
	return 0;
}

static int plan_block(struct rec_plan *p, const char *fmt, const char *a,
		      const char *b)
{
	free(p->v);
	p->v = NULL;
	p->n = 0;
	p->blocked = true;
	snprintf(p->why, sizeof(p->why), fmt, a, b);
	return 0;
}

void recover_plan_free(struct rec_plan *p)
{
	if (!p)
		return;
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

int recover_plan(const struct journal *j, const enum rec_class *pcls,
		 enum rec_class ucls, bool rollback, struct rec_plan *out,
		 struct img_err *e)
{
	int cap, i;
	bool has_users;

	memset(out, 0, sizeof(*out));
	if (!j || j->nparents < 0 || j->nparents > JOURNAL_MAX_PARENTS ||
	    (j->nparents && (!j->parents || !pcls)) ||
	    (j->state != JOURNAL_PREPARED && j->state != JOURNAL_RELINKED))
		return err_set(e, EINVAL, "recover: inconsistent journal");
	for (i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		if (!p->path || !p->old_bytes || !p->new_bytes || !p->len ||
		    (uint64_t)p->off + p->len > p->hdr_len ||
		    p->hdr_len > JOURNAL_MAX_HDRLEN ||
		    p->len > JOURNAL_MAX_RANGE ||
		    pcls[i] < REC_OLD || pcls[i] > REC_MISSING)
			return err_set(e, EINVAL, "recover: inconsistent "
				       "journal record %d", i);
	}
	has_users = j->users.path != NULL;
	if (has_users && ((!j->users.old_data && j->users.old_len) ||
			  (!j->users.new_data && j->users.new_len) ||
			  ucls < REC_OLD || ucls > REC_MISSING))
		return err_set(e, EINVAL, "recover: inconsistent users record");
	if (!j->base_path || !j->top_path)
		return err_set(e, EINVAL, "recover: journal without base/top");

	for (i = 0; i < j->nparents; i++)
		if (pcls[i] == REC_FOREIGN || pcls[i] == REC_MISSING)
			return plan_block(out, "%s: header %s since the "
					  "journal was written; nothing "
					  "changed", j->parents[i].path,
					  pcls[i] == REC_FOREIGN ?
					  "was changed by someone else" :
					  "is gone or is another file");
	if (has_users && (ucls == REC_FOREIGN || ucls == REC_MISSING))
		return plan_block(out, "%s: users file %s; nothing changed",
				  j->users.path, ucls == REC_FOREIGN ?
				  "was changed by someone else" : "is gone");
	if (rollback && j->state == JOURNAL_RELINKED && j->empty_top)
		return plan_block(out, "%s: relink of %s already completed and "
				  "top may be partly emptied; only rolling "
				  "forward is safe (run without --rollback)",
				  j->top_path, j->top_path);

	cap = j->nparents + 4;
	out->v = calloc((size_t)cap, sizeof(*out->v));
	if (!out->v)
		return err_set(e, ENOMEM, "recover: out of memory");
	if (!rollback) {
		for (i = 0; i < j->nparents; i++)
			if (pcls[i] != REC_NEW)
				plan_add(out, cap, RA_WRITE_PARENT, i, true);
		if (has_users && ucls != REC_NEW)
			plan_add(out, cap, RA_WRITE_USERS, -1, true);
		if (j->empty_top) {
			/* Emptying top is only safe once everything names
			 * base, so RELINKED is made durable first. */
			if (j->state != JOURNAL_RELINKED)
				plan_add(out, cap, RA_MARK_RELINKED, -1, true);
			plan_add(out, cap, RA_EMPTY_TOP, -1, true);
		}
	} else {
		for (i = 0; i < j->nparents; i++)
			if (pcls[i] != REC_OLD)
				plan_add(out, cap, RA_WRITE_PARENT, i, false);
		if (has_users && ucls != REC_OLD)
			plan_add(out, cap, RA_WRITE_USERS, -1, false);
	}
	plan_add(out, cap, RA_REMOVE_JOURNAL, -1, !rollback);
	return 0;
}

/* ---- execution ---------------------------------------------------------- */

void recover_report_free(struct rec_report *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		free(r->v[i].journal);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static int set_aside(const char *jpath, struct rec_item *it,
		     const struct img_err *why, struct img_err *e)
{
	char bad[PATH_MAX];
	int r;

	snprintf(bad, sizeof(bad), "%s.bad", jpath);
	r = io_rename(jpath, bad);
	if (r == 0)
		r = io_fsync_dir_of(bad);
	if (r < 0) {
		it->outcome = REC_FAILED;
		item_msg(it, "invalid journal (%s); "
			 "could not set it aside", why->msg);
		return err_set_errno(e, -r, "%s: cannot rename to %s", jpath,
				     bad);
	}
	it->outcome = REC_SET_ASIDE;
	item_msg(it, "not acted on: %s; kept as %s",
		 why->msg, bad);
	return 0;
}

static bool same_dir(const char *a, const char *b)
{
	char da[PATH_MAX], db[PATH_MAX];
	struct stat sa, sb;

	snprintf(da, sizeof(da), "%s", a);
	snprintf(db, sizeof(db), "%s", b);
	if (stat(dirname(da), &sa) < 0 || stat(dirname(db), &sb) < 0)
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool stat_is(const char *path, uint64_t dev, uint64_t ino)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/* Is the journal plausible for where it lies?  (A journal copied from
 * elsewhere, or whose base was replaced, is foreign.) */
static int journal_belongs(const char *jpath, const struct journal *j,
			   struct img_err *e)
{
	const char *jb = strrchr(jpath, '/'), *bb = strrchr(j->base_path, '/');

	jb = jb ? jb + 1 : jpath;
	bb = bb ? bb + 1 : j->base_path;
	if (strncmp(jb, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) ||
	    strcmp(jb + strlen(JOURNAL_PREFIX), bb))
		return err_set(e, EINVAL, "%s: journal is for base '%s', not "
			       "for a file of this name", jpath, j->base_path);
	if (!stat_is(j->base_path, j->base_dev, j->base_ino) ||
	    !same_dir(jpath, j->base_path))
		return err_set(e, EINVAL, "%s: base '%s' is not the file the "
			       "journal was written for (dev:ino differ or it "
			       "is gone)", jpath, j->base_path);
	return 0;
}

static int do_empty_top(const struct journal *j, int fd, struct img_err *e)
{
	struct img *img;
	int r = img_open_fd(fd, j->top_path, j->top_fmt, IMG_O_RDWR, &img,
			    NULL, e);

	if (r < 0)
		return r;
	r = img_make_empty(img, e);
	if (r == 0)
		r = img_flush(img, e);
	img_close(img);
	return r;
}

int recover_journal(const char *jpath, bool rollback, struct rec_item *it,
		    struct img_err *e)
{
	struct journal *j = NULL;
	struct img_err why;
	struct lock_hold *locks = NULL;
	struct lock_req *req = NULL;
	int *pfd = NULL, nlocks = 0, topfd = -1, r, i;
	enum rec_class *pcls = NULL, ucls = REC_OLD;
	struct rec_plan plan = { 0 };
	uint8_t *ubuf = NULL;
	size_t ulen = 0;

	io_cut_init();
	memset(it, 0, sizeof(*it));
	it->journal = strdup(jpath);
	err_clear(&why);
	r = journal_read(jpath, &j, &why);
	if (r == -EINVAL) {
		return set_aside(jpath, it, &why, e);
	} else if (r < 0) {
		it->outcome = REC_FAILED;
		item_msg(it, "%s", why.msg);
		*e = why;
		return r;
	}
	if (journal_belongs(jpath, j, &why) < 0) {
		journal_free(j);
		return set_aside(jpath, it, &why, e);
	}
	it->parents = j->nparents;

	/* Locks: base as exclusive writer (keeps a running commit or a VM
	 * reading base out), every parent and top as writers. */
	req = calloc((size_t)j->nparents + 2, sizeof(*req));
	locks = calloc((size_t)j->nparents + 2, sizeof(*locks));
	pfd = calloc((size_t)j->nparents + 1, sizeof(*pfd));
	pcls = calloc((size_t)j->nparents + 1, sizeof(*pcls));
	if (!req || !locks || !pfd || !pcls) {
		r = err_set(e, ENOMEM, "out of memory");
		goto fail;
	}
	req[nlocks++] = (struct lock_req){ j->base_path, false, PERM_WRITE,
		PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED };
	for (i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		pfd[i] = -1;
		if (!stat_is(p->path, p->dev, p->ino)) {
			pcls[i] = REC_MISSING;
			continue;
		}
		pfd[i] = nlocks;        /* index for now, fd after locking */
		req[nlocks++] = (struct lock_req){ p->path, true,
			PERM_CONSISTENT_READ | PERM_WRITE,
			PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED };
		if (p->dev == j->top_dev && p->ino == j->top_ino)
			topfd = pfd[i];
	}
	if (j->empty_top && topfd < 0 &&
	    stat_is(j->top_path, j->top_dev, j->top_ino)) {
		topfd = nlocks;
		req[nlocks++] = (struct lock_req){ j->top_path, true,
			PERM_CONSISTENT_READ | PERM_WRITE,
			PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED };
	}
	r = lock_hold_many(locks, req, nlocks, e);
	if (r < 0) {
		it->outcome = REC_BLOCKED;
		item_msg(it, "in use, nothing changed: "
			 "%s", e->msg);
		nlocks = 0;
		goto out;
	}
	for (i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		struct stat st;
		uint8_t *cur;
		ssize_t got;

		if (pfd[i] < 0)
			continue;
		pfd[i] = locks[pfd[i]].fd;
		if (io_fstat(pfd[i], &st) < 0 ||
		    (uint64_t)st.st_dev != p->dev ||
		    (uint64_t)st.st_ino != p->ino) {
			pcls[i] = REC_MISSING;
			continue;
		}
		cur = malloc(p->hdr_len);
		if (!cur) {
			r = err_set(e, ENOMEM, "out of memory");
			goto fail;
		}
		got = io_pread(pfd[i], cur, p->hdr_len, 0);
		if (got < 0) {
			free(cur);
			r = err_set_errno(e, (int)-got, "%s: cannot read the "
					  "header", p->path);
			goto fail;
		}
		pcls[i] = recover_classify(p, cur, (size_t)got, true);
		it->torn += pcls[i] == REC_TORN;
		free(cur);
	}
	if (topfd >= 0)
		topfd = locks[topfd].fd;
	if (j->users.path) {
		r = relink_read_file(j->users.path, JOURNAL_MAX_USERS, &ubuf,
				     &ulen, &why);
		if (r == -ENOENT)
			ucls = recover_classify_users(&j->users, NULL, 0,
						      false);
		else if (r < 0) {
			*e = why;
			goto fail;
		} else
			ucls = recover_classify_users(&j->users, ubuf, ulen,
						      true);
	}
	r = recover_plan(j, pcls, ucls, rollback, &plan, e);
	if (r < 0)
		goto fail;
	if (plan.blocked) {
		it->outcome = REC_BLOCKED;
		item_msg(it, "%s", plan.why);
		r = err_set(e, EBUSY, "%s: %s", jpath, plan.why);
		goto out;
	}
	for (i = 0; i < plan.n; i++) {
		const struct rec_action *a = &plan.v[i];
		const struct journal_parent *p;

		switch (a->kind) {
		case RA_WRITE_PARENT:
			p = &j->parents[a->index];
			r = relink_write_range(pfd[a->index], p->path, p->off,
					       a->to_new ? p->new_bytes
							 : p->old_bytes,
					       p->len, e);
			break;
		case RA_WRITE_USERS:
			r = relink_replace_file(j->users.path,
				a->to_new ? j->users.new_data
					  : j->users.old_data,
				a->to_new ? j->users.new_len
					  : j->users.old_len, e);
			break;
		case RA_MARK_RELINKED:
			j->state = JOURNAL_RELINKED;
			r = journal_write(jpath, j, e);
			break;
		case RA_EMPTY_TOP:
			r = topfd < 0 ? 0 : do_empty_top(j, topfd, e);
			break;
		case RA_REMOVE_JOURNAL:
			r = journal_remove(jpath, e);
			break;
		}
		if (r < 0)
			goto fail;
		if (a->kind == RA_WRITE_PARENT || a->kind == RA_WRITE_USERS)
			it->written++;
	}
	it->outcome = rollback ? REC_DONE_ROLLBACK : REC_DONE_FORWARD;
	if (j->users.path) {
		/* A crash inside the users-file replace leaves its temp. */
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s.imgraph-tmp", j->users.path);
		if (access(tmp, F_OK) == 0 && io_unlink(tmp) == 0)
			io_fsync_dir_of(tmp);
	}
	char torn[48] = "";
	if (it->torn)
		snprintf(torn, sizeof(torn), ", %d of them torn", it->torn);
	item_msg(it, "%d parent%s now name %s "
		 "(%d header%s rewritten%s)%s", j->nparents,
		 j->nparents == 1 ? "" : "s",
		 rollback ? j->top_path : j->base_path, it->written,
		 it->written == 1 ? "" : "s", torn,
		 !rollback && j->empty_top ? "; top emptied" : "");
	r = 0;
	goto out;
fail:
	it->outcome = REC_FAILED;
	item_msg(it, "%s (journal kept; run recover "
		 "again)", e->msg);
out:
	recover_plan_free(&plan);
	for (i = 0; i < nlocks; i++)
		lock_hold_close(&locks[i]);
	free(locks);
	free(req);
	free(pfd);
	free(pcls);
	free(ubuf);
	journal_free(j);
	return r;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* Unlink a stale journal temp and make that durable.  A failure is
 * reported: recover must never claim success after an I/O error. */
static int unlink_tmp(const char *path, struct rec_report *rep,
		      struct img_err *e)
{
	int r = io_unlink(path);

	if (r == -ENOENT)
		return 0;       /* another recover got there first */
	if (r == 0)
		r = io_fsync_dir_of(path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot remove the stale "
				     "journal temp", path);
	rep->stale_tmp_removed++;
	return 0;
}

/* A journal temp that never got renamed describes a transaction that
 * never started.  Remove it unless a commit of that base is running (it
 * holds base's write lock, which we then fail to get). */
static int remove_stale_tmp(const char *dir, const char *name,
			    struct rec_report *rep, struct img_err *e)
{
	char path[PATH_MAX], base[PATH_MAX];
	size_t pl = strlen(JOURNAL_PREFIX), nl = strlen(name);
	struct lock_hold h;
	struct img_err ie;
	int r = 0;

	if (nl <= pl + 4 ||
	    snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) ||
	    snprintf(base, sizeof(base), "%s/%.*s", dir,
		     (int)(nl - pl - 4), name + pl) >= (int)sizeof(base))
		return 0;
	if (lock_hold_open(&h, base, false, &ie) == 0) {
		if (lock_hold_set(&h, PERM_WRITE, PERM_CONSISTENT_READ |
				  PERM_WRITE_UNCHANGED, &ie) == 0)
			r = unlink_tmp(path, rep, e);
		lock_hold_close(&h);
	} else if (access(base, F_OK) != 0) {
		r = unlink_tmp(path, rep, e);
	}
	return r;
}

static int scan_dir(const char *dir, bool rollback, struct rec_report *rep,
		    int *first_err, struct img_err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return err_set_errno(e, errno, "%s: cannot read directory",
				     dir);
	while ((de = readdir(d))) {
		struct img_err ie;
		struct rec_item *nv;

		if (strncmp(de->d_name, JOURNAL_PREFIX,
			    strlen(JOURNAL_PREFIX)) ||
		    ends_with(de->d_name, ".bad"))
			continue;
		if (ends_with(de->d_name, ".tmp")) {
			err_clear(&ie);
			int r = remove_stale_tmp(dir, de->d_name, rep, &ie);
			if (r < 0 && !*first_err) {
				*first_err = r;
				*e = ie;
			}
			continue;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			continue;
		/* The same directory named twice is recovered once. */
		bool seen = false;
		for (int i = 0; i < rep->n; i++)
			if (!strcmp(rep->v[i].journal, path))
				seen = true;
		if (seen)
			continue;
		nv = realloc(rep->v, (size_t)(rep->n + 1) * sizeof(*nv));
		if (!nv) {
			closedir(d);
			return err_set(e, ENOMEM, "out of memory");
		}
		rep->v = nv;
		err_clear(&ie);
		int r = recover_journal(path, rollback, &rep->v[rep->n], &ie);
		rep->n++;
		if (r < 0 && !*first_err) {
			*first_err = r;
			*e = ie;
		}
	}
	closedir(d);
	return 0;
}

int recover_paths(char *const *paths, int npaths, bool rollback,
		  struct rec_report *rep, struct img_err *e)
{
	char *dot = ".";
	int first_err = 0, r;

	memset(rep, 0, sizeof(*rep));
	io_cut_init();
	if (npaths == 0) {
		paths = &dot;
		npaths = 1;
	}
	for (int i = 0; i < npaths; i++) {
		struct stat st;
		char dir[PATH_MAX];

		if (stat(paths[i], &st) < 0)
			return err_set_errno(e, errno, "%s: cannot stat",
					     paths[i]);
		snprintf(dir, sizeof(dir), "%s", paths[i]);
		if (!S_ISDIR(st.st_mode)) {
			char tmp[PATH_MAX];
			snprintf(tmp, sizeof(tmp), "%s", paths[i]);
			snprintf(dir, sizeof(dir), "%s", dirname(tmp));
		}
		r = scan_dir(dir, rollback, rep, &first_err, e);
		if (r < 0)
			return r;
	}
	return first_err;
}
