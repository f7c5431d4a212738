/* scr_map.c - the full cluster map of one image: the virtual disk as a
 * grid of regions, each showing which layer of the chain serves it.
 * Layers are lettered A (the image itself), B (its backing file), ...;
 * an upper-case letter is data, lower-case a zero cluster/range, the
 * compressed glyph compressed data (in its layer's colour), and the empty
 * glyph a region no layer allocates (reads as zeros).  The legend says all
 * of that and the size of one cell, and always stays on screen. */
#include "ui.h"

#include "core/out/emit.h"

#include <string.h>

static char layer_letter(int l, bool zero)
{
	static const char up[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char ch = l < 26 ? up[l] : '*';
	return zero && ch != '*' ? (char)(ch - 'A' + 'a') : ch;
}

/* Legend: letters and layer names, wrapped, then the kinds of cell and the
 * cell size; at most half the screen, so the grid always shows.  Returns
 * the first row of the grid. */
static int map_legend(struct canvas *c, const struct cmap *m, int gw)
{
	int y = 1, x = 1, maxy = 1 + (c->h - 3) / 2 - 2;
	for (int l = 0; l <= m->nlayers; l++) {
		char item[300];
		if (l < m->nlayers)
			snprintf(item, sizeof(item), "%c/%c %s", layer_letter(l, 0),
				 layer_letter(l, 1), m->names[l]);
		else
			snprintf(item, sizeof(item), "%s no layer (reads zeros)",
				 c->gl->empty);
		int w = canvas_strwidth(c, item);
		if (x > 1 && x + w >= c->w) {
			if (y >= maxy) {
				canvas_put(c, y, c->w - 4, 3, R_DIM, "...");
				break;
			}
			y++;
			x = 1;
		}
		canvas_put(c, y, x, -1, l < m->nlayers ? R_LAYER0 + l % 6 :
			   R_DIM, item);
		x += w + 3;
	}
	y++;
	char sz[16], t[300];
	emit_size(cmap_cell_bytes(m, (long long)gw * (c->h - 3 - y)), sz,
		  sizeof(sz));
	const char *pt = m->partial ? "  [partial: too many extents]" : "";
	snprintf(t, sizeof(t), "upper case: data, lower case: zero clusters, "
		 "%s compressed, 1 cell = %s%s", c->gl->comp, sz, pt);
	if (canvas_strwidth(c, t) > c->w - 2)
		snprintf(t, sizeof(t), "upper case data, lower case zero, %s "
			 "compressed, 1 cell = %s%s", c->gl->comp, sz, pt);
	if (canvas_strwidth(c, t) > c->w - 2)
		snprintf(t, sizeof(t), "A data a zero %s compressed 1 cell=%s%s",
			 c->gl->comp, sz, m->partial ? " [partial]" : "");
	canvas_put(c, y++, 1, c->w - 2, R_DIM, t);
	return y;
}

/* Rows [y, y+gh) of the grid: each cell shows the layer serving most of
 * it (upper case data, lower case zeros, the compressed glyph). */
static void map_grid(struct canvas *c, const struct cmap *m, int y, int gx,
		     int gw, int gh, int label_w)
{
	char sz[16];
	long long cells = (long long)gw * gh;
	for (int r = 0; r < gh; r++) {
		long long first = (long long)r * gw;
		uint64_t off = (uint64_t)((double)m->vsize * (double)first /
					  (double)cells);
		canvas_printf(c, y + r, 0, label_w, R_DIM, "%9s",
			      emit_size(off, sz, sizeof(sz)));
		for (int col = 0; col < gw; col++) {
			long long cell = first + col;
			int r0 = (int)(cell * m->nregions / cells);
			int r1 = (int)((cell + 1) * m->nregions / cells);
			int l;
			enum cmap_kind k = cmap_cell(m, -1, r0, r1, &l);
			char s[2] = { layer_letter(l, k == CK_ZERO), 0 };
			if (k == CK_NONE)
				canvas_put(c, y + r, gx + col, 1, R_DIM,
					   c->gl->empty);
			else
				canvas_put(c, y + r, gx + col, 1,
					   R_LAYER0 + l % 6, k == CK_COMPRESSED ?
					   c->gl->comp : s);
		}
	}
}

void scr_map_draw(struct canvas *c, struct ui_state *st)
{
	const struct cmap *m = st->map;
	char sz[16], t[300];
	const char *name = m && m->nlayers ? m->names[0] : "?";
	snprintf(t, sizeof(t), " Cluster map: %s  (%s virtual, %d layer%s)",
		 name, m ? emit_size(m->vsize, sz, sizeof(sz)) : "?",
		 m ? m->nlayers : 0, m && m->nlayers == 1 ? "" : "s");
	scr_frame_draw(c, st, t);
	static const char *const q[] = { "Esc q m", "Back", "?", "Help" };
	scr_bar_draw(c, c->h - 1, q, 4);
	if (!m) {
		canvas_put(c, 2, 1, -1, R_DIM, "no map");
		return;
	}
	if (m->error[0]) {
		canvas_printf(c, 2, 1, -1, R_ERROR, "cluster map: %s", m->error);
		return;
	}
	int label_w = 10;
	int gx = label_w + 1, gw = c->w - gx - 1;
	int y = map_legend(c, m, gw);
	int gh = c->h - 2 - y;
	if (gw < 1 || gh < 1)
		return;
	map_grid(c, m, y, gx, gw, gh, label_w);
}

enum ui_req scr_map_key(struct ui_state *st, enum action a)
{
	switch (a) {
	case ACT_CANCEL:
	case ACT_QUIT:
	case ACT_MAP:
	case ACT_COLLAPSE:
		st->scr = SCR_TREE;
		return REQ_NONE;
	default:
		return scr_common_key(st, a);
	}
}
