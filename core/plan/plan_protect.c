/* plan_protect.c - the protection set of a plan and its cost; see
 * plan_protect.h.
 *
 * The ranges base is written in are those of the copy (copy.h): every
 * extent allocated above base, on base's cluster grid, and the zeros a
 * parent larger than top makes the copy write.  Each child's share of them
 * is what its own layer does not allocate, on its own grid (a cluster, or
 * a subcluster with extended L2): the writes into it must cover whole
 * units where it has none (qcow2's write contract).  Everything is read
 * with block status only; nothing is written.
 */
#include "plan_protect.h"
#include "plan_int.h"
#include "policy.h"
#include "core/graph/chain.h"
#include "formats/img.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

struct range {
	uint64_t a, z;
};

struct ranges {
	struct range *v;
	size_t n, cap;
};

static int ranges_add(struct ranges *rs, uint64_t a, uint64_t z)
{
	if (a >= z)
		return 0;
	if (rs->n && rs->v[rs->n - 1].z >= a) {
		if (z > rs->v[rs->n - 1].z)
			rs->v[rs->n - 1].z = z;
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct range *nv = realloc(rs->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rs->v = nv;
		rs->cap = cap;
	}
	rs->v[rs->n++] = (struct range){ a, z };
	return 0;
}

/* Largest virtual size among top's parents: the copy zeros base up to it
 * (a parent larger than top reads zeros there today). */
static uint64_t view_size(const struct graph *g, const struct plan *p)
{
	uint64_t v = g->nodes[p->top].info.virtual_size;

	for (int i = 0; i < p->nparents; i++) {
		int n = p->parents[i].node;
		if (n >= 0 && n != p->top && g->nodes[n].info.virtual_size > v)
			v = g->nodes[n].info.virtual_size;
	}
	return v;
}

/* The ranges the copy writes into base, on base's grid.  1: the chain
 * cannot be read (the plan's own checks say why); 0; -ENOMEM. */
static int written_ranges(struct graph *g, struct plan *p, struct ranges *rs)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];
	uint64_t cs = base->info.cluster_size ? base->info.cluster_size : 4096;
	uint64_t off = 0, end = top->info.virtual_size, vs = view_size(g, p);
	struct chain *c = NULL;
	int r = 0;

	if (chain_open_stated(top->path, top->format, 0, base->dev,
		             base->ino, g->stated, g->nstated, &c, NULL) < 0)
		return 1;
	while (off < end && r == 0) {
		struct chain_status st;
		uint64_t pnum = 0;

		if (chain_block_status(c, 0, off, end - off, &pnum, &st,
				       NULL) < 0 || pnum == 0) {
			r = 1;
			break;
		}
		if (st.depth < c->n)
			r = ranges_add(rs, off / cs * cs,
				       (off + pnum + cs - 1) / cs * cs);
		off += pnum;
	}
	chain_close(c);
	if (r == 0 && vs > end)
		r = ranges_add(rs, end / cs * cs, vs < p->base_old_size ? vs
							: p->base_old_size);
	return r;
}

/* The unit a write into img must cover where it allocates nothing. */
static uint64_t grain_of(const struct gnode *n)
{
	uint64_t cs = n->info.cluster_size;

	if (!cs)
		return 512;
	return n->info.extended_l2 && cs >= 32 * 512 ? cs / 32 : cs;
}

/* Why node n cannot be protected, or NULL.  img: n opened read-only (NULL
 * when it could not be opened: err says why). */
