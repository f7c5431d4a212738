/* vdi.c - VirtualBox VDI images, read-only (dynamic and static).
 *
 * Layout (little-endian): a 512-byte header at offset 0 with the
 * signature 0xbeda107f at byte 64; a block map of one u32 per block at
 * offset_bmap (0xffffffff: never allocated, 0xfffffffe: discarded; both
 * read as zeros); block n of the file at offset_data + n * block_size.
 *
 * The checks are QEMU's (version 1.1, 512-byte sectors, 1 MiB blocks, no
 * link or parent UUID: QEMU reads no differencing VDI, and a VDI names its
 * parent only by UUID) plus ours: the block map and every allocated block
 * start inside the file.
 */
#include "foreign.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VDI "vdi"
#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_HEADER 512u
#define VDI_BLOCK (1u << 20)
#define VDI_DISCARDED 0xfffffffeu
/* QEMU's VDI_DISK_SIZE_MAX: the largest disk_size it opens. */
#define VDI_DISK_SIZE_MAX 0x1fffff8000000ull

struct vdi_state {
	uint64_t fsize;
	uint64_t offset_data;
	uint32_t nblocks;
	uint32_t *bmap;
};

static int vdi_probe(const uint8_t *buf, size_t len)
{
	return len >= VDI_HEADER && fr_le32(buf + 64) == VDI_SIGNATURE ? 100
									: 0;
}

static bool uuid_is_null(const uint8_t *u)
{
	static const uint8_t zero[16];
	return !memcmp(u, zero, sizeof(zero));
}

/* The header fields QEMU checks, in QEMU's order. */
static int check_header(struct img *img, const uint8_t *h,
			struct img_err *e)
{
	uint64_t disk = fr_le64(h + 368);
	uint32_t nblocks = fr_le32(h + 384);

	if (fr_le32(h + 64) != VDI_SIGNATURE)
		return fr_bad(img, VDI, "signature", e, "is 0x%08x, not 0x%08x",
			      fr_le32(h + 64), VDI_SIGNATURE);
	if (disk > VDI_DISK_SIZE_MAX)
		return fr_bad(img, VDI, "disk_size", e,
			      "is %llu, over the %llu bytes QEMU opens",
			      fr_ull(disk), fr_ull(VDI_DISK_SIZE_MAX));
	if (fr_le32(h + 68) != VDI_VERSION_1_1)
		return fr_bad(img, VDI, "version", e, "is %u.%u; must be 1.1",
			      fr_le32(h + 68) >> 16, fr_le32(h + 68) & 0xffff);
	if (fr_le32(h + 340) % 512)
		return fr_bad(img, VDI, "offset_bmap", e,
			      "is %u; must be a multiple of 512",
			      fr_le32(h + 340));
	if (fr_le32(h + 344) % 512)
		return fr_bad(img, VDI, "offset_data", e,
			      "is %u; must be a multiple of 512",
			      fr_le32(h + 344));
	if (fr_le32(h + 360) != 512)
		return fr_bad(img, VDI, "sector_size", e, "is %u; must be 512",
			      fr_le32(h + 360));
	if (fr_le32(h + 376) != VDI_BLOCK)
		return fr_bad(img, VDI, "block_size", e, "is %u; must be %u",
			      fr_le32(h + 376), VDI_BLOCK);
	if (disk > (uint64_t)nblocks * VDI_BLOCK)
		return fr_bad(img, VDI, "disk_size", e,
			      "is %llu; blocks_in_image (%u) has room for %llu",
			      fr_ull(disk), nblocks,
			      fr_ull((uint64_t)nblocks * VDI_BLOCK));
	if (!uuid_is_null(h + 424))
		return fr_bad(img, VDI, "uuid_link", e,
			      "is set: linked VDI images are not supported");
	if (!uuid_is_null(h + 440))
		return fr_bad(img, VDI, "uuid_parent", e,
			      "is set: a differencing VDI names its parent "
			      "only by UUID, which neither QEMU nor imgraph "
			      "can follow");
	return 0;
}

