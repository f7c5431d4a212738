/* cmd_plan.c - imgraph plan: preview a commit; writes nothing.
 * Exit 0 runnable, 3 conflicts, 1 error, 2 usage. */
#include "cmd.h"
#include "cli_plan.h"
#include "core/out/emit.h"
#include "core/graph/graph.h"
#include "core/plan/plan.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void plan_usage(FILE *f)
{
	fputs("Usage: imgraph plan --top IMAGE [--base IMAGE] [--users FILE]\n"
	      "                    [-F|--base-format FMT] [--format FILE=FMT]...\n"
	      "                    [--drop-top] [--delete] [--base-is-raw]\n"
"                    [--ignore-unverified FILE]... [--pull] [--protect]\n"
"                    [--offline] [--qmp PATH]\n"
	      "                    [--output=human|json|yaml] [PATH...]\n"
	      "Preview committing --top into --base (default: top's backing\n"
	      "file): what is copied, which parents of top are relinked, and\n"
	      "every conflict.  Nothing is written.\n"
	      "  -r, --recursive    descend into subdirectories of PATH\n"
	      "      --drop-top     plan to drop a top that has no parents\n"
	      "      --delete       list what commit --delete moves into the "
	      "trash\n"
	      CLI_PLAN_FORMAT_HELP
	      "      --base-is-raw  base is recorded raw but carries another\n"
	      "                     format's header or footer: it really is a\n"
	      "                     raw disk, plan to write it\n"
	      "      --ignore-unverified FILE  FILE carries an image signature\n"
	      "                     imgraph cannot read far enough to know its\n"
	      "                     backing file; it reads nothing of this\n"
	      "                     chain (repeatable)\n"
	      "      --pull         plan a pull (commit --pull): the data\n"
	      "                     between top and base into top, then top\n"
	      "                     onto base; base is not written.  When base\n"
	      "                     has other readers, a commit's plan shows\n"
	      "                     the pull beside it and recommends one\n"
	      "      --protect      plan to copy base's old data into base's "
	      "other\n"
	      "                     readers first, so their views stay the "
	      "same\n"
	      "      --offline      a plan that needs a running QEMU's block "
	      "job has a conflict\n"
	      "      --qmp PATH     QMP monitor socket of the QEMU holding top "
	      "(when its\n"
	      "                     command line names none; or qmp: in the users "
	      "file)\n"
	      "When a QEMU with a QMP monitor holds top, the plan has a live "
	      "part: that\nprocess's block-commit does the copy.\n"
	      "The pool is PATH plus the directories of --top, --base, the\n"
	      "intermediates and every parent of top, whatever PATH says.\n"
	      "Exit status: 0 the plan can run, 3 it has conflicts, 1 error, "
	      "2 usage.\n", f);
}

/* ps: the shared options' slots (cli_plan_set_init). */
static int plan_main(int argc, char **argv, struct cli_plan_set *ps)
{
	static const struct option opts[] = {
		{ "top", required_argument, NULL, 't' },
		{ "base", required_argument, NULL, 'b' },
		{ "users", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "recursive", no_argument, NULL, 'r' },
		CLI_PLAN_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "t:b:u:o:rF:h";
	struct scan_opts so = { .probe_locks = true };
	struct plan_opts po = { 0 };
	const char *top_arg = NULL, *base_arg = NULL;
	enum out_fmt fmt = OUT_HUMAN;
	struct graph *g = NULL;
	struct plan *p = NULL;
	int c, rc;

	optind = 1;
	opterr = 0;
	ps->po = &po;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		int k = cli_plan_option(c, optarg, ps);

		if (k < 0)
			return EXIT_USAGE;
		if (k)
			continue;
		switch (c) {
		case 't': top_arg = optarg; break;
		case 'b': base_arg = optarg; break;
		case 'u': so.users_file = optarg; break;
		case 'r': so.recursive = true; break;
		case 'o':
			if (cli_parse_output("plan", optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h': plan_usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("plan", argv, shortopts, opts);
		}
	}
	if (!top_arg)
		return cli_usage_error("plan", "--top IMAGE is required");
	if (po.pull && (po.drop_top || po.delete_files))
		return cli_usage_error("plan", "--pull keeps top and every "
				       "image: it takes neither --drop-top nor "
				       "--delete");
	/* A file that does not exist is an error, not a conflict. */
	{
		struct cli_plan_args pa = {
			.top = top_arg, .base = base_arg,
			.paths = argv + optind, .npaths = argc - optind,
			.scan = &so, .plan = &po,
			.base_format = ps->base_format,
		};
		cli_plan_set_scan(ps, &so);
		rc = cli_plan_load(&pa, &g, &p);
		if (rc != EXIT_OK)
			return rc;
	}
	emit_plan(stdout, g, p, fmt);
	rc = plan_runnable(p) ? EXIT_OK : EXIT_CONFLICT;
	plan_free(p);
	graph_free(g);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "imgraph plan: write error on stdout\n");
		return EXIT_ERR;
	}
	return rc;
}

int cmd_plan(int argc, char **argv)
{
	struct cli_plan_set ps = { .cmd = "plan" };
	int rc;

	if (cli_plan_set_init(&ps, argc) < 0)
		return EXIT_ERR;
	rc = plan_main(argc, argv, &ps);
	cli_plan_set_free(&ps);
	return rc;
}

