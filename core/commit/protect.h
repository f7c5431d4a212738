/* protect.h - --protect at run time: before each window of the copy
 * reaches base, the OLD view of that window (what the reader's backing
 * file, base or an intermediate, shows there) goes into every protected
 * reader where it does not allocate it, and each reader written is
 * flushed (fdatasync) first.  core/plan/plan_protect.h has the plan's half.
 *
 * Why a crash at any instant keeps every view: what is written into a
 * reader is exactly what it reads there already (base's old view), so
 * the reader shows the same bytes whether the write landed or not; base's
 * range changes only after the reader holds those bytes durably.
 *
 * Why nothing is redone and nothing needs redoing: the journal of the
 * protection is the prot line of the commit's PENDING transaction in the
 * stale record beside base (stale.h; the relink journal does not exist
 * before the relink, and the stale transaction is already what a retry of
 * the same commit is keyed on).  Every PROTECT_RECORD bytes of base, once
 * every reader written is flushed, the record says "every reader listed
 * holds what the copy writes below DONE", durably (io_replace); a failing
 * window records what was whole before it.  A rerun of the same commit
 * (same top and base) reads it: below DONE a listed reader is not
 * protected again, only verified, by block status (no data read, nothing
 * written), that it allocates what the copy writes.  Verification is
 * needed because the record is not enough on its own: top (read by its
 * parents) may have been written since, so the rerun may write a range
 * the crashed run never touched.  A gap is protected from what the reader
 * reads now, which is safe for the same reason as any protection; a reader
 * not listed starts from 0.  recover reports the record (nothing to
 * finish: every view is intact at every instant).
 *
 * Fewer flushes: one per reader per PROTECT_AHEAD of base, not one per
 * window, and the writes of one call linked behind one fdatasync (a write
 * batch, formats/img.h) instead of one per allocating write.  When a window reaches past what is protected, the ranges the
 * copy will write in the next PROTECT_AHEAD bytes (allocated above base,
 * on base's grid: top's chain, block status only) are protected at once;
 * every window's own runs are still checked against each reader's
 * allocation (block status) before base changes, so what the look-ahead
 * missed is protected then, and a reader is flushed before its window
 * goes into base whenever something was written into it.
 *
 * Readers' content per unit (a cluster, or a subcluster with extended
 * L2, where the reader allocates nothing): base's data as data; where base
 * reads as zeros (or past its end) a zero write (zero clusters on qcow2
 * v3, literal zeros on v2); compressed clusters of the reader are
 * allocated, so never touched.
 */
#ifndef IMGRAPH_PROTECT_H
#define IMGRAPH_PROTECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"

#define PROTECT_AHEAD (64u << 20)
/* A batch ends after this many bytes: a write that fails (ENOSPC) loses
 * at most these (their clusters leak until qemu-img check -r leaks; the
 * rerun writes them again). */
#define PROTECT_BATCH (8u << 20)
/* The journal's prot line moves on at most once per this many bytes of
 * base (a durable replace each time: a few fsyncs). */
#define PROTECT_RECORD (16u << 20)

/* What the copy writes into base: top's chain down to base (excluded),
 * for the look-ahead; path NULL: no look-ahead. */
struct protect_src {
	const char *top_path, *top_fmt;
	dev_t base_dev;
	ino_t base_ino;
	uint64_t base_cluster;     /* base's write unit (4096 for raw) */
};

/* A reader to protect, opened read-write from fd (the commit's locked
 * descriptor; dup'd), and its backing file (base or an intermediate),
 * whose chain is read for the reader's old view. */
struct protect_target {
	const char *path, *fmt;
	int fd;
	const char *backing_path, *backing_fmt;
	uint64_t done;             /* the journal says it holds what the copy
				      writes below this (a rerun): verify */
};

struct protect_child {
	struct img *img;
	struct chain *bc;          /* its backing chain, read-only: the old
				      view (opened before base changes) */
	uint64_t bsize;            /* its backing file's virtual size then */
	uint64_t grain;            /* write unit where nothing is allocated */
	uint64_t vsize;
	bool dirty;                /* written since its last flush */
	/* In a write batch (img_batch_begin): block status does not see the
	 * batch's writes, so nothing below bdone is looked at again until
	 * the batch ends (runs come in increasing order within a batch). */
	bool batch;
	uint64_t bdone;
	uint64_t bbytes;           /* written in this batch */
	uint64_t bytes_data, bytes_zero;
	uint64_t done;             /* protect_target.done */
	uint64_t bytes_gap;        /* written below done (gaps) */
};

struct protect_run {
	struct chain *above;       /* top's chain above base, or NULL */
	uint64_t cs;               /* base's write unit */
	uint64_t ahead;            /* look-ahead protected up to here */
	struct protect_child *c;
	int n;
	uint8_t *buf;
	size_t buflen;
	/* The journal: safe = every reader holds (flushed) what the copy
	 * writes below it; record(opaque, safe) makes that durable once it
	 * passes recorded + PROTECT_RECORD (and at protect_record). */
	uint64_t safe, recorded;
	int (*record)(void *opaque, uint64_t done, struct img_err *e);
	void *record_opaque;
};

/* Open every target and its backing chain (before base is grown or
 * written).  On failure protect_close closes what was opened. */
int protect_open(struct protect_run *pr, const struct protect_target *t,
		 int n, const struct protect_src *src, struct img_err *e);
/* The copy's hook (copy_opts.before_write): runs = nruns pairs [a, z) of
 * base about to be written, increasing.  Protects them in every target,
 * flushes each target written.  -errno (ENOSPC...) stops the copy before
 * base changes there. */
int protect_window(void *pr, const uint64_t *runs, size_t nruns,
		   struct img_err *e);
/* Record pr->safe if it moved since the last record (after the copy,
 * whatever its outcome). */
int protect_record(struct protect_run *pr, struct img_err *e);
/* Bytes written into the readers (data and zeros). */
uint64_t protect_bytes(const struct protect_run *pr);
/* Of those, written below a reader's journalled DONE: gaps the
 * verification found (0 unless top or the reader changed since). */
uint64_t protect_gap_bytes(const struct protect_run *pr);
void protect_close(struct protect_run *pr);

#endif
