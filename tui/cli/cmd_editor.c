/* cmd_editor.c - `imgraph [OPTIONS] [PATH...]` and `imgraph --demo [DIR]`:
 * the editor's command line.  Parses the options, builds the demo pool
 * when asked, refuses without a terminal, and hands the rest to the
 * editor library (tui/editor/editor.h). */
#include "cmd.h"
#include "cli_plan.h"
#include "tui/editor/editor.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
"Usage: imgraph [--ascii] [--color=auto|always|never] [--mouse]\n"
"               [--users FILE] [-r] [--rate BYTES_PER_S]\n"
"               [-F FMT] [--format FILE=FMT]... [--base-is-raw]\n"
"               [--ignore-unverified FILE]... [PATH...]\n"
"       imgraph --demo [DIR]\n"
"\n"
"Interactive editor of a pool of qcow2/raw images: the forest of backing\n"
"chains and their cluster maps, top/base marks, plan preview (s on it: the\n"
"commit stage by stage), commit with progress and relink.\n"
"PATH: image files and directories (default: .).  Needs a terminal; for\n"
"scripts use the commands (imgraph tree|info|map|plan|commit ...).\n"
"\n"
"  --ascii          ASCII lines instead of UTF-8 box drawing\n"
"  --color=WHEN     auto (default; off when NO_COLOR is set), always, never\n"
"  --mouse          enable the mouse (click selects, wheel scrolls)\n"
"  --users FILE     users file (YAML) naming VMs, exports, jobs\n"
"  -r, --recursive  scan directories recursively\n"
"  --rate N         limit commit copy speed (bytes/s, K/M/G suffixes)\n""  -F, --base-format FMT  base's format where its link records none\n"
"  --format FILE=FMT      the format of FILE where its link records none\n"
"                   (repeatable); both as for imgraph plan\n"
"  --base-is-raw    a base recorded raw that carries an image header is raw\n"
"  --ignore-unverified FILE  FILE reads nothing of the chain (repeatable)\n"
"  --demo [DIR]     build a teaching pool in DIR (default: a new temp dir)\n"
"                   and open the editor on it, on a guide of what to try\n"
"                   (needs a terminal, qemu-img and qemu-io)\n"
"\n"
"Keys: press ? in the editor.  See imgraph(1).\n");
}

/* --color with no value means always (as ls and grep take it). */
static int parse_color(const char *s, enum editor_color *out)
{
	if (!s || !strcmp(s, "always") || !strcmp(s, "yes"))
		*out = EDITOR_COLOR_ALWAYS;
	else if (!strcmp(s, "never") || !strcmp(s, "no"))
		*out = EDITOR_COLOR_NEVER;
	else if (!strcmp(s, "auto"))
		*out = EDITOR_COLOR_AUTO;
	else
		return -1;
	return 0;
}

/* The options; -1 to go on (PATHs from argv[optind]), else an exit code. */
static int parse_args(int argc, char **argv, struct editor_opts *o,
		      struct cli_plan_set *ps, bool *demo)
{
	static const struct option opts[] = {
		{ "ascii", no_argument, NULL, 'a' },
		{ "color", optional_argument, NULL, 'C' },
		{ "colour", optional_argument, NULL, 'C' },
		{ "mouse", no_argument, NULL, 'M' },
		{ "users", required_argument, NULL, 'u' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "rate", required_argument, NULL, 'R' },
		{ "demo", no_argument, NULL, 'D' },
		CLI_PLAN_FORMAT_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const char shortopts[] = "rF:h";
	int c;

	optind = 1;
	opterr = 0;            /* cli_bad_option says it once */
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		int k = cli_plan_format_option(c, optarg, ps);

		if (k < 0)
			return EXIT_USAGE;
		if (k)
			continue;
		switch (c) {
		case 'a': o->ascii = true; break;
		case 'C':
			if (parse_color(optarg, &o->color) < 0)
				return cli_usage_error("", "--color=%s: expected "
						       "auto, always or never",
						       optarg);
			break;
		case 'M': o->mouse = true; break;
		case 'u': o->users_file = optarg; break;
		case 'r': o->recursive = true; break;
		case 'R':
			if (cli_parse_size(optarg, &o->rate) < 0)
				return cli_usage_error("", "--rate %s: not a "
						       "size", optarg);
			break;
		case 'D': *demo = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("", argv, shortopts, opts);
		}
	}
	if (*demo && argc - optind > 1)
		return cli_usage_error("", "--demo takes at most one directory");
	o->stated = ps->stated;
	o->nstated = ps->nstated;
	o->base_format = ps->base_format;
	o->base_is_raw = ps->po->base_is_raw;
	o->ignore_unverified = ps->po->ignore_unverified;
	o->nignore_unverified = ps->po->nignore_unverified;
	return -1;
}

/* The editor on the parsed options (PATHs from argv[optind]). */
static int run_editor(int argc, char **argv, struct editor_opts *o, bool demo)
{
	struct img_err e = { 0 };
	char demo_dir[4096];
	char *demo_path[1] = { demo_dir };
	int rc;

	/* Before anything is built: --demo without a terminal would build
	 * a pool nobody can look at. */
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr,
			"imgraph: the editor needs a terminal (stdin and stdout)"
			"%s;\nfor scripts use the commands: imgraph tree, info, "
			"map, plan, commit ... (imgraph --help)\n",
			demo ? ", so --demo builds nothing" : "");
		return EXIT_USAGE;
	}
	if (demo) {
		if (demo_build(optind < argc ? argv[optind] : NULL, demo_dir,
			       sizeof(demo_dir), &e) < 0)
			return cli_report(&e);
		o->paths = demo_path;
		o->npaths = 1;
		o->guide = demo_lessons;     /* shown inside the editor */
	} else {
		o->paths = argv + optind;
		o->npaths = argc - optind;
	}
	rc = editor_run(o, &e);
	if (demo)               /* after the editor, where it stays visible */
		printf("imgraph: the demo pool is in %s\n", demo_dir);
	return rc < 0 ? cli_report(&e) : rc;
}

int cmd_editor(int argc, char **argv)
{
	struct editor_opts o = { .color = EDITOR_COLOR_AUTO };
	struct plan_opts po = { 0 };
	struct cli_plan_set ps = { .cmd = "", .po = &po };
	bool demo = false;
	int rc;

	if (cli_plan_set_init(&ps, argc) < 0)
		return EXIT_ERR;
	rc = parse_args(argc, argv, &o, &ps, &demo);
	if (rc < 0)
		rc = run_editor(argc, argv, &o, demo);
	cli_plan_set_free(&ps);
	return rc;
}
