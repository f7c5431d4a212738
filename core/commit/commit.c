/* commit.c - execute a plan: lock, copy, flush, relink, clean up.
 *
 * Order, each step a dependency of the next:
 *   1. refuse a plan with conflicts or a pending journal; rescan the
 *      whole pool and rebuild the plan (fail early);
 *   2. QEMU-protocol locks on base, top, intermediates and every parent
 *      file, each as its role says (core/plan/policy.h), held on one fd
 *      each until the end;
 *   3. re-read the chain's headers under the locks (TOCTOU);
 *   4. check base's metadata (no corruption), copy into base (grow
 *      first), flush base (data before the metadata that will point at
 *      it: the relinked headers);
 *   5. confirm; re-check the locks;
 *   6. journaled relink (relink.c);
 *   7. cleanup (empty a kept leaf top), remove the journal, then --delete.
 * A cancel is honoured up to step 5; after it the relink runs to the end.
 */
#include "commit.h"
#include "formats/img.h"
#include "commit_int.h"
#include "copy.h"
#include "pull.h"
#include "formats/io/io.h"
#include "journal.h"
#include "core/plan/plan_protect.h"
#include "core/plan/policy.h"
#include "protect.h"
#include "relink.h"
#include "core/graph/resolve.h"
#include "core/graph/users.h"
#include "users_tx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static bool cancel_requested(const struct commit_opts *o)
{
	return o && o->cancel && *o->cancel;
}

/* Report a phase; a callback asking to cancel sets the cancel flag, which
 * is honoured at the next safe point (never inside the relink). */
void commit_phase(const struct commit_opts *o, const char *name,
		  uint64_t done, uint64_t total)
{
	if (progress_update(o ? o->progress : NULL, name, done, total) &&
	    o && o->cancel)
		*o->cancel = 1;
}

static bool offline_parent(const struct plan *p, int node)
{
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == node)
			return !p->parents[i].live;
	return false;
}

/* Every file the plan opens, locked as its role says for the whole run
 * (the parents as writers already: nobody may start writing a header the
 * relink rewrites). */
static int take_locks(struct commit_run *cr, struct img_err *e)
{
	struct lock_req *req = NULL;
	struct lock_hold *h = NULL;
	int *ids = NULL, n = 0, r;

	if (plan_files(cr->p, &ids, &n) == 0) {
		req = calloc((size_t)n, sizeof(*req));
		h = calloc((size_t)n, sizeof(*h));
		cr->f = calloc((size_t)n, sizeof(*cr->f));
	}
	r = !ids || !req || !h || !cr->f ? err_set(e, ENOMEM, "out of memory")
					 : 0;
	/* A live part: the process holds its chain and its overlays of top;
	 * imgraph holds only the parents it relinks offline. */
	for (int i = 0, k = 0; r == 0 && i < n; i++) {
		struct role_policy rp;

		if (cr->p->live.job && !offline_parent(cr->p, ids[i])) {
			memmove(ids + i, ids + i + 1, sizeof(*ids) *
				(size_t)(n - i - 1));
			n--;
			i--;
			continue;
		}
		plan_policy(cr->g, cr->p, ids[i], &rp);
		req[k++] = (struct lock_req){ cr->g->nodes[ids[i]].path,
					      rp.write, rp.perm, rp.shared };
	}
	if (r == 0)
		r = lock_hold_many(h, req, n, e);
	for (int i = 0; r == 0 && i < n; i++)
		cr->f[cr->nf++] = (struct commit_file){ ids[i], h[i] };
	free(ids);
	free(req);
	free(h);
	return r;
}

struct commit_file *commit_file_of(struct commit_run *cr, int node)
{
	for (int i = 0; i < cr->nf; i++)
		if (cr->f[i].node == node)
			return &cr->f[i];
	return NULL;
}

/* Base (top, for a pull) is about to be written: refuse one whose
 * metadata a consistency check finds corrupt (qemu-img check exit 2),
 * since allocating into a cluster that is really in use elsewhere would
 * spread the damage.  Leaks are harmless and allowed.  Reads only;
 * nothing is written. */
static int check_base(struct commit_run *cr, struct img *img,
		      struct img_err *e)
{
	struct img_check ck = { 0 };
	int r;

