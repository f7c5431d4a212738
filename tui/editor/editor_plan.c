/* editor_plan.c - the text of the plan screen, from the plan object both
 * front ends show: first what the plan means in plain words, then either
 * its conflicts (a plan that cannot run: no after-graph, nothing else that
 * would suggest it can) or the after-graph with every image marked, then
 * the details exactly as `imgraph plan` prints them.  Names are relative
 * to the pool's directory (said once, at the top). */
#include "editor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/out/emit.h"
#include "core/out/esc.h"
#include "core/plan/plan.h"

static const char *label_of(const void *ctx, const struct graph *g, int id)
{
	(void)g;
	return rows_label(ctx, id);
}

/* The directory part every label drops ("/pool/"), escaped as emit.h
 * prints it, into buf; "" when names are shown whole. */
static const char *pool_prefix(const struct graph *g, const struct rows *r,
			       char *buf, size_t len)
{
	buf[0] = 0;
	for (int i = 0; i < g->n; i++) {
		const char *nm = g->nodes[i].name, *lb = rows_label(r, i);
		size_t a = nm ? strlen(nm) : 0, b = strlen(lb);
		if (!(g->nodes[i].flags & GN_IN_POOL) || a <= b ||
		    strcmp(nm + a - b, lb) || nm[a - b - 1] != '/')
			continue;
		char raw[4096];
		snprintf(raw, sizeof(raw), "%.*s", (int)(a - b), nm);
		esc_ctl(raw, buf, len);
		break;
	}
	return buf;
}

/* text with every "prefix" removed, onto f; the line naming the scanned
 * pool keeps it. */
static void put_relative(FILE *f, const char *text, const char *prefix)
{
	size_t pl = strlen(prefix);
	while (*text) {
		const char *eol = strchr(text, '\n');
		size_t n = eol ? (size_t)(eol - text + 1) : strlen(text);
		bool keep = !pl || !strncmp(text, "pool scanned:", 13);
		for (size_t i = 0; i < n; i++) {
			if (!keep && !strncmp(text + i, prefix, pl) &&
			    i + pl <= n) {
				i += pl - 1;
				continue;
			}
			fputc(text[i], f);
		}
		text += n;
	}
}

/* A plan that cannot run: each conflict, the plain why first, then QEMU's
 * wording, then the fix (all names relative). */
static void conflicts(FILE *f, const struct graph *g, const struct plan *p,
		      const struct rows *r, const char *prefix)
{
	for (int i = 0; i < p->nconflicts; i++) {
		const struct plan_conflict *c = &p->conflicts[i];
		char *b = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&b, &len);
		if (!m)
			continue;
		fprintf(m, "%d. [%s]%s%s\n", i + 1,
			conflict_kind_name(c->kind), c->node >= 0 &&
			c->node < g->n ? " on " : "", c->node >= 0 &&
			c->node < g->n ? ESC(rows_label(r, c->node)) : "");
		if (c->why[0])
			fprintf(m, "   why: %s\n", ESC(c->why));
		fprintf(m, "   QEMU's words: %s\n", ESC(c->message));
		if (c->hint[0])
			fprintf(m, "   hint: %s\n", ESC(c->hint));
		fclose(m);
		put_relative(f, b ? b : "", prefix);
		free(b);
	}
}

/* top, base and intermediates: all a plan that cannot run says for sure. */
static void pair(FILE *f, const struct graph *g, const struct plan *p,
		 const struct rows *r)
{
	fprintf(f, "top:  %s\n", p->top >= 0 && p->top < g->n ?
		rows_label(r, p->top) : "-");
	fprintf(f, "base: %s\n", p->base >= 0 && p->base < g->n ?
		rows_label(r, p->base) : "- (top has no backing file)");
	for (int i = 0; i < p->ninter; i++)
		fprintf(f, "%s%s", i ? ", " : "intermediates: ",
			rows_label(r, p->inter[i]));
	if (p->ninter)
		fputc('\n', f);
}

char *editor_relative_text(const struct graph *g, const struct rows *r,
			   const char *text)
{
	char *buf = NULL, prefix[ESC_MAX];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	pool_prefix(g, r, prefix, sizeof(prefix));
	if (prefix[0])
		fprintf(f, "Names are relative to %s\n\n", prefix);
	put_relative(f, text ? text : "", prefix);
	fclose(f);
	return buf;
}

char *editor_plan_screen(const struct graph *g, const struct plan *p,
			 const struct rows *r, bool utf8)
{
	char *buf = NULL, sum[2048], prefix[ESC_MAX];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	pool_prefix(g, r, prefix, sizeof(prefix));
	plan_summary(g, p, label_of, r, sum, sizeof(sum));
	fprintf(f, "In short: %s.\n", sum);
	if (prefix[0])
		fprintf(f, "Names are relative to %s\n", prefix);
	fputc('\n', f);
	if (!plan_runnable(p)) {
		pair(f, g, p, r);
		fprintf(f, "\nconflicts (%d); the plan cannot run:\n",
			p->nconflicts);
		conflicts(f, g, p, r, prefix);
		/* base has other readers: the ways around it (what --protect
		 * would copy, the pull beside the refused commit) */
		char *ways = NULL;
		size_t wl = 0;
		FILE *w = open_memstream(&ways, &wl);
		if (w) {
			emit_plan_ways(w, g, p);
			fclose(w);
		}
		if (ways && *ways) {
			fprintf(f, "\nWays around it:\n");
			put_relative(f, ways, prefix);
		}
		free(ways);
	} else {
		char *after = editor_after_text(g, p, utf8);
		char *plan = editor_plan_text(g, p);
		fputs(after ? after : "", f);
		fprintf(f, "The plan as imgraph plan prints it:\n");
		put_relative(f, plan ? plan : "", prefix);
		free(after);
		free(plan);
	}
	fclose(f);
	return buf;
}
