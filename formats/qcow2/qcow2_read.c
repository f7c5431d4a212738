/* qcow2_read.c - qcow2 address translation: L1/L2 lookup, block status and
 * reads (plain, zero and compressed clusters).
 *
 * Every table entry is validated when it is used: reserved bits, alignment,
 * host offsets inside the file.  A bad entry is an error naming the file,
 * the guest offset and the entry, never a wild read.  Memory stays bounded
 * whatever the virtual size: one L2 table is cached (s->l2_cache) and a
 * compressed cluster is inflated into a buffer of exactly one cluster, so a
 * "zlib bomb" simply stops when the cluster is full.
 *
 * The write path (qcow2_alloc.c) must set s->l2_cache_off = 0 whenever it
 * changes an L2 table that may be cached here.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

/* Subcluster classification (QEMU's QCow2SubclusterType, restated). */
enum sc_type {
	SC_UNALLOC,          /* defer to backing */
	SC_UNALLOC_ALLOC,    /* ext L2: host cluster present, subcluster not */
	SC_ZERO_PLAIN,
	SC_ZERO_ALLOC,
	SC_NORMAL,
	SC_COMPRESSED,
};

static struct qcow2_state *st(struct img *img)
{
	return img->priv;
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

int qcow2_read_meta(struct img *img, uint64_t off, void *buf, size_t len,
		    const char *what, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	int r;

	if (off > s->file_size || len > s->file_size - off)
		return err_set(e, EINVAL, "%s: %s at %llu (%zu bytes) runs past "
			       "the end of the file (%llu bytes)", img->path,
			       what, ull(off), len, ull(s->file_size));
	r = io_pread_full(img->fd, buf, len, off);
	if (r == -EIO)
		return err_set_errno(e, EIO, "%s: cannot read %s at %llu (the "
				     "file may have been truncated)",
				     img->path, what, ull(off));
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read %s at %llu",
				     img->path, what, ull(off));
	return 0;
}

/* Make the L2 table at l2off the cached one. */
static int load_l2(struct img *img, uint64_t l2off, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	int r;

	if (s->l2_cache && s->l2_cache_off == l2off)
		return 0;
	if (!s->l2_cache) {
		s->l2_cache = malloc(s->cluster_size);
		if (!s->l2_cache)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
	}
	s->l2_cache_off = 0;
	/* Whole or an error: a table cut short by the end of the file would
	 * otherwise read as unallocated entries, and a commit would act on
	 * them. */
	r = qcow2_read_meta(img, l2off, s->l2_cache, s->cluster_size,
			    "the L2 table", e);
	if (r < 0)
		return r;
	s->l2_cache_off = l2off;
	return 0;
}

int qcow2_get_l2_entry(struct img *img, uint64_t off, uint64_t *entry,
		       uint64_t *bitmap, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint64_t cl = off >> s->h.cluster_bits;
	uint64_t l1i = cl / s->l2_entries;
	uint32_t l2i = (uint32_t)(cl % s->l2_entries);
	uint64_t l1e;
	int r;

	*entry = 0;
	*bitmap = 0;
	r = qcow2_need_l1(img, e);
	if (r >= 0)
		r = qcow2_l1_get(img, l1i, &l1e, e);
	if (r >= 0)
		r = qcow2_l1_check_entry(img, l1i, l1e, e);
	if (r < 0)
		return r;
	uint64_t l2off = l1e & QCOW2_L1E_OFFSET_MASK;
	if (!l2off)
		return 0;
	r = load_l2(img, l2off, e);
	if (r < 0)
		return r;
	const uint8_t *p = s->l2_cache + (size_t)l2i * (size_t)s->l2_entry_bytes;
	*entry = qcow2_be64(p);
	if (s->extl2)
		*bitmap = qcow2_be64(p + 8);
	return 0;
}

/* The host offset of a compressed entry's data, which must start inside
 * the file. */
static int compressed_offset(struct img *img, uint64_t off, uint64_t ent,
			     uint64_t *coff, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	int shift = 62 - ((int)s->h.cluster_bits - 8);

	*coff = ent & ((1ull << shift) - 1);
	if (*coff >= s->file_size)
		return err_set(e, EINVAL,
			       "%s: guest offset %llu: compressed L2 entry "
			       "0x%016llx: data offset %llu is past the end of "
			       "the file (%llu)", img->path, ull(off), ull(ent),
			       ull(*coff), ull(s->file_size));
	return 0;
}

