/* test_pool.c - backing-name resolution (resolve.c), permission names and
 * QEMU's conflict rule/message (perm.c), and the users file (users.c):
 * parsing, errors with line:column, and the comment-preserving repoint.
 * Scans of real qemu-img pools are in tests/it/tree_*.sh and plan_*.sh. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/graph/perm.h"
#include "core/graph/perm_edges.h"
#include "core/graph/resolve.h"
#include "core/graph/users.h"

static void put_file(const char *rel, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", ut_tmpdir, rel);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void mkd(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", ut_tmpdir, rel);
	ck_assert_int_eq(mkdir(p, 0755), 0);
}

START_TEST(resolve_kinds)
{
	char out[PATH_MAX];
	enum resolve_kind k;
	struct img_err e = { 0 };

	ck_assert_int_eq(resolve_backing("d/ov", "", out, sizeof(out), &k, &e), 0);
	ck_assert_int_eq(k, RESOLVE_NONE);
	ck_assert_int_eq(resolve_backing("d/ov", NULL, out, sizeof(out), &k, &e), 0);
	ck_assert_int_eq(k, RESOLVE_NONE);
	ck_assert_int_eq(resolve_backing("d/ov", "json:{\"a\":1}", out,
					 sizeof(out), &k, &e), 0);
	ck_assert_int_eq(k, RESOLVE_EXTERNAL);
	ck_assert_int_eq(resolve_backing("d/ov", "nbd://h:1/x", out,
					 sizeof(out), &k, &e), 0);
	ck_assert_int_eq(k, RESOLVE_EXTERNAL);
	ck_assert_int_eq(resolve_backing("d/ov", "file:x", out, sizeof(out),
					 &k, &e), 0);
	ck_assert_int_eq(k, RESOLVE_EXTERNAL);
	/* a colon after the first slash is no protocol */
	ck_assert_int_eq(resolve_backing("d/ov", "./a:b", out, sizeof(out), &k,
					 &e), 0);
	ck_assert_int_eq(k, RESOLVE_FILE);
	ck_assert_str_eq(out, "d/./a:b");
	ck_assert_int_eq(resolve_backing("d/ov", "/etc/x", out, sizeof(out), &k,
					 &e), 0);
	ck_assert_int_eq(k, RESOLVE_FILE);
	ck_assert_str_eq(out, "/etc/x");
}
END_TEST

START_TEST(resolve_relative_to_overlay_dir)
{
	char out[PATH_MAX];
	enum resolve_kind k;
	struct img_err e = { 0 };

	/* QEMU joins onto the overlay's directory, without normalising */
	ck_assert_int_eq(resolve_backing("/p/sub/ov.qcow2", "../base.qcow2",
					 out, sizeof(out), &k, &e), 0);
	ck_assert_str_eq(out, "/p/sub/../base.qcow2");
	ck_assert_int_eq(resolve_backing("ov.qcow2", "base.qcow2", out,
					 sizeof(out), &k, &e), 0);
	ck_assert_str_eq(out, "base.qcow2");
	ck_assert_int_eq(resolve_backing("/ov.qcow2", "b", out, sizeof(out),
					 &k, &e), 0);
	ck_assert_str_eq(out, "/b");
	/* too small a buffer: an error naming the overlay, no overflow */
	ck_assert_int_eq(resolve_backing("/p/sub/ov.qcow2", "../base.qcow2",
					 out, 8, &k, &e), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(e.msg, "/p/sub/ov.qcow2"));
}
END_TEST

