/* protect.c - write base's old bytes into its other readers before base
 * changes (protect.h). */
#include "protect.h"
#include "formats/img.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROTECT_BUF (1u << 20)

int protect_open(struct protect_run *pr, const struct protect_target *t,
		 int n, const struct protect_src *src, struct img_err *e)
{
	int r;

	memset(pr, 0, sizeof(*pr));
	pr->c = calloc((size_t)n, sizeof(*pr->c));
	if (!pr->c)
		return err_set(e, ENOMEM, "protect: out of memory");
	pr->buflen = PROTECT_BUF;
	if (src && src->top_path) {
		r = chain_open(src->top_path, src->top_fmt, 0, src->base_dev,
			       src->base_ino, &pr->above, e);
		if (r < 0)
			return r;
		pr->cs = src->base_cluster ? src->base_cluster : 4096;
	}
	for (int i = 0; i < n; i++, pr->n++) {
		struct protect_child *ch = &pr->c[i];
		struct img_info in;

		r = chain_open(t[i].backing_path, t[i].backing_fmt, 0, 0, 0,
			       &ch->bc, e);
		if (r == 0)
			r = img_open_fd(t[i].fd, t[i].path, t[i].fmt,
					IMG_O_RDWR, &ch->img, NULL, e);
		if (r == 0)
			r = img_get_info(ch->img, &in, e);
		if (r < 0) {
			/* not counted in pr->n: closed here */
			img_close(ch->img);
			chain_close(ch->bc);
			*ch = (struct protect_child){ 0 };
			return r;
		}
		ch->bsize = ch->bc->layer[0]->virtual_size;
		ch->grain = in.cluster_size ? in.cluster_size : 512;
		if (in.extended_l2 && ch->grain >= 32 * 512)
			ch->grain /= 32;
		ch->vsize = ch->img->virtual_size;
		ch->done = t[i].done;
		if (ch->grain > pr->buflen)
			pr->buflen = (size_t)ch->grain;
	}
	pr->buf = malloc(pr->buflen);
	if (!pr->buf)
		return err_set(e, ENOMEM, "protect: out of memory");
	return 0;
}

/* The old view of [off, end) into ch, which allocates none of it:
 * zero runs of whole units as zero writes, the rest read and written
 * (whole units, up to the buffer). */
