/* scr_detail.c - the detail pane under the tree: what the selected image
 * is, and a per-layer strip showing which layer of its chain serves each
 * region of the virtual disk. */
#include "ui.h"

#include "core/out/emit.h"

#include <string.h>

void scr_map_strip(struct canvas *c, const struct cmap *m, int layer, int y,
		   int x, int width)
{
	const struct glyphs *gl = c->gl;
	for (int col = 0; col < width; col++) {
		int r0 = (int)((long long)col * m->nregions / width);
		int r1 = (int)((long long)(col + 1) * m->nregions / width);
		if (r1 <= r0)
			r1 = r0 + 1;
		float s = 0, z = 0;
		for (int i = r0; i < r1 && i < m->nregions; i++) {
			s += m->share[(size_t)layer * m->nregions + i];
			z += m->zshare[(size_t)layer * m->nregions + i];
		}
		s /= (float)(r1 - r0);
		z /= (float)(r1 - r0);
		int role = R_LAYER0 + layer % 6;
		const char *g;
		if (s <= 0.0f) {
			g = gl->empty;
			role = R_DIM;
		} else if (z * 2 > s) {
			g = gl->zero;
		} else if (s >= 0.999f) {
			g = gl->full;
		} else {
			g = gl->part;
		}
		canvas_put(c, y, x + col, 1, role, g);
	}
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
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (n->flags & t[i].f) {
			size_t o = strlen(buf);
			snprintf(buf + o, len - o, "%s%s", o ? ", " : "", t[i].s);
		}
	return buf;
}

/* The node's facts from rows [row, end): what it is, its backing link,
 * its flags and its users.  Returns the next free row. */
static int detail_facts(struct canvas *c, const struct graph *g, int id,
			int row, int end)
{
	const struct gnode *n = &g->nodes[id];
	char a[16], b[16], cl[16], fl[256];
	if (row < end) {
		if (n->flags & (GN_ERROR | GN_EXTERNAL) && n->error)
			canvas_put(c, row++, 1, -1, R_ERROR, n->error);
		else if (n->flags & GN_EXTERNAL)
			canvas_put(c, row++, 1, -1, R_WARN,
				   "external (protocol/json) name: not opened");
		else
			canvas_printf(c, row++, 1, -1, R_NORMAL,
				      "%s%s%d, %s virtual, %s allocated%s%s, "
				      "%d overlay%s",
				      n->format ? n->format : "?",
				      n->info.version ? " v" : "",
				      n->info.version,
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
		if (n->backing_name)
			canvas_printf(c, row++, 1, -1, R_NORMAL,
				      "backing: %s (%s)%s", n->backing_name,
				      n->backing_fmt ? n->backing_fmt
						     : "format not recorded",
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
	for (int u = 0; u < g->nusers && row < end; u++)
		if (g->users[u].node == id)
			canvas_printf(c, row++, 1, -1, R_WARN, "user: %s (%s)",
				      g->users[u].name,
				      g->users[u].user_kind ?
				      g->users[u].user_kind : "?");
	return row;
}

/* Cluster strips in rows [row, end): one line per layer, top first, and
 * a legend when there is room. */
static void detail_strips(struct canvas *c, const struct cmap *m, int id,
			  int row, int end)
{
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
	bool legend = end - row > layers + 1;
	for (int l = 0; l < layers && row < end; l++, row++) {
		if (row == end - 1 && l < layers - 1) {
			canvas_printf(c, row, 1, -1, R_DIM,
				      "... %d more layer%s (m: full map)",
				      layers - l, layers - l == 1 ? "" : "s");
			return;
		}
		canvas_printf(c, row, 1, label_w, R_LAYER0 + l % 6, "%c %s",
			      l < 26 ? 'A' + l : '*', m->names[l]);
		scr_map_strip(c, m, l, row, sx, sw);
	}
	if (legend && row < end)
		canvas_printf(c, row, 1, -1, R_DIM,
			      "%s data  %s zero  %s not served here%s  (m: map)",
			      c->gl->full, c->gl->zero, c->gl->empty,
			      m->partial ? "  [partial]" : "");
}

void scr_detail_draw(struct canvas *c, const struct ui_state *st, int y,
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
	canvas_printf(c, y, 2, c->w - 4, R_HEADER, " %s ",
		      n->path ? n->path : "?");
	int row = detail_facts(c, g, id, y + 1, y + h);
	detail_strips(c, st->map, id, row, y + h);
}
