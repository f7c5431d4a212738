/* trash_int.h - steps shared by trash.c (moving in) and trash_undo.c
 * (summary, undelete, purge).  Not a public API. */
#ifndef IMGRAPH_TRASH_INT_H
#define IMGRAPH_TRASH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "trash.h"

/* Open DIR/.imgraph-trash through dfd (DIR's fd) without following a
 * symlink, creating it (mode 0700) when create; *created says whether it
 * was made now.  Refused unless it is a directory of ours, private, on
 * DIR's file system.  Returns the fd, -ENOENT (e untouched) when absent
 * and not created, or another -errno with e filled. */
int trash_open(int dfd, const char *dir, bool create, bool *created,
	       struct img_err *e);
/* "%016llx" of txid, the name of its directory (its record adds
 * TRASH_REC_SUFFIX). */
void trash_txname(uint64_t txid, char *buf, size_t len);
/* Read and parse the record `name` in the trash tfd (no symlink
 * followed). */
int trash_read_record(int tfd, const char *name, struct trash_record **out,
		      struct img_err *e);
/* Split path into its directory (into dir) and last component. */
const char *trash_split(const char *path, char *dir, size_t len);

#endif
