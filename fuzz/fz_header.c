/* fz_header.c - libFuzzer target: qcow2 header + header extensions.
 *
 * The input is the image file.  It goes into a memfd and is opened with the
 * format given explicitly ("qcow2", read-only inspection), then info and the
 * backing reference are queried.  Oracles (abort on violation):
 *  - a failed open has a message that names the file;
 *  - an opened image reports sane fields: cluster size a power of two in
 *    512..2 MiB, version 2 or 3, virtual size <= 2^61, refcount bits a power
 *    of two <= 64, backing name <= 1023 bytes, backing format <= 15 bytes;
 *  - features we cannot write (unknown incompatible bits, corrupt, dirty,
 *    encryption, external data file) come with a write refusal;
 *  - nothing is written to the input (the memfd is compared after).
 */
#include "fz_common.h"
#include "formats/format.h"

#define FZ_PATH "fuzz.qcow2"

static void check_image(struct img *img, const uint8_t *data, size_t size)
{
	struct img_info info;
	struct img_backing bk = { 0 };
	struct img_err e = { 0 };
	int r;

	r = img->drv->get_info(img, &info, &e);
	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "get_info");
		return;
	}
	FZ_ASSERT(info.version == 2 || info.version == 3, "version %d",
		  info.version);
	FZ_ASSERT(info.cluster_size >= 512 && info.cluster_size <= (2u << 20) &&
		  (info.cluster_size & (info.cluster_size - 1)) == 0,
		  "cluster_size %u", info.cluster_size);
	FZ_ASSERT(info.virtual_size <= (1ull << 61), "virtual size %llu",
		  (unsigned long long)info.virtual_size);
	FZ_ASSERT(info.virtual_size == img->virtual_size,
		  "info %llu != img %llu",
		  (unsigned long long)info.virtual_size,
		  (unsigned long long)img->virtual_size);
	FZ_ASSERT(info.refcount_bits >= 1 && info.refcount_bits <= 64 &&
		  (info.refcount_bits & (info.refcount_bits - 1)) == 0,
		  "refcount_bits %d", info.refcount_bits);
	FZ_ASSERT(info.file_size == size, "file_size %llu != %zu",
		  (unsigned long long)info.file_size, size);
	if ((info.incompatible_features & ~0x1full) || info.corrupt ||
	    info.dirty || info.encrypted || info.data_file)
		FZ_ASSERT(info.write_refusal != NULL,
			  "writable despite incompatible 0x%llx%s%s%s%s",
			  (unsigned long long)info.incompatible_features,
			  info.corrupt ? " corrupt" : "",
			  info.dirty ? " dirty" : "",
			  info.encrypted ? " encrypted" : "",
			  info.data_file ? " data-file" : "");
	if (img->drv->get_backing) {
		r = img->drv->get_backing(img, &bk, &e);
		if (r < 0) {
			fz_check_err(r, e.msg, FZ_PATH, "get_backing");
			return;
		}
		if (bk.name) {
			size_t n = strlen(bk.name);
			FZ_ASSERT(n >= 1 && n <= IMG_BACKING_NAME_MAX,
				  "backing name length %zu", n);
			FZ_ASSERT(!strchr(bk.name, '\n'),
				  "backing name with a newline accepted");
			/* The name must come from the file's own bytes. */
			FZ_ASSERT(size >= n && memmem(data, size, bk.name, n),
				  "backing name not found in the image");
		}
		if (bk.format)
			FZ_ASSERT(strlen(bk.format) <= IMG_FORMAT_NAME_MAX,
				  "backing format length %zu",
				  strlen(bk.format));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	int fd = fz_memfd_fill(data, size);
	int r = img_open_fd(fd, FZ_PATH, "qcow2", IMG_O_INSPECT, &img, NULL, &e);

	if (r < 0) {
		fz_check_err(r, e.msg, FZ_PATH, "open");
		FZ_ASSERT(img == NULL, "failed open returned an image");
		return 0;
	}
	check_image(img, data, size);
	img_close(img);
	/* Read-only inspection never writes: the file is still the input. */
	FZ_ASSERT(fz_memfd_same(fd, data, size), "the image was modified");
	return 0;
}
