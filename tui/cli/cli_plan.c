/* cli_plan.c - what `plan` and `commit` share: find --top/--base in the
 * pool and build the plan. */
#include "cli_plan.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The directory part of path, "." when there is none. */
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

/* The open error of node n when the scan found it in error because the
 * file itself does not open as an image (what 'imgraph info' would say),
 * else 0.  Errors the pool gives a valid image (loops, overlays that
 * disagree on its format...) stay conflicts. */
static int named_unreadable(const struct graph *g, int n, struct img_err *e)
{
	struct img *img;
	int r;

	if (n < 0 || n >= g->n || !(g->nodes[n].flags & GN_ERROR))
		return 0;
	r = img_open(g->nodes[n].path, NULL, IMG_O_INSPECT, &img, NULL, e);
	if (r < 0)
		return r;
	img_close(img);
	return 0;
}

int cli_plan_load(const struct cli_plan_args *a, struct graph **gp,
		  struct plan **pp)
{
	char d1[PATH_MAX], d2[PATH_MAX], *defpaths[2], **paths;
	struct img_err e = { 0 };
	struct graph *g = NULL;
	struct stat st;
	int np, top, base = -1, r;

	*gp = NULL;
	*pp = NULL;
	/* A file that does not exist is an error, not a conflict. */
	if (stat(a->top, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --top", a->top);
		return cli_report(&e);
	}
	if (a->base && stat(a->base, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --base", a->base);
		return cli_report(&e);
	}
	if (a->npaths > 0) {
		paths = a->paths;
		np = a->npaths;
	} else {
		/* imgraph(1): without PATH, the directories of top and base. */
		defpaths[0] = (char *)dir_of(a->top, d1, sizeof(d1));
		np = 1;
		if (a->base && strcmp(dir_of(a->base, d2, sizeof(d2)), d1))
			defpaths[np++] = d2;
		paths = defpaths;
	}
	if (graph_scan(paths, np, a->scan, &g, &e) < 0)
		return cli_report(&e);
	top = graph_lookup(g, a->top, &e);
	if (top < 0 && top != -ENOENT)
		goto fail;
	if (a->base) {
		base = graph_lookup(g, a->base, &e);
		if (base < 0 && base != -ENOENT)
			goto fail;
		if (base < 0)
			base = INT_MAX;   /* exists, not in the pool */
	}
	/* A file named on the command line that is not a readable image is
	 * an error (exit 1, as for 'imgraph info'), not a conflict:
	 * conflicts are what the pool does to a valid pair. */
	if ((r = named_unreadable(g, top, &e)) < 0 ||
	    (a->base && (r = named_unreadable(g, base, &e)) < 0))
		goto fail;
	if (plan_build(g, top < 0 ? -1 : top, base, a->plan, pp, &e) < 0)
		goto fail;
	*gp = g;
	return EXIT_OK;
fail:
	graph_free(g);
	return cli_report(&e);
}
