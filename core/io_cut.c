/* io_cut.c - power-cut simulator (see io_cut.h).
 *
 * Unsynced writes are kept per inode (dev:ino), not per fd: the page cache
 * belongs to the inode, so an fsync through any fd makes every earlier
 * write to that file durable, and fd numbers are reused after close.  For
 * each inode with pending records we keep a dup of the first written fd so
 * the undo can still reach the file after the caller closed its fd.
 *
 * This file uses raw pread/pwrite on purpose: the simulator must not count
 * as mutating ops nor trigger its own hooks.
 */
#include "io_cut.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	uint64_t off;
	size_t len;
	uint64_t old_size;         /* file size before the write */
	uint8_t *old;              /* old bytes of [off, min(off+len, old_size)) */
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

static struct cut_file *cut_file_get(int fd, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < cut.nfiles; i++)
		if (cut.files[i].dev == dev && cut.files[i].ino == ino) {
			if (cut.files[i].fd < 0)
				cut.files[i].fd = fcntl(fd, F_DUPFD_CLOEXEC,
							64);
			return &cut.files[i];
		}
	if (cut.nfiles == cut.capfiles) {
		size_t nc = cut.capfiles ? cut.capfiles * 2 : 16;
		struct cut_file *nf = realloc(cut.files, nc * sizeof(*nf));
		if (!nf)
			return NULL;
		cut.files = nf;
		cut.capfiles = nc;
	}
	cut.files[cut.nfiles] = (struct cut_file){
		.dev = dev, .ino = ino,
		.fd = fcntl(fd, F_DUPFD_CLOEXEC, 64),
	};
	return &cut.files[cut.nfiles++];
}

static void cut_before_write(int fd, uint64_t off, size_t n)
{
	struct stat st;
	struct cut_rec r = { 0 };
	size_t have;

	if (cut.overflow || n == 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (cut.saved + n > CUT_MAX_SAVED) {
		cut.overflow = true;
		return;
	}
	if (!cut_file_get(fd, st.st_dev, st.st_ino)) {
		cut.overflow = true;
		return;
	}
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	r.off = off;
	r.len = n;
	r.old_size = (uint64_t)st.st_size;
	have = off >= r.old_size ? 0
	       : (r.old_size - off < n ? (size_t)(r.old_size - off) : n);
	if (have) {
		r.old = malloc(have);
		if (!r.old || pread(fd, r.old, have, (off_t)off) != (ssize_t)have) {
			free(r.old);
			cut.overflow = true;
			return;
		}
	}
	if (cut.nrecs == cut.caprecs) {
		size_t nc = cut.caprecs ? cut.caprecs * 2 : 64;
		struct cut_rec *nr = realloc(cut.recs, nc * sizeof(*nr));
		if (!nr) {
			free(r.old);
			cut.overflow = true;
			return;
		}
		cut.recs = nr;
		cut.caprecs = nc;
	}
	cut.recs[cut.nrecs++] = r;
	cut.saved += n;
}

/* An fsync/fdatasync of any fd of the inode makes its writes durable. */
static void cut_after_sync(int fd)
{
	struct stat st;
	size_t k = 0;

	if (fstat(fd, &st) < 0)
		return;
	for (size_t i = 0; i < cut.nrecs; i++) {
		struct cut_rec *r = &cut.recs[i];
		if (r->dev == st.st_dev && r->ino == st.st_ino) {
			cut.saved -= r->len;
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

static void cut_on_close(int fd)
{
	(void)fd;       /* records live on through our dup */
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
	}
	raise(SIGKILL);
	_exit(137);
}

static const struct io_cut_hooks cut_hooks = {
	.before_write = cut_before_write,
	.after_sync = cut_after_sync,
	.on_close = cut_on_close,
	.crash = cut_crash,
};

int io_cut_init(void)
{
	const char *s = getenv("IMGRAPH_FAULT");
	unsigned long long k, seed = 1;
	char *end;

	if (cut.active)
		return 1;
	if (!s || strncmp(s, "cut:", 4))
		return 0;
	errno = 0;
	k = strtoull(s + 4, &end, 10);
	if (errno || end == s + 4)
		return 0;
	if (*end == ':')
		seed = strtoull(end + 1, NULL, 10);
	cut.seed = seed * 0x9e3779b97f4a7c15ull + 1;
	cut.active = true;
	io_set_cut_hooks(&cut_hooks, (uint64_t)k);
	return 1;
}
