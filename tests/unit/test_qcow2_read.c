/* test_qcow2_read.c - the qcow2 read side: header validation, L1/L2 lookup,
 * block status, plain/zero/compressed reads (the chain: test_chain.c).
 *
 * Images are crafted byte by byte in a memfd (img_open_fd), so each test
 * controls exactly one field.  Images made by QEMU are covered by
 * tests/it/formats_read.sh, which also uses this binary's compare mode:
 *
 *   test_qcow2_read --compare IMAGE RAW
 *
 * reads IMAGE's guest view through core/graph/chain.c (chain_pread, in 1 MiB and
 * odd-sized pieces) and compares it byte for byte with RAW, which the script
 * made with `qemu-img convert -O raw`.  Exit 0 when identical, 1 with the
 * first differing offset otherwise.  This keeps a debugging dump out of the
 * product's CLI while still judging our reader against qemu-img.
 */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"
#include "formats/format.h"
#include "formats/qcow2/qcow2_int.h"
#include "qcow2_craft.h"

/* ---- header validation --------------------------------------------------- */

struct hcase {
	const char *name;
	size_t off;
	int width;             /* 1, 4 or 8 */
	uint64_t val;
	const char *want;
};

static const struct hcase hcases[] = {
	{ "magic", 0, 4, 0x514649fa, "field 'magic'" },
	{ "version 1", 4, 4, 1, "field 'version' is 1; must be 2 or 3" },
	{ "version 4", 4, 4, 4, "field 'version' is 4" },
	{ "cluster_bits 8", 20, 4, 8, "field 'cluster_bits' is 8; must be 9..21" },
	{ "cluster_bits 25", 20, 4, 25, "field 'cluster_bits' is 25; must be 9..21" },
	{ "header_length 100", 100, 4, 100, "field 'header_length' is 100" },
	{ "header_length odd", 100, 4, 108, "field 'header_length' is 108" },
	{ "header_length > cluster", 100, 4, CS + 8, "field 'header_length'" },
	{ "backing_file_offset in header", 8, 8, 64, "field 'backing_file_offset' is 64" },
	{ "backing_file_offset past cluster", 8, 8, CS, "field 'backing_file_offset'" },
	{ "crypt_method", 32, 4, 3, "field 'crypt_method' is 3" },
	{ "l1_size too small", 36, 4, 0, "L1 table is too small" },
	{ "l1_size over cap", 36, 4, 5u << 20, "field 'l1_size' is 5242880" },
	{ "l1_table_offset unaligned", 40, 8, 3 * CS + 512, "field 'l1_table_offset'" },
	{ "l1_table_offset past EOF", 40, 8, 1ull << 40, "field 'l1_table_offset'" },
	{ "l1_table_offset zero", 40, 8, 0, "field 'l1_table_offset' is 0" },
	{ "refcount_table_offset unaligned", 48, 8, CS + 8, "field 'refcount_table_offset'" },
	{ "refcount_table_offset past EOF", 48, 8, 1ull << 40, "field 'refcount_table_offset'" },
	{ "refcount_table_clusters 0", 56, 4, 0, "field 'refcount_table_clusters' is 0" },
	{ "refcount_table_clusters huge", 56, 4, 129, "field 'refcount_table_clusters' is 129" },
	{ "nb_snapshots", 60, 4, 70000, "field 'nb_snapshots' is 70000" },
	{ "snapshots_offset", 64, 8, 1000, "field 'snapshots_offset' is 1000" },
	{ "size", 24, 8, 1ull << 62, "field 'size'" },
	{ "unknown incompat", 72, 8, 1ull << 20, "unknown incompatible feature bit 20" },
	{ "compression bit without type", 72, 8, QCOW2_INCOMPAT_COMPRESSION, "field 'compression_type' is 0" },
	{ "compression type without bit", 104, 1, 1, "field 'compression_type' is 1" },
	{ "compression type 2", 104, 1, 2, "field 'compression_type' is 2" },
	{ "refcount_order", 96, 4, 7, "field 'refcount_order' is 7" },
	{ "data file bit without name", 72, 8, QCOW2_INCOMPAT_DATA_FILE, "external data file" },
};

START_TEST(header_field_refused)
{
	const struct hcase *h = &hcases[_i];
	struct craft c = make_v3(64 << 20);

	switch (h->width) {
	case 1: c.b[h->off] = (uint8_t)h->val; break;
	case 4: p32(&c, h->off, (uint32_t)h->val); break;
	default: p64(&c, h->off, h->val); break;
	}
	expect_refused(&c, IMG_O_INSPECT, h->want);
}
END_TEST

