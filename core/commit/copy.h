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
 * with a backing file, holes on raw).
 *
 * How the bytes move (per run of whole base clusters whose data one layer
 * holds contiguously in its own file): base writes them straight from
 * that file (img_pwrite_file), sharing the extents where the file system
 * can (clone), else copy_file_range, else read and write; a qcow2 base
 * allocates such a run as one contiguous run, so one clone covers it.
 * Compressed data, merged clusters, other file systems: read into a
 * window and written.  copy_predict says what a layer will use first.
 *
 * Threads: up to COPY_MAX_READERS readers (one per core), each with its
 * own handles on the chain (chain_dup), find, classify and read windows
 * (decompressing on as many cores) while the caller's thread writes them
 * into base in order; copy.c says why that is safe.  All writes, progress
 * callbacks and the cancel check stay on the caller's thread.  Writes into
 * base go in one write batch (img_batch_begin, formats/img.h): one
 * fdatasync links them all.
 *
 * Memory: one window of COPY_WINDOW bytes (or one base cluster if larger)
 * per reader plus one, touched only where data is read rather than moved
 * from file to file; nothing grows with the virtual size.
 */
#ifndef IMGRAPH_COPY_H
#define IMGRAPH_COPY_H

#include <signal.h>
#include <stdint.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"
#include "formats/io/io.h"
#include "progress.h"

#define COPY_WINDOW (4u << 20)
#define COPY_MAX_READERS 4

/* copy_opts.method: what to try first. */
enum copy_method {
	COPY_AUTO = 0,             /* what copy_predict says, per layer */
	COPY_CLONE,                /* then fall back as io_copy_range does */
	COPY_CFR,
	COPY_RW,                   /* every byte read and written: the plain
				      path */
};

struct copy_opts {
	uint64_t rate;                   /* bytes/s, 0 = unlimited */
	const struct progress *progress; /* phase "copy" */
	volatile sig_atomic_t *cancel;   /* nonzero: stop at a window edge */
	/* Base must show top's view up to this size, zeros past top's end
	 * included (a parent larger than top reads zeros there today and
	 * reads base after the relink).  0 or <= top's size: top's size. */
	uint64_t view_size;
	enum copy_method method;
	/* Called on the caller's thread before each window's writes reach
	 * base, with the runs of base it is about to write (nruns pairs
	 * [a, z), whole base clusters, increasing across calls); < 0 (e
	 * filled) stops the copy before base changes there.  --protect's
	 * protect_window (protect.h).  NULL: none. */
	int (*before_write)(void *opaque, const uint64_t *runs, size_t nruns,
			    struct img_err *e);
	void *before_opaque;
};

struct copy_stats {
	uint64_t bytes_above;      /* allocated above base (the total) */
	uint64_t bytes_written;    /* data bytes written into base */
	uint64_t bytes_zeroed;     /* bytes made zero in base */
	/* bytes_written by how they moved (enum io_copy_how) */
	uint64_t bytes_how[IO_COPY_HOWS];
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

/* The method the copy tries first for data of layer (above base) written
 * into base (enum io_copy_how): io_copy_predict of their files, aligned
 * to both images' clusters; IO_COPY_RW when base's driver cannot write
 * from a file.  Per run the copy may still fall back (compressed data,
 * an unaligned run).  Reads nothing but file-system facts. */
int copy_predict(struct img *layer, struct img *base);

/* "clone", "copy_file_range", "read/write" (enum io_copy_how); for a set
 * of them (bit 1 << how) the names joined by '+'. */
const char *copy_method_name(int how);
const char *copy_methods_name(unsigned mask);

#endif
