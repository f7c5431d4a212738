/* editor_bench.c - how long a selection move takes in the editor with a
 * big pool: the view-model step (rows_move) plus rendering the whole tree
 * screen into the canvas (ui_draw), which is what the editor does per key
 * before curses sends the changed cells.  Linked against the editor
 * library by make (BUILD/bench/editor_bench); run by bench/editor.sh.
 *
 *   editor_bench [N] [W H]    N images (default 10000), screen W x H
 *   editor_bench --pool DIR [W H]
 *                             the pool in DIR, scanned as the editor scans
 *                             it (graph_scan with the lock probe): the
 *                             scan's time comes first
 *
 * The search looks for the name of the last image, from the top.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/graph/graph.h"
#include "tui/editor/ui.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* N images as chains of 10, every tenth chain with a branch at layer 1
 * (the shape bench/gen_pool.py writes). */
static struct graph *gen(int n)
{
	struct graph *g = calloc(1, sizeof(*g));
	g->nodes = calloc((size_t)n, sizeof(*g->nodes));
	g->n = n;
	int *kids = calloc((size_t)n, sizeof(int));
	for (int i = 0; i < n; i++) {
		struct gnode *x = &g->nodes[i];
		int chain = i / 10, layer = i % 10;
		char name[64];
		snprintf(name, sizeof(name), "/pool/c%05d-l%02d.qcow2", chain,
			 layer);
		x->id = i;
		x->path = strdup(name);
		x->name = x->path;
		x->format = "qcow2";
		x->flags = GN_IN_POOL;
		x->backing = layer ? i - 1 : -1;
		if (layer == 9 && chain % 10 == 0)
			x->backing = i - 8;  /* a sibling branch */
		x->info.virtual_size = 64ull << 20;
		x->info.actual_size = 196608;
		x->info.cluster_size = 65536;
		x->info.version = 3;
	}
	for (int i = 0; i < n; i++)
		if (g->nodes[i].backing >= 0)
			kids[g->nodes[i].backing]++;
	for (int i = 0; i < n; i++) {
		g->nodes[i].children = calloc((size_t)kids[i] + 1, sizeof(int));
		g->nodes[i].nchildren = 0;
	}
	for (int i = 0; i < n; i++) {
		struct gnode *p = g->nodes[i].backing >= 0 ?
				  &g->nodes[g->nodes[i].backing] : NULL;
		if (p)
			p->children[p->nchildren++] = i;
	}
	free(kids);
	g->npool_images = n;
	return g;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The pool in dir as the editor scans it; prints the scan's time. */
static struct graph *scan(char *dir)
{
	struct scan_opts so = { .probe_locks = true };
	struct img_err e = { 0 };
	struct graph *g = NULL;
	double t0 = now_ns();

	if (graph_scan(&dir, 1, &so, &g, &e) < 0) {
		fprintf(stderr, "editor_bench: %s\n", e.msg);
		exit(1);
	}
	printf("editor bench: scan of %s (%d images): %.3f s\n", dir, g->n,
	       (now_ns() - t0) / 1e9);
	return g;
}

int main(int argc, char **argv)
{
	bool pool = argc > 2 && !strcmp(argv[1], "--pool");
	int ai = pool ? 3 : 2;
	int n = pool ? 0 : argc > 1 ? atoi(argv[1]) : 10000;
	int w = argc > ai + 1 ? atoi(argv[ai]) : 80;
	int h = argc > ai + 1 ? atoi(argv[ai + 1]) : 24;
	struct graph *g = pool ? scan(argv[2]) : gen(n);
	struct ui_state st;

	if (pool)
		n = g->n;
	if (n < 1)
		return 1;
	struct canvas cv;
	ui_state_init(&st);
	st.g = g;
	snprintf(st.pool_label, sizeof(st.pool_label), "/pool");
	double t0 = now_ns();
	if (rows_init(&st.rows, g) < 0 || canvas_init(&cv, w, h, true) < 0)
		return 1;
	double t1 = now_ns();
	ui_draw(&cv, &st);
	int moves = n < 2000 ? n : 2000;
	double worst = 0, total = 0;
	double *lat = calloc((size_t)moves, sizeof(double));
	for (int i = 0; i < moves; i++) {
		double a = now_ns();
		scr_tree_key(&st, i % 500 == 499 ? ACT_PGDN : ACT_DOWN);
		ui_draw(&cv, &st);
		double d = now_ns() - a;
		lat[i] = d;
		total += d;
		if (d > worst)
			worst = d;
	}
	qsort(lat, (size_t)moves, sizeof(double), cmp_double);
	double p99 = lat[moves * 99 / 100];
	free(lat);
	/* Jumps across the whole list (G/g) and a search over all names. */
	double a = now_ns();
	scr_tree_key(&st, ACT_END);
	ui_draw(&cv, &st);
	scr_tree_key(&st, ACT_HOME);
	ui_draw(&cv, &st);
	double jumps = (now_ns() - a) / 2;
	scr_tree_key(&st, ACT_HOME);
	const char *last = g->nodes[n - 1].name;
	a = now_ns();
	rows_search(&st.rows, last, 1);
	ui_draw(&cv, &st);
	double search = now_ns() - a;
	a = now_ns();
	rows_set_expanded(&st.rows, st.rows.row[0], false);
	ui_draw(&cv, &st);
	double collapse = now_ns() - a;
	printf("editor bench: %d images, %dx%d screen\n", n, w, h);
	printf("  view-model build (rows_init):   %8.3f ms\n", (t1 - t0) / 1e6);
	printf("  move + full redraw, mean:       %8.3f ms (%d moves)\n",
	       total / moves / 1e6, moves);
	printf("  move + full redraw, 99th pct:   %8.3f ms\n", p99 / 1e6);
	printf("  move + full redraw, worst:      %8.3f ms (includes "
	       "scheduler noise)\n", worst / 1e6);
	printf("  G/g jump + redraw:              %8.3f ms\n", jumps / 1e6);
	printf("  search all names + redraw:      %8.3f ms (for %s)\n",
	       search / 1e6, last);
	printf("  collapse + redraw:              %8.3f ms\n", collapse / 1e6);
	int bad = p99 / 1e6 >= 10.0, sbad = search / 1e6 >= 50.0;
	printf("  budget 10 ms per move (p99):    %s\n", bad ? "EXCEEDED" : "met");
	printf("  budget 50 ms per search:        %s\n",
	       sbad ? "EXCEEDED" : "met");
	return bad || sbad;
}
