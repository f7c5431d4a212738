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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QCOW2_V2_HEADER_LEN   72u
#define QCOW2_V3_HEADER_MIN   104u
#define QCOW2_MAX_SNAPSHOTS   65536u      /* QEMU's QCOW_MAX_SNAPSHOTS */
#define QCOW2_FEATURE_ENTRY   48u

static int bad_field(struct img_err *e, const char *path, const char *field,
		     const char *what)
{
	return err_set(e, EINVAL, "%s: qcow2 header field '%s' %s", path, field,
		       what);
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
			if (f[0] != type || f[1] != bit)
				continue;
			size_t n = strnlen((const char *)f + 2, 46);
			if (n >= outlen)
				n = outlen - 1;
			/* Only printable ASCII reaches a terminal. */
			for (size_t k = 0; k < n; k++)
				out[k] = (f[2 + k] >= 0x20 && f[2 + k] < 0x7f)
					 ? (char)f[2 + k] : '?';
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

/* Walk the extension area [start, end) of cluster 0. */
static int parse_extensions(struct qcow2_state *s, const char *path,
			    uint32_t start, uint32_t end, struct img_err *e)
{
	const uint8_t *c = s->header_cluster;
	uint32_t off = start;
	int count = 0;

	while (off < end) {
		uint32_t type, len;

		if (end - off < 8)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension at offset %u: "
				       "record header crosses the end of the "
				       "extension area (%u)", path, off, end);
		if (++count > QCOW2_MAX_EXTENSIONS)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extensions: more than %d "
				       "records", path, QCOW2_MAX_EXTENSIONS);
		type = qcow2_be32(c + off);
		len = qcow2_be32(c + off + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off - 8)
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension 0x%08x at "
				       "offset %u: length %u runs past the end of "
				       "the extension area (%u)", path, type, off,
				       len, end);
		if (ext_seen(s, type))
			return err_set(e, EINVAL,
				       "%s: qcow2 header extension 0x%08x appears "
				       "more than once", path, type);
		const uint8_t *d = c + off + 8;
		switch (type) {
		case QCOW2_EXT_BACKING_FMT:
			if (len == 0 || len > IMG_FORMAT_NAME_MAX)
				return err_set(e, EINVAL,
					       "%s: qcow2 backing format extension: "
					       "length %u; must be 1..%d", path,
					       len, IMG_FORMAT_NAME_MAX);
			if (has_nul(d, len))
				return err_set(e, EINVAL,
					       "%s: qcow2 backing format extension "
					       "contains a NUL byte", path);
			s->backing_fmt = strndup((const char *)d, len);
			if (!s->backing_fmt)
				return err_set(e, ENOMEM, "%s: out of memory",
					       path);
			break;
		case QCOW2_EXT_DATA_FILE:
			if (len == 0 || has_nul(d, len))
				return err_set(e, EINVAL,
					       "%s: qcow2 data file name extension "
					       "is empty or contains a NUL byte",
					       path);
			s->data_file_name = strndup((const char *)d, len);
			if (!s->data_file_name)
				return err_set(e, ENOMEM, "%s: out of memory",
					       path);
			break;
		case QCOW2_EXT_FEATURES:
			if (len % QCOW2_FEATURE_ENTRY)
				return err_set(e, EINVAL,
					       "%s: qcow2 feature name table "
					       "extension: length %u is not a "
					       "multiple of %u", path, len,
					       QCOW2_FEATURE_ENTRY);
			break;
		case QCOW2_EXT_BITMAPS:
			if (len < 24)
				return err_set(e, EINVAL,
					       "%s: qcow2 bitmaps extension: "
					       "length %u; must be at least 24",
					       path, len);
			break;
		case QCOW2_EXT_CRYPTO:
			if (len != 16)
				return err_set(e, EINVAL,
					       "%s: qcow2 encryption header "
					       "extension: length %u; must be 16",
					       path, len);
			break;
		default:
			break;
		}
		/* Keep every record (known ones too) in file order so that a
		 * header rewrite can reproduce them verbatim. */
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
		/* Records are padded to 8 bytes; the padding may end the area. */
		uint64_t next = (uint64_t)off + 8 + (((uint64_t)len + 7) & ~7ull);
		off = next > end ? end : (uint32_t)next;
	}
	return 0;
}

