/* plan.c - build the commit plan: validate the pair, collect the chain and
 * the parents of top with their new backing strings, then run the checks
 * of plan_check.c and the space estimate of plan_space.c.  See plan.h.
 */
#include "plan_int.h"
#include "plan_pull.h"
#include "plan_protect.h"
#include "core/graph/resolve.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *conflict_kind_name(enum conflict_kind k)
{
	switch (k) {
	case CONFLICT_PERMISSION: return "permission";
	case CONFLICT_LOCK: return "lock";
	case CONFLICT_RELINK: return "relink";
	case CONFLICT_IMAGE_STATE: return "image-state";
	case CONFLICT_SPACE: return "space";
	case CONFLICT_INVALID_PAIR: return "invalid-pair";
	case CONFLICT_FORMAT: return "format";
	case CONFLICT_JOURNAL: return "journal";
	case CONFLICT_STALE: return "stale";
	case CONFLICT_LIVE: return "live";
	case CONFLICT_UNVERIFIED: return "unverified-reader";
	case CONFLICT_PROTECT: return "protect";
	}
	return "unknown";
}

bool plan_runnable(const struct plan *p)
{
	return p && p->nconflicts == 0 && p->top >= 0 && p->base >= 0;
}

int plan_add_conflict(struct plan *p, enum conflict_kind k, int node,
		      uint8_t perms, const char *parties, const char *message,
		      const char *why, const char *hint)
{
	struct plan_conflict *nv = realloc(p->conflicts, sizeof(*nv) *
					   (size_t)(p->nconflicts + 1));
	struct plan_conflict *c;

	if (!nv)
		return -ENOMEM;
	p->conflicts = nv;
	c = &nv[p->nconflicts];
	memset(c, 0, sizeof(*c));
	c->kind = k;
	c->node = node;
	c->perms = perms;
	c->parties = strdup(parties ? parties : "");
	c->message = strdup(message ? message : "");
	c->why = strdup(why ? why : "");
	c->hint = strdup(hint ? hint : "");
	if (!c->parties || !c->message || !c->why || !c->hint) {
		free(c->parties);
		free(c->message);
		free(c->why);
		free(c->hint);
		return -ENOMEM;
	}
	p->nconflicts++;
	return 0;
}

void plan_parent_free(struct plan_parent *pp)
{
	free(pp->path);
	free(pp->old_name);
	free(pp->old_fmt);
	free(pp->new_name);
	free(pp->new_fmt);
	free(pp->live_node);
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nconflicts; i++) {
		free(p->conflicts[i].parties);
		free(p->conflicts[i].message);
		free(p->conflicts[i].why);
		free(p->conflicts[i].hint);
	}
	free(p->conflicts);
	for (int i = 0; i < p->nparents; i++)
		plan_parent_free(&p->parents[i]);
	plan_live_free(p);
	free(p->parents);
	free(p->inter);
	for (int i = 0; i < p->nscanned; i++)
		free(p->scanned[i].path);
	free(p->scanned);
	for (int i = 0; i < p->ntrash; i++)
		free(p->trash[i].why);
	free(p->trash);
	free(p->copy_how);
	free(p->layer_bytes);
	free(p->layer_cells);
	for (int i = 0; i < p->nignore_unverified; i++)
		free(p->ignore_unverified[i]);
	free(p->ignore_unverified);
	free(p->pull);
	plan_free(p->alt_pull);
	plan_protect_free(p->protect);
	free(p);
}

/* The pool paths of g, absolute, for the plan to say what it saw.  A path
 * that no longer resolves is listed as given. */
static int note_scanned(const struct graph *g, struct plan *p)
{
	p->scanned = calloc((size_t)g->npool_paths + 1, sizeof(*p->scanned));
	if (!p->scanned)
		return -ENOMEM;
	p->scanned_recursive = g->recursive;
	for (int i = 0; i < g->npool_paths; i++) {
		char abs[PATH_MAX];
		struct stat st;
		const char *s = realpath(g->pool_paths[i], abs) ? abs
							     : g->pool_paths[i];
		bool dup = false;

		for (int k = 0; k < p->nscanned; k++)
			dup |= !strcmp(p->scanned[k].path, s);
		if (dup)
			continue;
		p->scanned[p->nscanned].path = strdup(s);
		if (!p->scanned[p->nscanned].path)
			return -ENOMEM;
		p->scanned[p->nscanned++].dir = stat(s, &st) == 0 &&
						S_ISDIR(st.st_mode);
	}
	return 0;
}

