/* vhdx_meta.c - a VHDX file's headers, region table and metadata.
 *
 * Layout (little-endian, [MS-VHDX]): "vhdxfile" at 0; two 4 KiB headers
 * at 64 KiB and 128 KiB (CRC-32C, sequence number, log GUID, log
 * location); the region table at 192 KiB (CRC-32C over 64 KiB) locating
 * the BAT and the metadata region; the metadata table at the start of the
 * metadata region, whose items give the block size, the has-parent flag,
 * the virtual size, the logical sector size and the parent locator.
 *
 * Checks are QEMU's (the current header is the valid one with the higher
 * sequence number; CRCs; at most 2047 entries; no overlapping regions;
 * required but unknown regions and items refused; the five required
 * items; block size 1..256 MiB, sector size 512 or 4096) plus ours: every
 * item inside the metadata region, a size of at most 64 TiB.  A file
 * whose log may hold writes is refused: QEMU replays the log only on a
 * read-write open, and the data read without the replay could be stale.
 * Unlike QEMU, a differencing file is read: its parent comes from the
 * parent locator's relative_path, else absolute_win32_path, else
 * volume_path.
 */
#include "vhdx_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR1 (64u << 10)
#define HDR2 (128u << 10)
#define HDR_SIZE (4u << 10)
#define RT_OFF (192u << 10)
#define TABLE_SIZE (64u << 10)           /* region and metadata tables */
#define ENTRIES_MAX 2047u
#define LOCATOR_MAX (64u << 10)
#define VSIZE_MAX (64ull << 40)

/* GUIDs as stored (first three fields little-endian). */
static const uint8_t G_BAT[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00,
	0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t G_META[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a,
	0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };

enum item { I_PARAMS, I_VSIZE, I_PAGE83, I_LSEC, I_PSEC, I_PARENT, I_N };
static const struct {
	const char *name;
	uint8_t guid[16];
	uint32_t min;                  /* bytes we read */
} items[I_N] = {
	{ "file parameters", { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
	  0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b }, 8 },
	{ "virtual disk size", { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76,
	  0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 }, 8 },
	{ "page 83 data", { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
	  0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 }, 16 },
	{ "logical sector size", { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09,
	  0x47, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f }, 4 },
	{ "physical sector size", { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71,
	  0x44, 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 }, 4 },
	{ "parent locator", { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
	  0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c }, 20 },
};
/* The parent locator type of a VHDX parent. */
static const uint8_t G_PARENT_VHDX[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e,
	0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

static uint32_t crc32c(const uint8_t *p, size_t n, size_t skip_at)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		/* the checksum field counts as zero */
		crc ^= i >= skip_at && i < skip_at + 4 ? 0 : p[i];
		for (int k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0x82f63b78u & -(crc & 1));
	}
	return ~crc;
}

static void guid_str(const uint8_t *g, char out[37])
{
	snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 fr_le32(g), fr_le16(g + 4), fr_le16(g + 6), g[8], g[9], g[10],
		 g[11], g[12], g[13], g[14], g[15]);
}

static bool guid_zero(const uint8_t *g)
{
	static const uint8_t z[16];
	return !memcmp(g, z, 16);
}

static int add_region(struct img *img, struct vhdx_state *s,
		      const char *what, uint64_t start, uint64_t len,
		      struct img_err *e)
{
	if (len > UINT64_MAX - start)
		return err_set(e, EINVAL, "%s: vhdx %s at %llu (%llu bytes) "
			       "overflows", img->path, what, fr_ull(start),
			       fr_ull(len));
	for (int i = 0; i < s->nregions; i++) {
		const struct vhdx_range *r = &s->regions[i];
		if (start < r->end && start + len > r->start)
			return err_set(e, EINVAL, "%s: vhdx %s %llu..%llu "
				       "overlaps the %s %llu..%llu", img->path,
				       what, fr_ull(start), fr_ull(start + len),
				       r->what, fr_ull(r->start),
				       fr_ull(r->end));
	}
	if (s->nregions == VHDX_REGIONS_MAX)
		return err_set(e, EINVAL, "%s: vhdx: too many regions",
			       img->path);
	s->regions[s->nregions++] = (struct vhdx_range){ start, start + len,
							 what };
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct vhdx_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int vhdx_overlap(const struct vhdx_state *s, uint64_t start, uint64_t len)
{
	int lo = 0, hi = s->nregions;

	/* the last region that starts before the end of the range */
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (s->regions[mid].start < start + len)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && s->regions[lo - 1].end > start ? lo - 1 : -1;
}

/* Header n (0 or 1) if its CRC, signature and version are right. */
static bool header_valid(const uint8_t *h)
{
	return crc32c(h, HDR_SIZE, 4) == fr_le32(h + 4) &&
	       !memcmp(h, "head", 4) && fr_le16(h + 66) == 1;
}

/* The current header into cur (HDR_SIZE bytes). */
static int pick_header(struct img *img, struct vhdx_state *s, uint8_t *cur,
		       struct img_err *e)
{
	uint8_t h[2][HDR_SIZE];
	bool ok[2];
	int r, n;

