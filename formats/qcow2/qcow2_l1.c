/* qcow2_l1.c - the active L1 table, held in a few fixed windows.
 *
 * The L1 grows with the virtual size (a 64 TiB image with 64 KiB clusters
 * has 1 MiB of it, a 1 PiB one 16 MiB), so a handle that kept all of it
 * would make a commit's memory grow with the virtual size, once per open
 * handle.  Instead QCOW2_L1_SLOTS windows of QCOW2_L1_WIN entries (one
 * page each) are cached and refilled from the file on a miss: the same
 * memory at every size, and a sequential walk reads each window once.
 *
 * The file is the truth: every change of an entry is written to it first
 * (qcow2_chunk.c, qcow2_resize.c) and then mirrored here with
 * qcow2_l1_set, so a window read again later sees the same value.
 */
#include "qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define L1_NONE UINT64_MAX

struct qcow2_l1c {
	uint64_t first[QCOW2_L1_SLOTS];  /* first entry held, or L1_NONE */
	uint64_t used[QCOW2_L1_SLOTS];   /* LRU tick */
	uint64_t tick;
	uint64_t e[QCOW2_L1_SLOTS][QCOW2_L1_WIN];  /* host-endian */
};

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

void qcow2_l1_forget(struct qcow2_state *s)
{
	struct qcow2_l1c *c = s->l1c;

	for (int i = 0; c && i < QCOW2_L1_SLOTS; i++)
		c->first[i] = L1_NONE;
}

void qcow2_l1_free(struct qcow2_state *s)
{
	free(s->l1c);
	s->l1c = NULL;
	s->l1_loaded = false;
}

int qcow2_l1_check_entry(struct img *img, uint64_t idx, uint64_t ent,
			 struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t l2 = ent & QCOW2_L1E_OFFSET_MASK;
	uint64_t guest = idx * s->l2_entries * s->cluster_size;

	if (ent & QCOW2_L1E_RESERVED)
		return err_set(e, EINVAL,
			       "%s: L1 entry %llu (guest offset %llu) is "
			       "0x%016llx: reserved bits set", img->path,
			       ull(idx), ull(guest), ull(ent));
	if (!l2)
		return 0;
	if (l2 % s->cluster_size)
		return err_set(e, EINVAL,
			       "%s: L1 entry %llu (guest offset %llu): L2 table "
			       "offset %llu is not cluster aligned", img->path,
			       ull(idx), ull(guest), ull(l2));
	if (l2 >= s->file_size)
		return err_set(e, EINVAL,
			       "%s: L1 entry %llu (guest offset %llu): L2 table "
			       "offset %llu is past the end of the file (%llu)",
			       img->path, ull(idx), ull(guest), ull(l2),
			       ull(s->file_size));
	return 0;
}

/* Fill slot k with the window starting at entry first (past the table's
 * end: zeros, as a grown table reads). */
static int fill(struct img *img, int k, uint64_t first, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_l1c *c = s->l1c;
	uint64_t n = s->h.l1_size - first;
	uint8_t *raw = (uint8_t *)c->e[k];
	int r;

	if (n > QCOW2_L1_WIN)
		n = QCOW2_L1_WIN;
	c->first[k] = L1_NONE;
	r = qcow2_read_meta(img, s->h.l1_table_offset + first * 8, raw,
			    (size_t)n * 8, "the L1 table", e);
	if (r < 0)
		return r;
	/* In place, front to back: entry i is read before it is written. */
	for (uint64_t i = 0; i < n; i++)
		c->e[k][i] = qcow2_be64(raw + i * 8);
	memset(c->e[k] + n, 0, (QCOW2_L1_WIN - n) * 8);
	c->first[k] = first;
	return 0;
}

/* The slot holding entry idx, filled on a miss (least recently used). */
static int slot_for(struct img *img, uint64_t idx, int *out,
		    struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_l1c *c = s->l1c;
	uint64_t first = idx - idx % QCOW2_L1_WIN;
	int k = 0, r;

	if (!c) {
		c = s->l1c = malloc(sizeof(*c));
		if (!c)
			return err_set(e, ENOMEM, "%s: out of memory for the "
				       "L1 window", img->path);
		memset(c->first, 0xff, sizeof(c->first));
		memset(c->used, 0, sizeof(c->used));
		c->tick = 0;
	}
	for (int i = 0; i < QCOW2_L1_SLOTS; i++) {
		if (c->first[i] == first) {
			c->used[i] = ++c->tick;
			*out = i;
			return 0;
		}
		if (c->used[i] < c->used[k])
			k = i;
	}
	r = fill(img, k, first, e);
	if (r < 0)
		return r;
	c->used[k] = ++c->tick;
	*out = k;
	return 0;
}

int qcow2_l1_get(struct img *img, uint64_t idx, uint64_t *v,
		 struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	int k = 0, r;

	*v = 0;
	if (idx >= s->h.l1_size)
		return 0;
	r = slot_for(img, idx, &k, e);
	if (r < 0)
		return r;
	*v = s->l1c->e[k][idx % QCOW2_L1_WIN];
	return 0;
}

uint64_t qcow2_l1_zero_run(const struct qcow2_state *s, uint64_t idx)
{
	const struct qcow2_l1c *c = s->l1c;
	uint64_t first = idx - idx % QCOW2_L1_WIN, end = first + QCOW2_L1_WIN;
	uint64_t i = idx + 1;

	if (end > s->h.l1_size)
		end = s->h.l1_size;
	for (int k = 0; c && k < QCOW2_L1_SLOTS; k++) {
		if (c->first[k] != first)
			continue;
		while (i < end && !c->e[k][i - first])
			i++;
		break;
	}
	return i - idx - 1;
}

void qcow2_l1_set(struct qcow2_state *s, uint64_t idx, uint64_t v)
{
	struct qcow2_l1c *c = s->l1c;
	uint64_t first = idx - idx % QCOW2_L1_WIN;

	for (int i = 0; c && i < QCOW2_L1_SLOTS; i++)
		if (c->first[i] == first)
			c->e[i][idx % QCOW2_L1_WIN] = v;
}

int qcow2_load_l1(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	uint64_t v;
	int r;

	qcow2_l1_forget(s);
	s->l1_loaded = true;
	/* An inspecting open (info/check/map) must still see a damaged
	 * image; entries are checked again whenever a lookup uses them.
	 * Any other open checks every entry now, window by window, so a
	 * plan or a commit refuses a damaged table before writing. */
	if (img->flags & IMG_O_INSPECT)
		return 0;
	for (uint64_t i = 0; i < s->h.l1_size; i++) {
		r = qcow2_l1_get(img, i, &v, e);
		if (r >= 0)
			r = qcow2_l1_check_entry(img, i, v, e);
		if (r < 0) {
			s->l1_loaded = false;
			return r;
		}
	}
	return 0;
}

int qcow2_need_l1(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;

	return s->l1_loaded ? 0 : qcow2_load_l1(img, e);
}
