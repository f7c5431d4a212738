/* qcow2_int.h - state shared by the qcow2 driver files (not a public API).
 *
 *   qcow2.c           the ops table: probe, open/close, info, backing
 *   qcow2_header.c    parse + validate the header and its extensions
 *   qcow2_l1.c        the active L1, in a few fixed windows
 *   qcow2_read.c      L1/L2 lookup, block status, map status, reads
 *                     (plain, zero, compressed clusters)
 *   qcow2_backing.c   backing_header / set_backing (the cluster-0 rewrite)
 *   qcow2_alloc.c     pwrite, write_zeroes (one L2 table at a time)
 *   qcow2_chunk.c     chunk commit, write queue, write batches
 *   qcow2_refcount.c  refcounts, cluster reservation, header writes
 *   qcow2_resize.c    grow, make_empty, flush
 *   qcow2_create.c    create
 *   qcow2_check.c     check (refcounts against references)
 *
 * The on-disk layout (offsets, bits, big-endian accessors) is in
 * qcow2_hdr.h.
 */
#ifndef IMGRAPH_QCOW2_INT_H
#define IMGRAPH_QCOW2_INT_H

#include "formats/format.h"
#include "qcow2_hdr.h"

#define QCOW2_MAX_L1_BYTES     (32u << 20)   /* QEMU's cap */
#define QCOW2_MAX_REFT_BYTES   (8u << 20)
#define QCOW2_MAX_VSIZE        (1ull << 61)  /* our cap on virtual size */
#define QCOW2_MAX_EXTENSIONS   1024          /* iteration cap */

/* One header extension kept verbatim (unknown ones, and known ones we
 * re-emit unchanged on rewrite). */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;                /* owned */
};

struct qcow2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
};

struct qcow2_l1c;

struct qcow2_state {
	struct qcow2_header h;
	uint32_t cluster_size;
	uint32_t l2_entries;          /* entries per L2 table */
	int l2_entry_bytes;           /* 8 or 16 (extended L2) */
	bool extl2;
	uint32_t subcluster_size;     /* cluster_size / 32 with extl2, else cluster_size */
	int refcount_bits;
	uint64_t file_size;           /* at open, updated as we append */

	/* Cluster 0 as read, owned: its first hc_len bytes (the rest read
	 * by qcow2_hdr_need when a parse or a rewrite needs them; a pool
	 * scan reads one page of a 2 MiB cluster, not the cluster). */
	uint8_t *header_cluster;
	uint32_t hc_len;
	uint64_t hc_file_size;        /* the file size cluster 0 was read at */
	struct qcow2_ext *exts;       /* in file order, owned */
	int nexts;
	char *backing_name;           /* NUL-terminated or NULL, owned */
	char *backing_fmt;            /* or NULL, owned */
	char *data_file_name;         /* or NULL, owned */
	/* The external data file, open read-only (qcow2_data.c), and the
	 * path maps name it by; -1 / NULL when the image has none. */
	int data_fd;
	char *data_path;

	/* The active L1, a few windows of it (qcow2_l1.c), owned.  Checked
	 * whole at open, except on an inspecting open (the pool scan, info,
	 * map, check), where entries are read when a lookup needs them. */
	struct qcow2_l1c *l1c;
	bool l1_loaded;

	/* Small L2 cache (read path); the write path may add its own. */
	uint64_t l2_cache_off;
	uint8_t *l2_cache;            /* one L2 table, raw big-endian bytes */

	/* Refcount table, host-endian, loaded lazily by the write/check path. */
	uint64_t *reft;
	uint32_t reft_entries;

	const char *write_refusal;    /* static string or NULL */
	void *alloc;                  /* qcow2_alloc.c private state */

	/* The decompressor's reusable state (qcow2_read.c), or NULL. */
	void *inflater;

	/* map_status asks the file system about holes under data only when
	 * QEMU would (qcow2_map.c); decided on first use. */
	enum { QCOW2_PREALLOC_UNKNOWN, QCOW2_PREALLOC_NO,
	       QCOW2_PREALLOC_YES } map_prealloc;
	void *info_extra;             /* qcow2_info.c, loaded by get_info */
};

/* qcow2_header.c */
/* Bytes of cluster 0 read at first: the header, its extensions and the
 * backing name fit in them unless they were placed far apart. */
#define QCOW2_HEAD_READ 4096u
/* Parse and validate cluster 0 and the extensions; fill s (not the L1).
 * head: the file's first hlen bytes when the opener has them (NULL: read
 * here). */
