/* commit_marks.c - the commit's entry in the stale record beside base
 * (stale.h): which images it leaves stale or unused, PENDING from before
 * the first write into base, DONE once every parent names base. */
#include "commit_int.h"
#include "stale.h"
#include "core/plan/plan_protect.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int add_img(struct stale_tx *t, const struct gnode *n,
		   enum stale_role role, struct img_err *e)
{
	char abs[PATH_MAX];
	int r = commit_abs_path(n->path, abs, sizeof(abs), e);

	if (r < 0)
		return r;
	t->v[t->n] = (struct stale_img){ role, (uint64_t)n->dev,
					 (uint64_t)n->ino, strdup(abs) };
	if (!t->v[t->n].path)
		return err_set(e, ENOMEM, "out of memory");
	t->n++;
	return 0;
}

/* The intermediates, and top unless the commit keeps it in use. */
static int build_tx(const struct graph *g, const struct plan *p,
		    uint64_t txid, const struct stale_tx *prot,
		    struct stale_tx *t, struct img_err *e)
{
	const struct gnode *top = &g->nodes[p->top];
	int r = 0;

	t->txid = txid;
	t->created = (int64_t)time(NULL);
	t->state = STALE_PENDING;
	t->top_dev = (uint64_t)top->dev;
	t->top_ino = (uint64_t)top->ino;
	if (prot && prot->prot) {
		/* borrowed: stale_begin copies it */
		t->prot = true;
		t->prot_done = prot->prot_done;
		t->prot_top = prot->prot_top;
		t->rd = prot->rd;
		t->nrd = prot->nrd;
	}
	t->v = calloc((size_t)p->ninter + 1, sizeof(*t->v));
	if (!t->v)
		return err_set(e, ENOMEM, "out of memory");
	for (int i = 0; r == 0 && i < p->ninter; i++)
		r = add_img(t, &g->nodes[p->inter[i]], STALE_INTER, e);
	if (r == 0 && p->leaf != PLAN_LEAF_KEEP)
		r = add_img(t, top, STALE_TOP, e);
	return r;
}

/* A pull leaves every image showing what it showed. */
static bool leaves_nothing(const struct plan *p)
{
	return p->pull || (!p->ninter && p->leaf == PLAN_LEAF_KEEP);
}

int commit_stale_begin(const struct graph *g, const struct plan *p,
		       uint64_t txid, const struct stale_tx *prot,
		       struct img_err *e)
{
	const struct gnode *base = &g->nodes[p->base];
	struct stale_tx t = { 0 };
	char abs[PATH_MAX];
	int r;

	if (leaves_nothing(p) && !(prot && prot->prot))
		return 0;
	r = commit_abs_path(base->path, abs, sizeof(abs), e);
	if (r == 0)
		r = build_tx(g, p, txid, prot, &t, e);
	if (r == 0)
		r = stale_begin(abs, (uint64_t)base->dev, (uint64_t)base->ino,
				&t, e);
	for (int i = 0; i < t.n; i++)
		free(t.v[i].path);
	free(t.v);
	if (r < 0)
		err_prefix(e, "nothing was written: ");
	return r;
}

int commit_stale_done(const struct graph *g, const struct plan *p,
		      uint64_t txid, struct img_err *e)
{
	const struct gnode *base = &g->nodes[p->base];

	if (leaves_nothing(p) && !(p->protect && p->protect->on))
		return 0;
	return stale_set_state(base->path, (uint64_t)base->dev,
			       (uint64_t)base->ino, txid, STALE_DONE, e);
}

/* ---- --protect's journal -------------------------------------------------- */

static int add_reader(struct stale_tx *t, const struct gnode *n,
		      struct img_err *e)
{
	char abs[PATH_MAX];
	int r = commit_abs_path(n->path, abs, sizeof(abs), e);

	if (r < 0)
		return r;
	t->rd[t->nrd] = (struct stale_reader){ (uint64_t)n->dev,
					       (uint64_t)n->ino, strdup(abs) };
	if (!t->rd[t->nrd].path)
		return err_set(e, ENOMEM, "out of memory");
	t->nrd++;
	return 0;
}

static bool listed(const struct stale_tx *t, const struct gnode *n)
{
	for (int k = 0; k < t->nrd; k++)
		if (t->rd[k].dev == (uint64_t)n->dev &&
		    t->rd[k].ino == (uint64_t)n->ino)
			return true;
	return false;
}

int commit_prot_resume(struct commit_run *cr, struct protect_target *t,
		       const int *nodes, int n, struct img_err *e)
{
	const struct gnode *top = &cr->g->nodes[cr->p->top];
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	struct stale_tx old, *nt = &cr->prot_tx;
	char abs[PATH_MAX];
	int r = stale_find_prot(base->path, (uint64_t)base->dev,
				(uint64_t)base->ino, (uint64_t)top->dev,
				(uint64_t)top->ino, &old, e);

	if (r < 0)
		return r;
	stale_tx_clear(nt);
	nt->prot = true;
	nt->rd = calloc((size_t)n + 1, sizeof(*nt->rd));
	if ((r = commit_abs_path(top->path, abs, sizeof(abs), e)) < 0)
		goto out;
	if (!nt->rd || !(nt->prot_top = strdup(abs))) {
		r = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	/* Resumed: only the readers the record lists keep its claim (a
	 * reader new to the pool starts from 0, and joins the record once
	 * this run has passed DONE). */
	nt->prot_done = old.prot ? old.prot_done : 0;
	cr->res->protect_resumed = nt->prot_done;
	for (int i = 0; i < n && r >= 0; i++) {
		const struct gnode *nd = &cr->g->nodes[nodes[i]];

		if (!old.prot || listed(&old, nd)) {
			t[i].done = nt->prot_done;
			r = add_reader(nt, nd, e);
		}
	}
	if (r > 0)
		r = 0;
out:
	stale_tx_clear(&old);
	return r;
}

int commit_prot_record(void *opaque, uint64_t done, struct img_err *e)
{
	struct commit_run *cr = opaque;
	const struct plan_protect *pp = cr->p->protect;
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	struct stale_tx *nt = &cr->prot_tx;
	int r = 0;

	if (done <= nt->prot_done)
		return 0;
	/* past DONE every reader of this run is covered: all are listed */
	for (int k = 0; k < nt->nrd; k++)
		free(nt->rd[k].path);
	nt->nrd = 0;
	for (int i = 0; i < pp->n && r == 0; i++)
		r = add_reader(nt, &cr->g->nodes[pp->r[i].node], e);
	if (r < 0)
		return r;
	nt->prot_done = done;
	return stale_set_prot(base->path, (uint64_t)base->dev,
			      (uint64_t)base->ino, cr->txid, done, nt->rd,
			      nt->nrd, e);
}
