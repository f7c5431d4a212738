/* qed_write.c - the qed write path: pwrite and write_zeroes, enough for a
 * protected reader (base's old bytes filled into clusters it does not
 * allocate) and for in-place writes of clusters it does.
 *
 * New clusters and new L2 tables are appended at the end of the file,
 * cluster-aligned, as QEMU's qed driver allocates them.  Order, so that a
 * crash at any instant leaves only leaked space (qemu-img check: leaks,
 * never corruption), and the need-check bit is never used:
 *  - new data clusters are written and fdatasync'd before the L2 entries
 *    that point at them;
 *  - a new L2 table is written and fdatasync'd before the L1 entry that
 *    points at it.
 * An unallocated cluster over a backing file is written whole (the rest of
 * it would have to come from the backing chain); a zero cluster (L2 entry
 * 1, QED_CLUSTER_ZERO) or one without a backing file is padded with zeros.
 * Growing rewrites the header's image_size, as QEMU does; protection
 * never changes a reader's size.
 */
#include "qed_int.h"
#include "fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *qed_write_refusal(const struct qed_state *s)
{
	if (s->features & QED_F_NEED_CHECK)
		return "the qed need-check flag is set (features bit 0x2): the "
		       "image was not closed cleanly; run qemu-img check -r "
		       "all first";
	if (s->compat_features)
		return "the qed header has compatible features imgraph does "
		       "not know (compat_features); it is not written";
	if (s->autoclear_features)
		return "the qed header has autoclear features imgraph does "
		       "not know (autoclear_features); it is not written";
	return NULL;
}

int qed_open_rw(struct img *img, struct img_err *e)
{
	const char *why = qed_write_refusal(img->priv);

	if (why)
		return err_set(e, EROFS, "%s: cannot open for writing: %s",
			       img->path, why);
	return 0;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int wr(struct img *img, const void *buf, size_t n, uint64_t off,
	      const char *what, struct img_err *e)
{
	int r = io_pwrite(img->fd, buf, n, off);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot write %s at %llu",
				     img->path, what, (unsigned long long)off);
	return 0;
}

static int sync_data(struct img *img, struct img_err *e)
{
	int r = io_fdatasync(img->fd);

	if (r < 0)
		return err_set_errno(e, -r, "%s: fdatasync", img->path);
	return 0;
}

/* Write table entries [lo, hi] of t (host offset toff) in one pwrite. */
static int write_entries(struct img *img, const uint64_t *t, uint32_t lo,
			 uint32_t hi, uint64_t toff, const char *what,
			 struct img_err *e)
{
	size_t n = (size_t)(hi - lo + 1) * 8;
	uint8_t *raw = malloc(n);
	int r;

	if (!raw)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint32_t i = lo; i <= hi; i++)
		put_le64(raw + 8 * (i - lo), t[i]);
	r = wr(img, raw, n, toff + 8ull * lo, what, e);
	free(raw);
	return r;
}

/* The L2 table of L1 entry l1i into s->l2: read, or a new zeroed one
 * (s->l2_off 0: not in the file yet). */
static int load_l2(struct img *img, uint64_t goff, uint32_t l1i,
		   struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t entry, span;

	if (s->l1[l1i])
		return qed_entry_at(img, goff, &entry, &span, e);
	if (!s->l2)
		s->l2 = malloc((size_t)s->table_nelems * 8);
	if (!s->l2)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	memset(s->l2, 0, (size_t)s->table_nelems * 8);
	s->l2_off = 0;
	return 0;
}

/* Link what load_l2 + the cluster loop changed in s->l2 (entries [lo,
 * hi]): new data durable first, then the entries, or a new table made
 * durable before its L1 entry. */
static int link_l2(struct img *img, uint32_t l1i, uint32_t lo, uint32_t hi,
		   bool new_data, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t tbytes = (uint64_t)s->table_nelems * 8, t = s->file_size;
	int r = new_data && s->l1[l1i] ? sync_data(img, e) : 0;

	s->dirty = true;
	if (r == 0 && s->l1[l1i])
		return write_entries(img, s->l2, lo, hi, s->l1[l1i],
				     "an L2 table", e);
	if (r == 0)
		r = write_entries(img, s->l2, 0, s->table_nelems - 1, t,
				  "a new L2 table", e);
	if (r < 0)
		return r;
	s->file_size += tbytes;
	r = sync_data(img, e);
	if (r == 0)
		r = write_entries(img, (uint64_t[]){ t }, 0, 0,
				  s->l1_table_offset + 8ull * l1i, "the L1 table",
				  e);
	if (r < 0)
		return r;
	s->l1[l1i] = t;
	s->l2_off = t;
	return 0;
}

