/* plan_int.h - internals shared by plan.c and plan_check.c.  Owner: C. */
#ifndef IMGRAPH_PLAN_INT_H
#define IMGRAPH_PLAN_INT_H

#include "plan.h"

int plan_add_conflict(struct plan *p, enum conflict_kind k, int node,
		      uint8_t perms, const char *parties, const char *message,
		      const char *why, const char *hint);

/* plan_check.c */
int plan_check_permissions(struct graph *g, struct plan *p);
int plan_check_locks(struct graph *g, struct plan *p);
int plan_check_states(struct graph *g, struct plan *p);
int plan_check_relinks(struct graph *g, struct plan *p);
/* plan_space.c (bytes to copy; space needed on base's file system) */
int plan_count_bytes(struct graph *g, struct plan *p, bool skip);
int plan_check_space(struct graph *g, struct plan *p);

#endif
