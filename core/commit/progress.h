/* progress.h - how long work reports (QEMU job progress contract), and the
 * one meter every front end turns the reports into bars, rate and ETA with.
 *
 * A report is an event: the phase (a short static name, in the order of
 * progress_phases), its own done/total (bytes for "copy", steps otherwise;
 * done only grows within a phase, total is an estimate and may change), and
 * for the copy the image the bytes were last read from.  The callback
 * returns nonzero to ask for cancellation; the worker then stops at the
 * next safe point and returns -ECANCELED.  The renderer (TUI screen, tty
 * bar, JSON lines) is chosen by the caller; the worker never prints.
 */
#ifndef IMGRAPH_PROGRESS_H
#define IMGRAPH_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A commit's phases, in the order they run ("check" only when base's
 * format has a consistency check). */
#define PROGRESS_NPHASES 5
extern const char *const progress_phases[PROGRESS_NPHASES];

struct progress_event {
	const char *phase;         /* one of progress_phases (static) */
	uint64_t done, total;      /* the phase's own units */
	const char *layer;         /* copy: path of the image the last bytes
				      were read from (valid during the
				      call), or NULL */
};

struct progress {
	int (*update)(void *opaque, const struct progress_event *ev);
	void *opaque;
	/* Optional: how the current phase moves its bytes, when that
	 * changes (copy: "clone", "copy_file_range", "read/write", or those
	 * used so far joined by '+'; a static string). */
	void (*how)(void *opaque, const char *how);
	/* Optional: a QEMU block job that does the work (a live commit)
	 * changed status (QMP's JOB_STATUS_CHANGE: "running", "ready",
	 * "pending", "concluded", ...); id is its job-id. */
	void (*job)(void *opaque, const char *id, const char *status);
};

static inline int progress_report(const struct progress *p,
				  const char *phase, uint64_t done,
				  uint64_t total, const char *layer)
{
	struct progress_event ev = { phase, done, total, layer };
	return p && p->update ? p->update(p->opaque, &ev) : 0;
}

static inline int progress_update(const struct progress *p, const char *phase,
				  uint64_t done, uint64_t total)
{
	return progress_report(p, phase, done, total, NULL);
}

static inline void progress_how(const struct progress *p, const char *how)
{
	if (p && p->how)
		p->how(p->opaque, how);
}

static inline void progress_job(const struct progress *p, const char *id,
				const char *status)
{
	if (p && p->job)
		p->job(p->opaque, id, status);
}

/* Index of phase in progress_phases, or -1. */
int progress_phase_index(const char *phase);

/* What a front end shows, derived from the events alone, so that the CLI
 * and the editor cannot disagree.  Times are seconds on the caller's
 * monotonic clock.  The rate is the copy's bytes over a sliding window of
 * running time, so a rate limit or a slow stretch shows within seconds and
 * a single slow window does not swing it; time paused (a question open)
 * counts neither in the rate nor in the ETA. */
#define PROGRESS_WINDOW 16
struct progress_meter {
	double t0;                 /* progress_meter_init */
	double paused;             /* seconds paused so far (closed pauses) */
	double pause_t;            /* start of the open pause, < 0 none */
	int phase;                 /* index of the current phase, -1 none */
	uint64_t done, total;      /* of the current phase */
	uint64_t bytes, bytes_total; /* the copy's (kept after it) */
	double copy_t0, copy_t1;   /* running time the copy started/ended
				      (copy_t1 < 0 while it runs) */
	bool seen[PROGRESS_NPHASES];
	/* Samples (running time, copy bytes), a ring. */
	double st[PROGRESS_WINDOW];
	uint64_t sb[PROGRESS_WINDOW];
	int ns, head;
	double fraction;           /* of the whole commit, never decreasing */
};
void progress_meter_init(struct progress_meter *m, double now);
void progress_meter_feed(struct progress_meter *m,
			 const struct progress_event *ev, double now);
/* A question opens (on) or closes: the time between is not running time. */
void progress_meter_pause(struct progress_meter *m, bool on, double now);
/* Seconds since init, pauses excluded. */
double progress_meter_running(const struct progress_meter *m, double now);
/* Copy bytes per second: over the window while the copy runs, the copy's
 * average once it is over; 0 before any byte moved. */
double progress_meter_rate(const struct progress_meter *m, double now);
/* Seconds left (the copy's remaining bytes at the rate); < 0 unknown. */
double progress_meter_eta(const struct progress_meter *m, double now);

#endif
