/* plan_int.h - the steps of plan_build (plan.c), shared with the checks
 * (plan_check.c) and the space estimate (plan_space.c).
 *
 * A step adds what it finds to the plan as conflicts; it fails (-errno)
 * only for failures of our own.  Those are out of memory unless the step
 * takes an img_err, which it then fills with the cause.
 */
#ifndef IMGRAPH_PLAN_INT_H
#define IMGRAPH_PLAN_INT_H

#include "plan.h"

int plan_add_conflict(struct plan *p, enum conflict_kind k, int node,
		      uint8_t perms, const char *parties, const char *message,
		      const char *why, const char *hint);

/* plan_check.c */
int plan_check_permissions(struct graph *g, struct plan *p);
int plan_check_locks(struct graph *g, struct plan *p, struct img_err *e);
int plan_check_states(struct graph *g, struct plan *p);
int plan_check_relinks(struct graph *g, struct plan *p);
int plan_check_limits(struct graph *g, struct plan *p);
/* plan_marks.c (what earlier transactions left: journals, stale images,
 * the trash) */
int plan_check_journals(struct graph *g, struct plan *p);  /* 1: stop */
int plan_check_stale(struct graph *g, struct plan *p);
int plan_list_trash(struct graph *g, struct plan *p);
/* An overlay left over by finished commits (stale or unused, and so is
 * everything above it, with no users): no view of it needs protecting. */
bool plan_reads_nothing(const struct graph *g, int n);
/* plan_foreign.c (what foreign formats and unreadable images add) */
int plan_keep_overrides(struct plan *p, const struct plan_opts *o);
int plan_check_raw_base(struct graph *g, struct plan *p);
int plan_check_unverified(struct graph *g, struct plan *p);
/* plan_space.c (bytes to copy; space needed on base's file system) */
int plan_count_bytes(struct graph *g, struct plan *p, bool skip);
/* The space estimate of a written image (target: base for a commit, top
 * for a pull): ranges in increasing order on its cluster grid, then the
 * bound on what its file system must have free. */
struct space_est {
	uint64_t cs, l2_span;
	uint64_t clusters, l2_tables, raw_bytes;
	uint64_t next_cluster, next_l2;   /* first index not yet counted */
	bool any;
};
void space_init(struct space_est *s, const struct gnode *target);
void space_add(struct space_est *s, uint64_t off, uint64_t len);
uint64_t space_total_for(const struct space_est *s, const struct gnode *target,
			 bool grows, uint64_t new_size);
int plan_check_space(struct graph *g, struct plan *p);

#endif
