/* bochs.c - Bochs "growing" redolog images, read-only.
 *
 * Layout (little-endian): a 512-byte header (magic "Bochs Virtual HD
 * Image", type "Redolog", subtype "Growing", version 2.0 or 1.0, header
 * size = where the catalog starts, catalog entries, bitmap and extent
 * sizes in bytes, disk size), the catalog (one u32 per extent, 0xffffffff
 * = not allocated), then the extents.  Allocated extent n is stored at
 * data_offset + n * (bitmap + extent blocks) * 512: a sector bitmap (bit
 * i of byte i / 8, least significant first) then the extent's sectors; a
 * sector whose bit is clear reads as zeros.  There is no backing file, so
 * what is not stored is reported as zeros, not as unallocated.
 *
 * The checks are QEMU's (catalog <= 1 Mi entries, extent a power of two of
 * 512 bytes..8 MiB, a catalog large enough for the disk) plus ours: the
 * bitmap holds one bit per sector of an extent and at most 1 MiB, the
 * catalog and every allocated extent start inside the file.
 */
#include "foreign.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BOCHS "bochs"
#define BOCHS_HEADER 512u
#define BOCHS_MAGIC "Bochs Virtual HD Image"
#define BOCHS_V1 0x00010000u
#define BOCHS_V2 0x00020000u
#define BOCHS_UNALLOC 0xffffffffu
#define BOCHS_CATALOG_MAX 0x100000u
#define BOCHS_EXTENT_MAX 0x800000u
#define BOCHS_BITMAP_MAX (1u << 20)

struct bochs_state {
	uint64_t fsize;
	uint64_t data_offset;
	uint32_t extent;               /* bytes */
	uint64_t stride;               /* bytes per stored extent */
	uint32_t bitmap_bytes;         /* bytes of bitmap read per extent */
	uint32_t ncat;
	uint32_t *catalog;
	uint8_t *bitmap;               /* one extent's bitmap, cached */
	uint64_t bitmap_extent;        /* which one (UINT64_MAX: none) */
};

/* A NUL-terminated string field equal to s (as QEMU's strcmp). */
static bool field_is(const uint8_t *f, size_t flen, const char *s)
{
	size_t n = strlen(s);
	return n < flen && !memcmp(f, s, n + 1);
}

static bool header_ok(const uint8_t *h)
{
	uint32_t v = fr_le32(h + 64);

	return field_is(h, 32, BOCHS_MAGIC) && field_is(h + 32, 16, "Redolog") &&
	       field_is(h + 48, 16, "Growing") &&
	       (v == BOCHS_V1 || v == BOCHS_V2);
}

static int bochs_probe(const uint8_t *buf, size_t len)
{
	return len >= BOCHS_HEADER && header_ok(buf) ? 100 : 0;
}

static int check_sizes(struct img *img, struct bochs_state *s,
		       const uint8_t *h, struct img_err *e)
{
	uint32_t bitmap = fr_le32(h + 76);
	uint64_t sectors_per_extent, need;

	s->ncat = fr_le32(h + 72);
	if (s->ncat > BOCHS_CATALOG_MAX)
		return fr_bad(img, BOCHS, "catalog", e,
			      "is %u entries; the limit is %u", s->ncat,
			      BOCHS_CATALOG_MAX);
	s->extent = fr_le32(h + 80);
	if (s->extent < 512 || (s->extent & (s->extent - 1)) ||
	    s->extent > BOCHS_EXTENT_MAX)
		return fr_bad(img, BOCHS, "extent", e,
			      "is %u; must be a power of two of 512..%u bytes",
			      s->extent, BOCHS_EXTENT_MAX);
	sectors_per_extent = s->extent / 512;
	if (bitmap == 0 || bitmap > BOCHS_BITMAP_MAX ||
	    (uint64_t)bitmap * 8 < sectors_per_extent)
		return fr_bad(img, BOCHS, "bitmap", e,
			      "is %u bytes; an extent of %llu sectors needs "
			      "%llu..%u", bitmap, fr_ull(sectors_per_extent),
			      fr_ull((sectors_per_extent + 7) / 8),
			      BOCHS_BITMAP_MAX);
	s->bitmap_bytes = (uint32_t)((sectors_per_extent + 7) / 8);
	/* Bitmap and extent are each stored in whole sectors. */
	s->stride = ((uint64_t)(bitmap + 511) / 512 + sectors_per_extent) * 512;
	need = (img->virtual_size / 512 + sectors_per_extent - 1) /
	       sectors_per_extent;
	if (s->ncat < need)
		return fr_bad(img, BOCHS, "catalog", e,
			      "is %u entries; a disk of %llu bytes needs %llu",
			      s->ncat, fr_ull(img->virtual_size), fr_ull(need));
	return 0;
}

static int read_catalog(struct img *img, struct bochs_state *s,
			uint32_t off, struct img_err *e)
{
	uint8_t *raw;
	int r = fr_table(img, BOCHS, "catalog", s->ncat, 4,
			 (void **)&s->catalog, e);

	if (r < 0 || !s->ncat)
		return r;
	raw = (uint8_t *)s->catalog;
	r = fr_read(img, s->fsize, BOCHS, "catalog", off, raw,
		    (size_t)s->ncat * 4, e);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < s->ncat; i++) {
		uint32_t v = fr_le32(raw + 4 * (size_t)i);
		s->catalog[i] = v;
		if (v == BOCHS_UNALLOC)
			continue;
		uint64_t start = s->data_offset + (uint64_t)v * s->stride;
		if (start >= s->fsize)
			return err_set(e, EINVAL,
				       "%s: bochs catalog entry %u (%u) points "
				       "at %llu, past the end of the file (%llu "
				       "bytes): the image is truncated",
				       img->path, i, v, fr_ull(start),
				       fr_ull(s->fsize));
	}
	return 0;
}

