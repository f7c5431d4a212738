/* test_records.c - the records kept beside the images besides the journal:
 * the stale record and the trash record (render/parse round trip, refusal
 * of every truncation and every single-byte corruption, bounded parsing of
 * hostile counts and names) and the stale record's updates on disk (a
 * commit's PENDING then DONE, a retry folded in, replaced images dropped,
 * another base's record replaced). */
#include "helpers.h"
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/commit/rectext.h"
#include "core/commit/stale.h"
#include "core/commit/trash.h"

static struct stale_img imgs[2] = {
	{ STALE_INTER, 64769, 1001, "/pool/mid.qcow2" },
	{ STALE_TOP, 64769, 1002, "/pool/top \n name.qcow2" },
};

static void sample_stale(struct stale_record *r, struct stale_tx *tx)
{
	*tx = (struct stale_tx){ .txid = 0x0123456789abcdefull,
				 .created = 1700000000,
				 .state = STALE_DONE, .top_dev = 64769,
				 .top_ino = 1002, .v = imgs, .n = 2 };
	*r = (struct stale_record){ .base_dev = 64769, .base_ino = 1000,
				    .base_path = "/pool/base.qcow2", .tx = tx,
				    .ntx = 1 };
}

START_TEST(stale_round_trip)
{
	struct stale_record r, *p = NULL;
	struct stale_tx tx;
	char *buf, *again;
	size_t len, len2;

	sample_stale(&r, &tx);
	ck_assert_int_eq(stale_render(&r, &buf, &len, NULL), 0);
	ck_assert_int_eq(stale_parse(buf, len, &p, NULL), 0);
	ck_assert_int_eq(p->ntx, 1);
	ck_assert_int_eq(p->tx[0].state, STALE_DONE);
	ck_assert_int_eq(p->tx[0].n, 2);
	ck_assert_str_eq(p->tx[0].v[1].path, "/pool/top \n name.qcow2");
	ck_assert_int_eq(p->tx[0].v[1].role, STALE_TOP);
	ck_assert(p->tx[0].txid == 0x0123456789abcdefull);
	ck_assert_int_eq(stale_render(p, &again, &len2, NULL), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert(!memcmp(buf, again, len));
	free(again);
	stale_free(p);
	free(buf);
}
END_TEST

/* Every prefix and every flipped byte is refused as a whole. */
/* commit --protect's journal: a prot line makes the record version 2 and
 * round trips; a version 1 record (what earlier imgraphs wrote) parses
 * without one; a prot line in a version 1 record is refused. */
START_TEST(stale_prot_line)
{
	static struct stale_reader rd[2] = {
		{ 64769, 2001, "/pool/c1.qcow2" },
		{ 64769, 2002, "/pool/c 2.qcow2" },
	};
	struct stale_record r, *p = NULL;
	struct stale_tx tx;
	char *buf, *again, *v1;
	size_t len, len2;

	sample_stale(&r, &tx);
	ck_assert_int_eq(stale_render(&r, &v1, &len, NULL), 0);
	ck_assert(!strncmp(v1, "imgraph-stale 1 ", 16));
	tx.state = STALE_PENDING;
	tx.prot = true;
	tx.prot_done = 48u << 20;
	tx.prot_top = "/pool/top \n name.qcow2";
	tx.rd = rd;
	tx.nrd = 2;
	ck_assert_int_eq(stale_render(&r, &buf, &len, NULL), 0);
	ck_assert(!strncmp(buf, "imgraph-stale 2 ", 16));
	ck_assert_int_eq(stale_parse(buf, len, &p, NULL), 0);
	ck_assert(p->tx[0].prot);
	ck_assert(p->tx[0].prot_done == 48u << 20);
	ck_assert_int_eq(p->tx[0].nrd, 2);
	ck_assert_str_eq(p->tx[0].rd[1].path, "/pool/c 2.qcow2");
	ck_assert(p->tx[0].rd[0].ino == 2001);
	ck_assert_int_eq(stale_render(p, &again, &len2, NULL), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert(!memcmp(buf, again, len));
	free(again);
	stale_free(p);
	/* version 1: no prot line, and none allowed */
	ck_assert_int_eq(stale_parse(v1, strlen(v1), &p, NULL), 0);
	ck_assert(!p->tx[0].prot);
	stale_free(p);
	{
		struct rt_buf s = { 0 };
		struct img_err e;
		char *bad;
		size_t blen;
		rt_add(&s, "imgraph-stale 1");
		rt_end_line(&s);
		rt_add(&s, "base 1 2");
		rt_str(&s, "/b");
		rt_end_line(&s);
		rt_add(&s, "tx %016llx 1 PENDING 1 3 0", 5ull);
		rt_end_line(&s);
		rt_add(&s, "prot 0 0");
		rt_str(&s, "/t");
		rt_end_line(&s);
		ck_assert_int_eq(rt_finish(&s, "t", &bad, &blen, NULL), 0);
		ck_assert_int_lt(stale_parse(bad, blen, &p, &e), 0);
		free(bad);
	}
	free(buf);
	free(v1);
}
END_TEST

START_TEST(stale_torn_and_flipped)
{
	struct stale_record r, *p;
	struct stale_tx tx;
	struct img_err e;
	char *buf;
	size_t len;

	sample_stale(&r, &tx);
	ck_assert_int_eq(stale_render(&r, &buf, &len, NULL), 0);
	for (size_t n = 0; n < len; n++) {
		err_clear(&e);
		ck_assert_msg(stale_parse(buf, n, &p, &e) < 0,
			      "prefix %zu accepted", n);
		ck_assert_ptr_null(p);
		ck_assert_msg(strstr(e.msg, "stale record"), "%s", e.msg);
	}
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		ck_assert_msg(stale_parse(buf, len, &p, NULL) < 0,
			      "flip at %zu accepted", i);
		buf[i] ^= 0x01;
	}
	free(buf);
}
END_TEST

/* A line with a valid CRC but a hostile count is refused before any
 * allocation of that size. */
START_TEST(stale_hostile_counts)
{
	struct rt_buf s = { 0 };
	struct stale_record *p;
	struct img_err e;
	char *buf;
	size_t len;

	rt_add(&s, "imgraph-stale 1");
	rt_end_line(&s);
	rt_add(&s, "base 1 2");
	rt_str(&s, "/b");
	rt_end_line(&s);
	rt_add(&s, "tx 0000000000000001 1 DONE 1 3 4096");
	rt_end_line(&s);
	ck_assert_int_eq(rt_finish(&s, "t", &buf, &len, NULL), 0);
	err_clear(&e);
	ck_assert_int_lt(stale_parse(buf, len, &p, &e), 0);
	ck_assert_msg(strstr(e.msg, "bad image count"), "%s", e.msg);
	free(buf);
}
END_TEST

START_TEST(trash_round_trip)
{
	struct trash_file f[2] = { { "top.qcow2", 1, 2, 65536 },
				   { "m i\td.qcow2", 1, 3, 0 } };
	struct trash_record r = { 0xfeedull, 1700000000, "/pool/base.qcow2",
				  f, 2 }, *p;
	char *buf;
	size_t len;

	ck_assert_int_eq(trash_render(&r, &buf, &len, NULL), 0);
	ck_assert_int_eq(trash_parse(buf, len, &p, NULL), 0);
	ck_assert_int_eq(p->n, 2);
	ck_assert_str_eq(p->v[1].name, "m i\td.qcow2");
	ck_assert_str_eq(p->base, "/pool/base.qcow2");
	ck_assert(p->v[0].size == 65536);
	trash_record_free(p);
	for (size_t n = 0; n < len; n++)
		ck_assert_int_lt(trash_parse(buf, n, &p, NULL), 0);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x04;
		ck_assert_msg(trash_parse(buf, len, &p, NULL) < 0,
			      "flip at %zu accepted", i);
		buf[i] ^= 0x04;
	}
	free(buf);
}
END_TEST

