/* fz_scan.c - libFuzzer target: the pool scan's prefetch workers.
 *
 * graph_prefetch.c peeks a directory's regular files on worker threads
 * only when there are at least 64 of them, which fz_chain's three files
 * never reach.  Input: [ctl0][ctl1][fz_chain's input: a, b, c].  The
 * scratch dir holds a, b, c and 58..185 hard links to them (so the window
 * of 128 slots wraps and slots are reused), and by ctl1 symlinks (the
 * scanning thread's own entries amid the workers'), a subdirectory (the
 * workers stopped and restarted around it in a recursive scan) and a
 * descriptor shortage (the workers run out, the scan goes on alone).
 * Links are kept from input to input; a, b and c are rewritten in place,
 * so every link reads the new bytes.
 *
 * Oracles: the scan with worker threads gives the graph the one-thread
 * scan gives (IMGRAPH_SCAN_THREADS=0), node by node, unless descriptors
 * were short (then only the graph's sanity); no descriptor is left open;
 * nodes are sane (backing in range, not self); opens are confined and
 * read-only (fz_confine.h); a scan that hangs is a libFuzzer timeout.
 */
#include "fz_common.h"
#define FZ_NAME "fz_scan"
#include "fz_scratch.h"
#include "fz_confine.h"
#include "core/graph/graph.h"

#include <sys/resource.h>
#include <sys/stat.h>

#define FZ_LINKS_MIN 58

static int fz_nlinks;          /* links l000.. present now */
static unsigned fz_layout = ~0u;  /* ctl1 bits that shaped them */

static void fz_path(char *p, size_t n, const char *name)
{
	snprintf(p, n, "%s/%s", fz_scratch(), name);
}

/* Link i: a hard link to a, b or c, or (ctl1 bit 1) every seventh a
 * symlink to a. */
static void fz_link(int i, unsigned ctl1)
{
	char p[PATH_MAX + 16], name[16], to[PATH_MAX + 16];

	snprintf(name, sizeof(name), "l%03d", i);
	fz_path(p, sizeof(p), name);
	fz_path(to, sizeof(to), i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c");
	if ((ctl1 & 2) && i % 7 == 3) {
		if (symlink("a", p) < 0)
			abort();
	} else if (link(to, p) < 0) {
		abort();
	}
}

static void fz_unlink(int i)
{
	char p[PATH_MAX + 16], name[16];

	snprintf(name, sizeof(name), "l%03d", i);
	fz_path(p, sizeof(p), name);
	unlink(p);
}

/* The subdirectory "l100x" (sorted amid the links) with one link to b. */
static void fz_subdir(bool want)
{
	char d[PATH_MAX + 16], f[PATH_MAX + 32], b[PATH_MAX + 16];

	fz_path(d, sizeof(d), "l100x");
	snprintf(f, sizeof(f), "%s/x", d);
	if (!want) {
		unlink(f);
		rmdir(d);
		return;
	}
	fz_path(b, sizeof(b), "b");
	if (mkdir(d, 0700) < 0 || link(b, f) < 0)
		abort();
}

/* At exit, before fz_scratch_cleanup (registered earlier), which removes
 * files only. */
static void fz_subdir_cleanup(void)
{
	fz_subdir(false);
}

/* Make the dir hold n links shaped by ctl1 (bits 1 and 2). */
static void fz_layout_set(int n, unsigned ctl1)
{
	unsigned shape = ctl1 & 6;

	if (fz_layout == ~0u)
		atexit(fz_subdir_cleanup);
	if (shape != fz_layout) {
		for (int i = 0; i < fz_nlinks; i++)
			fz_unlink(i);
		fz_nlinks = 0;
		fz_subdir(false);
		if (shape & 4)
			fz_subdir(true);
		fz_layout = shape;
	}
	for (; fz_nlinks < n; fz_nlinks++)
		fz_link(fz_nlinks, ctl1);
	for (; fz_nlinks > n; fz_nlinks--)
		fz_unlink(fz_nlinks - 1);
}

static int fz_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1;   /* the listing's own */
}

static struct graph *fz_scan_once(const char *threads, bool recursive)
{
	const char *dir = fz_scratch();
	struct scan_opts o = { .recursive = recursive };
	struct graph *g = NULL;
	struct img_err e = { 0 };
	char *paths[1] = { (char *)dir };
	int r;

