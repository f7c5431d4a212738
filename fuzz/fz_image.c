/* fz_image.c - libFuzzer target: a whole qcow2 image.
 *
 * Open (format given, read-only inspection), walk the layer (fz_walk.h:
 * block status over the whole virtual size, four reads), and run the
 * consistency check when the driver has one.  Oracles: those of
 * fz_walk.h, the check's message count, and the image is never written.
 */
#include "fz_walk.h"
#include "formats/format.h"

#define FZ_PATH "fuzz.qcow2"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	struct img_info info;
	int fd = fz_memfd_fill(data, size);
	int r = img_open_fd(fd, FZ_PATH, "qcow2", IMG_O_INSPECT, &img, NULL, &e);

	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "open");
		return 0;
	}
	if (img_get_info(img, &info, &e) == 0)
		fz_walk(img, info.cluster_size, FZ_PATH);
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
