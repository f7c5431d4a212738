/* graph_follow.c - following backing references during a scan.
 *
 * Order matters for the CVE-2008-2004 rule.  First every pool file is read
 * (opened, header parsed, closed) and the target of every pool image's
 * backing reference is identified by stat() alone.  Only then, knowing which
 * pool files are referenced without a recorded format, are references
 * followed: an image whose format was only probed through such a reference
 * and probed as non-raw never has its own reference stat'ed or opened.  A
 * reference that records a format is believed, and an unsupported recorded
 * format is an error, never a reason to probe.
 */
#include "graph_int.h"
#include "resolve.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Resolve node id's backing reference and stat its target, without
 * opening it (tkind, tpath, terr, tdev:tino). */
static void identify(struct graph_builder *b, int id)
{
	struct gnode *n = &b->g->nodes[id];
	struct gnode_scan *p = &b->px[id];
	char out[PATH_MAX];
	enum resolve_kind kind;
	struct stat st;
	int r;

	if (p->stat_done || !n->backing_name)
		return;
	p->stat_done = true;
	free(p->tpath);
	p->tpath = NULL;
	r = resolve_backing(n->path, n->backing_name, out, sizeof(out), &kind,
			    NULL);
	if (r < 0) {
		p->tkind = RESOLVE_FILE;
		p->terr = -r;
		p->tpath = strdup(n->backing_name);
		return;
	}
	p->tkind = kind;
	p->tpath = strdup(kind == RESOLVE_FILE ? out : n->backing_name);
	if (kind != RESOLVE_FILE)
		return;
	if (stat(out, &st) < 0) {
		p->terr = errno;
		return;
	}
	p->terr = 0;
	p->tregular = S_ISREG(st.st_mode);
	p->tdev = st.st_dev;
	p->tino = st.st_ino;
}

static void enqueue(struct graph_builder *b, int id)
{
	if (b->qlen == b->qcap) {
		int nc = b->qcap ? b->qcap * 2 : 256;
		int *nq = realloc(b->queue, sizeof(*nq) * nc);
		if (!nq)
			return;    /* cannot happen in practice; node unfollowed */
		b->queue = nq;
		b->qcap = nc;
	}
	b->queue[b->qlen++] = id;
}

/* Forget node id's link to its backing node (it will be redone or, for
 * an unsafe probe, never made). */
static void unlink_backing(struct graph_builder *b, int id)
{
	b->g->nodes[id].backing = -1;
	b->px[id].followed = false;
}

/* Overlay `by` references node t, recording format fmt (NULL: none). */
static void apply_ref(struct graph_builder *b, int t, const char *fmt,
		      const char *by)
{
	struct gnode *n = &b->g->nodes[t];
	struct gnode_scan *p = &b->px[t];

	if (n->flags & (GN_EXTERNAL | GN_MISSING) || !n->dev)
		return;
	/* No record, but the administrator states the format the bytes
	 * probe as: believed like a record (graph_link_fmt).  A statement
	 * the probe contradicts is ignored here; the plan names it. */
	if (!fmt && (fmt = graph_stated_probe(b->g, t))) {
		by = "--format";
		n->flags |= GN_STATED;
	}
	if (fmt) {
		if (!p->rec_fmt) {
			p->rec_fmt = strdup(fmt);
			p->rec_by = strdup(by);
			n->flags &= ~GN_UNSAFE_PROBE;
			if (!p->ref_nofmt)
				n->flags &= ~GN_PROBED;
			if (!n->format || strcmp(n->format, fmt) ||
			    (n->flags & GN_ERROR)) {
				/* Believe the record: reload the header with
				 * the recorded format, links redone. */
				unlink_backing(b, t);
				p->stat_done = false;
				graph_node_load(b, t, fmt);
				enqueue(b, t);
			}
		} else if (strcmp(p->rec_fmt, fmt)) {
			graph_node_error(n, 0, "%s: overlays disagree on its "
					"format: '%s' records '%s', '%s' "
					"records '%s'", n->path, p->rec_by,
					p->rec_fmt, by, fmt);
		}
		return;
	}
	p->ref_nofmt = true;
	n->flags |= GN_PROBED;
	if (!p->rec_fmt && n->format && strcmp(n->format, "raw")) {
		n->flags |= GN_UNSAFE_PROBE;
		if (p->followed)
			unlink_backing(b, t);
	}
}

static const char *ftype(mode_t m)
{
	if (S_ISDIR(m)) return "a directory";
	if (S_ISFIFO(m)) return "a FIFO";
	if (S_ISSOCK(m)) return "a socket";
	if (S_ISCHR(m)) return "a character device";
	if (S_ISBLK(m)) return "a block device";
	return "not a regular file";
}

