/* emit_plan.c - a plan as text, JSON or YAML; see emit.h.  The editor
 * renders the same text through open_memstream. */
#include "emit.h"
#include "core/plan/plan_protect.h"
#include "esc.h"
#include "core/commit/copy.h"
#include "core/graph/perm.h"
#include "core/plan/plan_pull.h"

#include <string.h>

/* What no scan can promise. */
#define POOL_UNSEEN "readers outside these directories cannot be seen"

static const char *node_name(const struct graph *g, int id)
{
	return id >= 0 && id < g->n ? g->nodes[id].name : NULL;
}

static void human_node_line(FILE *f, const struct graph *g, const char *label,
			    int id)
{
	char vs[32];

	if (id < 0 || id >= g->n) {
		fprintf(f, "%-15s -\n", label);
		return;
	}
	if (!g->nodes[id].format &&
	    (g->nodes[id].flags & (GN_MISSING | GN_EXTERNAL | GN_ERROR))) {
		fprintf(f, "%-15s %s (%s)\n", label, ESC(g->nodes[id].name),
			g->nodes[id].flags & GN_MISSING ? "missing" :
			"cannot be read");
		return;
	}
	fprintf(f, "%-15s %s (%s%s, %s)\n", label, ESC(g->nodes[id].name),
		g->nodes[id].format ? g->nodes[id].format : "?",
		(g->nodes[id].flags & GN_STATED) ? ", format stated" : "",
		emit_size(g->nodes[id].info.virtual_size, vs, sizeof(vs)));
}

static void quoted(FILE *f, const char *s)
{
	if (s)
		fprintf(f, "'%s'", ESC(s));
	else
		fputs("(none)", f);
}

static void human_parent(FILE *f, const struct graph *g, const struct plan *p,
			 const struct plan_parent *pp)
{
	if (pp->user >= 0)
		fprintf(f, "  user '%s' in %s: ", ESC(g->users[pp->user].name),
			pp->path ? ESC(pp->path) : "?");
	else
		fprintf(f, "  %s%s: ", ESC(node_name(g, pp->node)),
			pp->node != p->top ? "" : p->pull ? " (top itself)"
			: " (top itself, emptied)");
	quoted(f, pp->old_name);
	if (pp->user < 0) {
		fputs(" (", f);
		fputs(pp->old_fmt ? ESC(pp->old_fmt) : "format not recorded",
		      f);
		fputs(")", f);
	}
	fputs(" -> ", f);
	quoted(f, pp->new_name);
	if (pp->user < 0) {
		const char *nf = pp->new_fmt ? pp->new_fmt : "?";
		/* qed records "raw" or nothing: any other format is probed */
		bool unrecorded = pp->node >= 0 && g->nodes[pp->node].format &&
				  !strcmp(g->nodes[pp->node].format, "qed") &&
				  strcmp(nf, "raw");
		fprintf(f, " (%s%s)", ESC(nf), unrecorded ? ", probed: qed records "
			"no format but raw" : "");
	}
	fprintf(f, "%s%s%s%s\n", pp->relative ? "  [relative]" : "  [absolute]",
		pp->feasible ? "" : "  [NOT POSSIBLE]",
		pp->live ? "  [by QEMU]" : p->live.job ? "  [offline]" : "",
		/* top already names base: nothing to rewrite */
		pp->old_name && pp->new_name && pp->old_fmt && pp->new_fmt &&
		!strcmp(pp->old_name, pp->new_name) &&
		!strcmp(pp->old_fmt, pp->new_fmt) ? "  [already names base]" :
		"");
}

static const char *live_job_text(enum plan_live_job j)
{
	return j == PLAN_LIVE_ACTIVE ? "active commit with pivot to base"
				     : "commit of an intermediate";
}

/* The live part: which process runs what, its node names, the job, and
 * who relinks which parent. */
