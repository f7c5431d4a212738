/* relink.h - rewrite the backing link of every parent as one transaction.
 *
 * Order: the new header bytes of every parent are computed first (nothing
 * written); the journal is written durably (PREPARED); the users file is
 * compared with what the commit read and replaced atomically; each parent
 * gets ONE pwrite of its changed header range followed by fdatasync; the
 * journal becomes RELINKED.  Any failure rolls every parent (and the users file)
 * back to OLD and removes the journal; if even the rollback fails the
 * journal stays for `imgraph recover`.
 *
 * The caller holds the locks and passes the locked O_RDWR fds.
 */
#ifndef IMGRAPH_RELINK_H
#define IMGRAPH_RELINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"
#include "journal.h"

struct relink_target {
	const char *path;          /* file whose header is rewritten */
	const char *fmt;           /* its format, e.g. "qcow2" */
	int fd;                    /* O_RDWR, locked by the caller */
	const char *old_name, *old_fmt;   /* as the header holds them now */
	const char *new_name, *new_fmt;
	bool relative;
};

/* Fill *out (owned strings/buffers, freed with the journal) with the
 * header range that changes and its OLD/NEW bytes, asking the format
 * driver's backing_header op for the new header.  Refuses when the header
 * no longer names old_name/old_fmt (the world changed since the plan). */
int relink_prepare_parent(const struct relink_target *t,
			  struct journal_parent *out, struct img_err *e);

/* Record the users file's old content (as the commit read it, once,
 * under its lock: users_tx.h) and new content into *out. */
int relink_prepare_users(const char *path, const char *old_data,
			 size_t old_len, const char *new_data, size_t new_len,
			 struct journal_users *out, struct img_err *e);
/* Is the users file still what u->old_data holds?  -ESTALE (e says so)
 * when someone changed it since it was read. */
int relink_users_unchanged(const struct journal_users *u, struct img_err *e);

/* Run the transaction described by j (state PREPARED).  fds[i] is the
 * locked O_RDWR fd of j->parents[i].  On success the journal is on disk in
 * state RELINKED (remove it with journal_remove after any cleanup).  On
 * failure everything is rolled back and the journal removed (e says so),
 * unless the rollback failed too (e then says to run `imgraph recover`). */
int relink_apply(const char *jpath, struct journal *j, const int *fds,
		 struct img_err *e);

/* One pwrite of [off, off+len) + fdatasync. */
int relink_write_range(int fd, const char *path, uint64_t off,
		       const uint8_t *buf, size_t len, struct img_err *e);
/* Replace the users file with data (io_replace.h: a symlink at path stays
 * a link and its target gets the content, mode and owner are kept). */
int relink_write_users(const char *path, const uint8_t *data, size_t len,
		       struct img_err *e);

#endif
