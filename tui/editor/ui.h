/* ui.h - the editor's view-model and screen contract.
 *
 * Every screen is a pure function of struct ui_state: X_draw(canvas, st)
 * writes cells, X_key(st, action) changes the view-model and returns what
 * the editor loop must do next.  No screen calls curses; theme.c blits
 * the canvas and editor*.c own the terminal, the graph and the commit.
 * Unit tests build a ui_state by hand and read screens back as text.
 *
 * Ownership: ui_state borrows the graph (the editor owns it) and owns its
 * text view, cluster map and the rows' arrays (ui_state_free).
 */
#ifndef IMGRAPH_UI_H
#define IMGRAPH_UI_H

#include <stdbool.h>
#include <stdint.h>

#include "canvas.h"
#include "rows.h"
#include "core/commit/progress.h"
#include "core/plan/plan_lesson.h"

/* Key codes the screens and the action table use that curses has no name
 * for (they arrive as plain bytes).  Curses' own KEY_* codes stay in the
 * files that include curses. */
#define UI_KEY_CTRL(c) ((c) & 0x1f)  /* Ctrl+letter: UI_KEY_CTRL('l') */
enum {
	UI_KEY_BS = 8,             /* Backspace as ^H */
	UI_KEY_ESC = 27,
	UI_KEY_DEL = 127,          /* Backspace as most terminals send it */
};

enum action {
#define ACTION(id, keys, help, bar, ...) id,
#include "actions.def"
#undef ACTION
	ACT_COUNT,
	ACT_NONE = -1,
};

struct action_info {
	const char *keys;          /* "Up k" */
	const char *help;          /* sentence for the help screen */
	const char *bar;           /* function bar verb, "" = not shown */
};
extern const struct action_info ui_actions[ACT_COUNT];

enum screen_id {
	SCR_TREE,                  /* tree + detail panes */
	SCR_TEXT,                  /* plan / info / confirm (scrollable text) */
	SCR_HELP,
	SCR_MAP,                   /* full cluster map */
	SCR_PROGRESS,              /* commit running */
	SCR_SMALL,                 /* terminal too small */
	SCR_LESSON,                /* the plan's commit, stage by stage */
};

/* A scrollable text screen (plan, info, confirm dialogs). */
struct textview {
	char **lines;              /* owned */
	int n;
	int top;
	char title[160];
};
int textview_set(struct textview *t, const char *title, const char *text);
void textview_free(struct textview *t);

/* Which layer of a chain serves each region of the virtual disk.
 * share[l * nregions + i]: fraction (0..1) of region i served by layer l
 * (l == nlayers: served by no layer, reads as zeros); zshare: the part of
 * that which is a zero cluster (or a zero range); cshare: the part stored
 * compressed. */
struct cmap {
	int node;                  /* graph node it was built for */
	int nlayers;               /* layer 0 = the selected image */
	char **names;              /* owned, nlayers entries */
	uint64_t vsize;
	int nregions;
	float *share, *zshare, *cshare; /* owned, (nlayers + 1) * nregions */
	bool partial;              /* stopped early (too many extents) */
	char error[IMG_ERR_MSG_MAX]; /* non-empty: why there is no map */
};
void cmap_free(struct cmap *m);
/* What a cell of the map shows. */
enum cmap_kind {
	CK_NONE,                   /* no layer serves it (reads zeros) */
	CK_DATA,                   /* data, wholly */
	CK_PART,                   /* data in part of the cell only */
	CK_ZERO,                   /* mostly zero clusters */
	CK_COMPRESSED,             /* mostly compressed data */
};
/* Layer serving most of regions [r0, r1) (nlayers = none) and whether that
 * is mostly zeros; share of it in *frac. */
int cmap_dominant(const struct cmap *m, int r0, int r1, bool *zero,
		  float *frac);
/* Kind of regions [r0, r1) as served by layer (the detail strips), or by
 * its dominant layer when layer < 0 (the map screen; *lout gets it). */
enum cmap_kind cmap_cell(const struct cmap *m, int layer, int r0, int r1,
			 int *lout);
/* Bytes of virtual disk one cell of a width-cell row stands for when the
 * disk is drawn in cells cells. */
uint64_t cmap_cell_bytes(const struct cmap *m, long long cells);

/* Commit progress as the UI sees it (copied out of the worker's meter,
 * core/commit/progress.h: the CLI's -p shows the same numbers). */
struct prog_view {
	char title[200];           /* "Committing top.qcow2 into base.qcow2" */
	int phase;                 /* index in progress_phases, -1: none yet */
	bool seen[PROGRESS_NPHASES]; /* phases reported (earlier ones not
				      seen were skipped) */
	const char *how;           /* the copy's methods so far (static), or NULL */
	char job[96];              /* a live commit's QEMU job and status */
	char layer[256];           /* the image being read (its label), "" */
	uint64_t done, total;      /* bytes of the copy (total: the plan's
				      estimate until the copy reports) */
	uint64_t pdone, ptotal;    /* the current phase's own units */
	double fraction;           /* of the whole commit, all phases */
	double elapsed;            /* seconds since start */
	double rate;               /* bytes/s over a window, 0 = unknown */
	double eta;                /* seconds, < 0 unknown */
	bool cancelling;
	bool paused;               /* a question is open: the copy waits */
};