START_TEST(header_valid_opens)
{
	struct craft c = make_v3(64 << 20);
	struct img *img = expect_open(&c, 0);
	struct img_info in;
	struct img_err e;

	ck_assert_int_eq(img->drv->get_info(img, &in, &e), 0);
	ck_assert_uint_eq(in.virtual_size, 64 << 20);
	ck_assert_uint_eq(in.cluster_size, CS);
	ck_assert_int_eq(in.version, 3);
	ck_assert_int_eq(in.refcount_bits, 16);
	ck_assert_ptr_null(in.write_refusal);
	img_close(img);
	free(c.b);
}
END_TEST

START_TEST(header_extl2_needs_16k)
{
	struct craft c = make_v3(1 << 20);

	p32(&c, 20, 13);
	p64(&c, 72, QCOW2_INCOMPAT_EXTL2);
	expect_refused(&c, 0, "field 'cluster_bits' is 13; extended L2");
}
END_TEST

START_TEST(header_backing_name)
{
	struct craft c = make_v3(1 << 20);
	struct img_backing b;
	struct img_err e;

	/* backing-format extension, end marker, then the name */
	p32(&c, 112, QCOW2_EXT_BACKING_FMT);
	p32(&c, 116, 5);
	memcpy(c.b + 120, "qcow2", 5);
	p64(&c, 8, 136);
	p32(&c, 16, 8);
	memcpy(c.b + 136, "base.img", 8);
	struct img *img = expect_open(&c, 0);
	ck_assert_int_eq(img->drv->get_backing(img, &b, &e), 0);
	ck_assert_str_eq(b.name, "base.img");
	ck_assert_str_eq(b.format, "qcow2");
	img_close(img);
	free(c.b);

	c = make_v3(1 << 20);
	p64(&c, 8, 136);
	p32(&c, 16, 1024);
	expect_refused(&c, 0, "field 'backing_file_size' is 1024");

	c = make_v3(1 << 20);
	p64(&c, 8, 136);
	p32(&c, 16, 8);
	memcpy(c.b + 136, "ba\0e.img", 8);
	expect_refused(&c, 0, "NUL");

	c = make_v3(1 << 20);
	p64(&c, 8, CS - 4);
	p32(&c, 16, 8);
	expect_refused(&c, 0, "field 'backing_file_size' is 8");

	/* the extension area must end before the name */
	c = make_v3(1 << 20);
	p32(&c, 112, 0x12345678);
	p32(&c, 116, 40);
	p64(&c, 8, 136);
	p32(&c, 16, 4);
	memcpy(c.b + 136, "base", 4);
	expect_refused(&c, 0, "runs past the end of the extension area");
}
END_TEST

START_TEST(header_extensions)
{
	struct craft c = make_v3(1 << 20);

	p32(&c, 112, QCOW2_EXT_BACKING_FMT);
	p32(&c, 116, 16);
	memset(c.b + 120, 'x', 16);
	expect_refused(&c, 0, "length 16; must be 1..15");

	c = make_v3(1 << 20);
	p32(&c, 112, 0x77);
	p32(&c, 116, 0);
	p32(&c, 120, 0x77);
	p32(&c, 124, 0);
	expect_refused(&c, 0, "appears more than once");

	c = make_v3(1 << 20);
	for (uint32_t i = 0; i < 1100; i++) {
		p32(&c, 112 + i * 8, 0x1000 + i);
		p32(&c, 116 + i * 8, 0);
	}
	expect_refused(&c, 0, "more than 1024 records");

	c = make_v3(1 << 20);
	p32(&c, 112, 0x12345678);
	p32(&c, 116, 0x7fffffff);
	expect_refused(&c, 0, "length 2147483647 runs past");

	/* unknown extensions are kept verbatim, in order */
	c = make_v3(1 << 20);
	p32(&c, 112, 0xabcdef01);
	p32(&c, 116, 3);
	memcpy(c.b + 120, "xyz", 3);
	struct img *img = expect_open(&c, 0);
	struct qcow2_state *s = img->priv;
	ck_assert_int_eq(s->nexts, 1);
	ck_assert_uint_eq(s->exts[0].type, 0xabcdef01);
	ck_assert_uint_eq(s->exts[0].len, 3);
	ck_assert_mem_eq(s->exts[0].data, "xyz", 3);
	img_close(img);
	free(c.b);
}
END_TEST