int qcow2_parse_header(struct qcow2_state *s, const char *path, int fd,
		       uint64_t file_size, const uint8_t *head, size_t hlen,
		       struct img_err *e);
/* Make s->header_cluster hold bytes [0, upto) of cluster 0 (upto <= the
 * cluster size; past the end of the file: zeros). */
int qcow2_hdr_need(struct qcow2_state *s, const char *path, int fd,
		   uint32_t upto, struct img_err *e);
void qcow2_free_header(struct qcow2_state *s);

/* qcow2_backing.c */
int qcow2_backing_header(struct img *img, const char *name, const char *fmt,
			 uint8_t **buf, size_t *len, struct img_err *e);
int qcow2_set_backing(struct img *img, const char *name, const char *fmt,
		      struct img_err *e);

/* qcow2_data.c */
/* Open the external data file, when the header names one. */
int qcow2_data_open(struct img *img, struct img_err *e);
void qcow2_data_close(struct qcow2_state *s);
/* The file guest data lives in: the data file, or the image itself. */
static inline int qcow2_data_fd(const struct img *img)
{
	const struct qcow2_state *s = img->priv;

	return s->data_fd >= 0 ? s->data_fd : img->fd;
}

/* qcow2_read.c */
/* Read len bytes of metadata (what: "the L2 table") at off: all of it or
 * an error naming the file, what and where; never a short read. */
int qcow2_read_meta(struct img *img, uint64_t off, void *buf, size_t len,
		    const char *what, struct img_err *e);

/* qcow2_l1.c: the active L1 in QCOW2_L1_SLOTS windows of QCOW2_L1_WIN
 * entries (one page each), refilled from the file on a miss, so that a
 * handle's memory does not grow with the virtual size. */
#define QCOW2_L1_WIN   512u
#define QCOW2_L1_SLOTS 4
/* Forget the cached windows; on a non-inspecting open, read and check
 * every entry (window by window). */
int qcow2_load_l1(struct img *img, struct img_err *e);
/* qcow2_load_l1 unless done already. */
int qcow2_need_l1(struct img *img, struct img_err *e);
/* Entry idx, host-endian (0 past the table's end); not checked. */
int qcow2_l1_get(struct img *img, uint64_t idx, uint64_t *v,
		 struct img_err *e);
/* How many entries right after idx, in idx's cached window, are 0 (no
 * table, no flags): a sparse walk skips them in one step. */
uint64_t qcow2_l1_zero_run(const struct qcow2_state *s, uint64_t idx);
/* Mirror an entry already written to the file. */
void qcow2_l1_set(struct qcow2_state *s, uint64_t idx, uint64_t v);
/* Drop the cached windows (the table moved, or a write may have torn). */
void qcow2_l1_forget(struct qcow2_state *s);
void qcow2_l1_free(struct qcow2_state *s);
/* 0 when entry idx is usable: no reserved bits, an aligned L2 offset
 * inside the file; else an error naming the entry and its guest offset. */
int qcow2_l1_check_entry(struct img *img, uint64_t idx, uint64_t ent,
			 struct img_err *e);
/* Raw L2 entry (first 64-bit word) and extended bitmap for guest offset off. */
int qcow2_get_l2_entry(struct img *img, uint64_t off, uint64_t *entry,
		       uint64_t *bitmap, struct img_err *e);
/* Block status of [off, off+len); with want_host, extents also end where
 * the host offset stops being contiguous or known, and *host / *has_host
 * tell it for `off` (qemu's OFFSET_VALID: plain data, preallocated zero
 * clusters, unallocated subclusters of an allocated cluster). */
int qcow2_status_walk(struct img *img, uint64_t off, uint64_t len,
		      uint64_t *pnum, bool want_host, uint64_t *host,
		      bool *has_host, struct img_err *e);
int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct img_err *e);
int qcow2_pread(struct img *img, uint64_t off, void *buf, size_t len,
		struct img_err *e);
/* Free s->inflater (at close). */
void qcow2_inflater_free(struct qcow2_state *s);

/* qcow2_map.c */
int qcow2_map_status(struct img *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, struct img_map *m, struct img_err *e);

/* qcow2_alloc.c */
int qcow2_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
		 struct img_err *e);
int qcow2_pwrite_file(struct img *img, uint64_t off, uint64_t len, int src,
		      uint64_t soff, struct io_copy_ctx *ctx,
		      struct img_err *e);
int qcow2_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		       struct img_err *e);

