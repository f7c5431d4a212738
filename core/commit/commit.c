/* commit.c - execute a plan: lock, copy, flush, relink, clean up.
 *
 * Order, each step a dependency of the next:
 *   1. refuse a plan with conflicts or a pending journal; rescan and
 *      rebuild the plan (fail early);
 *   2. QEMU-protocol locks on base, top, intermediates and every parent
 *      file, held on one fd each until the end;
 *   3. re-read the chain's headers under the locks (TOCTOU);
 *   4. check base's metadata (no corruption), copy into base (grow
 *      first), flush base (data before the metadata that will point at
 *      it: the relinked headers);
 *   5. confirm; re-check the locks, take the write lock on every parent;
 *   6. journaled relink (relink.c);
 *   7. cleanup (empty a kept leaf top), remove the journal, then --delete.
 * A cancel is honoured up to step 5; after it the relink runs to the end.
 */
#include "commit.h"
#include "formats/img.h"
#include "commit_int.h"
#include "copy.h"
#include "formats/io/io.h"
#include "journal.h"
#include "core/graph/perm.h"
#include "relink.h"
#include "core/graph/resolve.h"
#include "core/graph/users.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What each role holds and shares: base is written and may grow, top and
 * the intermediates are only read; every file shares reads only, so nobody
 * else writes what the commit reads or relinks. */
#define BASE_PERM    (PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE)
#define READER_PERM  PERM_CONSISTENT_READ
#define WRITER_PERM  (PERM_CONSISTENT_READ | PERM_WRITE)
#define SHARE_READ   (PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED)

struct commit_run {
	struct graph *g;
	const struct plan *p;
	const struct commit_opts *o;
	struct commit_result *res;
	struct commit_file *f;
	int nf;
	bool keep_top;             /* leaf top relinked onto base + emptied */
	char jpath[PATH_MAX];
	struct chain *chain;
	struct img *base;
};

static bool cancel_requested(const struct commit_opts *o)
{
	return o && o->cancel && *o->cancel;
}

/* Report a phase; a callback asking to cancel sets the cancel flag, which
 * is honoured at the next safe point (never inside the relink). */
static void phase(const struct commit_opts *o, const char *name,
		  uint64_t done, uint64_t total)
{
	if (progress_update(o ? o->progress : NULL, name, done, total) &&
	    o && o->cancel)
		*o->cancel = 1;
}

static int add_file(struct commit_run *cr, enum commit_role role, int node,
		    bool relink)
{
	for (int i = 0; i < cr->nf; i++)
		if (cr->f[i].node == node) {
			cr->f[i].relink |= relink;
			return 0;
		}
	cr->f[cr->nf].role = role;
	cr->f[cr->nf].node = node;
	cr->f[cr->nf].relink = relink;
	lock_hold_init(&cr->f[cr->nf].lock);
	cr->nf++;
	return 0;
}

