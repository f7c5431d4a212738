/* cmd_commit.c - imgraph commit: plan + copy + journaled relink.
 *
 *   imgraph commit --top IMAGE [--base IMAGE] [--users FILE] [--yes]
 *                  [-p|-q] [--rate BYTES_PER_S] [--drop-top] [--delete]
 *                  [--pull] [--protect] [--output=human|json|yaml] [-r]
 *                  [PATH...]
 *
 * --pull runs the same plan the other way (core/plan/plan_pull.h): a mode
 * of commit, not a command, as it shares the plan, locks and journal.
 *
 * Exit 0 done, 1 error/cancelled/declined, 2 usage (or no terminal and no
 * --yes), 3 conflicts (plan refused, or a file is in use).  stdout holds
 * only results (the plan and the outcome); progress and questions go to
 * stderr.  Ctrl-C cancels the copy at a safe point.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "cli_plan.h"
#include "core/commit/commit.h"
#include "core/commit/copy.h"
#include "core/out/emit.h"
#include "core/graph/graph.h"
#include "core/plan/plan.h"
#include "core/plan/plan_protect.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t commit_cancel;

static void on_sigint(int sig)
{
	(void)sig;
	commit_cancel = 1;
}

enum prog_mode { PROG_NONE, PROG_BAR, PROG_JSON };

struct prog {
	enum prog_mode mode;
	const char *phase;
	struct timespec last;
	uint64_t last_done;
	bool bar_open;
	const char *how;           /* how the copy moves bytes, or NULL */
	char job[64];              /* a QEMU job's status, for how */
	struct progress_meter m;   /* rate, ETA, overall: the editor's too */
};

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double secs_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	       (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* One JSON object on one line: the shared writer pretty-prints, and a
 * literal newline can only be formatting (strings escape theirs).  A QEMU
 * job's status line when ev is NULL (job, status), else a progress line. */
static void json_line(const struct progress_event *ev, const char *how,
		      const struct progress_meter *m, double rate, double eta,
		      const char *job, const char *status)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct ow w;

	if (!f)
		return;
	ow_init(&w, f, OUT_JSON);
	ow_obj_open(&w, NULL);
	if (!ev) {
		ow_str(&w, "phase", "job");
		ow_str(&w, "job", job);
		ow_str(&w, "status", status);
	} else {
		ow_str(&w, "phase", ev->phase);
		if (how)
			ow_str(&w, "method", how);
		if (ev->layer)
			ow_str(&w, "layer", ev->layer);
		ow_u64(&w, "done", ev->done);
		ow_u64(&w, "total", ev->total);
		/* Overall, in thousandths of the whole commit (all phases). */
		ow_u64(&w, "overall-permille", (uint64_t)(m->fraction * 1000 + 0.5));
		ow_u64(&w, "bytes", m->bytes);
		ow_u64(&w, "bytes-total", m->bytes_total);
		ow_u64(&w, "rate", (uint64_t)(rate + 0.5));
		if (eta >= 0)
			ow_u64(&w, "eta-seconds", (uint64_t)(eta + 0.5));
	}
	ow_close(&w);
	fclose(f);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			while (i + 1 < len && buf[i + 1] == ' ')
				i++;
			continue;
		}
		fputc(buf[i], stderr);
	}
	fputc('\n', stderr);
	fflush(stderr);
	free(buf);
}

/* The terminal bar: the whole commit's percentage, the phase, the copy's
 * bytes, rate and ETA, and the image being read. */
static void bar_line(struct prog *p, const struct progress_event *ev,
		     bool new_phase, double rate, double eta)
{
	char a[32], b[32], c[32], etas[32] = "";

	if (eta >= 0)
		snprintf(etas, sizeof(etas), " ETA %d:%02d", (int)eta / 60,
			 (int)eta % 60);
	if (p->bar_open && new_phase)
		fputc('\n', stderr);
	fprintf(stderr, "\r%5.1f%% %-7s", p->m.fraction * 100, ev->phase);
	if (strcmp(ev->phase, "copy"))      /* counted in steps */
		fprintf(stderr, " %llu / %llu", (unsigned long long)ev->done,
			(unsigned long long)ev->total);
	else
		fprintf(stderr, " %s / %s  %s/s%s",
			cli_human_size(ev->done, a, sizeof(a)),
			cli_human_size(ev->total, b, sizeof(b)),
			cli_human_size((uint64_t)rate, c, sizeof(c)), etas);
	if (ev->layer) {
		const char *s = strrchr(ev->layer, '/');
		fputs("  reading ", stderr);
		esc_put(stderr, s ? s + 1 : ev->layer);
	}
	if (p->how && !strcmp(ev->phase, "copy"))
		fprintf(stderr, "  by %s", p->how);
	fputs("\033[K", stderr);
	fflush(stderr);
	p->bar_open = true;
}