static void human_live(FILE *f, const struct graph *g, const struct plan *p)
{
	const struct plan_live *l = &p->live;
	int noff = 0;

	if (l->job == PLAN_LIVE_NONE)
		return;
	if (l->domain)
		fprintf(f, "%-15s PID %d (%s), libvirt domain '%s', disk %s "
			"(through libvirt's API)\n", "live part:", (int)l->pid,
			l->comm, l->domain, l->disk);
	else
		fprintf(f, "%-15s PID %d (%s), QEMU %s, QMP monitor %s\n",
			"live part:", (int)l->pid, l->comm, l->qemu_version,
			l->qmp);
	fprintf(f, "  job:          block-commit, %s\n", live_job_text(l->job));
	fprintf(f, "  device:       node '%s' (used by %s%s%s)\n", l->device,
		l->backend_kind ? l->backend_kind : "?", l->backend ? " " : "",
		l->backend ? l->backend : "");
	fprintf(f, "  nodes:        top '%s', base '%s'", l->top_node,
		l->base_node);
	for (int i = 0; i < p->ninter; i++)
		fprintf(f, "%s'%s'", i ? ", " : ", intermediates ",
			l->inter_nodes[i]);
	fputc('\n', f);
	if (l->backing_file)
		fprintf(f, "  backing-file: '%s' (written by QEMU)\n",
			l->backing_file);
	fputs("  QEMU relinks: ", f);
	for (int i = 0, n = 0; i < p->nparents; i++)
		if (p->parents[i].live)
			fprintf(f, "%s%s (node '%s')", n++ ? ", " : "",
				node_name(g, p->parents[i].node),
				p->parents[i].live_node);
	if (l->job == PLAN_LIVE_ACTIVE)
		fputs("its device moves to base; top stays as it is", f);
	fputs("\n  imgraph relinks offline: ", f);
	for (int i = 0; i < p->nparents; i++) {
		const struct plan_parent *pp = &p->parents[i];

		if (pp->live)
			continue;
		if (pp->user >= 0)
			fprintf(f, "%suser '%s'", noff++ ? ", " : "",
				g->users[pp->user].name);
		else
			fprintf(f, "%s%s", noff++ ? ", " : "",
				node_name(g, pp->node));
	}
	fputs(noff ? "\n" : "none\n", f);
}

static void human_conflicts(FILE *f, const struct graph *g,
			    const struct plan *p)
{
	char perms[80];

	if (!p->nconflicts) {
		fprintf(f, "conflicts: none; the plan can run.\n");
		return;
	}
	fprintf(f, "conflicts (%d); the plan cannot run:\n", p->nconflicts);
	for (int i = 0; i < p->nconflicts; i++) {
		const struct plan_conflict *c = &p->conflicts[i];

		fprintf(f, "  [%s] %s\n", conflict_kind_name(c->kind),
			ESC(c->message));
		if (c->node >= 0)
			fprintf(f, "      node: %s\n",
				ESC(node_name(g, c->node)));
		if (c->parties[0])
			fprintf(f, "      parties: %s\n", ESC(c->parties));
		if (c->perms)
			fprintf(f, "      permissions: %s\n",
				perm_names(c->perms, perms, sizeof(perms)));
		if (c->why[0])
			fprintf(f, "      why: %s\n", ESC(c->why));
		if (c->hint[0])
			fprintf(f, "      hint: %s\n", ESC(c->hint));
	}
}

/* What the plan saw: the pool it was built on, and what it cannot see. */
static void human_scanned(FILE *f, const struct plan *p)
{
	fprintf(f, "%-15s ", "pool scanned:");
	if (!p->nscanned)
		fputs("none", f);
	for (int i = 0; i < p->nscanned; i++)
		fprintf(f, "%s%s%s", i ? ", " : "", ESC(p->scanned[i].path),
			p->scanned[i].dir ? "/" : "");
	fprintf(f, "%s\n", p->scanned_recursive ? " (recursive)" : "");
	fprintf(f, "%-15s %s\n", "", POOL_UNSEEN);
}

