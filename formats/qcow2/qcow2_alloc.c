/* qcow2_alloc.c - the qcow2 write path: pwrite and write_zeroes (grow,
 * make_empty and flush are in qcow2_resize.c).  The contract (partial
 * clusters, ordering, what a crash can do) is documented in qcow2_int.h.
 *
 * Work is done one L2 table at a time ("chunk"): a working copy of the
 * table is edited, new clusters are appended and written, then (after
 * refcounts and an fdatasync) the changed entries are written in one
 * pwrite, or the new table is linked from the L1 (qcow2_chunk.c, which
 * also keeps chunks pending in a write batch).  Replaced clusters are
 * released only after the new pointers are durable.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- L2 tables for writing ---- */

void qcow2_wl2_forget(struct qcow2_state *s, uint64_t off)
{
	struct qcow2_alloc *a = s->alloc;

	for (int i = 0; i < QCOW2_WL2_CACHE; i++)
		if (a->l2[i].off == off)
			a->l2[i].off = 0;
	if (s->l2_cache_off == off)
		s->l2_cache_off = 0;    /* the read path's cache */
}

int qcow2_wl2_load(struct img *img, uint64_t off, uint8_t **out,
		   struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	struct qcow2_wl2_slot *v = NULL;
	int r;

	if (off % s->cluster_size || off + s->cluster_size > a->next_free)
		return err_set(e, EIO, "%s: L1 entry points to L2 table at %llu, "
			       "unaligned or past the end of the file (image "
			       "corrupt; run check)", img->path,
			       (unsigned long long)off);
	for (int i = 0; i < QCOW2_WL2_CACHE; i++)
		if (a->l2[i].off == off) {
			a->l2[i].used = ++a->tick;
			*out = a->l2[i].buf;
			return 0;
		}
	for (int i = 0; i < QCOW2_WL2_CACHE; i++)
		if (!v || a->l2[i].used < v->used)
			v = &a->l2[i];
	v->off = 0;
	if (!v->buf) {
		v->buf = malloc(s->cluster_size);
		if (!v->buf)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	r = io_pread_full(img->fd, v->buf, s->cluster_size, off);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read L2 table at %llu",
				     img->path, (unsigned long long)off);
	v->off = off;
	v->used = ++a->tick;
	*out = v->buf;
	return 0;
}

/* ---- one chunk: the part of a write inside one L2 table ---- */

static bool has_backing(const struct qcow2_state *s)
{
	return s->backing_name && s->backing_name[0];
}

static uint64_t ent_get(const struct qcow2_state *s, const uint8_t *t,
			uint64_t i, uint64_t *bm)
{
	const uint8_t *p = t + i * (uint64_t)s->l2_entry_bytes;

	*bm = s->extl2 ? qcow2_be64(p + 8) : 0;
	return qcow2_be64(p);
}

static void ent_put(const struct qcow2_state *s, struct qcow2_chunk *c,
		    uint64_t i, uint64_t v, uint64_t bm)
{
	uint8_t *p = c->tbl + i * (uint64_t)s->l2_entry_bytes;
	uint64_t ov = qcow2_be64(p), obm = s->extl2 ? qcow2_be64(p + 8) : 0;

	if (ov == v && obm == bm)
		return;
	qcow2_put_be64(p, v);
	if (s->extl2)
		qcow2_put_be64(p + 8, bm);
	if (!c->changed || i < c->lo)
		c->lo = i;
	if (!c->changed || i + 1 > c->hi)
		c->hi = i + 1;
	c->changed = true;
}

/* New data clusters of one chunk are one contiguous run (nothing else
 * reserves clusters until the chunk commits), counted in one go at the
 * commit.  In a batch, chunks of later calls reserve clusters before this
 * one commits: each cluster is counted at once instead (a count that
 * reaches the disk early only leaks). */
