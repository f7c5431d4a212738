/* plan_pool.c - the pool a plan sees is the pool the commit acts on (see
 * plan.h, plan_scan).
 *
 * An image that reads base or an intermediate through its backing file
 * can only be seen if its directory is scanned, and so can a parent of
 * top.  Whatever paths are given, the directories of top and base are
 * scanned; once the plan exists and can run, the directories of the
 * intermediates and of every parent must be among the scanned ones too,
 * or the scan is done again with them added.  Each round only adds
 * directories of images it found, so the rounds end.
 */
#include "plan.h"
#include "core/graph/resolve.h"
#include "formats/img.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct path_set {
	char **v;
	int n;
};

static void set_free(struct path_set *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int set_add(struct path_set *s, const char *path)
{
	char **nv = realloc(s->v, sizeof(*nv) * (size_t)(s->n + 1));

	if (!nv)
		return -ENOMEM;
	s->v = nv;
	if (!(nv[s->n] = strdup(path)))
		return -ENOMEM;
	s->n++;
	return 0;
}

/* The directory part of path ("." when none) into buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *s = strrchr(path, '/');

	if (!s)
		snprintf(buf, len, ".");
	else if (s == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(s - path), path);
	return buf;
}

/* Is directory dir one of the scanned paths of g (or below one, when the
 * scan walked down)?  Compared by real path. */
static bool covered(char *const *paths, int npaths, bool recursive,
		    const char *dir)
{
	char want[PATH_MAX], have[PATH_MAX];
	struct stat st;

	if (!realpath(dir, want))
		return true;    /* gone: nothing there to scan */
	for (int i = 0; i < npaths; i++) {
		size_t l;

		if (stat(paths[i], &st) < 0 || !S_ISDIR(st.st_mode) ||
		    !realpath(paths[i], have))
			continue;
		l = strlen(have);
		if (!strcmp(want, have) ||
		    (recursive && !strncmp(want, have, l) &&
		     (want[l] == '/' || (l == 1 && have[0] == '/'))))
			return true;
	}
	return false;
}

/* Add the directory of path to s unless the scan covers it or s has it:
 * by its real path, relative to the working directory when it lies below
 * it (names of the images found there read as short as the user's). */
static int need_dir(const struct graph *g, struct path_set *s,
		    const char *path)
{
	char d[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX];
	size_t l;

	dir_of(path, d, sizeof(d));
	if (covered(g->pool_paths, g->npool_paths, g->recursive, d) ||
	    covered(s->v, s->n, false, d) || !realpath(d, real))
		return 0;
	if (getcwd(cwd, sizeof(cwd)) && (l = strlen(cwd)) > 1 &&
	    !strncmp(real, cwd, l) && real[l] == '/')
		return set_add(s, real + l + 1);
	return set_add(s, real);
}

int plan_pool_missing(const struct graph *g, const struct plan *p,
		      char ***dirs, int *n)
{
	struct path_set s = { 0 };
	int r = 0;

	*dirs = NULL;
	*n = 0;
	/* A plan that cannot run is not run: more images could only add
	 * conflicts, and an image in error may name any directory at all
	 * (/etc, /dev), which is no pool to read. */
	if (!plan_runnable(p) || p->top >= g->n || p->base >= g->n)
		return 0;
	r = need_dir(g, &s, g->nodes[p->top].path);
	if (r == 0)
		r = need_dir(g, &s, g->nodes[p->base].path);
	for (int i = 0; r == 0 && i < p->ninter; i++)
		r = need_dir(g, &s, g->nodes[p->inter[i]].path);
	for (int i = 0; r == 0 && i < p->nparents; i++)
		if (p->parents[i].node >= 0)
			r = need_dir(g, &s, g->nodes[p->parents[i].node].path);
	if (r < 0) {
		set_free(&s);
		return r;
	}
	*dirs = s.v;
	*n = s.n;
	return 0;
}

/* One round: scan paths, find top and base, build the plan. */
static int scan_round(const struct plan_request *rq, const struct path_set *ps,
		      struct graph **g, struct plan **p, struct img_err *e)
{
	int top, base = -1, r;

	r = graph_scan(ps->v, ps->n, rq->scan, g, e);
	if (r < 0)
		return r;
	top = graph_lookup(*g, rq->top, e);
	if (top < 0 && top != -ENOENT)
		return top;
	if (rq->base) {
		base = graph_lookup(*g, rq->base, e);
		if (base < 0 && base != -ENOENT)
			return base;
		if (base < 0)
			base = INT_MAX;   /* exists, not in the pool */
	}
	err_clear(e);
	return plan_build(*g, top < 0 ? -1 : top, base, rq->plan, p, e);
}

/* The file --base-format speaks of: --base, else the backing file top's
 * header names (as plan_build picks base), into out. */
static int base_path(const struct plan_request *rq, char *out, size_t len,
		     struct img_err *e)
{
	struct img_backing bk = { 0 };
	enum resolve_kind k = RESOLVE_NONE;
	struct img *img = NULL;
	int r;

	if (rq->base) {
		snprintf(out, len, "%s", rq->base);
		return 0;
	}
	r = img_open(rq->top, NULL, IMG_O_INSPECT, &img, NULL, e);
	if (r == 0)
		r = img_get_backing(img, &bk, e);
	if (r == 0 && bk.name && *bk.name)
		r = resolve_backing(rq->top, bk.name, out, len, &k, e);
	img_close(img);
	if (r == 0 && k != RESOLVE_FILE)
		r = err_set(e, EINVAL, "--base-format %s: '%s' names no backing "
			    "file to state it for; name it with --base",
			    rq->base_format, rq->top);
	return r;
}

/* scan_opts with --base-format added to the statements: *so and *st
 * (malloc'd, the caller frees) live as long as the scan. */
static int stated_scan(const struct plan_request *rq, struct scan_opts *so,
		       struct fmt_stated **st, char *path, size_t len,
		       struct img_err *e)
{
	int n = rq->scan ? rq->scan->nstated : 0, r;

	*st = NULL;
	if (rq->scan)
		*so = *rq->scan;
	if (!rq->base_format)
		return 0;
	if ((r = base_path(rq, path, len, e)) < 0)
		return r;
	*st = calloc((size_t)n + 1, sizeof(**st));
	if (!*st)
		return err_set(e, ENOMEM, "plan: out of memory");
	for (int i = 0; i < n; i++)
		(*st)[i] = rq->scan->stated[i];
	/* Last: it wins over a --format for the same file. */
	(*st)[n].path = path;
	(*st)[n].fmt = (char *)rq->base_format;
	so->stated = *st;
	so->nstated = n + 1;
	return 0;
}

int plan_scan(const struct plan_request *rq0, struct graph **gp,
	      struct plan **pp, struct img_err *e)
{
	struct plan_request req = *rq0, *rq = &req;
	struct scan_opts so = { 0 };
	struct fmt_stated *st = NULL;
	struct path_set ps = { 0 };
	char d[PATH_MAX], bpath[PATH_MAX];
	int r;

	*gp = NULL;
	*pp = NULL;
	r = stated_scan(rq0, &so, &st, bpath, sizeof(bpath), e);
	if (r < 0)
		return r;
	req.scan = &so;
	for (int i = 0; r == 0 && i < rq->npaths; i++)
		r = set_add(&ps, rq->paths[i]);
	if (r == 0 && !covered(ps.v, ps.n, rq->scan && rq->scan->recursive,
			       dir_of(rq->top, d, sizeof(d))))
		r = set_add(&ps, d);
	if (r == 0 && rq->base &&
	    !covered(ps.v, ps.n, rq->scan && rq->scan->recursive,
		     dir_of(rq->base, d, sizeof(d))))
		r = set_add(&ps, d);
	while (r == 0) {
		char **more = NULL;
		int nmore = 0;

		r = scan_round(rq, &ps, gp, pp, e);
		if (r == 0)
			r = plan_pool_missing(*gp, *pp, &more, &nmore);
		if (r < 0 || nmore == 0) {
			free(more);
			break;
		}
		/* The pool grows: the next round scans it whole. */
		for (int i = 0; i < nmore; i++) {
			if (r == 0)
				r = set_add(&ps, more[i]);
			free(more[i]);
		}
		free(more);
		plan_free(*pp);
		graph_free(*gp);
		*pp = NULL;
		*gp = NULL;
	}
	set_free(&ps);
	free(st);
	if (r == -ENOMEM && !(e && e->code))
		err_set(e, ENOMEM, "plan: out of memory");
	if (r < 0) {
		plan_free(*pp);
		graph_free(*gp);
		*pp = NULL;
		*gp = NULL;
	}
	return r;
}
