/* graph.h - the pool as a forest of backing chains.
 *
 * Nodes are image files identified by (st_dev, st_ino): two paths to one
 * file are one node.  Each node has at most one backing node, so the pool
 * is a forest; children lists make siblings visible.  Missing files, loops,
 * over-deep chains, non-regular targets and external (json:/protocol) names
 * become nodes with GN_ERROR or GN_EXTERNAL and a message; a scan never
 * fails because of one bad image.
 *
 * Extra users (users file, live OFD locks) are struct guser entries that
 * attach perm/shared edges to a node.
 *
 * Ownership: graph_scan returns an owned graph freed by graph_free; every
 * string and array inside belongs to the graph.
 */
#ifndef IMGRAPH_GRAPH_H
#define IMGRAPH_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "formats/format.h"
#include "chain.h"

struct graph_marks;

enum gnode_flags {
	GN_IN_POOL      = 1 << 0,  /* named by the pool paths */
	GN_OUTSIDE      = 1 << 1,  /* reached only as a backing file */
	GN_ERROR        = 1 << 2,  /* see error */
	GN_PROBED       = 1 << 3,  /* format probed (not recorded) */
	GN_UNSAFE_PROBE = 1 << 4,  /* probed by reference as non-raw: its
				      backing reference is not followed */
	GN_EXTERNAL     = 1 << 5,  /* json:/protocol name, never opened */
	GN_IN_USE       = 1 << 6,  /* users file entry or live lock */
	GN_RDONLY_FILE  = 1 << 7,  /* we cannot open it for writing */
	GN_LOOP         = 1 << 8,  /* part of a backing loop */
	GN_MISSING      = 1 << 9,  /* backing target does not exist */
	GN_RAW_MAGIC    = 1 << 10, /* recorded raw, but block 0 probes as an
				      image format: a guest wrote an image
				      header into its raw disk, which a
				      probing reader would obey */
	GN_DEEP         = 1 << 11, /* deeper than GRAPH_MAX_DEPTH (with
				      GN_ERROR) */
	GN_JOURNAL      = 1 << 12, /* covered by an unfinished relink
				      (marks.h) */
	GN_STALE        = 1 << 13, /* an intermediate a commit wrote under */
	GN_UNUSED       = 1 << 14, /* a committed top nothing reads */
	GN_UNVERIFIED   = 1 << 15, /* carries a known image signature but
				      could not be parsed far enough to know
				      its backing file (with GN_ERROR): it
				      may read any image of the pool */
	GN_STATED       = 1 << 16, /* reached by a link that records no
				      format, and the administrator stated
				      the format its bytes probe as
				      (--format): believed like a record */
};

/* Deepest backing chain the scan accepts: chain_open's cap, so a chain
 * the tree shows as healthy can be opened.  A node at depth >=
 * GRAPH_MAX_DEPTH is in error (GN_DEEP), and the scan never opens more than
 * this many files outside the pool in a row. */
#define GRAPH_MAX_DEPTH CHAIN_MAX_DEPTH

struct gnode {
	int id;
	dev_t dev;
	ino_t ino;
	char *path;                /* path as first reached */
	char *name;                /* display name (path relative to pool) */
	char *format;              /* "qcow2", "raw", or NULL when unknown */
	unsigned flags;
	struct img_info info;      /* valid unless GN_ERROR/GN_EXTERNAL */
	char *backing_name;        /* as stored in the header, or NULL */
	char *backing_fmt;         /* recorded backing format, or NULL */
	char *backing_path;        /* resolved path, or NULL */
	int backing;               /* node id, or -1 */
	int *children;             /* overlays of this node (node ids) */
	int nchildren;
	char *error;               /* message when GN_ERROR */
	/* GN_RAW_MAGIC: the format whose signature the registry's probe
	 * found (a driver's static name), and whether it is a trailer (a
	 * fixed VHD's footer) rather than a header at offset 0. */
	const char *raw_magic;
	bool raw_magic_tail;
	int depth;                 /* distance from its root */
	/* QEMU lock bytes seen on the descriptor the header was read from
	 * (struct lock_state bits), valid when lock_probed: saves a second
	 * open per node when locks are probed. */
	bool lock_probed;
	uint8_t lock_held, lock_unshared;
};

enum party_kind {
	PARTY_NODE,                /* an overlay (backing edge) */
	PARTY_USER,                /* a users-file entry */
	PARTY_PROCESS,             /* a live lock holder */
	PARTY_JOB,                 /* the commit job (plans only) */
};

struct guser {
	enum party_kind kind;
	char *name;                /* "vm-web01", "process 1234 (qemu-io)" */
	char *user_kind;           /* vm|export|backup|job|other; "lock" */
	int node;                  /* node id it uses */
	char *image;               /* image string as written in the file */
	uint8_t perm, shared;
	pid_t pid;                 /* PARTY_PROCESS: 0 when unknown */
	int line;                  /* users-file line, 0 otherwise */
	char *qmp;                 /* users file: the QMP monitor socket of
				    * the process running image, or NULL */
};

struct graph {
	struct gnode *nodes;
	int n;
	struct guser *users;
	int nusers;
	char *users_file;          /* path of the loaded users file, or NULL */
	char **pool_paths;         /* as given */
	int npool_paths;
	int npool_images;          /* nodes with GN_IN_POOL */
	bool recursive;            /* pool directories were walked down */
	struct graph_marks *marks; /* left beside the images (marks.h) */
	struct fmt_stated *stated; /* scan_opts.stated, copied, stat'ed */
	int nstated;
};

struct scan_opts {
	bool recursive;
	const char *users_file;    /* NULL: none */
	bool probe_locks;          /* F_OFD_GETLK every node, add holders */
	const struct fmt_stated *stated;  /* path and fmt; dev/ino ignored */
	int nstated;
};

int graph_scan(char *const *paths, int npaths, const struct scan_opts *o,
	       struct graph **out, struct img_err *e);
void graph_free(struct graph *g);
/* For a scan that found no image without -r: how many images the same
 * paths hold in their subdirectories (a recursive scan, no lock probes),
 * so that the front ends can say to use -r; 0 when none or on error. */
int graph_count_below(char *const *paths, int npaths,
		      const struct scan_opts *o);

/* Node id of the file at path (by dev:ino), or -ENOENT (e filled) when the
 * file is not in the graph, or another -errno when it cannot be stat'ed. */
int graph_lookup(const struct graph *g, const char *path, struct img_err *e);

/* The format the administrator stated for node id (--format), or NULL. */
const char *graph_stated(const struct graph *g, int id);
/* The same where node id's bytes probe as that format (the only
 * statement believed), else NULL. */
const char *graph_stated_probe(const struct graph *g, int id);

/* The format through which node id's backing link may be read and
 * written: the one its header records, else the one stated for the
 * target where the target probes as that (GN_STATED); NULL when neither
 * (a guessed format, CVE-2008-2004) or id has no backing node.  The one
 * rule: the scan follows it, the plan refuses a path without it. */
const char *graph_link_fmt(const struct graph *g, int id);

/* True when anc is reached from n by following backing links. */
bool graph_is_below(const struct graph *g, int n, int anc);

#endif