static int new_cluster(struct img *img, struct qcow2_chunk *c,
		       uint64_t *host, struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	*host = qcow2_reserve(img, 1);
	c->need_sync = true;
	if (c->eager_rc)        /* batch: other chunks reserve meanwhile */
		return qcow2_rc_add(img, *host / s->cluster_size, 1, 1, true,
				    e);
	if (!c->n_new)
		c->first_new = *host;
	else if (*host != c->first_new + c->n_new * s->cluster_size)
		return err_set(e, EIO, "%s: internal: new clusters not "
			       "contiguous", img->path);
	c->n_new++;
	return 0;
}

static int add_free(struct img *img, struct qcow2_chunk *c,
		    uint64_t entry, struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	/* A batch's chunk can replace one entry more than once. */
	if (c->nfrees == c->cap_frees) {
		size_t n = c->cap_frees ? c->cap_frees * 2 : s->l2_entries;
		uint64_t *p = realloc(c->frees, n * sizeof(*p));
		if (!p)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		c->frees = p;
		c->cap_frees = n;
	}
	c->frees[c->nfrees++] = entry;
	return 0;
}

static int check_host(struct img *img, uint64_t goff, uint64_t entry,
		      uint64_t host, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;

	if (host % s->cluster_size || host + s->cluster_size > a->next_free)
		return err_set(e, EIO, "%s: L2 entry 0x%llx for guest offset "
			       "%llu points at host offset %llu, unaligned or "
			       "past the end of the file (image corrupt; run "
			       "check)", img->path, (unsigned long long)entry,
			       (unsigned long long)goff,
			       (unsigned long long)host);
	return 0;
}

static int einval_partial(struct img *img, uint64_t goff, struct img_err *e)
{
	return err_set(e, EINVAL, "%s: partial write at guest offset %llu into "
		       "a cluster that is unallocated in an image with a "
		       "backing file; the rest of the cluster would have to "
		       "come from the backing chain (write whole clusters)",
		       img->path, (unsigned long long)goff);
}

/* Bits of the subclusters that [lo, hi) touches. */
static uint64_t sc_mask(uint32_t scs, uint64_t lo, uint64_t hi)
{
	uint64_t a = lo / scs, b = (hi - 1) / scs;

	return (b - a + 1 >= 64 ? ~0ull : ((1ull << (b - a + 1)) - 1)) << a;
}

/* One cluster of a data write: where it is, what is written, and what its
 * L2 entry says now. */
struct wcl {
	struct qcow2_chunk *c;
	uint64_t idx, cst;         /* entry index in the table, cluster start */
	uint32_t clo, chi;         /* the covered part, relative to cst */
	uint32_t vis;              /* the cluster's bytes inside the disk */
	struct qcow2_src src;      /* the bytes for [clo, chi) */
	bool stable;               /* src outlives the write queue */
	uint64_t ent, bm;          /* the entry and its subcluster bitmap */
	uint64_t host;             /* its host cluster (0: none, compressed) */
	bool comp, copied;         /* compressed; owned (refcount 1) */
};

/* tmp holds bytes [base, base + len) of the new cluster at nh: splice in
 * the write's bytes (read from a file source), queue it (copied, as tmp
 * is freed here). */
static int queue_spliced(struct img *img, const struct wcl *w, uint8_t *tmp,
			 uint32_t base, uint32_t len, uint64_t nh,
			 struct img_err *e)
{
	struct qcow2_src t = { .buf = tmp, .fd = -1 };
	uint8_t *at = tmp + (w->clo - base);
	int r = 0;

	if (w->src.fd < 0)
		memcpy(at, w->src.buf, w->chi - w->clo);
	else
		r = io_pread_full(w->src.fd, at, w->chi - w->clo, w->src.off);
	if (r < 0)
		r = err_set_errno(e, -r, "%s: cannot read the %u bytes to "
				  "write at guest offset %llu from their "
				  "source", img->path, w->chi - w->clo,
				  (unsigned long long)(w->cst + w->clo));
	else
		r = qcow2_wq_add(img, &w->c->q, nh + base, &t, len, false, e);
	free(tmp);
	return r;
}

/* Write the whole cluster at nh: the old content of this layer where
 * read_old (zeros elsewhere), with [clo, chi) replaced. */
