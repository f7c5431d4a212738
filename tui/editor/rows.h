/* rows.h - the tree view-model: the pool forest flattened into the rows
 * the tree pane shows, with expand/collapse, selection, scroll and search
 * (ncdu's dirlist, tig's line array).  The graph itself is never changed:
 * ordering (by name) and visibility live here.
 *
 * Ownership: rows_init borrows the graph (it must outlive the rows or be
 * replaced with another rows_init) and allocates arrays freed by rows_free.
 * Callers read the fields but change them only through these functions.
 */
#ifndef IMGRAPH_ROWS_H
#define IMGRAPH_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/graph/graph.h"

struct rows {
	const struct graph *g;     /* borrowed */
	int n;                     /* nodes (g->n) */
	/* Display name per node: the graph's name without the directory all
	 * pool images share (borrowed pointers into the graph's strings). */
	const char **label;
	int *parent;               /* display parent per node, -1 for roots */
	int *depth;                /* display depth per node */
	int *kid_off, *nkids;      /* sorted children: kids[kid_off[i] ...] */
	int *kids;
	unsigned char *expanded;   /* per node */
	unsigned char *last;       /* per node: last among its siblings */
	int *order;                /* every node in display (DFS) order */
	int norder;
	int *row;                  /* visible rows: node ids */
	int nrows;
	int sel;                   /* selected row index, -1 when empty */
	int top;                   /* first row shown */
	int height;                /* rows the pane can show (>= 1) */
	/* The title's counts, taken once here: a graph does not change
	 * after its scan, and counting 100,000 nodes per redraw would take
	 * most of a frame. */
	int nroots, nin_use, nerrors, noutside;
	/* Columns the widest node needs in the tree screen (guide, name and
	 * marks), per canvas mode (ASCII, UTF-8): measured there on first
	 * draw, 0 until then. */
	int name_need[2];
};

/* Build from g with every node expanded and row 0 selected; 0 / -ENOMEM. */
int rows_init(struct rows *r, const struct graph *g);
void rows_free(struct rows *r);

/* Display name of node id ("?" when out of range). */
const char *rows_label(const struct rows *r, int id);

/* Selected node id, or -1. */
int rows_selected(const struct rows *r);
/* Pane height; the scroll position is adjusted to keep the selection in
 * view. */
void rows_set_height(struct rows *r, int h);
/* Move by delta rows (clamped). */
void rows_move(struct rows *r, int delta);
void rows_page(struct rows *r, int pages);
void rows_home(struct rows *r);
void rows_end(struct rows *r);
/* Select row index (clamped), e.g. from a mouse click. */
void rows_select_row(struct rows *r, int idx);
/* Select node, expanding its ancestors; false when id is out of range. */
bool rows_select_node(struct rows *r, int node);

/* Collapse the selected subtree; when it is already collapsed (or a leaf)
 * select its display parent instead.  Returns true when something changed. */
bool rows_collapse(struct rows *r);
/* Expand the selected subtree; true when it changed. */
bool rows_expand(struct rows *r);
/* Expand when collapsed, collapse when expanded. */
bool rows_toggle(struct rows *r);
/* Set node's expanded flag (e.g. restoring a view after a rescan), keeping
 * the selected node (or its nearest visible ancestor) selected. */
void rows_set_expanded(struct rows *r, int node, bool on);

/* Find the next (dir > 0) or previous (dir < 0) node, in display order and
 * wrapping, whose name contains pat (case-insensitive), starting after the
 * selection; select it (expanding ancestors).  Returns its id or -1. */
int rows_search(struct rows *r, const char *pat, int dir);

/* Tree guide for row idx ("│ ├─" style) into buf using the given glyphs
 * (vert, tee, corner, horiz); at most maxw columns, two per level.  A row
 * deeper than that starts with its depth number ("<11 ") standing for the
 * outer levels, then its innermost levels; such rows go in windows of a
 * few depths drawn from the same level, so guides stay aligned within a
 * window and the depth is never lost. */
const char *rows_guide(const struct rows *r, int idx, const char *vert,
		       const char *tee, const char *corner, const char *horiz,
		       int maxw, char *buf, size_t len);

#endif
