/* copy.c - copy top's view of what lies above base into base (copy.h).
 *
 * Readers and one writer.  Each reader has its own handles on the chain
 * (chain_dup; the first uses the caller's) and takes the next window in
 * turn: under the lock it skips what is not above base and claims
 * [ws, we) with a sequence number, then, unlocked, classifies the window's
 * clusters and reads what must be read (decompression included) into the
 * window's buffer.  The calling thread writes windows into base strictly
 * in sequence, so base sees the same writes in the same order as with one
 * reader.  Readers touch only their chain's handles and the writer only
 * base's (and reads the source files of file-to-file runs), so the drivers
 * need no locking.  Reading window N+k while window N is written is safe
 * because windows cover disjoint base clusters: a write never changes what
 * the chain reads for a cluster not yet written (new clusters are
 * appended, in-place writes hit clusters referenced once, and pending L2
 * updates rewrite unchanged entries with the same bytes; an old table a
 * reader still has cached is released, never overwritten).  Progress,
 * cancel and the rate limit stay on the calling thread.  Without threads
 * the writer fills each window itself before writing it.
 */
#include "copy.h"
#include "formats/img.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Per base cluster in a window: what the layers above base say about it. */
#define CL_BELOW  1                /* some part not allocated above base */
#define CL_DATA   2                /* some part is data above base */
#define CL_ZERO   4                /* some part reads as zeros above base */

/* src of a cluster: none seen yet, or not one contiguous range of one
 * layer's file. */
#define SRC_NONE  (-1)
#define SRC_MIXED (-2)

enum copy_act_kind { ACT_SKIP, ACT_WRITE, ACT_ZERO, ACT_FILE };

/* A run of whole clusters with one action, for the writer. */
struct copy_act {
	uint64_t a, z;
	enum copy_act_kind act;    /* WRITE: buf[a - ws ..]; FILE: from fd */
	int layer;                 /* FILE: the layer above base, its fd */
	int fd;
	uint64_t soff;             /* FILE: offset of byte a in fd */
};

/* A reader's view of one base cluster of the window. */
struct copy_cl {
	uint8_t f;                 /* CL_* */
	int src;                   /* layer whose file holds all of it, or
				      SRC_NONE / SRC_MIXED */
	int fd;
	uint64_t soff;             /* offset of the cluster's first byte */
};

enum job_state { JOB_FREE, JOB_BUSY, JOB_FULL };

/* One window, filled by a reader and written by the writer. */
struct copy_job {
	enum job_state state;
	uint64_t seq;
	uint64_t ws, we;
	uint64_t above;            /* bytes above base in it (progress) */
	int layer;                 /* the layer of its longest run, or -1 */
	uint64_t layer_n;          /* that run's length */
	uint8_t *buf;              /* window bytes, owned */
	struct copy_act *acts;     /* owned, win / cs + 1 */
	size_t nacts;
	bool reads;                /* some action was read into buf */
	int r;                     /* < 0: the reader failed, err says why */
	struct img_err err;
};

struct copy_run_state;

struct copy_reader {
	struct copy_run_state *s;
	struct chain *c;           /* its handles (the caller's for rd[0]) */
	struct copy_cl *cl;        /* win / cs + 1, owned */
	pthread_t tid;
	bool started;
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
	/* Per layer above base: how its runs move (first is IO_COPY_RW:
	 * read into windows, never file to file). */
	struct io_copy_ctx *ctx;
	struct copy_reader rd[COPY_MAX_READERS];
	int nreaders, want;        /* running; one per core at most */
	bool grown;                /* the writer started the others */
	struct copy_job job[COPY_MAX_READERS + 1];
	int njobs;
	/* Shared between the threads, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t off;              /* next offset to look at */
	uint64_t next_seq;         /* next window to hand out */
	bool scan_done;            /* no window from eof_seq on */
	uint64_t eof_seq;
	bool quit;                 /* the writer stopped: readers, stop too */
	/* The writer's. */
	uint64_t throttled;        /* bytes counted against the rate */
	bool stop;                 /* the progress callback asked to cancel */
	bool threaded, sync_init, batch;
	unsigned hows;             /* methods used so far (progress) */
	uint64_t total, done;      /* progress bytes */
	uint64_t start_ns;
	uint64_t *runs;            /* before_write's pairs, win / cs + 1 */
};

static const char *const how_names[IO_COPY_HOWS] = {
	[IO_COPY_CLONE] = "clone",
	[IO_COPY_CFR] = "copy_file_range",
	[IO_COPY_RW] = "read/write",
};

