/* io_cut.c - power-cut simulator (see io_cut.h).
 *
 * Unsynced writes are kept per inode (dev:ino), not per fd: the page cache
 * belongs to the inode, so an fsync through any fd makes every earlier
 * write to that file durable, and fd numbers are reused after close.  For
 * each inode with pending records we keep a dup of the first written fd so
 * the undo can still reach the file after the caller closed its fd.
 *
 * Names are kept per directory: a create, rename or unlink is durable once
 * the directory holding the name is fsynced.  Until then a rename or unlink
 * keeps the inode it took a name from alive through a hidden hard link
 * (.imgraph-cut.PID.N next to it), so that the cut can put it back; a
 * normal exit removes those links.  The cut loses a suffix of the pending
 * name operations, as a journaling file system that commits metadata in
 * order would.
 *
 * This file uses raw pread/pwrite/rename on purpose: the simulator must not
 * count as mutating ops nor trigger its own hooks.
 */
#include "io_cut.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Above this much saved pre-image the simulator stops recording and the
 * cut degrades to a plain kill (tests use small fixtures). */
#define CUT_MAX_SAVED (512ull << 20)
#define CUT_SECTOR 512

struct cut_rec {
	dev_t dev;
	ino_t ino;
	bool trunc;                /* an ftruncate: undone whole, never torn */
	uint64_t off;
	size_t len;
	uint64_t old_size;         /* file size before the op */
	uint8_t *old;              /* old bytes of [off, min(off+len, old_size)) */
	size_t have;               /* their count */
};

struct cut_name {
	enum io_cut_name_op op;
	char *from, *to;           /* to: rename only */
	char *save;                /* link to the inode the op unnamed, or NULL */
	dev_t dev[2];              /* directories that must be synced: of */
	ino_t ino[2];              /* from and (rename) of to */
	bool synced[2];
};

struct cut_file {
	dev_t dev;
	ino_t ino;
	int fd;                    /* our dup, -1 when none */
};

static struct {
	bool active;
	bool overflow;
	uint64_t seed;
	struct cut_rec *recs;      /* oldest first */
	size_t nrecs, caprecs;
	struct cut_file *files;
	size_t nfiles, capfiles;
	struct cut_name *names;    /* oldest first */
	size_t nnames, capnames;
	unsigned nsaves;
	uint64_t saved;
} cut;

