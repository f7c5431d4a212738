/* graph_prefetch.c - a directory's images peeked ahead on worker threads.
 *
 * Scanning a large pool costs about six system calls per image (open,
 * fstat, the header read, the lock probe, the access check, close), and
 * each is short: one thread spends most of the scan entering the kernel.
 * Workers take the directory's regular entries in chunks, in name order,
 * and fill a window of peeks (graph_node_peek_entry) while the scanning
 * thread turns earlier ones into nodes in order, so the graph, its ids
 * and every message come out the same as from one thread.  The window
 * bounds what is open: PF_WINDOW descriptors and 4 KiB heads.  The
 * workers also close what the scan is done with, when they reuse its
 * slot.
 */
#include "graph_int.h"

#include "formats/io/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PF_WINDOW 128          /* entries peeked ahead of the scan */
#define PF_CHUNK 8             /* entries a worker takes at once */
#define PF_MIN 64              /* fewer left: threads do not pay */
#define PF_MAX_THREADS 4
/* Entries ahead the scan waits for once it has caught up: within the
 * window even when the last chunk's room is not yet given back. */
#define PF_WAKE_AHEAD (PF_WINDOW / 2)

struct pf_slot {
	struct gnode_peek pk;
	bool peeked;               /* a regular entry, pk filled */
	int ready;                 /* atomic: filled for the scan */
};

struct graph_prefetch {
	int dfd;                   /* the workers' own descriptor */
	const struct dent *v;
	size_t n;
	bool locks;
	struct pf_slot *slot;      /* PF_WINDOW, entry i in i % PF_WINDOW */
	pthread_mutex_t mu;
	pthread_cond_t room;       /* workers: the window is full */
	pthread_cond_t filled;     /* the scan: its next entry is not */
	size_t next;               /* first entry no worker took (mu) */
	size_t taken;              /* entries the scan is done with (mu) */
	bool stop;                 /* (mu) */
	bool starved;              /* atomic: an open failed with EMFILE */
	bool waiting;              /* the scan waits on filled (mu) */
	size_t want_a, want_z;     /* for these two entries (mu) */
	int nthreads;
	pthread_t tid[PF_MAX_THREADS];
};

/* Entries a worker peeks; the rest the scanning thread handles itself. */
static bool pf_wanted(const struct dent *d)
{
	return d->type == DT_REG && !graph_own_name(d->name);
}

static void pf_fill(struct graph_prefetch *pf, size_t i)
{
	struct pf_slot *s = &pf->slot[i % PF_WINDOW];

	/* The entry a window earlier, which the scan is done with. */
	if (s->peeked && s->pk.fd >= 0)
		io_close(s->pk.fd);
	s->peeked = pf_wanted(&pf->v[i]);
	/* Out of descriptors (the window's count against the limit, with
	 * whatever else is open): not skipped, the scan stops peeking ahead
	 * and opens it itself (graph_prefetch_starved). */
	if (s->peeked) {
		int r = graph_node_peek_entry(pf->dfd, pf->v[i].name,
					      pf->v[i].name, pf->locks,
					      &s->pk);
		if (r == -EMFILE || r == -ENFILE) {
			s->peeked = false;
			__atomic_store_n(&pf->starved, true, __ATOMIC_RELAXED);
		}
	}
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
}

static bool pf_ready(struct graph_prefetch *pf, size_t i)
{
	return __atomic_load_n(&pf->slot[i % PF_WINDOW].ready,
			       __ATOMIC_ACQUIRE);
}

/* The next chunk [*a, *z) within the window; false: no more work. */
static bool pf_claim(struct graph_prefetch *pf, size_t *a, size_t *z)
{
	bool go;

	pthread_mutex_lock(&pf->mu);
	while (!pf->stop && pf->next < pf->n &&
	       pf->next + PF_CHUNK > pf->taken + PF_WINDOW)
		pthread_cond_wait(&pf->room, &pf->mu);
	go = !pf->stop && pf->next < pf->n;
	if (go) {
		*a = pf->next;
		*z = pf->n - *a < PF_CHUNK ? pf->n : *a + PF_CHUNK;
		pf->next = *z;
	}
	pthread_mutex_unlock(&pf->mu);
	return go;
}

static void *pf_worker(void *arg)
{
	struct graph_prefetch *pf = arg;
	size_t a, z;

	while (pf_claim(pf, &a, &z)) {
		for (size_t i = a; i < z; i++)
			pf_fill(pf, i);
		pthread_mutex_lock(&pf->mu);
		if (pf->waiting && pf_ready(pf, pf->want_a) &&
		    pf_ready(pf, pf->want_z))
			pthread_cond_signal(&pf->filled);
		pthread_mutex_unlock(&pf->mu);
	}
	return NULL;
}

