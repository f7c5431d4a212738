/* graph_link.c - the last step of a scan: once every link is made, break
 * loops (so the graph is a forest), compute depths against GRAPH_MAX_DEPTH,
 * build children lists and the per-node flags.  All walks are iterative and
 * visit each node a bounded number of times, however deep the chains.
 */
#include "graph_int.h"
#include "formats/img.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Links of a loop named in its message before it is cut short. */
#define LOOP_MSG_MAX_LINKS 8

/* "a (8:2:1234) -> b (8:2:99) -> a" for the loop starting at id. */
static void loop_message(const struct graph *g, int start, char *buf,
			 size_t len)
{
	size_t pos = 0;
	int n = start, steps = 0;

	buf[0] = '\0';
	do {
		const struct gnode *x = &g->nodes[n];
		int r = snprintf(buf + pos, len - pos, "%s (%u:%u:%llu) -> ",
				 x->name, (unsigned)major(x->dev),
				 (unsigned)minor(x->dev),
				 (unsigned long long)x->ino);
		if (r < 0 || (size_t)r >= len - pos)
			break;
		pos += (size_t)r;
		n = x->backing;
	} while (n != start && n >= 0 && ++steps < LOOP_MSG_MAX_LINKS);
	if (n != start && pos + sizeof("... -> ") < len)
		pos += (size_t)snprintf(buf + pos, len - pos, "... -> ");
	snprintf(buf + pos, len - pos, "%s", g->nodes[start].name);
}

enum walk_state { UNVISITED = 0, ON_WALK, DONE };

static void break_loops(struct graph_builder *b)
{
	struct graph *g = b->g;
	unsigned char *state = calloc((size_t)g->n + 1, 1);  /* walk_state */
	char msg[1024];

	if (!state)
		return;
	for (int s = 0; s < g->n; s++) {
		int n = s;

		while (n >= 0 && state[n] == UNVISITED) {
			state[n] = ON_WALK;
			n = g->nodes[n].backing;
		}
		if (n >= 0 && state[n] == ON_WALK) {
			/* n starts a cycle: mark it, then cut the link that
			 * closes it (from the member reached last). */
			int m = n, last = n;

			loop_message(g, n, msg, sizeof(msg));
			do {
				graph_node_error(&g->nodes[m], GN_LOOP,
						"backing loop: %s", msg);
				last = m;
				m = g->nodes[m].backing;
			} while (m != n);
			g->nodes[last].backing = -1;
		}
		for (n = s; n >= 0 && state[n] == ON_WALK;
		     n = g->nodes[n].backing)
			state[n] = DONE;
	}
	free(state);
}

static int compute_depths(struct graph *g)
{
	int *stack = malloc(sizeof(int) * ((size_t)g->n + 1));

	if (!stack)
		return -ENOMEM;
	for (int i = 0; i < g->n; i++)
		g->nodes[i].depth = -1;
	for (int s = 0; s < g->n; s++) {
		int sp = 0, n = s, d;

		while (n >= 0 && g->nodes[n].depth < 0) {
			stack[sp++] = n;
			n = g->nodes[n].backing;
		}
		d = n >= 0 ? g->nodes[n].depth : -1;
		while (sp > 0)
			g->nodes[stack[--sp]].depth = ++d;
	}
	free(stack);
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].depth >= GRAPH_MAX_DEPTH &&
		    !(g->nodes[i].flags & GN_DEEP))
			graph_node_error(&g->nodes[i], GN_DEEP,
					"%s: backing chain of %d images is "
					"deeper than the limit of %d",
					g->nodes[i].path,
					g->nodes[i].depth + 1,
					GRAPH_MAX_DEPTH);
	return 0;
}

static int build_children(struct graph *g)
{
	int *count = calloc((size_t)g->n + 1, sizeof(int));

	if (!count)
		return -ENOMEM;
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].backing >= 0)
			count[g->nodes[i].backing]++;
	for (int i = 0; i < g->n; i++) {
		free(g->nodes[i].children);
		g->nodes[i].children = NULL;
		g->nodes[i].nchildren = 0;
		if (count[i]) {
			g->nodes[i].children = malloc(sizeof(int) *
						      (size_t)count[i]);
			if (!g->nodes[i].children) {
				free(count);
				return -ENOMEM;
			}
		}
	}
	/* Ascending ids: pool order, which is sorted by name. */
	for (int i = 0; i < g->n; i++) {
		int p = g->nodes[i].backing;
		if (p >= 0)
			g->nodes[p].children[g->nodes[p].nchildren++] = i;
	}
	free(count);
	return 0;
}

/* Links that the overlay's format itself refuses (a vmdk whose parentCID
 * is not its parent's CID: QEMU fails every read that reaches the parent)
 * put the overlay in error.  Only formats with such a rule are opened. */
static void check_format_links(struct graph *g)
{
	for (int i = 0; i < g->n; i++) {
		struct gnode *n = &g->nodes[i];
		const struct gnode *p;
		struct img *a = NULL, *bk = NULL;
		struct img_err e = { 0 };

		if (n->backing < 0 || (n->flags & GN_ERROR) || !n->format ||
		    !img_format_checks_backing(n->format))
			continue;
		p = &g->nodes[n->backing];
		if ((p->flags & (GN_ERROR | GN_EXTERNAL)) || !p->format)
			continue;
		if (img_open(n->path, n->format, IMG_O_INSPECT, &a, NULL,
			     &e) == 0 &&
		    img_open(p->path, p->format, IMG_O_INSPECT, &bk, NULL,
			     &e) == 0 &&
		    img_check_backing(a, bk, &e) < 0)
			graph_node_error(n, 0, "%s", e.msg);
		img_close(bk);
		img_close(a);
	}
}

int graph_link(struct graph_builder *b, struct img_err *e)
{
	struct graph *g = b->g;

	break_loops(b);
	check_format_links(g);
	if (compute_depths(g) < 0 || build_children(g) < 0)
		return err_set(e, ENOMEM, "pool scan: out of memory");
	g->npool_images = 0;
	for (int i = 0; i < g->n; i++) {
		struct gnode *n = &g->nodes[i];

		if (n->flags & GN_IN_POOL)
			g->npool_images++;
		/* access() honours read-only mounts and immutable files even
		 * for root, which is what "can we rewrite it" needs (asked
		 * on the open file when it was read: graph_node.c). */
		if (n->dev && !(n->flags & (GN_EXTERNAL | GN_MISSING)) &&
		    (b->px[i].wok ? b->px[i].wok < 0 :
		     access(n->path, W_OK) < 0))
			n->flags |= GN_RDONLY_FILE;
	}
	return 0;
}

bool graph_is_below(const struct graph *g, int n, int anc)
{
	/* The graph is a forest after graph_link; the bound guards anyway. */
	for (int steps = 0; n >= 0 && steps <= g->n; steps++) {
		n = g->nodes[n].backing;
		if (n == anc)
			return true;
	}
	return false;
}
