/* plan_space.c - how many bytes a commit copies and whether base's file
 * system has room for them.
 *
 * Why an estimate with metadata: a commit that runs out of space half way
 * stops with base holding leaked clusters and nothing gained, so the plan
 * must refuse whenever the copy might not fit.  Data alone is not enough:
 * every L2 range the copy touches may need a new L2 table in base, the new
 * clusters need refcount blocks, a full refcount table is relocated, and a
 * grown base gets a larger L1 table.  Everything is an upper bound (clusters
 * base already has are counted as new); nothing here writes.
 */
#include "plan_int.h"
#include "core/commit/copy.h"
#include "core/graph/chain.h"
#include "formats/img.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

/* Table entry sizes of a cluster-mapped base (qcow2's layout). */
#define L1_ENTRY_BYTES          8
#define L2_ENTRY_BYTES          8
#define L2_ENTRY_BYTES_EXTENDED 16     /* with subclusters (extended L2) */
#define REFTABLE_ENTRY_BYTES    8
/* Refcount width assumed when the image reports none or an invalid one
 * (qcow2's default and maximum). */
#define REFCOUNT_BITS_DEFAULT   16
#define REFCOUNT_BITS_MAX       64

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

void plan_space_init(struct space_est *s, const struct gnode *base)
{
	uint64_t tc = base->info.l2_table_clusters ?
		      base->info.l2_table_clusters : 1;

	memset(s, 0, sizeof(*s));
	s->cs = base->info.cluster_size;
	s->l2_bytes = s->cs * tc;
	if (s->cs)
		s->l2_span = s->cs * (s->l2_bytes / (base->info.extended_l2 ?
						     L2_ENTRY_BYTES_EXTENDED :
						     L2_ENTRY_BYTES));
}

void plan_space_add(struct space_est *s, uint64_t off, uint64_t len)
{
	uint64_t c0, c1, l0, l1;

	if (!len)
		return;
	if (!s->cs) {
		s->raw_bytes += len;
		return;
	}
	c0 = off / s->cs;
	c1 = (off + len - 1) / s->cs;
	l0 = off / s->l2_span;
	l1 = (off + len - 1) / s->l2_span;
	if (s->any && c0 < s->next_cluster)
		c0 = s->next_cluster;
	if (s->any && l0 < s->next_l2)
		l0 = s->next_l2;
	if (c1 >= c0)
		s->clusters += c1 - c0 + 1;
	if (l1 >= l0)
		s->l2_tables += l1 - l0 + 1;
	s->next_cluster = c1 + 1;
	s->next_l2 = l1 + 1;
	s->any = true;
}

uint64_t plan_space_total(const struct space_est *s,
			  const struct gnode *base, uint64_t grow_to)
{
	uint64_t cs = s->cs, n, per_rb, rbs, file_cl, tcl;
	int rb = base->info.refcount_bits;

	if (!cs)
		return s->raw_bytes;
	n = s->clusters + s->l2_tables * (s->l2_bytes / cs);
	if (grow_to)                /* a new, larger L1 table */
		n += div_up(div_up(grow_to, s->l2_span) *
			    L1_ENTRY_BYTES, cs);
	/* refcount blocks for the new clusters and for themselves, plus one:
	 * the first new cluster may fall in a block not yet allocated */
	per_rb = cs * CHAR_BIT / (uint64_t)(rb > 0 && rb <= REFCOUNT_BITS_MAX ?
					    rb : REFCOUNT_BITS_DEFAULT);
	rbs = n / (per_rb > 1 ? per_rb - 1 : 1) + 1;
	/* a relocated refcount table sized for the grown file, with a block
	 * to count it */
	file_cl = div_up(base->info.file_size, cs) + n + rbs;
	tcl = div_up(div_up(file_cl, per_rb) * REFTABLE_ENTRY_BYTES, cs);
	return (n + rbs + tcl + 1) * cs;
}