static int pf_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	const char *s = getenv("IMGRAPH_SCAN_THREADS");

	/* One per core: the scanning thread spends much of its time
	 * waiting for them. */
	if (s && *s)
		n = strtol(s, NULL, 10);
	return n < 1 ? 0 : n > PF_MAX_THREADS ? PF_MAX_THREADS : (int)n;
}

/* The window holds up to PF_WINDOW descriptors: only under a limit with
 * plenty of room (a default limit is 1024), so that a low one (ulimit -n
 * 32) keeps the one-at-a-time scan it was set for. */
static bool pf_fds_to_spare(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	       rl.rlim_cur >= 8 * PF_WINDOW;
}

/* How many of the entries [from, n) the workers would peek (up to
 * PF_MIN): with dirs_stop, only those before the next entry that may be a
 * subdirectory, where the scan stops them (images interleaved with
 * subdirectories would start the threads and throw a window of peeks
 * away at every one). */
static size_t pf_count(const struct dent *v, size_t from, size_t n,
		       bool dirs_stop)
{
	size_t k = 0;

	for (size_t i = from; i < n && k < PF_MIN; i++) {
		if (dirs_stop && (v[i].type == DT_DIR ||
				  v[i].type == DT_UNKNOWN))
			break;
		k += pf_wanted(&v[i]);
	}
	return k;
}

struct graph_prefetch *graph_prefetch_start(const char *dir,
					    const struct dent *v,
					    size_t from, size_t n,
					    bool dirs_stop, bool locks)
{
	struct graph_prefetch *pf;
	int nt;

	if (pf_count(v, from, n, dirs_stop) < PF_MIN ||
	    (nt = pf_threads()) < 1 || io_faults_armed() ||
	    !pf_fds_to_spare())
		return NULL;
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return NULL;
	pf->slot = calloc(PF_WINDOW, sizeof(*pf->slot));
	pf->dfd = io_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (!pf->slot || pf->dfd < 0) {
		if (pf->dfd >= 0)
			io_close(pf->dfd);
		free(pf->slot);
		free(pf);
		return NULL;
	}
	pf->v = v;
	pf->n = n;
	pf->locks = locks;
	pf->next = pf->taken = from;
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->room, NULL);
	pthread_cond_init(&pf->filled, NULL);
	for (int t = 0; t < nt; t++)
		if (pthread_create(&pf->tid[pf->nthreads], NULL, pf_worker,
				   pf) == 0)
			pf->nthreads++;
	if (!pf->nthreads) {
		graph_prefetch_stop(pf);
		return NULL;
	}
	return pf;
}

struct gnode_peek *graph_prefetch_get(struct graph_prefetch *pf, size_t i)
{
	struct pf_slot *s = &pf->slot[i % PF_WINDOW];

	if (!pf_ready(pf, i)) {
		/* Caught up with the workers: sleep until half a window is
		 * ready, not a chunk, or every chunk costs a wake-up. */
		pthread_mutex_lock(&pf->mu);
		pf->want_a = i;
		pf->want_z = pf->n - i > PF_WAKE_AHEAD ? i + PF_WAKE_AHEAD
						       : pf->n - 1;
		pf->waiting = true;
		while (!pf_ready(pf, pf->want_a) || !pf_ready(pf, pf->want_z))
			pthread_cond_wait(&pf->filled, &pf->mu);
		pf->waiting = false;
		pthread_mutex_unlock(&pf->mu);
	}
	return s->peeked ? &s->pk : NULL;
}

bool graph_prefetch_starved(struct graph_prefetch *pf)
{
	return __atomic_load_n(&pf->starved, __ATOMIC_RELAXED);
}

void graph_prefetch_put(struct graph_prefetch *pf, size_t i)
{
	struct pf_slot *s = &pf->slot[i % PF_WINDOW];

	__atomic_store_n(&s->ready, 0, __ATOMIC_RELAXED);
	/* Room is made a chunk at a time: one lock per chunk, not per
	 * entry. */
	if ((i + 1) % PF_CHUNK && i + 1 < pf->n)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->taken = i + 1;
	pthread_cond_broadcast(&pf->room);
	pthread_mutex_unlock(&pf->mu);
}

void graph_prefetch_stop(struct graph_prefetch *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->stop = true;
	pthread_cond_broadcast(&pf->room);
	pthread_mutex_unlock(&pf->mu);
	for (int t = 0; t < pf->nthreads; t++)
		pthread_join(pf->tid[t], NULL);
	/* What is still open: peeked ahead, or taken and not reused. */
	for (size_t k = 0; k < PF_WINDOW; k++)
		if (pf->slot[k].peeked && pf->slot[k].pk.fd >= 0)
			io_close(pf->slot[k].pk.fd);
	pthread_mutex_destroy(&pf->mu);
	pthread_cond_destroy(&pf->room);
	pthread_cond_destroy(&pf->filled);
	io_close(pf->dfd);
	free(pf->slot);
	free(pf);
}