/* --delete: what moves into the trash beside it, and what stays. */
static void human_trash(FILE *f, const struct graph *g, const struct plan *p)
{
	int moves = 0;

	for (int i = 0; i < p->ntrash; i++)
		moves += p->trash[i].moves;
	if (!p->ntrash)
		return;
	fprintf(f, "--delete moves into the trash (%d; 'imgraph undelete' "
		"puts back, 'imgraph purge' frees the space):\n", moves);
	for (int i = 0; i < p->ntrash; i++)
		if (p->trash[i].moves)
			fprintf(f, "  %s\n",
				ESC(node_name(g, p->trash[i].node)));
	for (int i = 0; i < p->ntrash; i++)
		if (!p->trash[i].moves)
			fprintf(f, "  stays: %s (%s)\n",
				ESC(node_name(g, p->trash[i].node)),
				p->trash[i].why ? ESC(p->trash[i].why) : "in use");
}

/* The layer above base at position i of p->copy_how (top first). */
static int layer_node(const struct plan *p, int i)
{
	return i == 0 ? p->top : p->inter[i - 1];
}

static void human_methods(FILE *f, const struct graph *g,
			  const struct plan *p)
{
	if (!p->copy_how)
		return;
	if (p->live.job) {
		fprintf(f, "%-15s QEMU's block job in PID %d\n",
			"copy method:", (int)p->live.pid);
		return;
	}
	fprintf(f, "%-15s ", "copy method:");
	for (int i = 0; i <= p->ninter; i++)
		fprintf(f, "%s%s %s", i ? ", " : "",
			ESC(node_name(g, layer_node(p, i))),
			p->copy_how[i] < 0 ? "unknown"
					   : copy_method_name(p->copy_how[i]));
	fputs(" (compressed data: read/write)\n", f);
}

/* A pull: what goes into top, its growth, top's own relink. */
static void human_pull(FILE *f, const struct graph *g, const struct plan *p)
{
	const struct plan_pull *pl = p->pull;
	const struct gnode *top = &g->nodes[p->top];
	char a[32], b[32];

	fprintf(f, "%-15s pull: the data between top and base goes into top; "
		"base is not written\n", "strategy:");
	fprintf(f, "%-15s %s (%llu bytes%s) into %s\n", "bytes to copy:",
		emit_size(pl->bytes_to_copy, a, sizeof(a)),
		(unsigned long long)pl->bytes_to_copy,
		pl->bytes_exact ? "" : ", upper bound", top->name);
	fprintf(f, "%-15s up to %s (its file; its virtual size stays %s)\n",
		"top growth:", emit_size(pl->space_needed, a, sizeof(a)),
		emit_size(top->info.virtual_size, b, sizeof(b)));
	if (pl->free_space)
		fprintf(f, "%-15s %s (needs up to %s)\n", "free space:",
			emit_size(pl->free_space, a, sizeof(a)),
			emit_size(pl->space_needed, b, sizeof(b)));
	fprintf(f, "top relinked onto base:\n");
	for (int i = 0; i < p->nparents; i++)
		human_parent(f, g, p, &p->parents[i]);
	fprintf(f, "%-15s %d (they keep reading top, whose view does not "
		"change)\n", "top's parents:", top->nchildren);
}

