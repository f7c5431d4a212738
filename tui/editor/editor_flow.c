/* editor_flow.c - what the editor does between keys: (re)scan the pool,
 * keep the detail map current, validate marks, show plans, and drive a
 * commit (start the worker, mirror its progress, ask the two questions,
 * report the result and rescan).  Terminal handling is in editor.c. */
#include "editor_int.h"

#include "core/out/emit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/graph/graph.h"
#include "core/plan/plan.h"
#include "core/plan/plan_pull.h"
#include "core/plan/plan_protect.h"

static double now(void)
{
	return editor_now();
}

/* ---- scanning ---------------------------------------------------------- */

static const char *node_path(const struct graph *g, int id)
{
	return g && id >= 0 && id < g->n ? g->nodes[id].path : NULL;
}


/* (Re)scan the pool, keeping selection, marks and collapsed subtrees by
 * file identity. */
void editor_scan(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	char *sel = NULL, *top = NULL, *base = NULL, *utop = NULL,
	     *ubase = NULL;
	char **collapsed = NULL;
	int ncollapsed = 0;
	if (ed->g) {
		sel = node_path(ed->g, rows_selected(&st->rows)) ?
		      strdup(node_path(ed->g, rows_selected(&st->rows))) : NULL;
		if (st->mark_top >= 0)
			top = strdup(ed->g->nodes[st->mark_top].path);
		if (st->mark_base >= 0)
			base = strdup(ed->g->nodes[st->mark_base].path);
		if (st->undo_top >= 0)
			utop = strdup(ed->g->nodes[st->undo_top].path);
		if (st->undo_base >= 0)
			ubase = strdup(ed->g->nodes[st->undo_base].path);
		collapsed = calloc((size_t)ed->g->n + 1, sizeof(char *));
		for (int i = 0; collapsed && i < ed->g->n; i++)
			if (i < st->rows.n && !st->rows.expanded[i] &&
			    ed->g->nodes[i].path)
				collapsed[ncollapsed++] =
					strdup(ed->g->nodes[i].path);
	}
	rows_free(&st->rows);
	cmap_free(st->map);
	st->map = NULL;
	st->g = NULL;
	graph_free(ed->g);
	ed->g = NULL;
	st->mark_top = st->mark_base = -1;
	st->undo_top = st->undo_base = -1;
	st->scan_error[0] = 0;

	struct img_err e = { 0 };
	if (graph_scan(ed->paths, ed->npaths, &ed->so, &ed->g, &e) < 0) {
		ed->g = NULL;
		snprintf(st->scan_error, sizeof(st->scan_error), "%s", e.msg);
		ui_msg(st, R_ERROR, "scan failed: %s", e.msg);
	}
	st->g = ed->g;
	st->pool_hint[0] = 0;
	if (ed->g && !ed->g->n) {
		int below = graph_count_below(ed->paths, ed->npaths, &ed->so);
		if (below)
			snprintf(st->pool_hint, sizeof(st->pool_hint), ", %d in "
				 "subdirectories: run imgraph -r", below);
	}
	if (rows_init(&st->rows, ed->g) < 0)
		ui_msg(st, R_ERROR, "out of memory");
	if (ed->g) {
		for (int i = 0; i < ncollapsed; i++) {
			int id = graph_lookup(ed->g, collapsed[i], NULL);
			if (id >= 0 && id < st->rows.n)
				rows_set_expanded(&st->rows, id, false);
		}
		int id;
		if (sel && (id = graph_lookup(ed->g, sel, NULL)) >= 0)
			rows_select_node(&st->rows, id);
		if (top && (id = graph_lookup(ed->g, top, NULL)) >= 0)
			st->mark_top = id;
		if (base && (id = graph_lookup(ed->g, base, NULL)) >= 0)
			st->mark_base = id;
		if (utop && (id = graph_lookup(ed->g, utop, NULL)) >= 0)
			st->undo_top = id;
		if (ubase && (id = graph_lookup(ed->g, ubase, NULL)) >= 0)
			st->undo_base = id;
	}
	for (int i = 0; i < ncollapsed; i++)
		free(collapsed[i]);
	free(collapsed);
	free(sel);
	free(top);
	free(base);
	free(utop);
	free(ubase);
	ed->map_stale = true;
}

