/* recover.c - classify, plan and execute journal recovery (see recover.h). */
#include "recover.h"
#include "formats/img.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"
#include "lock_hold.h"
#include "core/plan/policy.h"
#include "relink.h"
#include "stale.h"
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
	for (int i = 0; i < r->nprot; i++) {
		free(r->prot[i].record);
		free(r->prot[i].base);
		free(r->prot[i].top);
	}
	free(r->prot);
	r->prot = NULL;
	r->nprot = 0;
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

/* One journal's recovery, from reading it to the report line. */
struct rec_run {
	const char *jpath;
	bool rollback;
	struct rec_item *it;
	struct journal *j;
	struct lock_req *req;
	struct lock_hold *locks;
	int nlocks;                /* requests, then locks held */
	int *pfd;                  /* per parent: lock index, then fd; -1 */
	int topfd;                 /* the same for top when it is emptied */
	enum rec_class *pcls, ucls;
	struct rec_plan plan;
};

/* Read the journal; one that is invalid or not for where it lies is set
 * aside.  Returns 1 when set aside (nothing more to do), 0 to go on. */
static int rec_load(struct rec_run *rr, struct img_err *e)
{
	struct img_err why;
	int r;

	err_clear(&why);
	r = journal_read(rr->jpath, &rr->j, &why);
	if (r == 0)
		r = journal_belongs(rr->jpath, rr->j, &why);
	if (r == -EINVAL) {
		r = set_aside(rr->jpath, rr->it, &why, e);
		return r < 0 ? r : 1;
	}
	if (r < 0)
		return err_propagate(e, &why);
	rr->it->parents = rr->j->nparents;
	return 0;
}

/* A lock request for path in role (core/plan/policy.h): recover holds
 * each file as the commit that wrote the journal held it. */
static void rec_req(struct rec_run *rr, const char *path, const char *fmt,
		    enum plan_role role)
{
	struct role_policy rp;

	policy_of(role, fmt, false, &rp);
	/* Recover never writes base: it only keeps out a running commit or
	 * a VM that reads base. */
	rr->req[rr->nlocks++] = (struct lock_req){ path,
		rp.write && role != PLAN_ROLE_BASE, rp.perm, rp.shared };
}

/* Locks: base, every parent that is still there, and top when it is
 * emptied, in their roles. */
static int rec_lock(struct rec_run *rr, struct img_err *e)
{
	const struct journal *j = rr->j;
	size_t n = (size_t)j->nparents;

	rr->req = calloc(n + 2, sizeof(*rr->req));
	rr->locks = calloc(n + 2, sizeof(*rr->locks));
	rr->pfd = calloc(n + 1, sizeof(*rr->pfd));
	rr->pcls = calloc(n + 1, sizeof(*rr->pcls));
	if (!rr->req || !rr->locks || !rr->pfd || !rr->pcls)
		return err_set(e, ENOMEM, "out of memory");
	/* A live commit's base (and top) are the QEMU's: it holds them,
	 * and recover writes neither. */
	if (!j->live.present)
		rec_req(rr, j->base_path, j->base_fmt, PLAN_ROLE_BASE);
	for (int i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		bool top = p->dev == j->top_dev && p->ino == j->top_ino;

		rr->pfd[i] = -1;
		if (!stat_is(p->path, p->dev, p->ino)) {
			rr->pcls[i] = REC_MISSING;
			continue;
		}
		rr->pfd[i] = rr->nlocks;
		if (top)
			rr->topfd = rr->nlocks;
		rec_req(rr, p->path, top ? j->top_fmt : NULL,
			top ? PLAN_ROLE_TOP_KEPT : PLAN_ROLE_PARENT);
	}
	if (j->empty_top && rr->topfd < 0 &&
	    stat_is(j->top_path, j->top_dev, j->top_ino)) {
		rr->topfd = rr->nlocks;
		rec_req(rr, j->top_path, j->top_fmt, PLAN_ROLE_TOP_KEPT);
	}
	return lock_hold_many(rr->locks, rr->req, rr->nlocks, e);
}

