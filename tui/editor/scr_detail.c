/* scr_detail.c - the detail pane under the tree: what the selected image
 * is, and a per-layer strip showing which layer of its chain serves each
 * region of the virtual disk. */
#include "ui.h"

#include "core/graph/marks.h"
#include "core/out/emit.h"

#include <string.h>

const char *scr_map_glyph(const struct glyphs *gl, enum cmap_kind k)
{
	switch (k) {
	case CK_DATA: return gl->full;
	case CK_PART: return gl->part;
	case CK_ZERO: return gl->zero;
	case CK_COMPRESSED: return gl->comp;
	default: return gl->empty;
	}
}

void scr_map_strip(struct canvas *c, const struct cmap *m, int layer, int y,
		   int x, int width)
{
	for (int col = 0; col < width; col++) {
		int r0 = (int)((long long)col * m->nregions / width);
		int r1 = (int)((long long)(col + 1) * m->nregions / width);
		enum cmap_kind k = cmap_cell(m, layer, r0, r1, NULL);
		canvas_put(c, y, x + col, 1, k == CK_NONE ? R_DIM :
			   R_LAYER0 + layer % 6, scr_map_glyph(c->gl, k));
	}
}

void scr_map_legend(struct canvas *c, const struct cmap *m, int y, int x,
		    int w, long long cells, const char *tail)
{
	const struct glyphs *g = c->gl;
	char sz[16], t[3][300];
	emit_size(cmap_cell_bytes(m, cells), sz, sizeof(sz));
	snprintf(t[0], sizeof(t[0]), "%s data  %s compressed  %s partly data  "
		 "%s zero  %s not here  1 cell = %s%s%s", g->full, g->comp,
		 g->part, g->zero, g->empty, sz, *tail ? "  " : "", tail);
	snprintf(t[1], sizeof(t[1]), "%s data %s compressed %s part %s zero "
		 "%s not here  cell %s", g->full, g->comp, g->part, g->zero,
		 g->empty, sz);
	snprintf(t[2], sizeof(t[2]), "%sdata %scomp %spart %szero %snone "
		 "%s/cell", g->full, g->comp, g->part, g->zero, g->empty, sz);
	int i = 0;
	while (i < 2 && canvas_strwidth(c, t[i]) > w)
		i++;
	canvas_put(c, y, x, w, R_DIM, t[i]);
}

