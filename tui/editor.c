/* editor.c - the interactive editor: options, terminal life cycle, the
 * main loop, and the glue between screens (pure, tui/scr_*.c) and the core
 * (scan, plan, commit).
 *
 * Terminal rules (style-and-ux-anchors B2-B8): refuse without a terminal;
 * ncurses handles SIGWINCH and we react to KEY_RESIZE; SIGINT/SIGTERM only
 * set a flag; endwin on every exit path (atexit) and on fatal signals;
 * NO_COLOR (non-empty) and --color; --ascii; mouse only with --mouse;
 * short ESCDELAY. */
#include "cmd.h"
#include "editor_int.h"
#include "theme.h"

#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/graph.h"
#include "../core/plan.h"

#define MAP_REGIONS 4096

enum question { Q_NONE, Q_COMMIT, Q_RELINK, Q_CANCEL };

struct editor {
	struct ui_state st;
	struct canvas cv;
	struct graph *g;           /* owned */
	char **paths;
	int npaths;
	struct scan_opts so;
	bool mouse;
	uint64_t rate;
	enum question q;
	struct plan *plan;         /* the plan a running commit executes */
	struct editor_job *job;
	struct editor_job_snap snap;
	char *after_text;          /* the plan text shown before relinking */
	double t0, last_rate_t;
	uint64_t last_rate_done;
	bool map_stale;
	bool quit_after_job;
};

static volatile sig_atomic_t got_signal;
static bool curses_on;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void term_restore(void)
{
	if (curses_on) {
		curses_on = false;
		endwin();
	}
}

/* A crash must not leave the terminal in raw mode; endwin is not
 * async-signal-safe, but the process is going down anyway. */
static void on_fatal(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: imgraph [--ascii] [--color=auto|always|never] [--mouse]\n"
"               [--users FILE] [-r] [--rate BYTES_PER_S] [PATH...]\n"
"       imgraph --demo [DIR]\n"
"\n"
"Interactive editor of a pool of qcow2/raw images: the forest of backing\n"
"chains, top/base marks, plan preview, commit with progress and relink.\n"
"PATH: image files and directories (default: .).  Needs a terminal; for\n"
"scripts use the commands (imgraph tree|info|map|plan|commit ...).\n"
"\n"
"  --ascii          ASCII lines instead of UTF-8 box drawing\n"
"  --color=WHEN     auto (default; off when NO_COLOR is set), always, never\n"
"  --mouse          enable the mouse (click selects, wheel scrolls)\n"
"  --users FILE     users file (YAML) naming VMs, exports, jobs\n"
"  -r, --recursive  scan directories recursively\n"
"  --rate N         limit commit copy speed (bytes/s, K/M/G suffixes)\n"
"  --demo [DIR]     build a teaching pool in DIR (default: a new temp dir)\n"
"                   and open the editor on it (needs qemu-img, qemu-io)\n"
"\n"
"Keys: press ? in the editor.  See imgraph(1).\n");
}

/* ---- scanning ---------------------------------------------------------- */

static const char *node_path(const struct graph *g, int id)
{
	return g && id >= 0 && id < g->n ? g->nodes[id].path : NULL;
}

/* The name the tree shows (the pool's directory stripped). */
#define node_label(g, id) rows_label(&ed->st.rows, (id))

/* (Re)scan the pool, keeping selection, marks and collapsed subtrees by
 * file identity. */
