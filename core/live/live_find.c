/* live_find.c - the processes behind an image's locks, classified; see
 * live.h.
 *
 * Steps: stat the image (dev:ino); F_OFD_GETLK probe (sees every lock,
 * local or from another host); local holders from fdinfo lock lines and
 * local openers from /proc/PID/fd (core/graph/lock.c, both by dev:ino);
 * each process's command line (live_proc.c); libvirt's domains (status
 * files, then the API when the daemon runs).  Lock bits that no visible
 * holder explains are a hidden local process when /proc/locks lists a
 * record for the file, else a process on another host.
 */
#include "live_int.h"
#include "virt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/graph/lock.h"

#define CMDLINE_SHOWN 4096

const char *live_kind_name(enum live_kind k)
{
	switch (k) {
	case LIVE_LIBVIRT: return "libvirt";
	case LIVE_QMP:     return "qmp";
	case LIVE_REMOTE:  return "remote";
	case LIVE_HIDDEN:  return "hidden";
	case LIVE_OTHER:   return "other";
	}
	return "?";
}

void live_split_unexplained(struct live_bits u, struct live_bits table,
			    struct live_bits *hidden, struct live_bits *remote)
{
	hidden->held = u.held & table.held;
	hidden->unshared = u.unshared & table.unshared;
	remote->held = u.held & (uint8_t)~table.held;
	remote->unshared = u.unshared & (uint8_t)~table.unshared;
}

void live_report_free(struct live_report *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->v[i].cmdline);
		free(r->v[i].qmp_path);
		free(r->v[i].domain);
		free(r->v[i].disk);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static struct live_holder *add_holder(struct live_report *r, pid_t pid)
{
	struct live_holder *nv;

	for (int i = 0; pid && i < r->n; i++)
		if (r->v[i].pid == pid)
			return &r->v[i];
	nv = realloc(r->v, sizeof(*nv) * (size_t)(r->n + 1));
	if (!nv)
		return NULL;
	r->v = nv;
	memset(&nv[r->n], 0, sizeof(nv[r->n]));
	nv[r->n].pid = pid;
	nv[r->n].layer = -1;
	nv[r->n].kind = LIVE_OTHER;
	return &nv[r->n++];
}

/* Local PIDs: lock holders first, then processes that only open it. */
static int collect_pids(struct live_report *r, struct img_err *e)
{
	struct lock_holder *h = NULL;
	struct lock_opener *o = NULL;
	int nh = 0, no = 0, rc;

	rc = lock_find_holders(r->dev, r->ino, &h, &nh, e);
	if (rc == 0)
		rc = lock_find_openers(&r->dev, &r->ino, 1, &o, &no, e);
	for (int i = 0; rc == 0 && i < nh; i++) {
		struct live_holder *x = add_holder(r, h[i].pid);

		if (!x) {
			rc = err_set(e, ENOMEM, "live holders: out of memory");
			break;
		}
		x->locks = true;
		x->held |= h[i].held;
		x->unshared |= h[i].unshared;
		memcpy(x->comm, h[i].comm, sizeof(x->comm));
	}
	for (int i = 0; rc == 0 && i < no; i++) {
		struct live_holder *x = add_holder(r, o[i].pid);

		if (!x) {
			rc = err_set(e, ENOMEM, "live holders: out of memory");
			break;
		}
		if (!x->comm[0])
			memcpy(x->comm, o[i].comm, sizeof(x->comm));
	}
	free(h);
	free(o);
	return rc;
}

/* libvirt's domains, read once and only when a holder is a qemu-system
 * process (so asking about images nobody's QEMU holds costs nothing). */
struct virt_view {
	unsigned flags;            /* of live_find */
	bool loaded;
	struct virt_domains status, api;
	bool running;              /* a libvirt daemon runs */
};

