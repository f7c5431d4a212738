/* ow.c - JSON/YAML writer; see ow.h.
 *
 * JSON is pretty-printed with 4-space indentation like qemu-img's.  YAML is
 * block style; every string is double-quoted so that names such as "no",
 * "0x10" or ": x" round-trip without surprises.
 */
#include "ow.h"

#include <string.h>

int ow_parse_fmt(const char *s, enum out_fmt *out)
{
	if (!strcmp(s, "human"))
		*out = OUT_HUMAN;
	else if (!strcmp(s, "json"))
		*out = OUT_JSON;
	else if (!strcmp(s, "yaml"))
		*out = OUT_YAML;
	else
		return -1;
	return 0;
}

void ow_init(struct ow *w, FILE *f, enum out_fmt fmt)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->fmt = fmt;
}

static void indent(struct ow *w, int n)
{
	for (int i = 0; i < n; i++)
		fputs(w->fmt == OUT_JSON ? "    " : "  ", w->f);
}

static void put_escaped(struct ow *w, const char *s)
{
	fputc('"', w->f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", w->f); break;
		case '\\': fputs("\\\\", w->f); break;
		case '\n': fputs("\\n", w->f); break;
		case '\r': fputs("\\r", w->f); break;
		case '\t': fputs("\\t", w->f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(w->f, "\\u%04x", *p);
			else
				fputc(*p, w->f);
		}
	}
	fputc('"', w->f);
}

/* Emit what comes before a value: separator, indentation and key. */
static void pre(struct ow *w, const char *key, bool container)
{
	int d = w->depth;
	bool in_arr = d > 0 && w->is_arr[d - 1];

	if (w->fmt == OUT_JSON) {
		if (d > 0) {
			fputs(w->count[d - 1] ? ",\n" : "\n", w->f);
			indent(w, d);
		}
		if (d > 0 && !in_arr) {
			put_escaped(w, key ? key : "");
			fputs(": ", w->f);
		}
	} else {
		/* YAML */
		if (d > 0) {
			if (w->pending_dash) {
				w->pending_dash = false;   /* "- " already out */
			} else if (d == 1 && !w->count[0]) {
				/* first key of the document: no blank line */
			} else {
				fputc('\n', w->f);
				indent(w, d - 1);
			}
			if (in_arr) {
				fputs("- ", w->f);
				if (container)
					w->pending_dash = true;
			} else {
				fputs(key ? key : "\"\"", w->f);
				fputs(":", w->f);
				if (!container)
					fputc(' ', w->f);
			}
		}
	}
	if (d > 0)
		w->count[d - 1]++;
}

static void open_container(struct ow *w, const char *key, bool arr)
{
	bool in_arr = w->depth > 0 && w->is_arr[w->depth - 1];

	pre(w, key, true);
	if (w->fmt == OUT_JSON)
		fputc(arr ? '[' : '{', w->f);
	else if (w->depth > 0 && !in_arr)
		w->pending_dash = false;
	if (w->depth < OW_MAX_DEPTH) {
		w->is_arr[w->depth] = arr;
		w->count[w->depth] = 0;
	}
	w->depth++;
}

void ow_obj_open(struct ow *w, const char *key)
{
	open_container(w, key, false);
}

void ow_arr_open(struct ow *w, const char *key)
{
	open_container(w, key, true);
}

void ow_close(struct ow *w)
{
	int d = --w->depth;
	bool arr = w->is_arr[d];

	if (w->fmt == OUT_JSON) {
		if (w->count[d]) {
			fputc('\n', w->f);
			indent(w, d);
		}
		fputc(arr ? ']' : '}', w->f);
	} else if (!w->count[d]) {
		/* empty container: YAML flow form */
		if (w->pending_dash)
			w->pending_dash = false;
		else if (d > 0)
			fputc(' ', w->f);
		fputs(arr ? "[]" : "{}", w->f);
	}
}

void ow_str(struct ow *w, const char *key, const char *val)
{
	pre(w, key, false);
	if (val)
		put_escaped(w, val);
	else
		fputs("null", w->f);
}

void ow_u64(struct ow *w, const char *key, uint64_t v)
{
	pre(w, key, false);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void ow_i64(struct ow *w, const char *key, int64_t v)
{
	pre(w, key, false);
	fprintf(w->f, "%lld", (long long)v);
}

void ow_bool(struct ow *w, const char *key, bool v)
{
	pre(w, key, false);
	fputs(v ? "true" : "false", w->f);
}

void ow_null(struct ow *w, const char *key)
{
	ow_str(w, key, NULL);
}

void ow_finish(struct ow *w)
{
	fputc('\n', w->f);
}
