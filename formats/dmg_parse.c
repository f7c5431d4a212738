/* dmg_parse.c - a DMG's koly trailer and block tables.
 *
 * UDIF (big-endian): the 512-byte "koly" trailer sits in the last sectors
 * of the file and gives the data fork offset, the resource fork or XML
 * property list that holds the block tables, and the sector count.  Each
 * block table ("mish", base64 in a plist <data> element or one resource
 * of the fork) lists chunks: type, first sector and sector count relative
 * to the table, and where the stored bytes are relative to the data fork.
 *
 * As in QEMU, every <data> element and every resource is tried and only
 * those that start with "mish" count; chunk types we do not know
 * (comments, the terminator) are skipped.  Ours on top: chunk lists are
 * bounded, every chunk's bytes lie inside the file, and the chunks are
 * sorted by sector and must not overlap, so that lookups are a binary
 * search with one answer.
 */
#include "dmg_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KOLY_SIZE 512u
#define MISH_MAGIC 0x6d697368u
#define MISH_CHUNKS 204u
#define MISH_MIN 244u
#define MISH_ENTRY 40u
/* QEMU's cap on the property list; resource forks get the same. */
#define DMG_INFO_MAX (16u << 20)

struct parse_ctx {
	uint64_t data_fork;
	unsigned table;                /* block tables seen, for messages */
};

const char *dmg_unsupported(uint32_t type)
{
	switch (type) {
	case DMG_ADC: return "ADC";
	case DMG_BZIP2: return "bzip2";
	case DMG_LZFSE: return "lzfse";
	case DMG_LZMA: return "lzma";
	default: return NULL;
	}
}

static bool is_zero(uint32_t type)
{
	return type == DMG_ZERO_FILL || type == DMG_IGNORE;
}

static bool known(uint32_t type)
{
	return is_zero(type) || type == DMG_RAW || type == DMG_ZLIB ||
	       dmg_unsupported(type);
}

static int chunk_bad(struct img *img, const struct parse_ctx *c, size_t i,
		     struct img_err *e, const char *what, uint64_t v,
		     uint64_t limit)
{
	return err_set(e, EINVAL, "%s: dmg block table %u chunk %zu: %s is "
		       "%llu; the limit is %llu", img->path, c->table, i, what,
		       fr_ull(v), fr_ull(limit));
}

/* Check one chunk as stored in block table c->table. */
static int check_chunk(struct img *img, const struct dmg_state *s,
		       const struct parse_ctx *c, size_t i,
		       const struct dmg_chunk *k, struct img_err *e)
{
	const uint64_t sec_max = INT64_MAX / 512;

	if (k->sector > sec_max || k->nsec > sec_max - k->sector)
		return chunk_bad(img, c, i, e, "its last sector",
				 k->sector + k->nsec, sec_max);
	if (is_zero(k->type))
		return 0;
	if (k->nsec > FR_CHUNK_MAX / 512)
		return chunk_bad(img, c, i, e, "its sector count", k->nsec,
				 FR_CHUNK_MAX / 512);
	if (k->len > FR_CHUNK_MAX)
		return chunk_bad(img, c, i, e, "its stored length", k->len,
				 FR_CHUNK_MAX);
	if (k->off > s->fsize || k->len > s->fsize - k->off)
		return err_set(e, EINVAL, "%s: dmg block table %u chunk %zu: "
			       "%llu bytes at %llu run past the end of the file "
			       "(%llu bytes)", img->path, c->table, i,
			       fr_ull(k->len), fr_ull(k->off), fr_ull(s->fsize));
	if (k->type == DMG_RAW && k->len < k->nsec * 512)
		return err_set(e, EINVAL, "%s: dmg block table %u chunk %zu: "
			       "raw length %llu is shorter than its %llu "
			       "sectors", img->path, c->table, i,
			       fr_ull(k->len), fr_ull(k->nsec));
	return 0;
}

static int add_chunk(struct img *img, struct dmg_state *s,
		     const struct dmg_chunk *k, struct img_err *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *p;
		if (cap > FR_TABLE_MAX / sizeof(*k))
			return err_set(e, EFBIG, "%s: dmg block tables have "
				       "over %zu chunks", img->path,
				       (size_t)FR_TABLE_MAX / sizeof(*k));
		p = realloc(s->chunks, cap * sizeof(*k));
		if (!p)
			return err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
		s->chunks = p;
		s->cap = cap;
	}
	s->chunks[s->n++] = *k;
	return 0;
}

/* One block table of count bytes; anything but a "mish" is skipped. */
static int parse_mish(struct img *img, struct dmg_state *s,
		      struct parse_ctx *c, const uint8_t *b, size_t count,
		      struct img_err *e)
{
	uint64_t first, base;
	size_t n;