/* A placeholder stands for a target that is a protocol or json: name. */
static int target_external(struct graph_builder *b, int id, struct img_err *e)
{
	const char *fmt = b->g->nodes[id].backing_fmt;
	int t;

	t = graph_node_placeholder(b, b->g->nodes[id].backing_name,
				   GN_EXTERNAL, e);
	if (t < 0)
		return -ENOMEM;
	if (!b->g->nodes[t].format && fmt)
		b->g->nodes[t].format = strdup(fmt);
	return t;
}

/* A placeholder stands for a target that could not be stat'ed. */
static int target_stat_failed(struct graph_builder *b, int id,
			      struct img_err *e)
{
	const struct gnode_scan *p = &b->px[id];
	char key[PATH_MAX];
	int err = p->terr, t;

	snprintf(key, sizeof(key), "%s", p->tpath ? p->tpath : "?");
	t = graph_node_placeholder(b, key, err == ENOENT ? GN_MISSING :
				   GN_ERROR, e);
	if (t < 0)
		return -ENOMEM;
	if (!b->g->nodes[t].error)
		graph_node_error(&b->g->nodes[t], 0, "%s: backing file of '%s' "
				 "cannot be opened: %s", key,
				 b->g->nodes[id].path, strerror(err));
	b->g->nodes[t].flags |= GN_ERROR;
	return t;
}

/* The first reference to a file outside the pool makes its node.  It is
 * read unless it is not a regular file or lies too many files away from
 * the pool (GRAPH_MAX_DEPTH). */
static int target_new_outside(struct graph_builder *b, int id,
			      struct img_err *e)
{
	const char *fmt = b->g->nodes[id].backing_fmt;
	int hops = b->px[id].hops + 1, t;
	char tpath[PATH_MAX];
	const char *ov;
	struct gnode *x;
	struct stat st;

	snprintf(tpath, sizeof(tpath), "%s", b->px[id].tpath);
	if (graph_node_new(b, tpath, &t, e) < 0)
		return -ENOMEM;
	x = &b->g->nodes[t];
	x->dev = b->px[id].tdev;
	x->ino = b->px[id].tino;
	x->flags |= GN_OUTSIDE;
	graph_node_outside_name(x);
	b->px[t].hops = hops;
	if (graph_node_index(b, t, e) < 0)
		return -ENOMEM;
	ov = b->g->nodes[id].path;
	if (!b->px[id].tregular) {
		/* Never opened: stat() told us enough. */
		b->px[t].followed = true;
		if (stat(tpath, &st) == 0)
			graph_node_error(x, 0, "%s: backing file of '%s' is %s, "
					 "not an image file", tpath, ov,
					 ftype(st.st_mode));
		else
			graph_node_error(x, 0, "%s: backing file of '%s' is "
					 "not a regular file", tpath, ov);
	} else if (hops > GRAPH_MAX_DEPTH) {
		b->px[t].followed = true;
		graph_node_error(x, GN_DEEP, "%s: not opened: more than %d "
				 "backing files in a row outside the pool",
				 tpath, GRAPH_MAX_DEPTH);
	} else {
		if (fmt) {
			b->px[t].rec_fmt = strdup(fmt);
			b->px[t].rec_by = strdup(ov);
		}
		graph_node_load(b, t, fmt);
		if (!fmt)
			apply_ref(b, t, NULL, ov);
		enqueue(b, t);
	}
	return t;
}

/* Link node id to the node its backing reference names, making that node
 * when it is new. */
static int follow(struct graph_builder *b, int id, struct img_err *e)
{
	struct gnode *n = &b->g->nodes[id];
	struct gnode_scan *p = &b->px[id];
	int t;

	if (p->followed)
		return 0;
	p->followed = true;
	if (!n->backing_name || (n->flags & (GN_UNSAFE_PROBE | GN_EXTERNAL)))
		return 0;
	identify(b, id);
	free(n->backing_path);
	n->backing_path = p->tpath ? strdup(p->tpath) : NULL;
	if (p->tkind == RESOLVE_EXTERNAL)
		t = target_external(b, id, e);
	else if (p->terr)
		t = target_stat_failed(b, id, e);
	else if ((t = graph_node_find(b, p->tdev, p->tino)) < 0)
		t = target_new_outside(b, id, e);
	else
		apply_ref(b, t, n->backing_fmt, n->path);
	if (t < 0)
		return t;
	b->g->nodes[id].backing = t;
	return 0;
}

/* Canonical spelling of path without touching its last component:
 * realpath() of the directory (cached for runs of one directory) plus the
 * name.  Malloc'd, or NULL. */
