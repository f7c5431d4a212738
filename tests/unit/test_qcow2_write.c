/* test_qcow2_write.c - the qcow2 write side (qcow2_alloc.c,
 * qcow2_refcount.c, qcow2_create.c), judged by qemu-img: after every
 * scenario `qemu-img compare` against the expected guest bytes and
 * `qemu-img check` (0 errors, 0 leaks) must both pass.
 *
 * Each test keeps a model of the guest view (the expected bytes) next to
 * the image it writes through the driver.  IMGRAPH_LONG=1 runs more ops.
 */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/io/io.h"
#include "formats/img.h"
#include "formats/qcow2/qcow2_int.h"

static char dir[] = "/tmp/imgraph-qw.XXXXXX";
static uint64_t rng = 88172645463325252ull;

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	rng = 88172645463325252ull;
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(dir, "/tmp/imgraph-qw.XXXXXX");
}

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int nops(int n)
{
	const char *l = getenv("IMGRAPH_LONG");
	return l && *l == '1' ? n * 5 : n;
}

/* Run a shell command (in dir); returns its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	int n;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "cd %s && ", dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	n = system(cmd);
	return WIFEXITED(n) ? WEXITSTATUS(n) : 255;
}

static char *p(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

struct model {
	uint8_t *b;
	uint64_t size;
};

static void model_zero(struct model *m, uint64_t size)
{
	m->b = calloc(1, size);
	ck_assert_ptr_nonnull(m->b);
	m->size = size;
}

/* The guest view of an image (through its chain) per qemu-img. */
static void model_load(struct model *m, const char *img)
{
	FILE *f;

	ck_assert_int_eq(sh("qemu-img convert -U -O raw %s m.raw", img), 0);
	f = fopen(p("m.raw"), "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	m->size = (uint64_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	m->b = malloc(m->size ? m->size : 1);
	ck_assert_uint_eq(fread(m->b, 1, m->size, f), m->size);
	fclose(f);
}

static void model_grow(struct model *m, uint64_t size)
{
	m->b = realloc(m->b, size);
	ck_assert_ptr_nonnull(m->b);
	memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

/* Judge: qemu-img reads exactly the model and finds no errors/leaks. */
static void verify(const struct model *m, const char *img)
{
	FILE *f = fopen(p("exp.raw"), "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(m->b, 1, m->size, f), m->size);
	fclose(f);
	ck_assert_msg(sh("qemu-img compare -q -f raw -F qcow2 exp.raw %s", img)
		      == 0, "qemu-img compare differs for %s", img);
	ck_assert_msg(sh("qemu-img check -q %s >check.out 2>&1", img) == 0,
		      "qemu-img check not clean for %s", img);
	/* Our own check agrees (and is exercised on every scenario). */
	struct img *ci = NULL;
	struct img_check res;
	struct img_err e = { 0 };
	ck_assert_int_eq(img_open(p(img), "qcow2", IMG_O_INSPECT, &ci, NULL,
				  &e), 0);
	ck_assert_int_eq(qcow2_check(ci, &res, &e), 0);
	img_close(ci);
	ck_assert_msg(res.corruptions == 0 && res.leaks == 0 &&
		      res.check_errors == 0, "our check of %s: %s", img,
		      res.nmsgs ? res.msgs[0] : "?");
	img_check_free(&res);
}

static struct img *open_rw(const char *name)
{
	struct img *img = NULL;
	struct img_err e = { 0 };
	int r = img_open(p(name), "qcow2", IMG_O_RDWR, &img, NULL, &e);

	ck_assert_msg(r == 0, "open %s: %s", name, e.msg);
	return img;
}

static void w(struct img *img, struct model *m, uint64_t off, uint64_t len)
{
	struct img_err e = { 0 };
	uint8_t *buf = malloc(len);
	uint64_t v = rnd();

	ck_assert_ptr_nonnull(buf);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(v + i * 7 + (i >> 9));
	int r = qcow2_pwrite(img, off, buf, len, &e);
	ck_assert_msg(r == 0, "pwrite %llu+%llu: %s", (unsigned long long)off,
		      (unsigned long long)len, e.msg);
	memcpy(m->b + off, buf, len);
	free(buf);
}

static void z(struct img *img, struct model *m, uint64_t off, uint64_t len)
{
	struct img_err e = { 0 };
	int r = qcow2_write_zeroes(img, off, len, &e);

	ck_assert_msg(r == 0, "write_zeroes %llu+%llu: %s",
		      (unsigned long long)off, (unsigned long long)len, e.msg);
	memset(m->b + off, 0, len);
}

/* Random unaligned writes and zeroes over an image without backing file. */
static void random_ops(struct img *img, struct model *m, uint32_t cs, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t off = rnd() % m->size, len;
		switch (rnd() % 4) {
		case 0: len = 1 + rnd() % 4096; break;
		case 1: len = (1 + rnd() % 4) * cs; off -= off % cs; break;
		case 2: len = 1 + rnd() % (3 * (uint64_t)cs); break;
		default: len = 1 + rnd() % (256 * 1024); break;
		}
		if (off + len > m->size)
			len = m->size - off;
		if (rnd() % 4 == 0)
			z(img, m, off, len);
		else
			w(img, m, off, len);
	}
}

static void hdr_read(const char *name, unsigned off, uint8_t *b, size_t n)
{
	int fd = open(p(name), O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, b, n, off), (ssize_t)n);
	close(fd);
}

static uint64_t hdr64(const char *name, unsigned off)
{
	uint8_t b[8];

	hdr_read(name, off, b, sizeof(b));
	return qcow2_be64(b);
}

static uint32_t hdr32(const char *name, unsigned off)
{
	uint8_t b[4];

	hdr_read(name, off, b, sizeof(b));
	return qcow2_be32(b);
}

static void create(const char *name, uint64_t size, uint32_t cs, int compat,
		   int extl2, int rbits)
{
	struct img_create_opts o = { .size = size, .cluster_size = cs,
				     .compat = compat, .extended_l2 = extl2,
				     .refcount_bits = rbits };
	struct img_err e = { 0 };

	ck_assert_msg(qcow2_create(p(name), &o, &e) == 0, "create: %s", e.msg);
}

/* Refcount entry packing: big-endian from 8 bits up, LSB-first below
 * (1-bit refcounts: clusters 0-8 at refcount 1 are "ff 01"). */
START_TEST(refcount_entry_packing)
{
	uint8_t b[64];

	memset(b, 0, sizeof(b));
	for (int i = 0; i < 9; i++)
		qcow2_rc_entry_put(b, 1, (uint64_t)i, 1);
	ck_assert_uint_eq(b[0], 0xff);
	ck_assert_uint_eq(b[1], 0x01);
	for (int bits = 1; bits <= 64; bits *= 2) {
		uint64_t max = bits == 64 ? ~0ull : (1ull << bits) - 1;
		uint64_t n = sizeof(b) * 8 / (uint64_t)bits;
		memset(b, 0xa5, sizeof(b));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_entry_put(b, bits, i, (i * 0x9e3779b97f4a7c15ull) & max);
		for (uint64_t i = 0; i < n; i++)
			ck_assert_uint_eq(qcow2_rc_entry_get(b, bits, i),
					  (i * 0x9e3779b97f4a7c15ull) & max);
	}
	memset(b, 0, sizeof(b));
	qcow2_rc_entry_put(b, 16, 1, 0x0102);
	ck_assert_uint_eq(b[2], 0x01);
	ck_assert_uint_eq(b[3], 0x02);
}
END_TEST

START_TEST(create_matrix_passes_qemu_check)
{
	static const struct {
		uint32_t cs; int compat, extl2, rbits;
		const char *want;
	} c[] = {
		{ 0, 0, 0, 0, "\"compat\": \"1.1\"" },
		{ 512, 3, 0, 16, "\"cluster-size\": 512" },
		{ 65536, 2, 0, 16, "\"compat\": \"0.10\"" },
		{ 512, 2, 0, 16, "\"cluster-size\": 512" },
		{ 16384, 3, 1, 16, "\"extended-l2\": true" },
		{ 2u << 20, 3, 1, 64, "\"refcount-bits\": 64" },
		{ 4096, 3, 0, 1, "\"refcount-bits\": 1" },
		{ 4096, 3, 0, 2, "\"refcount-bits\": 2" },
		{ 4096, 3, 0, 4, "\"refcount-bits\": 4" },
		{ 4096, 3, 0, 8, "\"refcount-bits\": 8" },
		{ 1024, 3, 0, 32, "\"refcount-bits\": 32" },
		{ 512, 3, 0, 64, "\"refcount-bits\": 64" },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t sizes[] = { 0, 1000, 64ull << 20, 1ull << 40 };
		for (int k = 0; k < 4; k++) {
			if (c[i].cs < 4096 && k == 3)
				continue;       /* L1 over QEMU's cap */
			create("c.qcow2", sizes[k], c[i].cs, c[i].compat,
			       c[i].extl2, c[i].rbits);
			ck_assert_msg(sh("qemu-img check -q c.qcow2") == 0,
				      "case %zu size %d", i, k);
			ck_assert_msg(sh("qemu-img info --output=json c.qcow2 |"
					 " grep -q '%s'", c[i].want) == 0,
				      "case %zu: no %s", i, c[i].want);
			ck_assert_int_eq(sh("qemu-img info --output=json "
					    "c.qcow2 | grep -q '\"virtual-size"
					    "\": %llu'", (unsigned long long)
					    ((sizes[k] + 511) & ~511ull)), 0);
		}
	}
}
END_TEST

START_TEST(create_refuses_bad_options)
{
	struct img_err e = { 0 };
	struct img_create_opts o = { .size = 1 << 20 };

	o.cluster_size = 1000;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	o.cluster_size = 8192;
	o.extended_l2 = 1;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "16384"));
	o.cluster_size = 0;
	o.compat = 2;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	o.extended_l2 = 0;
	o.refcount_bits = 8;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "1.1"));
	o.compat = 3;
	o.refcount_bits = 3;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	o.refcount_bits = 0;
	o.backing = "b.qcow2";
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "Backing file specified without "
				     "backing format"));
	o.backing_fmt = "qcow2";
	o.cluster_size = 512;
	char name[600];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	o.backing = name;
	ck_assert_int_eq(qcow2_create(p("x"), &o, &e), -ENOSPC);
	ck_assert_int_eq(access(p("x"), F_OK), -1);     /* nothing created */
}
END_TEST

