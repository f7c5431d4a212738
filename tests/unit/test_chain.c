/* test_chain.c - core/graph/chain.c: reading through layers, the CVE-2008-2004
 * rule (a probed non-raw backing file's own backing reference is never
 * followed), loops, external names, the depth cap, FIFOs and stop_at.
 * Chains are crafted byte by byte (qcow2_craft.h) in a temporary directory. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"
#include "qcow2_craft.h"
/* ---- chain --------------------------------------------------------------- */

static void write_file(const char *name, const struct craft *c)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", ut_tmpdir, name);
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(c->b, 1, c->len, f), c->len);
	fclose(f);
}

static void set_backing(struct craft *c, const char *name, const char *fmt)
{
	size_t off = 112;
	if (fmt) {
		p32(c, 112, QCOW2_EXT_BACKING_FMT);
		p32(c, 116, (uint32_t)strlen(fmt));
		memcpy(c->b + 120, fmt, strlen(fmt));
		off = 120 + ((strlen(fmt) + 7) & ~7u);
	}
	p64(c, off, 0);
	off += 8;
	p64(c, 8, off);
	p32(c, 16, (uint32_t)strlen(name));
	memcpy(c->b + off, name, strlen(name));
}

START_TEST(chain_reads_through_layers)
{
	/* base: raw 4 clusters of 0xbb; mid: cluster 1 = 0x22, cluster 2 zero;
	 * top: cluster 0 = 0x11, size 6 clusters */
	struct craft raw = { 0 };
	cr_need(&raw, 4 * CS);
	memset(raw.b, 0xbb, 4 * CS);
	write_file("base.raw", &raw);

	struct craft mid = make_v3(4 * CS);
	set_backing(&mid, "base.raw", "raw");
	cr_need(&mid, 6 * CS);
	memset(mid.b + 5 * CS, 0x22, CS);
	set_l2(&mid, 1, (5ull * CS) | QCOW2_OFLAG_COPIED);
	set_l2(&mid, 2, QCOW2_OFLAG_ZERO);
	write_file("mid.qcow2", &mid);

	struct craft top = make_v3(6 * CS);
	set_backing(&top, "mid.qcow2", "qcow2");
	cr_need(&top, 6 * CS);
	memset(top.b + 5 * CS, 0x11, CS);
	set_l2(&top, 0, (5ull * CS) | QCOW2_OFLAG_COPIED);
	write_file("top.qcow2", &top);

	char p[256];
	struct chain *ch;
	struct img_err e;
	snprintf(p, sizeof(p), "%s/top.qcow2", ut_tmpdir);
	ck_assert_msg(chain_open(p, NULL, 0, 0, 0, &ch, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ch->n, 3);
	ck_assert(!ch->probed[1] && !ch->probed[2]);

	uint8_t *buf = malloc(6 * CS);
	ck_assert_int_eq(chain_pread(ch, 0, 0, buf, 6 * CS, &e), 0);
	uint8_t want[6] = { 0x11, 0x22, 0, 0xbb, 0, 0 };
	for (int k = 0; k < 6; k++)
		for (unsigned i = 0; i < CS; i += 4096)
			ck_assert_uint_eq(buf[k * CS + i], want[k]);

	struct chain_status st;
	uint64_t pnum;
	ck_assert_int_eq(chain_block_status(ch, 0, 3 * CS, 3 * CS, &pnum, &st,
					    &e), 0);
	ck_assert_int_eq(st.depth, 2);
	ck_assert_int_eq(st.bs, IMG_BS_DATA);
	ck_assert_uint_eq(pnum, CS);
	ck_assert_int_eq(chain_block_status(ch, 0, 4 * CS, 2 * CS, &pnum, &st,
					    &e), 0);
	ck_assert_int_eq(st.depth, 1);       /* past mid's end */
	ck_assert_int_eq(st.bs, IMG_BS_ZERO);
	chain_close(ch);
	free(buf);
	free(raw.b);
	free(mid.b);
	free(top.b);
}
END_TEST

START_TEST(chain_probed_qcow2_backing_not_followed)
{
	struct craft evil = make_v3(4 * CS);
	set_backing(&evil, "/etc/passwd", "raw");
	write_file("probed.qcow2", &evil);
	struct craft top = make_v3(4 * CS);
	set_backing(&top, "probed.qcow2", NULL);        /* no format */
	write_file("top.qcow2", &top);

	char p[256];
	struct chain *ch;
	struct img_err e;
	uint8_t buf[512];
	snprintf(p, sizeof(p), "%s/top.qcow2", ut_tmpdir);
	ck_assert_msg(chain_open(p, NULL, 0, 0, 0, &ch, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ch->n, 2);
	ck_assert(ch->probed[1]);
	ck_assert_int_lt(chain_pread(ch, 0, 0, buf, sizeof(buf), &e), 0);
	ck_assert_msg(strstr(e.msg, "has no recorded format and probes as "
			     "qcow2; refusing to follow its backing "
			     "reference"), "%s", e.msg);
	chain_close(ch);
	free(evil.b);
	free(top.b);
}
END_TEST

START_TEST(chain_loop_and_external)
{
	struct craft a = make_v3(CS), b = make_v3(CS);
	set_backing(&a, "b.qcow2", "qcow2");
	set_backing(&b, "a.qcow2", "qcow2");
	write_file("a.qcow2", &a);
	write_file("b.qcow2", &b);
	char p[256];
	struct chain *ch;
	struct img_err e;
	snprintf(p, sizeof(p), "%s/a.qcow2", ut_tmpdir);
	ck_assert_int_lt(chain_open(p, NULL, 0, 0, 0, &ch, &e), 0);
	ck_assert_msg(strstr(e.msg, "loop"), "%s", e.msg);
	free(a.b);
	free(b.b);

	a = make_v3(CS);
	set_backing(&a, "nbd://host/x", "raw");
	write_file("a.qcow2", &a);
	ck_assert_int_lt(chain_open(p, NULL, 0, 0, 0, &ch, &e), 0);
	ck_assert_msg(strstr(e.msg, "never opened"), "%s", e.msg);
	free(a.b);

	a = make_v3(CS);
	set_backing(&a, "missing.qcow2", "qcow2");
	write_file("a.qcow2", &a);
	ck_assert_int_lt(chain_open(p, NULL, 0, 0, 0, &ch, &e), 0);
	ck_assert_msg(strstr(e.msg, "missing.qcow2"), "%s", e.msg);
	free(a.b);
}
END_TEST

START_TEST(chain_depth_cap)
{
	char name[64], next[64];

	/* l0 -> l1 -> ... -> l(CHAIN_MAX_DEPTH): one layer too many */
	for (int i = 0; i <= CHAIN_MAX_DEPTH; i++) {
		struct craft c = make_v3(CS);
		snprintf(name, sizeof(name), "l%d.qcow2", i);
		snprintf(next, sizeof(next), "l%d.qcow2", i + 1);
		if (i < CHAIN_MAX_DEPTH)
			set_backing(&c, next, "qcow2");
		write_file(name, &c);
		free(c.b);
	}
	char p[256];
	struct chain *ch;
	struct img_err e;
	snprintf(p, sizeof(p), "%s/l0.qcow2", ut_tmpdir);
	ck_assert_int_lt(chain_open(p, NULL, 0, 0, 0, &ch, &e), 0);
	ck_assert_msg(strstr(e.msg, "deeper than 256"), "%s", e.msg);
	/* starting one lower, the chain has exactly CHAIN_MAX_DEPTH layers */
	snprintf(p, sizeof(p), "%s/l1.qcow2", ut_tmpdir);
	ck_assert_msg(chain_open(p, NULL, 0, 0, 0, &ch, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ch->n, CHAIN_MAX_DEPTH);
	chain_close(ch);
}
END_TEST

/* A FIFO as backing file is refused without blocking on open. */
START_TEST(chain_fifo_backing_refused)
{
	char p[256];
	struct chain *ch;
	struct img_err e;
	struct craft c = make_v3(CS);

	snprintf(p, sizeof(p), "%s/fifo", ut_tmpdir);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	set_backing(&c, "fifo", "raw");
	write_file("top.qcow2", &c);
	free(c.b);
	snprintf(p, sizeof(p), "%s/top.qcow2", ut_tmpdir);
	ck_assert_int_lt(chain_open(p, NULL, 0, 0, 0, &ch, &e), 0);
	ck_assert_msg(strstr(e.msg, "not a regular file"), "%s", e.msg);
}
END_TEST

/* stop_dev/stop_ino: the chain ends above that layer. */
START_TEST(chain_stop_at)
{
	struct craft b = make_v3(CS), t = make_v3(CS);
	set_backing(&t, "b.qcow2", "qcow2");
	write_file("b.qcow2", &b);
	write_file("t.qcow2", &t);
	free(b.b);
	free(t.b);
	char p[256];
	struct stat sb;
	struct chain *ch;
	struct img_err e;
	snprintf(p, sizeof(p), "%s/b.qcow2", ut_tmpdir);
	ck_assert_int_eq(stat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/t.qcow2", ut_tmpdir);
	ck_assert_int_eq(chain_open(p, NULL, 0, sb.st_dev, sb.st_ino, &ch, &e),
			 0);
	ck_assert_int_eq(ch->n, 1);
	chain_close(ch);
}
END_TEST

static Suite *chain_suite(void)
{
	Suite *s = suite_create("chain");
	TCase *tc = tcase_create("chain");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, chain_reads_through_layers);
	tcase_add_test(tc, chain_probed_qcow2_backing_not_followed);
	tcase_add_test(tc, chain_loop_and_external);
	tcase_add_test(tc, chain_depth_cap);
	tcase_add_test(tc, chain_fifo_backing_refused);
	tcase_add_test(tc, chain_stop_at);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(chain_suite());
}
