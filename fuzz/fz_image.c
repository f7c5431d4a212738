/* fz_image.c - libFuzzer target: a whole qcow2 image.
 *
 * Open (format given, read-only inspection), then map this layer with
 * block_status and again with map_status (host offsets, the preallocation
 * heuristic) over the whole virtual size in bounded steps, read a few
 * guest ranges (start, an unaligned range across a cluster boundary, the
 * middle, the end), and run the consistency check when the driver has one.
 * Oracles: block_status returns a valid state and 0 < pnum <= len; extents
 * advance and never exceed the virtual size; errors name the file; the
 * image is never written.  A sparse 8 EiB-style image must map in a bounded
 * number of steps (B-18): we cap the walk at FZ_MAX_EXTENTS and the 5 s
 * libFuzzer timeout catches a driver that iterates per cluster.
 */
#include "fz_common.h"
#include "formats/img.h"

#define FZ_PATH "fuzz.qcow2"
#define FZ_MAX_EXTENTS 4096
#define FZ_READ_MAX (128u << 10)

static void map_image(struct img *img, bool with_map)
{
	uint64_t vsize = img->virtual_size, off = 0;
	struct img_err e = { 0 };
	struct img_map m;

	for (int i = 0; off < vsize && i < FZ_MAX_EXTENTS; i++) {
		uint64_t pnum = 0, len = vsize - off;
		int r = with_map ? img_map_status(img, off, len, &pnum, &m, &e)
				 : img_block_status(img, off, len, &pnum, &e);

		if (r < 0) {
			fz_check_err(r, e.msg, FZ_PATH, with_map ?
				     "map_status" : "block_status");
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

static void read_range(struct img *img, uint8_t *buf, uint64_t off,
		       uint64_t len)
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
		fz_check_err(r, e.msg, FZ_PATH, "pread");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FZ_READ_MAX];
	struct img_err e = { 0 };
	struct img *img = NULL;
	struct img_info info;
	int fd = fz_memfd_fill(data, size);
	int r = img_open_fd(fd, FZ_PATH, "qcow2", IMG_O_INSPECT, &img, NULL, &e);

	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "open");
		return 0;
	}
	if (img_get_info(img, &info, &e) == 0) {
		uint64_t vs = img->virtual_size, cs = info.cluster_size;

		map_image(img, false);
		map_image(img, true);
		read_range(img, buf, 0, 4096);
		if (cs)
			read_range(img, buf, cs - 100, 300);
		read_range(img, buf, vs / 2, 65536 + 512);
		read_range(img, buf, vs > 4096 ? vs - 4096 : 0, 4096);
	}
	if (img_can_check(img)) {
		struct img_check ck = { 0 };

		r = img_check(img, &ck, &e);
		if (r < 0)
			fz_check_err(r, e.msg, FZ_PATH, "check");
		FZ_ASSERT(ck.nmsgs >= 0 && ck.nmsgs <= IMG_CHECK_MSGS,
			  "nmsgs %d", ck.nmsgs);
		img_check_free(&ck);
	}
	img_close(img);
	FZ_ASSERT(fz_memfd_same(fd, data, size), "the image was modified");
	return 0;
}
