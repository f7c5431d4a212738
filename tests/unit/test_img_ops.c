/* test_img_ops.c - the driver contract of formats/format.h as the layers
 * above see it through formats/img.h: a read-only driver that fills only
 * the required ops (with and without backing files) gets every other
 * answer from the wrappers, once.
 *
 * The drivers here are minimal and live in this file: "flat" is a disk of
 * bytes counting up from the start of its file, with no header and no
 * backing; "layered" has a backing file and allocates only its first half,
 * whose data lives in another file, named by map_status.  They are opened
 * with img_open_drv, as a new driver can be tested before it is listed in
 * the registry.
 */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/img.h"

#define FLAT_SIZE (1u << 20)

static int flat_open(struct img *img, int flags, struct img_err *e)
{
	(void)flags;
	(void)e;
	img->virtual_size = FLAT_SIZE;
	return 0;
}

static int flat_info(struct img *img, struct img_info *o, struct img_err *e)
{
	return img_info_base(img, o, e);
}

static int flat_status(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct img_err *e)
{
	(void)e;
	*pnum = len < img->virtual_size - off ? len : img->virtual_size - off;
	return IMG_BS_DATA;
}

static int flat_pread(struct img *img, uint64_t off, void *buf, size_t len,
		      struct img_err *e)
{
	(void)img;
	(void)e;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)(off + i);
	return 0;
}

/* Only what format.h marks REQUIRED (close is optional too). */
static const struct img_format flat_format = {
	.name = "flat",
	.open = flat_open,
	.get_info = flat_info,
	.block_status = flat_status,
	.pread = flat_pread,
};

static int layered_backing(struct img *img, struct img_backing *out,
			   struct img_err *e)
{
	(void)img;
	(void)e;
	out->name = "base.flat";
	out->format = "flat";
	return 0;
}

/* First half allocated here, the rest shows the backing file. */
static int layered_status(struct img *img, uint64_t off, uint64_t len,
			  uint64_t *pnum, struct img_err *e)
{
	uint64_t half = img->virtual_size / 2;
	uint64_t end = off < half ? half : img->virtual_size;

	(void)e;
	*pnum = len < end - off ? len : end - off;
	return off < half ? IMG_BS_DATA : IMG_BS_UNALLOC;
}

static int layered_map(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct img_map *m, struct img_err *e)
{
	int r = layered_status(img, off, len, pnum, e);

	if (r == IMG_BS_DATA) {
		m->offset_valid = true;
		m->offset = 4096 + off;
		m->file = "extent-1.bin";
	}
	return r;
}

static int closed;

static void layered_close(struct img *img)
{
	(void)img;
	closed++;
}

static const struct img_format layered_format = {
	.name = "layered",
	.open = flat_open,
	.close = layered_close,
	.get_info = flat_info,
	.get_backing = layered_backing,
	.block_status = layered_status,
	.map_status = layered_map,
	.pread = flat_pread,
};

/* A check that reports a message and then fails half way. */
static int failing_check(struct img *img, struct img_check *out,
			 struct img_err *e)
{
	out->msgs[out->nmsgs++] = strdup("ERROR cluster 1 refcount=0");
	return err_set(e, EIO, "%s: cannot read the refcount table",
		       img->path);
}

static const struct img_format checked_format = {
	.name = "checked",
	.open = flat_open,
	.get_info = flat_info,
	.block_status = flat_status,
	.pread = flat_pread,
	.check = failing_check,
};

static struct img *open_drv(const struct img_format *drv, int flags)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	int fd = memfd_create("ops", 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(img_open_drv(drv, fd, "disk.img", flags, &img, &e) == 0,
		      "%s", e.msg);
	close(fd);
	return img;
}

/* r is -ENOTSUP and the message names the file, the format and what. */
static void expect_notsup(int r, const struct img_err *e, const char *fmt,
			  const char *what)
{
	ck_assert_int_eq(r, -ENOTSUP);
	ck_assert_int_eq(e->code, ENOTSUP);
	ck_assert_msg(strstr(e->msg, "disk.img") && strstr(e->msg, fmt) &&
		      strstr(e->msg, what), "message '%s' lacks '%s'", e->msg,
		      what);
}

