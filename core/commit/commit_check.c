/* commit_check.c - the commit's re-validation (fail early, and again after
 * locking) and the --delete step.  See commit_int.h. */
#include "commit_int.h"
#include "core/plan/plan_protect.h"
#include "formats/img.h"
#include "formats/io/io.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int commit_abs_path(const char *path, char *out, size_t outlen,
		    struct img_err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *last = slash ? slash + 1 : path;

	snprintf(tmp, sizeof(tmp), "%s", path);
	if (!realpath(slash ? dirname(tmp) : ".", dir))
		return err_set_errno(e, errno, "%s: cannot resolve its "
				     "directory", path);
	if (snprintf(out, outlen, "%s/%s", strcmp(dir, "/") ? dir : "",
		     last) >= (int)outlen)
		return err_set(e, ENAMETOOLONG, "%s: path too long", path);
	return 0;
}

static bool same_id(const struct gnode *a, const struct gnode *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* --protect: the fresh plan must protect the same readers (a new child of
 * base would otherwise change unprotected). */
static int same_protected(const struct graph *g, const struct plan *p,
			  const struct graph *g2, const struct plan *p2,
			  struct img_err *e)
{
	int n = p->protect && p->protect->on ? p->protect->n : 0;
	int n2 = p2->protect && p2->protect->on ? p2->protect->n : 0;

	if (n != n2)
		return err_set(e, ESTALE, "the pool changed since the plan: "
			       "base has %d other reader%s to protect now, %d "
			       "planned; plan again", n2, n2 == 1 ? "" : "s",
			       n);
	for (int i = 0; i < n2; i++) {
		const struct gnode *x = &g2->nodes[p2->protect->r[i].node];
		bool found = false;

		for (int k = 0; k < n && !found; k++)
			found = same_id(&g->nodes[p->protect->r[k].node], x);
		if (!found)
			return err_set(e, ESTALE, "the pool changed since the "
				       "plan: %s is a new reader of base; plan "
				       "again", x->path);
	}
	return 0;
}

/* The fresh plan must match the one being executed: same parents (by
 * dev:ino), same intermediates, same leaf handling, same protected
 * readers. */
static int same_plan(const struct graph *g, const struct plan *p,
		     const struct graph *g2, const struct plan *p2,
		     struct img_err *e)
{
	if (p2->live.job != p->live.job || p2->live.pid != p->live.pid)
		return err_set(e, ESTALE, "the pool changed since the plan: "
			       "the live part is %s now; plan again",
			       p2->live.job ? "different" : "gone");
	if (p2->ninter != p->ninter || p2->nparents != p->nparents ||
	    p2->leaf != p->leaf)
		return err_set(e, ESTALE, "the pool changed since the plan: %d "
			       "parent%s and %d intermediate%s now, %d and %d "
			       "planned; plan again", p2->nparents,
			       p2->nparents == 1 ? "" : "s", p2->ninter,
			       p2->ninter == 1 ? "" : "s", p->nparents,
			       p->ninter);
	for (int i = 0; i < p2->nparents; i++) {
		const struct plan_parent *q = &p2->parents[i];
		bool found = false;

		if (q->node < 0)
			continue;
		for (int k = 0; k < p->nparents && !found; k++)
			found = p->parents[k].node >= 0 &&
				same_id(&g->nodes[p->parents[k].node],
					&g2->nodes[q->node]);
		if (!found)
			return err_set(e, ESTALE, "the pool changed since the "
				       "plan: %s is a new parent of top; plan "
				       "again", q->path);
	}
	for (int i = 0; i < p2->ninter; i++)
		if (!same_id(&g->nodes[p->inter[i]], &g2->nodes[p2->inter[i]]))
			return err_set(e, ESTALE, "the pool changed since the "
				       "plan: the chain between top and base "
				       "is different; plan again");
	return 0;
}

int commit_revalidate(const struct graph *g, const struct plan *p,
		      struct img_err *e)
{
	struct scan_opts so = { .recursive = g->recursive,
				.users_file = g->users_file,
				.probe_locks = true, .stated = g->stated,
				.nstated = g->nstated };
	/* an active live commit drops a leaf top by itself */
	struct plan_opts po = { .drop_top = p->leaf == PLAN_LEAF_DROP &&
					    p->live.job != PLAN_LIVE_ACTIVE,
				.qmp = p->live.qmp,
				.base_is_raw = p->base_is_raw,
				.ignore_unverified = p->ignore_unverified,
				.nignore_unverified = p->nignore_unverified,
				.pull = p->pull != NULL,
				.protect = p->protect && p->protect->on };
	struct plan_request rq = { .paths = g->pool_paths,
				   .npaths = g->npool_paths, .scan = &so,
				   .top = g->nodes[p->top].path,
				   .base = g->nodes[p->base].path, .plan = &po };
	struct graph *g2 = NULL;
	struct plan *p2 = NULL;
	int r;

	/* The same request over the same pool paths: the pool the plan saw,
	 * as it is now. */
	r = plan_scan(&rq, &g2, &p2, e);
	if (r < 0)
		goto out;
	if (p2->top < 0 || p2->base < 0 || p2->base >= g2->n) {
		r = err_set(e, ESTALE, "the pool changed since the plan: %s or "
			    "%s is no longer in it", rq.top, rq.base);
		goto out;
	}
	if (p2->nconflicts) {
		const struct plan_conflict *c = &p2->conflicts[0];
		r = err_set(e, EBUSY, "the pool changed since the plan; it now "
			    "has %d conflict%s: %s", p2->nconflicts,
			    p2->nconflicts == 1 ? "" : "s",
			    c->message ? c->message : conflict_kind_name(c->kind));
		goto out;
	}
	r = same_plan(g, p, g2, p2, e);
	if (r == 0)
		r = same_protected(g, p, g2, p2, e);
out:
	plan_free(p2);
	graph_free(g2);
	return r;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !*a)
		return !b || !*b;
	return b && !strcmp(a, b);
}

int commit_check_chain(const struct graph *g, const struct plan *p,
		       struct chain *c, int *nabove, struct img_err *e)
{
	int want = p->ninter + 2;

	if (c->n < want)
		return err_set(e, ESTALE, "%s: its backing chain is shorter "
			       "than planned; plan again",
			       g->nodes[p->top].path);
	for (int i = 0; i < want; i++) {
		int id = i == 0 ? p->top : i == want - 1 ? p->base
							 : p->inter[i - 1];
		const struct gnode *nd = &g->nodes[id];
		struct img *l = c->layer[i];
		struct img_backing bk = { 0 };
		struct stat st;

		if (io_fstat(l->fd, &st) < 0 || st.st_dev != nd->dev ||
		    st.st_ino != nd->ino)
			return err_set(e, ESTALE, "%s: the chain now reaches "
				       "%s at depth %d, not the planned file; "
				       "plan again", g->nodes[p->top].path,
				       l->path, i);
		int r = img_get_backing(l, &bk, e);
		if (r < 0)
			return r;
		if (!str_eq(bk.name, nd->backing_name) ||
		    !str_eq(bk.format, nd->backing_fmt))
			return err_set(e, ESTALE, "%s: backing file changed to "
				       "'%s' since the plan read '%s'; plan "
				       "again", l->path, bk.name ? bk.name : "",
				       nd->backing_name ? nd->backing_name
							: "");
	}
	*nabove = want - 1;
	return 0;
}
