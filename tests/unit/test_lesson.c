/* test_lesson.c - the teaching view's stages (core/plan/plan_lesson.c)
 * say what the plan object says: one copy stage per layer above base with
 * the plan's bytes for it (summing to bytes_to_copy), one relink stage per
 * parent with its old and new backing and what it reads before and after,
 * the commit's phases in order; a plan that cannot run has no stages. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph/graph.h"
#include "core/plan/plan.h"
#include "core/plan/plan_lesson.h"
#include "formats/img.h"

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", ut_tmpdir, name);
}

/* A 1 MiB qcow2 on backing, with len bytes of data written at off. */
static void make(const char *name, const char *backing, uint64_t off,
		 size_t len)
{
	struct img_create_opts o = { .size = 1 << 20, .backing = backing,
				     .backing_fmt = backing ? "qcow2" : NULL };
	struct img_err e = { 0 };
	struct img *im = NULL;
	char p[PATH_MAX];
	tmp_path(p, sizeof(p), name);
	ck_assert_msg(img_create(img_format_find("qcow2"), p, &o, &e) == 0,
		      "%s", e.msg);
	if (!len)
		return;
	ck_assert_msg(img_open(p, "qcow2", IMG_O_RDWR, &im, NULL, &e) == 0,
		      "%s", e.msg);
	char *buf = malloc(len);
	memset(buf, 0x5a, len);
	ck_assert_msg(img_pwrite(im, off, buf, len, &e) == 0, "%s", e.msg);
	free(buf);
	img_close(im);
}

static bool has_line(const struct lesson_stage *s, const char *needle)
{
	for (int i = 0; i < s->nlines; i++)
		if (strstr(s->lines[i], needle))
			return true;
	return false;
}

START_TEST(stages_follow_the_plan)
{
	char *paths[1] = { ut_tmpdir };
	struct scan_opts so = { 0 };
	struct img_err e = { 0 };
	struct graph *g = NULL;
	struct plan *p = NULL;
	struct plan_lesson *l = NULL;
	char tp[PATH_MAX], bp[PATH_MAX];

	make("base.qcow2", NULL, 0, 65536);
	make("mid.qcow2", "base.qcow2", 65536, 2 * 65536);
	make("top.qcow2", "mid.qcow2", 131072, 3 * 65536);
	make("vm.qcow2", "top.qcow2", 0, 0);
	ck_assert_msg(graph_scan(paths, 1, &so, &g, &e) == 0, "%s", e.msg);
	tmp_path(tp, sizeof(tp), "top.qcow2");
	tmp_path(bp, sizeof(bp), "base.qcow2");
	int top = graph_lookup(g, tp, &e), base = graph_lookup(g, bp, &e);
	ck_assert(top >= 0 && base >= 0);
	ck_assert_msg(plan_build(g, top, base, NULL, &p, &e) == 0, "%s", e.msg);
	ck_assert(plan_runnable(p));
	ck_assert_ptr_nonnull(p->layer_bytes);
	/* top gives its 3 clusters, mid the one top does not cover. */
	ck_assert_uint_eq(p->layer_bytes[0], 3 * 65536);
	ck_assert_uint_eq(p->layer_bytes[1], 65536);
	ck_assert_uint_eq(p->layer_bytes[0] + p->layer_bytes[1],
			  p->bytes_to_copy);

	ck_assert_int_eq(plan_lesson_build(g, p, NULL, &l, &e), 0);
	ck_assert_int_eq(l->n, 4 + (p->ninter + 1) + p->nparents);
	ck_assert_int_eq(l->nlayers, p->ninter + 1);
	const char *order[] = { NULL, "check", "copy", "copy", "flush",
				"relink", "cleanup" };
	int ncopy = 0, nrelink = 0;
	for (int i = 0; i < l->n; i++) {
		const struct lesson_stage *s = &l->st[i];
		if (order[i])
			ck_assert_str_eq(s->phase, order[i]);
		else
			ck_assert_ptr_null(s->phase);
		if (s->kind == LESSON_COPY) {
			ck_assert_int_eq(s->layer, ncopy);
			ck_assert_uint_eq(s->bytes, p->layer_bytes[ncopy]);
			ncopy++;
		}
		if (s->kind == LESSON_RELINK) {
			const struct plan_parent *pp = &p->parents[s->parent];
			char want[PATH_MAX * 2];
			snprintf(want, sizeof(want), "backing '%s' (qcow2) -> "
				 "'%s' (qcow2)", pp->old_name, pp->new_name);
			ck_assert(has_line(s, want));
			ck_assert(has_line(s, "reads before: "));
			nrelink++;
		}
	}
	ck_assert_int_eq(ncopy, p->ninter + 1);
	ck_assert_int_eq(nrelink, p->nparents);
	/* The map: each layer's cells add up to its bytes. */
	for (int i = 0; i < l->nlayers; i++) {
		double sum = 0;
		for (int k = 0; k < PLAN_MAP_CELLS; k++)
			sum += l->cells[(size_t)i * PLAN_MAP_CELLS + k];
		double want = (double)p->layer_bytes[i] /
			      ((1 << 20) / (double)PLAN_MAP_CELLS);
		ck_assert(sum > want - 0.01 && sum < want + 0.01);
	}
	plan_lesson_free(l);
	plan_free(p);

	/* base above top: no stages, and why. */
	p = NULL;
	ck_assert_int_eq(plan_build(g, base, top, NULL, &p, &e), 0);
	ck_assert(!plan_runnable(p));
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(plan_lesson_build(g, p, NULL, &l, &e), -EINVAL);
	ck_assert_ptr_null(l);
	ck_assert(strstr(e.msg, "cannot run"));
	plan_free(p);
	graph_free(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lesson");
	TCase *tc = tcase_create("stages");
	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, stages_follow_the_plan);
	suite_add_tcase(s, tc);
	return ut_run(s);
}
