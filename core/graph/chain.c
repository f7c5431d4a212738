/* chain.c - open a backing chain and read the guest view through it.
 *
 * Safety rules (see chain.h; the pool scan, graph_follow.c, keeps the
 * same ones):
 *  - backing names resolve with resolve_backing() (relative to the overlay's
 *    directory); json:/protocol names are refused, never opened;
 *  - a recorded backing format is believed; without one the target is
 *    probed, and when that probe says anything but raw, the target's own
 *    backing reference is NOT followed (CVE-2008-2004: a guest could have
 *    written a qcow2 header pointing at a host file into a raw image).  A
 *    read that would need that reference fails with a message instead;
 *  - loops are detected by (st_dev, st_ino); depth is capped at
 *    CHAIN_MAX_DEPTH; img_open refuses non-regular files.
 * One fd per layer, so the fd count is bounded by the chain depth.
 */
#include "chain.h"
#include "formats/img.h"
#include "formats/io/io.h"
#include "resolve.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct layer_id {
	dev_t dev;
	ino_t ino;
};

static int chain_push(struct chain *c, struct img *img, bool probed,
		      struct img_err *e)
{
	struct img **nl = realloc(c->layer, (size_t)(c->n + 1) * sizeof(*nl));
	if (!nl)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	c->layer = nl;
	bool *np = realloc(c->probed, (size_t)(c->n + 1) * sizeof(*np));
	if (!np)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	c->probed = np;
	c->layer[c->n] = img;
	c->probed[c->n] = probed;
	c->n++;
	return 0;
}

/* Backing name recorded in img, or NULL. */
static const char *backing_name_of(struct img *img, const char **fmt)
{
	struct img_backing b = { 0 };

	*fmt = NULL;
	if (img_get_backing(img, &b, NULL) < 0)
		return NULL;
	if (!b.name || !*b.name)
		return NULL;
	*fmt = b.format;
	return b.name;
}

/* Layer i was reached without a recorded format and probes as non-raw:
 * its backing reference is never followed.  The top counts too when its
 * format was probed and its name says raw disk (*.raw, *.img): that is the
 * guest-written header of CVE-2008-2004 given on the command line. */
static bool backing_refused(const struct chain *c, int i)
{
	const char *fmt;

	if (!c->probed[i] || img_is_raw(c->layer[i]) ||
	    !backing_name_of(c->layer[i], &fmt))
		return false;
	return i > 0 || resolve_raw_disk_name(c->layer[i]->path);
}

/* Remember the identity of the bottom layer; a file already in the chain
 * is a loop. */
static int note_layer(struct chain *c, struct layer_id **ids,
		      const char *top_path, struct img_err *e)
{
	struct img *cur = c->layer[c->n - 1];
	struct layer_id *ni;
	struct stat sb;
	int r;

	r = io_fstat(cur->fd, &sb);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", cur->path);
	for (int i = 0; i < c->n - 1; i++)
		if ((*ids)[i].dev == sb.st_dev && (*ids)[i].ino == sb.st_ino)
			return err_set(e, ELOOP, "%s: backing chain loop: '%s' "
				       "is already layer %d of the chain",
				       top_path, cur->path, i);
	ni = realloc(*ids, (size_t)c->n * sizeof(*ni));
	if (!ni)
		return err_set(e, ENOMEM, "%s: out of memory", top_path);
	*ids = ni;
	ni[c->n - 1].dev = sb.st_dev;
	ni[c->n - 1].ino = sb.st_ino;
	return 0;
}

/* Open the backing file of the bottom layer into *img, or leave *img NULL
 * where the chain ends: no backing file, a reference that is never
 * followed, or the layer to stop at. */
