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
 * Why nothing is redone and nothing needs redoing: the progress record is
 * the readers' own allocation, made durable before base moves on.  A
 * rerun (or the same commit after a crash) asks each reader's block status
 * again and writes only where it still reads base; a range of base that
 * already changed is allocated in every reader, so it is never read from
 * base again.  recover has nothing of protection to finish.
 *
 * Fewer flushes: one per reader per PROTECT_AHEAD of base, not one per
 * window.  When a window reaches past what is protected, the ranges the
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
};

struct protect_child {
	struct img *img;
	struct chain *bc;          /* its backing chain, read-only: the old
				      view (opened before base changes) */
	uint64_t bsize;            /* its backing file's virtual size then */
	uint64_t grain;            /* write unit where nothing is allocated */
	uint64_t vsize;
	bool dirty;                /* written since its last flush */
	uint64_t bytes_data, bytes_zero;
};

struct protect_run {
	struct chain *above;       /* top's chain above base, or NULL */
	uint64_t cs;               /* base's write unit */
	uint64_t ahead;            /* look-ahead protected up to here */
	struct protect_child *c;
	int n;
	uint8_t *buf;
	size_t buflen;
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
/* Bytes written into the readers (data and zeros). */
uint64_t protect_bytes(const struct protect_run *pr);
void protect_close(struct protect_run *pr);

#endif
