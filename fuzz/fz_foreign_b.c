/* fz_foreign_b.c - libFuzzer target: an image of a read-only foreign format
 * (vpc, vhdx, vdi, parallels, dmg, bochs, cloop), or any file probed by
 * its head and tail.
 *
 * The first byte picks the format (byte % 8; 0 = probe by content, which
 * drives every probe and probe_tail), the rest is the file.  Open for
 * inspection, get_info and get_backing, then walk the layer (fz_walk.h).
 * Oracles: those of fz_walk.h; a backing name is a NUL-terminated string
 * without control characters of at most IMG_BACKING_NAME_MAX bytes; a
 * read-write open is refused; the image is never written.
 */
#include "fz_walk.h"
#include "formats/format.h"

#define FZ_PATH "fuzz.img"

static const char *const fmts[8] = {
	NULL, "vpc", "vhdx", "vdi", "parallels", "dmg", "bochs", "cloop",
};

static void check_backing(struct img *img)
{
	struct img_backing b;
	struct img_err e = { 0 };
	int r = img_get_backing(img, &b, &e);

	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "get_backing");
		return;
	}
	if (!b.name)
		return;
	size_t n = strnlen(b.name, IMG_BACKING_NAME_MAX + 1);
	FZ_ASSERT(n <= IMG_BACKING_NAME_MAX, "backing name of %zu bytes", n);
	for (size_t i = 0; i < n; i++)
		FZ_ASSERT((unsigned char)b.name[i] >= 0x20 && b.name[i] != 0x7f,
			  "control character in the backing name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	struct img_info info;
	const char *fmt;
	int fd, r;

	if (size < 1)
		return 0;
	fmt = fmts[data[0] % 8];
	fd = fz_memfd_fill(data + 1, size - 1);
	if (fmt) {
		r = img_open_fd(fd, FZ_PATH, fmt, IMG_O_RDWR, &img, NULL, &e);
		FZ_ASSERT(r < 0, "a read-write open of %s succeeded", fmt);
	}
	r = img_open_fd(fd, FZ_PATH, fmt, IMG_O_INSPECT, &img, NULL, &e);
	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "open");
		return 0;
	}
	check_backing(img);
	if (img_get_info(img, &info, &e) == 0)
		fz_walk(img, info.cluster_size, FZ_PATH);
	img_close(img);
	FZ_ASSERT(fz_memfd_same(fd, data + 1, size - 1),
		  "the image was modified");
	return 0;
}