static int prog_update(void *opaque, const struct progress_event *ev)
{
	struct prog *p = opaque;
	bool new_phase = !p->phase || strcmp(p->phase, ev->phase);
	bool final = ev->done >= ev->total;
	double now = mono_now();

	progress_meter_feed(&p->m, ev, now);
	if (new_phase) {
		p->phase = ev->phase;
	} else if (ev->done == p->last_done ||
		   (!final && secs_since(&p->last) < 0.25)) {
		return 0;       /* at most 4 updates a second, no repeats */
	}
	p->last_done = ev->done;
	clock_gettime(CLOCK_MONOTONIC, &p->last);
	double rate = progress_meter_rate(&p->m, now);
	double eta = progress_meter_eta(&p->m, now);
	if (p->mode == PROG_JSON)
		json_line(ev, strcmp(ev->phase, "copy") ? NULL : p->how,
			  &p->m, rate, eta, NULL, NULL);
	else if (p->mode == PROG_BAR)
		bar_line(p, ev, new_phase, rate, eta);
	return 0;
}

static void prog_how(void *opaque, const char *how)
{
	((struct prog *)opaque)->how = how;
}

/* A QEMU job's status change (a live commit): one JSON line, or the
 * bar's label says it. */
static void prog_job(void *opaque, const char *id, const char *status)
{
	struct prog *p = opaque;

	snprintf(p->job, sizeof(p->job), "QEMU job %s", status);
	p->how = p->job;
	if (p->mode == PROG_JSON)
		json_line(NULL, NULL, &p->m, 0, -1, id, status);
}