static void editor_scan(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	char *sel = NULL, *top = NULL, *base = NULL;
	char **collapsed = NULL;
	int ncollapsed = 0;
	if (ed->g) {
		sel = node_path(ed->g, rows_selected(&st->rows)) ?
		      strdup(node_path(ed->g, rows_selected(&st->rows))) : NULL;
		if (st->mark_top >= 0)
			top = strdup(ed->g->nodes[st->mark_top].path);
		if (st->mark_base >= 0)
			base = strdup(ed->g->nodes[st->mark_base].path);
		collapsed = calloc((size_t)ed->g->n + 1, sizeof(char *));
		for (int i = 0; collapsed && i < ed->g->n; i++)
			if (i < st->rows.n && !st->rows.expanded[i] &&
			    ed->g->nodes[i].path)
				collapsed[ncollapsed++] =
					strdup(ed->g->nodes[i].path);
	}
	rows_free(&st->rows);
	cmap_free(st->map);
	st->map = NULL;
	st->g = NULL;
	graph_free(ed->g);
	ed->g = NULL;
	st->mark_top = st->mark_base = -1;
	st->scan_error[0] = 0;

	struct img_err e = { 0 };
	if (graph_scan(ed->paths, ed->npaths, &ed->so, &ed->g, &e) < 0) {
		ed->g = NULL;
		snprintf(st->scan_error, sizeof(st->scan_error), "%s", e.msg);
		ui_msg(st, R_ERROR, "scan failed: %s", e.msg);
	}
	st->g = ed->g;
	if (rows_init(&st->rows, ed->g) < 0)
		ui_msg(st, R_ERROR, "out of memory");
	if (ed->g) {
		for (int i = 0; i < ncollapsed; i++) {
			int id = graph_lookup(ed->g, collapsed[i], NULL);
			if (id >= 0 && id < st->rows.n)
				rows_set_expanded(&st->rows, id, false);
		}
		int id;
		if (sel && (id = graph_lookup(ed->g, sel, NULL)) >= 0)
			rows_select_node(&st->rows, id);
		if (top && (id = graph_lookup(ed->g, top, NULL)) >= 0)
			st->mark_top = id;
		if (base && (id = graph_lookup(ed->g, base, NULL)) >= 0)
			st->mark_base = id;
	}
	for (int i = 0; i < ncollapsed; i++)
		free(collapsed[i]);
	free(collapsed);
	free(sel);
	free(top);
	free(base);
	ed->map_stale = true;
}

static void editor_update_map(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	int id = rows_selected(&st->rows);
	ed->map_stale = false;
	if (!ed->g || id < 0 || (st->map && st->map->node == id))
		return;
	cmap_free(st->map);
	st->map = editor_cmap(ed->g, id, MAP_REGIONS);
}

/* ---- plans --------------------------------------------------------------- */

static int build_plan(struct editor *ed, struct plan **out, struct img_err *e)
{
	struct plan_opts po = { 0 };
	return plan_build(ed->g, ed->st.mark_top, ed->st.mark_base, &po, out,
			  e);
}

static void validate_marks(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	if (st->mark_top < 0) {
		ui_msg(st, R_NORMAL, "base: %s - now mark a top above it (t)",
		       node_label(ed->g, st->mark_base));
		return;
	}
	struct plan *p = NULL;
	struct img_err e = { 0 };
	if (build_plan(ed, &p, &e) < 0) {
		ui_msg(st, R_ERROR, "impossible pair: %s", e.msg);
		return;
	}
	for (int i = 0; i < p->nconflicts; i++)
		if (p->conflicts[i].kind == CONFLICT_INVALID_PAIR) {
			ui_msg(st, R_ERROR, "impossible pair: %s%s%s",
			       p->conflicts[i].why ? p->conflicts[i].why :
			       p->conflicts[i].message,
			       p->conflicts[i].hint ? " - " : "",
			       p->conflicts[i].hint ? p->conflicts[i].hint : "");
			plan_free(p);
			return;
		}
	char sz[16];
	const char *base = node_label(ed->g, p->base);
	if (p->nconflicts)
		ui_msg(st, R_WARN, "%s into %s: %d conflict%s - p shows why",
		       node_label(ed->g, p->top), base, p->nconflicts,
		       p->nconflicts == 1 ? "" : "s");
	else
		ui_msg(st, R_OK, "%s into %s%s: clean, copies %s, relinks %d "
		       "parent%s - p preview, c commit",
		       node_label(ed->g, p->top), base,
		       st->mark_base < 0 ? " (its backing file)" : "",
		       ui_size(p->bytes_to_copy, sz, sizeof(sz)), p->nparents,
		       p->nparents == 1 ? "" : "s");
	plan_free(p);
}

static void show_text(struct editor *ed, const char *title, char *text)
{
	struct ui_state *st = &ed->st;
	textview_set(&st->text, title, text ? text : "(out of memory)");
	free(text);
	st->scr = SCR_TEXT;
}