void editor_update_map(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	int id = rows_selected(&st->rows);
	ed->map_stale = false;
	if (!ed->g || id < 0 || (st->map && st->map->node == id))
		return;
	cmap_free(st->map);
	st->map = editor_cmap(ed->g, id, MAP_REGIONS);
}

/* ---- plans --------------------------------------------------------------- */

/* Add the directories plan p needs scanned and the pool lacks (those of
 * the intermediates and of every parent of top): 1 when there were any. */
static int widen_pool(struct editor *ed, const struct plan *p)
{
	char **more = NULL, **nv, **nx;
	int nmore = 0;

	if (plan_pool_missing(ed->g, p, &more, &nmore) < 0 || !nmore)
		return 0;
	nv = malloc(sizeof(*nv) * (size_t)(ed->npaths + nmore));
	nx = realloc(ed->extra, sizeof(*nx) * (size_t)(ed->nextra + nmore));
	if (nx)
		ed->extra = nx;
	if (!nv || !nx) {
		free(nv);
		for (int i = 0; i < nmore; i++)
			free(more[i]);
		free(more);
		return 0;
	}
	memcpy(nv, ed->paths, sizeof(*nv) * (size_t)ed->npaths);
	for (int i = 0; i < nmore; i++)
		nv[ed->npaths + i] = ed->extra[ed->nextra++] = more[i];
	free(more);
	free(ed->paths_owned);
	ed->paths = ed->paths_owned = nv;
	ed->npaths += nmore;
	return 1;
}

/* The plan of the marked pair over the whole pool, as plan_scan builds
 * it for the CLI: the pool grows (and is scanned again) until it holds
 * every directory the plan needs. */
/* --base-format speaks of the base of the pair (marked, or top's backing
 * file): 1 when that base is not yet the one stated, now stated (the pool
 * must be scanned again with it). */
static int state_base(struct editor *ed)
{
	const struct graph *g = ed->g;
	int id = ed->st.mark_base;
	char *path;

	if (!ed->base_format || !g)
		return 0;
	if (id < 0 && ed->st.mark_top >= 0 && ed->st.mark_top < g->n)
		id = g->nodes[ed->st.mark_top].backing;
	if (id < 0 || id >= g->n || !g->nodes[id].path ||
	    (ed->base_stated && !strcmp(ed->base_stated, g->nodes[id].path)))
		return 0;
	if (!(path = strdup(g->nodes[id].path)))
		return 0;
	free(ed->base_stated);
	ed->base_stated = path;
	ed->stated[ed->nstated_opt].path = path;
	ed->stated[ed->nstated_opt].fmt = (char *)ed->base_format;
	ed->so.nstated = ed->nstated_opt + 1;
	return 1;
}

static int build_plan(struct editor *ed, struct plan **out, struct img_err *e)
{
	struct plan_opts po = { .pull = ed->pull, .protect = ed->st.protect,
				.base_is_raw = ed->base_is_raw,
				.ignore_unverified = ed->ignore_unverified,
				.nignore_unverified = ed->nignore_unverified };
	int r;

	for (;;) {
		if (state_base(ed)) {
			editor_scan(ed);
			if (!ed->g)
				return err_set(e, EIO, "%s", ed->st.scan_error);
			continue;
		}
		r = plan_build(ed->g, ed->st.mark_top, ed->st.mark_base, &po,
			       out, e);
		if (r < 0 || !widen_pool(ed, *out))
			return r;
		plan_free(*out);
		*out = NULL;
		editor_scan(ed);
		if (!ed->g)
			return err_set(e, EIO, "%s", ed->st.scan_error);
	}
}

/* The mark just set cannot make a pair: put the marks back as they were
 * and say why (the plan's plain why, then its hint). */