/* Why the backing chain of top stops where it does (for "base not below
 * top" messages), or NULL. */
static const char *chain_stop_reason(const struct graph *g, int top, char *buf,
				     size_t len)
{
	for (int n = top, steps = 0; n >= 0 && steps <= g->n; steps++) {
		const struct gnode *x = &g->nodes[n];

		if (x->flags & GN_UNSAFE_PROBE) {
			char q[PATH_MAX + 64];

			snprintf(buf, len, "the chain stops at '%s': its format "
				 "was probed (%s) through a reference that "
				 "records none, so its backing file is not "
				 "followed; if it really is %s, say so: "
				 "--format %s=%s", x->name, x->format, x->format,
				 plan_sh_quote(x->path, q, sizeof(q)), x->format);
			return buf;
		}
		if (x->flags & GN_ERROR) {
			snprintf(buf, len, "the chain stops at '%s': %s",
				 x->name, x->error ? x->error : "error");
			return buf;
		}
		n = x->backing;
	}
	return NULL;
}

/* "Pick a base from top's chain: mid.qcow2, base.qcow2" (or that it has
 * none), into buf. */
static const char *chain_hint(const struct graph *g, int top, char *buf,
			      size_t len)
{
	size_t k;
	int n = g->nodes[top].backing, steps = 0;

	if (n < 0) {
		snprintf(buf, len, "'%s' has no backing file: there is nothing "
			 "below it to commit into.", g->nodes[top].name);
		return buf;
	}
	k = (size_t)snprintf(buf, len, "Pick a base from the chain of '%s': ",
			     g->nodes[top].name);
	for (; n >= 0 && steps <= g->n && k < len; n = g->nodes[n].backing,
	     steps++)
		k += (size_t)snprintf(buf + k, len - k, "%s'%s'",
				      steps ? ", " : "", g->nodes[n].name);
	if (k < len)
		snprintf(buf + k, len - k, ".");
	return buf;
}

/* A pair problem ends the analysis: 1, or -errno from plan_add_conflict. */
static int stop(int r)
{
	return r < 0 ? r : 1;
}

static int invalid_pair(struct graph *g, struct plan *p)
{
	char msg[1200], why[1200];
	const char *tn, *bn;

	if (p->top < 0 || p->top >= g->n)
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, -1, 0, "",
			"top is not in the pool",
			"imgraph only commits images it has scanned, so that "
			"it can see every other user of the chain.",
			"Add the directory that holds top to the PATHs."));
	tn = g->nodes[p->top].name;
	if (p->base < 0) {
		const char *r = chain_stop_reason(g, p->top, why, sizeof(why));
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, p->top, 0,
			tn, "Image does not have a backing file",
			r ? r : "top is the bottom of its chain: there is "
			"nothing to commit it into.",
			"Choose a top image that has a backing file (an overlay)."));
	}
	if (p->base >= g->n)
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, -1, 0, "",
			"base is not in the pool", "", ""));
	bn = g->nodes[p->base].name;
	if (p->top == p->base) {
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, p->top, 0,
			tn, "Invalid files for merge: top and base are the same",
			"A commit copies top's data into a different image "
			"below it.",
			"Choose a base below top (or none: top's backing file)."));
	}
	if (graph_is_below(g, p->base, p->top)) {
		snprintf(msg, sizeof(msg), "Did not find '%s' in the backing "
			 "chain of '%s': it is above it (top and base are "
			 "reversed)", bn, tn);
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, p->base, 0,
			bn, msg, "base must be a backing file (direct or "
			"indirect) of top.", "Swap top and base."));
	}
	if (!graph_is_below(g, p->top, p->base)) {
		const char *r = chain_stop_reason(g, p->top, why, sizeof(why));
		char hint[1200];

		snprintf(msg, sizeof(msg), "Did not find '%s' in the backing "
			 "chain of '%s'", bn, tn);
		return stop(plan_add_conflict(p, CONFLICT_INVALID_PAIR, p->base, 0,
			bn, msg, r ? r : "base must be a backing file (direct or "
			"indirect) of top.", chain_hint(g, p->top, hint,
							sizeof(hint))));
	}
	return 0;
}

