/* editor_data.c - what the editor reads from images beyond the graph: the
 * cluster map of a chain (chain_block_status) and an image's info (the
 * driver's get_info).  Never writes. */
#include "editor_int.h"
#include "formats/img.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph/chain.h"
#include "core/out/emit.h"
#include "core/plan/plan_protect.h"
#include "core/graph/perm.h"

/* Enough to picture a disk; more extents than this and the map says
 * "partial" instead of stalling the UI on a huge fragmented image. */
#define CMAP_MAX_EXTENTS 200000

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static struct cmap *cmap_alloc(int node, int nlayers, int nregions)
{
	struct cmap *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->node = node;
	m->nregions = nregions > 0 ? nregions : 1;
	if (nlayers > 0) {
		m->names = calloc((size_t)nlayers, sizeof(char *));
		if (!m->names) {
			free(m);
			return NULL;
		}
	}
	m->nlayers = nlayers;
	size_t cells = (size_t)(nlayers + 1) * (size_t)m->nregions;
	m->share = calloc(cells, sizeof(float));
	m->zshare = calloc(cells, sizeof(float));
	m->cshare = calloc(cells, sizeof(float));
	if (!m->share || !m->zshare || !m->cshare) {
		cmap_free(m);
		return NULL;
	}
	return m;
}

/* Add [off, off+len) served by layer l (zero, compressed or plain data) to
 * the regions. */
static void cmap_add(struct cmap *m, int l, bool zero, bool comp,
		     uint64_t off, uint64_t len)
{
	double rsz = (double)m->vsize / m->nregions;
	double a = (double)off, b = (double)(off + len);
	int r0 = (int)(a / rsz), r1 = (int)(b / rsz);
	if (r1 >= m->nregions)
		r1 = m->nregions - 1;
	for (int r = r0; r <= r1; r++) {
		double lo = r * rsz, hi = lo + rsz;
		double ov = (b < hi ? b : hi) - (a > lo ? a : lo);
		if (ov <= 0)
			continue;
		float f = (float)(ov / rsz);
		m->share[(size_t)l * m->nregions + r] += f;
		if (zero)
			m->zshare[(size_t)l * m->nregions + r] += f;
		if (comp)
			m->cshare[(size_t)l * m->nregions + r] += f;
	}
}

/* Data of layer l over [off, off+len): the layer's own map tells plain
 * data from compressed clusters. */
static int cmap_add_data(struct cmap *m, struct img *img, int l,
			 uint64_t off, uint64_t len, struct img_err *e)
{
	while (len) {
		struct img_map mm;
		uint64_t n = 0;
		int r = img_map_status(img, off, len, &n, &mm, e);
		if (r < 0)
			return r;
		if (!n || n > len)
			n = len;
		cmap_add(m, l, false, r == IMG_BS_DATA && mm.compressed, off, n);
		off += n;
		len -= n;
	}
	return 0;
}

struct cmap *editor_cmap(const struct graph *g, int id, int nregions)
{
	const struct gnode *n = &g->nodes[id];
	struct img_err e = { 0 };
	struct chain *c = NULL;
	struct cmap *m;
	if (n->flags & (GN_ERROR | GN_EXTERNAL | GN_UNSAFE_PROBE) || !n->path) {
		m = cmap_alloc(id, 0, 1);
		if (m)
			snprintf(m->error, sizeof(m->error), "%s",
				 n->flags & GN_UNSAFE_PROBE ?
				 "format probed as non-raw: chain not opened" :
				 "image not readable");
		return m;
	}
	int r = chain_open(n->path, n->format, 0, 0, 0, &c, &e);
	if (r < 0) {
		m = cmap_alloc(id, 0, 1);
		if (m)
			snprintf(m->error, sizeof(m->error), "%s", e.msg);
		return m;
	}
	uint64_t vsize = c->layer[0]->virtual_size;
	if (vsize && (uint64_t)nregions > vsize / 512)
		nregions = (int)(vsize / 512);
	m = cmap_alloc(id, c->n, nregions);
	if (!m) {
		chain_close(c);
		return NULL;
	}
	m->vsize = vsize;
	for (int l = 0; l < c->n; l++)
		m->names[l] = strdup(base_name(c->layer[l]->path));
	uint64_t off = 0;
	long extents = 0;
	while (off < vsize) {
		uint64_t pnum = 0;
		struct chain_status cs;
		r = chain_block_status(c, 0, off, vsize - off, &pnum, &cs, &e);
		if (r < 0) {
			snprintf(m->error, sizeof(m->error), "%s", e.msg);
			break;
		}
		if (!pnum)
			break;
		int l = cs.depth < 0 || cs.depth > c->n ? c->n : cs.depth;
		if (cs.bs == IMG_BS_DATA && l < c->n)
			r = cmap_add_data(m, c->layer[l], l, off, pnum, &e);
		else
			cmap_add(m, l, cs.bs == IMG_BS_ZERO, false, off, pnum);
		if (r < 0) {
			snprintf(m->error, sizeof(m->error), "%s", e.msg);
			break;
		}
		off += pnum;
		if (++extents >= CMAP_MAX_EXTENTS && off < vsize) {
			m->partial = true;
			break;
		}
	}
	chain_close(c);
	for (int l = 0; l < m->nlayers; l++)
		if (!m->names[l]) {
			cmap_free(m);
			return NULL;
		}
	return m;
}

