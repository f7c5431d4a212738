/* vhdx.c - Hyper-V VHDX images, read-only: the ops table, the block
 * allocation table (BAT) and reads.  Headers and metadata: vhdx_meta.c.
 *
 * The BAT holds one u64 per payload block (state in bits 0-2, file offset
 * in MiB in bits 20-63) with one sector bitmap entry after every
 * chunk_ratio payload entries (chunk_ratio = 2^23 sectors / sectors per
 * block).  Payload states: 0 not present (the parent's, or zeros), 1
 * undefined, 2 zero, 3 and 5 unmapped (all three read as zeros, as in
 * QEMU), 6 fully present, 7 partially present: differencing files only,
 * where the chunk's sector bitmap (one bit per logical sector, least
 * significant first) says which sectors are here and which come from the
 * parent.  QEMU reads no differencing file; we follow [MS-VHDX].
 *
 * A layer without parent reports what is not present as zeros (as QEMU
 * reports the unallocated blocks of formats without backing files).
 *
 * Every present block and bitmap must lie inside the file and overlap no
 * region (QEMU's check), so reads never leave the file's data area.
 */
#include "vhdx_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BAT_STATE 7u
#define BAT_OFFSET 0xfffffffffff00000ull
#define PB_NOT_PRESENT 0u
#define PB_UNDEFINED 1u
#define PB_ZERO 2u
#define PB_UNMAPPED 3u
#define PB_UNMAPPED_V095 5u
#define PB_FULL 6u
#define PB_PARTIAL 7u
#define SB_PRESENT 6u

static int vhdx_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && !memcmp(buf, "vhdxfile", 8) ? 100 : 0;
}

static uint64_t bat_index(const struct vhdx_state *s, uint64_t block)
{
	return block + block / s->chunk_ratio;
}

static uint64_t sbm_index(const struct vhdx_state *s, uint64_t chunk)
{
	return chunk * (s->chunk_ratio + 1) + s->chunk_ratio;
}

/* A present block or bitmap: inside the file, clear of every region. */
static int check_present(struct img *img, const struct vhdx_state *s,
			 uint64_t j, const char *what, uint64_t len,
			 struct img_err *e)
{
	uint64_t off = s->bat[j] & BAT_OFFSET;
	int k;

	if (off > s->fsize || len > s->fsize - off)
		return err_set(e, EINVAL, "%s: vhdx BAT entry %llu: %s at %llu "
			       "(%llu bytes) runs past the end of the file "
			       "(%llu bytes): the image is truncated",
			       img->path, fr_ull(j), what, fr_ull(off),
			       fr_ull(len), fr_ull(s->fsize));
	k = vhdx_overlap(s, off, len);
	if (k >= 0)
		return err_set(e, EINVAL, "%s: vhdx BAT entry %llu: %s at %llu "
			       "overlaps the %s at %llu", img->path, fr_ull(j),
			       what, fr_ull(off), s->regions[k].what,
			       fr_ull(s->regions[k].start));
	return 0;
}

static int check_payload(struct img *img, const struct vhdx_state *s,
			 uint64_t block, struct img_err *e)
{
	uint64_t j = bat_index(s, block), chunk = block / s->chunk_ratio;
	uint64_t left = img->virtual_size - block * s->block_size;
	uint64_t len = left < s->block_size ? left : s->block_size;
	uint32_t st = (uint32_t)(s->bat[j] & BAT_STATE);

	switch (st) {
	case PB_NOT_PRESENT: case PB_UNDEFINED: case PB_ZERO:
	case PB_UNMAPPED: case PB_UNMAPPED_V095:
		return 0;
	case PB_FULL:
		return check_present(img, s, j, "payload block", len, e);
	case PB_PARTIAL:
		if (!s->has_parent)
			break;
		if ((s->bat[sbm_index(s, chunk)] & BAT_STATE) != SB_PRESENT)
			return err_set(e, EINVAL, "%s: vhdx BAT entry %llu: "
				       "block %llu is partially present but "
				       "the sector bitmap of its chunk is not",
				       img->path, fr_ull(j), fr_ull(block));
		return check_present(img, s, j, "payload block", len, e);
	}
	return err_set(e, EINVAL, "%s: vhdx BAT entry %llu (block %llu) has "
		       "state %u, which is not a payload block state%s",
		       img->path, fr_ull(j), fr_ull(block), st,
		       st == PB_PARTIAL ? " of a file without parent" : "");
}

