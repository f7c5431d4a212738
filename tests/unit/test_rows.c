/* test_rows.c - the tree view-model (tui/editor/rows.c) without a terminal. */
#include "helpers.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "tui/editor/rows.h"
#include "tui_fixture.h"

static const char *row_name(const struct rows *r, int i)
{
	return r->g->nodes[r->row[i]].name;
}

static const char *guide(const struct rows *r, int i, char *buf)
{
	return rows_guide(r, i, "|", "|", "`", "-", 40, buf, 256);
}

START_TEST(forest_order_and_guides)
{
	struct graph *g = fx_demo();
	struct rows r;
	ck_assert_int_eq(rows_init(&r, g), 0);
	ck_assert_int_eq(r.nrows, 10);
	/* Roots and siblings by name; children under their backing file. */
	static const char *const want[] = {
		"base.qcow2", "mid.qcow2", "top.qcow2", "vm-db.qcow2",
		"vm-web.qcow2", "golden.qcow2", "dev.qcow2", "dev-snap.qcow2",
		"test.qcow2", "scratch.raw",
	};
	for (int i = 0; i < 10; i++)
		ck_assert_str_eq(row_name(&r, i), want[i]);
	char b[256];
	ck_assert_str_eq(guide(&r, 0, b), "");
	ck_assert_str_eq(guide(&r, 1, b), "`-");
	ck_assert_str_eq(guide(&r, 2, b), "  `-");
	ck_assert_str_eq(guide(&r, 3, b), "    |-");
	ck_assert_str_eq(guide(&r, 4, b), "    `-");
	ck_assert_str_eq(guide(&r, 6, b), "|-");     /* dev: test follows */
	ck_assert_str_eq(guide(&r, 7, b), "| `-");   /* dev-snap */
	ck_assert_str_eq(guide(&r, 8, b), "`-");     /* test */
	ck_assert_int_eq(rows_selected(&r), 0);
	rows_free(&r);
	fx_free(g);
}
END_TEST

START_TEST(collapse_expand_keep_selection)
{
	struct graph *g = fx_demo();
	struct rows r;
	rows_init(&r, g);
	rows_set_height(&r, 20);
	rows_select_row(&r, 2);                      /* top */
	ck_assert(rows_collapse(&r));
	ck_assert_int_eq(r.nrows, 8);
	ck_assert_str_eq(row_name(&r, r.sel), "top.qcow2");
	ck_assert_str_eq(row_name(&r, 3), "golden.qcow2");
	/* Collapsing a collapsed node goes to its parent. */
	ck_assert(rows_collapse(&r));
	ck_assert_str_eq(row_name(&r, r.sel), "mid.qcow2");
	/* Collapse base while vm-db was selected: selection climbs. */
	rows_select_row(&r, 0);
	rows_toggle(&r);
	ck_assert_int_eq(r.nrows, 6);
	rows_toggle(&r);
	ck_assert_int_eq(r.nrows, 8);                 /* top still collapsed */
	ck_assert(!rows_expand(&r));                   /* already expanded */
	rows_select_row(&r, 2);
	ck_assert(rows_expand(&r));
	ck_assert_int_eq(r.nrows, 10);
	/* A leaf: collapse selects its parent, expand does nothing. */
	rows_select_row(&r, 4);
	ck_assert_str_eq(row_name(&r, r.sel), "vm-web.qcow2");
	ck_assert(!rows_expand(&r));
	ck_assert(rows_collapse(&r));
	ck_assert_str_eq(row_name(&r, r.sel), "top.qcow2");
	/* Collapse an ancestor of the selection through set_expanded. */
	rows_select_row(&r, 7);                        /* dev-snap */
	rows_set_expanded(&r, 5, false);
	ck_assert_str_eq(row_name(&r, r.sel), "golden.qcow2");
	rows_free(&r);
	fx_free(g);
}
END_TEST

START_TEST(move_page_scroll)
{
	struct graph *g = fx_demo();
	struct rows r;
	rows_init(&r, g);
	rows_set_height(&r, 4);
	rows_move(&r, 5);
	ck_assert_int_eq(r.sel, 5);
	ck_assert_int_eq(r.top, 2);                   /* 5 is the last shown */
	rows_move(&r, -1);
	ck_assert_int_eq(r.top, 2);                   /* no scroll needed */
	rows_move(&r, -100);
	ck_assert_int_eq(r.sel, 0);
	ck_assert_int_eq(r.top, 0);
	rows_page(&r, 1);
	ck_assert_int_eq(r.sel, 3);
	rows_end(&r);
	ck_assert_int_eq(r.sel, 9);
	ck_assert_int_eq(r.top, 6);
	rows_move(&r, 3);
	ck_assert_int_eq(r.sel, 9);
	rows_home(&r);
	ck_assert_int_eq(r.sel, 0);
	/* Growing the pane never leaves blank rows under the list. */
	rows_end(&r);
	rows_set_height(&r, 8);
	ck_assert_int_eq(r.top, 2);
	rows_free(&r);
	fx_free(g);
}
END_TEST

