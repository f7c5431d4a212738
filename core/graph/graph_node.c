/* graph_node.c - the nodes of a scan: making them, the dev:ino index,
 * reading one image's header facts, and adding a file as a seed node.
 *
 * Every file is stat'ed before it is opened and refused unless it is a
 * regular file, so a FIFO, socket or device is never opened at all; the open
 * itself still uses O_NONBLOCK and the fstat after it must name the same
 * dev:ino (the file could be swapped in between).  Each image is opened,
 * its header read, and closed again: open descriptors stay bounded however
 * large the pool is.
 */
#include "graph_int.h"
#include "formats/img.h"
#include "formats/io/io.h"
#include "lock.h"
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The unit of struct stat's st_blocks. */
#define ST_BLOCK_BYTES 512

static uint64_t hash_of(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^
		     (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 29);
}

int graph_node_find(const struct graph_builder *b, dev_t dev, ino_t ino)
{
	uint64_t h = hash_of(dev, ino);
	uint32_t tag = (uint32_t)(h >> 32);

	if (!b->hcap)
		return -1;
	for (size_t i = (size_t)h & (b->hcap - 1);; i = (i + 1) &
	     (b->hcap - 1)) {
		const struct gn_hslot *v = &b->hash[i];
		if (!v->id1)
			return -1;
		if (v->tag == tag && b->g->nodes[v->id1 - 1].dev == dev &&
		    b->g->nodes[v->id1 - 1].ino == ino)
			return v->id1 - 1;
	}
}

static void hash_put(struct gn_hslot *tab, size_t cap, const struct gnode *n,
		     int id)
{
	uint64_t h = hash_of(n->dev, n->ino);
	size_t i = (size_t)h & (cap - 1);

	while (tab[i].id1)
		i = (i + 1) & (cap - 1);
	tab[i] = (struct gn_hslot){ id + 1, (uint32_t)(h >> 32) };
}

int graph_node_index(struct graph_builder *b, int id, struct img_err *e)
{
	/* Kept at most half full, so probing stays short. */
	if (!b->hcap || (size_t)(b->g->n) * 2 >= b->hcap) {
		size_t ncap = b->hcap ? b->hcap * 2 : 1024;
		struct gn_hslot *nt = calloc(ncap, sizeof(*nt));
		if (!nt)
			return err_set(e, ENOMEM, "pool scan: out of memory");
		for (size_t i = 0; i < b->hcap; i++)
			if (b->hash[i].id1)
				hash_put(nt, ncap,
					 &b->g->nodes[b->hash[i].id1 - 1],
					 b->hash[i].id1 - 1);
		free(b->hash);
		b->hash = nt;
		b->hcap = ncap;
	}
	hash_put(b->hash, b->hcap, &b->g->nodes[id], id);
	return 0;
}

static char *display_name(const char *path)
{
	while (path[0] == '.' && path[1] == '/' && path[2])
		path += 2;
	return strdup(path);
}

void graph_node_outside_name(struct gnode *n)
{
	char real[PATH_MAX], cwd[PATH_MAX];
	size_t l;
	char *nn;

	if (!realpath(n->path, real))
		return;
	if (getcwd(cwd, sizeof(cwd)) && (l = strlen(cwd)) > 1 &&
	    !strncmp(real, cwd, l) && real[l] == '/')
		nn = strdup(real + l + 1);
	else
		nn = strdup(real);
	if (nn) {
		free(n->name);
		n->name = nn;
	}
}

int graph_node_new(struct graph_builder *b, const char *path, int *id,
		   struct img_err *e)
{
	struct graph *g = b->g;
	struct gnode *n;

	if (g->n == b->cap) {
		int ncap = b->cap ? b->cap * 2 : 64;
		struct gnode *nn = realloc(g->nodes, sizeof(*nn) * ncap);
		struct gnode_scan *np;
		if (!nn)
			return err_set(e, ENOMEM, "pool scan: out of memory");
		g->nodes = nn;
		np = realloc(b->px, sizeof(*np) * ncap);
		if (!np)
			return err_set(e, ENOMEM, "pool scan: out of memory");
		b->px = np;
		b->cap = ncap;
	}
	n = &g->nodes[g->n];
	memset(n, 0, sizeof(*n));
	memset(&b->px[g->n], 0, sizeof(b->px[g->n]));
	n->id = g->n;
	n->backing = -1;
	n->path = strdup(path);
	n->name = display_name(path);
	if (!n->path || !n->name) {
		free(n->path);
		free(n->name);
		return err_set(e, ENOMEM, "pool scan: out of memory");
	}
	*id = g->n++;
	return 0;
}