/* What the image's header says, as the driver read it (or as the scan
 * recorded it when the image could not be read again). */
static void info_image_part(FILE *f, const struct img_info *info,
			    const struct img_backing *bk, bool probed)
{
	char s1[16], s2[16];
	fprintf(f, "file format: %s%s\n", info->format ? info->format : "?",
		probed ? " (probed, not recorded)" : "");
	fprintf(f, "virtual size: %s (%llu bytes)\n",
		emit_size(info->virtual_size, s1, sizeof(s1)),
		(unsigned long long)info->virtual_size);
	fprintf(f, "disk size: %s (file size %s)\n",
		emit_size(info->actual_size, s1, sizeof(s1)),
		emit_size(info->file_size, s2, sizeof(s2)));
	if (info->cluster_size) {
		fprintf(f, "cluster_size: %u\n", info->cluster_size);
		fprintf(f, "compat: %s\n", info->version >= 3 ? "1.1" : "0.10");
		fprintf(f, "refcount bits: %d\n", info->refcount_bits);
		fprintf(f, "compression type: %s\n",
			info->compression_type ? "zstd" : "zlib");
		fprintf(f, "lazy refcounts: %s\n",
			info->lazy_refcounts ? "true" : "false");
		fprintf(f, "extended l2: %s\n",
			info->extended_l2 ? "true" : "false");
		fprintf(f, "snapshots: %u\n", info->nb_snapshots);
		fprintf(f, "features: incompatible 0x%llx, compatible 0x%llx, "
			"autoclear 0x%llx\n",
			(unsigned long long)info->incompatible_features,
			(unsigned long long)info->compatible_features,
			(unsigned long long)info->autoclear_features);
	}
	fprintf(f, "dirty: %s   corrupt: %s   encrypted: %s   data file: %s"
		"   bitmaps: %s\n", info->dirty ? "yes" : "no",
		info->corrupt ? "yes" : "no", info->encrypted ? "yes" : "no",
		info->data_file ? "yes" : "no", info->bitmaps ? "yes" : "no");
	if (info->write_refusal)
		fprintf(f, "warning: not writable by imgraph: %s\n",
			info->write_refusal);
	fprintf(f, "backing file: %s\n", bk->name ? bk->name : "(none)");
	if (bk->name)
		fprintf(f, "backing file format: %s\n",
			bk->format ? bk->format : "(not recorded)");
}

/* Where the node sits in the graph: backing, overlays, users, flags. */
static void info_graph_part(FILE *f, const struct graph *g, int id)
{
	const struct gnode *n = &g->nodes[id];
	if (n->backing_path)
		fprintf(f, "backing file (resolved): %s\n", n->backing_path);
	if (n->backing >= 0 && n->backing < g->n)
		fprintf(f, "backing node: %s\n", g->nodes[n->backing].name ?
			g->nodes[n->backing].name : g->nodes[n->backing].path);
	fprintf(f, "overlays: %d\n", n->nchildren);
	for (int i = 0; i < n->nchildren; i++) {
		int k = n->children[i];
		if (k >= 0 && k < g->n)
			fprintf(f, "  %s\n", g->nodes[k].name ?
				g->nodes[k].name : g->nodes[k].path);
	}
	for (int u = 0; u < g->nusers; u++) {
		const struct guser *us = &g->users[u];
		char p1[64], p2[64];
		if (us->node != id)
			continue;
		fprintf(f, "user: %s (%s) perm: %s; shared: %s\n", us->name,
			us->user_kind ? us->user_kind : "?",
			perm_names(us->perm, p1, sizeof(p1)),
			perm_names(us->shared, p2, sizeof(p2)));
	}
	if (n->flags & GN_OUTSIDE)
		fprintf(f, "outside the pool (reached as a backing file)\n");
}

char *editor_info_text(const struct graph *g, int id)
{
	const struct gnode *n = &g->nodes[id];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f, "image: %s\n", n->path ? n->path : "?");
	if (n->name)
		fprintf(f, "name in pool: %s\n", n->name);
	struct img *img = NULL;
	struct img_err e = { 0 };
	bool probed = false;
	struct img_info info;
	struct img_backing bk = { 0 };
	int r = -EINVAL;
	/* Read the image again (it may have changed since the scan), never
	 * an external name nor a target the scan refused to probe. */
	if (!(n->flags & GN_EXTERNAL) && n->path &&
	    !(n->flags & GN_UNSAFE_PROBE))
		r = img_open(n->path, n->format, IMG_O_INSPECT, &img, &probed,
			     &e);
	if (r == 0)
		r = img_get_info(img, &info, &e);
	if (r == 0)
		r = img_get_backing(img, &bk, &e);
	if (r < 0) {
		fprintf(f, "error: %s\n", e.msg[0] ? e.msg :
			n->error ? n->error : "image not readable");
		info = n->info;
		bk.name = n->backing_name;
		bk.format = n->backing_fmt;
	}
	if (r == 0 || !(n->flags & (GN_ERROR | GN_EXTERNAL)))
		info_image_part(f, &info, &bk,
				probed || (n->flags & GN_PROBED));
	info_graph_part(f, g, id);
	if (n->error && r == 0)
		fprintf(f, "error: %s\n", n->error);
	if (img)
		img_close(img);
	fclose(f);
	return buf;
}

