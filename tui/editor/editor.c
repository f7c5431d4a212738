/* editor.c - the interactive editor: options, terminal life cycle, the
 * main loop, and the glue between screens (pure, tui/scr_*.c) and the core
 * (scan, plan, commit).
 *
 * Terminal rules (style-and-ux-anchors B2-B8): refuse without a terminal;
 * ncurses handles SIGWINCH and we react to KEY_RESIZE; SIGINT/SIGTERM only
 * set a flag; endwin on every exit path (atexit) and on fatal signals;
 * NO_COLOR (non-empty) and --color; --ascii; mouse only with --mouse;
 * short ESCDELAY. */
#include "tui/cli/cmd.h"
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

#include "core/graph/graph.h"
#include "core/plan/plan.h"

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
			editor_answer(ed, true);
			return true;
		}
		if (ch == 'n' || ch == 'N' || ch == 27 || ch == 'q' ||
		    ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			editor_answer(ed, false);
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
		editor_show_plan(ed, false);
		break;
	case REQ_COMMIT:
		if (!ed->job)
			editor_show_plan(ed, true);
		break;
	case REQ_MAP:
		editor_update_map(ed);
		st->scr = SCR_MAP;
		break;
	case REQ_INFO: {
		int id = rows_selected(&st->rows);
		char title[300];
		snprintf(title, sizeof(title), "Info: %s",
			 editor_label(ed, id));
		editor_show_text(ed, title, editor_info_text(ed->g, id));
		break;
	}
	case REQ_RESCAN:
		editor_scan(ed);
		ui_msg(st, R_NORMAL, "rescanned: %d images",
		       ed->g ? ed->g->n : 0);
		break;
	case REQ_MARKS:
		editor_validate_marks(ed);
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
			/* Leaving on a signal: exit as the signal would
			 * (128 + n), after any commit stopped at a safe point.
			 * Ctrl-C during a commit only cancels it (as in the
			 * CLI); the editor stays open to show the result. */
			if (!ed->job) {
				rc = 128 + sig;
				break;
			}
			editor_job_cancel(ed->job);
			ed->st.prog.cancelling = true;
			if (sig != SIGINT) {
				rc = 128 + sig;
				ed->quit_after_job = true;
			}
			if (ed->q == Q_RELINK)
				editor_answer(ed, false);
		}
		if (ed->job) {
			editor_poll_job(ed);
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
	while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
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
			return cli_bad_option("", argv, "rh", opts);
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
	if (ed.nextra)
		free(ed.paths);
	for (int i = 0; i < ed.nextra; i++)
		free(ed.extra[i]);
	free(ed.extra);
	ui_state_free(&ed.st);
	graph_free(ed.g);
	canvas_free(&ed.cv);
	return rc;
}
