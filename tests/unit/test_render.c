/* test_render.c - the editor's screens rendered to text without a
 * terminal: layout at 80x24 / 60x17 / too small, glyph sets, the action
 * table driving bar and help, plan/progress/map screens, key handling. */
#include "helpers.h"
#include <check.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/out/esc.h"
#include "core/plan/plan.h"
#include "tui/editor/editor_int.h"
#include "tui/editor/ui.h"
#include "tui_fixture.h"

static struct graph *G;
static struct ui_state ST;
static struct canvas CV;

static void setup_at(int w, int h, bool utf8)
{
	G = fx_demo();
	ui_state_init(&ST);
	ST.g = G;
	snprintf(ST.pool_label, sizeof(ST.pool_label), "/pool");
	ck_assert_int_eq(rows_init(&ST.rows, G), 0);
	ck_assert_int_eq(canvas_init(&CV, w, h, utf8), 0);
}

static void teardown(void)
{
	ui_state_free(&ST);
	fx_free(G);
	canvas_free(&CV);
}

static const char *line(int y)
{
	static char buf[4096];
	return canvas_line(&CV, y, buf, sizeof(buf));
}

/* Row below the title bar holding needle, or -1. */
static int find_row(const char *needle)
{
	for (int y = 1; y < CV.h; y++)
		if (strstr(line(y), needle))
			return y;
	return -1;
}

static void dump_on_fail(void)
{
	canvas_dump(&CV, stderr);
}

/* A two-layer map: layer 0 data in the first quarter (its second half
 * compressed), layer 1 zeros in the second, nothing elsewhere. */
static struct cmap *two_layer_map(int node)
{
	struct cmap *m = calloc(1, sizeof(*m));
	m->node = node;
	m->nlayers = 2;
	m->names = calloc(2, sizeof(char *));
	m->names[0] = strdup("top.qcow2");
	m->names[1] = strdup("mid.qcow2");
	m->vsize = 64ull << 20;
	m->nregions = 64;
	m->share = calloc(3 * 64, sizeof(float));
	m->zshare = calloc(3 * 64, sizeof(float));
	m->cshare = calloc(3 * 64, sizeof(float));
	for (int i = 0; i < 16; i++)
		m->share[i] = 1;
	for (int i = 8; i < 16; i++)   /* compressed clusters */
		m->cshare[i] = 1;
	for (int i = 16; i < 32; i++)
		m->share[64 + i] = m->zshare[64 + i] = 1;
	for (int i = 32; i < 64; i++)
		m->share[128 + i] = 1;
	return m;
}

START_TEST(tree_80x24_ascii)
{
	setup_at(80, 24, false);
	ST.mark_top = 2;
	ST.mark_base = 0;
	ui_draw(&CV, &ST);
	if (!canvas_contains(&CV, "10 images"))
		dump_on_fail();
	ck_assert(strstr(line(0), "imgraph  /pool  10 images, 3 chains"));
	if (!strstr(line(0), "T:top.qcow2 B:base.qcow2")) dump_on_fail();
	ck_assert(strstr(line(0), "T:top.qcow2 B:base.qcow2"));
	ck_assert(strstr(line(1), "IMAGE"));
	ck_assert(strstr(line(1), "FMT"));
	ck_assert(strstr(line(1), "ALLOC"));
	ck_assert(strstr(line(1), "KIDS"));
	/* Rows: markers, guides, sizes, child counts. */
	int y = find_row("base.qcow2");
	ck_assert_int_eq(y, 2);
	ck_assert(!strncmp(line(y), "[B] base.qcow2", 14));
	ck_assert(strstr(line(y), "qcow2    64 MiB     1 MiB    1"));
	ck_assert(!strncmp(line(find_row("top.qcow2")), "[T]   `-top.qcow2", 17));
	ck_assert(strstr(line(find_row("vm-db")), "    |-vm-db.qcow2"));
	ck_assert(strstr(line(find_row("dev-snap")), "| `-dev-snap.qcow2"));
	ck_assert(strstr(line(find_row("scratch")), "raw"));
	/* The selected row (row 0) is drawn in the selection role. */
	ck_assert_int_eq(CV.cells[2 * 80 + 40].role, R_SEL);
	ck_assert_int_eq(CV.cells[3 * 80 + 40].role, R_NORMAL);
	/* Detail pane: path of the selection, its info. */
	ck_assert(find_row("/pool/base.qcow2") > 10);
	ck_assert(canvas_contains(&CV, "qcow2 v3, 64 MiB virtual, 1 MiB allocated, "
				  "cluster 64 KiB, 1 overlay"));
	ck_assert(canvas_contains(&CV, "no backing file (a root)"));
	ck_assert(canvas_contains(&CV, "cluster map: computing..."));
	/* Function bar from the action table: u where there are marks,
	 * and what does not fit dropped least important first (R, then
	 * i), never q. */
	ck_assert(strstr(line(23), "/ Search  t Top  b Base  u Unmark  p Plan  "
			 "c Commit  m Map  ? Help  q Quit"));
	teardown();
}
END_TEST