static int write_merged(struct img *img, const struct wcl *w, uint64_t nh,
			bool read_old, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint8_t *tmp = calloc(1, s->cluster_size);
	int r = 0;

	if (!tmp)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	if (read_old)
		r = qcow2_pread(img, w->cst, tmp, w->vis, e);
	if (r < 0) {
		free(tmp);
		return r;
	}
	return queue_spliced(img, w, tmp, 0, s->cluster_size, nh, e);
}

/* Standard L2 entries: one cluster, owned data in place, anything else
 * into a new cluster (the old one released after the link is durable). */
static int write_cluster_std(struct img *img, const struct wcl *w,
			     struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_chunk *c = w->c;
	bool zflag = w->ent & QCOW2_OFLAG_ZERO;
	bool full = w->clo == 0 && w->chi >= w->vis;
	bool owned = w->host && w->copied;
	uint64_t nh;
	int r;

	if (owned && !zflag)            /* owned data cluster: in place */
		return qcow2_wq_add(img, &c->q, w->host + w->clo, &w->src,
				    w->chi - w->clo, w->stable, e);
	if (!full && !w->comp && !w->host && !zflag && has_backing(s))
		return einval_partial(img, w->cst + w->clo, e);
	if (owned) {
		/* Owned preallocated zero cluster: becomes data. */
		nh = w->host;
		c->need_sync = true;
	} else {
		r = new_cluster(img, c, &nh, e);
		if (r >= 0 && (w->comp || w->host))
			r = add_free(img, c, w->ent, e);
		if (r < 0)
			return r;
	}
	if (full)       /* nothing of the old content stays */
		r = qcow2_wq_add(img, &c->q, nh, &w->src, w->chi - w->clo,
				 w->stable, e);
	else
		r = write_merged(img, w, nh, !zflag && (w->comp || w->host), e);
	if (r >= 0)
		ent_put(s, c, w->idx, nh | QCOW2_OFLAG_COPIED, 0);
	return r;
}

/* The subclusters [sa, sb] that a write touches in an extended L2 entry,
 * the byte range [rlo, rhi) they cover, and whether the first and the
 * last are covered only partly. */
struct wsub {
	uint64_t touched;          /* their bits */
	uint32_t alloc, zero;      /* the entry's bitmap halves */
	uint32_t sa, sb, rlo, rhi;
	bool edge_lo, edge_hi;
};

static void sub_range(const struct qcow2_state *s, const struct wcl *w,
		      struct wsub *g)
{
	uint32_t scs = s->subcluster_size;

	g->touched = sc_mask(scs, w->clo, w->chi);
	g->alloc = (uint32_t)w->bm;
	g->zero = (uint32_t)(w->bm >> 32);
	g->sa = w->clo / scs;
	g->sb = (w->chi - 1) / scs;
	g->rlo = g->sa * scs;
	g->rhi = (g->sb + 1) * scs;
	g->edge_lo = w->clo != g->rlo;
	g->edge_hi = w->chi != g->rhi && w->chi < w->vis;
	if (g->rhi > s->cluster_size)
		g->rhi = s->cluster_size;
}

/* Extended L2, shared or compressed cluster: copy it whole (the old
 * content only where the write leaves some of it). */
static int ext_copy_cluster(struct img *img, const struct wcl *w,
			    struct wsub *g, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	bool full = w->clo == 0 && w->chi >= w->vis;
	uint64_t nh;
	int r = new_cluster(img, w->c, &nh, e);

	if (r >= 0)
		r = add_free(img, w->c, w->ent, e);
	if (r >= 0 && full)
		r = qcow2_wq_add(img, &w->c->q, nh, &w->src, w->chi - w->clo,
				 w->stable, e);
	else if (r >= 0)
		r = write_merged(img, w, nh, true, e);
	if (r < 0)
		return r;
	if (w->comp) {
		g->alloc = 0xffffffffu;
		g->zero = 0;
	}
	g->alloc |= (uint32_t)g->touched;
	g->zero &= ~(uint32_t)g->touched;
	ent_put(s, w->c, w->idx, nh | QCOW2_OFLAG_COPIED,
		((uint64_t)g->zero << 32) | g->alloc);
	return 0;
}

