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
	/* read-only foreign formats (issue 15, part A) */
	&img_format_qcow,
	&img_format_qed,
	&img_format_vmdk,
	&img_format_luks,
	&img_format_raw,
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const struct img_format *img_format_find(const char *name)
{
	for (size_t i = 0; name && i < NFORMATS; i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}

const struct img_format *img_format_probe(const uint8_t *buf, size_t len)
{
	const struct img_format *best = &img_format_raw;
	int best_score = 0;

	for (size_t i = 0; i < NFORMATS; i++) {
		int s = formats[i]->probe ? formats[i]->probe(buf, len) : 0;
		if (s > best_score) {
			best_score = s;
			best = formats[i];
		}
	}
	return best;
}

void img_check_free(struct img_check *c)
{
	for (int i = 0; c && i < c->nmsgs; i++)
		free(c->msgs[i]);
	if (c)
		c->nmsgs = 0;
}

int img_open_fd(int fd, const char *path, const char *fmt, int flags,
		struct img **out, bool *probed, struct img_err *e)
{
	const struct img_format *drv;
	struct img *img;
	struct stat st;
	int r;

	*out = NULL;
	if (io_fstat(fd, &st) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
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
		uint8_t head[IMG_PROBE_BYTES];
		ssize_t n = io_pread(fd, head, sizeof(head), 0);
		if (n < 0)
			return err_set_errno(e, (int)-n, "%s: cannot read header",
					     path);
		drv = img_format_probe(head, (size_t)n);
		if (probed)
			*probed = true;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	img->path = strdup(path);
	img->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	img->flags = flags;
	img->drv = drv;
	if (!img->path || img->fd < 0) {
		r = img->fd < 0 ? err_set_errno(e, errno, "%s: dup", path)
				: err_set(e, ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	r = drv->open(img, flags, e);
	if (r < 0)
		goto fail;
	*out = img;
	return 0;
fail:
	if (img->fd >= 0)
		io_close(img->fd);
	free(img->path);
	free(img);
	return r;
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
	if (img->fd >= 0)
		io_close(img->fd);
	free(img->path);
	free(img);
}
