/* scr_tree.c - the main screen: title bar, the pool forest, the detail
 * pane of the selected image, status line and function bar. */
#include "ui.h"

#include "core/out/emit.h"
#include "core/graph/marks.h"

#include <string.h>

/* Right-hand columns; narrow terminals drop ALLOC and KIDS first. */
struct cols {
	bool alloc, kids;
	int right;                 /* width of the right block */
	int name_w;                /* the IMAGE column (guide and name) */
};

/* The IMAGE column is as wide as the widest row needs (at least the
 * header's worth) and never wider than NAME_COL_MAX, so that on a wide
 * terminal FMT and VSIZE stay next to the names instead of far right. */
#define NAME_COL_MIN 24
#define NAME_COL_MAX 72

/* The widest node's need, measured once per rows (depths and labels are
 * fixed until the next rows_init) and canvas mode: measuring 100,000
 * labels took most of a frame at every redraw. */
static int widest_node(const struct canvas *c, struct rows *r)
{
	int *memo = &r->name_need[c->utf8 ? 1 : 0];

	if (*memo)
		return *memo;
	*memo = NAME_COL_MIN;
	for (int i = 0; i < r->n; i++) {
		int w = 2 * r->depth[i] + canvas_strwidth(c, rows_label(r, i)) +
			5;         /* " [+]" and a blank */
		if (w > *memo)
			*memo = w;
	}
	return *memo;
}

static int name_col_need(const struct canvas *c, struct rows *r,
			 const struct graph *g)
{
	int need = widest_node(c, r);

	/* A live holder's mark follows the name (live_mark): room for it. */
	for (int u = 0; u < g->nusers; u++) {
		const struct guser *us = &g->users[u];
		char t[160];

		if (us->kind != PARTY_PROCESS || us->node < 0 ||
		    us->node >= r->n || !us->pid)
			continue;
		snprintf(t, sizeof(t), " [live: %s]", us->name);
		int w = 2 * r->depth[us->node] +
			canvas_strwidth(c, rows_label(r, us->node)) + 5 +
			canvas_strwidth(c, t);
		if (w > need)
			need = w;
	}
	return need;
}

static struct cols tree_cols(const struct canvas *c, struct ui_state *st)
{
	int w = c->w;
	struct cols k = { .alloc = w >= 70, .kids = w >= 70 };
	/* emit_size: at most 9 columns ("6.26 MiB", "1e+03 KiB"). */
	k.right = 1 + 5 + 1 + 9 + 1 + 5;             /* fmt, vsize, flags */
	if (k.alloc)
		k.right += 1 + 9;
	if (k.kids)
		k.right += 1 + 4;
	k.name_w = w - 4 - k.right;
	int cap = st->g ? name_col_need(c, &st->rows, st->g) : NAME_COL_MIN;
	if (cap > NAME_COL_MAX)
		cap = NAME_COL_MAX;
	if (k.name_w > cap)
		k.name_w = cap;
	return k;
}

void scr_tree_layout(const struct ui_state *st, int w, int h, int *tree_y,
		     int *tree_h, int *detail_y, int *detail_h)
{
	(void)w;
	int avail = h - 3;         /* title, status line, function bar */
	int dh = 0;
	if (st->detail) {
		dh = avail / 3 + 1;
		if (dh < 6)
			dh = 6;
		if (dh > 14)
			dh = 14;
		if (avail - dh < 5)
			dh = 0;
	}
	*tree_y = 1;
	*tree_h = avail - dh;
	*detail_y = 1 + *tree_h;
	*detail_h = dh;
}

/* A node a running process holds (QEMU's locks): the process's PID and
 * name after the image's, " [live: process 1234 (qemu-storage-d)]". */
static void live_mark(struct canvas *c, const struct graph *g, int id, int y,
		      int x, int room)
{
	char t[160];

	for (int u = 0; u < g->nusers; u++) {
		const struct guser *us = &g->users[u];

		if (us->kind != PARTY_PROCESS || us->node != id || !us->pid)
			continue;
		snprintf(t, sizeof(t), " [live: %s]", us->name);
		if (canvas_strwidth(c, t) <= room)
			canvas_put(c, y, x, room, R_WARN, t);
		return;
	}
}

