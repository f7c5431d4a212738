/* scr_progress.c - a running commit: every phase named (done, running,
 * to come), one bar over the whole commit, the running phase with its own
 * bar and what it does (the image being read), rate and ETA.  The numbers
 * are the meter's (core/commit/progress.h), as the CLI's -p prints them. */
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

/* What the running phase does, in plain words. */
static void phase_line(char *buf, size_t len, const struct prog_view *p)
{
	char a[16], b[16];
	const char *name = p->phase >= 0 ? progress_phases[p->phase] : "";
	if (p->phase < 0)
		snprintf(buf, len, "Opening the images and taking their locks");
	else if (!strcmp(name, "check"))
		snprintf(buf, len, "check: base's metadata is checked before "
			 "anything is written");
	else if (!strcmp(name, "copy"))
		snprintf(buf, len, "copy: %s of %s%s%s%s%s",
			 emit_size(p->pdone, a, sizeof(a)),
			 emit_size(p->ptotal, b, sizeof(b)),
			 p->layer[0] ? ", reading " : "", p->layer,
			 p->how ? ", by " : "", p->how ? p->how : "");
	else if (!strcmp(name, "flush"))
		snprintf(buf, len, "flush: base's new data and tables go to "
			 "the disk");
	else if (!strcmp(name, "relink"))
		snprintf(buf, len, "relink: %llu of %llu parent header%s "
			 "rewritten", (unsigned long long)p->pdone,
			 (unsigned long long)p->ptotal,
			 p->ptotal == 1 ? "" : "s");
	else
		snprintf(buf, len, "cleanup: the journal is removed");
}

/* "Phases: check done  [copy]  flush ..." with the running one marked
 * (brackets, so that it shows without colour too). */
static void phases_line(struct canvas *c, const struct prog_view *p, int y,
			int x)
{
	x += canvas_put(c, y, x, -1, R_HEADER, "Phases:");
	for (int i = 0; i < PROGRESS_NPHASES; i++) {
		const char *n = progress_phases[i];
		x += 2;
		if (i < p->phase || (i == p->phase && p->fraction >= 1))
			x += canvas_printf(c, y, x, -1, R_OK, "%s %s", n,
					   p->seen[i] ? "done" : "skipped");
		else if (i == p->phase)
			x += canvas_printf(c, y, x, -1, R_SEL, "[%s]", n);
		else
			x += canvas_put(c, y, x, -1, R_DIM, n);
	}
}

void scr_progress_draw(struct canvas *c, struct ui_state *st)
{
	const struct prog_view *p = &st->prog;
	char t[600], a[16], b[16], r[16], el[16], eta[16];
	snprintf(t, sizeof(t), " %s", p->title);
	scr_frame_draw(c, st, t);
	static const char *const q[] = { "Esc q", "Cancel (asks)" };
	scr_bar_draw(c, c->h - 1, q, 2);

	int x = 2, w = c->w - 4, y = 2;
	phases_line(c, p, y, x);
	y += 2;
	canvas_printf(c, y++, x, -1, R_NORMAL, "Overall (all phases): %s of "
		      "%s copied", emit_size(p->done, a, sizeof(a)),
		      emit_size(p->total, b, sizeof(b)));
	bar(c, y++, x, w, (uint64_t)(p->fraction * 1e6), 1000000);
	y++;
	phase_line(t, sizeof(t), p);
	canvas_put(c, y++, x, w, R_NORMAL, t);
	bar(c, y++, x, w, p->pdone, p->ptotal ? p->ptotal : 1);
	if (p->job[0])             /* a live commit: QEMU does the copy */
		canvas_printf(c, y, x, -1, R_HEADER, "%s", p->job);
	y++;
	hms(p->elapsed, el, sizeof(el));
	if (p->eta >= 0)
		hms(p->eta, eta, sizeof(eta));
	else
		snprintf(eta, sizeof(eta), "--:--");
	canvas_printf(c, y++, x, -1, R_NORMAL,
		      "Rate: %s/s   Elapsed: %s   ETA: %s",
		      p->rate > 0 ? emit_size((uint64_t)p->rate, r, sizeof(r))
				  : "-",
		      el, eta);
	y++;
	if (p->paused)
		canvas_put(c, y, x, -1, R_WARN,
			   "Paused: the copy waits for your answer.");
	else if (p->cancelling)
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
