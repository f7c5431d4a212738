/* qcow2_header.c - parse and validate a qcow2 header and its extensions.
 *
 * Every field is checked before anything uses it, and each failure names the
 * file and the field, so that a malformed (or hostile) image is refused with a
 * message an administrator can act on instead of causing a crash, a huge
 * allocation or a read far past the end of the file.
 *
 * Ownership: qcow2_parse_header() fills s->header_cluster, s->exts,
 * s->backing_name, s->backing_fmt and s->data_file_name with heap memory that
 * qcow2_free_header() releases.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QCOW2_MAX_SNAPSHOTS   65536u      /* QEMU's QCOW_MAX_SNAPSHOTS */

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

static int bad_field(struct img_err *e, const char *path, const char *field,
		     const char *what)
{
	return err_set(e, EINVAL, "%s: qcow2 header field '%s' %s", path, field,
		       what);
}

static int bad_fieldf(struct img_err *e, const char *path, const char *field,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int bad_fieldf(struct img_err *e, const char *path, const char *field,
		      const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return bad_field(e, path, field, what);
}

/* Name of a feature bit from the image's own feature-name table, if any. */
static void feature_name(const struct qcow2_state *s, int type, int bit,
			 char *out, size_t outlen)
{
	out[0] = '\0';
	for (int i = 0; i < s->nexts; i++) {
		const struct qcow2_ext *x = &s->exts[i];
		if (x->type != QCOW2_EXT_FEATURES)
			continue;
		for (uint32_t o = 0; o + QCOW2_FEATURE_ENTRY <= x->len;
		     o += QCOW2_FEATURE_ENTRY) {
			const uint8_t *f = x->data + o;
			const uint8_t *nm = f + QCOW2_FEATURE_NAME;
			if (f[QCOW2_FEATURE_TYPE] != type ||
			    f[QCOW2_FEATURE_BIT] != bit)
				continue;
			size_t n = strnlen((const char *)nm,
					   QCOW2_FEATURE_NAME_LEN);
			if (n >= outlen)
				n = outlen - 1;
			/* Only printable ASCII reaches a terminal. */
			for (size_t k = 0; k < n; k++)
				out[k] = (nm[k] >= 0x20 && nm[k] < 0x7f)
					 ? (char)nm[k] : '?';
			out[n] = '\0';
			return;
		}
	}
}

static bool has_nul(const uint8_t *p, size_t n)
{
	return memchr(p, 0, n) != NULL;
}

/* A control character (newline, escape...) in a backing name is never a
 * real path an administrator made; it can forge lines in our output and in
 * terminals, so the name is refused rather than shown. */
static bool has_control(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return true;
	return false;
}

static int ext_seen(const struct qcow2_state *s, uint32_t type)
{
	for (int i = 0; i < s->nexts; i++)
		if (s->exts[i].type == type)
			return 1;
	return 0;
}

/* The rules of the extensions we understand; d holds len bytes. */
static int check_known_ext(struct qcow2_state *s, const char *path,
			   uint32_t type, const uint8_t *d, uint32_t len,
			   struct img_err *e)
{
	char **name = NULL;

	switch (type) {
	case QCOW2_EXT_BACKING_FMT:
		if (len == 0 || len > IMG_FORMAT_NAME_MAX)
			return err_set(e, EINVAL, "%s: qcow2 backing format "
				       "extension: length %u; must be 1..%d",
				       path, len, IMG_FORMAT_NAME_MAX);
		if (has_nul(d, len))
			return err_set(e, EINVAL, "%s: qcow2 backing format "
				       "extension contains a NUL byte", path);
		name = &s->backing_fmt;
		break;
	case QCOW2_EXT_DATA_FILE:
		if (len == 0 || has_nul(d, len))
			return err_set(e, EINVAL, "%s: qcow2 data file name "
				       "extension is empty or contains a NUL "
				       "byte", path);
		name = &s->data_file_name;
		break;
	case QCOW2_EXT_FEATURES:
		if (len % QCOW2_FEATURE_ENTRY)
			return err_set(e, EINVAL, "%s: qcow2 feature name table "
				       "extension: length %u is not a multiple "
				       "of %d", path, len, QCOW2_FEATURE_ENTRY);
		break;
	case QCOW2_EXT_BITMAPS:
		if (len < QCOW2_BITMAPS_EXT_LEN)
			return err_set(e, EINVAL, "%s: qcow2 bitmaps extension: "
				       "length %u; must be at least %d", path,
				       len, QCOW2_BITMAPS_EXT_LEN);
		break;
	case QCOW2_EXT_CRYPTO:
		if (len != QCOW2_CRYPTO_EXT_LEN)
			return err_set(e, EINVAL, "%s: qcow2 encryption header "
				       "extension: length %u; must be %d", path,
				       len, QCOW2_CRYPTO_EXT_LEN);
		break;
	default:
		break;
	}
	if (name) {
		*name = strndup((const char *)d, len);
		if (!*name)
			return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	return 0;
}

/* Keep every record (known ones too) in file order so that a header
 * rewrite can reproduce them verbatim. */
static int keep_ext(struct qcow2_state *s, const char *path, uint32_t type,
		    const uint8_t *d, uint32_t len, struct img_err *e)
{
	struct qcow2_ext *nx = realloc(s->exts, (size_t)(s->nexts + 1) *
				       sizeof(*nx));

	if (!nx)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	s->exts = nx;
	nx[s->nexts].type = type;
	nx[s->nexts].len = len;
	nx[s->nexts].data = malloc(len ? len : 1);
	if (!nx[s->nexts].data)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	memcpy(nx[s->nexts].data, d, len);
	s->nexts++;
	return 0;
}

/* Walk the extension area [start, end) of cluster 0. */
static int parse_extensions(struct qcow2_state *s, const char *path, int fd,
			    uint32_t start, uint32_t end, struct img_err *e)
{
	const uint8_t *c;
	uint32_t off = start;
	int count = 0, r;

	while (off < end) {
		uint32_t type, len;

		if (end - off < QCOW2_EXT_DATA)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension at offset %u: "
				       "record header crosses the end of the "
				       "extension area (%u)", path, off, end);
		if (++count > QCOW2_MAX_EXTENSIONS)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extensions: more than %d "
				       "records", path, QCOW2_MAX_EXTENSIONS);
		r = qcow2_hdr_need(s, path, fd, off + QCOW2_EXT_DATA, e);
		if (r < 0)
			return r;
		c = s->header_cluster;
		type = qcow2_be32(c + off + QCOW2_EXT_TYPE);
		len = qcow2_be32(c + off + QCOW2_EXT_LEN);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off - QCOW2_EXT_DATA)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension 0x%08x at "
				       "offset %u: length %u runs past the end of "
				       "the extension area (%u)", path, type, off,
				       len, end);
		r = qcow2_hdr_need(s, path, fd, off + QCOW2_EXT_DATA + len, e);
		if (r < 0)
			return r;
		c = s->header_cluster;
		if (ext_seen(s, type))
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension 0x%08x appears "
				       "more than once", path, type);
		const uint8_t *d = c + off + QCOW2_EXT_DATA;
		r = check_known_ext(s, path, type, d, len, e);
		if (r >= 0)
			r = keep_ext(s, path, type, d, len, e);
		if (r < 0)
			return r;
		/* Records are padded to 8 bytes; the padding may end the area. */
		uint64_t next = (uint64_t)off + QCOW2_EXT_DATA +
				(((uint64_t)len + 7) & ~7ull);
		off = next > end ? end : (uint32_t)next;
	}
	return 0;
}

