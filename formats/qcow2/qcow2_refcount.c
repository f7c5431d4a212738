/* qcow2_refcount.c - eager refcounts for the qcow2 write path.
 *
 * The refcount table lives in s->reft (host-endian); refcount blocks go
 * through a small write-back cache (QCOW2_RB_CACHE blocks) whose dirty
 * ranges reach the file at qcow2_rc_writeback(), which callers invoke
 * before every fdatasync that orders refcounts before pointers.
 *
 * Allocation is append-only: qcow2_reserve() hands out clusters from the
 * end of the file (rounded up to a cluster).  A missing refcount block is
 * put there too, usually covering itself, and linked into the table only
 * after it is durable.  A full table is relocated: a larger copy is written
 * to new clusters with their refcounts set, synced, switched with one
 * 12-byte header write (refcount_table_offset and _clusters), synced, and
 * the old clusters freed.
 * A crash at any point can leak clusters but never leaves a reference to a
 * cluster whose refcount is 0.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t qcow2_rc_entry_get(const uint8_t *blk, int bits, uint64_t i)
{
	if (bits < 8) {
		uint64_t bit = i * (uint64_t)bits;
		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	uint64_t v = 0;
	const uint8_t *p = blk + i * (uint64_t)(bits / 8);
	for (int k = 0; k < bits / 8; k++)
		v = (v << 8) | p[k];
	return v;
}

void qcow2_rc_entry_put(uint8_t *blk, int bits, uint64_t i, uint64_t v)
{
	if (bits < 8) {
		uint64_t bit = i * (uint64_t)bits;
		unsigned mask = ((1u << bits) - 1) << (bit % 8);
		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) |
					 ((unsigned)(v << (bit % 8)) & mask));
		return;
	}
	uint8_t *p = blk + i * (uint64_t)(bits / 8);
	for (int k = bits / 8 - 1; k >= 0; k--, v >>= 8)
		p[k] = (uint8_t)v;
}

static uint64_t rc_max(const struct qcow2_state *s)
{
	return s->refcount_bits == 64 ? ~0ull
				      : (1ull << s->refcount_bits) - 1;
}

static uint64_t rb_entries(const struct qcow2_state *s)
{
	return (uint64_t)s->cluster_size * 8 / (uint64_t)s->refcount_bits;
}

int qcow2_sync(struct img *img, struct img_err *e)
{
	int r = io_fdatasync(img->fd);

	if (r < 0)
		return err_set_errno(e, -r, "%s: fdatasync", img->path);
	return 0;
}

int qcow2_meta_write(struct img *img, uint64_t off, const void *nw,
		     const void *old, size_t n, const char *what,
		     struct img_err *e)
{
	int r = io_pwrite(img->fd, nw, n, off);

	if (r == 0)
		return 0;
	/* Best effort: a torn pointer would be corruption, the old one is
	 * only a failed operation. */
	if (old)
		(void)io_pwrite(img->fd, old, n, off);
	return err_set_errno(e, -r, "%s: write of %s at offset %llu",
			     img->path, what, (unsigned long long)off);
}

int qcow2_hdr_write(struct img *img, uint32_t off, const void *p, size_t n,
		    struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const uint8_t *old;
	int r = 0;

	if (s->header_cluster && off + n <= s->cluster_size)
		r = qcow2_hdr_need(s, img->path, img->fd, (uint32_t)(off + n),
				   e);
	if (r < 0)
		return r;
	old = s->header_cluster && off + n <= s->cluster_size ?
	      s->header_cluster + off : NULL;
	r = qcow2_meta_write(img, off, p, old, n, "header fields", e);
	if (r < 0)
		return r;
	if (old)
		memcpy(s->header_cluster + off, p, n);
	return 0;
}

uint64_t qcow2_reserve(struct img *img, uint64_t n)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	uint64_t off = a->next_free;

	a->next_free += n * s->cluster_size;
	if (a->next_free > s->file_size)
		s->file_size = a->next_free;
	return off;
}

static int rb_get(struct img *img, uint64_t off, bool fresh,
		  struct qcow2_rb_slot **out, struct img_err *e);

