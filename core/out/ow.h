/* ow.h - one structured-output writer for JSON and YAML (and a flag for
 * human text, which callers format themselves).
 *
 * Usage: ow_begin; ow_obj_open(w, NULL); ow_str(w, "filename", path);
 * ow_u64(...); ow_arr_open(w, "children"); ... ow_close(w); ow_end.
 * Keys are ignored inside arrays.  Strings are escaped for the target.
 * The writer owns nothing; it writes to the FILE it was given.
 */
#ifndef IMGRAPH_OW_H
#define IMGRAPH_OW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum out_fmt { OUT_HUMAN, OUT_JSON, OUT_YAML };

#define OW_MAX_DEPTH 32

struct ow {
	FILE *f;
	enum out_fmt fmt;
	int depth;
	bool is_arr[OW_MAX_DEPTH];
	int count[OW_MAX_DEPTH];
	bool pending_dash;         /* YAML: "- " awaiting the first key */
};

/* Parse "human|json|yaml"; returns -1 when unknown. */
int ow_parse_fmt(const char *s, enum out_fmt *out);

void ow_init(struct ow *w, FILE *f, enum out_fmt fmt);
void ow_obj_open(struct ow *w, const char *key);
void ow_arr_open(struct ow *w, const char *key);
void ow_close(struct ow *w);
void ow_str(struct ow *w, const char *key, const char *val); /* NULL: null */
void ow_u64(struct ow *w, const char *key, uint64_t v);
void ow_i64(struct ow *w, const char *key, int64_t v);
void ow_bool(struct ow *w, const char *key, bool v);
void ow_null(struct ow *w, const char *key);
/* Finish the document (newline). */
void ow_finish(struct ow *w);

#endif
