/* vmdk.c - the vmdk driver's ops table: probe, open/close, info, backing.
 * Read-only.  See vmdk_int.h for the files of the driver.
 *
 * Three shapes of image, as QEMU opens them:
 *  - a sparse file ("KDMV": monolithicSparse, streamOptimized) that is its
 *    own single extent, with the descriptor text at byte 512;
 *  - a sparse file with capacity 0 whose embedded descriptor lists other
 *    extent files;
 *  - a descriptor text file (monolithicFlat, twoGbMaxExtentSparse,
 *    twoGbMaxExtentFlat, vmfs...) listing its extent files.
 * The backing file is parentFileNameHint, with format vmdk; QEMU reads
 * through it only while the parent's CID equals this image's parentCID
 * (check_backing).
 */
#include "vmdk_int.h"
#include "formats/fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KDMV_MAGIC 0x4b444d56u
#define COWD_MAGIC 0x434f5744u

/* QEMU's rule: magic, or a text whose first line that is not a comment
 * or blank is "version=1", "version=2" or "version=3". */
static int vmdk_probe(const uint8_t *buf, size_t len)
{
	const char *p = (const char *)buf, *end = p + len;

	if (len < 4)
		return 0;
	if (fmt_be32(buf) == KDMV_MAGIC || fmt_be32(buf) == COWD_MAGIC)
		return 100;
	while (p < end) {
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			p++;
			continue;
		}
		if (*p == ' ') {
			while (p < end && *p == ' ')
				p++;
			if (p < end && *p == '\r')
				p++;
			if (p == end || *p != '\n')
				return 0;
			p++;
			continue;
		}
		for (char v = '1'; v <= '3'; v++) {
			char nl[] = "version=X\n", crlf[] = "version=X\r\n";
			nl[8] = crlf[8] = v;
			if ((size_t)(end - p) >= 10 && !memcmp(p, nl, 10))
				return 100;
			if ((size_t)(end - p) >= 11 && !memcmp(p, crlf, 11))
				return 100;
		}
		return 0;
	}
	return 0;
}

static void vmdk_free(struct vmdk_state *s)
{
	if (!s)
		return;
	vmdk_free_extents(s);
	if (s->dirfd >= 0)
		io_close(s->dirfd);
	free(s->create_type);
	free(s->parent_hint);
	free(s->dir_prefix);
	free(s->zin);
	free(s->zout);
	free(s->info_ext);
	free(s);
}

/* max bytes of text at off, NUL-terminated; what lies past the end of the
 * file reads as zeros (as QEMU reads it). */
