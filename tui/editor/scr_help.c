/* scr_help.c - the help screen, generated from the action table so keys,
 * help and function bar cannot drift apart. */
#include "ui.h"

#include <stdio.h>
#include <stdlib.h>

char *scr_help_text(const char *guide)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	if (guide)
		fprintf(f, "%s\n", guide);
	fprintf(f, "Getting started:\n"
		"  select an image and press t to mark it top (what is "
		"committed); its\n"
		"  backing file is the base unless you mark another with b; "
		"p shows the\n"
		"  plan, c runs it.  The status line always says what comes "
		"next.\n\n");
	fprintf(f, "Keys:\n");
	for (int a = 0; a < ACT_COUNT; a++)
		fprintf(f, "  %-14s %s\n", ui_actions[a].keys,
			ui_actions[a].help);
	fprintf(f,
		"\n"
		"In the search prompt every key is text; Enter searches, Esc "
		"closes.\n"
		"In a y/N question anything but y answers No.\n"
		"\n"
		"Tree columns:\n"
		"  [T] [B]        the marked top and base\n"
		"  FMT            format (qcow2, raw; ? when unknown)\n"
		"  VSIZE ALLOC    virtual size, space allocated on disk\n"
		"  KIDS           overlays backed by this image\n"
		"  FLAGS          U in use, ! error, O outside the pool or "
		"external,\n"
		"                 ? format probed (not recorded), R read-only "
		"file,\n"
		"                 J in an unfinished relink (run imgraph "
		"recover),\n"
		"                 S stale (base was committed into), u unused "
		"(committed)\n"
		"\n"
		"Cluster map: one strip per layer, top first; a cell is a "
		"region of the\n"
		"virtual disk and shows whether that layer serves it (data, "
		"zero) or not.\n"
		"\n"
		"Commit: mark top (t) and base (b; default is top's backing "
		"file), preview\n"
		"with p, run with c.  The commit asks before copying and again "
		"before\n"
		"relinking every parent of top to base.  Esc during the copy "
		"asks to cancel;\n"
		"a cancelled commit leaves every image valid.\n");
	fclose(f);
	return buf;
}

void scr_help_draw(struct canvas *c, struct ui_state *st)
{
	char *text = scr_help_text(st->guide);
	struct textview t = { 0 };
	textview_set(&t, "", text ? text : "");
	free(text);
	scr_frame_draw(c, st, " imgraph help  (q/Esc: back)");
	int body = c->h - 3;
	if (st->help_top > t.n - body)
		st->help_top = t.n - body;
	if (st->help_top < 0)
		st->help_top = 0;
	for (int i = 0; i < body && st->help_top + i < t.n; i++) {
		const char *l = t.lines[st->help_top + i];
		canvas_put(c, 1 + i, 1, -1,
			   l[0] && l[0] != ' ' ? R_HEADER : R_NORMAL, l);
	}
	textview_free(&t);
	static const char *const q[] = {
		"Esc q", "Back", "Up/Down PgUp/PgDn", "Scroll",
	};
	scr_bar_draw(c, c->h - 1, q, 4);
}

enum ui_req scr_help_key(struct ui_state *st, enum action a)
{
	switch (a) {
	case ACT_UP: st->help_top--; break;
	case ACT_DOWN: st->help_top++; break;
	case ACT_PGUP: st->help_top -= 10; break;
	case ACT_PGDN: st->help_top += 10; break;
	case ACT_HOME: st->help_top = 0; break;
	case ACT_END: st->help_top = 1 << 20; break;
	case ACT_CANCEL:
	case ACT_QUIT:
	case ACT_HELP:
	case ACT_COLLAPSE:
		st->scr = st->prev_scr == SCR_HELP ? SCR_TREE : st->prev_scr;
		break;
	case ACT_REDRAW:
		return REQ_REDRAW;
	default:
		break;
	}
	if (st->help_top < 0)
		st->help_top = 0;
	return REQ_NONE;
}
