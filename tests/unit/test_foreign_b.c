/* test_foreign_b.c - the helpers of the read-only foreign-format drivers
 * (formats/foreign.c), probing by head and tail, and the read-only rule.
 * The drivers' reads are judged against qemu-img in
 * tests/it/formats_foreign_b*.sh; these are the edge cases qemu-img does
 * not reach. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "formats/foreign.h"
#include "formats/img.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

START_TEST(utf16_names)
{
	/* "a", U+00E9, U+1F600 (a surrogate pair), then NUL and junk */
	static const uint8_t le[] = { 'a', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde,
				      0, 0, 'z', 0 };
	static const uint8_t be[] = { 0, 'a', 0, '/', 0, 'b' };
	static const uint8_t lone[] = { 0x00, 0xdc, 'a', 0 };
	static const uint8_t high_end[] = { 'a', 0, 0x3d, 0xd8 };
	static const uint8_t ctl[] = { 'a', 0, '\n', 0 };
	char out[16];

	ck_assert_int_eq(fr_utf16_to_utf8(le, sizeof(le), false, out,
					  sizeof(out)), 0);
	ck_assert_str_eq(out, "a\xc3\xa9\xf0\x9f\x98\x80");
	ck_assert_int_eq(fr_utf16_to_utf8(be, sizeof(be), true, out,
					  sizeof(out)), 0);
	ck_assert_str_eq(out, "a/b");
	ck_assert_int_eq(fr_utf16_to_utf8(lone, sizeof(lone), false, out,
					  sizeof(out)), -EINVAL);
	ck_assert_int_eq(fr_utf16_to_utf8(high_end, sizeof(high_end), false,
					  out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(fr_utf16_to_utf8(ctl, sizeof(ctl), false, out,
					  sizeof(out)), -EINVAL);
	/* "a/b" needs 4 bytes with the NUL */
	ck_assert_int_eq(fr_utf16_to_utf8(be, sizeof(be), true, out, 3),
			 -ENAMETOOLONG);
	char win[] = ".\\dir\\a.vhd";
	fr_windows_path(win);
	ck_assert_str_eq(win, "./dir/a.vhd");
}
END_TEST

START_TEST(inflate_exact_length_only)
{
	uint8_t plain[4096], packed[8192], out[8192];
	uLongf plen = sizeof(packed);

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7 / 13);
	ck_assert_int_eq(compress(packed, &plen, plain, sizeof(plain)), Z_OK);
	ck_assert_int_eq(fr_inflate(packed, plen, out, sizeof(plain)), 0);
	ck_assert(!memcmp(out, plain, sizeof(plain)));
	/* more output than the stream holds, or less (a bomb stops) */
	ck_assert_int_eq(fr_inflate(packed, plen, out, sizeof(plain) + 1), -EIO);
	ck_assert_int_eq(fr_inflate(packed, plen, out, sizeof(plain) - 1), -EIO);
	/* cut short, and not zlib at all */
	ck_assert_int_eq(fr_inflate(packed, plen / 2, out, sizeof(plain)), -EIO);
	ck_assert_int_eq(fr_inflate(plain, 64, out, sizeof(plain)), -EIO);
}
END_TEST

/* A valid fixed-disk VHD footer in f[0, 512). */
static void vhd_footer(uint8_t *f)
{
	uint32_t sum = 0;

	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	put_be32(f + 60, 2);
	for (int i = 0; i < 512; i++)
		sum += f[i];
	put_be32(f + 64, ~sum);
}

START_TEST(probe_by_head_and_tail)
{
	uint8_t head[512] = { 0 }, tail[1024] = { 0 };

	ck_assert_str_eq(img_format_probe_ends(head, sizeof(head), tail,
					       sizeof(tail))->name, "raw");
	/* a fixed VHD: only its footer, at the end, says so */
	vhd_footer(tail + 512);
	ck_assert_str_eq(img_format_probe_ends(head, sizeof(head), tail,
					       sizeof(tail))->name, "vpc");
	ck_assert_str_eq(img_format_probe(head, sizeof(head))->name, "raw");
	/* a footer whose checksum is wrong is guest data */
	tail[600] ^= 1;
	ck_assert_str_eq(img_format_probe_ends(head, sizeof(head), tail,
					       sizeof(tail))->name, "raw");
	/* a DMG's koly trailer */
	memset(tail, 0, sizeof(tail));
	memcpy(tail + 512, "koly", 4);
	put_be32(tail + 516, 4);
	put_be32(tail + 520, 512);
	ck_assert_str_eq(img_format_probe_ends(head, sizeof(head), tail,
					       sizeof(tail))->name, "dmg");
	/* a magic at the head wins over a trailer */
	memcpy(head, "QFI\xfb\0\0\0\3", 8);
	ck_assert_str_eq(img_format_probe_ends(head, sizeof(head), tail,
					       sizeof(tail))->name, "qcow2");
}
END_TEST

