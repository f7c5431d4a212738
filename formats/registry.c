/* registry.c - the list of format drivers, probing by score, img_open. */
#include "format.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct img_format *const formats[] = {
	&img_format_qcow2,
	/* read-only foreign formats */
	&img_format_qcow,
	&img_format_qed,
	&img_format_vmdk,
	&img_format_luks,
	&img_format_vpc,
	&img_format_vhdx,
	&img_format_vdi,
	&img_format_parallels,
	&img_format_dmg,
	&img_format_bochs,
	&img_format_cloop,
	&img_format_raw,
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

/* No probe scores more than QEMU's certain match, and a later format
 * must score more to win: past it the rest need not be asked (the pool
 * scan probes every image, and qcow2 comes first). */
#define PROBE_SCORE_MAX 100

const struct img_format *img_format_find(const char *name)
{
	for (size_t i = 0; name && i < NFORMATS; i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}

const struct img_format *img_format_probe_ends(const uint8_t *head,
					       size_t hlen,
					       const uint8_t *tail,
					       size_t tlen)
{
	const struct img_format *best = &img_format_raw;
	uint8_t pad[IMG_PROBE_BYTES];
	int best_score = 0;

	/* QEMU probes a zero-filled BLOCK_PROBE_BUF_SIZE buffer whatever the
	 * file's size: a shorter file is seen with zeros past its end, so a
	 * truncated header still names its format (and opening it then says
	 * what is missing) instead of passing for raw. */
	if (hlen < sizeof(pad)) {
		memset(pad, 0, sizeof(pad));
		if (hlen)
			memcpy(pad, head, hlen);
		head = pad;
		hlen = sizeof(pad);
	}
	for (size_t i = 0; i < NFORMATS; i++) {
		const struct img_format *f = formats[i];
		int s = f->probe ? f->probe(head, hlen) : 0;
		if (tail && f->probe_tail) {
			int t = f->probe_tail(tail, tlen);
			if (t > s)
				s = t;
		}
		if (s > best_score) {
			best_score = s;
			best = f;
		}
		if (best_score >= PROBE_SCORE_MAX)
			break;
	}
	return best;
}

const struct img_format *img_format_probe(const uint8_t *buf, size_t len)
{
	return img_format_probe_ends(buf, len, NULL, 0);
}

int img_probe_fd(int fd, const struct img_format **out)
{
	uint8_t head[IMG_PROBE_BYTES], tail[IMG_PROBE_TAIL];
	size_t tlen = 0;
	struct stat st;
	ssize_t n;

	n = io_pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return (int)n;
	/* A block device has no st_size: it is probed by its head only. */
	if (io_fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		uint64_t size = (uint64_t)st.st_size;
		tlen = size < sizeof(tail) ? (size_t)size : sizeof(tail);
		ssize_t k = io_pread(fd, tail, tlen, size - tlen);
		if (k < 0)
			return (int)k;
		tlen = (size_t)k;
	}
	*out = img_format_probe_ends(head, (size_t)n, tlen ? tail : NULL,
				     tlen);
	return 0;
}

int img_fstat(struct img *img, struct stat *st)
{
	if (img->st) {
		*st = *img->st;
		return 0;
	}
	return io_fstat(img->fd, st);
}

int img_info_base(struct img *img, struct img_info *out, struct img_err *e)
{
	struct stat st;
	int r = img_fstat(img, &st);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	memset(out, 0, sizeof(*out));
	out->format = img->drv->name;
	out->virtual_size = img->virtual_size;
	out->actual_size = (uint64_t)st.st_blocks * 512;
	out->file_size = (uint64_t)st.st_size;
	return 0;
}

void img_check_free(struct img_check *c)
{
	for (int i = 0; c && i < c->nmsgs; i++) {
		free(c->msgs[i]);
		c->msgs[i] = NULL;
	}
	if (c)
		c->nmsgs = 0;
}

/* The open shared by img_open_drv and img_open_borrowed: fd is dup'd
 * unless borrowed. */
static int open_on(const struct img_format *drv, int fd,
		   const struct stat *borrow, const char *path, int flags,
		   const uint8_t *head, size_t hlen, struct img **out,
		   struct img_err *e)
{
	struct img *img;
	int r;

	*out = NULL;
	if ((flags & IMG_O_RDWR) && !drv->pwrite && !drv->backing_header)
		return err_set(e, EROFS, "%s: the %s format is read-only in "
			       "imgraph", path, drv->name);
	img = calloc(1, sizeof(*img));
	if (!img)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	img->path = strdup(path);
	img->fd = borrow ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
	img->fd_borrowed = borrow != NULL;
	img->st = borrow;
	img->flags = flags;
	img->drv = drv;
	if (!img->path || img->fd < 0) {
		r = img->fd < 0 ? err_set_errno(e, errno, "%s: dup", path)
				: err_set(e, ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	img->head = head;
	img->head_len = head ? hlen : 0;
	r = drv->open(img, flags, e);
	img->head = NULL;
	img->head_len = 0;
	if (r < 0)
		goto fail;
	*out = img;
	return 0;
fail:
	if (img->fd >= 0 && !borrow)
		io_close(img->fd);
	free(img->path);
	free(img);
	return r;
}

int img_open_drv(const struct img_format *drv, int fd, const char *path,
		 int flags, struct img **out, struct img_err *e)
{
	return open_on(drv, fd, NULL, path, flags, NULL, 0, out, e);
}

int img_open_borrowed(int fd, const char *path, const char *fmt, int flags,
		      const struct stat *st, const uint8_t *head, size_t hlen,
		      struct img **out, struct img_err *e)
{
	const struct img_format *drv = img_format_find(fmt);

	*out = NULL;
	if (!drv)
		return err_set(e, EINVAL, "%s: unknown image format '%s'", path,
			       fmt);
	return open_on(drv, fd, st, path, flags, head, hlen, out, e);
}

int img_open_fd(int fd, const char *path, const char *fmt, int flags,
		struct img **out, bool *probed, struct img_err *e)
{
	const struct img_format *drv;
	struct stat st;
	int r;

	*out = NULL;
	r = io_fstat(fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return err_set(e, EINVAL, "%s: not a regular file", path);
	if (fmt) {
		drv = img_format_find(fmt);
		if (!drv)
			return err_set(e, EINVAL,
				       "%s: unknown image format '%s'", path,
				       fmt);
		if (probed)
			*probed = false;
	} else {
		r = img_probe_fd(fd, &drv);
		if (r < 0)
			return err_set_errno(e, -r, "%s: cannot read header",
					     path);
		if (probed)
			*probed = true;
		flags |= IMG_O_PROBED;
	}
	return img_open_drv(drv, fd, path, flags, out, e);
}

int img_open(const char *path, const char *fmt, int flags, struct img **out,
	     bool *probed, struct img_err *e)
{
	struct stat st;
	int fd, r;

	*out = NULL;
	/* Never open a FIFO or device for reading by accident: O_NONBLOCK
	 * keeps a FIFO from blocking, and the fstat in img_open_fd refuses
	 * anything but regular files (and block devices). */
	fd = io_open(path, ((flags & IMG_O_RDWR) ? O_RDWR : O_RDONLY) |
			   O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s: cannot open", path);
	if (io_fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	r = img_open_fd(fd, path, fmt, flags, out, probed, e);
	io_close(fd);
	return r;
}

void img_close(struct img *img)
{
	if (!img)
		return;
	if (img->drv && img->drv->close)
		img->drv->close(img);
	if (img->fd >= 0 && !img->fd_borrowed)
		io_close(img->fd);
	free(img->path);
	free(img);
}