START_TEST(header_unknown_incompat_named_from_table)
{
	struct craft c = make_v3(1 << 20);

	p64(&c, 72, 1ull << 20);
	p32(&c, 112, QCOW2_EXT_FEATURES);
	p32(&c, 116, 48);
	c.b[120] = 0;
	c.b[121] = 20;
	memcpy(c.b + 122, "frobnicate", 10);
	expect_refused(&c, IMG_O_INSPECT,
		       "unknown incompatible feature bit 20 (\"frobnicate\")");
}
END_TEST

struct rcase {
	const char *name;
	size_t off;
	uint64_t val;
	const char *want;
};

static const struct rcase rcases[] = {
	{ "dirty", 72, QCOW2_INCOMPAT_DIRTY, "dirty" },
	{ "corrupt", 72, QCOW2_INCOMPAT_CORRUPT, "marked corrupt" },
	{ "snapshots", 60, 1, "internal snapshots" },
	{ "bitmaps", 88, QCOW2_AUTOCLEAR_BITMAPS,
	  "persistent bitmaps would go stale" },
};

START_TEST(write_refusal_policy)
{
	const struct rcase *rc = &rcases[_i];
	struct craft c = make_v3(1 << 20);
	struct img_info in;
	struct img_err e;

	if (rc->off == 60) {
		p32(&c, 60, 1);
		p64(&c, 64, 5 * CS);
		cr_need(&c, 6 * CS);
	} else {
		p64(&c, rc->off, rc->val);
	}
	/* read-only and inspecting opens work and report the reason */
	struct img *img = expect_open(&c, 0);
	ck_assert_int_eq(img->drv->get_info(img, &in, &e), 0);
	ck_assert_ptr_nonnull(in.write_refusal);
	ck_assert_msg(strstr(in.write_refusal, rc->want), "%s",
		      in.write_refusal);
	img_close(img);
	img = expect_open(&c, IMG_O_INSPECT);
	img_close(img);
	expect_refused(&c, IMG_O_RDWR, rc->want);
}
END_TEST

START_TEST(unknown_autoclear_is_writable)
{
	struct craft c = make_v3(1 << 20);
	struct img_info in;
	struct img_err e;

	p64(&c, 88, 1ull << 7);
	struct img *img = expect_open(&c, 0);
	ck_assert_int_eq(img->drv->get_info(img, &in, &e), 0);
	ck_assert_ptr_null(in.write_refusal);
	img_close(img);
	free(c.b);
}
END_TEST

