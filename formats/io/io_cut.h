/* io_cut.h - the power-cut simulator behind IMGRAPH_FAULT=cut:K:SEED.
 *
 * Owner: helper D (commit/recover).  io.c counts mutating ops and calls the
 * hooks this module installs; this module remembers what every write that is
 * not yet covered by an fdatasync/fsync of the same file replaced.  At op K
 * it rebuilds a state a power cut could have left: a seeded random subset of
 * the unsynced writes and size changes is undone (newest first, a write
 * possibly torn at 512-byte granularity), then a suffix of the name
 * operations (file creation, rename, unlink) whose directory was not
 * fsynced since, and the process is killed with SIGKILL.
 *
 * Model limits (documented on purpose): bytes a lost write had appended
 * past the old end of file come back as zeros (the size is kept); a rename
 * between two directories is pending until both are synced; O_TRUNC on an
 * existing file counts as durable at once (imgraph truncates only stale
 * temporary files and a raw image being created over an old one); file
 * modes and timestamps are not modelled.
 */
#ifndef IMGRAPH_IO_CUT_H
#define IMGRAPH_IO_CUT_H

/* Install the simulator when IMGRAPH_FAULT is "cut:K[:SEED]".  Idempotent;
 * call it before the first mutating op of a command (commit, recover).
 * Returns 1 when the simulator is active, 0 otherwise. */
int io_cut_init(void);

#endif
