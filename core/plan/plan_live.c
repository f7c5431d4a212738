/* plan_live.c - the part of a commit a running QEMU does itself.
 *
 * When a QEMU with a QMP monitor holds top (core/live classifies the
 * holders by dev:ino), the copy into base has to happen inside that
 * process: it keeps the chain open and writes through it, so nothing
 * outside may write base or rewrite the headers it has open.  The plan
 * then names the process, its node names, the job (commit of an
 * intermediate when top has overlays there, active commit with pivot when
 * top is its active image) and which parents imgraph relinks offline.
 * Whatever can be known before anything starts is a CONFLICT_LIVE: QEMU
 * older than 7.2, nodes not found, a filter or a job in the way, more
 * than one process, --offline.  The live process's locks on its own part
 * are then no lock conflict (plan_live_covers); every other holder is
 * judged as before, and so are the offline parents.
 */
#include "plan_int.h"
#include "policy.h"
#include "core/live/live.h"
#include "core/live/qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int plan_live_conflict(struct plan *p, int node, const char *who,
			 const char *msg, const char *why, const char *hint)
{
	int r = plan_add_conflict(p, CONFLICT_LIVE, node, 0, who, msg, why,
				  hint);

	return r < 0 ? r : 1;
}

void plan_live_free(struct plan *p)
{
	struct plan_live *l = &p->live;

	free(l->qmp);
	free(l->domain);
	free(l->disk);
	free(l->qemu_version);
	free(l->device);
	free(l->backend);
	free(l->top_node);
	free(l->base_node);
	for (int i = 0; l->inter_nodes && i < p->ninter; i++)
		free(l->inter_nodes[i]);
	free(l->inter_nodes);
	free(l->backing_file);
	memset(l, 0, sizeof(*l));
}

bool plan_live_covers(const struct plan *p, pid_t pid, int node)
{
	enum plan_role role;

	if (p->live.job == PLAN_LIVE_NONE || pid <= 0 || pid != p->live.pid)
		return false;
	role = plan_role_of(p, node);
	if (role == PLAN_ROLE_TOP || role == PLAN_ROLE_TOP_KEPT ||
	    role == PLAN_ROLE_INTER || role == PLAN_ROLE_BASE)
		return true;
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == node)
			return p->parents[i].live;
	return false;
}

/* The one holder of top that could run the job, or NULL; a conflict is
 * added when there are several, or when the only one is libvirt's. */
static int pick_holder(struct plan *p, const struct live_report *lr,
		       const char *tn, const struct live_holder **out)
{
	const struct live_holder *h = NULL;
	char who[96], msg[600];
	int n = 0;

	*out = NULL;
	/* A QEMU whose command line names no monitor (classed "other")
	 * counts too: --qmp or the users file's qmp: may name it. */
	for (int i = 0; i < lr->n; i++)
		if ((lr->v[i].kind == LIVE_QMP || lr->v[i].kind == LIVE_LIBVIRT
		     || (lr->v[i].kind == LIVE_OTHER &&
			 lr->v[i].prog != PROG_OTHER)) && lr->v[i].pid > 0) {
			h = &lr->v[i];
			n++;
		}
	if (!h)
		return 0;
	snprintf(who, sizeof(who), "process %d (%s)", (int)h->pid, h->comm);
	if (n > 1) {
		snprintf(msg, sizeof(msg), "%d running QEMUs have '%s' open",
			 n, tn);
		return plan_live_conflict(p, p->top, who, msg, "Only one process "
			"can commit top into base: the others read a chain "
			"that would change under them.", "Stop all but one of "
			"them, or detach the disk from the others.");
	}
	*out = h;
	return 0;
}


/* Open the monitor and check QEMU's version; a conflict when either
 * fails (a busy monitor: another client, such as libvirtd, has it). */
