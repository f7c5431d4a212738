/* io_replace.c - durable whole-file replacement (see io_replace.h). */
#include "io_replace.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEX_DIGITS 16
/* A name already taken (O_EXCL said EEXIST) is retried with fresh digits;
 * 64 random bits colliding this often means someone is guessing. */
#define CREATE_TRIES 16

/* Directory part of path ("." when it has none) into dir. */
static int dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (!slash)
		n = snprintf(dir, len, ".");
	else if (slash == path)
		n = snprintf(dir, len, "/");
	else
		n = snprintf(dir, len, "%.*s", (int)(slash - path), path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Follow symlinks at name (not in its directories: those the kernel
 * follows as usual) to the file to replace.  *st is that file's lstat, or
 * st_mode 0 when it does not exist yet. */
static int resolve(const char *name, char *out, size_t len, struct stat *st)
{
	char link[PATH_MAX], dir[PATH_MAX];

	if (snprintf(out, len, "%s", name) >= (int)len)
		return -ENAMETOOLONG;
	for (int hops = 0;; hops++) {
		ssize_t n;

		if (lstat(out, st) < 0) {
			if (errno != ENOENT)
				return -errno;
			memset(st, 0, sizeof(*st));
			return 0;
		}
		if (!S_ISLNK(st->st_mode))
			return S_ISREG(st->st_mode) ? 0 : -EINVAL;
		if (hops == IO_REPLACE_MAX_LINKS)
			return -ELOOP;
		n = readlink(out, link, sizeof(link) - 1);
		if (n < 0)
			return -errno;
		if ((size_t)n == sizeof(link) - 1)
			return -ENAMETOOLONG;
		link[n] = '\0';
		if (link[0] == '/') {
			if (snprintf(out, len, "%s", link) >= (int)len)
				return -ENAMETOOLONG;
			continue;
		}
		if (dir_of(out, dir, sizeof(dir)) < 0 ||
		    snprintf(out, len, "%s/%s", dir, link) >= (int)len)
			return -ENAMETOOLONG;
	}
}

/* 16 hex digits nobody can predict: from the kernel's generator, or when
 * that is unavailable from the clock and a counter (O_EXCL still keeps the
 * create exclusive; only the guessing gets easier). */
static void random_hex(char *out)
{
	static const char hx[] = "0123456789abcdef";
	static uint64_t counter;
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 16) ^ ++counter * 0x9e3779b97f4a7c15ull;
	}
	for (int i = 0; i < HEX_DIGITS; i++, v >>= 4)
		out[i] = hx[v & 15];
	out[HEX_DIGITS] = '\0';
}

static void hold_lock(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };

	/* Without lock support the temporary only looks "in use" to
	 * io_replace_clean, which then leaves it: the safe side. */
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

/* Give the new file the owner and mode of the one it replaces.  Owner
 * first: chown clears set-id bits that chmod then puts back. */
static int keep_owner_mode(int fd, const struct stat *old)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((st.st_uid != old->st_uid || st.st_gid != old->st_gid) &&
	    fchown(fd, old->st_uid, old->st_gid) < 0)
		return -errno;
	if (fchmod(fd, old->st_mode & 07777) < 0)
		return -errno;
	return 0;
}

