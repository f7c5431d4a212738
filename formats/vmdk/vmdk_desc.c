/* vmdk_desc.c - the vmdk descriptor text, read the way QEMU reads it.
 *
 *   # Disk DescriptorFile
 *   version=1
 *   CID=fffffffe
 *   parentCID=ffffffff
 *   createType="twoGbMaxExtentSparse"
 *   parentFileNameHint="base.vmdk"
 *   RW 4194304 SPARSE "disk-s001.vmdk"
 *   RW 2097152 FLAT "disk-f001.vmdk" 0
 *
 * QEMU finds createType, CID, parentCID and parentFileNameHint at the first
 * occurrence of the word anywhere in the text (so "CID" can match inside
 * "parentCID" when that comes first); the lookups here do the same, so
 * that the values are the ones QEMU uses.  Extent lines are
 * ACCESS SECTORS TYPE "FILE" [OFFSET]; QEMU uses only RW lines of the
 * types FLAT, SPARSE, VMFS, VMFSSPARSE and SESPARSE, skips the rest, and
 * refuses a FLAT line without an offset or another type with one.  These
 * functions only parse; they open nothing.
 */
#include "vmdk_int.h"
#include "formats/fmt_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vmdk_desc_string(const char *text, const char *key, char *out,
		     size_t outlen)
{
	const char *p = strstr(text, key), *q;
	size_t n;

	if (!p)
		return 0;
	/* QEMU skips the two characters after the key: ="  */
	p += strlen(key);
	if (!p[0] || !p[1])
		return -1;
	p += 2;
	q = strchr(p, '"');
	if (!q)
		return -1;
	n = (size_t)(q - p);
	if (n + 1 > outlen)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vmdk_desc_cid(const char *text, bool parent, uint32_t *cid)
{
	const char *key = parent ? "parentCID" : "CID";
	const char *p = strstr(text, key);
	uint64_t v = 0;
	int digits = 0;

	if (!p)
		return -1;
	p += strlen(key);
	if (!*p)
		return -1;
	p++;                             /* the '=' (not checked, as QEMU) */
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && hexval(p[2]) >= 0)
		p += 2;
	for (; hexval(*p) >= 0; p++, digits++)
		v = v > (UINT64_MAX >> 4) ? UINT64_MAX : (v << 4) | (uint64_t)hexval(*p);
	if (!digits)
		return -1;
	*cid = (uint32_t)v;              /* scanf's %x keeps the low bits */
	return 0;
}

bool vmdk_desc_type_ok(const char *ct)
{
	static const char *const ok[] = {
		"monolithicFlat", "vmfs", "vmfsSparse", "seSparse",
		"twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(ct, ok[i]))
			return true;
	return false;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' ||
			   *p == '\v' || *p == '\f'))
		p++;
	return p;
}

/* A whitespace-delimited token of at most max chars (0: none or longer). */
static const char *token(const char *p, const char *end, char *out,
			 size_t max)
{
	const char *s = p;

	while (p < end && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\v' &&
	       *p != '\f')
		p++;
	if (p == s || (size_t)(p - s) > max)
		return NULL;
	memcpy(out, s, (size_t)(p - s));
	out[p - s] = '\0';
	return p;
}

/* A signed decimal (as scanf's %d); NULL when there is none or it does
 * not fit in 63 bits. */
static const char *number(const char *p, const char *end, int64_t *v)
{
	int neg = 0;
	uint64_t x = 0;
	const char *s;

	p = skip_ws(p, end);
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	s = p;
	while (p < end && *p >= '0' && *p <= '9') {
		if (x > (uint64_t)INT64_MAX / 10)
			return NULL;
		x = x * 10 + (uint64_t)(*p++ - '0');
		if (x > (uint64_t)INT64_MAX)
			return NULL;
	}
	if (p == s)
		return NULL;
	*v = neg ? -(int64_t)x : (int64_t)x;
	return p;
}

