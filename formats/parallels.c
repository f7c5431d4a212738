/* parallels.c - Parallels (ploop) images, read-only.
 *
 * Layout (little-endian): a 64-byte header ("WithoutFreeSpace" or
 * "WithouFreSpacExt", version 2, tracks = sectors per cluster,
 * bat_entries, nb_sectors, inuse, data_off...), then the BAT: one u32 per
 * cluster, 0 = not allocated.  A BAT value counts sectors in the old
 * format and clusters in the "Ext" one.  The format has no backing-file
 * field (QEMU takes a backing file only from the command line), so a
 * Parallels image is always the bottom of its own chain.
 *
 * The checks are QEMU's (tracks 1..INT32_MAX/513) plus ours: the BAT and
 * every allocated cluster start inside the file.  An "inuse" header (a
 * writer did not close it) is readable, as in QEMU, and shown dirty.
 */
#include "foreign.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRL "parallels"
#define PRL_HEADER 64u
#define PRL_MAGIC "WithoutFreeSpace"
#define PRL_MAGIC2 "WithouFreSpacExt"
#define PRL_VERSION 2u
#define PRL_INUSE 0x746f6e59u

struct prl_state {
	uint64_t fsize;
	uint32_t tracks;               /* sectors per cluster */
	uint64_t cluster;              /* bytes */
	uint64_t unit;                 /* bytes per BAT value unit */
	uint32_t nbat;
	uint32_t *bat;
	bool inuse;
};

static int prl_probe(const uint8_t *buf, size_t len)
{
	if (len < PRL_HEADER)
		return 0;
	if (memcmp(buf, PRL_MAGIC, 16) && memcmp(buf, PRL_MAGIC2, 16))
		return 0;
	return fr_le32(buf + 16) == PRL_VERSION ? 100 : 0;
}

static int check_header(struct img *img, struct prl_state *s,
			const uint8_t *h, struct img_err *e)
{
	uint64_t sectors = fr_le64(h + 36);
	bool old = !memcmp(h, PRL_MAGIC, 16);

	if (!old && memcmp(h, PRL_MAGIC2, 16))
		return fr_bad(img, PRL, "magic", e, "is neither \"%s\" nor "
			      "\"%s\"", PRL_MAGIC, PRL_MAGIC2);
	if (fr_le32(h + 16) != PRL_VERSION)
		return fr_bad(img, PRL, "version", e, "is %u; must be %u",
			      fr_le32(h + 16), PRL_VERSION);
	s->tracks = fr_le32(h + 28);
	if (s->tracks == 0 || s->tracks > INT32_MAX / 513)
		return fr_bad(img, PRL, "tracks", e,
			      "is %u; must be 1..%d sectors per cluster",
			      s->tracks, INT32_MAX / 513);
	s->cluster = (uint64_t)s->tracks * 512;
	s->unit = old ? 512 : s->cluster;
	/* The old format keeps a 32-bit sector count. */
	if (old)
		sectors &= 0xffffffffu;
	if (sectors > INT64_MAX / 512)
		return fr_bad(img, PRL, "nb_sectors", e,
			      "is %llu: over 2^63 bytes", fr_ull(sectors));
	img->virtual_size = sectors * 512;
	s->nbat = fr_le32(h + 32);
	s->inuse = fr_le32(h + 44) == PRL_INUSE;
	return 0;
}

static int read_bat(struct img *img, struct prl_state *s,
		    struct img_err *e)
{
	uint8_t *raw;
	int r = fr_table(img, PRL, "BAT", s->nbat, 4, (void **)&s->bat, e);

	if (r < 0 || !s->nbat)
		return r;
	raw = (uint8_t *)s->bat;
	r = fr_read(img, s->fsize, PRL, "BAT", PRL_HEADER, raw,
		    (size_t)s->nbat * 4, e);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < s->nbat; i++) {
		uint32_t v = fr_le32(raw + 4 * (size_t)i);
		s->bat[i] = v;
		if (v && (uint64_t)v * s->unit >= s->fsize)
			return err_set(e, EINVAL,
				       "%s: parallels BAT entry %u (%u) points "
				       "at %llu, past the end of the file (%llu "
				       "bytes): the image is truncated",
				       img->path, i, v,
				       fr_ull((uint64_t)v * s->unit),
				       fr_ull(s->fsize));
	}
	return 0;
}

static void prl_free(struct prl_state *s)
{
	if (s)
		free(s->bat);
	free(s);
}

static int prl_open(struct img *img, int flags, struct img_err *e)
{
	uint8_t h[PRL_HEADER];
	struct prl_state *s;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = fr_read(img, s->fsize, PRL, "header", 0, h, sizeof(h), e);
	if (r == 0)
		r = check_header(img, s, h, e);
	if (r == 0)
		r = read_bat(img, s, e);
	if (r < 0) {
		prl_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void prl_close(struct img *img)
{
	prl_free(img->priv);
	img->priv = NULL;
}

/* qemu-img info shows no cluster size for this format (its driver has no
 * get_info), so neither do we. */
static int prl_get_info(struct img *img, struct img_info *o,
			struct img_err *e)
{
	struct prl_state *s = img->priv;
	int r = fr_info(img, PRL, 0, o, e);

	if (r == 0) {
		/* kept for the tree's flags; qemu-img prints no dirty-flag */
		o->dirty = s->inuse;
		o->no_dirty_flag = true;
	}
	return r;
}

static uint32_t entry(const struct prl_state *s, uint64_t idx)
{
	return idx < s->nbat ? s->bat[idx] : 0;
}

/* Runs of clusters: allocated ones that follow each other in the file, or
 * unallocated ones (zeros: there is no backing file). */
static int prl_map(struct img *img, uint64_t off, uint64_t len,
		   struct fr_extent *x, struct img_err *e)
{
	struct prl_state *s = img->priv;
	uint64_t idx = off / s->cluster, in = off % s->cluster;
	uint64_t n = s->cluster - in;
	uint32_t v = entry(s, idx);

	(void)e;
	if (v) {
		x->bs = IMG_BS_DATA;
		x->host = (uint64_t)v * s->unit + in;
		while (n < len && entry(s, idx + 1) &&
		       (uint64_t)entry(s, idx + 1) * s->unit ==
		       (uint64_t)entry(s, idx) * s->unit + s->cluster) {
			idx++;
			n += s->cluster;
		}
	} else {
		x->bs = IMG_BS_UNALLOC;
		/* Past the BAT everything is unallocated. */
		if (idx >= s->nbat)
			n = len;
		while (n < len && ++idx < s->nbat && !s->bat[idx])
			n += s->cluster;
		if (n < len && idx >= s->nbat)
			n = len;
	}
	x->len = n < len ? n : len;
	return 0;
}

static int prl_block_status(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e)
{
	return fr_block_status(img, prl_map, off, len, pnum, e);
}

static int prl_pread(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e)
{
	return fr_pread_mapped(img, prl_map, off, buf, len, e);
}

const struct img_format img_format_parallels = {
	.name = PRL,
	.probe = prl_probe,
	.open = prl_open,
	.close = prl_close,
	.get_info = prl_get_info,
	.block_status = prl_block_status,
	.pread = prl_pread,
};
