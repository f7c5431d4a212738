/* marks.c - read the journals, stale records and trashes beside the
 * pool's images and mark the nodes; see marks.h. */
#include "marks.h"
#include "core/commit/journal.h"
#include "core/commit/stale.h"
#include "core/commit/trash.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Journals larger than this are not parsed just to list what they cover
 * (recover reads them whole). */
#define MARKS_JOURNAL_MAX (64u << 20)

/* Nodes sorted by dev:ino, to match records to nodes. */
struct idkey {
	uint64_t dev, ino;
	int id;
};

struct mload {
	struct graph *g;
	struct graph_marks *m;
	struct idkey *keys;
	int nkeys;
};

static int cmp_key(const void *a, const void *b)
{
	const struct idkey *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static int node_of(const struct mload *ml, uint64_t dev, uint64_t ino)
{
	struct idkey k = { dev, ino, -1 }, *f;

	if (!ml->nkeys)
		return -1;
	f = bsearch(&k, ml->keys, (size_t)ml->nkeys, sizeof(k), cmp_key);
	return f ? f->id : -1;
}

/* The node of the file at dir/name, or -1. */
static int node_at(const struct mload *ml, const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) || stat(path, &st) < 0)
		return -1;
	return node_of(ml, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

static void *grow(void *v, int n, size_t elem)
{
	return realloc(v, elem * (size_t)(n + 1));
}

/* ---- journals ----------------------------------------------------------- */

static int cover(struct gmark_journal *j, struct graph *g, int id)
{
	int *nv;

	if (id < 0) {
		j->noutside++;
		return 0;
	}
	for (int i = 0; i < j->nnodes; i++)
		if (j->nodes[i] == id)
			return 0;
	if (!(nv = grow(j->nodes, j->nnodes, sizeof(int))))
		return -ENOMEM;
	j->nodes = nv;
	nv[j->nnodes++] = id;
	g->nodes[id].flags |= GN_JOURNAL;
	return 0;
}

/* What a valid journal covers: base, top, every parent. */
static int journal_cover(struct mload *ml, struct gmark_journal *gj,
			 const struct journal *j)
{
	int r = cover(gj, ml->g, node_of(ml, j->base_dev, j->base_ino));

	if (r == 0)
		r = cover(gj, ml->g, node_of(ml, j->top_dev, j->top_ino));
	for (int i = 0; r == 0 && i < j->nparents; i++)
		r = cover(gj, ml->g, node_of(ml, j->parents[i].dev,
					     j->parents[i].ino));
	return r;
}

static int load_journal(struct mload *ml, const char *dir, const char *name)
{
	struct img_err e = { 0 };
	struct journal *j = NULL;
	struct gmark_journal *gj, *nv;
	struct stat st;
	int r;

	if (!(nv = grow(ml->m->journals, ml->m->njournals, sizeof(*nv))))
		return -ENOMEM;
	ml->m->journals = nv;
	gj = &nv[ml->m->njournals++];
	memset(gj, 0, sizeof(*gj));
	if (asprintf(&gj->path, "%s/%s", dir, name) < 0 ||
	    !(gj->dir = strdup(dir))) {
		gj->path = NULL;
		return -ENOMEM;
	}
	if (stat(gj->path, &st) == 0 && (uint64_t)st.st_size >
	    MARKS_JOURNAL_MAX)
		err_set(&e, EFBIG, "too large to list what it covers");
	else if (journal_read(gj->path, &j, &e) == 0)
		gj->valid = true;
	if (!gj->valid) {
		if (e.code == ENOMEM || !(gj->error = strdup(e.msg)))
			return -ENOMEM;
		/* at least the base it is named after */
		return cover(gj, ml->g, node_at(ml, dir, name +
						strlen(JOURNAL_PREFIX)));
	}
	gj->relinked = j->state == JOURNAL_RELINKED;
	gj->txid = j->txid;
	r = journal_cover(ml, gj, j);
	journal_free(j);
	return r;
}

/* ---- stale records ------------------------------------------------------ */

static int add_stale(struct mload *ml, const struct gmark_stale *s)
{
	struct gmark_stale *nv = grow(ml->m->stale, ml->m->nstale,
				      sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	ml->m->stale = nv;
	nv[ml->m->nstale++] = *s;
	ml->g->nodes[s->node].flags |= s->unused ? GN_UNUSED : GN_STALE;
	return 0;
}

/* Does anything read node n (an overlay, a users-file entry, a live
 * lock)? */
static bool node_read(const struct graph *g, int n)
{
	if (g->nodes[n].nchildren)
		return true;
	for (int i = 0; i < g->nusers; i++)
		if (g->users[i].node == n)
			return true;
	return false;
}

static int stale_marks(struct mload *ml, int base,
		       const struct stale_record *s)
{
	for (int t = 0; t < s->ntx; t++) {
		const struct stale_tx *tx = &s->tx[t];

		for (int i = 0; i < tx->n; i++) {
			const struct stale_img *m = &tx->v[i];
			struct gmark_stale gs = {
				.node = node_of(ml, m->dev, m->ino),
				.base = base, .unused = m->role == STALE_TOP,
				.pending = tx->state == STALE_PENDING,
				.txid = tx->txid, .created = tx->created,
				.top_dev = tx->top_dev, .top_ino = tx->top_ino,
			};
			int r;

			/* A top is unused once its parents name base, and
			 * only while nothing reads it again. */
			if (gs.node < 0 || gs.node == base ||
			    (gs.unused && (gs.pending ||
					   node_read(ml->g, gs.node))))
				continue;
			if ((r = add_stale(ml, &gs)) < 0)
				return r;
		}
	}
	return 0;
}

static int load_stale(struct mload *ml, const char *dir, const char *name)
{
	struct img_err e = { 0 };
	struct stale_record *s;
	char path[PATH_MAX], bname[NAME_MAX + 1];
	size_t n = strlen(name) - strlen(STALE_PREFIX) - strlen(STALE_SUFFIX);
	int base, r;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return 0;
	snprintf(bname, sizeof(bname), "%.*s", (int)n,
		 name + strlen(STALE_PREFIX));
	base = node_at(ml, dir, bname);
	r = stale_read(path, &s, &e);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		struct gmark_bad *nv = grow(ml->m->bad, ml->m->nbad,
					    sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		ml->m->bad = nv;
		nv[ml->m->nbad] = (struct gmark_bad){ strdup(path),
						      strdup(e.msg), base };
		ml->m->nbad++;
		return 0;
	}
	/* A record for a file that is no longer at base's name marks
	 * nothing. */
	if (base >= 0 && s->base_dev == (uint64_t)ml->g->nodes[base].dev &&
	    s->base_ino == (uint64_t)ml->g->nodes[base].ino)
		r = stale_marks(ml, base, s);
	stale_free(s);
	return r;
}

/* ---- trash -------------------------------------------------------------- */

static int load_trash(struct mload *ml, const char *dir)
{
	struct trash_summary s;
	struct gmark_trash *nv;

	if (trash_summary_dir(dir, &s, NULL) < 0 || !s.files)
		return 0;
	if (!(nv = grow(ml->m->trash, ml->m->ntrash, sizeof(*nv))))
		return -ENOMEM;
	ml->m->trash = nv;
	nv[ml->m->ntrash] = (struct gmark_trash){
		.dir = strdup(dir), .files = s.files, .ntx = s.ntx,
		.bytes = s.bytes, .last_txid = s.last_txid,
		.last_created = s.last_created,
	};
	return nv[ml->m->ntrash++].dir ? 0 : -ENOMEM;
}

/* ---- directories -------------------------------------------------------- */

static bool prefixed(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix)) && s[strlen(prefix)];
}

