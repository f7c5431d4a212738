/* qcow2_chunk.c - committing the qcow2 write path's chunks, one by one or
 * as a write batch (img.h), and the write queue that coalesces their
 * data writes.
 *
 * A chunk is the part of a write inside one L2 table (qcow2_alloc.c fills
 * it).  Without a batch every allocating call commits its chunks at once:
 * one fdatasync per L2 table per call.  In a batch the chunks stay pending
 * (one per L2 table, later writes edit the same working copy) and one
 * commit links them all behind a single fdatasync.  The ordering is the
 * same at either scale: every new data cluster, refcount block and new L2
 * table is written before the sync, every L2/L1 entry pointing at them
 * after it, and replaced clusters are released only after a later sync
 * made their unlinking durable.  A crash leaks, never corrupts.
 */
#include "qcow2_int.h"
#include "formats/img.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* Write len bytes of src at host (no queue). */
static int wq_write(struct img *img, uint64_t host,
		    const struct qcow2_src *src, uint64_t len,
		    struct img_err *e)
{
	int r;

	if (src->fd < 0)
		r = io_pwrite(img->fd, src->buf, (size_t)len, host);
	else
		r = io_copy_range(img->fd, host, src->fd, src->off, len,
				  src->ctx);
	if (r < 0)
		return err_set_errno(e, -r, "%s: write of %llu bytes at host "
				     "offset %llu", img->path,
				     (unsigned long long)len,
				     (unsigned long long)host);
	return 0;
}

int qcow2_wq_flush(struct img *img, struct qcow2_wq *q, struct img_err *e)
{
	uint64_t n = q->len;

	if (!n)
		return 0;
	q->len = 0;
	return wq_write(img, q->host, &q->src, n, e);
}

/* Does src continue the queued run? */
static bool wq_follows(const struct qcow2_wq *q, const struct qcow2_src *src)
{
	if (q->src.fd != src->fd)
		return false;
	return src->fd < 0 ? q->src.buf + q->len == src->buf
			   : q->src.off + q->len == src->off;
}

int qcow2_wq_add(struct img *img, struct qcow2_wq *q, uint64_t host,
		 const struct qcow2_src *src, uint64_t len, bool stable,
		 struct img_err *e)
{
	int r;

	stable = stable || src->fd >= 0;
	if (q->len && stable && q->host + q->len == host &&
	    wq_follows(q, src)) {
		q->len += len;
		return 0;
	}
	r = qcow2_wq_flush(img, q, e);
	if (r < 0)
		return r;
	if (!stable)            /* temporary buffer: write it now */
		return wq_write(img, host, src, len, e);
	q->host = host;
	q->src = *src;
	q->len = len;
	return 0;
}

int qcow2_chunk_new(struct img *img, uint64_t l1i, struct qcow2_chunk **out,
		    struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size, l1e;
	struct qcow2_chunk *c;
	int r;

	*out = NULL;
	r = qcow2_l1_get(img, l1i, &l1e, e);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (c) {
		c->tbl = calloc(1, cs);
		c->orig = malloc(cs);
	}
	if (!c || !c->tbl || !c->orig) {
		qcow2_chunk_free(c);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	c->l1i = l1i;
	c->l2off = l1e & QCOW2_L1E_OFFSET_MASK;
	if (c->l2off) {
		uint8_t *t;
		r = qcow2_wl2_load(img, c->l2off, &t, e);
		if (r < 0) {
			qcow2_chunk_free(c);
			return r;
		}
		memcpy(c->tbl, t, cs);
		memcpy(c->orig, t, cs);
		if (!(l1e & QCOW2_OFLAG_COPIED)) {
			c->new_table = true;    /* shared: copy on write */
			c->old_l2 = c->l2off;
		}
	} else {
		c->new_table = true;
	}
	*out = c;
	return 0;
}

void qcow2_chunk_free(struct qcow2_chunk *c)
{
	if (!c)
		return;
	free(c->tbl);
	free(c->orig);
	free(c->frees);
	free(c);
}

/* Link one committed chunk: the new table from the L1, or the changed
 * entries in place (one sector-granular write), then queue releases. */
static int chunk_link(struct img *img, struct qcow2_chunk *c, uint64_t l2new,
		      struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint32_t cs = s->cluster_size;
	int r;

	if (c->new_table) {
		uint8_t be[8], obe[8];
		uint64_t v = l2new | QCOW2_OFLAG_COPIED, old;
		r = qcow2_l1_get(img, c->l1i, &old, e);
		if (r < 0)
			return r;
		qcow2_put_be64(be, v);
		qcow2_put_be64(obe, old);
		r = qcow2_meta_write(img, s->h.l1_table_offset + c->l1i * 8, be,
				     obe, 8, "an L1 entry", e);
		if (r < 0) {
			qcow2_l1_forget(s);     /* read back what the file has */
			return r;
		}
		qcow2_l1_set(s, c->l1i, v);
		/* Later writes to this table edit it in place. */
		c->new_table = false;
		c->old_l2 = 0;
		c->l2off = l2new;
		memcpy(c->orig, c->tbl, cs);
	} else {
		uint64_t eb = (uint64_t)s->l2_entry_bytes;
		uint64_t lo = c->lo * eb / 512 * 512;
		uint64_t hi = (c->hi * eb + 511) / 512 * 512;
		if (hi > cs)
			hi = cs;
		r = qcow2_meta_write(img, c->l2off + lo, c->tbl + lo,
				     c->orig + lo, hi - lo, "L2 entries", e);
		qcow2_wl2_forget(s, c->l2off);
		if (r < 0)
			return r;
	}
	/* The old clusters go after the next sync (the unlink must be
	 * durable first). */
	for (size_t i = 0; i < c->nfrees; i++) {
		r = qcow2_pend_add(img, c->frees[i], e);
		if (r < 0)
			return r;
	}
	c->nfrees = 0;
	return 0;
}

int qcow2_chunks_commit(struct img *img, struct qcow2_chunk **v, size_t n,
			struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	uint32_t cs = s->cluster_size;
	bool sync = false;
	uint64_t *l2new = calloc(n ? n : 1, sizeof(*l2new));
	int r = 0;

	if (!l2new)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	/* 1. Everything the new pointers will reach: data (queued), new
	 * tables, and their refcounts. */
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct qcow2_chunk *c = v[i];
		r = qcow2_wq_flush(img, &c->q, e);
		if (r >= 0 && c->n_new)
			r = qcow2_rc_add(img, c->first_new / cs, c->n_new, 1,
					 true, e);
		if (r < 0)
			break;
		c->n_new = 0;
		if (c->changed && c->new_table) {
			l2new[i] = qcow2_reserve(img, 1);
			r = io_pwrite(img->fd, c->tbl, cs, l2new[i]);
			if (r < 0) {
				r = err_set_errno(e, -r, "%s: write of a new "
						  "L2 table", img->path);
				break;
			}
			r = qcow2_rc_add(img, l2new[i] / cs, 1, 1, true, e);
			c->need_sync = true;
		}
		if (c->changed && c->need_sync)
			sync = true;
	}
	if (r >= 0)
		r = qcow2_rc_writeback(img, e);
	/* 2. One sync orders all of it before any pointer; earlier unlinks
	 * are durable now too, so their clusters can go. */
	if (r >= 0 && sync) {
		r = qcow2_sync(img, e);
		if (r >= 0)
			r = qcow2_apply_pending(img, e);
	}
	/* 3. The pointers. */
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct qcow2_chunk *c = v[i];
		if (!c->changed)
			continue;
		if (c->old_l2 && c->new_table) {
			r = qcow2_pend_add(img, c->old_l2 | QCOW2_OFLAG_COPIED,
					   e);
			if (r < 0)
				break;
		}
		r = chunk_link(img, c, l2new[i], e);
		c->changed = false;
		c->need_sync = false;
	}
	free(l2new);
	if (r >= 0 && a->npend >= QCOW2_PEND_MAX) {
		r = qcow2_sync(img, e);
		if (r >= 0)
			r = qcow2_apply_pending(img, e);
	}
	if (r < 0)
		return r;
	return qcow2_rc_writeback(img, e);
}

