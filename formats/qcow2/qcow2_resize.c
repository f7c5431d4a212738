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
		uint64_t *nl1 = realloc(s->l1, need * sizeof(uint64_t));
		uint8_t *raw = calloc(nc, cs);

		if (!nl1 || !raw) {
			free(raw);
			if (nl1)
				s->l1 = nl1;
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		}
		s->l1 = nl1;
		memset(nl1 + s->h.l1_size, 0,
		       (need - s->h.l1_size) * sizeof(uint64_t));
		for (uint64_t i = 0; i < s->h.l1_size; i++)
			qcow2_put_be64(raw + i * 8, nl1[i]);
		/* New L1 in new clusters, counted and durable before the one
		 * 12-byte header write that switches to it. */
		uint64_t noff = qcow2_reserve(img, nc);
		r = io_pwrite(img->fd, raw, nc * cs, noff);
		free(raw);
		if (r < 0)
			return err_set_errno(e, -r, "%s: write of the new L1 table",
					     img->path);
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
		if (old_nc && old_off) {
			r = qcow2_rc_add(img, old_off / cs, old_nc, -1, false, e);
			if (r >= 0)
				r = qcow2_rc_writeback(img, e);
			if (r < 0)
				return r;
		}
	}
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

int qcow2_make_empty(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size, n = s->h.l1_size;
	uint64_t *old;
	uint8_t *zero;
	int r;

	r = qcow2_write_begin(img, e);
	if (r >= 0)
		r = qcow2_batch_commit(img, e);
	if (r < 0)
		return r;
	if (!n)
		return 0;
	old = malloc(n * sizeof(uint64_t));
	zero = calloc(n, 8);
	if (!old || !zero) {
		free(old);
		free(zero);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	memcpy(old, s->l1, n * sizeof(uint64_t));
	/* Unlink everything in one write, make it durable, then free: a
	 * crash in between only leaks. */
	uint8_t *obe = malloc(n * 8);
	for (uint64_t i = 0; obe && i < n; i++)
		qcow2_put_be64(obe + i * 8, old[i]);
	r = qcow2_meta_write(img, s->h.l1_table_offset, zero, obe, n * 8,
			     "the L1 table", e);
	free(zero);
	free(obe);
	if (r < 0) {
		free(old);
		return r;
	}
	memset(s->l1, 0, n * sizeof(uint64_t));
	r = qcow2_sync(img, e);
	if (r >= 0)
		r = qcow2_apply_pending(img, e);
	for (uint64_t i = 0; i < n && r >= 0; i++) {
		uint64_t l2off = old[i] & QCOW2_L1E_OFFSET_MASK;
		uint8_t *t;
		if (!l2off)
			continue;
		/* Each L1 that reaches a table counts once for the table and
		 * once for every cluster in it (a table shared with a snapshot
		 * has refcount 2 and so do its clusters): drop both. */
		r = qcow2_wl2_load(img, l2off, &t, e);
		for (uint64_t k = 0; r >= 0 && k < s->l2_entries; k++) {
			uint64_t ent = qcow2_be64(t + k * (uint64_t)s->l2_entry_bytes);
			if (ent)
				r = qcow2_release_entry(img, ent, e);
		}
		if (r >= 0)
			r = qcow2_rc_add(img, l2off / cs, 1, -1, false, e);
		qcow2_wl2_forget(s, l2off);
	}
	free(old);
	if (r >= 0)
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