/* Fixed-header fields, version dependent parts included (the version 3
 * part only when avail bytes hold it). */
static void decode_fixed(struct qcow2_header *h, const uint8_t *b,
			 uint32_t avail)
{
	memset(h, 0, sizeof(*h));
	h->version = qcow2_be32(b + QCOW2_HDR_VERSION);
	h->backing_file_offset = qcow2_be64(b + QCOW2_HDR_BACKING_FILE_OFFSET);
	h->backing_file_size = qcow2_be32(b + QCOW2_HDR_BACKING_FILE_SIZE);
	h->cluster_bits = qcow2_be32(b + QCOW2_HDR_CLUSTER_BITS);
	h->size = qcow2_be64(b + QCOW2_HDR_SIZE);
	h->crypt_method = qcow2_be32(b + QCOW2_HDR_CRYPT_METHOD);
	h->l1_size = qcow2_be32(b + QCOW2_HDR_L1_SIZE);
	h->l1_table_offset = qcow2_be64(b + QCOW2_HDR_L1_TABLE_OFFSET);
	h->refcount_table_offset =
		qcow2_be64(b + QCOW2_HDR_REFCOUNT_TABLE_OFFSET);
	h->refcount_table_clusters =
		qcow2_be32(b + QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS);
	h->nb_snapshots = qcow2_be32(b + QCOW2_HDR_NB_SNAPSHOTS);
	h->snapshots_offset = qcow2_be64(b + QCOW2_HDR_SNAPSHOTS_OFFSET);
	if (h->version == 2 || avail < QCOW2_HDR_V3_MIN_LEN) {
		h->refcount_order = 4;
		h->header_length = QCOW2_HDR_V2_LEN;
		return;
	}
	h->incompatible_features =
		qcow2_be64(b + QCOW2_HDR_INCOMPATIBLE_FEATURES);
	h->compatible_features = qcow2_be64(b + QCOW2_HDR_COMPATIBLE_FEATURES);
	h->autoclear_features = qcow2_be64(b + QCOW2_HDR_AUTOCLEAR_FEATURES);
	h->refcount_order = qcow2_be32(b + QCOW2_HDR_REFCOUNT_ORDER);
	h->header_length = qcow2_be32(b + QCOW2_HDR_HEADER_LENGTH);
}