/* What needs attention first: the column shows five. */
static void node_flags(const struct gnode *n, char *buf)
{
	int o = 0;
	if (n->flags & GN_JOURNAL)
		buf[o++] = 'J';
	if (n->flags & GN_STALE)
		buf[o++] = 'S';
	if (n->flags & GN_UNUSED)
		buf[o++] = 'u';
	if (n->flags & GN_IN_USE)
		buf[o++] = 'U';
	if (n->flags & (GN_ERROR | GN_LOOP | GN_MISSING))
		buf[o++] = '!';
	if (n->flags & (GN_OUTSIDE | GN_EXTERNAL))
		buf[o++] = 'O';
	if (n->flags & (GN_PROBED | GN_UNSAFE_PROBE))
		buf[o++] = '?';
	if (n->flags & GN_RDONLY_FILE)
		buf[o++] = 'R';
	buf[o] = 0;
}

/* The title with pool label label into t. */
static void title_text(const struct ui_state *st, const char *label, char *t,
		       size_t len, bool counts)
{
	const struct graph *g = st->g;
	if (!g || !counts) {
		snprintf(t, len, " imgraph  %s", label);
	} else {
		/* counted once per rescan (rows.c), not per frame */
		int roots = st->rows.nroots, in_use = st->rows.nin_use;
		int errors = st->rows.nerrors, outside = st->rows.noutside;
		int o = snprintf(t, len, " imgraph  %s  %d image%s, %d "
				 "chain%s", label, g->n,
				 g->n == 1 ? "" : "s", roots,
				 roots == 1 ? "" : "s");
		/* Only what needs attention, so the marks fit at 80 columns. */
		if (in_use && o < (int)len)
			o += snprintf(t + o, len - o, ", %d in use", in_use);
		if (errors && o < (int)len)
			o += snprintf(t + o, len - o, ", %d error%s",
				      errors, errors == 1 ? "" : "s");
		if (outside && o < (int)len)
			o += snprintf(t + o, len - o, ", %d outside", outside);
		if (g->marks && g->marks->njournals && o < (int)len)
			snprintf(t + o, len - o, ", UNFINISHED RELINK: "
				 "run imgraph recover");
	}
}

static void draw_title(struct canvas *c, const struct ui_state *st)
{
	char t[600];
	const struct graph *g = st->g;
	title_text(st, st->pool_label, t, sizeof(t), true);
	scr_frame_draw(c, st, t);
	if (g && (st->mark_top >= 0 || st->mark_base >= 0)) {
		char m[300];
		/* The base the plan uses: marked, or top's backing file. */
		int base = st->mark_base;
		if (base < 0 && st->mark_top >= 0)
			base = g->nodes[st->mark_top].backing;
		snprintf(m, sizeof(m), " T:%s B:%s%s ",
			 st->mark_top >= 0 ? rows_label(&st->rows, st->mark_top) : "-",
			 base >= 0 ? rows_label(&st->rows, base) : "-",
			 base >= 0 && st->mark_base < 0 ? " (backing)" : "");
		int mw = canvas_strwidth(c, m);
		int tw = canvas_strwidth(c, t);
		/* The marks matter more than the pool's full path, and
		 * then than the counts: drop those first when all do not
		 * fit. */
		const char *sl = strrchr(st->pool_label, '/');
		char short_label[300];
		snprintf(short_label, sizeof(short_label), "%s%s",
			 c->utf8 ? "\u2026" : "...", sl ? sl : "");
		for (int k = 0; k < 2 && tw + mw >= c->w && sl && sl[1]; k++) {
			title_text(st, short_label, t, sizeof(t), k == 0);
			scr_frame_draw(c, st, t);
			tw = canvas_strwidth(c, t);
		}
		if (tw + mw < c->w)
			canvas_put(c, 0, c->w - mw, -1, R_TITLE, m);
	}
}

/* The function bar drops these first, in this order, when it does not
 * fit; q, ? and the marks stay longest, q always. */
static const enum action bar_drop_order[] = {
	ACT_RESCAN, ACT_INFO, ACT_MAP, ACT_SEARCH, ACT_UNMARK, ACT_COMMIT,
	ACT_JOURNAL, ACT_PLAN, ACT_BASE, ACT_TOP, ACT_HELP,
};

