/* copy.c - copy top's view of what lies above base into base (copy.h). */
#include "copy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per base cluster in a window: what the layers above base say about it. */
#define CL_BELOW  1                /* some part not allocated above base */
#define CL_DATA   2                /* some part is data above base */
#define CL_ZERO   4                /* some part reads as zeros above base */

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
	uint8_t *buf;
	uint8_t *cl;               /* win / cs flags */
	struct timespec t0;
	uint64_t throttled;        /* bytes counted against the rate */
	bool stop;                 /* the progress callback asked to cancel */
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

/* Handle one window [ws, we) (ws cluster-aligned). */
static int do_window(struct copy_run_state *s, uint64_t ws, uint64_t we,
		     uint64_t *done, struct img_err *e)
{
	uint64_t ncl = (we - ws + s->cs - 1) / s->cs, off, n;
	uint64_t lim = we < s->top_size ? we : s->top_size;
	struct img *b = s->base;
	int r;

	memset(s->cl, 0, (size_t)ncl);
	/* Past top's end base keeps its own data: those parts count as
	 * "below" so a straddling cluster is written from the merged view. */
	if (lim < we)
		for (uint64_t k = (lim - ws) / s->cs; k < ncl; k++)
			s->cl[k] |= CL_BELOW;
	for (off = ws; off < lim; off += n) {
		r = above(s, off, lim - off, &n, e);
		if (r < 0)
			return r;
		uint8_t f = r == 1 ? CL_DATA : r == 2 ? CL_ZERO : CL_BELOW;
		for (uint64_t k = (off - ws) / s->cs;
		     k <= (off + n - 1 - ws) / s->cs; k++)
			s->cl[k] |= f;
		if (f != CL_BELOW)
			*done += n;
	}
	/* Runs of clusters with one action: skip, zero, or merged write. */
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
			r = read_view(s, a, s->buf + (a - ws), z - a, e);
			if (r == 0)
				r = b->drv->pwrite(b, a, s->buf + (a - ws),
						   (size_t)(z - a), e);
			if (r < 0)
				return r;
			s->st->bytes_written += z - a;
		} else if (act == 2) {
			r = b->drv->write_zeroes(b, a, z - a, e);
			if (r < 0)
				return r;
			s->st->bytes_zeroed += z - a;
		}
		k = k2;
	}
	return 0;
}

int copy_run(struct chain *c, int nabove, struct img *base,
	     const struct copy_opts *o, struct copy_stats *st,
	     struct img_err *e)
{
	struct copy_run_state s = { .c = c, .nabove = nabove, .base = base,
				    .o = o, .st = st };
	struct img_info bi;
	uint64_t off = 0, done = 0, total, end, start_ns;
	int r;

	memset(st, 0, sizeof(*st));
	if (nabove < 1 || nabove >= c->n)
		return err_set(e, EINVAL, "copy: base is not below top");
	if (!base->drv->pwrite || !base->drv->write_zeroes ||
	    !base->drv->grow)
		return err_set(e, ENOTSUP, "%s: the %s driver cannot write",
			       base->path, base->drv->name);
	r = base->drv->get_info(base, &bi, e);
	if (r < 0)
		return r;
	s.top_size = c->layer[0]->virtual_size;
	s.base_old_size = base->virtual_size;
	/* Past top's end the chain reads zeros at depth 0 (above base), so a
	 * larger view size makes the loop below zero that range in base. */
	if (o && o->view_size > s.top_size) {
		uint64_t v = o->view_size < s.base_old_size ? o->view_size
							    : s.base_old_size;
		if (v > s.top_size)
			s.top_size = v;
	}
	s.base_has_backing = nabove + 1 < c->n;
	s.cs = bi.cluster_size ? bi.cluster_size : 65536;
	s.win = COPY_WINDOW > s.cs ? COPY_WINDOW / s.cs * s.cs : s.cs;
	if (o && o->rate) {
		/* Throttling sleeps between windows: keep them near a quarter
		 * second of work so the rate holds over short spans too. */
		uint64_t w = o->rate / 4 / s.cs * s.cs;
		if (w < (1u << 20))
			w = (1u << 20) / s.cs * s.cs;
		if (w < s.cs)
			w = s.cs;
		if (w < s.win)
			s.win = w;
	}

	r = copy_measure(c, nabove, &total, e);
	if (r < 0)
		return r;
	total += s.top_size - c->layer[0]->virtual_size;
	if (s.base_has_backing && s.top_size > s.base_old_size)
		total += s.top_size - s.base_old_size;
	st->bytes_above = total;
	if (s.top_size > base->virtual_size) {
		r = base->drv->grow(base, s.top_size, e);
		if (r < 0)
			return r;
	}
	end = s.top_size;
	/* The last cluster may straddle top's end inside a larger base. */
	if (end % s.cs) {
		uint64_t up = (end / s.cs + 1) * s.cs;
		end = up < base->virtual_size ? up : base->virtual_size;
	}
	s.buf = malloc((size_t)s.win);
	s.cl = malloc((size_t)(s.win / s.cs + 1));
	if (!s.buf || !s.cl) {
		r = err_set(e, ENOMEM, "copy: out of memory for a %llu-byte "
			    "window", (unsigned long long)s.win);
		goto out;
	}
	start_ns = now_ns();
	if (progress_update(o ? o->progress : NULL, "copy", 0, total)) {
		r = err_set(e, ECANCELED, "commit cancelled");
		goto out;
	}
	while (off < s.top_size) {
		uint64_t n, ws, we, before;

		if (cancelled(&s)) {
			r = err_set(e, ECANCELED, "commit cancelled during the "
				    "copy; every image is still valid");
			goto out;
		}
		/* Skip what is not above base in one step (sparse tops). */
		r = above(&s, off, s.top_size - off, &n, e);
		if (r < 0)
			goto out;
		if (r == 0) {
			off += n;
			continue;
		}
		ws = off / s.cs * s.cs;
		we = ws + s.win;
		if (we > end)
			we = end;
		before = st->bytes_written + st->bytes_zeroed;
		r = do_window(&s, ws, we, &done, e);
		if (r < 0)
			goto out;
		off = we;
		if (done > total)
			total = done;   /* the estimate was low: never shrink */
		if (progress_update(o ? o->progress : NULL, "copy", done,
				    total))
			s.stop = true;
		r = throttle(&s, st->bytes_written + st->bytes_zeroed - before,
			     start_ns);
		if (r < 0) {
			err_set(e, ECANCELED, "commit cancelled during the "
				"copy; every image is still valid");
			goto out;
		}
	}
	progress_update(o ? o->progress : NULL, "copy", total, total);
	r = 0;
out:
	free(s.buf);
	free(s.cl);
	return r;
}
