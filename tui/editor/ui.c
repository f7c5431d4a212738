/* ui.c - implements ui.h: the action table as data, the view-model's life
 * cycle and status message, text views, cluster-map helpers, the frame
 * every screen shares (title, status line, function bar), and the dispatch
 * of drawing and keys to the screen shown. */
#include "ui.h"

#include "core/graph/marks.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const struct action_info ui_actions[ACT_COUNT] = {
#define ACTION(id, keys, help, bar, ...) [id] = { keys, help, bar },
#include "actions.def"
#undef ACTION
};

void ui_state_init(struct ui_state *st)
{
	memset(st, 0, sizeof(*st));
	st->mark_top = st->mark_base = -1;
	st->undo_top = st->undo_base = -1;
	st->rows.sel = -1;
	st->min_w = 60;
	st->min_h = 17;
	st->detail = true;
}

void ui_state_free(struct ui_state *st)
{
	rows_free(&st->rows);
	textview_free(&st->text);
	cmap_free(st->map);
	st->map = NULL;
	plan_lesson_free(st->lesson);
	st->lesson = NULL;
}

void ui_msg(struct ui_state *st, int role, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
	va_end(ap);
	st->msg_role = role;
}

void textview_free(struct textview *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->lines[i]);
	free(t->lines);
	t->lines = NULL;
	t->n = t->top = 0;
}

int textview_set(struct textview *t, const char *title, const char *text)
{
	textview_free(t);
	snprintf(t->title, sizeof(t->title), "%s", title ? title : "");
	if (!text)
		text = "";
	int cap = 16;
	t->lines = malloc(sizeof(char *) * (size_t)cap);
	if (!t->lines)
		return -1;
	const char *p = text;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (t->n == cap) {
			char **nl = realloc(t->lines, sizeof(char *) * (size_t)cap * 2);
			if (!nl)
				return -1;
			t->lines = nl;
			cap *= 2;
		}
		char *l = malloc(n + 1);
		if (!l)
			return -1;
		memcpy(l, p, n);
		l[n] = 0;
		/* Tabs would break the one-glyph-per-column grid. */
		for (char *q = l; *q; q++)
			if (*q == '\t')
				*q = ' ';
		t->lines[t->n++] = l;
		p += n;
		if (*p == '\n')
			p++;
	}
	return 0;
}

void cmap_free(struct cmap *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nlayers; i++)
		free(m->names[i]);
	free(m->names);
	free(m->share);
	free(m->zshare);
	free(m->cshare);
	free(m);
}

int cmap_dominant(const struct cmap *m, int r0, int r1, bool *zero,
		  float *frac)
{
	int best = m->nlayers;
	float bs = -1, bz = 0;
	if (r1 <= r0)
		r1 = r0 + 1;
	if (r1 > m->nregions)
		r1 = m->nregions;
	for (int l = 0; l <= m->nlayers; l++) {
		float s = 0, z = 0;
		for (int i = r0; i < r1; i++) {
			s += m->share[(size_t)l * m->nregions + i];
			z += m->zshare[(size_t)l * m->nregions + i];
		}
		if (s > bs) {
			bs = s;
			bz = z;
			best = l;
		}
	}
	int n = r1 - r0 > 0 ? r1 - r0 : 1;
	if (zero)
		*zero = bs > 0 && bz * 2 > bs;
	if (frac)
		*frac = bs / (float)n;
	return best;
}

enum cmap_kind cmap_cell(const struct cmap *m, int layer, int r0, int r1,
			 int *lout)
{
	if (r1 <= r0)
		r1 = r0 + 1;
	if (r1 > m->nregions)
		r1 = m->nregions;
	if (layer < 0)
		layer = cmap_dominant(m, r0, r1, NULL, NULL);
	if (lout)
		*lout = layer;
	if (layer >= m->nlayers)
		return CK_NONE;
	float s = 0, z = 0, k = 0;
	for (int i = r0; i < r1; i++) {
		size_t at = (size_t)layer * m->nregions + i;
		s += m->share[at];
		z += m->zshare[at];
		k += m->cshare ? m->cshare[at] : 0;
	}
	s /= (float)(r1 - r0 > 0 ? r1 - r0 : 1);
	z /= (float)(r1 - r0 > 0 ? r1 - r0 : 1);
	k /= (float)(r1 - r0 > 0 ? r1 - r0 : 1);
	if (s <= 0.0f)
		return CK_NONE;
	if (z * 2 > s)
		return CK_ZERO;
	if (k * 2 > s)
		return CK_COMPRESSED;
	return s >= 0.999f ? CK_DATA : CK_PART;
}

uint64_t cmap_cell_bytes(const struct cmap *m, long long cells)
{
	if (cells < 1)
		cells = 1;
	return (m->vsize + (uint64_t)cells - 1) / (uint64_t)cells;
}