START_TEST(tree_utf8_glyphs)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	setup_at(80, 24, true);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(find_row("top.qcow2")), "  \u2514\u2500top.qcow2"));
	ck_assert(strstr(line(find_row("vm-db")), "\u251c\u2500vm-db"));
	ck_assert(strstr(line(find_row("dev-snap")), "\u2502 \u2514\u2500dev-snap"));
	/* A wide character is one '?' column; a control character is
	 * escaped as the CLI prints it (\001), never sent raw. */
	free(G->nodes[9].name);
	G->nodes[9].name = strdup("sc\u4e2d\x01r.raw");
	rows_free(&ST.rows);
	rows_init(&ST.rows, G);
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "sc?\\001r.raw"));
	teardown();
}
END_TEST

START_TEST(narrow_and_too_small)
{
	setup_at(60, 17, false);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(1), "FMT"));
	ck_assert(!strstr(line(1), "ALLOC"));
	ck_assert(!strstr(line(1), "KIDS"));
	ck_assert(canvas_contains(&CV, "base.qcow2"));
	/* 60 columns: the bar keeps the marks, ? and q (issue 14: q Quit
	 * was lost). */
	ck_assert_str_eq(line(16), "/ Search  t Top  b Base  m Map  i Info  "
			 "? Help  q Quit");
	ST.mark_top = 2;
	ui_draw(&CV, &ST);
	ck_assert_str_eq(line(16), "t Top  b Base  u Unmark  p Plan  c Commit  "
			 "? Help  q Quit");
	ST.mark_top = -1;
	canvas_resize(&CV, 59, 17);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "Terminal too small"));
	ck_assert(strstr(line(1), "59x17, need 60x17"));
	canvas_resize(&CV, 100, 16);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "Terminal too small"));
	teardown();
}
END_TEST

START_TEST(scrolling_keeps_selection_visible)
{
	setup_at(80, 24, false);
	int ty, th, dy, dh;
	scr_tree_layout(&ST, 80, 24, &ty, &th, &dy, &dh);
	ck_assert_int_eq(ty + th, dy);
	ck_assert_int_eq(dy + dh, 22);               /* status + bar below */
	ck_assert(dh >= 6);
	for (int i = 0; i < 9; i++)
		ck_assert_int_eq(scr_tree_key(&ST, ACT_DOWN), REQ_SELECT);
	ui_draw(&CV, &ST);
	int y = find_row("scratch.raw");
	ck_assert(y > 1 && y < dy);
	ck_assert_int_eq(CV.cells[y * 80 + 30].role, R_SEL);
	ck_assert(canvas_contains(&CV, "/pool/scratch.raw"));
	teardown();
}
END_TEST

START_TEST(long_names_keep_their_end)
{
	setup_at(80, 24, false);
	free(G->nodes[9].name);
	G->nodes[9].name = strdup("a-very-long-directory-name/another-level/"
				  "and-more/scratch-image-final.raw");
	rows_free(&ST.rows);
	rows_init(&ST.rows, G);
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "scratch-image-final.raw"));
	ck_assert(canvas_contains(&CV, "<"));
	teardown();
}
END_TEST

