/* test_errp.c - the error contract (formats/io/err.h): every public entry
 * point of formats/ and core/ taking a struct img_err * is called with
 * e == NULL on an input that makes it fail, and must return its -errno
 * without touching the NULL pointer.  One test per header, so a crash
 * names the room it is in.
 *
 * Guards the segfault of recover_journal(..., NULL) (and of commit.c,
 * copy.c and recover.c's other *e = / e->msg uses) that dereferenced the
 * pointer the contract allows to be NULL. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/img.h"
#include "formats/io/err.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"
#include "core/graph/chain.h"
#include "core/graph/chain_map.h"
#include "core/graph/graph.h"
#include "core/graph/lock.h"
#include "core/graph/resolve.h"
#include "core/graph/users.h"
#include "core/plan/plan.h"
#include "core/commit/commit.h"
#include "core/commit/commit_int.h"
#include "core/commit/copy.h"
#include "core/commit/journal.h"
#include "core/commit/lock_hold.h"
#include "core/commit/recover.h"
#include "core/commit/relink.h"
#include "core/commit/stale.h"
#include "core/commit/trash.h"

#define NOPE "/nonexistent-imgraph-dir/x"

static char *at(const char *name)
{
	static char buf[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", ut_tmpdir, name);
	return buf[k];
}

static void put(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* base.qcow2 <- top.qcow2 (relative name), both made by our create. */
static void make_pair(void)
{
	struct img_create_opts o = { .size = 1 << 20 };
	struct img_err e;

	ck_assert_int_eq(img_create(&img_format_qcow2, at("base.qcow2"), &o,
				    &e), 0);
	o.backing = "base.qcow2";
	o.backing_fmt = "qcow2";
	ck_assert_int_eq(img_create(&img_format_qcow2, at("top.qcow2"), &o,
				    &e), 0);
}

