/* io.c - the single I/O layer with its fault-injection test modes; see io.h.
 *
 * IMGRAPH_FAULT is parsed here and nowhere else, at start-up (and again by
 * io_fault_reload).  Fault injection is part of the shipped binary on
 * purpose: crash and fault tests must exercise exactly the code
 * administrators run.
 */
#include "io.h"
#include "io_cut.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

enum fault_mode { F_NONE, F_COUNT, F_KILL, F_ERR, F_SHORT, F_RERR, F_RSHORT,
		  F_CUT };

static struct {
	int parsed;
	enum fault_mode mode;
	uint64_t at;
	int after;              /* kill after the op instead of before */
	int err;
	int always;
	uint64_t ops;           /* mutating ops so far */
	uint64_t rops;          /* read ops so far */
	uint64_t rshort;        /* bytes a short read returns; 0: half */
	const struct io_cut_hooks *cut;
	int file_set;           /* IMGRAPH_FAULT_FILE: only its fd ops */
	dev_t file_dev;
	ino_t file_ino;
} io_st;

static int parse_errno(const char *s)
{
	if (!strcmp(s, "EIO"))
		return EIO;
	if (!strcmp(s, "ENOSPC"))
		return ENOSPC;
	if (!strcmp(s, "EDQUOT"))
		return EDQUOT;
	if (!strcmp(s, "EROFS"))
		return EROFS;
	return EIO;
}

static void io_report_count(void)
{
	const char *out = getenv("IMGRAPH_FAULT_OUT");
	FILE *f = out ? fopen(out, "w") : NULL;

	fprintf(f ? f : stderr, "%llu\n", (unsigned long long)io_st.ops);
	if (f)
		fclose(f);
}

static void io_parse(void)
{
	const char *s = getenv("IMGRAPH_FAULT");
	char buf[128], *tok[4] = { 0 }, *save = NULL, *p;
	int n = 0;

	io_st.parsed = 1;
	if (!s || !*s)
		return;
	{
		const char *f = getenv("IMGRAPH_FAULT_FILE");
		struct stat st;

		/* a name that does not exist counts nothing */
		if (f && *f) {
			io_st.file_set = 1;
			if (stat(f, &st) == 0) {
				io_st.file_dev = st.st_dev;
				io_st.file_ino = st.st_ino;
			}
		}
	}
	snprintf(buf, sizeof(buf), "%s", s);
	for (p = strtok_r(buf, ":", &save); p && n < 4;
	     p = strtok_r(NULL, ":", &save))
		tok[n++] = p;
	if (!tok[0])
		return;
	if (tok[1])
		io_st.at = strtoull(tok[1], NULL, 10);
	if (!strcmp(tok[0], "count")) {
		io_st.mode = F_COUNT;
		atexit(io_report_count);
	} else if (!strcmp(tok[0], "kill")) {
		io_st.mode = F_KILL;
		io_st.after = tok[2] && !strcmp(tok[2], "after");
	} else if (!strcmp(tok[0], "err") || !strcmp(tok[0], "rerr")) {
		io_st.mode = tok[0][0] == 'r' ? F_RERR : F_ERR;
		io_st.err = tok[2] ? parse_errno(tok[2]) : EIO;
		io_st.always = tok[3] && !strcmp(tok[3], "always");
	} else if (!strcmp(tok[0], "short")) {
		io_st.mode = F_SHORT;
	} else if (!strcmp(tok[0], "rshort")) {
		io_st.mode = F_RSHORT;
		io_st.rshort = tok[2] ? strtoull(tok[2], NULL, 10) : 0;
	} else if (!strcmp(tok[0], "cut")) {
		io_st.mode = F_CUT;
		io_st.cut = io_cut_start(tok[2] ? strtoull(tok[2], NULL, 10)
					 : 1);
	}
}

/* Parse the mode at start-up so that "count" reports even a run that makes
 * no mutating op at all (a refusal must report 0, not nothing). */
__attribute__((constructor)) static void io_init(void)
{
	if (!io_st.parsed)
		io_parse();
}

static void io_die(void)
{
	if (io_st.mode == F_CUT && io_st.cut && io_st.cut->crash)
		io_st.cut->crash();
	raise(SIGKILL);
	_exit(137);
}

/* Called at the start of every mutating op.  Returns 0 to proceed, 1 to make
 * a write short, or -errno to fail the op. */
