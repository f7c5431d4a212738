/* commit_live.c - a commit whose copy runs inside a QEMU (plan.live).
 *
 * One transaction over QEMU and the offline parents:
 *   1. the journal of the offline parents, marked live (the QEMU, its
 *      job-id, the overlays it relinks), durable before the job starts:
 *      a crash of imgraph at any later step leaves a journal, and with it
 *      `imgraph recover` finds the job to cancel or the relink to finish;
 *   2. block-commit with that job-id, backing-file = the offline relink's
 *      name, auto-finalize and auto-dismiss off, speed = --rate;
 *   3. an active commit: at "ready", job-complete (the pivot); at every
 *      poll, before the pivot and before finalize, the pool watch
 *      (commit_watch.c): a new reader of base cancels the job;
 *   4. at "pending" base holds the data: fdatasync base from our own
 *      descriptor (it flushes the file whoever wrote it); the re-check of
 *      the offline parents' locks and openers; the confirmation;
 *   5. job-finalize: QEMU rewrites its own overlays; the journal records
 *      it (stage FINALIZED), the job is dismissed;
 *   6. the offline parents are rewritten (relink.c), the stale record set
 *      done and the journal retired.
 * Anything that fails before 5, or a cancel, ends the job with
 * job-cancel and removes the journal: every image is as it was (base may
 * hold some of top's data, which no view reads differently).
 */
#include "commit_int.h"
#include "relink.h"
#include "core/live/live.h"
#include "core/live/qmp.h"
#include "core/live/virt.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIVE_CANCEL_MS 30000       /* job-cancel until concluded */
#define LIVE_POLL_MS 200

struct live_run {
	struct commit_run *cr;
	struct qmp *q;
	struct virt_conn *vc;      /* a libvirt domain's job instead */
	struct qmp_job_state js;
	bool started;              /* block-commit was accepted */
	bool finalized;
	int base_fd;
	struct journal *j;
	int *fds;
};

static bool cancelled(const struct commit_opts *o)
{
	return o && o->cancel && *o->cancel;
}


/* The live record: who runs the job and which overlays it relinks. */
static int add_live_record(struct live_run *lr, struct img_err *e)
{
	const struct plan *p = lr->cr->p;
	const struct graph *g = lr->cr->g;
	struct journal_live *l = &lr->j->live;
	char abs[PATH_MAX];
	int r;

	l->present = true;
	l->pid = p->live.pid;
	l->active = p->live.job == PLAN_LIVE_ACTIVE;
	l->job_id = strdup(lr->js.id);
	if (p->live.domain) {
		char b[600];

		/* libvirt names the job by its disk */
		snprintf(b, sizeof(b), "libvirt:%s:%s", p->live.domain,
			 p->live.disk);
		l->qmp = strdup(b);
	} else {
		l->qmp = strdup(p->live.qmp);
	}
	l->lp = calloc((size_t)p->nparents + 1, sizeof(*l->lp));
	if (!l->job_id || !l->qmp || !l->lp)
		return err_set(e, ENOMEM, "out of memory");
	for (int i = 0; i < p->nparents; i++) {
		const struct plan_parent *pp = &p->parents[i];
		const struct gnode *x;

		if (!pp->live)
			continue;
		x = &g->nodes[pp->node];
		if ((r = commit_abs_path(x->path, abs, sizeof(abs), e)) < 0)
			return r;
		l->lp[l->nlp].dev = x->dev;
		l->lp[l->nlp].ino = x->ino;
		if (!(l->lp[l->nlp++].path = strdup(abs)))
			return err_set(e, ENOMEM, "out of memory");
	}
	return 0;
}