/* Clusters past the end of the file that still have a refcount were
 * counted by a writer that failed before its data reached them (refcounts
 * go first, so a failure leaks and never corrupts).  New clusters go
 * after them, never onto them. */
static int skip_counted_tail(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	uint64_t rbe = rb_entries(s), cs = s->cluster_size;
	uint64_t first = a->next_free / cs;

	for (uint64_t ti = s->reft_entries; ti-- > first / rbe;) {
		struct qcow2_rb_slot *sl;
		int r;

		if (!s->reft[ti])
			continue;
		r = rb_get(img, s->reft[ti], false, &sl, e);
		if (r < 0)
			return r;
		for (uint64_t j = rbe; j-- > 0 && ti * rbe + j >= first;) {
			if (qcow2_rc_entry_get(sl->buf, s->refcount_bits, j)) {
				a->next_free = (ti * rbe + j + 1) * cs;
				return 0;
			}
		}
	}
	return 0;
}

static int load_reft(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t bytes = (uint64_t)s->h.refcount_table_clusters * s->cluster_size;
	uint8_t *raw;
	int r;

	if (!bytes || bytes > QCOW2_MAX_REFT_BYTES)
		return err_set(e, EINVAL, "%s: qcow2 header field "
			       "'refcount_table_clusters' is %u; out of range",
			       img->path, s->h.refcount_table_clusters);
	raw = malloc(bytes);
	s->reft = calloc(bytes / 8, sizeof(uint64_t));
	if (!raw || !s->reft) {
		free(raw);
		free(s->reft);
		s->reft = NULL;
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	r = io_pread_full(img->fd, raw, bytes, s->h.refcount_table_offset);
	if (r < 0) {
		free(raw);
		free(s->reft);
		s->reft = NULL;
		return err_set_errno(e, -r, "%s: cannot read the refcount table",
				     img->path);
	}
	s->reft_entries = (uint32_t)(bytes / 8);
	for (uint32_t i = 0; i < s->reft_entries; i++) {
		uint64_t v = qcow2_be64(raw + i * 8);
		if ((v & ~QCOW2_REFT_OFFSET_MASK) || (v % s->cluster_size)) {
			free(raw);
			return err_set(e, EINVAL, "%s: refcount table entry %u is "
				       "0x%llx; not cluster aligned (image "
				       "corrupt; run check)", img->path, i,
				       (unsigned long long)v);
		}
		s->reft[i] = v;
	}
	free(raw);
	return 0;
}

int qcow2_write_begin(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a;
	struct stat st;
	int r;

	if (!(img->flags & IMG_O_RDWR))
		return err_set(e, EROFS, "%s: image opened read-only",
			       img->path);
	if (s->write_refusal)
		return err_set(e, EROFS, "%s: refusing to write: %s", img->path,
			       s->write_refusal);
	if (s->alloc && ((struct qcow2_alloc *)s->alloc)->broken)
		return err_set(e, EIO, "%s: an earlier refcount update failed "
			       "half-way; reopen the image (run check)",
			       img->path);
	if (s->alloc && ((struct qcow2_alloc *)s->alloc)->prepared) {
		((struct qcow2_alloc *)s->alloc)->unflushed = true;
		return 0;
	}
	r = qcow2_need_l1(img, e);
	if (r < 0)
		return r;
	if (!s->alloc) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		s->alloc = a;
	}
	a = s->alloc;
	a->img = img;
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	if ((uint64_t)st.st_size > s->file_size)
		s->file_size = (uint64_t)st.st_size;
	a->next_free = (s->file_size + s->cluster_size - 1) &
		       ~(uint64_t)(s->cluster_size - 1);
	if (!s->reft) {
		r = load_reft(img, e);
		if (r < 0)
			return r;
	}
	r = skip_counted_tail(img, e);
	if (r < 0)
		return r;
	/* The format requires a writer to clear the autoclear bits it does
	 * not know before it changes anything: those features may be
	 * invalid afterwards. */
	uint64_t known = QCOW2_AUTOCLEAR_BITMAPS | QCOW2_AUTOCLEAR_DATA_RAW;
	if (s->h.version >= 3 &&
	    s->h.header_length >= QCOW2_HDR_AUTOCLEAR_FEATURES + 8 &&
	    (s->h.autoclear_features & ~known)) {
		uint8_t b[8];
		qcow2_put_be64(b, s->h.autoclear_features & known);
		r = qcow2_hdr_write(img, QCOW2_HDR_AUTOCLEAR_FEATURES, b, 8,
				    e);
		if (r < 0)
			return r;
		r = qcow2_sync(img, e);
		if (r < 0)
			return r;
		s->h.autoclear_features &= known;
	}
	a->prepared = true;
	a->unflushed = true;
	return 0;
}