static int io_enter(void)
{
	if (!io_st.parsed)
		io_parse();
	io_st.ops++;
	switch (io_st.mode) {
	case F_KILL:
		if (!io_st.after && io_st.ops == io_st.at)
			io_die();
		break;
	case F_CUT:
		if (io_st.ops == io_st.at)
			io_die();
		break;
	case F_ERR:
		if (io_st.ops == io_st.at ||
		    (io_st.always && io_st.ops > io_st.at))
			return -io_st.err;
		break;
	case F_SHORT:
		if (io_st.ops == io_st.at)
			return 1;
		break;
	default:
		break;
	}
	return 0;
}

/* io_enter for an op on fd: with IMGRAPH_FAULT_FILE, only ops on that
 * file count (and fail). */
static int io_enter_fd(int fd)
{
	struct stat st;

	if (!io_st.parsed)
		io_parse();
	if (io_st.file_set &&
	    (fstat(fd, &st) < 0 || st.st_dev != io_st.file_dev ||
	     st.st_ino != io_st.file_ino || !io_st.file_ino))
		return 0;
	return io_enter();
}

/* io_enter for an op on a name: none counts with IMGRAPH_FAULT_FILE. */
static int io_enter_path(void)
{
	if (!io_st.parsed)
		io_parse();
	return io_st.file_set ? 0 : io_enter();
}

static void io_leave(void)
{
	if (io_st.mode == F_KILL && io_st.after && io_st.ops == io_st.at)
		io_die();
}

/* Called at the start of every read op: -errno to fail it, 1 to make it
 * short (as if the file ended half way), else 0. */
static int io_read_enter(void)
{
	if (!io_st.parsed)
		io_parse();
	/* The copy engine reads from a second thread. */
	uint64_t n = __atomic_add_fetch(&io_st.rops, 1, __ATOMIC_RELAXED);
	if (io_st.mode == F_RERR &&
	    (n == io_st.at || (io_st.always && n > io_st.at)))
		return -io_st.err;
	return io_st.mode == F_RSHORT && n == io_st.at;
}

