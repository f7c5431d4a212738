/* dmg.c - Apple disk images (UDIF), read-only: the ops table and reads.
 *
 * The guest view is a sorted list of chunks (dmg_parse.c): zero chunks
 * read as zeros, raw chunks straight from the file, zlib chunks are
 * inflated whole into a buffer of exactly their size (at most
 * FR_CHUNK_MAX) and cached, so sequential reads inflate each chunk once.
 * ADC, bzip2, lzfse and lzma chunks are listed but refused when read,
 * with their name: the QEMU build we are judged by reads none of them.
 * A sector no chunk covers is an I/O error, as in QEMU.
 *
 * There is no magic at the head: the koly trailer is probed at the end of
 * the file (QEMU probes by the ".dmg" name, which imgraph never does).
 */
#include "dmg_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int dmg_probe_tail(const uint8_t *tail, size_t len)
{
	const uint8_t *k;

	if (len < 512)
		return 0;
	k = tail + len - 512;
	/* koly, version 4, 512-byte header: below a head magic's 100. */
	return !memcmp(k, "koly", 4) && fr_be32(k + 4) == 4 &&
	       fr_be32(k + 8) == 512 ? 50 : 0;
}

static void dmg_free(struct dmg_state *s)
{
	if (s) {
		free(s->chunks);
		free(s->in);
		free(s->out);
	}
	free(s);
}

static int dmg_open(struct img *img, int flags, struct img_err *e)
{
	struct dmg_state *s;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->cached = SIZE_MAX;
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = dmg_parse(img, s, e);
	if (r < 0) {
		dmg_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void dmg_close(struct img *img)
{
	dmg_free(img->priv);
	img->priv = NULL;
}

static int dmg_get_info(struct img *img, struct img_info *o,
			struct img_err *e)
{
	int r = fr_info(img, DMG, 0, o, e);

	/* QEMU's driver has no get_info: qemu-img prints no dirty-flag */
	o->no_dirty_flag = true;
	return r;
}

/* The chunk that holds byte off, or NULL. */
static const struct dmg_chunk *find(const struct dmg_state *s, uint64_t off)
{
	uint64_t sec = off / 512;
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dmg_chunk *k = &s->chunks[mid];
		if (sec < k->sector)
			hi = mid;
		else if (sec - k->sector >= k->nsec)
			lo = mid + 1;
		else
			return k;
	}
	return NULL;
}

static int no_chunk(struct img *img, uint64_t off, struct img_err *e)
{
	return err_set(e, EIO, "%s: dmg: no chunk covers sector %llu (guest "
		       "offset %llu)", img->path, fr_ull(off / 512),
		       fr_ull(off));
}

static int dmg_block_status(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e)
{
	struct dmg_state *s = img->priv;
	const struct dmg_chunk *k;
	uint64_t end;

	if (off >= img->virtual_size || len == 0)
		return err_set(e, EINVAL, "%s: block status at %llu is outside "
			       "the image (%llu)", img->path, fr_ull(off),
			       fr_ull(img->virtual_size));
	k = find(s, off);
	if (!k)
		return no_chunk(img, off, e);
	end = (k->sector + k->nsec) * 512;
	if (end > img->virtual_size)
		end = img->virtual_size;
	*pnum = end - off < len ? end - off : len;
	return k->type == DMG_ZERO_FILL || k->type == DMG_IGNORE ? IMG_BS_ZERO
								: IMG_BS_DATA;
}

/* Make *buf hold at least need bytes. */
static bool reserve(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (need <= *cap)
		return true;
	p = realloc(*buf, need);
	if (!p)
		return false;
	*buf = p;
	*cap = need;
	return true;
}

/* Inflate chunk k into s->out (cached). */
static int load_zlib(struct img *img, const struct dmg_chunk *k,
		     struct img_err *e)
{
	struct dmg_state *s = img->priv;
	size_t idx = (size_t)(k - s->chunks), outlen = (size_t)k->nsec * 512;
	int r;

	if (s->cached == idx)
		return 0;
	s->cached = SIZE_MAX;
	if (!reserve(&s->out, &s->out_cap, outlen) ||
	    !reserve(&s->in, &s->in_cap, k->len ? (size_t)k->len : 1))
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fr_read(img, s->fsize, DMG, "chunk", k->off, s->in, (size_t)k->len,
		    e);
	if (r < 0)
		return r;
	if (fr_inflate(s->in, (size_t)k->len, s->out, outlen) < 0)
		return err_set(e, EIO, "%s: dmg chunk at %llu (%llu bytes, "
			       "sectors %llu..%llu) is not a zlib stream of "
			       "exactly %zu bytes", img->path, fr_ull(k->off),
			       fr_ull(k->len), fr_ull(k->sector),
			       fr_ull(k->sector + k->nsec - 1), outlen);
	s->cached = idx;
	return 0;
}

/* Bytes [in, in + n) of chunk k into b. */
static int read_chunk(struct img *img, const struct dmg_chunk *k,
		      uint64_t in, uint8_t *b, size_t n, struct img_err *e)
{
	struct dmg_state *s = img->priv;
	const char *name = dmg_unsupported(k->type);
	int r;

	if (name)
		return err_set(e, ENOTSUP, "%s: dmg chunk of sectors %llu..%llu "
			       "is %s-compressed; imgraph reads only raw, zero "
			       "and zlib chunks", img->path, fr_ull(k->sector),
			       fr_ull(k->sector + k->nsec - 1), name);
	switch (k->type) {
	case DMG_RAW:
		return fr_read(img, s->fsize, DMG, "chunk", k->off + in, b, n,
			       e);
	case DMG_ZLIB:
		r = load_zlib(img, k, e);
		if (r == 0)
			memcpy(b, s->out + in, n);
		return r;
	default:
		memset(b, 0, n);
		return 0;
	}
}

static int dmg_pread(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e)
{
	struct dmg_state *s = img->priv;
	uint8_t *b = buf;
	int r = fr_check_read(img, off, len, e);

	while (r == 0 && len) {
		const struct dmg_chunk *k = find(s, off);
		if (!k)
			return no_chunk(img, off, e);
		uint64_t start = k->sector * 512, end = start + k->nsec * 512;
		size_t n = end - off < len ? (size_t)(end - off) : len;
		r = read_chunk(img, k, off - start, b, n, e);
		b += n;
		off += n;
		len -= n;
	}
	return r;
}

const struct img_format img_format_dmg = {
	.name = DMG,
	.probe_tail = dmg_probe_tail,
	.open = dmg_open,
	.close = dmg_close,
	.get_info = dmg_get_info,
	.block_status = dmg_block_status,
	.pread = dmg_pread,
};
