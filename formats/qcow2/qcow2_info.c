/* qcow2_info.c - what `qemu-img info` shows of a qcow2 image beyond the
 * header: the internal snapshot list, the persistent bitmap directory, the
 * encryption header and the external data file.
 *
 * Loaded on the first get_info (reads and writes never need it) and kept
 * with the image.  Every table is bounded: it must lie inside the file and
 * under QEMU's own caps, and a failure names the file and the field.
 *
 * Snapshot table entry (big-endian, padded to 8): l1_table_offset u64,
 * l1_size u32, id_str_size u16, name_size u16, date_sec u32, date_nsec u32,
 * vm_clock_nsec u64, vm_state_size u32, extra_data_size u32, extra data
 * (vm_state_size_large u64, disk_size u64, icount u64: each present when
 * the extra data is long enough), id_str, name.
 * Bitmap directory entry (big-endian, padded to 8): bitmap_table_offset
 * u64, bitmap_table_size u32, flags u32 (bit 0 in use, bit 1 auto), type
 * u8, granularity_bits u8, name_size u16, extra_data_size u32, extra data,
 * name.
 */
#include "qcow2_int.h"
#include "formats/fmt_util.h"
#include "formats/luks_hdr.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_FIXED        40u
#define SNAP_EXTRA_MAX    1024u          /* QEMU's QCOW_MAX_SNAPSHOT_EXTRA_DATA */
#define TABLE_MAX         (64u << 20)    /* snapshot table / bitmap directory */
#define BM_FIXED          24u
#define BM_NAME_MAX       1023u
#define BM_IN_USE         1u
#define BM_AUTO           2u
#define KIND              "qcow2"

struct qcow2_info_extra {
	struct img_snapshot_info *snaps;
	struct img_bitmap_info *bitmaps;
	uint32_t nb_bitmaps;
	char **strs;                  /* every string above, owned */
	uint32_t nstrs;
	struct img_encrypt_info aes;
	struct luks_hdr luks;         /* must not move: info points into it */
	const struct img_encrypt_info *encrypt;
};

static const char *keep(struct qcow2_info_extra *x, const uint8_t *p,
			size_t n)
{
	char *s = malloc(n + 1), **v;

	if (!s)
		return NULL;
	v = realloc(x->strs, (x->nstrs + 1) * sizeof(*v));
	if (!v) {
		free(s);
		return NULL;
	}
	x->strs = v;
	memcpy(s, p, n);
	s[n] = '\0';
	x->strs[x->nstrs++] = s;
	return s;
}