void graph_node_error(struct gnode *n, unsigned flags, const char *fmt, ...)
{
	va_list ap;
	char buf[IMG_ERR_MSG_MAX];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n->flags |= GN_ERROR | flags;
	if (n->error && strstr(n->error, buf))
		return;               /* the same reason, found again */
	if (!n->error) {
		n->error = strdup(buf);
	} else {
		/* Keep every reason: "first; second". */
		size_t l = strlen(n->error) + strlen(buf) + 3;
		char *m = malloc(l);
		if (m) {
			snprintf(m, l, "%s; %s", n->error, buf);
			free(n->error);
			n->error = m;
		}
	}
}

int graph_node_placeholder(struct graph_builder *b, const char *key,
			   unsigned flags, struct img_err *e)
{
	struct graph *g = b->g;
	int id;

	for (int i = 0; i < g->n; i++)
		if (!g->nodes[i].dev && (g->nodes[i].flags & flags) == flags &&
		    !strcmp(g->nodes[i].path, key))
			return i;
	if (graph_node_new(b, key, &id, e) < 0)
		return -1;
	g->nodes[id].flags |= flags | GN_OUTSIDE;
	b->px[id].followed = true;
	return id;
}

/* Forget what a previous load read (the node is reloaded with another
 * format, e.g. when an overlay records "raw" for a file that probed as
 * qcow2). */
static void node_unload(struct gnode *n)
{
	free((char *)n->info.write_refusal);
	free((char *)n->info.data_file_name);
	memset(&n->info, 0, sizeof(n->info));
	free(n->format);
	free(n->backing_name);
	free(n->backing_fmt);
	free(n->error);
	n->format = n->backing_name = n->backing_fmt = n->error = NULL;
	n->flags &= ~(GN_ERROR | GN_RAW_MAGIC | GN_UNVERIFIED);
	n->raw_magic = NULL;
	n->raw_magic_tail = false;
}

/* Open a file already known (by stat, or by the directory entry type when
 * want is NULL) to be regular, and make sure the descriptor is that very
 * file.  *got receives its fstat.  at: the file as name in directory
 * dfd (dfd < 0: path). */
struct at {
	int dfd;
	const char *name;
};

static int open_regular_at(struct at at, const char *path,
			   const struct stat *want, int *fd, struct stat *got,
			   struct img_err *e)
{
	int fl = O_RDONLY | O_NONBLOCK | O_NOCTTY;
	int f = at.dfd >= 0 ? io_openat(at.dfd, at.name, fl, 0)
			    : io_open(path, fl, 0);

	if (f < 0)
		return err_set_errno(e, -f, "%s: cannot open", path);
	if (io_fstat(f, got) < 0 || !S_ISREG(got->st_mode) ||
	    (want && (got->st_dev != want->st_dev ||
		      got->st_ino != want->st_ino))) {
		io_close(f);
		return err_set(e, EAGAIN, "%s: file changed while it was being "
			       "opened", path);
	}
	*fd = f;
	return 0;
}

/* The head of the file on pk->fd (one pread) and what it probes as: by
 * the head, and by the trailer when the head says raw (a fixed VHD is
 * known by its footer). */
static void peek_head(struct gnode_peek *pk)
{
	const struct img_format *t;

	pk->hlen = io_pread(pk->fd, pk->head, sizeof(pk->head), 0);
	pk->tail = false;
	if (pk->hlen < 0)
		return;
	pk->probed = img_format_probe(pk->head, (size_t)pk->hlen <
				      GRAPH_PROBE_BYTES ? (size_t)pk->hlen :
				      GRAPH_PROBE_BYTES);
	t = pk->probed;
	if (strcmp(pk->probed->name, "raw") || img_probe_fd(pk->fd, &t) < 0)
		return;
	pk->tail = t != pk->probed;
	pk->probed = t;
}