/* A differencing file's sector bitmap entries: absent or present. */
static int check_bitmaps(struct img *img, const struct vhdx_state *s,
			 struct img_err *e)
{
	for (uint64_t j = s->chunk_ratio; j < s->nbat; j += s->chunk_ratio + 1) {
		uint32_t st = (uint32_t)(s->bat[j] & BAT_STATE);
		if (st == PB_NOT_PRESENT)
			continue;
		if (st != SB_PRESENT)
			return err_set(e, EINVAL, "%s: vhdx BAT entry %llu is a "
				       "sector bitmap with state %u; must be 0 "
				       "or 6", img->path, fr_ull(j), st);
		int r = check_present(img, s, j, "sector bitmap", VHDX_MIB, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_bat(struct img *img, struct vhdx_state *s,
		    struct img_err *e)
{
	uint64_t db, nchunks;
	uint8_t *raw;
	int r;

	s->chunk_ratio = (1ull << 23) * s->lsec / s->block_size;
	db = (img->virtual_size + s->block_size - 1) / s->block_size;
	nchunks = (db + s->chunk_ratio - 1) / s->chunk_ratio;
	s->data_blocks = db;
	s->nbat = s->has_parent ? nchunks * (s->chunk_ratio + 1)
				: db ? db + (db - 1) / s->chunk_ratio : 0;
	if (s->nbat > s->bat_len / 8)
		return fr_bad(img, VHDX, "BAT region", e, "is %llu bytes; the "
			      "%llu entries of the disk need %llu",
			      fr_ull(s->bat_len), fr_ull(s->nbat),
			      fr_ull(s->nbat * 8));
	r = fr_table(img, VHDX, "BAT", s->nbat, 8, (void **)&s->bat, e);
	if (r < 0 || !s->nbat)
		return r;
	raw = (uint8_t *)s->bat;
	r = fr_read(img, s->fsize, VHDX, "BAT", s->bat_off, raw,
		    (size_t)s->nbat * 8, e);
	if (r < 0)
		return r;
	for (uint64_t j = 0; j < s->nbat; j++)
		s->bat[j] = fr_le64(raw + 8 * j);
	if (s->has_parent)
		r = check_bitmaps(img, s, e);
	for (uint64_t b = 0; r == 0 && b < db; b++)
		r = check_payload(img, s, b, e);
	return r;
}

static void vhdx_free(struct vhdx_state *s)
{
	if (s) {
		free(s->regions);
		free(s->parent);
		free(s->bat);
		free(s->sbm);
	}
	free(s);
}

static int vhdx_open(struct img *img, int flags, struct img_err *e)
{
	struct vhdx_state *s;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->sbm_at = UINT64_MAX;
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = vhdx_parse_meta(img, s, e);
	if (r == 0)
		r = load_bat(img, s, e);
	if (r < 0) {
		vhdx_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void vhdx_close(struct img *img)
{
	vhdx_free(img->priv);
	img->priv = NULL;
}

static int vhdx_get_info(struct img *img, struct img_info *o,
			 struct img_err *e)
{
	struct vhdx_state *s = img->priv;

	return fr_info(img, VHDX, s->block_size, o, e);
}

static int vhdx_get_backing(struct img *img, struct img_backing *out,
			    struct img_err *e)
{
	struct vhdx_state *s = img->priv;

	(void)e;
	out->name = s->parent;
	/* The parent locator type says the parent is a VHDX. */
	out->format = s->parent ? VHDX : NULL;
	return 0;
}

/* Bit of logical sector sec of block (a partially present block). */
static int sector_bit(struct img *img, uint64_t block, uint64_t sec,
		      bool *set, struct img_err *e)
{
	struct vhdx_state *s = img->priv;
	uint64_t per_block = s->block_size / s->lsec;
	uint64_t chunk = block / s->chunk_ratio;
	uint64_t at = (s->bat[sbm_index(s, chunk)] & BAT_OFFSET) +
		      block % s->chunk_ratio * per_block / 8;
	int r;

	if (!s->sbm) {
		s->sbm = malloc(per_block / 8);
		if (!s->sbm)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
	}
	if (s->sbm_at != at) {
		s->sbm_at = UINT64_MAX;
		r = fr_read(img, s->fsize, VHDX, "sector bitmap", at, s->sbm,
			    per_block / 8, e);
		if (r < 0)
			return r;
		s->sbm_at = at;
	}
	*set = s->sbm[sec / 8] >> (sec % 8) & 1;
	return 0;
}

static int map_partial(struct img *img, uint64_t off, uint64_t len,
		       struct fr_extent *x, struct img_err *e)
{
	struct vhdx_state *s = img->priv;
	uint64_t block = off / s->block_size, in = off % s->block_size;
	uint64_t sec = in / s->lsec, nsec = s->block_size / s->lsec;
	uint64_t n = (sec + 1) * s->lsec - in;
	bool first, next;
	int r = sector_bit(img, block, sec, &first, e);

	while (r == 0 && n < len && ++sec < nsec) {
		r = sector_bit(img, block, sec, &next, e);
		if (r == 0 && next != first)
			break;
		n += s->lsec;
	}
	if (r < 0)
		return r;
	x->bs = first ? IMG_BS_DATA : IMG_BS_UNALLOC;
	x->len = n < len ? n : len;
	x->host = (s->bat[bat_index(s, block)] & BAT_OFFSET) + in;
	return 0;
}

/* How a block that is not (fully or partially) present reads: a block
 * not present comes from the parent of a differencing file; anything else
 * reads as zeros here. */
static int absent_status(const struct vhdx_state *s, uint64_t ent)
{
	return (ent & BAT_STATE) == PB_NOT_PRESENT && s->has_parent
	       ? IMG_BS_UNALLOC : IMG_BS_ZERO;
}

static int vhdx_map(struct img *img, uint64_t off, uint64_t len,
		    struct fr_extent *x, struct img_err *e)
{
	struct vhdx_state *s = img->priv;
	uint64_t block = off / s->block_size, in = off % s->block_size;
	uint64_t ent = s->bat[bat_index(s, block)];
	uint64_t n = s->block_size - in;

	if ((ent & BAT_STATE) == PB_PARTIAL)
		return map_partial(img, off, len, x, e);
	if ((ent & BAT_STATE) == PB_FULL) {
		x->bs = IMG_BS_DATA;
		x->host = (ent & BAT_OFFSET) + in;
		/* blocks that follow each other in the file: one extent */
		while (n < len && block + 1 < s->data_blocks) {
			uint64_t nx = s->bat[bat_index(s, block + 1)];
			if ((nx & BAT_STATE) != PB_FULL ||
			    (nx & BAT_OFFSET) != (ent & BAT_OFFSET) +
			    s->block_size)
				break;
			block++;
			ent = nx;
			n += s->block_size;
		}
	} else {
		x->bs = absent_status(s, ent);
		while (n < len && ++block < s->data_blocks) {
			uint64_t nx = s->bat[bat_index(s, block)];
			uint32_t st = (uint32_t)(nx & BAT_STATE);
			if (st == PB_FULL || st == PB_PARTIAL ||
			    absent_status(s, nx) != x->bs)
				break;
			n += s->block_size;
		}
	}
	x->len = n < len ? n : len;
	return 0;
}

static int vhdx_block_status(struct img *img, uint64_t off, uint64_t len,
			     uint64_t *pnum, struct img_err *e)
{
	return fr_block_status(img, vhdx_map, off, len, pnum, e);
}

static int vhdx_pread(struct img *img, uint64_t off, void *buf, size_t len,
		      struct img_err *e)
{
	return fr_pread_mapped(img, vhdx_map, off, buf, len, e);
}

const struct img_format img_format_vhdx = {
	.name = VHDX,
	.probe = vhdx_probe,
	.open = vhdx_open,
	.close = vhdx_close,
	.get_info = vhdx_get_info,
	.get_backing = vhdx_get_backing,
	.block_status = vhdx_block_status,
	.pread = vhdx_pread,
};
