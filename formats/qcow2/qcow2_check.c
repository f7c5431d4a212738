/* qcow2_check.c - consistency check like `qemu-img check` (no repair).
 *
 * We count, for every cluster of the file, how many references the
 * metadata makes to it (header, L1/L2 tables of the active L1 and of every
 * internal snapshot, data and compressed clusters, refcount table and
 * blocks, snapshot table, bitmap directory/tables/data, LUKS header), then
 * compare with the stored refcounts, and finally check the COPIED flags of
 * the active tables.  Classes and wording follow qemu-img:
 *   stored < references            "ERROR cluster N refcount=R reference=F"
 *   stored > references            "Leaked cluster N refcount=R reference=F"
 *   COPIED != (refcount == 1)      "ERROR OFLAG_COPIED ..."
 *   unaligned / past-EOF entries   corruption
 *
 * Memory: one 16-bit counter per cluster of the file (saturating), capped
 * at QCOW2_CHECK_MAX_CLUSTERS; one table at a time otherwise.  Everything is
 * read whole (a failed read is a check error, never zeros taken for
 * metadata), nothing is written.
 */
#include "qcow2_int.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QCOW2_CHECK_MAX_CLUSTERS (1ull << 28)    /* 512 MiB of counters */
#define QCOW2_CHECK_MAX_TABLE    (64u << 20)     /* snapshot/bitmap tables */
#define REF_SAT 0xffffu

struct ck {
	struct img *img;
	struct qcow2_state *s;
	struct img_check *out;
	uint64_t file_size, nclusters, cs;
	uint16_t *ref;
	uint8_t *l2;                /* one table */
	uint64_t *reft;             /* raw refcount table (host-endian) */
	uint64_t reft_entries;
	uint8_t *rb;                /* one refcount block (lookup cache) */
	uint64_t rb_off;
	uint8_t *rb_unreadable;     /* per refcount table entry: read failed */
	bool active_l1_read;        /* walk_l1 read all of the active L1 */
	uint64_t next_contig;
};

