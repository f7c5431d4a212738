/* canvas.c - the cell grid screens draw into (see canvas.h). */
#include "canvas.h"
#include "core/out/esc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* An escaped character: up to four escapes of four characters. */
#define GLYPH_MAX 17

const struct glyphs glyphs_utf8 = {
	.vert = "\u2502", .tee = "\u251c", .corner = "\u2514", .horiz = "\u2500",
	.full = "\u2588", .part = "\u2592", .zero = "\u2591", .empty = "\u00b7",
	.comp = "\u2593",
	.bar_full = "\u2588", .bar_empty = "\u2591",
	.hline = "\u2500",
	.box_tl = "\u250c", .box_tr = "\u2510", .box_bl = "\u2514",
	.box_br = "\u2518", .box_v = "\u2502",
};

const struct glyphs glyphs_ascii = {
	.vert = "|", .tee = "|", .corner = "`", .horiz = "-",
	.full = "#", .part = "+", .zero = "0", .empty = ".",
	.comp = "%",
	.bar_full = "#", .bar_empty = "-",
	.hline = "-",
	.box_tl = "+", .box_tr = "+", .box_bl = "+", .box_br = "+",
	.box_v = "|",
};

int canvas_init(struct canvas *c, int w, int h, bool utf8)
{
	memset(c, 0, sizeof(*c));
	c->utf8 = utf8;
	c->gl = utf8 ? &glyphs_utf8 : &glyphs_ascii;
	return canvas_resize(c, w, h);
}

void canvas_free(struct canvas *c)
{
	free(c->cells);
	c->cells = NULL;
	c->w = c->h = 0;
}

int canvas_resize(struct canvas *c, int w, int h)
{
	if (w < 1)
		w = 1;
	if (h < 1)
		h = 1;
	struct cell *n = calloc((size_t)w * (size_t)h, sizeof(*n));
	if (!n)
		return -ENOMEM;
	free(c->cells);
	c->cells = n;
	c->w = w;
	c->h = h;
	canvas_clear(c);
	return 0;
}

void canvas_clear(struct canvas *c)
{
	size_t n = (size_t)c->w * (size_t)c->h;
	for (size_t i = 0; i < n; i++) {
		c->cells[i].ch[0] = ' ';
		c->cells[i].ch[1] = 0;
		c->cells[i].role = R_NORMAL;
	}
}

/* Decode one glyph at s into out (NUL-terminated); returns the bytes
 * consumed (>= 1) and sets *cols to the columns it takes.  A control
 * character or a byte that is not UTF-8 comes out escaped as esc_ctl
 * writes it (several columns, one ASCII character each), as the CLI
 * prints it; a backslash stays itself (text from emit.h arrives escaped
 * already and must not be escaped twice).  Anything else that would not
 * take exactly one column becomes '?', so the grid never drifts out of
 * step with the terminal. */
static size_t next_glyph(bool utf8, const char *s, char out[GLYPH_MAX],
			 int *cols)
{
	unsigned char b = (unsigned char)s[0];
	char one[5] = { 0 };

	*cols = 1;
	if (b < 0x80) {
		out[0] = (char)b;
		out[1] = 0;
		if (b < 0x20 || b == 0x7f)
			goto esc;
		return 1;
	}
	size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
	if (!n || b > 0xf4)
		goto bad;
	uint32_t cp = b & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		unsigned char t = (unsigned char)s[i];
		if ((t & 0xc0) != 0x80)
			goto bad;
		cp = cp << 6 | (t & 0x3f);
	}
	memcpy(one, s, n);
	if (esc_needed(one)) {          /* C1 control, overlong, surrogate */
		esc_ctl(one, out, GLYPH_MAX);
		*cols = (int)strlen(out);
		return n;
	}
	if (!utf8)
		goto bad_len;
	/* Box drawing and block elements are ours: always one column. */
	bool ok = (cp >= 0x2500 && cp <= 0x259f) || cp == 0xb7;
	if (!ok) {
		int w = wcwidth((wchar_t)cp);
		ok = w == 1;
	}
	if (!ok)
		goto bad_len;
	memcpy(out, s, n);
	out[n] = 0;
	return n;
bad_len:
	out[0] = '?';
	out[1] = 0;
	return n;
bad:
	out[0] = (char)b;
	out[1] = 0;
esc:
	memcpy(one, out, 2);
	esc_ctl(one, out, GLYPH_MAX);
	*cols = (int)strlen(out);
	return 1;
}

int canvas_put(struct canvas *c, int y, int x, int maxw, int role,
	       const char *s)
{
	if (!s || y < 0 || y >= c->h)
		return 0;
	int lim = maxw < 0 ? c->w - x : maxw;
	if (x + lim > c->w)
		lim = c->w - x;
	int col = 0, n;
	char g[GLYPH_MAX];
	while (*s && col < lim) {
		s += next_glyph(c->utf8, s, g, &n);
		if (col + n > lim)
			break;          /* never half an escape */
		for (int i = 0; i < n; i++, col++) {
			if (x + col < 0)
				continue;
			struct cell *cl = &c->cells[(size_t)y * c->w + x + col];
			if (n > 1) {    /* an escape: one character a cell */
				cl->ch[0] = g[i];
				cl->ch[1] = 0;
			} else
				memcpy(cl->ch, g, sizeof(cl->ch));
			cl->role = (unsigned char)role;
		}
	}
	return col;
}