static int open_below(struct chain *c, const char *top_path, int top_flags,
		      const struct layer_id *stop, struct img **img,
		      bool *probed, struct img_err *e)
{
	struct img *cur = c->layer[c->n - 1];
	const char *bfmt, *bname;
	char path[PATH_MAX];
	enum resolve_kind kind;
	struct stat bs;
	int r;

	*img = NULL;
	if (backing_refused(c, c->n - 1))
		return 0;          /* reported when a read needs it */
	bname = backing_name_of(cur, &bfmt);
	if (!bname)
		return 0;
	r = resolve_backing(cur->path, bname, path, sizeof(path), &kind, e);
	if (r < 0 || kind == RESOLVE_NONE)
		return r;
	if (kind == RESOLVE_EXTERNAL)
		return err_set(e, ENOTSUP, "%s: backing file '%s' is a "
			       "protocol or json: name; it is never opened",
			       cur->path, bname);
	if (c->n >= CHAIN_MAX_DEPTH)
		return err_set(e, ELOOP, "%s: backing chain is deeper than %d "
			       "layers", top_path, CHAIN_MAX_DEPTH);
	if (bfmt && !img_format_find(bfmt))
		return err_set(e, ENOTSUP, "%s: backing file '%s' has format "
			       "'%s', which is not supported", cur->path,
			       bname, bfmt);
	/* Lower layers are only read; an inspecting open stays inspecting
	 * so that damaged layers can still be shown. */
	r = img_open(path, bfmt, top_flags & IMG_O_INSPECT, img, probed, e);
	if (r < 0) {
		*img = NULL;
		err_prefix(e, "%s: cannot open backing file: ", cur->path);
		return r;
	}
	if ((stop->dev || stop->ino) && io_fstat((*img)->fd, &bs) == 0 &&
	    bs.st_dev == stop->dev && bs.st_ino == stop->ino) {
		img_close(*img);
		*img = NULL;
	}
	return 0;
}

const char *fmt_stated_for(const struct fmt_stated *st, int nst, dev_t dev,
			   ino_t ino)
{
	for (int i = nst - 1; i >= 0 && dev; i--)
		if (st[i].dev == dev && st[i].ino == ino)
			return st[i].fmt;
	return NULL;
}

/* The bottom layer, probed, is stated as the format it probes as. */
static bool layer_stated(const struct chain *c, const struct layer_id *id,
			 const struct fmt_stated *st, int nst)
{
	const char *f = fmt_stated_for(st, nst, id->dev, id->ino);

	return f && !strcmp(f, img_format_name(c->layer[c->n - 1]));
}

int chain_open(const char *top_path, const char *fmt, int top_flags,
	       dev_t stop_dev, ino_t stop_ino, struct chain **out,
	       struct img_err *e)
{
	return chain_open_stated(top_path, fmt, top_flags, stop_dev, stop_ino,
				 NULL, 0, out, e);
}

int chain_open_stated(const char *top_path, const char *fmt, int top_flags,
		      dev_t stop_dev, ino_t stop_ino,
		      const struct fmt_stated *st, int nst, struct chain **out,
		      struct img_err *e)
{
	const struct layer_id stop = { stop_dev, stop_ino };
	struct layer_id *ids = NULL;
	struct chain *c;
	struct img *img;
	bool probed;
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ENOMEM, "%s: out of memory", top_path);
	r = img_open(top_path, fmt, top_flags, &img, &probed, e);
	while (r == 0 && img) {
		r = chain_push(c, img, probed, e);
		if (r < 0) {
			img_close(img);
			break;
		}
		r = note_layer(c, &ids, top_path, e);
		if (r == 0 && c->probed[c->n - 1] &&
		    layer_stated(c, &ids[c->n - 1], st, nst))
			c->probed[c->n - 1] = false;
		if (r == 0)
			r = open_below(c, top_path, top_flags, &stop, &img,
				       &probed, e);
		/* A link the overlay's format refuses (vmdk parent CID):
		 * QEMU fails the reads that reach it; so does the chain. */
		if (r == 0 && img &&
		    (r = img_check_backing(c->layer[c->n - 1], img, e)) < 0)
			img_close(img);
	}
	free(ids);
	if (r < 0) {
		chain_close(c);
		return r;
	}
	*out = c;
	return 0;
}

