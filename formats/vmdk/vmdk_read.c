/* vmdk_read.c - block status and reads of a vmdk image (this layer only).
 *
 * Flat extents are data everywhere; past the end of a flat file they read
 * as zeros (as QEMU reads a short file).  Sparse extents go through the
 * grain directory and a grain table: 0 unallocated (the parent's data), 1
 * a zeroed grain when the header allows it, else the grain's sector.
 * Compressed grains (streamOptimized) are a zlib stream, after a 12-byte
 * marker (lba u64, size u32) when the header has the marker flag, and
 * must inflate to cover what is read of them.  Grain tables and grains
 * must lie inside their file.
 */
#include "vmdk_int.h"
#include "formats/fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct vmdk_extent *find_ext(struct vmdk_state *s, uint64_t off)
{
	uint32_t lo = 0, hi = s->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct vmdk_extent *x = &s->ext[mid];

		if (off < x->start)
			hi = mid;
		else if (off - x->start >= x->length)
			lo = mid + 1;
		else
			return x;
	}
	return NULL;
}

static int load_gt(struct img *img, struct vmdk_extent *x, uint64_t l1i,
		   struct img_err *e)
{
	uint32_t sector = x->gd[l1i];
	size_t bytes = (size_t)x->gtes * 4;
	uint8_t raw[512 * 4];
	uint64_t pos = (uint64_t)sector * VMDK_SECTOR;
	int fd, r;

	if (x->gt && x->gt_sector == sector)
		return 0;
	if (pos > x->file_size || bytes > x->file_size - pos)
		return err_set(e, EINVAL, "%s: vmdk grain directory entry %llu "
			       "of '%s' is sector %u; the grain table ends "
			       "past the end of the file", img->path,
			       (unsigned long long)l1i, x->path, sector);
	if (!x->gt && !(x->gt = malloc(512 * 4)))
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	fd = vmdk_extent_fd(img, x, e);
	if (fd < 0)
		return fd;
	x->gt_sector = 0;
	r = fmt_pread(fd, x->path, "a grain table", raw, bytes, pos, e);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < x->gtes; i++)
		x->gt[i] = fmt_le32(raw + 4 * i);
	x->gt_sector = sector;
	return 0;
}

/* State of the extent byte rel; *sector: the grain's sector (DATA of a
 * sparse extent); *run: how far from rel the same answer holds. */
static int grain_at(struct img *img, struct vmdk_extent *x, uint64_t rel,
		    uint32_t *sector, uint64_t *run, struct img_err *e)
{
	uint64_t gbytes = x->grain * VMDK_SECTOR, span, l1i;
	uint32_t gte;
	int r;

	*run = x->length - rel;
	if (x->flat)
		return IMG_BS_DATA;
	span = gbytes * x->gtes;
	l1i = rel / span;
	if (l1i >= x->gd_entries)
		return err_set(e, EIO, "%s: vmdk offset %llu of '%s' is beyond "
			       "its grain directory", img->path,
			       (unsigned long long)rel, x->path);
	if (!x->gd[l1i]) {
		if (span - rel % span < *run)
			*run = span - rel % span;
		return IMG_BS_UNALLOC;
	}
	r = load_gt(img, x, l1i, e);
	if (r < 0)
		return r;
	gte = x->gt[(rel / gbytes) % x->gtes];
	if (gbytes - rel % gbytes < *run)
		*run = gbytes - rel % gbytes;
	*sector = gte;
	if (!gte)
		return IMG_BS_UNALLOC;
	return x->zero_grain && gte == 1 ? IMG_BS_ZERO : IMG_BS_DATA;
}

int vmdk_block_status(struct img *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	uint64_t done = 0;
	int first = -1;

	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	while (done < len) {
		struct vmdk_extent *x = find_ext(s, off + done);
		uint64_t run;
		uint32_t sector;
		int st;

		if (!x)
			return err_set(e, EIO, "%s: vmdk offset %llu is in no "
				       "extent", img->path,
				       (unsigned long long)(off + done));
		st = grain_at(img, x, off + done - x->start, &sector, &run, e);
		if (st < 0)
			return st;
		if (first >= 0 && st != first)
			break;
		first = st;
		done += run;
	}
	*pnum = done < len ? done : len;
	return first;
}

/* Inflate the compressed grain at sector into s->zout (kept for the next
 * read of the same grain). */
