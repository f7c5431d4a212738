/* copy.h - the commit's copy phase: top's view of everything allocated
 * above base, written into base.
 *
 * Only extents allocated in top or an intermediate are visited (block status,
 * never every cluster).  Writes cover whole base clusters (the qcow2 write
 * contract in formats/qcow2/qcow2_int.h): parts of a cluster not allocated
 * above base are filled from the merged view of the chain, read BEFORE that
 * cluster is written (the qcow2 driver appends new clusters and never
 * reuses freed ones, so the read-only chain still reads base's old
 * contents for clusters not yet written).  Extents that read as zeros
 * above base become write_zeroes (zero clusters on v3, literal zeros on v2
 * with a backing file, holes on raw).  Memory: two window buffers of
 * COPY_WINDOW bytes (or one base cluster if larger), whatever the size.
 * A reader thread fills one window while the caller's thread writes the
 * other (copy.c says why that is safe); all writes, progress callbacks and
 * the cancel check stay on the caller's thread.  Writes into base go in
 * one write batch (img_batch_begin, formats/img.h): one fdatasync links
 * them all.
 */
#ifndef IMGRAPH_COPY_H
#define IMGRAPH_COPY_H

#include <signal.h>
#include <stdint.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"
#include "progress.h"

#define COPY_WINDOW (8u << 20)

struct copy_opts {
	uint64_t rate;                   /* bytes/s, 0 = unlimited */
	const struct progress *progress; /* phase "copy" */
	volatile sig_atomic_t *cancel;   /* nonzero: stop at a window edge */
	/* Base must show top's view up to this size, zeros past top's end
	 * included (a parent larger than top reads zeros there today and
	 * reads base after the relink).  0 or <= top's size: top's size. */
	uint64_t view_size;
};

struct copy_stats {
	uint64_t bytes_above;      /* allocated above base (the total) */
	uint64_t bytes_written;    /* data bytes written into base */
	uint64_t bytes_zeroed;     /* bytes made zero in base */
};

/* c: the whole chain opened from top (layer 0) with base at layer nabove
 * (1 <= nabove < c->n); base: base opened IMG_O_RDWR on its own.  Grows
 * base to top's size first.  Does not flush base (the caller does).
 * -ECANCELED when cancelled (every image valid; base has some of top's
 * data that nobody reads through base yet). */
int copy_run(struct chain *c, int nabove, struct img *base,
	     const struct copy_opts *o, struct copy_stats *st,
	     struct img_err *e);

/* Bytes allocated above base (for plans and progress totals). */
int copy_measure(struct chain *c, int nabove, uint64_t *bytes,
		 struct img_err *e);

#endif