static const char *refusal(const struct gnode *n, struct img *img,
			   const struct img_err *err, char *buf, size_t len)
{
	struct statvfs sv;
	bool ro = statvfs(n->path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
	int werr = ro ? EROFS : access(n->path, W_OK) < 0 ? errno : 0;

	if (!img)
		snprintf(buf, len, "'%s' cannot be opened: %s", n->name,
			 err->msg);
	else if (!img_can_write(img) || n->info.write_refusal)
		snprintf(buf, len, "'%s' is %s, a format imgraph cannot write%s%s",
			 n->name, img_format_name(img),
			 n->info.write_refusal ? ": " : "",
			 n->info.write_refusal ? n->info.write_refusal : "");
	else if (werr)
		snprintf(buf, len, "'%s' cannot be written: %s", n->name,
			 werr == EROFS ? "its file system is read-only"
				       : strerror(werr));
	else
		return NULL;
	return buf;
}

/* c's share of the ranges: what its own layer does not allocate, on its
 * grid, inside its virtual size. */
static int reader_cost(const struct gnode *n, struct img *img,
		       const struct ranges *rs, struct plan_reader *pr)
{
	uint64_t gr = grain_of(n), vs = n->info.virtual_size, done = 0;
	struct space_est se;

	plan_space_init(&se, n);
	for (size_t i = 0; i < rs->n; i++) {
		uint64_t a = rs->v[i].a / gr * gr;
		uint64_t z = (rs->v[i].z + gr - 1) / gr * gr;

		if (a < done)
			a = done;
		if (z > vs)
			z = vs;
		while (a < z) {
			uint64_t pnum = 0;
			int bs = img_block_status(img, a, z - a, &pnum, NULL);

			if (bs < 0 || pnum == 0)
				return -EIO;
			if (bs == IMG_BS_UNALLOC) {
				pr->bytes += pnum;
				plan_space_add(&se, a, pnum);
			}
			a += pnum;
		}
		done = z > done ? z : done;
	}
	pr->growth = se.cs ? se.clusters * se.cs : se.raw_bytes;
	pr->space_needed = pr->bytes ? plan_space_total(&se, n, 0) : 0;
	pr->exact = true;
	return 0;
}

static int refuse(struct plan *p, int node, const char *name,
		  const char *msg)
{
	return plan_add_conflict(p, CONFLICT_PROTECT, node, 0, name, msg,
		"--protect writes base's old data into every other reader of "
		"base before base changes; this one cannot take it, so its "
		"contents would change.", "Convert it to qcow2 (qemu-img "
		"convert -O qcow2 -B BASE), move it to a writable file "
		"system, or move it off base first.");
}

/* One child: its cost, or why it cannot be protected. */
static int add_reader(struct graph *g, struct plan *p, const struct ranges *rs,
		      bool ranges_ok, int id)
{
	struct plan_protect *pp = p->protect;
	const struct gnode *n = &g->nodes[id];
	struct plan_reader *pr = &pp->r[pp->n];
	struct img_err err = { 0 };
	struct img *img = NULL;
	struct statvfs sv;
	char why[1200];
	const char *no;
	int r = 0;

	memset(pr, 0, sizeof(*pr));
	pr->node = id;
	if (n->format && !(n->flags & (GN_ERROR | GN_EXTERNAL)))
		img_open(n->path, n->format, 0, &img, NULL, &err);
	else
		snprintf(err.msg, sizeof(err.msg), "%s", n->error ? n->error :
			 "its format is not known");
	if (statvfs(n->path, &sv) == 0)
		pr->free_space = (uint64_t)sv.f_bavail * sv.f_frsize;
	no = refusal(n, img, &err, why, sizeof(why));
	if (!no && ranges_ok && reader_cost(n, img, rs, pr) < 0) {
		snprintf(why, sizeof(why), "'%s' cannot be mapped", n->name);
		no = why;
	}
	if (!no && !ranges_ok) {
		/* Unmapped: every byte of the overlap is the bound. */
		pr->bytes = n->info.virtual_size < p->base_new_size ?
			n->info.virtual_size : p->base_new_size;
		pr->growth = pr->space_needed = pr->bytes;
	}
	img_close(img);
	pp->n++;
	pp->bytes += pr->bytes;
	pp->growth += pr->growth;
	if (no)
		pp->unprotectable++;
	if (pp->on && no)
		r = refuse(p, id, n->name, no);
	if (pp->on && r == 0)
		r = plan_check_role_state(g, p, id);
	return r;
}

/* The children of chain node id off the commit path: readers whose view
 * changes once base holds top's data. */
static int add_children(const struct graph *g, struct plan *p, int id)
{
	const struct gnode *n = &g->nodes[id];
	struct plan_protect *pp = p->protect;
	struct plan_reader *nv = realloc(pp->r, sizeof(*nv) *
					 (size_t)(pp->n + n->nchildren + 1));

	if (!nv)
		return -ENOMEM;
	pp->r = nv;
	for (int c = 0; c < n->nchildren; c++) {
		int x = n->children[c];
		if (plan_role_of(p, x) != PLAN_ROLE_NONE ||
		    plan_reads_nothing(g, x))
			continue;
		memset(&pp->r[pp->n], 0, sizeof(pp->r[pp->n]));
		pp->r[pp->n++].node = x;
	}
	return 0;
}

int plan_protect_build(struct graph *g, struct plan *p,
		       const struct plan_opts *o)
{
	const struct gnode *base = &g->nodes[p->base];
	struct ranges rs = { 0 };
	int r = 0, ok;

	p->protect = calloc(1, sizeof(*p->protect));
	if (!p->protect)
		return -ENOMEM;
	p->protect->on = o && o->protect;
	/* Children go in first: the checks below see them as protected
	 * (their role, their locks). */
	for (int i = -1; i < p->ninter; i++)
		if (add_children(g, p, i < 0 ? base->id : p->inter[i]) < 0)
			return -ENOMEM;
	if (!p->protect->n)
		return 0;
	ok = o && o->skip_bytes ? 1 : written_ranges(g, p, &rs);
	if (ok < 0) {
		free(rs.v);
		return ok;
	}
	{
		int n = p->protect->n;
		p->protect->n = 0;
		for (int i = 0; i < n && r >= 0; i++)
			r = add_reader(g, p, &rs, ok == 0,
				       p->protect->r[i].node);
	}
	free(rs.v);
	return r < 0 ? r : 0;
}

/* Per file system: what the protected readers there (and base, if there
 * too) need against what it has. */
int plan_protect_check_space(struct graph *g, struct plan *p)
{
	const struct plan_protect *pp = p->protect;

	for (int i = 0; pp && pp->on && i < pp->n; i++) {
		const struct gnode *n = &g->nodes[pp->r[i].node];
		uint64_t need = 0;
		bool first = true;
		int r;

		for (int k = 0; k < pp->n; k++) {
			if (g->nodes[pp->r[k].node].dev != n->dev)
				continue;
			first = first && k >= i;
			need += pp->r[k].space_needed;
		}
		if (!first || !pp->r[i].free_space)
			continue;
		if (g->nodes[p->base].dev == n->dev)
			need += p->space_needed;
		r = plan_space_check(p, n, n->path, true, need,
			&pp->r[i].free_space, need > pp->r[i].space_needed ?
			" and the other images on its file system to protect "
			"it," : " to protect it,",
			"Running out of space while protecting stops the "
			"commit half way (every view stays intact, nothing is "
			"gained).", "Free space on that file system first.");
		if (r < 0)
			return r;
	}
	return 0;
}

void plan_protect_free(struct plan_protect *pp)
{
	if (!pp)
		return;
	free(pp->r);
	free(pp);
}

const struct plan_reader *plan_protect_reader(const struct plan *p, int id)
{
	for (int i = 0; p && p->protect && i < p->protect->n; i++)
		if (p->protect->r[i].node == id)
			return &p->protect->r[i];
	return NULL;
}

bool plan_protects(const struct plan *p, int id)
{
	return p && p->protect && p->protect->on && id >= 0 &&
	       plan_protect_reader(p, id);
}

bool plan_protect_hint(const struct plan *p, char *buf, size_t len)
{
	const struct plan_protect *pp = p->protect;

	if (!pp || pp->on || pp->unprotectable || !pp->n)
		return false;
	snprintf(buf, len, "Run with --protect to copy %.1f MiB into %s %d "
		 "image%s first (%s view%s stay%s the same).",
		 (double)pp->bytes / MIB, pp->n == 1 ? "this" : "these", pp->n,
		 pp->n == 1 ? "" : "s", pp->n == 1 ? "its" : "their",
		 pp->n == 1 ? "" : "s", pp->n == 1 ? "s" : "");
	return true;
}