START_TEST(read_only_driver_refuses_rdwr_open)
{
	struct img_err e = { 0 };
	struct img dummy, *img = &dummy;      /* must be reset to NULL */
	int fd = memfd_create("ops", 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(img_open_drv(&flat_format, fd, "disk.img", IMG_O_RDWR,
				      &img, &e), -EROFS);
	ck_assert_ptr_null(img);
	ck_assert_msg(strstr(e.msg, "disk.img") &&
		      strstr(e.msg, "flat format is read-only"), "%s", e.msg);
	close(fd);
}
END_TEST

START_TEST(read_only_driver_write_ops_are_enotsup)
{
	struct img *img = open_drv(&flat_format, 0);
	struct img_err e = { 0 };
	uint8_t b[16] = { 0 }, *hb = NULL;
	size_t hl = 0;

	ck_assert(!img_can_write(img));
	expect_notsup(img_pwrite(img, 0, b, sizeof(b), &e), &e, "flat",
		      "writing");
	expect_notsup(img_write_zeroes(img, 0, 512, &e), &e, "flat",
		      "writing zeroes");
	expect_notsup(img_grow(img, 2 * FLAT_SIZE, &e), &e, "flat",
		      "resizing");
	expect_notsup(img_make_empty(img, &e), &e, "flat", "emptying");
	/* No error object: the caller ignores the detail, nothing crashes. */
	ck_assert_int_eq(img_pwrite(img, 0, b, sizeof(b), NULL), -ENOTSUP);
	ck_assert_int_eq(img_make_empty(img, NULL), -ENOTSUP);
	/* The backing link cannot be rewritten either. */
	ck_assert(!img_can_set_backing(img));
	expect_notsup(img_backing_header(img, "b", "raw", &hb, &hl, &e), &e,
		      "flat", "backing link");
	ck_assert_ptr_null(hb);
	expect_notsup(img_set_backing(img, "b", "raw", &e), &e, "flat",
		      "backing link");
	/* Flush and batching have nothing to do. */
	ck_assert_int_eq(img_flush(img, &e), 0);
	ck_assert_int_eq(img_batch_begin(img, &e), 0);
	ck_assert_int_eq(img_batch_end(img, NULL), 0);
	img_close(img);
}
END_TEST

START_TEST(read_only_driver_info_check_create)
{
	struct img *img = open_drv(&flat_format, IMG_O_INSPECT);
	struct img_info in;
	struct img_check ck;
	struct img_create_opts o = { .size = 1 << 20 };
	struct img_err e = { 0 };

	ck_assert_int_eq(img_get_info(img, &in, &e), 0);
	ck_assert_str_eq(in.format, "flat");
	ck_assert_uint_eq(in.virtual_size, FLAT_SIZE);
	ck_assert_uint_eq(in.file_size, 0);     /* the empty memfd */
	ck_assert_ptr_nonnull(in.write_refusal);
	ck_assert_msg(strstr(in.write_refusal, "not write"), "%s",
		      in.write_refusal);
	ck_assert(!img_can_check(img));
	expect_notsup(img_check(img, &ck, &e), &e, "flat",
		      "consistency checks");
	ck_assert(!img_format_can_create(&flat_format));
	ck_assert_int_eq(img_create(&flat_format, "disk.img", &o, &e),
			 -ENOTSUP);
	ck_assert_msg(strstr(e.msg, "disk.img") && strstr(e.msg, "flat"),
		      "%s", e.msg);
	ck_assert_str_eq(img_format_name(img), "flat");
	ck_assert(!img_is_raw(img));
	img_close(img);
}
END_TEST

START_TEST(driver_without_backing_has_none)
{
	struct img *img = open_drv(&flat_format, 0);
	struct img_backing b = { "stale", "stale" };
	struct img_err e = { 0 };

	ck_assert_int_eq(img_get_backing(img, &b, &e), 0);
	ck_assert_ptr_null(b.name);
	ck_assert_ptr_null(b.format);
	img_close(img);
}
END_TEST

START_TEST(map_fallback_is_block_status_without_offset)
{
	struct img *img = open_drv(&flat_format, 0);
	struct img_map m;
	struct img_err e = { 0 };
	uint64_t pnum = 0;
	uint8_t buf[8];

	memset(&m, 0xff, sizeof(m));
	ck_assert_int_eq(img_map_status(img, 100, FLAT_SIZE, &pnum, &m, &e),
			 IMG_BS_DATA);
	ck_assert_uint_eq(pnum, FLAT_SIZE - 100);
	ck_assert(!m.offset_valid);
	ck_assert_uint_eq(m.offset, 0);
	ck_assert(!m.zero);
	ck_assert_str_eq(m.file, "disk.img");
	ck_assert_int_eq(img_pread(img, 250, buf, sizeof(buf), &e), 0);
	ck_assert_uint_eq(buf[0], 250);
	ck_assert_uint_eq(buf[7], 1);
	img_close(img);
}
END_TEST

START_TEST(driver_with_backing_and_extent)
{
	struct img *img = open_drv(&layered_format, 0);
	struct img_backing b;
	struct img_map m;
	struct img_err e = { 0 };
	uint64_t pnum;

	ck_assert_int_eq(img_get_backing(img, &b, &e), 0);
	ck_assert_str_eq(b.name, "base.flat");
	ck_assert_str_eq(b.format, "flat");
	/* Allocated half: the driver's own offset and file. */
	ck_assert_int_eq(img_map_status(img, 8, FLAT_SIZE, &pnum, &m, &e),
			 IMG_BS_DATA);
	ck_assert_uint_eq(pnum, FLAT_SIZE / 2 - 8);
	ck_assert(m.offset_valid);
	ck_assert_uint_eq(m.offset, 4096 + 8);
	ck_assert_str_eq(m.file, "extent-1.bin");
	/* The other half defers to the backing file, in the image itself. */
	ck_assert_int_eq(img_map_status(img, FLAT_SIZE / 2, FLAT_SIZE / 2,
					&pnum, &m, &e), IMG_BS_UNALLOC);
	ck_assert(!m.offset_valid);
	ck_assert_str_eq(m.file, "disk.img");
	ck_assert_int_eq(img_block_status(img, FLAT_SIZE - 1, 1, &pnum, &e),
			 IMG_BS_UNALLOC);
	closed = 0;
	img_close(img);
	ck_assert_int_eq(closed, 1);
}
END_TEST

/* A failed check hands back nothing to free (callers report the error
 * and never look at *out). */
START_TEST(failed_check_leaves_nothing)
{
	struct img *img = open_drv(&checked_format, 0);
	struct img_check ck;
	struct img_err e = { 0 };

	memset(&ck, 0xff, sizeof(ck));
	ck_assert(img_can_check(img));
	ck_assert_int_eq(img_check(img, &ck, &e), -EIO);
	ck_assert_int_eq(ck.nmsgs, 0);
	ck_assert_ptr_null(ck.msgs[0]);
	img_close(img);
}
END_TEST

/* raw keeps answering map with offset == guest offset, holes included. */
START_TEST(raw_map_offsets_are_guest_offsets)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	struct img_map m;
	uint64_t pnum;
	int fd = memfd_create("raw", 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	ck_assert_int_eq(pwrite(fd, "x", 1, 65536), 1);
	ck_assert_int_eq(img_open_fd(fd, "disk.raw", "raw", 0, &img, NULL,
				     &e), 0);
	close(fd);
	int r = img_map_status(img, 65536, 4096, &pnum, &m, &e);
	ck_assert_int_ge(r, 0);
	ck_assert(m.offset_valid);
	ck_assert_uint_eq(m.offset, 65536);
	ck_assert_str_eq(m.file, "disk.raw");
	ck_assert(img_is_raw(img));
	img_close(img);
}
END_TEST

/* Drivers learn whether the bytes of the file chose them. */
START_TEST(probed_open_is_flagged)
{
	struct img_err e = { 0 };
	struct img *img = NULL;
	bool probed = false;
	int fd = memfd_create("raw", 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(img_open_fd(fd, "disk.raw", NULL, 0, &img, &probed,
				     &e), 0);
	ck_assert(probed);
	ck_assert(img->flags & IMG_O_PROBED);
	img_close(img);
	ck_assert_int_eq(img_open_fd(fd, "disk.raw", "raw", 0, &img, &probed,
				     &e), 0);
	ck_assert(!probed);
	ck_assert(!(img->flags & IMG_O_PROBED));
	img_close(img);
	close(fd);
}
END_TEST

static Suite *img_ops_suite(void)
{
	Suite *s = suite_create("img_ops");
	TCase *tc = tcase_create("read-only drivers");

	tcase_add_test(tc, read_only_driver_refuses_rdwr_open);
	tcase_add_test(tc, read_only_driver_write_ops_are_enotsup);
	tcase_add_test(tc, read_only_driver_info_check_create);
	tcase_add_test(tc, driver_without_backing_has_none);
	tcase_add_test(tc, map_fallback_is_block_status_without_offset);
	tcase_add_test(tc, driver_with_backing_and_extent);
	tcase_add_test(tc, failed_check_leaves_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("built-in drivers");
	tcase_add_test(tc, raw_map_offsets_are_guest_offsets);
	tcase_add_test(tc, probed_open_is_flagged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(img_ops_suite());
}