START_TEST(random_v3_64k)
{
	struct model m;
	struct img *img;

	create("a.qcow2", 32 << 20, 0, 3, 0, 16);
	model_zero(&m, 32 << 20);
	img = open_rw("a.qcow2");
	random_ops(img, &m, 65536, nops(150));
	ck_assert_int_eq(qcow2_flush(img, NULL), 0);
	img_close(img);
	verify(&m, "a.qcow2");
	free(m.b);
}
END_TEST

START_TEST(growth_512_refcount64)
{
	struct model m;
	struct img *img;
	struct img_err e = { 0 };
	uint64_t l1_before, reft_before;

	create("g.qcow2", 1 << 20, 512, 3, 0, 64);
	model_zero(&m, 1 << 20);
	l1_before = hdr64("g.qcow2", QCOW2_HDR_L1_TABLE_OFFSET);
	reft_before = hdr64("g.qcow2", QCOW2_HDR_REFCOUNT_TABLE_OFFSET);
	img = open_rw("g.qcow2");
	random_ops(img, &m, 512, nops(100));
	ck_assert_msg(qcow2_grow(img, 64 << 20, &e) == 0, "%s", e.msg);
	model_grow(&m, 64 << 20);
	ck_assert_uint_eq(img->virtual_size, 64 << 20);
	for (int i = 0; i < nops(1500); i++) {
		uint64_t off = (rnd() % (m.size / 512)) * 512;
		w(img, &m, off, 512);
	}
	random_ops(img, &m, 512, nops(50));
	img_close(img);
	/* The L1 moved, and the refcount table moved and grew. */
	ck_assert_uint_ne(hdr64("g.qcow2", QCOW2_HDR_L1_TABLE_OFFSET), l1_before);
	ck_assert_uint_ne(hdr64("g.qcow2", QCOW2_HDR_REFCOUNT_TABLE_OFFSET), reft_before);
	ck_assert_uint_gt(hdr32("g.qcow2", QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS),
			  1);
	verify(&m, "g.qcow2");
	free(m.b);
}
END_TEST