/* Walk the chain above base with block status: the ranges a commit
 * copies, into *total and se.  Fails (a conflict added: 1) when a range
 * cannot be mapped. */
/* [off, off+n) of a disk of size bytes given by layer l (above base). */
static void layer_add(struct plan *p, int l, uint64_t off, uint64_t n,
		      uint64_t size)
{
	if (!p->layer_bytes || l < 0 || l > p->ninter || !size)
		return;
	p->layer_bytes[l] += n;
	double csz = (double)size / PLAN_MAP_CELLS;
	double a = (double)off, b = (double)(off + n);
	int c0 = (int)(a / csz), c1 = (int)(b / csz);
	if (c1 >= PLAN_MAP_CELLS)
		c1 = PLAN_MAP_CELLS - 1;
	for (int k = c0; k <= c1; k++) {
		double lo = k * csz, hi = lo + csz;
		double ov = (b < hi ? b : hi) - (a > lo ? a : lo);
		if (ov > 0)
			p->layer_cells[(size_t)l * PLAN_MAP_CELLS + k] +=
				(float)(ov / csz);
	}
}

static int count_mapped(struct graph *g, struct plan *p, struct chain *c,
			struct space_est *se, uint64_t *total)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];
	uint64_t off = 0, end = top->info.virtual_size;
	struct img_err e = { 0 };

	*total = 0;
	/* Without memory for them the plan just has no per-layer view. */
	p->layer_bytes = calloc((size_t)p->ninter + 1, sizeof(uint64_t));
	p->layer_cells = calloc(((size_t)p->ninter + 1) * PLAN_MAP_CELLS,
				sizeof(float));
	if (!p->layer_bytes || !p->layer_cells) {
		free(p->layer_bytes);
		free(p->layer_cells);
		p->layer_bytes = NULL;
		p->layer_cells = NULL;
	}
	while (off < end) {
		struct chain_status st;
		uint64_t pnum = 0;
		char msg[1400];
		int r;

		if (chain_block_status(c, 0, off, end - off, &pnum, &st,
				       &e) < 0 || pnum == 0) {
			snprintf(msg, sizeof(msg), "cannot map '%s' at offset "
				 "%llu: %s", top->name,
				 (unsigned long long)off, e.msg);
			r = plan_add_conflict(p, CONFLICT_IMAGE_STATE, p->top,
				0, top->name, msg, "The data to copy cannot be "
				"located.", "Check the images with qemu-img "
				"check.");
			return r < 0 ? r : 1;
		}
		/* Zeros past an intermediate's end need no copy where base,
		 * grown and without a backing file, reads zeros anyway. */
		if (st.depth < c->n &&
		    !(st.bs == IMG_BS_ZERO && off >= p->base_old_size &&
		      base->backing < 0)) {
			*total += pnum;
			plan_space_add(se, off, pnum);
			layer_add(p, st.depth, off, pnum, end);
		}
		off += pnum;
	}
	return 0;
}

/* The method each layer above base will try first (copy_predict), with
 * base opened read-only for its file system's facts. */
static int copy_methods(struct graph *g, struct plan *p, struct chain *c)
{
	const struct gnode *base = &g->nodes[p->base];
	struct img *b = NULL;

	p->copy_how = malloc((size_t)(p->ninter + 1) * sizeof(*p->copy_how));
	if (!p->copy_how)
		return -ENOMEM;
	for (int i = 0; i <= p->ninter; i++)
		p->copy_how[i] = -1;
	if (img_open(base->path, base->format, 0, &b, NULL, NULL) < 0)
		return 0;       /* the state checks say why, if it matters */
	for (int i = 0; i <= p->ninter && i < c->n; i++)
		p->copy_how[i] = copy_predict(c->layer[i], b);
	img_close(b);
	return 0;
}

