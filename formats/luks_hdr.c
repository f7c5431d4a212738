/* luks_hdr.c - parse and check a LUKS1 header; see luks_hdr.h.
 *
 * Layout (big-endian): magic[6], version u16, cipher_name[32],
 * cipher_mode[32] ("xts-plain64", "cbc-essiv:sha256"), hash_spec[32],
 * payload_offset u32 (sectors), key_bytes u32, mk_digest[20],
 * mk_digest_salt[32], mk_digest_iter u32, uuid[40], then 8 key slots of 48
 * bytes: active u32, iterations u32, salt[32], key_material_offset u32
 * (sectors), stripes u32.
 */
#include "luks_hdr.h"
#include "fmt_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LUKS_VERSION        1
#define LUKS_STRIPES        4000u
#define LUKS_SLOT_ENABLED   0x00ac71f3u
#define LUKS_SLOT_DISABLED  0x0000deadu
#define LUKS_SLOT_AREA      4096u      /* key material starts here */
#define LUKS_SECTOR         512u

#define OFF_VERSION         6
#define OFF_CIPHER_NAME     8
#define OFF_CIPHER_MODE     40
#define OFF_HASH_SPEC       72
#define OFF_PAYLOAD         104
#define OFF_KEY_BYTES       108
#define OFF_MK_ITERS        164
#define OFF_UUID            168
#define OFF_SLOTS           208
#define SLOT_SIZE           48
#define NAME_LEN            32

const uint8_t luks_magic[LUKS_MAGIC_LEN] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

/* The algorithms QEMU 7.2's LUKS code knows, with its names for them. */
struct cipher_family {
	const char *name;
	uint32_t key_bytes[3];          /* 0-terminated */
};

static const struct cipher_family ciphers[] = {
	{ "aes", { 16, 24, 32 } },
	{ "cast5", { 16 } },
	{ "serpent", { 16, 24, 32 } },
	{ "twofish", { 16, 24, 32 } },
};

static const char *const modes[] = { "ecb", "cbc", "xts", "ctr" };
static const char *const ivgens[] = { "plain", "plain64", "essiv" };

struct hash_alg {
	const char *name;
	uint32_t digest;
};