static void msg(struct ck *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void msg(struct ck *k, const char *fmt, ...)
{
	struct img_check *o = k->out;
	va_list ap;
	char *m;

	if (o->nmsgs >= IMG_CHECK_MSGS) {
		o->msgs_dropped++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (m)
		o->msgs[o->nmsgs++] = m;
	else
		o->msgs_dropped++;
}

/* Count one reference to every cluster of [off, off+size). */
static void inc(struct ck *k, uint64_t off, uint64_t size)
{
	if (!size)
		return;
	if (off + size >= k->file_size + k->cs || off + size < off) {
		msg(k, "ERROR: counting reference for region exceeding the end "
		    "of the file by one cluster or more: offset 0x%llx size "
		    "0x%llx", (unsigned long long)off,
		    (unsigned long long)size);
		k->out->corruptions++;
		return;
	}
	for (uint64_t c = off / k->cs; c <= (off + size - 1) / k->cs; c++)
		if (c < k->nclusters && k->ref[c] < REF_SAT)
			k->ref[c]++;
}

static int read_at(struct ck *k, void *buf, uint64_t n, uint64_t off,
		   const char *what)
{
	int r = io_pread_full(k->img->fd, buf, n, off);

	if (r < 0) {
		msg(k, "ERROR: cannot read %s at offset 0x%llx: %s", what,
		    (unsigned long long)off, strerror(-r));
		k->out->check_errors++;
	}
	return r;
}

/* Stored refcount of cluster c into *rc (0 where no block).  False when
 * its refcount block cannot be read (one check error per block): the
 * refcount is then unknown, never taken as 0. */
static bool stored_rc(struct ck *k, uint64_t c, uint64_t *rc)
{
	struct qcow2_state *s = k->s;
	uint64_t rbe = k->cs * 8 / (uint64_t)s->refcount_bits, ti = c / rbe;
	uint64_t b;

	*rc = 0;
	if (ti >= k->reft_entries)
		return true;
	b = k->reft[ti] & QCOW2_REFT_OFFSET_MASK;
	if (!b || b % k->cs || b + k->cs > k->file_size)
		return true;
	if (k->rb_unreadable[ti])
		return false;
	if (k->rb_off != b) {
		k->rb_off = 0;
		if (read_at(k, k->rb, k->cs, b, "a refcount block") < 0) {
			k->rb_unreadable[ti] = 1;
			return false;
		}
		k->rb_off = b;
	}
	*rc = qcow2_rc_entry_get(k->rb, s->refcount_bits, c % rbe);
	return true;
}

/* References of one L2 table.  active: count allocation statistics. */
static void walk_l2(struct ck *k, uint64_t l2off, bool active)
{
	struct qcow2_state *s = k->s;
	int shift = 62 - ((int)s->h.cluster_bits - 8);

	if (read_at(k, k->l2, k->cs, l2off, "an L2 table") < 0)
		return;
	k->next_contig = 0;     /* qemu-img counts fragments per L2 table */
	for (uint64_t i = 0; i < s->l2_entries; i++) {
		const uint8_t *p = k->l2 + i * (uint64_t)s->l2_entry_bytes;
		uint64_t e = qcow2_be64(p), bm = s->extl2 ? qcow2_be64(p + 8) : 0;

		if (e & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff = e & ((1ull << shift) - 1);
			uint64_t nsec = ((e >> shift) &
					 ((1ull << (s->h.cluster_bits - 8)) - 1)) + 1;
			if (e & QCOW2_OFLAG_COPIED) {
				msg(k, "ERROR: coffset=0x%llx: copied flag must "
				    "never be set for compressed clusters",
				    (unsigned long long)coff);
				k->out->corruptions++;
			}
			if (s->extl2 && bm) {
				msg(k, "ERROR compressed cluster %llu with "
				    "non-zero subcluster allocation bitmap, "
				    "entry=0x%llx", (unsigned long long)i,
				    (unsigned long long)e);
				k->out->corruptions++;
			}
			inc(k, coff & ~511ull, nsec * 512);
			if (active) {
				k->out->allocated_clusters++;
				k->out->fragmented_clusters++;
				k->out->compressed_clusters++;
			}
			continue;
		}
		uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
		if (e & QCOW2_L2E_STD_RESERVED) {
			msg(k, "ERROR found l2 entry with reserved bits set: %llx",
			    (unsigned long long)e);
			k->out->corruptions++;
		}
		if (s->extl2 && ((uint32_t)bm & (uint32_t)(bm >> 32))) {
			msg(k, "ERROR: invalid subcluster bitmap (a subcluster "
			    "both allocated and zero) in L2 entry 0x%llx",
			    (unsigned long long)e);
			k->out->corruptions++;
		}
		bool dfile = s->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
		/* With a data file, offset 0 plus COPIED maps guest 0. */
		if (!off && !(dfile && (e & QCOW2_OFLAG_COPIED))) {
			if (s->extl2 && (uint32_t)bm) {
				msg(k, "ERROR: unallocated L2 entry with "
				    "subcluster allocation bits 0x%08x",
				    (unsigned)(uint32_t)bm);
				k->out->corruptions++;
			}
			continue;
		}
		if (off % k->cs) {
			msg(k, "ERROR offset=%llx: Data cluster is not properly "
			    "aligned; L2 entry corrupted.",
			    (unsigned long long)off);
			k->out->corruptions++;
			/* qemu-img still counts it (two clusters then). */
		}
		/* External data file: data clusters are not refcounted. */
		if (!dfile)
			inc(k, off, k->cs);
		if (active) {
			k->out->allocated_clusters++;
			if (k->next_contig && off != k->next_contig)
				k->out->fragmented_clusters++;
			k->next_contig = off + k->cs;
		}
	}
}

/* One L1 entry: count its table and walk it. */
static void walk_l1_entry(struct ck *k, uint64_t l1e, bool active)
{
	uint64_t l2 = l1e & QCOW2_L1E_OFFSET_MASK;

	if (l1e & QCOW2_L1E_RESERVED) {
		msg(k, "ERROR found L1 entry with reserved bits set: %llx",
		    (unsigned long long)l1e);
		k->out->corruptions++;
	}
	if (!l2)
		return;
	inc(k, l2, k->cs);
	if (l2 % k->cs) {
		msg(k, "ERROR l2_offset=%llx: Table is not cluster "
		    "aligned; L1 entry corrupted", (unsigned long long)l2);
		k->out->corruptions++;
		return;
	}
	walk_l2(k, l2, active);
}

/* The table is read one window at a time (QCOW2_L1_WIN entries), so the
 * check's memory does not grow with the virtual size. */
static void walk_l1(struct ck *k, uint64_t l1off, uint64_t l1_size,
		    bool active)
{
	uint64_t bytes = l1_size * 8;
	uint8_t raw[QCOW2_L1_WIN * 8];

	if (!l1_size)
		return;
	inc(k, l1off, bytes);
	if (bytes > QCOW2_MAX_L1_BYTES) {
		msg(k, "ERROR: L1 table at 0x%llx has %llu entries; too large",
		    (unsigned long long)l1off, (unsigned long long)l1_size);
		k->out->check_errors++;
		return;
	}
	/* A table cut short by the end of the file: one error, nothing
	 * walked, as one read of the whole table would fail. */
	if (l1off > k->file_size || bytes > k->file_size - l1off) {
		msg(k, "ERROR: cannot read %s at offset 0x%llx: %s",
		    "an L1 table", (unsigned long long)l1off, strerror(EIO));
		k->out->check_errors++;
		return;
	}
	for (uint64_t i = 0; i < l1_size; i += QCOW2_L1_WIN) {
		uint64_t n = l1_size - i < QCOW2_L1_WIN ? l1_size - i :
			     QCOW2_L1_WIN;
		if (read_at(k, raw, n * 8, l1off + i * 8, "an L1 table") < 0)
			return;
		for (uint64_t j = 0; j < n; j++)
			walk_l1_entry(k, qcow2_be64(raw + j * 8), active);
	}
	if (active)
		k->active_l1_read = true;   /* check_copied reads it again */
}

static void walk_snapshots(struct ck *k)
{
	struct qcow2_state *s = k->s;
	uint64_t off = s->h.snapshots_offset, pos = 0;
	uint8_t *t;

	if (!s->h.nb_snapshots)
		return;
	uint64_t want = off < k->file_size ? k->file_size - off : 0;
	uint64_t l1_budget = 8ull * QCOW2_MAX_L1_BYTES;  /* hostile tables */
	if (want > QCOW2_CHECK_MAX_TABLE)
		want = QCOW2_CHECK_MAX_TABLE;
	t = malloc(want ? want : 1);
	if (!t) {
		k->out->check_errors++;
		return;
	}
	/* Read what the file holds from there (at most a few MiB). */
	if (read_at(k, t, want, off, "the snapshot table") < 0) {
		free(t);
		return;
	}
	for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
		if (pos + QCOW2_SNAP_FIXED > want) {
			msg(k, "ERROR: snapshot table at 0x%llx is truncated "
			    "(snapshot %u)", (unsigned long long)off, i);
			k->out->check_errors++;
			break;
		}
		const uint8_t *e = t + pos;
		uint64_t l1 = qcow2_be64(e + QCOW2_SNAP_L1_TABLE_OFFSET);
		uint32_t l1n = qcow2_be32(e + QCOW2_SNAP_L1_SIZE);
		uint32_t ids = qcow2_be16(e + QCOW2_SNAP_ID_SIZE);
		uint32_t names = qcow2_be16(e + QCOW2_SNAP_NAME_SIZE);
		uint32_t extra = qcow2_be32(e + QCOW2_SNAP_EXTRA_SIZE);
		pos += QCOW2_SNAP_FIXED + (uint64_t)extra + ids + names;
		pos = (pos + 7) & ~7ull;
		if ((uint64_t)l1n * 8 > l1_budget) {
			msg(k, "ERROR: snapshot L1 tables exceed %llu bytes in "
			    "total; not all were checked",
			    8ull * QCOW2_MAX_L1_BYTES);
			k->out->check_errors++;
			break;
		}
		l1_budget -= (uint64_t)l1n * 8;
		walk_l1(k, l1 & QCOW2_L1E_OFFSET_MASK, l1n, false);
	}
	inc(k, off, pos);
	free(t);
}

static void walk_bitmaps(struct ck *k)
{
	struct qcow2_state *s = k->s;
	const struct qcow2_ext *x = NULL;

	if (!(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return;         /* bitmaps are void without the bit: leaks */
	for (int i = 0; i < s->nexts; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS &&
		    s->exts[i].len >= QCOW2_BITMAPS_EXT_LEN)
			x = &s->exts[i];
	if (!x)
		return;
	uint32_t nb = qcow2_be32(x->data + QCOW2_BITMAPS_NB);
	uint64_t dsize = qcow2_be64(x->data + QCOW2_BITMAPS_DIR_SIZE);
	uint64_t doff = qcow2_be64(x->data + QCOW2_BITMAPS_DIR_OFFSET);
	if (dsize > QCOW2_CHECK_MAX_TABLE) {
		k->out->check_errors++;
		return;
	}
	inc(k, doff, dsize);
	uint8_t *d = malloc(dsize ? dsize : 1);
	if (!d || read_at(k, d, dsize, doff, "the bitmap directory") < 0) {
		free(d);
		return;
	}
	uint64_t pos = 0;
	for (uint32_t i = 0; i < nb && pos + QCOW2_BMDIR_FIXED <= dsize; i++) {
		const uint8_t *ent = d + pos;
		uint64_t toff = qcow2_be64(ent + QCOW2_BMDIR_TABLE_OFFSET);
		uint32_t tsize = qcow2_be32(ent + QCOW2_BMDIR_TABLE_SIZE);
		uint32_t names = qcow2_be16(ent + QCOW2_BMDIR_NAME_SIZE);
		uint32_t extra = qcow2_be32(ent + QCOW2_BMDIR_EXTRA_SIZE);
		pos = (pos + QCOW2_BMDIR_FIXED + extra + names + 7) & ~7ull;
		inc(k, toff, (uint64_t)tsize * 8);
		if ((uint64_t)tsize * 8 > QCOW2_CHECK_MAX_TABLE)
			continue;
		uint8_t *bt = malloc((uint64_t)tsize * 8 + 1);
		if (bt && read_at(k, bt, (uint64_t)tsize * 8, toff,
				  "a bitmap table") == 0)
			for (uint32_t j = 0; j < tsize; j++) {
				uint64_t o = qcow2_be64(bt + j * 8) &
					     QCOW2_BMT_OFFSET_MASK;
				if (o)
					inc(k, o, k->cs);
			}
		free(bt);
	}
	free(d);
}

static int load_reft(struct ck *k)
{
	struct qcow2_state *s = k->s;
	uint64_t bytes = (uint64_t)s->h.refcount_table_clusters * k->cs;
	uint8_t *raw = malloc(bytes ? bytes : 1);

	k->reft = calloc(bytes / 8 + 1, sizeof(uint64_t));
	k->rb_unreadable = calloc(bytes / 8 + 1, 1);
	if (!raw || !k->reft || !k->rb_unreadable) {
		free(raw);
		return -ENOMEM;
	}
	if (read_at(k, raw, bytes, s->h.refcount_table_offset,
		    "the refcount table") < 0) {
		free(raw);
		return -EIO;
	}
	k->reft_entries = bytes / 8;
	for (uint64_t i = 0; i < k->reft_entries; i++)
		k->reft[i] = qcow2_be64(raw + i * 8);
	free(raw);
	inc(k, s->h.refcount_table_offset, bytes);
	for (uint64_t i = 0; i < k->reft_entries; i++) {
		uint64_t b = k->reft[i] & QCOW2_REFT_OFFSET_MASK;
		if (!b)
			continue;
		if (b % k->cs) {
			msg(k, "ERROR refcount block %llu is not cluster "
			    "aligned; refcount table entry corrupted",
			    (unsigned long long)i);
			k->out->corruptions++;
			k->reft[i] = 0;
			continue;
		}
		if (b >= k->file_size) {
			msg(k, "ERROR refcount block %llu is outside image",
			    (unsigned long long)i);
			k->out->corruptions++;
			k->reft[i] = 0;
			continue;
		}
		inc(k, b, k->cs);
	}
	return 0;
}

/* Stored refcounts against the references counted.  When some metadata
 * could not be read (or was too large to walk), references are missing:
 * a refcount above them is then no evidence of a leak, and only
 * corruptions (a reference the refcount does not cover) are reported. */
static void compare(struct ck *k, bool refs_complete)
{
	uint64_t highest = 0, unsure = 0;
	bool any = false;

	/* Like qemu-img: the clusters the file holds (the spare counter
	 * past a cluster-aligned end is not compared). */
	uint64_t n = (k->file_size + k->cs - 1) / k->cs;

	for (uint64_t c = 0; c < n; c++) {
		uint64_t st, rf = k->ref[c];
		if (!stored_rc(k, c, &st))
			continue;       /* unknown: counted as a check error */
		if (rf == REF_SAT && st >= REF_SAT)
			rf = st;        /* saturated counter: trust the store */
		if (st || rf) {
			highest = c;
			any = true;
		}
		if (st == rf)
			continue;
		if (st < rf) {
			msg(k, "ERROR cluster %llu refcount=%llu reference=%llu",
			    (unsigned long long)c, (unsigned long long)st,
			    (unsigned long long)rf);
			k->out->corruptions++;
		} else if (!refs_complete) {
			unsure++;
		} else {
			msg(k, "Leaked cluster %llu refcount=%llu reference=%llu",
			    (unsigned long long)c, (unsigned long long)st,
			    (unsigned long long)rf);
			k->out->leaks++;
		}
	}
	k->out->image_end_offset = any ? (highest + 1) * k->cs : 0;
	if (unsure)
		msg(k, "%llu clusters have more refcounts than the references "
		    "that could be read; leaks are not reported",
		    (unsigned long long)unsure);
}

/* COPIED of the data entries of one active L2 table. */
static void check_copied_l2(struct ck *k, uint64_t l2)
{
	struct qcow2_state *s = k->s;
	uint64_t rc;

	if (read_at(k, k->l2, k->cs, l2, "an L2 table") < 0)
		return;
	for (uint64_t j = 0; j < s->l2_entries; j++) {
		uint64_t x = qcow2_be64(k->l2 + j * s->l2_entry_bytes);
		uint64_t off = x & QCOW2_L2E_OFFSET_MASK;
		if ((x & QCOW2_OFLAG_COMPRESSED) || !off || off % k->cs ||
		    (s->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
			continue;
		if (!stored_rc(k, off / k->cs, &rc))
			continue;
		if ((rc == 1) != !!(x & QCOW2_OFLAG_COPIED)) {
			msg(k, "ERROR OFLAG_COPIED data cluster: "
			    "l2_entry=%llx refcount=%llu",
			    (unsigned long long)x, (unsigned long long)rc);
			k->out->corruptions++;
		}
	}
}

/* COPIED must be set exactly where the stored refcount is 1 (active L1,
 * read again window by window; nothing to do when walk_l1 could not read
 * it). */
static void check_copied(struct ck *k)
{
	struct qcow2_state *s = k->s;
	uint64_t l1off = s->h.l1_table_offset, rc;
	uint8_t raw[QCOW2_L1_WIN * 8];

	for (uint64_t w = 0; k->active_l1_read && w < s->h.l1_size;
	     w += QCOW2_L1_WIN) {
		uint64_t n = s->h.l1_size - w < QCOW2_L1_WIN ?
			     s->h.l1_size - w : QCOW2_L1_WIN;
		if (read_at(k, raw, n * 8, l1off + w * 8, "an L1 table") < 0)
			return;
		for (uint64_t j = 0; j < n; j++) {
			uint64_t e = qcow2_be64(raw + j * 8), i = w + j;
			uint64_t l2 = e & QCOW2_L1E_OFFSET_MASK;
			if (!l2 || l2 % k->cs)
				continue;
			if (stored_rc(k, l2 / k->cs, &rc) &&
			    (rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
				msg(k, "ERROR OFLAG_COPIED L2 cluster: "
				    "l1_index=%llu l1_entry=%llx refcount=%llu",
				    (unsigned long long)i,
				    (unsigned long long)e,
				    (unsigned long long)rc);
				k->out->corruptions++;
			}
			check_copied_l2(k, l2);
		}
	}
}

int qcow2_check(struct img *img, struct img_check *out, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	struct ck k;
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&k, 0, sizeof(k));
	k.img = img;
	k.s = s;
	k.out = out;
	k.cs = s->cluster_size;
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	k.file_size = (uint64_t)st.st_size;
	/* One spare counter: a region may end inside the cluster after a
	 * cluster-aligned end of file without being an error. */
	k.nclusters = (k.file_size + k.cs - 1) / k.cs + 1;
	if (k.nclusters > QCOW2_CHECK_MAX_CLUSTERS)
		return err_set(e, EFBIG, "%s: %llu clusters are too many to "
			       "check (limit %llu)", img->path,
			       (unsigned long long)k.nclusters,
			       (unsigned long long)QCOW2_CHECK_MAX_CLUSTERS);
	k.ref = calloc(k.nclusters, sizeof(*k.ref));
	k.l2 = malloc(k.cs);
	k.rb = malloc(k.cs);
	if (!k.ref || !k.l2 || !k.rb) {
		r = err_set(e, ENOMEM, "%s: out of memory for the check",
			    img->path);
		goto out;
	}
	out->total_clusters = (s->h.size + k.cs - 1) / k.cs;

	inc(&k, 0, k.cs);                                   /* header */
	walk_l1(&k, s->h.l1_table_offset, s->h.l1_size, true);
	walk_snapshots(&k);
	walk_bitmaps(&k);
	for (int i = 0; i < s->nexts; i++)
		if (s->exts[i].type == QCOW2_EXT_CRYPTO &&
		    s->exts[i].len >= QCOW2_CRYPTO_EXT_LEN)
			inc(&k, qcow2_be64(s->exts[i].data + QCOW2_CRYPTO_OFFSET),
			    qcow2_be64(s->exts[i].data + QCOW2_CRYPTO_LENGTH));
	if (load_reft(&k) < 0) {
		r = err_set(e, EIO, "%s: cannot read the refcount table",
			    img->path);
		goto out;
	}
	compare(&k, out->check_errors == 0);
	check_copied(&k);
	r = 0;
out:
	free(k.ref);
	free(k.l2);
	free(k.rb);
	free(k.reft);
	free(k.rb_unreadable);
	return r;
}