/* The fd is open anyway: QEMU's lock bytes cost one fcntl, and
 * access(W_OK) of the open file spares a path walk (a kernel without
 * faccessat2 leaves it to graph_link, by path). */
static void peek_facts(struct gnode_peek *pk, bool locks)
{
	pk->lock_probed = locks && lock_probe_fd(pk->fd, &pk->ls) == 0;
	pk->wok = 0;
	if (faccessat(pk->fd, "", W_OK, AT_EMPTY_PATH) == 0)
		pk->wok = 1;
	else if (errno == EACCES || errno == EROFS || errno == EPERM ||
		 errno == ETXTBSY)
		pk->wok = -1;
}

/* After peek_head: 1 when the file is to become a node, else 0 (a file
 * found in a directory that cannot be read or is no image is skipped) or
 * -errno (named: the read failed); the fd is closed unless 1.  A
 * directory contributes what probes as an image format, plus *.raw /
 * *.img (raw has no signature to probe). */
static int peek_keep(struct gnode_peek *pk, const char *path, bool named,
		     struct img_err *e)
{
	int r = 1;

	if (pk->hlen < 0)
		r = named ? err_set_errno(e, (int)-pk->hlen, "%s: cannot read "
					  "header", path) : 0;
	else if (!named && !strcmp(pk->probed->name, "raw") &&
		 !resolve_raw_disk_name(path))
		r = 0;
	if (r != 1) {
		io_close(pk->fd);
		pk->fd = -1;
	}
	return r;
}

int graph_node_peek_entry(int dfd, const char *name, const char *path,
			  bool locks, struct gnode_peek *pk)
{
	int r;

	pk->fd = -1;
	/* Open first and let the fstat confirm the entry's type: one stat
	 * less per image of a large pool. */
	r = open_regular_at((struct at){ dfd, name }, path, NULL, &pk->fd,
			    &pk->st, NULL);
	if (r < 0)
		return r;
	peek_head(pk);
	if (peek_keep(pk, path, false, NULL) == 1)
		peek_facts(pk, locks);
	return 0;
}

/* What the driver reports replaces what stat said, except sizes it does
 * not know. */
static int node_take_info(struct gnode *n, struct img *img,
			  struct img_err *e)
{
	uint64_t fsz = n->info.file_size, asz = n->info.actual_size;
	struct img_info info;

	memset(&info, 0, sizeof(info));
	if (img_get_info(img, &info, e) < 0)
		return -1;
	n->info = info;
	n->info.format = n->format;
	if (!n->info.file_size)
		n->info.file_size = fsz;
	if (!n->info.actual_size)
		n->info.actual_size = asz;
	n->info.write_refusal = info.write_refusal ?
		strdup(info.write_refusal) : NULL;
	/* The struct img's strings die with it: keep the ones the plan
	 * names; the other pointers are not kept. */
	n->info.data_file_name = info.data_file_name ?
		strdup(info.data_file_name) : NULL;
	n->info.snapshots = NULL;
	n->info.bitmap_list = NULL;
	n->info.encrypt = NULL;
	n->info.create_type = NULL;
	n->info.extents = NULL;
	return 0;
}

static void node_take_backing(struct gnode *n, struct img *img)
{
	struct img_backing bk = { 0 };
	struct img_err e = { 0 };

	if (img_get_backing(img, &bk, &e) < 0) {
		graph_node_error(n, 0, "%s", e.msg);
		return;
	}
	if (bk.name && *bk.name)
		n->backing_name = strdup(bk.name);
	if (bk.format && *bk.format)
		n->backing_fmt = strdup(bk.format);
}

/* Load node id from the file peeked in pk with format fmt, or as probed
 * when fmt is NULL. */
