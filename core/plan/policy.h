/* policy.h - what a commit holds and shares on each file, by role: the one
 * table that the plan's conflict checks, the commit's locks, recover's
 * locks and the "why" texts all read (policy.c has the table and says
 * where it follows QEMU's commit job and where imgraph differs).
 */
#ifndef IMGRAPH_POLICY_H
#define IMGRAPH_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/graph/graph.h"
#include "core/graph/lock.h"
#include "plan.h"

enum plan_role {
	PLAN_ROLE_NONE,            /* the commit does not open it */
	PLAN_ROLE_BASE,            /* written, grown when top is larger */
	PLAN_ROLE_INTER,           /* read; its view changes */
	PLAN_ROLE_TOP,             /* read; leaves the chain */
	PLAN_ROLE_TOP_KEPT,        /* leaf top kept: relinked onto base and
				      emptied (PLAN_LEAF_KEEP) */
	PLAN_ROLE_PARENT,          /* overlay of top: its header is rewritten */
	PLAN_ROLE_USER_OF_TOP,     /* users-file entry of top: repointed */
	PLAN_ROLE_PROTECTED,       /* --protect: a child of base off the
				      path, given base's old data first
				      (plan_protect.h) */
	PLAN_ROLE_CREATE,          /* an existing file `imgraph create`
				      replaces */
	/* A pull (plan_pull.h): */
	PLAN_ROLE_PULL_TOP,        /* written where it allocates nothing (its
				      view unchanged), header rewritten */
	PLAN_ROLE_PULL_INTER,      /* read; unchanged */
	PLAN_ROLE_PULL_BASE,       /* read through top's chain; unchanged */
};

struct role_policy {
	enum plan_role role;
	const char *name;          /* "base", "intermediate", ... */
	const char *does;          /* what the commit does to the file, for
				      the "why" of a conflict */
	/* The commit job's edge on the node, for QEMU's rule against the
	 * node's other parents (offline overlays); edge NULL: none. */
	const char *edge;          /* QEMU's child name: "base", ... */
	uint8_t job_perm, job_shared;
	/* What imgraph locks on the file (QEMU's lock bytes) for the whole
	 * operation; lock false when it does not open the file. */
	bool lock;
	bool write;                /* opened read-write: its data or header
				      is written */
	uint8_t perm, shared;
};

/* The policy of role on a file of format fmt (NULL: unknown, taken as a
 * format with metadata) in a commit whose base grows when base_grows. */
void policy_of(enum plan_role role, const char *fmt, bool base_grows,
	       struct role_policy *out);

/* What the commit of p does to node id (PLAN_ROLE_NONE for -1). */
enum plan_role plan_role_of(const struct plan *p, int id);
/* plan_role_of and policy_of together, for node id of g. */
void plan_policy(const struct graph *g, const struct plan *p, int id,
		 struct role_policy *out);

/* Every file the commit of p opens and locks: node ids, each once, base
 * first.  *ids is malloc'd (caller frees).  -ENOMEM. */
int plan_files(const struct plan *p, int **ids, int *n);

/* Processes other than ours that have a file of plan_files(p) open
 * without holding QEMU's locks on it (locking=off, a program that is not
 * QEMU): the lock protocol cannot keep them out, so every one conflicts.
 * op[k].idx indexes *ids (plan_files' order).  *ids and *op are malloc'd
 * (caller frees).  -errno with e filled when /proc could not be read. */
int plan_openers(const struct graph *g, const struct plan *p, int **ids,
		 struct lock_opener **op, int *no, struct img_err *e);

/* A holder of another process (live locks, a users-file entry) that holds
 * hperm and shares hshared, against rp: *need = what rp takes that it does
 * not share, *refuse = what it holds that rp does not share.  True when
 * either is not empty (QEMU's lock test: lock_hold.c does the same on the
 * bytes). */
bool policy_conflicts(const struct role_policy *rp, uint8_t hperm,
		      uint8_t hshared, uint8_t *need, uint8_t *refuse);

#endif