static int einval_partial(struct img *img, uint64_t goff, struct img_err *e)
{
	return err_set(e, EINVAL, "%s: partial write at guest offset %llu into "
		       "a qed cluster that is unallocated over a backing file; "
		       "the rest of the cluster would have to come from the "
		       "backing chain (write whole clusters)", img->path,
		       (unsigned long long)goff);
}

/* One cluster c of a write of [a, z) (buf: the bytes of a; NULL: zeros),
 * its entry *ent: in place, as a zero entry, or into a new cluster
 * appended at the end of the file (*ent set; linked by the caller). */
static int one_cluster(struct img *img, uint64_t c, uint64_t a, uint64_t z,
		       const uint8_t *buf, uint8_t *tmp, uint64_t *ent,
		       bool *new_data, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t cs = s->cluster_size, cend = c + cs;
	bool whole, backed = s->backing != NULL;
	const uint8_t *src;
	int r;

	if (cend > s->image_size)
		cend = s->image_size;
	whole = a == c && z >= cend;
	if (*ent > 1 && ((*ent & (cs - 1)) ||
			 *ent < (uint64_t)s->header_size * cs ||
			 *ent > s->file_size || s->file_size - *ent < cs))
		return err_set(e, EINVAL, "%s: qed L2 entry for guest offset "
			       "%llu is %llu; not a valid cluster offset",
			       img->path, (unsigned long long)c,
			       (unsigned long long)*ent);
	if (*ent > 1) {                     /* allocated: in place */
		if (!buf)
			memset(tmp, 0, (size_t)(z - a));
		s->dirty = true;
		return wr(img, buf ? buf : tmp, (size_t)(z - a), *ent + (a - c),
			  "guest data", e);
	}
	if (!whole && *ent == 0 && backed)
		return einval_partial(img, a, e);
	if (!buf) {                         /* reads as zeros already? */
		if (*ent == 0 && (whole || backed))
			*ent = 1;
		return 0;
	}
	src = buf;
	if (!whole || cend - c < cs) {
		memset(tmp, 0, (size_t)cs);
		memcpy(tmp + (a - c), buf, (size_t)(z - a));
		src = tmp;
	}
	r = wr(img, src, (size_t)cs, s->file_size, "a new cluster", e);
	if (r < 0)
		return r;
	*ent = s->file_size;
	s->file_size += cs;
	*new_data = true;
	return 0;
}

/* [off, end) inside one L2 table's range. */
static int write_chunk(struct img *img, uint64_t off, uint64_t end,
		       const uint8_t *buf, uint8_t *tmp, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t cs = s->cluster_size;
	uint32_t l1i = (uint32_t)(off >> (s->cluster_bits +
				  (uint32_t)__builtin_ctz(s->table_nelems)));
	uint32_t lo = UINT32_MAX, hi = 0;
	bool new_data = false;
	int r = load_l2(img, off, l1i, e);

	for (uint64_t c = off / cs * cs; r == 0 && c < end; c += cs) {
		uint32_t i = (uint32_t)((c >> s->cluster_bits) &
					(s->table_nelems - 1));
		uint64_t a = off > c ? off : c, z = end < c + cs ? end : c + cs;
		uint64_t ent = s->l2[i];

		r = one_cluster(img, c, a, z, buf ? buf + (a - off) : NULL,
				tmp, &ent, &new_data, e);
		if (r == 0 && ent != s->l2[i]) {
			s->l2[i] = ent;
			lo = i < lo ? i : lo;
			hi = i;
		}
	}
	if (r == 0 && lo <= hi)
		r = link_l2(img, l1i, lo, hi, new_data, e);
	if (r < 0)
		s->l2_off = 0;      /* the cached table may name unlinked
				     * clusters: read it again */
	return r;
}

