/* cmd_recover.c - imgraph recover [--rollback] [--output=...] [PATH...]
 *
 * Finds interrupted relink journals in the directories of PATH (default
 * ".") and finishes them (or rolls them back).  Exit 0 when every journal
 * was finished (or none was found), 1 when one was set aside as invalid,
 * blocked by a foreign change or a lock, or failed. */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/commit/recover.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char *outcome_name(enum rec_outcome o)
{
	switch (o) {
	case REC_DONE_FORWARD: return "finished";
	case REC_DONE_ROLLBACK: return "rolled-back";
	case REC_SET_ASIDE: return "set-aside";
	case REC_BLOCKED: return "blocked";
	case REC_FAILED: return "failed";
	}
	return "?";
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: imgraph recover [--rollback] [--output=human|json|yaml] [PATH...]\n"
"\n"
"Find interrupted relink transactions (journals named .imgraph-journal-*)\n"
"in the directories of PATH (default: the current directory) and finish\n"
"them: every parent is made to name the new base.  With --rollback every\n"
"parent is made to name top again instead (possible until the relink was\n"
"completed).  Invalid or foreign journals are never acted on; they are\n"
"renamed to *.bad and reported.  Running recover twice is harmless.\n"
"A commit --protect stopped during its copy is reported with how far its\n"
"journal says its readers are protected: nothing to finish (every view is\n"
"intact); running the same commit again completes it from there.\n"
"\n"
"Exit codes: 0 nothing left to do, 1 a journal was set aside, blocked or\n"
"failed, 2 usage.\n");
}

/* The report for a person: successes on stdout, the rest on stderr. */
static void print_human(const struct rec_report *rep)
{
	if (rep->n == 0)
		printf("no interrupted relink found\n");
	if (rep->stale_tmp_removed)
		printf("removed %d stale temporary file%s\n",
		       rep->stale_tmp_removed,
		       rep->stale_tmp_removed == 1 ? "" : "s");
	for (int i = 0; i < rep->nprot; i++) {
		const struct rec_prot *pp = &rep->prot[i];
		char a[32];
		printf("%s: a protected commit of %s stopped during its copy: "
		       "its %d reader%s base's old data below %s (journal %s); "
		       "every view is intact, nothing to finish; run the same "
		       "commit again to complete it (it resumes there)\n",
		       ESC(pp->base), ESC(pp->top), pp->nreaders,
		       pp->nreaders == 1 ? " holds" : "s hold",
		       cli_human_size(pp->done, a, sizeof(a)),
		       ESC(pp->record));
	}
	for (int i = 0; i < rep->n; i++) {
		const struct rec_item *it = &rep->v[i];
		FILE *f = it->outcome == REC_DONE_FORWARD ||
			  it->outcome == REC_DONE_ROLLBACK ? stdout : stderr;
		fprintf(f, "%s%s: %s: %s\n", f == stderr ? "imgraph: " : "",
			ESC(it->journal), outcome_name(it->outcome),
			ESC(it->msg));
	}
}

/* The report as JSON or YAML (--output). */
static void print_machine(const struct rec_report *rep, enum out_fmt fmt,
			  bool rollback)
{
	struct ow w;

	ow_init(&w, stdout, fmt);
	ow_obj_open(&w, NULL);
	ow_bool(&w, "rollback", rollback);
	ow_i64(&w, "stale-temp-files-removed", rep->stale_tmp_removed);
	ow_arr_open(&w, "journals");
	for (int i = 0; i < rep->n; i++) {
		const struct rec_item *it = &rep->v[i];
		ow_obj_open(&w, NULL);
		ow_str(&w, "journal", it->journal);
		ow_str(&w, "outcome", outcome_name(it->outcome));
		ow_i64(&w, "parents", it->parents);
		ow_i64(&w, "written", it->written);
		ow_i64(&w, "torn", it->torn);
		ow_str(&w, "message", it->msg);
		ow_close(&w);
	}
	ow_close(&w);
	ow_arr_open(&w, "protected-copies");
	for (int i = 0; i < rep->nprot; i++) {
		const struct rec_prot *pp = &rep->prot[i];
		ow_obj_open(&w, NULL);
		ow_str(&w, "record", pp->record);
		ow_str(&w, "base", pp->base);
		ow_str(&w, "top", pp->top);
		ow_u64(&w, "protected-below", pp->done);
		ow_i64(&w, "readers", pp->nreaders);
		ow_close(&w);
	}
	ow_close(&w);
	ow_close(&w);
	ow_finish(&w);
}

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rollback", no_argument, NULL, 'R' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "h";
	enum out_fmt fmt = OUT_HUMAN;
	bool rollback = false;
	struct rec_report rep;
	struct img_err e;
	int c, r, rc = EXIT_OK;

	optind = 1;
	opterr = 0;            /* cli_bad_option says it once */
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'R':
			rollback = true;
			break;
		case 'o':
			if (cli_parse_output("recover", optarg, &fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option("recover", argv, shortopts, opts);
		}
	}
	err_clear(&e);
	r = recover_paths(argv + optind, argc - optind, rollback, &rep, &e);
	if (r < 0 && rep.n == 0) {
		recover_report_free(&rep);
		return cli_report(&e);
	}
	for (int i = 0; i < rep.n; i++)
		if (rep.v[i].outcome != REC_DONE_FORWARD &&
		    rep.v[i].outcome != REC_DONE_ROLLBACK)
			rc = EXIT_ERR;
	/* An error outside any journal (a stale temp that could not be
	 * removed) still fails the run: never exit 0 after an I/O error. */
	if (r < 0 && rc == EXIT_OK) {
		cli_report(&e);
		rc = EXIT_ERR;
	}
	if (fmt == OUT_HUMAN)
		print_human(&rep);
	else
		print_machine(&rep, fmt, rollback);
	recover_report_free(&rep);
	return rc;
}
