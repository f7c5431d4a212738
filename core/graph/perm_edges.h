/* perm_edges.h - parent edges on one node and QEMU's conflict rule, for
 * plans (plan_check.c) and anyone who wants to explain a conflict.
 */
#ifndef IMGRAPH_PERM_EDGES_H
#define IMGRAPH_PERM_EDGES_H

#include <stddef.h>
#include <stdint.h>

/* One parent's use of a node.  Strings are borrowed from the caller. */
struct perm_edge {
	const char *desc;          /* "node 'a.qcow2'", "commit job 'commit'" */
	const char *role;          /* "backing", "base", "intermediate node" */
	uint8_t perm, shared;
};

/* True (and *bits set) when b's perm is not inside a's shared mask:
 * "bits are required by b and unshared by a". */
int perm_edges_conflict(const struct perm_edge *a, const struct perm_edge *b,
			uint8_t *bits);

/* QEMU's message: "Permission conflict on node 'N': permissions 'write' are
 * both required by B (uses node 'N' as 'R' child) and unshared by A (uses
 * node 'N' as 'R' child)." */
void perm_conflict_message(const struct perm_edge *a,
			   const struct perm_edge *b, uint8_t bits,
			   const char *node, char *buf, size_t len);

#endif
