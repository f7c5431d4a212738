/* marks.h - what earlier transactions left beside the pool's images, read
 * at the end of every scan so that every front end shows it:
 *
 *   journals  an unfinished relink (.imgraph-journal-BASE): the images it
 *             covers are flagged GN_JOURNAL; plan and commit refuse until
 *             `imgraph recover DIR` finishes it;
 *   stale     the stale record beside a base (.imgraph-stale-BASE, see
 *             core/commit/stale.h): intermediates a commit wrote under are
 *             GN_STALE, a top it left with nothing reading it GN_UNUSED;
 *   trash     what DIR/.imgraph-trash holds (core/commit/trash.h).
 *
 * The directories looked at are those of every node and of the pool
 * paths.  Records are matched to nodes by dev:ino only: a file that is
 * gone or was replaced marks nothing.  Nothing here writes.
 *
 * Ownership: graph_marks_load hangs an owned struct graph_marks on
 * g->marks, freed with the graph.
 */
#ifndef IMGRAPH_MARKS_H
#define IMGRAPH_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "graph.h"

struct gmark_journal {
	char *path;                /* the journal file */
	char *dir;                 /* its directory: `imgraph recover DIR` */
	bool valid;                /* parsed; else error says why */
	char *error;
	bool relinked;             /* state RELINKED (else PREPARED) */
	uint64_t txid;
	int *nodes;                /* graph nodes it covers, base first */
	int nnodes;
	int noutside;              /* files it covers that are not nodes */
};

/* One mark on one node (a node may carry several). */
struct gmark_stale {
	int node;
	int base;                  /* node committed into */
	bool unused;               /* a top left over (else stale) */
	bool pending;              /* its commit has not relinked (yet) */
	uint64_t txid;
	int64_t created;
	uint64_t top_dev, top_ino; /* that commit's top */
};

/* A stale record that cannot be read: the marks it holds are unknown. */
struct gmark_bad {
	char *path;
	char *error;
	int base;                  /* node at the base name beside it, or -1 */
};

struct gmark_trash {
	char *dir;
	int files, ntx;
	uint64_t bytes;
	uint64_t last_txid;
	int64_t last_created;
};

struct graph_marks {
	struct gmark_journal *journals;
	int njournals;
	struct gmark_stale *stale;
	int nstale;
	struct gmark_bad *bad;
	int nbad;
	struct gmark_trash *trash;
	int ntrash;
};

/* Directories the pool scan has listed, with the names in them that the
 * marks look at (marks_name_wanted), in directory order; owned. */
struct marks_listed_dir {
	dev_t dev;
	ino_t ino;
	char **names;
	int n;
};

struct marks_listing {
	struct marks_listed_dir *v;
	int n, cap;
};

/* A directory entry the marks may need (records, temporaries, trash). */
bool marks_name_wanted(const char *name);
/* Take ownership of names[0..n) (n may be 0: names NULL) as the listing
 * of directory dev:ino; -ENOMEM (names then still the caller's). */
int marks_listing_add(struct marks_listing *ls, dev_t dev, ino_t ino,
		      char **names, int n);
void marks_listing_free(struct marks_listing *ls);

/* Look beside every node of g; flags nodes GN_JOURNAL / GN_STALE /
 * GN_UNUSED.  A directory in ls (NULL: none) is not read again: its
 * listed names are used.  Records that cannot be read are reported in the
 * marks, not as errors; -errno only for out of memory. */
int graph_marks_load(struct graph *g, const struct marks_listing *ls,
		     struct img_err *e);
void graph_marks_free(struct graph_marks *m);
/* A record's time (seconds since the epoch) as "2024-05-01 12:00 UTC". */
const char *marks_when(int64_t t, char *buf, size_t len);

#endif
