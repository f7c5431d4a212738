/* editor_commit.c - run commit_execute in a worker thread so the UI stays
 * responsive (keys, resize) during a long copy.
 *
 * The worker only touches the graph and plan it was given; the UI thread
 * does not read them until editor_job_join().  Progress goes into a
 * mutex-protected struct the UI copies out; the relink question blocks the
 * worker on a condition variable until the UI answers.  Cancel is the
 * commit engine's own flag (checked at safe points). */
#include "editor_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/commit/commit.h"

struct editor_job {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct graph *g;           /* borrowed for the job's lifetime */
	const struct plan *p;
	struct commit_opts o;
	struct progress prog;
	volatile sig_atomic_t cancel;
	/* under mu */
	struct editor_job_snap s;
	int answer;                /* -1 pending, 0 no, 1 yes */
	bool hold;                 /* a question is open: wait at a report */
};

double editor_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Every report goes into the meter here, in the worker, so that no phase
 * is missed between two screen updates.  While a question is open the
 * worker waits here: nothing more is written while the user decides. */
static int job_progress(void *opaque, const struct progress_event *ev)
{
	struct editor_job *j = opaque;
	pthread_mutex_lock(&j->mu);
	while (j->hold && !j->cancel)
		pthread_cond_wait(&j->cv, &j->mu);
	progress_meter_feed(&j->s.m, ev, editor_now());
	snprintf(j->s.phase, sizeof(j->s.phase), "%s",
		 ev->phase ? ev->phase : "");
	if (ev->layer)
		snprintf(j->s.layer, sizeof(j->s.layer), "%s", ev->layer);
	else if (strcmp(j->s.phase, "copy"))
		j->s.layer[0] = 0;
	j->s.done = ev->done;
	j->s.total = ev->total;
	j->s.seq++;
	pthread_mutex_unlock(&j->mu);
	return j->cancel != 0;
}

static void job_how(void *opaque, const char *how)
{
	struct editor_job *j = opaque;
	pthread_mutex_lock(&j->mu);
	j->s.how = how;
	j->s.seq++;
	pthread_mutex_unlock(&j->mu);
}

/* A live commit: QEMU's job changed status (JOB_STATUS_CHANGE). */
static void job_status(void *opaque, const char *id, const char *status)
{
	struct editor_job *j = opaque;
	pthread_mutex_lock(&j->mu);
	snprintf(j->s.job, sizeof(j->s.job), "QEMU job %s: %s", id, status);
	j->s.seq++;
	pthread_mutex_unlock(&j->mu);
}

static int job_confirm(void *opaque, const struct graph *g,
		       const struct plan *p)
{
	(void)g;
	(void)p;
	struct editor_job *j = opaque;
	pthread_mutex_lock(&j->mu);
	j->answer = -1;
	j->s.asking = true;
	j->s.seq++;
	/* Time on the question is not the commit's (rate, ETA). */
	progress_meter_pause(&j->s.m, true, editor_now());
	while (j->answer < 0)
		pthread_cond_wait(&j->cv, &j->mu);
	progress_meter_pause(&j->s.m, false, editor_now());
	int yes = j->answer;
	j->s.asking = false;
	pthread_mutex_unlock(&j->mu);
	return yes;
}

static void *job_main(void *arg)
{
	struct editor_job *j = arg;
	struct commit_result res = { 0 };
	struct img_err e = { 0 };
	int rc = commit_execute(j->g, j->p, &j->o, &res, &e);
	pthread_mutex_lock(&j->mu);
	j->s.finished = true;
	j->s.rc = rc;
	j->s.res_bytes = res.bytes_copied;
	j->s.res_relinked = res.relinked;
	j->s.res_declined = res.relink_declined;
	j->s.res_deleted = res.deleted;
	j->s.t_end = editor_now();
	commit_result_free(&res);
	j->s.err = e;
	j->s.seq++;
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int editor_job_start(struct editor_job **out, struct graph *g,
		     const struct plan *p, uint64_t rate, struct img_err *e)
{
	struct editor_job *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, ENOMEM, "commit: out of memory");
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->g = g;
	j->p = p;
	j->prog.update = job_progress;
	j->prog.opaque = j;
	j->prog.how = job_how;
	j->prog.job = job_status;
	j->o.rate = rate;
	j->o.progress = &j->prog;
	j->o.cancel = &j->cancel;
	j->o.confirm_relink = job_confirm;
	j->o.confirm_opaque = j;
	j->answer = -1;
	progress_meter_init(&j->s.m, editor_now());
	/* Terminal signals go to the UI thread, which owns the terminal. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(&j->th, NULL, job_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
		return err_set_errno(e, rc, "commit: cannot start the worker");
	}
	*out = j;
	return 0;
}

void editor_job_snapshot(struct editor_job *j, struct editor_job_snap *s)
{
	pthread_mutex_lock(&j->mu);
	*s = j->s;
	pthread_mutex_unlock(&j->mu);
}

void editor_job_answer(struct editor_job *j, bool yes)
{
	pthread_mutex_lock(&j->mu);
	j->answer = yes ? 1 : 0;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

void editor_job_cancel(struct editor_job *j)
{
	pthread_mutex_lock(&j->mu);
	j->cancel = 1;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

void editor_job_hold(struct editor_job *j, bool on)
{
	pthread_mutex_lock(&j->mu);
	if (j->hold != on)
		progress_meter_pause(&j->s.m, on, editor_now());
	j->hold = on;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

void editor_job_join(struct editor_job *j)
{
	if (!j)
		return;
	pthread_join(j->th, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}
