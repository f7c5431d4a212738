/* lock_hold.c - QEMU-compatible OFD lock holding (see lock_hold.h). */
#include "lock_hold.h"
#include "formats/io/io.h"
#include "core/graph/lock.h"
#include "core/graph/perm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


void lock_hold_init(struct lock_hold *h)
{
	memset(h, 0, sizeof(*h));
	h->fd = -1;
}

int lock_hold_open(struct lock_hold *h, const char *path, bool rdwr,
		   struct img_err *e)
{
	struct stat st;
	int fd, r;

	lock_hold_init(h);
	fd = io_open(path, (rdwr ? O_RDWR : O_RDONLY) | O_NOCTTY | O_NONBLOCK,
		     0);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s: cannot open", path);
	r = io_fstat(fd, &st);
	if (r < 0) {
		io_close(fd);
		return err_set_errno(e, -r, "%s: cannot stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		io_close(fd);
		return err_set(e, EINVAL, "%s: not a regular file", path);
	}
	r = fcntl(fd, F_GETFL);
	if (r >= 0)
		fcntl(fd, F_SETFL, r & ~O_NONBLOCK);
	h->path = strdup(path);
	if (!h->path) {
		io_close(fd);
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	h->fd = fd;
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	return 0;
}

static int hold_byte(int fd, int byte, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = byte,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 when another open file description holds a lock on byte. */
static int test_byte(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* Make the held bytes exactly (perm, unshared). */
static int apply_bytes(int fd, uint8_t perm, uint8_t unshared, int *bad)
{
	for (int i = 0; i < LOCK_NBITS; i++) {
		int r;
		r = hold_byte(fd, LOCK_PERM_BASE + i,
			      (perm >> i) & 1 ? F_RDLCK : F_UNLCK);
		if (r < 0) {
			*bad = LOCK_PERM_BASE + i;
			return r;
		}
		r = hold_byte(fd, LOCK_SHARED_BASE + i,
			      (unshared >> i) & 1 ? F_RDLCK : F_UNLCK);
		if (r < 0) {
			*bad = LOCK_SHARED_BASE + i;
			return r;
		}
	}
	return 0;
}

/* One byte of QEMU's test: a lock on it held by anyone else is a
 * conflict, worded as QEMU words it (file-posix raw_check_lock_bytes). */
static int test_one(const struct lock_hold *h, int byte, int bit,
		    const char *shared, struct img_err *e)
{
	char name[32];
	int r = test_byte(h->fd, byte);

	if (r < 0)
		return err_set_errno(e, -r, "%s: Failed to test byte %d",
				     h->path, byte);
	if (r)
		return err_set(e, EBUSY, "%s: Failed to get %s\"%s\" lock; Is "
			       "another process using the image [%s]?",
			       h->path, shared,
			       perm_names((uint8_t)(1u << bit), name,
					  sizeof(name)), h->path);
	return 0;
}

/* What we take must be shared by all, then what we refuse to share must
 * be held by none: every perm byte first, as raw_check_lock_bytes tests,
 * so the first conflict is the one QEMU would name. */
static int test_bytes(const struct lock_hold *h, uint8_t perm,
		      uint8_t unshared, struct img_err *e)
{
	int r = 0;

	for (int i = 0; r == 0 && i < LOCK_NBITS; i++)
		if ((perm >> i) & 1)
			r = test_one(h, LOCK_SHARED_BASE + i, i, "", e);
	for (int i = 0; r == 0 && i < LOCK_NBITS; i++)
		if ((unshared >> i) & 1)
			r = test_one(h, LOCK_PERM_BASE + i, i, "shared ", e);
	return r;
}

int lock_hold_set(struct lock_hold *h, uint8_t perm, uint8_t shared,
		  struct img_err *e)
{
	uint8_t unshared = (uint8_t)(~shared & PERM_ALL);
	int bad = 0, r;

	perm &= PERM_ALL;
	if (h->fd < 0)
		return err_set(e, EBADF, "%s: lock file not open",
			       h->path ? h->path : "?");
	/* Lock the union first so that two starters racing each other both
	 * see the other (and may both fail: retrying is the caller's call). */
	r = apply_bytes(h->fd, perm | h->perm, unshared | h->unshared, &bad);
	if (r == 0)
		r = test_bytes(h, perm, unshared, e);
	else
		err_set_errno(e, -r, "%s: Failed to lock byte %d", h->path,
			      bad);
	if (r < 0) {
		apply_bytes(h->fd, h->perm, h->unshared, &bad);
		return r == -EAGAIN || r == -EACCES ? -EBUSY : r;
	}
	r = apply_bytes(h->fd, perm, unshared, &bad);
	if (r < 0)
		return err_set_errno(e, -r, "%s: Failed to unlock byte %d",
				     h->path, bad);
	h->perm = perm;
	h->unshared = unshared;
	return 0;
}

int lock_hold_recheck(const struct lock_hold *h, struct img_err *e)
{
	if (h->fd < 0)
		return err_set(e, EBADF, "%s: lock file not open",
			       h->path ? h->path : "?");
	return test_bytes(h, h->perm, h->unshared, e);
}

void lock_hold_close(struct lock_hold *h)
{
	if (h->fd >= 0)
		io_close(h->fd);     /* drops every OFD lock of the description */
	free(h->path);
	lock_hold_init(h);
}

struct hold_order {
	int idx;
	dev_t dev;
	ino_t ino;
};

static int order_cmp(const void *a, const void *b)
{
	const struct hold_order *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->idx - y->idx;
}

long lock_hold_max_files(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > (rlim_t)LONG_MAX)
		return LONG_MAX;
	return (long)rl.rlim_max - LOCK_HOLD_FD_SPARE;
}

/* Room for n more held files and the spare descriptors. */
static int fd_room(int n, struct img_err *e)
{
	rlim_t want = (rlim_t)n + LOCK_HOLD_FD_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		return err_set(e, EMFILE, "%d files to hold open, more than the "
			       "open-file limit allows (RLIMIT_NOFILE hard limit "
			       "%llu, less %d spare)", n,
			       (unsigned long long)rl.rlim_max,
			       LOCK_HOLD_FD_SPARE);
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return err_set_errno(e, errno, "cannot raise the open-file "
				     "limit to %llu for %d files",
				     (unsigned long long)want, n);
	return 0;
}

int lock_hold_many(struct lock_hold *h, const struct lock_req *req, int n,
		   struct img_err *e)
{
	struct hold_order *ord;
	int r = 0, i;

	for (i = 0; i < n; i++)
		lock_hold_init(&h[i]);
	r = fd_room(n, e);
	if (r < 0)
		return r;
	ord = calloc(n > 0 ? (size_t)n : 1, sizeof(*ord));
	if (!ord)
		return err_set(e, ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		r = lock_hold_open(&h[i], req[i].path, req[i].rdwr, e);
		if (r < 0)
			goto fail;
		ord[i] = (struct hold_order){ i, h[i].dev, h[i].ino };
	}
	qsort(ord, (size_t)n, sizeof(*ord), order_cmp);
	for (i = 0; i < n; i++) {
		const struct lock_req *q = &req[ord[i].idx];
		r = lock_hold_set(&h[ord[i].idx], q->perm, q->shared, e);
		if (r < 0)
			goto fail;
	}
	free(ord);
	return 0;
fail:
	for (i = 0; i < n; i++)
		lock_hold_close(&h[i]);
	free(ord);
	return r;
}
