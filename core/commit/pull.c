/* pull.c - write the data of the images between top and base into top,
 * where top allocates nothing (pull.h).
 *
 * One thread, one window at a time: the ranges come from block status of
 * the chain (pull_ranges, the rule the plan counts with too), each window
 * of a range is read through top's backing file (layer 1: top allocates
 * nothing there, so that is top's view) and written into top unit by
 * unit, zeros as write_zeroes.  The writes go in one write batch
 * (img_batch_begin): one fdatasync links them all.
 */
#include "pull.h"
#include "formats/img.h"

#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#define PULL_WINDOW (4u << 20)

uint64_t pull_unit(uint64_t cluster_size, bool extended_l2)
{
	if (!cluster_size)
		return 4096;
	/* extended L2: 32 subclusters per cluster */
	return extended_l2 && cluster_size >= 32 * 512 ? cluster_size / 32
						      : cluster_size;
}

/* The range being merged: [a, z) once any. */
struct pull_walk {
	uint64_t a, z;
	bool any;
};

static int walk_flush(struct pull_walk *w, pull_range_fn fn, void *opaque,
		      struct img_err *e)
{
	int r = w->any ? fn(opaque, w->a, w->z - w->a, e) : 0;

	w->any = false;
	return r;
}

/* [off, off + len) must be pulled: widened to top's units (top allocates
 * whole units, so a unit with one byte served below top is not allocated
 * in top at all) and merged with the range before when they touch. */
static int walk_add(struct pull_walk *w, uint64_t off, uint64_t len,
		    uint64_t unit, uint64_t end, pull_range_fn fn,
		    void *opaque, struct img_err *e)
{
	uint64_t a = off / unit * unit;
	uint64_t z = (off + len + unit - 1) / unit * unit;
	int r;

	if (z > end)
		z = end;
	if (w->any && a <= w->z) {
		if (z > w->z)
			w->z = z;
		return 0;
	}
	if ((r = walk_flush(w, fn, opaque, e)) < 0)
		return r;
	*w = (struct pull_walk){ a, z, true };
	return 0;
}

/* Zeros between top and base over [off, off + len): only the parts where
 * base (with what lies below it) does not read as zeros need pulling.
 * With the chain cut at base (nabove == c->n) base's view is unknown:
 * all of it. */
