/* plan_live_virt.c - the live part of a libvirt domain's QEMU.
 *
 * A libvirt domain is never driven through raw QMP (that taints it and
 * leaves libvirt's view stale): its part goes through libvirt's API
 * (virDomainBlockCommit; docs/live.md says why not virsh).  The domain's
 * live XML gives the disk holding top and its chain (each layer by
 * dev:ino): top, the intermediates and base must be consecutive layers of
 * one disk.  Top as layer 0 is the disk's active image: an active commit
 * with pivot; otherwise the overlay above top in the chain is the one
 * QEMU relinks, and every other parent is relinked offline.  An image
 * the domain's QEMU has open that no disk of the XML lists (top, or an
 * overlay of top: opened behind libvirt's back) is a conflict.
 */
#include "plan_int.h"
#include "core/live/live.h"
#include "core/live/virt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layer of disk dk holding node id, or -1. */
static int layer_of(const struct graph *g, const struct virt_disk *dk, int id)
{
	for (int i = 0; i < dk->nlayers; i++)
		if (dk->layers[i].has_id &&
		    dk->layers[i].dev == g->nodes[id].dev &&
		    dk->layers[i].ino == g->nodes[id].ino)
			return i;
	return -1;
}

/* "vda[N]" (libvirt's own name of a layer), or "vda[layer K]". */
static char *layer_name(const struct virt_disk *dk, int k)
{
	char b[128];

	if (dk->layers[k].index >= 0)
		snprintf(b, sizeof(b), "%s[%d]", dk->target,
			 dk->layers[k].index);
	else
		snprintf(b, sizeof(b), "%s layer %d", dk->target, k);
	return strdup(b);
}

static int chain_check(struct graph *g, struct plan *p,
		       const struct virt_disk *dk, const char *who, int *lt)
{
	char msg[900];
	int k;

	*lt = layer_of(g, dk, p->top);
	for (int i = 0; i <= p->ninter; i++) {
		int id = i < p->ninter ? p->inter[i] : p->base;

		k = layer_of(g, dk, id);
		if (*lt < 0 || k != *lt + i + 1) {
			snprintf(msg, sizeof(msg), "'%s' is not layer %d of "
				 "disk %s in the domain's XML", g->nodes[id].name,
				 *lt + i + 1, dk->target);
			return plan_live_conflict(p, id, who, msg, "libvirt "
				"commits only along the chain of one disk.",
				"Check 'virsh dumpxml': its <backingStore> "
				"chain must be the pool's.");
		}
	}
	return 0;
}

static int fill(struct graph *g, struct plan *p, const struct live_holder *h,
		const struct virt_disk *dk, int lt)
{
	struct plan_live *l = &p->live;

	l->job = lt == 0 ? PLAN_LIVE_ACTIVE : PLAN_LIVE_COMMIT;
	l->via = "libvirt";
	l->pid = h->pid;
	snprintf(l->comm, sizeof(l->comm), "%s", h->comm);
	l->domain = strdup(h->domain);
	l->disk = strdup(dk->target);
	l->device = strdup(dk->target);
	l->backend_kind = "device";
	l->top_node = layer_name(dk, lt);
	l->base_node = layer_name(dk, lt + p->ninter + 1);
	l->inter_nodes = calloc((size_t)p->ninter + 1, sizeof(char *));
	if (!l->domain || !l->disk || !l->device || !l->top_node ||
	    !l->base_node || !l->inter_nodes)
		return -ENOMEM;
	for (int i = 0; i < p->ninter; i++)
		if (!(l->inter_nodes[i] = layer_name(dk, lt + i + 1)))
			return -ENOMEM;
	for (int i = 0; lt > 0 && i < p->nparents; i++) {
		struct plan_parent *pp = &p->parents[i];

		if (pp->node < 0 || pp->node == p->top ||
		    layer_of(g, dk, pp->node) != lt - 1)
			continue;
		pp->live = true;
		if (!(pp->live_node = layer_name(dk, lt - 1)) ||
		    (pp->new_name && !l->backing_file &&
		     !(l->backing_file = strdup(pp->new_name))))
			return -ENOMEM;
	}
	return 0;
}

/* An image the domain's QEMU has open that no disk of the domain's XML
 * lists: it was opened behind libvirt's back
 * (a hot-plug through the monitor).  libvirt cannot commit it, and raw
 * QMP is never used on a domain, so it is a conflict, said as such. */