int canvas_put_fit(struct canvas *c, int y, int x, int maxw, int role,
		   const char *s)
{
	int lim = maxw < 0 ? c->w - x : maxw;
	if (canvas_strwidth(c, s) <= lim)
		return canvas_put(c, y, x, lim, role, s);
	const char *dots = c->utf8 ? "\u2026" : "...";
	int dw = c->utf8 ? 1 : 3;
	if (lim <= dw)
		return canvas_put(c, y, x, lim, role, s);
	/* The longest run of whole words that leaves room for the dots; a
	 * single word longer than that is cut where it must be. */
	const char *cut = canvas_skip(c, s, lim - dw), *end = cut;
	if (*cut != ' ')
		for (const char *q = cut; q > s; q--)
			if (q[-1] == ' ') {
				end = q - 1;
				break;
			}
	while (end > s && end[-1] == ' ' )
		end--;
	if (end == s)
		end = cut;
	char buf[4096];
	size_t n = (size_t)(end - s) < sizeof(buf) - 8 ? (size_t)(end - s)
						      : sizeof(buf) - 8;
	memcpy(buf, s, n);
	strcpy(buf + n, dots);
	return canvas_put(c, y, x, lim, role, buf);
}

int canvas_printf(struct canvas *c, int y, int x, int maxw, int role,
		  const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return canvas_put(c, y, x, maxw, role, buf);
}

void canvas_fill(struct canvas *c, int y, int x, int w, int role,
		 const char *g)
{
	for (int i = 0; i < w; i++)
		canvas_put(c, y, x + i, 1, role, g);
}

void canvas_role(struct canvas *c, int y, int x, int w, int role)
{
	if (y < 0 || y >= c->h)
		return;
	for (int i = x < 0 ? 0 : x; i < x + w && i < c->w; i++)
		c->cells[(size_t)y * c->w + i].role = (unsigned char)role;
}

void canvas_box(struct canvas *c, int y, int x, int h, int w, int role,
		const char *title)
{
	if (h < 2 || w < 2)
		return;
	const struct glyphs *g = c->gl;
	for (int r = 0; r < h; r++) {
		canvas_fill(c, y + r, x, w, role, " ");
		canvas_put(c, y + r, x, 1, role, g->box_v);
		canvas_put(c, y + r, x + w - 1, 1, role, g->box_v);
	}
	canvas_fill(c, y, x + 1, w - 2, role, g->hline);
	canvas_fill(c, y + h - 1, x + 1, w - 2, role, g->hline);
	canvas_put(c, y, x, 1, role, g->box_tl);
	canvas_put(c, y, x + w - 1, 1, role, g->box_tr);
	canvas_put(c, y + h - 1, x, 1, role, g->box_bl);
	canvas_put(c, y + h - 1, x + w - 1, 1, role, g->box_br);
	if (title && *title)
		canvas_printf(c, y, x + 2, w - 4, role, " %s ", title);
}

int canvas_strwidth(const struct canvas *c, const char *s)
{
	int n = 0, w;
	char g[GLYPH_MAX];
	while (s && *s) {
		s += next_glyph(c->utf8, s, g, &w);
		n += w;
	}
	return n;
}

const char *canvas_skip(const struct canvas *c, const char *s, int cols)
{
	char g[GLYPH_MAX];
	int w;
	bool first = cols > 0;      /* always progress: callers loop on it */
	while (*s) {
		size_t k = next_glyph(c->utf8, s, g, &w);
		if (w > cols && !first)
			break;
		first = false;
		cols -= w;
		s += k;
	}
	return s;
}

char *canvas_line(const struct canvas *c, int y, char *buf, size_t len)
{
	size_t o = 0, keep = 0;
	if (!len)
		return buf;
	buf[0] = 0;
	if (y < 0 || y >= c->h)
		return buf;
	for (int x = 0; x < c->w; x++) {
		const char *g = c->cells[(size_t)y * c->w + x].ch;
		size_t n = strlen(g);
		if (o + n + 1 > len)
			break;
		memcpy(buf + o, g, n);
		o += n;
		if (strcmp(g, " "))
			keep = o;
	}
	buf[keep] = 0;
	return buf;
}

void canvas_dump(const struct canvas *c, FILE *f)
{
	char *buf = malloc((size_t)c->w * 4 + 1);
	if (!buf)
		return;
	for (int y = 0; y < c->h; y++)
		fprintf(f, "%s\n", canvas_line(c, y, buf, (size_t)c->w * 4 + 1));
	free(buf);
}

bool canvas_contains(const struct canvas *c, const char *needle)
{
	char *buf = malloc((size_t)c->w * 4 + 1);
	bool found = false;
	if (!buf)
		return false;
	for (int y = 0; y < c->h && !found; y++)
		found = strstr(canvas_line(c, y, buf, (size_t)c->w * 4 + 1),
			       needle) != NULL;
	free(buf);
	return found;
}