static int inflate_grain(struct img *img, struct vmdk_extent *x,
			 uint32_t sector, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	uint64_t gbytes = x->grain * VMDK_SECTOR, pos = (uint64_t)sector * VMDK_SECTOR;
	uint64_t have, dlen;
	const uint8_t *data;
	int fd, r, ended;
	long got;

	if (s->zout_ext == x && s->zout_sector == sector)
		return 0;
	if (!s->zin) {
		uint64_t max = 0;       /* the largest compressed grain */

		for (uint32_t i = 0; i < s->n; i++)
			if (s->ext[i].compressed && s->ext[i].grain > max)
				max = s->ext[i].grain;
		s->zin = malloc((size_t)max * VMDK_SECTOR * 2);
		s->zout = malloc((size_t)max * VMDK_SECTOR);
		if (!s->zin || !s->zout) {
			free(s->zin);
			free(s->zout);
			s->zin = s->zout = NULL;
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
		}
	}
	s->zout_ext = NULL;
	if (pos >= x->file_size)
		return err_set(e, EINVAL, "%s: vmdk compressed grain at sector "
			       "%u of '%s' is past the end of the file",
			       img->path, sector, x->path);
	/* a grain and its marker fit in two grains (QEMU reads that much) */
	have = x->file_size - pos < 2 * gbytes ? x->file_size - pos : 2 * gbytes;
	fd = vmdk_extent_fd(img, x, e);
	if (fd < 0)
		return fd;
	r = fmt_pread(fd, x->path, "a compressed grain", s->zin, (size_t)have,
		      pos, e);
	if (r < 0)
		return r;
	data = x->has_marker ? s->zin + 12 : s->zin;
	dlen = x->has_marker ? (have >= 12 ? fmt_le32(s->zin + 8) : 0) : have;
	if (dlen == 0 || dlen > have - (uint64_t)(data - s->zin))
		return err_set(e, EINVAL, "%s: vmdk compressed grain at sector "
			       "%u of '%s': marker size %llu does not fit the "
			       "%llu bytes there", img->path, sector, x->path,
			       (unsigned long long)dlen,
			       (unsigned long long)have);
	got = fmt_inflate(data, (size_t)dlen, s->zout, (size_t)gbytes, 15,
			  &ended);
	if (got < 0 || !ended)
		return err_set(e, EIO, "%s: vmdk compressed grain at sector %u "
			       "of '%s' is not a complete zlib stream of at "
			       "most one grain", img->path, sector, x->path);
	s->zout_ext = x;
	s->zout_sector = sector;
	s->zout_len = (uint64_t)got;
	return 0;
}

static int read_data(struct img *img, struct vmdk_extent *x, uint64_t rel,
		     uint32_t sector, uint8_t *p, size_t n, struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	uint64_t gbytes = x->grain * VMDK_SECTOR, in, pos;
	int fd, r;

	if (x->flat) {
		ssize_t got;

		fd = vmdk_extent_fd(img, x, e);
		if (fd < 0)
			return fd;
		got = io_pread(fd, p, n, x->flat_offset + rel);
		if (got < 0)
			return err_set_errno(e, (int)-got, "%s: cannot read "
					     "flat extent '%s'", img->path,
					     x->path);
		memset(p + got, 0, n - (size_t)got);   /* past EOF: zeros */
		return 0;
	}
	in = rel % gbytes;
	if (x->compressed) {
		r = inflate_grain(img, x, sector, e);
		if (r < 0)
			return r;
		if (in + n > s->zout_len)
			return err_set(e, EIO, "%s: vmdk compressed grain at "
				       "sector %u of '%s' inflates to %llu "
				       "bytes, too few for offset %llu",
				       img->path, sector, x->path,
				       (unsigned long long)s->zout_len,
				       (unsigned long long)(in + n));
		memcpy(p, s->zout + in, n);
		return 0;
	}
	pos = (uint64_t)sector * VMDK_SECTOR + in;
	if (pos > x->file_size || n > x->file_size - pos)
		return err_set(e, EINVAL, "%s: vmdk grain table entry for "
			       "offset %llu of '%s' is sector %u, past the end "
			       "of the file", img->path,
			       (unsigned long long)rel, x->path, sector);
	fd = vmdk_extent_fd(img, x, e);
	if (fd < 0)
		return fd;
	return fmt_pread(fd, x->path, "a grain", p, n, pos, e);
}

int vmdk_pread(struct img *img, uint64_t off, void *buf, size_t len,
	       struct img_err *e)
{
	struct vmdk_state *s = img->priv;
	uint8_t *p = buf;

	while (len) {
		struct vmdk_extent *x = off < img->virtual_size ?
					find_ext(s, off) : NULL;
		uint64_t run;
		uint32_t sector = 0;
		size_t n;
		int st;

		if (!x) {                        /* past the end: zeros */
			memset(p, 0, len);
			return 0;
		}
		st = grain_at(img, x, off - x->start, &sector, &run, e);
		if (st < 0)
			return st;
		n = run < len ? (size_t)run : len;
		if (st != IMG_BS_DATA)
			memset(p, 0, n);
		else if ((st = read_data(img, x, off - x->start, sector, p, n,
					 e)) < 0)
			return st;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}
