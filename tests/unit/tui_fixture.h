/* tui_fixture.h - hand-built graphs for the editor's unit tests
 * (test_rows.c, test_render.c); no images, no terminal. */
#ifndef IMGRAPH_TUI_FIXTURE_H
#define IMGRAPH_TUI_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "core/graph/graph.h"

/* n nodes named names[i] with backing[i] (-1 = root); children filled. */
static struct graph *fx_graph(int n, const char *const *names,
			      const int *backing)
{
	struct graph *g = calloc(1, sizeof(*g));
	g->n = n;
	g->nodes = calloc((size_t)n, sizeof(*g->nodes));
	for (int i = 0; i < n; i++) {
		struct gnode *x = &g->nodes[i];
		x->id = i;
		x->name = strdup(names[i]);
		char p[300];
		snprintf(p, sizeof(p), "/pool/%s", names[i]);
		x->path = strdup(p);
		x->format = strdup("qcow2");
		x->backing = backing[i];
		x->flags = GN_IN_POOL;
		x->info.virtual_size = 64ull << 20;
		x->info.actual_size = (uint64_t)(i + 1) << 20;
		x->info.cluster_size = 65536;
		x->info.version = 3;
		x->children = calloc((size_t)n, sizeof(int));
	}
	for (int i = 0; i < n; i++) {
		int b = backing[i];
		if (b >= 0 && b < n) {
			struct gnode *p = &g->nodes[b];
			p->children[p->nchildren++] = i;
			if (!g->nodes[i].backing_name) {
				g->nodes[i].backing_name = strdup(p->name);
				g->nodes[i].backing_fmt = strdup("qcow2");
			}
		}
	}
	g->npool_images = n;
	return g;
}

static void fx_free(struct graph *g)
{
	for (int i = 0; i < g->n; i++) {
		struct gnode *x = &g->nodes[i];
		free(x->name);
		free(x->path);
		free(x->format);
		free(x->children);
		free(x->backing_name);
		free(x->backing_fmt);
		free(x->error);
	}
	free(g->nodes);
	free(g);
}

/* The demo pool's shape:
 *  0 base <- 1 mid <- 2 top <- {3 vm-web, 4 vm-db}
 *  5 golden <- {6 dev <- 7 dev-snap, 8 test};  9 scratch.raw */
static struct graph *fx_demo(void)
{
	static const char *const names[] = {
		"base.qcow2", "mid.qcow2", "top.qcow2", "vm-web.qcow2",
		"vm-db.qcow2", "golden.qcow2", "dev.qcow2", "dev-snap.qcow2",
		"test.qcow2", "scratch.raw",
	};
	static const int backing[] = { -1, 0, 1, 2, 2, -1, 5, 6, 5, -1 };
	struct graph *g = fx_graph(10, names, backing);
	free(g->nodes[9].format);
	g->nodes[9].format = strdup("raw");
	g->nodes[9].info.cluster_size = 0;
	return g;
}

#endif
