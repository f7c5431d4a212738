/* qcow2_resize.c - grow the virtual size (relocating the L1 table when it
 * must grow), make_empty (drop every mapping so the layer defers to its
 * backing file), flush, and freeing the write-side state.  Same crash rule
 * as qcow2_alloc.c: new structures are written, counted and synced before
 * the one header write that switches to them; old ones are freed after.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Write the grown L1 table of `bytes` at noff: the current entries, then
 * zeros, one window at a time (never the whole table in memory). */
static int write_grown_l1(struct img *img, uint64_t noff, uint64_t bytes,
			  struct img_err *e)
{
	uint8_t raw[QCOW2_L1_WIN * 8];
	int r;

	for (uint64_t i = 0; i * 8 < bytes; i += QCOW2_L1_WIN) {
		uint64_t n = bytes / 8 - i < QCOW2_L1_WIN ? bytes / 8 - i :
			     QCOW2_L1_WIN;
		for (uint64_t j = 0; j < n; j++) {
			uint64_t v = 0;
			r = qcow2_l1_get(img, i + j, &v, e);
			if (r < 0)
				return r;
			qcow2_put_be64(raw + j * 8, v);
		}
		r = io_pwrite(img->fd, raw, n * 8, noff + i * 8);
		if (r < 0)
			return err_set_errno(e, -r, "%s: write of the new L1 "
					     "table", img->path);
	}
	return 0;
}

/* Over a backing file the grown range would read the backing file's
 * data (it read as zeros past the old end): it is made zero first, on
 * whole granules from the old end's, durably, before the one header write
 * that changes the size, as QEMU's truncate does, so that no crash shows
 * that data.  The L1 table covers the new size already; entries past the
 * size in the file are not read until the size moves. */
static int zero_grown(struct img *img, uint64_t new_size, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t old = s->h.size, g = s->subcluster_size;
	uint64_t from = (old + g - 1) / g * g;
	int r;

	if (!s->backing_name || !s->backing_name[0] || from >= new_size)
		return 0;
	s->h.size = new_size;   /* the write path's bound, in memory only */
	r = qcow2_write_zeroes(img, from, new_size - from, e);
	if (r >= 0)
		r = qcow2_flush(img, e);
	s->h.size = old;
	return r < 0 ? r : 0;
}

int qcow2_grow(struct img *img, uint64_t new_size, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size, span = (uint64_t)s->l2_entries * cs;
	uint64_t need;
	uint8_t b[12];
	int r;

	r = qcow2_write_begin(img, e);
	if (r >= 0)     /* pending chunks index the L1 being replaced */
		r = qcow2_batch_commit(img, e);
	if (r < 0)
		return r;
	/* QEMU keeps sizes in 512-byte sectors. */
	new_size = (new_size + 511) & ~511ull;
	if (new_size <= s->h.size)
		return 0;
	if (new_size > QCOW2_MAX_VSIZE)
		return err_set(e, EFBIG, "%s: size %llu is too large", img->path,
			       (unsigned long long)new_size);
	need = new_size / span + (new_size % span != 0);
	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return err_set(e, EFBIG, "%s: size %llu needs an L1 table of %llu "
			       "bytes; QEMU allows at most %u", img->path,
			       (unsigned long long)new_size,
			       (unsigned long long)(need * 8), QCOW2_MAX_L1_BYTES);
	if (need > s->h.l1_size) {
		uint64_t old_nc = ((uint64_t)s->h.l1_size * 8 + cs - 1) / cs;
		uint64_t nc = (need * 8 + cs - 1) / cs;
		uint64_t old_off = s->h.l1_table_offset;

		/* New L1 in new clusters, counted and durable before the one
		 * 12-byte header write that switches to it. */
		uint64_t noff = qcow2_reserve(img, nc);
		r = write_grown_l1(img, noff, nc * cs, e);
		if (r < 0)
			return r;
		r = qcow2_rc_add(img, noff / cs, nc, 1, true, e);
		if (r >= 0)
			r = qcow2_rc_writeback(img, e);
		if (r >= 0)
			r = qcow2_sync(img, e);
		if (r < 0)
			return r;
		/* l1_size and l1_table_offset in one write. */
		qcow2_put_be32(b, (uint32_t)need);
		qcow2_put_be64(b + (QCOW2_HDR_L1_TABLE_OFFSET -
				    QCOW2_HDR_L1_SIZE), noff);
		r = qcow2_hdr_write(img, QCOW2_HDR_L1_SIZE, b, 12, e);
		if (r >= 0)
			r = qcow2_sync(img, e);
		if (r < 0)
			return r;
		s->h.l1_size = (uint32_t)need;
		s->h.l1_table_offset = noff;
		qcow2_l1_forget(s);
		if (old_nc && old_off) {
			r = qcow2_rc_add(img, old_off / cs, old_nc, -1, false, e);
			if (r >= 0)
				r = qcow2_rc_writeback(img, e);
			if (r < 0)
				return r;
		}
	}
	r = zero_grown(img, new_size, e);
	if (r < 0)
		return r;
	qcow2_put_be64(b, new_size);
	r = qcow2_hdr_write(img, QCOW2_HDR_SIZE, b, 8, e);
	if (r >= 0)
		r = qcow2_sync(img, e);
	if (r < 0)
		return r;
	s->h.size = new_size;
	img->virtual_size = new_size;
	return 0;
}