START_TEST(random_v2_512)
{
	struct model m;
	struct img *img;

	create("v2.qcow2", 8 << 20, 512, 2, 0, 16);
	model_zero(&m, 8 << 20);
	img = open_rw("v2.qcow2");
	random_ops(img, &m, 512, nops(300));
	img_close(img);
	verify(&m, "v2.qcow2");
	free(m.b);
}
END_TEST

START_TEST(random_extl2)
{
	struct model m;
	struct img *img;

	create("x.qcow2", 24 << 20, 32768, 3, 1, 16);
	model_zero(&m, 24 << 20);
	img = open_rw("x.qcow2");
	random_ops(img, &m, 32768, nops(200));
	img_close(img);
	verify(&m, "x.qcow2");
	free(m.b);
}
END_TEST

START_TEST(random_refcount1_unaligned_size)
{
	struct model m;
	struct img *img;

	/* 1-bit refcounts; a size that ends inside a cluster. */
	create("r1.qcow2", (5 << 20) + 1536, 4096, 3, 0, 1);
	model_zero(&m, (5 << 20) + 1536);
	img = open_rw("r1.qcow2");
	random_ops(img, &m, 4096, nops(200));
	w(img, &m, m.size - 700, 700);          /* the partial last cluster */
	img_close(img);
	verify(&m, "r1.qcow2");
	free(m.b);
}
END_TEST

