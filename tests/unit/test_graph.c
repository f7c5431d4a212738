/* test_graph.c - the error contract of the graph and plan rooms: a failure
 * keeps its cause (a /proc scan that cannot look is neither "no openers"
 * nor "out of memory"), and a NULL error pointer is never dereferenced;
 * and the pull's plan beside a refused commit (roles, recommendation).
 * Images are made with the format API in a temporary directory; real
 * qemu-img pools are scanned in tests/it/tree_*.sh and plan_*.sh. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/graph/chain.h"
#include "core/graph/graph.h"
#include "core/graph/lock.h"
#include "core/graph/resolve.h"
#include "core/graph/users.h"
#include "core/commit/pull.h"
#include "core/plan/plan.h"
#include "core/plan/plan_pull.h"
#include "core/plan/policy.h"
#include "formats/img.h"

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", ut_tmpdir, name);
}

static void make_qcow2(const char *name, const char *backing)
{
	struct img_create_opts o = { .size = 1 << 20, .backing = backing,
				     .backing_fmt = backing ? "qcow2" : NULL };
	struct img_err e = { 0 };
	char p[PATH_MAX];

	tmp_path(p, sizeof(p), name);
	ck_assert_msg(img_create(img_format_find("qcow2"), p, &o, &e) == 0,
		      "%s", e.msg);
}

/* Every descriptor the (lowered) limit allows, taken, so that the next
 * opendir fails with EMFILE. */
struct fd_fill {
	int fds[1024];
	int n;
	struct rlimit old;
};

static void fds_exhaust(struct fd_fill *f)
{
	struct rlimit rl;
	int fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &f->old), 0);
	rl = f->old;
	if (rl.rlim_cur > 256)
		rl.rlim_cur = 256;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	f->n = 0;
	f->fds[f->n++] = fd;
	while (f->n < (int)(sizeof(f->fds) / sizeof(f->fds[0]))) {
		int d = dup(fd);

		if (d < 0) {
			ck_assert_int_eq(errno, EMFILE);
			return;
		}
		f->fds[f->n++] = d;
	}
	ck_abort_msg("could not run out of descriptors");
}

static void fds_release(struct fd_fill *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fds[i]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &f->old), 0);
}