/* Whether the bar offers a: only what the pool and the marks allow. */
static bool bar_offers(const struct ui_state *st, enum action a)
{
	bool images = st->g && st->g->n;
	bool journal = st->g && st->g->marks && st->g->marks->njournals;
	switch (a) {
	case ACT_TOP: case ACT_BASE: case ACT_MAP: case ACT_INFO:
	case ACT_SEARCH:
		return images;
	case ACT_PLAN: case ACT_COMMIT: case ACT_PULL: case ACT_PROTECT:
		return images && st->mark_top >= 0;
	case ACT_UNMARK:
		return st->mark_top >= 0 || st->mark_base >= 0;
	case ACT_JOURNAL:
		return journal;
	default:
		return true;
	}
}

static int bar_width(const bool *on)
{
	int w = 0;
	for (int a = 0; a < ACT_COUNT; a++)
		if (on[a])
			w += (int)(strcspn(ui_actions[a].keys, " ") +
				   strlen(ui_actions[a].bar)) + 3;
	return w;
}

static void draw_bar(struct canvas *c, const struct ui_state *st)
{
	const char *pairs[2 * ACT_COUNT];
	char keys[ACT_COUNT][8];
	bool on[ACT_COUNT];
	int n = 0;
	for (int a = 0; a < ACT_COUNT; a++)
		on[a] = ui_actions[a].bar[0] && bar_offers(st, a);
	for (size_t i = 0; i < sizeof(bar_drop_order) /
	     sizeof(bar_drop_order[0]) && bar_width(on) > c->w; i++)
		on[bar_drop_order[i]] = false;
	for (int a = 0; a < ACT_COUNT; a++) {
		if (!on[a])
			continue;
		/* First key of the label: "? F1" -> "?". */
		const char *k = ui_actions[a].keys;
		size_t l = strcspn(k, " ");
		if (l >= sizeof(keys[a]))
			l = sizeof(keys[a]) - 1;
		memcpy(keys[a], k, l);
		keys[a][l] = 0;
		pairs[n++] = keys[a];
		pairs[n++] = ui_actions[a].bar;
	}
	scr_bar_draw(c, c->h - 1, pairs, n);
}

static void draw_row(struct canvas *c, const struct ui_state *st, int y,
		     int idx, const struct cols *k)
{
	const struct rows *r = &st->rows;
	const struct graph *g = st->g;
	int id = r->row[idx];
	const struct gnode *n = &g->nodes[id];
	int x = 0;
	if (id == st->mark_top)
		canvas_put(c, y, x, 3, R_TOP, "[T]");
	else if (id == st->mark_base)
		canvas_put(c, y, x, 3, R_BASE, "[B]");
	x = 4;
	int name_w = k->name_w;
	char guide[1024];
	rows_guide(r, idx, c->gl->vert, c->gl->tee, c->gl->corner,
		   c->gl->horiz, name_w / 2, guide, sizeof(guide));
	int gx = canvas_put(c, y, x, name_w, R_DIM, guide);
	/* Stale and unused images are drawn dim: left over, not in use. */
	int role = (n->flags & GN_ERROR) ? R_ERROR :
		   (n->flags & (GN_OUTSIDE | GN_EXTERNAL)) ? R_WARN :
		   (n->flags & (GN_STALE | GN_UNUSED)) ? R_DIM : R_NORMAL;
	const char *name = rows_label(r, id);
	int nw = canvas_strwidth(c, name);
	int room = name_w - gx - 1;
	if (nw > room && room > 1) {
		/* Keep the end of long names: it tells images apart. */
		const char *p = name;
		while (canvas_strwidth(c, p) > room - 1 && *p)
			p++;
		while ((*p & 0xc0) == 0x80)
			p++;
		canvas_put(c, y, x + gx, 1, role, "<");
		canvas_put(c, y, x + gx + 1, room - 1, role, p);
	} else {
		canvas_put(c, y, x + gx, room, role, name);
	}
	/* A collapsed subtree says so (and not by colour alone). */
	int tail = nw;
	if (!r->expanded[id] && r->nkids[id] && nw + 4 <= room) {
		canvas_put(c, y, x + gx + nw, 4, R_DIM, " [+]");
		tail += 4;
	}
	live_mark(c, st->g, id, y, x + gx + tail, room - tail);

	char sz[16], fl[12];
	int rx = x + name_w + 1;
	canvas_printf(c, y, rx, 5, R_NORMAL, "%-5.5s",
		      n->format ? n->format : "?");
	rx += 6;
	bool has_info = !(n->flags & (GN_ERROR | GN_EXTERNAL));
	canvas_printf(c, y, rx, 9, R_NORMAL, "%9s",
		      has_info ? emit_size(n->info.virtual_size, sz, sizeof(sz))
			       : "-");
	rx += 10;
	if (k->alloc) {
		canvas_printf(c, y, rx, 9, R_NORMAL, "%9s",
			      has_info ? emit_size(n->info.actual_size, sz,
						 sizeof(sz)) : "-");
		rx += 10;
	}
	if (k->kids) {
		canvas_printf(c, y, rx, 4, R_NORMAL, "%4d", n->nchildren);
		rx += 5;
	}
	node_flags(n, fl);
	canvas_put(c, y, rx, 5, (n->flags & GN_ERROR) ? R_ERROR : R_WARN, fl);
	if (idx == r->sel)
		canvas_role(c, y, 0, c->w, R_SEL);
}