static int add_parent(struct plan *p, struct plan_parent *pp)
{
	struct plan_parent *nv = realloc(p->parents, sizeof(*nv) *
					 (size_t)(p->nparents + 1));
	if (!nv)
		return -ENOMEM;
	p->parents = nv;
	nv[p->nparents++] = *pp;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* New backing string for an overlay at ov_path that now names old_name:
 * relative stays relative (recomputed for the overlay's directory),
 * absolute stays absolute.  Leaves new_name NULL when it cannot be
 * computed (the relink check reports it). */
static void new_name_for(struct plan_parent *pp, const char *ov_path,
			 const char *old_name, const char *base_path)
{
	char buf[PATH_MAX];
	struct img_err e = { 0 };

	pp->relative = !old_name || old_name[0] != '/';
	if (resolve_make_name(ov_path, base_path, pp->relative, buf,
			      sizeof(buf), &e) == 0)
		pp->new_name = strdup(buf);
}

/* Top's own record: relinked onto base (a kept leaf, or a pull). */
static int add_top_record(struct graph *g, struct plan *p)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];
	struct plan_parent pp = { .node = p->top, .user = -1 };

	pp.path = strdup(top->path);
	pp.old_name = dup_or_null(top->backing_name);
	pp.old_fmt = dup_or_null(top->backing_fmt);
	pp.new_fmt = dup_or_null(base->format);
	new_name_for(&pp, top->path, top->backing_name, base->path);
	pp.feasible = true;
	return add_parent(p, &pp);
}

static int collect_parents(struct graph *g, struct plan *p,
			   const struct plan_opts *o)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];
	int r;

	/* A pull: top's parents keep reading top; only top is relinked. */
	if (o->pull) {
		p->leaf = PLAN_LEAF_NONE;
		return add_top_record(g, p);
	}
	for (int i = 0; i < top->nchildren; i++) {
		const struct gnode *x = &g->nodes[top->children[i]];
		struct plan_parent pp = { .node = x->id, .user = -1 };

		pp.path = strdup(x->path);
		pp.old_name = dup_or_null(x->backing_name);
		pp.old_fmt = dup_or_null(x->backing_fmt);
		pp.new_fmt = dup_or_null(base->format);
		new_name_for(&pp, x->path, x->backing_name, base->path);
		pp.feasible = true;
		if ((r = add_parent(p, &pp)) < 0)
			return r;
	}
	for (int i = 0; i < g->nusers; i++) {
		const struct guser *u = &g->users[i];
		struct plan_parent pp = { .node = -1, .user = i };

		if (u->kind != PARTY_USER || u->node != p->top)
			continue;
		pp.path = dup_or_null(g->users_file);
		pp.old_name = strdup(u->image);
		pp.relative = u->image[0] != '/';
		if (g->users_file)
			new_name_for(&pp, g->users_file, u->image, base->path);
		pp.feasible = true;
		if ((r = add_parent(p, &pp)) < 0)
			return r;
	}
	p->leaf = p->nparents ? PLAN_LEAF_NONE : o->drop_top ? PLAN_LEAF_DROP
							   : PLAN_LEAF_KEEP;
	/* qemu-img semantics: top stays, emptied, and now names base
	 * directly (the intermediates leave its chain). */
	if (p->leaf == PLAN_LEAF_KEEP)
		return add_top_record(g, p);
	return 0;
}

/* The intermediates: top's backing chain strictly between top and
 * base, top-down. */
static int collect_chain(struct graph *g, struct plan *p)
{
	for (int n = g->nodes[p->top].backing; n >= 0 && n != p->base;
	     n = g->nodes[n].backing) {
		int *nv = realloc(p->inter, sizeof(int) *
				  (size_t)(p->ninter + 1));
		if (!nv)
			return -ENOMEM;
		p->inter = nv;
		p->inter[p->ninter++] = n;
	}
	return 0;
}

/* The analysis of a pull: base is read, never written, so it neither
 * grows nor needs room; top is written where it allocates nothing. */