static int open_qmp(struct plan *p, const struct live_holder *h,
		    const char *path, struct qmp **q)
{
	char who[96], msg[IMG_ERR_MSG_MAX + 128];
	struct img_err e;
	pid_t peer;

	snprintf(who, sizeof(who), "process %d (%s)", (int)h->pid, h->comm);
	err_clear(&e);
	if (qmp_open(path, h->pid, 0, q, &e) < 0) {
		*q = NULL;
		return plan_live_conflict(p, p->top, who, e.msg, "The commit must "
			"run inside this process, through its QMP monitor.",
			"Free the monitor (close the other client) or give "
			"another one with --qmp PATH.");
	}
	/* A socket given by hand (--qmp, qmp:) may be another QEMU's: its
	 * listener says whose it is (unless a parent passed it down). */
	peer = live_qmp_other_qemu(*q, h->pid);
	if (peer > 0) {
		snprintf(msg, sizeof(msg), "the QMP monitor %s is served by "
			 "process %d, not by %s that runs top", path,
			 (int)peer, who);
		return plan_live_conflict(p, p->top, who, msg, "The commit "
			"must run inside the process that has top open.",
			"Give that process's own monitor socket.");
	}
	if (qmp_version_supported(qmp_version(*q), &e) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "%s runs %s", who, e.msg);
	return plan_live_conflict(p, p->top, who, msg, "imgraph drives block-commit "
		"with explicit finalize only on QEMU 7.2 or later.",
		"Upgrade QEMU, or stop the process and commit offline.");
}

/* Node info of graph node x in the process; 1 and a conflict (ni
 * freed) when it is not there or a filter or job is in the way. */
static int find_node(struct plan *p, struct qmp *q, const struct gnode *x,
		     const char *who, struct qmp_node_info *ni)
{
	char msg[IMG_ERR_MSG_MAX + 300];
	const char *why, *hint;
	struct img_err e;

	err_clear(&e);
	memset(ni, 0, sizeof(*ni));
	if (qmp_find_node(q, x->dev, x->ino, ni, &e) < 0) {
		snprintf(msg, sizeof(msg), "'%s': %s", x->name, e.msg);
		return plan_live_conflict(p, x->id, who, msg, "The commit runs "
			"inside this process, so every image of the chain "
			"must be one of its block nodes.", "Open the whole "
			"chain in the process, or stop it and commit offline.");
	}
	if (!ni->job && !ni->filter)
		return 0;
	if (ni->job) {
		snprintf(msg, sizeof(msg), "'%s' (node '%s'): job '%s' is "
			 "already running on it", x->name, ni->node, ni->job);
		why = "Two block jobs cannot share these nodes.";
		hint = "Wait for that job to end, or cancel it.";
	} else {
		snprintf(msg, sizeof(msg), "'%s' (node '%s'): filter %s is "
			 "in the way", x->name, ni->node, ni->filter);
		why = "block-commit follows backing links only; a filter "
		      "between the device and the chain hides it.";
		hint = "Remove the filter (blockdev-reopen) or commit offline.";
	}
	qmp_node_info_free(ni);
	return plan_live_conflict(p, x->id, who, msg, why, hint);
}

/* top, the intermediates and base, in one chain of the process. */
static int find_chain(struct graph *g, struct plan *p, struct qmp *q,
		      const char *who, struct qmp_node_info *ti)
{
	struct qmp_node_info ni;
	struct plan_live *l = &p->live;
	int depth, r;

	if ((r = find_node(p, q, &g->nodes[p->top], who, ti)) != 0)
		return r;
	depth = ti->depth;
	l->inter_nodes = calloc((size_t)p->ninter + 1, sizeof(char *));
	if (!l->inter_nodes)
		return -ENOMEM;
	for (int i = 0; i <= p->ninter; i++) {
		int id = i < p->ninter ? p->inter[i] : p->base;
		char msg[600];

		if ((r = find_node(p, q, &g->nodes[id], who, &ni)) != 0)
			return r;
		if (strcmp(ni.root, ti->root) || ni.depth <= depth) {
			snprintf(msg, sizeof(msg), "'%s' (node '%s') is not "
				 "below '%s' in the process's chain",
				 g->nodes[id].name, ni.node, ti->node);
			qmp_node_info_free(&ni);
			return plan_live_conflict(p, id, who, msg, "QEMU commits "
				"only along the chain it has open.", "Open the "
				"chain in the process as the pool has it.");
		}
		depth = ni.depth;
		if (i < p->ninter)
			l->inter_nodes[i] = ni.node;
		else
			l->base_node = ni.node;
		ni.node = NULL;
		qmp_node_info_free(&ni);
	}
	return 0;
}

