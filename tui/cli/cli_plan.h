/* cli_plan.h - the pool and plan loading shared by `plan` and `commit`. */
#ifndef IMGRAPH_CLI_PLAN_H
#define IMGRAPH_CLI_PLAN_H

#include "cmd.h"
#include "core/graph/graph.h"
#include "core/plan/plan.h"

struct cli_plan_args {
	const char *top;              /* --top (required) */
	const char *base;             /* --base or NULL */
	char **paths;                 /* PATH... (may be empty) */
	int npaths;
	const struct scan_opts *scan;
	const struct plan_opts *plan;
};

/* Scan the pool, find top and base and build the plan.  Returns EXIT_OK with
 * *g and *p owned by the caller (graph_free, plan_free), or an exit code
 * after reporting the error on stderr. */
int cli_plan_load(const struct cli_plan_args *a, struct graph **g,
		  struct plan **p);

#endif