START_TEST(keys_marks_search_prompt)
{
	setup_at(80, 24, false);
	ck_assert_int_eq(scr_tree_key(&ST, ACT_PLAN), REQ_NONE);
	ck_assert(strstr(ST.msg, "mark a top first"));
	ck_assert_int_eq(scr_tree_key(&ST, ACT_TOP), REQ_MARKS);
	ck_assert_int_eq(ST.mark_top, 0);
	ck_assert_int_eq(scr_tree_key(&ST, ACT_BASE), REQ_MARKS);
	ck_assert_int_eq(ST.mark_base, 0);
	ck_assert_int_eq(ST.mark_top, -1);           /* one image, one mark */
	ck_assert_int_eq(scr_tree_key(&ST, ACT_NEXT), REQ_NONE);
	ck_assert(strstr(ST.msg, "no search yet"));
	/* "/" opens the prompt; every key is text, even 'q' and 'j'. */
	scr_tree_key(&ST, ACT_SEARCH);
	ck_assert(ST.prompt);
	for (const char *p = "vm-jq"; *p; p++)
		scr_tree_prompt_key(&ST, *p);
	scr_tree_prompt_key(&ST, UI_KEY_DEL);
	scr_tree_prompt_key(&ST, UI_KEY_DEL);
	ck_assert_str_eq(ST.prompt_buf, "vm-");
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(22), "/vm-"));
	ck_assert_int_eq(scr_tree_prompt_key(&ST, '\r'), REQ_SELECT);
	ck_assert(!ST.prompt);
	ck_assert_str_eq(G->nodes[rows_selected(&ST.rows)].name, "vm-db.qcow2");
	scr_tree_key(&ST, ACT_NEXT);
	ck_assert_str_eq(G->nodes[rows_selected(&ST.rows)].name, "vm-web.qcow2");
	scr_tree_key(&ST, ACT_PREV);
	ck_assert_str_eq(G->nodes[rows_selected(&ST.rows)].name, "vm-db.qcow2");
	ck_assert_int_eq(scr_tree_key(&ST, ACT_TOP), REQ_MARKS);
	ck_assert_int_eq(scr_tree_key(&ST, ACT_PLAN), REQ_PLAN);
	ck_assert_int_eq(scr_tree_key(&ST, ACT_COMMIT), REQ_COMMIT);
	ck_assert_int_eq(scr_tree_key(&ST, ACT_QUIT), REQ_QUIT);
	scr_tree_key(&ST, ACT_UNMARK);
	ck_assert_int_eq(ST.mark_top, -1);
	ck_assert_int_eq(ST.mark_base, -1);
	/* Esc closes the prompt without searching. */
	scr_tree_key(&ST, ACT_SEARCH);
	scr_tree_prompt_key(&ST, 'x');
	scr_tree_prompt_key(&ST, UI_KEY_ESC);
	ck_assert(!ST.prompt);
	ck_assert_str_eq(ST.last_search, "vm-");
	teardown();
}
END_TEST

START_TEST(help_from_action_table)
{
	setup_at(80, 24, false);
	char *t = scr_help_text("Try this: step one\n");
	/* The guide is the first page of help. */
	ck_assert(!strncmp(t, "Try this: step one\n", 19));
	for (int a = 0; a < ACT_COUNT; a++) {
		ck_assert(strstr(t, ui_actions[a].keys));
		ck_assert(strstr(t, ui_actions[a].help));
	}
	free(t);
	scr_tree_key(&ST, ACT_HELP);
	ck_assert_int_eq(ST.scr, SCR_HELP);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "imgraph help"));
	ck_assert(canvas_contains(&CV, "mark the selected image as top"));
	scr_help_key(&ST, ACT_END);
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "a cancelled commit leaves every image "
				  "valid"));
	scr_help_key(&ST, ACT_CANCEL);
	ck_assert_int_eq(ST.scr, SCR_TREE);
	teardown();
}
END_TEST

START_TEST(text_screen_plan_and_question)
{
	setup_at(80, 24, false);
	char text[8192] = "";
	strcat(text, "top: dev.qcow2\nbase: golden.qcow2\n");
	for (int i = 0; i < 40; i++)
		sprintf(text + strlen(text), "filler %d\n", i);
	strcat(text, "conflict: permission on golden.qcow2\n"
		     "  why: test.qcow2 reads golden.qcow2\n"
		     "  hint: commit test.qcow2 first\n");
	textview_set(&ST.text, "Plan: commit dev into golden", text);
	ST.scr = SCR_TEXT;
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "Plan: commit dev into golden  (1-21 of 45)"));
	ck_assert(strstr(line(1), "top: dev.qcow2"));
	scr_text_key(&ST, ACT_END);
	ui_draw(&CV, &ST);
	int y = find_row("conflict: permission");
	ck_assert(y > 0);
	ck_assert_int_eq(CV.cells[y * 80].role, R_ERROR);
	ck_assert_int_eq(CV.cells[(y + 2) * 80 + 2].role, R_OK);
	ck_assert_int_eq(scr_text_role("  why: x"), R_WARN);
	ck_assert_int_eq(scr_text_role("Parents:"), R_HEADER);
	ST.question = "Commit: copy top's data into base now?";
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(22), "Commit: copy top's data into base now? (y/N)"));
	ck_assert(strstr(line(23), "y Yes  n Esc Enter No"));
	ck_assert_int_eq(scr_text_key(&ST, ACT_CANCEL), REQ_NO);
	ST.question = NULL;
	scr_text_key(&ST, ACT_CANCEL);
	ck_assert_int_eq(ST.scr, SCR_TREE);
	teardown();
}
END_TEST

