/* qcow1.c - QEMU's old "qcow" format (version 1), read-only.
 *
 * Header (big-endian, 48 bytes): magic "QFI\xfb", version u32 (1),
 * backing_file_offset u64, backing_file_size u32, mtime u32, size u64,
 * cluster_bits u8, l2_bits u8, padding u16, crypt_method u32 (0 none,
 * 1 AES), l1_table_offset u64.  L1 and L2 entries are u64 host offsets,
 * 0 meaning unallocated (read the backing file).  An L2 entry with bit 63
 * set is a compressed cluster: the offset is in the low 63 - cluster_bits
 * bits, the compressed size in the bits above, and the data is raw deflate
 * that must inflate to exactly one cluster.  No zero clusters, no
 * refcounts, no backing format.
 *
 * Fields are checked as QEMU's qcow driver checks them; in addition every
 * table and cluster must lie inside the file (QEMU would read zeros there),
 * so a hostile file costs at most its own size in memory and time.
 */
#include "format.h"
#include "fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QCOW_MAGIC       0x514649fbu
#define QCOW_HDR_SIZE    48u
#define QCOW_COMPRESSED  (1ull << 63)
#define QCOW_MAX_L1      (32u << 20)     /* bytes; QEMU caps qcow2's here */
#define KIND             "qcow (version 1)"

struct qcow1_state {
	uint64_t size;
	uint32_t cluster_bits, l2_bits, crypt_method;
	uint32_t cluster_size, l2_size;       /* l2_size: entries */
	uint64_t l1_table_offset;
	uint32_t l1_size;
	uint64_t *l1;
	uint64_t file_size;
	char *backing;
	uint64_t l2_off;                      /* cached L2 table, 0: none */
	uint64_t *l2;
	uint64_t zc_entry;                    /* cached inflated cluster */
	uint8_t *zc, *zin;
};

static int qcow1_probe(const uint8_t *buf, size_t len)
{
	/* version 0 is nobody's and 2+ is qcow2's, as in QEMU */
	if (len >= 8 && fmt_be32(buf) == QCOW_MAGIC && fmt_be32(buf + 4) == 1)
		return 100;
	return 0;
}

static void qcow1_free(struct qcow1_state *s)
{
	if (!s)
		return;
	free(s->l1);
	free(s->backing);
	free(s->l2);
	free(s->zc);
	free(s->zin);
	free(s);
}

static int check_fields(struct qcow1_state *s, const char *path,
			struct img_err *e)
{
	uint32_t shift;

	if (s->size <= 1)
		return fmt_bad_field(e, path, KIND, "size", "is %llu; must be "
				     "at least 2", (unsigned long long)s->size);
	if (s->cluster_bits < 9 || s->cluster_bits > 16)
		return fmt_bad_field(e, path, KIND, "cluster_bits", "is %u; "
				     "must be 9..16", s->cluster_bits);
	if (s->l2_bits < 6 || s->l2_bits > 13)
		return fmt_bad_field(e, path, KIND, "l2_bits", "is %u; must be "
				     "6..13", s->l2_bits);
	if (s->crypt_method > 1)
		return fmt_bad_field(e, path, KIND, "crypt_method", "is %u; "
				     "must be 0 (none) or 1 (AES)",
				     s->crypt_method);
	shift = s->cluster_bits + s->l2_bits;
	if (s->size > UINT64_MAX - (1ull << shift) ||
	    ((s->size + (1ull << shift) - 1) >> shift) * 8 > QCOW_MAX_L1)
		return fmt_bad_field(e, path, KIND, "size", "is %llu; the L1 "
				     "table would exceed %u MiB",
				     (unsigned long long)s->size,
				     QCOW_MAX_L1 >> 20);
	s->l1_size = (uint32_t)((s->size + (1ull << shift) - 1) >> shift);
	s->cluster_size = 1u << s->cluster_bits;
	s->l2_size = 1u << s->l2_bits;
	return 0;
}