/* qcow2_resize.c */
int qcow2_grow(struct img *img, uint64_t new_size, struct img_err *e);
int qcow2_make_empty(struct img *img, struct img_err *e);
int qcow2_flush(struct img *img, struct img_err *e);
void qcow2_alloc_free(struct qcow2_state *s);

/* qcow2_chunk.c: the batch_begin/batch_end ops (see img.h) */
int qcow2_batch_begin(struct img *img, struct img_err *e);
int qcow2_batch_end(struct img *img, struct img_err *e);

/* qcow2_create.c */
int qcow2_create(const char *path, const struct img_create_opts *o,
		 struct img_err *e);

/* qcow2_info.c: snapshots, bitmaps, encryption header and data file for
 * get_info (loaded on first use, freed with the state) */
int qcow2_info_fill(struct img *img, struct img_info *o, struct img_err *e);
void qcow2_info_free(struct qcow2_state *s);

/* qcow2_check.c */
int qcow2_check(struct img *img, struct img_check *out, struct img_err *e);


/* ==== Write side, create, check, backing rewrite.  Internal to the
 * driver.
 *
 * WRITE CONTRACT (qcow2_pwrite / qcow2_write_zeroes):
 *  - [off, off+len) must lie inside the virtual size; grow first.
 *  - Refcounts are eager.  New clusters are appended at the end of the file
 *    (its length rounded up to a cluster); freed clusters are not reused.
 *    Order inside one call: data, refcount blocks, new L2 table, fdatasync,
 *    then the L2 entries / L1 entry that point at them.  Replaced clusters
 *    are decremented after the NEXT fdatasync (of a later call or of
 *    qcow2_flush), when their unlinking is durable.  A crash leaks, never
 *    corrupts.  Data written in place (COPIED clusters) is durable only
 *    after qcow2_flush().  Larger calls mean fewer fdatasyncs (one per L2
 *    table touched per call that allocates; zero-flag updates need none):
 *    callers should write >= 1 MiB at once.
 *  - Write batch (img.h, qcow2_chunk.c): between img_batch_begin and
 *    img_batch_end the same order holds per batch instead of per call:
 *    every call's data and new clusters' refcounts are written at once,
 *    its entries wait in the pending chunk of their L2 table, and one
 *    commit (batch end, QCOW2_BATCH_MEM reached, grow, make_empty, flush,
 *    or a partial edge that needs the read path) writes new tables and
 *    refcount blocks, syncs ONCE, then writes all entries.  pread and
 *    block_status of the same handle see only committed entries.
 *  - A cluster (extended L2: subcluster) that the write covers only
 *    partially keeps THIS layer's current content for the rest: its data,
 *    or zeros where it is a zero cluster, or zeros where it is unallocated
 *    and the image has NO backing file.  If the image HAS a backing file
 *    and that cluster (subcluster) is unallocated here, the rest would have
 *    to come from the backing chain, which the driver does not see: the
 *    call fails with -EINVAL before writing anything (only the first and
 *    last cluster of a call can be partial; both are checked first).  Bytes
 *    past the virtual size in the last cluster do not count (a write up to
 *    the virtual size covers the last cluster fully).  The commit engine
 *    therefore writes whole clusters (or the fully merged view).
 *  - write_zeroes: v3 stores zero flags (standard entry 1, extended L2 zero
 *    bits) and frees the old host cluster after the L2 update; v2 without a
 *    backing file unallocates; v2 with a backing file writes literal zeros.
 *    Partial clusters at the edges are written as literal zeros (same
 *    partial-cluster rule as pwrite) unless they already read as zeros here
 *    and hide the backing file.
 *  - grow rounds the new size up to 512 bytes (QEMU keeps sectors) and
 *    never shrinks; a larger L1 is written to new clusters and switched in
 *    with one 12-byte header write of l1_size and l1_table_offset.
 *  - backing_header returns a whole cluster 0 (cluster_size bytes) with
 *    *len = cluster_size; callers may write only the changed sectors.
 *  - Unknown autoclear bits are cleared (and synced) before the first write.
 *  - s->write_refusal set, or an image not opened IMG_O_RDWR: -EROFS with
 *    the reason.
 *  - qcow2_alloc_free() (called by close) first flushes like qcow2_flush
 *    when something was written since the last flush, as QEMU flushes at
 *    close (errors there are not reported and can only leak clusters:
 *    callers that care call flush themselves), then frees s->alloc;
 *    s->reft is freed by the close path in qcow2.c.
 */

#define QCOW2_RB_CACHE 8
#define QCOW2_WL2_CACHE 4