	if (count < MISH_MIN || fr_be32(b) != MISH_MAGIC)
		return 0;
	c->table++;
	first = fr_be64(b + 8);
	base = fr_be64(b + 0x18);
	if (base > UINT64_MAX - c->data_fork)
		return err_set(e, EINVAL, "%s: dmg block table %u: data offset "
			       "%llu overflows", img->path, c->table,
			       fr_ull(base));
	base += c->data_fork;
	n = (count - MISH_CHUNKS) / MISH_ENTRY;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = b + MISH_CHUNKS + MISH_ENTRY * i;
		uint64_t rel_sec = fr_be64(p + 8), rel_off = fr_be64(p + 0x18);
		struct dmg_chunk k;
		int r;

		k.type = fr_be32(p);
		if (!known(k.type))
			continue;
		if (rel_sec > UINT64_MAX - first ||
		    rel_off > UINT64_MAX - base)
			return err_set(e, EINVAL, "%s: dmg block table %u "
				       "chunk %zu: its sector or offset "
				       "overflows", img->path, c->table, i);
		k.sector = first + rel_sec;
		k.nsec = fr_be64(p + 0x10);
		k.off = base + rel_off;
		k.len = fr_be64(p + 0x20);
		r = check_chunk(img, s, c, i, &k, e);
		if (r == 0 && k.nsec)
			r = add_chunk(img, s, &k, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

/* Base64 without its padding; other characters (the plist's line breaks
 * and tabs) are skipped, as glib's decoder does for QEMU.  out holds at
 * least n * 3 / 4 + 3 bytes.  Returns the decoded length. */
static size_t b64_decode(const char *in, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	size_t k = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			continue;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (uint8_t)(acc >> bits);
		}
	}
	return k;
}

static int read_plist(struct img *img, struct dmg_state *s,
		      struct parse_ctx *c, uint64_t off, uint64_t len,
		      struct img_err *e)
{
	char *buf, *p, *b;
	uint8_t *mish = NULL;
	int r;

	if (len == 0 || len > DMG_INFO_MAX)
		return fr_bad(img, DMG, "XMLLength", e, "is %llu; must be "
			      "1..%u", fr_ull(len), DMG_INFO_MAX);
	buf = malloc((size_t)len + 1);
	if (!buf)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fr_read(img, s->fsize, DMG, "property list", off, buf,
		    (size_t)len, e);
	buf[r < 0 ? 0 : len] = '\0';
	for (p = buf; r == 0 && (b = strstr(p, "<data>")); ) {
		char *end;
		b += strlen("<data>");
		end = strstr(b, "</data>");
		if (!end) {
			r = err_set(e, EINVAL, "%s: dmg property list: a <data> "
				    "element at %td is not closed", img->path,
				    b - buf);
			break;
		}
		free(mish);
		mish = malloc((size_t)(end - b) * 3 / 4 + 3);
		if (!mish) {
			r = err_set(e, ENOMEM, "%s: out of memory", img->path);
			break;
		}
		r = parse_mish(img, s, c, mish,
			       b64_decode(b, (size_t)(end - b), mish), e);
		p = end + strlen("</data>");
	}
	free(mish);
	free(buf);
	return r;
}

/* A resource fork: u32 data offset, u32 map offset, u32 data length,
 * then resources of (u32 length, bytes). */
static int read_rsrc(struct img *img, struct dmg_state *s,
		     struct parse_ctx *c, uint64_t off, uint64_t len,
		     struct img_err *e)
{
	uint8_t hdr[12], *res = NULL;
	uint64_t at, end;
	int r;

	if (len < sizeof(hdr) || len > DMG_INFO_MAX)
		return fr_bad(img, DMG, "RsrcForkLength", e, "is %llu; must be "
			      "%zu..%u", fr_ull(len), sizeof(hdr), DMG_INFO_MAX);
	r = fr_read(img, s->fsize, DMG, "resource fork", off, hdr, sizeof(hdr),
		    e);
	if (r < 0)
		return r;
	if (fr_be32(hdr) > len || fr_be32(hdr + 8) == 0 ||
	    fr_be32(hdr + 8) > len - fr_be32(hdr))
		return fr_bad(img, DMG, "resource fork data", e,
			      "(offset %u, length %u) does not fit the fork "
			      "(%llu bytes)", fr_be32(hdr), fr_be32(hdr + 8),
			      fr_ull(len));
	at = off + fr_be32(hdr);
	end = at + fr_be32(hdr + 8);
	while (r == 0 && at < end) {
		uint8_t lb[4];
		r = fr_read(img, s->fsize, DMG, "resource length", at, lb, 4, e);
		if (r < 0)
			break;
		uint32_t n = fr_be32(lb);
		if (n == 0 || n > end - at - 4) {
			r = err_set(e, EINVAL, "%s: dmg resource at %llu: length "
				    "%u does not fit the resource data",
				    img->path, fr_ull(at), n);
			break;
		}
		free(res);
		res = malloc(n);
		if (!res) {
			r = err_set(e, ENOMEM, "%s: out of memory", img->path);
			break;
		}
		r = fr_read(img, s->fsize, DMG, "resource", at + 4, res, n, e);
		if (r == 0)
			r = parse_mish(img, s, c, res, n, e);
		at += 4 + (uint64_t)n;
	}
	free(res);
	return r;
}

