/* img_batch.h - optional write batching on an image opened read-write.
 *
 * Between img_batch_begin() and img_batch_end() the
 * driver may keep the metadata of pwrite/write_zeroes calls (new L2 and L1
 * entries) pending and link it all behind ONE fdatasync, instead of one
 * per L2 table per call.  The crash rule is unchanged: data, refcounts and
 * new tables are durable before any entry that points at them, so a crash
 * leaks clusters and never corrupts.  What a batch changes:
 *  - guest reads of this handle (pread, block_status) may not see the
 *    batch's writes before img_batch_end(); use only pwrite and
 *    write_zeroes on it meanwhile (grow, flush, make_empty and close
 *    commit the pending writes first);
 *  - a failing write may lose the batch's earlier writes too (their
 *    clusters leak); the image stays consistent;
 *  - memory: at most a few MiB of pending L2 tables (qcow2: 6 MiB), then
 *    the batch commits by itself and goes on.
 * Drivers without the batch_begin/batch_end ops ignore both calls (0).
 */
#ifndef IMGRAPH_IMG_BATCH_H
#define IMGRAPH_IMG_BATCH_H

#include "format.h"

int img_batch_begin(struct img *img, struct img_err *e);
/* Links everything pending (does not flush: call drv->flush for
 * durability).  Returns 0 or -errno. */
int img_batch_end(struct img *img, struct img_err *e);

#endif
