/* users.h - the users file: extra users of images (VMs, exports, backups)
 * that no image header records.  Format (the man page, docs/imgraph.1):
 *
 *   users:
 *     - name: vm-web01
 *       kind: vm                # vm | export | backup | job | other
 *       image: web01.qcow2      # relative to this file's directory
 *       perm: [consistent-read, write]
 *       shared: [consistent-read, write-unchanged]
 *       qmp: /run/vm-web01.qmp  # optional: the QMP monitor socket of
 *                               # the QEMU that runs image, when its
 *                               # command line names none
 *
 * perm defaults to [consistent-read, write] for kind vm and to
 * [consistent-read] otherwise; shared defaults to
 * [consistent-read, write-unchanged] (what a QEMU guest device shares).
 * Errors name the file, line and column.
 */
#ifndef IMGRAPH_USERS_H
#define IMGRAPH_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "graph.h"

struct users_entry {
	char *name;
	char *kind;                /* one of the five kinds */
	char *image;               /* as written */
	char *path;                /* resolved against the file's directory */
	uint8_t perm, shared;
	char *qmp;                 /* absolute QMP socket path, or NULL */
	int line, col;             /* 1-based position of the entry */
	int qmp_line, qmp_col;     /* ... and of its qmp value */
	int node;                  /* set by graph_scan; -1 when unknown */
};

struct users_file {
	char *path;
	struct users_entry *v;
	int n;
};

/* Parse path.  Returns an owned users_file freed by users_free. */
int users_load(const char *path, struct users_file **out, struct img_err *e);
void users_free(struct users_file *u);

/* Append one PARTY_USER guser per entry to g (entries' node must be set)
 * and flag those nodes GN_IN_USE; g->users_file becomes uf->path. */
int users_attach(struct graph *g, const struct users_file *uf,
		 struct img_err *e);

/* Render the text of the users file at users_path with every entry whose
 * image is the file dev:ino repointed to new_image_path (a path valid from
 * the CWD).  A relative image string stays relative (to the users file's
 * directory), an absolute one stays absolute.  Everything else - comments,
 * order, quoting of other scalars - is kept byte for byte.  *text is
 * malloc'd (caller frees), *len its length, *nchanged the number of entries
 * rewritten.  Nothing is written: the caller writes the file atomically. */
int users_repoint(const char *users_path, dev_t dev, ino_t ino,
		  const char *new_image_path, char **text, size_t *len,
		  int *nchanged, struct img_err *e);
/* The same for text already read (src, slen bytes, as read from
 * users_path): the commit reads the file once, under its lock. */
int users_repoint_text(const char *users_path, const char *src, size_t slen,
		       dev_t dev, ino_t ino, const char *new_image_path,
		       char **text, size_t *len, int *nchanged,
		       struct img_err *e);

#endif