static int read_backing(struct qcow1_state *s, const uint8_t *h,
			const char *path, int fd, struct img_err *e)
{
	uint64_t off = fmt_be64(h + 8);
	uint32_t len = fmt_be32(h + 16);
	int r;

	if (off == 0)
		return 0;
	if (len > 1023)
		return fmt_bad_field(e, path, KIND, "backing_file_size", "is "
				     "%u; a backing file name is at most 1023 "
				     "bytes", len);
	r = fmt_check_range(e, path, KIND, "backing_file_offset",
			    "backing file name", off, len, s->file_size);
	if (r < 0)
		return r;
	s->backing = calloc(1, (size_t)len + 1);
	if (!s->backing)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	r = fmt_pread(fd, path, "the backing file name", s->backing, len, off,
		      e);
	if (r == 0 && strlen(s->backing) != len)
		r = fmt_bad_field(e, path, KIND, "backing_file_size", "is %u, "
				  "but the name has a NUL byte at %zu", len,
				  strlen(s->backing));
	return r;
}

/* The L1 table's place, checked at open; the table itself is read by
 * need_l1: at open, or on first use after an inspecting open (a pool scan
 * reads headers only). */
static int check_l1(struct qcow1_state *s, const char *path,
		    struct img_err *e)
{
	return fmt_check_range(e, path, KIND, "l1_table_offset", "L1 table",
			       s->l1_table_offset, (size_t)s->l1_size * 8,
			       s->file_size);
}

static int load_l1(struct qcow1_state *s, const char *path, int fd,
		   struct img_err *e)
{
	size_t bytes = (size_t)s->l1_size * 8;
	uint8_t *raw;
	int r;

	raw = malloc(bytes ? bytes : 1);
	s->l1 = malloc((bytes ? bytes : 1));
	if (!raw || !s->l1) {
		free(raw);
		return err_set(e, ENOMEM, "%s: out of memory for the L1 table",
			       path);
	}
	r = fmt_pread(fd, path, "the L1 table", raw, bytes, s->l1_table_offset,
		      e);
	for (uint32_t i = 0; r == 0 && i < s->l1_size; i++)
		s->l1[i] = fmt_be64(raw + 8 * i);
	free(raw);
	if (r < 0) {
		free(s->l1);
		s->l1 = NULL;
	}
	return r;
}

static int need_l1(struct img *img, struct img_err *e)
{
	struct qcow1_state *s = img->priv;

	return s->l1 ? 0 : load_l1(s, img->path, img->fd, e);
}

static int qcow1_open(struct img *img, int flags, struct img_err *e)
{
	uint8_t h[QCOW_HDR_SIZE];
	struct qcow1_state *s;
	struct stat st;
	ssize_t n;
	int r;

	/* read-write opens are refused by img_open_drv */
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	n = io_pread(img->fd, h, sizeof(h), 0);
	if (n < 0)
		return err_set_errno(e, (int)-n, "%s: cannot read the header",
				     img->path);
	if (n < 8 || fmt_be32(h) != QCOW_MAGIC)
		return fmt_bad_field(e, img->path, KIND, "magic",
				     "is not 'QFI\\xfb'; not a qcow image");
	if (fmt_be32(h + 4) != 1)
		return fmt_bad_field(e, img->path, KIND, "version", "is %u; "
				     "must be 1", fmt_be32(h + 4));
	if ((size_t)n < sizeof(h))
		return err_set(e, EINVAL, "%s: %s header truncated: %zd bytes, "
			       "needs %u", img->path, KIND, n, QCOW_HDR_SIZE);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->file_size = (uint64_t)st.st_size;
	s->size = fmt_be64(h + 24);
	s->cluster_bits = h[32];
	s->l2_bits = h[33];
	s->crypt_method = fmt_be32(h + 36);
	s->l1_table_offset = fmt_be64(h + 40);
	r = check_fields(s, img->path, e);
	if (r == 0)
		r = read_backing(s, h, img->path, img->fd, e);
	if (r == 0)
		r = check_l1(s, img->path, e);
	if (r == 0 && !(flags & IMG_O_INSPECT))
		r = load_l1(s, img->path, img->fd, e);
	if (r < 0) {
		qcow1_free(s);
		return r;
	}
	img->priv = s;
	img->virtual_size = s->size / 512 * 512;    /* QEMU's total_sectors */
	return 0;
}

