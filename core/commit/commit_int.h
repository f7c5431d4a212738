/* commit_int.h - pieces of the commit engine shared by commit.c and
 * commit_check.c (not a public API). */
#ifndef IMGRAPH_COMMIT_INT_H
#define IMGRAPH_COMMIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/graph/chain.h"
#include "commit.h"
#include "lock_hold.h"

/* One file the commit holds for its whole run, locked as its role says
 * (core/plan/policy.h). */
struct commit_file {
	int node;                  /* graph node id */
	struct lock_hold lock;
};

/* Absolute path of path (realpath of the directory + last component, so a
 * symlink named by the user stays that name) into out. */
int commit_abs_path(const char *path, char *out, size_t outlen,
		    struct img_err *e);

/* Rescan the whole pool (plan_scan: the pool paths the plan's graph was
 * scanned from) and rebuild the plan for the same top/base: refuses when
 * the fresh plan has conflicts or a different set of parents,
 * intermediates or leaf handling. */
int commit_revalidate(const struct graph *g, const struct plan *p,
		      struct img_err *e);

/* After the locks: the opened chain must be top, the intermediates, base
 * (by dev:ino), and each layer's header must still name what the graph
 * read.  Returns the layer index of base in *nabove. */
int commit_check_chain(const struct graph *g, const struct plan *p,
		       struct chain *c, int *nabove, struct img_err *e);

/* commit_marks.c: the stale record of this commit (stale.h): PENDING
 * before base is first written, DONE once every parent names base.  Both
 * do nothing when the commit leaves nothing stale or unused. */
int commit_stale_begin(const struct graph *g, const struct plan *p,
		       uint64_t txid, struct img_err *e);
int commit_stale_done(const struct graph *g, const struct plan *p,
		      uint64_t txid, struct img_err *e);

/* commit_delete.c: --delete.  What the plan lists to move is checked
 * again on a fresh scan of the pool (by dev:ino: anything still reading
 * a file keeps it) and moved into the trash (trash.h), which re-checks
 * each file just before it moves.  Fills res->trash and res->deleted. */
int commit_delete_files(const struct graph *g, const struct plan *p,
			uint64_t txid, struct commit_result *res,
			struct img_err *e);

#endif