	if (!img_can_check(img))
		return 0;               /* raw: nothing to check */
	commit_phase(cr->o, "check", 0, 1);
	r = img_check(img, &ck, e);
	if (r == 0 && (ck.corruptions || ck.check_errors))
		r = err_set(e, EUCLEAN, "%s: %s has %llu corruption(s)%s "
			    "(first: %s); repair it with 'qemu-img check -r "
			    "all' first; nothing was written",
			    img->path, cr->p->pull ? "top" : "base",
			    (unsigned long long)ck.corruptions,
			    ck.check_errors ? " and parts that could not be "
			    "checked" : "", ck.nmsgs ? ck.msgs[0] : "none");
	img_check_free(&ck);
	if (r == 0)
		commit_phase(cr->o, "check", 1, 1);
	return r;
}

/* A pull (plan.pull): check top, write the data between top and base
 * into it where it allocates nothing, flush top before the relink journal
 * (pull.h).  Its handle is closed before the relink rewrites its header. */
static int run_pull(struct commit_run *cr, int nabove, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	struct pull_opts po = { .rate = cr->o ? cr->o->rate : 0,
				.progress = cr->o ? cr->o->progress : NULL,
				.cancel = cr->o ? cr->o->cancel : NULL };
	struct pull_stats ps = { 0 };
	struct img_err fe = { 0 };
	struct img *t = NULL;
	int r, fr;

	r = img_open_fd(commit_file_of(cr, cr->p->top)->lock.fd, top->path,
			top->format, IMG_O_RDWR, &t, NULL, e);
	if (r < 0)
		return r;
	r = check_base(cr, t, e);
	if (r == 0)
		r = pull_run(cr->chain, nabove, t, &po, &ps, e);
	cr->res->bytes_copied = ps.bytes_written + ps.bytes_zeroed;
	cr->res->bytes_how[IO_COPY_RW] = ps.bytes_written;
	/* Flush even after a failure: what reached top is its own view. */
	commit_phase(cr->o, "flush", 0, 1);
	fr = img_flush(t, &fe);
	if (fr < 0 && r == 0)
		r = err_propagate(e, &fe);
	img_close(t);
	if (r == 0)
		commit_phase(cr->o, "flush", 1, 1);
	return r;
}

/* --protect: every protected reader and the chain of its backing file
 * (its old view), opened before base is grown or written; commit_window
 * calls protect_window before each window reaches base. */
