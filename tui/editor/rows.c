/* rows.c - tree view-model (see rows.h). */
#include "rows.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct rows *sort_r;   /* qsort has no context argument */

static const char *node_name(const struct graph *g, int i)
{
	const struct gnode *n = &g->nodes[i];
	return n->name ? n->name : n->path ? n->path : "";
}

const char *rows_label(const struct rows *r, int id)
{
	return id >= 0 && id < r->n ? r->label[id] : "?";
}

static int cmp_by_name(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	int c = strcmp(sort_r->label[x], sort_r->label[y]);
	return c ? c : (x > y) - (x < y);
}

/* Length of the directory part ("/pool/dir/") every pool image's name
 * shares; 0 when there is none. */
static size_t common_dir(const struct graph *g)
{
	const char *first = NULL;
	size_t len = 0;
	for (int i = 0; i < g->n; i++) {
		if (!(g->nodes[i].flags & GN_IN_POOL))
			continue;
		const char *nm = node_name(g, i);
		if (!first) {
			first = nm;
			const char *sl = strrchr(nm, '/');
			len = sl ? (size_t)(sl - nm + 1) : 0;
			continue;
		}
		size_t k = 0;
		while (k < len && nm[k] == first[k])
			k++;
		while (k > 0 && first[k - 1] != '/')
			k--;
		len = k;
	}
	return len;
}

static void rows_visible(struct rows *r);

void rows_free(struct rows *r)
{
	free(r->parent);
	free(r->depth);
	free(r->kid_off);
	free(r->nkids);
	free(r->kids);
	free(r->expanded);
	free(r->last);
	free(r->order);
	free(r->row);
	free(r->label);
	memset(r, 0, sizeof(*r));
	r->sel = -1;
}

/* Scratch arrays of rows_init: the backing children of every node (raw_*,
 * CSR layout, sorted by name), the roots, and the walk's stack. */
struct tree_scratch {
	int *raw_off, *raw_n, *raw_kids;
	int *roots, nroots;
	int *stack;
	unsigned char *seen;
};

static void scratch_free(struct tree_scratch *t)
{
	free(t->raw_off);
	free(t->raw_n);
	free(t->raw_kids);
	free(t->roots);
	free(t->stack);
	free(t->seen);
}

static int scratch_alloc(struct tree_scratch *t, size_t sz)
{
	memset(t, 0, sizeof(*t));
	t->raw_off = calloc(sz + 1, sizeof(int));
	t->raw_n = calloc(sz, sizeof(int));
	t->raw_kids = malloc(sz * sizeof(int));
	t->roots = malloc(sz * sizeof(int));
	t->stack = malloc(sz * sizeof(int));
	t->seen = calloc(sz, 1);
	if (!t->raw_off || !t->raw_n || !t->raw_kids || !t->roots ||
	    !t->stack || !t->seen) {
		scratch_free(t);
		return -ENOMEM;
	}
	return 0;
}

/* The view-model's own arrays, for sz nodes. */
static int rows_alloc(struct rows *r, size_t sz)
{
	r->parent = malloc(sz * sizeof(int));
	r->depth = malloc(sz * sizeof(int));
	r->kid_off = calloc(sz, sizeof(int));
	r->nkids = calloc(sz, sizeof(int));
	r->kids = malloc(sz * sizeof(int));
	r->expanded = malloc(sz);
	r->last = calloc(sz, 1);
	r->order = malloc(sz * sizeof(int));
	r->row = malloc(sz * sizeof(int));
	r->label = malloc(sz * sizeof(char *));
	if (!r->parent || !r->depth || !r->kid_off || !r->nkids ||
	    !r->kids || !r->expanded || !r->last || !r->order || !r->row ||
	    !r->label)
		return -ENOMEM;
	memset(r->expanded, 1, sz);
	return 0;
}

