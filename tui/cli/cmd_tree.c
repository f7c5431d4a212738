/* cmd_tree.c - imgraph tree: the pool as a forest of backing chains. */
#include "cmd.h"
#include "core/out/emit.h"
#include "core/graph/graph.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void tree_usage(FILE *f)
{
	fputs("Usage: imgraph tree [-r] [--users FILE] "
	      "[--output=human|json|yaml] [PATH...]\n"
	      "Show the images of PATH... (files and directories; default .)\n"
	      "as the forest of their backing chains.\n"
	      "  -r, --recursive    descend into subdirectories\n"
	      "      --users FILE   extra users of images (YAML)\n"
	      "      --no-locks     do not probe live QEMU locks\n"
	      "      --output=FMT   human (default), json or yaml\n", f);
}

int cmd_tree(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "users", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-locks", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "ru:o:h";
	struct scan_opts so = { .probe_locks = true };
	enum out_fmt fmt = OUT_HUMAN;
	struct img_err e = { 0 };
	struct graph *g = NULL;
	char *dot[] = { ".", NULL };
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'r': so.recursive = true; break;
		case 'u': so.users_file = optarg; break;
		case 'L': so.probe_locks = false; break;
		case 'o':
			if (cli_parse_output("tree", optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h': tree_usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("tree", argv, shortopts, opts);
		}
	}
	if (graph_scan(optind < argc ? argv + optind : dot,
		       optind < argc ? argc - optind : 1, &so, &g, &e) < 0)
		return cli_report(&e);
	emit_tree(stdout, g, fmt);
	if (fmt == OUT_HUMAN && !g->n) {
		int below = graph_count_below(optind < argc ? argv + optind
					      : dot, optind < argc ?
					      argc - optind : 1, &so);
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