static int protect_setup(struct commit_run *cr, struct img_err *e)
{
	const struct plan_protect *pp = cr->p->protect;
	struct protect_target *t;
	int n = 0, r, *nodes;

	if (!pp || !pp->on || !pp->n)
		return 0;
	t = calloc((size_t)pp->n, sizeof(*t));
	nodes = calloc((size_t)pp->n, sizeof(*nodes));
	if (!t || !nodes) {
		free(t);
		free(nodes);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (int i = 0; i < pp->n; i++) {
		const struct gnode *nd = &cr->g->nodes[pp->r[i].node];
		const struct commit_file *f = commit_file_of(cr, nd->id);

		if (!f) {
			free(t);
			free(nodes);
			return err_set(e, EINVAL, "%s: a protected reader the "
				       "commit did not lock", nd->path);
		}
		if (nd->backing < 0) {
			free(t);
			free(nodes);
			return err_set(e, ESTALE, "%s: a protected reader without "
				       "a backing file; plan again", nd->path);
		}
		nodes[n] = pp->r[i].node;
		t[n++] = (struct protect_target){
			nd->path, nd->format, f->lock.fd,
			cr->g->nodes[nd->backing].path,
			cr->g->nodes[nd->backing].format };
	}
	{
		const struct gnode *top = &cr->g->nodes[cr->p->top];
		const struct gnode *base = &cr->g->nodes[cr->p->base];
		struct protect_src src = { top->path, top->format, base->dev,
					   base->ino, base->info.cluster_size };

		r = commit_prot_resume(cr, t, nodes, n, e);
		if (r == 0)
			r = protect_open(&cr->prot, t, n, &src, e);
	}
	free(t);
	free(nodes);
	if (r < 0)
		return r;
	cr->prot.safe = cr->prot.recorded = cr->prot_tx.prot_done;
	cr->prot.record = commit_prot_record;
	cr->prot.record_opaque = cr;
	return 0;
}

/* Before each window reaches base: a reader that appeared meanwhile stops
 * the copy (commit_watch.c); then --protect's readers get their old view
 * of it. */
static int commit_window(void *opaque, const uint64_t *runs, size_t nruns,
			 struct img_err *e)
{
	struct commit_run *cr = opaque;
	uint64_t last = runs[2 * nruns - 1];

	int r = commit_watch_step(cr, last, runs[0], false, e);

	if (r < 0)
		return r;
	return cr->prot.c ? protect_window(&cr->prot, runs, nruns, e) : 0;
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

	r = chain_open_stated(top->path, top->format, 0, 0, 0, cr->g->stated,
			      cr->g->nstated, &cr->chain, e);
	if (r < 0)
		return r;
	r = commit_check_chain(cr->g, cr->p, cr->chain, &nabove, e);
	if (r < 0)
		return r;
	if (cr->p->pull) {
		r = run_pull(cr, nabove, e);
		chain_close(cr->chain);
		cr->chain = NULL;
		return r;
	}
	r = img_open_fd(commit_file_of(cr, cr->p->base)->lock.fd, base->path,
			base->format, IMG_O_RDWR, &cr->base, NULL, e);
	if (r < 0)
		return r;
	r = check_base(cr, cr->base, e);
	if (r == 0)
		r = protect_setup(cr, e);
	if (r < 0)
		return r;
	co.before_write = commit_window;
	co.before_opaque = cr;
	/* From the first byte written into base the intermediates are
	 * stale: recorded before it, durably. */
	r = commit_stale_begin(cr->g, cr->p, cr->txid, &cr->prot_tx, e);
	if (r < 0)
		return r;
	r = copy_run(cr->chain, nabove, cr->base, &co, &cs, e);
	{
		/* what was whole before a failing window stays recorded */
		struct img_err pe;
		int pr = protect_record(&cr->prot, &pe);
		if (pr < 0 && r == 0)
			r = err_propagate(e, &pe);
	}
	cr->res->bytes_protected = protect_bytes(&cr->prot);
	cr->res->bytes_reprotected = protect_gap_bytes(&cr->prot);
	protect_close(&cr->prot);
	cr->res->bytes_copied = cs.bytes_written + cs.bytes_zeroed;
	memcpy(cr->res->bytes_how, cs.bytes_how, sizeof(cs.bytes_how));
	/* Flush even after a failure or cancel: whatever reached base must
	 * not be half-durable when the next run starts from it. */
	commit_phase(cr->o, "flush", 0, 1);
	{
		struct img_err fe;
		int fr = img_flush(cr->base, &fe);
		if (fr < 0 && r == 0)
			r = err_propagate(e, &fe);
	}
	if (r == 0)
		commit_phase(cr->o, "flush", 1, 1);
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
	t->fd = commit_file_of(cr, node)->lock.fd;
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
	j->txid = cr->txid;
	j->created = (int64_t)ts.tv_sec;
	j->state = JOURNAL_PREPARED;
	j->base_dev = base->dev;
	j->base_ino = base->ino;
	j->top_dev = top->dev;
	j->top_ino = top->ino;
	j->empty_top = cr->p->leaf == PLAN_LEAF_KEEP;
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

/* One record per parent file the plan relinks (a kept leaf top among
 * them); *nusers counts the plan's users-file entries. */
static int add_parents(struct commit_run *cr, struct journal *j, int *fds,
		       int *nusers, struct img_err *e)
{
	int r;

	for (int i = 0; i < cr->p->nparents; i++) {
		const struct plan_parent *pp = &cr->p->parents[i];
		struct journal_parent *jp = &j->parents[j->nparents];
		struct relink_target t;

		if (pp->node < 0) {
			(*nusers)++;
			continue;
		}
		if (pp->live)
			continue;       /* QEMU's job rewrites it */
		fill_target(cr, pp->node, pp->new_name, pp->new_fmt,
			    pp->relative, &t);
		r = relink_prepare_parent(&t, jp, e);
		if (r == -EALREADY && pp->node == cr->p->top) {
			/* A leaf top right on base (no intermediates: plain
			 * 'qemu-img commit top') already names base; it only
			 * needs emptying, which the journal's empty_top
			 * covers. */
			err_clear(e);
			continue;
		}
		if (r < 0)
			return r;
		fds[j->nparents++] = t.fd;
		if ((r = absolute_parent(j, j->nparents - 1, e)) < 0)
			return r;
	}
	return 0;
}

/* The users file's new text, when the commit repoints any entry: read
 * once, under its lock (held until the relink is over), and repointing
 * exactly the entries the plan listed. */
static int add_users(struct commit_run *cr, struct journal *j, int nusers,
		     struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	const char *uf = cr->g->users_file;
	char abs[PATH_MAX], *text = NULL;
	size_t len = 0;
	int changed = 0, r;

	if (!uf) {
		if (!nusers)
			return 0;
		return err_set(e, EINVAL, "the plan repoints %d users-file "
			       "entr%s but no users file is loaded", nusers,
			       nusers == 1 ? "y" : "ies");
	}
	r = users_tx_begin(&cr->users, uf, nusers > 0, e);
	if (r == 0)
		r = users_repoint_text(uf, cr->users.data, cr->users.len,
				       top->dev, top->ino, base->path, &text,
				       &len, &changed, e);
	if (r == 0 && changed != nusers)
		r = err_set(e, ESTALE, "%s: the users file changed since the "
			    "plan: %d entr%s use top now, %d planned; nothing "
			    "was relinked, plan again", uf, changed,
			    changed == 1 ? "y" : "ies", nusers);
	if (r == 0 && changed > 0) {
		r = commit_abs_path(uf, abs, sizeof(abs), e);
		if (r == 0)
			r = relink_prepare_users(abs, cr->users.data,
						 cr->users.len, text, len,
						 &j->users, e);
	}
	free(text);
	return r;
}

int commit_build_journal(struct commit_run *cr, struct journal **out,
			 int **fds_out, struct img_err *e)
{
	struct journal *j;
	int *fds, nusers = 0, r;

	r = journal_start(cr, &j, &fds, e);
	if (r == 0)
		r = add_parents(cr, j, fds, &nusers, e);
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
	int r = img_open_fd(commit_file_of(cr, cr->p->top)->lock.fd, top->path,
			    top->format, IMG_O_RDWR, &img, NULL, e);

	if (r < 0)
		return r;
	r = img_make_empty(img, e);
	if (r == 0)
		r = img_flush(img, e);
	img_close(img);
	return r;
}

/* A process that opened one of our files without QEMU's locks while the
 * copy ran (no lock test can refuse it): the plan's opener conflict,
 * found late, stops the commit before any header changes. */
int commit_check_late_openers(struct commit_run *cr, struct img_err *e)
{
	struct lock_opener *op = NULL;
	int *ids = NULL, no = 0;
	int r = plan_openers(cr->g, cr->p, &ids, &op, &no, e);

	/* the live part's own process runs the job on its files */
	for (int k = 0; k < no; k++)
		if (plan_live_covers(cr->p, op[k].pid, ids[op[k].idx])) {
			memmove(op + k, op + k + 1, sizeof(*op) *
				(size_t)(no - k - 1));
			no--;
			k--;
		}
	if (r == 0 && no)
		r = err_set(e, EBUSY, "process %d (%s) opened '%s' without "
			    "QEMU's locks during the copy; no header was "
			    "rewritten: base holds top's data and every parent "
			    "still uses top", (int)op[0].pid, op[0].comm,
			    cr->g->nodes[ids[op[0].idx]].path);
	free(op);
	free(ids);
	return r;
}

static int relink_phase(struct commit_run *cr, struct img_err *e)
{
	struct journal *j = NULL;
	int *fds = NULL, r;

	/* Re-validate just before the relink: nobody took a lock we refuse
	 * meanwhile (two starters racing past each other's test), nobody
	 * opened a file without locks. */
	for (int i = 0; i < cr->nf; i++) {
		r = lock_hold_recheck(&cr->f[i].lock, e);
		if (r < 0)
			return r;
	}
	r = commit_check_late_openers(cr, e);
	if (r < 0)
		return r;
	r = commit_build_journal(cr, &j, &fds, e);
	if (r < 0)
		return r;
	commit_phase(cr->o, "relink", 0, (uint64_t)j->nparents);
	r = relink_apply(cr->jpath, j, fds, e);
	if (r < 0)
		goto out;
	cr->res->relinked = j->nparents;
	commit_phase(cr->o, "relink", (uint64_t)j->nparents, (uint64_t)j->nparents);
	commit_phase(cr->o, "cleanup", 0, 1);
	if (cr->p->leaf == PLAN_LEAF_KEEP) {
		r = empty_top(cr, e);
		if (r < 0) {
			err_prefix(e, "relink done, but emptying top failed "
				   "(run 'imgraph recover' to finish): ");
			goto out;
		}
	}
	/* Durable before the journal goes: a crash in between leaves the
	 * journal, and recover sets it again. */
	r = commit_stale_done(cr->g, cr->p, cr->txid, e);
	if (r < 0) {
		err_prefix(e, "relink done, but the stale record is not updated "
			   "(run 'imgraph recover' to finish): ");
		goto out;
	}
	r = journal_remove(cr->jpath, e);
	if (r < 0)
		err_prefix(e, "relink done, but the journal is still there (run "
			   "'imgraph recover' to remove it): ");
out:
	users_tx_end(&cr->users);
	free(fds);
	journal_free(j);
	return r;
}

/* Refuse what must not run: conflicts, no valid pair, a pending journal
 * of this base; then the fresh rescan (fail early). */
static int precheck(struct commit_run *cr, struct img_err *e)
{
	const struct graph *g = cr->g;
	const struct plan *p = cr->p;
	struct stat st;
	int r;

	if (p->nconflicts)
		return err_set(e, EBUSY, "the plan has %d conflict%s; nothing "
			       "was written", p->nconflicts,
			       p->nconflicts == 1 ? "" : "s");
	if (p->top < 0 || p->base < 0 || p->top >= g->n || p->base >= g->n ||
	    !g->nodes[p->top].format || !g->nodes[p->base].format)
		return err_set(e, EINVAL, "the plan has no valid top/base");
	r = journal_path_for(g->nodes[p->base].path, cr->jpath,
			     sizeof(cr->jpath), e);
	if (r < 0)
		return r;
	if (lstat(cr->jpath, &st) == 0)
		return err_set(e, EBUSY, "%s: an interrupted relink of this "
			       "base is pending; run 'imgraph recover' first",
			       cr->jpath);
	return commit_revalidate(g, p, e);
}

/* After the copy: relink (asked first), or, for a dropped leaf top,
 * nothing to relink and the commit is done. */
static int finish(struct commit_run *cr, struct img_err *e)
{
	const struct commit_opts *o = cr->o;

	if (cancel_requested(o))
		return err_set(e, ECANCELED, "commit cancelled after the copy; "
			       "every image is valid and parents still use "
			       "top");
	if (cr->p->leaf != PLAN_LEAF_DROP && o && o->confirm_relink &&
	    !o->confirm_relink(o->confirm_opaque, cr->g, cr->p)) {
		cr->res->relink_declined = true;
		return 0;
	}
	/* the last look for a reader that appeared during the copy: after
	 * the question, which takes as long as the user does (the live
	 * path asks at pending and looks then too) */
	if (!cr->p->pull) {
		int r = commit_new_readers(cr, UINT64_MAX, e);
		if (r < 0)
			return r;
	}
	if (cr->p->leaf == PLAN_LEAF_DROP)
		return commit_stale_done(cr->g, cr->p, cr->txid, e);
	return relink_phase(cr, e);
}

static uint64_t new_txid(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
	       ((uint64_t)getpid() << 40);
}

int commit_execute(struct graph *g, const struct plan *p,
		   const struct commit_opts *o, struct commit_result *res,
		   struct img_err *e)
{
	struct commit_result dummy;
	struct commit_run cr = { .g = g, .p = p, .o = o };
	int r;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	cr.res = res;
	cr.users.fd = -1;
	cr.pull_lock = -1;
	cr.txid = new_txid();
	r = pool_watch_init(&cr.watch, g) < 0 ?
		err_set(e, ENOMEM, "out of memory") : 0;
	if (r == 0 && p->pull && p->base >= 0 && p->base < g->n)
		r = pull_tx_lock(g->nodes[p->base].path, &cr.pull_lock, e);
	if (r == 0)
		r = precheck(&cr, e);
	if (r == 0)
		r = take_locks(&cr, e);
	if (r == 0 && p->live.job)
		r = commit_live_run(&cr, e);
	else if (r == 0)
		r = run_copy(&cr, e);
	if (r == 0 && !p->live.job)
		r = finish(&cr, e);
	img_close(cr.base);
	chain_close(cr.chain);
	protect_close(&cr.prot);
	stale_tx_clear(&cr.prot_tx);
	pool_watch_free(&cr.watch);
	for (int i = 0; i < cr.nf; i++)
		lock_hold_close(&cr.f[i].lock);
	free(cr.f);
	pull_tx_unlock(&cr.pull_lock);
	/* --delete runs once our own locks are gone: it refuses files that
	 * anyone holds locks on. */
	if (r == 0 && !res->relink_declined && o && o->delete_files)
		r = commit_delete_files(g, p, cr.txid, res, e);
	commit_phase(o, "cleanup", 1, 1);
	return r;
}
