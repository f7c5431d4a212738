/* commit_delete.c - --delete: move what the plan listed into the trash,
 * after checking on a fresh scan that nothing reads it any more. */
#include "commit_int.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct paths {
	char **v;
	int n;
};

static int add_path(struct paths *ps, const char *p)
{
	char **nv;

	for (int i = 0; i < ps->n; i++)
		if (!strcmp(ps->v[i], p))
			return 0;
	nv = realloc(ps->v, sizeof(*nv) * (size_t)(ps->n + 1));
	if (!nv)
		return -ENOMEM;
	ps->v = nv;
	if (!(nv[ps->n] = strdup(p)))
		return -ENOMEM;
	ps->n++;
	return 0;
}

static int add_dir_of(struct paths *ps, const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	return add_path(ps, dirname(tmp));
}

/* The pool as given, and the directories of every file the commit
 * touched or moves. */
static int scan_paths(const struct graph *g, const struct plan *p,
		      struct paths *ps)
{
	int r = 0;

	for (int i = 0; r == 0 && i < g->npool_paths; i++)
		r = add_path(ps, g->pool_paths[i]);
	if (r == 0)
		r = add_dir_of(ps, g->nodes[p->top].path);
	if (r == 0)
		r = add_dir_of(ps, g->nodes[p->base].path);
	for (int i = 0; r == 0 && i < p->ninter; i++)
		r = add_dir_of(ps, g->nodes[p->inter[i]].path);
	for (int i = 0; r == 0 && i < p->nparents; i++)
		if (p->parents[i].node >= 0)
			r = add_dir_of(ps, p->parents[i].path);
	for (int i = 0; r == 0 && i < p->ntrash; i++)
		r = add_dir_of(ps, g->nodes[p->trash[i].node].path);
	return r;
}

static int fresh_id(const struct graph *g2, const struct gnode *n)
{
	for (int i = 0; i < g2->n; i++)
		if (g2->nodes[i].dev == n->dev && g2->nodes[i].ino == n->ino)
			return i;
	return -1;
}

/* A kept file's outcome, after those of trash_move. */
static int add_kept(struct trash_report *rep, const char *path,
		    const char *why)
{
	struct trash_outcome *nv = realloc(rep->v, sizeof(*nv) *
					   (size_t)(rep->n + 1));

	if (!nv)
		return -ENOMEM;
	rep->v = nv;
	memset(&nv[rep->n], 0, sizeof(*nv));
	if (!(nv[rep->n].path = strdup(path)))
		return -ENOMEM;
	snprintf(nv[rep->n].why, sizeof(nv[rep->n].why), "%s", why);
	rep->n++;
	return 0;
}

/* What still may move, checked on g2: requests into *req, the rest kept
 * in res->trash with why. */
struct delete_run {
	const struct graph *g, *g2;
	const struct plan *p;
	int *cand;                 /* g2 ids */
	int *from;                 /* plan trash index of each candidate */
	int ncand;
	bool *going;               /* by g2 id */
	char **why;
	struct trash_req *req;
	int nreq;
};

static int recheck(struct delete_run *d, struct commit_result *res)
{
	int r;

	for (int i = 0; i < d->p->ntrash; i++) {
		const struct plan_trash *t = &d->p->trash[i];
		const struct gnode *n = &d->g->nodes[t->node];
		int id = t->moves ? fresh_id(d->g2, n) : -1;

		if (!t->moves && (r = add_kept(&res->trash, n->path,
					       t->why ? t->why : "")) < 0)
			return r;
		if (id < 0 || d->going[id])
			continue;   /* kept by the plan, or gone meanwhile */
		d->going[id] = true;
		d->from[d->ncand] = i;
		d->cand[d->ncand++] = id;
	}
	r = plan_trash_settle(d->g2, -1, d->cand, d->ncand, d->going, NULL,
			      d->why);
	for (int i = 0; r == 0 && i < d->ncand; i++) {
		const struct gnode *n =
			&d->g->nodes[d->p->trash[d->from[i]].node];

		if (!d->going[d->cand[i]]) {
			r = add_kept(&res->trash, n->path, d->why[i]);
			continue;
		}
		d->req[d->nreq++] = (struct trash_req){
			n->path, (uint64_t)n->dev, (uint64_t)n->ino };
	}
	return r;
}

static int run(struct delete_run *d, uint64_t txid, struct commit_result *res,
	       struct img_err *e)
{
	struct trash_report kept;
	char base[PATH_MAX];
	int r;

	r = recheck(d, res);
	if (r < 0)
		return err_set(e, ENOMEM, "out of memory");
	kept = res->trash;
	memset(&res->trash, 0, sizeof(res->trash));
	r = commit_abs_path(d->g->nodes[d->p->base].path, base, sizeof(base),
			    e);
	if (r == 0 && d->nreq)
		r = trash_move(d->req, d->nreq, txid, base, &res->trash, e);
	/* the kept ones after the moved ones */
	for (int i = 0; i < kept.n; i++)
		add_kept(&res->trash, kept.v[i].path, kept.v[i].why);
	trash_report_free(&kept);
	res->deleted = res->trash.moved;
	if (r < 0)
		err_prefix(e, "the commit itself completed, but --delete "
			   "failed: ");
	return r;
}

int commit_delete_files(const struct graph *g, const struct plan *p,
			uint64_t txid, struct commit_result *res,
			struct img_err *e)
{
	struct scan_opts so = { .users_file = g->users_file,
				.probe_locks = true };
	struct delete_run d = { .g = g, .p = p };
	struct paths ps = { 0 };
	struct graph *g2 = NULL;
	int r;

	if (!p->ntrash)
		return 0;
	r = scan_paths(g, p, &ps);
	if (r < 0)
		r = err_set(e, ENOMEM, "out of memory");
	else
		r = graph_scan(ps.v, ps.n, &so, &g2, e);
	if (r == 0) {
		d.g2 = g2;
		d.cand = calloc((size_t)p->ntrash, sizeof(int));
		d.from = calloc((size_t)p->ntrash, sizeof(int));
		d.why = calloc((size_t)p->ntrash, sizeof(char *));
		d.req = calloc((size_t)p->ntrash, sizeof(*d.req));
		d.going = calloc((size_t)g2->n + 1, sizeof(bool));
		r = d.cand && d.from && d.why && d.req && d.going ?
		    run(&d, txid, res, e) : err_set(e, ENOMEM, "out of memory");
	} else {
		err_prefix(e, "the commit itself completed, but --delete could "
			   "not rescan the pool (nothing was moved): ");
	}
	for (int i = 0; d.why && i < p->ntrash; i++)
		free(d.why[i]);
	free(d.why);
	free(d.cand);
	free(d.from);
	free(d.req);
	free(d.going);
	for (int i = 0; i < ps.n; i++)
		free(ps.v[i]);
	free(ps.v);
	graph_free(g2);
	return r;
}

void commit_result_free(struct commit_result *res)
{
	if (res)
		trash_report_free(&res->trash);
}
