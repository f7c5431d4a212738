/* fz_walk.h - what the image harnesses (fz_image, fz_foreign) do with an
 * image that opened: map this layer with block_status, and again with
 * map_status (host offsets, the preallocation heuristic), over the whole
 * virtual size in bounded steps and read a few guest ranges (the start,
 * an unaligned range across a cluster boundary, the middle, the end).
 * Oracles: both return a valid state and 0 < pnum <= len, map_status names
 * the file holding the data;
 * extents advance and never exceed the virtual size; errors name the
 * file.  A sparse 8 EiB-style image must map in a bounded number of steps
 * (B-18): the walk stops at FZ_MAX_EXTENTS and the 5 s libFuzzer timeout
 * catches a driver that iterates per cluster.
 */
#ifndef IMGRAPH_FZ_WALK_H
#define IMGRAPH_FZ_WALK_H

#include "fz_common.h"
#include "formats/img.h"

#define FZ_MAX_EXTENTS 4096
#define FZ_READ_MAX (128u << 10)

static inline void fz_map_image(struct img *img, const char *path,
				bool with_map)
{
	uint64_t vsize = img->virtual_size, off = 0;
	struct img_err e = { 0 };
	struct img_map m;

	for (int i = 0; off < vsize && i < FZ_MAX_EXTENTS; i++) {
		uint64_t pnum = 0, len = vsize - off;
		int r = with_map ? img_map_status(img, off, len, &pnum, &m, &e)
				 : img_block_status(img, off, len, &pnum, &e);

		if (r < 0) {
			fz_check_err(r, e.msg, path, with_map ? "map_status" :
				     "block_status");
			return;
		}
		FZ_ASSERT(!with_map || m.file, "map_status without a file");
		FZ_ASSERT(r == IMG_BS_UNALLOC || r == IMG_BS_DATA ||
			  r == IMG_BS_ZERO, "status %d", r);
		FZ_ASSERT(pnum > 0 && pnum <= len,
			  "pnum %llu for len %llu at %llu",
			  (unsigned long long)pnum, (unsigned long long)len,
			  (unsigned long long)off);
		off += pnum;
	}
}

static inline void fz_read_range(struct img *img, uint8_t *buf, uint64_t off,
				 uint64_t len, const char *path)
{
	struct img_err e = { 0 };
	int r;

	if (off >= img->virtual_size)
		return;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	if (len > FZ_READ_MAX)
		len = FZ_READ_MAX;
	r = img_pread(img, off, buf, (size_t)len, &e);
	if (r < 0)
		fz_check_err(r, e.msg, path, "pread");
}

/* Map, then the four reads; cs: the cluster size from get_info (0: none). */
static inline void fz_walk(struct img *img, uint64_t cs, const char *path)
{
	static uint8_t buf[FZ_READ_MAX];
	uint64_t vs = img->virtual_size;

	fz_map_image(img, path, false);
	fz_map_image(img, path, true);
	fz_read_range(img, buf, 0, 4096, path);
	if (cs)
		fz_read_range(img, buf, cs - 100, 300, path);
	fz_read_range(img, buf, vs / 2, 65536 + 512, path);
	fz_read_range(img, buf, vs > 4096 ? vs - 4096 : 0, 4096, path);
}

#endif
