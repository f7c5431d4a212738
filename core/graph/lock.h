/* lock.h - probing QEMU's OFD byte locks and naming their holders.
 *
 * QEMU (block/file-posix.c) read-locks, on each open file description of an
 * image, byte LOCK_PERM_BASE+i for every permission bit i it holds and byte
 * LOCK_SHARED_BASE+i for every bit it does NOT share (i as in perm.h:
 * consistent read 0, write 1, write unchanged 2, resize 3).  QEMU 6.x and
 * older may also lock byte 104/204 (the dropped "change children" bit).
 *
 * A probe opens the file read-only (never for a non-regular file), asks
 * F_OFD_GETLK with F_WRLCK for each byte, and closes it.  Holders are named
 * from the "lock:" lines of /proc/PID/fdinfo/FD (dev:ino and byte ranges;
 * adjacent bytes of one description are merged, so ranges are matched).
 */
#ifndef IMGRAPH_LOCK_H
#define IMGRAPH_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "graph.h"
#include "perm.h"

#define LOCK_PERM_BASE    100
#define LOCK_SHARED_BASE  200
#define LOCK_NBITS        PERM_NBITS   /* one byte per permission bit */
#define LOCK_LEGACY_BIT   PERM_NBITS   /* byte 104/204: QEMU <= 6.x only */

/* What the F_OFD_GETLK probe saw on one file: bit i of held = byte
 * LOCK_PERM_BASE+i is locked by someone, bit i of unshared = byte
 * LOCK_SHARED_BASE+i (bits 0..LOCK_LEGACY_BIT). */
struct lock_state {
	uint8_t held, unshared;
};

/* One holder found in /proc: a process whose open file descriptions lock
 * bytes of the file dev:ino. */
struct lock_holder {
	pid_t pid;
	char comm[32];             /* from /proc/PID/comm */
	uint8_t held, unshared;    /* as in lock_state, for this process */
	bool ofd;                  /* OFD lock (else POSIX) */
};

/* One lock record: a line of /proc/locks ("1: OFDLCK ADVISORY READ -1
 * fe:00:1234 100 101") or a "lock:" line of /proc/PID/fdinfo/FD. */
struct lock_line {
	unsigned maj, min;
	unsigned long long ino;
	long long start, end;      /* end -1: to EOF */
	bool ofd;                  /* OFD lock (else POSIX) */
};
/* Parse one line; false when it is no lock record (a waiter "->", a
 * lease, anything else). */
bool lock_line_parse(const char *line, struct lock_line *out);
/* QEMU's bits the record covers: bit i of *held for byte
 * LOCK_PERM_BASE+i, of *unshared for LOCK_SHARED_BASE+i (bits 0..
 * LOCK_LEGACY_BIT). */
void lock_line_bits(const struct lock_line *l, uint8_t *held,
		    uint8_t *unshared);

/* Probe path.  Refuses non-regular files without opening them.  Returns 0
 * and fills *st; -errno with e filled when the file cannot be opened. */
int lock_probe_file(const char *path, struct lock_state *st,
		    struct img_err *e);

/* The same probe on an fd the caller opened (any access mode). */
int lock_probe_fd(int fd, struct lock_state *st);

/* Every process (other than ourselves) holding one of the lock bytes of
 * dev:ino.  *out is malloc'd (caller frees), *n its length. */
int lock_find_holders(dev_t dev, ino_t ino, struct lock_holder **out, int *n,
		      struct img_err *e);

/* Processes (other than ourselves) that have one of the files devs[i]:
 * inos[i] open at all, locks or not, found by stat() of /proc/PID/fd/N.
 * This is how a QEMU started with locking=off, or any other program, is
 * found: the lock probe cannot see them.  Without /proc nothing is found
 * (0, *nout = 0); processes that are gone or not ours to see are skipped.
 * Any other failure to read /proc (out of descriptors, of memory) is
 * -errno with e filled: a scan that could not look must not report "no
 * openers".  *out is malloc'd (caller frees). */
struct lock_opener {
	int idx;                   /* index into devs/inos */
	pid_t pid;
	char comm[32];
};
int lock_find_openers(const dev_t *devs, const ino_t *inos, int n,
		      struct lock_opener **out, int *nout, struct img_err *e);

/* Probe every readable node of g (reusing what the scan saw when
 * gnode.lock_probed); for each holder add a PARTY_PROCESS
 * guser (perm = held bits, shared = ALL & ~unshared) and flag the node
 * GN_IN_USE.  Locks seen by the probe but owned by no visible process
 * (another PID namespace) become a user with pid 0. */
int lock_probe_graph(struct graph *g, struct img_err *e);

/* "process 1234 (qemu-io) holds 'consistent read, write', does not share
 * 'write, resize'" into buf. */
const char *lock_describe(const struct guser *u, char *buf, size_t len);

#endif
