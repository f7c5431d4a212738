/* test_protect.c - --protect's run-time half (core/commit/protect.h) and
 * the copy's before_write hook it rides on (copy.h):
 *   - a hook that fails stops the copy before base changes in its window;
 *   - protect_window gives a reader of base its old view where it does
 *     not allocate it (whole clusters), leaves what it allocates alone,
 *     and its view is the same after the copy as before;
 *   - a second protect_window over the same runs writes nothing (a rerun
 *     redoes nothing);
 *   - the runs the hook sees are increasing and cover every cluster the
 *     copy writes.
 * Images are made with imgraph's own qcow2 driver (no tools needed). */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/img.h"
#include "core/graph/chain.h"
#include "core/commit/copy.h"
#include "core/commit/protect.h"

#define KB 1024u
#define CS (64 * KB)

static const char *at(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", ut_tmpdir, name);
	return buf[k];
}

static void create(const char *name, const char *backing)
{
	struct img_create_opts o = { .size = 1 << 20, .backing = backing,
				     .backing_fmt = backing ? "qcow2" : NULL };
	struct img_err e = { 0 };

	ck_assert_msg(img_create(&img_format_qcow2, at(name), &o, &e) == 0,
		      "%s", e.msg);
}

static void fill(const char *name, uint64_t off, uint64_t len, int pat)
{
	static uint8_t buf[1 << 20];
	struct img *img;
	struct img_err e = { 0 };

	memset(buf, pat, (size_t)len);
	ck_assert_int_eq(img_open(at(name), "qcow2", IMG_O_RDWR, &img, NULL,
				  &e), 0);
	ck_assert_msg(img_pwrite(img, off, buf, (size_t)len, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(img_flush(img, &e), 0);
	img_close(img);
}

/* The guest view of name (through its chain) at [off, off+len) is all
 * pat. */
static bool view_is(const char *name, uint64_t off, uint64_t len, int pat)
{
	static uint8_t buf[1 << 20];
	struct chain *c;
	bool ok = true;

	ck_assert_int_eq(chain_open(at(name), "qcow2", 0, 0, 0, &c, NULL), 0);
	ck_assert_int_eq(chain_pread(c, 0, off, buf, (size_t)len, NULL), 0);
	chain_close(c);
	for (uint64_t i = 0; i < len && ok; i++)
		ok = buf[i] == pat;
	return ok;
}

/* Status of name's own layer at off. */
static int own_status(const char *name, uint64_t off, uint64_t *pnum)
{
	struct img *img;
	int bs;

	ck_assert_int_eq(img_open(at(name), "qcow2", 0, &img, NULL, NULL), 0);
	bs = img_block_status(img, off, (1 << 20) - off, pnum, NULL);
	img_close(img);
	return bs;
}

/* base 0x11 over [0, 512k); top 0x22 over [0, 256k) and [768k, 832k);
 * reader c on base allocates [64k, 128k) (0x33). */
static void make_pool(void)
{
	create("base.qcow2", NULL);
	fill("base.qcow2", 0, 512 * KB, 0x11);
	create("top.qcow2", "base.qcow2");
	fill("top.qcow2", 0, 256 * KB, 0x22);
	fill("top.qcow2", 768 * KB, 64 * KB, 0x22);
	create("c.qcow2", "base.qcow2");
	fill("c.qcow2", 64 * KB, 64 * KB, 0x33);
}

struct seen {
	uint64_t runs[64];
	size_t n;
	int fail;                  /* -errno to return, or 0 */
};

static int record(void *opaque, const uint64_t *runs, size_t nruns,
		  struct img_err *e)
{
	struct seen *s = opaque;

	for (size_t i = 0; i < nruns && s->n + 2 <= 64; i++) {
		s->runs[s->n++] = runs[2 * i];
		s->runs[s->n++] = runs[2 * i + 1];
	}
	return s->fail ? err_set(e, -s->fail, "injected") : 0;
}

static int run_copy(const struct copy_opts *co, struct img_err *e)
{
	struct chain *c;
	struct img *base;
	struct copy_stats st;
	int r;

	ck_assert_int_eq(chain_open(at("top.qcow2"), "qcow2", 0, 0, 0, &c, e),
			 0);
	ck_assert_int_eq(img_open(at("base.qcow2"), "qcow2", IMG_O_RDWR, &base,
				  NULL, e), 0);
	r = copy_run(c, 1, base, co, &st, e);
	if (img_flush(base, NULL) < 0 && r == 0)
		r = -EIO;
	img_close(base);
	chain_close(c);
	return r;
}

START_TEST(failing_hook_stops_before_base_changes)
{
	struct seen s = { .fail = -ENOSPC };
	struct copy_opts co = { .before_write = record, .before_opaque = &s };
	struct img_err e = { 0 };

	make_pool();
	ck_assert_int_eq(run_copy(&co, &e), -ENOSPC);
	ck_assert_int_ge(s.n, 2);
	ck_assert(view_is("base.qcow2", 0, 512 * KB, 0x11));
}
END_TEST

START_TEST(hook_sees_every_written_run)
{
	struct seen s = { 0 };
	struct copy_opts co = { .before_write = record, .before_opaque = &s };
	struct img_err e = { 0 };
	uint64_t covered = 0;

	make_pool();
	ck_assert_msg(run_copy(&co, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i + 1 < s.n; i += 2) {
		ck_assert_uint_lt(s.runs[i], s.runs[i + 1]);
		if (i)
			ck_assert_uint_ge(s.runs[i], s.runs[i - 1]);
		ck_assert_uint_eq(s.runs[i] % CS, 0);
		covered += s.runs[i + 1] - s.runs[i];
	}
	ck_assert_uint_eq(covered, 256 * KB + 64 * KB);
	ck_assert(view_is("base.qcow2", 0, 256 * KB, 0x22));
}
END_TEST

/* ahead: with the look-ahead over top's chain (protect_src), else
 * window by window. */
static void reader_keeps_its_view(bool ahead)
{
	struct protect_run pr;
	struct protect_src src = { 0 };
	char tpath[512];
	struct stat sb;
	char cpath[512], bpath[512];
	struct protect_target t = { cpath, "qcow2", -1, bpath, "qcow2" };
	struct copy_opts co = { .before_write = protect_window,
				.before_opaque = &pr };
	struct img_err e = { 0 };
	uint64_t pnum, written;
	const uint64_t again[] = { 0, 256 * KB, 768 * KB, 832 * KB };

	make_pool();
	snprintf(cpath, sizeof(cpath), "%s", at("c.qcow2"));
	snprintf(bpath, sizeof(bpath), "%s", at("base.qcow2"));
	snprintf(tpath, sizeof(tpath), "%s", at("top.qcow2"));
	ck_assert_int_eq(stat(bpath, &sb), 0);
	src = (struct protect_src){ tpath, "qcow2", sb.st_dev, sb.st_ino,
				    CS };
	t.fd = open(t.path, O_RDWR);
	ck_assert_int_ge(t.fd, 0);
	ck_assert_msg(protect_open(&pr, &t, 1, ahead ? &src : NULL, &e) == 0,
		      "%s", e.msg);
	ck_assert_msg(run_copy(&co, &e) == 0, "%s", e.msg);
	written = protect_bytes(&pr);
	/* [0, 64k) and [128k, 256k) of base's data, [768k, 832k) of zeros;
	 * not the cluster it allocates */
	ck_assert_uint_eq(written, 256 * KB - 64 * KB + 64 * KB);
	/* a rerun over the same runs writes nothing */
	ck_assert_int_eq(protect_window(&pr, again, 2, &e), 0);
	ck_assert_uint_eq(protect_bytes(&pr), written);
	protect_close(&pr);
	close(t.fd);

	ck_assert(view_is("base.qcow2", 0, 256 * KB, 0x22));
	ck_assert(view_is("c.qcow2", 0, 64 * KB, 0x11));
	ck_assert(view_is("c.qcow2", 64 * KB, 64 * KB, 0x33));
	ck_assert(view_is("c.qcow2", 128 * KB, 384 * KB, 0x11));
	ck_assert(view_is("c.qcow2", 768 * KB, 64 * KB, 0));
	/* it allocates what base changed, and still reads base for the
	 * rest */
	ck_assert_int_ne(own_status("c.qcow2", 0, &pnum), IMG_BS_UNALLOC);
	ck_assert_uint_ge(pnum, 256 * KB);
	ck_assert_int_eq(own_status("c.qcow2", 256 * KB, &pnum),
			 IMG_BS_UNALLOC);
	ck_assert_uint_eq(pnum, 512 * KB);
	ck_assert_int_ne(own_status("c.qcow2", 768 * KB, &pnum),
			 IMG_BS_UNALLOC);
}

START_TEST(reader_keeps_its_view_per_window)
{
	reader_keeps_its_view(false);
}
END_TEST

START_TEST(reader_keeps_its_view_look_ahead)
{
	reader_keeps_its_view(true);
}
END_TEST

static Suite *protect_suite(void)
{
	Suite *s = suite_create("protect");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, failing_hook_stops_before_base_changes);
	tcase_add_test(tc, hook_sees_every_written_run);
	tcase_add_test(tc, reader_keeps_its_view_per_window);
	tcase_add_test(tc, reader_keeps_its_view_look_ahead);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(protect_suite());
}
