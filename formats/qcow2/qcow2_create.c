/* qcow2_create.c - create an empty qcow2 image (v3 by default, v2 for
 * compat 0.10), laid out like qemu-img: cluster 0 header, the refcount table,
 * the refcount blocks, then the L1 table.  Every one of these clusters has
 * refcount 1, so `qemu-img check` finds neither errors nor leaks.
 *
 * Atomic: the image is built in a temporary file next to the target
 * ("<name>.imgraph-tmp.<pid>", not an image name a pool scan picks up),
 * written with pwrite, sized with ftruncate (the L1 is all zeros, so it
 * stays sparse), fsync'd, then renamed over the target and the directory
 * fsync'd.  A failure at any point leaves the old file (or none) and
 * removes the temporary file; qemu-img would leave a half-written image.
 * A symlink target is followed, so the link keeps pointing at the image.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	uint8_t type, bit;
	const char *name;
} feature_table[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};
#define NFEATURES (sizeof(feature_table) / sizeof(feature_table[0]))

static int bad_opt(struct img_err *e, const char *path, const char *msg)
{
	return err_set(e, EINVAL, "%s: %s", path, msg);
}

static int check_opts(const char *path, const struct img_create_opts *o,
		      uint32_t cs, int version, int rbits, struct img_err *e)
{
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return bad_opt(e, path, "cluster_size must be a power of two "
			       "between 512 and 2048k");
	if (version != 2 && version != 3)
		return bad_opt(e, path, "compat must be 0.10 or 1.1");
	if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1)))
		return bad_opt(e, path, "refcount_bits must be a power of two "
			       "between 1 and 64");
	if (version == 2 && rbits != 16)
		return bad_opt(e, path, "Different refcount widths than 16 bits "
			       "require compatibility level 1.1 or above "
			       "(use compat=1.1)");
	if (o->extended_l2 > 0 && version == 2)
		return bad_opt(e, path, "Extended L2 entries are only supported "
			       "with compatibility level 1.1 and above "
			       "(use compat=1.1)");
	if (o->extended_l2 > 0 && cs < 16384)
		return bad_opt(e, path, "Extended L2 entries are only supported "
			       "with cluster sizes of at least 16384 bytes");
	if (o->size > QCOW2_MAX_VSIZE)
		return bad_opt(e, path, "size is too large (at most 2^61 bytes)");
	if (o->backing && !o->backing_fmt)
		return bad_opt(e, path, "Backing file specified without backing "
			       "format");
	if (o->backing && strlen(o->backing) > IMG_BACKING_NAME_MAX)
		return err_set(e, EINVAL, "%s: backing name is %zu bytes; qcow2 "
			       "allows at most %d", path, strlen(o->backing),
			       IMG_BACKING_NAME_MAX);
	if (o->backing_fmt && (!*o->backing_fmt ||
			       strlen(o->backing_fmt) > IMG_FORMAT_NAME_MAX))
		return err_set(e, EINVAL, "%s: backing format '%s' must be "
			       "1..%d bytes", path, o->backing_fmt,
			       IMG_FORMAT_NAME_MAX);
	return 0;
}

/* Build cluster 0 into hc (cs bytes, zeroed). */
static int build_header(const char *path, const struct img_create_opts *o,
			uint8_t *hc, uint32_t cs, int cbits, int version,
			int rbits, uint64_t size, uint32_t l1_size,
			uint64_t reft_off, uint32_t reft_clusters,
			uint64_t l1_off, struct img_err *e)
{
	uint32_t hl = version == 3 ? QCOW2_HDR_V3_LEN : QCOW2_HDR_V2_LEN;
	uint32_t name_off = 0;
	uint8_t ft[NFEATURES * QCOW2_FEATURE_ENTRY];
	struct qcow2_ext feat = { QCOW2_EXT_FEATURES, sizeof(ft), ft };
	const char *name = o->backing && *o->backing ? o->backing : NULL;
	int r;

	qcow2_put_be32(hc + QCOW2_HDR_MAGIC, QCOW2_MAGIC);
	qcow2_put_be32(hc + QCOW2_HDR_VERSION, (uint32_t)version);
	qcow2_put_be32(hc + QCOW2_HDR_CLUSTER_BITS, (uint32_t)cbits);
	qcow2_put_be64(hc + QCOW2_HDR_SIZE, size);
	qcow2_put_be32(hc + QCOW2_HDR_L1_SIZE, l1_size);
	qcow2_put_be64(hc + QCOW2_HDR_L1_TABLE_OFFSET, l1_off);
	qcow2_put_be64(hc + QCOW2_HDR_REFCOUNT_TABLE_OFFSET, reft_off);
	qcow2_put_be32(hc + QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS, reft_clusters);
	if (version == 3) {
		qcow2_put_be64(hc + QCOW2_HDR_INCOMPATIBLE_FEATURES,
			       o->extended_l2 > 0 ? QCOW2_INCOMPAT_EXTL2 : 0);
		qcow2_put_be32(hc + QCOW2_HDR_REFCOUNT_ORDER,
			       (uint32_t)__builtin_ctz((unsigned)rbits));
		qcow2_put_be32(hc + QCOW2_HDR_HEADER_LENGTH, hl);
		/* compression type 0 (zlib): already zero */
	}

	/* v3 images carry the feature-name table when it fits, as
	 * qemu-img's do; without it QEMU only prints bit numbers. */
	memset(ft, 0, sizeof(ft));
	for (size_t i = 0; i < NFEATURES; i++) {
		uint8_t *f = ft + i * QCOW2_FEATURE_ENTRY;
		f[QCOW2_FEATURE_TYPE] = feature_table[i].type;
		f[QCOW2_FEATURE_BIT] = feature_table[i].bit;
		memcpy(f + QCOW2_FEATURE_NAME, feature_table[i].name,
		       strlen(feature_table[i].name));
	}
	r = -ENOSPC;
	if (version == 3)
		r = qcow2_layout_cluster0(hc, cs, hl, name ? o->backing_fmt : NULL,
					  &feat, 1, name, &name_off);
	if (r == -ENOSPC)
		r = qcow2_layout_cluster0(hc, cs, hl, name ? o->backing_fmt : NULL,
					  NULL, 0, name, &name_off);
	if (r < 0)
		return err_set(e, ENOSPC, "%s: no space left in the header "
			       "cluster for a backing name of %zu bytes "
			       "(cluster size %u)", path,
			       name ? strlen(name) : (size_t)0, cs);
	if (name) {
		qcow2_put_be64(hc + QCOW2_HDR_BACKING_FILE_OFFSET, name_off);
		qcow2_put_be32(hc + QCOW2_HDR_BACKING_FILE_SIZE,
			       (uint32_t)strlen(name));
	}
	return 0;
}