char *editor_plan_text(const struct graph *g, const struct plan *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	emit_plan(f, g, p, OUT_HUMAN);
	fclose(f);
	return buf;
}

/* Columns of a guide (its glyphs are one column each). */
static int after_cols(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Width of the widest guide + name of base's tree (capped), so that the
 * marks line up. */
static int after_width(const struct rows *r, int root, const struct glyphs *gl)
{
	int w = 0;
	for (int i = 0; i < r->nrows; i++) {
		int a = r->row[i];
		while (r->parent[a] >= 0)
			a = r->parent[a];
		if (a != root)
			continue;
		char guide[1024];
		rows_guide(r, i, gl->vert, gl->tee, gl->corner, gl->horiz, 200,
			   guide, sizeof(guide));
		int n = after_cols(guide) + (int)strlen(rows_label(r,
							      r->row[i]));
		if (n > w)
			w = n;
	}
	return w > 40 ? 40 : w;
}

/* Base's tree after the relink, every image marked with what the plan
 * does to it (core's words), then the images that leave the chains. */
static void after_rows(FILE *f, const struct graph *g, const struct plan *p,
		       const struct rows *r, const unsigned char *gone,
		       bool utf8)
{
	int root = p->base;
	while (r->parent[root] >= 0)
		root = r->parent[root];
	const struct glyphs *gl = utf8 ? &glyphs_utf8 : &glyphs_ascii;
	int w = after_width(r, root, gl);
	fprintf(f, "After the relink:\n");
	for (int i = 0; i < r->nrows; i++) {
		int v = r->row[i], a = v;
		while (r->parent[a] >= 0)
			a = r->parent[a];
		if (a != root)
			continue;
		char guide[1024], cell[1400];
		rows_guide(r, i, gl->vert, gl->tee, gl->corner, gl->horiz, 200,
			   guide, sizeof(guide));
		int n = snprintf(cell, sizeof(cell), "%s%s", guide,
				 rows_label(r, v));
		int pad = w - (n - (int)(strlen(guide) - after_cols(guide)));
		fprintf(f, "  %s%*s  %s\n", cell, pad > 0 ? pad : 0, "",
			plan_effect_words(plan_effect(p, v)));
	}
	bool any = false;
	for (int i = 0; i < g->n; i++)
		if (gone[i]) {
			if (!any)
				fprintf(f, "Out of the chains (kept on disk):\n");
			any = true;
			fprintf(f, "  %-*s  %s\n", w, rows_label(r, i),
				plan_effect_words(plan_effect(p, i)));
		}
	for (int i = 0; i < p->nparents; i++) {
		int u = p->parents[i].user;
		if (p->parents[i].node < 0 && u >= 0 && u < g->nusers)
			fprintf(f, "User '%s' repointed to base (users file)\n",
				g->users[u].name);
	}
}

char *editor_after_text(const struct graph *g, const struct plan *p,
			bool utf8)
{
	/* A shallow copy of the graph with the relinks applied: parents of
	 * top hang under base; top and intermediates leave the graph unless
	 * top is a leaf (then it is kept, emptied, on base). */
	struct graph g2 = *g;
	g2.nodes = malloc(sizeof(*g2.nodes) * (size_t)(g->n ? g->n : 1));
	unsigned char *gone = calloc((size_t)(g->n ? g->n : 1), 1);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	struct rows r = { 0 };
	if (!g2.nodes || !gone)
		goto out;
	memcpy(g2.nodes, g->nodes, sizeof(*g2.nodes) * (size_t)g->n);
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node >= 0)
			g2.nodes[p->parents[i].node].backing = p->base;
	/* A pull: top moves onto base, everything else stays. */
	if (p->pull || p->leaf == PLAN_LEAF_KEEP) {
		g2.nodes[p->top].backing = p->base;
	} else {
		gone[p->top] = 1;
		g2.nodes[p->top].backing = -1;
	}
	for (int i = 0; i < p->ninter && !p->pull; i++) {
		gone[p->inter[i]] = 1;
		g2.nodes[p->inter[i]].backing = -1;
	}
	if (rows_init(&r, &g2) < 0)
		goto out;
	f = open_memstream(&buf, &len);
	if (!f)
		goto out;
	after_rows(f, g, p, &r, gone, utf8);
	fputc('\n', f);
out:
	if (f)
		fclose(f);
	rows_free(&r);
	free(g2.nodes);
	free(gone);
	return buf;
}