START_TEST(search_wraps_and_expands)
{
	struct graph *g = fx_demo();
	struct rows r;
	rows_init(&r, g);
	rows_set_height(&r, 3);
	rows_select_row(&r, 0);
	rows_set_expanded(&r, 5, false);              /* hide dev-snap */
	ck_assert_int_eq(rows_search(&r, "SNAP", 1), 7);
	ck_assert_str_eq(row_name(&r, r.sel), "dev-snap.qcow2");
	ck_assert(r.sel >= r.top && r.sel < r.top + r.height);
	/* next "qcow2" after dev-snap is test, then wraps to base. */
	ck_assert_int_eq(rows_search(&r, "qcow2", 1), 8);
	ck_assert_int_eq(rows_search(&r, "qcow2", 1), 0);
	ck_assert_int_eq(rows_search(&r, "qcow2", -1), 8);
	ck_assert_int_eq(rows_search(&r, "no-such", 1), -1);
	ck_assert_int_eq(rows_search(&r, "", 1), -1);
	rows_free(&r);
	fx_free(g);
}
END_TEST

START_TEST(loops_and_empty)
{
	/* 0 <- 1 <- 2 <- 0 is a loop; 3 is fine.  Every node once. */
	static const char *const names[] = { "a", "b", "c", "d" };
	static const int backing[] = { 2, 0, 1, -1 };
	struct graph *g = fx_graph(4, names, backing);
	struct rows r;
	ck_assert_int_eq(rows_init(&r, g), 0);
	ck_assert_int_eq(r.nrows, 4);
	int seen[4] = { 0 };
	for (int i = 0; i < r.nrows; i++)
		seen[r.row[i]]++;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(seen[i], 1);
	rows_free(&r);
	fx_free(g);

	struct graph empty = { 0 };
	ck_assert_int_eq(rows_init(&r, &empty), 0);
	ck_assert_int_eq(r.nrows, 0);
	ck_assert_int_eq(rows_selected(&r), -1);
	rows_move(&r, 1);
	rows_end(&r);
	ck_assert(!rows_collapse(&r));
	ck_assert_int_eq(rows_search(&r, "x", 1), -1);
	ck_assert_int_eq(rows_selected(&r), -1);
	rows_free(&r);
	ck_assert_int_eq(rows_init(&r, NULL), 0);
	ck_assert_int_eq(r.nrows, 0);
	rows_free(&r);
}
END_TEST

START_TEST(deep_chain_guide_is_bounded)
{
	enum { N = 300 };
	const char *names[N];
	int backing[N];
	char buf[N][8];
	for (int i = 0; i < N; i++) {
		snprintf(buf[i], sizeof(buf[i]), "n%03d", i);
		names[i] = buf[i];
		backing[i] = i - 1;
	}
	struct graph *g = fx_graph(N, names, backing);
	struct rows r;
	rows_init(&r, g);
	ck_assert_int_eq(r.nrows, N);
	char b[256];
	rows_guide(&r, N - 1, "|", "|", "`", "-", 21, b, sizeof(b));
	ck_assert(strlen(b) <= 21);
	ck_assert(!strncmp(b, "<299", 4));
	ck_assert_str_eq(b + strlen(b) - 2, "`-");
	/* 10 levels fit in 21 columns; depth 11 on show their depth, on the
	 * two-column grid (even length), and a child within a window is one
	 * level further right than its parent. */
	rows_guide(&r, 10, "|", "|", "`", "-", 21, b, sizeof(b));
	ck_assert_int_eq((int)strlen(b), 20);
	ck_assert(b[0] == ' ');
	char prev[256] = "";
	for (int d = 11; d < 40; d++) {
		rows_guide(&r, d, "|", "|", "`", "-", 21, b, sizeof(b));
		char want[8];
		snprintf(want, sizeof(want), "<%-3d", d);
		ck_assert(!strncmp(b, want, 4));
		ck_assert_int_eq((int)strlen(b) % 2, 0);
		ck_assert(strlen(b) <= 20);
		if (prev[0] && strlen(b) > strlen(prev))
			ck_assert_int_eq((int)(strlen(b) - strlen(prev)), 2);
		snprintf(prev, sizeof(prev), "%s", b);
	}
	rows_free(&r);
	fx_free(g);
}
END_TEST

START_TEST(labels_drop_the_shared_directory)
{
	static const char *const names[] = {
		"/srv/pool/b.qcow2", "/srv/pool/sub/a.qcow2", "/other/base.raw",
	};
	static const int backing[] = { 2, 0, -1 };
	struct graph *g = fx_graph(3, names, backing);
	g->nodes[2].flags = GN_OUTSIDE;          /* reached as a backing file */
	struct rows r;
	rows_init(&r, g);
	ck_assert_str_eq(rows_label(&r, 0), "b.qcow2");
	ck_assert_str_eq(rows_label(&r, 1), "sub/a.qcow2");
	ck_assert_str_eq(rows_label(&r, 2), "/other/base.raw");  /* outside */
	ck_assert_str_eq(rows_label(&r, 7), "?");
	/* Search and order use the labels. */
	rows_home(&r);
	ck_assert_int_eq(rows_search(&r, "SUB/", 1), 1);
	ck_assert_int_eq(rows_search(&r, "srv", 1), -1);
	rows_free(&r);
	fx_free(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rows");
	TCase *tc = tcase_create("rows");
	tcase_add_test(tc, forest_order_and_guides);
	tcase_add_test(tc, collapse_expand_keep_selection);
	tcase_add_test(tc, move_page_scroll);
	tcase_add_test(tc, search_wraps_and_expands);
	tcase_add_test(tc, loops_and_empty);
	tcase_add_test(tc, deep_chain_guide_is_bounded);
	tcase_add_test(tc, labels_drop_the_shared_directory);
	suite_add_tcase(s, tc);
	return ut_run(s);
}
