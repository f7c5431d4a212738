/* cloop.c - compressed loop (cloop V2.0) images, read-only.
 *
 * Layout (big-endian): a 128-byte shell-script preamble, the block size
 * (u32 at 128) and number of blocks (u32 at 132), then n + 1 u64 file
 * offsets: block i is one zlib stream in [offsets[i], offsets[i + 1])
 * that inflates to exactly one block.
 *
 * The checks are QEMU's (block size a multiple of 512 up to 64 MiB,
 * offsets increasing, a compressed block at most twice that) plus ours:
 * the offset list is bounded and the blocks lie inside the file.  One
 * inflated block is cached, so sequential reads inflate each block once.
 */
#include "foreign.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLOOP "cloop"
#define CLOOP_MAGIC "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && " \
		    "mount -r -t iso9660 /dev/cloop $1\n"
#define CLOOP_HEADER 136u

struct cloop_state {
	uint64_t fsize;
	uint32_t block_size;
	uint32_t nblocks;
	uint64_t *offsets;             /* nblocks + 1 */
	uint8_t *in, *out;             /* one compressed and inflated block */
	size_t in_cap;
	uint64_t cached;               /* block in out (UINT64_MAX: none) */
};

/* QEMU's weak score: the preamble is a shell script, not a magic number. */
static int cloop_probe(const uint8_t *buf, size_t len)
{
	size_t n = strlen(CLOOP_MAGIC);

	return len >= n && !memcmp(buf, CLOOP_MAGIC, n) ? 2 : 0;
}

static int read_offsets(struct img *img, struct cloop_state *s,
			struct img_err *e)
{
	uint64_t n = (uint64_t)s->nblocks + 1;
	uint8_t *raw;
	int r = fr_table(img, CLOOP, "offsets", n, 8, (void **)&s->offsets, e);

	if (r < 0)
		return r;
	raw = (uint8_t *)s->offsets;
	r = fr_read(img, s->fsize, CLOOP, "offsets", CLOOP_HEADER, raw,
		    (size_t)n * 8, e);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		s->offsets[i] = fr_be64(raw + 8 * i);
		if (i == 0)
			continue;
		if (s->offsets[i] < s->offsets[i - 1])
			return err_set(e, EINVAL, "%s: cloop offsets[%llu] "
				       "(%llu) is below offsets[%llu]: the "
				       "offsets must increase", img->path,
				       fr_ull(i), fr_ull(s->offsets[i]),
				       fr_ull(i - 1));
		if (s->offsets[i] - s->offsets[i - 1] > 2ull * FR_CHUNK_MAX)
			return err_set(e, EINVAL, "%s: cloop block %llu is "
				       "%llu bytes compressed; the limit is %llu",
				       img->path, fr_ull(i - 1),
				       fr_ull(s->offsets[i] - s->offsets[i - 1]),
				       2ull * FR_CHUNK_MAX);
	}
	if (s->offsets[n - 1] > s->fsize)
		return err_set(e, EINVAL, "%s: cloop offsets[%u] is %llu, past "
			       "the end of the file (%llu bytes): the image is "
			       "truncated", img->path, s->nblocks,
			       fr_ull(s->offsets[n - 1]), fr_ull(s->fsize));
	return 0;
}

static int parse(struct img *img, struct cloop_state *s, struct img_err *e)
{
	uint8_t h[CLOOP_HEADER];
	int r = fr_read(img, s->fsize, CLOOP, "header", 0, h, sizeof(h), e);

	if (r < 0)
		return r;
	s->block_size = fr_be32(h + 128);
	if (s->block_size == 0 || s->block_size % 512 ||
	    s->block_size > FR_CHUNK_MAX)
		return fr_bad(img, CLOOP, "block_size", e,
			      "is %u; must be a multiple of 512 up to %u",
			      s->block_size, FR_CHUNK_MAX);
	s->nblocks = fr_be32(h + 132);
	img->virtual_size = (uint64_t)s->nblocks * s->block_size;
	return read_offsets(img, s, e);
}

static void cloop_free(struct cloop_state *s)
{
	if (s) {
		free(s->offsets);
		free(s->in);
		free(s->out);
	}
	free(s);
}

static int cloop_open(struct img *img, int flags, struct img_err *e)
{
	struct cloop_state *s;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->cached = UINT64_MAX;
	r = fr_file_size(img, &s->fsize, e);
	if (r == 0)
		r = parse(img, s, e);
	if (r < 0) {
		cloop_free(s);
		return r;
	}
	img->priv = s;
	return 0;
}

static void cloop_close(struct img *img)
{
	cloop_free(img->priv);
	img->priv = NULL;
}

static int cloop_get_info(struct img *img, struct img_info *o,
			  struct img_err *e)
{
	int r = fr_info(img, CLOOP, 0, o, e);

	/* QEMU's driver has no get_info: qemu-img prints no dirty-flag */
	o->no_dirty_flag = true;
	return r;
}

/* Every byte of a cloop image is stored (compressed) data. */
static int cloop_block_status(struct img *img, uint64_t off, uint64_t len,
			      uint64_t *pnum, struct img_err *e)
{
	if (off >= img->virtual_size || len == 0)
		return err_set(e, EINVAL, "%s: block status at %llu is outside "
			       "the image (%llu)", img->path, fr_ull(off),
			       fr_ull(img->virtual_size));
	*pnum = len < img->virtual_size - off ? len : img->virtual_size - off;
	return IMG_BS_DATA;
}

/* Inflate block i into s->out (cached). */
static int load_block(struct img *img, uint64_t i, struct img_err *e)
{
	struct cloop_state *s = img->priv;
	uint64_t at = s->offsets[i];
	size_t clen = (size_t)(s->offsets[i + 1] - at);
	int r;

	if (s->cached == i)
		return 0;
	s->cached = UINT64_MAX;
	if (!s->out) {
		s->out = malloc(s->block_size);
		if (!s->out)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
	}
	if (clen > s->in_cap) {
		uint8_t *p = realloc(s->in, clen);
		if (!p)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
		s->in = p;
		s->in_cap = clen;
	}
	r = fr_read(img, s->fsize, CLOOP, "block", at, s->in, clen, e);
	if (r < 0)
		return r;
	if (fr_inflate(s->in, clen, s->out, s->block_size) < 0)
		return err_set(e, EIO, "%s: cloop block %llu at %llu (%zu "
			       "bytes) is not a zlib stream of exactly %u "
			       "bytes", img->path, fr_ull(i), fr_ull(at), clen,
			       s->block_size);
	s->cached = i;
	return 0;
}

static int cloop_pread(struct img *img, uint64_t off, void *buf, size_t len,
		       struct img_err *e)
{
	struct cloop_state *s = img->priv;
	uint8_t *b = buf;
	int r = fr_check_read(img, off, len, e);

	while (r == 0 && len) {
		uint64_t i = off / s->block_size, in = off % s->block_size;
		size_t n = s->block_size - in < len ? (size_t)(s->block_size - in)
						    : len;
		r = load_block(img, i, e);
		if (r < 0)
			break;
		memcpy(b, s->out + in, n);
		b += n;
		off += n;
		len -= n;
	}
	return r;
}

const struct img_format img_format_cloop = {
	.name = CLOOP,
	.probe = cloop_probe,
	.open = cloop_open,
	.close = cloop_close,
	.get_info = cloop_get_info,
	.block_status = cloop_block_status,
	.pread = cloop_pread,
};
