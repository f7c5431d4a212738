/* recover_live.c - which way an interrupted live commit goes (journal
 * with a live record, commit_live.c).
 *
 * The QEMU job decides: once it is finalized, QEMU's overlays name base,
 * so the offline parents follow them (forward); before that the job is
 * cancelled and every parent goes back to top.  Asked in this order:
 *   1. the process, when it still runs and its monitor answers: a job of
 *      ours still running, ready or pending is cancelled (back); one that
 *      concluded without an error was finalized (forward), with an error
 *      it was not (back); either is dismissed;
 *   2. the journal's stage FINALIZED (forward);
 *   3. the overlays QEMU relinks, on disk: all naming base (forward), all
 *      naming top (back), a mix: nothing is touched.  An active commit has
 *      no such overlays and goes back unless its stage says otherwise.
 */
#include "recover.h"
#include "core/graph/resolve.h"
#include "core/live/live.h"
#include "core/live/qmp.h"
#include "core/live/virt.h"
#include "formats/img.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define REC_CANCEL_MS 30000


/* 1: the job answered (*forward set); 0: no job or no process to ask;
 * -EBUSY: the monitor is busy or the job cannot be ended (why filled). */
static int ask_qemu(const struct journal *j, bool *forward, char *why,
		    size_t wlen)
{
	struct qmp_job_state s = { 0 };
	struct img_err e;
	struct qmp *q;
	int r;

	if (!live_pid_alive((pid_t)j->live.pid))
		return 0;
	err_clear(&e);
	r = qmp_open(j->live.qmp, (pid_t)j->live.pid, 0, &q, &e);
	if (r == -EBUSY) {
		snprintf(why, wlen, "%s", e.msg);
		return -EBUSY;
	}
	if (r < 0)
		return 0;
	snprintf(s.id, sizeof(s.id), "%s", j->live.job_id);
	r = qmp_job_poll(q, &s, 0, &e);
	if (r == 0 && s.found) {
		*forward = qmp_job_is(&s, "concluded") && !s.error[0];
		r = qmp_job_abandon(q, s.id, REC_CANCEL_MS, &e);
		if (r < 0)
			snprintf(why, wlen, "job '%s' of PID %lld: %s", s.id,
				 (long long)j->live.pid, e.msg);
	}
	qmp_close(q);
	if (r < 0)
		return -EBUSY;
	return s.found ? 1 : 0;
}

/* Does the overlay at path name the file dev:ino? */
static int names(const char *path, uint64_t dev, uint64_t ino, bool *yes)
{
	struct img_backing b;
	struct img *img;
	char res[PATH_MAX];
	enum resolve_kind k;
	struct stat st;
	int r = img_open(path, NULL, IMG_O_INSPECT, &img, NULL, NULL);

	if (r < 0)
		return r;
	r = img_get_backing(img, &b, NULL);
	*yes = r == 0 && b.name &&
	       resolve_backing(path, b.name, res, sizeof(res), &k, NULL) == 0 &&
	       k == RESOLVE_FILE && stat(res, &st) == 0 &&
	       (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
	img_close(img);
	return r < 0 ? r : 0;
}

static int ask_disk(const struct journal *j, bool *forward, char *why,
		    size_t wlen)
{
	int nbase = 0, ntop = 0;

	for (int i = 0; i < j->live.nlp; i++) {
		const struct journal_lparent *lp = &j->live.lp[i];
		bool b = false, t = false;

		if (names(lp->path, j->base_dev, j->base_ino, &b) < 0 ||
		    names(lp->path, j->top_dev, j->top_ino, &t) < 0) {
			snprintf(why, wlen, "%s: cannot read the overlay QEMU "
				 "relinks", lp->path);
			return -EBUSY;
		}
		nbase += b;
		ntop += t;
	}
	if (nbase && ntop) {
		snprintf(why, wlen, "of the overlays QEMU relinks, %d name base "
			 "and %d top: nothing was changed", nbase, ntop);
		return -EBUSY;
	}
	*forward = nbase > 0 && nbase == j->live.nlp;
	return 0;
}

/* A libvirt domain's job ("libvirt:DOMAIN:DISK"): a job still on the
 * disk is aborted (back); without one, top gone from the disk's chain
 * means the commit took effect (forward).  1 decided, 0 not. */
static int ask_libvirt(const struct journal *j, bool *forward, char *why,
		       size_t wlen)
{
	char dom[512], *disk;
	struct virt_conn *vc = NULL;
	struct virt_domain d;
	struct img_err e;
	int r, dk, layer;

	snprintf(dom, sizeof(dom), "%s", j->live.qmp + strlen("libvirt:"));
	disk = strrchr(dom, ':');
	if (!disk)
		return 0;
	*disk++ = '\0';
	err_clear(&e);
	if (!live_pid_alive((pid_t)j->live.pid) ||
	    virt_open(VIRT_URI, true, &vc, &e) < 0)
		return 0;
	r = virt_job_info(vc, dom, disk, NULL, NULL, &e);
	if (r > 0) {
		*forward = false;
		r = virt_job_abort(vc, dom, disk, false, &e);
		if (r < 0)
			snprintf(why, wlen, "%s", e.msg);
		virt_close(vc);
		return r < 0 ? -EBUSY : 1;
	}
	r = r == 0 ? virt_domain_get(vc, dom, &d, &e) : r;
	virt_close(vc);
	if (r < 0)
		return 0;
	*forward = !virt_domain_find(&d, j->top_dev, j->top_ino, &dk,
				     &layer) &&
		   virt_domain_find(&d, j->base_dev, j->base_ino, &dk, &layer);
	virt_domain_free(&d);
	return 1;
}

int recover_live_direction(const struct journal *j, bool *forward,
			   char *why, size_t wlen)
{
	int r = !strncmp(j->live.qmp, "libvirt:", 8)
		? ask_libvirt(j, forward, why, wlen)
		: ask_qemu(j, forward, why, wlen);

	if (r != 0)
		return r < 0 ? r : 0;
	if (j->live.finalized) {
		*forward = true;
		return 0;
	}
	return ask_disk(j, forward, why, wlen);
}