static int check_table(struct img_err *e, const char *path, const char *field,
		       uint64_t off, uint64_t bytes, uint32_t cs,
		       uint64_t file_size)
{
	if (off % cs)
		return bad_fieldf(e, path, field, "is %llu; must be a multiple "
				  "of the cluster size %u", ull(off), cs);
	if (bytes && off == 0)
		return bad_field(e, path, field,
				 "is 0; the table would overlap the header");
	if (bytes && (off > file_size || bytes > file_size - off))
		return bad_fieldf(e, path, field, "is %llu; the table (%llu "
				  "bytes) ends past the end of the file (%llu "
				  "bytes)", ull(off), ull(bytes),
				  ull(file_size));
	return 0;
}

/* The first bytes of cluster 0, in one read: the fixed header, and
 * usually the extensions and the backing name too (qcow2_hdr_need reads
 * more when they reach further).  The bytes the opener has read already
 * (head) are taken instead of reading them again. */
static int read_head(struct qcow2_state *s, const char *path, int fd,
		     uint64_t file_size, const uint8_t *head, size_t hlen,
		     struct img_err *e)
{
	uint32_t avail = file_size < QCOW2_HEAD_READ ? (uint32_t)file_size
						     : QCOW2_HEAD_READ;
	int r;

	/* Zeros past the end of the file only: the scan opens every image,
	 * and clearing the whole page before filling it showed in its
	 * profile. */
	s->header_cluster = malloc(QCOW2_HEAD_READ);
	if (!s->header_cluster)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	memset(s->header_cluster + avail, 0, QCOW2_HEAD_READ - avail);
	if (head && hlen >= avail) {
		memcpy(s->header_cluster, head, avail);
	} else {
		r = io_pread_full(fd, s->header_cluster, avail, 0);
		if (r < 0)
			return err_set_errno(e, -r, "%s: cannot read the qcow2 "
					     "header", path);
	}
	s->hc_len = avail;
	s->hc_file_size = file_size;
	return 0;
}

/* The fixed header: magic, version, and enough bytes for that version. */
static int read_fixed(struct qcow2_state *s, const char *path,
		      uint64_t file_size, struct img_err *e)
{
	struct qcow2_header *h = &s->h;
	const uint8_t *head = s->header_cluster;
	uint32_t avail = s->hc_len < QCOW2_HDR_V3_MIN_LEN ? s->hc_len
							 : QCOW2_HDR_V3_MIN_LEN;

	if (file_size < QCOW2_HDR_V2_LEN)
		return err_set(e, EINVAL,
			       "%s: file is %llu bytes; too short for a qcow2 "
			       "header (%d)", path, ull(file_size),
			       QCOW2_HDR_V2_LEN);
	if (qcow2_be32(head + QCOW2_HDR_MAGIC) != QCOW2_MAGIC)
		return bad_field(e, path, "magic",
				 "is not 'QFI\\xfb'; not a qcow2 image");
	/* Fields past avail stay unread: decode_fixed takes the version 3
	 * part only when all of it is there. */
	decode_fixed(h, head, avail);
	if (h->version != 2 && h->version != 3)
		return bad_fieldf(e, path, "version", "is %u; must be 2 or 3%s",
				  h->version, h->version == 1 ?
				  " (version 1 is the older qcow format, not "
				  "supported)" : "");
	if (h->version == 3 && avail < QCOW2_HDR_V3_MIN_LEN)
		return err_set(e, EINVAL,
			       "%s: file is %llu bytes; too short for a "
			       "version 3 qcow2 header (%d)", path,
			       ull(file_size), QCOW2_HDR_V3_MIN_LEN);
	return 0;
}