	for (int i = 0; i < 2; i++) {
		r = fr_read(img, s->fsize, VHDX, i ? "header 2" : "header 1",
			    i ? HDR2 : HDR1, h[i], HDR_SIZE, e);
		if (r < 0)
			return r;
		ok[i] = header_valid(h[i]);
	}
	if (!ok[0] && !ok[1])
		return fr_bad(img, VHDX, "header", e, "is not valid in either "
			      "copy (CRC-32C, signature \"head\" or version "
			      "1)");
	if (ok[0] && ok[1]) {
		uint64_t q0 = fr_le64(h[0] + 8), q1 = fr_le64(h[1] + 8);
		if (q0 == q1 && memcmp(h[0], h[1], HDR_SIZE))
			return fr_bad(img, VHDX, "SequenceNumber", e,
				      "is %llu in both headers, which differ",
				      fr_ull(q0));
		n = q1 > q0;
	} else {
		n = ok[1];
	}
	memcpy(cur, h[n], HDR_SIZE);
	return 0;
}

static int read_headers(struct img *img, struct vhdx_state *s,
			struct img_err *e)
{
	uint8_t sig[8], h[HDR_SIZE];
	uint64_t log_len, log_off;
	int r = fr_read(img, s->fsize, VHDX, "file identifier", 0, sig, 8, e);

	if (r < 0)
		return r;
	if (memcmp(sig, "vhdxfile", 8))
		return fr_bad(img, VHDX, "signature", e, "is not \"vhdxfile\"");
	r = pick_header(img, s, h, e);
	if (r < 0)
		return r;
	log_len = fr_le32(h + 68);
	log_off = fr_le64(h + 72);
	if (!guid_zero(h + 48) && log_len)
		return fr_bad(img, VHDX, "LogGuid", e,
			      "is set: the log may hold writes that must be "
			      "replayed before the data can be read ('qemu-img "
			      "check -r all' replays it)");
	r = add_region(img, s, "header section", 0, VHDX_MIB, e);
	if (r == 0 && log_len)
		r = add_region(img, s, "log", log_off, log_len, e);
	return r;
}

/* One region table entry: the BAT, the metadata, or another. */
static int region_entry(struct img *img, struct vhdx_state *s,
			const uint8_t *p, int i, bool *seen_bat,
			bool *seen_meta, struct img_err *e)
{
	uint64_t off = fr_le64(p + 16), len = fr_le32(p + 24);
	bool bat = !memcmp(p, G_BAT, 16), meta = !memcmp(p, G_META, 16);
	char g[37];
	int r;

	r = add_region(img, s, bat ? "BAT region" : meta ? "metadata region" :
		       "region", off, len, e);
	if (r < 0)
		return r;
	if ((bat && *seen_bat) || (meta && *seen_meta))
		return fr_bad(img, VHDX, "region table", e, "lists the %s "
			      "twice (entry %d)", bat ? "BAT" : "metadata", i);
	if (bat) {
		*seen_bat = true;
		s->bat_off = off;
		s->bat_len = len;
	} else if (meta) {
		*seen_meta = true;
		s->meta_off = off;
		s->meta_len = len;
	} else if (fr_le32(p + 28) & 1) {
		guid_str(p, g);
		return err_set(e, ENOTSUP, "%s: vhdx region %s (entry %d) is "
			       "required but unknown", img->path, g, i);
	}
	return 0;
}

static int read_region_table(struct img *img, struct vhdx_state *s,
			     struct img_err *e)
{
	bool seen_bat = false, seen_meta = false;
	uint8_t *t = malloc(TABLE_SIZE);
	uint32_t n;
	int r;