static void load_from_fd(struct graph_builder *b, int id,
			 const struct gnode_peek *pk, const char *fmt)
{
	struct gnode *n = &b->g->nodes[id];
	struct gnode_scan *p = &b->px[id];
	const struct img_format *probed = pk->probed;
	struct img_err e = { 0 };
	struct img *img = NULL;
	char fmtbuf[64];
	const char *use;

	/* fmt may be this very node's backing_fmt (an image that names
	 * itself), which node_unload frees: keep a copy.  Format names are
	 * at most 15 bytes (checked when the header is parsed). */
	if (fmt) {
		snprintf(fmtbuf, sizeof(fmtbuf), "%s", fmt);
		fmt = fmtbuf;
	}
	use = fmt ? fmt : probed->name;
	node_unload(n);
	p->probe_fmt = probed->name;
	n->info.file_size = (uint64_t)pk->st.st_size;
	n->info.actual_size = (uint64_t)pk->st.st_blocks * ST_BLOCK_BYTES;
	if (pk->lock_probed) {
		n->lock_probed = true;
		n->lock_held = pk->ls.held;
		n->lock_unshared = pk->ls.unshared;
	}
	p->wok = pk->wok;
	n->format = strdup(use);
	n->info.format = n->format;
	if (fmt && !img_format_find(fmt)) {
		/* A recorded format we cannot read is an error, never a
		 * reason to guess: a guess could read a raw disk's guest data
		 * as an image header (QEMU refuses the same way). */
		graph_node_error(n, 0, "%s: backing format '%s' recorded by "
				 "'%s' is not supported (not probing instead)",
				 n->path, fmt, p->rec_by ? p->rec_by : "?");
		return;
	}
	/* Recorded raw, but the bytes carry another format's signature: a
	 * commit into it would overwrite that image's header or footer. */
	if (fmt && !strcmp(fmt, "raw") && strcmp(probed->name, "raw")) {
		n->flags |= GN_RAW_MAGIC;
		n->raw_magic = probed->name;
		n->raw_magic_tail = pk->tail;
	}
	/* A file whose bytes carry an image signature and that cannot be
	 * read far enough to know its backing file is an unverified
	 * reader: what it reads is unknown. */
	unsigned unverified = strcmp(probed->name, "raw") ? GN_UNVERIFIED : 0;
	if (img_open_borrowed(pk->fd, n->path, use, IMG_O_INSPECT, &pk->st,
			      pk->head, (size_t)pk->hlen, &img, &e) < 0) {
		graph_node_error(n, unverified, "%s", e.msg);
		return;
	}
	if (node_take_info(n, img, &e) < 0)
		graph_node_error(n, unverified, "%s", e.msg);
	else
		node_take_backing(n, img);
	if ((n->flags & GN_ERROR) && !n->backing_name)
		n->flags |= unverified;
	img_close(img);
}

void graph_node_load(struct graph_builder *b, int id, const char *fmt)
{
	struct gnode *n = &b->g->nodes[id];
	struct img_err e = { 0 };
	struct gnode_peek pk;
	struct stat st;

	if (stat(n->path, &st) < 0) {
		int err = errno;

		node_unload(n);
		graph_node_error(n, err == ENOENT ? GN_MISSING : 0,
				 "%s: cannot stat: %s", n->path,
				 strerror(err));
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != n->dev ||
	    st.st_ino != n->ino) {
		node_unload(n);
		graph_node_error(n, 0, "%s: file changed during the scan",
				 n->path);
		return;
	}
	if (open_regular_at((struct at){ -1, NULL }, n->path, &st, &pk.fd,
			    &pk.st, &e) < 0) {
		node_unload(n);
		graph_node_error(n, 0, "%s", e.msg);
		return;
	}
	peek_head(&pk);
	if (pk.hlen < 0) {
		node_unload(n);
		graph_node_error(n, 0, "%s: cannot read header: %s", n->path,
				 strerror((int)-pk.hlen));
	} else {
		peek_facts(&pk, b->probe_locks);
		load_from_fd(b, id, &pk, fmt);
	}
	io_close(pk.fd);
}

/* A file that is already a node was reached again (a second name, or a
 * users-file image that is also in the pool). */