/* cluster_bits, and header_length of a version 3 header. */
static int check_cluster_bits(const struct qcow2_header *h, const char *path,
			      uint64_t file_size, struct img_err *e)
{
	uint32_t cs;

	if (h->cluster_bits < 9 || h->cluster_bits > 21)
		return bad_fieldf(e, path, "cluster_bits",
				  "is %u; must be 9..21", h->cluster_bits);
	cs = 1u << h->cluster_bits;
	if (h->version != 3)
		return 0;
	if (h->header_length < QCOW2_HDR_V3_MIN_LEN ||
	    h->header_length % 8 || h->header_length > cs)
		return bad_fieldf(e, path, "header_length",
				  "is %u; must be a multiple of 8 in %d..%u",
				  h->header_length, QCOW2_HDR_V3_MIN_LEN, cs);
	if (h->header_length > file_size)
		return bad_fieldf(e, path, "header_length",
				  "is %u; the file has only %llu bytes",
				  h->header_length, ull(file_size));
	return 0;
}

int qcow2_hdr_need(struct qcow2_state *s, const char *path, int fd,
		   uint32_t upto, struct img_err *e)
{
	uint32_t cs = s->cluster_size;
	size_t n = s->hc_file_size < cs ? (size_t)s->hc_file_size : cs;
	uint8_t *c;
	int r;

	if (upto <= s->hc_len)
		return 0;
	/* The whole cluster, so that every byte up to its end is either
	 * the file's or a zero past the end of the file. */
	c = calloc(1, cs);
	if (!c)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	memcpy(c, s->header_cluster, s->hc_len);
	r = n > s->hc_len ? io_pread_full(fd, c + s->hc_len, n - s->hc_len,
					  s->hc_len) : 0;
	if (r < 0) {
		free(c);
		return err_set_errno(e, -r, "%s: cannot read qcow2 cluster 0",
				     path);
	}
	free(s->header_cluster);
	s->header_cluster = c;
	s->hc_len = cs;
	return 0;
}

/* Cluster 0 holds the header, its extensions and the backing name.  What
 * the file has of it is read as the parse needs it; a file that ends
 * inside cluster 0 is refused by check_refcount_table (the table lies
 * behind cluster 0), so the zeros standing for the missing part never
 * reach a parsed field. */
static int read_cluster0(struct qcow2_state *s, const char *path, int fd,
			 uint64_t file_size, struct img_err *e)
{
	struct qcow2_header *h = &s->h;
	uint32_t cs = 1u << h->cluster_bits;
	int r;

	(void)file_size;
	s->cluster_size = cs;
	/* Bytes read past cluster 0 belong to other clusters. */
	if (s->hc_len > cs)
		s->hc_len = cs;
	if (h->version == 3 && h->header_length > QCOW2_HDR_V3_MIN_LEN) {
		r = qcow2_hdr_need(s, path, fd, h->header_length, e);
		if (r < 0)
			return r;
		h->compression_type =
			s->header_cluster[QCOW2_HDR_COMPRESSION_TYPE];
	}
	return 0;
}

/* Sizes that follow from cluster_bits and the extended-L2 bit, and the
 * fields that bound them: size and crypt_method. */
static int derive_geometry(struct qcow2_state *s, const char *path,
			   struct img_err *e)
{
	struct qcow2_header *h = &s->h;
	uint32_t cs = 1u << h->cluster_bits;

	s->cluster_size = cs;
	s->extl2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
	s->l2_entry_bytes = s->extl2 ? 16 : 8;
	s->l2_entries = cs / (uint32_t)s->l2_entry_bytes;
	s->subcluster_size = s->extl2 ? cs / 32 : cs;

	if (s->extl2 && h->cluster_bits < 14)
		return bad_fieldf(e, path, "cluster_bits",
				  "is %u; extended L2 entries need at least "
				  "14 (16 KiB clusters)", h->cluster_bits);
	if (h->size > QCOW2_MAX_VSIZE)
		return bad_fieldf(e, path, "size", "is %llu; must be at most "
				  "2^61", ull(h->size));
	if (h->crypt_method > 2)
		return bad_fieldf(e, path, "crypt_method",
				  "is %u; must be 0 (none), 1 (AES) or 2 "
				  "(LUKS)", h->crypt_method);
	return 0;
}