/* ---- refcount block cache ---- */

static int rb_flush_slot(struct img *img, struct qcow2_rb_slot *sl,
			 struct img_err *e)
{
	int r;

	if (sl->dlo >= sl->dhi)
		return 0;
	r = io_pwrite(img->fd, sl->buf + sl->dlo, sl->dhi - sl->dlo,
		      sl->off + sl->dlo);
	if (r < 0)
		return err_set_errno(e, -r, "%s: write of refcount block at %llu",
				     img->path, (unsigned long long)sl->off);
	sl->dlo = sl->dhi = 0;
	return 0;
}

int qcow2_rc_writeback(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;

	for (int i = 0; a && i < QCOW2_RB_CACHE; i++) {
		int r = rb_flush_slot(img, &a->rb[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A slot for block offset off; loads it unless fresh (then zero-filled). */
static int rb_get(struct img *img, uint64_t off, bool fresh,
		  struct qcow2_rb_slot **out, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	struct qcow2_rb_slot *victim = NULL;
	int r;

	for (int i = 0; i < QCOW2_RB_CACHE; i++)
		if (a->rb[i].off == off) {
			a->rb[i].used = ++a->tick;
			*out = &a->rb[i];
			return 0;
		}
	for (int i = 0; i < QCOW2_RB_CACHE; i++)
		if (!victim || a->rb[i].used < victim->used)
			victim = &a->rb[i];
	r = rb_flush_slot(img, victim, e);
	if (r < 0)
		return r;
	victim->off = 0;
	if (!victim->buf) {
		victim->buf = malloc(s->cluster_size);
		if (!victim->buf)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	if (fresh) {
		memset(victim->buf, 0, s->cluster_size);
	} else {
		r = io_pread_full(img->fd, victim->buf, s->cluster_size, off);
		if (r < 0)
			return err_set_errno(e, -r, "%s: cannot read refcount "
					     "block at %llu", img->path,
					     (unsigned long long)off);
	}
	victim->off = off;
	victim->used = ++a->tick;
	*out = victim;
	return 0;
}

static void rb_mark(struct qcow2_state *s, struct qcow2_rb_slot *sl,
		    uint64_t idx)
{
	uint64_t lo = idx * (uint64_t)s->refcount_bits / 8;
	uint64_t hi = ((idx + 1) * (uint64_t)s->refcount_bits + 7) / 8;

	if (sl->dlo >= sl->dhi) {
		sl->dlo = (uint32_t)lo;
		sl->dhi = (uint32_t)hi;
		return;
	}
	if (lo < sl->dlo)
		sl->dlo = (uint32_t)lo;
	if (hi > sl->dhi)
		sl->dhi = (uint32_t)hi;
}

static int grow_reft(struct img *img, uint64_t min_ti, struct img_err *e);

/* Create the refcount block for table index ti at the end of the file. */
static int new_block(struct img *img, uint64_t ti, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	struct qcow2_rb_slot *sl;
	uint64_t rbe = rb_entries(s), b, bc;
	int r;

	if (ti >= s->reft_entries) {
		if (a->staging)
			return err_set(e, ENOSPC, "%s: refcount table too small "
				       "while relocating it", img->path);
		r = grow_reft(img, ti, e);
		if (r < 0)
			return r;
		if (s->reft[ti])
			return 0;       /* the growth created it */
	}
	b = qcow2_reserve(img, 1);
	bc = b / s->cluster_size;
	r = rb_get(img, b, true, &sl, e);
	if (r < 0)
		return r;
	sl->dlo = 0;
	sl->dhi = s->cluster_size;
	if (bc / rbe == ti) {
		/* The usual case: the new block counts itself. */
		qcow2_rc_entry_put(sl->buf, s->refcount_bits, bc % rbe, 1);
	} else {
		r = qcow2_rc_add(img, bc, 1, 1, true, e);
		if (r < 0)
			return r;
	}
	if (a->staging) {
		s->reft[ti] = b;        /* written with the whole new table */
		return 0;
	}
	/* The block (and its own count) must be durable before the table
	 * entry makes it live. */
	r = qcow2_rc_writeback(img, e);
	if (r < 0)
		return r;
	r = qcow2_sync(img, e);
	if (r < 0)
		return r;
	uint8_t be[8], zero[8] = { 0 };
	qcow2_put_be64(be, b);
	r = qcow2_meta_write(img, s->h.refcount_table_offset + ti * 8, be, zero,
			     8, "a refcount table entry", e);
	if (r < 0)
		return r;
	s->reft[ti] = b;
	return 0;
}

static int grow_reft(struct img *img, uint64_t min_ti, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;
	uint64_t cs = s->cluster_size, epc = cs / 8, rbe = rb_entries(s);
	uint64_t n = (uint64_t)s->reft_entries * 2, ntc, end_c;
	uint64_t old_off = s->h.refcount_table_offset;
	uint32_t old_nc = s->h.refcount_table_clusters;
	uint64_t *old = s->reft, *nt;
	uint32_t old_entries = s->reft_entries;
	uint8_t *raw;
	int r;

	if (n < min_ti + 1)
		n = min_ti + 1;
	for (;;) {
		ntc = (n + epc - 1) / epc;
		n = ntc * epc;
		/* Room for the table itself, the blocks that count it, and
		 * a block or two more that those may need. */
		end_c = a->next_free / cs + ntc + ntc / rbe + 4;
		if (end_c / rbe < n)
			break;
		n *= 2;
	}
	if (ntc * cs > QCOW2_MAX_REFT_BYTES)
		return err_set(e, EFBIG, "%s: the refcount table would need %llu "
			       "bytes; QEMU allows at most %u", img->path,
			       (unsigned long long)(ntc * cs),
			       QCOW2_MAX_REFT_BYTES);
	nt = calloc(n, sizeof(*nt));
	raw = calloc(ntc, cs);
	if (!nt || !raw) {
		free(nt);
		free(raw);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	memcpy(nt, old, (size_t)old_entries * sizeof(*nt));
	uint64_t toff = qcow2_reserve(img, ntc);
	s->reft = nt;
	s->reft_entries = (uint32_t)n;
	a->staging = true;
	r = qcow2_rc_add(img, toff / cs, ntc, 1, true, e);
	a->staging = false;
	if (r < 0)
		goto undo;
	for (uint64_t i = 0; i < n; i++)
		qcow2_put_be64(raw + i * 8, nt[i]);
	r = io_pwrite(img->fd, raw, ntc * cs, toff);
	if (r < 0) {
		r = err_set_errno(e, -r, "%s: write of the new refcount table",
				  img->path);
		goto undo;
	}
	r = qcow2_rc_writeback(img, e);
	if (r >= 0)
		r = qcow2_sync(img, e);
	if (r < 0)
		goto undo;
	/* Switch: offset and cluster count in one 12-byte write. */
	uint8_t h[12];
	qcow2_put_be64(h, toff);
	qcow2_put_be32(h + (QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS -
			    QCOW2_HDR_REFCOUNT_TABLE_OFFSET), (uint32_t)ntc);
	r = qcow2_hdr_write(img, QCOW2_HDR_REFCOUNT_TABLE_OFFSET, h, 12, e);
	if (r >= 0)
		r = qcow2_sync(img, e);
	if (r < 0)
		goto undo;
	s->h.refcount_table_offset = toff;
	s->h.refcount_table_clusters = (uint32_t)ntc;
	free(raw);
	free(old);
	/* Only now may the old table's clusters go. */
	return qcow2_rc_add(img, old_off / cs, old_nc, -1, false, e);
undo:
	free(raw);
	free(nt);
	s->reft = old;
	s->reft_entries = old_entries;
	return r;
}

int qcow2_rc_get(struct img *img, uint64_t c, uint64_t *rc,
		 struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_rb_slot *sl;
	uint64_t rbe = rb_entries(s), ti = c / rbe;
	int r;

	*rc = 0;
	if (ti >= s->reft_entries || !s->reft[ti])
		return 0;
	r = rb_get(img, s->reft[ti], false, &sl, e);
	if (r < 0)
		return r;
	*rc = qcow2_rc_entry_get(sl->buf, s->refcount_bits, c % rbe);
	return 0;
}

int qcow2_rc_add(struct img *img, uint64_t c, uint64_t n, int delta,
		 bool expect_free, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t rbe = rb_entries(s), max = rc_max(s);
	int r;

	for (uint64_t k = 0; k < n; k++, c++) {
		struct qcow2_rb_slot *sl;
		uint64_t ti = c / rbe, v;

		if (ti >= s->reft_entries || !s->reft[ti]) {
			if (delta < 0)
				return err_set(e, EIO, "%s: refcount of cluster "
					       "%llu would drop below 0 (no "
					       "refcount block); image corrupt",
					       img->path, (unsigned long long)c);
			r = new_block(img, ti, e);
			if (r < 0)
				return r;
		}
		r = rb_get(img, s->reft[ti], false, &sl, e);
		if (r < 0)
			return r;
		v = qcow2_rc_entry_get(sl->buf, s->refcount_bits, c % rbe);
		if (expect_free && v)
			return err_set(e, EIO, "%s: new cluster %llu already has "
				       "refcount %llu; image inconsistent (run "
				       "check)", img->path, (unsigned long long)c,
				       (unsigned long long)v);
		if (delta < 0 && v == 0)
			return err_set(e, EIO, "%s: refcount of cluster %llu "
				       "would drop below 0; image corrupt",
				       img->path, (unsigned long long)c);
		if (delta > 0 && v == max)
			return err_set(e, EOVERFLOW, "%s: refcount of cluster "
				       "%llu would exceed %llu (refcount_bits "
				       "%d)", img->path, (unsigned long long)c,
				       (unsigned long long)max, s->refcount_bits);
		v = delta > 0 ? v + 1 : v - 1;
		qcow2_rc_entry_put(sl->buf, s->refcount_bits, c % rbe, v);
		rb_mark(s, sl, c % rbe);
	}
	return 0;
}

int qcow2_release_entry(struct img *img, uint64_t entry, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t cs = s->cluster_size;

	if (entry & QCOW2_OFLAG_COMPRESSED) {
		int shift = 62 - ((int)s->h.cluster_bits - 8);
		uint64_t coff = entry & ((1ull << shift) - 1);
		uint64_t nsec = ((entry >> shift) &
				 ((1ull << (s->h.cluster_bits - 8)) - 1)) + 1;
		uint64_t start = coff & ~511ull, end = start + nsec * 512 - 1;
		return qcow2_rc_add(img, start / cs, end / cs - start / cs + 1,
				    -1, false, e);
	}
	uint64_t host = entry & QCOW2_L2E_OFFSET_MASK;
	if (!host)
		return 0;
	return qcow2_rc_add(img, host / cs, 1, -1, false, e);
}

/* ---- releases deferred to the next fdatasync (see struct qcow2_alloc) ---- */

int qcow2_pend_add(struct img *img, uint64_t entry, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;

	if (a->npend == a->cap_pend) {
		size_t n = a->cap_pend ? a->cap_pend * 2 : 256;
		uint64_t *p = realloc(a->pend, n * sizeof(*p));
		if (!p)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		a->pend = p;
		a->cap_pend = n;
	}
	a->pend[a->npend++] = entry;
	return 0;
}

int qcow2_apply_pending(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_alloc *a = s->alloc;

	while (a && !a->broken && a->npend) {
		int r = qcow2_release_entry(img, a->pend[a->npend - 1], e);
		if (r < 0) {
			/* Part of it may be applied: retrying could count a
			 * cluster down twice.  Stop writing (leaks only). */
			a->broken = true;
			return r;
		}
		a->npend--;
	}
	return 0;
}
