/* cmd_plan.c - imgraph plan: preview a commit; writes nothing.
 * Exit 0 runnable, 3 conflicts, 1 error, 2 usage. */
#include "cmd.h"
#include "../core/emit.h"
#include "../core/graph.h"
#include "../core/plan.h"

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
	      "                    [--output=human|json|yaml] [PATH...]\n"
	      "Preview committing --top into --base (default: top's backing\n"
	      "file): what is copied, which parents of top are relinked, and\n"
	      "every conflict.  Nothing is written.\n"
	      "  -r, --recursive    descend into subdirectories of PATH\n"
	      "      --drop-top     plan to drop a top that has no parents\n"
	      "Without PATH the pool is the directories holding --top and "
	      "--base.\n"
	      "Exit status: 0 the plan can run, 3 it has conflicts, 1 error, "
	      "2 usage.\n", f);
}

/* Directory part of path ("." when none), into buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *s = strrchr(path, '/');

	if (!s)
		snprintf(buf, len, ".");
	else if (s == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(s - path), path);
	return buf;
}

int cmd_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "top", required_argument, NULL, 't' },
		{ "base", required_argument, NULL, 'b' },
		{ "users", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "drop-top", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct scan_opts so = { .probe_locks = true };
	struct plan_opts po = { 0 };
	const char *top_arg = NULL, *base_arg = NULL;
	enum out_fmt fmt = OUT_HUMAN;
	struct img_err e = { 0 };
	struct graph *g = NULL;
	struct plan *p = NULL;
	char d1[PATH_MAX], d2[PATH_MAX], *defpaths[2];
	char **paths;
	struct stat st;
	int c, np, top, base = -1, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "t:b:u:o:rh", opts, NULL)) != -1) {
		switch (c) {
		case 't': top_arg = optarg; break;
		case 'b': base_arg = optarg; break;
		case 'u': so.users_file = optarg; break;
		case 'r': so.recursive = true; break;
		case 'D': po.drop_top = true; break;
		case 'o':
			if (cli_parse_output("plan", optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h': plan_usage(stdout); return EXIT_OK;
		default:
			return cli_usage_error("plan", "unknown option or "
					       "missing argument '%s'",
					       argv[optind - 1]);
		}
	}
	if (!top_arg)
		return cli_usage_error("plan", "--top IMAGE is required");
	/* A file that does not exist is an error, not a conflict. */
	if (stat(top_arg, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --top", top_arg);
		return cli_report(&e);
	}
	if (base_arg && stat(base_arg, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --base", base_arg);
		return cli_report(&e);
	}
	if (optind < argc) {
		paths = argv + optind;
		np = argc - optind;
	} else {
		defpaths[0] = (char *)dir_of(top_arg, d1, sizeof(d1));
		np = 1;
		if (base_arg && strcmp(dir_of(base_arg, d2, sizeof(d2)), d1))
			defpaths[np++] = d2;
		paths = defpaths;
	}
	if (graph_scan(paths, np, &so, &g, &e) < 0)
		return cli_report(&e);
	top = graph_lookup(g, top_arg, &e);
	if (top < 0 && top != -ENOENT) {
		graph_free(g);
		return cli_report(&e);
	}
	if (base_arg) {
		base = graph_lookup(g, base_arg, &e);
		if (base < 0 && base != -ENOENT) {
			graph_free(g);
			return cli_report(&e);
		}
		if (base < 0)
			base = INT_MAX;   /* exists, not in the pool */
	}
	if (plan_build(g, top < 0 ? -1 : top, base, &po, &p, &e) < 0) {
		graph_free(g);
		return cli_report(&e);
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
