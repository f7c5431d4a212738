/* theme.h - roles to terminal attributes, and the blit of a canvas.
 * The only place besides tui/editor*.c that touches curses.  With colour
 * off (NO_COLOR, --color=never, or a terminal without colours) every role
 * maps to reverse/bold/underline so selection and state stay visible. */
#ifndef IMGRAPH_THEME_H
#define IMGRAPH_THEME_H

#include <stdbool.h>

#include "canvas.h"

/* Call after initscr.  color: use colours (caller decided). */
void theme_init(bool color);
/* Draw every cell of c on stdscr (curses sends only what changed). */
void theme_blit(const struct canvas *c);

#endif