/* A compressed entry: no subcluster bitmap, data inside the file. */
static int classify_compressed(struct img *img, uint64_t off, uint64_t ent,
			       uint64_t bm, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint64_t coff;

	if (s->extl2 && bm)
		return err_set(e, EINVAL,
			       "%s: guest offset %llu: L2 entry 0x%016llx is "
			       "compressed but its subcluster bitmap is "
			       "0x%016llx (must be 0)", img->path, ull(off),
			       ull(ent), ull(bm));
	return compressed_offset(img, off, ent, &coff, e);
}

/* An extended L2 entry: the run of subclusters from the one holding
 * in_cl on with the same (alloc, zero) bits. */
static int classify_ext(struct img *img, uint64_t off, uint64_t ent,
			uint64_t bm, bool has_host, enum sc_type *type,
			uint64_t *n, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint64_t in_cl = off & (s->cluster_size - 1);
	uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);
	uint32_t sc = (uint32_t)(in_cl / s->subcluster_size);

	if (alloc & zero)
		return err_set(e, EINVAL,
			       "%s: guest offset %llu: L2 entry 0x%016llx: "
			       "subcluster bitmap 0x%016llx marks a subcluster "
			       "both allocated and zero", img->path, ull(off),
			       ull(ent), ull(bm));
	if (alloc && !has_host)
		return err_set(e, EINVAL,
			       "%s: guest offset %llu: L2 entry 0x%016llx: "
			       "subcluster bitmap 0x%016llx marks subclusters "
			       "allocated but there is no host cluster",
			       img->path, ull(off), ull(ent), ull(bm));
	int a = (alloc >> sc) & 1, z = (zero >> sc) & 1;
	uint32_t end = sc + 1;
	while (end < 32 && (int)((alloc >> end) & 1) == a &&
	       (int)((zero >> end) & 1) == z)
		end++;
	if (a)
		*type = SC_NORMAL;
	else if (z)
		*type = has_host ? SC_ZERO_ALLOC : SC_ZERO_PLAIN;
	else
		*type = has_host ? SC_UNALLOC_ALLOC : SC_UNALLOC;
	*n = (uint64_t)end * s->subcluster_size - in_cl;
	return 0;
}

/* A standard or extended entry that is not compressed: its type, the run
 * length *n from off, and *host for types with a host cluster. */
static int classify_entry(struct img *img, uint64_t off, uint64_t ent,
			  uint64_t bm, enum sc_type *type, uint64_t *n,
			  uint64_t *host, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint64_t cs = s->cluster_size, in_cl = off & (cs - 1);
	bool dfile = s->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	uint64_t reserved = QCOW2_L2E_STD_RESERVED |
			    (s->extl2 ? QCOW2_OFLAG_ZERO : 0);
	uint64_t hoff = ent & QCOW2_L2E_OFFSET_MASK;
	/* With an external data file, offset 0 plus COPIED maps guest 0. */
	bool has_host = hoff != 0 || (dfile && (ent & QCOW2_OFLAG_COPIED));
	int r;

	if (ent & reserved)
		return err_set(e, EINVAL, "%s: guest offset %llu: L2 entry "
			       "0x%016llx has reserved bits set", img->path,
			       ull(off), ull(ent));
	if (hoff % cs)
		return err_set(e, EINVAL, "%s: guest offset %llu: L2 entry "
			       "0x%016llx: host offset %llu is not cluster "
			       "aligned", img->path, ull(off), ull(ent),
			       ull(hoff));
	if (s->extl2) {
		r = classify_ext(img, off, ent, bm, has_host, type, n, e);
		if (r < 0)
			return r;
	} else {
		if (ent & QCOW2_OFLAG_ZERO)
			*type = has_host ? SC_ZERO_ALLOC : SC_ZERO_PLAIN;
		else
			*type = has_host ? SC_NORMAL : SC_UNALLOC;
		*n = cs - in_cl;
	}
	if (*type != SC_NORMAL && *type != SC_ZERO_ALLOC &&
	    *type != SC_UNALLOC_ALLOC)
		return 0;
	*host = hoff + in_cl;
	/* Data must lie in the file; a preallocated zero cluster is never
	 * read, so only plain data is held to it. */
	if (*type == SC_NORMAL && !dfile && hoff >= s->file_size)
		return err_set(e, EINVAL, "%s: guest offset %llu: L2 entry "
			       "0x%016llx points past the end of the file "
			       "(host offset %llu, file size %llu)", img->path,
			       ull(off), ull(ent), ull(hoff),
			       ull(s->file_size));
	return 0;
}

