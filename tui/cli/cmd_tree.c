/* cmd_tree.c - imgraph tree: the pool as a forest of backing chains. */
#include "cmd.h"
#include "cli_plan.h"
#include "core/out/emit.h"
#include "core/graph/graph.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void tree_usage(FILE *f)
{
	fputs("Usage: imgraph tree [-r] [--users FILE] [--format FILE=FMT]...\n"
	      "                   [--output=human|json|yaml] [PATH...]\n"
	      "Show the images of PATH... (files and directories; default .)\n"
	      "as the forest of their backing chains.\n"
	      "  -r, --recursive    descend into subdirectories\n"
	      "      --users FILE   extra users of images (YAML)\n"
	      "      --no-locks     do not probe live QEMU locks\n"
	      "      --format FILE=FMT  FILE's format where the link that\n"
	      "                     reaches it records none (as for plan):\n"
	      "                     the chain is followed through it\n"
	      "      --output=FMT   human (default), json or yaml\n", f);
}

static int tree_run(int argc, char **argv, struct cli_plan_set *ps)
{
	static const struct option opts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "users", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-locks", no_argument, NULL, 'L' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "ru:o:h";
	struct scan_opts so = { .probe_locks = true };
	enum out_fmt fmt = OUT_HUMAN;
	struct img_err e = { 0 };
	struct graph *g = NULL;
	char *dot[] = { ".", NULL };
	char **paths;
	int c, npaths, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'r': so.recursive = true; break;
		case 'u': so.users_file = optarg; break;
		case 'L': so.probe_locks = false; break;
		case 'f':
			if (cli_plan_format_option(c, optarg, ps) < 0)
				return EXIT_USAGE;
			break;
		case 'o':
			if (cli_parse_output("tree", optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h': tree_usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("tree", argv, shortopts, opts);
		}
	}
	cli_plan_set_scan(ps, &so);
	rc = cli_stated_exist(&so);
	if (rc != EXIT_OK)
		return rc;
	paths = optind < argc ? argv + optind : dot;
	npaths = optind < argc ? argc - optind : 1;
	if (graph_scan(paths, npaths, &so, &g, &e) < 0)
		return cli_report(&e);
	emit_tree(stdout, g, fmt);
	if (fmt == OUT_HUMAN && !g->n) {
		int below = graph_count_below(paths, npaths, &so);
		if (below)
			printf("(%d image%s in subdirectories: add -r to "
			       "scan them)\n", below, below == 1 ? "" : "s");
	}
	graph_free(g);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "imgraph tree: write error on stdout\n");
		return EXIT_ERR;
	}
	return EXIT_OK;
}

int cmd_tree(int argc, char **argv)
{
	struct plan_opts po = { 0 };
	struct cli_plan_set ps = { .cmd = "tree", .po = &po };
	int rc;

	if (cli_plan_set_init(&ps, argc) < 0)
		return EXIT_ERR;
	rc = tree_run(argc, argv, &ps);
	cli_plan_set_free(&ps);
	return rc;
}
