/* commit_live_virt.c - the job of a live commit when the QEMU is a
 * libvirt domain's: virDomainBlockCommit, then, for an active commit,
 * virDomainBlockJobAbort with PIVOT once the job is ready.
 *
 * libvirt 9.0 starts block-commit with auto-finalize on (see
 * ../shared/reference/live-facts.md): there is no "pending" stop, so the
 * job ends with QEMU's overlay already relinked, and base is flushed and
 * the offline parents re-checked after it (commit_live.c).  A job that
 * ends while top is still in the disk's chain failed.
 */
#include "commit_int.h"
#include "core/live/virt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VIRT_POLL_NS 200000000L

static bool cancelled(const struct commit_opts *o)
{
	return o && o->cancel && *o->cancel;
}

/* Is node id still in the disk's chain (the job did not take effect)? */
static int still_in_chain(struct virt_conn *vc, const struct plan_live *l,
			  const struct gnode *x, bool *yes, struct img_err *e)
{
	struct virt_domain d;
	int dk, layer, r = virt_domain_get(vc, l->domain, &d, e);

	if (r < 0)
		return r;
	*yes = virt_domain_find(&d, x->dev, x->ino, &dk, &layer);
	virt_domain_free(&d);
	return 0;
}

int commit_virt_start(struct commit_run *cr, struct virt_conn *vc,
		      struct img_err *e)
{
	const struct plan *p = cr->p;
	const struct plan_live *l = &p->live;
	unsigned flags = 0;
	bool rel = false;

	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].live)
			rel = p->parents[i].relative;
	if (l->job == PLAN_LIVE_ACTIVE)
		flags |= VIRT_COMMIT_ACTIVE;
	if (rel)
		flags |= VIRT_COMMIT_RELATIVE;
	return virt_commit(vc, l->domain, l->disk,
			   cr->g->nodes[p->base].path,
			   l->job == PLAN_LIVE_ACTIVE ? NULL
						      : cr->g->nodes[p->top].path,
			   cr->o ? cr->o->rate : 0, flags, e);
}

int commit_virt_wait(struct commit_run *cr, struct virt_conn *vc,
		     uint64_t *done, struct img_err *e)
{
	const struct plan_live *l = &cr->p->live;
	const struct progress *pr = cr->o ? cr->o->progress : NULL;
	const struct timespec ts = { 0, VIRT_POLL_NS };
	uint64_t cur = 0, end = 0;
	bool in = true;
	int r;

	for (;;) {
		if (cancelled(cr->o)) {
			virt_job_abort(vc, l->domain, l->disk, false, NULL);
			progress_job(pr, l->disk, "cancelled");
			return err_set(e, ECANCELED, "commit cancelled: "
				       "libvirt's block job was aborted; every "
				       "parent still uses top");
		}
		r = virt_job_info(vc, l->domain, l->disk, &cur, &end, e);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		*done = cur;
		commit_phase(cr->o, "copy", cur, end > cur ? end : cur);
		/* the pool watch (commit_watch.c), once more before the
		 * pivot; libvirt finalizes a plain commit by itself, so its
		 * last look is the last poll */
		r = l->job == PLAN_LIVE_ACTIVE && end && cur == end ?
			commit_new_readers(cr, UINT64_MAX, e) :
			commit_watch_step(cr, cur, UINT64_MAX, true, e);
		if (r < 0) {
			virt_job_abort(vc, l->domain, l->disk, false, NULL);
			progress_job(pr, l->disk, "cancelled");
			return r;
		}
		if (l->job == PLAN_LIVE_ACTIVE && end && cur == end &&
		    virt_job_abort(vc, l->domain, l->disk, true, NULL) == 0) {
			progress_job(pr, l->disk, "pivoted");
			break;
		}
		nanosleep(&ts, NULL);
	}
	r = still_in_chain(vc, l, &cr->g->nodes[cr->p->top], &in, e);
	if (r < 0)
		return r;
	if (in)
		return err_set(e, EIO, "libvirt's block job on disk %s of "
			       "domain '%s' ended but '%s' is still in its "
			       "chain: the commit failed (see the domain's "
			       "log); every parent still uses top", l->disk,
			       l->domain, cr->g->nodes[cr->p->top].path);
	progress_job(pr, l->disk, "concluded");
	return 0;
}