/* Classify parent i from its header, read under the lock. */
static int rec_classify_parent(struct rec_run *rr, int i, struct img_err *e)
{
	const struct journal_parent *p = &rr->j->parents[i];
	struct stat st;
	uint8_t *cur;
	int r;

	if (rr->pfd[i] < 0)
		return 0;
	rr->pfd[i] = rr->locks[rr->pfd[i]].fd;
	if (io_fstat(rr->pfd[i], &st) < 0 || (uint64_t)st.st_dev != p->dev ||
	    (uint64_t)st.st_ino != p->ino) {
		rr->pcls[i] = REC_MISSING;
		return 0;
	}
	cur = malloc(p->hdr_len);
	if (!cur)
		return err_set(e, ENOMEM, "out of memory");
	/* All of the header the journal covers, or an error: a file cut
	 * shorter since is no state the journal knows. */
	r = io_pread_full(rr->pfd[i], cur, p->hdr_len, 0);
	if (r == 0) {
		rr->pcls[i] = recover_classify(p, cur, p->hdr_len, true);
		rr->it->torn += rr->pcls[i] == REC_TORN;
	}
	free(cur);
	if (r == -EIO && (uint64_t)st.st_size < p->hdr_len)
		return err_set(e, EIO, "%s: cannot read the whole %u-byte header "
			       "the journal covers: the file has %llu bytes",
			       p->path, p->hdr_len,
			       (unsigned long long)st.st_size);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the whole %u-byte "
				     "header", p->path, p->hdr_len);
	return 0;
}

static int rec_classify_users(struct rec_run *rr, struct img_err *e)
{
	const struct journal_users *u = &rr->j->users;
	char *buf;
	size_t len;
	int r;

	if (!u->path)
		return 0;
	r = io_read_file(u->path, JOURNAL_MAX_USERS, 0, &buf, &len);
	if (r == -ENOENT) {
		rr->ucls = recover_classify_users(u, NULL, 0, false);
		return 0;
	}
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the users file",
				     u->path);
	rr->ucls = recover_classify_users(u, (const uint8_t *)buf, len, true);
	free(buf);
	return 0;
}

static int rec_classify(struct rec_run *rr, struct img_err *e)
{
	int r = 0;

	for (int i = 0; i < rr->j->nparents && r == 0; i++)
		r = rec_classify_parent(rr, i, e);
	if (rr->topfd >= 0)
		rr->topfd = rr->locks[rr->topfd].fd;
	return r < 0 ? r : rec_classify_users(rr, e);
}

/* The commit's entry in the stale record follows the relink's outcome:
 * DONE when every parent names base, PENDING again when they name top
 * (its intermediates stay stale either way: base was written).  Set
 * before the journal goes, so a crash in between repeats it.  A record
 * that cannot be parsed is left for the plan to report. */
static int rec_stale_state(const struct journal *j, bool forward,
			   struct img_err *e)
{
	struct img_err se;
	int r;

	err_clear(&se);
	r = stale_set_state(j->base_path, j->base_dev, j->base_ino, j->txid,
			    forward ? STALE_DONE : STALE_PENDING, &se);
	if (r == -EINVAL)
		return 0;
	return r < 0 ? err_propagate(e, &se) : 0;
}

static int rec_action(struct rec_run *rr, const struct rec_action *a,
		      struct img_err *e)
{
	struct journal *j = rr->j;
	const struct journal_parent *p;
	int r;

	switch (a->kind) {
	case RA_WRITE_PARENT:
		p = &j->parents[a->index];
		rr->it->written++;
		return relink_write_range(rr->pfd[a->index], p->path, p->off,
					  a->to_new ? p->new_bytes
						    : p->old_bytes, p->len, e);
	case RA_WRITE_USERS:
		rr->it->written++;
		return relink_write_users(j->users.path,
			a->to_new ? j->users.new_data : j->users.old_data,
			a->to_new ? j->users.new_len : j->users.old_len, e);
	case RA_MARK_RELINKED:
		j->state = JOURNAL_RELINKED;
		return journal_write(rr->jpath, j, e);
	case RA_EMPTY_TOP:
		return rr->topfd < 0 ? 0 : do_empty_top(j, rr->topfd, e);
	case RA_REMOVE_JOURNAL:
		if ((r = rec_stale_state(j, a->to_new, e)) < 0)
			return r;
		return journal_remove(rr->jpath, e);
	}
	return err_set(e, EINVAL, "recover: unknown action %d", (int)a->kind);
}

/* A crash inside the users file's replacement leaves its temporary next
 * to the file the name leads to. */
static void rec_clean_users_dir(const struct journal *j)
{
	char real[PATH_MAX];

	if (j->users.path && realpath(j->users.path, real))
		(void)io_replace_clean(dirname(real), NULL, NULL);
}

static void rec_done_msg(struct rec_run *rr)
{
	const struct journal *j = rr->j;
	struct rec_item *it = rr->it;
	char torn[48] = "";

	it->outcome = rr->rollback ? REC_DONE_ROLLBACK : REC_DONE_FORWARD;
	if (it->torn)
		snprintf(torn, sizeof(torn), ", %d of them torn", it->torn);
	item_msg(it, "%d parent%s now name %s (%d header%s rewritten%s)%s",
		 j->nparents, j->nparents == 1 ? "" : "s",
		 rr->rollback ? j->top_path : j->base_path, it->written,
		 it->written == 1 ? "" : "s", torn,
		 !rr->rollback && j->empty_top ? "; top emptied" : "");
}

