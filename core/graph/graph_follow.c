/* pool.c - pool scan, part 2: following backing references.
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
#include "users.h"
#include "lock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void identify(struct pool_builder *b, int id)
{
	struct gnode *n = &b->g->nodes[id];
	struct pnode *p = &b->px[id];
	char out[PATH_MAX];
	enum resolve_kind kind;
	struct img_err e = { 0 };
	struct stat st;

	if (p->stat_done || !n->backing_name)
		return;
	p->stat_done = true;
	free(p->tpath);
	p->tpath = NULL;
	if (resolve_backing(n->path, n->backing_name, out, sizeof(out), &kind,
			    &e) < 0) {
		p->tkind = RESOLVE_FILE;
		p->terr = e.code;
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

static void enqueue(struct pool_builder *b, int id)
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
static void unlink_backing(struct pool_builder *b, int id)
{
	b->g->nodes[id].backing = -1;
	b->px[id].followed = false;
}

/* Overlay `by` references node t, recording format fmt (NULL: none). */
static void apply_ref(struct pool_builder *b, int t, const char *fmt,
		      const char *by)
{
	struct gnode *n = &b->g->nodes[t];
	struct pnode *p = &b->px[t];

	if (n->flags & (GN_EXTERNAL | GN_MISSING) || !n->dev)
		return;
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
				pool_load_header(b, t, fmt);
				enqueue(b, t);
			}
		} else if (strcmp(p->rec_fmt, fmt)) {
			pool_node_error(n, 0, "%s: overlays disagree on its "
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

/* Find or make the placeholder node for a target that is not an image we
 * can read: external name, missing file, stat error. */
static int placeholder(struct pool_builder *b, const char *key, unsigned flags,
		       struct img_err *e)
{
	struct graph *g = b->g;
	int id;

	for (int i = 0; i < g->n; i++)
		if (!g->nodes[i].dev && (g->nodes[i].flags & flags) == flags &&
		    !strcmp(g->nodes[i].path, key))
			return i;
	if (pool_new_node(b, key, &id, e) < 0)
		return -1;
	g->nodes[id].flags |= flags | GN_OUTSIDE;
	b->px[id].followed = true;
	return id;
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

static int follow(struct pool_builder *b, int id, struct img_err *e)
{
	struct gnode *n;
	struct pnode *p;
	const char *fmt;
	int t;

	if (b->px[id].followed)
		return 0;
	b->px[id].followed = true;
	n = &b->g->nodes[id];
	if (!n->backing_name || (n->flags & (GN_UNSAFE_PROBE | GN_EXTERNAL)))
		return 0;
	identify(b, id);
	n = &b->g->nodes[id];
	p = &b->px[id];
	fmt = n->backing_fmt;
	free(n->backing_path);
	n->backing_path = p->tpath ? strdup(p->tpath) : NULL;

	if (p->tkind == RESOLVE_EXTERNAL) {
		t = placeholder(b, n->backing_name, GN_EXTERNAL, e);
		if (t < 0)
			return -ENOMEM;
		if (!b->g->nodes[t].format && fmt)
			b->g->nodes[t].format = strdup(fmt);
	} else if (p->terr) {
		char key[PATH_MAX];
		int err = p->terr;

		snprintf(key, sizeof(key), "%s", p->tpath ? p->tpath : "?");
		t = placeholder(b, key, err == ENOENT ? GN_MISSING : GN_ERROR,
				e);
		if (t < 0)
			return -ENOMEM;
		n = &b->g->nodes[id];
		if (!b->g->nodes[t].error)
			pool_node_error(&b->g->nodes[t], 0,
					"%s: backing file of '%s' cannot be "
					"opened: %s", key, n->path,
					strerror(err));
		b->g->nodes[t].flags |= GN_ERROR;
	} else {
		t = pool_hash_find(b, p->tdev, p->tino);
		if (t < 0) {
			struct stat st;
			bool deep = p->hops + 1 > GRAPH_MAX_DEPTH;
			int hops = p->hops + 1;
			char tpath[PATH_MAX];

			snprintf(tpath, sizeof(tpath), "%s", p->tpath);
			if (pool_new_node(b, tpath, &t, e) < 0)
				return -ENOMEM;
			b->g->nodes[t].dev = b->px[id].tdev;
			b->g->nodes[t].ino = b->px[id].tino;
			b->g->nodes[t].flags |= GN_OUTSIDE;
			pool_outside_name(&b->g->nodes[t]);
			b->px[t].hops = hops;
			if (pool_hash_add(b, t, e) < 0)
				return -ENOMEM;
			n = &b->g->nodes[id];
			p = &b->px[id];
			if (!p->tregular) {
				/* Never opened: stat() told us enough. */
				b->px[t].followed = true;
				if (stat(tpath, &st) == 0)
					pool_node_error(&b->g->nodes[t], 0,
						"%s: backing file of '%s' is "
						"%s, not an image file", tpath,
						n->path, ftype(st.st_mode));
				else
					pool_node_error(&b->g->nodes[t], 0,
						"%s: backing file of '%s' is not "
						"a regular file", tpath, n->path);
			} else if (deep) {
				b->px[t].followed = true;
				pool_node_error(&b->g->nodes[t], GN_DEEP,
					"%s: not opened: more than %d backing "
					"files in a row outside the pool",
					tpath, GRAPH_MAX_DEPTH);
			} else {
				if (fmt) {
					b->px[t].rec_fmt = strdup(fmt);
					b->px[t].rec_by = strdup(n->path);
				}
				pool_load_header(b, t, fmt);
				if (!fmt)
					apply_ref(b, t, NULL, n->path);
				enqueue(b, t);
			}
		} else {
			apply_ref(b, t, fmt, n->path);
		}
	}
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
	out = malloc(strlen(creal) + strlen(slash ? slash + 1 : path) + 2);
	if (out)
		sprintf(out, "%s/%s", creal, slash ? slash + 1 : path);
	return out;
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
static void premark_by_name(struct pool_builder *b, int nseed)
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
		if (hit)
			apply_ref(b, hit->id, n->backing_fmt, n->path);
	}
	for (int i = 0; i < nv; i++)
		free(v[i].name);
	free(v);
}

static int follow_all(struct pool_builder *b, struct img_err *e)
{
	int nseed = b->g->n;

	premark_by_name(b, nseed);

	/* Identify every seed's target first, so that a pool file referenced
	 * without a format is known as such before anything is followed. */
	for (int i = 0; i < nseed; i++) {
		struct pnode *p = &b->px[i];
		int t;

		if (b->g->nodes[i].flags & GN_UNSAFE_PROBE)
			continue;    /* its reference is never looked at */
		identify(b, i);
		if (!p->stat_done || p->tkind != RESOLVE_FILE || p->terr ||
		    !p->tregular)
			continue;
		t = pool_hash_find(b, p->tdev, p->tino);
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

void graph_free(struct graph *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n; i++) {
		struct gnode *n = &g->nodes[i];
		free(n->path);
		free(n->name);
		free(n->format);
		free((char *)n->info.write_refusal);
		free(n->backing_name);
		free(n->backing_fmt);
		free(n->backing_path);
		free(n->children);
		free(n->error);
	}
	free(g->nodes);
	for (int i = 0; i < g->nusers; i++) {
		free(g->users[i].name);
		free(g->users[i].user_kind);
		free(g->users[i].image);
	}
	free(g->users);
	free(g->users_file);
	for (int i = 0; i < g->npool_paths; i++)
		free(g->pool_paths[i]);
	free(g->pool_paths);
	free(g);
}

static void builder_free(struct pool_builder *b)
{
	for (int i = 0; b->px && i < b->g->n; i++) {
		free(b->px[i].tpath);
		free(b->px[i].rec_fmt);
		free(b->px[i].rec_by);
	}
	free(b->px);
	free(b->hash);
	free(b->queue);
}

int graph_scan(char *const *paths, int npaths, const struct scan_opts *o,
	       struct graph **out, struct img_err *e)
{
	struct scan_opts none = { 0 };
	struct pool_builder b;
	struct users_file *uf = NULL;
	struct graph *g;
	int r;

	*out = NULL;
	if (!o)
		o = &none;
	g = calloc(1, sizeof(*g));
	if (!g)
		return err_set(e, ENOMEM, "pool scan: out of memory");
	memset(&b, 0, sizeof(b));
	b.g = g;
	b.probe_locks = o->probe_locks;
	g->pool_paths = calloc((size_t)npaths + 1, sizeof(char *));
	if (!g->pool_paths) {
		r = err_set(e, ENOMEM, "pool scan: out of memory");
		goto fail;
	}
	for (int i = 0; i < npaths; i++) {
		g->pool_paths[i] = strdup(paths[i]);
		g->npool_paths++;
	}
	if (o->users_file) {
		r = users_load(o->users_file, &uf, e);
		if (r < 0)
			goto fail;
	}
	r = pool_add_paths(&b, paths, npaths, o->recursive, e);
	if (r < 0)
		goto fail;
	for (int i = 0; uf && i < uf->n; i++) {
		int id;
		struct img_err ue = { 0 };

		if (pool_add_file(&b, uf->v[i].path, GN_OUTSIDE, true, &id,
				  &ue) < 0) {
			id = placeholder(&b, uf->v[i].path,
					 ue.code == ENOENT ? GN_MISSING :
					 GN_ERROR, e);
			if (id < 0) {
				r = -ENOMEM;
				goto fail;
			}
			if (!g->nodes[id].error)
				pool_node_error(&g->nodes[id], 0, "%s:%d: %s",
						uf->path, uf->v[i].line,
						ue.msg);
		}
		uf->v[i].node = id;
	}
	r = follow_all(&b, e);
	if (r < 0)
		goto fail;
	r = pool_finish(&b, e);
	if (r < 0)
		goto fail;
	if (uf) {
		r = users_attach(g, uf, e);
		if (r < 0)
			goto fail;
	}
	if (o->probe_locks) {
		r = lock_probe_graph(g, e);
		if (r < 0)
			goto fail;
	}
	users_free(uf);
	builder_free(&b);
	*out = g;
	return 0;
fail:
	users_free(uf);
	builder_free(&b);
	graph_free(g);
	return r;
}

int graph_lookup(const struct graph *g, const char *path, struct img_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].dev == st.st_dev &&
		    g->nodes[i].ino == st.st_ino && st.st_dev)
			return i;
	return err_set(e, ENOENT, "%s: not in the pool", path);
}

bool graph_is_below(const struct graph *g, int n, int anc)
{
	/* The graph is a forest after pool_finish; the bound guards anyway. */
	for (int steps = 0; n >= 0 && steps <= g->n; steps++) {
		n = g->nodes[n].backing;
		if (n == anc)
			return true;
	}
	return false;
}
