/* vmdk_extent.c - the extent files of a vmdk image.
 *
 * Extent names come from a text file anyone may have written, so they are
 * opened only inside the descriptor's directory: an absolute name or a
 * ".." above it is refused before anything is opened, and the open itself
 * cannot leave the directory through a symlink (io_openat_beneath).  An
 * extent that is not a regular file is refused.
 *
 * Sparse extents are checked as QEMU checks them (version, grain table
 * size, grain size, "file truncated"), and their grain directory must lie
 * inside the file, which bounds its memory by the file's size.  At most
 * VMDK_MAX_OPEN extent files stay open; others are reopened on demand
 * and must still be the same file (device and inode).
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

#define KDMV_MAGIC       0x4b444d56u      /* "KDMV" read big-endian */
#define COWD_MAGIC       0x434f5744u      /* "COWD" */
#define GD_AT_END        UINT64_MAX
#define FLAG_ZERO_GRAIN  (1u << 2)
#define FLAG_MARKER      (1u << 17)
#define HDR_BYTES        79u              /* magic + QEMU's VMDK4Header */
#define FOOTER_BYTES     1536u            /* marker, header, EOS marker */
#define KIND             "vmdk sparse extent"

struct sparse_hdr {
	uint32_t version, flags, gtes;
	uint64_t capacity, grain, desc_offset, gd_offset, grain_offset;
	uint16_t compress;
};

static void decode(const uint8_t *b, struct sparse_hdr *h)
{
	h->version = fmt_le32(b + 4);
	h->flags = fmt_le32(b + 8);
	h->capacity = fmt_le64(b + 12);
	h->grain = fmt_le64(b + 20);
	h->desc_offset = fmt_le64(b + 28);
	h->gtes = fmt_le32(b + 44);
	h->gd_offset = fmt_le64(b + 56);
	h->grain_offset = fmt_le64(b + 64);
	h->compress = fmt_le16(b + 77);
}

/* A stream-optimized file may keep its real header in a footer: marker
 * (type 3), the header sector, end-of-stream marker, at the very end. */
static int read_footer(const char *path, int fd, uint64_t fsize,
		       struct sparse_hdr *h, struct img_err *e)
{
	uint8_t f[FOOTER_BYTES];
	int r;

	if (fsize < FOOTER_BYTES)
		return fmt_bad_field(e, path, KIND, "gdOffset", "says the "
				     "grain directory is in a footer, but the "
				     "file (%llu bytes) is too short for one",
				     (unsigned long long)fsize);
	r = fmt_pread(fd, path, "the stream footer", f, sizeof(f),
		      fsize - FOOTER_BYTES, e);
	if (r < 0)
		return r;
	if (fmt_le32(f + 8) != 0 || fmt_le32(f + 12) != 3 ||
	    fmt_be32(f + 512) != KDMV_MAGIC || fmt_le64(f + 1024) != 0 ||
	    fmt_le32(f + 1032) != 0 || fmt_le32(f + 1036) != 0)
		return fmt_bad_field(e, path, KIND, "gdOffset", "says the "
				     "grain directory is in a footer, but the "
				     "last 1536 bytes are no valid footer");
	decode(f + 512, h);
	return 0;
}

static int check_header(const char *path, const struct sparse_hdr *h,
			uint64_t fsize, struct img_err *e)
{
	if (h->version > 3)
		return err_set(e, ENOTSUP, "%s: %s header field 'version' is "
			       "%u; versions 1 to 3 are supported", path, KIND,
			       h->version);
	if (h->gtes == 0 || h->gtes > 512)
		return fmt_bad_field(e, path, KIND, "numGTEsPerGT", "is %u; "
				     "must be 1..512", h->gtes);
	if (h->grain == 0 || h->grain > VMDK_MAX_GRAIN)
		return fmt_bad_field(e, path, KIND, "grainSize", "is %llu "
				     "sectors; must be 1..%u",
				     (unsigned long long)h->grain,
				     VMDK_MAX_GRAIN);
	if (h->compress == 1 && h->grain > VMDK_MAX_ZGRAIN)
		return fmt_bad_field(e, path, KIND, "grainSize", "is %llu "
				     "sectors; compressed grains are limited "
				     "to %u", (unsigned long long)h->grain,
				     VMDK_MAX_ZGRAIN);
	if (h->capacity > VMDK_MAX_SECTORS)
		return fmt_bad_field(e, path, KIND, "capacity", "is %llu "
				     "sectors; over 2^61 bytes",
				     (unsigned long long)h->capacity);
	if (fsize / VMDK_SECTOR < h->grain_offset)
		return fmt_bad_field(e, path, KIND, "overHead", "is %llu "
				     "sectors; file truncated, expecting at "
				     "least %llu bytes",
				     (unsigned long long)h->grain_offset,
				     (unsigned long long)h->grain_offset *
				     VMDK_SECTOR);
	return 0;
}

