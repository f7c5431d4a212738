/* qed.c - the QED format: reading, and the backing link (rewritten by a
 * relink as qemu-img rebase -u rewrites it).  The write path, which fills
 * clusters (base's old bytes for a protected reader), is qed_write.c.
 *
 * Header (little-endian, 64 bytes): magic "QED\0", cluster_size u32,
 * table_size u32 (clusters per L1/L2 table), header_size u32 (clusters),
 * features u64 (1 backing file, 2 need check, 4 backing is raw: do not
 * probe), compat_features u64, autoclear_features u64, l1_table_offset u64,
 * image_size u64, backing_filename_offset u32, backing_filename_size u32.
 * L1 and L2 entries are u64 file offsets: 0 unallocated (read the backing
 * file), 1 (L2 only) a zero cluster that hides the backing file.
 *
 * Fields are checked as QEMU's qed driver checks them; offsets that QEMU
 * would refuse when it reaches them (misaligned, inside the header, past
 * the end of the file) are refused the same way, naming the entry.
 */
#include "qed_int.h"
#include "fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QED_MAGIC            0x00444551u     /* "QED\0" little-endian */
#define QED_HDR_SIZE         64u
#define QED_MIN_CLUSTER      4096u
#define QED_MAX_CLUSTER      (64u << 20)
#define QED_MAX_TABLE        (16u << 20)     /* bytes per table: our cap */
#define QED_NAME_MAX         4095u           /* QEMU's PATH_MAX buffer */
#define KIND                 "qed"

static int qed_probe(const uint8_t *buf, size_t len)
{
	return len >= 4 && fmt_le32(buf) == QED_MAGIC ? 100 : 0;
}

static bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

static void qed_free(struct qed_state *s)
{
	if (!s)
		return;
	free(s->l1);
	free(s->l2);
	free(s->backing);
	free(s);
}

/* A table or cluster offset as QEMU accepts it: cluster-aligned, after the
 * header, and [off, off + bytes) inside the file. */
static bool offset_ok(const struct qed_state *s, uint64_t off, uint64_t bytes)
{
	return !(off & (s->cluster_size - 1)) &&
	       off >= (uint64_t)s->header_size * s->cluster_size &&
	       off < s->file_size && bytes <= s->file_size - off;
}

static uint64_t max_image_size(const struct qed_state *s)
{
	uint64_t n = s->table_nelems, cs = s->cluster_size;

	if (n > UINT64_MAX / cs || n * cs > UINT64_MAX / n)
		return UINT64_MAX;
	return n * cs * n;
}

static int check_fields(struct qed_state *s, const char *path,
			struct img_err *e)
{
	uint64_t tbytes;

	if (s->features & ~QED_FEATURES)
		return err_set(e, ENOTSUP, "%s: %s header field 'features' is "
			       "0x%llx; unknown feature bits 0x%llx", path, KIND,
			       (unsigned long long)s->features,
			       (unsigned long long)(s->features & ~QED_FEATURES));
	if (!pow2_in(s->cluster_size, QED_MIN_CLUSTER, QED_MAX_CLUSTER))
		return fmt_bad_field(e, path, KIND, "cluster_size", "is %u; "
				     "must be a power of two from 4 KiB to 64 "
				     "MiB", s->cluster_size);
	if (!pow2_in(s->table_size, 1, 16))
		return fmt_bad_field(e, path, KIND, "table_size", "is %u; must "
				     "be a power of two from 1 to 16",
				     s->table_size);
	tbytes = (uint64_t)s->table_size * s->cluster_size;
	if (tbytes > QED_MAX_TABLE)
		return fmt_bad_field(e, path, KIND, "table_size", "is %u; "
				     "tables of %llu bytes are over imgraph's "
				     "cap of %u MiB", s->table_size,
				     (unsigned long long)tbytes,
				     QED_MAX_TABLE >> 20);
	if (s->header_size == 0 || s->header_size > UINT32_MAX / s->cluster_size)
		return fmt_bad_field(e, path, KIND, "header_size", "is %u "
				     "clusters; must be at least 1 and under "
				     "4 GiB", s->header_size);
	s->cluster_bits = (uint32_t)__builtin_ctz(s->cluster_size);
	s->table_nelems = (uint32_t)(tbytes / 8);
	if (s->image_size % 512 || s->image_size > max_image_size(s))
		return fmt_bad_field(e, path, KIND, "image_size", "is %llu; "
				     "must be a multiple of 512 and at most "
				     "%llu", (unsigned long long)s->image_size,
				     (unsigned long long)max_image_size(s));
	if (!offset_ok(s, s->l1_table_offset, tbytes))
		return fmt_bad_field(e, path, KIND, "l1_table_offset", "is "
				     "%llu; the %llu-byte L1 table must be "
				     "cluster-aligned, after the header and "
				     "inside the file (%llu bytes)",
				     (unsigned long long)s->l1_table_offset,
				     (unsigned long long)tbytes,
				     (unsigned long long)s->file_size);
	return 0;
}

