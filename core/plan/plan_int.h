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
/* plan.c: free what one parent entry owns (not the entry itself). */
void plan_parent_free(struct plan_parent *pp);
/* plan_live.c: the live part (plan.live, parents' live flags), or a
 * CONFLICT_LIVE saying why a running QEMU cannot do it. */
int plan_check_live(struct graph *g, struct plan *p,
		    const struct plan_opts *o);
void plan_live_free(struct plan *p);
/* An active commit (QMP or libvirt) pivots the process onto base and
 * leaves top as it is: a leaf top is not kept and emptied but dropped from
 * the chain. */
void plan_live_drop_leaf(struct plan *p);
/* A CONFLICT_LIVE: 1 (this check refused, no live part), or -ENOMEM. */
int plan_live_conflict(struct plan *p, int node, const char *who,
		       const char *msg, const char *why, const char *hint);
/* plan_live_virt.c: the live part of a libvirt domain's QEMU (holder h
 * of top): 0 (filled), 1 (a conflict says why not), -ENOMEM. */
struct live_holder;
int plan_live_virt(struct graph *g, struct plan *p,
		   const struct live_holder *h);
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
/* plan_words.c: s quoted for a shell command in a hint (as is when it
 * needs no quotes), into buf. */
const char *plan_sh_quote(const char *s, char *buf, size_t len);
/* plan_space.c (bytes to copy; space needed on base's file system) */
int plan_count_bytes(struct graph *g, struct plan *p, bool skip);
int plan_check_space(struct graph *g, struct plan *p);
/* The space estimate of a written image (base for a commit, top for a
 * pull, a protected reader): ranges written into it, on its cluster grid: clusters and L2
 * tables it may need.  Ranges arrive in increasing offset order, so a
 * cluster or L2 range shared with the previous range is the last one
 * counted.  cs == 0: raw (bytes are written in place). */
struct space_est {
	uint64_t cs, l2_span;
	uint64_t l2_bytes;                /* one new L2 table */
	uint64_t clusters, l2_tables, raw_bytes;
	uint64_t next_cluster, next_l2;   /* first index not yet counted */
	bool any;
};
void plan_space_init(struct space_est *s, const struct gnode *n);
void plan_space_add(struct space_est *s, uint64_t off, uint64_t len);
/* Bytes n's file system must have free for what s counted (an upper
 * bound with metadata); grow_to: n's new virtual size when it grows,
 * else 0. */
uint64_t plan_space_total(const struct space_est *s, const struct gnode *n,
			  uint64_t grow_to);
/* The one space check of the three images a plan may write into (base,
 * top for a pull, each protected reader): free bytes on path's file system
 * into *free_space (no check when unknown: the write will say ENOSPC),
 * and when need exceeds them a CONFLICT_SPACE on node n: "up to
 * NEED bytes must be written into 'NAME'DETAIL but its file system has
 * FREE bytes free", with why and fix.  known_free: *free_space is already
 * measured (not statvfs'd again). */
int plan_space_check(struct plan *p, const struct gnode *n, const char *path,
		     bool known_free, uint64_t need, uint64_t *free_space,
		     const char *detail, const char *why, const char *fix);
/* plan_check.c: the state check of node id as its role says (written or
 * read). */
int plan_check_role_state(struct graph *g, struct plan *p, int id);

#endif