/* Fixed-header fields, version dependent parts included. */
static void decode_fixed(struct qcow2_header *h, const uint8_t *b,
			 uint32_t avail)
{
	memset(h, 0, sizeof(*h));
	h->version = qcow2_be32(b + 4);
	h->backing_file_offset = qcow2_be64(b + 8);
	h->backing_file_size = qcow2_be32(b + 16);
	h->cluster_bits = qcow2_be32(b + 20);
	h->size = qcow2_be64(b + 24);
	h->crypt_method = qcow2_be32(b + 32);
	h->l1_size = qcow2_be32(b + 36);
	h->l1_table_offset = qcow2_be64(b + 40);
	h->refcount_table_offset = qcow2_be64(b + 48);
	h->refcount_table_clusters = qcow2_be32(b + 56);
	h->nb_snapshots = qcow2_be32(b + 60);
	h->snapshots_offset = qcow2_be64(b + 64);
	if (h->version == 2 || avail < QCOW2_V3_HEADER_MIN) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
		return;
	}
	h->incompatible_features = qcow2_be64(b + 72);
	h->compatible_features = qcow2_be64(b + 80);
	h->autoclear_features = qcow2_be64(b + 88);
	h->refcount_order = qcow2_be32(b + 96);
	h->header_length = qcow2_be32(b + 100);
}

static int check_table(struct img_err *e, const char *path, const char *field,
		       uint64_t off, uint64_t bytes, uint32_t cs,
		       uint64_t file_size)
{
	char what[200];

	if (off % cs) {
		snprintf(what, sizeof(what),
			 "is %llu; must be a multiple of the cluster size %u",
			 (unsigned long long)off, cs);
		return bad_field(e, path, field, what);
	}
	if (bytes && off == 0) {
		snprintf(what, sizeof(what),
			 "is 0; the table would overlap the header");
		return bad_field(e, path, field, what);
	}
	if (bytes && (off > file_size || bytes > file_size - off)) {
		snprintf(what, sizeof(what),
			 "is %llu; the table (%llu bytes) ends past the end of "
			 "the file (%llu bytes)", (unsigned long long)off,
			 (unsigned long long)bytes,
			 (unsigned long long)file_size);
		return bad_field(e, path, field, what);
	}
	return 0;
}