static int read_backing(struct qed_state *s, const uint8_t *h,
			const char *path, int fd, struct img_err *e)
{
	uint32_t off = fmt_le32(h + 56), len = fmt_le32(h + 60);
	int r;

	if (!(s->features & QED_F_BACKING_FILE))
		return 0;
	if ((uint64_t)off + len > (uint64_t)s->cluster_size * s->header_size)
		return fmt_bad_field(e, path, KIND, "backing_filename_offset",
				     "is %u (size %u); the name must lie in the "
				     "header clusters", off, len);
	if (len > QED_NAME_MAX)
		return fmt_bad_field(e, path, KIND, "backing_filename_size",
				     "is %u; at most %u", len, QED_NAME_MAX);
	r = fmt_check_range(e, path, KIND, "backing_filename_offset",
			    "backing file name", off, len, s->file_size);
	if (r < 0)
		return r;
	s->backing = calloc(1, (size_t)len + 1);
	if (!s->backing)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	r = fmt_pread(fd, path, "the backing file name", s->backing, len, off,
		      e);
	if (r == 0 && strlen(s->backing) != len)
		r = fmt_bad_field(e, path, KIND, "backing_filename_size",
				  "is %u, but the name has a NUL byte at %zu",
				  len, strlen(s->backing));
	return r;
}

/* Read one table (table_nelems little-endian u64) at off into t. */
static int read_table(struct qed_state *s, const char *path, int fd,
		      uint64_t off, uint64_t *t, const char *what,
		      struct img_err *e)
{
	size_t bytes = (size_t)s->table_nelems * 8;
	uint8_t *raw = malloc(bytes);
	int r;

	if (!raw)
		return err_set(e, ENOMEM, "%s: out of memory for %s", path,
			       what);
	r = fmt_pread(fd, path, what, raw, bytes, off, e);
	for (uint32_t i = 0; r == 0 && i < s->table_nelems; i++)
		t[i] = fmt_le64(raw + 8 * i);
	free(raw);
	return r;
}

static int parse(struct qed_state *s, const uint8_t *h, const char *path,
		 int fd, struct img_err *e)
{
	int r;

	s->cluster_size = fmt_le32(h + 4);
	s->table_size = fmt_le32(h + 8);
	s->header_size = fmt_le32(h + 12);
	s->features = fmt_le64(h + 16);
	s->compat_features = fmt_le64(h + 24);
	s->autoclear_features = fmt_le64(h + 32);
	s->l1_table_offset = fmt_le64(h + 40);
	s->image_size = fmt_le64(h + 48);
	/* QEMU rounds the file size down to a whole cluster */
	if (pow2_in(s->cluster_size, QED_MIN_CLUSTER, QED_MAX_CLUSTER))
		s->file_size &= ~(uint64_t)(s->cluster_size - 1);
	r = check_fields(s, path, e);
	if (r == 0)
		r = read_backing(s, h, path, fd, e);
	return r;
}

/* The L1 table (its place is checked with the header): read at open, or
 * on first use after an inspecting open (a pool scan reads headers only). */
static int need_l1(struct qed_state *s, const char *path, int fd,
		   struct img_err *e)
{
	int r;

	if (s->l1)
		return 0;
	s->l1 = malloc((size_t)s->table_nelems * 8);
	if (!s->l1)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	r = read_table(s, path, fd, s->l1_table_offset, s->l1,
		       "the L1 table", e);
	if (r < 0) {
		free(s->l1);
		s->l1 = NULL;
	}
	return r;
}

