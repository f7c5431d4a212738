/* graph_scan.c - graph_scan, the entry of a pool scan; see graph.h.
 *
 * The seeds are the pool paths (files, and the image files of directories,
 * walked in name order) and the images of the users file.  Then their
 * backing references are followed (graph_follow.c), the links checked and
 * completed (graph_link.c), and the users and live lock holders attached.
 */
#include "graph_int.h"
#include "lock.h"
#include "marks.h"
#include "users.h"

#include "formats/io/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dent_list {
	struct dent *v;
	size_t n, cap;
};

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name,
		      ((const struct dent *)b)->name);
}

static void dents_free(struct dent_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* Keep name for the marks (marks_name_wanted), in directory order. */
static int keep_for_marks(struct dent_list *mk, const char *name)
{
	if (mk->n == mk->cap) {
		size_t nc = mk->cap ? mk->cap * 2 : 8;
		struct dent *nv = realloc(mk->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		mk->v = nv;
		mk->cap = nc;
	}
	mk->v[mk->n].name = strdup(name);
	mk->v[mk->n].type = 0;
	if (!mk->v[mk->n].name)
		return -ENOMEM;
	mk->n++;
	return 0;
}

/* Hand the names kept for the marks to the listing of the directory dp
 * (the marks then do not read it again). */
static int list_for_marks(struct marks_listing *ls, DIR *dp,
			  struct dent_list *mk)
{
	struct stat st;
	char **names = NULL;

	if (fstat(dirfd(dp), &st) < 0)
		return 0;       /* the marks read the directory themselves */
	if (mk->n && !(names = calloc(mk->n, sizeof(*names))))
		return -ENOMEM;
	for (size_t i = 0; i < mk->n; i++)
		names[i] = mk->v[i].name;
	if (marks_listing_add(ls, st.st_dev, st.st_ino, names,
			      (int)mk->n) < 0) {
		free(names);
		return -ENOMEM;
	}
	free(mk->v);
	memset(mk, 0, sizeof(*mk));
	return 0;
}

/* The entries of dir (without "." and ".."), sorted by name, so that a
 * pool lists the same way on every file system; what the marks want of
 * them goes to ls. */
static int read_dir_sorted(const char *dir, struct dent_list *l,
			   struct marks_listing *ls, struct img_err *e)
{
	struct dent_list mk = { 0 };
	struct dirent *d;
	DIR *dp = opendir(dir);
	int r = 0;

	memset(l, 0, sizeof(*l));
	if (!dp)
		return err_set_errno(e, errno, "%s: cannot read directory",
				     dir);
	while (r == 0 && (d = readdir(dp))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (marks_name_wanted(d->d_name) &&
		    keep_for_marks(&mk, d->d_name) < 0) {
			r = err_set(e, ENOMEM, "pool scan: out of memory");
			break;
		}
		if (l->n == l->cap) {
			size_t nc = l->cap ? l->cap * 2 : 64;
			struct dent *nv = realloc(l->v, nc * sizeof(*nv));
			if (!nv) {
				r = err_set(e, ENOMEM, "pool scan: out of "
					    "memory");
				break;
			}
			l->v = nv;
			l->cap = nc;
		}
		l->v[l->n].name = strdup(d->d_name);
		l->v[l->n].type = d->d_type;
		if (!l->v[l->n].name)
			r = err_set(e, ENOMEM, "pool scan: out of memory");
		else
			l->n++;
	}
	if (r == 0 && list_for_marks(ls, dp, &mk) < 0)
		r = err_set(e, ENOMEM, "pool scan: out of memory");
	closedir(dp);
	dents_free(&mk);
	if (r < 0) {
		dents_free(l);
		return r;
	}
	if (l->n)	/* qsort(NULL, 0) is undefined behaviour */
		qsort(l->v, l->n, sizeof(*l->v), cmp_dent);
	return 0;
}

struct dir_seen {
	dev_t dev;
	ino_t ino;
};

struct dir_walk {
	bool recursive;
	struct marks_listing *listing;   /* what the marks need of each */
	struct dir_seen *seen;     /* directories walked, by dev:ino */
	int nseen;
};

/* Each directory is walked once: *first is false when dir was walked
 * before (a bind mount, or a symlink loop). */
static int walk_first_visit(struct dir_walk *w, const char *dir, bool *first,
			    struct img_err *e)
{
	struct dir_seen *ns;
	struct stat st;

	*first = false;
	if (stat(dir, &st) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", dir);
	for (int i = 0; i < w->nseen; i++)
		if (w->seen[i].dev == st.st_dev && w->seen[i].ino == st.st_ino)
			return 0;
	ns = realloc(w->seen, sizeof(*ns) * (size_t)(w->nseen + 1));
	if (!ns)
		return err_set(e, ENOMEM, "pool scan: out of memory");
	w->seen = ns;
	ns[w->nseen++] = (struct dir_seen){ st.st_dev, st.st_ino };
	*first = true;
	return 0;
}

static int scan_dir(struct graph_builder *b, struct dir_walk *w,
		    const char *dir, struct img_err *e);

/* The directory being walked.  Its images are opened by name relative to
 * dfd (no path walk per image); dfd is closed while a subdirectory is
 * walked, so one directory is open at a time however deep the tree. */
struct dir_at {
	const char *dir;
	int dfd;                   /* -1: not open (yet) */
	bool failed;               /* cannot open it: use paths */
	struct graph_prefetch *pf; /* NULL: peek on this thread */
	bool pf_paused;            /* try to start it at the next entry */
	bool pf_off;               /* out of descriptors: not in this dir */
};

static int dir_fd(struct dir_at *da)
{
	if (da->dfd < 0 && !da->failed) {
		int fd = io_open(da->dir, O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0)
			da->failed = true;
		else
			da->dfd = fd;
	}
	return da->dfd;
}

/* Close the directory (and stop peeking ahead in it) while a
 * subdirectory is walked, and at the end. */
static void dir_close(struct dir_at *da)
{
	if (da->dfd >= 0)
		io_close(da->dfd);
	da->dfd = -1;
	graph_prefetch_stop(da->pf);
	da->pf = NULL;
	/* after the subdirectory, the run of entries up to the next one
	 * may be long enough to peek ahead in */
	da->pf_paused = !da->pf_off;
}

/* One directory entry: a subdirectory (walked when recursive), a regular
 * file or a symlink (a seed when it leads to an image); FIFOs, sockets and
 * devices are never opened.  pk: the entry already peeked (a regular
 * file), or NULL. */
static int scan_entry(struct graph_builder *b, struct dir_walk *w,
		      struct dir_at *da, const struct dent *d,
		      struct gnode_peek *pk, struct img_err *e)
{
	const char *dir = da->dir;
	char path[PATH_MAX];
	unsigned char type = d->type;
	struct gnode_peek own;
	struct stat st;
	int id, dfd;

	if (graph_own_name(d->name))
		return 0;
	if (!strcmp(dir, "."))
		snprintf(path, sizeof(path), "%s", d->name);
	else if (snprintf(path, sizeof(path), "%s%s%s", dir,
			  dir[strlen(dir) - 1] == '/' ? "" : "/",
			  d->name) >= (int)sizeof(path))
		return 0;
	dfd = dir_fd(da);
	if (type == DT_UNKNOWN) {
		if ((dfd >= 0 ? fstatat(dfd, d->name, &st, AT_SYMLINK_NOFOLLOW)
			      : lstat(path, &st)) < 0)
			return 0;     /* vanished meanwhile */
		type = S_ISDIR(st.st_mode) ? DT_DIR :
		       S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
	}
	if (type == DT_DIR) {
		if (!w->recursive)
			return 0;
		dir_close(da);
		return scan_dir(b, w, path, e);
	}
	if (type == DT_REG && !pk) {
		graph_node_peek_entry(dfd, d->name, path, b->probe_locks,
				      &own);
		pk = &own;
	}
	if (pk == &own) {
		int r = graph_node_add_peeked(b, path, GN_IN_POOL, pk, &id, e);
		if (own.fd >= 0)
			io_close(own.fd);
		return r;
	}
	if (pk)
		return graph_node_add_peeked(b, path, GN_IN_POOL, pk, &id, e);
	if (type != DT_LNK)
		return 0;
	return graph_node_add_at(b, dfd, d->name, path, GN_IN_POOL, false,
				 &id, e);
}

/* The entries in name order; regular files peeked ahead on worker threads
 * when there are many (graph_prefetch.c), restarted after each
 * subdirectory walked. */
static int scan_dir(struct graph_builder *b, struct dir_walk *w,
		    const char *dir, struct img_err *e)
{
	struct dir_at da = { .dir = dir, .dfd = -1, .pf_paused = true };
	struct dent_list l;
	bool first;
	int r;

	r = walk_first_visit(w, dir, &first, e);
	if (r < 0 || !first)
		return r;
	r = read_dir_sorted(dir, &l, w->listing, e);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		if (da.pf_paused) {
			da.pf_paused = false;
			da.pf = graph_prefetch_start(dir, l.v, i, l.n,
						     w->recursive,
						     b->probe_locks);
		}
		struct graph_prefetch *pf = da.pf;
		struct gnode_peek *pk = pf ? graph_prefetch_get(pf, i) : NULL;
		if (pf && !pk && graph_prefetch_starved(pf)) {
			/* Out of descriptors: one at a time from here. */
			graph_prefetch_stop(pf);
			da.pf = pf = NULL;
			da.pf_off = true;
		}
		r = scan_entry(b, w, &da, &l.v[i], pk, e);
		if (pf && pf == da.pf)
			graph_prefetch_put(pf, i);
	}
	dir_close(&da);
	dents_free(&l);
	return r;
}

static int seed_pool_paths(struct graph_builder *b, char *const *paths,
			   int npaths, bool recursive,
			   struct marks_listing *ls, struct img_err *e)
{
	struct dir_walk w = { .recursive = recursive, .listing = ls };
	int r = 0;

	for (int i = 0; i < npaths && r == 0; i++) {
		struct stat st;
		int id;

		if (stat(paths[i], &st) < 0) {
			r = err_set_errno(e, errno, "%s: cannot stat",
					  paths[i]);
			break;
		}
		if (S_ISDIR(st.st_mode))
			r = scan_dir(b, &w, paths[i], e);
		else
			r = graph_node_add_file(b, paths[i], GN_IN_POOL, true,
						&id, e);
	}
	free(w.seen);
	return r;
}

/* The images of the users file are seeds too; one that cannot be read
 * becomes a node in error naming the file and line. */
static int seed_users(struct graph_builder *b, struct users_file *uf,
		      struct img_err *e)
{
	struct graph *g = b->g;

	for (int i = 0; i < uf->n; i++) {
		struct img_err ue = { 0 };
		int id, r;

		r = graph_node_add_file(b, uf->v[i].path, GN_OUTSIDE, true,
					&id, &ue);
		if (r < 0) {
			id = graph_node_placeholder(b, uf->v[i].path,
						    r == -ENOENT ? GN_MISSING :
						    GN_ERROR, e);
			if (id < 0)
				return -ENOMEM;
			if (!g->nodes[id].error)
				graph_node_error(&g->nodes[id], 0, "%s:%d: %s",
						 uf->path, uf->v[i].line,
						 ue.msg);
		}
		uf->v[i].node = id;
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
		free((char *)n->info.data_file_name);
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
		free(g->users[i].qmp);
	}
	free(g->users);
	free(g->users_file);
	for (int i = 0; i < g->npool_paths; i++)
		free(g->pool_paths[i]);
	free(g->pool_paths);
	graph_marks_free(g->marks);
	for (int i = 0; i < g->nstated; i++) {
		free(g->stated[i].path);
		free(g->stated[i].fmt);
	}
	free(g->stated);
	free(g);
}

/* The statements of the scan, copied, with the identity of each file
 * (one that cannot be stat'ed matches no node). */
static int copy_stated(struct graph *g, const struct scan_opts *o,
		       struct img_err *e)
{
	if (o->nstated <= 0)
		return 0;
	g->stated = calloc((size_t)o->nstated, sizeof(*g->stated));
	if (!g->stated)
		return err_set(e, ENOMEM, "pool scan: out of memory");
	for (int i = 0; i < o->nstated; i++) {
		struct fmt_stated *s = &g->stated[g->nstated];
		struct stat st;

		s->path = strdup(o->stated[i].path);
		s->fmt = strdup(o->stated[i].fmt);
		g->nstated++;
		if (!s->path || !s->fmt)
			return err_set(e, ENOMEM, "pool scan: out of memory");
		if (stat(s->path, &st) == 0) {
			s->dev = st.st_dev;
			s->ino = st.st_ino;
		}
	}
	return 0;
}

const char *graph_stated(const struct graph *g, int id)
{
	const struct gnode *n = &g->nodes[id];

	return fmt_stated_for(g->stated, g->nstated, n->dev, n->ino);
}

const char *graph_stated_probe(const struct graph *g, int id)
{
	const char *f = graph_stated(g, id);
	const struct gnode *n = &g->nodes[id];

	return f && n->format && !(n->flags & GN_ERROR) &&
	       !strcmp(f, n->format) ? f : NULL;
}

const char *graph_link_fmt(const struct graph *g, int id)
{
	const struct gnode *c = &g->nodes[id];
	const struct gnode *b;

	if (c->backing < 0)
		return NULL;
	if (c->backing_fmt)
		return c->backing_fmt;
	b = &g->nodes[c->backing];
	return (b->flags & GN_STATED) ? graph_stated(g, b->id) : NULL;
}

static void builder_free(struct graph_builder *b)
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

static struct graph *graph_new(char *const *paths, int npaths)
{
	struct graph *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->pool_paths = calloc((size_t)npaths + 1, sizeof(char *));
	if (!g->pool_paths) {
		free(g);
		return NULL;
	}
	for (int i = 0; i < npaths; i++) {
		g->pool_paths[i] = strdup(paths[i]);
		g->npool_paths++;
	}
	return g;
}

/* Everything after the graph exists: seeds, links, users, locks. */
static int scan_into(struct graph_builder *b, char *const *paths, int npaths,
		     const struct scan_opts *o, struct img_err *e)
{
	struct users_file *uf = NULL;
	struct marks_listing ls = { 0 };
	int r = 0;

	if (o->users_file)
		r = users_load(o->users_file, &uf, e);
	if (r == 0)
		r = seed_pool_paths(b, paths, npaths, o->recursive, &ls, e);
	if (r == 0 && uf)
		r = seed_users(b, uf, e);
	if (r == 0)
		r = graph_follow_all(b, e);
	if (r == 0)
		r = graph_link(b, e);
	if (r == 0 && uf)
		r = users_attach(b->g, uf, e);
	if (r == 0 && o->probe_locks)
		r = lock_probe_graph(b->g, e);
	if (r == 0)
		r = graph_marks_load(b->g, &ls, e);
	marks_listing_free(&ls);
	users_free(uf);
	return r;
}

int graph_scan(char *const *paths, int npaths, const struct scan_opts *o,
	       struct graph **out, struct img_err *e)
{
	struct scan_opts none = { 0 };
	struct graph_builder b;
	int r;

	*out = NULL;
	if (!o)
		o = &none;
	memset(&b, 0, sizeof(b));
	b.probe_locks = o->probe_locks;
	b.g = graph_new(paths, npaths);
	if (!b.g)
		return err_set(e, ENOMEM, "pool scan: out of memory");
	b.g->recursive = o->recursive;
	r = copy_stated(b.g, o, e);
	if (r == 0)
		r = scan_into(&b, paths, npaths, o, e);
	builder_free(&b);
	if (r < 0) {
		graph_free(b.g);
		return r;
	}
	*out = b.g;
	return 0;
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

int graph_count_below(char *const *paths, int npaths,
		      const struct scan_opts *o)
{
	struct scan_opts ro = { .recursive = true };
	struct graph *g = NULL;
	int n;

	if (o && o->recursive)
		return 0;
	if (graph_scan(paths, npaths, &ro, &g, NULL) < 0)
		return 0;
	n = g->npool_images;
	graph_free(g);
	return n;
}