static int analyse_pull(struct graph *g, struct plan *p,
			const struct plan_opts *o, struct img_err *e)
{
	int r;

	if ((r = collect_chain(g, p)) < 0)
		return r;
	p->base_old_size = p->base_new_size =
		g->nodes[p->base].info.virtual_size;
	if ((r = collect_parents(g, p, o)) < 0 ||
	    (r = plan_check_stale(g, p)) < 0 ||
	    (r = plan_pull_check_pair(g, p)) < 0 ||
	    (r = plan_check_states(g, p)) < 0 ||
	    (r = plan_check_permissions(g, p)) < 0 ||
	    (r = plan_check_locks(g, p, e)) < 0 ||
	    (r = plan_check_relinks(g, p)) < 0 ||
	    (r = plan_pull_check_journal_dir(g, p)) < 0 ||
	    (r = plan_check_limits(g, p)) < 0 ||
	    (r = plan_pull_count(g, p, o->skip_bytes)) < 0 ||
	    (r = plan_pull_check_space(g, p)) < 0)
		return r;
	return 0;
}

/* The analysis of a valid pair, step by step. */
static int analyse(struct graph *g, struct plan *p, const struct plan_opts *o,
		   struct img_err *e)
{
	const struct gnode *top = &g->nodes[p->top];
	int r;

	if (o->pull)
		return analyse_pull(g, p, o, e);
	if ((r = collect_chain(g, p)) < 0)
		return r;
	p->base_old_size = g->nodes[p->base].info.virtual_size;
	p->base_new_size = top->info.virtual_size > p->base_old_size ?
		top->info.virtual_size : p->base_old_size;
	p->base_grows = p->base_new_size > p->base_old_size;
	if ((r = collect_parents(g, p, o)) < 0 ||
	    (r = plan_protect_build(g, p, o)) < 0 ||
	    (r = plan_check_stale(g, p)) < 0 ||
	    (r = plan_check_states(g, p)) < 0 ||
	    (r = plan_check_raw_base(g, p)) < 0 ||
	    (r = plan_check_unverified(g, p)) < 0 ||
	    (r = plan_check_permissions(g, p)) < 0 ||
	    (r = plan_check_live(g, p, o)) < 0 ||
	    (r = plan_check_locks(g, p, e)) < 0 ||
	    (r = plan_check_relinks(g, p)) < 0 ||
	    (r = plan_check_limits(g, p)) < 0 ||
	    (r = plan_count_bytes(g, p, o->skip_bytes)) < 0 ||
	    (r = plan_check_space(g, p)) < 0 ||
	    (r = plan_protect_check_space(g, p)) < 0 ||
	    (o->delete_files && (r = plan_list_trash(g, p)) < 0))
		return r;
	return 0;
}

int plan_build(struct graph *g, int top, int base, const struct plan_opts *o,
	       struct plan **out, struct img_err *e)
{
	struct plan_opts none = { 0 };
	struct img_err cause = { 0 };
	struct plan *p;
	int r;

	*out = NULL;
	if (!o)
		o = &none;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, ENOMEM, "plan: out of memory");
	p->top = top;
	p->base = base;
	if (plan_keep_overrides(p, o) < 0 ||
	    (o->pull && !(p->pull = calloc(1, sizeof(*p->pull))))) {
		plan_free(p);
		return err_set(e, ENOMEM, "plan: out of memory");
	}
	if (top >= 0 && top < g->n && base < 0)
		p->base = g->nodes[top].backing;
	r = note_scanned(g, p);
	/* An unfinished relink is the only conflict worth showing: until
	 * it is recovered the pool is split and nothing else can be
	 * trusted. */
	if (r == 0)
		r = plan_check_journals(g, p);
	if (r == 0)
		r = invalid_pair(g, p);
	if (r == 0)
		r = analyse(g, p, o, &cause);
	/* base has other readers: show the pull beside the commit */
	if (r == 0)
		r = plan_pull_alternative(g, p, o, &cause);
	if (r < 0) {
		plan_free(p);
		/* A step that knows the cause filled it; the others can only
		 * have run out of memory. */
		if (!cause.code)
			return err_set(e, -r, "plan: out of memory");
		if (e)
			*e = cause;
		return r;
	}
	*out = p;
	return 0;
}