void scr_tree_draw(struct canvas *c, struct ui_state *st)
{
	int ty, th, dy, dh;
	draw_title(c, st);
	draw_bar(c, st);
	scr_tree_layout(st, c->w, c->h, &ty, &th, &dy, &dh);
	struct cols k = tree_cols(c, st);

	/* Column header. */
	canvas_fill(c, ty, 0, c->w, R_HEADER, " ");
	canvas_put(c, ty, 4, -1, R_HEADER, "IMAGE");
	int rx = 4 + k.name_w + 1;
	canvas_put(c, ty, rx, 5, R_HEADER, "FMT");
	canvas_put(c, ty, rx + 6, 9, R_HEADER, "    VSIZE");
	rx += 16;
	if (k.alloc) {
		canvas_put(c, ty, rx, 9, R_HEADER, "    ALLOC");
		rx += 10;
	}
	if (k.kids) {
		canvas_put(c, ty, rx, 4, R_HEADER, "KIDS");
		rx += 5;
	}
	canvas_put(c, ty, rx, 5, R_HEADER, "FLAGS");

	int list_y = ty + 1, list_h = th - 1;
	rows_set_height(&st->rows, list_h);
	if (!st->g) {
		canvas_put(c, list_y, 1, -1, R_ERROR,
			   st->scan_error[0] ? st->scan_error
					     : "pool not scanned");
	} else if (!st->rows.nrows) {
		canvas_printf(c, list_y, 1, -1, R_DIM,
			      "No images in %s%s (R rescans).", st->pool_label,
			      st->pool_hint);
	}
	for (int i = 0; i < list_h && st->g; i++) {
		int idx = st->rows.top + i;
		if (idx >= st->rows.nrows)
			break;
		draw_row(c, st, list_y + i, idx, &k);
	}
	if (dh)
		scr_detail_draw(c, st, dy, dh);
}

/* Keys while the search prompt is open: every key goes to the text field
 * (a letter typed into a search must never run a command), Enter
 * searches, Esc closes. */
enum ui_req scr_tree_prompt_key(struct ui_state *st, int ch)
{
	size_t l = strlen(st->prompt_buf);
	if (ch == UI_KEY_ESC) {
		st->prompt = false;
		return REQ_NONE;
	}
	if (ch == '\n' || ch == '\r') {
		st->prompt = false;
		if (!st->prompt_buf[0])
			return REQ_NONE;
		snprintf(st->last_search, sizeof(st->last_search), "%s",
			 st->prompt_buf);
		if (rows_search(&st->rows, st->last_search, 1) < 0)
			ui_msg(st, R_WARN, "no image name contains '%s'",
			       st->last_search);
		return REQ_SELECT;
	}
	if (ch == UI_KEY_DEL || ch == UI_KEY_BS) {
		if (l)
			st->prompt_buf[l - 1] = 0;
		return REQ_NONE;
	}
	if (ch >= 0x20 && ch < 0x100 && ch != UI_KEY_DEL &&
	    l + 1 < sizeof(st->prompt_buf)) {
		st->prompt_buf[l] = (char)ch;
		st->prompt_buf[l + 1] = 0;
	}
	return REQ_NONE;
}