void scr_bar_draw(struct canvas *c, int y, const char *const *pairs, int n)
{
	canvas_fill(c, y, 0, c->w, R_BAR, " ");
	int x = 0;
	for (int i = 0; i + 1 < n && x < c->w; i += 2) {
		x += canvas_put(c, y, x, -1, R_BAR_KEY, pairs[i]);
		x += canvas_put(c, y, x, -1, R_BAR, " ");
		x += canvas_put(c, y, x, -1, R_BAR, pairs[i + 1]);
		x += canvas_put(c, y, x, -1, R_BAR, "  ");
	}
}

enum ui_req scr_common_key(struct ui_state *st, enum action a)
{
	switch (a) {
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

const char *ui_hint(const struct ui_state *st, char *buf, size_t len)
{
	const struct graph *g = st->g;
	const char *t = st->mark_top >= 0 ? rows_label(&st->rows, st->mark_top)
					  : NULL;
	const char *b = st->mark_base >= 0 ?
			rows_label(&st->rows, st->mark_base) : NULL;
	if (!g)
		snprintf(buf, len, "R rescans, q quits");
	else if (!g->n)
		snprintf(buf, len, "No images here%s - R rescans, q quits",
			 st->pool_hint[0] ? st->pool_hint : "");
	else if (g->marks && g->marks->njournals)
		snprintf(buf, len, "An unfinished relink must be recovered "
			 "first: J shows it and what recovering does");
	else if (t && b)
		snprintf(buf, len, "Next: p previews %s into %s, c commits it, "
			 "u clears the marks", t, b);
	else if (t)
		snprintf(buf, len, "Next: p previews %s into its backing file, "
			 "or b marks another base below it", t);
	else if (b)
		snprintf(buf, len, "Next: select an image above %s and press "
			 "t to mark it top", b);
	else
		snprintf(buf, len, "%d image%s - select one and press t to mark "
			 "the top to commit; ? help, q quits", g->n,
			 g->n == 1 ? "" : "s");
	return buf;
}

void scr_frame_draw(struct canvas *c, const struct ui_state *st,
		    const char *title)
{
	canvas_fill(c, 0, 0, c->w, R_TITLE, " ");
	canvas_put(c, 0, 0, -1, R_TITLE, title);
	int y = c->h - 2;
	if (y < 1)
		return;
	canvas_fill(c, y, 0, c->w, R_NORMAL, " ");
	if (st->prompt) {
		int x = canvas_printf(c, y, 0, -1, R_NORMAL, "/%s",
				      st->prompt_buf);
		canvas_put(c, y, x, 1, R_SEL, " ");
		canvas_put(c, y, x + 2, -1, R_DIM,
			   "(Enter search, Esc cancel)");
	} else if (st->question) {
		/* the answer keys always show */
		int x = canvas_put_fit(c, y, 0, c->w - 6, R_WARN,
				       st->question);
		canvas_put(c, y, x, -1, R_WARN, " (y/N)");
	} else if (st->msg[0]) {
		canvas_put_fit(c, y, 0, -1, st->msg_role, st->msg);
	} else if (st->scr == SCR_TREE) {
		char h[600];
		canvas_put_fit(c, y, 0, -1, R_DIM, ui_hint(st, h, sizeof(h)));
	}
}

void scr_small_draw(struct canvas *c, const struct ui_state *st)
{
	canvas_clear(c);
	canvas_printf(c, 0, 0, -1, R_ERROR, "Terminal too small");
	canvas_printf(c, 1, 0, -1, R_NORMAL, "%dx%d, need %dx%d.",
		      c->w, c->h, st->min_w, st->min_h);
	canvas_put(c, 2, 0, -1, R_NORMAL, "Enlarge it, or press q to quit.");
}

void ui_draw(struct canvas *c, struct ui_state *st)
{
	canvas_clear(c);
	if (c->w < st->min_w || c->h < st->min_h) {
		scr_small_draw(c, st);
		return;
	}
	switch (st->scr) {
	case SCR_TREE: scr_tree_draw(c, st); break;
	case SCR_TEXT: scr_text_draw(c, st); break;
	case SCR_HELP: scr_help_draw(c, st); break;
	case SCR_MAP: scr_map_draw(c, st); break;
	case SCR_PROGRESS: scr_progress_draw(c, st); break;
	case SCR_SMALL: scr_small_draw(c, st); break;
	case SCR_LESSON: scr_lesson_draw(c, st); break;
	}
}

enum ui_req ui_key(struct ui_state *st, enum action a)
{
	if (a != ACT_NONE)
		st->msg[0] = 0;
	switch (st->scr) {
	case SCR_TREE: return scr_tree_key(st, a);
	case SCR_TEXT: return scr_text_key(st, a);
	case SCR_HELP: return scr_help_key(st, a);
	case SCR_MAP: return scr_map_key(st, a);
	case SCR_PROGRESS: return scr_progress_key(st, a);
	case SCR_SMALL: return a == ACT_QUIT ? REQ_QUIT : REQ_NONE;
	case SCR_LESSON: return scr_lesson_key(st, a);
	}
	return REQ_NONE;
}