static int create_temp(struct io_replace *t, mode_t mode)
{
	char dir[PATH_MAX], hex[HEX_DIGITS + 1];
	int fd = -EEXIST;

	if (dir_of(t->path, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	for (int i = 0; i < CREATE_TRIES && fd == -EEXIST; i++) {
		random_hex(hex);
		if (snprintf(t->tmp, sizeof(t->tmp), "%s/%s%s", dir,
			     IO_REPLACE_PREFIX, hex) >= (int)sizeof(t->tmp))
			return -ENAMETOOLONG;
		fd = io_open(t->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				     O_NOCTTY, mode);
	}
	return fd;
}

int io_replace_begin(struct io_replace *t, const char *name, mode_t mode,
		     struct img_err *e)
{
	struct stat old;
	int r;

	t->fd = -1;
	t->tmp[0] = '\0';
	t->name = name;
	r = resolve(name, t->path, sizeof(t->path), &old);
	if (r == -EINVAL)
		return err_set(e, EINVAL, "%s: not a regular file; refusing to "
			       "replace it", name);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot resolve the file to "
				     "replace", name);
	r = create_temp(t, mode);
	if (r < 0) {
		t->tmp[0] = '\0';
		return err_set_errno(e, -r, "%s: cannot create a temporary "
				     "file next to %s", name, t->path);
	}
	t->fd = r;
	hold_lock(t->fd);
	if (old.st_mode) {
		r = keep_owner_mode(t->fd, &old);
		if (r < 0) {
			io_replace_abort(t);
			return err_set_errno(e, -r, "%s: cannot give the new "
					     "file the owner %u:%u and mode "
					     "%04o of the old one", name,
					     (unsigned)old.st_uid,
					     (unsigned)old.st_gid,
					     (unsigned)(old.st_mode & 07777));
		}
	}
	return 0;
}

int io_replace_commit(struct io_replace *t, struct img_err *e)
{
	const char *step = "sync";
	int r;

	if (t->fd < 0)
		return err_set(e, EBADF, "%s: no file is being replaced",
			       t->name ? t->name : "?");
	r = io_fsync(t->fd);
	if (r == 0) {
		step = "rename into place";
		r = io_rename(t->tmp, t->path);
	}
	if (r < 0) {
		io_replace_abort(t);
		return err_set_errno(e, -r, "%s: cannot %s the new file",
				     t->name, step);
	}
	t->tmp[0] = '\0';
	io_close(t->fd);
	t->fd = -1;
	r = io_fsync_dir_of(t->path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot sync the directory "
				     "of %s", t->name, t->path);
	return 0;
}

void io_replace_abort(struct io_replace *t)
{
	if (t->fd >= 0)
		io_close(t->fd);
	t->fd = -1;
	/* Best effort: a temporary left behind holds no lock any more, so
	 * the next io_replace_clean of its directory removes it. */
	if (t->tmp[0])
		(void)io_unlink(t->tmp);
	t->tmp[0] = '\0';
}

int io_replace_file(const char *name, const void *data, size_t len,
		    mode_t mode, struct img_err *e)
{
	struct io_replace t;
	int r = io_replace_begin(&t, name, mode, e);

	if (r < 0)
		return r;
	r = len ? io_pwrite(t.fd, data, len, 0) : 0;
	if (r < 0) {
		io_replace_abort(&t);
		return err_set_errno(e, -r, "%s: cannot write the new file",
				     name);
	}
	return io_replace_commit(&t, e);
}

int io_replace_is_temp(const char *entry)
{
	size_t pl = strlen(IO_REPLACE_PREFIX);

	if (strncmp(entry, IO_REPLACE_PREFIX, pl) ||
	    strlen(entry + pl) != HEX_DIGITS)
		return 0;
	for (const char *p = entry + pl; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* 1 when path is a temporary nobody holds (and still the file we looked
 * at), 0 when it is in use or not ours, -errno when it cannot be read. */
static int is_stale(const char *path)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };
	struct stat a, b;
	int fd = io_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
			 0), r = 0;

	if (fd == -ENOENT || fd == -ELOOP)
		return 0;       /* gone meanwhile, or a symlink: not ours */
	if (fd < 0)
		return fd;
	if (io_fstat(fd, &a) == 0 && S_ISREG(a.st_mode) &&
	    fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK &&
	    lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		r = 1;
	io_close(fd);
	return r;
}

int io_replace_clean(const char *dir, int *removed, struct img_err *e)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0, r = 0;
	DIR *d = opendir(dir);

	if (removed)
		*removed = 0;
	if (!d)
		return err_set_errno(e, errno, "%s: cannot read the directory",
				     dir);
	while (r >= 0 && (de = readdir(d))) {
		if (!io_replace_is_temp(de->d_name) ||
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			continue;
		r = is_stale(path);
		if (r == 1) {
			r = io_unlink(path);
			n += r == 0;
			if (r == -ENOENT)
				r = 0;  /* another cleaner got there first */
		}
		if (r < 0)
			err_set_errno(e, -r, "%s: cannot remove the stale "
				      "temporary file", path);
	}
	closedir(d);
	if (r >= 0 && n) {
		snprintf(path, sizeof(path), "%s/.", dir);
		r = io_fsync_dir_of(path);
		if (r < 0)
			err_set_errno(e, -r, "%s: cannot sync the directory",
				      dir);
	}
	if (removed)
		*removed = n;
	return r < 0 ? r : 0;
}