/* Locks held: classify, plan, act.  it->outcome and msg say how it ended
 * unless this fails (the caller reports the failure). */
static int rec_run_locked(struct rec_run *rr, struct img_err *e)
{
	int r = rec_classify(rr, e);

	if (r == 0)
		r = recover_plan(rr->j, rr->pcls, rr->ucls, rr->rollback,
				 &rr->plan, e);
	if (r < 0)
		return r;
	if (rr->plan.blocked) {
		rr->it->outcome = REC_BLOCKED;
		item_msg(rr->it, "%s", rr->plan.why);
		return err_set(e, EBUSY, "%s: %s", rr->jpath, rr->plan.why);
	}
	for (int i = 0; i < rr->plan.n; i++) {
		r = rec_action(rr, &rr->plan.v[i], e);
		if (r < 0)
			return r;
	}
	rec_clean_users_dir(rr->j);
	rec_done_msg(rr);
	return 0;
}

static void rec_free(struct rec_run *rr)
{
	recover_plan_free(&rr->plan);
	if (rr->locks)
		for (int i = 0; i < rr->nlocks; i++)
			lock_hold_close(&rr->locks[i]);
	free(rr->locks);
	free(rr->req);
	free(rr->pfd);
	free(rr->pcls);
	journal_free(rr->j);
}

/* A live journal: QEMU's job decides the direction; --rollback still
 * rolls back (the offline parents back on top, whose data is intact),
 * but nothing rolls forward a job that was not finalized. */
static int rec_live(struct rec_run *rr, struct img_err *e)
{
	char why[512] = "";
	bool forward = false;
	int r = recover_live_direction(rr->j, &forward, why, sizeof(why));

	if (r < 0) {
		rr->it->outcome = REC_BLOCKED;
		item_msg(rr->it, "live commit: %s", why);
		return err_set(e, EBUSY, "%s: %s", rr->jpath, why);
	}
	if (!forward)
		rr->rollback = true;
	return 0;
}

int recover_journal(const char *jpath, bool rollback, struct rec_item *it,
		    struct img_err *e)
{
	struct rec_run rr = { .jpath = jpath, .rollback = rollback, .it = it,
			      .topfd = -1, .ucls = REC_OLD };
	struct img_err le;      /* read below for the item's message */
	int r;

	memset(it, 0, sizeof(*it));
	it->journal = strdup(jpath);
	err_clear(&le);
	r = rec_load(&rr, &le);
	if (r == 1) {
		rec_free(&rr);
		return 0;
	}
	if (r == 0 && rr.j->live.present)
		r = rec_live(&rr, &le);
	if (r == 0) {
		r = rec_lock(&rr, &le);
		if (r < 0 && r != -ENOMEM) {
			/* lock_hold_many dropped every lock it took */
			rr.nlocks = 0;
			it->outcome = REC_BLOCKED;
			item_msg(it, "in use, nothing changed: %s", le.msg);
			rec_free(&rr);
			return err_propagate(e, &le);
		}
	}
	if (r == 0)
		r = rec_run_locked(&rr, &le);
	if (r < 0 && !it->msg[0]) {
		it->outcome = REC_FAILED;
		item_msg(it, "%s (journal kept; run recover again)", le.msg);
	}
	rec_free(&rr);
	return r < 0 ? err_propagate(e, &le) : 0;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int scan_dir(const char *dir, bool rollback, struct rec_report *rep,
		    int *first_err, struct img_err *e)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];
	struct img_err ie;
	int r, n;

	/* Temporaries of a writer that died (journal, users file, created
	 * image) first: none of them is a journal. */
	err_clear(&ie);
	r = io_replace_clean(dir, &n, &ie);
	rep->stale_tmp_removed += n;
	if (r < 0 && !*first_err) {
		*first_err = r;
		err_propagate(e, &ie);
	}
	d = opendir(dir);
	if (!d)
		return err_set_errno(e, errno, "%s: cannot read directory",
				     dir);
	while ((de = readdir(d))) {
		struct rec_item *nv;

		if (strncmp(de->d_name, JOURNAL_PREFIX,
			    strlen(JOURNAL_PREFIX)) ||
		    ends_with(de->d_name, ".bad"))
			continue;
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
		r = recover_journal(path, rollback, &rep->v[rep->n], &ie);
		rep->n++;
		if (r < 0 && !*first_err) {
			*first_err = r;
			err_propagate(e, &ie);
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
		/* after the journals: a relink recover finished has set its
		 * transaction DONE, which drops the prot line */
		if (r == 0)
			r = recover_prot_scan(dir, rep, e);
		if (r < 0)
			return r;
	}
	return first_err;
}