const char *copy_method_name(int how)
{
	return how >= 0 && how < IO_COPY_HOWS ? how_names[how] : "?";
}

const char *copy_methods_name(unsigned mask)
{
	static const char *const names[1u << IO_COPY_HOWS] = {
		"none", "clone", "copy_file_range", "clone+copy_file_range",
		"read/write", "clone+read/write", "copy_file_range+read/write",
		"clone+copy_file_range+read/write",
	};

	return names[mask & ((1u << IO_COPY_HOWS) - 1)];
}

int copy_predict(struct img *layer, struct img *base)
{
	struct img_info li, bi;
	uint64_t align;

	/* Encrypted bytes are not the guest's: only reading decrypts (or
	 * refuses) them. */
	if (!img_can_pwrite_file(base) || img_get_info(layer, &li, NULL) < 0 ||
	    img_get_info(base, &bi, NULL) < 0 || li.encrypted || bi.encrypted)
		return IO_COPY_RW;
	/* Runs start on base's clusters (blocks on raw) in both files. */
	align = bi.cluster_size ? bi.cluster_size : 4096;
	if (li.cluster_size && li.cluster_size < align)
		align = li.cluster_size;
	return io_copy_predict(layer->fd, base->fd, align);
}

/* Is [off, off+len) allocated above base?  Returns 1 data, 2 zero, 0 not
 * above base; < 0 error; *depth: the layer that has it.  Past base's old
 * end, with a backing file under base, everything counts as above: top's
 * view must be written there. */