static void refuse_mark(struct editor *ed, const char *why, const char *hint)
{
	struct ui_state *st = &ed->st;
	bool top = st->last_mark_top;
	int id = top ? st->mark_top : st->mark_base;
	char what[600];
	snprintf(what, sizeof(what), "%s", editor_label(ed, id));
	st->mark_top = st->undo_top;
	st->mark_base = st->undo_base;
	ui_msg(st, R_ERROR, "Not marked, impossible pair: %s cannot be %s; "
	       "%s%s%s", what, top ? "top" : "base", why,
	       hint && *hint ? " " : "", hint ? hint : "");
}

/* The status line for a pair that can run: what it copies and what it
 * relinks, in the plan's words (a kept leaf top is not "a parent"). */
static void say_clean(struct editor *ed, const struct plan *p)
{
	struct ui_state *st = &ed->st;
	char sz[16], what[120];
	if (p->leaf == PLAN_LEAF_KEEP)
		snprintf(what, sizeof(what), "top has no parents: kept, "
			 "emptied, on base");
	else if (p->leaf == PLAN_LEAF_DROP)
		snprintf(what, sizeof(what), "top has no parents: dropped");
	else
		snprintf(what, sizeof(what), "relinks %d parent%s",
			 p->nparents, p->nparents == 1 ? "" : "s");
	ui_msg(st, R_OK, "%s into %s%s: clean, copies %s, %s - p preview, "
	       "c commit", editor_label(ed, p->top), editor_label(ed, p->base),
	       st->mark_base < 0 ? " (its backing file)" : "",
	       emit_size(p->bytes_to_copy, sz, sizeof(sz)), what);
}

void editor_validate_marks(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	if (st->mark_top < 0) {
		const struct gnode *b = &ed->g->nodes[st->mark_base];
		if (!b->nchildren) {
			refuse_mark(ed, "nothing is above it, so nothing can be "
				    "committed into it.", "Mark an image that "
				    "has overlays.");
			return;
		}
		ui_msg(st, R_NORMAL, "base: %s - now mark a top above it (t)",
		       editor_label(ed, st->mark_base));
		return;
	}
	struct plan *p = NULL;
	struct img_err e = { 0 };
	if (build_plan(ed, &p, &e) < 0) {
		refuse_mark(ed, e.msg, NULL);
		return;
	}
	for (int i = 0; i < p->nconflicts; i++)
		if (p->conflicts[i].kind == CONFLICT_INVALID_PAIR) {
			refuse_mark(ed, p->conflicts[i].why[0] ?
				    p->conflicts[i].why :
				    p->conflicts[i].message,
				    p->conflicts[i].hint);
			plan_free(p);
			return;
		}
	char sz[16];
	const char *base = editor_label(ed, p->base);
	char hint[600];
	bool pull = plan_recommend(p) == PLAN_STRATEGY_PULL;
	bool prot = plan_protect_hint(p, hint, sizeof(hint));
	if (p->nconflicts && pull)
		ui_msg(st, R_WARN, "%s into %s: base has other readers - p "
		       "shows why; P pulls into top instead (base untouched)%s%s%s",
		       editor_label(ed, p->top), base,
		       prot ? ", S protects them (copies " : "",
		       prot ? emit_size(p->protect->bytes, sz, sizeof(sz)) : "",
		       prot ? ")" : "");
	else if (p->nconflicts && prot)
		ui_msg(st, R_WARN, "%s into %s: %d conflict%s - p shows why, "
		       "S protects base's %d other reader%s (copies %s)",
		       editor_label(ed, p->top), base, p->nconflicts,
		       p->nconflicts == 1 ? "" : "s", p->protect->n,
		       p->protect->n == 1 ? "" : "s",
		       emit_size(p->protect->bytes, sz, sizeof(sz)));
	else if (p->nconflicts)
		ui_msg(st, R_WARN, "%s into %s: %d conflict%s - p shows why",
		       editor_label(ed, p->top), editor_label(ed, p->base),
		       p->nconflicts, p->nconflicts == 1 ? "" : "s");
	else
		say_clean(ed, p);
	plan_free(p);
}