static void show_plan(struct editor *ed, bool for_commit)
{
	struct ui_state *st = &ed->st;
	struct plan *p = NULL;
	struct img_err e = { 0 };
	if (build_plan(ed, &p, &e) < 0) {
		ui_msg(st, R_ERROR, "no plan: %s", e.msg);
		return;
	}
	char title[300];
	snprintf(title, sizeof(title), "Plan: commit %s into %s - %d "
		 "conflict%s", node_label(ed->g, p->top),
		 node_label(ed->g, p->base), p->nconflicts,
		 p->nconflicts == 1 ? "" : "s");
	/* Exactly what `imgraph plan` prints, then the after-graph. */
	char *plan = editor_plan_text(ed->g, p);
	char *after = editor_after_text(ed->g, p, st->utf8);
	char *both = NULL;
	if (plan && after && asprintf(&both, "%s\n%s", plan, after) < 0)
		both = NULL;
	free(plan);
	free(after);
	show_text(ed, title, both);
	if (!for_commit) {
		plan_free(p);
		return;
	}
	if (p->nconflicts) {
		ui_msg(st, R_ERROR, "commit refused: the plan has %d "
		       "conflict%s (see above); nothing was written",
		       p->nconflicts, p->nconflicts == 1 ? "" : "s");
		plan_free(p);
		return;
	}
	ed->plan = p;
	ed->q = Q_COMMIT;
	st->question = "Commit: copy top's data into base now?";
}

/* ---- the commit job ------------------------------------------------------ */

static void start_commit(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct img_err e = { 0 };
	/* Prepared now: the worker owns the graph until it is joined. */
	free(ed->after_text);
	char *after = editor_after_text(ed->g, ed->plan, st->utf8);
	char *plan = editor_plan_text(ed->g, ed->plan);
	if (after && plan && asprintf(&ed->after_text, "%s%s", after,
				      plan) < 0)
		ed->after_text = NULL;
	free(after);
	free(plan);
	memset(&st->prog, 0, sizeof(st->prog));
	snprintf(st->prog.title, sizeof(st->prog.title),
		 "Committing %s into %s", node_label(ed->g, ed->plan->top),
		 node_label(ed->g, ed->plan->base));
	memset(&ed->snap, 0, sizeof(ed->snap));
	if (editor_job_start(&ed->job, ed->g, ed->plan, ed->rate, &e) < 0) {
		ui_msg(st, R_ERROR, "%s", e.msg);
		plan_free(ed->plan);
		ed->plan = NULL;
		st->scr = SCR_TREE;
		return;
	}
	ed->t0 = ed->last_rate_t = now();
	ed->last_rate_done = 0;
	st->scr = SCR_PROGRESS;
}

static void finish_commit(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct editor_job_snap s = ed->snap;
	editor_job_join(ed->job);
	ed->job = NULL;
	char *buf = NULL, sz[16];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *title;
	if (f) {
		if (s.rc == -ECANCELED) {
			title = "Commit cancelled";
			fprintf(f, "The commit was cancelled.  Every image is "
				"valid and the parents of top still read "
				"through top, so no guest sees a change.\n");
		} else if (s.rc < 0) {
			title = "Commit failed";
			fprintf(f, "error: %s\n\nImages that stay in the graph "
				"keep their guest view; run 'imgraph recover' "
				"on the pool if a relink was interrupted.\n",
				s.err.msg);
		} else if (s.res_declined) {
			title = "Commit done, relink declined";
			fprintf(f, "Base now holds top's data; the parents of "
				"top were NOT relinked and still read through "
				"top, so their guest view is unchanged.\n");
		} else {
			title = "Commit finished";
			fprintf(f, "ok: committed %s into %s.\n",
				node_label(ed->g, ed->plan->top),
				node_label(ed->g, ed->plan->base));
		}
		fprintf(f, "copied: %s\nrelinked: %d parent%s\n",
			ui_size(s.res_bytes, sz, sizeof(sz)), s.res_relinked,
			s.res_relinked == 1 ? "" : "s");
		if (s.res_deleted)
			fprintf(f, "deleted: %d file%s\n", s.res_deleted,
				s.res_deleted == 1 ? "" : "s");
		fprintf(f, "\nThe pool was rescanned: Esc returns to the "
			"tree.\n");
		fclose(f);
	} else {
		title = "Commit result";
	}
	plan_free(ed->plan);
	ed->plan = NULL;
	ed->q = Q_NONE;
	st->question = NULL;
	editor_scan(ed);
	st->mark_top = st->mark_base = -1;
	show_text(ed, title, buf);
	ui_msg(st, s.rc < 0 ? R_ERROR : R_OK, "%s", title);
}

