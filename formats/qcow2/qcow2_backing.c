/* qcow2_backing.c - the safe cluster-0 rewrite that changes the backing
 * link (the `qemu-img rebase -u` primitive), and the cluster-0 layout that
 * qcow2_create shares.
 *
 * Why the whole cluster: the qcow2 format lets nothing but the header, its
 * extensions and the backing name live in cluster 0, so rebuilding the area
 * after the fixed header is safe and lets the name move when it grows.  The
 * new cluster is written with ONE pwrite of cluster_size bytes (whole
 * sectors) and fdatasync'd; no other metadata changes.  Everything we do not
 * understand is kept: bytes [0, header_length) (unknown header fields
 * included) and every extension except the old backing-format one.
 *
 * Ownership: qcow2_backing_header() returns a malloc'd buffer of exactly
 * cluster_size bytes (*len) that replaces file range [0, *len); the caller
 * frees it.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t pad8(uint32_t n)
{
	return (n + 7) & ~7u;
}

/* One extension record at pos; returns the position after its padding. */
static uint32_t put_ext(uint8_t *buf, uint32_t pos, uint32_t type,
			const uint8_t *data, uint32_t len)
{
	qcow2_put_be32(buf + pos + QCOW2_EXT_TYPE, type);
	qcow2_put_be32(buf + pos + QCOW2_EXT_LEN, len);
	if (len)
		memcpy(buf + pos + QCOW2_EXT_DATA, data, len);
	return pos + QCOW2_EXT_DATA + pad8(len);
}

int qcow2_layout_cluster0(uint8_t *buf, uint32_t cs, uint32_t hdr_len,
			  const char *fmt, const struct qcow2_ext *keep,
			  int nkeep, const char *name, uint32_t *name_off)
{
	uint64_t need = hdr_len;
	size_t flen = fmt ? strlen(fmt) : 0;
	size_t nlen = name ? strlen(name) : 0;
	uint32_t pos = hdr_len;

	/* Size first, so that nothing is touched when it does not fit. */
	if (fmt)
		need += QCOW2_EXT_DATA + pad8((uint32_t)flen);
	for (int i = 0; i < nkeep; i++)
		need += QCOW2_EXT_DATA + (uint64_t)pad8(keep[i].len);
	need += QCOW2_EXT_DATA;         /* end marker */
	need += nlen;
	if (need > cs)
		return -ENOSPC;

	memset(buf + hdr_len, 0, cs - hdr_len);
	if (fmt)
		pos = put_ext(buf, pos, QCOW2_EXT_BACKING_FMT,
			      (const uint8_t *)fmt, (uint32_t)flen);
	for (int i = 0; i < nkeep; i++)
		pos = put_ext(buf, pos, keep[i].type, keep[i].data,
			      keep[i].len);
	pos += QCOW2_EXT_DATA;          /* end marker: type 0, len 0 */
	*name_off = 0;
	if (name) {
		memcpy(buf + pos, name, nlen);
		*name_off = pos;
	}
	return 0;
}

int qcow2_backing_header(struct img *img, const char *name, const char *fmt,
			 uint8_t **bufp, size_t *lenp, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint32_t cs = s->cluster_size, hl = s->h.header_length, name_off;
	struct qcow2_ext *keep;
	size_t nlen = name ? strlen(name) : 0;
	uint8_t *buf;
	int nkeep = 0, r;

	*bufp = NULL;
	*lenp = 0;
	if (name && !*name)
		name = NULL;
	if (!name)
		fmt = NULL;             /* no backing file, no format either */
	if (name && nlen > IMG_BACKING_NAME_MAX)
		return err_set(e, EINVAL,
			       "%s: backing name is %zu bytes; qcow2 allows at "
			       "most %d", img->path, nlen, IMG_BACKING_NAME_MAX);
	if (fmt && (!*fmt || strlen(fmt) > IMG_FORMAT_NAME_MAX))
		return err_set(e, EINVAL,
			       "%s: backing format '%s' must be 1..%d bytes",
			       img->path, fmt, IMG_FORMAT_NAME_MAX);
	if (name && (s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_RAW))
		return err_set(e, EINVAL,
			       "%s: the image has a raw external data file "
			       "(autoclear bit 1); qcow2 forbids a backing file "
			       "with it", img->path);
	if (!s->header_cluster || hl > cs)
		return err_set(e, EINVAL, "%s: qcow2 header not loaded",
			       img->path);
	/* The rewrite replaces all of cluster 0 (and set_backing keeps the
	 * old one to put back). */
	r = qcow2_hdr_need(s, img->path, img->fd, cs, e);
	if (r < 0)
		return r;

	keep = calloc((size_t)s->nexts + 1, sizeof(*keep));
	buf = malloc(cs);
	if (!keep || !buf) {
		free(keep);
		free(buf);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	for (int i = 0; i < s->nexts; i++)
		if (s->exts[i].type != QCOW2_EXT_BACKING_FMT)
			keep[nkeep++] = s->exts[i];
	memcpy(buf, s->header_cluster, hl);
	r = qcow2_layout_cluster0(buf, cs, hl, fmt, keep, nkeep, name,
				  &name_off);
	free(keep);
	if (r < 0) {
		free(buf);
		return err_set(e, ENOSPC,
			       "%s: no space left in the header cluster for a "
			       "backing name of %zu bytes (cluster size %u)",
			       img->path, nlen, cs);
	}
	qcow2_put_be64(buf + QCOW2_HDR_BACKING_FILE_OFFSET,
		       name ? name_off : 0);
	qcow2_put_be32(buf + QCOW2_HDR_BACKING_FILE_SIZE, (uint32_t)nlen);
	*bufp = buf;
	*lenp = cs;
	return 0;
}

int qcow2_set_backing(struct img *img, const char *name, const char *fmt,
		      struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const char *refusal = s->write_refusal;
	struct stat st;
	uint8_t *buf;
	size_t len;
	int r;

	if (!(img->flags & IMG_O_RDWR))
		return err_set(e, EROFS, "%s: opened read-only; cannot change "
			       "the backing link", img->path);
	r = qcow2_backing_header(img, name, fmt, &buf, &len, e);
	if (r < 0)
		return r;
	/* One write of whole sectors; if it fails (maybe torn), the old
	 * cluster is put back. */
	r = qcow2_meta_write(img, 0, buf, s->header_cluster, len,
			     "the header cluster", e);
	if (r < 0) {
		free(buf);
		return r;
	}
	r = io_fdatasync(img->fd);
	if (r < 0) {
		free(buf);
		return err_set_errno(e, -r, "%s: fdatasync after the header "
				     "rewrite", img->path);
	}
	free(buf);

	/* Re-read what we wrote, so that names, formats and extensions in
	 * memory are exactly the file's. */
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	if ((uint64_t)st.st_size > s->file_size)
		s->file_size = (uint64_t)st.st_size;
	qcow2_free_header(s);
	r = qcow2_parse_header(s, img->path, img->fd, (uint64_t)st.st_size,
			       NULL, 0, e);
	if (r < 0) {
		err_prefix(e, "after rewriting the backing link: ");
		return r;
	}
	if (!s->write_refusal)
		s->write_refusal = refusal;
	return 0;
}