	setenv("IMGRAPH_SCAN_THREADS", threads, 1);
	fz_confine = 1;
	r = graph_scan(paths, 1, &o, &g, &e);
	fz_confine = 0;
	if (r < 0) {
		FZ_ASSERT(e.msg[0], "graph_scan %d without a message", r);
		return NULL;
	}
	for (int i = 0; i < g->n; i++) {
		const struct gnode *n = &g->nodes[i];

		FZ_ASSERT(n->backing < g->n, "node %d backing %d of %d", i,
			  n->backing, g->n);
		FZ_ASSERT(n->backing != i, "node %d is its own backing", i);
	}
	return g;
}

static bool fz_str_same(const char *x, const char *y)
{
	return (!x && !y) || (x && y && !strcmp(x, y));
}

#define FZ_SAME_STR(f)                                                     \
	FZ_ASSERT(fz_str_same(p->f, q->f), "node %d " #f ": %s (threads) vs " \
		  "%s (one thread)", i, p->f ? p->f : "(null)",              \
		  q->f ? q->f : "(null)")
#define FZ_SAME_NUM(f)                                                     \
	FZ_ASSERT(p->f == q->f, "node %d (%s) " #f ": %lld (threads) vs "    \
		  "%lld (one thread)", i, p->name ? p->name : "?",           \
		  (long long)p->f, (long long)q->f)

/* The threads' graph is the one-thread graph: same nodes, same order. */
static void fz_same_graph(const struct graph *g, const struct graph *h)
{
	FZ_ASSERT(g->n == h->n, "%d nodes with threads, %d with one", g->n,
		  h->n);
	FZ_ASSERT(g->npool_images == h->npool_images, "%d pool images with "
		  "threads, %d with one", g->npool_images, h->npool_images);
	for (int i = 0; i < g->n; i++) {
		const struct gnode *p = &g->nodes[i], *q = &h->nodes[i];

		FZ_SAME_STR(path);
		FZ_SAME_STR(name);
		FZ_SAME_STR(format);
		FZ_SAME_STR(backing_name);
		FZ_SAME_STR(backing_fmt);
		FZ_SAME_STR(backing_path);
		FZ_SAME_STR(error);
		FZ_SAME_NUM(flags);
		FZ_SAME_NUM(backing);
		FZ_SAME_NUM(depth);
		FZ_SAME_NUM(nchildren);
		FZ_SAME_NUM(info.virtual_size);
		FZ_SAME_NUM(info.file_size);
	}
}

/* Leave only `spare` descriptors below a soft limit of 1024 (the lowest
 * at which the scan still uses workers); *fds the fillers to close. */
static int fz_starve(int spare, int *fds, int max, struct rlimit *old)
{
	struct rlimit rl;
	int n = 0, fd;

	if (getrlimit(RLIMIT_NOFILE, old) < 0 || old->rlim_cur < 1024)
		return 0;
	rl = *old;
	rl.rlim_cur = 1024;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	while (n < max && (fd = dup(0)) >= 0)
		fds[n++] = fd;
	for (int k = 0; k < spare && n > 0; k++)
		close(fds[--n]);
	return n;
}

static void fz_unstarve(int *fds, int n, const struct rlimit *old)
{
	while (n > 0)
		close(fds[--n]);
	setrlimit(RLIMIT_NOFILE, old);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fillers[1024];
	unsigned ctl0 = size > 0 ? data[0] : 0, ctl1 = size > 1 ? data[1] : 0;
	bool recursive = ctl1 & 1, starve = ctl1 & 8;
	struct graph *g, *h = NULL;
	struct rlimit old;
	int nfill = 0, fds0;

	fz_scratch_put3(data + (size > 2 ? 2 : size), size > 2 ? size - 2 : 0);
	fz_layout_set(FZ_LINKS_MIN + (int)(ctl0 & 127), ctl1);
	fds0 = fz_open_fds();
	if (starve)	/* 8..128 spare: the window of 128 runs out */
		nfill = fz_starve(8 + (int)(ctl1 >> 4) * 8, fillers, 1024,
				  &old);
	g = fz_scan_once("2", recursive);
	if (starve) {
		fz_unstarve(fillers, nfill, &old);
	} else {
		h = fz_scan_once("0", recursive);
		FZ_ASSERT(!g == !h, "the scan failed %s threads only",
			  g ? "without" : "with");
		if (g && h)
			fz_same_graph(g, h);
	}
	graph_free(g);
	graph_free(h);
	FZ_ASSERT(fz_open_fds() == fds0, "%d descriptors open after the "
		  "scans, %d before", fz_open_fds(), fds0);
	return 0;
}