static const char *fmt_flags(const struct gnode *n, char *buf, size_t len)
{
	buf[0] = 0;
	struct { unsigned f; const char *s; } t[] = {
		{ GN_IN_USE, "in use" }, { GN_OUTSIDE, "outside pool" },
		{ GN_EXTERNAL, "external name" }, { GN_PROBED, "format probed" },
		{ GN_UNSAFE_PROBE, "probed as non-raw: backing not followed" },
		{ GN_RDONLY_FILE, "read-only file" }, { GN_LOOP, "backing loop" },
		{ GN_MISSING, "missing" },
		{ GN_UNVERIFIED, "unverified reader: what it reads is unknown" },
		{ GN_STATED, "format stated by --format" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (n->flags & t[i].f) {
			size_t o = strlen(buf);
			snprintf(buf + o, len - o, "%s%s", o ? ", " : "", t[i].s);
		}
	return buf;
}

/* Why the node is stale, unused or in an unfinished relink (the marks
 * earlier transactions left, core/graph/marks.h).  Returns the next row. */
static int detail_marks(struct canvas *c, const struct ui_state *st, int id,
			int row, int end)
{
	const struct graph *g = st->g;
	const struct graph_marks *m = g->marks;
	char tm[40];
	for (int i = 0; m && i < m->nstale && row < end; i++) {
		const struct gmark_stale *s = &m->stale[i];
		if (s->node != id)
			continue;
		marks_when(s->created, tm, sizeof(tm));
		if (s->unused)
			canvas_printf(c, row++, 1, -1, R_WARN, "unused: its "
				      "data was committed into %s (%s); nothing "
				      "reads it any more",
				      rows_label(&st->rows, s->base), tm);
		else
			canvas_printf(c, row++, 1, -1, R_WARN, "stale: %s under "
				      "it was committed into (%s%s); it no "
				      "longer shows what it showed",
				      rows_label(&st->rows, s->base), tm,
				      s->pending ?
				      ", relink not done" : "");
	}
	if (row < end && (g->nodes[id].flags & GN_JOURNAL))
		canvas_put(c, row++, 1, -1, R_ERROR, "in an unfinished relink: "
			   "J shows it and how to finish or roll it back");
	return row;
}

/* The node's facts from rows [row, end): what it is, its backing link,
 * its flags and its users.  Returns the next free row. */
static int detail_facts(struct canvas *c, const struct ui_state *st, int id,
			int row, int end)
{
	const struct graph *g = st->g;
	const struct gnode *n = &g->nodes[id];
	char a[16], b[16], cl[16], fl[256], ver[16] = "";
	/* Only formats with versions (qcow2) name one: "raw", not "raw0". */
	if (n->info.version)
		snprintf(ver, sizeof(ver), " v%d", n->info.version);
	if (row < end) {
		if (n->flags & (GN_ERROR | GN_EXTERNAL) && n->error)
			canvas_put(c, row++, 1, -1, R_ERROR, n->error);
		else if (n->flags & GN_EXTERNAL)
			canvas_put(c, row++, 1, -1, R_WARN,
				   "external (protocol/json) name: not opened");
		else
			canvas_printf(c, row++, 1, -1, R_NORMAL,
				      "%s%s, %s virtual, %s allocated%s%s, "
				      "%d overlay%s",
				      n->format ? n->format : "?", ver,
				      emit_size(n->info.virtual_size, a, sizeof(a)),
				      emit_size(n->info.actual_size, b, sizeof(b)),
				      n->info.cluster_size ? ", cluster " : "",
				      n->info.cluster_size ?
				      emit_size(n->info.cluster_size, cl,
					      sizeof(cl)) : "",
				      n->nchildren,
				      n->nchildren == 1 ? "" : "s");
	}
	if (row < end) {
		const char *lf = n->backing_name ? graph_link_fmt(g, n->id)
						 : NULL;

		if (n->backing_name)
			canvas_printf(c, row++, 1, -1, R_NORMAL,
				      "backing: %s (%s%s)%s", n->backing_name,
				      lf ? lf : "format not recorded",
				      lf && !n->backing_fmt ? ", stated" : "",
				      n->backing < 0 ? " - not resolved" : "");
		else
			canvas_put(c, row++, 1, -1, R_DIM,
				   "no backing file (a root)");
	}
	fmt_flags(n, fl, sizeof(fl));
	if (row < end && (fl[0] || n->info.dirty || n->info.corrupt)) {
		canvas_printf(c, row++, 1, -1, R_WARN, "%s%s%s", fl,
			      n->info.dirty ? (fl[0] ? ", dirty" : "dirty") : "",
			      n->info.corrupt ? ", corrupt" : "");
	}
	row = detail_marks(c, st, id, row, end);
	for (int u = 0; u < g->nusers && row < end; u++)
		if (g->users[u].node == id)
			canvas_printf(c, row++, 1, -1, R_WARN, "user: %s (%s)",
				      g->users[u].name,
				      g->users[u].user_kind ?
				      g->users[u].user_kind : "?");
	return row;
}

/* Cluster strips in rows [row, end): one line per layer, top first, from
 * layer *top on, and the legend pinned to the last row so that more layers
 * than rows scroll the strips ([ ]) instead of pushing the legend away.
 * *top is clamped; *shown gets the number of strips drawn. */
static void detail_strips(struct canvas *c, const struct cmap *m, int id,
			  int row, int end, int *top, int *shown)
{
	*shown = 0;
	if (row >= end)
		return;
	if (!m || m->node != id) {
		canvas_put(c, row, 1, -1, R_DIM, "cluster map: computing...");
		return;
	}
	if (m->error[0]) {
		canvas_printf(c, row, 1, -1, R_DIM, "cluster map: %s", m->error);
		return;
	}
	int label_w = c->w / 4;
	if (label_w > 24)
		label_w = 24;
	int sx = label_w + 2, sw = c->w - sx - 1;
	int layers = m->nlayers;
	int rows = end - row > 1 ? end - row - 1 : 1;
	if (*top > layers - rows)
		*top = layers - rows;
	if (*top < 0)
		*top = 0;
	for (int l = *top; l < layers && row < end; l++, row++) {
		if (row == end - 1 && end - row == 1 && *shown)
			break;
		canvas_printf(c, row, 1, label_w, R_LAYER0 + l % 6, "%c %s",
			      l < 26 ? 'A' + l : '*', m->names[l]);
		scr_map_strip(c, m, l, row, sx, sw);
		(*shown)++;
	}
	if (row < end)
		scr_map_legend(c, m, end - 1, 1, c->w - 2, sw,
			       m->partial ? "[partial] m: map" : "m: map");
}

void scr_detail_draw(struct canvas *c, struct ui_state *st, int y,
		     int h)
{
	const struct graph *g = st->g;
	int id = rows_selected(&st->rows);
	canvas_fill(c, y, 0, c->w, R_HEADER, c->gl->hline);
	if (!g || id < 0) {
		canvas_put(c, y, 2, -1, R_HEADER, " detail ");
		return;
	}
	const struct gnode *n = &g->nodes[id];
	int row = detail_facts(c, st, id, y + 1, y + h);
	int top = st->strip_top, shown = 0;
	detail_strips(c, st->map, id, row, y + h, &top, &shown);
	st->strip_top = top;       /* clamped to the layers that fit */
	char more[64] = "";
	const struct cmap *m = st->map;
	if (m && m->node == id && shown && shown < m->nlayers)
		snprintf(more, sizeof(more), " layers %c-%c of %d, [ ] scroll ",
			 top < 26 ? 'A' + top : '*',
			 top + shown - 1 < 26 ? 'A' + top + shown - 1 : '*',
			 m->nlayers);
	int mw = canvas_strwidth(c, more);
	canvas_printf(c, y, 2, c->w - 4 - mw, R_HEADER, " %s ",
		      n->path ? n->path : "?");
	if (mw)
		canvas_put(c, y, c->w - 1 - mw, mw, R_HEADER, more);
}