static int start_job(struct live_run *lr, struct img_err *e)
{
	const struct plan_live *l = &lr->cr->p->live;
	const struct commit_opts *o = lr->cr->o;
	json_t *a = json_pack("{s:s, s:s, s:s, s:b, s:b}", "job-id", lr->js.id,
			      "device", l->device, "base-node", l->base_node,
			      "auto-finalize", 0, "auto-dismiss", 0);
	int r = 0;

	if (!a)
		return err_set(e, ENOMEM, "out of memory");
	/* An active commit takes no top-node/backing-file (QEMU refuses
	 * backing-file for the active layer). */
	if (l->job == PLAN_LIVE_COMMIT &&
	    (json_object_set_new(a, "top-node", json_string(l->top_node)) ||
	     (l->backing_file && json_object_set_new(a, "backing-file",
					json_string(l->backing_file)))))
		r = -ENOMEM;
	if (r == 0 && o && o->rate &&
	    json_object_set_new(a, "speed", json_integer((json_int_t)o->rate)))
		r = -ENOMEM;
	if (r == 0)
		r = qmp_exec(lr->q, "block-commit", a, NULL, 0, e);
	else
		err_set(e, ENOMEM, "out of memory");
	json_decref(a);
	if (r == 0) {
		lr->started = true;
		snprintf(lr->js.status, sizeof(lr->js.status), "created");
		progress_job(o ? o->progress : NULL, lr->js.id, "created");
	}
	return r;
}

/* One poll: status and progress reported. */
static int poll_job(struct live_run *lr, struct img_err *e)
{
	const struct commit_opts *o = lr->cr->o;
	int r = qmp_job_poll(lr->q, &lr->js, LIVE_POLL_MS, e);

	if (r == -ECONNRESET || r == -EPIPE)
		err_prefix(e, "QEMU (PID %d) went away during its job: ",
			   (int)lr->cr->p->live.pid);
	if (r < 0)
		return r;
	if (lr->js.changed)
		progress_job(o ? o->progress : NULL, lr->js.id, lr->js.status);
	commit_phase(o, "copy", (uint64_t)lr->js.current,
		     (uint64_t)(lr->js.total > lr->js.current ? lr->js.total
							      : lr->js.current));
	return 0;
}

/* Where the job is, for the watch's message: the commit job walks top
 * from offset 0 (its progress is its offset); an active commit's mirror
 * copies top's allocated areas in no fixed order. */
static uint64_t live_at(const struct live_run *lr)
{
	uint64_t cur = (uint64_t)lr->js.current;

	return lr->cr->p->live.job == PLAN_LIVE_ACTIVE ? cur | COMMIT_AT_BYTES
						       : cur;
}

/* A reader of base that appeared while QEMU's job runs stops the commit
 * like an offline one (commit_watch.c): at each poll (a look when a pool
 * directory changed), and with last always, before the pivot and before
 * finalize rewrites a header. */
static int live_watch(struct live_run *lr, bool last, struct img_err *e)
{
	if (last)
		return commit_new_readers(lr->cr, live_at(lr), e);
	return commit_watch_step(lr->cr, (uint64_t)lr->js.current,
				 live_at(lr), true, e);
}

static int job_failed(struct live_run *lr, struct img_err *e)
{
	return err_set(e, EIO, "QEMU's job '%s' ended before it was "
		       "finalized (%s): %s", lr->js.id, lr->js.status,
		       lr->js.error[0] ? lr->js.error : "no error given");
}

/* Run the job to "pending": complete an active commit at "ready". */
static int wait_pending(struct live_run *lr, struct img_err *e)
{
	bool completed = false;
	int r;

	for (;;) {
		if (cancelled(lr->cr->o))
			return err_set(e, ECANCELED, "commit cancelled: QEMU's "
				       "job was cancelled; every parent still "
				       "uses top");
		if ((r = poll_job(lr, e)) < 0 ||
		    (r = live_watch(lr, false, e)) < 0)
			return r;
		if (qmp_job_is(&lr->js, "pending"))
			return 0;
		if (qmp_job_is(&lr->js, "ready") && !completed) {
			/* cancelled at ready, the job ends with no pivot */
			if ((r = live_watch(lr, true, e)) < 0)
				return r;
			r = qmp_job_simple(lr->q, "job-complete", lr->js.id, e);
			if (r < 0)
				return r;
			completed = true;
		}
		/* "aborting" goes on to "concluded", with the error */
		if (qmp_job_is(&lr->js, "concluded") ||
		    qmp_job_is(&lr->js, "null"))
			return job_failed(lr, e);
	}
}

/* Base holds the data: durable before any header names it; then the
 * same re-checks as before an offline relink. */
