/* editor.c - the interactive editor: terminal life cycle, the main loop,
 * and the glue between screens (pure, scr_*.c) and the core (scan, plan,
 * commit).  The command line is parsed by tui/cli/cmd_editor.c.
 *
 * Terminal rules: ncurses handles SIGWINCH and we react to KEY_RESIZE;
 * SIGINT/SIGTERM only set a flag; endwin on every exit path (atexit) and
 * on fatal signals; NO_COLOR (non-empty) and --color; --ascii; mouse only
 * with --mouse; short ESCDELAY. */
#include "editor.h"
#include "editor_int.h"
#include "theme.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph/graph.h"
#include "core/graph/marks.h"
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

/* Esc or q while a commit runs: ask before cancelling it. */
static void ask_cancel(struct editor *ed)
{
	if (ed->job && !ed->st.prog.cancelling && ed->q == Q_NONE) {
		ed->q = Q_CANCEL;
		/* The copy waits for the answer (nothing more is written
		 * while the user decides) and the wait is not counted in
		 * rate and ETA. */
		editor_job_hold(ed->job, true);
		ed->st.question = "Cancel the running commit? Every image "
				  "stays valid";
	}
}

static void show_info(struct editor *ed)
{
	int id = rows_selected(&ed->st.rows);
	char title[300];
	snprintf(title, sizeof(title), "Info: %s", editor_label(ed, id));
	editor_show_text(ed, title, editor_info_text(ed->g, id));
}

/* Do what a screen's key handler asked for; false to leave the editor. */
static bool run_request(struct editor *ed, enum ui_req req)
{
	struct ui_state *st = &ed->st;
	switch (req) {
	case REQ_QUIT:
		if (!ed->job)
			return false;
		ask_cancel(ed);
		break;
	case REQ_CANCEL_ASK: ask_cancel(ed); break;
	case REQ_PLAN: editor_show_plan(ed, false); break;
	case REQ_COMMIT:
	case REQ_PULL:
		if (!ed->job) {
			ed->pull = req == REQ_PULL;
			editor_show_plan(ed, true);
			ed->pull = false;
		}
		break;
	case REQ_MAP:
		editor_update_map(ed);
		st->scr = SCR_MAP;
		break;
	case REQ_INFO: show_info(ed); break;
	case REQ_RESCAN:
		editor_scan(ed);
		ui_msg(st, R_NORMAL, "rescanned: %d images",
		       ed->g ? ed->g->n : 0);
		break;
	case REQ_MARKS: editor_validate_marks(ed); break;
	case REQ_SELECT: ed->map_stale = true; break;
	case REQ_REDRAW: clearok(curscr, TRUE); break;
	case REQ_JOURNAL: editor_show_journal(ed); break;
	case REQ_FINISH:
		ed->q = Q_FINISH;
		st->question = "Finish the relink: every parent will name base "
			       "(as described above); write now?";
		break;
	case REQ_ROLLBACK:
		ed->q = Q_ROLLBACK;
		st->question = "Roll the relink back: every parent will name "
			       "top again (as described above); write now?";
		break;
	default: break;
	}
	return true;
}

/* A key while the search prompt is open: curses' names for Backspace and
 * Enter become the bytes the prompt knows. */
static void prompt_key(struct editor *ed, int ch)
{
	if (ch == KEY_BACKSPACE)
		ch = UI_KEY_DEL;
	if (ch == KEY_ENTER)
		ch = '\n';
	if (scr_tree_prompt_key(&ed->st, ch) == REQ_SELECT)
		ed->map_stale = true;
}

/* A key while a y/N question is open; false when it is not an answer
 * (then it goes on to the screen, so the plan still scrolls). */
static bool answer_key(struct editor *ed, int ch)
{
	if (ch == 'y' || ch == 'Y') {
		editor_answer(ed, true);
		return true;
	}
	if (ch == 'n' || ch == 'N' || ch == UI_KEY_ESC || ch == 'q' ||
	    ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		editor_answer(ed, false);
		return true;
	}
	return false;
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
	if (ed->cv.w < st->min_w || ed->cv.h < st->min_h)
		return ch != 'q' || ed->job != NULL;
	if (st->prompt) {
		prompt_key(ed, ch);
		return true;
	}
	if (st->question && answer_key(ed, ch))
		return true;
	enum action a = key_action(ch);
	if (a == ACT_NONE) {
		ui_msg(st, R_DIM, "unbound key - press ? for help");
		return true;
	}
	return run_request(ed, ui_key(st, a));
}