/* Classify the subcluster containing `off`; *n = bytes from off to the end
 * of the run of subclusters (within this cluster) with the same type, or
 * to the end of the L1 range when the whole L2 table is absent.  *host is
 * the host offset of `off` for NORMAL / ZERO_ALLOC / UNALLOC_ALLOC. */
static int classify(struct img *img, uint64_t off, enum sc_type *type,
		    uint64_t *n, uint64_t *host, uint64_t *entry_out,
		    struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint64_t cs = s->cluster_size;
	uint64_t l1i = (off >> s->h.cluster_bits) / s->l2_entries;
	uint64_t ent, bm, l1e;
	int r;

	*host = 0;
	*entry_out = 0;
	r = qcow2_need_l1(img, e);
	if (r >= 0)
		r = qcow2_l1_get(img, l1i, &l1e, e);
	if (r < 0)
		return r;
	if (!(l1e & QCOW2_L1E_OFFSET_MASK)) {
		r = qcow2_l1_check_entry(img, l1i, l1e, e);
		if (r < 0)
			return r;
		/* Whole L2 range unallocated: skip it, and the empty
		 * entries after it in the L1 window, in one step, so a huge
		 * sparse image maps in time bounded by its L1 windows. */
		uint64_t span = (uint64_t)s->l2_entries * cs;
		*type = SC_UNALLOC;
		*n = span * (1 + (l1e ? 0 : qcow2_l1_zero_run(s, l1i))) -
		     (off % span);
		return 0;
	}
	r = qcow2_get_l2_entry(img, off, &ent, &bm, e);
	if (r < 0)
		return r;
	*entry_out = ent;
	if (ent & QCOW2_OFLAG_COMPRESSED) {
		*type = SC_COMPRESSED;
		*n = cs - (off & (cs - 1));
		return classify_compressed(img, off, ent, bm, e);
	}
	return classify_entry(img, off, ent, bm, type, n, host, e);
}

static int to_bs(enum sc_type t)
{
	switch (t) {
	case SC_NORMAL:
	case SC_COMPRESSED:
		return IMG_BS_DATA;
	case SC_ZERO_PLAIN:
	case SC_ZERO_ALLOC:
		return IMG_BS_ZERO;
	default:
		return IMG_BS_UNALLOC;
	}
}

int qcow2_status_walk(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, bool want_host, uint64_t *host,
		       bool *has_host, struct img_err *e)
{
	enum sc_type t;
	uint64_t n, h, ent, done;
	int bs, r;

	if (off >= img->virtual_size || len == 0)
		return err_set(e, EINVAL, "%s: block status at %llu+%llu is "
			       "outside the image (virtual size %llu)",
			       img->path, ull(off), ull(len),
			       ull(img->virtual_size));
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	r = classify(img, off, &t, &n, &h, &ent, e);
	if (r < 0)
		return r;
	bs = to_bs(t);
	bool hh = want_host && (t == SC_NORMAL || t == SC_ZERO_ALLOC ||
				 t == SC_UNALLOC_ALLOC);
	if (host) {
		*host = hh ? h : 0;
		*has_host = hh;
	}
	done = n;
	while (done < len) {
		enum sc_type t2;
		uint64_t n2, h2;
		r = classify(img, off + done, &t2, &n2, &h2, &ent, e);
		if (r < 0)
			return r;
		if (to_bs(t2) != bs)
			break;
		if (want_host) {
			bool hh2 = t2 == SC_NORMAL || t2 == SC_ZERO_ALLOC ||
				   t2 == SC_UNALLOC_ALLOC;
			if (hh2 != hh || (hh && h2 != h + done))
				break;
		}
		done += n2;
	}
	*pnum = done < len ? done : len;
	return bs;
}

int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct img_err *e)
{
	return qcow2_status_walk(img, off, len, pnum, false, NULL, NULL, e);
}

/* Raw deflate (compression type 0): n bytes of in into exactly len bytes
 * of out.  0, -ENOMEM, or -EIO with *why (corrupt or short).  libdeflate
 * first (a stream that ends with exactly len bytes, several times faster
 * than zlib); anything else it says goes to zlib, whose verdict stands
 * (it also takes a stream that claims more than the cluster, stopping
 * when the cluster is full, as QEMU does). */