/* A file shorter than a header is probed zero-padded, as QEMU probes:
 * a vdi, parallels or bochs header cut short names its format (its open
 * then reports the truncation) instead of passing for raw. */
START_TEST(probe_short_file_padded)
{
	uint8_t h[100] = { 0 };

	put_le32(h + 64, 0xbeda107f);
	ck_assert_str_eq(img_format_probe(h, sizeof(h))->name, "vdi");
	memset(h, 0, sizeof(h));
	memcpy(h, "WithoutFreeSpace", 16);
	put_le32(h + 16, 2);
	ck_assert_str_eq(img_format_probe(h, 40)->name, "parallels");
	ck_assert_str_eq(img_format_probe(h, 0)->name, "raw");
	/* a qcow v1 magic alone has version 0 after padding: raw, as QEMU */
	ck_assert_str_eq(img_format_probe((const uint8_t *)"QFI\xfb", 4)->name,
			 "raw");
}
END_TEST

/* A 1 MiB VDI with its one block unallocated. */
static void write_vdi(const char *path)
{
	uint8_t f[1024] = { 0 };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	put_le32(f + 64, 0xbeda107f);
	put_le32(f + 68, 0x00010001);
	put_le32(f + 340, 512);
	put_le32(f + 344, 1024);
	put_le32(f + 360, 512);
	put_le32(f + 368, 1 << 20);
	put_le32(f + 376, 1 << 20);
	put_le32(f + 384, 1);
	put_le32(f + 512, 0xffffffff);
	ck_assert_int_eq(write(fd, f, sizeof(f)), (ssize_t)sizeof(f));
	close(fd);
}

START_TEST(read_only_formats_refuse_writing)
{
	char path[4096];
	struct img_err e = { 0 };
	struct img *img;
	uint8_t buf[4096];
	uint64_t pnum;

	snprintf(path, sizeof(path), "%s/d.vdi", ut_tmpdir);
	write_vdi(path);
	ck_assert_int_eq(img_open(path, NULL, IMG_O_RDWR, &img, NULL, &e),
			 -EROFS);
	ck_assert_ptr_nonnull(strstr(e.msg, path));
	ck_assert_ptr_nonnull(strstr(e.msg, "read-only"));
	ck_assert_int_eq(img_open(path, NULL, IMG_O_INSPECT, &img, NULL, &e), 0);
	ck_assert_str_eq(img_format_name(img), "vdi");
	ck_assert(!img_can_write(img) && !img_can_set_backing(img));
	ck_assert_int_eq(img_pwrite(img, 0, buf, 512, &e), -ENOTSUP);
	ck_assert_uint_eq(img->virtual_size, 1 << 20);
	ck_assert_int_eq(img_block_status(img, 0, 1 << 20, &pnum, &e),
			 IMG_BS_ZERO);
	ck_assert_uint_eq(pnum, 1 << 20);
	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(img_pread(img, 4000, buf, sizeof(buf), &e), 0);
	ck_assert_int_eq(buf[0] | buf[4095], 0);
	/* reads end at the virtual size */
	ck_assert_int_eq(img_pread(img, (1 << 20) - 100, buf, 200, &e),
			 -EINVAL);
	img_close(img);
}
END_TEST

static Suite *foreign_suite(void)
{
	Suite *s = suite_create("foreign_b");
	TCase *tc = tcase_create("helpers");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, utf16_names);
	tcase_add_test(tc, inflate_exact_length_only);
	tcase_add_test(tc, probe_by_head_and_tail);
	tcase_add_test(tc, probe_short_file_padded);
	tcase_add_test(tc, read_only_formats_refuse_writing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(foreign_suite());
}