struct qcow2_rb_slot {
	uint64_t off;               /* 0: free slot */
	uint8_t *buf;               /* one refcount block, owned */
	uint32_t dlo, dhi;          /* dirty byte range, dlo == dhi: clean */
	uint64_t used;
};

struct qcow2_wl2_slot {
	uint64_t off;               /* 0: free slot */
	uint8_t *buf;               /* one L2 table, big-endian, owned */
	uint64_t used;
};

struct qcow2_alloc {
	uint64_t next_free;         /* byte offset of the next new cluster */
	uint64_t tick;
	bool prepared;              /* autoclear bits handled */
	bool staging;               /* refcount table being relocated */
	struct qcow2_rb_slot rb[QCOW2_RB_CACHE];
	struct qcow2_wl2_slot l2[QCOW2_WL2_CACHE];
	/* Entries (or old L2 tables as plain entries) already unlinked
	 * whose clusters are released after the next fdatasync: the
	 * unlink must be durable first, and waiting for the next sync
	 * saves one per call.  Never reused meanwhile (append-only). */
	uint64_t *pend;
	size_t npend, cap_pend;
	struct img *img;            /* for the flush at close */
	bool broken;                /* a release failed half-way: no more */
	bool unflushed;             /* written since the last qcow2_flush */
	/* Write batch (img.h): chunks whose L2/L1 updates wait for
	 * the batch's commit, one per L2 table, owned. */
	bool batch_on;
	struct qcow2_chunk **bch;
	size_t nbch, cap_bch;
	size_t bmem;                /* bytes held by the pending chunks */
	uint64_t wb_bytes;          /* data written since the last hint */
};

/* Pending chunks of a batch hold at most this much (working copies of L2
 * tables and their release lists); one more commits the batch first. */
#define QCOW2_BATCH_MEM (6u << 20)
/* In a batch, start the kernel's writeback after this much data, so the
 * disk works while we copy and the batch's one fdatasync has less left. */
#define QCOW2_WB_KICK (16u << 20)

/* Where the bytes of a data write come from: memory, or a range of
 * another file (pwrite_file), moved by io_copy_range. */
struct qcow2_src {
	const uint8_t *buf;        /* memory (when fd < 0) */
	int fd;                    /* else: this file ... */
	uint64_t off;              /* ... from this offset */
	struct io_copy_ctx *ctx;
};

/* Coalesces writes that are contiguous both in the file and in their
 * source (memory, or the other file). */
struct qcow2_wq {
	uint64_t host;
	struct qcow2_src src;
	uint64_t len;
};

/* The part of a write inside one L2 table ("chunk"): a working copy of the
 * table is edited, new clusters are appended and written; qcow2_chunks_
 * commit() then counts them, syncs, and links the changed entries. */
struct qcow2_chunk {
	uint64_t l1i;
	uint64_t l2off;            /* current table, 0 if none */
	uint8_t *tbl;              /* working copy, owned */
	uint8_t *orig;             /* the table as it was, owned */
	bool new_table;            /* needs a new (or COW) table */
	bool changed;              /* some entry differs */
	uint64_t lo, hi;           /* changed entries [lo, hi) */
	bool need_sync;            /* new data/clusters behind changed entries */
	bool eager_rc;             /* batch: new clusters counted at once */
	uint64_t first_new, n_new; /* newly appended data clusters (not eager) */
	uint64_t *frees;           /* entries whose clusters to release, owned */
	size_t nfrees, cap_frees;
	uint64_t old_l2;           /* shared table to release after COW */
	struct qcow2_wq q;
};

/* qcow2_backing.c: lay out cluster 0 from byte hdr_len on: the backing
 * format extension (fmt non-NULL), then keep[0..nkeep) verbatim (padded to
 * 8), the end marker, then the name.  buf has cs bytes; everything from
 * hdr_len on is overwritten (zeros after the name).  *name_off is the
 * offset of the name (0 when name is NULL).  -ENOSPC when it does not fit. */
int qcow2_layout_cluster0(uint8_t *buf, uint32_t cs, uint32_t hdr_len,
			  const char *fmt, const struct qcow2_ext *keep,
			  int nkeep, const char *name, uint32_t *name_off);

/* qcow2_chunk.c: write queue, chunk commit and write batches. */
int qcow2_wq_flush(struct img *img, struct qcow2_wq *q, struct img_err *e);
/* stable: src's memory stays valid until the next flush (else written at
 * once; a file source is always stable). */