START_TEST(text_screen_wraps_long_lines)
{
	setup_at(60, 17, false);
	textview_set(&ST.text, "Plan",
		     "  why: '/very/long/path/test.qcow2' reads "
		     "'/very/long/path/golden.qcow2' as its backing file; the "
		     "commit writes top's data into it\nnext line");
	ST.scr = SCR_TEXT;
	ui_draw(&CV, &ST);
	/* Breaks at spaces, continuation indented under the text, nothing
	 * lost, the role carried over. */
	ck_assert_str_eq(line(1), "  why: '/very/long/path/test.qcow2' reads");
	ck_assert(!strncmp(line(2), "      '/very/long/path/golden.qcow2' as its backing", 51));
	ck_assert(canvas_contains(&CV, "commit writes top's data into it"));
	int y = find_row("next line");
	ck_assert(y > 3);
	ck_assert_int_eq(CV.cells[2 * 60 + 8].role, R_WARN);
	ck_assert(strstr(line(0), "(1-4 of 4)"));
	teardown();
}
END_TEST

START_TEST(progress_screen)
{
	setup_at(80, 24, false);
	ST.scr = SCR_PROGRESS;
	struct prog_view *p = &ST.prog;
	snprintf(p->title, sizeof(p->title), "Committing top.qcow2 into base.qcow2");
	/* Before the first report: no "0 B of 0 B", no phase yet. */
	p->phase = -1;
	p->eta = -1;
	p->total = 64ull << 20;
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "0 B of 64 MiB copied"));
	ck_assert(canvas_contains(&CV, "Opening the images"));
	ck_assert(!canvas_contains(&CV, "0 B of 0 B"));
	/* The copy, check skipped (a raw base has none). */
	p->phase = 1;
	p->seen[1] = true;
	p->done = p->pdone = 32ull << 20;
	p->ptotal = 64ull << 20;
	p->fraction = 0.02 + 0.9 * 0.5;
	snprintf(p->layer, sizeof(p->layer), "mid.qcow2");
	p->rate = 8 << 20;
	p->eta = 4;
	p->elapsed = 4;
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "Committing top.qcow2 into base.qcow2"));
	ck_assert(canvas_contains(&CV, "Phases:  check skipped  [copy]  flush  "
				  "relink  cleanup"));
	ck_assert(canvas_contains(&CV, " 47.0%"));
	ck_assert(canvas_contains(&CV, " 50.0%"));
	ck_assert(canvas_contains(&CV, "32 MiB of 64 MiB copied"));
	ck_assert(canvas_contains(&CV, "copy: 32 MiB of 64 MiB, reading mid.qcow2"));
	ck_assert(canvas_contains(&CV, "Rate: 8 MiB/s   Elapsed: 0:04   ETA: 0:04"));
	ck_assert(canvas_contains(&CV, "[##################################"));
	ck_assert_int_eq(scr_progress_key(&ST, ACT_CANCEL), REQ_CANCEL_ASK);
	ck_assert_int_eq(scr_progress_key(&ST, ACT_QUIT), REQ_CANCEL_ASK);
	ck_assert_int_eq(scr_progress_key(&ST, ACT_DOWN), REQ_NONE);
	p->cancelling = true;
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "Cancelling at the next safe point"));
	/* The flush: named, the copy done. */
	p->phase = 2;
	p->seen[2] = true;
	p->pdone = 0;
	p->ptotal = 1;
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "copy done  [flush]"));
	ck_assert(canvas_contains(&CV, "flush: base's new data"));
	teardown();
}
END_TEST

