/* cmd_trash.c - imgraph undelete and imgraph purge: the trash that
 * `commit --delete` fills (core/commit/trash.h).
 *
 *   imgraph undelete [--tx ID] [--output=human|json|yaml] [PATH...]
 *   imgraph purge [--tx ID] [--output=human|json|yaml] [PATH...]
 *
 * PATH: directories (or files, for their directory) whose trash is meant;
 * default ".".  undelete exits 0 when every file of the transaction is
 * back, 1 when one could not be put back (nothing is ever overwritten) or
 * there is nothing to put back; purge exits 0 when the space is freed.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/commit/trash.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void undelete_usage(FILE *f)
{
	fputs(
"Usage: imgraph undelete [--tx ID] [--output=human|json|yaml] [PATH...]\n"
"Put the files that the last 'imgraph commit --delete' moved into the\n"
"trash (.imgraph-trash beside them) back at their old paths.  PATH names\n"
"the directories (or files, for their directory) whose trash is meant;\n"
"default: the current directory.  Nothing is ever overwritten: a file\n"
"whose old path is taken stays in the trash and is reported.\n"
"      --tx ID        put back that transaction (as 'imgraph tree' shows)\n"
"                     instead of the most recent one\n"
"Exit status: 0 every file is back, 1 one could not be put back or there\n"
"was nothing to put back, 2 usage.\n", f);
}

static void purge_usage(FILE *f)
{
	fputs(
"Usage: imgraph purge [--tx ID] [--output=human|json|yaml] [PATH...]\n"
"Remove for good what 'imgraph commit --delete' moved into the trash\n"
"(.imgraph-trash) of each PATH (directories, or files for their\n"
"directory; default: the current directory), freeing the space.\n"
"      --tx ID        only that transaction\n"
"Exit status: 0 done (also when the trash was empty), 1 error, 2 usage.\n",
	      f);
}

static const char *result_name(enum trash_op_result r)
{
	switch (r) {
	case TRASH_RESTORED: return "restored";
	case TRASH_IN_PLACE: return "in-place";
	case TRASH_REFUSED: return "refused";
	case TRASH_PURGED: return "purged";
	case TRASH_KEPT: return "kept";
	}
	return "?";
}

static void human(const struct trash_op_report *rep, bool purge)
{
	char sz[32];

	for (int i = 0; i < rep->n; i++) {
		const struct trash_op_item *it = &rep->v[i];
		bool good = it->result == TRASH_RESTORED ||
			    it->result == TRASH_IN_PLACE ||
			    it->result == TRASH_PURGED;
		FILE *f = good ? stdout : stderr;

		fputs(it->result == TRASH_RESTORED ? "put back " :
		      it->result == TRASH_IN_PLACE ? "already in place: " :
		      it->result == TRASH_PURGED ? "removed " : "imgraph: ", f);
		esc_put(f, it->path);
		if (it->result == TRASH_PURGED)
			fprintf(f, " (%s)", cli_human_size(it->bytes, sz,
							   sizeof(sz)));
		else if (!good)
			fprintf(f, ": %s", ESC(it->msg));
		fputc('\n', f);
	}
	if (purge)
		printf("freed %s\n", cli_human_size(rep->bytes, sz, sizeof(sz)));
}

static void structured(const struct trash_op_report *rep, enum out_fmt fmt,
		       bool purge)
{
	char tx[24];
	struct ow w;

	ow_init(&w, stdout, fmt);
	ow_obj_open(&w, NULL);
	if (!purge || rep->txid) {
		snprintf(tx, sizeof(tx), "%016llx",
			 (unsigned long long)rep->txid);
		ow_str(&w, "transaction", tx);
	}
	if (purge)
		ow_u64(&w, "bytes-freed", rep->bytes);
	ow_arr_open(&w, "files");
	for (int i = 0; i < rep->n; i++) {
		ow_obj_open(&w, NULL);
		ow_str(&w, "filename", rep->v[i].path);
		ow_str(&w, "result", result_name(rep->v[i].result));
		ow_str(&w, "message", rep->v[i].msg[0] ? rep->v[i].msg : NULL);
		ow_close(&w);
	}
	ow_close(&w);
	ow_close(&w);
	ow_finish(&w);
}

static int parse_txid(const char *cmd, const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 16);
	if (errno || end == s || *end || !*out || strlen(s) > 16)
		return cli_usage_error(cmd, "invalid --tx '%s' (16 hex digits, "
				       "as 'imgraph tree' shows)", s);
	return 0;
}

static int run(const char *cmd, bool purge, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tx", required_argument, NULL, 'x' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "h";
	struct trash_op_report rep;
	enum out_fmt fmt = OUT_HUMAN;
	struct img_err e = { 0 };
	uint64_t txid = 0;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'x':
			if (parse_txid(cmd, optarg, &txid))
				return EXIT_USAGE;
			break;
		case 'o':
			if (cli_parse_output(cmd, optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			(purge ? purge_usage : undelete_usage)(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(cmd, argv, shortopts, opts);
		}
	}
	r = (purge ? trash_purge : trash_undelete)(argv + optind, argc - optind,
						    txid, &rep, &e);
	/* a failure before any file was handled has no result to show */
	if (r == 0 || rep.n) {
		if (fmt == OUT_HUMAN)
			human(&rep, purge);
		else
			structured(&rep, fmt, purge);
	}
	trash_op_report_free(&rep);
	if (r < 0)
		return cli_report(&e);
	return EXIT_OK;
}

int cmd_undelete(int argc, char **argv)
{
	return run("undelete", false, argc, argv);
}

int cmd_purge(int argc, char **argv)
{
	return run("purge", true, argc, argv);
}
