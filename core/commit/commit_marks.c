/* commit_marks.c - the commit's entry in the stale record beside base
 * (stale.h): which images it leaves stale or unused, PENDING from before
 * the first write into base, DONE once every parent names base. */
#include "commit_int.h"
#include "stale.h"

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
		    uint64_t txid, struct stale_tx *t, struct img_err *e)
{
	const struct gnode *top = &g->nodes[p->top];
	int r = 0;

	t->txid = txid;
	t->created = (int64_t)time(NULL);
	t->state = STALE_PENDING;
	t->top_dev = (uint64_t)top->dev;
	t->top_ino = (uint64_t)top->ino;
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
		       uint64_t txid, struct img_err *e)
{
	const struct gnode *base = &g->nodes[p->base];
	struct stale_tx t = { 0 };
	char abs[PATH_MAX];
	int r;

	if (leaves_nothing(p))
		return 0;
	r = commit_abs_path(base->path, abs, sizeof(abs), e);
	if (r == 0)
		r = build_tx(g, p, txid, &t, e);
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

	if (leaves_nothing(p))
		return 0;
	return stale_set_state(base->path, (uint64_t)base->dev,
			       (uint64_t)base->ino, txid, STALE_DONE, e);
}