/* Extended L2: write the touched subclusters at nh, padding a partly
 * covered edge subcluster with what it holds already (or zeros). */
static int ext_write_subclusters(struct img *img, const struct wcl *w,
				 const struct wsub *g, uint64_t nh,
				 struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint32_t scs = s->subcluster_size;
	uint8_t *tmp;
	int r = 0;

	if (!g->edge_lo && !g->edge_hi)
		return qcow2_wq_add(img, &w->c->q, nh + w->clo, &w->src,
				    w->chi - w->clo, w->stable, e);
	tmp = calloc(1, g->rhi - g->rlo);
	if (!tmp)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	/* Edge subclusters already holding data keep it. */
	for (int k = 0; k < 2 && r >= 0; k++) {
		uint32_t sc = k ? g->sb : g->sa;
		uint64_t at = w->host + (uint64_t)sc * scs;
		if (!(k ? g->edge_hi : g->edge_lo) || !w->host ||
		    !(g->alloc >> sc & 1))
			continue;
		r = io_pread_full(img->fd, tmp + (sc * scs - g->rlo), scs, at);
		if (r < 0)
			r = err_set_errno(e, -r, "%s: read at host offset %llu",
					  img->path, (unsigned long long)at);
	}
	if (r < 0) {
		free(tmp);
		return r;
	}
	return queue_spliced(img, w, tmp, g->rlo, g->rhi - g->rlo, nh, e);
}

/* Extended L2 entries: 32 subclusters with alloc (low) / zero (high) bits;
 * an owned cluster is written in place, subcluster by subcluster. */
static int write_cluster_ext(struct img *img, const struct wcl *w,
			     struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_chunk *c = w->c;
	struct wsub g;
	uint64_t nh;
	int r;

	sub_range(s, w, &g);
	for (int k = 0; k < 2; k++) {
		uint32_t sc = k ? g.sb : g.sa;
		bool partial = k ? g.edge_hi : g.edge_lo;
		bool sc_alloc = w->comp || (w->host && (g.alloc >> sc & 1));
		if (partial && !sc_alloc && !(g.zero >> sc & 1) &&
		    has_backing(s))
			return einval_partial(img, w->cst + w->clo, e);
	}
	if (w->comp || (w->host && !w->copied))
		return ext_copy_cluster(img, w, &g, e);
	if (w->host) {
		nh = w->host;           /* owned: write the subclusters in place */
		if ((g.alloc & (uint32_t)g.touched) != (uint32_t)g.touched)
			c->need_sync = true;
	} else {
		r = new_cluster(img, c, &nh, e);
		if (r < 0)
			return r;
	}
	r = ext_write_subclusters(img, w, &g, nh, e);
	if (r < 0)
		return r;
	g.alloc |= (uint32_t)g.touched;
	g.zero &= ~(uint32_t)g.touched;
	ent_put(s, c, w->idx, nh | QCOW2_OFLAG_COPIED,
		((uint64_t)g.zero << 32) | g.alloc);
	return 0;
}

/* Source src advanced by d bytes. */
static struct qcow2_src src_at(const struct qcow2_src *src, uint64_t d)
{
	struct qcow2_src r = *src;

	if (r.fd < 0)
		r.buf += d;
	else
		r.off += d;
	return r;
}

/* One cluster of a data write.  [clo, chi) is the covered part relative to
 * the cluster start cst; vis the cluster's bytes inside the virtual size;
 * data (NULL: zeros from zbuf) holds the bytes for [clo, chi). */