/* L1: large enough for the virtual size, within QEMU's cap, in the file. */
static int check_l1(const struct qcow2_state *s, const char *path,
		    uint64_t file_size, struct img_err *e)
{
	const struct qcow2_header *h = &s->h;
	uint64_t span = (uint64_t)s->l2_entries * s->cluster_size;
	uint64_t need = h->size / span + (h->size % span != 0);

	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return bad_fieldf(e, path, "l1_size", "is %u; the L1 table may "
				  "be at most %u entries", h->l1_size,
				  QCOW2_MAX_L1_BYTES / 8);
	if (h->l1_size < need)
		return bad_fieldf(e, path, "l1_size", "is %u; the virtual size "
				  "%llu needs at least %llu entries (L1 table "
				  "is too small)", h->l1_size, ull(h->size),
				  ull(need));
	return check_table(e, path, "l1_table_offset", h->l1_table_offset,
			   (uint64_t)h->l1_size * 8, s->cluster_size,
			   file_size);
}

/* The refcount table: size, place, and no bytes shared with the L1. */
static int check_refcount_table(const struct qcow2_state *s, const char *path,
				uint64_t file_size, struct img_err *e)
{
	const struct qcow2_header *h = &s->h;
	uint32_t cs = s->cluster_size;
	uint64_t bytes = (uint64_t)h->refcount_table_clusters * cs;
	int r;

	if (h->refcount_table_clusters == 0 || bytes > QCOW2_MAX_REFT_BYTES)
		return bad_fieldf(e, path, "refcount_table_clusters",
				  "is %u; must be 1..%u",
				  h->refcount_table_clusters,
				  QCOW2_MAX_REFT_BYTES / cs);
	/* The last cluster of the file may be partial (QEMU writes only
	 * what it needs), so compare with the rounded-up size. */
	uint64_t fs_round = (file_size + cs - 1) & ~(uint64_t)(cs - 1);
	r = check_table(e, path, "refcount_table_offset",
			h->refcount_table_offset, bytes, cs, fs_round);
	if (r < 0)
		return r;
	/* An L1 laid over the refcount table would turn refcounts into L2
	 * pointers, and a write would then corrupt both. */
	uint64_t l1a = h->l1_table_offset;
	uint64_t l1b = l1a + (uint64_t)h->l1_size * 8;
	uint64_t rta = h->refcount_table_offset, rtb = rta + bytes;
	if (h->l1_size && l1a < rtb && rta < l1b)
		return bad_field(e, path, "l1_table_offset",
				 "overlaps the refcount table");
	return 0;
}