static bool suffixed(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && !strcmp(s + n - k, suffix);
}

/* Records are regular files we wrote: a symlink or anything else at such
 * a name is none of ours. */
static bool regular_at(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

/* One entry of dir (dfd: dir, open). */
static int scan_name(struct mload *ml, const char *dir, int dfd, const char *n)
{
	if (!strcmp(n, TRASH_DIR))
		return load_trash(ml, dir);
	if (!prefixed(n, ".imgraph-") || io_replace_is_temp(n) ||
	    !regular_at(dfd, n))
		return 0;
	if (prefixed(n, JOURNAL_PREFIX) && !suffixed(n, ".bad"))
		return load_journal(ml, dir, n);
	if (prefixed(n, STALE_PREFIX) && suffixed(n, STALE_SUFFIX) &&
	    strlen(n) > strlen(STALE_PREFIX) + strlen(STALE_SUFFIX))
		return load_stale(ml, dir, n);
	return 0;
}

/* The scan's listing of dir, when the scan listed it (same dev:ino). */
static const struct marks_listed_dir *listed(const struct marks_listing *ls,
					     const char *dir)
{
	struct stat st;

	if (!ls || !ls->n || stat(dir, &st) < 0)
		return NULL;
	for (int i = 0; i < ls->n; i++)
		if (ls->v[i].dev == st.st_dev && ls->v[i].ino == st.st_ino)
			return &ls->v[i];
	return NULL;
}

/* A directory the pool scan listed is not read again (100,000 entries
 * are a second getdents pass): its ".imgraph-" names are taken from the
 * scan's listing. */
static int scan_listed(struct mload *ml, const char *dir,
		       const struct marks_listed_dir *ld)
{
	int dfd, r = 0;

	if (!ld->n)
		return 0;
	dfd = io_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return 0;       /* unreadable: nothing to see there */
	for (int i = 0; r == 0 && i < ld->n; i++)
		r = scan_name(ml, dir, dfd, ld->names[i]);
	io_close(dfd);
	return r;
}

static int scan_dir(struct mload *ml, const char *dir,
		    const struct marks_listing *ls)
{
	const struct marks_listed_dir *ld = listed(ls, dir);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (ld)
		return scan_listed(ml, dir, ld);
	d = opendir(dir);
	if (!d)
		return 0;       /* unreadable: nothing to see there */
	while (r == 0 && (de = readdir(d)))
		r = scan_name(ml, dir, dirfd(d), de->d_name);
	closedir(d);
	return r;
}

bool marks_name_wanted(const char *name)
{
	return !strncmp(name, ".imgraph-", 9);
}

int marks_listing_add(struct marks_listing *ls, dev_t dev, ino_t ino,
		      char **names, int n)
{
	if (ls->n == ls->cap) {
		int nc = ls->cap ? ls->cap * 2 : 8;
		struct marks_listed_dir *nv = realloc(ls->v,
						      sizeof(*nv) * (size_t)nc);
		if (!nv)
			return -ENOMEM;
		ls->v = nv;
		ls->cap = nc;
	}
	ls->v[ls->n++] = (struct marks_listed_dir){ dev, ino, names, n };
	return 0;
}

void marks_listing_free(struct marks_listing *ls)
{
	for (int i = 0; i < ls->n; i++) {
		for (int k = 0; k < ls->v[i].n; k++)
			free(ls->v[i].names[k]);
		free(ls->v[i].names);
	}
	free(ls->v);
	memset(ls, 0, sizeof(*ls));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Records lie beside images we read: pool members and the backing files
 * they reach.  Not beside a file in error (a device, a loop...) nor an
 * image only a users file names: their directories are none of ours to
 * list. */
static bool look_beside(const struct gnode *n)
{
	return n->path && n->dev &&
	       !(n->flags & (GN_ERROR | GN_EXTERNAL | GN_MISSING)) &&
	       ((n->flags & GN_IN_POOL) || n->nchildren);
}

/* The directory of every such node and pool path, each once (by name,
 * then by dev:ino). */
static int collect_dirs(const struct graph *g, char ***out, int *nout)
{
	char **v = calloc((size_t)(g->n + g->npool_paths) + 1, sizeof(*v));
	struct stat *ids;
	int n = 0, k = 0;

	if (!v)
		return -ENOMEM;
	for (int i = 0; i < g->n + g->npool_paths; i++) {
		const char *p = i < g->n ? g->nodes[i].path :
				g->pool_paths[i - g->n];
		struct stat st;
		char buf[PATH_MAX];
		const char *slash;

		if (i < g->n && !look_beside(&g->nodes[i]))
			continue;
		if (i >= g->n && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			snprintf(buf, sizeof(buf), "%s", p);
		else if (!(slash = strrchr(p, '/')))
			snprintf(buf, sizeof(buf), ".");
		else
			snprintf(buf, sizeof(buf), "%.*s",
				 slash == p ? 1 : (int)(slash - p), p);
		/* A directory's images come one after another: its name
		 * is kept once, not once per image. */
		if (n && !strcmp(v[n - 1], buf))
			continue;
		if (!(v[n] = strdup(buf)))
			goto oom;
		n++;
	}
	if (n)
		qsort(v, (size_t)n, sizeof(*v), cmp_str);
	ids = calloc((size_t)n + 1, sizeof(*ids));
	if (!ids)
		goto oom;
	for (int i = 0; i < n; i++) {
		bool seen = (k && !strcmp(v[i], v[k - 1])) ||
			    stat(v[i], &ids[k]) < 0;

		for (int j = 0; !seen && j < k; j++)
			seen = ids[j].st_dev == ids[k].st_dev &&
			       ids[j].st_ino == ids[k].st_ino;
		if (seen) {
			free(v[i]);
			continue;
		}
		v[k++] = v[i];
	}
	free(ids);
	*out = v;
	*nout = k;
	return 0;
oom:
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -ENOMEM;
}

int graph_marks_load(struct graph *g, const struct marks_listing *ls,
		     struct img_err *e)
{
	struct mload ml = { .g = g };
	char **dirs = NULL;
	int ndirs = 0, r;

	ml.m = calloc(1, sizeof(*ml.m));
	ml.keys = calloc((size_t)g->n + 1, sizeof(*ml.keys));
	r = ml.m && ml.keys ? collect_dirs(g, &dirs, &ndirs) : -ENOMEM;
	for (int i = 0; r == 0 && i < g->n; i++)
		if (g->nodes[i].dev)
			ml.keys[ml.nkeys++] = (struct idkey){
				(uint64_t)g->nodes[i].dev,
				(uint64_t)g->nodes[i].ino, i };
	if (r == 0 && ml.nkeys)
		qsort(ml.keys, (size_t)ml.nkeys, sizeof(*ml.keys), cmp_key);
	for (int i = 0; r == 0 && i < ndirs; i++)
		r = scan_dir(&ml, dirs[i], ls);
	for (int i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	free(ml.keys);
	g->marks = ml.m;
	return r < 0 ? err_set(e, -r, "pool scan: out of memory") : 0;
}

const char *marks_when(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(buf, len, "at %lld", (long long)t);
	return buf;
}

void graph_marks_free(struct graph_marks *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->njournals; i++) {
		free(m->journals[i].path);
		free(m->journals[i].dir);
		free(m->journals[i].error);
		free(m->journals[i].nodes);
	}
	free(m->journals);
	free(m->stale);
	for (int i = 0; i < m->nbad; i++) {
		free(m->bad[i].path);
		free(m->bad[i].error);
	}
	free(m->bad);
	for (int i = 0; i < m->ntrash; i++)
		free(m->trash[i].dir);
	free(m->trash);
	free(m);
}
