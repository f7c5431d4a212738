/* io_cut.h - the power-cut simulator behind IMGRAPH_FAULT=cut:K:SEED.
 *
 * Internal to formats/io: io.c parses IMGRAPH_FAULT and, for "cut", starts
 * the simulator and calls its hooks before every mutating op; nothing
 * outside this directory includes this header.  The simulator remembers
 * what every write that is not yet covered by an fdatasync/fsync of the
 * same file replaced.  At op K it rebuilds a state a power cut could have
 * left: a seeded random subset of the unsynced writes and size changes is
 * undone (newest first, a write possibly torn at 512-byte granularity),
 * then a suffix of the name operations (file creation, rename, unlink)
 * whose directory was not fsynced since, and the process is killed with
 * SIGKILL.
 *
 * Model limits (documented on purpose): bytes a lost write had appended
 * past the old end of file come back as zeros (the size is kept); a rename
 * between two directories is pending until both are synced; O_TRUNC on an
 * existing file counts as durable at once (imgraph never truncates an
 * existing file on open: whole files are replaced through io_replace.h);
 * file modes, owners and timestamps are not modelled.
 */
#ifndef IMGRAPH_IO_CUT_H
#define IMGRAPH_IO_CUT_H

#include <stddef.h>
#include <stdint.h>

/* What a name op did, for the hook below.  CREATED: open(O_CREAT) or
 * mkdir made the new name from (called after); RENAME: from becomes to,
 * replacing it; UNLINK: from goes; RMDIR: the empty directory from goes
 * (these three called before, and followed by FAILED when the call then
 * failed). */
enum io_cut_name_op { IO_CUT_CREATED, IO_CUT_RENAME, IO_CUT_UNLINK,
		      IO_CUT_RMDIR, IO_CUT_FAILED };

struct io_cut_hooks {
	void (*before_write)(int fd, uint64_t off, size_t n);
	void (*before_truncate)(int fd, uint64_t len);
	void (*name_op)(enum io_cut_name_op op, const char *from,
			const char *to);
	void (*after_sync)(int fd);
	void (*crash)(void);           /* never returns */
};

/* Start (or restart, forgetting what was recorded) the simulator with this
 * seed; io.c calls the returned hooks and the crash at op K. */
const struct io_cut_hooks *io_cut_start(uint64_t seed);

#endif
