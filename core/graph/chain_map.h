/* chain_map.h - qemu-img map's view of a backing chain (for `imgraph map`).
 *
 * Owned by the chain code (chain_map.c).  chain_block_status() answers "which
 * layer serves this range"; qemu-img map reports a slightly different thing
 * (depth of the first layer that reports data *or zeros*, a range past a
 * shorter backing file is "zero, not present" at the overlay, the host
 * offset), and tests compare our output with qemu-img's field by field, so
 * this module reproduces qemu-img map's rules exactly.
 *
 * Strings in struct chain_map_extent point into the chain and stay valid
 * until chain_close().
 */
#ifndef IMGRAPH_CHAIN_MAP_H
#define IMGRAPH_CHAIN_MAP_H

#include "chain.h"

struct chain_map_extent {
	uint64_t start, length;
	int depth;                 /* qemu-img map's depth */
	bool present;              /* allocated (data or zeros) in some layer */
	bool zero;                 /* reads as zeros */
	bool data;                 /* data stored (compressed counts) */
	bool has_offset;
	uint64_t offset;           /* host offset in `filename` */
	const char *filename;      /* layer at `depth` */
};

/* A map walk over an open chain (owned; free with chain_map_end; the chain
 * must outlive it).  What qemu-img map derives once per image (qcow2's
 * preallocation heuristic) the driver keeps with the open image. */
struct chain_mapper;
int chain_map_begin(struct chain *c, struct chain_mapper **out,
		    struct img_err *e);
void chain_map_end(struct chain_mapper *m);

/* Describe [off, off+len) from the top (layer 0); off < top's size.  The
 * extent may be shorter than len.  Merging adjacent extents is the caller's
 * job (chain_map_mergeable). */
int chain_map_next(struct chain_mapper *m, uint64_t off, uint64_t len,
		   struct chain_map_extent *x, struct img_err *e);

/* qemu-img map's merge rule: b directly follows a with equal fields and,
 * when there are offsets, contiguous ones. */
bool chain_map_mergeable(const struct chain_map_extent *a,
			 const struct chain_map_extent *b);

#endif
