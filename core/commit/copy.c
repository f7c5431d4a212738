/* copy.c - copy top's view of what lies above base into base (copy.h).
 *
 * Two threads when it can: a reader walks the chain (block status, reads,
 * decompression) one window ahead while the calling thread writes the
 * previous window into base, through two window buffers.  The reader
 * touches only the chain's handles and the writer only base's, so the
 * drivers need no locking.  Reading window N+1 while window N is written
 * is safe because the windows cover disjoint base clusters: a write never
 * changes what the chain reads for a cluster not yet written (new clusters
 * are appended, in-place writes hit clusters referenced once, and pending
 * L2 updates rewrite unchanged entries with the same bytes).  Progress,
 * cancel and the rate limit stay on the calling thread.  Without a thread
 * (pthread_create failed) the same steps run in turn.
 */
#include "copy.h"
#include "formats/img.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per base cluster in a window: what the layers above base say about it. */
#define CL_BELOW  1                /* some part not allocated above base */
#define CL_DATA   2                /* some part is data above base */
#define CL_ZERO   4                /* some part reads as zeros above base */

/* A run of whole clusters with one action, for the writer. */
struct copy_act {
	uint64_t a, z;
	int act;                   /* 1 write buf[a - ws ..], 2 zeroes */
};

/* One window, filled by the reader and written by the writer. */
struct copy_job {
	uint64_t ws, we;
	uint64_t above;            /* bytes above base in it (progress) */
	uint8_t *buf;              /* window bytes, owned */
	struct copy_act *acts;     /* owned, win / cs + 1 */
	size_t nacts;
	int r;                     /* < 0: the reader failed, err says why */
	bool eof;                  /* nothing more to copy */
	struct img_err err;
};

struct copy_run_state {
	struct chain *c;
	int nabove;
	struct img *base;
	const struct copy_opts *o;
	struct copy_stats *st;
	uint64_t top_size;
	uint64_t base_old_size;    /* before we grew it */
	bool base_has_backing;     /* growing base could expose its backing */
	uint64_t cs;               /* base cluster size (write unit) */
	uint64_t win;
	uint64_t end;              /* last window end (cluster rounded) */
	uint64_t off;              /* reader: next offset to look at */
	uint8_t *cl;               /* reader: win / cs flags */
	struct copy_job job[2];
	/* Hand-over between the threads: full[i] means job[i] is ready. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool full[2];
	atomic_bool quit;          /* the writer stopped: reader, stop too */
	uint64_t throttled;        /* bytes counted against the rate */
	bool stop;                 /* the progress callback asked to cancel */
	/* The run: what is set up, to tear down. */
	pthread_t reader;
	bool threaded, sync_init, batch;
	uint64_t total, done;      /* progress bytes */
	uint64_t start_ns;
};

/* Is [off, off+*pnum) allocated above base?  Returns 1 data, 2 zero, 0 not
 * above base; < 0 error.  Past base's old end, with a backing file under
 * base, everything counts as above: top's view must be written there. */
static int above(struct copy_run_state *s, uint64_t off, uint64_t len,
		 uint64_t *pnum, struct img_err *e)
{
	struct chain_status cst;
	int r = chain_block_status(s->c, 0, off, len, pnum, &cst, e);

	if (r < 0)
		return r;
	if (cst.depth < s->nabove)
		return cst.bs == IMG_BS_DATA ? 1 : 2;
	if (s->base_has_backing && off + *pnum > s->base_old_size) {
		if (off < s->base_old_size) {
			*pnum = s->base_old_size - off;
			return 0;
		}
		return 2;       /* top reads base there: zeros past its end */
	}
	return 0;
}

int copy_measure(struct chain *c, int nabove, uint64_t *bytes,
		 struct img_err *e)
{
	uint64_t size = c->layer[0]->virtual_size, off = 0, n;