int qcow2_parse_header(struct qcow2_state *s, const char *path, int fd,
		       uint64_t file_size, struct img_err *e)
{
	struct qcow2_header *h = &s->h;
	uint8_t head[QCOW2_V3_HEADER_MIN];
	char what[256];
	uint32_t cs, avail;
	int r;

	if (file_size < QCOW2_V2_HEADER_LEN)
		return err_set(e, EINVAL,
			       "%s: file is %llu bytes; too short for a qcow2 "
			       "header (72)", path,
			       (unsigned long long)file_size);
	avail = file_size < sizeof(head) ? (uint32_t)file_size
					 : (uint32_t)sizeof(head);
	memset(head, 0, sizeof(head));
	r = io_pread_full(fd, head, avail, 0);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read the qcow2 header",
				     path);
	if (qcow2_be32(head) != QCOW2_MAGIC)
		return bad_field(e, path, "magic",
				 "is not 'QFI\\xfb'; not a qcow2 image");
	decode_fixed(h, head, avail);
	if (h->version != 2 && h->version != 3) {
		snprintf(what, sizeof(what), "is %u; must be 2 or 3%s",
			 h->version, h->version == 1 ?
			 " (version 1 is the older qcow format, not supported)" :
			 "");
		return bad_field(e, path, "version", what);
	}
	if (h->version == 3 && avail < QCOW2_V3_HEADER_MIN)
		return err_set(e, EINVAL,
			       "%s: file is %llu bytes; too short for a "
			       "version 3 qcow2 header (104)", path,
			       (unsigned long long)file_size);
	if (h->cluster_bits < 9 || h->cluster_bits > 21) {
		snprintf(what, sizeof(what), "is %u; must be 9..21",
			 h->cluster_bits);
		return bad_field(e, path, "cluster_bits", what);
	}
	cs = 1u << h->cluster_bits;

	if (h->version == 3) {
		if (h->header_length < QCOW2_V3_HEADER_MIN ||
		    h->header_length % 8 || h->header_length > cs) {
			snprintf(what, sizeof(what),
				 "is %u; must be a multiple of 8 in 104..%u",
				 h->header_length, cs);
			return bad_field(e, path, "header_length", what);
		}
		if (h->header_length > file_size) {
			snprintf(what, sizeof(what),
				 "is %u; the file has only %llu bytes",
				 h->header_length,
				 (unsigned long long)file_size);
			return bad_field(e, path, "header_length", what);
		}
	}

	/* Cluster 0 holds everything else the header refers to. */
	s->header_cluster = calloc(1, cs);
	if (!s->header_cluster)
		return err_set(e, ENOMEM, "%s: out of memory", path);
	{
		ssize_t n = io_pread(fd, s->header_cluster, cs, 0);
		if (n < 0)
			return err_set_errno(e, (int)-n,
					     "%s: cannot read qcow2 cluster 0",
					     path);
	}
	if (h->version == 3 && h->header_length > QCOW2_V3_HEADER_MIN)
		h->compression_type = s->header_cluster[104];

	s->cluster_size = cs;
	s->extl2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
	s->l2_entry_bytes = s->extl2 ? 16 : 8;
	s->l2_entries = cs / (uint32_t)s->l2_entry_bytes;
	s->subcluster_size = s->extl2 ? cs / 32 : cs;

	if (s->extl2 && h->cluster_bits < 14) {
		snprintf(what, sizeof(what),
			 "is %u; extended L2 entries need at least 14 "
			 "(16 KiB clusters)", h->cluster_bits);
		return bad_field(e, path, "cluster_bits", what);
	}

	if (h->size > QCOW2_MAX_VSIZE) {
		snprintf(what, sizeof(what), "is %llu; must be at most 2^61",
			 (unsigned long long)h->size);
		return bad_field(e, path, "size", what);
	}

	if (h->crypt_method > 2) {
		snprintf(what, sizeof(what),
			 "is %u; must be 0 (none), 1 (AES) or 2 (LUKS)",
			 h->crypt_method);
		return bad_field(e, path, "crypt_method", what);
	}

	/* L1: large enough for the virtual size, within QEMU's cap, in file. */
	{
		uint64_t span = (uint64_t)s->l2_entries * cs;
		uint64_t need = h->size / span + (h->size % span != 0);
		if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
			snprintf(what, sizeof(what),
				 "is %u; the L1 table may be at most %u entries",
				 h->l1_size, QCOW2_MAX_L1_BYTES / 8);
			return bad_field(e, path, "l1_size", what);
		}
		if (h->l1_size < need) {
			snprintf(what, sizeof(what),
				 "is %u; the virtual size %llu needs at least "
				 "%llu entries (L1 table is too small)",
				 h->l1_size, (unsigned long long)h->size,
				 (unsigned long long)need);
			return bad_field(e, path, "l1_size", what);
		}
		r = check_table(e, path, "l1_table_offset", h->l1_table_offset,
				(uint64_t)h->l1_size * 8, cs, file_size);
		if (r < 0)
			return r;
	}

	/* Refcount table. */
	if (h->refcount_table_clusters == 0 ||
	    (uint64_t)h->refcount_table_clusters * cs > QCOW2_MAX_REFT_BYTES) {
		snprintf(what, sizeof(what), "is %u; must be 1..%u",
			 h->refcount_table_clusters, QCOW2_MAX_REFT_BYTES / cs);
		return bad_field(e, path, "refcount_table_clusters", what);
	}
	{
		/* The last cluster of the file may be partial (QEMU writes
		 * only what it needs), so compare with the rounded-up size. */
		uint64_t fs_round = (file_size + cs - 1) & ~(uint64_t)(cs - 1);
		r = check_table(e, path, "refcount_table_offset",
				h->refcount_table_offset,
				(uint64_t)h->refcount_table_clusters * cs, cs,
				fs_round);
		if (r < 0)
			return r;
	}

	/* The two tables must not share bytes: an L1 laid over the refcount
	 * table would turn refcounts into L2 pointers (iotest 060). */
	{
		uint64_t l1a = h->l1_table_offset;
		uint64_t l1b = l1a + (uint64_t)h->l1_size * 8;
		uint64_t rta = h->refcount_table_offset;
		uint64_t rtb = rta + (uint64_t)h->refcount_table_clusters * cs;
		if (h->l1_size && l1a < rtb && rta < l1b)
			return bad_field(e, path, "l1_table_offset",
					 "overlaps the refcount table");
	}

	if (h->version == 2 && h->refcount_order != 4)
		return bad_field(e, path, "refcount_order",
				 "must be 4 (16-bit) in a version 2 image");
	if (h->refcount_order > 6) {
		snprintf(what, sizeof(what), "is %u; must be 0..6",
			 h->refcount_order);
		return bad_field(e, path, "refcount_order", what);
	}
	s->refcount_bits = 1 << h->refcount_order;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		snprintf(what, sizeof(what), "is %u; must be at most %u",
			 h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
		return bad_field(e, path, "nb_snapshots", what);
	}
	/* Each snapshot entry has at least 40 bytes (fixed part). */
	r = check_table(e, path, "snapshots_offset", h->snapshots_offset,
			(uint64_t)h->nb_snapshots * 40, cs, file_size);
	if (r < 0)
		return r;

	/* Compression type and its incompatible bit must agree. */
	if (h->compression_type > 1) {
		snprintf(what, sizeof(what), "is %u; must be 0 (zlib) or 1 "
			 "(zstd)", h->compression_type);
		return bad_field(e, path, "compression_type", what);
	}
	if ((h->compression_type != 0) !=
	    ((h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) != 0)) {
		snprintf(what, sizeof(what),
			 "is %u but incompatible feature bit 3 (compression "
			 "type) is %s", h->compression_type,
			 (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)
			 ? "set" : "clear");
		return bad_field(e, path, "compression_type", what);
	}

	/* Backing file name: after the header and extensions, in cluster 0. */
	uint32_t ext_end = cs;
	if (h->backing_file_offset) {
		if (h->backing_file_offset < h->header_length ||
		    h->backing_file_offset >= cs) {
			snprintf(what, sizeof(what),
				 "is %llu; the name must lie after the header "
				 "(%u) inside cluster 0 (%u bytes)",
				 (unsigned long long)h->backing_file_offset,
				 h->header_length, cs);
			return bad_field(e, path, "backing_file_offset", what);
		}
		if (h->backing_file_size > IMG_BACKING_NAME_MAX) {
			snprintf(what, sizeof(what), "is %u; must be at most %d",
				 h->backing_file_size, IMG_BACKING_NAME_MAX);
			return bad_field(e, path, "backing_file_size", what);
		}
		if (h->backing_file_offset + h->backing_file_size > cs ||
		    h->backing_file_offset + h->backing_file_size > file_size) {
			snprintf(what, sizeof(what),
				 "is %u; the name at offset %llu would end past "
				 "cluster 0 or the end of the file",
				 h->backing_file_size,
				 (unsigned long long)h->backing_file_offset);
			return bad_field(e, path, "backing_file_size", what);
		}
		ext_end = (uint32_t)h->backing_file_offset;
		if (h->backing_file_size) {
			const uint8_t *nm = s->header_cluster +
					    h->backing_file_offset;
			if (has_nul(nm, h->backing_file_size))
				return bad_field(e, path, "backing_file_size",
						 "covers a NUL byte; the backing "
						 "name must not contain NUL");
			if (has_control(nm, h->backing_file_size))
				return bad_field(e, path, "backing_file_size",
						 "covers a control character "
						 "(such as a newline); the backing "
						 "name must be printable");
			s->backing_name = strndup((const char *)nm,
						  h->backing_file_size);
			if (!s->backing_name)
				return err_set(e, ENOMEM, "%s: out of memory",
					       path);
		}
	}

	r = parse_extensions(s, path, h->header_length, ext_end, e);
	if (r < 0)
		return r;

	if (h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN) {
		uint64_t unk = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
		int bit = __builtin_ctzll(unk);
		char name[48];
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

void qcow2_free_header(struct qcow2_state *s)
{
	for (int i = 0; i < s->nexts; i++)
		free(s->exts[i].data);
	free(s->exts);
	s->exts = NULL;
	s->nexts = 0;
	free(s->header_cluster);
	s->header_cluster = NULL;
	free(s->backing_name);
	s->backing_name = NULL;
	free(s->backing_fmt);
	s->backing_fmt = NULL;
	free(s->data_file_name);
	s->data_file_name = NULL;
}