/* How many of QEMU's five fields (access, sectors, type, "file", offset)
 * the line [p, end) has, filling l; like its sscanf, parsing stops at the
 * first field that does not match. */
static int fields(const char *p, const char *end, char *access,
		  int64_t *sectors, struct vmdk_line *l, int64_t *offset)
{
	const char *q;
	size_t n;

	p = token(skip_ws(p, end), end, access, 10);
	if (!p)
		return 0;
	p = number(p, end, sectors);
	if (!p)
		return 1;
	p = token(skip_ws(p, end), end, l->type, 10);
	if (!p)
		return 2;
	p = skip_ws(p, end);
	if (p >= end || *p != '"')
		return 3;
	q = ++p;
	while (q < end && *q != '"' && *q != '\r')
		q++;
	n = (size_t)(q - p);
	if (q >= end || *q != '"' || n == 0 || n > VMDK_FNAME_MAX)
		return 3;
	memcpy(l->fname, p, n);
	l->fname[n] = '\0';
	return number(q + 1, end, offset) ? 5 : 4;
}

static bool type_used(const char *t)
{
	return !strcmp(t, "FLAT") || !strcmp(t, "SPARSE") ||
	       !strcmp(t, "VMFS") || !strcmp(t, "VMFSSPARSE") ||
	       !strcmp(t, "SESPARSE");
}

/* One line: 1 = an extent (l filled), 0 = skipped, < 0 = invalid. */
static int parse_line(const char *p, const char *end, struct vmdk_line *l,
		      const char *path, struct img_err *e)
{
	char access[11];
	int64_t sectors = 0, offset = -1;
	int m = fields(p, end, access, &sectors, l, &offset);
	bool flat = !strcmp(l->type, "FLAT"), vmfs = !strcmp(l->type, "VMFS");

	if (m < 4 || strcmp(access, "RW"))
		return 0;
	if ((flat && (m != 5 || offset < 0)) || (vmfs && m != 4) ||
	    (!flat && !vmfs && m != 4))
		return err_set(e, EINVAL, "%s: vmdk descriptor line %d: invalid "
			       "extent line (%s needs %s)", path, l->lineno,
			       l->type, flat ? "a sector offset after the "
			       "file name" : "no offset");
	if (sectors <= 0 || !type_used(l->type))
		return 0;
	if ((uint64_t)sectors > VMDK_MAX_SECTORS)
		return err_set(e, EINVAL, "%s: vmdk descriptor line %d: extent "
			       "of %lld sectors is over 2^61 bytes", path,
			       l->lineno, (long long)sectors);
	l->sectors = (uint64_t)sectors;
	l->flat_offset = vmfs ? 0 : flat ? (uint64_t)offset : 0;
	return 1;
}

int vmdk_desc_extents(const char *text, const char *path,
		      struct vmdk_line **lines, uint32_t *n,
		      struct img_err *e)
{
	struct vmdk_line *v = NULL, l;
	uint32_t cap = 0, k = 0;
	int lineno = 0;

	*lines = NULL;
	*n = 0;
	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');
		int r;

		if (!end)
			end = p + strlen(p);
		memset(&l, 0, sizeof(l));
		l.lineno = ++lineno;
		r = parse_line(p, end, &l, path, e);
		p = *end ? end + 1 : end;
		if (r < 0) {
			free(v);
			return r;
		}
		if (r == 0)
			continue;
		if (k == VMDK_MAX_EXTENTS) {
			free(v);
			return err_set(e, EINVAL, "%s: vmdk descriptor has more "
				       "than %u extent lines", path,
				       VMDK_MAX_EXTENTS);
		}
		if (k == cap) {
			struct vmdk_line *nv;
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return err_set(e, ENOMEM, "%s: out of memory",
					       path);
			}
			v = nv;
		}
		v[k++] = l;
	}
	*lines = v;
	*n = k;
	return 0;
}