/* Labels: names with the directory every pool image shares cut off. */
static void set_labels(struct rows *r, const struct graph *g)
{
	size_t cut = r->n ? common_dir(g) : 0;
	const char *ref = NULL;
	for (int i = 0; i < r->n && !ref; i++)
		if (g->nodes[i].flags & GN_IN_POOL)
			ref = node_name(g, i);
	for (int i = 0; i < r->n; i++) {
		const char *nm = node_name(g, i);
		/* Only names under the shared directory lose it. */
		r->label[i] = cut && strlen(nm) > cut && !strncmp(nm, ref, cut)
			      ? nm + cut : nm;
	}
}

/* Children by backing link, each list sorted by name; the roots too. */
static void backing_children(const struct rows *r, const struct graph *g,
			     struct tree_scratch *t)
{
	int n = r->n;
	for (int i = 0; i < n; i++) {
		int b = g->nodes[i].backing;
		if (b >= 0 && b < n && b != i)
			t->raw_n[b]++;
		else
			t->roots[t->nroots++] = i;
	}
	for (int i = 0; i < n; i++)
		t->raw_off[i + 1] = t->raw_off[i] + t->raw_n[i];
	memset(t->raw_n, 0, (size_t)n * sizeof(int));
	for (int i = 0; i < n; i++) {
		int b = g->nodes[i].backing;
		if (b >= 0 && b < n && b != i)
			t->raw_kids[t->raw_off[b] + t->raw_n[b]++] = i;
	}
	sort_r = r;
	for (int i = 0; i < n; i++)
		if (t->raw_n[i] > 1)
			qsort(t->raw_kids + t->raw_off[i], (size_t)t->raw_n[i],
			      sizeof(int), cmp_by_name);
	qsort(t->roots, (size_t)t->nroots, sizeof(int), cmp_by_name);
}

/* Depth-first from root, children in name order, never revisiting a node
 * (backing loops are broken where the walk first meets them). */
static void walk(struct rows *r, int root, struct tree_scratch *t)
{
	int sp = 0;
	t->stack[sp++] = root;
	r->parent[root] = -1;
	r->depth[root] = 0;
	t->seen[root] = 1;
	while (sp) {
		int v = t->stack[--sp];
		r->order[r->norder++] = v;
		for (int k = t->raw_n[v] - 1; k >= 0; k--) {
			int c = t->raw_kids[t->raw_off[v] + k];
			if (t->seen[c])
				continue;
			t->seen[c] = 1;
			r->parent[c] = v;
			r->depth[c] = r->depth[v] + 1;
			t->stack[sp++] = c;
		}
	}
}

/* Display children (from the walk), in display order, and which node is
 * the last of its siblings (it gets the closing tree guide). */
static void display_children(struct rows *r, int *fill)
{
	int n = r->n;
	for (int i = 0; i < n; i++)
		if (r->parent[i] >= 0)
			r->nkids[r->parent[i]]++;
	for (int i = 1; i < n; i++)
		r->kid_off[i] = r->kid_off[i - 1] + r->nkids[i - 1];
	memset(fill, 0, (size_t)n * sizeof(int));
	int last_root = -1;
	for (int k = 0; k < r->norder; k++) {
		int v = r->order[k], p = r->parent[v];
		if (p < 0) {
			last_root = v;
			continue;
		}
		r->kids[r->kid_off[p] + fill[p]++] = v;
	}
	for (int i = 0; i < n; i++)
		if (r->nkids[i])
			r->last[r->kids[r->kid_off[i] + r->nkids[i] - 1]] = 1;
	if (last_root >= 0)
		r->last[last_root] = 1;
}

static void count_flags(struct rows *r, const struct graph *g)
{
	for (int i = 0; i < r->n; i++) {
		const struct gnode *n = &g->nodes[i];
		r->nroots += n->backing < 0;
		r->nin_use += (n->flags & GN_IN_USE) != 0;
		r->nerrors += (n->flags & GN_ERROR) != 0;
		r->noutside += (n->flags & (GN_OUTSIDE | GN_EXTERNAL)) != 0;
	}
}