static int at_pending(struct live_run *lr, struct img_err *e)
{
	struct commit_run *cr = lr->cr;
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	int r;

	/* through the I/O layer: a counted op, so the fault tests can
	 * kill imgraph here, with QEMU's job pending */
	if ((r = io_fdatasync(lr->base_fd)) < 0)
		return err_set_errno(e, -r, "%s: fdatasync", base->path);
	for (int i = 0; i < cr->nf; i++)
		if ((r = lock_hold_recheck(&cr->f[i].lock, e)) < 0)
			return r;
	if ((r = commit_check_late_openers(cr, e)) < 0)
		return r;
	if (cancelled(cr->o))
		return err_set(e, ECANCELED, "commit cancelled: QEMU's job was "
			       "cancelled; every parent still uses top");
	if (cr->o && cr->o->confirm_relink &&
	    !cr->o->confirm_relink(cr->o->confirm_opaque, cr->g, cr->p)) {
		cr->res->relink_declined = true;
		return 1;
	}
	return 0;
}

static int finalize(struct live_run *lr, struct img_err *e)
{
	int r = qmp_job_simple(lr->q, "job-finalize", lr->js.id, e);

	while (r == 0 && !qmp_job_is(&lr->js, "concluded") &&
	       !qmp_job_is(&lr->js, "null"))
		r = poll_job(lr, e);
	if (r < 0)
		return r;
	if (lr->js.error[0] || qmp_job_is(&lr->js, "null"))
		return job_failed(lr, e);
	lr->finalized = true;
	lr->j->live.finalized = true;
	r = journal_write(lr->cr->jpath, lr->j, e);
	if (r < 0) {
		err_prefix(e, "QEMU finalized its job but the journal could "
			   "not record it (run 'imgraph recover'): ");
		return r;
	}
	return qmp_job_simple(lr->q, "job-dismiss", lr->js.id, e);
}

/* Before finalize: the job ends, the journal goes, nothing is relinked.
 * When the process is alive but its job cannot be ended, the journal
 * stays for recover.  True when the job is gone. */
static bool undo(struct live_run *lr, struct img_err *e)
{
	struct img_err ce;
	bool gone = false;

	err_clear(&ce);
	if (lr->vc) {
		/* libvirt's job was aborted where it failed or ended with
		 * top still in the chain: nothing took effect */
		gone = true;
	} else if (lr->started && lr->q &&
	    qmp_job_end(lr->q, &lr->js, LIVE_CANCEL_MS, &ce) < 0) {
		/* a monitor that closed: the process is exiting, which
		 * takes a moment after its sockets are gone */
		const struct timespec ts = { 0, 50000000L };

		for (int i = 0; i < 40 && !gone; i++) {
			gone = !live_pid_alive((pid_t)lr->cr->p->live.pid);
			if (!gone)
				nanosleep(&ts, NULL);
		}
	} else
		gone = true;
	if (gone || !lr->started) {
		journal_remove(lr->cr->jpath, &ce);
		progress_job(lr->cr->o ? lr->cr->o->progress : NULL, lr->js.id,
			     "null");
		return true;
	}
	err_prefix(e, "job '%s' could not be cancelled (%s); the journal "
		   "stays, run 'imgraph recover': ", lr->js.id, ce.msg);
	return false;
}

static int offline_relink(struct live_run *lr, struct img_err *e)
{
	struct commit_run *cr = lr->cr;
	int n = lr->j->nparents, r;

	commit_phase(cr->o, "relink", 0, (uint64_t)n);
	r = relink_apply(cr->jpath, lr->j, lr->fds, e);
	if (r < 0)
		return r;
	cr->res->relinked = n + lr->j->live.nlp;
	commit_phase(cr->o, "relink", (uint64_t)n, (uint64_t)n);
	commit_phase(cr->o, "cleanup", 0, 1);
	r = commit_stale_done(cr->g, cr->p, cr->txid, e);
	if (r == 0)
		r = journal_remove(cr->jpath, e);
	if (r < 0)
		err_prefix(e, "relink done, but its records are not settled "
			   "(run 'imgraph recover'): ");
	return r;
}