/* Overlay over a qemu-made base: whole clusters and zeroes; a partial
 * write into an unallocated cluster is refused without changes. */
static void overlay_case(const char *opts, uint32_t cs, bool extl2)
{
	struct model m;
	struct img *img;
	struct img_err e = { 0 };
	uint8_t buf[100];
	int r;

	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 base.qcow2 16M && "
			    "qemu-io -f qcow2 -c 'write -P 0x5a 0 16M' "
			    "base.qcow2 >/dev/null && qemu-img create -q -f "
			    "qcow2 -b base.qcow2 -F qcow2 %s ov.qcow2",
			    opts), 0);
	model_load(&m, "ov.qcow2");
	img = open_rw("ov.qcow2");
	for (int i = 0; i < nops(60); i++) {
		uint64_t n = 1 + rnd() % 8, off = (rnd() % (m.size / cs)) * cs;
		if (off + n * cs > m.size)
			n = (m.size - off) / cs;
		if (rnd() % 3 == 0)
			z(img, &m, off, n * cs);
		else
			w(img, &m, off, n * cs);
	}
	/* Partial write into a cluster written above: fine. */
	w(img, &m, 0, cs);
	w(img, &m, 0, 1);
	z(img, &m, 0, 1);
	/* Find a cluster still unallocated in the overlay. */
	uint64_t hole = ~0ull, pnum;
	for (uint64_t off = 0; off < m.size; off += cs) {
		if (qcow2_block_status(img, off, cs, &pnum, &e) == IMG_BS_UNALLOC) {
			hole = off;
			break;
		}
	}
	ck_assert_uint_ne(hole, ~0ull);
	memset(buf, 1, sizeof(buf));
	r = qcow2_pwrite(img, hole + 5, buf, sizeof(buf), &e);
	if (!extl2 || cs / 32 > 105) {
		ck_assert_int_eq(r, -EINVAL);
		ck_assert_ptr_nonnull(strstr(e.msg, "backing"));
	}
	if (r == 0)
		memcpy(m.b + hole + 5, buf, sizeof(buf));
	if (extl2) {
		/* Whole subclusters need no backing data. */
		uint64_t sc = cs / 32;
		w(img, &m, hole + 4 * sc, 3 * sc);
		z(img, &m, hole + 9 * sc, sc);
	}
	img_close(img);
	verify(&m, "ov.qcow2");
	free(m.b);
}

START_TEST(overlay_v3)
{
	overlay_case("", 65536, false);
}
END_TEST

START_TEST(overlay_v2)
{
	overlay_case("-o compat=0.10,cluster_size=4096", 4096, false);
}
END_TEST

