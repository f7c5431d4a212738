/* plan_pull.h - the plan of a pull (plan_opts.pull), and the choice
 * between the strategies when base has other readers.
 *
 * A pull flattens the chain the other way (core/commit/pull.h): the data
 * of the images between top and base goes into top, where top allocates
 * nothing, and top's header is then rewritten to name base (the journaled
 * relink, with top as its only record).  base is never written, so its
 * other readers need nothing; top's parents keep reading top.  Roles and
 * locks: the PLAN_ROLE_PULL_* rows of the policy table (policy.c).
 */
#ifndef IMGRAPH_PLAN_PULL_H
#define IMGRAPH_PLAN_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"

struct plan_pull {
	/* Top's view written into top (pull.h's rule), on top's unit. */
	uint64_t bytes_to_copy;
	bool bytes_exact;          /* from block status (else a bound: the
				      intermediates' file sizes) */
	uint64_t unit;             /* top's allocation unit */
	/* Top's file growth, an upper bound (the data on top's cluster grid
	 * plus the metadata it may need); compared with free_space. */
	uint64_t space_needed;
	uint64_t free_space;       /* on top's file system */
};

/* plan.c's steps for a pull (plan_int.h conventions: conflicts are added,
 * -errno only for failures of our own). */
int plan_pull_check_pair(struct graph *g, struct plan *p);
int plan_pull_count(struct graph *g, struct plan *p, bool skip);
int plan_pull_check_space(struct graph *g, struct plan *p);
/* The relink journal goes beside base (journal.h): its directory must be
 * writable even though base is not written. */
int plan_pull_check_journal_dir(struct graph *g, struct plan *p);

/* A commit plan refused because base has other readers (a permission
 * conflict on base): attach the pull of the same pair as p->alt_pull, so
 * that the plan shows both strategies.  Nothing for other plans. */
int plan_pull_alternative(struct graph *g, struct plan *p,
			  const struct plan_opts *o, struct img_err *e);

/* True when p is a commit refused only because base has other readers
 * (every conflict is a permission conflict on base). */
bool plan_base_shared(const struct plan *p);

enum plan_strategy {
	PLAN_STRATEGY_NONE,        /* neither can run */
	PLAN_STRATEGY_COMMIT,
	PLAN_STRATEGY_PULL,
};

/* Which strategy the plan recommends: the runnable one; when both can
 * run, the one that writes fewer bytes.  (A commit with --protect adds
 * the bytes it copies into base's other readers to the commit's side:
 * that is where its cost enters the comparison.) */
enum plan_strategy plan_recommend(const struct plan *p);
const char *plan_strategy_name(enum plan_strategy s);

#endif
