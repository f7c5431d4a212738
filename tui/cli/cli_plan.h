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
	const char *base_format;      /* --base-format or NULL */
};

/* Scan the pool, find top and base and build the plan.  Returns EXIT_OK with
 * *g and *p owned by the caller (graph_free, plan_free), or an exit code
 * after reporting the error on stderr. */
int cli_plan_load(const struct cli_plan_args *a, struct graph **g,
		  struct plan **p);

/* The options that say how to read the images, which `plan`, `commit` and
 * the editor take (long names; -F is --base-format's short form). */
#define CLI_PLAN_FORMAT_LONGOPTS \
	{ "format", required_argument, NULL, 'f' }, \
	{ "base-format", required_argument, NULL, 'F' }, \
	{ "base-is-raw", no_argument, NULL, 'W' }, \
	{ "ignore-unverified", required_argument, NULL, 'I' }

/* Their help lines in `plan --help` and `commit --help`: one text. */
#define CLI_PLAN_FORMAT_HELP \
"      --base-format FMT, -F FMT  base's format, where the link that\n" \
"                     reaches it records none (qed, qcow, or a qcow2\n" \
"                     made without -F); it must be what its bytes probe as\n" \
"      --format FILE=FMT  the same for any image of the chain (an\n" \
"                     intermediate a qed or qcow link reaches); repeatable.\n" \
"                     A stated format never overrides a recorded one\n"

/* The options that shape a plan, which `plan` and `commit` both take
 * (long names only): entries for the middle of a getopt_long table. */
#define CLI_PLAN_LONGOPTS \
	CLI_PLAN_FORMAT_LONGOPTS, \
	{ "drop-top", no_argument, NULL, 'D' }, \
	{ "delete", no_argument, NULL, 'X' }, \
	{ "offline", no_argument, NULL, 'O' }, \
	{ "qmp", required_argument, NULL, 'Q' }, \
	{ "pull", no_argument, NULL, 'P' }, \
	{ "protect", no_argument, NULL, 'S' }

/* What the shared options fill.  ignore and stated: argc slots each,
 * which po->ignore_unverified and the caller's scan_opts.stated then
 * point to. */
struct cli_plan_set {
	const char *cmd;              /* for messages: "plan", "commit", "" */
	struct plan_opts *po;
	char **ignore;
	struct fmt_stated *stated;    /* --format FILE=FMT */
	int nstated;
	const char *base_format;      /* --base-format, -F */
};

/* Allocate the argc slots of s (cmd and po set by the caller): 0, or
 * -ENOMEM (reported). */
int cli_plan_set_init(struct cli_plan_set *s, int argc);
void cli_plan_set_free(struct cli_plan_set *s);

/* Apply what getopt_long returned (c, with its arg) to s when it is one
 * of CLI_PLAN_LONGOPTS: 1; 0 for any other c; -1 for a bad value (said
 * on stderr: exit 2). */
int cli_plan_option(int c, char *arg, struct cli_plan_set *s);
/* The same for CLI_PLAN_FORMAT_LONGOPTS alone (the editor's). */
int cli_plan_format_option(int c, char *arg, struct cli_plan_set *s);

/* Every file a --format names exists: EXIT_OK, or the exit code after
 * the error is said on stderr. */
int cli_stated_exist(const struct scan_opts *so);

/* The statements of s into so (pointing into s). */
void cli_plan_set_scan(const struct cli_plan_set *s, struct scan_opts *so);

#endif