static char *canon_name(const char *path, char *cdir, char *creal)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], *out;
	size_t dl = slash ? (size_t)(slash - path) : 0;

	if (dl >= sizeof(dir))
		return NULL;
	if (slash) {
		memcpy(dir, path, dl);
		dir[dl] = '\0';
		if (!dl)
			strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
	}
	if (strcmp(dir, cdir)) {
		if (!realpath(dir, creal))
			return NULL;
		strcpy(cdir, dir);
	}
	/* creal "/" base, put together without a sprintf (twice per
	 * image in a pool scan) */
	const char *base = slash ? slash + 1 : path;
	size_t rl = strlen(creal), bl = strlen(base);
	out = malloc(rl + bl + 2);
	if (out) {
		memcpy(out, creal, rl);
		out[rl] = '/';
		memcpy(out + rl + 1, base, bl + 1);
	}
	return out;
}

/* Node id's reference (resolved to out) names node t's directory entry,
 * a regular file: identified as identify() would, without the stat. */
static void identified(struct graph_builder *b, int id, const char *out,
		       int t)
{
	struct gnode_scan *p = &b->px[id];
	char *tp = strdup(out);

	if (!tp)
		return;            /* identify() will stat it */
	free(p->tpath);
	p->tpath = tp;
	p->stat_done = true;
	p->tkind = RESOLVE_FILE;
	p->terr = 0;
	p->tregular = true;
	p->tdev = b->g->nodes[t].dev;
	p->tino = b->g->nodes[t].ino;
}

struct canon_ent {
	char *name;
	int id;
};

static int cmp_canon(const void *a, const void *b)
{
	return strcmp(((const struct canon_ent *)a)->name,
		      ((const struct canon_ent *)b)->name);
}

/* Before any target is stat'ed: match references to pool files by name
 * alone, so that a pool file referenced without a format is marked an
 * unsafe probe before its own reference is looked at (the raw disk with a
 * forged qcow2 header naming /etc/shadow is never even stat'ed).  Other
 * spellings (hard links, a symlink as the last component) are matched by
 * dev:ino in the next step. */
static void premark_by_name(struct graph_builder *b, int nseed)
{
	struct canon_ent *v = calloc((size_t)nseed + 1, sizeof(*v));
	char cdir[PATH_MAX] = "", creal[PATH_MAX] = "";
	int nv = 0;

	if (!v)
		return;
	for (int i = 0; i < nseed; i++) {
		v[nv].name = canon_name(b->g->nodes[i].path, cdir, creal);
		v[nv].id = i;
		if (v[nv].name)
			nv++;
	}
	qsort(v, (size_t)nv, sizeof(*v), cmp_canon);
	for (int i = 0; i < nseed; i++) {
		struct gnode *n = &b->g->nodes[i];
		char out[PATH_MAX];
		enum resolve_kind k;
		struct canon_ent key, *hit;

		if (!n->backing_name || (n->flags & GN_UNSAFE_PROBE) ||
		    resolve_backing(n->path, n->backing_name, out, sizeof(out),
				    &k, NULL) < 0 || k != RESOLVE_FILE)
			continue;
		key.name = canon_name(out, cdir, creal);
		if (!key.name)
			continue;
		hit = bsearch(&key, v, (size_t)nv, sizeof(*v), cmp_canon);
		free(key.name);
		if (hit && b->px[hit->id].exact)
			identified(b, i, out, hit->id);
		if (hit)
			apply_ref(b, hit->id, n->backing_fmt, n->path);
	}
	for (int i = 0; i < nv; i++)
		free(v[i].name);
	free(v);
}

int graph_follow_all(struct graph_builder *b, struct img_err *e)
{
	int nseed = b->g->n;

	premark_by_name(b, nseed);

	/* Identify every seed's target first, so that a pool file referenced
	 * without a format is known as such before anything is followed. */
	for (int i = 0; i < nseed; i++) {
		struct gnode_scan *p = &b->px[i];
		int t;

		if (b->g->nodes[i].flags & GN_UNSAFE_PROBE)
			continue;    /* its reference is never looked at */
		identify(b, i);
		if (!p->stat_done || p->tkind != RESOLVE_FILE || p->terr ||
		    !p->tregular)
			continue;
		t = graph_node_find(b, p->tdev, p->tino);
		if (t >= 0)
			apply_ref(b, t, b->g->nodes[i].backing_fmt,
				  b->g->nodes[i].path);
	}
	for (int i = 0; i < nseed; i++)
		enqueue(b, i);
	while (b->qhead < b->qlen) {
		int id = b->queue[b->qhead++];
		int r = follow(b, id, e);
		if (r < 0)
			return r;
	}
	return 0;
}