static int write_cluster(struct img *img, struct qcow2_chunk *c,
			 uint64_t idx, uint64_t cst, uint32_t clo, uint32_t chi,
			 uint32_t vis, const struct qcow2_src *data,
			 const uint8_t *zbuf, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct wcl w = {
		.c = c, .idx = idx, .cst = cst, .clo = clo, .chi = chi,
		.vis = vis, .stable = data != NULL,
	};
	int r;

	if (data)
		w.src = *data;
	else
		w.src = (struct qcow2_src){ .buf = zbuf, .fd = -1 };

	w.ent = ent_get(s, c->tbl, idx, &w.bm);
	w.comp = w.ent & QCOW2_OFLAG_COMPRESSED;
	w.host = w.comp ? 0 : w.ent & QCOW2_L2E_OFFSET_MASK;
	w.copied = (w.ent & QCOW2_OFLAG_COPIED) && !w.comp;
	if (w.host) {
		r = check_host(img, cst, w.ent, w.host, e);
		if (r < 0)
			return r;
	}
	return s->extl2 ? write_cluster_ext(img, &w, e)
			: write_cluster_std(img, &w, e);
}

/* One cluster of a zero write covering whole granules [clo, chi). */
static int zero_cluster(struct img *img, struct qcow2_chunk *c,
			uint64_t idx, uint64_t cst, uint32_t clo, uint32_t chi,
			uint32_t vis, const uint8_t *zbuf, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t bm, ent = ent_get(s, c->tbl, idx, &bm);
	bool comp = ent & QCOW2_OFLAG_COMPRESSED;
	uint64_t host = comp ? 0 : ent & QCOW2_L2E_OFFSET_MASK;
	bool full = clo == 0 && chi >= vis;
	int r;

	if (host) {
		r = check_host(img, cst, ent, host, e);
		if (r < 0)
			return r;
	}
	if (!s->extl2) {
		uint64_t nv;
		if (!full)
			return err_set(e, EINVAL, "%s: internal: partial zero "
				       "cluster at %llu", img->path,
				       (unsigned long long)cst);
		if (s->h.version >= 3) {
			if (!comp && (ent & QCOW2_OFLAG_ZERO))
				return 0;       /* already zero */
			nv = QCOW2_OFLAG_ZERO;
		} else {
			if (!ent)
				return 0;
			nv = 0;
		}
		if (comp || host) {
			r = add_free(img, c, ent, e);
			if (r < 0)
				return r;
		}
		ent_put(s, c, idx, nv, 0);
		return 0;
	}
	uint64_t m = sc_mask(s->subcluster_size, clo, chi);
	uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);
	if (full) {
		if (comp || host) {
			r = add_free(img, c, ent, e);
			if (r < 0)
				return r;
		}
		ent_put(s, c, idx, 0, QCOW2_L2_BITMAP_ALL_ZERO);
		return 0;
	}
	if (comp || (host && !(ent & QCOW2_OFLAG_COPIED)))
		/* Cannot drop part of a shared or compressed cluster: copy it
		 * with literal zeros (zero bits then come from the data). */
		return write_cluster(img, c, idx, cst, clo, chi, vis, NULL, zbuf,
				     e);
	alloc &= ~(uint32_t)m;
	zero |= (uint32_t)m;
	if (host && !alloc) {
		r = add_free(img, c, ent, e);
		if (r < 0)
			return r;
		host = 0;
	}
	ent_put(s, c, idx, host ? (ent & ~0ull) : 0,
		((uint64_t)zero << 32) | alloc);
	return 0;
}

/* Apply a data write (zero == false; data NULL means zeros) or a zero-flag
 * write (zero == true) to [off, off+len) inside one L2 table.  Without a
 * batch the chunk is committed at once; in a batch it stays pending (see
 * qcow2_chunk.c) and its data is written before returning, as the
 * caller's buffer is only valid during the call. */
