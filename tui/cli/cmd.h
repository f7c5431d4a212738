/* cmd.h - the command table of the CLI front end and helpers shared by the
 * cmd_*.c files.  One file per command; each parses its own options with
 * getopt_long and returns an exit code from the contract in imgraph(1),
 * EXIT STATUS. */
#ifndef IMGRAPH_CMD_H
#define IMGRAPH_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/io/err.h"
#include "core/out/ow.h"

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,        /* I/O error, invalid image */
	EXIT_USAGE = 2,      /* bad arguments */
	EXIT_CONFLICT = 3,   /* plan has conflicts (plan/commit refused) */
};

int cmd_tree(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_undelete(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_who(int argc, char **argv);
/* The interactive editor's command line (cmd_editor.c); argv as given to
 * imgraph. */
int cmd_editor(int argc, char **argv);

/* Options of the one-image commands (info, map, check):
 * [-f FMT] [--output=human|json[|yaml]] [--help] IMAGE.  Returns -1 when
 * the command should go on (*path set), else the exit code to return
 * (usage printed for --help, a usage error reported otherwise). */
struct cli_image_args {
	enum out_fmt fmt;             /* --output, default human */
	const char *imgfmt;           /* -f, or NULL to probe */
	const char *path;             /* IMAGE */
};
int cli_image_args(const char *cmd, int argc, char **argv, bool allow_yaml,
		   void (*usage)(FILE *), struct cli_image_args *a);

/* "imgraph: <msg>" on stderr; returns EXIT_ERR. */
int cli_report(const struct img_err *e);
/* "imgraph <cmd>: <msg>" plus "Try 'imgraph <cmd> --help'."; EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* After getopt_long (with opterr = 0) returned '?': say which option was
 * unknown, lacks its value or was given one it does not take, naming it
 * as typed; returns EXIT_USAGE.  shortopts and longopts as given to
 * getopt_long. */
struct option;
int cli_bad_option(const char *cmd, char **argv, const char *shortopts,
		   const struct option *longopts);
/* Parse "--output=" values; returns 0 or prints a usage error (-1). */
int cli_parse_output(const char *cmd, const char *arg, enum out_fmt *out);
/* Parse a size such as 65536, 64K, 10M, 1G, 2T (binary units); -1 on error. */
int cli_parse_size(const char *s, uint64_t *out);
/* "1.5 GiB" style human size into buf. */
const char *cli_human_size(uint64_t v, char *buf, unsigned len);

#endif