struct ui_state {
	const struct graph *g;     /* borrowed; NULL when the scan failed */
	struct rows rows;
	int mark_top, mark_base;   /* node ids or -1 */
	/* The marks before the last t/b: a mark the pair refuses goes back
	 * to them, so an impossible mark is never left set. */
	int undo_top, undo_base;
	bool last_mark_top;        /* the last mark set was t (else b) */
	char pool_label[256];
	char scan_error[IMG_ERR_MSG_MAX];      /* non-empty when the scan failed */
	/* An empty pool whose subdirectories hold images: ", N in
	 * subdirectories: run with -r" (else ""). */
	char pool_hint[128];
	char msg[IMG_ERR_MSG_MAX + 256]; /* transient status message */
	int msg_role;
	bool prompt;               /* search prompt open: keys go to it */
	char prompt_buf[128];
	char last_search[128];
	enum screen_id scr, prev_scr;
	struct textview text;      /* SCR_TEXT contents */
	/* A y/N question over SCR_TEXT (or SCR_PROGRESS); NULL when none. */
	const char *question;
	struct cmap *map;          /* cluster map of map->node, owned */
	struct prog_view prog;
	int help_top;
	int min_w, min_h;
	bool utf8;
	bool detail;               /* show the detail pane */
	/* The teaching view of the plan on SCR_TEXT (owned; NULL when that
	 * text is not a plan that can run) and its current stage. */
	struct plan_lesson *lesson;
	int lesson_cur;
	int strip_top;             /* first layer of the detail pane's strips */
	bool protect;              /* plans of the marked pair use --protect
				      (S; cleared when the marks change) */
	const char *guide;         /* steps to try (static), or NULL */
	bool journal_screen;       /* SCR_TEXT shows an unfinished relink:
				      F and U act on it */
};

void ui_state_init(struct ui_state *st);
void ui_state_free(struct ui_state *st);
/* Status line message (printf style); cleared by the next key. */
void ui_msg(struct ui_state *st, int role, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The status line when no message is up (the tree screen): the next
 * sensible step for the marks as they are, into buf. */
const char *ui_hint(const struct ui_state *st, char *buf, size_t len);

/* What a key handler asks the editor loop to do. */
enum ui_req {
	REQ_NONE,                  /* redraw */
	REQ_QUIT,
	REQ_PLAN,                  /* compute and show the plan */
	REQ_COMMIT,                /* plan + confirm + run */
	REQ_PULL,                  /* the same, as a pull (plan_pull.h) */
	REQ_MAP,                   /* full map of the selection */
	REQ_INFO,
	REQ_RESCAN,
	REQ_MARKS,                 /* marks changed: validate them */
	REQ_SELECT,                /* selection changed (detail map) */
	REQ_YES, REQ_NO,           /* answer to ui_state.question */
	REQ_CANCEL_ASK,            /* Esc during a commit */
	REQ_REDRAW,                /* full repaint (^L) */
	REQ_JOURNAL,               /* show the unfinished relink */
	REQ_FINISH, REQ_ROLLBACK,  /* ask, then recover it one way */
};

/* The frame every screen shares: title bar (row 0), status line (h-2) and
 * function bar (h-1). */
void scr_frame_draw(struct canvas *c, const struct ui_state *st,
		    const char *title);
void scr_bar_draw(struct canvas *c, int y, const char *const *pairs, int n);
/* Keys a screen without its own use for them treats like every other: ?
 * opens help (Esc comes back to this screen), ^L repaints, the rest do
 * nothing. */
enum ui_req scr_common_key(struct ui_state *st, enum action a);

/* S: toggle st->protect for the marked pair (false: no top marked, with a
 * message); the caller plans again. */
bool scr_protect_toggle(struct ui_state *st);

void scr_tree_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_tree_key(struct ui_state *st, enum action a);
/* A character typed while the search prompt is open (UI_KEY_ESC closes it,
 * '\n' or '\r' searches, UI_KEY_DEL or UI_KEY_BS erases). */
enum ui_req scr_tree_prompt_key(struct ui_state *st, int ch);
/* Rows of the tree pane for a canvas of height h (layout). */
void scr_tree_layout(const struct ui_state *st, int w, int h, int *tree_y,
		     int *tree_h, int *detail_y, int *detail_h);

void scr_detail_draw(struct canvas *c, struct ui_state *st, int y,
		     int h);
/* One line per layer: which regions that layer serves, width columns. */
void scr_map_strip(struct canvas *c, const struct cmap *m, int layer, int y,
		   int x, int width);
/* The glyph of a map cell of kind k. */
const char *scr_map_glyph(const struct glyphs *gl, enum cmap_kind k);
/* The map's legend in w columns at (y, x): every kind of cell and what one
 * cell of a map drawn in cells cells stands for, then tail when it fits. */
void scr_map_legend(struct canvas *c, const struct cmap *m, int y, int x,
		    int w, long long cells, const char *tail);

void scr_text_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_text_key(struct ui_state *st, enum action a);
/* Role for a plan/info line (conflicts red, "no conflicts" green...). */
int scr_text_role(const char *line);

void scr_help_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_help_key(struct ui_state *st, enum action a);
/* Lines of the help screen: guide (may be NULL) first, then every action
 * of the table and what the screens show (owned by caller). */
char *scr_help_text(const char *guide);

void scr_map_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_map_key(struct ui_state *st, enum action a);

void scr_progress_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_progress_key(struct ui_state *st, enum action a);

void scr_lesson_draw(struct canvas *c, struct ui_state *st);
enum ui_req scr_lesson_key(struct ui_state *st, enum action a);
/* Draw line l wrapped to the canvas width from row y (rows >= ymax are
 * not drawn); returns the rows it takes. */
int scr_wrap_line(struct canvas *c, const char *l, int role, int y, int ymax);

void scr_small_draw(struct canvas *c, const struct ui_state *st);

/* Draw the screen st->scr (the editor's one entry point). */
void ui_draw(struct canvas *c, struct ui_state *st);
/* Route an action to the screen st->scr. */
enum ui_req ui_key(struct ui_state *st, enum action a);

#endif
