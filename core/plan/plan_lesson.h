/* plan_lesson.h - the commit of a plan told one stage at a time, for the
 * editor's teaching view: the check, what each layer above base gives
 * base (which clusters, from which image), the flush, each header the
 * relink rewrites with what its guest reads before and after, the
 * cleanup.  Built from the plan object alone (and the graph's names), so
 * it cannot disagree with the commit, which executes that same plan.
 *
 * Ownership: plan_lesson_build returns an owned lesson (plan_lesson_free);
 * it borrows nothing from the plan or the graph.
 */
#ifndef IMGRAPH_PLAN_LESSON_H
#define IMGRAPH_PLAN_LESSON_H

#include <stdint.h>

#include "core/graph/graph.h"
#include "plan.h"

enum lesson_kind {
	LESSON_BEFORE,             /* who reads what today */
	LESSON_CHECK,
	LESSON_COPY,               /* one per layer above base */
	LESSON_FLUSH,
	LESSON_RELINK,             /* one per parent */
	LESSON_CLEANUP,
};

struct lesson_stage {
	enum lesson_kind kind;
	const char *phase;         /* the commit's progress phase, or NULL */
	char *title;               /* one line */
	char **lines;              /* what happens, plain words */
	int nlines;
	int layer;                 /* COPY: 0 top, i inter[i-1]; else -1 */
	uint64_t bytes;            /* COPY: what that layer gives base */
	int parent;                /* RELINK: index in plan.parents; else -1 */
};

struct plan_lesson {
	struct lesson_stage *st;
	int n;
	int nlayers;               /* layers above base (ninter + 1) */
	char **layer_names;        /* nlayers, top first */
	char *base_name;
	/* Copy of plan.layer_cells (nlayers * PLAN_MAP_CELLS), or NULL. */
	float *cells;
};

/* How an image is named (the editor: relative to the pool); NULL: the
 * graph's names. */
struct lesson_names {
	const char *(*name)(const void *ctx, int node);
	const void *ctx;
};

/* -EINVAL (e says why) for a plan that cannot run; -ENOMEM. */
int plan_lesson_build(const struct graph *g, const struct plan *p,
		      const struct lesson_names *names,
		      struct plan_lesson **out, struct img_err *e);
void plan_lesson_free(struct plan_lesson *l);

#endif
