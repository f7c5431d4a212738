/* plan_lesson.c - the commit of a plan, stage by stage (plan_lesson.h). */
#include "plan_lesson.h"
#include "core/commit/copy.h"
#include "plan_protect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A lesson being built: stages appended with stage(), lines with say(). */
struct writer {
	struct plan_lesson *l;
	const struct graph *g;
	const struct lesson_names *names;
	bool oom;
};

static const char *nm(const struct writer *w, int id)
{
	if (id < 0 || id >= w->g->n)
		return "?";
	if (w->names && w->names->name) {
		const char *s = w->names->name(w->names->ctx, id);
		if (s)
			return s;
	}
	return w->g->nodes[id].name ? w->g->nodes[id].name : "?";
}

static int layer_node(const struct plan *p, int i)
{
	return i == 0 ? p->top : p->inter[i - 1];
}

static struct lesson_stage *stage(struct writer *w, enum lesson_kind k,
				  const char *phase, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct lesson_stage *stage(struct writer *w, enum lesson_kind k,
				  const char *phase, const char *fmt, ...)
{
	struct plan_lesson *l = w->l;
	struct lesson_stage *n = realloc(l->st, (size_t)(l->n + 1) *
					 sizeof(*n));
	if (!n) {
		w->oom = true;
		return NULL;
	}
	l->st = n;
	struct lesson_stage *s = &n[l->n++];
	*s = (struct lesson_stage){ .kind = k, .phase = phase, .layer = -1,
				    .parent = -1 };
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s->title, fmt, ap) < 0) {
		s->title = NULL;
		w->oom = true;
	}
	va_end(ap);
	return s;
}

static void say(struct writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct writer *w, const char *fmt, ...)
{
	struct lesson_stage *s = w->l->n ? &w->l->st[w->l->n - 1] : NULL;
	char *line = NULL;
	va_list ap;
	if (!s)
		return;
	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	char **v = line ? realloc(s->lines, (size_t)(s->nlines + 1) *
				  sizeof(*v)) : NULL;
	if (!v) {
		free(line);
		w->oom = true;
		return;
	}
	s->lines = v;
	v[s->nlines++] = line;
}

/* "a -> b -> c": the chain a reader sees from node `from` down, with the
 * first hop replaced by `via` when via >= 0. */
static void chain_text(const struct writer *w, int from, int via,
		       char *buf, size_t len)
{
	size_t o = 0;
	int n = from, hops = 0;
	buf[0] = 0;
	const struct graph *g = w->g;
	while (n >= 0 && n < g->n && hops++ < 64 && o < len) {
		o += (size_t)snprintf(buf + o, len - o, "%s%s", hops > 1 ?
				      " -> " : "", nm(w, n));
		n = hops == 1 && via >= 0 ? via : g->nodes[n].backing;
	}
}

static void before_stage(struct writer *w, const struct plan *p)
{
	char c[2048];
	stage(w, LESSON_BEFORE, NULL, "Before: who reads what");
	say(w, "Each guest reads its image, and every cluster it does not "
	    "hold from the backing file below, down the chain:");
	for (int i = 0; i < p->nparents; i++) {
		const struct plan_parent *pp = &p->parents[i];
		if (pp->node < 0)
			continue;
		chain_text(w, pp->node, -1, c, sizeof(c));
		say(w, "  %s", c);
	}
	say(w, "The commit makes %s hold everything %s reads through it, "
	    "then points the parents of %s at %s directly.", nm(w, p->base),
	    nm(w, p->top), nm(w, p->top), nm(w, p->base));
}

static void check_stage(struct writer *w, const struct plan *p)
{
	stage(w, LESSON_CHECK, "check", "Check: %s before anything is "
	      "written", nm(w, p->base));
	say(w, "%s's metadata is checked as qemu-img check would; a base with "
	    "corruptions is refused.", nm(w, p->base));
	say(w, "Every image the commit touches is locked for the whole run.");
	if (p->protect && p->protect->on && p->protect->n)
		say(w, "--protect: %d other reader%s of %s first get%s the old "
		    "data of the clusters the copy overwrites, so their views "
		    "stay as they are.", p->protect->n, p->protect->n == 1 ?
		    "" : "s", nm(w, p->base), p->protect->n == 1 ? "s" : "");
	if (p->ninter) {
		say(w, "The intermediates are recorded as stale, durably, before "
		    "the first byte reaches base:");
		for (int i = 0; i < p->ninter; i++)
			say(w, "  %s reads through %s, so its view changes from "
			    "then on", nm(w, p->inter[i]), nm(w, p->base));
	}
}

static void copy_stages(struct writer *w, const struct plan *p)
{
	for (int i = 0; i <= p->ninter; i++) {
		int n = layer_node(p, i);
		uint64_t b = p->layer_bytes ? p->layer_bytes[i] : 0;
		struct lesson_stage *s = stage(w, LESSON_COPY, "copy",
			"Copy: clusters from %s into %s", nm(w, n),
			nm(w, p->base));
		if (!s)
			return;
		s->layer = i;
		s->bytes = b;
		say(w, "%llu bytes where %s is the top-most layer that holds "
		    "them (data or zeros) are written into %s.",
		    (unsigned long long)b, nm(w, n), nm(w, p->base));
		if (i > 0)
			say(w, "Where a layer above (%s) holds the cluster too, "
			    "its version is the one written: it is what the "
			    "guests read.", nm(w, layer_node(p, i - 1)));
		if (p->copy_how && p->copy_how[i] >= 0)
			say(w, "How: %s (compressed data is read and written).",
			    copy_method_name(p->copy_how[i]));
		say(w, "Clusters no layer above base holds stay as they are in "
		    "%s.", nm(w, p->base));
	}
	if (p->base_grows)
		say(w, "%s grows from %llu to %llu bytes first.", nm(w, p->base),
		    (unsigned long long)p->base_old_size,
		    (unsigned long long)p->base_new_size);
}