START_TEST(map_strip_and_full_map)
{
	setup_at(80, 24, false);
	ST.map = two_layer_map(0);
	ui_draw(&CV, &ST);
	int y = find_row("A top.qcow2");
	ck_assert(y > 0);
	const char *l = line(y);
	/* 64 regions over the strip: first quarter data, then dots. */
	ck_assert(strstr(l, "####%%%%"));
	ck_assert(strstr(l, "...."));
	l = line(y + 1);
	ck_assert(strstr(l, "B mid.qcow2"));
	ck_assert(strstr(l, "0000"));
	/* The legend names every kind of cell and the cell size. */
	ck_assert(canvas_contains(&CV, "# data % compressed + part 0 zero "
				  ". not here  cell 1.12 MiB"));
	ST.scr = SCR_MAP;
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "Cluster map: top.qcow2  (64 MiB virtual, 2 layers)"));
	ck_assert(canvas_contains(&CV, "A/a top.qcow2"));
	ck_assert(canvas_contains(&CV, "B/b mid.qcow2"));
	/* Grid: the first quarter of the cells is A, the second b. */
	int gy = find_row("      0 B");
	ck_assert(gy > 0);
	ck_assert(strstr(line(gy), "AAAAAAAA"));
	ck_assert(canvas_contains(&CV, "AAAA%%%%"));
	ck_assert(canvas_contains(&CV, "upper case: data, lower case: zero "
				  "clusters, % compressed, 1 cell = "));
	ck_assert(canvas_contains(&CV, "bbbbbbbb"));
	ck_assert(canvas_contains(&CV, "........"));
	ck_assert_int_eq(scr_map_key(&ST, ACT_CANCEL), REQ_NONE);
	ck_assert_int_eq(ST.scr, SCR_TREE);
	/* A map that could not be built says why. */
	snprintf(ST.map->error, sizeof(ST.map->error), "cannot open x");
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "cluster map: cannot open x"));
	teardown();
}
END_TEST

START_TEST(flags_errors_and_users)
{
	setup_at(80, 24, false);
	G->nodes[8].flags |= GN_IN_USE;
	G->nodes[9].flags |= GN_ERROR | GN_OUTSIDE;
	G->nodes[9].error = strdup("scratch.raw: cannot open: Permission denied");
	struct guser u = { .kind = PARTY_USER, .name = "vm-test",
			   .user_kind = "vm", .node = 8 };
	G->users = &u;
	G->nusers = 1;
	/* The editor builds the rows after each scan, from its flags. */
	rows_free(&ST.rows);
	ck_assert_int_eq(rows_init(&ST.rows, G), 0);
	ui_draw(&CV, &ST);
	ck_assert(strstr(line(0), "1 in use, 1 error, 1 outside"));
	ck_assert(strstr(line(find_row("test.qcow2")), " U"));
	ck_assert(strstr(line(find_row("scratch.raw")), "!O"));
	rows_select_node(&ST.rows, 9);
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "scratch.raw: cannot open: Permission denied"));
	rows_select_node(&ST.rows, 8);
	ui_draw(&CV, &ST);
	ck_assert(canvas_contains(&CV, "user: vm-test (vm)"));
	ck_assert(canvas_contains(&CV, "backing: golden.qcow2 (qcow2)"));
	G->users = NULL;
	G->nusers = 0;
	teardown();
}
END_TEST

START_TEST(canvas_basics)
{
	struct canvas c;
	ck_assert_int_eq(canvas_init(&c, 10, 2, false), 0);
	ck_assert_int_eq(canvas_put(&c, 0, 7, -1, R_NORMAL, "abcdef"), 3);
	ck_assert_int_eq(canvas_put(&c, 5, 0, -1, R_NORMAL, "x"), 0);
	char b[64];
	ck_assert_str_eq(canvas_line(&c, 0, b, sizeof(b)), "       abc");
	ck_assert_str_eq(canvas_line(&c, 1, b, sizeof(b)), "");
	/* ASCII canvas: a UTF-8 sequence is one '?'; a byte that is not
	 * UTF-8 is escaped like ls -b, and an escape is never cut. */
	canvas_put(&c, 1, 0, -1, R_NORMAL, "\u00e9t\xff");
	ck_assert_str_eq(canvas_line(&c, 1, b, sizeof(b)), "?t\\377");
	canvas_clear(&c);
	ck_assert_int_eq(canvas_put(&c, 0, 0, -1, R_NORMAL,
				    "ab\x1b[7mcdefg"), 10);
	ck_assert_str_eq(canvas_line(&c, 0, b, sizeof(b)), "ab\\033[7mc");
	ck_assert_int_eq(canvas_put(&c, 1, 0, 4, R_NORMAL, "ab\x1b"), 2);
	ck_assert_int_eq(canvas_strwidth(&c, "a\x1b\\"), 6);
	canvas_free(&c);
}
END_TEST