/* Build the image in an io_replace temporary: header, refcount table and
 * blocks with pwrite, the size with ftruncate (the L1 is all zeros, so it
 * stays sparse); then it replaces path as a whole. */
static int write_image(const char *path, const uint8_t *hc, uint32_t cs,
		       const uint8_t *reft, uint64_t reft_len,
		       uint64_t reft_off, const uint8_t *blk, uint64_t blk_len,
		       uint64_t blk_off, uint64_t size, struct img_err *e)
{
	struct io_replace t;
	int r = io_replace_begin(&t, path, 0644, e);

	if (r < 0)
		return r;
	r = io_pwrite(t.fd, hc, cs, 0);
	if (r >= 0)
		r = io_pwrite(t.fd, reft, reft_len, reft_off);
	if (r >= 0)
		r = io_pwrite(t.fd, blk, blk_len, blk_off);
	if (r >= 0)
		r = io_ftruncate(t.fd, size);
	if (r < 0) {
		io_replace_abort(&t);
		return err_set_errno(e, -r, "%s: writing the new image", path);
	}
	return io_replace_commit(&t, e);
}

/* Cluster counts of a new image, laid out like qemu-img's: cluster 0,
 * the refcount table, the refcount blocks, then the L1 table.  The blocks
 * must count all of them and the table must hold all blocks, so the sizes
 * are iterated to a fixed point. */