static int prepare(struct live_run *lr, struct img_err *e)
{
	struct commit_run *cr = lr->cr;
	const struct gnode *base = &cr->g->nodes[cr->p->base];
	int r;

	lr->base_fd = open(base->path, O_RDONLY | O_CLOEXEC);
	if (lr->base_fd < 0)
		return err_set_errno(e, errno, "%s: cannot open base",
				     base->path);
	if (cr->p->live.domain)
		r = virt_open(VIRT_URI, true, &lr->vc, e);
	else
		r = qmp_open(cr->p->live.qmp, cr->p->live.pid, 0, &lr->q, e);
	if (r == 0)
		r = commit_build_journal(cr, &lr->j, &lr->fds, e);
	if (r == 0)
		r = add_live_record(lr, e);
	if (r == 0)
		r = journal_write(cr->jpath, lr->j, e);
	/* base is written from here on: the intermediates are stale */
	if (r == 0)
		r = commit_stale_begin(cr->g, cr->p, cr->txid, NULL, e);
	if (r < 0 && lr->j)
		journal_remove(cr->jpath, NULL);
	return r;
}

static int run_qmp(struct live_run *lr, struct img_err *e)
{
	int r = start_job(lr, e);

	if (r == 0)
		r = wait_pending(lr, e);
	if (r == 0)
		r = at_pending(lr, e);
	/* the last look: finalize rewrites the first header */
	if (r == 0)
		r = live_watch(lr, true, e);
	if (r == 0)
		r = finalize(lr, e);
	return r;
}

/* libvirt finalizes by itself: when its job has ended, QEMU's overlay
 * names base already; base is flushed and the offline parents checked
 * then, and the journal records the stage. */
static int run_virt(struct live_run *lr, struct img_err *e)
{
	uint64_t done = 0;
	int r = commit_virt_start(lr->cr, lr->vc, e);

	if (r == 0) {
		lr->started = true;
		progress_job(lr->cr->o ? lr->cr->o->progress : NULL,
			     lr->cr->p->live.disk, "running");
		r = commit_virt_wait(lr->cr, lr->vc, &done, e);
		lr->js.current = (int64_t)done;
	}
	if (r < 0)
		return r;
	lr->finalized = true;
	/* base durable before the journal says "forward": libvirt gives no
	 * pending stop to do it earlier (docs/live.md, deviations) */
	if ((r = io_fdatasync(lr->base_fd)) < 0)
		return err_set_errno(e, -r, "%s: fdatasync",
				     lr->cr->g->nodes[lr->cr->p->base].path);
	lr->j->live.finalized = true;
	r = journal_write(lr->cr->jpath, lr->j, e);
	if (r == 0)
		r = at_pending(lr, e);
	return r;
}

int commit_live_run(struct commit_run *cr, struct img_err *e)
{
	struct live_run lr = { .cr = cr, .base_fd = -1 };
	int r;

	snprintf(lr.js.id, sizeof(lr.js.id), "imgraph-%016llx",
		 (unsigned long long)cr->txid);
	r = prepare(&lr, e);
	if (r == 0 && lr.vc)
		r = run_virt(&lr, e);
	else if (r == 0)
		r = run_qmp(&lr, e);
	if (r != 0 && !lr.finalized && lr.j) {
		/* a new reader: what base holds is what the job had done
		 * when its cancel took effect */
		if (undo(&lr, e) && r == -EBUSY && lr.q && cr->watch.reader)
			commit_new_reader_err(&cr->watch, live_at(&lr), e);
	} else if (r == 1 && lr.finalized)
		/* declined after libvirt's job: QEMU's overlay names base,
		 * the offline parents top; both read the same data */
		journal_remove(cr->jpath, NULL);
	else if (r < 0 && lr.finalized)
		err_prefix(e, "QEMU's part is done; run 'imgraph recover' to "
			   "relink the offline parents: ");
	if (r == 0)
		r = offline_relink(&lr, e);
	cr->res->bytes_copied = (uint64_t)lr.js.current;
	if (lr.q)
		qmp_close(lr.q);
	virt_close(lr.vc);
	if (lr.base_fd >= 0)
		close(lr.base_fd);
	users_tx_end(&cr->users);
	free(lr.fds);
	journal_free(lr.j);
	return r < 0 ? r : 0;
}
