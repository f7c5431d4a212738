/* canvas.h - a cell grid the editor's screens draw into.
 *
 * Screens are pure functions of a view-model: they write text into a
 * struct canvas (one UTF-8 glyph + one role per cell) and never call curses.
 * theme.c blits a canvas to the terminal; unit tests read it back as
 * text with canvas_line().  Every glyph occupies exactly one column: wide
 * or non-printable characters in file names are drawn as '?'.
 *
 * Ownership: canvas_init allocates the cells, canvas_free releases them.
 * The struct itself belongs to the caller (stack or static).
 */
#ifndef IMGRAPH_CANVAS_H
#define IMGRAPH_CANVAS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What a cell means; theme.c maps roles to colours or, without colour,
 * to reverse/bold/underline so state never depends on colour alone. */
enum ui_role {
	R_NORMAL = 0,
	R_TITLE,        /* title bar */
	R_BAR,          /* function bar text */
	R_BAR_KEY,      /* function bar key label */
	R_SEL,          /* selected row */
	R_HEADER,       /* column headers, pane separators */
	R_TOP,          /* [T] marker */
	R_BASE,         /* [B] marker */
	R_ERROR,        /* errors, conflicts */
	R_WARN,         /* warnings, outside pool */
	R_OK,           /* "no conflicts", success */
	R_DIM,          /* secondary text */
	R_PROGRESS,     /* filled part of a progress bar */
	R_DIALOG,       /* dialog box body */
	R_LAYER0,       /* map: layer depth 0..5 (cycled) */
	R_LAYER1, R_LAYER2, R_LAYER3, R_LAYER4, R_LAYER5,
	R_NROLES
};

struct cell {
	char ch[5];               /* one UTF-8 glyph, NUL-terminated */
	unsigned char role;       /* enum ui_role */
};

/* Line-drawing and bar glyphs; one table for UTF-8, one for ASCII
 * (curses' ACS line drawing is avoided: some terminals, PuTTY among
 * them, draw it as letters). */
struct glyphs {
	const char *vert, *tee, *corner, *horiz;   /* tree lines */
	const char *full, *part, *zero, *empty;    /* map cells */
	const char *comp;                          /* compressed data cell */
	const char *bar_full, *bar_empty;          /* progress bar */
	const char *hline;                         /* separators */
	const char *box_tl, *box_tr, *box_bl, *box_br, *box_v;
};
extern const struct glyphs glyphs_utf8, glyphs_ascii;

struct canvas {
	int w, h;
	struct cell *cells;       /* h rows of w cells, owned */
	bool utf8;                /* locale codeset is UTF-8 */
	const struct glyphs *gl;  /* borrowed, static */
};

/* 0 or -ENOMEM.  utf8 picks the glyph table and how names are decoded. */
int canvas_init(struct canvas *c, int w, int h, bool utf8);
void canvas_free(struct canvas *c);
/* Resize keeping nothing; 0 or -ENOMEM (the old grid stays on failure). */
int canvas_resize(struct canvas *c, int w, int h);
void canvas_clear(struct canvas *c);

/* Write s at (y, x), at most maxw columns (maxw < 0: to the right edge).
 * Control characters and bytes that are not UTF-8 are drawn escaped as
 * esc_ctl (core/out/esc.h) writes them, never sent to the terminal.
 * Returns the columns written.  Out-of-range writes are clipped. */
int canvas_put(struct canvas *c, int y, int x, int maxw, int role,
	       const char *s);
/* canvas_put, but a string too wide is cut at the end of a word and ends
 * in an ellipsis ("..." on an ASCII canvas), so no word is cut in half. */
int canvas_put_fit(struct canvas *c, int y, int x, int maxw, int role,
		   const char *s);
int canvas_printf(struct canvas *c, int y, int x, int maxw, int role,
		  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Fill w cells with the glyph g (a string of one glyph). */
void canvas_fill(struct canvas *c, int y, int x, int w, int role,
		 const char *g);
/* Change the role of w cells without touching their glyphs. */
void canvas_role(struct canvas *c, int y, int x, int w, int role);
/* Draw a box with a title; the inside is cleared to role. */
void canvas_box(struct canvas *c, int y, int x, int h, int w, int role,
		const char *title);

/* Columns a string takes when drawn (same decoding as canvas_put). */
int canvas_strwidth(const struct canvas *c, const char *s);

/* Pointer just past the glyphs of s that fit in cols columns (at least
 * one when cols > 0), or to its end. */
const char *canvas_skip(const struct canvas *c, const char *s, int cols);

/* Text of row y into buf (UTF-8, trailing spaces trimmed). */
char *canvas_line(const struct canvas *c, int y, char *buf, size_t len);
/* All rows, one per line. */
void canvas_dump(const struct canvas *c, FILE *f);
/* True when some row contains needle. */
bool canvas_contains(const struct canvas *c, const char *needle);

#endif
