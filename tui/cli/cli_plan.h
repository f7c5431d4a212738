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

/* The options that shape a plan, which `plan` and `commit` both take
 * (long names only): entries for the middle of a getopt_long table. */
#define CLI_PLAN_LONGOPTS \
	{ "drop-top", no_argument, NULL, 'D' }, \
	{ "delete", no_argument, NULL, 'X' }, \
	{ "offline", no_argument, NULL, 'F' }, \
	{ "qmp", required_argument, NULL, 'Q' }, \
	{ "base-is-raw", no_argument, NULL, 'W' }, \
	{ "ignore-unverified", required_argument, NULL, 'I' }, \
	{ "pull", no_argument, NULL, 'P' }, \
	{ "protect", no_argument, NULL, 'S' }

/* Apply what getopt_long returned (c, with its arg) to po when it is one
 * of CLI_PLAN_LONGOPTS; false for any other c.  ignore: argc slots for the
 * --ignore-unverified FILEs, which po then points to. */
bool cli_plan_option(int c, char *arg, struct plan_opts *po, char **ignore);

#endif