static int unlisted(struct plan *p, int id, const char *img, const char *dom,
		    const char *what, const char *who)
{
	char msg[900];

	snprintf(msg, sizeof(msg), "libvirt domain '%s' has '%s'%s open, but "
		 "the domain's XML does not list it", dom, img, what);
	return plan_live_conflict(p, id, who, msg, "libvirt commits only the "
		"chain of a disk in the domain's XML; imgraph never drives a "
		"domain's QEMU through raw QMP (that taints it and leaves "
		"libvirt's view stale).", "It was opened behind libvirt's "
		"back (e.g. blockdev-add through 'virsh qemu-monitor-command'): "
		"remove it there (blockdev-del) or restart the domain, then "
		"plan again.");
}

/* Overlays of top the domain's QEMU has open must be in its XML too: one
 * outside it reads top through a chain libvirt does not know, so
 * libvirt's commit would not relink it, and imgraph cannot rewrite a
 * header the QEMU has open.  Matched by dev:ino, locked or not. */
static int parents_listed(struct graph *g, struct plan *p,
			  const struct live_holder *h,
			  const struct virt_domain *d, const char *who)
{
	int disk, layer;

	for (int i = 0; i < p->nparents; i++) {
		int id = p->parents[i].node;

		if (id < 0 || id == p->top ||
		    virt_domain_find(d, g->nodes[id].dev, g->nodes[id].ino,
				     &disk, &layer) ||
		    !live_pid_opens(h->pid, g->nodes[id].path))
			continue;
		return unlisted(p, id, g->nodes[id].name, h->domain,
				" (an overlay of top)", who);
	}
	return 0;
}

static int with_domain(struct graph *g, struct plan *p,
		       const struct live_holder *h, struct virt_conn *vc,
		       const struct virt_domain *d, const char *who)
{
	char msg[IMG_ERR_MSG_MAX + 300];
	const struct virt_disk *dk = NULL;
	uint64_t cur, end;
	struct img_err e;
	int lt, r;

	for (int i = 0; i < d->ndisks && !dk; i++)
		if (d->disks[i].target && !strcmp(d->disks[i].target, h->disk))
			dk = &d->disks[i];
	if (!dk)
		return 1;
	if ((r = chain_check(g, p, dk, who, &lt)) != 0 ||
	    (r = parents_listed(g, p, h, d, who)) != 0)
		return r;
	err_clear(&e);
	r = virt_job_info(vc, h->domain, dk->target, &cur, &end, &e);
	if (r != 0) {
		snprintf(msg, sizeof(msg), "domain '%s' disk %s: %s",
			 h->domain, dk->target, r > 0 ? "a block job is "
			 "already running on it" : e.msg);
		return plan_live_conflict(p, p->top, who, msg, "Two block jobs "
			"cannot share a disk.", "Wait for it ('virsh blockjob "
			"DOMAIN DISK --info') or abort it.");
	}
	if ((r = fill(g, p, h, dk, lt)) < 0)
		return r;
	if (p->live.job == PLAN_LIVE_ACTIVE)
		plan_live_drop_leaf(p);
	return 0;
}

int plan_live_virt(struct graph *g, struct plan *p,
		   const struct live_holder *h)
{
	struct virt_domain d;
	struct virt_conn *vc = NULL;
	struct img_err e;
	char who[300], msg[IMG_ERR_MSG_MAX + 300];
	int r = 1;

	snprintf(who, sizeof(who), "libvirt domain '%s' (PID %d)",
		 h->domain ? h->domain : "?", (int)h->pid);
	memset(&d, 0, sizeof(d));
	err_clear(&e);
	if (h->domain && h->disk &&
	    virt_open(VIRT_URI, false, &vc, &e) == 0 &&
	    virt_domain_get(vc, h->domain, &d, &e) == 0)
		r = with_domain(g, p, h, vc, &d, who);
	virt_domain_free(&d);
	virt_close(vc);
	if (r == 1 && p->live.job == PLAN_LIVE_NONE &&
	    (!p->nconflicts ||
	     p->conflicts[p->nconflicts - 1].kind != CONFLICT_LIVE)) {
		if (!e.msg[0])
			return unlisted(p, p->top, g->nodes[p->top].name,
					h->domain ? h->domain : "?", "", who);
		snprintf(msg, sizeof(msg), "libvirt domain '%s' runs '%s', but "
			 "%s", h->domain ? h->domain : "?",
			 g->nodes[p->top].name, e.msg);
		return plan_live_conflict(p, p->top, who, msg, "libvirt drives "
			"the commit of a domain's disk, and needs the disk in "
			"the domain's XML.", "Check 'virsh domblklist' and "
			"'virsh dumpxml'.");
	}
	if (r != 0 && r != 1)
		return r;
	if (r != 0)
		plan_live_free(p);
	return 0;
}