	*bytes = 0;
	while (off < size) {
		struct chain_status cst;
		int r = chain_block_status(c, 0, off, size - off, &n, &cst, e);
		if (r < 0)
			return r;
		if (cst.depth < nabove)
			*bytes += n;
		off += n;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool cancelled(struct copy_run_state *s)
{
	return s->stop || (s->o && s->o->cancel && *s->o->cancel);
}

/* Sleep so that written bytes stay under the rate; wakes every 100 ms to
 * honour a cancel. */
static int throttle(struct copy_run_state *s, uint64_t n, uint64_t start_ns)
{
	uint64_t due;

	if (!s->o || !s->o->rate)
		return 0;
	s->throttled += n;
	due = start_ns + (uint64_t)((double)s->throttled * 1e9 /
				    (double)s->o->rate);
	for (;;) {
		uint64_t t = now_ns();
		if (cancelled(s))
			return -ECANCELED;
		if (t >= due)
			return 0;
		uint64_t d = due - t > 100000000ull ? 100000000ull : due - t;
		struct timespec ts = { (time_t)(d / 1000000000ull),
				       (long)(d % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

/* Read the merged view of [off, off+len) as base must hold it: top's view
 * up to top's size, base's own (old) view past it. */
static int read_view(struct copy_run_state *s, uint64_t off, uint8_t *buf,
		     uint64_t len, struct img_err *e)
{
	uint64_t a = len;
	int r;

	if (off + a > s->top_size)
		a = off >= s->top_size ? 0 : s->top_size - off;
	if (a) {
		r = chain_pread(s->c, 0, off, buf, (size_t)a, e);
		if (r < 0)
			return r;
	}
	if (a < len) {
		r = chain_pread(s->c, s->nabove, off + a, buf + a,
				(size_t)(len - a), e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Reader: find the next window with something above base, classify its
 * clusters and read what is to be written into j->buf. */
static void produce(struct copy_run_state *s, struct copy_job *j)
{
	uint64_t n, ws, we, ncl, lim, off;
	int r;

	j->nacts = 0;
	j->above = 0;
	j->eof = false;
	j->r = 0;
	/* Skip what is not above base in one step (sparse tops). */
	for (;;) {
		if (s->off >= s->top_size || atomic_load(&s->quit)) {
			j->eof = true;
			return;
		}
		r = above(s, s->off, s->top_size - s->off, &n, &j->err);
		if (r < 0) {
			j->r = r;
			return;
		}
		if (r)
			break;
		s->off += n;
	}
	ws = s->off / s->cs * s->cs;
	we = ws + s->win;
	if (we > s->end)
		we = s->end;
	j->ws = ws;
	j->we = we;
	s->off = we;
	ncl = (we - ws + s->cs - 1) / s->cs;
	lim = we < s->top_size ? we : s->top_size;
	memset(s->cl, 0, (size_t)ncl);
	/* Past top's end base keeps its own data: those parts count as
	 * "below" so a straddling cluster is written from the merged view. */
	if (lim < we)
		for (uint64_t k = (lim - ws) / s->cs; k < ncl; k++)
			s->cl[k] |= CL_BELOW;
	for (off = ws; off < lim; off += n) {
		r = above(s, off, lim - off, &n, &j->err);
		if (r < 0) {
			j->r = r;
			return;
		}
		uint8_t f = r == 1 ? CL_DATA : r == 2 ? CL_ZERO : CL_BELOW;
		for (uint64_t k = (off - ws) / s->cs;
		     k <= (off + n - 1 - ws) / s->cs; k++)
			s->cl[k] |= f;
		if (f != CL_BELOW)
			j->above += n;
	}
	/* Runs of clusters with one action: skip, zero, or merged write
	 * (read here, before any of these clusters is written). */
	for (uint64_t k = 0; k < ncl;) {
		uint8_t f = s->cl[k];
		int act = f == CL_BELOW ? 0 : f == CL_ZERO ? 2 : 1;
		uint64_t k2 = k + 1;

		while (k2 < ncl) {
			uint8_t g = s->cl[k2];
			int a2 = g == CL_BELOW ? 0 : g == CL_ZERO ? 2 : 1;
			if (a2 != act)
				break;
			k2++;
		}
		uint64_t a = ws + k * s->cs, z = ws + k2 * s->cs;
		if (z > we)
			z = we;
		if (act == 1) {
			r = read_view(s, a, j->buf + (a - ws), z - a, &j->err);
			if (r < 0) {
				j->r = r;
				return;
			}
		}
		if (act)
			j->acts[j->nacts++] = (struct copy_act){ a, z, act };
		k = k2;
	}
}

/* Writer: one window into base. */
static int consume(struct copy_run_state *s, const struct copy_job *j,
		   struct img_err *e)
{
	struct img *b = s->base;
	int r;

	for (size_t i = 0; i < j->nacts; i++) {
		const struct copy_act *x = &j->acts[i];
		if (x->act == 1) {
			r = img_pwrite(b, x->a, j->buf + (x->a - j->ws),
					   (size_t)(x->z - x->a), e);
			if (r < 0)
				return r;
			s->st->bytes_written += x->z - x->a;
		} else {
			r = img_write_zeroes(b, x->a, x->z - x->a, e);
			if (r < 0)
				return r;
			s->st->bytes_zeroed += x->z - x->a;
		}
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct copy_run_state *s = arg;

	for (int i = 0;; i ^= 1) {
		pthread_mutex_lock(&s->mu);
		while (s->full[i] && !atomic_load(&s->quit))
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
		if (atomic_load(&s->quit))
			break;
		produce(s, &s->job[i]);
		pthread_mutex_lock(&s->mu);
		s->full[i] = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		if (s->job[i].eof || s->job[i].r < 0)
			break;
	}
	return NULL;
}

/* The next window for the writer: from the reader thread, or read now. */
static struct copy_job *next_job(struct copy_run_state *s, int i,
				 bool threaded)
{
	if (!threaded) {
		produce(s, &s->job[0]);
		return &s->job[0];
	}
	pthread_mutex_lock(&s->mu);
	while (!s->full[i])
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return &s->job[i];
}

static void job_done(struct copy_run_state *s, int i, bool threaded)
{
	if (!threaded)
		return;
	pthread_mutex_lock(&s->mu);
	s->full[i] = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Sizes and the window: top's view size (a parent larger than top widens
 * it), base's cluster size as the write unit, windows sized for the rate. */
static int copy_setup(struct copy_run_state *s, struct img_err *e)
{
	const struct copy_opts *o = s->o;
	struct img_info bi;
	int r = img_get_info(s->base, &bi, e);

	if (r < 0)
		return r;
	s->top_size = s->c->layer[0]->virtual_size;
	s->base_old_size = s->base->virtual_size;
	/* Past top's end the chain reads zeros at depth 0 (above base), so a
	 * larger view size makes the copy zero that range in base. */
	if (o && o->view_size > s->top_size) {
		uint64_t v = o->view_size < s->base_old_size ? o->view_size
							     : s->base_old_size;
		if (v > s->top_size)
			s->top_size = v;
	}
	s->base_has_backing = s->nabove + 1 < s->c->n;
	s->cs = bi.cluster_size ? bi.cluster_size : 65536;
	s->win = COPY_WINDOW > s->cs ? COPY_WINDOW / s->cs * s->cs : s->cs;
	if (o && o->rate) {
		/* Throttling sleeps between windows: keep them near a quarter
		 * second of work so the rate holds over short spans too. */
		uint64_t w = o->rate / 4 / s->cs * s->cs;
		if (w < (1u << 20))
			w = (1u << 20) / s->cs * s->cs;
		if (w < s->cs)
			w = s->cs;
		if (w < s->win)
			s->win = w;
	}
	return 0;
}

/* The progress total, base grown to top's size, and the last window end. */
static int copy_prepare_base(struct copy_run_state *s, struct img_err *e)
{
	uint64_t end;
	int r = copy_measure(s->c, s->nabove, &s->total, e);

	if (r < 0)
		return r;
	s->total += s->top_size - s->c->layer[0]->virtual_size;
	if (s->base_has_backing && s->top_size > s->base_old_size)
		s->total += s->top_size - s->base_old_size;
	s->st->bytes_above = s->total;
	if (s->top_size > s->base->virtual_size) {
		r = img_grow(s->base, s->top_size, e);
		if (r < 0)
			return r;
	}
	end = s->top_size;
	/* The last cluster may straddle top's end inside a larger base. */
	if (end % s->cs) {
		uint64_t up = (end / s->cs + 1) * s->cs;
		end = up < s->base->virtual_size ? up : s->base->virtual_size;
	}
	s->end = end;
	return 0;
}

static int copy_alloc(struct copy_run_state *s, struct img_err *e)
{
	bool mem = (s->cl = malloc((size_t)(s->win / s->cs + 1))) != NULL;

	for (int i = 0; i < 2; i++) {
		s->job[i].buf = malloc((size_t)s->win);
		s->job[i].acts = malloc((size_t)(s->win / s->cs + 1) *
					sizeof(struct copy_act));
		mem = mem && s->job[i].buf && s->job[i].acts;
	}
	if (!mem)
		return err_set(e, ENOMEM, "copy: out of memory for two %llu-byte "
			       "windows", (unsigned long long)s->win);
	return 0;
}

/* Write one window the reader filled, then report and throttle. */
static int copy_window(struct copy_run_state *s, struct copy_job *j, int i,
		       struct img_err *e)
{
	const struct copy_opts *o = s->o;
	uint64_t before;
	int r;

	if (!s->batch) {
		/* One batch for the whole copy, opened at the first write:
		 * the driver links the new clusters of many writes behind one
		 * fdatasync (img_batch_begin) instead of one per write; data still
		 * reaches the disk before what points at it. */
		r = img_batch_begin(s->base, e);
		if (r < 0) {
			job_done(s, i, s->threaded);
			return r;
		}
		s->batch = true;
	}
	before = s->st->bytes_written + s->st->bytes_zeroed;
	r = consume(s, j, e);
	s->done += j->above;
	job_done(s, i, s->threaded);
	if (r < 0)
		return r;
	if (s->done > s->total)
		s->total = s->done;     /* the estimate was low: never shrink */
	if (progress_update(o ? o->progress : NULL, "copy", s->done, s->total))
		s->stop = true;
	r = throttle(s, s->st->bytes_written + s->st->bytes_zeroed - before,
		     s->start_ns);
	if (r < 0)
		return err_set(e, ECANCELED, "commit cancelled during the "
			       "copy; every image is still valid");
	return 0;
}

/* Start the reader thread (or run its steps in turn) and write every
 * window it produces. */
static int copy_loop(struct copy_run_state *s, struct img_err *e)
{
	int r;

	atomic_init(&s->quit, false);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->sync_init = true;
	s->threaded = pthread_create(&s->reader, NULL, reader_main, s) == 0;
	for (int i = 0;; i = s->threaded ? i ^ 1 : 0) {
		if (cancelled(s))
			return err_set(e, ECANCELED, "commit cancelled during "
				       "the copy; every image is still valid");
		struct copy_job *j = next_job(s, i, s->threaded);
		if (j->r < 0) {
			err_propagate(e, &j->err);
			return j->r;
		}
		if (j->eof)
			return 0;
		r = copy_window(s, j, i, e);
		if (r < 0)
			return r;
	}
}

/* Stop the reader, close the batch (also after a failure or a cancel:
 * what was written is linked, base stays valid either way), free. */
static int copy_teardown(struct copy_run_state *s, int r, struct img_err *e)
{
	if (s->threaded) {
		atomic_store(&s->quit, true);
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->reader, NULL);
	}
	if (s->sync_init) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
	}
	if (s->batch) {
		struct img_err be;
		int br = img_batch_end(s->base, &be);
		if (r == 0 && br < 0)
			r = err_propagate(e, &be);
	}
	for (int i = 0; i < 2; i++) {
		free(s->job[i].buf);
		free(s->job[i].acts);
	}
	free(s->cl);
	return r;
}

int copy_run(struct chain *c, int nabove, struct img *base,
	     const struct copy_opts *o, struct copy_stats *st,
	     struct img_err *e)
{
	struct copy_run_state s = { .c = c, .nabove = nabove, .base = base,
				    .o = o, .st = st };
	int r;

	memset(st, 0, sizeof(*st));
	if (nabove < 1 || nabove >= c->n)
		return err_set(e, EINVAL, "copy: base is not below top");
	if (!img_can_write(base))
		return err_set(e, ENOTSUP, "%s: the %s driver cannot write",
			       base->path, img_format_name(base));
	r = copy_setup(&s, e);
	if (r == 0)
		r = copy_prepare_base(&s, e);
	if (r < 0)
		return r;
	r = copy_alloc(&s, e);
	if (r == 0) {
		s.start_ns = now_ns();
		if (progress_update(o ? o->progress : NULL, "copy", 0, s.total))
			r = err_set(e, ECANCELED, "commit cancelled");
	}
	if (r == 0)
		r = copy_loop(&s, e);
	if (r == 0)
		progress_update(o ? o->progress : NULL, "copy", s.total,
				s.total);
	return copy_teardown(&s, r, e);
}