START_TEST(overlay_extl2)
{
	overlay_case("-o extended_l2=on,cluster_size=64k", 65536, true);
}
END_TEST

START_TEST(overwrite_compressed)
{
	struct model m;
	struct img *img;

	/* qemu-io writes compressed clusters (shared host clusters). */
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=4096 "
			    "c.qcow2 1M && qemu-io -f qcow2 -c 'write -c -P "
			    "0x11 0 64k' -c 'write -c -P 0x22 64k 64k' -c "
			    "'write -c -P 0x33 128k 4k' c.qcow2 >/dev/null"), 0);
	model_load(&m, "c.qcow2");
	img = open_rw("c.qcow2");
	w(img, &m, 100, 1000);                  /* partial: decompress+merge */
	w(img, &m, 8192, 4096);                 /* whole cluster */
	z(img, &m, 65536, 8192);                /* zero flag over compressed */
	w(img, &m, 4096 * 20 + 7, 4096 * 3);    /* spans 4 clusters */
	z(img, &m, 128 * 1024 + 10, 20);        /* literal zeros inside */
	img_close(img);
	verify(&m, "c.qcow2");
	free(m.b);

	/* Same on extended L2 (compressed bitmap is 0). */
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=32k,"
			    "extended_l2=on cx.qcow2 1M && qemu-io -f qcow2 -c "
			    "'write -c -P 0x44 0 128k' cx.qcow2 >/dev/null"), 0);
	model_load(&m, "cx.qcow2");
	img = open_rw("cx.qcow2");
	w(img, &m, 1000, 3000);
	z(img, &m, 32768 + 1024, 2048);
	z(img, &m, 65536, 32768);
	img_close(img);
	verify(&m, "cx.qcow2");
	free(m.b);
}
END_TEST

START_TEST(zero_over_data)
{
	struct model m;
	struct img *img;

	/* v3: zero flag, old cluster freed (check shows no leak). */
	create("z3.qcow2", 4 << 20, 65536, 3, 0, 16);
	model_zero(&m, 4 << 20);
	img = open_rw("z3.qcow2");
	w(img, &m, 0, 1 << 20);
	z(img, &m, 65536, 3 * 65536);
	img_close(img);
	verify(&m, "z3.qcow2");
	ck_assert_int_eq(sh("qemu-img map --output=json z3.qcow2 | grep -q "
			    "'\"start\": 65536, \"length\": 196608, \"depth\": 0,"
			    " \"present\": true, \"zero\": true, \"data\": "
			    "false'"), 0);
	free(m.b);

	/* v2 without backing file: unallocated again. */
	create("z2.qcow2", 4 << 20, 65536, 2, 0, 16);
	model_zero(&m, 4 << 20);
	img = open_rw("z2.qcow2");
	w(img, &m, 0, 1 << 20);
	z(img, &m, 65536, 3 * 65536);
	img_close(img);
	verify(&m, "z2.qcow2");
	ck_assert_int_eq(sh("qemu-img map --output=json z2.qcow2 | grep -q "
			    "'\"start\": 65536, \"length\": 196608, \"depth\": 0,"
			    " \"present\": false, \"zero\": true, \"data\": "
			    "false'"), 0);
	free(m.b);

	/* v2 with a backing file: literal zeros hide the backing data. */
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 b.qcow2 4M && "
			    "qemu-io -f qcow2 -c 'write -P 0x77 0 4M' b.qcow2 "
			    ">/dev/null && qemu-img create -q -f qcow2 -o "
			    "compat=0.10 -b b.qcow2 -F qcow2 o2.qcow2"), 0);
	model_load(&m, "o2.qcow2");
	img = open_rw("o2.qcow2");
	z(img, &m, 65536, 2 * 65536);
	img_close(img);
	verify(&m, "o2.qcow2");
	free(m.b);
}
END_TEST