static void relink_stages(struct writer *w, const struct plan *p)
{
	char before[2048], after[2048];
	for (int i = 0; i < p->nparents; i++) {
		const struct plan_parent *pp = &p->parents[i];
		const char *who = pp->node >= 0 ? nm(w, pp->node) :
				  pp->user >= 0 && pp->user < w->g->nusers ?
				  w->g->users[pp->user].name : pp->path;
		struct lesson_stage *s = stage(w, LESSON_RELINK, "relink",
			"Relink: %s's %s is rewritten", who, pp->node >= 0 ?
			"header" : "users-file entry");
		if (!s)
			return;
		s->parent = i;
		say(w, "backing '%s' (%s) -> '%s' (%s)%s", pp->old_name ?
		    pp->old_name : "", pp->old_fmt ? pp->old_fmt : "?",
		    pp->new_name ? pp->new_name : "", pp->new_fmt ?
		    pp->new_fmt : "?", pp->relative ? ", relative" : "");
		if (pp->node >= 0) {
			chain_text(w, pp->node, -1, before, sizeof(before));
			chain_text(w, pp->node, p->base, after, sizeof(after));
			say(w, "reads before: %s", before);
			say(w, "reads after:  %s", after);
		}
		if (pp->node == p->top)
			say(w, "%s has no parents: it is kept, emptied and put on "
			    "%s (as qemu-img commit does).", nm(w, p->top),
			    nm(w, p->base));
		say(w, "The guest sees the same bytes: %s now holds what it "
		    "read through the layers in between.", nm(w, p->base));
		if (i == 0 && p->nparents > 1)
			say(w, "All %d headers are rewritten as one journalled "
			    "transaction: after a crash, imgraph recover "
			    "finishes or undoes all of them.", p->nparents);
	}
}

static void cleanup_stage(struct writer *w, const struct plan *p)
{
	stage(w, LESSON_CLEANUP, "cleanup", "Cleanup: the journal goes");
	say(w, "The journal is removed: the commit is complete.");
	if (p->leaf != PLAN_LEAF_KEEP)
		say(w, "%s leaves the graph (kept on disk, marked stale and "
		    "unused).", nm(w, p->top));
	for (int i = 0; i < p->ninter; i++)
		say(w, "%s leaves the graph (kept on disk, marked stale and "
		    "unused).", nm(w, p->inter[i]));
}

static int copy_names(struct writer *w, const struct plan *p)
{
	struct plan_lesson *l = w->l;
	l->nlayers = p->ninter + 1;
	l->layer_names = calloc((size_t)l->nlayers, sizeof(char *));
	l->base_name = strdup(nm(w, p->base));
	if (!l->layer_names || !l->base_name)
		return -ENOMEM;
	for (int i = 0; i < l->nlayers; i++)
		if (!(l->layer_names[i] = strdup(nm(w, layer_node(p, i)))))
			return -ENOMEM;
	if (p->layer_cells) {
		size_t n = (size_t)l->nlayers * PLAN_MAP_CELLS;
		l->cells = malloc(n * sizeof(float));
		if (!l->cells)
			return -ENOMEM;
		memcpy(l->cells, p->layer_cells, n * sizeof(float));
	}
	return 0;
}

int plan_lesson_build(const struct graph *g, const struct plan *p,
		      const struct lesson_names *names,
		      struct plan_lesson **out, struct img_err *e)
{
	*out = NULL;
	if (!plan_runnable(p))
		return err_set(e, EINVAL, "the plan cannot run: it has "
			       "conflicts, and a commit that cannot run has "
			       "no stages to show");
	if (p->pull)
		return err_set(e, EINVAL, "the teaching view shows a commit; "
			       "a pull copies the other way");
	struct plan_lesson *l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(e, ENOMEM, "out of memory");
	struct writer w = { l, g, names, false };
	before_stage(&w, p);
	check_stage(&w, p);
	copy_stages(&w, p);
	stage(&w, LESSON_FLUSH, "flush", "Flush: %s reaches the disk",
	      nm(&w, p->base));
	say(&w, "The new data and tables are synced to the disk before any "
	    "header names %s: a power cut now leaves every image valid.",
	    nm(&w, p->base));
	relink_stages(&w, p);
	cleanup_stage(&w, p);
	bool oom = w.oom || copy_names(&w, p) < 0;
	if (oom) {
		plan_lesson_free(l);
		return err_set(e, ENOMEM, "out of memory");
	}
	*out = l;
	return 0;
}

void plan_lesson_free(struct plan_lesson *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->n; i++) {
		free(l->st[i].title);
		for (int k = 0; k < l->st[i].nlines; k++)
			free(l->st[i].lines[k]);
		free(l->st[i].lines);
	}
	free(l->st);
	for (int i = 0; l->layer_names && i < l->nlayers; i++)
		free(l->layer_names[i]);
	free(l->layer_names);
	free(l->base_name);
	free(l->cells);
	free(l);
}