/* The block map, and every allocated block starting inside the file. */
static int read_bmap(struct img *img, struct vdi_state *s, uint64_t off,
		     struct img_err *e)
{
	uint8_t *raw;
	int r = fr_table(img, VDI, "block map", s->nblocks, 4,
			 (void **)&s->bmap, e);

	if (r < 0 || !s->nblocks)
		return r;
	raw = (uint8_t *)s->bmap;
	r = fr_read(img, s->fsize, VDI, "block map", off, raw,
		    (size_t)s->nblocks * 4, e);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < s->nblocks; i++) {
		uint32_t v = fr_le32(raw + 4 * (size_t)i);
		s->bmap[i] = v;
		if (v >= VDI_DISCARDED)
			continue;
		uint64_t start = s->offset_data + (uint64_t)v * VDI_BLOCK;
		if (start >= s->fsize)
			return err_set(e, EINVAL,
				       "%s: vdi block map entry %u (block %u) "
				       "starts at %llu, past the end of the "
				       "file (%llu bytes): the image is "
				       "truncated", img->path, i, v,
				       fr_ull(start), fr_ull(s->fsize));
	}
	return 0;
}

static void vdi_free(struct vdi_state *s)
{
	if (s)
		free(s->bmap);
	free(s);
}

static int vdi_open(struct img *img, int flags, struct img_err *e)
{
	uint8_t h[VDI_HEADER];
	struct vdi_state *s;
	uint64_t disk;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = fr_read(img, s->fsize, VDI, "header", 0, h, sizeof(h), e);
	if (r == 0)
		r = check_header(img, h, e);
	if (r == 0) {
		/* VBoxManage can write odd sizes; QEMU rounds them up. */
		disk = fr_le64(h + 368);
		img->virtual_size = (disk + 511) & ~511ull;
		s->nblocks = fr_le32(h + 384);
		s->offset_data = fr_le32(h + 344);
		r = read_bmap(img, s, fr_le32(h + 340), e);
	}
	if (r < 0) {
		vdi_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void vdi_close(struct img *img)
{
	vdi_free(img->priv);
	img->priv = NULL;
}

static int vdi_get_info(struct img *img, struct img_info *o,
			struct img_err *e)
{
	return fr_info(img, VDI, VDI_BLOCK, o, e);
}

static bool allocated(uint32_t v)
{
	return v < VDI_DISCARDED;
}

/* An allocated block is data; runs of unallocated blocks read as zeros
 * (QEMU's vdi reports them as zero, there being no backing file). */
static int vdi_map(struct img *img, uint64_t off, uint64_t len,
		   struct fr_extent *x, struct img_err *e)
{
	struct vdi_state *s = img->priv;
	uint64_t blk = off / VDI_BLOCK, in = off % VDI_BLOCK;
	uint64_t n = VDI_BLOCK - in;

	(void)e;
	if (allocated(s->bmap[blk])) {
		x->bs = IMG_BS_DATA;
		x->host = s->offset_data + (uint64_t)s->bmap[blk] * VDI_BLOCK +
			  in;
		/* Blocks often follow each other in the file. */
		while (n < len && blk + 1 < s->nblocks &&
		       s->bmap[blk + 1] == s->bmap[blk] + 1 &&
		       allocated(s->bmap[blk + 1])) {
			blk++;
			n += VDI_BLOCK;
		}
	} else {
		x->bs = IMG_BS_ZERO;
		while (n < len && ++blk < s->nblocks &&
		       !allocated(s->bmap[blk]))
			n += VDI_BLOCK;
	}
	x->len = n < len ? n : len;
	return 0;
}

static int vdi_block_status(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e)
{
	return fr_block_status(img, vdi_map, off, len, pnum, e);
}

static int vdi_pread(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e)
{
	return fr_pread_mapped(img, vdi_map, off, buf, len, e);
}

const struct img_format img_format_vdi = {
	.name = VDI,
	.probe = vdi_probe,
	.open = vdi_open,
	.close = vdi_close,
	.get_info = vdi_get_info,
	.block_status = vdi_block_status,
	.pread = vdi_pread,
};