static void qcow1_close(struct img *img)
{
	qcow1_free(img->priv);
	img->priv = NULL;
}

static int qcow1_get_info(struct img *img, struct img_info *o,
			  struct img_err *e)
{
	struct qcow1_state *s = img->priv;
	int r = img_info_base(img, o, e);

	if (r < 0)
		return r;
	o->cluster_size = s->cluster_size;
	o->version = 1;
	o->encrypted = s->crypt_method != 0;
	o->write_refusal = "qcow (version 1) images are read, never written";
	return 0;
}

static int qcow1_get_backing(struct img *img, struct img_backing *out,
			     struct img_err *e)
{
	struct qcow1_state *s = img->priv;

	(void)e;
	out->name = s->backing;
	out->format = NULL;
	return 0;
}

/* L2 entry for guest offset off (0: unallocated). */
static int l2_entry(struct img *img, uint64_t off, uint64_t *entry,
		    struct img_err *e)
{
	struct qcow1_state *s = img->priv;
	uint64_t l1i = off >> (s->cluster_bits + s->l2_bits), l2o;
	size_t bytes = (size_t)s->l2_size * 8;

	*entry = 0;
	int rl = need_l1(img, e);

	if (rl < 0)
		return rl;
	l2o = s->l1[l1i];
	if (!l2o)
		return 0;
	if (l2o != s->l2_off) {
		uint8_t *raw;
		int r = 0;

		if (l2o > s->file_size || bytes > s->file_size - l2o)
			return err_set(e, EINVAL, "%s: %s L1 entry %llu: the "
				       "L2 table at %llu ends past the end of "
				       "the file", img->path, KIND,
				       (unsigned long long)l1i,
				       (unsigned long long)l2o);
		if (!s->l2)
			s->l2 = malloc(bytes);
		raw = malloc(bytes);
		if (!s->l2 || !raw) {
			free(raw);
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		}
		s->l2_off = 0;
		r = fmt_pread(img->fd, img->path, "an L2 table", raw, bytes,
			      l2o, e);
		for (uint32_t i = 0; r == 0 && i < s->l2_size; i++)
			s->l2[i] = fmt_be64(raw + 8 * i);
		free(raw);
		if (r < 0)
			return r;
		s->l2_off = l2o;
	}
	*entry = s->l2[(off >> s->cluster_bits) & (s->l2_size - 1)];
	return 0;
}

/* Status of the cluster holding off and how far (bytes from off) the same
 * answer certainly holds: to the cluster's end, or to the end of an L1
 * entry's range when that whole range is unallocated. */
static int status_run(struct img *img, uint64_t off, uint64_t *entry,
		      uint64_t *run, struct img_err *e)
{
	struct qcow1_state *s = img->priv;
	uint64_t cs = s->cluster_size;
	uint64_t span = (uint64_t)cs << s->l2_bits;
	int r;

	r = need_l1(img, e);
	if (r < 0)
		return r;
	if (!s->l1[off >> (s->cluster_bits + s->l2_bits)]) {
		*entry = 0;
		*run = span - off % span;
		return IMG_BS_UNALLOC;
	}
	r = l2_entry(img, off, entry, e);
	if (r < 0)
		return r;
	*run = cs - off % cs;
	return *entry ? IMG_BS_DATA : IMG_BS_UNALLOC;
}