void io_writeback_hint(int fd)
{
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void io_fault_reload(void)
{
	memset(&io_st, 0, sizeof(io_st));
	io_parse();
}

bool io_faults_armed(void)
{
	if (!io_st.parsed)
		io_parse();
	return io_st.mode != F_NONE;
}

uint64_t io_mutating_ops(void)
{
	return io_st.ops;
}

int io_open(const char *path, int flags, mode_t mode)
{
	bool fresh = false;
	int fd, r;

	if (flags & O_CREAT) {
		r = io_enter_path();
		if (r < 0)
			return r;
		/* only the simulator needs to know whether the name is new */
		fresh = io_st.cut && io_st.cut->name_op &&
			faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
	}
	do {
		fd = open(path, flags | O_CLOEXEC, mode);
	} while (fd < 0 && errno == EINTR);
	if (fd >= 0 && fresh)
		io_st.cut->name_op(IO_CUT_CREATED, path, NULL);
	if (flags & O_CREAT)
		io_leave();
	return fd < 0 ? -errno : fd;
}

/* The lexical half of RESOLVE_BENEATH, for kernels without openat2. */
static bool name_stays_beneath(const char *name)
{
	int depth = 0;

	if (name[0] == '/')
		return false;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

int io_openat_beneath(int dirfd, const char *name, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (flags & O_CREAT)
		return -EINVAL;
	do {
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	} while (fd < 0 && errno == EINTR);
	if (fd < 0 && errno == ENOSYS) {
		if (!name_stays_beneath(name))
			return -EXDEV;
		do {
			fd = openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW);
		} while (fd < 0 && errno == EINTR);
	}
	return fd < 0 ? -errno : (int)fd;
}

int io_close(int fd)
{
	/* close() errors after EINTR are not retried: the fd is gone. */
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int io_fstat(int fd, struct stat *st)
{
	return fstat(fd, st) < 0 ? -errno : 0;
}

ssize_t io_pread(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	int r = io_read_enter();

	if (r < 0)
		return r;
	if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	if (r == 1)             /* injected short read: an early end of file */
		n = io_st.rshort && io_st.rshort < n ? io_st.rshort : n / 2;
	while (done < n) {
		ssize_t k = pread(fd, (char *)buf + done, n - done,
				  (off_t)(off + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

int io_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t k = io_pread(fd, buf, n, off);

	if (k < 0)
		return (int)k;
	return (size_t)k == n ? 0 : -EIO;
}

/* pwrite all of buf (no op counted: the caller did). */
static int write_all(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pwrite(fd, (const char *)buf + done, n - done,
				   (off_t)(off + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)k;
	}
	return 0;
}

int io_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
	int r = io_enter_fd(fd), w;

	if (r < 0)
		return r;
	if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	if (r == 1)
		n /= 2;         /* injected short write: a torn transfer */
	if (io_st.cut && io_st.cut->before_write)
		io_st.cut->before_write(fd, off, n);
	w = write_all(fd, buf, n, off);
	if (w < 0)
		return w;
	io_leave();
	return r == 1 ? -EIO : 0;
}

/* ---- copies between files (io_copy_range) ---- */

/* The bounce buffer of the read/write fallback. */
#define IO_COPY_BOUNCE (1u << 20)

/* A refusal of the method for these files, not a failure of the I/O. */
static bool refused_for_files(int err)
{
	return err == -EXDEV || err == -EOPNOTSUPP || err == -ENOTTY ||
	       err == -ENOSYS;
}

static int try_clone(int dst, uint64_t doff, int src, uint64_t soff,
		     uint64_t n)
{
	/* src_length 0 would mean "to the end of src": never passed (n > 0). */
	struct file_clone_range fcr = {
		.src_fd = src, .src_offset = soff, .src_length = n,
		.dest_offset = doff,
	};
	int r;

	do {
		r = ioctl(dst, FICLONERANGE, &fcr);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* copy_file_range until n bytes, src's end or an error: the bytes done,
 * *err 0 or -errno. */
static uint64_t try_cfr(int dst, uint64_t doff, int src, uint64_t soff,
			uint64_t n, int *err)
{
	uint64_t done = 0;

	*err = 0;
	while (done < n) {
		loff_t si = (loff_t)(soff + done), di = (loff_t)(doff + done);
		size_t want = n - done > (1u << 30) ? (1u << 30)
						    : (size_t)(n - done);
		ssize_t k = copy_file_range(src, &si, dst, &di, want, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			*err = -errno;
		if (k <= 0)
			break;
		done += (uint64_t)k;
	}
	return done;
}

static int copy_rw(int dst, uint64_t doff, int src, uint64_t soff,
		   uint64_t n)
{
	size_t bs = n < IO_COPY_BOUNCE ? (size_t)n : IO_COPY_BOUNCE;
	uint8_t *b = malloc(bs);
	int r = b ? 0 : -ENOMEM;

	while (r == 0 && n) {
		size_t k = n < bs ? (size_t)n : bs;
		r = io_pread_full(src, b, k, soff);
		if (r == 0)
			r = write_all(dst, b, k, doff);
		soff += k;
		doff += k;
		n -= k;
	}
	free(b);
	return r;
}

/* The methods in turn from first; returns the last one used or -errno. */
static int copy_methods(int dst, uint64_t doff, int src, uint64_t soff,
			uint64_t n, struct io_copy_ctx *ctx)
{
	int first = ctx->first, err;

	if (first <= IO_COPY_CLONE && !(ctx->refused & 1u << IO_COPY_CLONE)) {
		err = try_clone(dst, doff, src, soff, n);
		if (err == 0) {
			ctx->bytes[IO_COPY_CLONE] += n;
			return IO_COPY_CLONE;
		}
		if (refused_for_files(err))
			ctx->refused |= 1u << IO_COPY_CLONE;
		else if (err != -EINVAL)
			return err;
	}
	if (first <= IO_COPY_CFR && !(ctx->refused & 1u << IO_COPY_CFR)) {
		uint64_t k = try_cfr(dst, doff, src, soff, n, &err);
		ctx->bytes[IO_COPY_CFR] += k;
		if (k == n)
			return IO_COPY_CFR;
		if (refused_for_files(err))
			ctx->refused |= 1u << IO_COPY_CFR;
		else if (err != 0 && err != -EINVAL)
			return err;
		/* The rest (src's end included: the read below says so). */
		doff += k;
		soff += k;
		n -= k;
	}
	err = copy_rw(dst, doff, src, soff, n);
	if (err < 0)
		return err;
	ctx->bytes[IO_COPY_RW] += n;
	return IO_COPY_RW;
}

int io_copy_range(int dst, uint64_t doff, int src, uint64_t soff,
		  uint64_t n, struct io_copy_ctx *ctx)
{
	int r = io_enter_fd(dst), how;

	if (r < 0)
		return r;
	if (doff > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - doff ||
	    soff > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - soff)
		return -EINVAL;
	if (r == 1)
		n /= 2;         /* injected short write: a torn transfer */
	if (io_st.cut && io_st.cut->before_write)
		io_st.cut->before_write(dst, doff, (size_t)n);
	how = n ? copy_methods(dst, doff, src, soff, n, ctx) : ctx->first;
	if (how < 0)
		return how;
	io_leave();
	return r == 1 ? -EIO : how;
}

/* XFS says whether it shares extents in its geometry (XFS_IOC_FSGEOMETRY
 * of <xfs/xfs_fs.h>, version 4 of the structure: 112 bytes, the flags
 * word at byte 92, reflink bit 20); the header is not needed for one
 * bit. */
#define IO_XFS_GEOM_SIZE 112
#define IO_XFS_GEOM_FLAGS 92
#define IO_XFS_IOC_FSGEOMETRY_V4 _IOC(_IOC_READ, 'X', 124, IO_XFS_GEOM_SIZE)
#define IO_XFS_FLAGS_REFLINK (1u << 20)

static bool xfs_reflink(int fd)
{
	uint8_t g[IO_XFS_GEOM_SIZE] = { 0 };
	uint32_t flags;

	if (ioctl(fd, IO_XFS_IOC_FSGEOMETRY_V4, g) < 0)
		return false;
	memcpy(&flags, g + IO_XFS_GEOM_FLAGS, sizeof(flags));
	return flags & IO_XFS_FLAGS_REFLINK;
}

int io_copy_predict(int src, int dst, uint64_t align)
{
	struct stat a, b;
	struct statfs f;
	bool shares;

	if (fstat(src, &a) < 0 || fstat(dst, &b) < 0 || a.st_dev != b.st_dev)
		return IO_COPY_RW;
	if (fstatfs(dst, &f) < 0)
		return IO_COPY_CFR;
	shares = (unsigned long)f.f_type == BTRFS_SUPER_MAGIC ||
		 ((unsigned long)f.f_type == XFS_SUPER_MAGIC &&
		  xfs_reflink(dst));
	if (shares && f.f_bsize > 0 && align % (uint64_t)f.f_bsize == 0)
		return IO_COPY_CLONE;
	return IO_COPY_CFR;
}

static int io_sync_common(int fd, int data_only)
{
	int r = io_enter_fd(fd);

	if (r < 0)
		return r;
	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	if (io_st.cut && io_st.cut->after_sync)
		io_st.cut->after_sync(fd);
	io_leave();
	return 0;
}

int io_fdatasync(int fd)
{
	return io_sync_common(fd, 1);
}

int io_fsync(int fd)
{
	return io_sync_common(fd, 0);
}

int io_ftruncate(int fd, uint64_t len)
{
	int r = io_enter_fd(fd);

	if (r < 0)
		return r;
	if (len > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (io_st.cut && io_st.cut->before_truncate)
		io_st.cut->before_truncate(fd, len);
	if (ftruncate(fd, (off_t)len) < 0)
		return -errno;
	io_leave();
	return 0;
}

int io_punch_hole(int fd, uint64_t off, uint64_t len)
{
	int r = io_enter_fd(fd);

	if (r < 0)
		return r;
	if (io_st.cut && io_st.cut->before_write)
		io_st.cut->before_write(fd, off, len);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
	io_leave();
	return 0;
}

static int io_name_failed(int r)
{
	if (io_st.cut && io_st.cut->name_op)
		io_st.cut->name_op(IO_CUT_FAILED, NULL, NULL);
	return r;
}

int io_rename(const char *from, const char *to)
{
	int r = io_enter_path();

	if (r < 0)
		return r;
	if (io_st.cut && io_st.cut->name_op)
		io_st.cut->name_op(IO_CUT_RENAME, from, to);
	if (rename(from, to) < 0)
		return io_name_failed(-errno);
	io_leave();
	return 0;
}

int io_unlink(const char *path)
{
	int r = io_enter_path();

	if (r < 0)
		return r;
	if (io_st.cut && io_st.cut->name_op)
		io_st.cut->name_op(IO_CUT_UNLINK, path, NULL);
	if (unlink(path) < 0)
		return io_name_failed(-errno);
	io_leave();
	return 0;
}

/* The path of name under dirfd, for the simulator's name records (which
 * keep paths); NULL when it cannot be told. */
static const char *at_path(int dirfd, const char *name, char *buf,
			   size_t len)
{
	char link[64];
	ssize_t n;

	if (dirfd == AT_FDCWD || name[0] == '/')
		return name;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	n = readlink(link, buf, len - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if ((size_t)n + 1 + strlen(name) + 1 > len)
		return NULL;
	snprintf(buf + n, len - (size_t)n, "/%s", name);
	return buf;
}

/* Announce a name op under dirfds to the simulator (when it runs). */
static void cut_name_at(enum io_cut_name_op op, int fd1, const char *n1,
			int fd2, const char *n2)
{
	char a[PATH_MAX], b[PATH_MAX];
	const char *pa, *pb = NULL;

	if (!io_st.cut || !io_st.cut->name_op)
		return;
	pa = at_path(fd1, n1, a, sizeof(a));
	if (n2)
		pb = at_path(fd2, n2, b, sizeof(b));
	if (pa && (!n2 || pb))
		io_st.cut->name_op(op, pa, pb);
}

int io_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	bool fresh = false;
	int fd, r;

	if (flags & O_CREAT) {
		r = io_enter_path();
		if (r < 0)
			return r;
		fresh = io_st.cut && io_st.cut->name_op &&
			faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
	}
	do {
		fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
	} while (fd < 0 && errno == EINTR);
	if (fd >= 0 && fresh)
		cut_name_at(IO_CUT_CREATED, dirfd, name, -1, NULL);
	if (flags & O_CREAT)
		io_leave();
	return fd < 0 ? -errno : fd;
}

int io_mkdirat(int dirfd, const char *name, mode_t mode)
{
	int r = io_enter_path();

	if (r < 0)
		return r;
	if (mkdirat(dirfd, name, mode) < 0)
		return -errno;
	cut_name_at(IO_CUT_CREATED, dirfd, name, -1, NULL);
	io_leave();
	return 0;
}

int io_renameat(int fromfd, const char *from, int tofd, const char *to,
		int noreplace)
{
	int r = io_enter_path();

	if (r < 0)
		return r;
	cut_name_at(IO_CUT_RENAME, fromfd, from, tofd, to);
	if (renameat2(fromfd, from, tofd, to,
		      noreplace ? RENAME_NOREPLACE : 0) < 0)
		return io_name_failed(-errno);
	io_leave();
	return 0;
}

int io_unlinkat(int dirfd, const char *name, int flags)
{
	int r = io_enter_path();

	if (r < 0)
		return r;
	cut_name_at(flags & AT_REMOVEDIR ? IO_CUT_RMDIR : IO_CUT_UNLINK,
		    dirfd, name, -1, NULL);
	if (unlinkat(dirfd, name, flags) < 0)
		return io_name_failed(-errno);
	io_leave();
	return 0;
}

int io_read_file(const char *path, size_t max, int nofollow, char **buf,
		 size_t *len)
{
	struct stat st;
	char *b;
	int fd, r;

	*buf = NULL;
	*len = 0;
	fd = io_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
			   (nofollow ? O_NOFOLLOW : 0), 0);
	if (fd < 0)
		return fd;
	r = io_fstat(fd, &st);
	if (r == 0 && !S_ISREG(st.st_mode))
		r = -EINVAL;
	if (r == 0 && (uint64_t)st.st_size > max)
		r = -EFBIG;
	b = r == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (r == 0 && !b)
		r = -ENOMEM;
	if (r == 0)
		r = io_pread_full(fd, b, (size_t)st.st_size, 0);
	io_close(fd);
	if (r < 0) {
		free(b);
		return r;
	}
	b[st.st_size] = '\0';
	*buf = b;
	*len = (size_t)st.st_size;
	return 0;
}

int io_fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	int fd, r;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = io_open(dirname(dir), O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	r = io_fsync(fd);
	io_close(fd);
	return r;
}
