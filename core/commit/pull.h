/* pull.h - the pull's copy: flatten a chain the other way, as `virsh
 * blockpull` and a safe `qemu-img rebase` do.  The data of the images
 * between top and base is written into top, only where top allocates
 * nothing; afterwards top reads the same bytes without them and its header
 * can name base (the relink, commit.c).  base is never written.
 *
 * What is written (one rule, for the plan's count and for the copy): the
 * ranges of top's allocation unit (a cluster; a subcluster with extended
 * L2) that top does not allocate and where a layer between top and base
 * serves at least one byte: its data, or its zeros (zero clusters, or past
 * its end when it is shorter than what lies below) where base does not
 * read as zeros too.  Such a unit gets top's current
 * view of the whole unit (bytes that come from base included), read
 * through top's backing file: data as data, a unit that reads as zeros as
 * write_zeroes (a zero cluster on qcow2 v3, literal zeros on v2).  A unit
 * top allocates (data, zero or compressed clusters, allocated
 * subclusters) is never touched.
 *
 * Crash safety: every write puts into top the bytes top already shows
 * there, so a crash at any instant leaves its view (and that of everything
 * above it) unchanged; new clusters are appended (the qcow2 write contract,
 * formats/qcow2/qcow2_int.h), so the chain's read handles never see freed
 * clusters.  The caller flushes top before the relink journal.
 */
#ifndef IMGRAPH_PULL_H
#define IMGRAPH_PULL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/graph/chain.h"
#include "formats/io/err.h"
#include "progress.h"

/* A range [off, off + len) of top that the pull writes. */
typedef int (*pull_range_fn)(void *opaque, uint64_t off, uint64_t len,
			     struct img_err *e);

/* c: the chain opened from top (layer 0) with base at layer nabove
 * (1 <= nabove <= c->n; == c->n: the chain cut above base, where zeros
 * between top and base count whatever base reads there); unit: top's
 * allocation unit.  Calls fn for each
 * range the pull writes, in increasing order, merged where they touch.
 * Returns 0, fn's error, or a block-status error. */
int pull_ranges(struct chain *c, int nabove, uint64_t unit, pull_range_fn fn,
		void *opaque, struct img_err *e);

/* Top's allocation unit: its cluster, or a subcluster on extended L2
 * (4096 for a format without clusters). */
uint64_t pull_unit(uint64_t cluster_size, bool extended_l2);

struct pull_opts {
	uint64_t rate;                   /* bytes/s, 0 = unlimited */
	const struct progress *progress; /* phase "copy" */
	volatile sig_atomic_t *cancel;   /* nonzero: stop at a window edge */
};

struct pull_stats {
	uint64_t bytes_total;      /* what pull_ranges covers */
	uint64_t bytes_written;    /* data written into top */
	uint64_t bytes_zeroed;     /* units made zero in top */
};

/* Pull into top, opened IMG_O_RDWR on its own (c's layer 0 is a
 * read-only handle on the same file).  Does not flush top (the caller
 * does).  -ECANCELED when cancelled; any failure leaves top's view
 * unchanged. */
int pull_run(struct chain *c, int nabove, struct img *top,
	     const struct pull_opts *o, struct pull_stats *st,
	     struct img_err *e);

/* Pulls onto one base exclude each other: all of them hold base shared
 * (only read), and all of them would write its one relink journal
 * (journal.h).  An flock on base's directory, taken before the journal
 * check and held until the end: *fd >= 0 holds it.  -EBUSY (e says so)
 * while another pull onto base runs. */
int pull_tx_lock(const char *base_path, int *fd, struct img_err *e);
void pull_tx_unlock(int *fd);

#endif