START_TEST(make_empty_defers_to_backing)
{
	struct model m;
	struct img *img;
	struct img_err e = { 0 };

	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 b.qcow2 8M && "
			    "qemu-io -f qcow2 -c 'write -P 0x31 0 8M' b.qcow2 "
			    ">/dev/null && qemu-img create -q -f qcow2 -b "
			    "b.qcow2 -F qcow2 o.qcow2 && qemu-io -f qcow2 -c "
			    "'write -P 0x41 1M 1M' -c 'write -c -P 0x42 4M 256k'"
			    " -c 'write -z 6M 64k' o.qcow2 >/dev/null"), 0);
	model_load(&m, "b.qcow2");
	img = open_rw("o.qcow2");
	ck_assert_msg(qcow2_make_empty(img, &e) == 0, "%s", e.msg);
	img_close(img);
	verify(&m, "o.qcow2");
	ck_assert_int_eq(sh("qemu-img map --output=json o.qcow2 | grep -c "
			    "'\"depth\": 0' | grep -qx 0"), 0);
	free(m.b);
}
END_TEST

START_TEST(grow_from_zero_and_odd_sizes)
{
	struct model m;
	struct img *img;
	struct img_err e = { 0 };

	create("g0.qcow2", 0, 4096, 3, 0, 16);
	img = open_rw("g0.qcow2");
	ck_assert_msg(qcow2_grow(img, 3 << 20, &e) == 0, "%s", e.msg);
	model_zero(&m, 3 << 20);
	w(img, &m, 4095, 2);
	/* Sizes are kept in 512-byte sectors, as QEMU does; never shrinks. */
	ck_assert_int_eq(qcow2_grow(img, (5 << 20) + 1, &e), 0);
	ck_assert_uint_eq(img->virtual_size, (5 << 20) + 512);
	ck_assert_int_eq(qcow2_grow(img, 1 << 20, &e), 0);
	ck_assert_uint_eq(img->virtual_size, (5 << 20) + 512);
	model_grow(&m, (5 << 20) + 512);
	w(img, &m, m.size - 512, 512);
	img_close(img);
	verify(&m, "g0.qcow2");
	free(m.b);
}
END_TEST

/* The backing name may fill cluster 0 exactly, not one byte more. */
START_TEST(backing_header_exact_fit)
{
	struct img *img;
	struct img_err e = { 0 };
	char name[400];
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 b.qcow2 1M && "
			    "qemu-img create -q -f qcow2 -o cluster_size=512 "
			    "-b b.qcow2 -F qcow2 o.qcow2 1M"), 0);
	img = open_rw("o.qcow2");
	/* 112 header + 16 backing-format extension + 8 end marker. */
	memset(name, 'q', sizeof(name));
	name[512 - 136] = 0;
	ck_assert_int_eq(qcow2_backing_header(img, name, "qcow2", &buf, &len,
					      &e), 0);
	ck_assert_uint_eq(len, 512);
	ck_assert_uint_eq(qcow2_be64(buf + QCOW2_HDR_BACKING_FILE_OFFSET), 136);
	ck_assert_uint_eq(qcow2_be32(buf + QCOW2_HDR_BACKING_FILE_SIZE), 376);
	free(buf);
	ck_assert_int_eq(qcow2_set_backing(img, name, "qcow2", &e), 0);
	ck_assert_str_eq(((struct qcow2_state *)img->priv)->backing_name, name);
	name[512 - 136] = 'q';
	name[512 - 135] = 0;
	ck_assert_int_eq(qcow2_backing_header(img, name, "qcow2", &buf, &len,
					      &e), -ENOSPC);
	ck_assert_ptr_null(buf);
	img_close(img);
	ck_assert_int_eq(sh("qemu-img info -U --output=json o.qcow2 | grep -q "
			    "'\"backing-filename\": \"qqq'"), 0);
}
END_TEST

START_TEST(refusals)
{
	struct img *img = NULL;
	struct img_err e = { 0 };
	uint8_t b[512] = { 0 };

	create("ro.qcow2", 1 << 20, 0, 3, 0, 16);
	ck_assert_int_eq(img_open(p("ro.qcow2"), "qcow2", 0, &img, NULL, &e), 0);
	ck_assert_int_eq(qcow2_pwrite(img, 0, b, sizeof(b), &e), -EROFS);
	img_close(img);
	img = open_rw("ro.qcow2");
	ck_assert_int_eq(qcow2_pwrite(img, (1 << 20) - 10, b, 11, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "virtual size"));
	img_close(img);
	ck_assert_int_eq(sh("qemu-img check -q ro.qcow2"), 0);
}
END_TEST

