/* trash.h - where `commit --delete` puts the files it removes, so that
 * nothing is lost: `imgraph undelete` puts them back, `imgraph purge`
 * frees the space.
 *
 * Each directory that loses a file gets a trash beside it,
 * DIR/.imgraph-trash/ (mode 0700, ours, on DIR's file system, so a move is
 * one rename).  A commit's files go to DIR/.imgraph-trash/TXID/NAME, and
 * DIR/.imgraph-trash/TXID.rec records where each came from (NAME in DIR)
 * with its dev:ino and size.  The trash and everything in it are reached
 * through directory fds, never following a symlink (O_NOFOLLOW, *at).
 *
 * Order, so that a crash at any instant leaves every file either in place
 * or in the trash with its record: the TXID directory and the record are
 * made durable first, then each file is re-checked (same dev:ino, no
 * process has it open, no QEMU lock on it) and renamed, then both
 * directories are synced.  Undelete renames back without replacing
 * anything (RENAME_NOREPLACE); a file still in place is left alone.
 *
 * Record text (rectext.h):
 *   imgraph-trash 1 *CRC
 *   tx TXID CREATED BASE N *CRC        BASE: the commit's base (hex path)
 *   file NAME DEV INO SIZE *CRC        NAME: hex, one path component
 *   end CRC
 */
#ifndef IMGRAPH_TRASH_H
#define IMGRAPH_TRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

#define TRASH_DIR        ".imgraph-trash"
#define TRASH_REC_SUFFIX ".rec"
#define TRASH_MAX_FILES  4096
#define TRASH_MAX_BYTES  (4u << 20)

struct trash_file {
	char *name;                /* one path component */
	uint64_t dev, ino, size;
};

struct trash_record {
	uint64_t txid;
	int64_t created;
	char *base;                /* the commit's base, for reports */
	struct trash_file *v;
	int n;
};

int trash_parse(const char *buf, size_t len, struct trash_record **out,
		struct img_err *e);
int trash_render(const struct trash_record *r, char **buf, size_t *len,
		 struct img_err *e);
void trash_record_free(struct trash_record *r);

/* ---- moving in ---------------------------------------------------------- */

struct trash_req {
	const char *path;          /* where the file is now */
	uint64_t dev, ino;         /* what it must still be */
};

struct trash_outcome {
	char *path;                /* as requested (owned) */
	char *trash;               /* where it went, or NULL (owned) */
	bool moved;
	uint64_t bytes;            /* allocated bytes moved */
	char why[512];             /* when not moved */
};

struct trash_report {
	struct trash_outcome *v;   /* one per request, in order */
	int n;
	int moved;
	uint64_t bytes;
};
void trash_report_free(struct trash_report *r);

/* Move the files of v into the trash beside each, as transaction txid of
 * a commit into base.  A file that changed (dev:ino), is a symlink, is
 * open in a process or carries QEMU locks stays where it is (its outcome
 * says why); that is no error.  Returns 0, or -errno (e filled) when the
 * trash cannot be made or written: every file is then still in place or
 * in the trash with its record. */
int trash_move(const struct trash_req *v, int n, uint64_t txid,
	       const char *base, struct trash_report *rep, struct img_err *e);

/* ---- looking, putting back, purging ------------------------------------- */

struct trash_summary {
	int files;                 /* files in the trash of the directory */
	uint64_t bytes;            /* allocated bytes they hold */
	int ntx;                   /* commits they came from */
	uint64_t last_txid;
	int64_t last_created;
};
/* What DIR/.imgraph-trash holds (all zero when there is none). */
int trash_summary_dir(const char *dir, struct trash_summary *s,
		      struct img_err *e);

enum trash_op_result {
	TRASH_RESTORED,            /* undelete: back at its old path */
	TRASH_IN_PLACE,            /* undelete: it never left (or is back) */
	TRASH_REFUSED,             /* undelete: its old path is taken, or
				      the trash holds another file */
	TRASH_PURGED,              /* purge: removed for good */
	TRASH_KEPT,                /* purge: left alone (see msg) */
};

struct trash_op_item {
	char *path;                /* the file's old path (owned) */
	enum trash_op_result result;
	uint64_t bytes;
	char msg[512];
};

struct trash_op_report {
	struct trash_op_item *v;
	int n;
	uint64_t txid;             /* undelete: the transaction put back */
	int done, refused;
	uint64_t bytes;            /* purge: bytes freed */
};
void trash_op_report_free(struct trash_op_report *r);

/* The trash of each PATH (a directory, or a file's directory; none means
 * "."): undelete puts back the files of transaction txid (0: the most
 * recent one found in any of them); purge removes the files of txid (0:
 * every transaction).  Returns 0 when every file was handled, -EEXIST
 * when undelete refused one (nothing was overwritten), -ENOENT when there
 * is nothing to put back, else -errno; e says why. */
int trash_undelete(char *const *paths, int npaths, uint64_t txid,
		   struct trash_op_report *rep, struct img_err *e);
int trash_purge(char *const *paths, int npaths, uint64_t txid,
		struct trash_op_report *rep, struct img_err *e);

#endif
