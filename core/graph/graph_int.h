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
#include "lock.h"

#include <string.h>
#include <sys/stat.h>

struct img_format;

/* imgraph's own records, temporaries and trash (".imgraph-*") beside the
 * images are never pool images. */
static inline bool graph_own_name(const char *name)
{
	return !strncmp(name, ".imgraph-", 9);
}

/* A directory entry of a pool directory. */
struct dent {
	char *name;
	unsigned char type;        /* d_type */
};

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

/* What the scan reads of one open regular file before it becomes a node:
 * its head (one pread), what that probes as, and, asked on the same fd,
 * QEMU's lock bytes and whether we may write it.  System calls and the
 * format registry only, no builder state: a prefetch worker fills it
 * (graph_prefetch.c) as well as the scanning thread. */
struct gnode_peek {
	int fd;                    /* -1: nothing to add (already closed) */
	struct stat st;            /* fstat of fd */
	ssize_t hlen;              /* bytes in head, or -errno of the read */
	const struct img_format *probed;
	bool tail;                 /* probed by its trailer (fixed VHD) */
	bool lock_probed;
	struct lock_state ls;
	signed char wok;           /* as gnode_scan.wok */
	uint8_t head[GRAPH_HEAD_BYTES];
};

/* graph_node.c */
/* Peek at the regular file entry name of directory dfd (dfd < 0: path)
 * as a directory scan does: one that vanished, cannot be read or is no
 * image leaves pk->fd -1.  Returns -errno of a failed open, else 0. */
int graph_node_peek_entry(int dfd, const char *name, const char *path,
			  bool locks, struct gnode_peek *pk);
/* Add (or find) the file peeked as a seed node shown as path; pk's fd
 * stays open (whoever peeked closes it).  *id -1 when there was nothing
 * to add. */
int graph_node_add_peeked(struct graph_builder *b, const char *path,
			  unsigned flags, struct gnode_peek *pk, int *id,
			  struct img_err *e);
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
/* Add (or find) the file at path (symlinks followed) as a seed node.
 * named: given explicitly (a failure is an error) rather than found in a
 * directory (a file that vanished, dangles or is no image is skipped,
 * *id = -1). */
int graph_node_add_file(struct graph_builder *b, const char *path,
			unsigned flags, bool named, int *id, struct img_err *e);
/* The same for the entry name of directory dfd (path: the same file as
 * the node shows it); dfd < 0: by path. */
int graph_node_add_at(struct graph_builder *b, int dfd, const char *name,
		      const char *path, unsigned flags, bool named, int *id,
		      struct img_err *e);

/* graph_prefetch.c: peek at the regular entries [from, n) of a directory
 * listing on worker threads, ahead of the scanning thread, which takes
 * them in order.  NULL when threads would not pay (few entries, one core,
 * I/O faults injected, which must count in order) or cannot start: then
 * peek on the calling thread.  dirs_stop: the scan stops the peeking at
 * each subdirectory (a recursive walk), so only the entries before the
 * next one count. */
struct graph_prefetch;
struct graph_prefetch *graph_prefetch_start(const char *dir,
					    const struct dent *v,
					    size_t from, size_t n,
					    bool dirs_stop, bool locks);
/* Entry i's peek (NULL: an entry that is not peeked: not a regular file,
 * or imgraph's own record); i in order from `from`.  Its fd belongs to
 * the prefetch. */
struct gnode_peek *graph_prefetch_get(struct graph_prefetch *pf, size_t i);
/* True once a worker ran out of descriptors: the entries it could not
 * open are not peeked; stop, and go on one entry at a time. */
bool graph_prefetch_starved(struct graph_prefetch *pf);
/* Done with entry i (a worker closes its fd when it reuses the slot: the
 * scanning thread does not spend the time). */
void graph_prefetch_put(struct graph_prefetch *pf, size_t i);
/* Stop the workers, close what they opened ahead, free (NULL: nothing). */
void graph_prefetch_stop(struct graph_prefetch *pf);

/* graph_follow.c: follow every seed's backing reference, transitively. */
int graph_follow_all(struct graph_builder *b, struct img_err *e);

/* graph_link.c: loops, depth, children, flags after all links are made. */
int graph_link(struct graph_builder *b, struct img_err *e);

#endif
