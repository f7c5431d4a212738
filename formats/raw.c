/* raw.c - the raw format: the file is the disk.  No backing file.
 * Zeros are punched holes where the file system supports them. */
#include "format.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int raw_probe(const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	return 1;       /* used only when nothing else matches */
}

static int raw_refresh_size(struct img *img, struct img_err *e)
{
	struct stat st;
	int r = img_fstat(img, &st);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	img->virtual_size = (uint64_t)st.st_size;
	return 0;
}

static int raw_open(struct img *img, int flags, struct img_err *e)
{
	(void)flags;
	return raw_refresh_size(img, e);
}

static int raw_get_info(struct img *img, struct img_info *o, struct img_err *e)
{
	return img_info_base(img, o, e);
}

/* Holes read as zeros; SEEK_DATA/SEEK_HOLE tell them apart. */
static int raw_block_status(struct img *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, struct img_err *e)
{
	off_t data, hole;

	(void)e;
	if (off + len > img->virtual_size)
		len = img->virtual_size - off;
	data = lseek(img->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) {   /* only a hole up to EOF */
			*pnum = len;
			return IMG_BS_ZERO;
		}
		*pnum = len;            /* no SEEK_DATA: say data */
		return IMG_BS_DATA;
	}
	if ((uint64_t)data > off) {
		*pnum = (uint64_t)data - off < len ? (uint64_t)data - off : len;
		return IMG_BS_ZERO;
	}
	hole = lseek(img->fd, (off_t)off, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole <= off)
		hole = (off_t)(off + len);
	*pnum = (uint64_t)hole - off < len ? (uint64_t)hole - off : len;
	return IMG_BS_DATA;
}

/* The file is the disk: every offset is valid and is its own. */
static int raw_map_status(struct img *img, uint64_t off, uint64_t len,
			  uint64_t *pnum, struct img_map *m, struct img_err *e)
{
	m->offset_valid = true;
	m->offset = off;
	return raw_block_status(img, off, len, pnum, e);
}

static int raw_pread(struct img *img, uint64_t off, void *buf, size_t len,
		     struct img_err *e)
{
	ssize_t n = io_pread(img->fd, buf, len, off);

	if (n < 0)
		return err_set_errno(e, (int)-n, "%s: read at %llu", img->path,
				     (unsigned long long)off);
	if ((size_t)n < len)    /* past EOF reads as zeros */
		memset((char *)buf + n, 0, len - (size_t)n);
	return 0;
}

static int raw_pwrite(struct img *img, uint64_t off, const void *buf,
		      size_t len, struct img_err *e)
{
	int r = io_pwrite(img->fd, buf, len, off);

	if (r < 0)
		return err_set_errno(e, -r, "%s: write at %llu", img->path,
				     (unsigned long long)off);
	if (off + len > img->virtual_size)
		img->virtual_size = off + len;
	return 0;
}

static int raw_pwrite_file(struct img *img, uint64_t off, uint64_t len,
			   int src, uint64_t soff, struct io_copy_ctx *ctx,
			   struct img_err *e)
{
	int r = io_copy_range(img->fd, off, src, soff, len, ctx);

	if (r < 0)
		return err_set_errno(e, -r, "%s: write of %llu bytes at %llu "
				     "from another file", img->path,
				     (unsigned long long)len,
				     (unsigned long long)off);
	if (off + len > img->virtual_size)
		img->virtual_size = off + len;
	return 0;
}

static int raw_write_zeroes(struct img *img, uint64_t off, uint64_t len,
			    struct img_err *e)
{
	static const uint8_t zero[65536];
	int r = io_punch_hole(img->fd, off, len);

	if (r == 0)
		return 0;
	if (r != -EOPNOTSUPP)
		return err_set_errno(e, -r, "%s: punch hole at %llu",
				     img->path, (unsigned long long)off);
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		r = raw_pwrite(img, off, zero, n, e);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int raw_grow(struct img *img, uint64_t size, struct img_err *e)
{
	int r;

	if (size <= img->virtual_size)
		return 0;
	r = io_ftruncate(img->fd, size);
	if (r < 0)
		return err_set_errno(e, -r, "%s: grow to %llu", img->path,
				     (unsigned long long)size);
	img->virtual_size = size;
	return 0;
}

static int raw_flush(struct img *img, struct img_err *e)
{
	int r = io_fdatasync(img->fd);

	if (r < 0)
		return err_set_errno(e, -r, "%s: fdatasync", img->path);
	return 0;
}

/* A new sparse file of the size asked, replacing path as a whole
 * (io_replace.h): an old image there stays intact until the new one is
 * complete, and is never truncated in place. */
static int raw_create(const char *path, const struct img_create_opts *o,
		      struct img_err *e)
{
	struct io_replace t;
	int r;

	if (o->backing)
		return err_set(e, EINVAL,
			       "%s: the raw format has no backing file", path);
	r = io_replace_begin(&t, path, 0644, e);
	if (r < 0)
		return r;
	r = io_ftruncate(t.fd, o->size);
	if (r < 0) {
		io_replace_abort(&t);
		return err_set_errno(e, -r, "%s: cannot size to %llu", path,
				     (unsigned long long)o->size);
	}
	return io_replace_commit(&t, e);
}

const struct img_format img_format_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.get_info = raw_get_info,
	.block_status = raw_block_status,
	.map_status = raw_map_status,
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.pwrite_file = raw_pwrite_file,
	.write_zeroes = raw_write_zeroes,
	.grow = raw_grow,
	.flush = raw_flush,
	.create = raw_create,
};