/* Zero the L1 window from entry w (n entries) in the file; the L2 tables
 * it pointed at are appended to *tabs (what is unlinked is released only
 * after the caller's fdatasync). */
static int unlink_window(struct img *img, uint64_t w, uint64_t n,
			 uint64_t **tabs, size_t *nt, size_t *cap,
			 struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint8_t obe[QCOW2_L1_WIN * 8], zero[QCOW2_L1_WIN * 8];
	bool any = false;
	int r;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t v, l2;
		r = qcow2_l1_get(img, w + j, &v, e);
		if (r < 0)
			return r;
		qcow2_put_be64(obe + j * 8, v);
		any |= v != 0;
		l2 = v & QCOW2_L1E_OFFSET_MASK;
		if (!l2)
			continue;
		if (*nt == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			uint64_t *p = realloc(*tabs, nc * sizeof(*p));
			if (!p)
				return err_set(e, ENOMEM, "%s: out of memory",
					       img->path);
			*tabs = p;
			*cap = nc;
		}
		(*tabs)[(*nt)++] = l2;
	}
	if (!any)
		return 0;
	memset(zero, 0, sizeof(zero));
	r = qcow2_meta_write(img, s->h.l1_table_offset + w * 8, zero, obe,
			     n * 8, "the L1 table", e);
	qcow2_l1_forget(s);
	return r;
}

/* Release an unlinked L2 table and everything it references.  Each L1
 * that reaches a table counts once for the table and once for every
 * cluster in it (a table shared with a snapshot has refcount 2 and so do
 * its clusters): drop both. */
static int release_table(struct img *img, uint64_t l2off, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint8_t *t;
	int r;

	r = qcow2_wl2_load(img, l2off, &t, e);
	for (uint64_t k = 0; r >= 0 && k < s->l2_entries; k++) {
		uint64_t ent = qcow2_be64(t + k * (uint64_t)s->l2_entry_bytes);
		if (ent)
			r = qcow2_release_entry(img, ent, e);
	}
	if (r >= 0)
		r = qcow2_rc_add(img, l2off / s->cluster_size, 1, -1, false, e);
	qcow2_wl2_forget(s, l2off);
	return r;
}

int qcow2_make_empty(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t n = s->h.l1_size, *tabs = NULL;
	size_t nt = 0, cap = 0;
	int r;

	r = qcow2_write_begin(img, e);
	if (r >= 0)
		r = qcow2_batch_commit(img, e);
	/* Unlink everything, window by window, make it durable, then free:
	 * a crash in between only leaks.  Only the tables are remembered
	 * (as many as this layer allocated), not the whole L1. */
	for (uint64_t w = 0; r >= 0 && w < n; w += QCOW2_L1_WIN)
		r = unlink_window(img, w, n - w < QCOW2_L1_WIN ? n - w :
				  QCOW2_L1_WIN, &tabs, &nt, &cap, e);
	if (r >= 0 && n)
		r = qcow2_sync(img, e);
	if (r >= 0 && n)
		r = qcow2_apply_pending(img, e);
	for (size_t i = 0; i < nt && r >= 0; i++)
		r = release_table(img, tabs[i], e);
	free(tabs);
	if (r >= 0 && n)
		r = qcow2_rc_writeback(img, e);
	return r;
}

int qcow2_flush(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	int r;

	if (!(img->flags & IMG_O_RDWR))
		return 0;
	if (!s->alloc)
		return qcow2_sync(img, e);
	struct qcow2_alloc *a = s->alloc;
	/* A batch stays open; what it holds is linked and made durable. */
	r = a->broken ? 0 : qcow2_batch_commit(img, e);
	if (r >= 0)
		r = qcow2_rc_writeback(img, e);
	if (r >= 0)
		r = qcow2_sync(img, e);
	if (r >= 0 && a->npend) {
		/* Replaced clusters: their unlinking is durable now. */
		r = qcow2_apply_pending(img, e);
		if (r >= 0)
			r = qcow2_rc_writeback(img, e);
		if (r >= 0)
			r = qcow2_sync(img, e);
	}
	if (r >= 0)
		a->unflushed = false;
	return r;
}

void qcow2_alloc_free(struct qcow2_state *s)
{
	struct qcow2_alloc *a;

	if (!s || !s->alloc)
		return;
	a = s->alloc;
	/* Close: make the last refcount updates and the deferred frees
	 * reach the file (failures here can only leak clusters). */
	if (a->img && a->img->priv == s && a->prepared && !a->broken &&
	    a->unflushed)
		(void)qcow2_flush(a->img, NULL);
	qcow2_batch_drop(a);    /* left only after a failure: leaks */
	free(a->bch);
	for (int i = 0; i < QCOW2_RB_CACHE; i++)
		free(a->rb[i].buf);
	for (int i = 0; i < QCOW2_WL2_CACHE; i++)
		free(a->l2[i].buf);
	free(a->pend);
	free(a);
	s->alloc = NULL;
}
