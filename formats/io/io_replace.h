/* io_replace.h - the one way imgraph writes a file whole (the journal, the
 * users file, a newly created image).
 *
 * The new content goes into a temporary file in the directory of the
 * target, named ".imgraph-tmp-" + 16 random hex digits and created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, so a name planted in advance (a symlink, a
 * file) is never opened, whatever it points to.  The temporary is written,
 * fsynced and renamed over the target, then the directory is fsynced: a
 * crash at any point leaves the old file or the new one, never a mix.
 *
 * The target name is resolved first: a symlink there is followed (at most
 * IO_REPLACE_MAX_LINKS hops, dangling allowed), and the file it leads to is
 * what gets replaced, so the link stays a link.  An existing target keeps
 * its mode and owner; a new one gets the mode passed (less the umask).  An
 * existing target that is not a regular file is refused.
 *
 * While a temporary is being built it carries an OFD write lock on byte 0,
 * so io_replace_clean can tell the temporary of a process that died (no
 * lock: removed) from one still being written (locked: left alone).
 *
 * Every create, write, sync, rename and unlink goes through io.h, so the
 * fault and power-cut modes see each of them.  Errors fill e (naming the
 * file and the step) and return -errno; e may be NULL.
 */
#ifndef IMGRAPH_IO_REPLACE_H
#define IMGRAPH_IO_REPLACE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

#define IO_REPLACE_PREFIX     ".imgraph-tmp-"
#define IO_REPLACE_MAX_LINKS  40

struct io_replace {
	int fd;                    /* the temporary, O_RDWR; -1 when none */
	char path[PATH_MAX];       /* the file replaced (links followed) */
	char tmp[PATH_MAX];        /* the temporary, in path's directory */
	const char *name;          /* the caller's name, for messages */
};

/* Resolve name and create the temporary (empty, t->fd open O_RDWR) with the
 * target's mode and owner, or mode when the target does not exist yet.  The
 * caller builds the content with io_pwrite/io_ftruncate on t->fd, then calls
 * io_replace_commit or io_replace_abort.  name must outlive t. */
int io_replace_begin(struct io_replace *t, const char *name, mode_t mode,
		     struct img_err *e);
/* fsync the temporary, rename it over the target, fsync the directory,
 * close.  On failure the temporary is removed and the target is the old
 * file (or, when only the directory sync failed, possibly the new one). */
int io_replace_commit(struct io_replace *t, struct img_err *e);
/* Close and remove the temporary; safe to call twice or after commit. */
void io_replace_abort(struct io_replace *t);

/* The whole sequence for content held in memory. */
int io_replace_file(const char *name, const void *data, size_t len,
		    mode_t mode, struct img_err *e);

/* Is this directory entry name a temporary of io_replace? */
int io_replace_is_temp(const char *entry);
/* Remove the temporaries in dir that no running process holds (left by a
 * crash), fsyncing dir when any went.  *removed (may be NULL) counts them. */
int io_replace_clean(const char *dir, int *removed, struct img_err *e);

#endif
