/* commit_watch.c - a reader of base that appears while the commit copies
 * (a new overlay of base or of an intermediate, created after the plan).
 *
 * Nothing protects it: it reads base as the copy leaves it.  Base's locks
 * share consistent read (policy.c, as QEMU's own commit job does), so
 * nothing can refuse its creation either.  What the commit can do is stop:
 * before each 16 MiB of base (PROTECT_RECORD) whenever a pool directory
 * changed (every time with -r), and once more before any header is
 * rewritten, the pool is scanned again (headers only, no lock probes) and
 * a reader the plan did not see stops the commit: base changes no further
 * (the window about to be written is not), no header is rewritten, top's
 * parents keep reading top.  The new reader shows what base held when it
 * was created, overwritten since by the part of top's data the copy wrote
 * below the offset named; a rerun plans it like any reader (with
 * --protect it is protected from base as it is then, which is what it
 * reads). */
#include "commit_int.h"
#include "core/plan/plan_protect.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool same_id(const struct gnode *a, const struct gnode *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* Base or one of the plan's intermediates: what the copy changes. */
static bool changes(const struct graph *g, const struct plan *p,
		    const struct gnode *x)
{
	if (same_id(&g->nodes[p->base], x))
		return true;
	for (int i = 0; i < p->ninter; i++)
		if (same_id(&g->nodes[p->inter[i]], x))
			return true;
	return false;
}

static bool top_parent(const struct plan *p, int id)
{
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == id)
			return true;
	return false;
}

/* x (of g2) read the same file when g was scanned, or is one of top's
 * parents, which the commit itself moves to base (QEMU's own job may
 * have rewritten a live one's header by the look).  An image g knew
 * that reads base only now (qemu-img rebase during the copy) is as new
 * a reader as a new file. */
static bool known(const struct graph *g, const struct plan *p,
		  const struct graph *g2, const struct gnode *x)
{
	const struct gnode *xb = &g2->nodes[x->backing];

	for (int i = 0; i < g->n; i++) {
		const struct gnode *y = &g->nodes[i];

		if (same_id(y, x) &&
		    ((y->backing >= 0 && same_id(&g->nodes[y->backing], xb)) ||
		     top_parent(p, i)))
			return true;
	}
	return false;
}

/* The first reader of base or of an intermediate that g lacks: its path
 * and what it reads into w (kept for the message after QEMU's job ended):
 * 1, or 0 when there is none. */
static int find_new_reader(const struct graph *g, const struct plan *p,
			   struct pool_watch *w, struct img_err *e)
{
	struct scan_opts so = { .recursive = g->recursive };
	struct graph *g2 = NULL;
	int r = graph_scan(g->pool_paths, g->npool_paths, &so, &g2, e);

	for (int i = 0; r == 0 && i < g2->n; i++) {
		const struct gnode *x = &g2->nodes[i];

		if (x->backing < 0 || !changes(g, p, &g2->nodes[x->backing]) ||
		    known(g, p, g2, x))
			continue;
		free(w->reader);
		free(w->reads);
		w->reader = strdup(x->path);
		w->reads = strdup(g2->nodes[x->backing].path);
		r = w->reader && w->reads ? 1 : err_set(e, ENOMEM, "out of "
							 "memory");
	}
	graph_free(g2);
	return r;
}

int commit_new_reader_err(const struct pool_watch *w, uint64_t at,
			  struct img_err *e)
{
	const char *x = w->reader ? w->reader : "?";
	const char *b = w->reads ? w->reads : "?";

	err_clear(e);
	if (at == UINT64_MAX)
		return err_set(e, EBUSY, "'%s' began reading '%s' during the "
			       "copy (the plan did not see it; it was not "
			       "protected): it reads base as the copy left "
			       "it; no header was rewritten and top's parents "
			       "still read top; plan again", x, b);
	if (at & COMMIT_AT_BYTES)
		return err_set(e, EBUSY, "'%s' began reading '%s' during the "
			       "copy (the plan did not see it; it was not "
			       "protected): QEMU's job was cancelled after "
			       "it copied %llu bytes of top's data into base, "
			       "in no fixed order, so it reads a mix of top's "
			       "data and base's own; no header was rewritten "
			       "and top's parents still read top; plan again",
			       x, b, (unsigned long long)(at & ~COMMIT_AT_BYTES));
	return err_set(e, EBUSY, "'%s' began reading '%s' during the copy "
		       "(the plan did not see it; it was not protected): the "
		       "copy stopped before base changed at %llu, so it reads "
		       "top's data below that and base's own above; no header "
		       "was rewritten and top's parents still read top; plan "
		       "again", x, b, (unsigned long long)at);
}

int commit_new_readers(struct commit_run *cr, uint64_t at, struct img_err *e)
{
	int r = find_new_reader(cr->g, cr->p, &cr->watch, e);

	return r == 1 ? commit_new_reader_err(&cr->watch, at, e) : r;
}

int commit_watch_step(struct commit_run *cr, uint64_t done, uint64_t at,
		      bool polled, struct img_err *e)
{
	bool due = done >= cr->next_watch;

	if (due)
		cr->next_watch = done + PROTECT_RECORD;
	/* a job inside QEMU is not held back by the look: a poll looks
	 * whenever a directory changed, not only each 16 MiB (-r: each
	 * 16 MiB, a subdirectory's change is not seen) */
	if (!due && !(polled && !cr->watch.always))
		return 0;
	if (!pool_watch_changed(&cr->watch))
		return 0;
	return commit_new_readers(cr, at, e);
}

/* ---- which directories to watch ----------------------------------------- */

int pool_watch_init(struct pool_watch *w, const struct graph *g)
{
	memset(w, 0, sizeof(*w));
	w->always = g->recursive;
	w->dirs = calloc((size_t)g->npool_paths + 1, sizeof(*w->dirs));
	w->mt = calloc((size_t)g->npool_paths + 1, sizeof(*w->mt));
	if (!w->dirs || !w->mt)
		return -ENOMEM;
	for (int i = 0; i < g->npool_paths; i++) {
		struct stat st;
		char tmp[PATH_MAX];
		const char *dir = tmp;

		snprintf(tmp, sizeof(tmp), "%s", g->pool_paths[i]);
		/* a file given as a pool path: its directory is what gains a
		 * new image (dirname may return "." without touching tmp) */
		if (stat(tmp, &st) == 0 && !S_ISDIR(st.st_mode))
			dir = dirname(tmp);
		if (!(w->dirs[w->n] = strdup(dir)))
			return -ENOMEM;
		if (stat(dir, &st) == 0)
			w->mt[w->n] = st.st_mtim;
		w->n++;
	}
	return 0;
}

bool pool_watch_changed(struct pool_watch *w)
{
	bool ch = w->always;

	for (int i = 0; i < w->n; i++) {
		struct stat st;

		if (stat(w->dirs[i], &st) < 0) {
			ch = true;      /* gone or unreadable: look again */
			w->mt[i] = (struct timespec){ 0 };
		} else if (st.st_mtim.tv_sec != w->mt[i].tv_sec ||
			   st.st_mtim.tv_nsec != w->mt[i].tv_nsec) {
			ch = true;
			w->mt[i] = st.st_mtim;
		}
	}
	return ch;
}

void pool_watch_free(struct pool_watch *w)
{
	for (int i = 0; w->dirs && i < w->n; i++)
		free(w->dirs[i]);
	free(w->dirs);
	free(w->mt);
	free(w->reader);
	free(w->reads);
	memset(w, 0, sizeof(*w));
}