static int inflate_zlib(void **state, const uint8_t *in, size_t n,
			uint8_t *out, size_t len, const char **why)
{
	size_t got_in, got_out;
	z_stream z;
	int zr;

	if (!*state)
		*state = libdeflate_alloc_decompressor();
	if (*state &&
	    libdeflate_deflate_decompress_ex(*state, in, n, out, len, &got_in,
					     &got_out) == LIBDEFLATE_SUCCESS &&
	    got_out == len)
		return 0;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -15) != Z_OK)
		return -ENOMEM;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)len;
	zr = inflate(&z, Z_FINISH);
	/* Output bounded to one cluster: a full buffer ends decoding even if
	 * the stream claims more (the tail may belong to the next one). */
	bool full = z.avail_out == 0;
	inflateEnd(&z);
	if (full && (zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK))
		return 0;
	*why = full ? "stream error" : "decompressed to less than one cluster";
	return -EIO;
}

static void inflate_zlib_free(void *state)
{
	libdeflate_free_decompressor(state);
}

/* zstd (compression type 1), decoded as QEMU's qcow2_zstd_decompress
 * does: streaming, because the stored run may end with padding and the
 * frame need not record its content size; output bounded to one cluster;
 * a decoder that makes no progress, or a frame not finished when the
 * cluster is full, is corruption rather than a loop or a truncation. */
static int inflate_zstd(void **state, const uint8_t *in, size_t n,
			uint8_t *out, size_t len, const char **why)
{
	ZSTD_inBuffer ib = { in, n, 0 };
	ZSTD_outBuffer ob = { out, len, 0 };
	size_t zr = 1;

	if (!*state)
		*state = ZSTD_createDCtx();
	if (!*state)
		return -ENOMEM;
	ZSTD_DCtx_reset(*state, ZSTD_reset_session_only);
	while (ob.pos < ob.size) {
		size_t in0 = ib.pos, out0 = ob.pos;

		zr = ZSTD_decompressStream(*state, &ob, &ib);
		if (ZSTD_isError(zr)) {
			*why = ZSTD_getErrorName(zr);
			return -EIO;
		}
		if (ib.pos <= in0 && ob.pos <= out0) {
			*why = "decompressed to less than one cluster";
			return -EIO;
		}
	}
	if (zr > 0) {
		*why = "the frame does not end with the cluster";
		return -EIO;
	}
	return 0;
}

static void inflate_zstd_free(void *state)
{
	ZSTD_freeDCtx(state);
}

/* The decompressors, by the header's compression_type.  Each fills
 * exactly one cluster from a compressed cluster's bytes, bounded by the
 * cluster whatever the stream claims (a bomb stops there), keeping what
 * it may reuse in *state (one per image handle, freed by free_state at
 * close).  A type with no function is refused by name when a cluster of
 * it is read. */
static const struct qcow2_codec {
	const char *name;
	int (*decompress)(void **state, const uint8_t *in, size_t n,
			  uint8_t *out, size_t len, const char **why);
	void (*free_state)(void *state);
} qcow2_codecs[] = {
	{ "deflate", inflate_zlib, inflate_zlib_free },
	{ "zstd", inflate_zstd, inflate_zstd_free },
};

void qcow2_inflater_free(struct qcow2_state *s)
{
	if (s->inflater)
		qcow2_codecs[s->h.compression_type].free_state(s->inflater);
	s->inflater = NULL;
}

/* Decompress n bytes at coff into out, exactly one cluster. */
static int decompress_cluster(struct img *img, uint64_t off, uint64_t ent,
			      uint64_t coff, const uint8_t *in, size_t n,
			      uint8_t *out, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	const struct qcow2_codec *c = &qcow2_codecs[s->h.compression_type];
	const char *why = "";
	int r = c->decompress(&s->inflater, in, n, out, s->cluster_size, &why);

	if (r == -ENOMEM)
		return err_set(e, ENOMEM, "%s: %s initialisation failed",
			       img->path, c->name);
	if (r < 0)
		return err_set(e, EIO,
			       "%s: guest offset %llu: compressed L2 entry "
			       "0x%016llx: %s data at %llu is corrupt or "
			       "truncated (%s)", img->path, ull(off), ull(ent),
			       c->name, ull(coff), why);
	return 0;
}

/* Inflate the compressed cluster described by L2 entry `ent` into out
 * (exactly one cluster). */