/* A recorded name is one path component: undelete never renames to
 * "../x" nor into a subdirectory. */
START_TEST(trash_names_are_components)
{
	static const char *bad[] = { "../etc/x", "a/b", "..", "." };
	struct trash_record *p;
	struct img_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct trash_file f = { (char *)bad[i], 1, 2, 3 };
		struct trash_record r = { 1, 1, "/b", &f, 1 };
		char *buf;
		size_t len;

		ck_assert_int_eq(trash_render(&r, &buf, &len, NULL), 0);
		err_clear(&e);
		ck_assert_int_lt(trash_parse(buf, len, &p, &e), 0);
		ck_assert_msg(strstr(e.msg, "one path component"), "%s",
			      e.msg);
		free(buf);
	}
}
END_TEST

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
}

static void ident(const char *path, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
}

static struct stale_record *read_rec(const char *base)
{
	char path[PATH_MAX];
	struct stale_record *r = NULL;

	ck_assert_int_eq(stale_path_for(base, path, sizeof(path), NULL), 0);
	ck_assert_int_eq(stale_read(path, &r, NULL), 0);
	return r;
}

/* begin (PENDING), a retry folded in, DONE, a replaced image dropped, a
 * record of another file at base's name replaced. */
START_TEST(stale_updates)
{
	char base[PATH_MAX], mid[PATH_MAX], top[PATH_MAX];
	uint64_t bd, bi, td, ti;
	struct stale_img v[2];
	struct stale_tx tx = { 0 };
	struct stale_record *r;

	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	snprintf(mid, sizeof(mid), "%s/mid.qcow2", ut_tmpdir);
	snprintf(top, sizeof(top), "%s/top.qcow2", ut_tmpdir);
	touch(base);
	touch(mid);
	touch(top);
	ident(base, &bd, &bi);
	ident(top, &td, &ti);
	v[0] = (struct stale_img){ STALE_INTER, 0, 0, mid };
	ident(mid, &v[0].dev, &v[0].ino);
	v[1] = (struct stale_img){ STALE_TOP, td, ti, top };
	tx = (struct stale_tx){ 1, 100, STALE_DONE, td, ti, v, 2 };
	ck_assert_int_eq(stale_begin(base, bd, bi, &tx, NULL), 0);
	r = read_rec(base);
	ck_assert_int_eq(r->ntx, 1);
	ck_assert_int_eq(r->tx[0].state, STALE_PENDING);  /* always */
	stale_free(r);
	/* a retry of the same top replaces the PENDING transaction */
	tx.txid = 2;
	ck_assert_int_eq(stale_begin(base, bd, bi, &tx, NULL), 0);
	r = read_rec(base);
	ck_assert_int_eq(r->ntx, 1);
	ck_assert(r->tx[0].txid == 2);
	stale_free(r);
	ck_assert_int_eq(stale_set_state(base, bd, bi, 2, STALE_DONE, NULL),
			 0);
	/* no such transaction, another base: nothing to do */
	ck_assert_int_eq(stale_set_state(base, bd, bi, 9, STALE_PENDING,
					 NULL), 0);
	ck_assert_int_eq(stale_set_state(base, bd, bi + 1, 2, STALE_PENDING,
					 NULL), 0);
	r = read_rec(base);
	ck_assert_int_eq(r->tx[0].state, STALE_DONE);
	stale_free(r);
	/* mid replaced by another file: dropped when next written; a DONE
	 * transaction is kept */
	{
		/* made while the old one lives: another inode for sure */
		char repl[PATH_MAX + 8];

		snprintf(repl, sizeof(repl), "%s.new", mid);
		touch(repl);
		ck_assert_int_eq(rename(repl, mid), 0);
	}
	tx.txid = 3;
	tx.n = 1;
	tx.v = &v[1];
	ck_assert_int_eq(stale_begin(base, bd, bi, &tx, NULL), 0);
	r = read_rec(base);
	ck_assert_int_eq(r->ntx, 2);
	ck_assert_int_eq(r->tx[0].n, 1);
	ck_assert_int_eq(r->tx[0].v[0].role, STALE_TOP);
	stale_free(r);
	/* another file at base's name: its old record does not apply */
	ck_assert_int_eq(stale_begin(base, bd, bi + 7, &tx, NULL), 0);
	r = read_rec(base);
	ck_assert(r->base_ino == bi + 7);
	ck_assert_int_eq(r->ntx, 1);
	stale_free(r);
}
END_TEST

