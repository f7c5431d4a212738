/* vhdx_int.h - the VHDX driver's state, shared by vhdx.c (ops, BAT,
 * reads) and vhdx_meta.c (headers, region table, metadata items, parent
 * locator). */
#ifndef IMGRAPH_VHDX_INT_H
#define IMGRAPH_VHDX_INT_H

#include "foreign.h"

#define VHDX "vhdx"
#define VHDX_MIB (1ull << 20)
/* Regions a payload block must not overlap: the header section, the
 * log, every region of the region table. */
#define VHDX_REGIONS_MAX (2 + 2047)

struct vhdx_range {
	uint64_t start, end;
	const char *what;              /* "log", "BAT region"... */
};

struct vhdx_state {
	uint64_t fsize;
	/* from the region table */
	uint64_t bat_off, bat_len, meta_off, meta_len;
	struct vhdx_range *regions;
	int nregions;
	/* from the metadata */
	uint32_t block_size, lsec;
	bool has_parent;
	char *parent;                  /* the parent locator's path */
	/* the block allocation table */
	uint64_t chunk_ratio;          /* payload blocks per sector bitmap */
	uint64_t data_blocks;
	uint64_t nbat;
	uint64_t *bat;
	/* one block's worth of a sector bitmap (differencing files) */
	uint8_t *sbm;
	uint64_t sbm_at;               /* its file offset (UINT64_MAX: none) */
};

/* Headers (the current one), log check, region table, metadata items and
 * parent locator; sets img->virtual_size and the fields above but the
 * BAT. */
int vhdx_parse_meta(struct img *img, struct vhdx_state *s,
		    struct img_err *e);

/* Index of the region that [start, start + len) overlaps, or -1 (the
 * regions are sorted and disjoint once vhdx_parse_meta returns). */
int vhdx_overlap(const struct vhdx_state *s, uint64_t start, uint64_t len);

#endif
