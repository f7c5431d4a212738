/* qcow2_map.h - qcow2 host-offset lookup for `imgraph map` (owned by the
 * qcow2 read side, implemented in qcow2_read.c).
 *
 * format.h's block_status reports only data / zero / unallocated; qemu-img
 * map also shows where the data lives in the file.  Rather than widen the
 * driver contract for one command, the map code asks the qcow2 driver
 * directly through this function (core/chain_map.c checks the driver first).
 */
#ifndef IMGRAPH_QCOW2_MAP_H
#define IMGRAPH_QCOW2_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/format.h"

/* Like block_status, but extents also end where the host offset stops being
 * contiguous or stops being known.  *has_host is true for plain data, for
 * preallocated zero clusters and for unallocated subclusters of an
 * allocated extended-L2 cluster (qemu's OFFSET_VALID); *host is then the
 * file offset of `off`.  Compressed data has no host offset.
 *
 * With recurse (see below), *host_zero tells that plain data lies in a
 * hole of the file or past its end, so it reads as zeros (qemu-img map then
 * says "zero": true too); the extent also ends where that changes, or at the
 * end of the file.  img must be a qcow2 image. */
int qcow2_map_status(struct img *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, uint64_t *host, bool *has_host,
		     bool recurse, bool *host_zero, struct img_err *e);

/* QEMU 7.2 asks the file system about holes under data clusters only when it
 * suspects "metadata preallocation": when at least max(real*10/9, real+2)
 * clusters have a non-zero refcount, real being the clusters the file
 * actually occupies on disk (qcow2_detect_metadata_preallocation).  The
 * same heuristic here lets `imgraph map` match `qemu-img map` exactly. */
int qcow2_map_detect_prealloc(struct img *img, bool *prealloc,
			      struct img_err *e);

#endif