int plan_count_bytes(struct graph *g, struct plan *p, bool skip)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];
	struct chain *c = NULL;
	struct img_err e = { 0 };
	struct space_est se;
	uint64_t total;
	int r;

	/* Upper bound first: what the layers above base occupy. */
	p->bytes_to_copy = top->info.actual_size;
	for (int i = 0; i < p->ninter; i++)
		p->bytes_to_copy += g->nodes[p->inter[i]].info.actual_size;
	p->bytes_exact = false;
	/* Without a map, the bound as one range from 0 (each cluster of it
	 * assumed to sit in its own L2 range is not worth the pessimism: the
	 * layers' own metadata is inside actual_size). */
	plan_space_init(&se, base);
	plan_space_add(&se, 0, p->bytes_to_copy);
	p->space_needed = p->bytes_to_copy ? plan_space_total(&se, base,
			   p->base_grows ? p->base_new_size : 0) : 0;
	if (skip)
		return 0;
	/* Only read a chain the state checks found readable. */
	for (int i = 0; i < p->nconflicts; i++)
		if (p->conflicts[i].kind == CONFLICT_IMAGE_STATE ||
		    p->conflicts[i].kind == CONFLICT_FORMAT)
			return 0;
	if (chain_open_stated(top->path, top->format, 0, base->dev,
		             base->ino, g->stated, g->nstated, &c, &e) < 0) {
		char msg[1400];

		snprintf(msg, sizeof(msg), "cannot read the chain of '%s': %s",
			 top->name, e.msg);
		return plan_add_conflict(p, CONFLICT_IMAGE_STATE, p->top, 0,
					 top->name, msg, "The data to copy "
					 "cannot be read.",
					 "Check the images with qemu-img check.");
	}
	plan_space_init(&se, base);
	r = count_mapped(g, p, c, &se, &total);
	if (r == 0)
		r = copy_methods(g, p, c);
	chain_close(c);
	if (r != 0) {
		/* Counted only in part: no per-layer view either. */
		free(p->layer_bytes);
		free(p->layer_cells);
		p->layer_bytes = NULL;
		p->layer_cells = NULL;
		return r < 0 ? r : 0;
	}
	p->bytes_to_copy = total;
	p->bytes_exact = true;
	p->space_needed = total ? plan_space_total(&se, base, p->base_grows ?
						   p->base_new_size : 0) : 0;
	return 0;
}

int plan_space_check(struct plan *p, const struct gnode *n, const char *path,
		     bool known_free, uint64_t need, uint64_t *free_space,
		     const char *detail, const char *why, const char *fix)
{
	char msg[1200];
	struct statvfs sv;

	/* The file itself, not its directory: an image reached through a
	 * symlink lives on the file system of the symlink's target. */
	if (!known_free) {
		if (statvfs(path, &sv) < 0)
			return 0;    /* unknown: the write will say ENOSPC */
		*free_space = (uint64_t)sv.f_bavail * sv.f_frsize;
	}
	if (need <= *free_space)
		return 0;
	snprintf(msg, sizeof(msg), "up to %llu bytes must be written into "
		 "'%s'%s but its file system has %llu bytes free",
		 (unsigned long long)need, n->name, detail,
		 (unsigned long long)*free_space);
	return plan_add_conflict(p, CONFLICT_SPACE, n->id, 0, n->name, msg,
				 why, fix);
}

int plan_check_space(struct graph *g, struct plan *p)
{
	const struct gnode *base = &g->nodes[p->base];
	char detail[200] = "";

	if (p->space_needed > p->bytes_to_copy)
		snprintf(detail, sizeof(detail), " (%llu bytes of data on its "
			 "cluster grid, plus new metadata)",
			 (unsigned long long)p->bytes_to_copy);
	return plan_space_check(p, base, base->path, false, p->space_needed,
		&p->free_space, detail,
		"Running out of space in the middle of a commit stops it "
		"half way (images stay valid, but nothing is gained).",
		"Free space on that file system, or commit a smaller range.");
}