/* Which parents the process has open (it relinks those itself), and the
 * backing-file it writes into them: the offline relink's name. */
static int mark_parents(struct graph *g, struct plan *p, struct qmp *q,
			const char *who, const struct qmp_node_info *ti)
{
	struct plan_live *l = &p->live;
	int nlive = 0, r;

	for (int i = 0; i < p->nparents; i++) {
		struct plan_parent *pp = &p->parents[i];
		const struct gnode *x;
		struct qmp_node_info ni;

		if (pp->node < 0 || pp->node == p->top)
			continue;
		x = &g->nodes[pp->node];
		if (qmp_find_node(q, x->dev, x->ino, &ni, NULL) < 0)
			continue;
		if (!strcmp(ni.root, ti->root) && ni.depth < ti->depth) {
			pp->live = true;
			pp->live_node = ni.node;
			ni.node = NULL;
			nlive++;
			if (!l->backing_file && pp->new_name &&
			    !(l->backing_file = strdup(pp->new_name))) {
				qmp_node_info_free(&ni);
				return -ENOMEM;
			}
			if (l->backing_file && pp->new_name &&
			    strcmp(l->backing_file, pp->new_name)) {
				char msg[900];

				snprintf(msg, sizeof(msg), "the process's "
					 "overlays of top would need different "
					 "backing names ('%s', '%s')",
					 l->backing_file, pp->new_name);
				r = plan_live_conflict(p, pp->node, who, msg,
					"QEMU writes one backing-file string "
					"into every overlay of top it has.",
					"Put its overlays of top in one "
					"directory, or use absolute names.");
				qmp_node_info_free(&ni);
				return r;
			}
		}
		qmp_node_info_free(&ni);
	}
	if (l->job == PLAN_LIVE_COMMIT && !nlive) {
		char msg[600];

		snprintf(msg, sizeof(msg), "the process's overlay of '%s' "
			 "(above node '%s', root '%s') is not in the pool",
			 g->nodes[p->top].name, ti->node, ti->root);
		return plan_live_conflict(p, p->top, who, msg, "Its header names "
			"top and must be relinked with the others.",
			"Add its directory to the PATHs.");
	}
	return 0;
}

void plan_live_drop_leaf(struct plan *p)
{
	if (p->leaf != PLAN_LEAF_KEEP)
		return;
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == p->top) {
			struct plan_parent *pp = &p->parents[i];

			plan_parent_free(pp);
			memmove(pp, pp + 1, sizeof(*pp) *
				(size_t)(p->nparents - i - 1));
			p->nparents--;
			break;
		}
	p->leaf = PLAN_LEAF_DROP;
}