static int load_virt(struct virt_view *vv, struct img_err *e)
{
	unsigned flags = vv->flags;
	int r;

	if (vv->loaded)
		return 0;
	memset(vv, 0, sizeof(*vv));
	vv->flags = flags;
	vv->loaded = true;
	vv->running = live_libvirt_running();
	r = virt_status_read(VIRT_STATUS_DIR, &vv->status, e);
	/* Root reads the status files; anyone else may still ask the daemon.
	 * A daemon that does not answer leaves the status files to judge. */
	if (r == 0 && vv->running && !(flags & LIVE_NO_LIBVIRT_API))
		(void)virt_api_list(VIRT_URI, &vv->api, NULL);
	return r;
}

static void free_virt(struct virt_view *vv)
{
	virt_domains_free(&vv->status);
	virt_domains_free(&vv->api);
}

/* Set the domain and, when its XML holds the image, the disk and layer. */
static int mark_domain(struct live_holder *x, const struct virt_domain *d,
		       const char *name, const char *how, dev_t dev, ino_t ino)
{
	int disk, layer;

	x->kind = LIVE_LIBVIRT;
	x->domain_how = how;
	x->domain = strdup(d ? d->name : name);
	if (!x->domain)
		return -ENOMEM;
	if (d && virt_domain_find(d, dev, ino, &disk, &layer) &&
	    d->disks[disk].target) {
		x->disk = strdup(d->disks[disk].target);
		x->layer = layer;
		if (!x->disk)
			return -ENOMEM;
	}
	return 0;
}

static const struct virt_domain *by_name(const struct virt_domains *ds,
					 const char *name)
{
	for (int i = 0; name && i < ds->n; i++)
		if (!strcmp(ds->v[i].name, name))
			return &ds->v[i];
	return NULL;
}

/* Is the QEMU x (command line p) a libvirt domain?  In order: a status
 * file naming its PID; -name guest=X while libvirt runs; the image in a
 * running domain's XML, that domain being the one -name names (or the
 * only one holding the image, when the QEMU has no -name). */
static int classify_libvirt(struct live_holder *x, const struct live_proc *p,
			    const struct virt_view *vv, dev_t dev, ino_t ino)
{
	const struct virt_domain *d = NULL, *only = NULL;
	int nhold = 0, disk, layer;

	for (int i = 0; i < vv->status.n; i++)
		if (vv->status.v[i].pid == x->pid)
			return mark_domain(x, &vv->status.v[i], NULL,
					   "libvirt status file names its PID",
					   dev, ino);
	if (p->guest && vv->running) {
		d = by_name(&vv->api, p->guest);
		if (!d)
			d = by_name(&vv->status, p->guest);
		return mark_domain(x, d, p->guest, "-name guest= while libvirt "
				   "runs", dev, ino);
	}
	for (int s = 0; s < 2; s++) {
		const struct virt_domains *ds = s ? &vv->api : &vv->status;

		for (int i = 0; i < ds->n; i++) {
			if (!virt_domain_find(&ds->v[i], dev, ino, &disk, &layer))
				continue;
			if (p->guest && !strcmp(p->guest, ds->v[i].name))
				return mark_domain(x, &ds->v[i], NULL,
						   "image in the domain's XML",
						   dev, ino);
			nhold++;
			only = &ds->v[i];
		}
	}
	if (!p->guest && nhold == 1)
		return mark_domain(x, only, NULL, "image in the domain's XML",
				   dev, ino);
	return 0;
}

