/* qed_int.h - state shared by the qed reader (qed.c) and its write path
 * (qed_write.c).  Not for use outside formats/. */
#ifndef IMGRAPH_QED_INT_H
#define IMGRAPH_QED_INT_H

#include "format.h"

#include <stdbool.h>
#include <stdint.h>

/* Header feature bits (incompatible features) */
#define QED_F_BACKING_FILE   0x1ull
#define QED_F_NEED_CHECK     0x2ull   /* a consistency check is due */
#define QED_F_NO_PROBE       0x4ull   /* the backing file is raw */
#define QED_FEATURES         0x7ull

struct qed_state {
	uint32_t cluster_size, table_size, header_size;
	uint64_t features, compat_features, autoclear_features;
	uint64_t image_size, l1_table_offset;
	uint32_t cluster_bits, table_nelems;   /* entries per table */
	/* Rounded down to a cluster, as QEMU does; new clusters are
	 * appended here (what a crash leaves past it is leaked space). */
	uint64_t file_size;
	uint64_t *l1;
	char *backing;
	uint64_t l2_off;                        /* cached L2 table, 0: none */
	uint64_t *l2;
	bool dirty;                             /* written since the flush */
};

/* The L2 entry for guest offset off (qed.c); *span: bytes from off to the
 * end of the range the answer covers.  Leaves the L2 table of off, when it
 * has one, in s->l2 (s->l2_off). */
int qed_entry_at(struct img *img, uint64_t off, uint64_t *entry,
		 uint64_t *span, struct img_err *e);
/* Why this image must not be written (qed_write.c), or NULL. */
const char *qed_write_refusal(const struct qed_state *s);

/* The write ops (qed_write.c). */
int qed_open_rw(struct img *img, struct img_err *e);
int qed_pwrite(struct img *img, uint64_t off, const void *buf, size_t len,
	       struct img_err *e);
int qed_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     struct img_err *e);
int qed_grow(struct img *img, uint64_t new_size, struct img_err *e);
int qed_make_empty(struct img *img, struct img_err *e);
int qed_flush(struct img *img, struct img_err *e);

#endif