static int walk_zeros(struct chain *c, int nabove, struct pull_walk *w,
		      uint64_t off, uint64_t len, uint64_t unit, uint64_t end,
		      pull_range_fn fn, void *opaque, struct img_err *e)
{
	if (nabove >= c->n)
		return walk_add(w, off, len, unit, end, fn, opaque, e);
	while (len) {
		struct chain_status st;
		uint64_t n = 0;
		int r = chain_block_status(c, nabove, off, len, &n, &st, e);

		if (r < 0)
			return r;
		if (!n || n > len)
			return err_set(e, EIO, "%s: bad block status at offset "
				       "%llu", c->layer[nabove]->path,
				       (unsigned long long)off);
		if (st.bs == IMG_BS_DATA &&
		    (r = walk_add(w, off, n, unit, end, fn, opaque, e)) < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int pull_ranges(struct chain *c, int nabove, uint64_t unit, pull_range_fn fn,
		void *opaque, struct img_err *e)
{
	uint64_t end = c->layer[0]->virtual_size, off = 0;
	struct pull_walk w = { 0 };

	while (off < end) {
		struct chain_status st;
		uint64_t pnum = 0;
		int r = chain_block_status(c, 0, off, end - off, &pnum, &st, e);

		if (r < 0)
			return r;
		if (!pnum)
			return err_set(e, EIO, "%s: no progress in block "
				       "status at offset %llu",
				       c->layer[0]->path,
				       (unsigned long long)off);
		/* Served by top (depth 0), or by base or below (unchanged by
		 * the relink): nothing to pull. */
		if (st.depth > 0 && st.depth < nabove && st.bs == IMG_BS_ZERO)
			r = walk_zeros(c, nabove, &w, off, pnum, unit, end,
				       fn, opaque, e);
		else if (st.depth > 0 && st.depth < nabove)
			r = walk_add(&w, off, pnum, unit, end, fn, opaque, e);
		if (r < 0)
			return r;
		off += pnum;
	}
	return walk_flush(&w, fn, opaque, e);
}

struct pull_state {
	struct chain *c;
	struct img *top;
	const struct pull_opts *o;
	struct pull_stats *st;
	uint64_t unit;
	uint8_t *buf;
	uint64_t start_ns;
	bool counting;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool cancelled(const struct pull_opts *o)
{
	return o && o->cancel && *o->cancel;
}

/* Sleep so that written bytes stay under the rate; wakes every 100 ms to
 * honour a cancel. */
static int throttle(struct pull_state *s)
{
	uint64_t done = s->st->bytes_written + s->st->bytes_zeroed, due;

	if (!s->o || !s->o->rate)
		return 0;
	due = s->start_ns + (uint64_t)((double)done * 1e9 /
				       (double)s->o->rate);
	for (;;) {
		uint64_t t = now_ns(), d;
		struct timespec ts;

		if (cancelled(s->o))
			return -ECANCELED;
		if (t >= due)
			return 0;
		d = due - t > 100000000ull ? 100000000ull : due - t;
		ts = (struct timespec){ (time_t)(d / 1000000000ull),
					(long)(d % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

static bool all_zero(const uint8_t *b, uint64_t n)
{
	return n == 0 || (b[0] == 0 && !memcmp(b, b + 1, (size_t)n - 1));
}

/* Write [off, off + len) of the window (bytes in buf) into top: runs of
 * units that read as zeros with write_zeroes, the others as data. */
static int write_window(struct pull_state *s, uint64_t off, uint64_t len,
			struct img_err *e)
{
	uint64_t at = 0;

	while (at < len) {
		uint64_t n = s->unit < len - at ? s->unit : len - at;
		bool zero = all_zero(s->buf + at, n);
		uint64_t run = n;
		int r;

		while (at + run < len) {
			uint64_t m = s->unit < len - at - run ? s->unit
							      : len - at - run;
			if (all_zero(s->buf + at + run, m) != zero)
				break;
			run += m;
		}
		if (zero) {
			r = img_write_zeroes(s->top, off + at, run, e);
			s->st->bytes_zeroed += r == 0 ? run : 0;
		} else {
			r = img_pwrite(s->top, off + at, s->buf + at,
				       (size_t)run, e);
			s->st->bytes_written += r == 0 ? run : 0;
		}
		if (r < 0)
			return r;
		at += run;
	}
	return 0;
}

/* pull_range_fn: count (first pass) or copy a range window by window. */
static int pull_range(void *opaque, uint64_t off, uint64_t len,
		      struct img_err *e)
{
	struct pull_state *s = opaque;
	uint64_t end = off + len;

	if (s->counting) {
		s->st->bytes_total += len;
		return 0;
	}
	while (off < end) {
		uint64_t n = end - off < PULL_WINDOW ? end - off : PULL_WINDOW;
		int r;

		if (cancelled(s->o))
			return err_set(e, ECANCELED, "pull cancelled; top "
				       "shows what it showed, and still names "
				       "its old backing file");
		r = chain_pread(s->c, 1, off, s->buf, (size_t)n, e);
		if (r == 0)
			r = write_window(s, off, n, e);
		if (r == 0 &&
		    progress_update(s->o ? s->o->progress : NULL, "copy",
				    s->st->bytes_written + s->st->bytes_zeroed,
				    s->st->bytes_total) && s->o && s->o->cancel)
			*s->o->cancel = 1;
		if (r == 0)
			r = throttle(s);
		if (r == -ECANCELED)
			return err_set(e, ECANCELED, "pull cancelled; top "
				       "shows what it showed, and still names "
				       "its old backing file");
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

int pull_run(struct chain *c, int nabove, struct img *top,
	     const struct pull_opts *o, struct pull_stats *st,
	     struct img_err *e)
{
	struct img_info ti;
	struct pull_state s = { .c = c, .top = top, .o = o, .st = st };
	int r, br;

	memset(st, 0, sizeof(*st));
	r = img_get_info(top, &ti, e);
	if (r < 0)
		return r;
	s.unit = pull_unit(ti.cluster_size, ti.extended_l2);
	s.counting = true;
	r = pull_ranges(c, nabove, s.unit, pull_range, &s, e);
	if (r < 0)
		return r;
	s.counting = false;
	progress_how(o ? o->progress : NULL, "read/write");
	progress_update(o ? o->progress : NULL, "copy", 0, st->bytes_total);
	if (!st->bytes_total)
		return 0;
	s.buf = malloc(PULL_WINDOW);
	if (!s.buf)
		return err_set(e, ENOMEM, "out of memory");
	s.start_ns = now_ns();
	r = img_batch_begin(top, e);
	if (r == 0)
		r = pull_ranges(c, nabove, s.unit, pull_range, &s, e);
	/* Link what was written even after a failure: it is top's own view,
	 * and a rerun then has less to do. */
	{
		struct img_err be = { 0 };

		br = img_batch_end(top, &be);
		if (br < 0 && r == 0)
			r = err_propagate(e, &be);
	}
	free(s.buf);
	return r;
}

int pull_tx_lock(const char *base_path, int *fd, struct img_err *e)
{
	const char *slash = strrchr(base_path, '/');
	char dir[PATH_MAX];

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == base_path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - base_path),
			 base_path);
	*fd = io_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (*fd < 0)
		return err_set_errno(e, -*fd, "%s: cannot open base's "
				     "directory", dir);
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	pull_tx_unlock(fd);
	if (errno == EWOULDBLOCK)
		return err_set(e, EBUSY, "%s: another pull onto '%s' is "
			       "running; nothing was written", dir, base_path);
	return err_set_errno(e, errno, "%s: flock", dir);
}

void pull_tx_unlock(int *fd)
{
	if (*fd >= 0)
		io_close(*fd);   /* closing the only fd releases the flock */
	*fd = -1;
}