/* The other strategy when base has other readers (plan_pull.h). */
static void human_strategies(FILE *f, const struct graph *g,
			     const struct plan *p)
{
	const struct plan *q = p->alt_pull;
	enum plan_strategy rec = plan_recommend(p);
	char a[32], b[32];

	if (!q)
		return;
	fprintf(f, "base has other readers; the strategies:\n");
	/* (What is free is volatile: the free space lines say it.) */
	fprintf(f, "  commit: writes %s into %s (needs up to %s free); %s\n",
		emit_size(p->bytes_to_copy, a, sizeof(a)),
		node_name(g, p->base), emit_size(p->space_needed, b, sizeof(b)),
		plan_runnable(p) ? "can run" : "refused (conflicts above)");
	if (p->protect && p->protect->n && !p->protect->on &&
	    !p->protect->unprotectable)
		fprintf(f, "  commit --protect: also writes %s into base's %d "
			"other reader%s first\n",
			emit_size(p->protect->bytes, a, sizeof(a)),
			p->protect->n, p->protect->n == 1 ? "" : "s");
	fprintf(f, "  pull:   writes %s into %s (needs up to %s free); %s\n",
		emit_size(q->pull->bytes_to_copy, a, sizeof(a)),
		node_name(g, q->top), emit_size(q->pull->space_needed, b,
						sizeof(b)),
		plan_runnable(q) ? "can run; base and its other readers are "
		"not written" : "refused:");
	for (int i = 0; i < q->nconflicts; i++)
		fprintf(f, "    [%s] %s\n",
			conflict_kind_name(q->conflicts[i].kind),
			q->conflicts[i].message);
	fprintf(f, "  recommended: %s", plan_strategy_name(rec));
	if (rec == PLAN_STRATEGY_PULL)
		fprintf(f, " (imgraph commit --pull --top %s --base %s)",
			g->nodes[p->top].path, g->nodes[p->base].path);
	fputc('\n', f);
}

void emit_plan_ways(FILE *f, const struct graph *g, const struct plan *p)
{
	emit_protect_human(f, g, p);
	human_strategies(f, g, p);
}

static void emit_human(FILE *f, const struct graph *g, const struct plan *p)
{
	char a[32], b[32];

	human_node_line(f, g, "top:", p->top);
	human_node_line(f, g, "base:", p->base);
	fprintf(f, "%-15s ", "intermediates:");
	if (!p->ninter)
		fputs("none", f);
	for (int i = 0; i < p->ninter; i++)
		fprintf(f, "%s%s", i ? ", " : "",
			ESC(node_name(g, p->inter[i])));
	fputc('\n', f);
	/* A plan stopped by an unfinished relink analysed nothing else; a
	 * base that cannot be read has no size to grow from and no format
	 * to relink to, so what would be copied and relinked means nothing
	 * (the conflicts say why). */
	bool analysed = p->top >= 0 && p->base >= 0 &&
	    !(p->nconflicts && p->conflicts[0].kind == CONFLICT_JOURNAL) &&
	    !(g->nodes[p->base].flags & (GN_MISSING | GN_EXTERNAL)) &&
	    g->nodes[p->base].format;
	if (analysed && p->pull) {
		human_pull(f, g, p);
	} else if (analysed) {
		fprintf(f, "%-15s %s (%llu bytes%s)\n", "bytes to copy:",
			emit_size(p->bytes_to_copy, a, sizeof(a)),
			(unsigned long long)p->bytes_to_copy,
			p->bytes_exact ? "" : ", upper bound");
		human_methods(f, g, p);
		if (p->base_grows)
			fprintf(f, "%-15s %s -> %s\n", "base growth:",
				emit_size(p->base_old_size, a, sizeof(a)),
				emit_size(p->base_new_size, b, sizeof(b)));
		else
			fprintf(f, "%-15s none\n", "base growth:");
		if (p->free_space)
			fprintf(f, "%-15s %s (needs up to %s)\n",
				"free space:",
				emit_size(p->free_space, a, sizeof(a)),
				emit_size(p->space_needed, b, sizeof(b)));
		if (p->leaf == PLAN_LEAF_DROP)
			fprintf(f, "top has no parents and is dropped "
				"(--drop-top): it keeps its old backing "
				"link.\n");
		else if (p->leaf == PLAN_LEAF_KEEP)
			fprintf(f, "top has no parents: it is kept, relinked "
				"onto base and emptied.\n");
		fprintf(f, "parents relinked to base (%d):\n", p->nparents);
		for (int i = 0; i < p->nparents; i++)
			human_parent(f, g, p, &p->parents[i]);
		human_live(f, g, p);
		human_trash(f, g, p);
		emit_protect_human(f, g, p);
	}
	human_scanned(f, p);
	human_conflicts(f, g, p);
	human_strategies(f, g, p);
	if (plan_runnable(p)) {
		char sum[2048];

		fprintf(f, "in short:       %s.\n",
			ESC(plan_summary(g, p, NULL, NULL, sum, sizeof(sum))));
	}
}