static void seed_again(struct graph_builder *b, int id, const char *path,
		       unsigned flags)
{
	struct gnode *n = &b->g->nodes[id];
	struct stat l1, l2;

	/* Show a file by its own name rather than by a symlink that
	 * happened to sort first. */
	if (lstat(n->path, &l1) == 0 && S_ISLNK(l1.st_mode) &&
	    lstat(path, &l2) == 0 && !S_ISLNK(l2.st_mode)) {
		char *np = strdup(path), *nn = display_name(path);
		if (np && nn) {
			free(n->path);
			free(n->name);
			n->path = np;
			n->name = nn;
		} else {
			free(np);
			free(nn);
		}
	}
	n->flags |= n->flags & GN_IN_POOL ? flags & ~GN_OUTSIDE : flags;
	if (flags & GN_IN_POOL)
		n->flags &= ~GN_OUTSIDE;
	b->px[id].seed = true;
}

/* Make a seed node of the file peeked in pk (its fd left open). */
static int seed_new(struct graph_builder *b, const char *path, unsigned flags,
		    bool exact, struct gnode_peek *pk, int *id,
		    struct img_err *e)
{
	struct gnode *n;
	int nid;

	if (graph_node_new(b, path, &nid, e) < 0)
		return -ENOMEM;
	n = &b->g->nodes[nid];
	n->dev = pk->st.st_dev;
	n->ino = pk->st.st_ino;
	n->flags |= flags;
	b->px[nid].seed = true;
	if (graph_node_index(b, nid, e) < 0)
		return -ENOMEM;
	b->px[nid].exact = exact;
	load_from_fd(b, nid, pk, NULL);
	/* Named like a raw disk but carrying another format's header: the
	 * CVE-2008-2004 shape (a guest wrote an image header into its raw
	 * disk).  Show it, but never follow its backing reference. */
	if (resolve_raw_disk_name(path) && n->format && strcmp(n->format, "raw"))
		n->flags |= GN_PROBED | GN_UNSAFE_PROBE;
	*id = nid;
	return 0;
}

/* The file st is already a node (reached by a second name): *id. */
static bool seed_known(struct graph_builder *b, const struct stat *st,
		       const char *path, unsigned flags, int *id)
{
	int nid = graph_node_find(b, st->st_dev, st->st_ino);

	if (nid < 0)
		return false;
	seed_again(b, nid, path, flags);
	*id = nid;
	return true;
}

int graph_node_add_peeked(struct graph_builder *b, const char *path,
			  unsigned flags, struct gnode_peek *pk, int *id,
			  struct img_err *e)
{
	*id = -1;
	if (pk->fd < 0 || seed_known(b, &pk->st, path, flags, id))
		return 0;
	return seed_new(b, path, flags, true, pk, id, e);
}

int graph_node_add_at(struct graph_builder *b, int dfd, const char *name,
		      const char *path, unsigned flags, bool named, int *id,
		      struct img_err *e)
{
	struct gnode_peek pk = { .fd = -1 };
	struct stat st;
	int r;

	*id = -1;
	if ((dfd >= 0 ? fstatat(dfd, name, &st, 0) : stat(path, &st)) < 0)
		/* A directory entry that vanished, dangles or loops is
		 * skipped; a file named explicitly is an error. */
		return named ? err_set_errno(e, errno, "%s: cannot stat", path)
			     : 0;
	if (!S_ISREG(st.st_mode))
		return named ? err_set(e, EINVAL, "%s: not a regular file or "
				       "a directory", path) : 0;
	if (seed_known(b, &st, path, flags, id))
		return 0;
	r = open_regular_at((struct at){ dfd, name }, path, &st, &pk.fd,
			    &pk.st, named ? e : NULL);
	if (r < 0)   /* a directory entry that cannot be opened is skipped */
		return named ? r : 0;
	peek_head(&pk);
	r = peek_keep(&pk, path, named, e);
	if (r < 1)
		return r;
	peek_facts(&pk, b->probe_locks);
	r = seed_new(b, path, flags, false, &pk, id, e);
	io_close(pk.fd);
	return r;
}

int graph_node_add_file(struct graph_builder *b, const char *path,
			unsigned flags, bool named, int *id, struct img_err *e)
{
	return graph_node_add_at(b, -1, NULL, path, flags, named, id, e);
}