START_TEST(make_name_relative_and_absolute)
{
	char ov[PATH_MAX], base[PATH_MAX], out[PATH_MAX], back[PATH_MAX];
	char real[PATH_MAX];
	enum resolve_kind k;
	struct img_err e = { 0 };
	struct stat a, b;

	mkd("a");
	mkd("a/b");
	mkd("c");
	put_file("c/base.qcow2", "x");
	put_file("a/b/ov.qcow2", "y");
	put_file("c/x:y", "z");
	snprintf(ov, sizeof(ov), "%s/a/b/ov.qcow2", ut_tmpdir);
	snprintf(base, sizeof(base), "%s/c/base.qcow2", ut_tmpdir);
	ck_assert_int_eq(resolve_make_name(ov, base, 1, out, sizeof(out), &e),
			 0);
	ck_assert_str_eq(out, "../../c/base.qcow2");
	/* and it leads back to base from the overlay's directory */
	ck_assert_int_eq(resolve_backing(ov, out, back, sizeof(back), &k, &e),
			 0);
	ck_assert_int_eq(stat(back, &a), 0);
	ck_assert_int_eq(stat(base, &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	/* same directory */
	snprintf(ov, sizeof(ov), "%s/c/ov.qcow2", ut_tmpdir);
	ck_assert_int_eq(resolve_make_name(ov, base, 1, out, sizeof(out), &e),
			 0);
	ck_assert_str_eq(out, "base.qcow2");
	/* absolute stays absolute, physical directory */
	ck_assert_int_eq(resolve_make_name(ov, base, 0, out, sizeof(out), &e),
			 0);
	ck_assert_ptr_nonnull(realpath(base, real));
	ck_assert_str_eq(out, real);
	/* a name with ':' before its first '/' gets "./" like QEMU writes */
	snprintf(base, sizeof(base), "%s/c/x:y", ut_tmpdir);
	ck_assert_int_eq(resolve_make_name(ov, base, 1, out, sizeof(out), &e),
			 0);
	ck_assert_str_eq(out, "./x:y");
	/* a missing directory is an error, not a guess */
	snprintf(base, sizeof(base), "%s/nodir/base", ut_tmpdir);
	ck_assert_int_lt(resolve_make_name(ov, base, 1, out, sizeof(out), &e),
			 0);
}
END_TEST

START_TEST(perm_names_and_conflict_message)
{
	char buf[256];
	uint8_t bit, bits;
	struct perm_edge job = { "commit job 'commit'", "base",
				 PERM_CONSISTENT_READ | PERM_WRITE,
				 PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED };
	struct perm_edge ov = { "node 'O'", "backing", PERM_BACKING_PERM,
				PERM_BACKING_SHARED };

	ck_assert_str_eq(perm_names(PERM_ALL, buf, sizeof(buf)),
			 "consistent read, write, write unchanged, resize");
	ck_assert_str_eq(perm_names(0, buf, sizeof(buf)), "");
	ck_assert_int_eq(perm_parse_qapi("write-unchanged", &bit), 0);
	ck_assert_int_eq(bit, PERM_WRITE_UNCHANGED);
	ck_assert_int_eq(perm_parse_qapi("graph-mod", &bit), -EINVAL);
	ck_assert_str_eq(perm_qapi_name(PERM_RESIZE), "resize");
	/* the job needs write, the overlay does not share it */
	ck_assert(perm_edges_conflict(&ov, &job, &bits));
	ck_assert_int_eq(bits, PERM_WRITE);
	/* the overlay's read is shared by the job on base */
	ck_assert(!perm_edges_conflict(&job, &ov, &bits));
	perm_conflict_message(&ov, &job, PERM_WRITE, "N", buf, sizeof(buf));
	ck_assert_str_eq(buf, "Permission conflict on node 'N': permissions "
			 "'write' are both required by commit job 'commit' "
			 "(uses node 'N' as 'base' child) and unshared by node "
			 "'O' (uses node 'N' as 'backing' child).");
	/* an intermediate: the job shares only write|write-unchanged */
	job.perm = 0;
	job.shared = PERM_WRITE | PERM_WRITE_UNCHANGED;
	ck_assert(perm_edges_conflict(&job, &ov, &bits));
	ck_assert_int_eq(bits, PERM_CONSISTENT_READ);
}
END_TEST

static const char users_ok[] =
	"# pool users\n"
	"users:\n"
	"  - name: vm-web01   # the web VM, caf\xc3\xa9\n"
	"    kind: vm\n"
	"    image: top.qcow2\n"
	"    perm: [consistent-read, write]\n"
	"    shared: [consistent-read, write-unchanged]\n"
	"  - name: \"backup \xc3\xa9\"\n"
	"    kind: backup\n"
	"    image: '/abs/other.qcow2'\n"
	"  - name: nbd\n"
	"    kind: export\n"
	"    image: sub/top.qcow2\n"
	"    perm:\n"
	"      - consistent-read\n";

START_TEST(users_parse)
{
	struct users_file *u = NULL;
	struct img_err e = { 0 };
	char p[PATH_MAX], want[PATH_MAX];

	put_file("users.yaml", users_ok);
	snprintf(p, sizeof(p), "%s/users.yaml", ut_tmpdir);
	ck_assert_msg(users_load(p, &u, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(u->n, 3);
	ck_assert_str_eq(u->v[0].name, "vm-web01");
	ck_assert_str_eq(u->v[0].kind, "vm");
	snprintf(want, sizeof(want), "%s/top.qcow2", ut_tmpdir);
	ck_assert_str_eq(u->v[0].path, want);
	ck_assert_int_eq(u->v[0].perm, PERM_CONSISTENT_READ | PERM_WRITE);
	ck_assert_int_eq(u->v[0].line, 3);
	ck_assert_str_eq(u->v[1].path, "/abs/other.qcow2");
	/* defaults: non-vm reads; shares what a guest device shares */
	ck_assert_int_eq(u->v[1].perm, PERM_CONSISTENT_READ);
	ck_assert_int_eq(u->v[1].shared,
			 PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED);
	ck_assert_int_eq(u->v[2].perm, PERM_CONSISTENT_READ);
	users_free(u);
	put_file("empty.yaml", "# nothing yet\n");
	snprintf(p, sizeof(p), "%s/empty.yaml", ut_tmpdir);
	ck_assert_int_eq(users_load(p, &u, &e), 0);
	ck_assert_int_eq(u->n, 0);
	users_free(u);
}
END_TEST

static void expect_error(const char *text, const char *where,
			 const char *what)
{
	struct users_file *u = NULL;
	struct img_err e = { 0 };
	char p[PATH_MAX], w[PATH_MAX + 32];

	put_file("bad.yaml", text);
	snprintf(p, sizeof(p), "%s/bad.yaml", ut_tmpdir);
	ck_assert_int_lt(users_load(p, &u, &e), 0);
	ck_assert_ptr_null(u);
	snprintf(w, sizeof(w), "%s:%s: ", p, where);
	ck_assert_msg(strstr(e.msg, w) == e.msg, "'%s' lacks '%s'", e.msg, w);
	ck_assert_msg(strstr(e.msg, what), "'%s' lacks '%s'", e.msg, what);
}

START_TEST(users_errors)
{
	expect_error("users:\n  - name: a\n    imgae: x\n", "3:5",
		     "unknown key 'imgae'");
	expect_error("users:\n  - name: a\n    image: x\n    perm: [wrte]\n",
		     "4:12", "unknown permission 'wrte'");
	expect_error("users:\n  - name: a\n    kind: vmm\n    image: x\n",
		     "3:11", "unknown kind 'vmm'");
	expect_error("users:\n  - name: a\n", "2:5", "has no 'image'");
	expect_error("users:\n  - &x name: a\n    image: x\n  - *x\n", "4:5",
		     "aliases");
	expect_error("users: [\n", "2:1", "");
	expect_error("vms: []\n", "1:1", "expected 'users'");
	expect_error("users:\n  - name: a\n    image: nbd://h/x\n", "3:12",
		     "protocol");
	expect_error("users:\n  - name: a\n    name: b\n    image: x\n", "3:5",
		     "duplicate key 'name'");
	expect_error("users: 3\n", "1:8", "must be a list");
	/* qmp: an absolute path of a socket (when it exists), a string */
	expect_error("users:\n  - name: a\n    image: x\n    qmp: m.sock\n",
		     "4:10", "'qmp' must be the absolute path of a QMP "
		     "monitor socket, not 'm.sock'");
	expect_error("users:\n  - name: a\n    image: x\n    qmp: [/a]\n",
		     "4:10", "'qmp' must be a non-empty string");
	expect_error("users:\n  - name: a\n    image: x\n    qmp: ''\n",
		     "4:10", "'qmp' must be a non-empty string");
	expect_error("users:\n  - name: a\n    image: x\n    qmp: /dev/null\n",
		     "4:10", "'qmp' of user 'a': /dev/null is not a socket");
}
END_TEST

START_TEST(users_qmp)
{
	struct users_file *u = NULL;
	struct img_err e = { 0 };
	char p[PATH_MAX];

	/* a missing socket is allowed (the VM may be stopped) */
	put_file("q.yaml", "users:\n  - name: a\n    image: x\n"
		 "    qmp: /nonexistent/vm.qmp\n  - name: b\n    image: y\n");
	snprintf(p, sizeof(p), "%s/q.yaml", ut_tmpdir);
	ck_assert_msg(users_load(p, &u, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(u->v[0].qmp, "/nonexistent/vm.qmp");
	ck_assert_int_eq(u->v[0].qmp_line, 4);
	ck_assert_ptr_null(u->v[1].qmp);
	users_free(u);
}
END_TEST

/* users.yaml holding text, next to top.qcow2 and base.qcow2: repoint
 * top's entries onto base; returns the new text (caller frees), *n the
 * number of entries changed. */
static char *repoint_top(const char *text, int *n)
{
	char p[PATH_MAX], top[PATH_MAX], base[PATH_MAX], *out = NULL;
	struct img_err e = { 0 };
	struct stat st;
	size_t len;

	put_file("top.qcow2", "t");
	put_file("base.qcow2", "b");
	put_file("users.yaml", text);
	snprintf(p, sizeof(p), "%s/users.yaml", ut_tmpdir);
	snprintf(top, sizeof(top), "%s/top.qcow2", ut_tmpdir);
	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	ck_assert_int_eq(stat(top, &st), 0);
	ck_assert_msg(users_repoint(p, st.st_dev, st.st_ino, base, &out, &len,
				    n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(len, strlen(out));
	return out;
}

START_TEST(users_repoint_keeps_everything_else)
{
	char p[PATH_MAX], top[PATH_MAX], base[PATH_MAX], *text = NULL;
	struct img_err e = { 0 };
	struct stat st;
	size_t len;
	int n;

	mkd("sub");
	put_file("sub/top.qcow2", "other");
	text = repoint_top(users_ok, &n);
	ck_assert_int_eq(n, 1);
	snprintf(p, sizeof(p), "%s/users.yaml", ut_tmpdir);
	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	/* only the one scalar changed; the multibyte comment before it
	 * shifts character and byte offsets apart */
	{
		const char *at = strstr(users_ok, "image: top.qcow2");
		size_t pre = (size_t)(at - users_ok) + 7;

		ck_assert_int_eq(strncmp(text, users_ok, pre), 0);
		ck_assert_int_eq(strncmp(text + pre, "base.qcow2\n", 11), 0);
		ck_assert_str_eq(text + pre + 10, at + 16);
	}
	free(text);
	/* nothing matches: the text comes back unchanged */
	snprintf(top, sizeof(top), "%s/base.qcow2", ut_tmpdir);
	ck_assert_int_eq(stat(top, &st), 0);
	ck_assert_int_eq(users_repoint(p, st.st_dev, st.st_ino, base, &text,
				       &len, &n, &e), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_str_eq(text, users_ok);
	free(text);
	/* a name needing quotes is written double-quoted */
	put_file("sp ace.qcow2", "s");
	snprintf(base, sizeof(base), "%s/sp ace.qcow2", ut_tmpdir);
	snprintf(top, sizeof(top), "%s/sub/top.qcow2", ut_tmpdir);
	ck_assert_int_eq(stat(top, &st), 0);
	ck_assert_int_eq(users_repoint(p, st.st_dev, st.st_ino, base, &text,
				       &len, &n, &e), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(text, "image: \"sp ace.qcow2\"\n"));
	free(text);
}
END_TEST

/* fz_users find: a UTF-8 byte-order mark before the text.  libyaml's own
 * encoding detection skipped it without counting it, so the renderer
 * edited the bytes three places early and wrote YAML that did not parse. */
START_TEST(users_repoint_after_byte_order_mark)
{
	static const char bom_text[] = "\xef\xbb\xbfusers:\n"
		"  - name: a\n    kind: vm\n    image: top.qcow2\n"
		"  - name: b\n    kind: vm\n    image: top.qcow2\n";
	char p[PATH_MAX], top[PATH_MAX], base[PATH_MAX], *text, *again = NULL;
	struct img_err e = { 0 };
	struct stat st;
	size_t len;
	int n;

	text = repoint_top(bom_text, &n);
	ck_assert_int_eq(n, 2);
	snprintf(p, sizeof(p), "%s/users.yaml", ut_tmpdir);
	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	ck_assert_str_eq(text, "\xef\xbb\xbfusers:\n"
		"  - name: a\n    kind: vm\n    image: base.qcow2\n"
		"  - name: b\n    kind: vm\n    image: base.qcow2\n");
	/* and the result is a users file again */
	put_file("users.yaml", text);
	snprintf(top, sizeof(top), "%s/base.qcow2", ut_tmpdir);
	ck_assert_int_eq(stat(top, &st), 0);
	ck_assert_msg(users_repoint(p, st.st_dev, st.st_ino, base, &again,
				    &len, &n, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(n, 2);
	free(again);
	free(text);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, resolve_kinds);
	tcase_add_test(tc, resolve_relative_to_overlay_dir);
	tcase_add_test(tc, make_name_relative_and_absolute);
	tcase_add_test(tc, perm_names_and_conflict_message);
	tcase_add_test(tc, users_parse);
	tcase_add_test(tc, users_errors);
	tcase_add_test(tc, users_qmp);
	tcase_add_test(tc, users_repoint_keeps_everything_else);
	tcase_add_test(tc, users_repoint_after_byte_order_mark);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(pool_suite());
}