START_TEST(after_graph_text)
{
	setup_at(80, 24, false);
	/* top (2) into base (0) through mid (1); vm-db (4), vm-web (3). */
	int inter[] = { 1 };
	struct plan_parent par[2] = {
		{ .node = 4, .user = -1, .old_name = "top.qcow2" },
		{ .node = 3, .user = -1, .old_name = "top.qcow2" },
	};
	struct plan p = { .top = 2, .base = 0, .inter = inter, .ninter = 1,
			  .parents = par, .nparents = 2 };
	char *t = editor_after_text(G, &p, false);
	ck_assert_ptr_nonnull(t);
	/* Every image marked with what the plan does to it (core's words):
	 * what it shows changes, stays, or it is left stale/unused. */
	ck_assert(strstr(t, "After the relink:\n"
			    "  base.qcow2      takes top's data - its view "
			    "changes\n"
			    "  |-vm-db.qcow2   reads base now - view stays\n"
			    "  `-vm-web.qcow2  reads base now - view stays\n"
			    "Out of the chains (kept on disk):\n"
			    "  mid.qcow2       left stale - its view changes\n"
			    "  top.qcow2       left unused - nothing reads "
			    "it\n"));
	ck_assert(!strstr(t, "golden"));     /* only base's tree */
	free(t);
	/* A leaf top is kept on base, emptied. */
	struct plan leaf = { .top = 7, .base = 6, .leaf = PLAN_LEAF_KEEP };
	t = editor_after_text(G, &leaf, true);
	ck_assert(strstr(t, "  golden.qcow2        untouched - view stays\n"));
	ck_assert(strstr(t, "\u2502 \u2514\u2500dev-snap.qcow2  kept, "
			    "emptied, reads base - view stays"));
	ck_assert(!strstr(t, "Out of the chains"));
	free(t);
	/* With --drop-top it leaves the graph instead: the plan's leaf
	 * field, not "no parents", decides. */
	leaf.leaf = PLAN_LEAF_DROP;
	t = editor_after_text(G, &leaf, true);
	ck_assert(!strstr(t, "kept, emptied"));
	ck_assert(strstr(t, "Out of the chains (kept on disk):\n"
			    "  dev-snap.qcow2  dropped, keeps its old link"));
	free(t);
	teardown();
}
END_TEST

/* esc_put writes runs of plain bytes at once; what it writes is still
 * esc_ctl's text, and a short buffer still cuts at a whole piece. */
START_TEST(escape_file_and_buffer)
{
	const char *in = "ab c\\d\n\xc3\xa9\xc2\x85\xff\x1b[0m\x7fz";
	const char *want = "ab c\\\\d\\n\xc3\xa9\\302\\205\\377"
			   "\\033[0m\\177z";
	char big[ESC_MAX], small[6], *mem = NULL;
	size_t mlen = 0;
	FILE *f = open_memstream(&mem, &mlen);

	ck_assert_ptr_nonnull(f);
	esc_put(f, in);
	fclose(f);
	ck_assert_str_eq(mem, want);
	ck_assert_str_eq(esc_ctl(in, big, sizeof(big)), want);
	ck_assert(esc_needed(in));
	ck_assert(!esc_needed("plain name \xc3\xa9.qcow2"));
	/* "ab c" fits, the escape "\\\\" (2 bytes) does not: cut before it */
	ck_assert_str_eq(esc_ctl(in, small, 6), "ab c");
	/* a UTF-8 sequence is never cut in half */
	ck_assert_str_eq(esc_ctl("abcd\xc3\xa9", small, 6), "abcd");
	free(mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("render");
	tcase_add_test(tc, canvas_basics);
	tcase_add_test(tc, tree_80x24_ascii);
	tcase_add_test(tc, tree_utf8_glyphs);
	tcase_add_test(tc, narrow_and_too_small);
	tcase_add_test(tc, scrolling_keeps_selection_visible);
	tcase_add_test(tc, long_names_keep_their_end);
	tcase_add_test(tc, keys_marks_search_prompt);
	tcase_add_test(tc, help_from_action_table);
	tcase_add_test(tc, text_screen_plan_and_question);
	tcase_add_test(tc, text_screen_wraps_long_lines);
	tcase_add_test(tc, progress_screen);
	tcase_add_test(tc, map_strip_and_full_map);
	tcase_add_test(tc, flags_errors_and_users);
	tcase_add_test(tc, after_graph_text);
	tcase_add_test(tc, escape_file_and_buffer);
	suite_add_tcase(s, tc);
	return ut_run(s);
}