static int load_gd(struct vmdk_extent *x, const char *path, int fd,
		   uint64_t gd_sector, struct img_err *e)
{
	uint64_t per = (uint64_t)x->gtes * x->grain;
	uint64_t cap = x->length / VMDK_SECTOR, n = (cap + per - 1) / per;
	uint8_t *raw;
	int r;

	if (n > VMDK_MAX_GD)
		return fmt_bad_field(e, path, KIND, "capacity", "needs %llu "
				     "grain directory entries; at most %u",
				     (unsigned long long)n, VMDK_MAX_GD);
	if (gd_sector > x->file_size / VMDK_SECTOR ||
	    n * 4 > x->file_size - gd_sector * VMDK_SECTOR)
		return fmt_bad_field(e, path, KIND, "gdOffset", "is sector "
				     "%llu; the %llu-byte grain directory ends "
				     "past the end of the file (%llu bytes)",
				     (unsigned long long)gd_sector,
				     (unsigned long long)n * 4,
				     (unsigned long long)x->file_size);
	x->gd_entries = (uint32_t)n;
	x->gd = malloc(n ? n * 4 : 1);
	raw = malloc(n ? n * 4 : 1);
	if (!x->gd || !raw) {
		free(raw);
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	r = fmt_pread(fd, path, "the grain directory", raw, (size_t)n * 4,
		      gd_sector * VMDK_SECTOR, e);
	for (uint64_t i = 0; r == 0 && i < n; i++)
		x->gd[i] = fmt_le32(raw + 4 * i);
	free(raw);
	return r;
}

/* Parse the sparse header of x's file (fd).  embedded: where to put the
 * offset of an embedded descriptor (capacity 0), or NULL when that is
 * not allowed here. */
static int open_sparse(struct vmdk_extent *x, const char *path, int fd,
		       uint64_t *embedded, struct img_err *e)
{
	uint8_t b[HDR_BYTES];
	struct sparse_hdr h;
	int r;

	if (x->file_size < 4)
		return err_set(e, EINVAL, "%s: file is too small (%llu bytes) "
			       "for a vmdk sparse extent", path,
			       (unsigned long long)x->file_size);
	r = fmt_pread(fd, path, "the magic", b, 4, 0, e);
	if (r < 0)
		return r;
	if (fmt_be32(b) == COWD_MAGIC)
		return err_set(e, ENOTSUP, "%s: VMDK3 (COWD) sparse extents "
			       "are not supported", path);
	if (fmt_be32(b) != KDMV_MAGIC)
		return fmt_bad_field(e, path, KIND, "magic", "is not 'KDMV'; "
				     "not a vmdk sparse extent");
	if (x->file_size < HDR_BYTES)
		return err_set(e, EINVAL, "%s: %s header truncated: %llu "
			       "bytes, needs %u", path, KIND,
			       (unsigned long long)x->file_size, HDR_BYTES);
	r = fmt_pread(fd, path, "the sparse header", b, sizeof(b), 0, e);
	if (r < 0)
		return r;
	decode(b, &h);
	if (h.capacity == 0 && h.desc_offset) {
		if (!embedded)
			return fmt_bad_field(e, path, KIND, "capacity", "is 0 "
					     "(an embedded descriptor) in an "
					     "extent of another descriptor");
		if (h.desc_offset > x->file_size / VMDK_SECTOR)
			return fmt_bad_field(e, path, KIND, "descriptorOffset",
					     "is %llu sectors; past the end of "
					     "the file",
					     (unsigned long long)h.desc_offset);
		*embedded = h.desc_offset * VMDK_SECTOR;
		return 0;
	}
	if (h.gd_offset == GD_AT_END &&
	    (r = read_footer(path, fd, x->file_size, &h, e)) < 0)
		return r;
	r = check_header(path, &h, x->file_size, e);
	if (r < 0)
		return r;
	x->length = h.capacity * VMDK_SECTOR;
	x->grain = h.grain;
	x->gtes = h.gtes;
	x->compressed = h.compress == 1;
	x->has_marker = h.flags & FLAG_MARKER;
	x->zero_grain = h.flags & FLAG_ZERO_GRAIN;
	return load_gd(x, path, fd, h.gd_offset, e);
}

int vmdk_open_self(struct img *img, uint64_t *desc_at, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_extent *x;
	struct stat st;
	int r = io_fstat(img->fd, &st);

	*desc_at = 0;
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	x = calloc(1, sizeof(*x));
	if (!x || !(x->path = strdup(img->path))) {
		free(x);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	x->type = "";
	x->fd = img->fd;
	x->shared_fd = true;
	x->file_size = (uint64_t)st.st_size;
	x->alloc_bytes = (uint64_t)st.st_blocks * 512;
	x->dev = st.st_dev;
	x->ino = st.st_ino;
	s->ext = x;
	s->n = 1;
	r = open_sparse(x, img->path, img->fd, desc_at, e);
	if (r == 0 && *desc_at) {        /* not an extent after all */
		vmdk_free_extents(s);
		return 0;
	}
	return r;
}

/* The extent name as written: refused when it would leave the
 * descriptor's directory (checked before any open, so that a name like
 * /etc/shadow is never even opened). */
static int check_name(const char *path, const struct vmdk_line *l,
		      struct img_err *e)
{
	char shown[VMDK_FNAME_MAX + 1];
	int depth = 0;

	fmt_printable(l->fname, sizeof(l->fname), shown, sizeof(shown));
	if (l->fname[0] == '/')
		return err_set(e, EPERM, "%s: vmdk descriptor line %d: extent "
			       "file '%s' is an absolute path; extent files "
			       "must lie in the descriptor's directory (not "
			       "opened)", path, l->lineno, shown);
	for (const char *p = l->fname; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (n && !(n == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return err_set(e, EPERM, "%s: vmdk descriptor line %d: "
				       "extent file '%s' leaves the "
				       "descriptor's directory (not opened)",
				       path, l->lineno, shown);
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

static int open_file(struct vmdk_state *s, const char *path,
		     const char *name, int lineno, int *fd, struct stat *st,
		     struct img_err *e)
{
	char shown[VMDK_FNAME_MAX + 1];
	int f;

	fmt_printable(name, strlen(name), shown, sizeof(shown));
	if (s->dirfd < 0)
		return err_set(e, EINVAL, "%s: vmdk descriptor line %d: extent "
			       "file '%s': no directory to open it in", path,
			       lineno, shown);
	f = io_openat_beneath(s->dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (f == -EXDEV || f == -ELOOP)
		return err_set(e, EPERM, "%s: vmdk descriptor line %d: extent "
			       "file '%s' resolves outside the descriptor's "
			       "directory (a symlink); not opened", path,
			       lineno, shown);
	if (f < 0)
		return err_set_errno(e, -f, "%s: vmdk descriptor line %d: "
				     "cannot open extent file '%s'", path,
				     lineno, shown);
	if (io_fstat(f, st) < 0 || !S_ISREG(st->st_mode)) {
		io_close(f);
		return err_set(e, EINVAL, "%s: vmdk descriptor line %d: extent "
			       "file '%s' is not a regular file", path, lineno,
			       shown);
	}
	fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
	*fd = f;
	return 0;
}

static void close_lru(struct vmdk_state *s)
{
	struct vmdk_extent *old = NULL;

	for (uint32_t i = 0; i < s->n; i++) {
		struct vmdk_extent *x = &s->ext[i];
		if (x->fd >= 0 && !x->shared_fd &&
		    (!old || x->last_use < old->last_use))
			old = x;
	}
	if (old) {
		io_close(old->fd);
		old->fd = -1;
		s->nopen--;
	}
}

int vmdk_extent_fd(struct img *img, struct vmdk_extent *x,
		   struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	struct stat st;
	int fd, r;

	x->last_use = ++s->tick;
	if (x->fd >= 0)
		return x->fd;
	if (s->nopen >= VMDK_MAX_OPEN)
		close_lru(s);
	r = open_file(s, img->path, x->name, x->lineno, &fd, &st, e);
	if (r < 0)
		return r;
	if (st.st_dev != x->dev || st.st_ino != x->ino) {
		io_close(fd);
		return err_set(e, ESTALE, "%s: vmdk extent file '%s' was "
			       "replaced since the image was opened", img->path,
			       x->path);
	}
	x->fd = fd;
	s->nopen++;
	return fd;
}

/* One extent line: name checked, file opened, header parsed. */
static int open_line(struct img *img, const struct vmdk_line *l,
		     struct vmdk_extent *x, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	bool flat = !strcmp(l->type, "FLAT") || !strcmp(l->type, "VMFS");
	struct stat st;
	int r = check_name(img->path, l, e);

	if (r < 0)
		return r;
	x->lineno = l->lineno;
	if (!strcmp(l->type, "SESPARSE"))
		return err_set(e, ENOTSUP, "%s: vmdk descriptor line %d: "
			       "seSparse extents are not supported", img->path,
			       l->lineno);
	x->name = strdup(l->fname);
	if (x->name && asprintf(&x->path, "%s%s", s->dir_prefix, l->fname) < 0)
		x->path = NULL;
	if (!x->name || !x->path)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = open_file(s, img->path, l->fname, l->lineno, &x->fd, &st, e);
	if (r < 0)
		return r;
	s->nopen++;
	x->last_use = ++s->tick;
	x->file_size = (uint64_t)st.st_size;
	x->alloc_bytes = (uint64_t)st.st_blocks * 512;
	x->dev = st.st_dev;
	x->ino = st.st_ino;
	x->type = flat ? (l->type[0] == 'F' ? "FLAT" : "VMFS")
		       : (!strcmp(l->type, "SPARSE") ? "SPARSE" : "VMFSSPARSE");
	if (flat) {
		x->flat = true;
		x->length = l->sectors * VMDK_SECTOR;
		if (l->flat_offset > VMDK_MAX_SECTORS)
			return err_set(e, EINVAL, "%s: vmdk descriptor line "
				       "%d: flat extent offset %llu sectors is "
				       "out of range", img->path, l->lineno,
				       (unsigned long long)l->flat_offset);
		x->flat_offset = l->flat_offset * VMDK_SECTOR;
		return 0;
	}
	/* QEMU takes a sparse extent's size from its header, not the line */
	r = open_sparse(x, x->path, x->fd, NULL, e);
	if (r < 0)
		err_prefix(e, "%s: vmdk descriptor line %d: ", img->path,
			   l->lineno);
	return r;
}

int vmdk_open_lines(struct img *img, const struct vmdk_line *lines,
		    uint32_t n, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	uint64_t total = 0;

	s->ext = calloc(n ? n : 1, sizeof(*s->ext));
	if (!s->ext)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	for (uint32_t i = 0; i < n; i++) {
		struct vmdk_extent *x = &s->ext[i];
		int r;

		x->fd = -1;
		s->n = i + 1;
		r = open_line(img, &lines[i], x, e);
		if (r < 0)
			return r;
		x->start = total;
		if (x->length > (VMDK_MAX_SECTORS * VMDK_SECTOR) - total)
			return err_set(e, EINVAL, "%s: vmdk extents add up to "
				       "more than 2^61 bytes", img->path);
		total += x->length;
		if (s->nopen > VMDK_MAX_OPEN)
			close_lru(s);
	}
	return 0;
}

void vmdk_free_extents(struct vmdk_state *s)
{
	for (uint32_t i = 0; s->ext && i < s->n; i++) {
		struct vmdk_extent *x = &s->ext[i];
		if (x->fd >= 0 && !x->shared_fd)
			io_close(x->fd);
		free(x->path);
		free(x->name);
		free(x->gd);
		free(x->gt);
	}
	free(s->ext);
	s->ext = NULL;
	s->n = 0;
	s->nopen = 0;
}
