/* main.c - imgraph entry point: dispatch to a command or the editor. */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef IMGRAPH_VERSION
#define IMGRAPH_VERSION "0.1"
#endif

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "tree",    cmd_tree,    "show the pool as a forest of backing chains" },
	{ "info",    cmd_info,    "show what an image holds (qemu-img info keys)" },
	{ "map",     cmd_map,     "show which layer serves each extent" },
	{ "create",  cmd_create,  "create a qcow2 or raw image" },
	{ "check",   cmd_check,   "check an image's metadata (qemu-img check codes)" },
	{ "plan",    cmd_plan,    "preview a commit: copies, relinks, conflicts" },
	{ "commit",  cmd_commit,  "commit top into base and relink every parent" },
	{ "recover", cmd_recover, "finish or roll back an interrupted relink" },
	{ "undelete", cmd_undelete, "put back what the last commit --delete moved to the trash" },
	{ "purge",   cmd_purge,   "empty the trash (frees the space)" },
	{ "who",     cmd_who,     "list the processes holding an image, and what they are" },
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: imgraph [OPTIONS] [PATH...]     interactive editor of a pool\n"
"       imgraph --demo [DIR]            build a teaching pool and open it\n"
"       imgraph COMMAND [OPTIONS] ...   one command (see below)\n"
"\n"
"Editor options: --ascii, --color=auto|always|never, --mouse, --users FILE, -r,\n"
"  -F FMT, --format FILE=FMT, --base-is-raw, --ignore-unverified FILE\n"
"\n"
"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
"\n"
"Run 'imgraph COMMAND --help' for a command's options.\n"
"Exit codes: 0 success, 1 error, 2 usage, 3 conflicts (plan/commit refused).\n"
"See imgraph(1).\n");
}

int main(int argc, char **argv)
{
	if (argc >= 2) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(argv[1], "--version")) {
			printf("imgraph %s\n", IMGRAPH_VERSION);
			return EXIT_OK;
		}
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]);
		     i++)
			if (!strcmp(argv[1], commands[i].name))
				return commands[i].fn(argc - 1, argv + 1);
	}
	/* "imgraph trea": a mistyped command, not a pool to open (a PATH
	 * that exists, or has a '/', is still opened as one). */
	if (argc >= 2 && argv[1][0] != '-' && !strchr(argv[1], '/')) {
		struct stat st;
		if (stat(argv[1], &st) < 0 && errno == ENOENT)
			return cli_usage_error(NULL, "'%s' is not a command, "
					       "nor a file or directory",
					       argv[1]);
	}
	return cmd_editor(argc, argv);
}