static int qcow1_block_status(struct img *img, uint64_t off, uint64_t len,
			      uint64_t *pnum, struct img_err *e)
{
	uint64_t entry, run, done = 0;
	int first = -1;

	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	while (done < len) {
		int st = status_run(img, off + done, &entry, &run, e);

		if (st < 0)
			return st;
		if (first >= 0 && st != first)
			break;
		first = st;
		done += run;
	}
	*pnum = done < len ? done : len;
	return first;
}

/* One compressed cluster, inflated into s->zc (kept for the next read). */
static int read_compressed(struct img *img, uint64_t entry,
			   struct img_err *e)
{
	struct qcow1_state *s = img->priv;
	uint32_t cs = s->cluster_size;
	uint64_t coff = entry & ((1ull << (63 - s->cluster_bits)) - 1);
	uint32_t csize = (uint32_t)((entry >> (63 - s->cluster_bits)) & (cs - 1));
	int ended, r;
	long got;

	if (s->zc && s->zc_entry == entry)
		return 0;
	if (!s->zc)
		s->zc = malloc(cs);
	if (!s->zin)
		s->zin = malloc(cs);
	if (!s->zc || !s->zin)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->zc_entry = 0;
	if (csize == 0 || coff > s->file_size || csize > s->file_size - coff)
		return err_set(e, EINVAL, "%s: %s compressed cluster at %llu "
			       "(%u bytes) is not inside the file", img->path,
			       KIND, (unsigned long long)coff, csize);
	r = fmt_pread(img->fd, img->path, "a compressed cluster", s->zin,
		      csize, coff, e);
	if (r < 0)
		return r;
	got = fmt_inflate(s->zin, csize, s->zc, cs, -12, &ended);
	if (got != (long)cs)
		return err_set(e, EIO, "%s: %s compressed cluster at %llu does "
			       "not inflate to one cluster (%u bytes)",
			       img->path, KIND, (unsigned long long)coff, cs);
	s->zc_entry = entry;
	return 0;
}

static int read_cluster_part(struct img *img, uint64_t entry, uint64_t off,
			     uint8_t *buf, size_t n, struct img_err *e)
{
	struct qcow1_state *s = img->priv;
	uint64_t in = off % s->cluster_size;
	int r;

	if (s->crypt_method)
		return err_set(e, ENOTSUP, "%s: the qcow image is encrypted "
			       "(AES); reading it needs the key, which imgraph "
			       "does not take", img->path);
	if (entry & QCOW_COMPRESSED) {
		r = read_compressed(img, entry, e);
		if (r == 0)
			memcpy(buf, s->zc + in, n);
		return r;
	}
	if (entry > s->file_size || s->cluster_size > s->file_size - entry)
		return err_set(e, EINVAL, "%s: %s L2 entry for guest offset "
			       "%llu points at %llu, past the end of the file",
			       img->path, KIND, (unsigned long long)off,
			       (unsigned long long)entry);
	return fmt_pread(img->fd, img->path, "guest data", buf, n, entry + in,
			 e);
}

static int qcow1_pread(struct img *img, uint64_t off, void *buf, size_t len,
		       struct img_err *e)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t entry, run;
		int st;
		size_t n;

		if (off >= img->virtual_size) {     /* past the end: zeros */
			memset(p, 0, len);
			return 0;
		}
		st = status_run(img, off, &entry, &run, e);
		if (st < 0)
			return st;
		n = run < len ? (size_t)run : len;
		if (st == IMG_BS_UNALLOC)
			memset(p, 0, n);
		else if ((st = read_cluster_part(img, entry, off, p, n, e)) < 0)
			return st;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

const struct img_format img_format_qcow = {
	.name = "qcow",
	.probe = qcow1_probe,
	.open = qcow1_open,
	.close = qcow1_close,
	.get_info = qcow1_get_info,
	.get_backing = qcow1_get_backing,
	.block_status = qcow1_block_status,
	.pread = qcow1_pread,
};