void editor_show_text(struct editor *ed, const char *title, char *text)
{
	struct ui_state *st = &ed->st;
	/* A new text is not the plan the teaching view belonged to. */
	plan_lesson_free(st->lesson);
	st->lesson = NULL;
	textview_set(&st->text, title, text ? text : "(out of memory)");
	free(text);
	st->scr = SCR_TEXT;
	st->journal_screen = false;
}

/* The tree's names (relative to the pool) for the teaching view. */
static const char *lesson_label(const void *ctx, int node)
{
	return rows_label(ctx, node);
}

void editor_show_plan(struct editor *ed, bool for_commit)
{
	struct ui_state *st = &ed->st;
	struct plan *p = NULL;
	struct img_err e = { 0 };
	if (build_plan(ed, &p, &e) < 0) {
		ui_msg(st, R_ERROR, "no plan: %s", e.msg);
		return;
	}
	char title[300];
	snprintf(title, sizeof(title), "Plan: %s %s %s %s - %d conflict%s%s",
		 p->pull ? "pull into" : "commit", editor_label(ed, p->top),
		 p->pull ? "onto" : "into", editor_label(ed, p->base),
		 p->nconflicts, p->nconflicts == 1 ? "" : "s",
		 plan_recommend(p) == PLAN_STRATEGY_PULL && !p->pull ?
		 " - P: pull instead" : "");
	editor_show_text(ed, title,
			 editor_plan_screen(ed->g, p, &st->rows, st->utf8));
	/* The teaching view of this very plan object (s on the plan). */
	struct lesson_names ln = { lesson_label, &st->rows };
	if (plan_lesson_build(ed->g, p, &ln, &st->lesson, NULL) == 0 &&
	    !for_commit)
		ui_msg(st, R_NORMAL, "s steps through this commit stage by "
		       "stage (teaching view)");
	if (!for_commit) {
		plan_free(p);
		return;
	}
	if (p->nconflicts) {
		ui_msg(st, R_ERROR, "%s refused: the plan has %d conflict%s "
		       "(see above); nothing was written%s",
		       p->pull ? "pull" : "commit", p->nconflicts,
		       p->nconflicts == 1 ? "" : "s",
		       plan_recommend(p) == PLAN_STRATEGY_PULL && !p->pull ?
		       " - P pulls instead" : "");
		plan_free(p);
		return;
	}
	ed->plan = p;
	ed->q = Q_COMMIT;
	st->question = p->pull ? "Pull: copy the data between top and base "
				 "into top now (base is not written)?"
			       : "Commit: copy top's data into base now?";
}

/* ---- the commit job ------------------------------------------------------ */

static void start_commit(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct img_err e = { 0 };
	/* Prepared now: the worker owns the graph until it is joined. */
	free(ed->after_text);
	ed->after_text = editor_plan_screen(ed->g, ed->plan, &st->rows,
					    st->utf8);
	memset(&st->prog, 0, sizeof(st->prog));
	snprintf(st->prog.title, sizeof(st->prog.title),
		 ed->plan->pull ? "Pulling into %s (onto %s)"
				: "Committing %s into %s",
		 editor_label(ed, ed->plan->top),
		 editor_label(ed, ed->plan->base));
	/* Until the first report: the plan's count, not "0 B of 0 B". */
	st->prog.phase = -1;
	st->prog.eta = -1;
	st->prog.total = ed->plan->bytes_to_copy;
	memset(&ed->snap, 0, sizeof(ed->snap));
	if (editor_job_start(&ed->job, ed->g, ed->plan, ed->rate, &e) < 0) {
		ui_msg(st, R_ERROR, "%s", e.msg);
		plan_free(ed->plan);
		ed->plan = NULL;
		st->scr = SCR_TREE;
		return;
	}
	ed->t0 = now();
	st->scr = SCR_PROGRESS;
}

