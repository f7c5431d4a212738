/* test_io_replace.c - the durable whole-file primitive (io_replace.h):
 * content and atomicity, mode and owner kept, a symlink at the target
 * followed (the link stays a link), loops and non-regular targets refused,
 * the temporary never a planted name, abort, injected failures leaving the
 * old file, and the stale-temporary cleaner telling a dead writer's
 * temporary (removed) from a live one's (kept). */
#include "helpers.h"
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/io/io.h"
#include "formats/io/io_replace.h"

static char *at(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", ut_tmpdir, name);
	return buf[k];
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* The whole content of path ("" when missing). */
static const char *get(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int count_temps(void)
{
	DIR *d = opendir(ut_tmpdir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += io_replace_is_temp(de->d_name);
	closedir(d);
	return n;
}

START_TEST(new_file_and_replace)
{
	struct img_err e;
	struct stat st;
	mode_t old = umask(022);

	ck_assert_int_eq(io_replace_file(at("f"), "one", 3, 0640, &e), 0);
	ck_assert_str_eq(get(at("f")), "one");
	ck_assert_int_eq(stat(at("f"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	/* An existing file keeps its mode whatever mode is passed. */
	ck_assert_int_eq(chmod(at("f"), 0604), 0);
	ck_assert_int_eq(io_replace_file(at("f"), "second", 6, 0600, &e), 0);
	ck_assert_str_eq(get(at("f")), "second");
	ck_assert_int_eq(stat(at("f"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0604);
	/* Empty content is a valid file. */
	ck_assert_int_eq(io_replace_file(at("f"), "", 0, 0600, &e), 0);
	ck_assert_int_eq(stat(at("f"), &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(count_temps(), 0);
	umask(old);
}
END_TEST

START_TEST(owner_kept)
{
	struct img_err e;
	struct stat st;

	if (geteuid() != 0)
		return;         /* only root can give a file away */
	put(at("owned"), "old", 0664);
	ck_assert_int_eq(chown(at("owned"), 4321, 4322), 0);
	ck_assert_int_eq(io_replace_file(at("owned"), "new", 3, 0600, &e), 0);
	ck_assert_int_eq(stat(at("owned"), &st), 0);
	ck_assert_int_eq(st.st_uid, 4321);
	ck_assert_int_eq(st.st_gid, 4322);
	ck_assert_int_eq(st.st_mode & 07777, 0664);
}
END_TEST

START_TEST(symlink_at_target_followed)
{
	struct img_err e;
	struct stat st;
	char buf[64];
	ssize_t n;

	ck_assert_int_eq(mkdir(at("sub"), 0755), 0);
	put(at("sub/real"), "old", 0644);
	/* two hops, one relative to its own directory */
	ck_assert_int_eq(symlink("real", at("sub/hop")), 0);
	ck_assert_int_eq(symlink("sub/hop", at("link")), 0);
	ck_assert_int_eq(io_replace_file(at("link"), "new", 3, 0600, &e), 0);
	ck_assert_str_eq(get(at("sub/real")), "new");
	ck_assert_int_eq(lstat(at("link"), &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(lstat(at("sub/hop"), &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	n = readlink(at("link"), buf, sizeof(buf) - 1);
	ck_assert_int_eq(n, 7);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "sub/hop");
	/* The temporary was made next to the file replaced, and is gone. */
	ck_assert_int_eq(count_temps(), 0);
	/* A dangling link: the file is created where it points. */
	ck_assert_int_eq(symlink("sub/fresh", at("dangling")), 0);
	ck_assert_int_eq(io_replace_file(at("dangling"), "made", 4, 0600, &e),
			 0);
	ck_assert_str_eq(get(at("sub/fresh")), "made");
	ck_assert_int_eq(lstat(at("dangling"), &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
}
END_TEST

START_TEST(loops_and_non_regular_refused)
{
	struct img_err e;

	ck_assert_int_eq(symlink("b", at("a")), 0);
	ck_assert_int_eq(symlink("a", at("b")), 0);
	ck_assert_int_eq(io_replace_file(at("a"), "x", 1, 0600, &e), -ELOOP);
	ck_assert_ptr_nonnull(strstr(e.msg, at("a")));
	ck_assert_int_eq(mkdir(at("dir"), 0755), 0);
	ck_assert_int_eq(io_replace_file(at("dir"), "x", 1, 0600, &e),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
	ck_assert_int_eq(mkfifo(at("fifo"), 0600), 0);
	ck_assert_int_eq(io_replace_file(at("fifo"), "x", 1, 0600, &e),
			 -EINVAL);
	ck_assert_int_eq(io_replace_file(at("none/x"), "x", 1, 0600, &e),
			 -ENOENT);
	ck_assert_int_eq(count_temps(), 0);
}
END_TEST

START_TEST(temporary_is_fresh_and_unpredictable)
{
	struct io_replace a, b;
	struct img_err e;
	struct stat st;

	put(at("t"), "old", 0644);
	ck_assert_int_eq(io_replace_begin(&a, at("t"), 0600, &e), 0);
	ck_assert_int_eq(io_replace_begin(&b, at("t"), 0600, &e), 0);
	ck_assert_str_ne(a.tmp, b.tmp);
	ck_assert(io_replace_is_temp(strrchr(a.tmp, '/') + 1));
	ck_assert_int_eq(fstat(a.fd, &st), 0);
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(st.st_size, 0);
	/* abort removes the temporary and leaves the target */
	io_replace_abort(&a);
	io_replace_abort(&a);   /* twice is fine */
	ck_assert_int_eq(io_pwrite(b.fd, "new", 3, 0), 0);
	ck_assert_int_eq(io_replace_commit(&b, &e), 0);
	io_replace_abort(&b);   /* after commit: nothing to do */
	ck_assert_str_eq(get(at("t")), "new");
	ck_assert_int_eq(count_temps(), 0);
	ck_assert(!io_replace_is_temp(".imgraph-tmp-0123"));
	ck_assert(!io_replace_is_temp(".imgraph-tmp-0123456789abcdeF"));
	ck_assert(!io_replace_is_temp("x.imgraph-tmp-0123456789abcdef"));
}
END_TEST

/* Under an injected failure at each op of a replacement (create, write,
 * sync, rename), the target keeps its old content and no temporary stays;
 * at the directory sync the new content is in place and the error still
 * reported. */
START_TEST(faults_leave_the_old_file)
{
	struct img_err e;
	char spec[32];

	for (int k = 1; k <= 5; k++) {
		put(at("victim"), "old", 0644);
		snprintf(spec, sizeof(spec), "err:%d:EIO", k);
		setenv("IMGRAPH_FAULT", spec, 1);
		io_fault_reload();
		int r = io_replace_file(at("victim"), "new", 3, 0600, &e);
		unsetenv("IMGRAPH_FAULT");
		io_fault_reload();
		ck_assert_int_eq(r, -EIO);
		ck_assert_ptr_nonnull(strstr(e.msg, at("victim")));
		ck_assert_str_eq(get(at("victim")), k < 5 ? "old" : "new");
		ck_assert_int_eq(count_temps(), 0);
	}
}
END_TEST

/* A writer holds its temporary (io_replace_begin) until told to exit. */
static pid_t start_writer(int *go)
{
	int ready[2], hold[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(hold), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct io_replace t;
		close(ready[0]);
		close(hold[1]);
		if (io_replace_begin(&t, at("w"), 0600, NULL) < 0)
			_exit(1);
		(void)!write(ready[1], "r", 1);
		(void)!read(hold[0], &c, 1);
		_exit(0);       /* dies without commit or abort */
	}
	close(ready[1]);
	close(hold[0]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*go = hold[1];
	return pid;
}

START_TEST(clean_removes_only_dead_writers_temporaries)
{
	struct img_err e;
	int go, st, n;
	pid_t pid = start_writer(&go);

	/* Not temporaries of ours: a symlink with a temporary's name (never
	 * followed, never removed) and an ordinary file. */
	put(at("outside"), "keep", 0644);
	ck_assert_int_eq(symlink(at("outside"),
				 at(IO_REPLACE_PREFIX "0123456789abcdef")), 0);
	put(at("plain"), "keep", 0644);
	ck_assert_int_eq(count_temps(), 2);
	ck_assert_int_eq(io_replace_clean(ut_tmpdir, &n, &e), 0);
	ck_assert_int_eq(n, 0);         /* the writer is alive */
	ck_assert_int_eq(count_temps(), 2);
	close(go);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(io_replace_clean(ut_tmpdir, &n, &e), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(count_temps(), 1);     /* the symlink stays */
	ck_assert_str_eq(get(at("outside")), "keep");
	ck_assert_str_eq(get(at("plain")), "keep");
	ck_assert_int_eq(io_replace_clean(at("missing"), &n, NULL), -ENOENT);
}
END_TEST

static Suite *io_replace_suite(void)
{
	Suite *s = suite_create("io_replace");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, new_file_and_replace);
	tcase_add_test(tc, owner_kept);
	tcase_add_test(tc, symlink_at_target_followed);
	tcase_add_test(tc, loops_and_non_regular_refused);
	tcase_add_test(tc, temporary_is_fresh_and_unpredictable);
	tcase_add_test(tc, faults_leave_the_old_file);
	tcase_add_test(tc, clean_removes_only_dead_writers_temporaries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(io_replace_suite());
}