int rows_init(struct rows *r, const struct graph *g)
{
	struct tree_scratch t;
	memset(r, 0, sizeof(*r));
	r->g = g;
	r->sel = -1;
	r->height = 1;
	r->n = g ? g->n : 0;
	size_t sz = (size_t)(r->n ? r->n : 1);
	if (rows_alloc(r, sz) < 0 || scratch_alloc(&t, sz) < 0) {
		rows_free(r);
		return -ENOMEM;
	}
	set_labels(r, g);
	count_flags(r, g);
	backing_children(r, g, &t);
	for (int i = 0; i < t.nroots; i++)
		walk(r, t.roots[i], &t);
	/* Nodes on a backing loop have no root: show each loop from its
	 * first member as a root of its own. */
	for (int i = 0; i < r->n; i++)
		if (!t.seen[i])
			walk(r, i, &t);
	display_children(r, t.raw_n);
	scratch_free(&t);
	rows_visible(r);
	r->sel = r->nrows ? 0 : -1;
	r->top = 0;
	return 0;
}

/* Recompute the visible rows from the expanded flags. */
static void rows_visible(struct rows *r)
{
	int skip_depth = -1;
	r->nrows = 0;
	for (int k = 0; k < r->norder; k++) {
		int v = r->order[k];
		if (skip_depth >= 0 && r->depth[v] > skip_depth)
			continue;
		skip_depth = -1;
		r->row[r->nrows++] = v;
		if (!r->expanded[v] && r->nkids[v])
			skip_depth = r->depth[v];
	}
}

static void rows_scroll(struct rows *r)
{
	if (r->height < 1)
		r->height = 1;
	if (r->sel < 0) {
		r->top = 0;
		return;
	}
	if (r->sel < r->top)
		r->top = r->sel;
	if (r->sel >= r->top + r->height)
		r->top = r->sel - r->height + 1;
	/* No empty space below the last row when the list could fill it. */
	if (r->top > 0 && r->top + r->height > r->nrows)
		r->top = r->nrows > r->height ? r->nrows - r->height : 0;
	if (r->top < 0)
		r->top = 0;
}

int rows_selected(const struct rows *r)
{
	return r->sel >= 0 && r->sel < r->nrows ? r->row[r->sel] : -1;
}

void rows_set_height(struct rows *r, int h)
{
	r->height = h < 1 ? 1 : h;
	rows_scroll(r);
}

void rows_select_row(struct rows *r, int idx)
{
	if (!r->nrows) {
		r->sel = -1;
		return;
	}
	if (idx < 0)
		idx = 0;
	if (idx >= r->nrows)
		idx = r->nrows - 1;
	r->sel = idx;
	rows_scroll(r);
}

void rows_move(struct rows *r, int delta)
{
	rows_select_row(r, r->sel + delta);
}

void rows_page(struct rows *r, int pages)
{
	int step = r->height > 1 ? r->height - 1 : 1;
	rows_select_row(r, r->sel + pages * step);
}

void rows_home(struct rows *r)
{
	rows_select_row(r, 0);
}

void rows_end(struct rows *r)
{
	rows_select_row(r, r->nrows - 1);
}

/* Rebuild the visible rows keeping node `keep` selected (or its nearest
 * visible ancestor). */
static void rows_refresh(struct rows *r, int keep)
{
	rows_visible(r);
	if (keep < 0) {
		rows_select_row(r, 0);
		return;
	}
	for (;;) {
		for (int i = 0; i < r->nrows; i++)
			if (r->row[i] == keep) {
				rows_select_row(r, i);
				return;
			}
		if (r->parent[keep] < 0)
			break;
		keep = r->parent[keep];
	}
	rows_select_row(r, 0);
}

bool rows_select_node(struct rows *r, int node)
{
	if (node < 0 || node >= r->n)
		return false;
	bool changed = false;
	for (int a = r->parent[node]; a >= 0; a = r->parent[a])
		if (!r->expanded[a]) {
			r->expanded[a] = 1;
			changed = true;
		}
	if (changed)
		rows_visible(r);
	rows_refresh(r, node);
	return true;
}