static int read_compressed(struct img *img, uint64_t off, uint64_t ent,
			   uint8_t *out, struct img_err *e)
{
	struct qcow2_state *s = st(img);
	int shift = 62 - ((int)s->h.cluster_bits - 8);
	uint64_t nsec = ((ent >> shift) &
			 ((1ull << (s->h.cluster_bits - 8)) - 1)) + 1;
	uint64_t coff, clen;
	uint8_t *in;
	int r;

	if (s->h.compression_type >= sizeof(qcow2_codecs) /
				      sizeof(qcow2_codecs[0]) ||
	    !qcow2_codecs[s->h.compression_type].decompress)
		return err_set(e, ENOTSUP,
			       "%s: guest offset %llu: cluster is %s-"
			       "compressed; %s is not supported", img->path,
			       ull(off),
			       qcow2_codecs[s->h.compression_type].name,
			       qcow2_codecs[s->h.compression_type].name);
	r = compressed_offset(img, off, ent, &coff, e);
	if (r < 0)
		return r;
	/* The last sector of a compressed run may extend past EOF. */
	clen = nsec * 512 - (coff & 511);
	if (clen > s->file_size - coff)
		clen = s->file_size - coff;
	in = malloc((size_t)clen);
	if (!in)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	/* What the file holds of it: the stream itself says whether it
	 * ends too early (only n bytes reach the decoder, nothing is made
	 * up). */
	ssize_t n = io_pread(img->fd, in, (size_t)clen, coff);
	if (n < 0)
		r = err_set_errno(e, (int)-n, "%s: guest offset %llu: cannot "
				  "read compressed data at %llu", img->path,
				  ull(off), ull(coff));
	else
		r = decompress_cluster(img, off, ent, coff, in, (size_t)n, out,
				       e);
	free(in);
	return r;
}

int qcow2_pread(struct img *img, uint64_t off, void *buf, size_t len,
		struct img_err *e)
{
	struct qcow2_state *s = st(img);
	uint8_t *b = buf;
	uint8_t *cbuf = NULL;
	uint64_t cbuf_ent = 0;
	int r = 0;

	if (off > img->virtual_size || len > img->virtual_size - off)
		return err_set(e, EINVAL, "%s: read at %llu+%zu is past the end "
			       "of the image (%llu)", img->path, ull(off), len,
			       ull(img->virtual_size));
	if (s->h.crypt_method)
		return err_set(e, ENOTSUP, "%s: the image is encrypted; "
			       "encrypted images cannot be read", img->path);
	while (len) {
		enum sc_type t;
		uint64_t n, h, ent;
		r = classify(img, off, &t, &n, &h, &ent, e);
		if (r < 0)
			break;
		size_t chunk = n < len ? (size_t)n : len;
		switch (t) {
		case SC_NORMAL: {
			/* One read for a run of clusters that are contiguous
			 * in the file too (the common case after a copy). */
			while (chunk < len) {
				enum sc_type t2;
				uint64_t n2, h2, ent2;
				r = classify(img, off + chunk, &t2, &n2, &h2,
					     &ent2, e);
				if (r < 0)
					goto out;
				if (t2 != SC_NORMAL || h2 != h + chunk)
					break;
				chunk += n2 < len - chunk ? (size_t)n2
							  : len - chunk;
			}
			ssize_t got = io_pread(qcow2_data_fd(img), b, chunk,
					       h);
			if (got < 0) {
				r = err_set_errno(e, (int)-got,
						  "%s: guest offset %llu: cannot "
						  "read host offset %llu",
						  s->data_path ? s->data_path :
						  img->path, ull(off), ull(h));
				goto out;
			}
			/* Guest data, not metadata: a data cluster that
			 * starts inside the file but is cut short by its
			 * end reads as zeros there, as QEMU reads it. */
			if ((size_t)got < chunk)
				memset(b + got, 0, chunk - (size_t)got);
			break;
		}
		case SC_COMPRESSED:
			if (chunk == s->cluster_size) {
				/* A whole cluster: straight into buf. */
				r = read_compressed(img, off, ent, b, e);
				if (r < 0)
					goto out;
				break;
			}
			if (!cbuf) {
				cbuf = malloc(s->cluster_size);
				if (!cbuf) {
					r = err_set(e, ENOMEM, "%s: out of memory",
						    img->path);
					goto out;
				}
			}
			if (cbuf_ent != ent) {
				cbuf_ent = 0;
				r = read_compressed(img, off, ent, cbuf, e);
				if (r < 0)
					goto out;
				cbuf_ent = ent;
			}
			memcpy(b, cbuf + (off & (s->cluster_size - 1)), chunk);
			break;
		default:
			memset(b, 0, chunk);
			break;
		}
		b += chunk;
		off += chunk;
		len -= chunk;
	}
out:
	free(cbuf);
	return r < 0 ? r : 0;
}