static void bochs_free(struct bochs_state *s)
{
	if (s) {
		free(s->catalog);
		free(s->bitmap);
	}
	free(s);
}

static int parse(struct img *img, struct bochs_state *s, struct img_err *e)
{
	uint8_t h[BOCHS_HEADER];
	uint32_t version;
	int r = fr_read(img, s->fsize, BOCHS, "header", 0, h, sizeof(h), e);

	if (r < 0)
		return r;
	if (!header_ok(h))
		return fr_bad(img, BOCHS, "magic", e,
			      "is not a \"%s\" of type Redolog/Growing, version "
			      "1.0 or 2.0", BOCHS_MAGIC);
	version = fr_le32(h + 64);
	/* Version 1 has no reserved word before the disk size. */
	img->virtual_size = fr_le64(h + (version == BOCHS_V1 ? 84 : 88)) &
			    ~511ull;
	r = check_sizes(img, s, h, e);
	if (r < 0)
		return r;
	s->data_offset = (uint64_t)fr_le32(h + 68) + (uint64_t)s->ncat * 4;
	return read_catalog(img, s, fr_le32(h + 68), e);
}

static int bochs_open(struct img *img, int flags, struct img_err *e)
{
	struct bochs_state *s;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->bitmap_extent = UINT64_MAX;
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = parse(img, s, e);
	if (r < 0) {
		bochs_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void bochs_close(struct img *img)
{
	bochs_free(img->priv);
	img->priv = NULL;
}

static int bochs_get_info(struct img *img, struct img_info *o,
			  struct img_err *e)
{
	int r = fr_info(img, BOCHS, 0, o, e);

	/* QEMU's driver has no get_info: qemu-img prints no dirty-flag */
	o->no_dirty_flag = true;
	return r;
}

/* Bit for sector i of extent idx; the bitmap is read once per extent.
 * Bytes past the end of the file read as zeros (not allocated), as in
 * QEMU. */
static int sector_bit(struct img *img, uint64_t idx, uint64_t i, bool *set,
		      struct img_err *e)
{
	struct bochs_state *s = img->priv;

	if (!s->bitmap) {
		s->bitmap = malloc(s->bitmap_bytes);
		if (!s->bitmap)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
	}
	if (s->bitmap_extent != idx) {
		uint64_t at = s->data_offset + s->catalog[idx] * s->stride;
		ssize_t n = io_pread(img->fd, s->bitmap, s->bitmap_bytes, at);
		if (n < 0)
			return err_set_errno(e, (int)-n, "%s: cannot read the "
					     "bochs bitmap of extent %llu at %llu",
					     img->path, fr_ull(idx), fr_ull(at));
		memset(s->bitmap + n, 0, s->bitmap_bytes - (size_t)n);
		s->bitmap_extent = idx;
	}
	*set = s->bitmap[i / 8] >> (i % 8) & 1;
	return 0;
}

static int bochs_map(struct img *img, uint64_t off, uint64_t len,
		     struct fr_extent *x, struct img_err *e)
{
	struct bochs_state *s = img->priv;
	uint64_t idx = off / s->extent, in = off % s->extent;
	uint64_t sec = in / 512, nsec = s->extent / 512;
	uint64_t n = (sec + 1) * 512 - in;
	bool first, next;
	int r;

	if (s->catalog[idx] == BOCHS_UNALLOC) {
		n = s->extent - in;
		while (n < len && ++idx < s->ncat &&
		       s->catalog[idx] == BOCHS_UNALLOC)
			n += s->extent;
		x->bs = IMG_BS_ZERO;
		x->len = n < len ? n : len;
		return 0;
	}
	r = sector_bit(img, idx, sec, &first, e);
	while (r == 0 && n < len && ++sec < nsec) {
		r = sector_bit(img, idx, sec, &next, e);
		if (r == 0 && next != first)
			break;
		n += 512;
	}
	if (r < 0)
		return r;
	x->bs = first ? IMG_BS_DATA : IMG_BS_ZERO;
	x->len = n < len ? n : len;
	x->host = s->data_offset + s->catalog[idx] * s->stride +
		  (s->stride - s->extent) + in;
	return 0;
}

static int bochs_block_status(struct img *img, uint64_t off, uint64_t len,
			      uint64_t *pnum, struct img_err *e)
{
	return fr_block_status(img, bochs_map, off, len, pnum, e);
}

static int bochs_pread(struct img *img, uint64_t off, void *buf, size_t len,
		       struct img_err *e)
{
	return fr_pread_mapped(img, bochs_map, off, buf, len, e);
}

const struct img_format img_format_bochs = {
	.name = BOCHS,
	.probe = bochs_probe,
	.open = bochs_open,
	.close = bochs_close,
	.get_info = bochs_get_info,
	.block_status = bochs_block_status,
	.pread = bochs_pread,
};
