/* img.c - the op wrappers and their fallbacks; see img.h and the table of
 * required and optional ops in format.h. */
#include "img.h"

#include <errno.h>
#include <string.h>

static int no_op(const struct img *img, const char *what, struct img_err *e)
{
	return err_set(e, ENOTSUP, "%s: the %s format does not support %s",
		       img->path, img->drv->name, what);
}

const char *img_format_name(const struct img *img)
{
	return img->drv->name;
}

bool img_is_raw(const struct img *img)
{
	return img->drv == &img_format_raw;
}

int img_get_info(struct img *img, struct img_info *out, struct img_err *e)
{
	int r = img->drv->get_info(img, out, e);

	if (r == 0 && !out->write_refusal && !img_can_write(img))
		out->write_refusal = "imgraph can read this format but not "
				     "write it";
	return r;
}

/* Every format's backing name, whatever its driver checked: bounded, and
 * without a control character (newline, escape...), which no administrator
 * puts in a path and which could forge lines in our output and in
 * terminals.  Such a link is refused, never shown or followed. */
static int check_backing_name(struct img *img, struct img_backing *out,
			      struct img_err *e)
{
	size_t n = strnlen(out->name, IMG_BACKING_NAME_MAX + 1);

	if (n > IMG_BACKING_NAME_MAX) {
		out->name = out->format = NULL;
		return err_set(e, EINVAL, "%s: the backing file name is longer "
			       "than %d bytes", img->path, IMG_BACKING_NAME_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out->name[i];

		if (c < 0x20 || c == 0x7f) {
			out->name = out->format = NULL;
			return err_set(e, EINVAL, "%s: the backing file name has "
				       "a control character (0x%02x at byte "
				       "%zu)", img->path, c, i);
		}
	}
	return 0;
}

int img_get_backing(struct img *img, struct img_backing *out,
		    struct img_err *e)
{
	int r;

	out->name = NULL;
	out->format = NULL;
	if (!img->drv->get_backing)
		return 0;
	r = img->drv->get_backing(img, out, e);
	if (r < 0 || !out->name)
		return r;
	return check_backing_name(img, out, e);
}

bool img_can_set_backing(const struct img *img)
{
	return img->drv->backing_header != NULL;
}

int img_backing_header(struct img *img, const char *name, const char *fmt,
		       uint8_t **buf, size_t *len, struct img_err *e)
{
	if (!img->drv->backing_header)
		return no_op(img, "rewriting the backing link", e);
	return img->drv->backing_header(img, name, fmt, buf, len, e);
}

int img_set_backing(struct img *img, const char *name, const char *fmt,
		    struct img_err *e)
{
	if (!img->drv->set_backing)
		return no_op(img, "rewriting the backing link", e);
	return img->drv->set_backing(img, name, fmt, e);
}

int img_block_status(struct img *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, struct img_err *e)
{
	return img->drv->block_status(img, off, len, pnum, e);
}

int img_map_status(struct img *img, uint64_t off, uint64_t len,
		   uint64_t *pnum, struct img_map *m, struct img_err *e)
{
	int r;

	memset(m, 0, sizeof(*m));
	if (img->drv->map_status)
		r = img->drv->map_status(img, off, len, pnum, m, e);
	else
		r = img->drv->block_status(img, off, len, pnum, e);
	if (!m->file)
		m->file = img->path;
	return r;
}

int img_pread(struct img *img, uint64_t off, void *buf, size_t len,
	      struct img_err *e)
{
	return img->drv->pread(img, off, buf, len, e);
}

bool img_can_write(const struct img *img)
{
	return img->drv->pwrite && img->drv->write_zeroes && img->drv->grow;
}

int img_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
	       struct img_err *e)
{
	if (!img->drv->pwrite)
		return no_op(img, "writing", e);
	return img->drv->pwrite(img, off, buf, len, e);
}

bool img_can_pwrite_file(const struct img *img)
{
	return img->drv->pwrite_file != NULL;
}

int img_pwrite_file(struct img *img, uint64_t off, uint64_t len, int src,
		    uint64_t soff, struct io_copy_ctx *ctx, struct img_err *e)
{
	if (!img->drv->pwrite_file)
		return no_op(img, "writing from another file", e);
	return img->drv->pwrite_file(img, off, len, src, soff, ctx, e);
}

int img_data_fd(const struct img *img, const struct img_map *m)
{
	if (!m->offset_valid || (m->file && m->file != img->path &&
				 strcmp(m->file, img->path)))
		return -1;
	return img->fd;
}

int img_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     struct img_err *e)
{
	if (!img->drv->write_zeroes)
		return no_op(img, "writing zeroes", e);
	return img->drv->write_zeroes(img, off, len, e);
}

int img_grow(struct img *img, uint64_t new_size, struct img_err *e)
{
	if (!img->drv->grow)
		return no_op(img, "resizing", e);
	return img->drv->grow(img, new_size, e);
}

int img_make_empty(struct img *img, struct img_err *e)
{
	if (!img->drv->make_empty)
		return no_op(img, "emptying the image", e);
	return img->drv->make_empty(img, e);
}

int img_flush(struct img *img, struct img_err *e)
{
	return img->drv->flush ? img->drv->flush(img, e) : 0;
}

int img_batch_begin(struct img *img, struct img_err *e)
{
	return img->drv->batch_begin ? img->drv->batch_begin(img, e) : 0;
}

int img_batch_end(struct img *img, struct img_err *e)
{
	return img->drv->batch_end ? img->drv->batch_end(img, e) : 0;
}

bool img_format_checks_backing(const char *fmt)
{
	const struct img_format *f = img_format_find(fmt);

	return f && f->check_backing;
}

int img_check_backing(struct img *img, struct img *backing,
		      struct img_err *e)
{
	return img->drv->check_backing ?
	       img->drv->check_backing(img, backing, e) : 0;
}

bool img_can_check(const struct img *img)
{
	return img->drv->check != NULL;
}

int img_check(struct img *img, struct img_check *out, struct img_err *e)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!img->drv->check)
		return no_op(img, "consistency checks", e);
	r = img->drv->check(img, out, e);
	if (r < 0)
		img_check_free(out);    /* a failed check hands back nothing */
	return r;
}

bool img_format_can_create(const struct img_format *fmt)
{
	return fmt->create != NULL;
}

int img_create(const struct img_format *fmt, const char *path,
	       const struct img_create_opts *o, struct img_err *e)
{
	if (!fmt->create)
		return err_set(e, ENOTSUP, "%s: cannot create %s images", path,
			       fmt->name);
	return fmt->create(path, o, e);
}