/* commit --protect's journal on disk: a transaction with no image but a
 * prot line is kept; stale_set_prot moves it on; stale_find_prot finds
 * it for the same top only; DONE drops it. */
START_TEST(stale_prot_updates)
{
	char base[PATH_MAX], c1[PATH_MAX];
	uint64_t bd, bi;
	struct stale_reader rd[1];
	struct stale_tx tx = { 0 }, got;
	struct stale_record *r;

	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	snprintf(c1, sizeof(c1), "%s/c1.qcow2", ut_tmpdir);
	touch(base);
	touch(c1);
	ident(base, &bd, &bi);
	rd[0] = (struct stale_reader){ 0, 0, c1 };
	ident(c1, &rd[0].dev, &rd[0].ino);
	tx = (struct stale_tx){ .txid = 5, .created = 100, .top_dev = 1,
				.top_ino = 2, .prot = true, .prot_top = "/t" };
	ck_assert_int_eq(stale_begin(base, bd, bi, &tx, NULL), 0);
	ck_assert_int_eq(stale_set_prot(base, bd, bi, 5, 32u << 20, rd, 1,
					NULL), 0);
	ck_assert_int_eq(stale_find_prot(base, bd, bi, 1, 3, &got, NULL), 0);
	ck_assert_int_eq(stale_find_prot(base, bd, bi, 1, 2, &got, NULL), 1);
	ck_assert(got.prot_done == 32u << 20);
	ck_assert_int_eq(got.nrd, 1);
	ck_assert_str_eq(got.rd[0].path, c1);
	stale_tx_clear(&got);
	/* a retry folds it; kept though it names no image */
	tx.txid = 6;
	ck_assert_int_eq(stale_begin(base, bd, bi, &tx, NULL), 0);
	r = read_rec(base);
	ck_assert_int_eq(r->ntx, 1);
	ck_assert(r->tx[0].prot && r->tx[0].txid == 6);
	stale_free(r);
	ck_assert_int_eq(stale_set_state(base, bd, bi, 6, STALE_DONE, NULL),
			 0);
	r = read_rec(base);
	ck_assert(!r->tx[0].prot);
	stale_free(r);
	ck_assert_int_eq(stale_find_prot(base, bd, bi, 1, 2, &got, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("parse");
	TCase *td = tcase_create("disk");

	tcase_add_test(tc, stale_round_trip);
	tcase_add_test(tc, stale_prot_line);
	tcase_add_test(tc, stale_torn_and_flipped);
	tcase_add_test(tc, stale_hostile_counts);
	tcase_add_test(tc, trash_round_trip);
	tcase_add_test(tc, trash_names_are_components);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(td, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(td, stale_updates);
	tcase_add_test(td, stale_prot_updates);
	suite_add_tcase(s, td);
	return ut_run(s);
}