/* Read a whole table of bytes at off (inside the file, under TABLE_MAX). */
static int read_table(struct img *img, const char *field, uint64_t off,
		      uint64_t bytes, uint8_t **out, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	int r;

	*out = NULL;
	if (bytes > TABLE_MAX)
		return fmt_bad_field(e, img->path, KIND, field, "points at a "
				     "table of %llu bytes; over %u MiB",
				     (unsigned long long)bytes, TABLE_MAX >> 20);
	r = fmt_check_range(e, img->path, KIND, field, "table", off, bytes,
			    s->file_size);
	if (r < 0)
		return r;
	*out = malloc(bytes ? bytes : 1);
	if (!*out)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fmt_pread(img->fd, img->path, field, *out, (size_t)bytes, off, e);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

/* The snapshot entry at *pos (fixed part, then its variable part, read
 * one after the other so that no size has to be guessed); advances *pos
 * past its padding. */
static int snapshot_at(struct img *img, struct qcow2_info_extra *x,
		       uint64_t *pos, struct img_snapshot_info *o,
		       struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint8_t f[SNAP_FIXED], *v;
	uint32_t idn, namen, extra;
	uint64_t need;
	int r;

	if (*pos > s->file_size || s->file_size - *pos < SNAP_FIXED)
		return fmt_bad_field(e, img->path, KIND, "snapshots_offset",
				     "table: entry at %llu ends past the end "
				     "of the file", (unsigned long long)*pos);
	r = fmt_pread(img->fd, img->path, "a snapshot table entry", f,
		      sizeof(f), *pos, e);
	if (r < 0)
		return r;
	idn = qcow2_be32(f + 12) >> 16;
	namen = qcow2_be32(f + 12) & 0xffff;
	extra = qcow2_be32(f + 36);
	if (extra > SNAP_EXTRA_MAX)
		return fmt_bad_field(e, img->path, KIND, "snapshots_offset",
				     "table: extra_data_size %u is over %u",
				     extra, SNAP_EXTRA_MAX);
	need = (uint64_t)extra + idn + namen;
	if (s->file_size - *pos - SNAP_FIXED < need)
		return fmt_bad_field(e, img->path, KIND, "snapshots_offset",
				     "table: entry at %llu ends past the end "
				     "of the file", (unsigned long long)*pos);
	v = malloc(need ? need : 1);
	if (!v)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fmt_pread(img->fd, img->path, "a snapshot table entry", v,
		      (size_t)need, *pos + SNAP_FIXED, e);
	if (r == 0) {
		o->date_sec = qcow2_be32(f + 16);
		o->date_nsec = qcow2_be32(f + 20);
		o->vm_clock_nsec = qcow2_be64(f + 24);
		o->vm_state_size = extra >= 8 ? qcow2_be64(v) : qcow2_be32(f + 32);
		o->icount = extra >= 24 ? qcow2_be64(v + 16) : UINT64_MAX;
		o->has_icount = o->icount != UINT64_MAX;
		o->id = keep(x, v + extra, idn);
		o->name = keep(x, v + extra + idn, namen);
		if (!o->id || !o->name)
			r = err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	free(v);
	*pos += (SNAP_FIXED + need + 7) & ~7ull;
	return r;
}

static int load_snapshots(struct img *img, struct qcow2_info_extra *x,
			  struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint32_t n = s->h.nb_snapshots;
	uint64_t pos = s->h.snapshots_offset;
	int r = 0;

	if (!n)
		return 0;
	x->snaps = calloc(n, sizeof(*x->snaps));
	if (!x->snaps)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		if (pos - s->h.snapshots_offset > TABLE_MAX)
			return fmt_bad_field(e, img->path, KIND, "nb_snapshots",
					     "is %u; the table would be over "
					     "%u MiB", n, TABLE_MAX >> 20);
		r = snapshot_at(img, x, &pos, &x->snaps[i], e);
	}
	return r;
}

static const struct qcow2_ext *find_ext(const struct qcow2_state *s,
					uint32_t type)
{
	for (int i = 0; i < s->nexts; i++)
		if (s->exts[i].type == type)
			return &s->exts[i];
	return NULL;
}

static int bitmap_at(struct img *img, struct qcow2_info_extra *x,
		     const uint8_t *t, uint64_t len, uint64_t *pos,
		     struct img_bitmap_info *o, struct img_err *e)
{
	const uint8_t *p = t + *pos;
	uint32_t flags, gbits, namen, extra;
	uint64_t need;

	if (len - *pos < BM_FIXED)
		return fmt_bad_field(e, img->path, KIND, "bitmap_directory",
				     "holds fewer entries than nb_bitmaps");
	flags = qcow2_be32(p + 12);
	gbits = p[17];
	namen = qcow2_be32(p + 16) & 0xffff;
	extra = qcow2_be32(p + 20);
	need = BM_FIXED + (uint64_t)extra + namen;
	if (gbits < 9 || gbits > 31 || namen == 0 || namen > BM_NAME_MAX ||
	    len - *pos < need)
		return fmt_bad_field(e, img->path, KIND, "bitmap_directory",
				     "entry at %llu: granularity_bits %u, "
				     "name_size %u, extra_data_size %u do not "
				     "fit the directory",
				     (unsigned long long)*pos, gbits, namen,
				     extra);
	o->granularity = 1ull << gbits;
	o->in_use = flags & BM_IN_USE;
	o->autoload = flags & BM_AUTO;
	o->name = keep(x, p + BM_FIXED + extra, namen);
	if (!o->name)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	*pos += (need + 7) & ~7ull;
	if (*pos > len)
		*pos = len;
	return 0;
}

/* QEMU ignores the bitmaps extension unless autoclear bit 0 says it is
 * valid. */
static int load_bitmaps(struct img *img, struct qcow2_info_extra *x,
			struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const struct qcow2_ext *ext = find_ext(s, QCOW2_EXT_BITMAPS);
	uint64_t size, off, pos = 0;
	uint32_t n;
	uint8_t *t;
	int r;

	if (!ext || !(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	n = qcow2_be32(ext->data);
	size = qcow2_be64(ext->data + 8);
	off = qcow2_be64(ext->data + 16);
	if (n == 0 || n > 65535)
		return fmt_bad_field(e, img->path, KIND, "nb_bitmaps", "is %u; "
				     "must be 1..65535", n);
	r = read_table(img, "bitmap_directory", off, size, &t, e);
	if (r < 0)
		return r;
	x->bitmaps = calloc(n, sizeof(*x->bitmaps));
	if (!x->bitmaps)
		r = err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = bitmap_at(img, x, t, size, &pos, &x->bitmaps[i], e);
	free(t);
	if (r == 0)
		x->nb_bitmaps = n;
	return r;
}

static int load_encrypt(struct img *img, struct qcow2_info_extra *x,
			struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const struct qcow2_ext *ext = find_ext(s, QCOW2_EXT_CRYPTO);
	uint8_t buf[LUKS_HDR_SIZE];
	uint64_t off, len;
	int r;

	if (s->h.crypt_method == 1) {
		x->aes.format = "aes";
		x->encrypt = &x->aes;
		return 0;
	}
	if (s->h.crypt_method != 2 || !ext)
		return 0;
	off = qcow2_be64(ext->data);
	len = qcow2_be64(ext->data + 8);
	if (len < LUKS_HDR_SIZE)
		return fmt_bad_field(e, img->path, KIND, "encryption header",
				     "is %llu bytes; a LUKS header needs %u",
				     (unsigned long long)len, LUKS_HDR_SIZE);
	r = fmt_check_range(e, img->path, KIND, "encryption header offset",
			    "LUKS header", off, LUKS_HDR_SIZE, s->file_size);
	if (r == 0)
		r = fmt_pread(img->fd, img->path, "the LUKS header", buf,
			      sizeof(buf), off, e);
	if (r == 0)
		r = luks_parse(&x->luks, buf, sizeof(buf), img->path,
			       "qcow2 LUKS", e);
	if (r == 0)
		x->encrypt = &x->luks.info;
	return r;
}

void qcow2_info_free(struct qcow2_state *s)
{
	struct qcow2_info_extra *x = s->info_extra;

	if (!x)
		return;
	for (uint32_t i = 0; i < x->nstrs; i++)
		free(x->strs[i]);
	free(x->strs);
	free(x->snaps);
	free(x->bitmaps);
	free(x);
	s->info_extra = NULL;
}

int qcow2_info_fill(struct img *img, struct img_info *o, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_info_extra *x = s->info_extra;
	int r;

	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return err_set(e, ENOMEM, "%s: out of memory", img->path);
		s->info_extra = x;
		r = load_snapshots(img, x, e);
		if (r == 0)
			r = load_bitmaps(img, x, e);
		if (r == 0)
			r = load_encrypt(img, x, e);
		if (r < 0) {
			qcow2_info_free(s);
			return r;
		}
	}
	o->snapshots = x->snaps;
	o->bitmap_list = x->bitmaps;
	o->nb_bitmaps = x->nb_bitmaps;
	o->encrypt = x->encrypt;
	o->data_file_name = s->data_file_name;
	o->data_file_raw = s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_RAW;
	return 0;
}
