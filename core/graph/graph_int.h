/* graph_int.h - state shared by the steps of graph_scan while the graph is
 * being built.  Not for use outside core/graph/graph_*.c.
 *
 * The steps, in order:
 *   graph_scan.c    the entry: seeds from the pool paths (directories
 *                   walked) and the users file, then the steps below;
 *   graph_node.c    nodes, the dev:ino index, reading one image's header;
 *   graph_follow.c  following backing references (the CVE-2008-2004 order);
 *   graph_link.c    once every link is made: loops, depths, children.
 */
#ifndef IMGRAPH_GRAPH_INT_H
#define IMGRAPH_GRAPH_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "graph.h"

/* Bytes of an image probed for its format. */
#define GRAPH_PROBE_BYTES 512
/* Bytes read from offset 0 in one pread: the probe's, and what the driver
 * parses its header from (a qcow2 header, its extensions and backing name
 * fit in one page), so each image costs one read. */
#define GRAPH_HEAD_BYTES 4096

/* A slot of the dev:ino index: id + 1 (0: empty), and bits of the hash,
 * so that a probe touches the node only when they match (the nodes of a
 * large pool are far apart in memory). */
struct gn_hslot {
	int id1;
	uint32_t tag;
};

/* Scan-time facts per node, parallel to graph->nodes. */
struct gnode_scan {
	bool followed;             /* backing reference handled */
	bool stat_done;            /* target identified (tdev/tino/terr) */
	int terr;                  /* errno of stat(target), 0 if fine */
	bool tregular;
	dev_t tdev;
	ino_t tino;
	char *tpath;               /* resolved target path (owned) */
	int tkind;                 /* enum resolve_kind */
	const char *probe_fmt;     /* what the bytes probe as (static) */
	char *rec_fmt;             /* format recorded by a reference, or NULL */
	char *rec_by;              /* path of the first recording overlay */
	bool ref_nofmt;            /* some reference records no format */
	int hops;                  /* outside-pool distance from a pool node */
	bool seed;                 /* pool member or users-file image */
	/* Writable by us, asked on the fd the header was read from:
	 * 0 not asked (graph_link asks by path), 1 yes, -1 no. */
	signed char wok;
	/* Its path names the file itself (a directory entry of a regular
	 * file, no symlink last): a reference that resolves to the same
	 * canonical name is this file without a stat. */
	bool exact;
};

struct graph_builder {
	struct graph *g;
	struct gnode_scan *px;
	int cap;
	struct gn_hslot *hash;     /* dev:ino -> id, open addressing */
	size_t hcap;
	int *queue;
	int qhead, qlen, qcap;
	bool probe_locks;          /* GETLK on the fd the header is read from */
};

/* graph_node.c */
int graph_node_new(struct graph_builder *b, const char *path, int *id,
		   struct img_err *e);
/* Node id of dev:ino, or -1. */
int graph_node_find(const struct graph_builder *b, dev_t dev, ino_t ino);
/* Enter node id (dev and ino set) in the dev:ino index. */
int graph_node_index(struct graph_builder *b, int id, struct img_err *e);
/* Read header facts of node id from its file with format fmt (NULL =
 * probe).  Failures leave the node in error (never return them). */
void graph_node_load(struct graph_builder *b, int id, const char *fmt);
/* Show an outside node by its physical path (relative to the CWD when
 * below it) rather than as reached ("sub/../base.qcow2"). */
void graph_node_outside_name(struct gnode *n);
/* Put node n in error (GN_ERROR | flags); reasons accumulate. */
void graph_node_error(struct gnode *n, unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Find or make the node for a target that is not an image we can read
 * (external name, missing file, stat error), keyed by its name; -1 on
 * failure (e filled). */
int graph_node_placeholder(struct graph_builder *b, const char *key,
			   unsigned flags, struct img_err *e);
/* Add (or find) the regular file at path as a seed node.  named: given
 * explicitly (a failure is an error) rather than found in a directory (a
 * file that vanished, dangles or is no image is skipped, *id = -1).
 * dtype_reg: the directory entry already says "regular file". */
int graph_node_add_file(struct graph_builder *b, const char *path,
			unsigned flags, bool named, bool dtype_reg, int *id,
			struct img_err *e);
/* The same for the entry name of directory dfd (path: the same file as
 * the node shows it); dfd < 0: by path. */
int graph_node_add_at(struct graph_builder *b, int dfd, const char *name,
		      const char *path, unsigned flags, bool named,
		      bool dtype_reg, int *id, struct img_err *e);

/* graph_follow.c: follow every seed's backing reference, transitively. */
int graph_follow_all(struct graph_builder *b, struct img_err *e);

/* graph_link.c: loops, depth, children, flags after all links are made. */
int graph_link(struct graph_builder *b, struct img_err *e);

#endif