/* Copy the worker's state into the view-model; rate is smoothed. */
static void poll_job(struct editor *ed)
{
	struct ui_state *st = &ed->st;
	struct prog_view *p = &st->prog;
	struct editor_job_snap s;
	editor_job_snapshot(ed->job, &s);
	double t = now();
	p->elapsed = t - ed->t0;
	if (s.phase[0] && strcmp(s.phase, p->phase)) {
		snprintf(p->phase, sizeof(p->phase), "%s", s.phase);
		if (p->nphases < 8)
			snprintf(p->phases[p->nphases++],
				 sizeof(p->phases[0]), "%s", s.phase);
		/* Past the copy, the byte count is complete. */
		if (strcmp(s.phase, "copy"))
			p->done = p->total;
	}
	/* The engine reports each phase in its own units (copy: bytes,
	 * flush: 0/1, relink: parents); the overall bar is the copy. */
	p->pdone = s.done;
	p->ptotal = s.total;
	if (!strcmp(s.phase, "copy")) {
		p->done = s.done;
		p->total = s.total;
		if (t - ed->last_rate_t >= 0.5) {
			double inst = (double)(s.done - ed->last_rate_done) /
				      (t - ed->last_rate_t);
			p->rate = p->rate > 0 ? 0.6 * p->rate + 0.4 * inst
					      : inst;
			ed->last_rate_t = t;
			ed->last_rate_done = s.done;
		}
	}
	if (s.asking && ed->q != Q_RELINK) {
		ed->q = Q_RELINK;
		show_text(ed, "Copy done - relink? The pool after it:",
			  ed->after_text ? strdup(ed->after_text) : NULL);
		st->question = "Copy done. Relink every parent of top to base "
			       "now (the after-graph above)?";
		if (ed->quit_after_job) {
			editor_job_answer(ed->job, false);
			ed->q = Q_NONE;
			st->question = NULL;
			st->scr = SCR_PROGRESS;
		}
	}
	ed->snap = s;
	if (s.finished)
		finish_commit(ed);
}

static void answer(struct editor *ed, bool yes)
{
	struct ui_state *st = &ed->st;
	enum question q = ed->q;
	ed->q = Q_NONE;
	st->question = NULL;
	switch (q) {
	case Q_COMMIT:
		if (yes) {
			start_commit(ed);
		} else {
			plan_free(ed->plan);
			ed->plan = NULL;
			st->scr = SCR_TREE;
			ui_msg(st, R_NORMAL, "commit not started; nothing was "
			       "written");
		}
		break;
	case Q_RELINK:
		editor_job_answer(ed->job, yes);
		st->scr = SCR_PROGRESS;
		break;
	case Q_CANCEL:
		if (yes && ed->job) {
			editor_job_cancel(ed->job);
			st->prog.cancelling = true;
		}
		break;
	case Q_NONE:
		break;
	}
}

/* ---- terminal ------------------------------------------------------------ */

static void draw(struct editor *ed)
{
	int h, w;
	getmaxyx(stdscr, h, w);
	if (w != ed->cv.w || h != ed->cv.h)
		canvas_resize(&ed->cv, w, h);
	ui_draw(&ed->cv, &ed->st);
	theme_blit(&ed->cv);
	wnoutrefresh(stdscr);
	doupdate();
}

static enum action key_action(int ch)
{
#define ACTION(id, keys, help, bar, ...) \
	{ const int ks_[] = { __VA_ARGS__ }; \
	  for (size_t i_ = 0; i_ < sizeof(ks_) / sizeof(ks_[0]); i_++) \
		  if (ks_[i_] == ch) return id; }
#include "actions.def"
#undef ACTION
	return ACT_NONE;
}

static void handle_mouse(struct editor *ed)
{
	MEVENT ev;
	struct ui_state *st = &ed->st;
	if (getmouse(&ev) != OK || st->scr != SCR_TREE)
		return;
	if (ev.bstate & BUTTON4_PRESSED) {
		rows_move(&st->rows, -3);
	} else if (ev.bstate & BUTTON5_PRESSED) {
		rows_move(&st->rows, 3);
	} else if (ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)) {
		int ty, th, dy, dh;
		scr_tree_layout(st, ed->cv.w, ed->cv.h, &ty, &th, &dy, &dh);
		int idx = st->rows.top + ev.y - (ty + 1);
		if (ev.y > ty && ev.y < ty + th && idx < st->rows.nrows)
			rows_select_row(&st->rows, idx);
	}
	ed->map_stale = true;
}