/* A child that has path open, without any lock, until killed. */
static pid_t spawn_opener(const char *path)
{
	int pfd[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY);

		close(pfd[0]);
		if (fd < 0 || write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Regression: lock_find_openers treated every failure to open /proc as
 * "no /proc", so a scan that ran out of descriptors reported no openers,
 * and plan_check_locks turned any failure into ENOMEM. */
START_TEST(opener_scan_failure_keeps_cause)
{
	struct lock_opener *op = NULL;
	struct img_err e = { 0 };
	struct fd_fill fill;
	char p[PATH_MAX];
	struct stat st;
	int n = -1, r;
	pid_t child;

	make_qcow2("in-use.qcow2", NULL);
	tmp_path(p, sizeof(p), "in-use.qcow2");
	ck_assert_int_eq(stat(p, &st), 0);
	child = spawn_opener(p);
	r = lock_find_openers(&st.st_dev, &st.st_ino, 1, &op, &n, &e);
	ck_assert_msg(r == 0, "%s", e.msg);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(op[0].pid, child);
	ck_assert_int_eq(op[0].idx, 0);
	free(op);

	fds_exhaust(&fill);
	r = lock_find_openers(&st.st_dev, &st.st_ino, 1, &op, &n, &e);
	ck_assert_int_eq(r, -EMFILE);
	ck_assert_int_eq(e.code, EMFILE);
	ck_assert_ptr_nonnull(strstr(e.msg, "/proc"));
	ck_assert_ptr_null(op);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(lock_find_openers(&st.st_dev, &st.st_ino, 1, &op, &n,
					   NULL), -EMFILE);
	fds_release(&fill);
	reap(child);
}
END_TEST

/* Regression: plan_build reported every failure of its steps as "plan:
 * out of memory" (and, before that, the opener scan could not fail). */
START_TEST(plan_failure_keeps_cause)
{
	char *paths[1] = { ut_tmpdir };
	struct scan_opts so = { 0 };
	struct img_err e = { 0 };
	struct graph *g = NULL;
	struct plan *p = NULL;
	struct fd_fill fill;
	char tp[PATH_MAX];
	int top, r;

	make_qcow2("base.qcow2", NULL);
	make_qcow2("top.qcow2", "base.qcow2");
	ck_assert_msg(graph_scan(paths, 1, &so, &g, &e) == 0, "%s", e.msg);
	tmp_path(tp, sizeof(tp), "top.qcow2");
	top = graph_lookup(g, tp, &e);
	ck_assert_msg(top >= 0, "%s", e.msg);
	ck_assert_msg(plan_build(g, top, -1, NULL, &p, &e) == 0, "%s", e.msg);
	ck_assert(plan_runnable(p));
	plan_free(p);

	fds_exhaust(&fill);
	p = NULL;
	memset(&e, 0, sizeof(e));
	r = plan_build(g, top, -1, NULL, &p, &e);
	ck_assert_int_eq(r, -EMFILE);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(e.code, EMFILE);
	ck_assert_msg(strstr(e.msg, "/proc") && !strstr(e.msg, "memory"),
		      "%s", e.msg);
	ck_assert_int_eq(plan_build(g, top, -1, NULL, &p, NULL), -EMFILE);
	fds_release(&fill);
	graph_free(g);
}
END_TEST

/* Every public entry point of the graph and plan rooms, on failing input,
 * with a NULL error pointer: a failure code, no crash. */
START_TEST(null_error_pointer_is_ignored)
{
	char missing[PATH_MAX], bad[PATH_MAX], tp[PATH_MAX], out[16];
	char *paths[1] = { missing };
	char *ok_paths[1] = { ut_tmpdir };
	struct users_file *uf = NULL;
	struct lock_holder *h = NULL;
	struct lock_state ls;
	struct chain *c = NULL;
	struct graph *g = NULL;
	struct plan *p = NULL;
	enum resolve_kind k;
	uint64_t pnum;
	struct chain_status cs;
	char *text = NULL;
	size_t len;
	int n, top;
	FILE *f;

	tmp_path(missing, sizeof(missing), "missing.qcow2");
	tmp_path(bad, sizeof(bad), "bad.yaml");
	f = fopen(bad, "w");
	ck_assert_ptr_nonnull(f);
	fputs("users: [ { name: x, bogus: 1 } ]\n", f);
	ck_assert_int_eq(fclose(f), 0);

	ck_assert_int_lt(graph_scan(paths, 1, NULL, &g, NULL), 0);
	ck_assert_ptr_null(g);
	ck_assert_int_lt(users_load(missing, &uf, NULL), 0);
	ck_assert_int_lt(users_load(bad, &uf, NULL), 0);
	ck_assert_ptr_null(uf);
	ck_assert_int_lt(users_repoint(bad, 0, 0, missing, &text, &len, &n,
				       NULL), 0);
	ck_assert_ptr_null(text);
	ck_assert_int_lt(resolve_backing("d/ov", "a-long-backing-name", out,
					 sizeof(out), &k, NULL), 0);
	ck_assert_int_lt(resolve_make_name(missing, "/nonexistent-dir/x", 1,
					   out, sizeof(out), NULL), 0);
	ck_assert_int_lt(lock_probe_file(missing, &ls, NULL), 0);
	ck_assert_int_lt(lock_probe_file(ut_tmpdir, &ls, NULL), 0);
	ck_assert_int_eq(lock_find_holders(0, 0, &h, &n, NULL), 0);
	free(h);
	ck_assert_int_lt(chain_open(missing, NULL, 0, 0, 0, &c, NULL), 0);
	ck_assert_ptr_null(c);

	make_qcow2("top.qcow2", NULL);
	tmp_path(tp, sizeof(tp), "top.qcow2");
	ck_assert_int_eq(chain_open(tp, "qcow2", 0, 0, 0, &c, NULL), 0);
	ck_assert_int_lt(chain_block_status(c, 5, 0, 1, &pnum, &cs, NULL), 0);
	ck_assert_int_lt(chain_pread(c, 5, 0, out, 1, NULL), 0);
	chain_close(c);

	ck_assert_int_eq(graph_scan(ok_paths, 1, NULL, &g, NULL), 0);
	ck_assert_int_lt(graph_lookup(g, missing, NULL), 0);
	ck_assert_int_lt(graph_lookup(g, ut_tmpdir, NULL), 0);
	top = graph_lookup(g, tp, NULL);
	ck_assert_int_ge(top, 0);
	/* Problems of the images are conflicts, not failures. */
	ck_assert_int_eq(plan_build(g, top, -1, NULL, &p, NULL), 0);
	ck_assert(!plan_runnable(p));
	plan_free(p);
	ck_assert_int_eq(plan_build(g, -1, -1, NULL, &p, NULL), 0);
	ck_assert(!plan_runnable(p));
	plan_free(p);
	ck_assert_int_eq(lock_probe_graph(g, NULL), 0);
	graph_free(g);
}
END_TEST

static int node_of(struct graph *g, const char *name)
{
	char p[PATH_MAX];
	int id;

	tmp_path(p, sizeof(p), name);
	id = graph_lookup(g, p, NULL);
	ck_assert_msg(id >= 0, "%s not in the pool", name);
	return id;
}

/* A template with two clones, a snapshot on the first: the commit of the
 * snapshot into the template is refused (the other clone reads it) and
 * carries the pull as its alternative, which it recommends; the pull's
 * roles come from the policy table: top written, base and the clone
 * between only read. */
START_TEST(pull_plan_beside_refused_commit)
{
	char *paths[1] = { ut_tmpdir };
	struct plan_opts pull = { .pull = true };
	struct scan_opts so = { 0 };
	struct img_err e = { 0 };
	struct role_policy rp;
	struct graph *g = NULL;
	struct plan *p = NULL, *q = NULL;
	int tpl, c1, snap, *ids = NULL, n = 0;

	make_qcow2("tpl.qcow2", NULL);
	make_qcow2("c1.qcow2", "tpl.qcow2");
	make_qcow2("c2.qcow2", "tpl.qcow2");
	make_qcow2("snap.qcow2", "c1.qcow2");
	ck_assert_msg(graph_scan(paths, 1, &so, &g, &e) == 0, "%s", e.msg);
	tpl = node_of(g, "tpl.qcow2");
	c1 = node_of(g, "c1.qcow2");
	snap = node_of(g, "snap.qcow2");

	ck_assert_int_eq(plan_build(g, snap, tpl, NULL, &p, &e), 0);
	ck_assert(!plan_runnable(p));
	ck_assert(plan_base_shared(p));
	ck_assert_ptr_nonnull(p->alt_pull);
	ck_assert(plan_runnable(p->alt_pull));
	ck_assert_int_eq(plan_recommend(p), PLAN_STRATEGY_PULL);
	plan_free(p);

	ck_assert_int_eq(plan_build(g, snap, tpl, &pull, &q, &e), 0);
	ck_assert(plan_runnable(q));
	ck_assert_ptr_null(q->alt_pull);
	ck_assert_int_eq(q->nparents, 1);
	ck_assert_int_eq(q->parents[0].node, snap);
	ck_assert_int_eq(q->leaf, PLAN_LEAF_NONE);
	ck_assert_int_eq(q->pull->bytes_to_copy, 0);     /* c1 is empty */
	ck_assert_int_eq(plan_recommend(q), PLAN_STRATEGY_PULL);
	plan_policy(g, q, snap, &rp);
	ck_assert(rp.write && rp.lock);
	plan_policy(g, q, c1, &rp);
	ck_assert(!rp.write && rp.lock);
	ck_assert(!(rp.shared & PERM_WRITE));
	plan_policy(g, q, tpl, &rp);
	ck_assert(!rp.write && rp.lock);
	ck_assert_int_eq(rp.perm, PERM_CONSISTENT_READ);
	ck_assert_int_eq(plan_files(q, &ids, &n), 0);
	ck_assert_int_eq(n, 3);
	free(ids);
	plan_free(q);

	/* Nothing between: no alternative, and a pull of it is refused. */
	ck_assert_int_eq(plan_build(g, c1, tpl, NULL, &p, &e), 0);
	ck_assert_ptr_null(p->alt_pull);
	ck_assert_int_eq(plan_recommend(p), PLAN_STRATEGY_NONE);
	plan_free(p);
	ck_assert_int_eq(plan_build(g, c1, tpl, &pull, &q, &e), 0);
	ck_assert(!plan_runnable(q));
	ck_assert_int_eq(q->conflicts[0].kind, CONFLICT_INVALID_PAIR);
	plan_free(q);
	graph_free(g);
}
END_TEST

START_TEST(pull_unit_is_the_allocation_unit)
{
	ck_assert_int_eq(pull_unit(65536, false), 65536);
	ck_assert_int_eq(pull_unit(65536, true), 2048);    /* 32 subclusters */
	ck_assert_int_eq(pull_unit(2u << 20, true), 65536);
	ck_assert_int_eq(pull_unit(0, false), 4096);       /* no clusters */
}
END_TEST

static Suite *graph_suite(void)
{
	Suite *s = suite_create("graph");
	TCase *tc = tcase_create("errors");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, opener_scan_failure_keeps_cause);
	tcase_add_test(tc, plan_failure_keeps_cause);
	tcase_add_test(tc, null_error_pointer_is_ignored);
	tcase_add_test(tc, pull_plan_beside_refused_commit);
	tcase_add_test(tc, pull_unit_is_the_allocation_unit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(graph_suite());
}
