/* users_tx.h - the users file during a commit: read once, under a lock,
 * and compared again just before it is replaced.
 *
 * The lock is an OFD write lock on the whole file, taken without waiting:
 * a second imgraph repointing the same file is refused rather than
 * silently overwriting the first one's result.  Editors take no locks, so
 * the content read here is also compared with the file just before the
 * replacement (relink_users_unchanged); a difference stops the commit
 * before anything is relinked.
 */
#ifndef IMGRAPH_USERS_TX_H
#define IMGRAPH_USERS_TX_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/io/err.h"

struct users_tx {
	int fd;                    /* locked, -1 when closed */
	char *data;                /* the content read under the lock */
	size_t len;
};

/* Open path (a symlink leads to its target, as io_replace does), lock it,
 * check that the name still leads to the locked file, read it whole.
 * write: the commit will replace it (a write lock, which needs the file
 * writable); else a read lock keeps writers of ours out while the commit
 * checks that no entry of top appeared.  -EBUSY when another process
 * holds a conflicting lock. */
int users_tx_begin(struct users_tx *t, const char *path, bool write,
		   struct img_err *e);
/* Release the lock and free the content (fine on a zeroed struct with
 * fd -1, and twice). */
void users_tx_end(struct users_tx *t);

#endif
