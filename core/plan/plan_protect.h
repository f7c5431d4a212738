/* plan_protect.h - protecting base's other readers (--protect).
 *
 * A commit writes top's view into base, so every other image that reads
 * base changes.  Those readers all read base through one of base's direct
 * children that are not on the commit path: the protection set.  A child
 * of an intermediate off the path reads base through the intermediate,
 * whose view changes too: it is protected the same way (the intermediate
 * then stays in the pool, read by it, and --delete leaves it in place and
 * says so).  Before base's bytes in a range change, each protected child
 * gets its OLD view of that range (its backing file's) written into
 * itself where it does not allocate the range: afterwards it reads the
 * same bytes from its own layer, and writing them never changes what it
 * shows (so a crash at any instant leaves every view intact).
 * core/commit/protect.c does it; this is the plan's half: who is
 * protected, what it costs, what refuses it.
 *
 * The plan always works the set out when base has such children (the
 * refusal's hint names the cost); only plan_opts.protect makes the children
 * PLAN_ROLE_PROTECTED (policy.h), which removes their permission conflict
 * on base and adds the checks a written file needs: a format we can write,
 * a writable file system, free space, no live holder.
 */
#ifndef IMGRAPH_PLAN_PROTECT_H
#define IMGRAPH_PLAN_PROTECT_H

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"

/* One protected reader: a child of base or of an intermediate, off the
 * commit path. */
struct plan_reader {
	int node;
	/* Bytes of the ranges base is written in that it does not allocate
	 * (on its own allocation grid, inside its virtual size): what is
	 * copied into it.  An upper bound when not exact. */
	uint64_t bytes;
	uint64_t growth;           /* clusters it gains, as bytes */
	uint64_t space_needed;     /* growth plus the metadata it may need */
	uint64_t free_space;       /* on its file system (0: unknown) */
	bool exact;                /* from block status (else a bound) */
};

struct plan_protect {
	bool on;                   /* plan_opts.protect: the plan does it */
	struct plan_reader *r;
	int n;
	uint64_t bytes;            /* sum of r[].bytes */
	uint64_t growth;           /* sum of r[].growth */
	/* Number of readers that cannot be protected (a format we cannot
	 * write, a read-only file system, a state we do not write): with
	 * --protect each is a conflict; without, the refusal's hint does
	 * not offer --protect. */
	int unprotectable;
};

/* Sets p->protect (also when base has no other readers: n = 0).
 * Work out the protection set of p and its cost (reads only: block
 * status of the chain above base and of each child).  With o->protect the
 * children become protected and their checks add conflicts.  Runs before
 * the permission checks.  -ENOMEM only. */
int plan_protect_build(struct graph *g, struct plan *p,
		       const struct plan_opts *o);
/* After plan_check_space: with --protect, the space each file system must
 * have for the protected readers on it (and base, when it is there too)
 * against what it has free: a conflict when it does not fit. */
int plan_protect_check_space(struct graph *g, struct plan *p);
void plan_protect_free(struct plan_protect *pp);

/* True when node id is protected by p (p->protect->on and in the set). */
bool plan_protects(const struct plan *p, int id);
/* The reader record of node id in p's set, or NULL. */
const struct plan_reader *plan_protect_reader(const struct plan *p, int id);

/* The hint of the refusal of a sibling of base, when --protect would lift
 * it: "Run with --protect to copy N MiB into these K images first, ...".
 * buf gets the text; false (buf untouched) when --protect cannot help. */
bool plan_protect_hint(const struct plan *p, char *buf, size_t len);

#endif