static int classify(struct live_holder *x, struct virt_view *vv,
		    dev_t dev, ino_t ino, struct img_err *e)
{
	struct live_proc p;
	int r = live_proc_read(x->pid, &p, e);

	if (r == -ESRCH)
		return 0;                    /* gone meanwhile */
	if (r < 0)
		return r;
	x->prog = p.prog;
	x->cmdline = live_proc_cmdline(&p, CMDLINE_SHOWN);
	if (p.prog == PROG_QEMU_SYSTEM) {
		r = load_virt(vv, e);
		if (r < 0) {
			live_proc_free(&p);
			return r;
		}
		r = classify_libvirt(x, &p, vv, dev, ino);
	}
	if (r == 0 && x->kind != LIVE_LIBVIRT && p.prog != PROG_OTHER) {
		if (p.qmp_path) {
			x->kind = LIVE_QMP;
			x->qmp_how = p.qmp_how;
			x->qmp_path = strdup(p.qmp_path);
			if (!x->qmp_path)
				r = -ENOMEM;
		} else {
			x->note = p.qmp_not_unix ?
				"QEMU whose QMP monitor is not on a unix socket" :
				"QEMU without a QMP monitor";
		}
	}
	live_proc_free(&p);
	if (r < 0)
		return err_set(e, -r, "live holders: out of memory");
	return 0;
}

static int add_bits(struct live_report *r, enum live_kind kind,
		    struct live_bits b, struct img_err *e)
{
	struct live_holder *x;

	if (!b.held && !b.unshared)
		return 0;
	x = add_holder(r, 0);
	if (!x)
		return err_set(e, ENOMEM, "live holders: out of memory");
	x->kind = kind;
	x->locks = true;
	x->held = b.held;
	x->unshared = b.unshared;
	return 0;
}

/* Bits GETLK saw that neither a visible local holder nor our own process
 * (a commit probing again while it holds its locks) accounts for.  When
 * /proc/locks cannot be read, nothing proves a lock remote: all are
 * called hidden. */
static int add_unexplained(struct live_report *r, struct img_err *e)
{
	struct live_bits seen = { 0, 0 }, own, u, table, hidden, remote;
	int rc;

	for (int i = 0; i < r->n; i++) {
		seen.held |= r->v[i].held;
		seen.unshared |= r->v[i].unshared;
	}
	live_own_locks(r->dev, r->ino, &own.held, &own.unshared);
	u.held = r->probe_held & (uint8_t)~(seen.held | own.held);
	u.unshared = r->probe_unshared & (uint8_t)~(seen.unshared |
						     own.unshared);
	if (live_locks_scan("/proc/locks", r->dev, r->ino, &table.held,
			    &table.unshared) < 0)
		table = u;
	live_split_unexplained(u, table, &hidden, &remote);
	rc = add_bits(r, LIVE_HIDDEN, hidden, e);
	if (rc == 0)
		rc = add_bits(r, LIVE_REMOTE, remote, e);
	return rc;
}

int live_find(const char *path, unsigned flags, struct live_report *r,
	      struct img_err *e)
{
	struct lock_state st;
	struct virt_view vv;
	struct stat sb;
	int rc;

	memset(r, 0, sizeof(*r));
	if (stat(path, &sb) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
	if (!S_ISREG(sb.st_mode))
		return err_set(e, EINVAL, "%s: not a regular file", path);
	r->dev = sb.st_dev;
	r->ino = sb.st_ino;
	rc = lock_probe_file(path, &st, e);
	if (rc < 0)
		return rc;
	r->probe_held = st.held;
	r->probe_unshared = st.unshared;
	memset(&vv, 0, sizeof(vv));
	vv.flags = flags;
	rc = collect_pids(r, e);
	for (int i = 0; rc == 0 && i < r->n; i++)
		rc = classify(&r->v[i], &vv, r->dev, r->ino, e);
	free_virt(&vv);
	if (rc == 0)
		rc = add_unexplained(r, e);
	if (rc < 0) {
		live_report_free(r);
		if (e)
			err_prefix(e, "%s: ", path);
	}
	return rc;
}

bool live_pid_is_qemu(pid_t pid)
{
	struct live_proc p;
	bool qemu;

	if (live_proc_read(pid, &p, NULL) < 0)
		return false;
	qemu = p.prog != PROG_OTHER;
	live_proc_free(&p);
	return qemu;
}