/* ---- reads --------------------------------------------------------------- */

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t *out,
			  size_t cap)
{
	z_stream z = { 0 };

	ck_assert_int_eq(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				      -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = cap - z.avail_out;
	deflateEnd(&z);
	return len;
}

static uint64_t cdesc(uint64_t off, size_t clen)
{
	int shift = 62 - (CB - 8);
	uint64_t nsec = ((off & 511) + clen + 511) / 512;
	return QCOW2_OFLAG_COMPRESSED | ((nsec - 1) << shift) | off;
}

START_TEST(read_cluster_types)
{
	struct craft c = make_v3(8 * CS);
	uint8_t *pat = malloc(CS), *zb = malloc(CS + 1024), *buf = malloc(8 * CS);
	struct img_err e;
	uint64_t pnum;

	for (unsigned i = 0; i < CS; i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	/* 0: normal data at cluster 5 */
	cr_need(&c, 6 * CS);
	memcpy(c.b + 5 * CS, pat, CS);
	set_l2(&c, 0, (5ull * CS) | QCOW2_OFLAG_COPIED);
	/* 1: zero plain; 2: zero alloc (cluster 6 full of junk) */
	set_l2(&c, 1, QCOW2_OFLAG_ZERO);
	cr_need(&c, 7 * CS);
	memset(c.b + 6 * CS, 0xee, CS);
	set_l2(&c, 2, (6ull * CS) | QCOW2_OFLAG_ZERO | QCOW2_OFLAG_COPIED);
	/* 3: compressed, at an unaligned offset in cluster 7 */
	size_t clen = deflate_raw(pat, CS, zb, CS + 1024);
	cr_need(&c, 7 * CS + 100 + clen);
	memcpy(c.b + 7 * CS + 100, zb, clen);
	set_l2(&c, 3, cdesc(7ull * CS + 100, clen));
	/* 4..7 unallocated */
	struct img *img = expect_open(&c, 0);

	ck_assert_int_eq(img->drv->block_status(img, 0, 8 * CS, &pnum, &e),
			 IMG_BS_DATA);
	ck_assert_uint_eq(pnum, CS);
	ck_assert_int_eq(img->drv->block_status(img, CS, 7 * CS, &pnum, &e),
			 IMG_BS_ZERO);
	ck_assert_uint_eq(pnum, 2 * CS);
	ck_assert_int_eq(img->drv->block_status(img, 3 * CS, 5 * CS, &pnum,
						&e), IMG_BS_DATA);
	ck_assert_uint_eq(pnum, CS);
	ck_assert_int_eq(img->drv->block_status(img, 4 * CS + 5, 4 * CS - 5,
						&pnum, &e), IMG_BS_UNALLOC);
	ck_assert_uint_eq(pnum, 4 * CS - 5);

	memset(buf, 0x55, 8 * CS);
	ck_assert_msg(img->drv->pread(img, 0, buf, 8 * CS, &e) == 0, "%s",
		      e.msg);
	ck_assert_mem_eq(buf, pat, CS);
	for (unsigned i = CS; i < 3 * CS; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_mem_eq(buf + 3 * CS, pat, CS);
	for (unsigned i = 4 * CS; i < 8 * CS; i++)
		ck_assert_uint_eq(buf[i], 0);
	/* unaligned piece across the compressed cluster boundary */
	ck_assert_int_eq(img->drv->pread(img, 3 * CS + 1000, buf, 5000, &e), 0);
	ck_assert_mem_eq(buf, pat + 1000, 5000);
	img_close(img);
	free(c.b);
	free(pat);
	free(zb);
	free(buf);
}
END_TEST

/* Open, then expect a read at off to fail with want in the message. */
static void expect_read_error(struct craft *c, uint64_t off, const char *want)
{
	struct img *img = expect_open(c, IMG_O_INSPECT);
	struct img_err e = { 0 };
	uint8_t buf[4096];

	ck_assert_int_lt(img->drv->pread(img, off, buf, sizeof(buf), &e), 0);
	ck_assert_msg(strstr(e.msg, "crafted.qcow2") && strstr(e.msg, want),
		      "message '%s' lacks '%s'", e.msg, want);
	img_close(img);
	free(c->b);
}

START_TEST(read_bad_entries)
{
	struct craft c;

	c = make_v3(8 * CS);
	set_l2(&c, 1, (5ull * CS) | 0x2);
	expect_read_error(&c, CS, "reserved bits");

	c = make_v3(8 * CS);
	cr_need(&c, 6 * CS);
	set_l2(&c, 1, (5ull * CS + 512) | QCOW2_OFLAG_COPIED);
	expect_read_error(&c, CS, "not cluster aligned");

	c = make_v3(8 * CS);
	set_l2(&c, 1, (1ull << 40) | QCOW2_OFLAG_COPIED);
	expect_read_error(&c, CS, "past the end of the file");

	c = make_v3(8 * CS);
	set_l2(&c, 2, cdesc(1ull << 40, 100));
	expect_read_error(&c, 2 * CS, "past the end of the file");

	/* garbage instead of deflate data */
	c = make_v3(8 * CS);
	cr_need(&c, 6 * CS);
	memset(c.b + 5 * CS, 0xff, 2048);
	set_l2(&c, 2, cdesc(5ull * CS, 2048));
	expect_read_error(&c, 2 * CS, "corrupt or truncated");

	/* L1 entries: reserved bits, refused at open unless inspecting */
	c = make_v3(8 * CS);
	p64(&c, 3 * CS, (4ull * CS) | 1);
	expect_read_error(&c, 0, "L1 entry 0");
	c = make_v3(8 * CS);
	p64(&c, 3 * CS, (4ull * CS) | 1);
	expect_refused(&c, 0, "L1 entry 0");
	c = make_v3(8 * CS);
	p64(&c, 3 * CS, 1ull << 40);
	expect_refused(&c, 0, "past the end of the file");
}
END_TEST

/* A stream that inflates to far more than one cluster stops at one. */
START_TEST(read_zlib_bomb_bounded)
{
	struct craft c = make_v3(8 * CS);
	size_t big = 64u << 20;
	uint8_t *zeros = calloc(1, big), *zb = malloc(1 << 20);
	uint8_t buf[CS];
	struct img_err e;

	size_t clen = deflate_raw(zeros, big, zb, 1 << 20);
	/* cap to what a descriptor can express (256 sectors at 64K) */
	ck_assert_uint_lt(clen, 255 * 512);
	cr_need(&c, 5 * CS + clen);
	memcpy(c.b + 5 * CS, zb, clen);
	set_l2(&c, 0, cdesc(5ull * CS, clen));
	struct img *img = expect_open(&c, 0);
	memset(buf, 1, sizeof(buf));
	ck_assert_int_eq(img->drv->pread(img, 0, buf, CS, &e), 0);
	for (unsigned i = 0; i < CS; i++)
		ck_assert_uint_eq(buf[i], 0);
	img_close(img);
	free(c.b);
	free(zeros);
	free(zb);
}
END_TEST

/* The largest image the format can describe maps in bounded time. */
START_TEST(huge_sparse_image_status_fast)
{
	struct craft c = { 0 };
	uint64_t size = 1ull << 61, pnum;
	uint32_t l1 = 1u << 22;            /* 2 MiB clusters: 512 GiB each */
	struct img_err e;
	struct timespec t0, t1;

	cr_need(&c, 112);
	p32(&c, 0, QCOW2_MAGIC);
	p32(&c, 4, 3);
	p32(&c, 20, 21);
	p64(&c, 24, size);
	p32(&c, 36, l1);
	p64(&c, 40, 2ull << 21);
	p64(&c, 48, 1ull << 21);
	p32(&c, 56, 1);
	p32(&c, 96, 4);
	p32(&c, 100, 112);
	int fd = memfd_of(&c);
	ck_assert_int_eq(ftruncate(fd, (2 << 21) + (off_t)l1 * 8), 0);
	struct img *img;
	ck_assert_int_eq(img_open_fd(fd, "huge.qcow2", NULL, 0, &img, NULL, &e),
			 0);
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(img->drv->block_status(img, 0, size, &pnum, &e),
			 IMG_BS_UNALLOC);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_uint_eq(pnum, size);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	img_close(img);
	free(c.b);
}
END_TEST

static Suite *qcow2_read_suite(void)
{
	Suite *s = suite_create("qcow2_read");
	TCase *tc = tcase_create("header");

	tcase_add_loop_test(tc, header_field_refused, 0,
			    sizeof(hcases) / sizeof(hcases[0]));
	tcase_add_test(tc, header_valid_opens);
	tcase_add_test(tc, header_extl2_needs_16k);
	tcase_add_test(tc, header_backing_name);
	tcase_add_test(tc, header_extensions);
	tcase_add_test(tc, header_unknown_incompat_named_from_table);
	tcase_add_loop_test(tc, write_refusal_policy, 0,
			    sizeof(rcases) / sizeof(rcases[0]));
	tcase_add_test(tc, unknown_autoclear_is_writable);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, read_cluster_types);
	tcase_add_test(tc, read_bad_entries);
	tcase_add_test(tc, read_zlib_bomb_bounded);
	tcase_add_test(tc, huge_sparse_image_status_fast);
	suite_add_tcase(s, tc);

	return s;
}

/* --compare IMAGE RAW: see the top of this file. */
static int compare_mode(const char *image, const char *raw)
{
	struct chain *ch = NULL;
	struct img_err e;
	size_t step = 1 << 20;
	uint8_t *a = malloc(step), *b = malloc(step);
	int fd = open(raw, O_RDONLY);
	uint64_t off = 0, size;
	int odd = 0, rc = 0;

	if (!a || !b || fd < 0) {
		perror(raw);
		rc = 2;
		goto out;
	}
	if (chain_open(image, NULL, IMG_O_INSPECT, 0, 0, &ch, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		rc = 1;
		goto out;
	}
	size = ch->layer[0]->virtual_size;
	if ((uint64_t)lseek(fd, 0, SEEK_END) != size) {
		fprintf(stderr, "size differs: %llu vs raw %lld\n",
			(unsigned long long)size, (long long)lseek(fd, 0, SEEK_END));
		rc = 1;
		goto out;
	}
	while (off < size) {
		/* alternate whole MiB reads with odd-sized ones so that reads
		 * start and end inside clusters and subclusters */
		size_t n = odd++ % 2 ? 1000003 % step : step;
		if (n > size - off)
			n = (size_t)(size - off);
		if (chain_pread(ch, 0, off, a, n, &e) < 0) {
			fprintf(stderr, "%s\n", e.msg);
			rc = 1;
			goto out;
		}
		if (pread(fd, b, n, (off_t)off) != (ssize_t)n) {
			perror("pread raw");
			rc = 2;
			goto out;
		}
		if (memcmp(a, b, n)) {
			size_t i = 0;
			while (a[i] == b[i])
				i++;
			fprintf(stderr, "differs at guest offset %llu: 0x%02x vs "
				"raw 0x%02x\n", (unsigned long long)(off + i),
				a[i], b[i]);
			rc = 1;
			goto out;
		}
		off += n;
	}
out:
	chain_close(ch);
	if (fd >= 0)
		close(fd);
	free(a);
	free(b);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--compare"))
		return compare_mode(argv[2], argv[3]);

	return ut_run(qcow2_read_suite());
}