static int take_locks(struct commit_run *cr, struct img_err *e)
{
	struct lock_req *req = calloc((size_t)cr->nf, sizeof(*req));
	struct lock_hold *h = calloc((size_t)cr->nf, sizeof(*h));
	int r;

	if (!req || !h) {
		free(req);
		free(h);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (int i = 0; i < cr->nf; i++) {
		struct commit_file *f = &cr->f[i];
		req[i].path = cr->g->nodes[f->node].path;
		req[i].rdwr = f->role == ROLE_BASE || f->relink;
		req[i].shared = SHARE_READ;
		/* Parents need nothing during the copy, but nobody may
		 * start writing them: their relink comes next. */
		req[i].perm = f->role == ROLE_BASE ? BASE_PERM
			      : f->role == ROLE_PARENT ? 0 : READER_PERM;
	}
	r = lock_hold_many(h, req, cr->nf, e);
	if (r == 0)
		for (int i = 0; i < cr->nf; i++)
			cr->f[i].lock = h[i];
	free(req);
	free(h);
	return r;
}

static struct commit_file *file_of(struct commit_run *cr, int node)
{
	for (int i = 0; i < cr->nf; i++)
		if (cr->f[i].node == node)
			return &cr->f[i];
	return NULL;
}

/* Base is about to be written: refuse one whose metadata a consistency
 * check finds corrupt (qemu-img check exit 2), since allocating into a
 * cluster that is really in use elsewhere would spread the damage.  Leaks
 * are harmless and allowed.  Reads only; nothing is written. */
static int check_base(struct commit_run *cr, struct img_err *e)
{
	struct img_check ck = { 0 };
	int r;

	if (!img_can_check(cr->base))
		return 0;               /* raw: nothing to check */
	phase(cr->o, "check", 0, 1);
	r = img_check(cr->base, &ck, e);
	if (r == 0 && (ck.corruptions || ck.check_errors))
		r = err_set(e, EUCLEAN, "%s: base has %llu corruption(s)%s "
			    "(first: %s); repair it with 'qemu-img check -r "
			    "all' first; nothing was written",
			    cr->base->path,
			    (unsigned long long)ck.corruptions,
			    ck.check_errors ? " and parts that could not be "
			    "checked" : "", ck.nmsgs ? ck.msgs[0] : "none");
	img_check_free(&ck);
	if (r == 0)
		phase(cr->o, "check", 1, 1);
	return r;
}

/* Check base, copy, flush.  Returns 0, -ECANCELED or another -errno. */
static int run_copy(struct commit_run *cr, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	struct copy_opts co = { .rate = cr->o ? cr->o->rate : 0,
				.progress = cr->o ? cr->o->progress : NULL,
				.cancel = cr->o ? cr->o->cancel : NULL,
				.method = cr->o ? cr->o->copy_method
						: COPY_AUTO };
	struct copy_stats cs;
	int nabove, r;

	/* A parent larger than top reads zeros past top's end today; after
	 * the relink it reads base there, so base must hold zeros too. */
	for (int i = 0; i < cr->p->nparents; i++) {
		int n = cr->p->parents[i].node;
		if (n >= 0 && n != cr->p->top &&
		    cr->g->nodes[n].info.virtual_size > co.view_size)
			co.view_size = cr->g->nodes[n].info.virtual_size;
	}

	r = chain_open(top->path, top->format, 0, 0, 0, &cr->chain, e);
	if (r < 0)
		return r;
	r = commit_check_chain(cr->g, cr->p, cr->chain, &nabove, e);
	if (r < 0)
		return r;
	r = img_open_fd(file_of(cr, cr->p->base)->lock.fd, base->path,
			base->format, IMG_O_RDWR, &cr->base, NULL, e);
	if (r < 0)
		return r;
	r = check_base(cr, e);
	if (r < 0)
		return r;
	r = copy_run(cr->chain, nabove, cr->base, &co, &cs, e);
	cr->res->bytes_copied = cs.bytes_written + cs.bytes_zeroed;
	memcpy(cr->res->bytes_how, cs.bytes_how, sizeof(cs.bytes_how));
	/* Flush even after a failure or cancel: whatever reached base must
	 * not be half-durable when the next run starts from it. */
	phase(cr->o, "flush", 0, 1);
	{
		struct img_err fe;
		int fr = img_flush(cr->base, &fe);
		if (fr < 0 && r == 0)
			r = err_propagate(e, &fe);
	}
	if (r == 0)
		phase(cr->o, "flush", 1, 1);
	chain_close(cr->chain);
	cr->chain = NULL;
	return r;
}

static int fill_target(struct commit_run *cr, int node, const char *new_name,
		       const char *new_fmt, bool relative,
		       struct relink_target *t)
{
	const struct gnode *nd = &cr->g->nodes[node];

	t->path = nd->path;
	t->fmt = nd->format;
	t->fd = file_of(cr, node)->lock.fd;
	t->old_name = nd->backing_name;
	t->old_fmt = nd->backing_fmt;
	t->new_name = new_name;
	t->new_fmt = new_fmt;
	t->relative = relative;
	return 0;
}

/* A PREPARED journal naming base and top by absolute path and dev:ino,
 * with room for every parent (and a leaf top) and their fds. */
static int journal_start(struct commit_run *cr, struct journal **out,
			 int **fds, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	struct journal *j = calloc(1, sizeof(*j));
	char abs[PATH_MAX];
	struct timespec ts;
	int r;

	*out = j;
	*fds = calloc((size_t)cr->p->nparents + 1, sizeof(**fds));
	if (!j || !*fds)
		return err_set(e, ENOMEM, "out of memory");
	clock_gettime(CLOCK_REALTIME, &ts);
	j->txid = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		  ((uint64_t)getpid() << 40);
	j->created = (int64_t)ts.tv_sec;
	j->state = JOURNAL_PREPARED;
	j->base_dev = base->dev;
	j->base_ino = base->ino;
	j->top_dev = top->dev;
	j->top_ino = top->ino;
	j->empty_top = cr->keep_top;
	if ((r = commit_abs_path(base->path, abs, sizeof(abs), e)) < 0)
		return r;
	j->base_path = strdup(abs);
	if ((r = commit_abs_path(top->path, abs, sizeof(abs), e)) < 0)
		return r;
	j->top_path = strdup(abs);
	j->base_fmt = strdup(base->format);
	j->top_fmt = strdup(top->format);
	j->parents = calloc((size_t)cr->p->nparents + 1, sizeof(*j->parents));
	if (!j->base_path || !j->top_path || !j->base_fmt || !j->top_fmt ||
	    !j->parents)
		return err_set(e, ENOMEM, "out of memory");
	return 0;
}

/* Replace record i's path by its absolute form: recovery may run from
 * another directory. */
static int absolute_parent(struct journal *j, int i, struct img_err *e)
{
	char abs[PATH_MAX], *ap;
	int r = commit_abs_path(j->parents[i].path, abs, sizeof(abs), e);

	if (r < 0)
		return r;
	if (!(ap = strdup(abs)))
		return err_set(e, ENOMEM, "out of memory");
	free(j->parents[i].path);
	j->parents[i].path = ap;
	return 0;
}

/* One record per parent file the plan relinks; *nusers counts the plan's
 * users-file entries, *leaf_listed says whether top is among them. */
static int add_parents(struct commit_run *cr, struct journal *j, int *fds,
		       int *nusers, bool *leaf_listed, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	int r;

	for (int i = 0; i < cr->p->nparents; i++) {
		const struct plan_parent *pp = &cr->p->parents[i];
		struct journal_parent *jp = &j->parents[j->nparents];
		struct relink_target t;

		if (pp->node < 0) {
			(*nusers)++;
			continue;
		}
		fill_target(cr, pp->node, pp->new_name, pp->new_fmt,
			    pp->relative, &t);
		r = relink_prepare_parent(&t, jp, e);
		if (r == -EALREADY && pp->node == cr->p->top) {
			/* A leaf top right on base (no intermediates: plain
			 * 'qemu-img commit top') already names base; it only
			 * needs emptying, which the journal's empty_top
			 * covers. */
			err_clear(e);
			*leaf_listed = true;
			continue;
		}
		if (r < 0)
			return r;
		fds[j->nparents++] = t.fd;
		*leaf_listed |= jp->dev == top->dev && jp->ino == top->ino;
		if ((r = absolute_parent(j, j->nparents - 1, e)) < 0)
			return r;
	}
	return 0;
}

/* qemu-img semantics for a leaf top the plan does not list as its own
 * parent: it stays, relinked onto base (unless it names base already). */
static int add_leaf_top(struct commit_run *cr, struct journal *j, int *fds,
			struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	struct journal_parent *jp = &j->parents[j->nparents];
	char name[IMG_BACKING_NAME_MAX + 1];
	bool rel = top->backing_name && top->backing_name[0] != '/';
	struct relink_target t;
	int r = resolve_make_name(top->path, base->path, rel, name,
				  sizeof(name), e);

	if (r < 0)
		return r;
	fill_target(cr, cr->p->top, name, base->format, rel, &t);
	r = relink_prepare_parent(&t, jp, e);
	if (r == -EALREADY) {
		err_clear(e);   /* names base already: empty only */
		return 0;
	}
	if (r < 0)
		return r;
	free(jp->path);
	jp->path = strdup(j->top_path);
	if (!jp->path)
		return err_set(e, ENOMEM, "out of memory");
	fds[j->nparents++] = t.fd;
	return 0;
}

/* The users file's new text, when the commit repoints any entry. */
static int add_users(struct commit_run *cr, struct journal *j, int nusers,
		     struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	char abs[PATH_MAX], *text = NULL;
	size_t len = 0;
	int changed = 0, r;

	if (!cr->g->users_file) {
		if (!nusers)
			return 0;
		return err_set(e, EINVAL, "the plan repoints %d users-file "
			       "entr%s but no users file is loaded", nusers,
			       nusers == 1 ? "y" : "ies");
	}
	r = users_repoint(cr->g->users_file, top->dev, top->ino, base->path,
			  &text, &len, &changed, e);
	if (r == 0 && changed > 0) {
		r = commit_abs_path(cr->g->users_file, abs, sizeof(abs), e);
		if (r == 0)
			r = relink_prepare_users(abs, text, len, &j->users, e);
	}
	free(text);
	return r;
}

static int build_journal(struct commit_run *cr, struct journal **out,
			 int **fds_out, struct img_err *e)
{
	struct journal *j;
	int *fds, nusers = 0, r;
	bool leaf_listed = false;

	r = journal_start(cr, &j, &fds, e);
	if (r == 0)
		r = add_parents(cr, j, fds, &nusers, &leaf_listed, e);
	if (r == 0 && cr->keep_top && !leaf_listed)
		r = add_leaf_top(cr, j, fds, e);
	if (r == 0)
		r = add_users(cr, j, nusers, e);
	if (r < 0) {
		free(fds);
		journal_free(j);
		return r;
	}
	*out = j;
	*fds_out = fds;
	return 0;
}

static int empty_top(struct commit_run *cr, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	struct img *img;
	int r = img_open_fd(file_of(cr, cr->p->top)->lock.fd, top->path,
			    top->format, IMG_O_RDWR, &img, NULL, e);

	if (r < 0)
		return r;
	r = img_make_empty(img, e);
	if (r == 0)
		r = img_flush(img, e);
	img_close(img);
	return r;
}

static int relink_phase(struct commit_run *cr, struct img_err *e)
{
	struct journal *j = NULL;
	int *fds = NULL, r;

	/* Re-validate just before the relink: nobody took a lock we refuse
	 * meanwhile, and every parent can now be held as a writer. */
	for (int i = 0; i < cr->nf; i++) {
		r = lock_hold_recheck(&cr->f[i].lock, e);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < cr->nf; i++) {
		if (!cr->f[i].relink)
			continue;
		r = lock_hold_set(&cr->f[i].lock, WRITER_PERM, SHARE_READ, e);
		if (r < 0)
			return r;
	}
	r = build_journal(cr, &j, &fds, e);
	if (r < 0)
		return r;
	phase(cr->o, "relink", 0, (uint64_t)j->nparents);
	r = relink_apply(cr->jpath, j, fds, e);
	if (r < 0)
		goto out;
	cr->res->relinked = j->nparents;
	phase(cr->o, "relink", (uint64_t)j->nparents, (uint64_t)j->nparents);
	phase(cr->o, "cleanup", 0, 1);
	if (cr->keep_top) {
		r = empty_top(cr, e);
		if (r < 0) {
			err_prefix(e, "relink done, but emptying top failed "
				   "(run 'imgraph recover' to finish): ");
			goto out;
		}
	}
	r = journal_remove(cr->jpath, e);
	if (r < 0)
		err_prefix(e, "relink done, but the journal is still there (run "
			   "'imgraph recover' to remove it): ");
out:
	free(fds);
	journal_free(j);
	return r;
}

int commit_execute(struct graph *g, const struct plan *p,
		   const struct commit_opts *o, struct commit_result *res,
		   struct img_err *e)
{
	struct commit_result dummy;
	struct commit_run cr = { .g = g, .p = p, .o = o };
	struct stat st;
	int r;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	cr.res = res;
	if (p->nconflicts)
		return err_set(e, EBUSY, "the plan has %d conflict%s; nothing "
			       "was written", p->nconflicts,
			       p->nconflicts == 1 ? "" : "s");
	if (p->top < 0 || p->base < 0 || p->top >= g->n || p->base >= g->n ||
	    !g->nodes[p->top].format || !g->nodes[p->base].format)
		return err_set(e, EINVAL, "the plan has no valid top/base");
	r = journal_path_for(g->nodes[p->base].path, cr.jpath,
			     sizeof(cr.jpath), e);
	if (r < 0)
		return r;
	if (lstat(cr.jpath, &st) == 0)
		return err_set(e, EBUSY, "%s: an interrupted relink of this "
			       "base is pending; run 'imgraph recover' first",
			       cr.jpath);
	cr.keep_top = p->top_is_leaf && !(o && o->drop_top);

	r = commit_revalidate(g, p, o && o->drop_top, e);
	if (r < 0)
		return r;

	cr.f = calloc((size_t)p->nparents + (size_t)p->ninter + 2,
		      sizeof(*cr.f));
	if (!cr.f)
		return err_set(e, ENOMEM, "out of memory");
	add_file(&cr, ROLE_BASE, p->base, false);
	add_file(&cr, ROLE_TOP, p->top, cr.keep_top);
	for (int i = 0; i < p->ninter; i++)
		add_file(&cr, ROLE_INTER, p->inter[i], false);
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node >= 0)
			add_file(&cr, ROLE_PARENT, p->parents[i].node, true);
	r = take_locks(&cr, e);
	if (r < 0)
		goto out;

	r = run_copy(&cr, e);
	if (r < 0)
		goto out;
	if (cancel_requested(o)) {
		r = err_set(e, ECANCELED, "commit cancelled after the copy; "
			    "every image is valid and parents still use top");
		goto out;
	}
	if (!cr.keep_top && p->top_is_leaf) {
		/* --drop-top on a leaf: nothing names top, nothing to relink. */
	} else if (o && o->confirm_relink &&
		   !o->confirm_relink(o->confirm_opaque, g, p)) {
		res->relink_declined = true;
		r = 0;
		goto out;
	} else {
		r = relink_phase(&cr, e);
		if (r < 0)
			goto out;
	}
	if (o && o->delete_files) {
		r = commit_delete_files(g, p, cr.keep_top, e);
		if (r < 0)
			goto out;
		res->deleted = r;
	}
	phase(o, "cleanup", 1, 1);
	r = 0;
out:
	img_close(cr.base);
	chain_close(cr.chain);
	for (int i = 0; i < cr.nf; i++)
		lock_hold_close(&cr.f[i].lock);
	free(cr.f);
	return r;
}
