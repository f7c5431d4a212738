/* demo.c - `imgraph --demo`: a small pool that teaches the editor.
 *
 * Two trees and a raw image, built with qemu-img and qemu-io (so QEMU, not
 * our writer, made every cluster):
 *
 *   base.qcow2  <- mid.qcow2 <- top.qcow2 <- vm-web.qcow2
 *                                          <- vm-db.qcow2
 *     Commit top into base is the clean multi-parent case: base and mid
 *     have no other overlays, and both overlays of top are relinked to
 *     base.  base and top hold compressed and zero clusters.
 *
 *   golden.qcow2 <- dev.qcow2 <- dev-snap.qcow2
 *                <- test.qcow2
 *     A base with two branches.  Committing dev into golden conflicts:
 *     golden's other overlay, test.qcow2, would read changed data.
 *
 *   scratch.raw  a raw image with no backing file.
 */
#include "editor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

extern char **environ;

const char demo_lessons[] =
	"Try this in the editor:\n"
	"  1. select top.qcow2, press t; select base.qcow2, press b; press p:\n"
	"     a clean plan that relinks vm-web and vm-db to base.\n"
	"  2. press c to commit it (asks before copying and before relinking).\n"
	"  3. mark dev.qcow2 as top and golden.qcow2 as base and press p:\n"
	"     a conflict, because test.qcow2 also reads golden.qcow2.\n"
	"  4. press m on top.qcow2 for its cluster map (zero and compressed\n"
	"     clusters included); ? lists every key.\n";

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/bin:/bin";
	char buf[4096];
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? p : ".", prog);
		if (access(buf, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

/* Run argv (PATH search) in dir with stdout discarded; 0 on exit 0. */
static int run(const char *dir, char *const argv[], struct img_err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* qemu resolves relative backing names against the overlay's
	 * directory, but the image names themselves are relative to dir. */
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return err_set_errno(e, rc, "%s: cannot run", argv[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_set_errno(e, errno, "%s: wait", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char cmd[512] = "";
		for (int i = 0; argv[i]; i++) {
			size_t o = strlen(cmd);
			snprintf(cmd + o, sizeof(cmd) - o, "%s%s", i ? " " : "",
				 argv[i]);
		}
		return err_set(e, EIO, "demo: '%s' failed (%s %d)", cmd,
			       WIFEXITED(status) ? "exit" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status)
						 : WTERMSIG(status));
	}
	return 0;
}

static int create(const char *dir, const char *name, const char *backing,
		  struct img_err *e)
{
	if (backing) {
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
				 "-b", (char *)backing, "-F", "qcow2",
				 (char *)name, NULL };
		return run(dir, argv, e);
	}
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
			 (char *)name, "64M", NULL };
	return run(dir, argv, e);
}

/* qemu-io -f FMT NAME -c CMD [-c CMD ...] (cmds NULL-terminated). */
static int io(const char *dir, const char *fmt, const char *name,
	      const char *const *cmds, struct img_err *e)
{
	char *argv[32];
	int n = 0;
	argv[n++] = "qemu-io";
	argv[n++] = "-f";
	argv[n++] = (char *)fmt;
	for (int i = 0; cmds[i] && n < 28; i++) {
		argv[n++] = "-c";
		argv[n++] = (char *)cmds[i];
	}
	argv[n++] = (char *)name;
	argv[n] = NULL;
	return run(dir, argv, e);
}

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

int demo_build(const char *dir, char *out, size_t outlen, struct img_err *e)
{
	if (!in_path("qemu-img") || !in_path("qemu-io"))
		return err_set(e, ENOENT,
			       "--demo needs qemu-img and qemu-io, which are "
			       "not installed: install the package qemu-utils "
			       "(apt-get install qemu-utils)");
	if (dir) {
		if (mkdir(dir, 0777) < 0 && errno != EEXIST)
			return err_set_errno(e, errno, "%s: cannot create "
					     "the demo directory", dir);
		int r = dir_is_empty(dir);
		if (r < 0)
			return err_set_errno(e, -r, "%s: cannot read the demo "
					     "directory", dir);
		if (!r)
			return err_set(e, EEXIST, "%s: not empty; give a new or "
				       "empty directory for the demo pool", dir);
		snprintf(out, outlen, "%s", dir);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(out, outlen, "%s/imgraph-demo.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(out))
			return err_set_errno(e, errno, "%s: cannot create a "
					     "temporary directory", out);
	}
	const char *d = out;
	int r;
	/* Tree A: the clean multi-parent commit (top into base). */
	if ((r = create(d, "base.qcow2", NULL, e)) ||
	    (r = io(d, "qcow2", "base.qcow2", (const char *[]){
			"write -P 0x11 0 4M",
			"write -c -P 0x22 4M 1M",      /* compressed */
			"write -z 6M 1M",              /* zero clusters */
			"write -P 0x12 16M 2M", NULL }, e)) ||
	    (r = create(d, "mid.qcow2", "base.qcow2", e)) ||
	    (r = io(d, "qcow2", "mid.qcow2", (const char *[]){
			"write -P 0x33 1M 1M",
			"write -P 0x34 20M 1M", NULL }, e)) ||
	    (r = create(d, "top.qcow2", "mid.qcow2", e)) ||
	    (r = io(d, "qcow2", "top.qcow2", (const char *[]){
			"write -P 0x44 2M 2M",
			"write -z 16M 512K",           /* hides base data */
			"write -c -P 0x45 24M 1M", NULL }, e)) ||
	    (r = create(d, "vm-web.qcow2", "top.qcow2", e)) ||
	    (r = io(d, "qcow2", "vm-web.qcow2", (const char *[]){
			"write -P 0x55 0 256K", NULL }, e)) ||
	    (r = create(d, "vm-db.qcow2", "top.qcow2", e)) ||
	    (r = io(d, "qcow2", "vm-db.qcow2", (const char *[]){
			"write -P 0x66 8M 1M", NULL }, e)))
		return r;
	/* Tree B: a base with two branches; dev into golden conflicts. */
	if ((r = create(d, "golden.qcow2", NULL, e)) ||
	    (r = io(d, "qcow2", "golden.qcow2", (const char *[]){
			"write -P 0x77 0 8M", NULL }, e)) ||
	    (r = create(d, "dev.qcow2", "golden.qcow2", e)) ||
	    (r = io(d, "qcow2", "dev.qcow2", (const char *[]){
			"write -P 0x88 0 1M", NULL }, e)) ||
	    (r = create(d, "dev-snap.qcow2", "dev.qcow2", e)) ||
	    (r = io(d, "qcow2", "dev-snap.qcow2", (const char *[]){
			"write -P 0x99 1M 1M", NULL }, e)) ||
	    (r = create(d, "test.qcow2", "golden.qcow2", e)) ||
	    (r = io(d, "qcow2", "test.qcow2", (const char *[]){
			"write -P 0xaa 2M 1M", NULL }, e)))
		return r;
	/* A raw image on its own. */
	{
		char *argv[] = { "qemu-img", "create", "-q", "-f", "raw",
				 "scratch.raw", "16M", NULL };
		if ((r = run(d, argv, e)) ||
		    (r = io(d, "raw", "scratch.raw", (const char *[]){
				"write -P 0xcc 1M 1M", NULL }, e)))
			return r;
	}
	return 0;
}