static void node_obj(struct ow *w, const struct graph *g, const char *key,
		     int id)
{
	if (id < 0 || id >= g->n) {
		ow_null(w, key);
		return;
	}
	ow_obj_open(w, key);
	ow_i64(w, "id", id);
	ow_str(w, "name", g->nodes[id].name);
	ow_str(w, "filename", g->nodes[id].path);
	ow_str(w, "format", g->nodes[id].format);
	ow_bool(w, "format-stated", g->nodes[id].flags & GN_STATED);
	ow_u64(w, "virtual-size", g->nodes[id].info.virtual_size);
	ow_close(w);
}

/* The formats the administrator stated (--format, --base-format). */
static void struct_stated(struct ow *w, const struct graph *g)
{
	ow_arr_open(w, "stated-formats");
	for (int i = 0; i < g->nstated; i++) {
		int id = -1;

		for (int k = 0; k < g->n && id < 0; k++)
			if (g->stated[i].dev && g->nodes[k].dev ==
			    g->stated[i].dev && g->nodes[k].ino ==
			    g->stated[i].ino)
				id = k;
		ow_obj_open(w, NULL);
		ow_str(w, "filename", g->stated[i].path);
		ow_str(w, "format", g->stated[i].fmt);
		ow_str(w, "name", node_name(g, id));
		ow_bool(w, "used", id >= 0 && (g->nodes[id].flags & GN_STATED));
		ow_close(w);
	}
	ow_close(w);
}