static int read_text(struct img *img, uint64_t off, size_t max,
		     uint64_t fsize, char **out, struct img_err *e)
{
	char *t = calloc(1, max + 1);
	size_t n = off < fsize ? (fsize - off < max ? (size_t)(fsize - off)
						   : max) : 0;
	int r;

	*out = NULL;
	if (!t)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = n ? fmt_pread(img->fd, img->path, "the descriptor", t, n, off, e)
	      : 0;
	if (r < 0) {
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* The descriptor's directory, as given (for names) and as an fd (for
 * opens). */
static int open_dir(struct img *img, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	const char *slash = strrchr(img->path, '/');
	size_t n = slash ? (size_t)(slash - img->path) + 1 : 0;
	char *dir;

	s->dir_prefix = strndup(img->path, n);
	dir = n ? strndup(img->path, n) : strdup(".");
	if (!s->dir_prefix || !dir) {
		free(dir);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	s->dirfd = io_open(dir, O_PATH | O_DIRECTORY, 0);
	free(dir);
	if (s->dirfd < 0)
		return err_set_errno(e, -s->dirfd, "%s: cannot open the "
				     "descriptor's directory", img->path);
	return 0;
}

/* A descriptor text: createType, then the extents it lists. */
static int open_descriptor(struct img *img, const char *text,
			   struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_line *lines;
	char ct[128], shown[128];
	uint32_t n;
	int r = vmdk_desc_string(text, "createType", ct, sizeof(ct));

	if (r <= 0)
		return err_set(e, EINVAL, "%s: vmdk descriptor field "
			       "'createType' is %s", img->path,
			       r ? "malformed (createType=\"...\")" : "missing");
	fmt_printable(ct, sizeof(ct), shown, sizeof(shown));
	if (!vmdk_desc_type_ok(ct))
		return err_set(e, ENOTSUP, "%s: vmdk descriptor field "
			       "'createType' is '%s', which QEMU does not open "
			       "from a descriptor file", img->path, shown);
	s->create_type = strdup(ct);
	if (!s->create_type)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = vmdk_desc_extents(text, img->path, &lines, &n, e);
	if (r < 0)
		return r;
	if (n == 0)
		r = err_set(e, EINVAL, "%s: vmdk descriptor lists no extent "
			    "QEMU would use (RW SECTORS FLAT|SPARSE \"file\")",
			    img->path);
	if (r == 0)
		r = open_dir(img, e);
	if (r == 0)
		r = vmdk_open_lines(img, lines, n, e);
	free(lines);
	return r;
}

/* CID, parentCID and parentFileNameHint from the descriptor QEMU reads
 * them from (offset 512 of a sparse file, 0 of a descriptor file). */
static int read_ids(struct img *img, uint64_t at, uint64_t fsize,
		    struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	char *t, hint[VMDK_HINT_MAX + 1];
	int r = read_text(img, at, VMDK_DESC_SIZE - 1, fsize, &t, e);

	if (r < 0)
		return r;
	if (vmdk_desc_cid(t, false, &s->cid) < 0)
		r = err_set(e, EINVAL, "%s: vmdk descriptor field 'CID' is "
			    "missing or not hexadecimal", img->path);
	else if (vmdk_desc_cid(t, true, &s->parent_cid) < 0)
		r = err_set(e, EINVAL, "%s: vmdk descriptor field 'parentCID' "
			    "is missing or not hexadecimal", img->path);
	else if ((r = vmdk_desc_string(t, "parentFileNameHint", hint,
				       sizeof(hint))) < 0)
		r = err_set(e, EINVAL, "%s: vmdk descriptor field "
			    "'parentFileNameHint' has no closing quote or is "
			    "longer than %u bytes", img->path, VMDK_HINT_MAX);
	else if (r > 0 && hint[0] && !(s->parent_hint = strdup(hint)))
		r = err_set(e, ENOMEM, "%s: out of memory", img->path);
	else
		r = 0;
	free(t);
	return r;
}

static int open_monolithic(struct img *img, uint64_t fsize,
			   struct img_err *e)
{
	struct vmdk_state *s = img->priv;

	s->create_type = strdup(s->ext[0].compressed ? "streamOptimized"
						       : "monolithicSparse");
	if (!s->create_type)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	return read_ids(img, 512, fsize, e);
}

static int open_shape(struct img *img, uint64_t fsize, struct img_err *e)
{
	uint64_t desc_at = 0;
	uint8_t magic[4];
	char *text;
	int r = fmt_pread(img->fd, img->path, "the magic", magic, 4, 0, e);

	if (r < 0)
		return r;
	if (fmt_be32(magic) == COWD_MAGIC)
		return err_set(e, ENOTSUP, "%s: VMDK3 (COWD) images are not "
			       "supported", img->path);
	if (fmt_be32(magic) == KDMV_MAGIC) {
		r = vmdk_open_self(img, &desc_at, e);
		if (r < 0)
			return r;
		if (!desc_at)
			return open_monolithic(img, fsize, e);
	}
	r = read_text(img, desc_at, VMDK_DESC_MAX, fsize, &text, e);
	if (r < 0)
		return r;
	r = open_descriptor(img, text, e);
	free(text);
	/* QEMU reads the ids of a sparse file at 512, embedded or not */
	return r < 0 ? r : read_ids(img, desc_at ? 512 : 0, fsize, e);
}

static int fill_info_extents(struct img *img, struct img_err *e)
{
	struct vmdk_state *s = img->priv;

	s->info_ext = calloc(s->n, sizeof(*s->info_ext));
	if (!s->info_ext)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint32_t i = 0; i < s->n; i++) {
		const struct vmdk_extent *x = &s->ext[i];
		struct img_extent_info *o = &s->info_ext[i];

		o->filename = x->path;
		o->type = x->type;
		o->virtual_size = x->length;
		o->cluster_size = x->flat ? 0 : (uint32_t)(x->grain * VMDK_SECTOR);
		o->compressed = x->compressed;
		img->virtual_size += x->length;
	}
	return 0;
}

static int vmdk_open(struct img *img, int flags, struct img_err *e)
{
	struct vmdk_state *s;
	struct stat st;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	if (st.st_size < 4)
		return err_set(e, EINVAL, "%s: file is too small (%lld bytes) "
			       "for a vmdk image", img->path,
			       (long long)st.st_size);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	s->dirfd = -1;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	img->priv = s;
	img->virtual_size = 0;
	r = open_shape(img, (uint64_t)st.st_size, e);
	if (r == 0)
		r = fill_info_extents(img, e);
	if (r < 0) {
		vmdk_free(s);
		img->priv = NULL;
	}
	return r;
}

static void vmdk_close(struct img *img)
{
	vmdk_free(img->priv);
	img->priv = NULL;
}

/* QEMU's get_info answers only when every extent is of one kind. */
static bool uniform(const struct vmdk_state *s)
{
	for (uint32_t i = 1; i < s->n; i++) {
		const struct vmdk_extent *a = &s->ext[0], *b = &s->ext[i];
		if (a->flat != b->flat || a->compressed != b->compressed ||
		    (!a->flat && a->grain != b->grain))
			return false;
	}
	return true;
}

static int vmdk_get_info(struct img *img, struct img_info *o,
			 struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	struct stat st;
	int r = io_fstat(img->fd, &st);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	memset(o, 0, sizeof(*o));
	o->format = "vmdk";
	o->virtual_size = img->virtual_size;
	o->actual_size = (uint64_t)st.st_blocks * 512;
	/* QEMU adds every extent file but the image's own */
	for (uint32_t i = 0; i < s->n; i++)
		if (s->ext[i].dev != s->dev || s->ext[i].ino != s->ino)
			o->actual_size += s->ext[i].alloc_bytes;
	o->file_size = (uint64_t)st.st_size;
	if (uniform(s) && !s->ext[0].flat)
		o->cluster_size = (uint32_t)(s->ext[0].grain * VMDK_SECTOR);
	o->no_dirty_flag = !uniform(s);
	o->create_type = s->create_type;
	o->has_cid = true;
	o->cid = s->cid;
	o->parent_cid = s->parent_cid;
	o->extents = s->info_ext;
	o->nb_extents = s->n;
	o->write_refusal = "vmdk images are read, never written";
	return 0;
}

static int vmdk_get_backing(struct img *img, struct img_backing *out,
			    struct img_err *e)
{
	struct vmdk_state *s = img->priv;

	(void)e;
	out->name = s->parent_hint;
	out->format = s->parent_hint ? "vmdk" : NULL;
	return 0;
}

static int vmdk_check_backing(struct img *img, struct img *backing,
			      struct img_err *e)
{
	struct vmdk_state *s = img->priv, *p;

	if (!s->parent_hint)
		return 0;
	if (backing->drv != &img_format_vmdk)
		return err_set(e, EINVAL, "%s: vmdk parent '%s' is a %s image; "
			       "QEMU reads through a vmdk parent only (it "
			       "checks the parent's CID)", img->path,
			       backing->path, backing->drv->name);
	p = backing->priv;
	if (p->cid != s->parent_cid)
		return err_set(e, EINVAL, "%s: vmdk descriptor field "
			       "'parentCID' is %08x but the parent '%s' has CID "
			       "%08x: the parent changed after this image was "
			       "made, and QEMU refuses to read through it",
			       img->path, s->parent_cid, backing->path, p->cid);
	return 0;
}

const struct img_format img_format_vmdk = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.close = vmdk_close,
	.get_info = vmdk_get_info,
	.get_backing = vmdk_get_backing,
	.block_status = vmdk_block_status,
	.pread = vmdk_pread,
	.check_backing = vmdk_check_backing,
};
