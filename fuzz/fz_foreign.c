/* fz_foreign.c - libFuzzer target: the qcow (version 1), qed, vmdk and
 * luks parsers, and the vmdk descriptor text parser.
 *
 * Input: [mode byte][image].  mode % 6: 0 probe the format from the image
 * (as `imgraph info` does), 1 qcow, 2 qed, 3 vmdk, 4 luks (the format
 * given, as a recorded backing format would), 5 the image is a vmdk
 * descriptor text handed to the pure parsers (extent lines, CID lookups,
 * key="value" lookups).  The image is a memfd named
 * <scratch>/fuzz.img: a vmdk descriptor's extents resolve in the private
 * scratch directory, which holds flat.vmdk (64 KiB of data) and sparse.vmdk
 * (a minimal KDMV sparse extent with one grain), so descriptors reach real
 * extent files; the kernel keeps every extent open inside that directory.
 *
 * Oracles: an open either fails with a message naming the file or gives
 * an image whose info, block status (valid state, 0 < pnum <= len, the walk
 * bounded) and reads run; extent lines come back with sectors > 0 and a
 * name of at most 511 bytes; the input is never written.
 */
#include "fz_common.h"
#define FZ_NAME "fz_foreign"
#include "fz_scratch.h"
#include "formats/format.h"
#include "formats/img.h"
#include "formats/vmdk/vmdk_int.h"

#define FZ_MAX_EXTENTS 4096
#define FZ_READ_MAX (64u << 10)

static char fz_path[PATH_MAX + 16];

/* A KDMV sparse extent: capacity 128 sectors, grains of 8 sectors, 512
 * entries per grain table; directory at sector 1, the table at sectors 2-5,
 * one grain (sectors 6-13) mapped at guest sector 0. */
static void make_sparse(void)
{
	static uint8_t f[6 * 512 + 4096];
	uint8_t *h = f;

	memcpy(h, "KDMV", 4);
	h[4] = 1;                       /* version */
	h[12] = 128;                    /* capacity */
	h[20] = 8;                      /* grain */
	h[44 + 1] = 2;                  /* 512 entries per table (0x200) */
	h[56] = 1;                      /* directory at sector 1 */
	h[64] = 6;                      /* grains start at sector 6 */
	f[512] = 2;                     /* gd[0] = sector 2 */
	f[1024] = 6;                    /* gt[0] = sector 6 */
	memset(f + 6 * 512, 0x5a, 4096);
	fz_scratch_put("sparse.vmdk", f, sizeof(f));
}

static void setup(void)
{
	static uint8_t flat[64 << 10];

	if (fz_path[0])
		return;
	memset(flat, 0xa5, sizeof(flat));
	fz_scratch_put("flat.vmdk", flat, sizeof(flat));
	make_sparse();
	snprintf(fz_path, sizeof(fz_path), "%s/fuzz.img", fz_scratch());
}

static void map_image(struct img *img)
{
	uint64_t vsize = img->virtual_size, off = 0;
	struct img_err e = { 0 };

	for (int i = 0; off < vsize && i < FZ_MAX_EXTENTS; i++) {
		uint64_t pnum = 0, len = vsize - off;
		int r = img_block_status(img, off, len, &pnum, &e);

		if (r < 0) {
			fz_check_err(r, e.msg, "fuzz.img", "block_status");
			return;
		}
		FZ_ASSERT(r == IMG_BS_UNALLOC || r == IMG_BS_DATA ||
			  r == IMG_BS_ZERO, "status %d", r);
		FZ_ASSERT(pnum > 0 && pnum <= len, "pnum %llu for len %llu",
			  (unsigned long long)pnum, (unsigned long long)len);
		off += pnum;
	}
}

static void read_range(struct img *img, uint64_t off, uint64_t len)
{
	static uint8_t buf[FZ_READ_MAX];
	struct img_err e = { 0 };
	int r;

	if (off >= img->virtual_size)
		return;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	if (len > sizeof(buf))
		len = sizeof(buf);
	r = img_pread(img, off, buf, (size_t)len, &e);
	if (r < 0)
		fz_check_err(r, e.msg, "fuzz.img", "pread");
}

static void run_image(const uint8_t *data, size_t size, const char *fmt)
{
	struct img_backing b;
	struct img_info info;
	struct img_err e = { 0 };
	struct img *img = NULL;
	int fd = fz_memfd_fill(data, size);
	int r = img_open_fd(fd, fz_path, fmt, IMG_O_INSPECT, &img, NULL, &e);

	if (r < 0) {
		fz_check_err(r, e.msg, "fuzz.img", "open");
		return;
	}
	if (img_get_info(img, &info, &e) == 0) {
		uint64_t vs = img->virtual_size;

		FZ_ASSERT(info.nb_extents == 0 || info.extents,
			  "%u extents without a list", info.nb_extents);
		map_image(img);
		read_range(img, 0, 4096);
		read_range(img, vs / 2, 65536 + 512);
		read_range(img, vs > 4096 ? vs - 4096 : 0, 4096);
	} else {
		fz_check_err(-1, e.msg, "fuzz.img", "get_info");
	}
	if (img_get_backing(img, &b, &e) == 0 && b.name)
		FZ_ASSERT(strlen(b.name) <= VMDK_HINT_MAX, "backing name of %zu",
			  strlen(b.name));
	img_close(img);
	FZ_ASSERT(fz_memfd_same(fd, data, size), "the image was modified");
}

static void run_descriptor(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), v[256];
	struct vmdk_line *l = NULL;
	struct img_err e = { 0 };
	uint32_t n = 0, cid;
	int r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	r = vmdk_desc_extents(text, "desc.vmdk", &l, &n, &e);
	if (r < 0) {
		fz_check_err(r, e.msg, "desc.vmdk", "extents");
		FZ_ASSERT(!l && !n, "lines left after an error");
	}
	for (uint32_t i = 0; i < n; i++) {
		FZ_ASSERT(l[i].sectors > 0 && l[i].sectors <= VMDK_MAX_SECTORS,
			  "line %d: %llu sectors", l[i].lineno,
			  (unsigned long long)l[i].sectors);
		FZ_ASSERT(l[i].fname[0] && strlen(l[i].fname) <= VMDK_FNAME_MAX,
			  "line %d: name", l[i].lineno);
	}
	free(l);
	vmdk_desc_cid(text, false, &cid);
	vmdk_desc_cid(text, true, &cid);
	if (vmdk_desc_string(text, "createType", v, sizeof(v)) > 0)
		FZ_ASSERT(strlen(v) < sizeof(v), "value overflow");
	vmdk_desc_string(text, "parentFileNameHint", v, sizeof(v));
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fmts[] = { NULL, "qcow", "qed", "vmdk",
					    "luks" };

	if (size < 1)
		return 0;
	setup();
	if (data[0] % 6 == 5)
		run_descriptor(data + 1, size - 1);
	else
		run_image(data + 1, size - 1, fmts[data[0] % 6]);
	return 0;
}
