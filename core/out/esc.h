/* esc.h - the one place a name is made safe for a terminal.
 *
 * Human output (CLI and editor) shows every file name, user name and
 * message through esc_ctl, so a name cannot restyle or rewrite the
 * terminal: control characters, DEL, C1 controls, bytes that are not
 * UTF-8 and the backslash itself are written as `ls --quoting-style=escape`
 * writes them (\t \n \033 \377 \\); spaces are kept.  JSON and YAML never
 * use it: ow.c writes the exact bytes with JSON escapes.
 */
#ifndef IMGRAPH_ESC_H
#define IMGRAPH_ESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Room for any escaped path: a byte becomes at most four. */
#define ESC_MAX (4 * 4096 + 1)

/* s escaped into buf (len bytes, always NUL-terminated; a name too long
 * for buf is cut at a whole escape).  NULL s gives "". Returns buf. */
const char *esc_ctl(const char *s, char *buf, size_t len);
/* esc_ctl onto f. */
void esc_put(FILE *f, const char *s);
/* Whether s needs escaping at all. */
bool esc_needed(const char *s);

/* Escaped copy for one printf argument, on the caller's stack. */
#define ESC(s) esc_ctl((s), (char[ESC_MAX]){ 0 }, ESC_MAX)

#endif