static bool ask(const char *question)
{
	char line[64];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

struct confirm_ctx {
	bool yes;
	struct prog *prog;
};

static int confirm_relink(void *opaque, const struct graph *g,
			  const struct plan *p)
{
	struct confirm_ctx *c = opaque;
	char q[PATH_MAX + 128];

	if (c->yes)
		return 1;
	if (c->prog->bar_open) {
		fputc('\n', stderr);
		c->prog->bar_open = false;
	}
	if (p->pull)
		snprintf(q, sizeof(q), "Pull done. Relink %s onto %s?",
			 ESC(g->nodes[p->top].path), ESC(g->nodes[p->base].path));
	else
		snprintf(q, sizeof(q), "Copy done. Relink %d parent%s of %s "
			 "to %s?", p->nparents, p->nparents == 1 ? "" : "s",
			 ESC(g->nodes[p->top].path), ESC(g->nodes[p->base].path));
	/* Time spent on the question is not the commit's. */
	progress_meter_pause(&c->prog->m, true, mono_now());
	bool yes = ask(q) && !commit_cancel;
	progress_meter_pause(&c->prog->m, false, mono_now());
	return yes;
}

static void usage(FILE *f)
{
	fputs(
"Usage: imgraph commit --top IMAGE [--base IMAGE] [--users FILE] [--yes]\n"
"                      [-p|-q] [--rate BYTES_PER_S] [--drop-top] [--delete]\n""                      [-F|--base-format FMT] [--format FILE=FMT]...\n"
"                      [--base-is-raw] [--ignore-unverified FILE]...\n"
"                      [--pull] [--protect] [--offline] [--qmp PATH]\n"
"                      [--output=human|json|yaml] [-r]\n"
"                      [PATH...]\n"
"Commit the data of --top (and the images between) into --base (default:\n"
"top's backing file), then relink every parent of top to base as one\n"
"crash-safe transaction.  The plan is shown first; a plan with conflicts\n"
"is refused.  On a terminal you are asked before the copy and before the\n"
"relink; scripts pass --yes (without a terminal and without --yes a\n"
"runnable plan is refused, exit 2, before anything is written).\n"
"  -y, --yes          answer yes to every question\n"
"  -p, --progress     draw progress on stderr (JSON lines when stderr is\n"
"                     not a terminal or with --output=json)\n"
"  -q, --quiet        no progress\n"
"      --rate N       copy at most N bytes per second (K/M/G suffixes)\n"
"      --copy-method M  how data moves into base, tried first (falling back\n"
"                     from there): auto (default: the best the files'\n"
"                     file systems allow), clone, copy_file_range,\n"
"                     read/write\n"
"      --drop-top     a top without parents is dropped, not kept\n"
"      --offline      refuse a plan that needs a running QEMU's block job\n"
"      --qmp PATH     the QMP monitor socket of the QEMU that holds top,\n"
"                     when its command line does not name one (or the\n"
"                     users file's qmp: for its image)\n"
"      --delete       move top and intermediates nothing references any\n"
"                     more into a trash beside them (imgraph undelete\n"
"                     puts them back, imgraph purge frees the space)\n"
CLI_PLAN_FORMAT_HELP
"      --base-is-raw  base is recorded raw but carries another format's\n"
"                     header or footer: it really is a raw disk, write it\n"
"      --ignore-unverified FILE  FILE carries an image signature imgraph\n"
"                     cannot read far enough to know its backing file; it\n"
"                     reads nothing of this chain (repeatable)\n"
"      --pull         flatten the other way: copy the data of the images\n"
"                     between top and base into top (where top allocates\n"
"                     nothing), then relink top onto base.  base is not\n"
"                     written, so its other readers (a template's other\n"
"                     clones) need nothing; top's parents keep top.\n"
"                     Takes no --drop-top, --delete, --copy-method\n"
"      --protect      base's other readers (clones of a template) first\n"
"                     get base's old data where they read it, each\n"
"                     flushed before base changes there: their views stay\n"
"                     the same and they still read base for the rest;\n"
"                     run again after a crash, it resumes where its\n"
"                     journal says the readers are protected\n"
"  -r, --recursive    descend into subdirectories of PATH\n"
"The pool is PATH plus the directories of --top, --base, the intermediates\n"
"and every parent of top, whatever PATH says.\n"
"When a QEMU with a QMP monitor holds top, its own block-commit job does\n"
"the copy and relinks the overlays it has open (active commit: then\n"
"pivots to base); imgraph relinks the others, in the same transaction.\n"
"--rate is the job's speed.\n"
"Ctrl-C cancels the copy (or QEMU's job); every image stays valid.  After a crash, run\n"
"'imgraph recover'.\n"
"Exit status: 0 done, 1 error or cancelled, 2 usage, 3 conflicts.\n", f);
}

/* --delete: where each file went, or why it stayed. */
static void human_trash(const struct commit_result *r)
{
	char a[32];

	if (r->deleted)
		printf("Moved %d file%s into the trash (%s; 'imgraph undelete' "
		       "puts them back, 'imgraph purge' frees the space):\n",
		       r->deleted, r->deleted == 1 ? "" : "s",
		       cli_human_size(r->trash.bytes, a, sizeof(a)));
	for (int i = 0; i < r->trash.n; i++) {
		if (!r->trash.v[i].moved)
			continue;
		fputs("  ", stdout);
		esc_put(stdout, r->trash.v[i].path);
		fputs(" -> ", stdout);
		esc_put(stdout, r->trash.v[i].trash ?
			r->trash.v[i].trash : "?");
		putchar('\n');
	}
	for (int i = 0; i < r->trash.n; i++) {
		if (r->trash.v[i].moved)
			continue;
		fputs("Kept ", stdout);
		esc_put(stdout, r->trash.v[i].path);
		printf(": %s\n", ESC(r->trash.v[i].why));
	}
}

/* "; clone 1.0 GiB, read/write 64 KiB": the data by how it moved. */
static const char *how_text(const struct commit_result *r, char *buf,
			    size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (int h = 0; h < IO_COPY_HOWS; h++) {
		char a[32];
		if (!r->bytes_how[h] || at >= len)
			continue;
		at += (size_t)snprintf(buf + at, len - at, "%s%s %s",
				       at ? ", " : "; ", copy_method_name(h),
				       cli_human_size(r->bytes_how[h], a,
						      sizeof(a)));
	}
	return buf;
}

static void human_result(const struct graph *g, const struct plan *p,
			 const struct commit_result *r, bool delete_files)
{
	bool kept = p->leaf == PLAN_LEAF_KEEP;
	char a[32], b[160];

	if (p->pull) {
		printf("Pulled %s into %s; it now reads %s directly (%s was "
		       "not written).\n", cli_human_size(r->bytes_copied, a,
		       sizeof(a)), g->nodes[p->top].path,
		       g->nodes[p->base].path, g->nodes[p->base].path);
		return;
	}

	printf("Committed %s into %s (%s written%s).\n",
	       ESC(g->nodes[p->top].path), ESC(g->nodes[p->base].path),
	       cli_human_size(r->bytes_copied, a, sizeof(a)),
	       how_text(r, b, sizeof(b)));
	if (p->protect && p->protect->on)
		printf("Protected %d reader%s of %s first (%s written into "
		       "them); they still read it for the rest.\n",
		       p->protect->n, p->protect->n == 1 ? "" : "s",
		       g->nodes[p->base].path,
		       cli_human_size(r->bytes_protected, a, sizeof(a)));
	if (p->protect && p->protect->on && r->protect_resumed)
		printf("Resumed the protection at %s (the journal of an "
		       "earlier run; verified there by block status).\n",
		       cli_human_size(r->protect_resumed, a, sizeof(a)));
	if (kept)
		printf("Kept %s: now backed by %s and empty.\n",
		       ESC(g->nodes[p->top].path), ESC(g->nodes[p->base].path));
	else if (r->relinked)
		printf("Relinked %d parent%s to %s.\n", r->relinked,
		       r->relinked == 1 ? "" : "s",
		       ESC(g->nodes[p->base].path));
	if (delete_files) {
		human_trash(r);
	} else if (p->ninter || !kept) {
		/* Say plainly what left the graph: an intermediate now
		 * reads base's new data underneath its own. */
		printf("No longer in any chain, kept on disk and marked "
		       "stale/unused (--delete moves them into the trash):");
		if (!kept)
			printf(" %s", ESC(g->nodes[p->top].path));
		for (int i = 0; i < p->ninter; i++)
			printf(" %s", ESC(g->nodes[p->inter[i]].path));
		printf("\n");
	}
}

static void print_result(enum out_fmt fmt, const struct graph *g,
			 const struct plan *p, const struct commit_result *r,
			 bool delete_files)
{
	bool kept = p->leaf == PLAN_LEAF_KEEP;
	struct ow w;

	if (fmt == OUT_HUMAN) {
		human_result(g, p, r, delete_files);
		return;
	}
	ow_init(&w, stdout, fmt);
	ow_obj_open(&w, NULL);
	ow_str(&w, "strategy", p->pull ? "pull" : "commit");
	ow_str(&w, "top", g->nodes[p->top].path);
	ow_str(&w, "base", g->nodes[p->base].path);
	ow_u64(&w, "bytes-copied", r->bytes_copied);
	ow_u64(&w, "bytes-protected", r->bytes_protected);
	if (p->protect && p->protect->on) {
		ow_u64(&w, "protect-resumed-at", r->protect_resumed);
		ow_u64(&w, "bytes-reprotected", r->bytes_reprotected);
	}
	ow_obj_open(&w, "bytes-by-method");
	for (int h = 0; h < IO_COPY_HOWS; h++)
		ow_u64(&w, copy_method_name(h), r->bytes_how[h]);
	ow_close(&w);
	ow_i64(&w, "relinked", r->relinked);
	ow_bool(&w, "top-kept", kept);
	ow_i64(&w, "deleted", r->deleted);
	ow_arr_open(&w, "stale");
	if (!delete_files && !kept && !p->pull)
		ow_str(&w, NULL, g->nodes[p->top].path);
	for (int i = 0; !delete_files && !p->pull && i < p->ninter; i++)
		ow_str(&w, NULL, g->nodes[p->inter[i]].path);
	ow_close(&w);
	ow_arr_open(&w, "trash");
	for (int i = 0; i < r->trash.n; i++) {
		ow_obj_open(&w, NULL);
		ow_str(&w, "filename", r->trash.v[i].path);
		ow_bool(&w, "moved", r->trash.v[i].moved);
		ow_str(&w, "trash", r->trash.v[i].trash);
		ow_str(&w, "why", r->trash.v[i].moved ? NULL :
		       r->trash.v[i].why);
		ow_close(&w);
	}
	ow_close(&w);
	ow_close(&w);
	ow_finish(&w);
}

/* --copy-method: auto or a method's name (copy_method_name). */
static int parse_method(const char *s, int *out)
{
	if (!strcmp(s, "auto")) {
		*out = COPY_AUTO;
		return 0;
	}
	for (int h = 0; h < IO_COPY_HOWS; h++)
		if (!strcmp(s, copy_method_name(h))) {
			*out = COPY_CLONE + h;
			return 0;
		}
	return -1;
}

/* The command line, parsed. */
struct commit_args {
	const char *top, *base;
	char **paths;
	int npaths;
	struct scan_opts so;
	struct plan_opts po;
	struct cli_plan_set ps;    /* the options shared with plan */
	struct commit_opts co;
	enum out_fmt fmt;
	bool yes, want_p, quiet;
};

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct commit_args *a)
{
	static const struct option opts[] = {
		{ "top", required_argument, NULL, 't' },
		{ "base", required_argument, NULL, 'b' },
		{ "users", required_argument, NULL, 'u' },
		{ "yes", no_argument, NULL, 'y' },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "rate", required_argument, NULL, 'R' },
		{ "copy-method", required_argument, NULL, 'M' },
		CLI_PLAN_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "t:b:u:ypqo:rF:h";
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) !=
	       -1) {
		int k = cli_plan_option(c, optarg, &a->ps);

		if (k < 0)
			return EXIT_USAGE;
		if (k)
			continue;
		switch (c) {
		case 't': a->top = optarg; break;
		case 'b': a->base = optarg; break;
		case 'u': a->so.users_file = optarg; break;
		case 'y': a->yes = true; break;
		case 'p': a->want_p = true; break;
		case 'q': a->quiet = true; break;
		case 'r': a->so.recursive = true; break;
		case 'R':
			if (cli_parse_size(optarg, &a->co.rate) < 0 ||
			    !a->co.rate)
				return cli_usage_error("commit", "invalid --rate "
						       "'%s'", optarg);
			break;
		case 'M':
			if (parse_method(optarg, &a->co.copy_method) < 0)
				return cli_usage_error("commit", "invalid "
						       "--copy-method '%s' "
						       "(auto, clone, "
						       "copy_file_range, "
						       "read/write)", optarg);
			break;
		case 'o':
			if (cli_parse_output("commit", optarg, &a->fmt) < 0)
				return EXIT_USAGE;
			break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("commit", argv, shortopts, opts);
		}
	}
	a->co.delete_files = a->po.delete_files;
	a->paths = argv + optind;
	a->npaths = argc - optind;
	if (!a->top)
		return cli_usage_error("commit", "--top IMAGE is required");
	if (a->want_p && a->quiet)
		return cli_usage_error("commit", "-p and -q exclude each other");
	if (a->po.pull && (a->po.drop_top || a->po.delete_files))
		return cli_usage_error("commit", "--pull keeps top and every "
				       "image: it takes neither --drop-top nor "
				       "--delete");
	if (a->po.pull && a->co.copy_method != COPY_AUTO)
		return cli_usage_error("commit", "--pull reads and writes "
				       "top's view: it takes no --copy-method");
	return -1;
}

