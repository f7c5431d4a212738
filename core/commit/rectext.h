/* rectext.h - the text form shared by every record imgraph keeps beside
 * the images (the relink journal, the stale record, the trash record).
 *
 * One record per line, fields separated by one space; strings and bytes
 * in lowercase hex ("-" for none, "=" for empty); every line ends with
 * " *CRC" (crc32 of the line's text before " *"), and the file ends with
 * "end CRC" over every byte before it.  A torn or edited file is refused
 * as a whole: nothing is ever acted on from a line that fails its CRC.
 *
 * The parser is written for hostile input: every length is checked
 * against the remaining bytes and the caller's caps before anything is
 * allocated; errors name the record kind (rt_parser.what) and the line.
 */
#ifndef IMGRAPH_RECTEXT_H
#define IMGRAPH_RECTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

/* ---- writing ------------------------------------------------------------ */

struct rt_buf {
	char *p;                   /* owned; handed over by rt_finish */
	size_t len, cap;
	size_t line_start;
	int oom;
};

void rt_add(struct rt_buf *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* " " + hex of data; " -" for NULL, " =" for empty. */
void rt_hex(struct rt_buf *s, const void *data, size_t n);
void rt_str(struct rt_buf *s, const char *str);
/* " *CRC\n" closing the current line. */
void rt_end_line(struct rt_buf *s);
/* Append "end CRC\n" and hand the text over (*buf owned by the caller);
 * -ENOMEM (e names what) when any step ran out of memory. */
int rt_finish(struct rt_buf *s, const char *what, char **buf, size_t *len,
	      struct img_err *e);

/* ---- parsing ------------------------------------------------------------ */

#define RT_MAX_FIELDS 20

struct rt_tok {
	const char *p;
	size_t n;
};

struct rt_parser {
	const char *what;          /* "journal", "stale record", ... */
	const char *buf;
	size_t len, pos;
	int lineno;
	struct rt_tok f[RT_MAX_FIELDS];
	int nf;
	struct img_err *e;
};

/* EINVAL "WHAT line N: message"; returns -EINVAL. */
int rt_err(struct rt_parser *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ENOMEM "WHAT: out of memory"; returns -ENOMEM. */
int rt_oom(struct rt_parser *c);
/* Split the next line into fields after checking its CRC (is_end: the
 * "end" line, which carries none). */
int rt_next_line(struct rt_parser *c, bool is_end);
bool rt_tok_is(const struct rt_tok *t, const char *w);
/* The current line is a KEY record of exactly nfields fields. */
int rt_expect(struct rt_parser *c, const char *key, int nfields);
/* Field parsers: 0 or -1 (malformed); rt_bytes -2 when out of memory. */
int rt_hex32(const struct rt_tok *t, uint32_t *out);
int rt_hex64(const struct rt_tok *t, uint64_t *out);    /* 16 digits */
int rt_u64(const struct rt_tok *t, uint64_t max, uint64_t *out);
/* "-" => NULL (only when is_null is given), "=" => empty, else hex of at
 * most max bytes; *out is NUL-terminated and owned by the caller. */
int rt_bytes(const struct rt_tok *t, size_t max, uint8_t **out, size_t *n,
	     bool *is_null);
/* Field i as a string of at most max bytes without NUL or newline; "-"
 * => NULL when nullable.  Fails with rt_err naming `name`. */
int rt_str_field(struct rt_parser *c, int i, const char *name, bool nullable,
		 size_t max, char **out);
/* Field i as a file name or path of at most max bytes: not empty, no NUL;
 * any other byte (a newline too: a file may be named so) is kept. */
int rt_name_field(struct rt_parser *c, int i, const char *name, size_t max,
		  char **out);
/* "end CRC" over every byte before it, and nothing after. */
int rt_end(struct rt_parser *c);

#endif
