/* scr_plan.c - scrollable text screens: the plan preview (exactly the text
 * `imgraph plan` prints), image info, and the y/N confirmations of a commit
 * (the plan before the copy, the after-graph before the relink). */
#include "ui.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int scr_text_role(const char *line)
{
	while (*line == ' ')
		line++;
	if (!strncasecmp(line, "conflicts: none", 15))
		return R_OK;
	if (!strncasecmp(line, "conflict", 8) || !strncasecmp(line, "error", 5)
	    || (line[0] == '[' && strcasestr(line, "conflict")) ||
	    !strncasecmp(line, "refused", 7))
		return R_ERROR;
	if (!strncasecmp(line, "why", 3) || !strncasecmp(line, "warning", 7))
		return R_WARN;
	if (!strncasecmp(line, "hint", 4) || !strncasecmp(line, "fix", 3) ||
	    strstr(line, "no conflicts") || !strncasecmp(line, "ok", 2))
		return R_OK;
	size_t n = strlen(line);
	if (n && line[n - 1] == ':' && !strchr(line, ' '))
		return R_HEADER;
	return R_NORMAL;
}

/* Draw (or only count, when y >= ymax) line l wrapped to the width:
 * long lines break at a space when one is near the end, continuation rows
 * are indented under the text.  Rows before `skip` are not drawn.
 * Returns the rows the line takes. */
static int wrap_line(struct canvas *c, const char *l, int role, int y,
		     int skip, int ymax)
{
	int w = c->w, rows = 0;
	int indent = (int)strspn(l, " ") + 4;
	if (indent > w / 2)
		indent = w / 2;
	const char *s = l;
	do {
		int x = rows ? indent : 0, room = w - x;
		const char *end = canvas_skip(c, s, room);
		if (*end) {
			/* Break after the last space in the second half. */
			for (const char *q = end; q > s + (end - s) / 2; q--)
				if (*q == ' ') {
					end = q + 1;
					break;
				}
		}
		if (rows >= skip && y + rows - skip < ymax) {
			char piece[4096];
			size_t n = (size_t)(end - s) < sizeof(piece) - 1 ?
				   (size_t)(end - s) : sizeof(piece) - 1;
			memcpy(piece, s, n);
			piece[n] = 0;
			canvas_put(c, y + rows - skip, x, room, role, piece);
		}
		rows++;
		s = end;
	} while (*s);
	return rows;
}

void scr_text_draw(struct canvas *c, struct ui_state *st)
{
	struct textview *t = &st->text;
	char title[300];
	int body = c->h - 3;
	int total = 0;
	for (int i = 0; i < t->n; i++)
		total += wrap_line(c, t->lines[i], R_NORMAL, 0, 0, 0);
	if (t->top > total - body)
		t->top = total - body;
	if (t->top < 0)
		t->top = 0;
	snprintf(title, sizeof(title), " %s  (%d-%d of %d)", t->title,
		 total ? t->top + 1 : 0,
		 t->top + body < total ? t->top + body : total, total);
	scr_frame_draw(c, st, title);
	int row = 0;                /* display row of the current line */
	for (int i = 0; i < t->n && row < t->top + body; i++) {
		const char *l = t->lines[i];
		int skip = t->top > row ? t->top - row : 0;
		int y = 1 + (row > t->top ? row - t->top : 0);
		row += wrap_line(c, l, scr_text_role(l), y, skip, 1 + body);
	}
	if (st->question) {
		static const char *const q[] = {
			"y", "Yes", "n Esc Enter", "No", "Up/Down", "Scroll",
		};
		scr_bar_draw(c, c->h - 1, q, 6);
	} else if (st->journal_screen) {
		static const char *const q[] = {
			"F", "Finish", "U", "Roll back", "Esc", "Later",
			"Up/Down", "Scroll", "?", "Help",
		};
		scr_bar_draw(c, c->h - 1, q, 10);
	} else if (st->lesson) {
		static const char *const q[] = {
			"s", "Stages", "Esc q", "Back", "Up/Down", "Scroll",
			"?", "Help",
		};
		scr_bar_draw(c, c->h - 1, q, 8);
	} else {
		static const char *const q[] = {
			"Esc q", "Back", "Up/Down PgUp/PgDn", "Scroll",
			"?", "Help",
		};
		scr_bar_draw(c, c->h - 1, q, 6);
	}
}

bool scr_protect_toggle(struct ui_state *st)
{
	if (st->mark_top < 0) {
		ui_msg(st, R_WARN, "mark a top first: --protect applies to the "
		       "plan of the marked pair");
		return false;
	}
	st->protect = !st->protect;
	ui_msg(st, R_NORMAL, "--protect %s for this pair", st->protect ?
	       "on: base's other readers get base's old data first" : "off");
	return true;
}

enum ui_req scr_text_key(struct ui_state *st, enum action a)
{
	struct textview *t = &st->text;
	switch (a) {
	case ACT_UP: t->top--; break;
	case ACT_DOWN: t->top++; break;
	case ACT_PGUP: t->top -= 10; break;
	case ACT_PGDN: t->top += 10; break;
	case ACT_HOME: t->top = 0; break;
	case ACT_END: t->top = 1 << 28; break;   /* clamped when drawn */
	case ACT_CANCEL:
	case ACT_QUIT:
	case ACT_COLLAPSE:
		if (st->question)
			return REQ_NO;
		st->scr = SCR_TREE;
		st->journal_screen = false;
		break;
	case ACT_FINISH:
	case ACT_ROLLBACK:
		if (!st->journal_screen || st->question)
			break;
		return a == ACT_FINISH ? REQ_FINISH : REQ_ROLLBACK;
	case ACT_TOGGLE:
		if (st->question)
			return REQ_NO;
		break;
	case ACT_HELP:
		if (st->question)
			break;
		st->prev_scr = st->scr;
		st->scr = SCR_HELP;
		st->help_top = 0;
		break;
	case ACT_REDRAW:
		return REQ_REDRAW;
	case ACT_LESSON:
		/* The plan's teaching view (only a plan that can run has one). */
		if (st->lesson && !st->question) {
			st->lesson_cur = 0;
			st->scr = SCR_LESSON;
		}
		break;
	case ACT_PULL:
		/* The plan screen offers the pull (its strategies say why). */
		if (!st->question && st->mark_top >= 0)
			return REQ_PULL;
		break;
	case ACT_PROTECT:
		if (st->question)
			break;
		return scr_protect_toggle(st) ? REQ_PLAN : REQ_NONE;
	default:
		break;
	}
	if (t->top < 0)
		t->top = 0;
	return REQ_NONE;
}

int scr_wrap_line(struct canvas *c, const char *l, int role, int y, int ymax)
{
	return wrap_line(c, l, role, y, 0, ymax);
}