/* Show the plan; refuse one with conflicts, ask before the copy unless
 * --yes.  -1 to go on, else the exit code.  Off a terminal without --yes
 * the refusal comes after the plan's own errors and conflicts, so a
 * script learns first what --yes would not cure. */
static int confirm_plan(const struct graph *g, const struct plan *p,
			const struct commit_args *a)
{
	if (!plan_runnable(p)) {
		emit_plan(stdout, g, p, a->fmt);
		fprintf(stderr, "imgraph commit: the plan has %d conflict%s; "
			"nothing was written\n", p->nconflicts,
			p->nconflicts == 1 ? "" : "s");
		/* what to do first, where a script's log will show it */
		if (p->nconflicts && p->conflicts[0].kind == CONFLICT_JOURNAL)
			fprintf(stderr, "imgraph commit: %s\n%s\n",
				ESC(p->conflicts[0].message),
				ESC(p->conflicts[0].hint));
		return EXIT_CONFLICT;
	}
	if (!a->yes && !(isatty(STDIN_FILENO) && isatty(STDERR_FILENO)))
		return cli_usage_error("commit", "not a terminal: pass --yes to "
				       "commit without questions (nothing was "
				       "written)");
	if (a->fmt == OUT_HUMAN || !a->yes)
		emit_plan(a->fmt == OUT_HUMAN ? stdout : stderr, g, p,
			  OUT_HUMAN);
	fflush(stdout);
	if (!a->yes && !ask(p->pull ? "Pull into top as planned?"
				    : "Commit top into base as planned?")) {
		fprintf(stderr, "imgraph commit: not confirmed; nothing was "
			"written\n");
		return EXIT_ERR;
	}
	return -1;
}