static uint64_t be64_at(int fd, uint64_t off)
{
	uint8_t b[8];
	uint64_t v = 0;

	ck_assert_int_eq(pread(fd, b, 8, (off_t)off), 8);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* A qcow2 image whose first data cluster is mapped past the end of the
 * file: it opens, and every read of guest data there fails. */
static void make_broken(const char *path)
{
	static const uint8_t past_eof[8] = { 0x80, 0, 0x01, 0, 0, 0, 0, 0 };
	struct img_create_opts o = { .size = 1 << 20 };
	uint8_t data[512] = { 1 };
	struct img *img;
	uint64_t l2;
	int fd;

	ck_assert_int_eq(img_create(&img_format_qcow2, path, &o, NULL), 0);
	ck_assert_int_eq(img_open(path, "qcow2", IMG_O_RDWR, &img, NULL, NULL),
			 0);
	ck_assert_int_eq(img_pwrite(img, 0, data, sizeof(data), NULL), 0);
	ck_assert_int_eq(img_flush(img, NULL), 0);
	img_close(img);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	l2 = be64_at(fd, be64_at(fd, 40)) & 0x00fffffffffffe00ull;
	/* L2 entry 0: data at 1 TiB, flagged COPIED */
	ck_assert_int_eq(pwrite(fd, past_eof, 8, (off_t)l2), 8);
	close(fd);
}

START_TEST(err_h)
{
	struct img_err from = { 0 };

	ck_assert_int_eq(err_set(NULL, EINVAL, "x"), -EINVAL);
	ck_assert_int_eq(err_set_errno(NULL, ENOENT, "x"), -ENOENT);
	err_prefix(NULL, "x: ");
	err_clear(NULL);
	err_set(&from, ENOSPC, "full");
	ck_assert_int_eq(err_propagate(NULL, &from), -ENOSPC);
}
END_TEST

START_TEST(io_replace_h)
{
	struct io_replace t = { .fd = -1 };

	ck_assert_int_lt(io_replace_begin(&t, NOPE, 0600, NULL), 0);
	ck_assert_int_lt(io_replace_commit(&t, NULL), 0);
	ck_assert_int_lt(io_replace_file(ut_tmpdir, "x", 1, 0600, NULL), 0);
	ck_assert_int_lt(io_replace_clean(NOPE, NULL, NULL), 0);
}
END_TEST

START_TEST(format_h)
{
	struct img *img = NULL;

	ck_assert_int_lt(img_open(NOPE, NULL, 0, &img, NULL, NULL), 0);
	ck_assert_int_lt(img_open(ut_tmpdir, NULL, 0, &img, NULL, NULL), 0);
	put(at("junk"), "not an image at all", 19);
	ck_assert_int_lt(img_open(at("junk"), "qcow2", 0, &img, NULL, NULL),
			 0);
	ck_assert_int_lt(img_open(at("junk"), "no-such-format", 0, &img, NULL,
				  NULL), 0);
	ck_assert_int_lt(img_open_fd(-1, "fd", NULL, 0, &img, NULL, NULL), 0);
	ck_assert_ptr_null(img);
}
END_TEST

START_TEST(img_h)
{
	struct img_create_opts o = { .size = 1 << 20 };
	char name[2048], buf[512];
	struct img_backing bk;
	struct img_info info;
	struct img_check ck;
	struct img *q, *raw;
	uint8_t *hdr;
	size_t hlen;
	uint64_t n;

	make_broken(at("broken.qcow2"));
	ck_assert_int_eq(img_open(at("broken.qcow2"), "qcow2", 0, &q, NULL,
				  NULL), 0);
	ck_assert_int_lt(img_pread(q, 0, buf, sizeof(buf), NULL), 0);
	ck_assert_int_lt(img_block_status(q, 0, 65536, &n, NULL), 0);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_lt(img_backing_header(q, name, "qcow2", &hdr, &hlen,
					    NULL), 0);
	/* opened read-only: every write op refuses */
	ck_assert_int_lt(img_set_backing(q, "b", "qcow2", NULL), 0);
	ck_assert_int_lt(img_pwrite(q, 0, buf, sizeof(buf), NULL), 0);
	ck_assert_int_lt(img_write_zeroes(q, 0, 65536, NULL), 0);
	ck_assert_int_lt(img_grow(q, 2 << 20, NULL), 0);
	ck_assert_int_lt(img_make_empty(q, NULL), 0);
	ck_assert_int_lt(img_batch_begin(q, NULL), 0);
	img_close(q);

	ck_assert_int_eq(img_create(&img_format_raw, at("d.raw"), &o, NULL), 0);
	ck_assert_int_eq(img_open(at("d.raw"), "raw", IMG_O_RDWR, &raw, NULL,
				  NULL), 0);
	ck_assert_int_lt(img_make_empty(raw, NULL), 0);
	ck_assert_int_lt(img_check(raw, &ck, NULL), 0);
	ck_assert_int_lt(img_backing_header(raw, "b", "raw", &hdr, &hlen,
					    NULL), 0);
	/* the file under the handle gone bad: every op that reaches it fails */
	close(raw->fd);
	ck_assert_int_lt(img_get_info(raw, &info, NULL), 0);
	ck_assert_int_lt(img_pread(raw, 0, buf, sizeof(buf), NULL), 0);
	ck_assert_int_lt(img_pwrite(raw, 0, buf, sizeof(buf), NULL), 0);
	ck_assert_int_lt(img_write_zeroes(raw, 0, 4096, NULL), 0);
	ck_assert_int_lt(img_grow(raw, 2 << 20, NULL), 0);
	ck_assert_int_lt(img_flush(raw, NULL), 0);
	/* raw's block status answers "data" when it cannot tell, and raw
	 * has no backing file: neither can fail */
	ck_assert_int_ge(img_block_status(raw, 0, 4096, &n, NULL), 0);
	ck_assert_int_eq(img_get_backing(raw, &bk, NULL), 0);
	raw->fd = open("/dev/null", O_RDONLY);   /* for img_close */
	img_close(raw);

	ck_assert_int_lt(img_create(&img_format_qcow2, NOPE, &o, NULL), 0);
	o.backing = "x";
	ck_assert_int_lt(img_create(&img_format_raw, at("r2"), &o, NULL), 0);
	o.backing_fmt = NULL;
	ck_assert_int_lt(img_create(&img_format_qcow2, at("q2"), &o, NULL), 0);
	o.backing = NULL;
	o.cluster_size = 3;
	ck_assert_int_lt(img_create(&img_format_qcow2, at("q3"), &o, NULL), 0);
}
END_TEST

START_TEST(chain_h)
{
	struct chain *c;
	struct chain_mapper *m;
	struct chain_map_extent x;
	struct chain_status st;
	uint64_t n;
	char buf[512];

	ck_assert_int_lt(chain_open(NOPE, NULL, 0, 0, 0, &c, NULL), 0);
	make_broken(at("broken.qcow2"));
	ck_assert_int_eq(chain_open(at("broken.qcow2"), "qcow2", 0, 0, 0, &c,
				    NULL), 0);
	ck_assert_int_lt(chain_block_status(c, 0, 0, 65536, &n, &st, NULL), 0);
	ck_assert_int_lt(chain_pread(c, 0, 0, buf, sizeof(buf), NULL), 0);
	ck_assert_int_eq(chain_map_begin(c, &m, NULL), 0);
	ck_assert_int_lt(chain_map_next(m, 0, 65536, &x, NULL), 0);
	chain_map_end(m);
	/* copy.h on the same chain */
	ck_assert_int_lt(copy_measure(c, 1, &n, NULL), 0);
	chain_close(c);
	/* a loop: a names b, b names a */
	struct img_create_opts o = { .size = 1 << 20, .backing = "b.qcow2",
				     .backing_fmt = "qcow2" };
	ck_assert_int_eq(img_create(&img_format_qcow2, at("a.qcow2"), &o,
				    NULL), 0);
	o.backing = "a.qcow2";
	ck_assert_int_eq(img_create(&img_format_qcow2, at("b.qcow2"), &o,
				    NULL), 0);
	ck_assert_int_lt(chain_open(at("a.qcow2"), "qcow2", 0, 0, 0, &c, NULL),
			 0);
}
END_TEST

START_TEST(graph_h)
{
	char *paths[] = { ut_tmpdir };
	struct scan_opts so = { .users_file = NOPE };
	struct users_file *uf;
	struct lock_state ls;
	struct lock_holder *h = NULL;
	struct lock_opener *op = NULL;
	struct graph *g;
	enum resolve_kind kind;
	char out[4], *text;
	size_t len;
	int nh, nch;
	dev_t dev = 0;
	ino_t ino = 0;

	make_pair();
	ck_assert_int_lt(graph_scan(paths, 1, &so, &g, NULL), 0);
	so.users_file = NULL;
	ck_assert_int_eq(graph_scan(paths, 1, &so, &g, NULL), 0);
	ck_assert_int_lt(graph_lookup(g, NOPE, NULL), 0);
	ck_assert_int_lt(graph_lookup(g, at("nothing"), NULL), 0);
	ck_assert_int_ge(lock_probe_graph(g, NULL), 0);
	graph_free(g);

	ck_assert_int_lt(lock_probe_file(NOPE, &ls, NULL), 0);
	ck_assert_int_lt(lock_probe_file(ut_tmpdir, &ls, NULL), 0);
	ck_assert_int_ge(lock_find_holders(dev, ino, &h, &nh, NULL), 0);
	free(h);
	ck_assert_int_ge(lock_find_openers(&dev, &ino, 1, &op, &nh, NULL), 0);
	free(op);

	ck_assert_int_lt(resolve_backing(at("top.qcow2"), "base.qcow2", out,
					 sizeof(out), &kind, NULL), 0);
	ck_assert_int_lt(resolve_make_name(at("top.qcow2"), at("base.qcow2"),
					   1, out, sizeof(out), NULL), 0);

	ck_assert_int_lt(users_load(NOPE, &uf, NULL), 0);
	put(at("bad.yaml"), "users: [ {name: 1", 17);
	ck_assert_int_lt(users_load(at("bad.yaml"), &uf, NULL), 0);
	put(at("u.yaml"), "users:\n  - name: a\n    kind: nonsense\n"
	    "    image: top.qcow2\n", 59);
	ck_assert_int_lt(users_load(at("u.yaml"), &uf, NULL), 0);
	ck_assert_int_lt(users_repoint(NOPE, dev, ino, "x", &text, &len, &nch,
				       NULL), 0);
}
END_TEST

START_TEST(plan_and_commit_h)
{
	char *paths[] = { ut_tmpdir };
	struct scan_opts so = { 0 };
	struct graph *g;
	struct plan *p;
	struct chain *c;
	int top, base, nabove;

	make_pair();
	ck_assert_int_eq(graph_scan(paths, 1, &so, &g, NULL), 0);
	top = graph_lookup(g, at("top.qcow2"), NULL);
	base = graph_lookup(g, at("base.qcow2"), NULL);
	ck_assert_int_ge(top, 0);
	ck_assert_int_ge(base, 0);
	/* plan problems are conflicts, not errors */
	ck_assert_int_eq(plan_build(g, -1, -1, NULL, &p, NULL), 0);
	ck_assert_int_gt(p->nconflicts, 0);
	ck_assert_int_lt(commit_execute(g, p, NULL, NULL, NULL), 0);
	plan_free(p);

	ck_assert_int_eq(plan_build(g, top, base, NULL, &p, NULL), 0);
	ck_assert_int_eq(chain_open(at("base.qcow2"), "qcow2", 0, 0, 0, &c,
				    NULL), 0);
	ck_assert_int_lt(commit_check_chain(g, p, c, &nabove, NULL), 0);
	ck_assert_int_lt(copy_run(c, 0, c->layer[0], NULL,
				  &(struct copy_stats){ 0 }, NULL), 0);
	chain_close(c);
	ck_assert_int_lt(commit_abs_path(NOPE "/y", (char[64]){ 0 }, 64, NULL),
			 0);
	/* the pool changed since the plan: top is gone */
	ck_assert_int_eq(rename(at("top.qcow2"), at("moved.qcow2")), 0);
	ck_assert_int_lt(commit_revalidate(g, p, NULL), 0);
	ck_assert_int_lt(commit_execute(g, p, NULL, NULL, NULL), 0);
	plan_free(p);
	graph_free(g);
}
END_TEST

/* The records beside the pool: their failures fill nothing when the
 * caller passes no error object. */
START_TEST(records_h)
{
	struct trash_req q = { NOPE "/f", 0, 0 };
	struct trash_report tr;
	struct trash_op_report op;
	struct stale_record *sr;
	struct stale_tx tx = { .txid = 1 };
	char *paths[1] = { NOPE };

	ck_assert_int_lt(trash_move(&q, 1, 1, "b", &tr, NULL), 0);
	trash_report_free(&tr);
	ck_assert_int_lt(trash_undelete(paths, 1, 0, &op, NULL), 0);
	trash_op_report_free(&op);
	ck_assert_int_lt(trash_purge(paths, 1, 0, &op, NULL), 0);
	trash_op_report_free(&op);
	ck_assert_int_lt(stale_read(NOPE, &sr, NULL), 0);
	ck_assert_int_lt(stale_begin(NOPE "/b", 1, 1, &tx, NULL), 0);
	ck_assert_int_lt(stale_parse("x", 1, &sr, NULL), 0);
	ck_assert_int_lt(trash_parse("x", 1, &(struct trash_record *){ 0 },
				     NULL), 0);
}
END_TEST

START_TEST(lock_hold_h)
{
	struct lock_hold h, many[2];
	struct lock_req req[2] = { { at("f"), false, 0, 0 },
				   { NOPE, false, 0, 0 } };

	put(at("f"), "x", 1);
	ck_assert_int_lt(lock_hold_open(&h, NOPE, false, NULL), 0);
	ck_assert_int_lt(lock_hold_open(&h, ut_tmpdir, false, NULL), 0);
	lock_hold_init(&h);
	ck_assert_int_lt(lock_hold_set(&h, 1, 0, NULL), 0);
	ck_assert_int_lt(lock_hold_recheck(&h, NULL), 0);
	ck_assert_int_lt(lock_hold_many(many, req, 2, NULL), 0);
}
END_TEST

START_TEST(journal_h)
{
	struct journal *j = NULL, jj = { 0 };
	char out[8];

	ck_assert_int_lt(journal_parse("garbage\n", 8, &j, NULL), 0);
	ck_assert_ptr_null(j);
	ck_assert_int_lt(journal_path_for(at("base.qcow2"), out, sizeof(out),
					  NULL), 0);
	jj.state = JOURNAL_PREPARED;
	ck_assert_int_lt(journal_write(NOPE, &jj, NULL), 0);
	ck_assert_int_lt(journal_read(NOPE, &j, NULL), 0);
	ck_assert_int_lt(journal_read(ut_tmpdir, &j, NULL), 0);
	ck_assert_int_eq(mkdir(at("d"), 0755), 0);
	put(at("d/x"), "x", 1);
	ck_assert_int_lt(journal_remove(at("d"), NULL), 0);
}
END_TEST

START_TEST(recover_h)
{
	struct rec_item it;
	struct rec_report rep;
	struct rec_plan plan;
	struct journal j = { .state = 99 };
	char *paths[] = { NOPE };

	/* a journal that cannot be read: failed, journal kept */
	ck_assert_int_lt(recover_journal(NOPE "/.imgraph-journal-b", false,
					 &it, NULL), 0);
	ck_assert_int_eq(it.outcome, REC_FAILED);
	free(it.journal);
	/* an invalid journal that cannot be set aside: NAME.bad is longer
	 * than a file name may be */
	char name[256];
	snprintf(name, sizeof(name), "%s%0*d", JOURNAL_PREFIX,
		 (int)(252 - strlen(JOURNAL_PREFIX)), 0);
	put(at(name), "garbage", 7);
	ck_assert_int_lt(recover_journal(at(name), false, &it, NULL), 0);
	ck_assert_int_eq(it.outcome, REC_FAILED);
	free(it.journal);
	ck_assert_int_lt(recover_plan(&j, NULL, REC_OLD, false, &plan, NULL),
			 0);
	ck_assert_int_lt(recover_paths(paths, 1, false, &rep, NULL), 0);
	recover_report_free(&rep);
}
END_TEST

START_TEST(relink_h)
{
	struct relink_target t = { .path = at("p"), .fmt = "qcow2", .fd = -1,
				   .new_name = "b", .new_fmt = "qcow2" };
	struct journal_parent jp;
	struct journal_users ju;
	struct journal j = { .state = JOURNAL_PREPARED };
	int fds[1] = { -1 };

	ck_assert_int_lt(relink_prepare_parent(&t, &jp, NULL), 0);
	ck_assert_int_lt(relink_prepare_users(NOPE, "x", 1, "y",
					      JOURNAL_MAX_USERS + 1, &ju, NULL),
			 0);
	ju.path = NOPE;
	ju.old_data = (uint8_t *)"x";
	ju.old_len = 1;
	ck_assert_int_lt(relink_users_unchanged(&ju, NULL), 0);
	ck_assert_int_lt(relink_apply(NOPE, &j, fds, NULL), 0);
	ck_assert_int_lt(relink_write_range(-1, "p", 0, (const uint8_t *)"x",
					    1, NULL), 0);
	ck_assert_int_lt(relink_write_users(NOPE, (const uint8_t *)"x", 1,
					    NULL), 0);
}
END_TEST

static Suite *errp_suite(void)
{
	Suite *s = suite_create("errp");
	TCase *tc = tcase_create("null-err");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, err_h);
	tcase_add_test(tc, io_replace_h);
	tcase_add_test(tc, format_h);
	tcase_add_test(tc, img_h);
	tcase_add_test(tc, chain_h);
	tcase_add_test(tc, graph_h);
	tcase_add_test(tc, plan_and_commit_h);
	tcase_add_test(tc, records_h);
	tcase_add_test(tc, lock_hold_h);
	tcase_add_test(tc, journal_h);
	tcase_add_test(tc, recover_h);
	tcase_add_test(tc, relink_h);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(errp_suite());
}
