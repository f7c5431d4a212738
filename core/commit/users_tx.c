/* users_tx.c - read the users file once under a lock; see users_tx.h. */
#include "users_tx.h"
#include "journal.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A rename over the file between our open and our lock leaves us holding
 * an unlinked file: open again, a few times. */
#define USERS_TX_TRIES 5

static int lock_whole(int fd, bool write)
{
	struct flock fl = { .l_type = write ? F_WRLCK : F_RDLCK,
			    .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Open and lock; 1 when the name moved to another file meanwhile. */
static int open_locked(struct users_tx *t, const char *path, bool write,
		       struct img_err *e)
{
	struct stat fs, ps;
	int r;

	t->fd = io_open(path, (write ? O_RDWR : O_RDONLY) | O_NOCTTY |
			O_NONBLOCK, 0);
	if (t->fd < 0)
		return err_set_errno(e, -t->fd, "%s: cannot open the users "
				     "file", path);
	r = lock_whole(t->fd, write);
	if (r == -EAGAIN || r == -EACCES)
		return err_set(e, EBUSY, "%s: another process is changing the "
			       "users file (it holds its lock); nothing was "
			       "relinked", path);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot lock the users file",
				     path);
	if (io_fstat(t->fd, &fs) < 0 || stat(path, &ps) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
	if (!S_ISREG(fs.st_mode))
		return err_set(e, EINVAL, "%s: the users file is not a regular "
			       "file", path);
	return fs.st_dev != ps.st_dev || fs.st_ino != ps.st_ino;
}

static int read_locked(struct users_tx *t, const char *path,
		       struct img_err *e)
{
	struct stat st;
	int r = io_fstat(t->fd, &st);

	if (r == 0 && (uint64_t)st.st_size > JOURNAL_MAX_USERS)
		return err_set(e, EFBIG, "%s: the users file is larger than %u "
			       "bytes", path, JOURNAL_MAX_USERS);
	t->data = r == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (r == 0 && !t->data)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	if (r == 0)
		r = io_pread_full(t->fd, t->data, (size_t)st.st_size, 0);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the users file",
				     path);
	t->data[st.st_size] = '\0';
	t->len = (size_t)st.st_size;
	return 0;
}

int users_tx_begin(struct users_tx *t, const char *path, bool write,
		   struct img_err *e)
{
	int r = 1;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	for (int i = 0; i < USERS_TX_TRIES && r == 1; i++) {
		users_tx_end(t);
		r = open_locked(t, path, write, e);
	}
	if (r == 1)
		r = err_set(e, EAGAIN, "%s: the users file keeps being replaced; "
			    "nothing was relinked", path);
	if (r == 0)
		r = read_locked(t, path, e);
	if (r < 0)
		users_tx_end(t);
	return r;
}

void users_tx_end(struct users_tx *t)
{
	if (t->fd >= 0)
		io_close(t->fd);   /* closing the description drops the lock */
	t->fd = -1;
	free(t->data);
	t->data = NULL;
	t->len = 0;
}