static int run_loop(struct editor *ed)
{
	bool running = true;
	int rc = 0;
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


/* The editor's state from the options, before the terminal is touched. */
static int editor_init(struct editor *ed, const struct editor_opts *o,
		       struct img_err *e)
{
	static char *const dot[] = { "." };
	memset(ed, 0, sizeof(*ed));
	ed->paths = o->npaths ? o->paths : dot;
	ed->npaths = o->npaths ? o->npaths : 1;
	ed->so.probe_locks = true;
	ed->so.recursive = o->recursive;
	ed->so.users_file = o->users_file;
	ed->stated = calloc((size_t)o->nstated + 1, sizeof(*ed->stated));
	if (!ed->stated)
		return err_set(e, ENOMEM, "out of memory");
	for (int i = 0; i < o->nstated; i++)
		ed->stated[i] = o->stated[i];
	ed->nstated_opt = o->nstated;
	ed->so.stated = ed->stated;
	ed->so.nstated = o->nstated;
	ed->base_format = o->base_format;
	ed->base_is_raw = o->base_is_raw;
	ed->ignore_unverified = o->ignore_unverified;
	ed->nignore_unverified = o->nignore_unverified;
	ed->mouse = o->mouse;
	ed->rate = o->rate;

	setlocale(LC_ALL, "");
	bool utf8 = !o->ascii && !strcmp(nl_langinfo(CODESET), "UTF-8");
	ui_state_init(&ed->st);
	ed->st.utf8 = utf8;
	ed->st.guide = o->guide;
	if (ed->npaths == 1)
		snprintf(ed->st.pool_label, sizeof(ed->st.pool_label), "%s",
			 ed->paths[0]);
	else
		snprintf(ed->st.pool_label, sizeof(ed->st.pool_label),
			 "%s +%d", ed->paths[0], ed->npaths - 1);
	if (canvas_init(&ed->cv, 80, 24, utf8) < 0)
		return err_set(e, ENOMEM, "out of memory");
	return 0;
}

/* Our handlers first: ncurses leaves handlers that are not the default
 * alone. */
static void install_signals(void)
{
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
}

static bool color_wanted(enum editor_color c)
{
	const char *nc = getenv("NO_COLOR");
	if (c == EDITOR_COLOR_AUTO)
		return !(nc && *nc);
	return c == EDITOR_COLOR_ALWAYS;
}

/* Put the terminal into the editor's mode. */
static int term_start(const struct editor *ed, enum editor_color color,
		      struct img_err *e)
{
	if (!getenv("ESCDELAY"))
		set_escdelay(25);
	if (!initscr())
		return err_set(e, ENOTTY, "cannot initialise the terminal "
			       "(TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
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
	theme_init(color_wanted(color));
	if (ed->mouse)
		mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED |
			  BUTTON5_PRESSED, NULL);
	return 0;
}

/* The first scan, with a message while it runs. */
static void first_scan(struct editor *ed)
{
	ui_msg(&ed->st, R_DIM, "scanning %s ...", ed->st.pool_label);
	draw(ed);
	editor_scan(ed);
	/* From here the status line's hint says what to do next. */
	if (ed->st.msg_role != R_ERROR)
		ed->st.msg[0] = 0;
}

/* The steps to try, over the tree until Esc; ? shows them again. */
static void show_guide(struct editor *ed)
{
	char *text = NULL;
	if (asprintf(&text, "%s\nEsc closes this guide; ? shows it again on "
		     "the first page of help.\n", ed->st.guide) < 0)
		text = NULL;
	editor_show_text(ed, "Guide: the demo pool", text);
}

/* Stop a commit still running (at a safe point) and free everything. */
static void editor_teardown(struct editor *ed)
{
	term_restore();
	if (ed->job) {
		editor_job_cancel(ed->job);
		editor_job_answer(ed->job, false);
		editor_job_join(ed->job);
	}
	plan_free(ed->plan);
	free(ed->after_text);
	free(ed->paths_owned);
	for (int i = 0; i < ed->nextra; i++)
		free(ed->extra[i]);
	free(ed->extra);
	free(ed->stated);
	free(ed->base_stated);
	ui_state_free(&ed->st);
	graph_free(ed->g);
	canvas_free(&ed->cv);
}

int editor_run(const struct editor_opts *o, struct img_err *e)
{
	struct editor ed;
	int rc = editor_init(&ed, o, e);
	if (rc == 0) {
		install_signals();
		rc = term_start(&ed, o->color, e);
	}
	if (rc == 0) {
		first_scan(&ed);
		if (o->guide)
			show_guide(&ed);
		/* An unfinished relink comes before anything else. */
		if (ed.g && ed.g->marks && ed.g->marks->njournals)
			editor_show_journal(&ed);
		rc = run_loop(&ed);
	}
	editor_teardown(&ed);
	return rc;
}