int qcow2_wq_add(struct img *img, struct qcow2_wq *q, uint64_t host,
		 const struct qcow2_src *src, uint64_t len, bool stable,
		 struct img_err *e);
/* A chunk for L2 index l1i with its working table loaded (owned by the
 * caller; qcow2_chunk_free). */
int qcow2_chunk_new(struct img *img, uint64_t l1i, struct qcow2_chunk **out,
		    struct img_err *e);
void qcow2_chunk_free(struct qcow2_chunk *c);
/* Commit n chunks (their queues flushed): count new clusters and write
 * new tables, write refcounts, ONE fdatasync if any chunk needs it (then
 * release what earlier commits unlinked), then link every changed entry
 * and queue the replaced clusters for release after the next sync.  A
 * failure leaves only leaks.  The chunks stay owned by the caller. */
int qcow2_chunks_commit(struct img *img, struct qcow2_chunk **v, size_t n,
			struct img_err *e);
/* The pending chunk for l1i in an open batch, or NULL. */
struct qcow2_chunk *qcow2_batch_find(struct qcow2_alloc *a, uint64_t l1i);
/* Take ownership of c as pending; commits the batch first when it would
 * exceed QCOW2_BATCH_MEM (c is then linked with the next commit). */
int qcow2_batch_add(struct img *img, struct qcow2_chunk *c,
		    struct img_err *e);
/* Commit and free every pending chunk; the batch stays open.  No-op
 * without pending chunks.  On failure the pending chunks are dropped
 * (their clusters leak). */
int qcow2_batch_commit(struct img *img, struct img_err *e);
/* Drop every pending chunk without linking (after a failed write). */
void qcow2_batch_drop(struct qcow2_alloc *a);
/* Count n bytes of data written in a batch; past QCOW2_WB_KICK, ask the
 * kernel to start writing the file back (no wait, no durability). */
void qcow2_batch_written(struct img *img, uint64_t n);

/* qcow2_alloc.c: the write path's L2 table cache.  The pointer returned
 * by qcow2_wl2_load stays valid until the next load; forget drops a table
 * from it and from the read path's cache (s->l2_cache). */
int qcow2_wl2_load(struct img *img, uint64_t off, uint8_t **out,
		   struct img_err *e);
void qcow2_wl2_forget(struct qcow2_state *s, uint64_t off);

/* qcow2_refcount.c */
uint64_t qcow2_rc_entry_get(const uint8_t *blk, int bits, uint64_t i);
void qcow2_rc_entry_put(uint8_t *blk, int bits, uint64_t i, uint64_t v);
/* Set up s->alloc and s->reft for writing; refuses read-only or refused
 * images; clears unknown autoclear bits (once).  Idempotent. */
int qcow2_write_begin(struct img *img, struct img_err *e);
int qcow2_rc_get(struct img *img, uint64_t cluster, uint64_t *rc,
		 struct img_err *e);
/* Add delta (+1 / -1) to the refcount of n clusters from cluster c.
 * expect_free: each must be 0 before (a new allocation). */
int qcow2_rc_add(struct img *img, uint64_t c, uint64_t n, int delta,
		 bool expect_free, struct img_err *e);
/* Write dirty refcount blocks (no sync). */
int qcow2_rc_writeback(struct img *img, struct img_err *e);
/* Reserve n clusters at the end of the file (no refcount yet). */
uint64_t qcow2_reserve(struct img *img, uint64_t n);
/* A pointer update (L1/L2/refcount-table entries, header fields): write
 * nw; if that fails (possibly torn), try to put the old bytes back so the
 * failed update leaves the old, consistent pointer. */
int qcow2_meta_write(struct img *img, uint64_t off, const void *nw,
		     const void *old, size_t n, const char *what,
		     struct img_err *e);
/* Write header bytes [off, off+n) and keep s->header_cluster in step. */
int qcow2_hdr_write(struct img *img, uint32_t off, const void *p, size_t n,
		    struct img_err *e);
int qcow2_sync(struct img *img, struct img_err *e);
/* Deferred releases: queue an unlinked entry; release all queued entries
 * (call right after an fdatasync that made the unlinks durable). */
#define QCOW2_PEND_MAX 65536
int qcow2_pend_add(struct img *img, uint64_t entry, struct img_err *e);
int qcow2_apply_pending(struct img *img, struct img_err *e);
/* Release what a (non-zero) L2 entry references: decrement the host
 * cluster, or every cluster a compressed entry touches. */
int qcow2_release_entry(struct img *img, uint64_t entry, struct img_err *e);

#endif