bool rows_collapse(struct rows *r)
{
	int v = rows_selected(r);
	if (v < 0)
		return false;
	if (r->nkids[v] && r->expanded[v]) {
		r->expanded[v] = 0;
		rows_refresh(r, v);
		return true;
	}
	if (r->parent[v] >= 0) {
		rows_refresh(r, r->parent[v]);
		return true;
	}
	return false;
}

bool rows_expand(struct rows *r)
{
	int v = rows_selected(r);
	if (v < 0 || !r->nkids[v] || r->expanded[v])
		return false;
	r->expanded[v] = 1;
	rows_refresh(r, v);
	return true;
}

bool rows_toggle(struct rows *r)
{
	int v = rows_selected(r);
	if (v < 0 || !r->nkids[v])
		return false;
	r->expanded[v] = !r->expanded[v];
	rows_refresh(r, v);
	return true;
}

void rows_set_expanded(struct rows *r, int node, bool on)
{
	if (node < 0 || node >= r->n || r->expanded[node] == on)
		return;
	int keep = rows_selected(r);
	r->expanded[node] = on;
	rows_refresh(r, keep);
}

int rows_search(struct rows *r, const char *pat, int dir)
{
	if (!pat || !*pat || !r->norder)
		return -1;
	int cur = rows_selected(r), start = 0;
	for (int k = 0; k < r->norder && cur >= 0; k++)
		if (r->order[k] == cur) {
			start = k;
			break;
		}
	int step = dir < 0 ? -1 : 1;
	for (int i = 1; i <= r->norder; i++) {
		int k = ((start + step * i) % r->norder + r->norder) % r->norder;
		int v = r->order[k];
		if (strcasestr(r->label[v], pat)) {
			rows_select_node(r, v);
			return v;
		}
	}
	return -1;
}

/* Levels hidden in front of a row at depth d when only slots two-column
 * levels fit (d > slots).  The deep rows go in windows of step depths that
 * share one value, so a row and its children within a window keep their
 * guides in the same columns; the first window starts right after the last
 * depth drawn in full.  avail: levels left after the depth number. */
static int guide_hidden(int d, int slots, int avail)
{
	int step = avail / 2 > 0 ? avail / 2 : 1;
	int window = (d - slots - 1) / step;
	return slots + step - avail + window * step;
}

const char *rows_guide(const struct rows *r, int idx, const char *vert,
		       const char *tee, const char *corner, const char *horiz,
		       int maxw, char *buf, size_t len)
{
	buf[0] = 0;
	if (idx < 0 || idx >= r->nrows || len < 2)
		return buf;
	int v = r->row[idx], d = r->depth[v];
	int slots = maxw / 2;      /* two columns per level */
	if (d == 0 || slots < 1)
		return buf;
	/* Too deep for the columns: the depth number ("<11 ", two levels'
	 * worth of columns) stands for the outer levels, then the innermost
	 * ones. */
	int hidden = 0, avail = slots - 2;
	if (d > slots) {
		if (avail < 1)
			return buf;
		hidden = guide_hidden(d, slots, avail);
	}
	int levels = d - hidden;
	int anc[256];
	if (levels > 256)
		levels = 256;
	/* anc[levels-1] = v; anc[i] = parent of anc[i+1]. */
	int a = v;
	for (int i = levels - 1; i >= 0; i--) {
		anc[i] = a;
		a = r->parent[a] >= 0 ? r->parent[a] : a;
	}
	size_t o = 0;
#define PUT(s) do { size_t n_ = strlen(s); if (o + n_ + 1 < len) { \
	memcpy(buf + o, s, n_); o += n_; } } while (0)
	if (hidden) {
		char num[16];
		snprintf(num, sizeof(num), "<%-3d", d);
		PUT(num);
	}
	for (int i = 0; i < levels - 1; i++) {
		PUT(r->last[anc[i]] ? " " : vert);
		PUT(" ");
	}
	PUT(r->last[v] ? corner : tee);
	PUT(horiz);
#undef PUT
	buf[o] = 0;
	return buf;
}
