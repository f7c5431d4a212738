/* plan_pull.c - the steps of a pull's plan (plan_pull.h): the pair, the
 * bytes pulled into top and the space they need on top's file system,
 * and the choice between commit and pull when base has other readers.
 */
#include "plan_int.h"
#include "plan_pull.h"
#include "core/commit/pull.h"
#include "core/graph/chain.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

int plan_pull_check_pair(struct graph *g, struct plan *p)
{
	const char *tn = g->nodes[p->top].name;
	char msg[1200];

	if (p->ninter)
		return 0;
	snprintf(msg, sizeof(msg), "nothing to pull: '%s' already reads '%s' "
		 "directly", tn, g->nodes[p->base].name);
	return plan_add_conflict(p, CONFLICT_INVALID_PAIR, p->top, 0, tn, msg,
		"A pull copies the images between top and base into top; "
		"there are none.", "Pick a base further down top's chain.");
}

int plan_pull_check_journal_dir(struct graph *g, struct plan *p)
{
	const struct gnode *base = &g->nodes[p->base];
	const char *slash = strrchr(base->path, '/');
	char dir[PATH_MAX], msg[PATH_MAX + 200];

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == base->path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - base->path),
			 base->path);
	if (access(dir, W_OK) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "the relink journal goes beside base, in "
		 "'%s', which cannot be written: %s", dir, strerror(errno));
	return plan_add_conflict(p, CONFLICT_RELINK, p->base, 0, base->name,
		msg, "The pull never writes base, but top's relink is "
		"journaled beside it so that a crash can be recovered.",
		"Make that directory writable (a template on a read-only "
		"mount: remount it read-write for the relink).");
}

/* pull_range_fn of the count: the total and the space estimate. */
struct pull_count {
	struct space_est se;
	uint64_t total;
};

static int count_range(void *opaque, uint64_t off, uint64_t len,
		       struct img_err *e)
{
	struct pull_count *pc = opaque;

	(void)e;
	pc->total += len;
	plan_space_add(&pc->se, off, len);
	return 0;
}

/* The whole chain, as the pull opens it: zeros between top and base
 * need no pull where base reads zeros too. */
static int count_mapped(struct graph *g, struct plan *p, struct pull_count *pc)
{
	const struct gnode *top = &g->nodes[p->top];
	struct chain *c = NULL;
	struct img_err e = { 0 };
	char msg[1400];
	int r;

	r = chain_open_stated(top->path, top->format, 0, 0, 0, g->stated,
			      g->nstated, &c, &e);
	if (r == 0 && c->n < p->ninter + 2)
		r = err_set(&e, ESTALE, "the chain is shorter than the "
			    "graph's");
	if (r == 0)
		r = pull_ranges(c, p->ninter + 1, p->pull->unit, count_range,
				pc, &e);
	chain_close(c);
	if (r == 0)
		return 0;
	snprintf(msg, sizeof(msg), "cannot map the chain of '%s': %s",
		 top->name, e.msg);
	r = plan_add_conflict(p, CONFLICT_IMAGE_STATE, p->top, 0, top->name,
			      msg, "The data to pull cannot be located.",
			      "Check the images with qemu-img check.");
	return r < 0 ? r : 1;
}

int plan_pull_count(struct graph *g, struct plan *p, bool skip)
{
	const struct gnode *top = &g->nodes[p->top];
	struct plan_pull *pl = p->pull;
	struct pull_count pc = { .total = 0 };
	int r;

	pl->unit = pull_unit(top->info.cluster_size, top->info.extended_l2);
	/* Upper bound first: what the intermediates occupy. */
	pl->bytes_to_copy = 0;
	for (int i = 0; i < p->ninter; i++)
		pl->bytes_to_copy += g->nodes[p->inter[i]].info.actual_size;
	pl->bytes_exact = false;
	plan_space_init(&pc.se, top);
	plan_space_add(&pc.se, 0, pl->bytes_to_copy);
	pl->space_needed = pl->bytes_to_copy ?
		plan_space_total(&pc.se, top, 0) : 0;
	if (skip)
		return 0;
	/* Only read a chain the state checks found readable. */
	for (int i = 0; i < p->nconflicts; i++)
		if (p->conflicts[i].kind == CONFLICT_IMAGE_STATE ||
		    p->conflicts[i].kind == CONFLICT_FORMAT ||
		    p->conflicts[i].kind == CONFLICT_INVALID_PAIR)
			return 0;
	plan_space_init(&pc.se, top);
	r = count_mapped(g, p, &pc);
	if (r != 0)
		return r < 0 ? r : 0;
	pl->bytes_to_copy = pc.total;
	pl->bytes_exact = true;
	pl->space_needed = pc.total ? plan_space_total(&pc.se, top, 0)
				    : 0;
	return 0;
}

int plan_pull_check_space(struct graph *g, struct plan *p)
{
	const struct gnode *top = &g->nodes[p->top];
	struct plan_pull *pl = p->pull;
	char detail[200];

	snprintf(detail, sizeof(detail), " (%llu bytes pulled on its cluster "
		 "grid, plus new metadata)",
		 (unsigned long long)pl->bytes_to_copy);
	return plan_space_check(p, top, top->path, false, pl->space_needed,
		&pl->free_space, detail,
		"A pull that runs out of space stops half way (every view "
		"stays as it was, but nothing is gained).",
		"Free space on that file system, or commit instead.");
}

bool plan_base_shared(const struct plan *p)
{
	if (!p || p->pull || p->base < 0)
		return false;
	for (int i = 0; i < p->nconflicts; i++)
		if ((p->conflicts[i].kind == CONFLICT_PERMISSION ||
		     p->conflicts[i].kind == CONFLICT_LOCK) &&
		    p->conflicts[i].node == p->base)
			return true;
	return false;
}

int plan_pull_alternative(struct graph *g, struct plan *p,
			  const struct plan_opts *o, struct img_err *e)
{
	struct plan_opts po = { .pull = true, .skip_bytes = o->skip_bytes };

	/* Nothing between top and base: nothing to pull. */
	if (o->pull || !p->ninter || !plan_base_shared(p))
		return 0;
	return plan_build(g, p->top, p->base, &po, &p->alt_pull, e);
}

/* The bytes a commit writes: into base.  The hook for --protect: the
 * bytes it copies into base's other readers first belong here too. */
static uint64_t commit_cost(const struct plan *p)
{
	return p->bytes_to_copy;
}

enum plan_strategy plan_recommend(const struct plan *p)
{
	bool c_ok, p_ok;

	if (!p)
		return PLAN_STRATEGY_NONE;
	if (p->pull)
		return plan_runnable(p) ? PLAN_STRATEGY_PULL
					: PLAN_STRATEGY_NONE;
	c_ok = plan_runnable(p);
	p_ok = p->alt_pull && plan_runnable(p->alt_pull);
	if (c_ok && p_ok)
		return p->alt_pull->pull->bytes_to_copy < commit_cost(p) ?
			PLAN_STRATEGY_PULL : PLAN_STRATEGY_COMMIT;
	return c_ok ? PLAN_STRATEGY_COMMIT : p_ok ? PLAN_STRATEGY_PULL
						  : PLAN_STRATEGY_NONE;
}

const char *plan_strategy_name(enum plan_strategy s)
{
	switch (s) {
	case PLAN_STRATEGY_COMMIT: return "commit";
	case PLAN_STRATEGY_PULL: return "pull";
	case PLAN_STRATEGY_NONE: break;
	}
	return "none";
}
