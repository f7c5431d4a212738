/* dmg_int.h - the DMG (UDIF) driver's state, shared by dmg.c (ops, reads)
 * and dmg_parse.c (koly trailer, block tables). */
#ifndef IMGRAPH_DMG_INT_H
#define IMGRAPH_DMG_INT_H

#include "foreign.h"

#define DMG "dmg"

/* Chunk entry types of a "mish" block table. */
#define DMG_ZERO_FILL 0x00000000u
#define DMG_RAW 0x00000001u
#define DMG_IGNORE 0x00000002u       /* reads as zeros */
#define DMG_ADC 0x80000004u
#define DMG_ZLIB 0x80000005u
#define DMG_BZIP2 0x80000006u
#define DMG_LZFSE 0x80000007u
#define DMG_LZMA 0x80000008u

/* One chunk of the guest view, in guest sectors and file bytes. */
struct dmg_chunk {
	uint64_t sector, nsec;
	uint64_t off, len;            /* stored bytes (raw, compressed) */
	uint32_t type;
};

struct dmg_state {
	uint64_t fsize;
	uint64_t koly;                 /* offset of the trailer */
	struct dmg_chunk *chunks;      /* sorted by sector, disjoint */
	size_t n, cap;
	uint8_t *in, *out;             /* one compressed and inflated chunk */
	size_t in_cap, out_cap;
	size_t cached;                 /* chunk in out (SIZE_MAX: none) */
};

/* Find and check the koly trailer, read the block tables (resource fork
 * or XML property list) into s->chunks, sorted and checked; set
 * img->virtual_size. */
int dmg_parse(struct img *img, struct dmg_state *s, struct img_err *e);

/* Name of a chunk type we keep but cannot inflate (bzip2...), or NULL. */
const char *dmg_unsupported(uint32_t type);

#endif