enum ui_req scr_tree_key(struct ui_state *st, enum action a)
{
	struct rows *r = &st->rows;
	int sel = rows_selected(r);
	switch (a) {
	case ACT_UP: rows_move(r, -1); return REQ_SELECT;
	case ACT_DOWN: rows_move(r, 1); return REQ_SELECT;
	case ACT_PGUP: rows_page(r, -1); return REQ_SELECT;
	case ACT_PGDN: rows_page(r, 1); return REQ_SELECT;
	case ACT_HOME: rows_home(r); return REQ_SELECT;
	case ACT_END: rows_end(r); return REQ_SELECT;
	case ACT_COLLAPSE: rows_collapse(r); return REQ_SELECT;
	case ACT_EXPAND: rows_expand(r); return REQ_SELECT;
	case ACT_TOGGLE: rows_toggle(r); return REQ_SELECT;
	case ACT_SEARCH:
		st->prompt = true;
		st->prompt_buf[0] = 0;
		return REQ_NONE;
	case ACT_NEXT:
	case ACT_PREV:
		if (!st->last_search[0]) {
			ui_msg(st, R_WARN, "no search yet: press / first");
			return REQ_NONE;
		}
		if (rows_search(r, st->last_search, a == ACT_NEXT ? 1 : -1) < 0)
			ui_msg(st, R_WARN, "no image name contains '%s'",
			       st->last_search);
		return REQ_SELECT;
	case ACT_TOP:
	case ACT_BASE:
		if (sel < 0) {
			ui_msg(st, R_WARN, "no image to mark: the pool is "
			       "empty");
			return REQ_NONE;
		}
		st->protect = false;
		st->undo_top = st->mark_top;
		st->undo_base = st->mark_base;
		st->last_mark_top = a == ACT_TOP;
		if (a == ACT_TOP) {
			st->mark_top = sel;
			if (st->mark_base == sel)
				st->mark_base = -1;
		} else {
			st->mark_base = sel;
			if (st->mark_top == sel)
				st->mark_top = -1;
		}
		return REQ_MARKS;
	case ACT_UNMARK:
		st->mark_top = st->mark_base = -1;
		st->protect = false;
		ui_msg(st, R_NORMAL, "marks cleared");
		return REQ_NONE;
	case ACT_PLAN:
	case ACT_COMMIT:
	case ACT_PULL:
		if (st->mark_top < 0) {
			ui_msg(st, R_WARN, "mark a top first: select an image "
			       "and press t (base defaults to its backing file)");
			return REQ_NONE;
		}
		return a == ACT_PLAN ? REQ_PLAN : a == ACT_PULL ? REQ_PULL
								: REQ_COMMIT;
	case ACT_PROTECT:
		return scr_protect_toggle(st) ? REQ_MARKS : REQ_NONE;
	case ACT_MAP:
	case ACT_INFO:
		if (sel < 0) {
			ui_msg(st, R_WARN, "no image to show: the pool is "
			       "empty");
			return REQ_NONE;
		}
		return a == ACT_MAP ? REQ_MAP : REQ_INFO;
	case ACT_STRIPS_UP:
		if (st->strip_top > 0)
			st->strip_top--;
		return REQ_NONE;
	case ACT_STRIPS_DN:
		/* The draw clamps it to the layers that fit. */
		if (st->map && st->strip_top < st->map->nlayers - 1)
			st->strip_top++;
		return REQ_NONE;
	case ACT_RESCAN: return REQ_RESCAN;
	case ACT_JOURNAL:
		if (!st->g || !st->g->marks || !st->g->marks->njournals) {
			ui_msg(st, R_NORMAL, "no unfinished relink in the pool");
			return REQ_NONE;
		}
		return REQ_JOURNAL;
	case ACT_REDRAW: return REQ_REDRAW;
	case ACT_HELP:
		st->prev_scr = st->scr;
		st->scr = SCR_HELP;
		st->help_top = 0;
		return REQ_NONE;
	case ACT_QUIT: return REQ_QUIT;
	default: return REQ_NONE;
	}
}