static int fill(struct protect_run *pr, struct protect_child *ch,
		uint64_t off, uint64_t end, struct img_err *e)
{
	uint64_t g = ch->grain, max = pr->buflen / g * g;

	while (off < end) {
		uint64_t n = end - off, pnum = n;
		bool zero = true;
		int r;

		if (off < ch->bsize) {
			struct chain_status st;
			uint64_t lim = end < ch->bsize ? end : ch->bsize;

			r = chain_block_status(ch->bc, 0, off, lim - off, &pnum,
					       &st, e);
			if (r < 0)
				return r;
			zero = st.bs != IMG_BS_DATA;
			/* Past the backing file's end it reads zeros too. */
			if (zero && off + pnum == ch->bsize)
				pnum = end - off;
		}
		n = off + pnum >= end ? end - off : pnum / g * g;
		if (!ch->batch) {
			r = img_batch_begin(ch->img, e);
			if (r < 0)
				return r;
			ch->batch = true;
			ch->bdone = 0;
			ch->bbytes = 0;
		}
		if (zero && n) {
			r = img_write_zeroes(ch->img, off, n, e);
			ch->bytes_zero += r < 0 ? 0 : n;
		} else {
			n = (pnum + g - 1) / g * g;
			n = n > max ? max : n;
			n = n > end - off ? end - off : n;
			r = chain_pread(ch->bc, 0, off, pr->buf, (size_t)n, e);
			if (r == 0)
				r = img_pwrite(ch->img, off, pr->buf, (size_t)n,
					       e);
			ch->bytes_data += r < 0 ? 0 : n;
		}
		if (r < 0)
			return r;
		off += n;
		ch->bbytes += n;
		if (ch->bbytes >= PROTECT_BATCH) {
			/* linked now: a later failure cannot lose these */
			ch->batch = false;
			r = img_batch_end(ch->img, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* One run of base in one reader: where the reader allocates nothing, on
 * its grid (what an earlier call wrote is allocated now: skipped). */
static int protect_run_one(struct protect_run *pr, struct protect_child *ch,
			   uint64_t a, uint64_t z, struct img_err *e)
{
	uint64_t g = ch->grain;

	a = a / g * g;
	z = (z + g - 1) / g * g;
	if (z > ch->vsize)
		z = ch->vsize;
	if (ch->batch && a < ch->bdone)
		a = ch->bdone;
	while (a < z) {
		uint64_t pnum = 0;
		int bs = img_block_status(ch->img, a, z - a, &pnum, e);

		if (bs < 0)
			return bs;
		if (pnum == 0)
			return err_set(e, EIO, "%s: no block status at %llu",
				       ch->img->path, (unsigned long long)a);
		if (bs == IMG_BS_UNALLOC) {
			int r;

			/* below the journal's DONE: a gap the verification
			 * found (top or the reader changed since) */
			if (a < ch->done)
				ch->bytes_gap += (a + pnum < ch->done ?
						  a + pnum : ch->done) - a;
			r = fill(pr, ch, a, a + pnum, e);
			ch->dirty = true;
			if (r < 0)
				return r;
		}
		a += pnum;
	}
	if (ch->batch && z > ch->bdone)
		ch->bdone = z;
	return 0;
}

/* End ch's write batch: its writes linked (and visible to block status
 * again).  Not yet flushed. */
static int settle(struct protect_child *ch, struct img_err *e)
{
	if (!ch->batch)
		return 0;
	ch->batch = false;
	return img_batch_end(ch->img, e);
}

/* The look-ahead: what the copy will write in [pr->ahead, end) (above
 * base, on base's grid), protected in every reader (not flushed yet). */
static int look_ahead(struct protect_run *pr, uint64_t end,
		      struct img_err *e)
{
	uint64_t off = pr->ahead, lim = pr->above->layer[0]->virtual_size;

	if (end > lim)
		end = lim;
	while (off < end) {
		struct chain_status st;
		uint64_t pnum = 0, a, z;
		int r = chain_block_status(pr->above, 0, off, end - off, &pnum,
					   &st, e);

		if (r < 0)
			return r;
		if (pnum == 0)
			break;
		if (st.depth < pr->above->n) {
			a = off / pr->cs * pr->cs;
			z = (off + pnum + pr->cs - 1) / pr->cs * pr->cs;
			for (int i = 0; i < pr->n; i++) {
				r = protect_run_one(pr, &pr->c[i], a, z, e);
				if (r < 0)
					return r;
			}
		}
		off += pnum;
	}
	pr->ahead = end;
	return 0;
}

int protect_window(void *opaque, const uint64_t *runs, size_t nruns,
		   struct img_err *e)
{
	struct protect_run *pr = opaque;
	uint64_t last = nruns ? runs[2 * nruns - 1] : 0;
	int r = 0;

	if (pr->above && last > pr->ahead)
		r = look_ahead(pr, last + PROTECT_AHEAD, e);
	/* The window's own runs are looked at afresh, after the look-ahead's
	 * writes are linked. */
	for (int i = 0; i < pr->n; i++) {
		int sr = settle(&pr->c[i], e);
		r = r < 0 ? r : sr;
	}
	if (r < 0) {
		for (int i = 0; i < pr->n; i++)
			if (pr->c[i].dirty)
				img_flush(pr->c[i].img, NULL);
		err_prefix(e, "protecting base's readers (nothing of base was "
			   "changed there; every view is intact): ");
		return r;
	}
	for (int i = 0; i < pr->n; i++) {
		struct protect_child *ch = &pr->c[i];

		for (size_t k = 0; k < nruns && r == 0; k++)
			r = protect_run_one(pr, ch, runs[2 * k],
					    runs[2 * k + 1], e);
		/* Durable before base's range changes: flushed even after a
		 * failure, so what reached the reader is whole. */
		if (ch->dirty || r < 0) {
			struct img_err fe;
			int fr = settle(ch, &fe);
			if (fr == 0)
				fr = img_flush(ch->img, &fe);
			if (r == 0 && fr < 0)
				r = err_propagate(e, &fe);
			ch->dirty = false;
		}
		if (r < 0) {
			err_prefix(e, "protecting %s (nothing of base was "
				   "changed there; every view is intact): ",
				   ch->img->path);
			return r;
		}
	}
	if (last > pr->safe)
		pr->safe = last;
	if (pr->record && pr->safe >= pr->recorded + PROTECT_RECORD)
		return protect_record(pr, e);
	return 0;
}

int protect_record(struct protect_run *pr, struct img_err *e)
{
	int r;

	if (!pr->record || pr->safe <= pr->recorded)
		return 0;
	r = pr->record(pr->record_opaque, pr->safe, e);
	if (r < 0) {
		err_prefix(e, "recording the protection (nothing of base was "
			   "changed past it): ");
		return r;
	}
	pr->recorded = pr->safe;
	return 0;
}

uint64_t protect_bytes(const struct protect_run *pr)
{
	uint64_t b = 0;

	for (int i = 0; i < pr->n; i++)
		b += pr->c[i].bytes_data + pr->c[i].bytes_zero;
	return b;
}

uint64_t protect_gap_bytes(const struct protect_run *pr)
{
	uint64_t b = 0;

	for (int i = 0; i < pr->n; i++)
		b += pr->c[i].bytes_gap;
	return b;
}

void protect_close(struct protect_run *pr)
{
	for (int i = 0; pr->c && i < pr->n; i++) {
		img_close(pr->c[i].img);
		chain_close(pr->c[i].bc);
	}
	free(pr->c);
	free(pr->buf);
	chain_close(pr->above);
	memset(pr, 0, sizeof(*pr));
}
