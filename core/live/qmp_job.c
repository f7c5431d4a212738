/* qmp_job.c - following and ending one block job by its job-id; see
 * qmp.h.  Status comes from JOB_STATUS_CHANGE events as they arrive and
 * from query-jobs (which also carries the progress and the error), so a
 * missed event costs one poll, never a hang.
 */
#include "qmp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void set_status(struct qmp_job_state *s, const char *st)
{
	if (!st || !strcmp(s->status, st))
		return;
	snprintf(s->status, sizeof(s->status), "%s", st);
	s->changed = true;
}

/* Events of our job: its status changes. */
static int drain(struct qmp *q, struct qmp_job_state *s, int wait_ms,
		 struct img_err *e)
{
	json_t *ev = NULL;
	int r = qmp_event(q, wait_ms, &ev, e);

	while (r == 1) {
		const char *name = json_string_value(json_object_get(ev,
								     "event"));
		json_t *d = json_object_get(ev, "data");
		const char *id = json_string_value(json_object_get(d, "id"));

		if (name && !strcmp(name, "JOB_STATUS_CHANGE") && id &&
		    !strcmp(id, s->id))
			set_status(s, json_string_value(json_object_get(d,
								"status")));
		json_decref(ev);
		ev = NULL;
		r = qmp_event(q, 0, &ev, e);
	}
	return r < 0 ? r : 0;
}

int qmp_job_poll(struct qmp *q, struct qmp_job_state *s, int wait_ms,
		 struct img_err *e)
{
	struct qmp_job *v = NULL;
	int n = 0, r;

	s->changed = false;
	if ((r = drain(q, s, wait_ms, e)) < 0)
		return r;
	if ((r = qmp_query_jobs(q, &v, &n, e)) < 0)
		return r;
	s->found = false;
	for (int i = 0; i < n; i++) {
		if (!v[i].id || strcmp(v[i].id, s->id))
			continue;
		s->found = true;
		set_status(s, v[i].status);
		if (v[i].current >= 0)
			s->current = v[i].current;
		if (v[i].total >= 0)
			s->total = v[i].total;
		if (v[i].error)
			snprintf(s->error, sizeof(s->error), "%s", v[i].error);
	}
	qmp_jobs_free(v, n);
	if (!s->found)
		set_status(s, "null");
	return 0;
}

bool qmp_job_is(const struct qmp_job_state *s, const char *status)
{
	return !strcmp(s->status, status);
}

int qmp_job_simple(struct qmp *q, const char *cmd, const char *id,
		   struct img_err *e)
{
	json_t *args = json_pack("{s:s}", "id", id);
	int r;

	if (!args)
		return err_set(e, ENOMEM, "QMP: out of memory");
	r = qmp_exec(q, cmd, args, NULL, 0, e);
	json_decref(args);
	return r;
}

int qmp_job_end(struct qmp *q, struct qmp_job_state *s, int timeout_ms,
		struct img_err *e)
{
	struct timespec t0, t;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = qmp_job_poll(q, s, 0, e)) < 0)
		return r;
	if (!s->found)
		return 0;
	if (!qmp_job_is(s, "concluded") && !qmp_job_is(s, "aborting") &&
	    (r = qmp_job_simple(q, "job-cancel", s->id, e)) < 0)
		return r;
	while (!qmp_job_is(s, "concluded") && !qmp_job_is(s, "null")) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
			return err_set(e, ETIMEDOUT, "QMP: job '%s' did not end "
				       "within %d ms of job-cancel (status %s)",
				       s->id, timeout_ms, s->status);
		if ((r = qmp_job_poll(q, s, 100, e)) < 0)
			return r;
	}
	return s->found ? qmp_job_simple(q, "job-dismiss", s->id, e) : 0;
}

int qmp_job_abandon(struct qmp *q, const char *id, int timeout_ms,
		    struct img_err *e)
{
	struct qmp_job_state s = { 0 };

	snprintf(s.id, sizeof(s.id), "%s", id);
	return qmp_job_end(q, &s, timeout_ms, e);
}
