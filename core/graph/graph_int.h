/* pool_int.h - internal state of the pool scan (pool.c, pool_load.c).
 * Not for use outside core/pool*.c.  Owner: helper C.
 */
#ifndef IMGRAPH_GRAPH_INT_H
#define IMGRAPH_GRAPH_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "graph.h"

/* Scan-time facts per node, parallel to graph->nodes. */
struct pnode {
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
};

struct pool_builder {
	struct graph *g;
	struct pnode *px;
	int cap;
	int *hash;                 /* dev:ino -> id + 1, open addressing */
	size_t hcap;
	int *queue;
	int qhead, qlen, qcap;
	bool probe_locks;          /* GETLK on the fd the header is read from */
};

/* pool_load.c */
int pool_new_node(struct pool_builder *b, const char *path, int *id,
		  struct img_err *e);
/* Read header facts of node id from its file with format fmt (NULL =
 * probe).  Failures leave the node in error (never return them). */
void pool_load_header(struct pool_builder *b, int id, const char *fmt);
void pool_outside_name(struct gnode *n);
void pool_node_error(struct gnode *n, unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int pool_hash_find(const struct pool_builder *b, dev_t dev, ino_t ino);
int pool_hash_add(struct pool_builder *b, int id, struct img_err *e);
/* Add the pool paths (files and directories) as seed nodes. */
int pool_add_paths(struct pool_builder *b, char *const *paths, int npaths,
		   bool recursive, struct img_err *e);
/* Add (or find) the regular file at path as a seed node (users file
 * images); *id = -1 when it cannot be stat'ed (then e is filled). */
int pool_add_file(struct pool_builder *b, const char *path, unsigned flags,
		  bool named, int *id, struct img_err *e);

/* pool_link.c: loops, depth, children, flags after all links are made. */
int pool_finish(struct pool_builder *b, struct img_err *e);

#endif