/* refcount_order, the snapshot table and the compression type. */
static int check_other_fields(struct qcow2_state *s, const char *path,
			      uint64_t file_size, struct img_err *e)
{
	const struct qcow2_header *h = &s->h;
	bool zstd_bit = h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION;
	int r;

	if (h->version == 2 && h->refcount_order != 4)
		return bad_field(e, path, "refcount_order",
				 "must be 4 (16-bit) in a version 2 image");
	if (h->refcount_order > 6)
		return bad_fieldf(e, path, "refcount_order",
				  "is %u; must be 0..6", h->refcount_order);
	s->refcount_bits = 1 << h->refcount_order;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return bad_fieldf(e, path, "nb_snapshots",
				  "is %u; must be at most %u",
				  h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	r = check_table(e, path, "snapshots_offset", h->snapshots_offset,
			(uint64_t)h->nb_snapshots * QCOW2_SNAP_FIXED,
			s->cluster_size, file_size);
	if (r < 0)
		return r;

	/* Compression type and its incompatible bit must agree. */
	if (h->compression_type > 1)
		return bad_fieldf(e, path, "compression_type", "is %u; must be "
				  "0 (zlib) or 1 (zstd)", h->compression_type);
	if ((h->compression_type != 0) != zstd_bit)
		return bad_fieldf(e, path, "compression_type",
				  "is %u but incompatible feature bit 3 "
				  "(compression type) is %s",
				  h->compression_type,
				  zstd_bit ? "set" : "clear");
	return 0;
}

/* The backing name, after the header and extensions in cluster 0; sets
 * *ext_end to where the extension area ends. */
static int parse_backing_name(struct qcow2_state *s, const char *path,
			      int fd, uint64_t file_size, uint32_t *ext_end,
			      struct img_err *e)
{
	const struct qcow2_header *h = &s->h;
	uint32_t cs = s->cluster_size;
	uint64_t off = h->backing_file_offset;
	uint32_t len = h->backing_file_size;

	*ext_end = cs;
	if (!off)
		return 0;
	if (off < h->header_length || off >= cs)
		return bad_fieldf(e, path, "backing_file_offset",
				  "is %llu; the name must lie after the header "
				  "(%u) inside cluster 0 (%u bytes)", ull(off),
				  h->header_length, cs);
	if (len > IMG_BACKING_NAME_MAX)
		return bad_fieldf(e, path, "backing_file_size",
				  "is %u; must be at most %d", len,
				  IMG_BACKING_NAME_MAX);
	if (off + len > cs || off + len > file_size)
		return bad_fieldf(e, path, "backing_file_size",
				  "is %u; the name at offset %llu would end "
				  "past cluster 0 or the end of the file", len,
				  ull(off));
	*ext_end = (uint32_t)off;
	if (!len)
		return 0;
	int r = qcow2_hdr_need(s, path, fd, (uint32_t)(off + len), e);
	if (r < 0)
		return r;
	const uint8_t *nm = s->header_cluster + off;
	if (has_nul(nm, len))
		return bad_field(e, path, "backing_file_size",
				 "covers a NUL byte; the backing name must "
				 "not contain NUL");
	if (has_control(nm, len))
		return bad_field(e, path, "backing_file_size",
				 "covers a control character (such as a "
				 "newline); the backing name must be "
				 "printable");
	s->backing_name = strndup((const char *)nm, len);
	if (!s->backing_name)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	return 0;
}

/* Feature bits against what the extensions say (run after them: unknown
 * bits are named from the image's own feature-name table). */
static int check_features(const struct qcow2_state *s, const char *path,
			  struct img_err *e)
{
	const struct qcow2_header *h = &s->h;
	uint64_t unk = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;

	if (unk) {
		int bit = __builtin_ctzll(unk);
		char name[QCOW2_FEATURE_NAME_LEN + 2];
		feature_name(s, 0, bit, name, sizeof(name));
		return err_set(e, ENOTSUP,
			       "%s: qcow2 header field 'incompatible_features' "
			       "has unknown incompatible feature bit %d%s%s%s; "
			       "refusing to open an image we cannot read "
			       "correctly", path, bit, name[0] ? " (\"" : "",
			       name, name[0] ? "\")" : "");
	}
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
	    !s->data_file_name)
		return bad_field(e, path, "incompatible_features",
				 "has bit 2 (external data file) set but no "
				 "data file name extension");
	if (h->crypt_method == 2 && !ext_seen(s, QCOW2_EXT_CRYPTO))
		return bad_field(e, path, "crypt_method",
				 "is 2 (LUKS) but the encryption header "
				 "extension is missing");
	return 0;
}

/* Each step checks its fields before a later one uses them, in the order
 * the fields depend on each other. */
int qcow2_parse_header(struct qcow2_state *s, const char *path, int fd,
		       uint64_t file_size, const uint8_t *head, size_t hlen,
		       struct img_err *e)
{
	uint32_t ext_end;
	int r;

	if ((r = read_head(s, path, fd, file_size, head, hlen, e)) < 0 ||
	    (r = read_fixed(s, path, file_size, e)) < 0 ||
	    (r = check_cluster_bits(&s->h, path, file_size, e)) < 0 ||
	    (r = read_cluster0(s, path, fd, file_size, e)) < 0 ||
	    (r = derive_geometry(s, path, e)) < 0 ||
	    (r = check_l1(s, path, file_size, e)) < 0 ||
	    (r = check_refcount_table(s, path, file_size, e)) < 0 ||
	    (r = check_other_fields(s, path, file_size, e)) < 0 ||
	    (r = parse_backing_name(s, path, fd, file_size, &ext_end, e)) < 0 ||
	    (r = parse_extensions(s, path, fd, s->h.header_length, ext_end,
				  e)) < 0)
		return r;
	return check_features(s, path, e);
}

void qcow2_free_header(struct qcow2_state *s)
{
	for (int i = 0; i < s->nexts; i++)
		free(s->exts[i].data);
	free(s->exts);
	s->exts = NULL;
	s->nexts = 0;
	free(s->header_cluster);
	s->header_cluster = NULL;
	s->hc_len = 0;
	free(s->backing_name);
	s->backing_name = NULL;
	free(s->backing_fmt);
	s->backing_fmt = NULL;
	free(s->data_file_name);
	s->data_file_name = NULL;
}