	if (!t)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = fr_read(img, s->fsize, VHDX, "region table", RT_OFF, t, TABLE_SIZE,
		    e);
	if (r == 0 && crc32c(t, TABLE_SIZE, 4) != fr_le32(t + 4))
		r = fr_bad(img, VHDX, "region table checksum", e,
			   "is 0x%08x; the table sums to 0x%08x",
			   fr_le32(t + 4), crc32c(t, TABLE_SIZE, 4));
	if (r == 0 && memcmp(t, "regi", 4))
		r = fr_bad(img, VHDX, "region table signature", e,
			   "is not \"regi\"");
	n = r == 0 ? fr_le32(t + 8) : 0;
	if (n > ENTRIES_MAX)
		r = fr_bad(img, VHDX, "region table EntryCount", e,
			   "is %u; the limit is %u", n, ENTRIES_MAX);
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = region_entry(img, s, t + 16 + 32 * i, (int)i, &seen_bat,
				 &seen_meta, e);
	free(t);
	if (r == 0 && (!seen_bat || !seen_meta))
		r = fr_bad(img, VHDX, "region table", e, "has no %s region",
			   seen_bat ? "metadata" : "BAT");
	return r;
}

/* Item k's bytes (len of them, at most its length) into buf. */
static int read_item(struct img *img, const struct vhdx_state *s,
		     const uint8_t *ent, const char *name, void *buf,
		     uint32_t len, struct img_err *e)
{
	uint32_t off = fr_le32(ent + 16), ilen = fr_le32(ent + 20);

	if (ilen < len || off > s->meta_len || ilen > s->meta_len - off)
		return err_set(e, EINVAL, "%s: vhdx metadata item '%s' (%u "
			       "bytes at %u) does not fit the metadata region "
			       "(%llu bytes) or is shorter than %u bytes",
			       img->path, name, ilen, off, fr_ull(s->meta_len),
			       len);
	return fr_read(img, s->fsize, VHDX, name, s->meta_off + off, buf, len,
		       e);
}

/* The metadata table: the entry of each known item (into ent). */
static int read_meta_table(struct img *img, struct vhdx_state *s,
			   uint8_t *t, const uint8_t **ent, struct img_err *e)
{
	uint16_t n;
	char g[37];
	int r;

	if (s->meta_len < TABLE_SIZE)
		return fr_bad(img, VHDX, "metadata region", e, "is %llu bytes; "
			      "its table alone takes %u", fr_ull(s->meta_len),
			      TABLE_SIZE);
	r = fr_read(img, s->fsize, VHDX, "metadata table", s->meta_off, t,
		    TABLE_SIZE, e);
	if (r < 0)
		return r;
	if (memcmp(t, "metadata", 8))
		return fr_bad(img, VHDX, "metadata table signature", e,
			      "is not \"metadata\"");
	n = fr_le16(t + 10);
	if (n > ENTRIES_MAX)
		return fr_bad(img, VHDX, "metadata table EntryCount", e,
			      "is %u; the limit is %u", n, ENTRIES_MAX);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *p = t + 32 + 32 * (size_t)i;
		int k = 0;
		while (k < I_N && memcmp(p, items[k].guid, 16))
			k++;
		if (k < I_N && ent[k])
			return fr_bad(img, VHDX, "metadata table", e, "lists "
				      "the '%s' item twice", items[k].name);
		if (k < I_N) {
			ent[k] = p;
		} else if (fr_le32(p + 24) & 4) {
			guid_str(p, g);
			return err_set(e, ENOTSUP, "%s: vhdx metadata item %s "
				       "is required but unknown", img->path, g);
		}
	}
	for (int k = 0; k < I_PARENT; k++)
		if (!ent[k])
			return fr_bad(img, VHDX, "metadata table", e,
				      "has no '%s' item", items[k].name);
	return 0;
}

/* Rank of a parent locator key: lower is preferred, -1 unused. */
static int key_rank(const char *key)
{
	static const char *const keys[] = { "relative_path",
		"absolute_win32_path", "volume_path" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(key, keys[i]))
			return i;
	return -1;
}

/* One key/value entry of the locator loc (len bytes); the value goes to
 * val when its key ranks better than *best. */
static int locator_entry(struct img *img, const uint8_t *loc, uint32_t len,
			 int i, int *best, char *val, size_t valsz,
			 struct img_err *e)
{
	const uint8_t *p = loc + 20 + 12 * (size_t)i;
	uint32_t ko = fr_le32(p), vo = fr_le32(p + 4);
	uint16_t kl = fr_le16(p + 8), vl = fr_le16(p + 10);
	char key[64];
	int rank;

	if (ko > len || kl > len - ko || vo > len || vl > len - vo)
		return fr_bad(img, VHDX, "parent locator", e, "entry %d (key "
			      "%u+%u, value %u+%u) does not fit the item (%u "
			      "bytes)", i, ko, kl, vo, vl, len);
	if (fr_utf16_to_utf8(loc + ko, kl, false, key, sizeof(key)) < 0)
		return 0;              /* a key we cannot know: unused */
	rank = key_rank(key);
	if (rank < 0 || rank >= *best)
		return 0;
	if (fr_utf16_to_utf8(loc + vo, vl, false, val, valsz) < 0 || !*val)
		return fr_bad(img, VHDX, "parent locator", e, "value of %s is "
			      "not a UTF-16 path of at most %zu bytes without "
			      "control characters", key, valsz - 1);
	*best = rank;
	return 0;
}