static uint64_t cut_rand(void)
{
	/* xorshift64*: deterministic for a given seed, no libc state. */
	uint64_t x = cut.seed ? cut.seed : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cut.seed = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Room for one more element in array v of *cap (n used): returns v or its
 * reallocation (*cap updated), NULL when out of memory (v still valid). */
static void *cut_grow(void *v, size_t *cap, size_t n, size_t elem)
{
	size_t nc;

	if (n < *cap)
		return v;
	nc = *cap ? *cap * 2 : 16;
	v = realloc(v, nc * elem);
	if (v)
		*cap = nc;
	return v;
}

static struct cut_file *cut_file_get(int fd, dev_t dev, ino_t ino)
{
	struct cut_file *nf;

	for (size_t i = 0; i < cut.nfiles; i++)
		if (cut.files[i].dev == dev && cut.files[i].ino == ino) {
			if (cut.files[i].fd < 0)
				cut.files[i].fd = fcntl(fd, F_DUPFD_CLOEXEC,
							64);
			return &cut.files[i];
		}
	nf = cut_grow(cut.files, &cut.capfiles, cut.nfiles, sizeof(*nf));
	if (!nf)
		return NULL;
	cut.files = nf;
	cut.files[cut.nfiles] = (struct cut_file){
		.dev = dev, .ino = ino,
		.fd = fcntl(fd, F_DUPFD_CLOEXEC, 64),
	};
	return &cut.files[cut.nfiles++];
}

/* Start a record for a mutating op on fd: false when the simulator is not
 * recording (overflowed, or not a regular file). */
static bool cut_rec_init(int fd, struct cut_rec *r)
{
	struct stat st;

	if (cut.overflow || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	if (!cut_file_get(fd, st.st_dev, st.st_ino)) {
		cut.overflow = true;
		return false;
	}
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->old_size = (uint64_t)st.st_size;
	return true;
}

/* Save the pre-image of r's [off, off + have) and append r. */
static void cut_push(struct cut_rec *r, int fd, size_t have)
{
	struct cut_rec *nr;

	if (cut.saved + have > CUT_MAX_SAVED) {
		cut.overflow = true;
		return;
	}
	if (have) {
		r->old = malloc(have);
		if (!r->old ||
		    pread(fd, r->old, have, (off_t)r->off) != (ssize_t)have) {
			free(r->old);
			cut.overflow = true;
			return;
		}
	}
	r->have = have;
	nr = cut_grow(cut.recs, &cut.caprecs, cut.nrecs, sizeof(*nr));
	if (!nr) {
		free(r->old);
		cut.overflow = true;
		return;
	}
	cut.recs = nr;
	cut.recs[cut.nrecs++] = *r;
	cut.saved += have;
}

static void cut_before_write(int fd, uint64_t off, size_t n)
{
	struct cut_rec r = { 0 };

	if (n == 0 || !cut_rec_init(fd, &r))
		return;
	r.off = off;
	r.len = n;
	cut_push(&r, fd, off >= r.old_size ? 0 :
		 r.old_size - off < n ? (size_t)(r.old_size - off) : n);
}

/* A size change is lost like a write until the file is synced; a shrink
 * keeps the bytes it cut off. */
static void cut_before_truncate(int fd, uint64_t len)
{
	struct cut_rec r = { .trunc = true };
	uint64_t old;

	if (!cut_rec_init(fd, &r) || r.old_size == len)
		return;
	old = r.old_size;
	r.off = len < old ? len : old;
	r.len = (size_t)(len < old ? old - len : len - old);
	cut_push(&r, fd, len < old ? r.len : 0);
}

static void cut_name_free(struct cut_name *c)
{
	if (c->save)
		unlink(c->save);
	free(c->from);
	free(c->to);
	free(c->save);
}

/* A directory fsync makes the name ops in it durable. */
static void cut_dir_synced(const struct stat *st)
{
	size_t k = 0;

	for (size_t i = 0; i < cut.nnames; i++) {
		struct cut_name *c = &cut.names[i];

		for (int j = 0; j < 2; j++)
			if (c->dev[j] == st->st_dev && c->ino[j] == st->st_ino)
				c->synced[j] = true;
		if (c->synced[0] && c->synced[1]) {
			cut_name_free(c);
			continue;
		}
		cut.names[k++] = *c;
	}
	cut.nnames = k;
}

/* An fsync/fdatasync of any fd of the inode makes its writes durable. */
static void cut_after_sync(int fd)
{
	struct stat st;
	size_t k = 0;

	if (fstat(fd, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		cut_dir_synced(&st);
		return;
	}
	for (size_t i = 0; i < cut.nrecs; i++) {
		struct cut_rec *r = &cut.recs[i];
		if (r->dev == st.st_dev && r->ino == st.st_ino) {
			cut.saved -= r->have;
			free(r->old);
			continue;
		}
		cut.recs[k++] = *r;
	}
	cut.nrecs = k;
	for (size_t i = 0; i < cut.nfiles; i++)
		if (cut.files[i].dev == st.st_dev &&
		    cut.files[i].ino == st.st_ino && cut.files[i].fd >= 0) {
			close(cut.files[i].fd);
			cut.files[i].fd = -1;
		}
}

/* The directory holding path, as dev:ino; false when it cannot be read. */
static bool cut_dir_of(const char *path, dev_t *dev, ino_t *ino)
{
	char buf[PATH_MAX];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf) ||
	    stat(dirname(buf), &st) < 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* A hard link keeping the inode that path names, next to it. */
static char *cut_save(const char *path)
{
	char buf[PATH_MAX], save[PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "%s", path);
	snprintf(save, sizeof(save), "%s/.imgraph-cut.%ld.%u", dirname(buf),
		 (long)getpid(), cut.nsaves++);
	if (link(path, save) < 0)
		return NULL;
	return strdup(save);
}

static void cut_name_op(enum io_cut_name_op op, const char *from,
			const char *to)
{
	struct cut_name c = { .op = op }, *nn;
	struct stat st;

	if (op == IO_CUT_FAILED) {	/* the op just announced did nothing */
		if (cut.nnames && !cut.overflow)
			cut_name_free(&cut.names[--cut.nnames]);
		return;
	}
	if (cut.overflow)
		return;
	c.from = strdup(from);
	c.to = to ? strdup(to) : NULL;
	if (!c.from || (to && !c.to) ||
	    !cut_dir_of(from, &c.dev[0], &c.ino[0]))
		goto overflow;
	if (op == IO_CUT_RENAME) {
		if (!cut_dir_of(to, &c.dev[1], &c.ino[1]))
			goto overflow;
		if (lstat(to, &st) == 0 && !(c.save = cut_save(to)))
			goto overflow;
	} else {
		c.synced[1] = true;
	}
	if (op == IO_CUT_UNLINK && !(c.save = cut_save(from)))
		goto overflow;
	nn = cut_grow(cut.names, &cut.capnames, cut.nnames, sizeof(*nn));
	if (!nn)
		goto overflow;
	cut.names = nn;
	cut.names[cut.nnames++] = c;
	return;
overflow:
	/* nothing is undone from here on (cut_crash), so the records that
	 * exist need not stay in step with the ops */
	cut_name_free(&c);
	cut.overflow = true;
}

/* Undo the name ops from index p on, newest first. */
static void cut_undo_names(size_t p)
{
	for (size_t i = cut.nnames; i-- > p;) {
		struct cut_name *c = &cut.names[i];

		switch (c->op) {
		case IO_CUT_CREATED:
			/* a file, or a directory (empty again by now: what
			 * was put in it later is undone first) */
			if (c->from && unlink(c->from) < 0)
				rmdir(c->from);
			break;
		case IO_CUT_RMDIR:
			mkdir(c->from, 0700);
			break;
		case IO_CUT_RENAME:
			rename(c->to, c->from);
			if (c->save && rename(c->save, c->to) == 0) {
				free(c->save);
				c->save = NULL;
			}
			break;
		case IO_CUT_UNLINK:
			if (c->save && rename(c->save, c->from) == 0) {
				free(c->save);
				c->save = NULL;
			}
			break;
		default:
			break;
		}
	}
}

/* Every name op left stands (a normal exit, or after the cut's undo): drop
 * the hidden links. */
static void cut_atexit(void)
{
	for (size_t i = 0; i < cut.nnames; i++)
		cut_name_free(&cut.names[i]);
	cut.nnames = 0;
}

static int cut_fd_of(const struct cut_rec *r)
{
	for (size_t i = 0; i < cut.nfiles; i++)
		if (cut.files[i].dev == r->dev && cut.files[i].ino == r->ino)
			return cut.files[i].fd;
	return -1;
}

/* Put the pre-image of [a, b) (a subrange of r) back. */
static void cut_undo_range(const struct cut_rec *r, int fd, uint64_t a,
			   uint64_t b)
{
	static const uint8_t zero[CUT_SECTOR];

	while (a < b) {
		size_t n = (size_t)(b - a);
		if (a < r->old_size) {
			uint64_t lim = r->old_size < b ? r->old_size : b;
			n = (size_t)(lim - a);
			if (pwrite(fd, r->old + (a - r->off), n, (off_t)a) < 0)
				return;
		} else {
			if (n > sizeof(zero))
				n = sizeof(zero);
			if (pwrite(fd, zero, n, (off_t)a) < 0)
				return;
		}
		a += n;
	}
}

static void cut_crash(void)
{
	if (!cut.overflow) {
		/* Newest first: undoing an older write after a newer one
		 * leaves the oldest pre-image, as the disk would show if
		 * neither reached it. */
		for (size_t i = cut.nrecs; i-- > 0;) {
			const struct cut_rec *r = &cut.recs[i];
			int fd = cut_fd_of(r);
			unsigned pick = (unsigned)(cut_rand() % 3);

			if (fd < 0 || pick == 0)
				continue;       /* this write reached the disk */
			if (r->trunc) {
				if (ftruncate(fd, (off_t)r->old_size) == 0 &&
				    r->have)
					cut_undo_range(r, fd, r->off,
						       r->off + r->have);
				continue;
			}
			if (pick == 1) {
				cut_undo_range(r, fd, r->off, r->off + r->len);
				continue;
			}
			/* torn: each 512-byte sector independently */
			for (uint64_t a = r->off; a < r->off + r->len;) {
				uint64_t b = (a / CUT_SECTOR + 1) * CUT_SECTOR;
				if (b > r->off + r->len)
					b = r->off + r->len;
				if (cut_rand() & 1)
					cut_undo_range(r, fd, a, b);
				a = b;
			}
		}
		/* then a suffix of the pending name ops; the rest stand, so
		 * the inodes they unnamed go with their hidden links */
		cut_undo_names((size_t)(cut_rand() % (cut.nnames + 1)));
	}
	cut_atexit();
	raise(SIGKILL);
	_exit(137);
}

static const struct io_cut_hooks cut_hooks = {
	.before_write = cut_before_write,
	.before_truncate = cut_before_truncate,
	.name_op = cut_name_op,
	.after_sync = cut_after_sync,
	.crash = cut_crash,
};

/* Forget every record: the unsynced state restarts from here. */
static void cut_reset(void)
{
	for (size_t i = 0; i < cut.nrecs; i++)
		free(cut.recs[i].old);
	cut.nrecs = 0;
	cut.saved = 0;
	for (size_t i = 0; i < cut.nfiles; i++)
		if (cut.files[i].fd >= 0)
			close(cut.files[i].fd);
	cut.nfiles = 0;
	cut_atexit();
	cut.overflow = false;
}

const struct io_cut_hooks *io_cut_start(uint64_t seed)
{
	if (!cut.active)
		atexit(cut_atexit);
	cut_reset();
	cut.seed = seed * 0x9e3779b97f4a7c15ull + 1;
	cut.active = true;
	return &cut_hooks;
}