static int qed_open(struct img *img, int flags, struct img_err *e)
{
	uint8_t h[QED_HDR_SIZE];
	struct qed_state *s;
	struct stat st;
	ssize_t n;
	int r;

	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	n = io_pread(img->fd, h, sizeof(h), 0);
	if (n < 0)
		return err_set_errno(e, (int)-n, "%s: cannot read the header",
				     img->path);
	if (n < 4 || fmt_le32(h) != QED_MAGIC)
		return fmt_bad_field(e, img->path, KIND, "magic",
				     "is not 'QED\\0'; not a qed image");
	if ((size_t)n < sizeof(h))
		return err_set(e, EINVAL, "%s: %s header truncated: %zd bytes, "
			       "needs %u", img->path, KIND, n, QED_HDR_SIZE);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->file_size = (uint64_t)st.st_size;
	r = parse(s, h, img->path, img->fd, e);
	if (r == 0 && !(flags & IMG_O_INSPECT))
		r = need_l1(s, img->path, img->fd, e);
	if (r < 0) {
		qed_free(s);
		return r;
	}
	img->priv = s;
	img->virtual_size = s->image_size;
	if (flags & IMG_O_RDWR) {
		r = qed_open_rw(img, e);
		if (r < 0) {
			qed_free(s);
			img->priv = NULL;
		}
	}
	return r;
}

static void qed_close(struct img *img)
{
	/* flushed first, as QEMU does at close */
	if ((img->flags & IMG_O_RDWR) && img->priv)
		qed_flush(img, NULL);
	qed_free(img->priv);
	img->priv = NULL;
}

static int qed_get_info(struct img *img, struct img_info *o,
			struct img_err *e)
{
	struct qed_state *s = img->priv;
	int r = img_info_base(img, o, e);

	if (r < 0)
		return r;
	o->cluster_size = s->cluster_size;
	o->l2_table_clusters = s->table_size;
	/* need-check only says a consistency check is due: qemu-img 7.2
	 * prints dirty-flag false for it on a read-only open, and so do we */
	o->write_refusal = qed_write_refusal(s);
	return 0;
}

static int qed_get_backing(struct img *img, struct img_backing *out,
			   struct img_err *e)
{
	struct qed_state *s = img->priv;

	(void)e;
	out->name = s->backing;
	/* QED records no format, only "do not probe: it is raw" */
	out->format = s->backing && (s->features & QED_F_NO_PROBE) ? "raw"
								    : NULL;
	return 0;
}

/* The header that names a new backing file, byte for byte what QEMU's
 * bdrv_qed_change_backing_file writes (qemu-img rebase -u): the 64-byte
 * header with the backing-file and no-probe bits set from name and fmt
 * ("raw" is the only format qed records: anything else is probed), the
 * name right after it.  Refused, as QEMU refuses it, when compat features
 * we do not know may keep data after the header, or when the header
 * clusters cannot hold the name (-ENOSPC). */
static int qed_backing_header(struct img *img, const char *name,
			      const char *fmt, uint8_t **buf, size_t *len,
			      struct img_err *e)
{
	struct qed_state *s = img->priv;
	size_t nl = name ? strlen(name) : 0;
	uint64_t features = s->features & ~(QED_F_BACKING_FILE |
					   QED_F_NO_PROBE);
	uint8_t *b;
	int r;

	if (nl > IMG_BACKING_NAME_MAX)
		return err_set(e, EINVAL, "%s: backing name of %zu bytes is "
			       "longer than %d", img->path, nl,
			       IMG_BACKING_NAME_MAX);
	if (QED_HDR_SIZE + nl > (uint64_t)s->header_size * s->cluster_size)
		return err_set(e, ENOSPC, "%s: no room in the qed header for "
			       "a %zu-byte backing name", img->path, nl);
	b = malloc(QED_HDR_SIZE + nl);
	if (!b)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fmt_pread(img->fd, img->path, "the qed header", b, QED_HDR_SIZE, 0,
		      e);
	if (r == 0 && name && fmt_le64(b + 24))
		r = fmt_bad_field(e, img->path, KIND, "compat_features",
				  "is 0x%llx; unknown compatible features may "
				  "keep data after the header, so it cannot "
				  "be rewritten", (unsigned long long)
				  fmt_le64(b + 24));
	if (r < 0) {
		free(b);
		return r;
	}
	if (name) {
		features |= QED_F_BACKING_FILE;
		if (fmt && !strcmp(fmt, "raw"))
			features |= QED_F_NO_PROBE;
	}
	for (int i = 0; i < 8; i++)
		b[16 + i] = (uint8_t)(features >> (8 * i));
	for (int i = 0; i < 4; i++) {
		b[56 + i] = (uint8_t)(QED_HDR_SIZE >> (8 * i));
		b[60 + i] = (uint8_t)(nl >> (8 * i));
	}
	if (nl)
		memcpy(b + QED_HDR_SIZE, name, nl);
	*buf = b;
	*len = QED_HDR_SIZE + nl;
	return 0;
}

