/* perm.c - permission bit names (perm.h) and QEMU's conflict rule between
 * two parent edges (perm_edges.h).
 */
#include "perm.h"
#include "perm_edges.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Message names (block.c bdrv_perm_names) and QAPI names, by bit. */
static const char *const msg_names[PERM_NBITS] = {
	"consistent read", "write", "write unchanged", "resize",
};
static const char *const qapi_names[PERM_NBITS] = {
	"consistent-read", "write", "write-unchanged", "resize",
};

const char *perm_names(uint8_t mask, char *buf, size_t len)
{
	size_t pos = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (int i = 0; i < PERM_NBITS; i++) {
		int r;

		if (!(mask & (1u << i)))
			continue;
		r = snprintf(buf + pos, len - pos, "%s%s", pos ? ", " : "",
			     msg_names[i]);
		if (r < 0 || (size_t)r >= len - pos)
			break;
		pos += (size_t)r;
	}
	return buf;
}

void perm_file_locks(uint8_t node_perm, uint8_t node_shared, bool metadata,
		     bool writable, uint8_t *perm, uint8_t *shared)
{
	uint8_t p = node_perm & PERM_ALL, s = node_shared & PERM_ALL;

	if (metadata) {
		/* The format touches metadata even when the guest does not
		 * write, and cannot let anyone else change the file under
		 * its metadata. */
		if (writable)
			p |= PERM_WRITE | PERM_RESIZE;
		p |= PERM_CONSISTENT_READ;
		s &= (uint8_t)~(PERM_WRITE | PERM_RESIZE);
		/* The data role of the same child (qcow2's file is both). */
		if (p & PERM_WRITE_UNCHANGED)
			p |= PERM_WRITE;
		if (p & PERM_WRITE)
			p |= PERM_RESIZE;
	}
	*perm = p;
	*shared = s;
}

int perm_parse_qapi(const char *name, uint8_t *bit)
{
	for (int i = 0; i < PERM_NBITS; i++)
		if (!strcmp(name, qapi_names[i])) {
			*bit = (uint8_t)(1u << i);
			return 0;
		}
	return -EINVAL;
}

const char *perm_qapi_name(uint8_t bit)
{
	for (int i = 0; i < PERM_NBITS; i++)
		if (bit == (1u << i))
			return qapi_names[i];
	return NULL;
}

int perm_edges_conflict(const struct perm_edge *a, const struct perm_edge *b,
			uint8_t *bits)
{
	/* bdrv_a_allow_b: b's perm must be inside a's shared mask. */
	*bits = (uint8_t)(b->perm & ~a->shared & PERM_ALL);
	return *bits != 0;
}

void perm_conflict_message(const struct perm_edge *a,
			   const struct perm_edge *b, uint8_t bits,
			   const char *node, char *buf, size_t len)
{
	char names[80];

	/* QEMU's wording since the 2021 permission rework (block.c). */
	snprintf(buf, len, "Permission conflict on node '%s': permissions "
		 "'%s' are both required by %s (uses node '%s' as '%s' "
		 "child) and unshared by %s (uses node '%s' as '%s' child).",
		 node, perm_names(bits, names, sizeof(names)), b->desc, node,
		 b->role, a->desc, node, a->role);
}