static int plan_layout(const char *path, const struct img_create_opts *o,
		       uint32_t cs, int rbits, uint64_t size,
		       uint64_t *l1_size, uint64_t *l1_clusters,
		       uint64_t *nblocks, uint64_t *reft_clusters,
		       uint64_t *total, struct img_err *e)
{
	uint64_t l2_span = (uint64_t)(cs / (o->extended_l2 > 0 ? 16 : 8)) * cs;
	uint64_t rbe = (uint64_t)cs * 8 / (uint64_t)rbits, prev;

	*l1_size = size / l2_span + (size % l2_span != 0);
	if (*l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return err_set(e, EFBIG, "%s: size %llu needs an L1 table of %llu "
			       "bytes; QEMU allows at most %u (use a larger "
			       "cluster_size)", path, (unsigned long long)size,
			       (unsigned long long)(*l1_size * 8),
			       QCOW2_MAX_L1_BYTES);
	/* An empty L1 (size 0) takes no cluster: a counted but unreferenced
	 * cluster would be a leak. */
	*l1_clusters = (*l1_size * 8 + cs - 1) / cs;
	*nblocks = 1;
	*reft_clusters = 1;
	do {
		prev = *nblocks + *reft_clusters;
		*total = 1 + *reft_clusters + *nblocks + *l1_clusters;
		*nblocks = (*total + rbe - 1) / rbe;
		*reft_clusters = (*nblocks * 8 + cs - 1) / cs;
	} while (*nblocks + *reft_clusters != prev);
	*total = 1 + *reft_clusters + *nblocks + *l1_clusters;
	if (*reft_clusters * cs > QCOW2_MAX_REFT_BYTES)
		return err_set(e, EFBIG, "%s: refcount table would exceed %u "
			       "bytes", path, QCOW2_MAX_REFT_BYTES);
	return 0;
}

int qcow2_create(const char *path, const struct img_create_opts *o,
		 struct img_err *e)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int version = o->compat ? o->compat : 3;
	int rbits = o->refcount_bits > 0 ? o->refcount_bits : 16;
	int cbits, r;
	uint64_t size, l1_size = 0, l1_clusters = 0, nblocks = 0;
	uint64_t reft_clusters = 0, total = 0;
	uint8_t *hc = NULL, *reft = NULL, *blk = NULL;

	r = check_opts(path, o, cs, version, rbits, e);
	if (r < 0)
		return r;
	cbits = __builtin_ctz(cs);
	/* QEMU keeps sizes in 512-byte sectors. */
	size = (o->size + 511) & ~511ull;
	r = plan_layout(path, o, cs, rbits, size, &l1_size, &l1_clusters,
			&nblocks, &reft_clusters, &total, e);
	if (r < 0)
		return r;

	hc = calloc(1, cs);
	reft = calloc(reft_clusters, cs);
	blk = calloc(nblocks, cs);
	if (!hc || !reft || !blk) {
		r = err_set(e, ENOMEM, "%s: out of memory", path);
		goto out;
	}
	uint64_t reft_off = cs, blk_off = reft_off + reft_clusters * cs;
	uint64_t l1_off = blk_off + nblocks * cs;
	r = build_header(path, o, hc, cs, cbits, version, rbits, size,
			 (uint32_t)l1_size, reft_off, (uint32_t)reft_clusters,
			 l1_off, e);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < nblocks; i++)
		qcow2_put_be64(reft + i * 8, blk_off + i * cs);
	for (uint64_t c = 0; c < total; c++)
		qcow2_rc_entry_put(blk, rbits, c, 1);

	r = write_image(path, hc, cs, reft, reft_clusters * cs, reft_off, blk,
			nblocks * cs, blk_off, l1_off + l1_clusters * cs, e);
out:
	free(hc);
	free(reft);
	free(blk);
	return r < 0 ? r : 0;
}