static int above(struct copy_run_state *s, struct chain *c, uint64_t off,
		 uint64_t len, uint64_t *pnum, int *depth, struct img_err *e)
{
	struct chain_status cst;
	int r = chain_block_status(c, 0, off, len, pnum, &cst, e);

	if (r < 0)
		return r;
	*depth = cst.depth;
	if (cst.depth < s->nabove)
		return cst.bs == IMG_BS_DATA ? 1 : 2;
	*depth = -1;
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
static int read_view(struct copy_run_state *s, struct chain *c,
		     uint64_t off, uint8_t *buf, uint64_t len,
		     struct img_err *e)
{
	uint64_t a = len;
	int r;

	if (off + a > s->top_size)
		a = off >= s->top_size ? 0 : s->top_size - off;
	if (a) {
		r = chain_pread(c, 0, off, buf, (size_t)a, e);
		if (r < 0)
			return r;
	}
	if (a < len) {
		r = chain_pread(c, s->nabove, off + a, buf + a,
				(size_t)(len - a), e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- a reader: windows, their clusters, their actions ---- */

/* Under s->mu: the next window with something above base, claimed by
 * moving s->off past it.  1: [*ws, *we); 0: nothing left; < 0 error. */
static int next_window(struct copy_run_state *s, struct chain *c,
		       uint64_t *ws, uint64_t *we, struct img_err *e)
{
	uint64_t n;
	int depth, r;

	/* Skip what is not above base in one step (sparse tops). */
	for (;;) {
		if (s->off >= s->top_size)
			return 0;
		r = above(s, c, s->off, s->top_size - s->off, &n, &depth, e);
		if (r < 0)
			return r;
		if (r)
			break;
		s->off += n;
	}
	*ws = s->off / s->cs * s->cs;
	*we = *ws + s->win < s->end ? *ws + s->win : s->end;
	s->off = *we;
	return 1;
}

/* Data of layer `depth` over [off, off + *n): where its file holds it.
 * Clusters it touches keep one source only if every part of them comes
 * from one contiguous range of one file; *n may shrink to where that
 * range ends. */
static int note_source(struct copy_run_state *s, struct copy_reader *rd,
		       uint64_t ws, int depth, uint64_t off, uint64_t *n,
		       struct img_err *e)
{
	struct img *l = rd->c->layer[depth];
	struct img_map m = { 0 };
	uint64_t pnum, k0 = (off - ws) / s->cs, k1;
	int fd = -1, r;

	if (s->ctx[depth].first != IO_COPY_RW) {
		r = img_map_status(l, off, *n, &pnum, &m, e);
		if (r < 0)
			return r;
		if (pnum < *n)
			*n = pnum;
		fd = r == IMG_BS_DATA ? img_data_fd(l, &m) : -1;
	}
	k1 = (off + *n - 1 - ws) / s->cs;
	for (uint64_t k = k0; k <= k1; k++) {
		struct copy_cl *x = &rd->cl[k];
		uint64_t cst = ws + k * s->cs, back = off > cst ? off - cst : 0;
		/* The source offset of the cluster's first byte. */
		bool ok = fd >= 0 && m.offset >= back;
		uint64_t so = ok ? m.offset - back + (cst > off ? cst - off : 0)
				 : 0;
		if (!ok)
			x->src = SRC_MIXED;
		else if (x->src == SRC_NONE)
			*x = (struct copy_cl){ x->f, depth, fd, so };
		else if (x->src != depth || x->fd != fd || x->soff != so)
			x->src = SRC_MIXED;
	}
	return 0;
}

/* Flag the window's clusters with what lies above base (and where). */
static int classify(struct copy_run_state *s, struct copy_reader *rd,
		    struct copy_job *j, uint64_t ncl, struct img_err *e)
{
	uint64_t lim = j->we < s->top_size ? j->we : s->top_size, n;
	int depth, r;

	for (uint64_t k = 0; k < ncl; k++)
		rd->cl[k] = (struct copy_cl){ 0, SRC_NONE, -1, 0 };
	/* Past top's end base keeps its own data: those parts count as
	 * "below" so a straddling cluster is written from the merged view. */
	if (lim < j->we)
		for (uint64_t k = (lim - j->ws) / s->cs; k < ncl; k++)
			rd->cl[k].f |= CL_BELOW;
	for (uint64_t off = j->ws; off < lim; off += n) {
		r = above(s, rd->c, off, lim - off, &n, &depth, e);
		if (r == 1) {
			int q = note_source(s, rd, j->ws, depth, off, &n, e);
			if (q < 0)
				return q;
		}
		if (r < 0)
			return r;
		uint8_t f = r == 1 ? CL_DATA : r == 2 ? CL_ZERO : CL_BELOW;
		if (f != CL_BELOW && depth >= 0 && n > j->layer_n) {
			j->layer = depth;
			j->layer_n = n;
		}
		for (uint64_t k = (off - j->ws) / s->cs;
		     k <= (off + n - 1 - j->ws) / s->cs; k++)
			rd->cl[k].f |= f;
		if (f != CL_BELOW)
			j->above += n;
	}
	return 0;
}

static enum copy_act_kind act_of(const struct copy_cl *x)
{
	if (x->f == CL_BELOW)
		return ACT_SKIP;
	if (x->f == CL_ZERO)
		return ACT_ZERO;
	return x->f == CL_DATA && x->src >= 0 ? ACT_FILE : ACT_WRITE;
}

/* Does cluster b continue a's file run (same file, next bytes)? */
static bool file_follows(const struct copy_cl *a, const struct copy_cl *b,
			 uint64_t k, uint64_t cs)
{
	return b->src == a->src && b->fd == a->fd && b->soff == a->soff + k * cs;
}

/* Runs of clusters with one action: skip, zero, file to file, or merged
 * write (read here, before any of these clusters is written). */
static int make_acts(struct copy_run_state *s, struct copy_reader *rd,
		     struct copy_job *j, uint64_t ncl, struct img_err *e)
{
	for (uint64_t k = 0; k < ncl;) {
		const struct copy_cl *x = &rd->cl[k];
		enum copy_act_kind act = act_of(x);
		uint64_t k2 = k + 1;

		while (k2 < ncl && act_of(&rd->cl[k2]) == act &&
		       (act != ACT_FILE ||
			file_follows(x, &rd->cl[k2], k2 - k, s->cs)))
			k2++;
		uint64_t a = j->ws + k * s->cs, z = j->ws + k2 * s->cs;
		if (z > j->we)
			z = j->we;
		if (act == ACT_WRITE) {
			int r = read_view(s, rd->c, a, j->buf + (a - j->ws),
					  z - a, e);
			if (r < 0)
				return r;
			j->reads = true;
		}
		if (act != ACT_SKIP)
			j->acts[j->nacts++] = (struct copy_act){
				a, z, act, x->src, x->fd, x->soff };
		k = k2;
	}
	return 0;
}

/* Fill a claimed window (unlocked). */
static void fill(struct copy_run_state *s, struct copy_reader *rd,
		 struct copy_job *j)
{
	uint64_t ncl = (j->we - j->ws + s->cs - 1) / s->cs;

	j->nacts = 0;
	j->above = 0;
	j->layer = -1;
	j->layer_n = 0;
	j->reads = false;
	j->r = classify(s, rd, j, ncl, &j->err);
	if (j->r == 0)
		j->r = make_acts(s, rd, j, ncl, &j->err);
}

/* Claim and fill the next window.  false: nothing more for this reader
 * (every window handed out, or the writer stopped). */
static bool reader_step(struct copy_reader *rd)
{
	struct copy_run_state *s = rd->s;
	struct copy_job *j;
	uint64_t ws, we;
	int r;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->quit || s->scan_done) {
			pthread_mutex_unlock(&s->mu);
			return false;
		}
		j = &s->job[s->next_seq % (uint64_t)s->njobs];
		if (j->state == JOB_FREE)
			break;
		pthread_cond_wait(&s->cv, &s->mu);
	}
	j->seq = s->next_seq;
	r = next_window(s, rd->c, &ws, &we, &j->err);
	if (r <= 0) {
		/* The end, or an error the writer reports in its turn. */
		s->scan_done = true;
		s->eof_seq = s->next_seq + (r < 0);
		j->r = r;
		j->nacts = 0;
		j->state = r < 0 ? JOB_FULL : JOB_FREE;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		return false;
	}
	s->next_seq++;
	j->ws = ws;
	j->we = we;
	j->state = JOB_BUSY;
	pthread_mutex_unlock(&s->mu);
	fill(s, rd, j);
	pthread_mutex_lock(&s->mu);
	j->state = JOB_FULL;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return true;
}

static void *reader_main(void *arg)
{
	while (reader_step(arg))
		;
	return NULL;
}

/* ---- the writer ---- */

/* Window seq for the writer, or NULL when there is none (the end). */
static struct copy_job *next_job(struct copy_run_state *s, uint64_t seq)
{
	struct copy_job *j = &s->job[seq % (uint64_t)s->njobs];

	if (!s->threaded)
		reader_step(&s->rd[0]);
	pthread_mutex_lock(&s->mu);
	while (!(j->state == JOB_FULL && j->seq == seq) &&
	       !(s->scan_done && seq >= s->eof_seq))
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return j->state == JOB_FULL && j->seq == seq ? j : NULL;
}

static void job_done(struct copy_run_state *s, struct copy_job *j)
{
	pthread_mutex_lock(&s->mu);
	j->state = JOB_FREE;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Tell before_write which runs of base the window writes. */
static int before_window(struct copy_run_state *s, const struct copy_job *j,
			 struct img_err *e)
{
	const struct copy_opts *o = s->o;
	size_t n = 0;

	if (!o || !o->before_write)
		return 0;
	for (size_t i = 0; i < j->nacts; i++) {
		const struct copy_act *x = &j->acts[i];

		if (x->act == ACT_SKIP)
			continue;
		if (n && s->runs[2 * n - 1] == x->a)
			s->runs[2 * n - 1] = x->z;
		else {
			s->runs[2 * n] = x->a;
			s->runs[2 * n + 1] = x->z;
			n++;
		}
	}
	return n ? o->before_write(o->before_opaque, s->runs, n, e) : 0;
}

/* Writer: one window into base. */
static int consume(struct copy_run_state *s, const struct copy_job *j,
		   struct img_err *e)
{
	struct img *b = s->base;
	int r = before_window(s, j, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < j->nacts; i++) {
		const struct copy_act *x = &j->acts[i];
		uint64_t n = x->z - x->a;
		if (x->act == ACT_ZERO) {
			r = img_write_zeroes(b, x->a, n, e);
			s->st->bytes_zeroed += r < 0 ? 0 : n;
		} else if (x->act == ACT_FILE) {
			r = img_pwrite_file(b, x->a, n, x->fd, x->soff,
					    &s->ctx[x->layer], e);
			s->st->bytes_written += r < 0 ? 0 : n;
		} else {
			r = img_pwrite(b, x->a, j->buf + (x->a - j->ws),
				       (size_t)n, e);
			s->st->bytes_written += r < 0 ? 0 : n;
			s->st->bytes_how[IO_COPY_RW] += r < 0 ? 0 : n;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* The methods used so far: bytes per method, and a progress note when the
 * set changes. */
static void note_hows(struct copy_run_state *s)
{
	const struct copy_opts *o = s->o;
	uint64_t by[IO_COPY_HOWS] = { 0 };
	unsigned mask = 0;

	by[IO_COPY_RW] = s->st->bytes_how[IO_COPY_RW];
	for (int l = 0; l < s->nabove; l++)
		for (int h = 0; h < IO_COPY_HOWS; h++)
			by[h] += s->ctx[l].bytes[h];
	for (int h = 0; h < IO_COPY_HOWS; h++)
		if (by[h])
			mask |= 1u << h;
	if (mask != s->hows) {
		s->hows = mask;
		progress_how(o ? o->progress : NULL, copy_methods_name(mask));
	}
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
	/* A raw base has no clusters: file system blocks, so runs of a top
	 * with small clusters still move file to file. */
	s->cs = bi.cluster_size ? bi.cluster_size : 4096;
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

/* How each layer above base moves its runs: forced, or predicted. */
static int copy_methods_setup(struct copy_run_state *s, struct img_err *e)
{
	enum copy_method m = s->o ? s->o->method : COPY_AUTO;

	s->ctx = calloc((size_t)s->nabove, sizeof(*s->ctx));
	if (!s->ctx)
		return err_set(e, ENOMEM, "copy: out of memory");
	for (int l = 0; l < s->nabove; l++) {
		int best = copy_predict(s->c->layer[l], s->base);
		/* A forced method goes first where files may move at all. */
		if (m == COPY_AUTO || best == IO_COPY_RW)
			s->ctx[l].first = best;
		else
			s->ctx[l].first = (int)m - 1;
	}
	return 0;
}

/* Base over a backing file, grown, reads zeros from its old end (the
 * driver zeroes the new range before the size moves), but only from the
 * next whole cluster: the one its old end cuts in two is written first
 * with what base shows up to that end, so that the driver pads it with
 * zeros (base's view, and so every reader's, is unchanged). */
static int keep_cut_cluster(struct copy_run_state *s, struct img_err *e)
{
	uint64_t old = s->base_old_size, a = old / s->cs * s->cs;
	uint8_t *buf;
	int r;

	if (!s->base_has_backing || a == old)
		return 0;
	buf = malloc((size_t)(old - a));
	if (!buf)
		return err_set(e, ENOMEM, "copy: out of memory");
	r = chain_pread(s->c, s->nabove, a, buf, (size_t)(old - a), e);
	if (r == 0)
		r = img_pwrite(s->base, a, buf, (size_t)(old - a), e);
	if (r == 0)
		r = img_flush(s->base, e);
	free(buf);
	return r;
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
		r = keep_cut_cluster(s, e);
		if (r == 0)
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

/* The first reader, on the caller's handles; the others start when a
 * window has to be read (copy_more_readers). */
static int copy_readers_setup(struct copy_run_state *s, struct img_err *e)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	s->want = cores < 1 ? 1 : cores > COPY_MAX_READERS
				  ? COPY_MAX_READERS : (int)cores;
	s->rd[0].c = s->c;
	s->rd[0].s = s;
	s->rd[0].cl = malloc((size_t)(s->win / s->cs + 1) *
			     sizeof(*s->rd[0].cl));
	s->nreaders = 1;
	if (!s->rd[0].cl)
		return err_set(e, ENOMEM, "copy: out of memory");
	return 0;
}

/* Data is being read (decompressed, merged), not moved file to file: one
 * reader per core, each on its own handles (chain_dup: their tables cost
 * memory, so only when reading is what the copy does).  A reader that
 * cannot be had is not started; the copy goes on with fewer. */
static void copy_more_readers(struct copy_run_state *s)
{
	size_t ncl = (size_t)(s->win / s->cs + 1);

	s->grown = true;
	while (s->threaded && s->nreaders < s->want) {
		struct copy_reader *rd = &s->rd[s->nreaders];
		rd->s = s;
		rd->cl = malloc(ncl * sizeof(*rd->cl));
		if (!rd->cl || chain_dup(s->c, &rd->c, NULL) < 0)
			break;
		rd->started = pthread_create(&rd->tid, NULL, reader_main,
					     rd) == 0;
		if (!rd->started)
			break;
		s->nreaders++;
	}
	if (s->nreaders < s->want) {    /* the one that failed */
		struct copy_reader *rd = &s->rd[s->nreaders];
		free(rd->cl);
		chain_close(rd->c);
		*rd = (struct copy_reader){ 0 };
	}
}

/* The windows: one per reader and one more, so the writer always has the
 * next one to write while each reader fills another.  Buffers are touched
 * only where data is read, not where it moves file to file. */
static int copy_alloc(struct copy_run_state *s, struct img_err *e)
{
	bool mem = true;

	s->njobs = s->want + 1;
	for (int i = 0; i < s->njobs; i++) {
		s->job[i].buf = malloc((size_t)s->win);
		s->job[i].acts = malloc((size_t)(s->win / s->cs + 1) *
					sizeof(struct copy_act));
		mem = mem && s->job[i].buf && s->job[i].acts;
	}
	s->runs = malloc((size_t)(s->win / s->cs + 1) * 2 * sizeof(*s->runs));
	mem = mem && s->runs;
	if (!mem)
		return err_set(e, ENOMEM, "copy: out of memory for %d %llu-byte "
			       "windows", s->njobs, (unsigned long long)s->win);
	return 0;
}

/* Write one window a reader filled, then report and throttle. */
static int copy_window(struct copy_run_state *s, struct copy_job *j,
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
			job_done(s, j);
			return r;
		}
		s->batch = true;
	}
	before = s->st->bytes_written + s->st->bytes_zeroed;
	r = consume(s, j, e);
	s->done += j->above;
	/* Which image the progress names as being read. */
	const char *layer = j->layer >= 0 && j->layer < s->nabove ?
			    s->c->layer[j->layer]->path : NULL;
	if (j->reads && !s->grown)
		copy_more_readers(s);
	job_done(s, j);
	if (r < 0)
		return r;
	note_hows(s);
	if (s->done > s->total)
		s->total = s->done;     /* the estimate was low: never shrink */
	uint64_t t_cb = now_ns();
	if (progress_report(o ? o->progress : NULL, "copy", s->done, s->total,
			    layer))
		s->stop = true;
	/* A front end may hold the copy in its callback while it asks a
	 * question: that time is not copy time, or the rate limit would
	 * let a burst through afterwards. */
	s->start_ns += now_ns() - t_cb;
	r = throttle(s, s->st->bytes_written + s->st->bytes_zeroed - before,
		     s->start_ns);
	if (r < 0)
		return err_set(e, ECANCELED, "commit cancelled during the "
			       "copy; every image is still valid");
	return 0;
}

/* Start the readers (or fill windows in turn) and write every window in
 * sequence. */
static int copy_loop(struct copy_run_state *s, struct img_err *e)
{
	int r;

	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->sync_init = true;
	s->rd[0].started = pthread_create(&s->rd[0].tid, NULL, reader_main,
					  &s->rd[0]) == 0;
	s->threaded = s->rd[0].started;
	for (uint64_t seq = 0;; seq++) {
		if (cancelled(s))
			return err_set(e, ECANCELED, "commit cancelled during "
				       "the copy; every image is still valid");
		struct copy_job *j = next_job(s, seq);
		if (!j)
			return 0;
		if (j->r < 0) {
			err_propagate(e, &j->err);
			return j->r;
		}
		r = copy_window(s, j, e);
		if (r < 0)
			return r;
	}
}

/* Stop the readers, close the batch (also after a failure or a cancel:
 * what was written is linked, base stays valid either way), free. */
static int copy_teardown(struct copy_run_state *s, int r, struct img_err *e)
{
	if (s->sync_init) {
		pthread_mutex_lock(&s->mu);
		s->quit = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	for (int i = 0; i < s->nreaders; i++)
		if (s->rd[i].started)
			pthread_join(s->rd[i].tid, NULL);
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
	for (int l = 0; s->ctx && l < s->nabove; l++)
		for (int h = 0; h < IO_COPY_HOWS; h++)
			s->st->bytes_how[h] += s->ctx[l].bytes[h];
	for (int i = 0; i < COPY_MAX_READERS + 1; i++) {
		free(s->job[i].buf);
		free(s->job[i].acts);
	}
	for (int i = 0; i < s->nreaders; i++) {
		free(s->rd[i].cl);
		if (i)
			chain_close(s->rd[i].c);
	}
	free(s->ctx);
	free(s->runs);
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
		r = copy_methods_setup(&s, e);
	if (r == 0)
		r = copy_prepare_base(&s, e);
	if (r == 0)
		r = copy_readers_setup(&s, e);
	if (r == 0)
		r = copy_alloc(&s, e);
	if (r == 0) {
		s.start_ns = now_ns();
		if (progress_update(o ? o->progress : NULL, "copy", 0, s.total))
			r = err_set(e, ECANCELED, "commit cancelled");
	}
	if (r == 0)
		r = copy_loop(&s, e);
	if (r == 0) {
		progress_update(o ? o->progress : NULL, "copy", s.total,
				s.total);
		/* Closing the batch links and syncs what the copy wrote:
		 * the first part of the flush, so the front ends say so. */
		progress_update(o ? o->progress : NULL, "flush", 0, 1);
	}
	return copy_teardown(&s, r, e);
}