static int read_parent(struct img *img, struct vhdx_state *s,
		       const uint8_t *ent, struct img_err *e)
{
	uint32_t len = fr_le32(ent + 20);
	char val[IMG_BACKING_NAME_MAX + 1], g[37];
	int best = 3, r;
	uint8_t *loc;

	if (len < items[I_PARENT].min || len > LOCATOR_MAX)
		return fr_bad(img, VHDX, "parent locator", e, "is %u bytes; "
			      "must be %u..%u", len, items[I_PARENT].min,
			      LOCATOR_MAX);
	loc = malloc(len);
	if (!loc)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = read_item(img, s, ent, items[I_PARENT].name, loc, len, e);
	if (r == 0 && memcmp(loc, G_PARENT_VHDX, 16)) {
		guid_str(loc, g);
		r = err_set(e, ENOTSUP, "%s: vhdx parent locator type %s is "
			    "not that of a VHDX parent", img->path, g);
	}
	uint16_t n = r == 0 ? fr_le16(loc + 18) : 0;
	if (r == 0 && 20 + 12 * (uint32_t)n > len)
		r = fr_bad(img, VHDX, "parent locator", e, "has %u entries, "
			   "more than its %u bytes hold", n, len);
	for (int i = 0; r == 0 && i < n; i++)
		r = locator_entry(img, loc, len, i, &best, val, sizeof(val), e);
	free(loc);
	if (r == 0 && best == 3)
		r = fr_bad(img, VHDX, "parent locator", e, "has no "
			   "relative_path, absolute_win32_path or volume_path");
	if (r < 0)
		return r;
	fr_windows_path(val);
	s->parent = strdup(val);
	return s->parent ? 0 : err_set(e, ENOMEM, "%s: out of memory",
				       img->path);
}

/* Block size, sector size, virtual size and parent from the items. */
static int read_items(struct img *img, struct vhdx_state *s,
		      const uint8_t **ent, struct img_err *e)
{
	uint8_t b[16];
	uint64_t vsize;
	int r = read_item(img, s, ent[I_PARAMS], items[I_PARAMS].name, b, 8, e);

	if (r < 0)
		return r;
	s->block_size = fr_le32(b);
	s->has_parent = fr_le32(b + 4) & 2;
	if (s->block_size < VHDX_MIB || s->block_size > 256 * VHDX_MIB ||
	    (s->block_size & (s->block_size - 1)))
		return fr_bad(img, VHDX, "BlockSize", e, "is %u; must be a "
			      "power of two of 1..256 MiB", s->block_size);
	r = read_item(img, s, ent[I_LSEC], items[I_LSEC].name, b, 4, e);
	if (r < 0)
		return r;
	s->lsec = fr_le32(b);
	if (s->lsec != 512 && s->lsec != 4096)
		return fr_bad(img, VHDX, "LogicalSectorSize", e, "is %u; must be "
			      "512 or 4096", s->lsec);
	/* Not needed for reading, but QEMU requires them whole. */
	static const int also[] = { I_PAGE83, I_PSEC };
	for (int i = 0; i < 2; i++) {
		r = read_item(img, s, ent[also[i]], items[also[i]].name, b,
			      items[also[i]].min, e);
		if (r < 0)
			return r;
	}
	r = read_item(img, s, ent[I_VSIZE], items[I_VSIZE].name, b, 8, e);
	if (r < 0)
		return r;
	vsize = fr_le64(b);
	if (vsize > VSIZE_MAX)
		return fr_bad(img, VHDX, "VirtualDiskSize", e, "is %llu; the "
			      "limit is 64 TiB", fr_ull(vsize));
	img->virtual_size = vsize & ~(uint64_t)(s->lsec - 1);
	if (!s->has_parent)
		return 0;
	if (!ent[I_PARENT])
		return fr_bad(img, VHDX, "HasParent", e, "is set but there is "
			      "no parent locator item");
	return read_parent(img, s, ent[I_PARENT], e);
}

int vhdx_parse_meta(struct img *img, struct vhdx_state *s,
		    struct img_err *e)
{
	const uint8_t *ent[I_N] = { 0 };
	uint8_t *t;
	int r;

	s->regions = calloc(VHDX_REGIONS_MAX, sizeof(*s->regions));
	t = malloc(TABLE_SIZE);
	if (!s->regions || !t) {
		free(t);
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	}
	r = read_headers(img, s, e);
	if (r == 0)
		r = read_region_table(img, s, e);
	if (r == 0)
		r = read_meta_table(img, s, t, ent, e);
	if (r == 0)
		r = read_items(img, s, ent, e);
	free(t);
	if (r == 0)
		qsort(s->regions, (size_t)s->nregions, sizeof(*s->regions),
		      by_start);
	return r;
}
