/* scr_lesson.c - the teaching view: the plan's commit one stage at a time
 * (core/plan/plan_lesson.h, built from the plan object itself).  Each
 * stage shows the layers above base as strips of the virtual disk (the one
 * the stage copies from lit), what base has received so far, and in plain
 * words what happens: which clusters move from which image, which header
 * is rewritten, what a parent reads before and after. */
#include "ui.h"

#include "core/out/emit.h"

#include <string.h>

/* One strip of PLAN_MAP_CELLS cells scaled to width columns: full where
 * the cells are wholly given, partly, or empty. */
static void cells_strip(struct canvas *c, const float *cells, int y, int x,
			int width, int role)
{
	for (int col = 0; col < width; col++) {
		int a = col * PLAN_MAP_CELLS / width;
		int b = (col + 1) * PLAN_MAP_CELLS / width;
		if (b <= a)
			b = a + 1;
		float s = 0;
		for (int k = a; k < b && k < PLAN_MAP_CELLS; k++)
			s += cells[k];
		s /= (float)(b - a);
		enum cmap_kind kd = s <= 0.0f ? CK_NONE :
				    s >= 0.999f ? CK_DATA : CK_PART;
		canvas_put(c, y, x + col, 1, kd == CK_NONE ? R_DIM : role,
			   scr_map_glyph(c->gl, kd));
	}
}

/* Copy stages done up to and including stage cur (what base holds). */
static bool layer_done(const struct plan_lesson *l, int layer, int cur)
{
	for (int i = 0; i <= cur && i < l->n; i++)
		if (l->st[i].kind == LESSON_COPY && l->st[i].layer == layer)
			return true;
	return false;
}

/* The strips: each layer above base (the current stage's lit), then base
 * with what it has received by the end of this stage.  Returns the next
 * free row. */
static int draw_strips(struct canvas *c, const struct plan_lesson *l,
		       const struct lesson_stage *s, int cur, int y, int ymax)
{
	if (!l->cells) {
		canvas_put(c, y++, 2, -1, R_DIM, "(no per-layer map: the "
			   "plan could not count the bytes)");
		return y;
	}
	int lw = c->w / 4 > 24 ? 24 : c->w / 4;
	int sx = lw + 3, sw = c->w - sx - 1;
	for (int i = 0; i < l->nlayers && y < ymax - 1; i++, y++) {
		bool lit = s->kind == LESSON_COPY && s->layer == i;
		int role = lit ? R_LAYER0 + i % 6 : R_DIM;
		canvas_printf(c, y, 1, lw + 1, lit ? R_SEL : R_NORMAL, "%s%s",
			      lit ? ">" : " ", l->layer_names[i]);
		cells_strip(c, l->cells + (size_t)i * PLAN_MAP_CELLS, y, sx,
			    sw, role);
	}
	/* Base: the union of what the copy stages so far gave it. */
	float acc[PLAN_MAP_CELLS] = { 0 };
	bool any = false;
	for (int i = 0; i < l->nlayers; i++) {
		if (!layer_done(l, i, cur))
			continue;
		any = true;
		for (int k = 0; k < PLAN_MAP_CELLS; k++)
			acc[k] += l->cells[(size_t)i * PLAN_MAP_CELLS + k];
	}
	canvas_printf(c, y, 1, lw + 1, R_BASE, " %s gets", l->base_name);
	if (any)
		cells_strip(c, acc, y, sx, sw, R_BASE);
	else
		canvas_put(c, y, sx, sw, R_DIM, "nothing written yet");
	return y + 1;
}

void scr_lesson_draw(struct canvas *c, struct ui_state *st)
{
	const struct plan_lesson *l = st->lesson;
	char t[400];
	if (!l) {
		scr_frame_draw(c, st, " Teaching view");
		canvas_put(c, 2, 2, -1, R_DIM, "no plan");
		return;
	}
	if (st->lesson_cur >= l->n)
		st->lesson_cur = l->n - 1;
	if (st->lesson_cur < 0)
		st->lesson_cur = 0;
	const struct lesson_stage *s = &l->st[st->lesson_cur];
	snprintf(t, sizeof(t), " Teaching view: stage %d of %d%s%s%s",
		 st->lesson_cur + 1, l->n, s->phase ? " (phase " : "",
		 s->phase ? s->phase : "", s->phase ? ")" : "");
	scr_frame_draw(c, st, t);
	static const char *const q[] = {
		"Right n Enter", "Next", "Left N", "Back a stage", "Esc", "Plan",
	};
	scr_bar_draw(c, c->h - 1, q, 6);
	int y = 2, ymax = c->h - 2;
	canvas_put(c, y++, 1, c->w - 2, R_HEADER, s->title);
	y++;
	y = draw_strips(c, l, s, st->lesson_cur, y, ymax);
	y++;
	for (int i = 0; i < s->nlines && y < ymax; i++)
		y += scr_wrap_line(c, s->lines[i], R_NORMAL, y, ymax);
}

enum ui_req scr_lesson_key(struct ui_state *st, enum action a)
{
	int n = st->lesson ? st->lesson->n : 0;
	switch (a) {
	case ACT_EXPAND:
	case ACT_NEXT:
	case ACT_TOGGLE:
	case ACT_DOWN:
	case ACT_PGDN:
		if (st->lesson_cur < n - 1)
			st->lesson_cur++;
		return REQ_NONE;
	case ACT_COLLAPSE:
	case ACT_PREV:
	case ACT_UP:
	case ACT_PGUP:
		if (st->lesson_cur > 0)
			st->lesson_cur--;
		return REQ_NONE;
	case ACT_HOME:
		st->lesson_cur = 0;
		return REQ_NONE;
	case ACT_END:
		st->lesson_cur = n - 1;
		return REQ_NONE;
	case ACT_CANCEL:
	case ACT_QUIT:
	case ACT_LESSON:
		st->scr = SCR_TEXT;
		return REQ_NONE;
	default:
		return scr_common_key(st, a);
	}
}