/* QEMU looks for "koly" in the 515 bytes that end 508 bytes before the
 * file length rounded up to a sector, so that odd-sized files work. */
static int find_koly(struct img *img, struct dmg_state *s,
		     struct img_err *e)
{
	uint64_t len = (s->fsize + 511) & ~511ull, start;
	uint8_t buf[515];
	size_t n;
	int r;

	if (s->fsize < KOLY_SIZE)
		return err_set(e, EINVAL, "%s: dmg: the file (%llu bytes) is too "
			       "small for a koly trailer", img->path,
			       fr_ull(s->fsize));
	start = len > 1023 ? len - 1023 : 0;
	n = s->fsize - start < sizeof(buf) ? (size_t)(s->fsize - start)
					   : sizeof(buf);
	r = fr_read(img, s->fsize, DMG, "trailer", start, buf, n, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i + 4 <= n; i++) {
		if (memcmp(buf + i, "koly", 4))
			continue;
		s->koly = start + i;
		if (s->koly + KOLY_SIZE > s->fsize)
			return err_set(e, EINVAL, "%s: dmg koly trailer at %llu "
				       "is cut short by the end of the file",
				       img->path, fr_ull(s->koly));
		return 0;
	}
	return fr_bad(img, DMG, "koly", e, "magic is not in the last sectors "
		      "of the file: not a DMG (UDIF) image");
}

static int by_sector(const void *a, const void *b)
{
	const struct dmg_chunk *x = a, *y = b;

	return x->sector < y->sector ? -1 : x->sector > y->sector;
}

static int sort_chunks(struct img *img, struct dmg_state *s,
		       struct img_err *e)
{
	if (s->n)
		qsort(s->chunks, s->n, sizeof(*s->chunks), by_sector);
	for (size_t i = 1; i < s->n; i++) {
		const struct dmg_chunk *p = &s->chunks[i - 1], *k = &s->chunks[i];
		if (k->sector < p->sector + p->nsec)
			return err_set(e, EINVAL, "%s: dmg chunks overlap: "
				       "sectors %llu..%llu and %llu..%llu",
				       img->path, fr_ull(p->sector),
				       fr_ull(p->sector + p->nsec - 1),
				       fr_ull(k->sector),
				       fr_ull(k->sector + k->nsec - 1));
	}
	return 0;
}

/* Where a region named by the trailer must lie: before the trailer. */
static int check_region(struct img *img, const struct dmg_state *s,
			const char *field, uint64_t off, uint64_t len,
			struct img_err *e)
{
	if (off >= s->koly || len > s->koly - off)
		return fr_bad(img, DMG, field, e, "(%llu bytes at %llu) is not "
			      "inside the file before the koly trailer at %llu",
			      fr_ull(len), fr_ull(off), fr_ull(s->koly));
	return 0;
}

int dmg_parse(struct img *img, struct dmg_state *s, struct img_err *e)
{
	uint8_t k[KOLY_SIZE];
	struct parse_ctx c = { 0 };
	uint64_t rsrc, rsrc_len, xml, xml_len, sectors;
	int r = find_koly(img, s, e);

	if (r == 0)
		r = fr_read(img, s->fsize, DMG, "koly trailer", s->koly, k,
			    sizeof(k), e);
	if (r < 0)
		return r;
	c.data_fork = fr_be64(k + 0x18);
	if (c.data_fork > s->koly)
		return fr_bad(img, DMG, "DataForkOffset", e, "is %llu, past the "
			      "koly trailer at %llu", fr_ull(c.data_fork),
			      fr_ull(s->koly));
	rsrc = fr_be64(k + 0x28);
	rsrc_len = fr_be64(k + 0x30);
	xml = fr_be64(k + 0xd8);
	xml_len = fr_be64(k + 0xe0);
	sectors = fr_be64(k + 0x1ec);
	if (sectors > INT64_MAX / 512)
		return fr_bad(img, DMG, "SectorCount", e, "is %llu: over 2^63 "
			      "bytes", fr_ull(sectors));
	img->virtual_size = sectors * 512;
	if (rsrc_len) {
		r = check_region(img, s, "RsrcForkOffset", rsrc, rsrc_len, e);
		if (r == 0)
			r = read_rsrc(img, s, &c, rsrc, rsrc_len, e);
	} else if (xml_len) {
		r = check_region(img, s, "XMLOffset", xml, xml_len, e);
		if (r == 0)
			r = read_plist(img, s, &c, xml, xml_len, e);
	} else {
		r = fr_bad(img, DMG, "XMLLength", e, "and RsrcForkLength are "
			   "both 0: no block tables");
	}
	return r < 0 ? r : sort_chunks(img, s, e);
}