/* *span: the cluster, or the whole L1 range when its L2 table is
 * unallocated (qed_int.h). */
int qed_entry_at(struct img *img, uint64_t off, uint64_t *entry,
		    uint64_t *span, struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint32_t shift = s->cluster_bits + (uint32_t)__builtin_ctz(s->table_nelems);
	uint64_t l1i = off >> shift, l2o;
	uint64_t l1span = 1ull << shift;
	int r;

	*entry = 0;
	r = need_l1(s, img->path, img->fd, e);
	if (r < 0)
		return r;
	l2o = s->l1[l1i];
	if (!l2o) {
		*span = l1span - (off & (l1span - 1));
		return 0;
	}
	if (l2o != s->l2_off) {
		if (!offset_ok(s, l2o, (uint64_t)s->table_nelems * 8))
			return err_set(e, EINVAL, "%s: %s L1 entry %llu is "
				       "%llu; not a valid L2 table offset",
				       img->path, KIND, (unsigned long long)l1i,
				       (unsigned long long)l2o);
		if (!s->l2)
			s->l2 = malloc((size_t)s->table_nelems * 8);
		if (!s->l2)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		s->l2_off = 0;
		r = read_table(s, img->path, img->fd, l2o, s->l2,
			       "an L2 table", e);
		if (r < 0)
			return r;
		s->l2_off = l2o;
	}
	*entry = s->l2[(off >> s->cluster_bits) & (s->table_nelems - 1)];
	*span = s->cluster_size - (off & (s->cluster_size - 1));
	if (*entry > 1 && !offset_ok(s, *entry, s->cluster_size))
		return err_set(e, EINVAL, "%s: %s L2 entry for guest offset "
			       "%llu is %llu; not a valid cluster offset",
			       img->path, KIND, (unsigned long long)off,
			       (unsigned long long)*entry);
	return 0;
}

static int state_of(uint64_t entry)
{
	return entry == 0 ? IMG_BS_UNALLOC : entry == 1 ? IMG_BS_ZERO
							: IMG_BS_DATA;
}

static int qed_block_status(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e)
{
	uint64_t entry, span, done = 0;
	int first = -1;

	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	while (done < len) {
		int r = qed_entry_at(img, off + done, &entry, &span, e);

		if (r < 0)
			return r;
		if (first >= 0 && state_of(entry) != first)
			break;
		first = state_of(entry);
		done += span;
	}
	*pnum = done < len ? done : len;
	return first;
}

static int qed_pread(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e)
{
	struct qed_state *s = img->priv;
	uint8_t *p = buf;

	while (len) {
		uint64_t entry, span;
		size_t n;
		int r;

		if (off >= img->virtual_size) {     /* past the end: zeros */
			memset(p, 0, len);
			return 0;
		}
		r = qed_entry_at(img, off, &entry, &span, e);
		if (r < 0)
			return r;
		n = span < len ? (size_t)span : len;
		if (entry <= 1)
			memset(p, 0, n);
		else if ((r = fmt_pread(img->fd, img->path, "guest data", p, n,
					entry + (off & (s->cluster_size - 1)),
					e)) < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

const struct img_format img_format_qed = {
	.name = "qed",
	.probe = qed_probe,
	.open = qed_open,
	.close = qed_close,
	.get_info = qed_get_info,
	.get_backing = qed_get_backing,
	.backing_header = qed_backing_header,
	.block_status = qed_block_status,
	.pread = qed_pread,
	.pwrite = qed_pwrite,
	.write_zeroes = qed_write_zeroes,
	.grow = qed_grow,
	.make_empty = qed_make_empty,
	.flush = qed_flush,
};
