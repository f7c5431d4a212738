/* scr_progress.c - a running commit: overall and phase bars, bytes, rate
 * and ETA, with the names of the phases seen so far. */
#include "ui.h"

#include "core/out/emit.h"

#include <string.h>

static void hms(double s, char *buf, size_t len)
{
	if (s < 0 || s > 99 * 3600.0) {
		snprintf(buf, len, "--:--");
		return;
	}
	unsigned t = (unsigned)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%u:%02u", t / 60, t % 60);
}

/* "[#####-----]  45.2%" in width columns. */
static void bar(struct canvas *c, int y, int x, int width, uint64_t done,
		uint64_t total)
{
	double f = total ? (double)done / (double)total : 0;
	if (f > 1)
		f = 1;
	int bw = width - 9;
	if (bw < 4)
		bw = 4;
	int fill = (int)(f * bw + 0.5);
	canvas_put(c, y, x, 1, R_NORMAL, "[");
	canvas_fill(c, y, x + 1, fill, R_PROGRESS, c->gl->bar_full);
	canvas_fill(c, y, x + 1 + fill, bw - fill, R_DIM, c->gl->bar_empty);
	canvas_put(c, y, x + 1 + bw, 1, R_NORMAL, "]");
	canvas_printf(c, y, x + bw + 3, -1, R_NORMAL, "%5.1f%%", f * 100);
}

void scr_progress_draw(struct canvas *c, struct ui_state *st)
{
	const struct prog_view *p = &st->prog;
	char t[300], a[16], b[16], r[16], el[16], eta[16];
	snprintf(t, sizeof(t), " %s", p->title);
	scr_frame_draw(c, st, t);
	static const char *const q[] = { "Esc q", "Cancel (asks)" };
	scr_bar_draw(c, c->h - 1, q, 2);

	int x = 2, w = c->w - 4, y = 2;
	canvas_put(c, y, x, -1, R_HEADER, "Phases:");
	int px = x + 8;
	for (int i = 0; i < p->nphases; i++) {
		bool cur = i == p->nphases - 1;
		px += canvas_printf(c, y, px, -1, cur ? R_SEL : R_OK, " %s%s ",
				    p->phases[i], cur ? "" : " done");
		px++;
	}
	y += 2;
	canvas_put(c, y++, x, -1, R_NORMAL, "Overall");
	bar(c, y++, x, w, p->done, p->total);
	canvas_printf(c, y++, x, -1, R_NORMAL, "%s of %s",
		      emit_size(p->done, a, sizeof(a)),
		      emit_size(p->total, b, sizeof(b)));
	y++;
	uint64_t pd = p->pdone, pt = p->ptotal;
	canvas_printf(c, y++, x, -1, R_NORMAL, "Phase: %s%s%s",
		      p->phase[0] ? p->phase : "starting",
		      p->how && !strcmp(p->phase, "copy") ? ", by " : "",
		      p->how && !strcmp(p->phase, "copy") ? p->how : "");
	bar(c, y++, x, w, pd, pt);
	if (p->job[0])             /* a live commit: QEMU does the copy */
		canvas_printf(c, y, x, -1, R_HEADER, "%s", p->job);
	y++;
	hms(p->elapsed, el, sizeof(el));
	if (p->rate > 0 && p->total >= p->done)
		hms((double)(p->total - p->done) / p->rate, eta, sizeof(eta));
	else
		snprintf(eta, sizeof(eta), "--:--");
	canvas_printf(c, y++, x, -1, R_NORMAL,
		      "Rate: %s/s   Elapsed: %s   ETA: %s",
		      p->rate > 0 ? emit_size((uint64_t)p->rate, r, sizeof(r))
				  : "-",
		      el, eta);
	y++;
	if (p->cancelling)
		canvas_put(c, y, x, -1, R_WARN,
			   "Cancelling at the next safe point; every image "
			   "stays valid.");
	else
		canvas_put(c, y, x, -1, R_DIM,
			   "Parents still read through top until the relink; "
			   "Esc asks to cancel.");
}

enum ui_req scr_progress_key(struct ui_state *st, enum action a)
{
	(void)st;
	switch (a) {
	case ACT_CANCEL:
	case ACT_QUIT:
		return REQ_CANCEL_ASK;
	case ACT_REDRAW:
		return REQ_REDRAW;
	default:
		return REQ_NONE;
	}
}