static void finish_commit(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct editor_job_snap s = ed->snap;
	editor_job_join(ed->job);
	ed->job = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *title = "Commit result";
	if (f) {
		/* The graph is the editor's again: names come from it. */
		editor_result_text(f, ed, &s, &title);
		fprintf(f, "\nThe pool was rescanned: Esc returns to the "
			"tree.\n");
		fclose(f);
	}
	plan_free(ed->plan);
	ed->plan = NULL;
	ed->q = Q_NONE;
	st->question = NULL;
	editor_scan(ed);
	st->mark_top = st->mark_base = -1;
	editor_show_text(ed, title, buf);
	ui_msg(st, s.rc < 0 ? R_ERROR : R_OK, "%s", title);
}

/* The file name of the image being read (the graph is the worker's
 * until the join, so it is not looked up there). */
static const char *layer_label(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Copy the worker's meter into the view-model. */
void editor_poll_job(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct prog_view *p = &st->prog;
	struct editor_job_snap s;
	editor_job_snapshot(ed->job, &s);
	double t = now();
	const struct progress_meter *m = &s.m;
	p->elapsed = t - ed->t0;
	p->how = s.how;
	snprintf(p->job, sizeof(p->job), "%s", s.job);
	p->phase = m->phase;
	memcpy(p->seen, m->seen, sizeof(p->seen));
	p->pdone = m->done;
	p->ptotal = m->total;
	p->fraction = m->fraction;
	if (m->bytes_total || m->phase > progress_phase_index("copy")) {
		p->done = m->bytes;
		p->total = m->bytes_total;
	}
	p->rate = progress_meter_rate(m, t);
	p->eta = progress_meter_eta(m, t);
	p->paused = m->pause_t >= 0;
	snprintf(p->layer, sizeof(p->layer), "%.*s", (int)sizeof(p->layer) - 1,
		 layer_label(s.layer));
	if (s.asking && ed->q != Q_RELINK) {
		if (ed->q == Q_CANCEL)      /* the copy is over: moot */
			editor_job_hold(ed->job, false);
		ed->q = Q_RELINK;
		editor_show_text(ed, "Copy done - relink? The pool after it:",
			  ed->after_text ? strdup(ed->after_text) : NULL);
		st->question = ed->plan && ed->plan->pull ?
			"Pull done. Relink top onto base now (the "
			"after-graph above)?" :
			"Copy done. Relink every parent of top to base "
			"now (the after-graph above)?";
		if (ed->quit_after_job) {
			editor_job_answer(ed->job, false);
			ed->q = Q_NONE;
			st->question = NULL;
			st->scr = SCR_PROGRESS;
		}
	}
	ed->snap = s;
	if (s.finished)
		finish_commit(ed);
}

void editor_answer(struct editor *ed, bool yes)
{
	struct ui_state *st = &ed->st;
	enum question q = ed->q;
	ed->q = Q_NONE;
	st->question = NULL;
	switch (q) {
	case Q_COMMIT:
		if (yes) {
			start_commit(ed);
		} else {
			bool pull = ed->plan && ed->plan->pull;

			plan_free(ed->plan);
			ed->plan = NULL;
			st->scr = SCR_TREE;
			ui_msg(st, R_NORMAL, "%s not started; nothing was "
			       "written", pull ? "pull" : "commit");
		}
		break;
	case Q_RELINK:
		editor_job_answer(ed->job, yes);
		st->scr = SCR_PROGRESS;
		break;
	case Q_FINISH:
	case Q_ROLLBACK:
		if (yes)
			editor_recover(ed, q == Q_ROLLBACK);
		else
			ui_msg(st, R_NORMAL, "nothing was written");
		break;
	case Q_CANCEL:
		if (yes && ed->job) {
			editor_job_cancel(ed->job);
			st->prog.cancelling = true;
		}
		if (ed->job)
			editor_job_hold(ed->job, false);
		break;
	case Q_NONE:
		break;
	}
}
