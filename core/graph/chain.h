/* chain.h - a backing chain opened for reading the guest view.
 *
 * chain_open() opens top and follows backing references down to the bottom
 * (or to stop_at, exclusive) using the same resolution and safety rules as the
 * pool scan (resolve.h): protocol/json names are refused, a format is believed
 * when recorded, a probed non-raw image's own backing reference is never
 * followed, loops (dev:ino) and depth > CHAIN_MAX_DEPTH are errors.
 *
 * Ownership: chain_open returns an owned struct chain freed by chain_close();
 * the struct img pointers inside belong to the chain.
 */
#ifndef IMGRAPH_CHAIN_H
#define IMGRAPH_CHAIN_H

#include <sys/types.h>

#include "formats/format.h"

#define CHAIN_MAX_DEPTH 256

/* A format the administrator states for an image (--format FILE=FMT,
 * QEMU's -f): believed for a link that records no format where the probe
 * agrees; never over a recorded one (plan_check.c compares them). */
struct fmt_stated {
	char *path;
	char *fmt;
	dev_t dev;                 /* 0/0: the file cannot be stat'ed */
	ino_t ino;
};

/* The format stated for the file dev:ino, or NULL: the last statement for
 * a file wins, as with repeated options.  The one lookup the scan and the
 * chain share. */
const char *fmt_stated_for(const struct fmt_stated *st, int nst, dev_t dev,
			   ino_t ino);

struct chain {
	int n;                     /* layers; layer[0] is top */
	struct img **layer;
	bool *probed;              /* per layer: format was probed */
};

/* fmt: format of top (NULL = probe).  flags apply to top only (lower layers
 * are opened read-only).  stop_dev/stop_ino: stop before the layer with this
 * identity (pass 0/0 to open the whole chain). */
int chain_open(const char *top_path, const char *fmt, int top_flags,
	       dev_t stop_dev, ino_t stop_ino, struct chain **out,
	       struct img_err *e);
/* chain_open, where a layer reached without a recorded format whose
 * identity and probed format match a statement (st[i].dev/ino/fmt) counts
 * as not probed: its backing reference is followed, as the scan follows
 * a GN_STATED node's. */
int chain_open_stated(const char *top_path, const char *fmt, int top_flags,
		      dev_t stop_dev, ino_t stop_ino,
		      const struct fmt_stated *st, int nst, struct chain **out,
		      struct img_err *e);
void chain_close(struct chain *c);
/* The same layers opened again from their file descriptors (dup'd: the
 * same files whatever happened to the names since), read-only, with the
 * same formats: a handle for another thread, as the drivers' caches are
 * not shared between threads. */
int chain_dup(const struct chain *c, struct chain **out, struct img_err *e);

/* Status of [off, off+len) seen through layers [from, c->n): which layer
 * serves it (*depth, relative to from; == c->n - from when no layer has it),
 * and its state.  *pnum > 0.  Beyond a layer's virtual size it reads as zero. */
struct chain_status {
	int depth;
	enum img_bs bs;            /* DATA or ZERO at depth, UNALLOC if nowhere */
};
int chain_block_status(struct chain *c, int from, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct chain_status *st,
		       struct img_err *e);

/* Guest view of layer `from` (reads fall through to lower layers). */
int chain_pread(struct chain *c, int from, uint64_t off, void *buf,
		size_t len, struct img_err *e);

#endif
