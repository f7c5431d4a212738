/* scr_map.c - the full cluster map of one image: the virtual disk as a
 * grid of regions, each showing which layer of the chain serves it.
 * Layers are lettered A (the image itself), B (its backing file), ...;
 * an upper-case letter is data, lower-case a zero cluster/range, and the
 * empty glyph a region no layer allocates (reads as zeros). */
#include "ui.h"

#include "core/out/emit.h"

#include <string.h>

static char layer_letter(int l, bool zero)
{
	static const char up[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char ch = l < 26 ? up[l] : '*';
	return zero && ch != '*' ? (char)(ch - 'A' + 'a') : ch;
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
	/* Legend: letters and layer names, wrapped. */
	int y = 1, x = 1;
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
			y++;
			x = 1;
		}
		if (y >= c->h - 3)
			break;
		canvas_put(c, y, x, -1, l < m->nlayers ? R_LAYER0 + l % 6 :
			   R_DIM, item);
		x += w + 3;
	}
	y++;
	canvas_printf(c, y++, 1, -1, R_DIM,
		      "upper case: data, lower case: zero cluster%s",
		      m->partial ? "   [partial: too many extents]" : "");
	int label_w = 10;
	int gx = label_w + 1, gw = c->w - gx - 1;
	int gh = c->h - 2 - y;
	if (gw < 1 || gh < 1)
		return;
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
			bool zero;
			float frac;
			int l = cmap_dominant(m, r0, r1, &zero, &frac);
			if (l >= m->nlayers) {
				canvas_put(c, y + r, gx + col, 1, R_DIM,
					   c->gl->empty);
			} else {
				char s[2] = { layer_letter(l, zero), 0 };
				canvas_put(c, y + r, gx + col, 1,
					   R_LAYER0 + l % 6, s);
			}
		}
	}
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
	case ACT_HELP:
		st->prev_scr = st->scr;
		st->scr = SCR_HELP;
		return REQ_NONE;
	case ACT_REDRAW:
		return REQ_REDRAW;
	default:
		return REQ_NONE;
	}
}
