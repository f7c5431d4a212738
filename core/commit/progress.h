/* progress.h - how long work reports (QEMU job progress contract).
 *
 * done only grows; total is an estimate and may change either way; phase is
 * a short static name ("copy", "flush", "relink", "cleanup").  The callback
 * returns nonzero to ask for cancellation; the worker then stops at the next
 * safe point and returns -ECANCELED.  The renderer (TUI bar, tty bar, JSON
 * lines) is chosen by the caller; the worker never prints.
 */
#ifndef IMGRAPH_PROGRESS_H
#define IMGRAPH_PROGRESS_H

#include <stdint.h>

struct progress {
	int (*update)(void *opaque, const char *phase, uint64_t done,
		      uint64_t total);
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

static inline int progress_update(const struct progress *p, const char *phase,
				  uint64_t done, uint64_t total)
{
	return p && p->update ? p->update(p->opaque, phase, done, total) : 0;
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

#endif