/* One key; returns false to leave the editor. */
static bool handle_key(struct editor *ed, int ch)
{
	struct ui_state *st = &ed->st;
	if (ch == KEY_RESIZE)
		return true;
	if (ch == KEY_MOUSE) {
		handle_mouse(ed);
		return true;
	}
	if (ed->cv.w < st->min_w || ed->cv.h < st->min_h) {
		if (ch == 'q' && !ed->job)
			return false;
		return true;
	}
	if (st->prompt) {
		if (ch == KEY_BACKSPACE)
			ch = 127;
		if (ch == KEY_ENTER)
			ch = '\n';
		if (scr_tree_prompt_key(st, ch) == REQ_SELECT)
			ed->map_stale = true;
		return true;
	}
	if (st->question) {
		if (ch == 'y' || ch == 'Y') {
			answer(ed, true);
			return true;
		}
		if (ch == 'n' || ch == 'N' || ch == 27 || ch == 'q' ||
		    ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			answer(ed, false);
			return true;
		}
	}
	enum action a = key_action(ch);
	if (a == ACT_NONE) {
		ui_msg(st, R_DIM, "unbound key - press ? for help");
		return true;
	}
	switch (ui_key(st, a)) {
	case REQ_QUIT:
		if (ed->job)
			goto ask_cancel;
		return false;
	case REQ_CANCEL_ASK:
	ask_cancel:
		if (ed->job && !st->prog.cancelling) {
			ed->q = Q_CANCEL;
			st->question = "Cancel the running commit? Every image "
				       "stays valid";
		}
		break;
	case REQ_PLAN:
		show_plan(ed, false);
		break;
	case REQ_COMMIT:
		if (!ed->job)
			show_plan(ed, true);
		break;
	case REQ_MAP:
		editor_update_map(ed);
		st->scr = SCR_MAP;
		break;
	case REQ_INFO: {
		int id = rows_selected(&st->rows);
		char title[300];
		snprintf(title, sizeof(title), "Info: %s",
			 node_label(ed->g, id));
		show_text(ed, title, editor_info_text(ed->g, id));
		break;
	}
	case REQ_RESCAN:
		editor_scan(ed);
		ui_msg(st, R_NORMAL, "rescanned: %d images",
		       ed->g ? ed->g->n : 0);
		break;
	case REQ_MARKS:
		validate_marks(ed);
		break;
	case REQ_SELECT:
		ed->map_stale = true;
		break;
	case REQ_REDRAW:
		clearok(curscr, TRUE);
		break;
	default:
		break;
	}
	return true;
}

static int run_loop(struct editor *ed)
{
	bool running = true;
	int rc = EXIT_OK;
	draw(ed);
	while (running) {
		if (got_signal) {
			int sig = got_signal;
			got_signal = 0;
			/* Killed: exit as a signal would (128 + n), after the
			 * commit (if any) stopped at a safe point. */
			rc = 128 + sig;
			if (!ed->job)
				break;
			/* Ctrl-C / TERM during a commit: cancel (images stay
			 * valid), then leave once the worker is done. */
			editor_job_cancel(ed->job);
			ed->st.prog.cancelling = true;
			if (sig != SIGINT)
				ed->quit_after_job = true;
			if (ed->q == Q_RELINK)
				answer(ed, false);
		}
		if (ed->job) {
			poll_job(ed);
			if (!ed->job && ed->quit_after_job)
				break;
		}
		draw(ed);
		/* Block briefly: a commit needs ~10 redraws/s, an idle
		 * editor only wakes to compute the detail map and to see
		 * signals. */
		timeout(ed->job ? 100 : ed->map_stale ? 30 : 250);
		int ch = getch();
		if (ch == ERR) {
			if (ed->map_stale && ed->st.scr == SCR_TREE)
				editor_update_map(ed);
			continue;
		}
		running = handle_key(ed, ch);
		/* Drain typeahead before drawing again (held arrow keys). */
		timeout(0);
		while (running && (ch = getch()) != ERR)
			running = handle_key(ed, ch);
	}
	return rc;
}

static int parse_color(const char *s)
{
	if (!s || !strcmp(s, "always") || !strcmp(s, "yes"))
		return 1;
	if (!strcmp(s, "never") || !strcmp(s, "no"))
		return 0;
	if (!strcmp(s, "auto"))
		return 2;
	return -1;
}