static int fill_live(struct graph *g, struct plan *p, struct qmp *q,
		     const struct live_holder *h, const char *path)
{
	struct plan_live *l = &p->live;
	const struct qmp_version *v = qmp_version(q);
	struct qmp_node_info ti;
	char who[96], ver[48];
	int r;

	snprintf(who, sizeof(who), "process %d (%s)", (int)h->pid, h->comm);
	memset(&ti, 0, sizeof(ti));
	r = find_chain(g, p, q, who, &ti);
	if (r == 0) {
		l->job = ti.depth == 0 ? PLAN_LIVE_ACTIVE : PLAN_LIVE_COMMIT;
		r = mark_parents(g, p, q, who, &ti);
	}
	if (r == 0) {
		snprintf(ver, sizeof(ver), "%d.%d.%d", v->major, v->minor,
			 v->micro);
		l->via = "qmp";
		l->pid = h->pid;
		snprintf(l->comm, sizeof(l->comm), "%s", h->comm);
		l->qmp = strdup(path);
		l->qemu_version = strdup(ver);
		l->device = ti.root;
		l->backend = ti.backend;
		l->backend_kind = ti.backend_kind;
		l->top_node = ti.node;
		ti.root = ti.backend = ti.node = NULL;
		if (!l->qmp || !l->qemu_version)
			r = -ENOMEM;
		if (l->job == PLAN_LIVE_ACTIVE)
			plan_live_drop_leaf(p);
	}
	qmp_node_info_free(&ti);
	if (r != 0) {
		/* no live part: the process's locks judge it as before */
		for (int i = 0; i < p->nparents; i++) {
			p->parents[i].live = false;
			free(p->parents[i].live_node);
			p->parents[i].live_node = NULL;
		}
		plan_live_free(p);
	}
	return r < 0 ? r : 0;
}

/* The users file's qmp: for process h: that of an entry whose image h
 * has open (by dev:ino, as live_find sees it), or NULL. */
static const char *users_qmp(const struct graph *g,
			     const struct live_holder *h)
{
	for (int u = 0; u < g->nusers; u++) {
		const struct guser *gu = &g->users[u];

		if (gu->kind == PARTY_USER && gu->qmp && gu->node >= 0 &&
		    live_pid_opens(h->pid, g->nodes[gu->node].path))
			return gu->qmp;
	}
	return NULL;
}

static bool top_held(const struct graph *g, int top)
{
	for (int u = 0; u < g->nusers; u++)
		if (g->users[u].kind == PARTY_PROCESS &&
		    g->users[u].node == top)
			return true;
	return false;
}

int plan_check_live(struct graph *g, struct plan *p,
		    const struct plan_opts *o)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct live_holder *h;
	struct live_report lr = { 0 };
	struct qmp *q = NULL;
	char who[96], msg[900];
	const char *path;
	int r;

	/* Only a process the scan saw holding top's locks can run the
	 * job: without one, no need to look further (every plan pays for
	 * this). */
	if (!top_held(g, p->top))
		return 0;
	/* --pull and --protect are offline strategies: a running QEMU on
	 * the chain stays the lock conflict it was. */
	if (o && (o->pull || o->protect))
		return 0;
	if (live_find(top->path, 0, &lr, NULL) < 0)
		return 0;          /* the lock checks judge it */
	r = pick_holder(p, &lr, top->name, &h);
	if (r != 0 || !h)
		goto out;
	snprintf(who, sizeof(who), "process %d (%s)", (int)h->pid, h->comm);
	path = o && o->qmp ? o->qmp : h->qmp_path ? h->qmp_path :
		users_qmp(g, h);
	if (o && o->offline) {
		snprintf(msg, sizeof(msg), "--offline: %s runs '%s', so this "
			 "commit needs a live part", who, top->name);
		r = plan_live_conflict(p, p->top, who, msg, "Nothing outside the "
			"process may write the chain it has open.", "Drop "
			"--offline to let the process run the commit, or stop "
			"it first.");
		goto out;
	}
	if (h->kind == LIVE_LIBVIRT) {
		r = plan_live_virt(g, p, h);
		goto out;
	}
	if (!path) {
		snprintf(msg, sizeof(msg), "%s runs '%s' but imgraph found no "
			 "QMP monitor of it", who, top->name);
		r = plan_live_conflict(p, p->top, who, msg, "The commit must run "
			"inside this process, through its QMP monitor.",
			"Give its monitor socket with --qmp PATH, or as "
			"'qmp:' of the entry of its image in the users file.");
		goto out;
	}
	r = open_qmp(p, h, path, &q);
	if (r == 0)
		r = fill_live(g, p, q, h, path);
out:
	if (q)
		qmp_close(q);
	live_report_free(&lr);
	return r < 0 ? r : 0;
}
