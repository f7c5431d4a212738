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
"Run 'imgraph COMMAND --help' (or 'imgraph help COMMAND') for a command's\n"
"options.\n"
"Exit codes: 0 success, 1 error, 2 usage, 3 conflicts (plan/commit refused).\n"
"See imgraph(1).\n");
}

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return (int)i;
	return -1;
}

/* Edit distance of two short words (insertions, deletions, changes,
 * and swaps of neighbours, as typing slips go), capped at 3. */
static int slip_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int d[17][17];

	if (la > 16 || lb > 16)
		return 3;
	for (size_t i = 0; i <= la; i++)
		for (size_t j = 0; j <= lb; j++) {
			if (!i || !j) {
				d[i][j] = (int)(i + j);
				continue;
			}
			int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb] < 3 ? d[la][lb] : 3;
}

/* "imgraph trea": a mistyped command, not a pool to open. */
static int not_a_command(const char *word)
{
	const char *best = NULL;
	int bd = 3;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		int d = slip_distance(word, commands[i].name);
		if (d < bd) {
			bd = d;
			best = commands[i].name;
		}
	}
	if (best)
		return cli_usage_error(NULL, "'%s' is not a command, nor a file "
				       "or directory; did you mean '%s'?", word,
				       best);
	return cli_usage_error(NULL, "'%s' is not a command, nor a file or "
			       "directory", word);
}

/* imgraph help [COMMAND]: the overview, or the command's --help. */
static int help(int argc, char **argv)
{
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc > 2)
		return cli_usage_error(NULL, "help takes one command");
	c = find_command(argv[1]);
	if (c < 0)
		return not_a_command(argv[1]);
	char *args[] = { argv[1], (char *)"--help", NULL };
	return commands[c].fn(2, args);
}

int main(int argc, char **argv)
{
	if (argc >= 2) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(argv[1], "help"))
			return help(argc - 1, argv + 1);
		if (!strcmp(argv[1], "--version")) {
			printf("imgraph %s\n", IMGRAPH_VERSION);
			return EXIT_OK;
		}
		int c = find_command(argv[1]);
		if (c >= 0)
			return commands[c].fn(argc - 1, argv + 1);
	}
	/* A PATH that exists, or has a '/', is opened as a pool. */
	if (argc >= 2 && argv[1][0] != '-' && !strchr(argv[1], '/')) {
		struct stat st;
		if (stat(argv[1], &st) < 0 && errno == ENOENT)
			return not_a_command(argv[1]);
	}
	return cmd_editor(argc, argv);
}
