/* theme.c - colour pairs, mono fallback, and the canvas blit. */
#include "theme.h"

#include <curses.h>
#include <stdlib.h>
#include <string.h>

static attr_t role_attr[R_NROLES];

void theme_init(bool color)
{
	/* Mono: never colour alone (ncdu's "off" theme). */
	static const attr_t mono[R_NROLES] = {
		[R_TITLE] = A_REVERSE, [R_BAR] = A_REVERSE,
		[R_BAR_KEY] = A_BOLD, [R_SEL] = A_REVERSE,
		[R_HEADER] = A_BOLD, [R_TOP] = A_BOLD, [R_BASE] = A_BOLD,
		[R_ERROR] = A_BOLD, [R_WARN] = A_UNDERLINE,
		[R_PROGRESS] = A_BOLD, [R_DIALOG] = A_NORMAL,
		[R_LAYER0] = A_BOLD,
	};
	memcpy(role_attr, mono, sizeof(role_attr));
	if (!color || !has_colors())
		return;
	start_color();
	use_default_colors();      /* keep the user's background */
	static const struct { int role; short fg, bg; attr_t extra; } map[] = {
		{ R_TITLE, COLOR_BLACK, COLOR_CYAN, 0 },
		{ R_BAR, COLOR_BLACK, COLOR_CYAN, 0 },
		{ R_BAR_KEY, -1, -1, A_BOLD },
		{ R_SEL, COLOR_BLACK, COLOR_GREEN, 0 },
		{ R_HEADER, COLOR_CYAN, -1, A_BOLD },
		{ R_TOP, COLOR_MAGENTA, -1, A_BOLD },
		{ R_BASE, COLOR_YELLOW, -1, A_BOLD },
		{ R_ERROR, COLOR_RED, -1, A_BOLD },
		{ R_WARN, COLOR_YELLOW, -1, 0 },
		{ R_OK, COLOR_GREEN, -1, 0 },
		{ R_DIM, COLOR_BLUE, -1, A_BOLD },
		{ R_PROGRESS, COLOR_GREEN, -1, A_BOLD },
		{ R_DIALOG, -1, -1, 0 },
		{ R_LAYER0, COLOR_CYAN, -1, A_BOLD },
		{ R_LAYER1, COLOR_GREEN, -1, 0 },
		{ R_LAYER2, COLOR_YELLOW, -1, 0 },
		{ R_LAYER3, COLOR_MAGENTA, -1, 0 },
		{ R_LAYER4, COLOR_BLUE, -1, A_BOLD },
		{ R_LAYER5, COLOR_RED, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		short pair = (short)(i + 1);
		if (init_pair(pair, map[i].fg, map[i].bg) == ERR)
			continue;
		role_attr[map[i].role] = COLOR_PAIR(pair) | map[i].extra;
	}
}

void theme_blit(const struct canvas *c)
{
	int h, w;
	getmaxyx(stdscr, h, w);
	char *run = malloc((size_t)c->w * 4 + 1);
	if (!run)
		return;
	for (int y = 0; y < c->h && y < h; y++) {
		int x = 0;
		while (x < c->w && x < w) {
			int role = c->cells[(size_t)y * c->w + x].role;
			int x0 = x;
			size_t o = 0;
			while (x < c->w && x < w &&
			       c->cells[(size_t)y * c->w + x].role == role) {
				const char *g = c->cells[(size_t)y * c->w + x].ch;
				size_t n = strlen(g);
				memcpy(run + o, g, n);
				o += n;
				x++;
			}
			run[o] = 0;
			attrset(role < R_NROLES ? role_attr[role] : A_NORMAL);
			/* The bottom-right cell makes addstr return ERR after
			 * drawing (the cursor cannot advance); that is fine. */
			mvaddstr(y, x0, run);
		}
	}
	attrset(A_NORMAL);
	free(run);
}