/* Copy and relink, with progress on stderr as asked; SIGINT and SIGTERM
 * cancel at a safe point meanwhile.  commit_execute's return. */
static int run_commit(struct graph *g, const struct plan *p,
		      struct commit_args *a, struct commit_result *res,
		      struct img_err *e)
{
	struct prog prog = { 0 };
	struct progress pr = { prog_update, &prog, prog_how, prog_job };

	progress_meter_init(&prog.m, mono_now());
	struct confirm_ctx cc = { .yes = a->yes, .prog = &prog };
	struct sigaction sa, old_int, old_term;

	if (!a->quiet) {
		if (a->fmt == OUT_JSON || !isatty(STDERR_FILENO))
			prog.mode = PROG_JSON;
		else if (a->want_p)
			prog.mode = PROG_BAR;
	}
	a->co.progress = &pr;
	a->co.cancel = &commit_cancel;
	a->co.confirm_relink = confirm_relink;
	a->co.confirm_opaque = &cc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;      /* no SA_RESTART: a prompt ends */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int r = commit_execute(g, p, &a->co, res, e);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (prog.bar_open)
		fputc('\n', stderr);
	return r;
}

/* The exit code for commit_execute's return r, saying why on stderr or
 * printing the result on stdout. */
static int report(int r, const struct img_err *e, const struct graph *g,
		  const struct plan *p, const struct commit_args *a,
		  const struct commit_result *res)
{
	if (r == -ECANCELED) {
		fprintf(stderr, "imgraph commit: %s\n", ESC(e->msg));
		return EXIT_ERR;
	}
	if (r == -EBUSY) {
		fprintf(stderr, "imgraph commit: %s\n", ESC(e->msg));
		return EXIT_CONFLICT;
	}
	if (r < 0)
		return cli_report(e);
	if (res->relink_declined) {
		fprintf(stderr, "imgraph commit: relink declined: base holds "
			"the copied data, every parent still uses top\n");
		return EXIT_ERR;
	}
	print_result(a->fmt, g, p, res, a->co.delete_files);
	return EXIT_OK;
}