static int do_chunk(struct img *img, uint64_t off, uint64_t len,
		    const struct qcow2_src *data, bool zero,
		    const uint8_t *zbuf, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	uint64_t cs = s->cluster_size, span = (uint64_t)s->l2_entries * cs;
	uint64_t l1i = off / span;
	struct qcow2_chunk *c;
	bool fresh = false;
	int r = 0;

	if (l1i >= s->h.l1_size)
		return err_set(e, EINVAL, "%s: guest offset %llu beyond the L1 "
			       "table", img->path, (unsigned long long)off);
	c = a->batch_on ? qcow2_batch_find(a, l1i) : NULL;
	if (!c) {
		uint64_t l1e;
		r = qcow2_l1_get(img, l1i, &l1e, e);
		if (r < 0)
			return r;
		if (!(l1e & QCOW2_L1E_OFFSET_MASK) && zero && !has_backing(s))
			return 0;               /* reads as zeros already */
		r = qcow2_chunk_new(img, l1i, &c, e);
		if (r < 0)
			return r;
		c->eager_rc = a->batch_on;
		fresh = true;
	}

	for (uint64_t p = off; p < off + len;) {
		uint64_t cst = p - p % cs, idx = (p / cs) % s->l2_entries;
		uint64_t end = off + len < cst + cs ? off + len : cst + cs;
		uint32_t vis = s->h.size - cst < cs ? (uint32_t)(s->h.size - cst)
						    : (uint32_t)cs;
		uint32_t clo = (uint32_t)(p - cst), chi = (uint32_t)(end - cst);

		if (zero) {
			r = zero_cluster(img, c, idx, cst, clo, chi, vis, zbuf, e);
		} else {
			struct qcow2_src d;
			if (data)
				d = src_at(data, p - off);
			r = write_cluster(img, c, idx, cst, clo, chi, vis,
					  data ? &d : NULL, zbuf, e);
		}
		if (r < 0)
			break;
		p = end;
	}
	if (!a->batch_on) {
		if (r >= 0)
			r = qcow2_chunks_commit(img, &c, 1, e);
		else
			qcow2_wq_flush(img, &c->q, NULL);
		/* On error, clusters appended so far are leaks, never
		 * corruption. */
		qcow2_chunk_free(c);
		return r;
	}
	if (r >= 0)
		r = qcow2_wq_flush(img, &c->q, e);
	else
		qcow2_wq_flush(img, &c->q, NULL);
	if (r < 0) {
		/* The working tables may be half edited: drop the whole
		 * batch (leaks only; see img.h). */
		if (fresh)
			qcow2_chunk_free(c);
		qcow2_batch_drop(a);
		return r;
	}
	if (data)
		qcow2_batch_written(img, len);
	return fresh ? qcow2_batch_add(img, c, e) : 0;
}

static int check_range(struct img *img, uint64_t off, uint64_t len,
		       struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	if (off > s->h.size || len > s->h.size - off)
		return err_set(e, EINVAL, "%s: write of %llu bytes at %llu is "
			       "past the virtual size %llu", img->path,
			       (unsigned long long)len, (unsigned long long)off,
			       (unsigned long long)s->h.size);
	return 0;
}

static int write_range(struct img *img, uint64_t off, uint64_t len,
		       const struct qcow2_src *src, bool zero,
		       struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t span = (uint64_t)s->l2_entries * s->cluster_size;
	struct qcow2_src at, *data = NULL;
	uint8_t *zbuf = NULL;
	int r = 0;

	if (src) {
		at = *src;
		data = &at;
	}
	if (!data) {
		zbuf = calloc(1, s->cluster_size);
		if (!zbuf)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	while (len && r >= 0) {
		uint64_t n = span - off % span;
		if (n > len)
			n = len;
		r = do_chunk(img, off, n, data, zero, zbuf, e);
		off += n;
		len -= n;
		if (data)
			at = src_at(&at, n);
	}
	free(zbuf);
	return r;
}

/* Refuse up front, before anything is written, a write whose partially
 * covered first or last cluster (extended L2: subcluster) is unallocated
 * in an image with a backing file (see the contract in qcow2_int.h). */
static int precheck_edges(struct img *img, uint64_t off, uint64_t len,
			  struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t g = s->subcluster_size, end = off + len;

	if (!has_backing(s))
		return 0;
	for (int k = 0; k < 2; k++) {
		uint64_t p = k ? end - 1 : off, gst = p - p % g;
		uint64_t gend = gst + g < s->h.size ? gst + g : s->h.size;
		uint64_t ent, bm;
		int r;

		if (off <= gst && end >= gend)
			continue;               /* covered whole */
		/* The read path sees only linked entries. */
		r = qcow2_batch_commit(img, e);
		if (r >= 0)
			r = qcow2_get_l2_entry(img, p, &ent, &bm, e);
		if (r < 0)
			return r;
		if (ent & QCOW2_OFLAG_COMPRESSED)
			continue;
		if (!s->extl2) {
			if (!(ent & QCOW2_L2E_OFFSET_MASK) &&
			    !(ent & QCOW2_OFLAG_ZERO))
				return einval_partial(img, p, e);
		} else {
			unsigned sc = (unsigned)((p % s->cluster_size) / g);
			if (!((bm >> sc) & 1) && !((bm >> (32 + sc)) & 1))
				return einval_partial(img, p, e);
		}
	}
	return 0;
}

/* What every write checks before it changes anything: the range, the
 * write set-up (refusals, unknown autoclear bits), the partial edges over
 * a backing file.  Returns 1 when there is nothing to write. */
static int write_prologue(struct img *img, uint64_t off, uint64_t len,
			  struct img_err *e)
{
	int r = check_range(img, off, len, e);

	if (r < 0)
		return r;
	if (!len)
		return 1;
	r = qcow2_write_begin(img, e);
	if (r < 0)
		return r;
	return precheck_edges(img, off, len, e);
}

int qcow2_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
		 struct img_err *e)
{
	struct qcow2_src src = { .buf = buf, .fd = -1 };
	int r = write_prologue(img, off, len, e);