/* ---- write batches ---- */

static size_t chunk_mem(const struct qcow2_state *s,
			const struct qcow2_chunk *c)
{
	return 2 * (size_t)s->cluster_size + c->cap_frees * sizeof(uint64_t);
}

struct qcow2_chunk *qcow2_batch_find(struct qcow2_alloc *a, uint64_t l1i)
{
	for (size_t i = 0; a && i < a->nbch; i++)
		if (a->bch[i]->l1i == l1i)
			return a->bch[i];
	return NULL;
}

void qcow2_batch_drop(struct qcow2_alloc *a)
{
	for (size_t i = 0; a && i < a->nbch; i++)
		qcow2_chunk_free(a->bch[i]);
	if (a) {
		a->nbch = 0;
		a->bmem = 0;
	}
}

int qcow2_batch_commit(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	int r;

	if (!a || !a->nbch)
		return 0;
	r = qcow2_chunks_commit(img, a->bch, a->nbch, e);
	qcow2_batch_drop(a);
	return r;
}

int qcow2_batch_add(struct img *img, struct qcow2_chunk *c,
		    struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	int r;

	if (a->nbch && a->bmem + chunk_mem(s, c) > QCOW2_BATCH_MEM) {
		r = qcow2_batch_commit(img, e);
		if (r < 0) {
			qcow2_chunk_free(c);
			return r;
		}
	}
	if (a->nbch == a->cap_bch) {
		size_t n = a->cap_bch ? a->cap_bch * 2 : 16;
		struct qcow2_chunk **p = realloc(a->bch, n * sizeof(*p));
		if (!p) {
			qcow2_chunk_free(c);
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
		}
		a->bch = p;
		a->cap_bch = n;
	}
	a->bch[a->nbch++] = c;
	a->bmem += chunk_mem(s, c);
	return 0;
}

void qcow2_batch_written(struct img *img, uint64_t n)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;

	a->wb_bytes += n;
	if (a->wb_bytes < QCOW2_WB_KICK)
		return;
	a->wb_bytes = 0;
	/* A hint, deliberately not an io_* op: it changes no bytes and
	 * guarantees nothing (the kernel may write any dirty page at any
	 * time anyway), so fault injection and the power-cut model have
	 * nothing to count or undo; errors surface at the fdatasync. */
	io_writeback_hint(img->fd);
}

/* ---- the batch_begin / batch_end ops (img.h) ---- */

int qcow2_batch_begin(struct img *img, struct img_err *e)
{
	struct qcow2_state *s;
	int r;

	r = qcow2_write_begin(img, e);
	if (r < 0)
		return r;
	s = img->priv;
	((struct qcow2_alloc *)s->alloc)->batch_on = true;
	return 0;
}

int qcow2_batch_end(struct img *img, struct img_err *e)
{
	struct qcow2_state *s;
	struct qcow2_alloc *a;

	s = img->priv;
	a = s->alloc;
	if (!a || !a->batch_on)
		return 0;
	a->batch_on = false;
	if (a->broken) {
		qcow2_batch_drop(a);
		return err_set(e, EIO, "%s: an earlier refcount update failed "
			       "half-way; reopen the image (run check)",
			       img->path);
	}
	return qcow2_batch_commit(img, e);
}
