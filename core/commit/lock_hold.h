/* lock_hold.h - hold QEMU-protocol OFD locks on image files while we work.
 *
 * QEMU's file-posix driver advertises on each open file
 * description: byte 100+i read-locked = "I hold permission i", byte 200+i =
 * "I do not share permission i" (i: consistent read 0, write 1, write
 * unchanged 2, resize 3).  We do what QEMU does: lock first (F_OFD_SETLK
 * F_RDLCK on the union of old and new bytes), then test (F_OFD_GETLK F_WRLCK
 * on 200+i for each perm we want, on 100+i for each perm we do not share),
 * and on a conflict fall back to the old set.  A QEMU that opens the file
 * meanwhile fails with "Failed to get ... lock".
 *
 * One struct lock_hold = one open file description, opened O_CLOEXEC (a
 * helper process never inherits our locks; they vanish when we die).
 * Callers may use h->fd for I/O on the file (img_open_fd dups it, which
 * shares the description and so the locks).
 */
#ifndef IMGRAPH_LOCK_HOLD_H
#define IMGRAPH_LOCK_HOLD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "core/graph/chain.h"

struct lock_hold {
	int fd;                    /* -1 when closed */
	dev_t dev;
	ino_t ino;
	uint8_t perm;              /* perm bits whose 100+i byte we hold */
	uint8_t unshared;          /* bits whose 200+i byte we hold */
	char *path;                /* owned copy, for messages */
};

void lock_hold_init(struct lock_hold *h);
/* Open path (O_RDWR when rdwr, else O_RDONLY; O_CLOEXEC always) without
 * taking any lock yet.  Refuses non-regular files. */
int lock_hold_open(struct lock_hold *h, const char *path, bool rdwr,
		   struct img_err *e);
/* Switch to holding perm and sharing only `shared` (perm.h bits), QEMU's
 * lock-then-test.  On conflict the previous set stays in force and e says
 * 'PATH: Failed to get "write" lock' (or 'shared "write"') plus QEMU's hint;
 * returns -EBUSY. */
int lock_hold_set(struct lock_hold *h, uint8_t perm, uint8_t shared,
		  struct img_err *e);
/* Test again, without changing anything, that nobody else holds a perm we
 * refuse to share or refuses a perm we hold (used just before a relink). */
int lock_hold_recheck(const struct lock_hold *h, struct img_err *e);
/* Release every lock and close the fd (also fine on an unopened hold). */
void lock_hold_close(struct lock_hold *h);

/* Descriptors an operation needs beside the files it holds: the chain it
 * reads (at most CHAIN_MAX_DEPTH layers) and a few more (journal, users
 * file, /proc). */
#define LOCK_HOLD_FD_SPARE (CHAIN_MAX_DEPTH + 64)
/* The most files lock_hold_many can hold: the hard open-file limit
 * (RLIMIT_NOFILE) less LOCK_HOLD_FD_SPARE. */
long lock_hold_max_files(void);

/* Open and lock many files in (dev, ino) order so that two instances
 * cannot deadlock-by-livelock; on failure nothing stays locked.  Raises
 * the soft open-file limit as far as the files need (up to the hard one);
 * more than lock_hold_max_files() is an error naming the limit. */
struct lock_req {
	const char *path;
	bool rdwr;
	uint8_t perm, shared;
};
int lock_hold_many(struct lock_hold *h, const struct lock_req *req, int n,
		   struct img_err *e);

#endif