START_TEST(unknown_autoclear_cleared_on_write)
{
	struct model m;
	struct img *img;

	create("ac.qcow2", 1 << 20, 0, 3, 0, 16);
	/* autoclear bit 7 (unknown) */
	ck_assert_int_eq(sh("printf '\\200' | dd of=ac.qcow2 bs=1 seek=%d "
			    "conv=notrunc status=none",
			    QCOW2_HDR_AUTOCLEAR_FEATURES + 7), 0);
	ck_assert_uint_eq(hdr64("ac.qcow2", QCOW2_HDR_AUTOCLEAR_FEATURES), 0x80);
	model_zero(&m, 1 << 20);
	img = open_rw("ac.qcow2");
	w(img, &m, 0, 4096);
	img_close(img);
	ck_assert_uint_eq(hdr64("ac.qcow2", QCOW2_HDR_AUTOCLEAR_FEATURES), 0);
	verify(&m, "ac.qcow2");
	free(m.b);
}
END_TEST

/* A read that fails during a check (an I/O error at every read op in
 * turn) makes the check fail or counts a check error: it is never taken
 * as a refcount of 0 and reported as a corruption or a leak. */
START_TEST(check_read_errors_are_not_corruptions)
{
	struct img_err e = { 0 };
	int clean_runs = 0, errors_seen = 0;

	create("ck.qcow2", 8 << 20, 4096, 3, 0, 16);
	ck_assert_int_eq(sh("qemu-io -f qcow2 -c 'write -P 1 0 1M' "
			    "-c 'write -P 2 6M 64k' ck.qcow2 >/dev/null"), 0);
	for (int k = 1; clean_runs < 3 && k < 4000; k++) {
		struct img *img = NULL;
		struct img_check res;
		char f[64];

		ck_assert_int_eq(img_open(p("ck.qcow2"), "qcow2",
					  IMG_O_INSPECT, &img, NULL, &e), 0);
		snprintf(f, sizeof(f), "rerr:%d:EIO", k);
		setenv("IMGRAPH_FAULT", f, 1);
		io_fault_reload();      /* counts the check's reads from 1 */
		int r = img_check(img, &res, &e);
		unsetenv("IMGRAPH_FAULT");
		io_fault_reload();
		img_close(img);
		if (r < 0) {
			errors_seen++;
			continue;
		}
		ck_assert_msg(res.corruptions == 0 && res.leaks == 0,
			      "read %d failed: %llu corruptions, %llu leaks: "
			      "%s", k, (unsigned long long)res.corruptions,
			      (unsigned long long)res.leaks,
			      res.nmsgs ? res.msgs[0] : "?");
		if (res.check_errors)
			errors_seen++;
		else
			clean_runs++;   /* the fault lies past the last read */
		img_check_free(&res);
	}
	ck_assert_int_eq(clean_runs, 3);
	ck_assert_int_gt(errors_seen, 3);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("qcow2_write");
	TCase *tc = tcase_create("write");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, refcount_entry_packing);
	tcase_add_test(tc, create_matrix_passes_qemu_check);
	tcase_add_test(tc, create_refuses_bad_options);
	tcase_add_test(tc, random_v3_64k);
	tcase_add_test(tc, growth_512_refcount64);
	tcase_add_test(tc, random_v2_512);
	tcase_add_test(tc, random_extl2);
	tcase_add_test(tc, random_refcount1_unaligned_size);
	tcase_add_test(tc, overlay_v3);
	tcase_add_test(tc, overlay_v2);
	tcase_add_test(tc, overlay_extl2);
	tcase_add_test(tc, overwrite_compressed);
	tcase_add_test(tc, zero_over_data);
	tcase_add_test(tc, make_empty_defers_to_backing);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, grow_from_zero_and_odd_sizes);
	tcase_add_test(tc, backing_header_exact_fit);
	tcase_add_test(tc, unknown_autoclear_cleared_on_write);
	tcase_add_test(tc, check_read_errors_are_not_corruptions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int rc = ut_need_tools("qemu-img", "qemu-io", NULL);

	if (rc >= 0)
		return rc;
	return ut_run(suite());
}