static void struct_parents(struct ow *w, const struct graph *g,
			   const struct plan *p)
{
	ow_arr_open(w, "parents");
	for (int i = 0; i < p->nparents; i++) {
		const struct plan_parent *pp = &p->parents[i];

		ow_obj_open(w, NULL);
		ow_str(w, "kind", pp->user >= 0 ? "user" :
		       pp->node == p->top ? "top" : "overlay");
		if (pp->node >= 0) {
			ow_i64(w, "node", pp->node);
			ow_str(w, "name", node_name(g, pp->node));
		} else {
			ow_str(w, "user", g->users[pp->user].name);
		}
		ow_str(w, "filename", pp->path);
		ow_str(w, "old-backing", pp->old_name);
		ow_str(w, "old-format", pp->old_fmt);
		ow_str(w, "new-backing", pp->new_name);
		ow_str(w, "new-format", pp->new_fmt);
		ow_bool(w, "relative", pp->relative);
		ow_bool(w, "feasible", pp->feasible);
		ow_str(w, "relinked-by", pp->live ? "qemu" : "imgraph");
		if (pp->live)
			ow_str(w, "live-node", pp->live_node);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_live(struct ow *w, const struct plan *p)
{
	const struct plan_live *l = &p->live;

	if (l->job == PLAN_LIVE_NONE) {
		ow_null(w, "live");
		return;
	}
	ow_obj_open(w, "live");
	ow_str(w, "via", l->via);
	ow_i64(w, "pid", l->pid);
	ow_str(w, "comm", l->comm);
	ow_str(w, "qmp", l->qmp);
	ow_str(w, "qemu-version", l->qemu_version);
	ow_str(w, "domain", l->domain);
	ow_str(w, "disk", l->disk);
	ow_str(w, "job", l->job == PLAN_LIVE_ACTIVE ? "active-commit"
						     : "commit");
	ow_bool(w, "pivot", l->job == PLAN_LIVE_ACTIVE);
	ow_str(w, "device", l->device);
	ow_str(w, "backend-kind", l->backend_kind);
	ow_str(w, "backend", l->backend);
	ow_str(w, "top-node", l->top_node);
	ow_str(w, "base-node", l->base_node);
	ow_arr_open(w, "intermediate-nodes");
	for (int i = 0; i < p->ninter; i++)
		ow_str(w, NULL, l->inter_nodes[i]);
	ow_close(w);
	ow_str(w, "backing-file", l->backing_file);
	ow_close(w);
}

static void struct_scanned(struct ow *w, const struct plan *p)
{
	ow_obj_open(w, "scanned");
	ow_arr_open(w, "directories");
	for (int i = 0; i < p->nscanned; i++)
		if (p->scanned[i].dir)
			ow_str(w, NULL, p->scanned[i].path);
	ow_close(w);
	ow_arr_open(w, "files");
	for (int i = 0; i < p->nscanned; i++)
		if (!p->scanned[i].dir)
			ow_str(w, NULL, p->scanned[i].path);
	ow_close(w);
	ow_bool(w, "recursive", p->scanned_recursive);
	ow_str(w, "note", POOL_UNSEEN);
	ow_close(w);
}

static void struct_conflicts(struct ow *w, const struct graph *g,
			     const struct plan *p)
{
	ow_arr_open(w, "conflicts");
	for (int i = 0; i < p->nconflicts; i++) {
		const struct plan_conflict *c = &p->conflicts[i];

		ow_obj_open(w, NULL);
		ow_str(w, "kind", conflict_kind_name(c->kind));
		ow_str(w, "node", node_name(g, c->node));
		ow_str(w, "parties", c->parties);
		emit_perm_list(w, "permissions", c->perms);
		ow_str(w, "message", c->message);
		ow_str(w, "why", c->why);
		ow_str(w, "hint", c->hint);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_trash(struct ow *w, const struct graph *g,
			 const struct plan *p)
{
	ow_arr_open(w, "trash");
	for (int i = 0; i < p->ntrash; i++) {
		const struct plan_trash *t = &p->trash[i];

		ow_obj_open(w, NULL);
		ow_i64(w, "node", t->node);
		ow_str(w, "name", node_name(g, t->node));
		ow_str(w, "filename", g->nodes[t->node].path);
		ow_bool(w, "moves", t->moves);
		ow_str(w, "why", t->why);
		ow_close(w);
	}
	ow_close(w);
}

/* One strategy: what it writes, into which file, the space it needs. */
static void struct_strategy(struct ow *w, const struct graph *g,
			    const struct plan *q)
{
	bool pull = q->pull != NULL;

	ow_obj_open(w, NULL);
	ow_str(w, "name", pull ? "pull" : "commit");
	ow_bool(w, "runnable", plan_runnable(q));
	ow_u64(w, "bytes-to-copy", pull ? q->pull->bytes_to_copy
					: q->bytes_to_copy);
	/* A commit with --protect lists the protected readers here too. */
	ow_arr_open(w, "written");
	ow_str(w, NULL, node_name(g, pull ? q->top : q->base));
	ow_close(w);
	ow_u64(w, "space-needed", pull ? q->pull->space_needed
				       : q->space_needed);
	/* free space: the plan's (or its pull's) free-space, which is
	 * volatile; here only what is stable. */
	ow_i64(w, "conflicts", q->nconflicts);
	ow_close(w);
}

static void struct_pull(struct ow *w, const struct graph *g,
			const struct plan *p)
{
	const struct plan_pull *pl = p->pull;

	if (!pl) {
		ow_null(w, "pull");
		return;
	}
	ow_obj_open(w, "pull");
	ow_str(w, "into", node_name(g, p->top));
	ow_u64(w, "bytes-to-copy", pl->bytes_to_copy);
	ow_bool(w, "bytes-exact", pl->bytes_exact);
	ow_u64(w, "unit", pl->unit);
	ow_u64(w, "top-growth", pl->space_needed);
	ow_u64(w, "space-needed", pl->space_needed);
	ow_u64(w, "free-space", pl->free_space);
	ow_close(w);
}

/* The strategies the plan weighs (two when base has other readers) and
 * the one it recommends; the pull's conflicts in full. */
static void struct_strategies(struct ow *w, const struct graph *g,
			      const struct plan *p)
{
	ow_str(w, "strategy", p->pull ? "pull" : "commit");
	struct_pull(w, g, p);
	ow_arr_open(w, "strategies");
	if (p->top >= 0 && p->base >= 0 && p->top < g->n && p->base < g->n) {
		struct_strategy(w, g, p);
		if (p->alt_pull)
			struct_strategy(w, g, p->alt_pull);
	}
	ow_close(w);
	ow_str(w, "recommended", plan_strategy_name(plan_recommend(p)));
	if (p->alt_pull) {
		ow_obj_open(w, "alternative");
		struct_pull(w, g, p->alt_pull);
		struct_conflicts(w, g, p->alt_pull);
		ow_close(w);
	}
}

static void emit_struct(FILE *f, const struct graph *g, const struct plan *p,
			enum out_fmt fmt)
{
	struct ow w;

	ow_init(&w, f, fmt);
	ow_obj_open(&w, NULL);
	ow_bool(&w, "runnable", plan_runnable(p));
	node_obj(&w, g, "top", p->top);
	node_obj(&w, g, "base", p->base);
	ow_arr_open(&w, "intermediates");
	for (int i = 0; i < p->ninter; i++)
		node_obj(&w, g, NULL, p->inter[i]);
	ow_close(&w);
	ow_u64(&w, "bytes-to-copy", p->bytes_to_copy);
	ow_bool(&w, "bytes-exact", p->bytes_exact);
	ow_u64(&w, "base-old-size", p->base_old_size);
	ow_u64(&w, "base-new-size", p->base_new_size);
	ow_bool(&w, "base-grows", p->base_grows);
	ow_u64(&w, "free-space", p->free_space);
	ow_u64(&w, "space-needed", p->space_needed);
	ow_arr_open(&w, "copy-methods");
	for (int i = 0; p->copy_how && i <= p->ninter; i++) {
		ow_obj_open(&w, NULL);
		ow_str(&w, "image", node_name(g, layer_node(p, i)));
		if (p->copy_how[i] < 0)
			ow_null(&w, "method");
		else
			ow_str(&w, "method", copy_method_name(p->copy_how[i]));
		ow_close(&w);
	}
	ow_close(&w);
	/* What each layer gives base (where it is the top-most layer). */
	if (p->layer_bytes) {
		ow_arr_open(&w, "copy-layers");
		for (int i = 0; i <= p->ninter; i++) {
			ow_obj_open(&w, NULL);
			ow_str(&w, "image", node_name(g, layer_node(p, i)));
			ow_u64(&w, "bytes", p->layer_bytes[i]);
			ow_close(&w);
		}
		ow_close(&w);
	}
	ow_bool(&w, "top-is-leaf", p->leaf != PLAN_LEAF_NONE);
	ow_bool(&w, "drop-top", p->leaf == PLAN_LEAF_DROP);
	struct_parents(&w, g, p);
	struct_live(&w, p);
	struct_scanned(&w, p);
	struct_stated(&w, g);
	struct_trash(&w, g, p);
	emit_protect_struct(&w, g, p);
	struct_conflicts(&w, g, p);
	struct_strategies(&w, g, p);
	ow_close(&w);
	ow_finish(&w);
}

void emit_plan(FILE *f, const struct graph *g, const struct plan *p,
	       enum out_fmt fmt)
{
	if (fmt == OUT_HUMAN)
		emit_human(f, g, p);
	else
		emit_struct(f, g, p, fmt);
}