static const struct hash_alg hashes[] = {
	{ "md5", 16 }, { "sha1", 20 }, { "sha224", 28 }, { "sha256", 32 },
	{ "sha384", 48 }, { "sha512", 64 }, { "ripemd160", 20 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The list's own copy of s (a static string), or NULL. */
static const char *in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return list[i];
	return NULL;
}

static const struct hash_alg *find_hash(const char *s)
{
	for (size_t i = 0; i < N(hashes); i++)
		if (!strcmp(s, hashes[i].name))
			return &hashes[i];
	return NULL;
}

/* A NUL-terminated name field, copied for messages and lookups. */
static int name_field(const uint8_t *buf, size_t off, const char *field,
		      char *out, size_t outlen, const char *path,
		      const char *kind, struct img_err *e)
{
	char shown[NAME_LEN + 1];

	if (!memchr(buf + off, 0, NAME_LEN))
		return fmt_bad_field(e, path, kind, field,
				     "is not NUL-terminated within %d bytes",
				     NAME_LEN);
	fmt_printable((const char *)buf + off, NAME_LEN, shown, sizeof(shown));
	if (strlen(shown) >= outlen)
		return fmt_bad_field(e, path, kind, field,
				     "is '%s'; not an algorithm QEMU supports",
				     shown);
	snprintf(out, outlen, "%s", shown);
	return 0;
}

/* cipher_mode is "<mode>-<ivgen>[:<ivhash>]". */
static int parse_mode(struct luks_hdr *h, const char *spec, const char *path,
		      const char *kind, struct img_err *e)
{
	char buf[NAME_LEN + 1], *iv, *ivh;
	const struct hash_alg *ivhash = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	iv = strchr(buf, '-');
	if (!iv)
		return fmt_bad_field(e, path, kind, "cipher_mode",
				     "is '%s'; expected <mode>-<ivgen>", spec);
	*iv++ = '\0';
	ivh = strchr(iv, ':');
	if (ivh) {
		*ivh++ = '\0';
		ivhash = find_hash(ivh);
	}
	h->info.cipher_mode = in_list(buf, modes, N(modes));
	h->info.ivgen_alg = in_list(iv, ivgens, N(ivgens));
	if (!h->info.cipher_mode || !h->info.ivgen_alg || (ivh && !ivhash))
		return err_set(e, ENOTSUP, "%s: %s header field 'cipher_mode' "
			       "is '%s', which QEMU does not support", path,
			       kind, spec);
	if (!strcmp(iv, "essiv") && !ivh)
		return fmt_bad_field(e, path, kind, "cipher_mode",
				     "is '%s'; essiv needs a hash (essiv:HASH)",
				     spec);
	/* QEMU parses the hash of plain/plain64 too, then ignores it */
	if (!strcmp(iv, "essiv"))
		h->info.ivgen_hash_alg = ivhash->name;
	return 0;
}

/* The cipher and its key size ("aes" + 64 key bytes in xts = "aes-256");
 * with essiv, the IV cipher keyed by the hash digest must exist too. */
static int parse_cipher(struct luks_hdr *h, const char *name,
			const char *path, const char *kind, struct img_err *e)
{
	uint32_t kb = h->key_bytes;
	const struct cipher_family *f = NULL;
	bool ok = false;

	if (!strcmp(h->info.cipher_mode, "xts"))
		kb /= 2;
	for (size_t i = 0; i < N(ciphers) && !f; i++)
		if (!strcmp(name, ciphers[i].name))
			f = &ciphers[i];
	for (int i = 0; f && i < 3 && f->key_bytes[i]; i++)
		ok |= f->key_bytes[i] == kb;
	if (!ok)
		return err_set(e, ENOTSUP, "%s: %s header fields 'cipher_name' "
			       "and 'key_bytes' are '%s' with a %u-byte key, "
			       "which QEMU does not support", path, kind, name,
			       kb);
	snprintf(h->cipher_alg, sizeof(h->cipher_alg), "%s-%u", f->name,
		 kb * 8);
	if (h->info.ivgen_hash_alg) {
		uint32_t d = find_hash(h->info.ivgen_hash_alg)->digest;
		bool ivok = d == kb;

		for (int i = 0; !ivok && i < 3 && f->key_bytes[i]; i++)
			ivok = strcmp(f->name, "cast5") && f->key_bytes[i] == d;
		if (!ivok)
			return err_set(e, ENOTSUP, "%s: %s header field "
				       "'cipher_mode': essiv with %s needs a "
				       "%u-byte %s key, which does not exist",
				       path, kind, h->info.ivgen_hash_alg, d,
				       f->name);
	}
	return 0;
}

static uint32_t slot_len_sectors(const struct luks_hdr *h)
{
	uint64_t b = (uint64_t)h->key_bytes * LUKS_STRIPES;

	return (uint32_t)((b + LUKS_SECTOR - 1) / LUKS_SECTOR);
}

/* Key slots: QEMU refuses corrupt states, stripes other than 4000 and key
 * material that overlaps the header, the payload or another slot. */
static int parse_slots(struct luks_hdr *h, const uint8_t *buf,
		       const char *path, const char *kind, struct img_err *e)
{
	uint64_t len = slot_len_sectors(h), first = LUKS_SLOT_AREA / LUKS_SECTOR;
	char field[32];

	for (int i = 0; i < IMG_LUKS_SLOTS; i++) {
		const uint8_t *s = buf + OFF_SLOTS + i * SLOT_SIZE;
		uint32_t active = fmt_be32(s), iters = fmt_be32(s + 4);
		uint32_t koff = fmt_be32(s + 40), stripes = fmt_be32(s + 44);
		struct img_luks_slot *o = &h->info.slots[i];

		snprintf(field, sizeof(field), "key_slot[%d]", i);
		if (stripes != LUKS_STRIPES)
			return fmt_bad_field(e, path, kind, field, "has %u "
					     "stripes; must be %u", stripes,
					     LUKS_STRIPES);
		if (active != LUKS_SLOT_ENABLED && active != LUKS_SLOT_DISABLED)
			return fmt_bad_field(e, path, kind, field, "state is "
					     "0x%08x; neither enabled nor "
					     "disabled", active);
		if (active == LUKS_SLOT_ENABLED && iters == 0)
			return fmt_bad_field(e, path, kind, field,
					     "is enabled with 0 iterations");
		if (koff < first)
			return fmt_bad_field(e, path, kind, field, "key "
					     "material at sector %u overlaps "
					     "the header", koff);
		if (koff + len > h->payload_sectors)
			return fmt_bad_field(e, path, kind, field, "key "
					     "material (sectors %u..%llu) "
					     "overlaps the payload at sector %u",
					     koff, (unsigned long long)(koff + len),
					     h->payload_sectors);
		for (int j = 0; j < i; j++) {
			uint64_t k2 = h->info.slots[j].key_offset / LUKS_SECTOR;
			if (koff < k2 + len && k2 < koff + len)
				return fmt_bad_field(e, path, kind, field,
						     "key material overlaps "
						     "key slot %d's", j);
		}
		o->active = active == LUKS_SLOT_ENABLED;
		o->iters = iters;
		o->stripes = stripes;
		o->key_offset = (uint64_t)koff * LUKS_SECTOR;
	}
	return 0;
}

static int parse_fixed(struct luks_hdr *h, const uint8_t *buf, size_t len,
		       const char *path, const char *kind, struct img_err *e)
{
	uint16_t version;

	if (len < LUKS_MAGIC_LEN || memcmp(buf, luks_magic, LUKS_MAGIC_LEN))
		return fmt_bad_field(e, path, kind, "magic",
				     "is not 'LUKS\\xba\\xbe'; not a LUKS "
				     "header");
	if (len < LUKS_HDR_SIZE)
		return err_set(e, EINVAL, "%s: %s header truncated: %zu bytes, "
			       "the header and its key slots need %u", path,
			       kind, len, LUKS_HDR_SIZE);
	version = fmt_be16(buf + OFF_VERSION);
	if (version != LUKS_VERSION)
		return err_set(e, ENOTSUP, "%s: %s header field 'version' is "
			       "%u; only LUKS version 1 is supported (as by "
			       "QEMU 7.2)", path, kind, version);
	h->payload_sectors = fmt_be32(buf + OFF_PAYLOAD);
	h->key_bytes = fmt_be32(buf + OFF_KEY_BYTES);
	h->info.master_key_iters = fmt_be32(buf + OFF_MK_ITERS);
	if (h->payload_sectors < LUKS_SLOT_AREA / LUKS_SECTOR)
		return fmt_bad_field(e, path, kind, "payload_offset",
				     "is %u sectors; the payload would "
				     "overlap the header", h->payload_sectors);
	if (h->info.master_key_iters == 0)
		return fmt_bad_field(e, path, kind, "mk_digest_iter", "is 0");
	if (h->key_bytes == 0 || h->key_bytes > 64)
		return fmt_bad_field(e, path, kind, "key_bytes",
				     "is %u; must be 1..64", h->key_bytes);
	return 0;
}

int luks_parse(struct luks_hdr *h, const uint8_t *buf, size_t len,
	       const char *path, const char *kind, struct img_err *e)
{
	char cname[NAME_LEN + 1], cmode[NAME_LEN + 1], hname[NAME_LEN + 1];
	const struct hash_alg *hash = NULL;
	int r;

	memset(h, 0, sizeof(*h));
	r = parse_fixed(h, buf, len, path, kind, e);
	if (r == 0)
		r = name_field(buf, OFF_CIPHER_NAME, "cipher_name", cname,
			       sizeof(cname), path, kind, e);
	if (r == 0)
		r = name_field(buf, OFF_CIPHER_MODE, "cipher_mode", cmode,
			       sizeof(cmode), path, kind, e);
	if (r == 0)
		r = name_field(buf, OFF_HASH_SPEC, "hash_spec", hname,
			       sizeof(hname), path, kind, e);
	if (r == 0)
		r = parse_mode(h, cmode, path, kind, e);
	if (r == 0)
		r = parse_cipher(h, cname, path, kind, e);
	if (r == 0 && !(hash = find_hash(hname)))
		r = err_set(e, ENOTSUP, "%s: %s header field 'hash_spec' is "
			    "'%s', which QEMU does not support", path, kind,
			    hname);
	if (r == 0)
		r = parse_slots(h, buf, path, kind, e);
	if (r < 0)
		return r;
	fmt_printable((const char *)buf + OFF_UUID, 40, h->uuid,
		      sizeof(h->uuid));
	h->info.format = "luks";
	h->info.cipher_alg = h->cipher_alg;
	h->info.hash_alg = hash->name;
	h->info.uuid = h->uuid;
	h->info.payload_offset = (uint64_t)h->payload_sectors * LUKS_SECTOR;
	return 0;
}
