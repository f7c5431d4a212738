/* commit.h - execute a plan: copy, flush, relink as one transaction.
 *
 * Refuses a plan with conflicts.  Re-validates the plan when starting and
 * again just before the relink (locks re-probed, headers re-read).
 */
#ifndef IMGRAPH_COMMIT_H
#define IMGRAPH_COMMIT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats/io/err.h"
#include "formats/io/io.h"
#include "core/graph/graph.h"
#include "core/plan/plan.h"
#include "progress.h"
#include "trash.h"

struct commit_opts {
	bool delete_files;         /* trash top+intermediates nothing uses */
	uint64_t rate;             /* bytes per second, 0 = unlimited */
	const struct progress *progress;
	volatile sig_atomic_t *cancel;   /* set nonzero to cancel */
	/* Asked after the copy, before the relink; return 1 to relink, 0 to
	 * stop (images stay valid, parents still on top).  NULL = yes. */
	int (*confirm_relink)(void *opaque, const struct graph *g,
			      const struct plan *p);
	void *confirm_opaque;
	/* enum copy_method (copy.h): 0 tries the best each file allows. */
	int copy_method;
};

struct commit_result {
	uint64_t bytes_copied;
	uint64_t bytes_how[IO_COPY_HOWS];  /* data by how it moved (io.h) */
	uint64_t bytes_protected;  /* --protect: written into base's other
				      readers (data and zeros) */
	uint64_t protect_resumed;  /* --protect: the journal of an earlier
				      run of this commit said every reader
				      listed was protected below this */
	uint64_t bytes_reprotected; /* of bytes_protected, below that: gaps
				      its verification found */
	int relinked;              /* parents rewritten */
	bool relink_declined;
	int deleted;               /* files --delete moved into the trash */
	/* --delete: each file the plan listed to move, moved or kept (and
	 * why); owned, freed by commit_result_free. */
	struct trash_report trash;
};

/* --delete moves what the plan lists (plan_opts.delete_files), after
 * checking each again: the plan must be built with it. */
int commit_execute(struct graph *g, const struct plan *p,
		   const struct commit_opts *o, struct commit_result *res,
		   struct img_err *e);
void commit_result_free(struct commit_result *res);

#endif