static int write_range(struct img *img, uint64_t off, uint64_t len,
		       const uint8_t *buf, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t span = (uint64_t)s->cluster_size * s->table_nelems;
	uint8_t *tmp;
	int r = 0;

	if (off > s->image_size || len > s->image_size - off)
		return err_set(e, EINVAL, "%s: write of %llu bytes at %llu is "
			       "past the qed image's size (%llu)", img->path,
			       (unsigned long long)len, (unsigned long long)off,
			       (unsigned long long)s->image_size);
	tmp = malloc(s->cluster_size);
	if (!tmp)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	while (r == 0 && len) {
		uint64_t n = span - (off & (span - 1));

		n = n < len ? n : len;
		r = write_chunk(img, off, off + n, buf, tmp, e);
		off += n;
		len -= n;
		buf = buf ? buf + n : NULL;
	}
	free(tmp);
	return r;
}

int qed_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
	       struct img_err *e)
{
	return write_range(img, off, len, buf, e);
}

int qed_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     struct img_err *e)
{
	return write_range(img, off, len, NULL, e);
}

/* Over a backing file the grown range would read the backing file's
 * data (it read as zeros past the old end): zero clusters first, from the
 * old end's cluster on, durably, before the header's image_size moves (as
 * QEMU's truncate zeroes it), so that no crash shows that data.  Entries
 * past image_size are not read until it moves. */
static int zero_grown(struct img *img, uint64_t new_size, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t old = s->image_size, cs = s->cluster_size;
	uint64_t from = (old + cs - 1) / cs * cs;
	int r;

	if (!s->backing || from >= new_size)
		return 0;
	s->image_size = new_size;   /* the write path's bound, in memory */
	r = write_range(img, from, new_size - from, NULL, e);
	if (r == 0)
		r = sync_data(img, e);
	s->image_size = old;
	return r;
}

/* As QEMU's qed grows an image: the header's image_size, within what the
 * L1 and L2 tables can map; never a shrink. */
int qed_grow(struct img *img, uint64_t new_size, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t n = s->table_nelems, max = UINT64_MAX;
	uint8_t b[8];
	int r;

	if (new_size == s->image_size)
		return 0;
	if (n <= UINT64_MAX / s->cluster_size &&
	    n * s->cluster_size <= UINT64_MAX / n)
		max = n * s->cluster_size * n;
	if (new_size < s->image_size || new_size % 512 || new_size > max)
		return err_set(e, EINVAL, "%s: cannot resize the qed image "
			       "from %llu to %llu bytes (it only grows, in "
			       "multiples of 512, up to %llu)", img->path,
			       (unsigned long long)s->image_size,
			       (unsigned long long)new_size,
			       (unsigned long long)max);
	r = zero_grown(img, new_size, e);
	if (r < 0)
		return r;
	put_le64(b, new_size);
	r = wr(img, b, sizeof(b), 48, "the header's image_size", e);
	if (r == 0)
		r = sync_data(img, e);
	if (r < 0)
		return r;
	s->image_size = new_size;
	img->virtual_size = new_size;
	return 0;
}

/* Every cluster let go: the L1 table zeroed and made durable, then the
 * file cut back to the end of the L1 table (what qemu-img create leaves),
 * since nothing past it is reachable any more. */
int qed_make_empty(struct img *img, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint64_t tbytes = (uint64_t)s->table_nelems * 8;
	uint64_t end = s->l1_table_offset + tbytes;
	int r;

	memset(s->l1, 0, (size_t)tbytes);
	s->l2_off = 0;
	r = write_entries(img, s->l1, 0, s->table_nelems - 1,
			  s->l1_table_offset, "the L1 table", e);
	if (r == 0)
		r = sync_data(img, e);
	if (r < 0)
		return r;
	if (s->file_size > end) {
		r = io_ftruncate(img->fd, end);
		if (r < 0)
			return err_set_errno(e, -r, "%s: cannot truncate to "
					     "%llu", img->path,
					     (unsigned long long)end);
		s->file_size = end;
		s->dirty = true;
	}
	return 0;
}

int qed_flush(struct img *img, struct img_err *e)
{
	struct qed_state *s = img->priv;
	int r;

	if (!s->dirty)
		return 0;
	r = sync_data(img, e);
	if (r == 0)
		s->dirty = false;
	return r;
}