int cmd_commit(int argc, char **argv)
{
	struct commit_args a = { .so.probe_locks = true, .fmt = OUT_HUMAN };
	struct commit_result res = { 0 };
	struct img_err e = { 0 };
	struct graph *g = NULL;
	struct plan *p = NULL;
	int rc;

	a.ps.cmd = "commit";
	a.ps.po = &a.po;
	if (cli_plan_set_init(&a.ps, argc) < 0)
		return EXIT_ERR;
	rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		goto out;
	cli_plan_set_scan(&a.ps, &a.so);
	struct cli_plan_args pa = {
		.top = a.top, .base = a.base,
		.paths = a.paths, .npaths = a.npaths,
		.scan = &a.so, .plan = &a.po,
		.base_format = a.ps.base_format,
	};
	rc = cli_plan_load(&pa, &g, &p);
	if (rc != EXIT_OK)
		goto out;
	rc = confirm_plan(g, p, &a);
	if (rc < 0)
		rc = report(run_commit(g, p, &a, &res, &e), &e, g, p, &a, &res);
	commit_result_free(&res);
	plan_free(p);
	graph_free(g);
out:
	cli_plan_set_free(&a.ps);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "imgraph commit: write error on stdout\n");
		return EXIT_ERR;
	}
	return rc;
}