int chain_dup(const struct chain *c, struct chain **out, struct img_err *e)
{
	struct chain *d = calloc(1, sizeof(*d));
	int r = d ? 0 : err_set(e, ENOMEM, "out of memory");

	*out = NULL;
	for (int i = 0; r == 0 && i < c->n; i++) {
		const struct img *l = c->layer[i];
		struct img *img;
		/* A probed layer stays probed: it opens no further files
		 * outside its directory (format.h). */
		r = img_open_fd(l->fd, l->path, img_format_name(l),
				l->flags & ~IMG_O_RDWR, &img, NULL, e);
		if (r == 0) {
			r = chain_push(d, img, c->probed[i], e);
			if (r < 0)
				img_close(img);
		}
	}
	if (r < 0) {
		chain_close(d);
		return r;
	}
	*out = d;
	return 0;
}

void chain_close(struct chain *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		img_close(c->layer[i]);
	free(c->layer);
	free(c->probed);
	free(c);
}

int chain_block_status(struct chain *c, int from, uint64_t off, uint64_t len,
		       uint64_t *pnum, struct chain_status *st,
		       struct img_err *e)
{
	if (from < 0 || from >= c->n || len == 0)
		return err_set(e, EINVAL, "chain_block_status: bad arguments");
	for (int i = from; i < c->n; i++) {
		struct img *l = c->layer[i];
		uint64_t n;

		if (off >= l->virtual_size) {
			/* Past a (shorter) layer's end the guest reads zeros
			 * and nothing below shows through (QEMU's rule). */
			st->depth = i - from;
			st->bs = IMG_BS_ZERO;
			*pnum = len;
			return 0;
		}
		if (len > l->virtual_size - off)
			len = l->virtual_size - off;
		int r = img_block_status(l, off, len, &n, e);
		if (r < 0)
			return r;
		if (n == 0 || n > len)
			return err_set(e, EIO, "%s: block status at %llu "
				       "returned a bad length", l->path,
				       (unsigned long long)off);
		if (r != IMG_BS_UNALLOC) {
			st->depth = i - from;
			st->bs = (enum img_bs)r;
			*pnum = n;
			return 0;
		}
		len = n;
	}
	if (backing_refused(c, c->n - 1)) {
		const char *f, *nm = backing_name_of(c->layer[c->n - 1], &f);
		if (c->n == 1)
			return err_set(e, ENOTSUP,
				       "%s: a raw-disk name whose header "
				       "probes as %s; refusing to follow its "
				       "backing reference '%s' (CVE-2008-2004;"
				       " give -f %s if the image is trusted)",
				       c->layer[0]->path, img_format_name(c->layer[0]),
				       nm, img_format_name(c->layer[0]));
		return err_set(e, ENOTSUP,
			       "backing file %s has no recorded format and "
			       "probes as %s; refusing to follow its backing "
			       "reference '%s'", c->layer[c->n - 1]->path,
			       img_format_name(c->layer[c->n - 1]), nm);
	}
	st->depth = c->n - from;
	st->bs = IMG_BS_UNALLOC;
	*pnum = len;
	return 0;
}

int chain_pread(struct chain *c, int from, uint64_t off, void *buf,
		size_t len, struct img_err *e)
{
	uint8_t *b = buf;

	while (len) {
		struct chain_status s;
		uint64_t n;
		int r = chain_block_status(c, from, off, len, &n, &s, e);
		if (r < 0)
			return r;
		if (s.bs == IMG_BS_DATA) {
			struct img *l = c->layer[from + s.depth];
			r = img_pread(l, off, b, (size_t)n, e);
			if (r < 0)
				return r;
		} else {
			memset(b, 0, (size_t)n);
		}
		b += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}