int editor_main(int argc, char **argv)
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
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct editor ed;
	memset(&ed, 0, sizeof(ed));
	int color = 2, c;
	bool ascii = false, demo = false;
	ed.so.probe_locks = true;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+rh", opts, NULL)) != -1) {
		switch (c) {
		case 'a': ascii = true; break;
		case 'C':
			color = parse_color(optarg);
			if (color < 0)
				return cli_usage_error("", "--color=%s: expected "
						       "auto, always or never",
						       optarg);
			break;
		case 'M': ed.mouse = true; break;
		case 'u': ed.so.users_file = optarg; break;
		case 'r': ed.so.recursive = true; break;
		case 'R':
			if (cli_parse_size(optarg, &ed.rate) < 0)
				return cli_usage_error("", "--rate %s: not a "
						       "size", optarg);
			break;
		case 'D': demo = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			if (optopt && optopt != '?')
				fprintf(stderr, "imgraph: unknown option '-%c'\n",
					optopt);
			else
				fprintf(stderr, "imgraph: unknown option '%s' "
					"(or not a command)\n",
					argv[optind - 1]);
			fprintf(stderr, "Try 'imgraph --help'.\n");
			return EXIT_USAGE;
		}
	}
	char demo_dir[4096];
	char *demo_path[1] = { demo_dir };
	if (demo) {
		if (argc - optind > 1)
			return cli_usage_error("", "--demo takes at most one "
					       "directory");
		struct img_err e = { 0 };
		if (demo_build(optind < argc ? argv[optind] : NULL, demo_dir,
			       sizeof(demo_dir), &e) < 0)
			return cli_report(&e);
		printf("imgraph: demo pool built in %s\n%s", demo_dir,
		       demo_lessons);
		fflush(stdout);
		ed.paths = demo_path;
		ed.npaths = 1;
	} else {
		ed.paths = argv + optind;
		ed.npaths = argc - optind;
	}
	static char *dot[] = { "." };
	if (!ed.npaths) {
		ed.paths = dot;
		ed.npaths = 1;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr,
			"imgraph: the editor needs a terminal (stdin and stdout)"
			";\nfor scripts use the commands: imgraph tree, info, "
			"map, plan, commit ... (imgraph --help)\n");
		return EXIT_USAGE;
	}

	setlocale(LC_ALL, "");
	bool utf8 = !ascii && !strcmp(nl_langinfo(CODESET), "UTF-8");
	const char *nc = getenv("NO_COLOR");
	if (color == 2)
		color = !(nc && *nc);

	ui_state_init(&ed.st);
	ed.st.utf8 = utf8;
	if (ed.npaths == 1)
		snprintf(ed.st.pool_label, sizeof(ed.st.pool_label), "%s",
			 ed.paths[0]);
	else
		snprintf(ed.st.pool_label, sizeof(ed.st.pool_label),
			 "%s +%d", ed.paths[0], ed.npaths - 1);
	if (canvas_init(&ed.cv, 80, 24, utf8) < 0) {
		fprintf(stderr, "imgraph: out of memory\n");
		return EXIT_ERR;
	}

	/* Our handlers first: ncurses leaves non-default handlers alone. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGABRT, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGILL, on_fatal);

	if (!getenv("ESCDELAY"))
		set_escdelay(25);
	if (!initscr()) {
		fprintf(stderr, "imgraph: cannot initialise the terminal "
			"(TERM=%s)\n", getenv("TERM") ? getenv("TERM") : "");
		return EXIT_ERR;
	}
	curses_on = true;
	atexit(term_restore);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	/* Home/End as rxvt, the Linux console and tmux send them, for
	 * terminfo entries (xterm) that only know the SS3 forms. */
	define_key("\033[1~", KEY_HOME);
	define_key("\033[4~", KEY_END);
	curs_set(0);
	theme_init(color);
	if (ed.mouse)
		mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED |
			  BUTTON5_PRESSED, NULL);

	ui_msg(&ed.st, R_DIM, "scanning %s ...", ed.st.pool_label);
	draw(&ed);
	editor_scan(&ed);
	if (!ed.st.msg[0] || ed.st.msg_role != R_ERROR)
		ui_msg(&ed.st, R_NORMAL, "%d image%s - ? help, t/b mark top/"
		       "base, p plan, c commit", ed.g ? ed.g->n : 0,
		       ed.g && ed.g->n == 1 ? "" : "s");
	int rc = run_loop(&ed);
	term_restore();
	if (ed.job) {
		editor_job_cancel(ed.job);
		editor_job_answer(ed.job, false);
		editor_job_join(ed.job);
	}
	plan_free(ed.plan);
	free(ed.after_text);
	ui_state_free(&ed.st);
	graph_free(ed.g);
	canvas_free(&ed.cv);
	return rc;
}
