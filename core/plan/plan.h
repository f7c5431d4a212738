/* plan.h - the commit plan: the one object both front ends show.
 *
 * plan_build looks at the graph and answers, before anything is written:
 * what is copied, which parents of top are relinked (old -> new backing
 * string and format), and every conflict.  A plan with conflicts is never
 * executed.  Ownership: plan_build returns an owned plan freed by plan_free.
 */
#ifndef IMGRAPH_PLAN_H
#define IMGRAPH_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/graph/graph.h"

enum conflict_kind {
	CONFLICT_PERMISSION,       /* QEMU permission conflict */
	CONFLICT_LOCK,             /* live OFD lock holder */
	CONFLICT_RELINK,           /* a parent cannot be relinked */
	CONFLICT_IMAGE_STATE,      /* corrupt, dirty, encrypted, snapshots... */
	CONFLICT_SPACE,            /* not enough free space */
	CONFLICT_INVALID_PAIR,     /* top == base, base not below top ... */
	CONFLICT_FORMAT,           /* unrecorded/probed format on the path */
};

struct plan_conflict {
	enum conflict_kind kind;
	int node;                  /* node id concerned, or -1 */
	char *parties;             /* who is involved, human text */
	uint8_t perms;             /* permission bits concerned (or 0) */
	char *message;             /* QEMU wording where one exists */
	char *why;                 /* one line, plain language */
	char *hint;                /* one line: how to fix */
};

struct plan_parent {
	int node;                  /* overlay node id, or -1 for a user */
	int user;                  /* index in graph->users, or -1 */
	char *path;                /* file whose header is rewritten */
	char *old_name, *old_fmt;  /* current backing string and format */
	char *new_name, *new_fmt;  /* after the relink */
	bool relative;
	bool feasible;
};

struct plan_opts {
	bool drop_top;             /* leaf top: drop it instead of relinking */
	bool skip_bytes;           /* do not open the chain to count bytes
				      (bytes_to_copy = file-size bound) */
};

struct plan {
	int top, base;
	int *inter;                /* intermediates, top-down, excluding both */
	int ninter;
	struct plan_parent *parents;
	int nparents;
	struct plan_conflict *conflicts;
	int nconflicts;
	bool top_is_leaf;          /* top has no parents (kept + emptied) */
	uint64_t bytes_to_copy;    /* allocated above base */
	uint64_t base_old_size, base_new_size;
	uint64_t free_space;       /* on base's file system */
	bool bytes_exact;          /* bytes_to_copy from block status (else
				      an upper bound from file sizes) */
	bool drop_top;             /* leaf top dropped (plan_opts.drop_top) */
	bool base_grows;           /* base_new_size > base_old_size */
	/* Bytes base's file system must have free: the copied ranges on
	 * base's cluster grid plus the metadata they may need (an upper
	 * bound; compared with free_space). */
	uint64_t space_needed;
	/* How each layer above base (top, then inter[] in order) moves its
	 * data into base, the method tried first (enum io_copy_how of
	 * formats/io/io.h, from copy_predict); -1 unknown (bytes not
	 * counted).  Per run a copy may still fall back (compressed data).
	 * ninter + 1 entries, owned. */
	int *copy_how;
};

/* True when the plan may run (no conflicts and a valid pair). */
bool plan_runnable(const struct plan *p);

/* base = -1: top's immediate backing file (as qemu-img commit).  top = -1
 * (not in the pool) gives a plan whose only conflict says so; so does a
 * base >= g->n (a file that exists but is not in the pool).  Returns
 * -errno (e filled with the cause) only for failures of our own: out of
 * memory, or the scan of /proc for processes that have an image open;
 * every problem of the images is a conflict in the plan.  Nothing is
 * written; images are opened read-only to count bytes and to test-fit new
 * headers. */
int plan_build(struct graph *g, int top, int base, const struct plan_opts *o,
	       struct plan **out, struct img_err *e);
void plan_free(struct plan *p);
const char *conflict_kind_name(enum conflict_kind k);

#endif
