/* fz_users.c - libFuzzer target: the users-file YAML parser and the
 * repoint renderer (core/graph/users.h).
 *
 * The input is written as users.yaml in a private scratch dir that also
 * holds two empty files, "img" and "new", so that entries naming "img" are
 * real images to repoint.  users_load parses it; on success users_repoint
 * rewrites every entry naming img to new.
 * Oracles: errors carry a message naming the file; entries have name, kind
 * and image; perm/shared masks stay within the 5 known bits; the repointed
 * text parses again with the same number of entries, in which nothing names
 * img any more, and the number changed matches.
 */
#include "fz_common.h"
#define FZ_NAME "fz_users"
#include "fz_scratch.h"
#include "core/graph/users.h"

#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_scratch();
	static char path[PATH_MAX + 32], path2[PATH_MAX + 32],
		img[PATH_MAX + 32], nimg[PATH_MAX + 32];
	struct users_file *u = NULL, *u2 = NULL;
	struct img_err e = { 0 };
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int r, nchanged = 0, still = 0;

	if (!path[0]) {
		snprintf(path, sizeof(path), "%s/users.yaml", dir);
		snprintf(path2, sizeof(path2), "%s/users2.yaml", dir);
		snprintf(img, sizeof(img), "%s/img", dir);
		snprintf(nimg, sizeof(nimg), "%s/new", dir);
		fz_scratch_put("img", (const uint8_t *)"", 0);
		fz_scratch_put("new", (const uint8_t *)"", 0);
	}
	fz_scratch_put("users.yaml", data, size);
	r = users_load(path, &u, &e);
	if (r < 0) {
		fz_check_err(r, e.msg, "users.yaml", "users_load");
		FZ_ASSERT(u == NULL, "failed load returned entries");
		return 0;
	}
	for (int i = 0; i < u->n; i++) {
		const struct users_entry *x = &u->v[i];
		FZ_ASSERT(x->name && x->kind && x->image && x->path,
			  "entry %d incomplete", i);
		FZ_ASSERT(!(x->perm & ~0x1f) && !(x->shared & ~0x1f),
			  "entry %d perm 0x%x shared 0x%x", i, x->perm, x->shared);
		FZ_ASSERT(x->line >= 1, "entry %d line %d", i, x->line);
	}
	FZ_ASSERT(stat(img, &st) == 0, "stat img");
	r = users_repoint(path, st.st_dev, st.st_ino, nimg, &text, &len,
			  &nchanged, &e);
	if (r == 0) {
		fz_scratch_put("users2.yaml", (const uint8_t *)text, len);
		r = users_load(path2, &u2, &e);
		FZ_ASSERT(r == 0, "repointed file does not parse: %s", e.msg);
		FZ_ASSERT(u2->n == u->n, "%d entries became %d", u->n, u2->n);
		for (int i = 0; i < u2->n; i++) {
			struct stat s2;
			if (stat(u2->v[i].path, &s2) == 0 &&
			    s2.st_dev == st.st_dev && s2.st_ino == st.st_ino)
				still++;
		}
		FZ_ASSERT(still == 0, "%d entries still name img after repoint",
			  still);
		FZ_ASSERT(nchanged >= 0 && nchanged <= u->n, "nchanged %d of %d",
			  nchanged, u->n);
		users_free(u2);
	} else {
		FZ_ASSERT(e.msg[0], "repoint failed without a message");
	}
	free(text);
	users_free(u);
	return 0;
}
