/* qcow2.c - the qcow2 driver's ops table: probe, open/close, info and the
 * backing reference.  The other files are listed in qcow2_int.h.
 *
 * Policy: anything we can read but must not write (dirty, corrupt,
 * encryption, external data file, internal snapshots, persistent bitmaps)
 * sets s->write_refusal.  A read-only or inspecting open succeeds; a
 * read-write open fails with that reason, so nothing is ever written to an
 * image whose invariants we do not maintain.  zstd compression is not
 * among them: clusters are written uncompressed, and compressed ones of
 * either type are read.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Claims version 2 and up, as QEMU's qcow2 driver does (it then refuses
 * versions other than 2 and 3).  Calling such a file raw would let a
 * commit write guest data over a header that QEMU reads as qcow2; claimed,
 * it fails to open with an error naming the version.  Version 1 is the
 * qcow driver's (qcow1.c); version 0 is nobody's, as in QEMU. */
static int qcow2_probe(const uint8_t *buf, size_t len)
{
	if (len >= QCOW2_HDR_VERSION + 4 &&
	    qcow2_be32(buf + QCOW2_HDR_MAGIC) == QCOW2_MAGIC &&
	    qcow2_be32(buf + QCOW2_HDR_VERSION) >= 2)
		return 100;
	return 0;
}

/* Why we refuse to write this image (static strings), or NULL. */
static const char *decide_refusal(const struct qcow2_state *s)
{
	const struct qcow2_header *h = &s->h;

	if (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT)
		return "the image is marked corrupt (incompatible feature bit "
		       "1); repair it with 'qemu-img check -r all' first";
	if (h->incompatible_features & QCOW2_INCOMPAT_DIRTY)
		return "the image is dirty (lazy refcounts were not written "
		       "back); repair it with 'qemu-img check -r all' first";
	if (h->crypt_method)
		return "the image is encrypted; encrypted images are not "
		       "supported";
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		return "the image keeps its data in an external data file, "
		       "which is not supported for writing";
	if (h->nb_snapshots)
		return "the image has internal snapshots; writing would need "
		       "copy-on-write of shared clusters, which is not "
		       "supported";
	if (h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)
		return "the image has persistent dirty bitmaps (autoclear "
		       "bit 0): persistent bitmaps would go stale if we "
		       "wrote to it";
	return NULL;
}

static void qcow2_free_state(struct qcow2_state *s)
{
	if (!s)
		return;
	qcow2_alloc_free(s);
	qcow2_info_free(s);
	qcow2_free_header(s);
	qcow2_l1_free(s);
	free(s->l2_cache);
	free(s->reft);
	qcow2_inflater_free(s);
	qcow2_data_close(s);
	free(s);
}

static int qcow2_open(struct img *img, int flags, struct img_err *e)
{
	struct qcow2_state *s;
	struct stat sb;
	int r;

	r = img_fstat(img, &sb);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->data_fd = -1;
	img->priv = s;
	s->file_size = (uint64_t)sb.st_size;
	r = qcow2_parse_header(s, img->path, img->fd, s->file_size, img->head,
			       img->head_len, e);
	if (r < 0)
		goto fail;
	img->virtual_size = s->h.size;
	s->write_refusal = decide_refusal(s);
	if ((flags & IMG_O_RDWR) && s->write_refusal) {
		r = err_set(e, EROFS, "%s: cannot open for writing: %s",
			    img->path, s->write_refusal);
		goto fail;
	}
	/* An inspecting open (the pool scan above all) reads the L1 when a
	 * lookup needs it: a scan needs the header and the backing name,
	 * and a 512-byte-cluster image of 1 GiB has an L1 of 256 KiB.  Any
	 * other open reads it now and checks every entry, so that a plan
	 * or a commit refuses a damaged table before anything is written. */
	if (!(flags & IMG_O_INSPECT)) {
		r = qcow2_load_l1(img, e);
		if (r < 0)
			goto fail;
	}
	/* reads go through the external data file, whoever opened us */
	r = qcow2_data_open(img, e);
	if (r < 0)
		goto fail;
	return 0;
fail:
	qcow2_free_state(s);
	img->priv = NULL;
	return r;
}

static void qcow2_close(struct img *img)
{
	qcow2_free_state(img->priv);
	img->priv = NULL;
}

static int qcow2_get_info(struct img *img, struct img_info *o,
			  struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const struct qcow2_header *h = &s->h;
	int r = img_info_base(img, o, e);

	if (r < 0)
		return r;
	o->cluster_size = s->cluster_size;
	o->version = (int)h->version;
	o->refcount_bits = s->refcount_bits;
	o->compression_type = h->compression_type;
	o->dirty = h->incompatible_features & QCOW2_INCOMPAT_DIRTY;
	o->corrupt = h->incompatible_features & QCOW2_INCOMPAT_CORRUPT;
	o->lazy_refcounts = h->compatible_features &
			    QCOW2_COMPAT_LAZY_REFCOUNTS;
	o->extended_l2 = s->extl2;
	o->data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	o->encrypted = h->crypt_method != 0;
	o->bitmaps = h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS;
	o->nb_snapshots = h->nb_snapshots;
	o->incompatible_features = h->incompatible_features;
	o->compatible_features = h->compatible_features;
	o->autoclear_features = h->autoclear_features;
	o->write_refusal = s->write_refusal;
	return qcow2_info_fill(img, o, e);
}

static int qcow2_get_backing(struct img *img, struct img_backing *out,
			     struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	(void)e;
	out->name = s->backing_name;
	out->format = s->backing_fmt;
	return 0;
}

const struct img_format img_format_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.get_info = qcow2_get_info,
	.get_backing = qcow2_get_backing,
	.block_status = qcow2_block_status,
	.map_status = qcow2_map_status,
	.pread = qcow2_pread,
	.backing_header = qcow2_backing_header,
	.set_backing = qcow2_set_backing,
	.pwrite = qcow2_pwrite,
	.pwrite_file = qcow2_pwrite_file,
	.write_zeroes = qcow2_write_zeroes,
	.grow = qcow2_grow,
	.make_empty = qcow2_make_empty,
	.flush = qcow2_flush,
	.batch_begin = qcow2_batch_begin,
	.batch_end = qcow2_batch_end,
	.create = qcow2_create,
	.check = qcow2_check,
};