	if (r != 0)
		return r < 0 ? r : 0;

	return write_range(img, off, len, &src, false, e);
}

int qcow2_pwrite_file(struct img *img, uint64_t off, uint64_t len, int src,
		      uint64_t soff, struct io_copy_ctx *ctx,
		      struct img_err *e)
{
	struct qcow2_src from = { .fd = src, .off = soff, .ctx = ctx };
	int r = write_prologue(img, off, len, e);

	if (r != 0)
		return r < 0 ? r : 0;
	return write_range(img, off, len, &from, false, e);
}

/* Edge of a zero write smaller than a granule: nothing to do where this
 * layer already reads zeros and hides the backing file, else literal
 * zeros (subject to the partial-cluster rule). */
static int zero_edge(struct img *img, uint64_t off, uint64_t len,
		     struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	int r = qcow2_batch_commit(img, e);     /* the read path: linked only */

	if (r < 0)
		return r;
	while (len) {
		uint64_t pnum = 0;
		int st = qcow2_block_status(img, off, len, &pnum, e);
		if (st < 0)
			return st;
		if (!pnum || pnum > len)
			pnum = len;
		if (st == IMG_BS_DATA ||
		    (st == IMG_BS_UNALLOC && has_backing(s))) {
			r = write_range(img, off, pnum, NULL, false, e);
			if (r < 0)
				return r;
		}
		off += pnum;
		len -= pnum;
	}
	return 0;
}

int qcow2_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		       struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t g, end, aend, mlo, mhi;
	int r = write_prologue(img, off, len, e);

	if (r != 0)
		return r < 0 ? r : 0;
	g = s->subcluster_size;
	end = off + len;
	/* Bytes past the virtual size do not count: the last granule is
	 * whole when the range reaches the end of the disk. */
	aend = end == s->h.size ? (end + g - 1) / g * g : end;
	mlo = (off + g - 1) / g * g;
	mhi = aend / g * g;
	if (mlo >= mhi)
		return zero_edge(img, off, len, e);
	if (off < mlo) {
		r = zero_edge(img, off, mlo - off, e);
		if (r < 0)
			return r;
	}
	if (mhi < end) {
		r = zero_edge(img, mhi, end - mhi, e);
		if (r < 0)
			return r;
	}
	if (mhi > s->h.size)
		mhi = s->h.size;
	if (s->h.version < 3 && has_backing(s))
		/* v2 cannot say "zero over backing": literal zeros. */
		return write_range(img, mlo, mhi - mlo, NULL, false, e);
	return write_range(img, mlo, mhi - mlo, NULL, true, e);
}
