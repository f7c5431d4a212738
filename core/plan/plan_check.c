/* plan_check.c - the conflicts of a plan: image states, QEMU permission
 * conflicts with the commit job's edges, live locks and relink feasibility
 * (bytes to copy and free space: plan_space.c).  Nothing here writes:
 * images are opened IMG_O_INSPECT (read-only) to test-fit headers.
 */
#include "plan_int.h"
#include "formats/img.h"
#include "core/graph/lock.h"
#include "core/graph/perm.h"
#include "core/graph/perm_edges.h"
#include "core/graph/resolve.h"
#include "policy.h"
#include "plan_protect.h"
#include "core/commit/journal.h"
#include "core/commit/lock_hold.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOB_DESC "commit job 'commit'"

/* Why we must not write (write=true) or read node n, or NULL. */
static const char *state_refusal(const struct gnode *n, bool write, char *buf,
				 size_t len)
{
	const struct img_info *i = &n->info;

	if (i->corrupt)
		snprintf(buf, len, "'%s' is marked corrupt (incompatible "
			 "feature bit 1)", n->name);
	else if (i->encrypted)
		snprintf(buf, len, "'%s' is encrypted", n->name);
	else if (!write)
		return NULL;
	else if (i->data_file)
		snprintf(buf, len, "'%s' keeps its data in an external data "
			 "file '%s', which imgraph reads but never writes",
			 n->name, i->data_file_name ? i->data_file_name : "?");
	else if (i->dirty)
		snprintf(buf, len, "'%s' has the dirty bit set (it was not "
			 "closed cleanly)", n->name);
	else if (i->nb_snapshots)
		snprintf(buf, len, "'%s' has %u internal snapshot(s)", n->name,
			 i->nb_snapshots);
	else if (i->write_refusal)
		snprintf(buf, len, "%s", i->write_refusal);
	else
		return NULL;
	return buf;
}

static int check_node_state(struct graph *g, struct plan *p, int id,
			    bool write, const char *role)
{
	const struct gnode *n = &g->nodes[id];
	char why[1200], msg[1400];

	if (n->flags & (GN_ERROR | GN_EXTERNAL)) {
		char hint[1200] = "Fix the image or its backing reference first.";

		snprintf(msg, sizeof(msg), "%s '%s' cannot be used: %s", role,
			 n->name, n->error ? n->error :
			 "it is an external (protocol or json:) name");
		/* A missing file: say who looks for it, and where. */
		for (int i = 0; (n->flags & GN_MISSING) && i < g->n; i++)
			if (g->nodes[i].backing == id) {
				snprintf(hint, sizeof(hint), "Put the file back "
					 "where '%s' looks for it ('%s'), or, if "
					 "it moved, record its new place in '%s' "
					 "with qemu-img rebase -u.",
					 g->nodes[i].name,
					 g->nodes[i].backing_name ?
					 g->nodes[i].backing_name : n->name,
					 g->nodes[i].name);
				break;
			}
		return plan_add_conflict(p, CONFLICT_IMAGE_STATE, id, 0,
			n->name, msg, "imgraph only commits images it can read "
			"completely and check.", hint);
	}
	if (state_refusal(n, write, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "%s '%s' cannot be %s: %s", role,
			 n->name, write ? "written" : "read safely", why);
		return plan_add_conflict(p, CONFLICT_IMAGE_STATE, id, 0,
			n->name, msg, write ? "Writing an image in this state "
			"could destroy data or produce an image QEMU rejects." :
			"Its data cannot be trusted or decoded by imgraph.",
			n->info.dirty ? "Repair it first: qemu-img check -r all "
			"IMAGE." : "Convert or repair the image with qemu-img "
			"first, or choose another chain.");
	}
	return 0;
}

/* The hint for a link whose format is neither recorded nor stated: state
 * it (QEMU's -f), else record it, else convert the overlay. */
static void link_format_hint(const struct graph *g, const struct plan *p,
			     const struct gnode *c, char *hint, size_t len)
{
	const struct gnode *b = &g->nodes[c->backing];
	const char *bf = b->format ? b->format : "FORMAT";
	char q1[PATH_MAX + 64], q2[PATH_MAX + 64], q3[PATH_MAX + 64],
	     st[PATH_MAX + 128];
	size_t n;

	if (b->id == p->base)
		snprintf(st, sizeof(st), "--base-format %s", bf);
	else
		snprintf(st, sizeof(st), "--format %s=%s",
			 plan_sh_quote(b->path, q3, sizeof(q3)), bf);
	n = (size_t)snprintf(hint, len, "If '%s' really is %s, say so: %s. "
			     "Or ", b->name, bf, st);
	if (n >= len)
		return;
	/* Only qcow2 records any format; qed records raw alone; qcow v1
	 * and vmdk none. */
	if (c->format && !strcmp(c->format, "qcow2"))
		snprintf(hint + n, len - n, "record it: qemu-img rebase -u -F "
			 "%s -b %s %s", bf,
			 plan_sh_quote(c->backing_name, q1, sizeof(q1)),
			 plan_sh_quote(c->name, q2, sizeof(q2)));
	else
		snprintf(hint + n, len - n, "convert the overlay to qcow2, "
			 "which records it (%s): qemu-img convert -O qcow2 -B "
			 "%s -F %s %s NEW.qcow2", c->format && !strcmp(c->format,
			 "qed") ? "a qed image records no backing format but "
			 "raw" : "this format cannot record a backing format",
			 plan_sh_quote(c->backing_name, q1, sizeof(q1)), bf,
			 plan_sh_quote(c->name, q2, sizeof(q2)));
}

/* Every link on the path must have a format known for writing
 * (graph_link_fmt): a probed one can be forged by whoever writes the
 * image's data.  A statement the probe contradicts is check_stated's. */
static int check_link_format(struct graph *g, struct plan *p, int id)
{
	const struct gnode *c = &g->nodes[id];
	const struct gnode *b;
	char msg[1200], hint[4 * PATH_MAX];

	if (c->backing < 0 || graph_link_fmt(g, id))
		return 0;
	b = &g->nodes[c->backing];
	if (graph_stated(g, b->id) && !graph_stated_probe(g, b->id) &&
	    b->format)
		return 0;

	snprintf(msg, sizeof(msg), "'%s' does not record the format of its "
		 "backing file '%s' (probed as %s)", c->name, b->name,
		 b->format ? b->format : "?");
	link_format_hint(g, p, c, hint, sizeof(hint));
	return plan_add_conflict(p, CONFLICT_FORMAT, c->backing, 0, c->name,
		msg, "A probed format can be forged by whoever writes the "
		"image's data (CVE-2008-2004); imgraph never reads or writes "
		"through a guessed format.", hint);
}

/* Node of statement s, or -1 when the file is not in the pool. */
static int stated_node(const struct graph *g, const struct fmt_stated *s)
{
	for (int i = 0; i < g->n && s->dev; i++)
		if (g->nodes[i].dev == s->dev && g->nodes[i].ino == s->ino)
			return i;
	return -1;
}

/* A stated format (--format, --base-format) must match what the bytes
 * probe as, and every overlay that records the image's format: it fills
 * a missing record, never overrides one. */
static int check_one_stated(struct graph *g, struct plan *p,
			    const struct fmt_stated *s)
{
	int id = stated_node(g, s);
	char msg[3 * PATH_MAX];
	const struct gnode *n;

	if (id < 0) {
		snprintf(msg, sizeof(msg), "--format %s=%s: the file is not an "
			 "image of the pool", s->path, s->fmt);
		return plan_add_conflict(p, CONFLICT_FORMAT, -1, 0, s->path,
			msg, "A statement is checked against the image's bytes "
			"and its overlays' records, which the scan did not "
			"see.", "Name an image of the pool, or add its "
			"directory to the PATHs.");
	}
	n = &g->nodes[id];
	if (graph_stated(g, id) != s->fmt)
		return 0;          /* a later statement for the file wins */
	for (int k = 0; k < n->nchildren; k++) {
		const struct gnode *c = &g->nodes[n->children[k]];

		if (!c->backing_fmt || !strcmp(c->backing_fmt, s->fmt))
			continue;
		snprintf(msg, sizeof(msg), "'%s' records the format of '%s' as "
			 "%s, but it is stated as %s", c->name, n->name,
			 c->backing_fmt, s->fmt);
		return plan_add_conflict(p, CONFLICT_FORMAT, id, 0, c->name,
			msg, "A stated format only fills a link that records "
			"none; it never overrides a recorded one.", "Drop the "
			"statement; if the record is wrong, correct it with "
			"qemu-img rebase -u -F FORMAT.");
	}
	if (n->format && strcmp(n->format, s->fmt)) {
		snprintf(msg, sizeof(msg), "'%s' is stated as %s, but its bytes "
			 "probe as %s", n->name, s->fmt, n->format);
		return plan_add_conflict(p, CONFLICT_FORMAT, id, 0, n->name,
			msg, "Read or written through the wrong format, the "
			"image's data would be misread or destroyed.",
			"State the format the image really has (qemu-img info "
			"shows it), or convert it first.");
	}
	return 0;
}

static int check_stated(struct graph *g, struct plan *p)
{
	int r;

	for (int i = 0; i < g->nstated; i++)
		if ((r = check_one_stated(g, p, &g->stated[i])) < 0)
			return r;
	return 0;
}

/* The state check of chain node id, written or read as its role says. */
int plan_check_role_state(struct graph *g, struct plan *p, int id)
{
	struct role_policy rp;

	plan_policy(g, p, id, &rp);
	return check_node_state(g, p, id, rp.write, rp.name);
}

/* What base reads below itself must be a chain QEMU can open: a loop, a
 * missing or unreadable file, or a probed layer whose backing file the
 * scan did not follow leaves base's view (and every view through it)
 * unknown, before the commit and after it. */
static int check_below_base(struct graph *g, struct plan *p)
{
	const struct gnode *b = &g->nodes[p->base];
	char msg[1600], hint[PATH_MAX + 400], q[PATH_MAX + 64];
	int steps = 0;

	for (int n = b->backing; n >= 0 && steps <= g->n;
	     n = g->nodes[n].backing, steps++) {
		const struct gnode *x = &g->nodes[n];

		if (x->flags & (GN_ERROR | GN_EXTERNAL)) {
			snprintf(msg, sizeof(msg), "base '%s' reads '%s' below "
				 "it, which cannot be used: %s", b->name,
				 x->name, x->error ? x->error : "it is an "
				 "external (protocol or json:) name");
			snprintf(hint, sizeof(hint), "Fix the chain below base "
				 "first.");
		} else if ((x->flags & GN_UNSAFE_PROBE) && x->backing_name) {
			snprintf(msg, sizeof(msg), "base '%s' reads '%s' below "
				 "it, whose format was probed (%s) through a "
				 "reference that records none: its backing file "
				 "'%s' is not followed, so what base shows there "
				 "is unknown", b->name, x->name, x->format,
				 x->backing_name);
			snprintf(hint, sizeof(hint), "If it really is %s, say "
				 "so: --format %s=%s", x->format,
				 plan_sh_quote(x->path, q, sizeof(q)), x->format);
		} else {
			continue;
		}
		return plan_add_conflict(p, CONFLICT_IMAGE_STATE, p->base, 0,
			x->name, msg, "Base's view includes what it reads below "
			"itself; imgraph only commits into a chain it can read "
			"completely, as QEMU must to open it.", hint);
	}
	return 0;
}

int plan_check_states(struct graph *g, struct plan *p)
{
	int r;

	if ((r = plan_check_role_state(g, p, p->top)) < 0)
		return r;
	for (int i = 0; i < p->ninter; i++)
		if ((r = plan_check_role_state(g, p, p->inter[i])) < 0)
			return r;
	if ((r = plan_check_role_state(g, p, p->base)) < 0)
		return r;
	if ((r = check_below_base(g, p)) < 0)
		return r;
	/* Formats on the path: top's link and every intermediate's. */
	if ((r = check_link_format(g, p, p->top)) < 0)
		return r;
	for (int i = 0; i < p->ninter; i++)
		if ((r = check_link_format(g, p, p->inter[i])) < 0)
			return r;
	return check_stated(g, p);
}

/* Whether chain node id has a reader outside the chain that sees its
 * contents (check_node_perms' rule). */
static bool read_outside(const struct graph *g, const struct plan *p, int id)
{
	const struct gnode *n = &g->nodes[id];

	for (int c = 0; c < n->nchildren; c++) {
		enum plan_role xr = plan_role_of(p, n->children[c]);

		if (xr != PLAN_ROLE_TOP && xr != PLAN_ROLE_TOP_KEPT &&
		    xr != PLAN_ROLE_INTER &&
		    !plan_reads_nothing(g, n->children[c]))
			return true;
	}
	return false;
}

/* The fix for overlay ov reading chain node `node`: the lowest image
 * between top and that node that only this chain reads, as the base to
 * pick instead, when there is one; and the command that moves ov off
 * with what it shows kept (a full rebase copies what it reads into it). */
/* --protect lifts a conflict with base's other readers: say so first,
 * then how to avoid it without copying. */
static void add_protect_hint(const struct plan *p, char *hint, size_t len)
{
	char ph[600], other[3 * PATH_MAX];

	if (!plan_protect_hint(p, ph, sizeof(ph)))
		return;
	size_t n = strlen(ph) + strlen(" Otherwise: ");

	if (n >= len)
		return;
	snprintf(other, sizeof(other), "%s", hint);
	memcpy(hint, ph, strlen(ph));
	memcpy(hint + strlen(ph), " Otherwise: ", strlen(" Otherwise: "));
	snprintf(hint + n, len - n, "%.*s", (int)(len - n - 1), other);
}

static void overlay_hint(const struct graph *g, const struct plan *p,
			 int node, const struct gnode *ov, char *hint,
			 size_t len)
{
	const struct gnode *n = &g->nodes[node];
	char q[PATH_MAX + 64];
	int pick = -1;

	for (int i = 0; i < p->ninter && p->inter[i] != node; i++) {
		if (read_outside(g, p, p->inter[i]))
			break;
		pick = p->inter[i];
	}
	plan_sh_quote(ov->name, q, sizeof(q));
	if (pick >= 0)
		snprintf(hint, len, "Commit into '%s' instead (only this chain "
			 "reads it), or first move '%s' off '%s', keeping what "
			 "it shows: qemu-img rebase -f %s -b '' %s",
			 g->nodes[pick].name, ov->name, n->name,
			 ov->format ? ov->format : "qcow2", q);
	else
		snprintf(hint, len, "No image between '%s' and '%s' is read "
			 "by this chain alone, so no other base avoids it; "
			 "first move '%s' off '%s', keeping what it shows: "
			 "qemu-img rebase -f %s -b '' %s", g->nodes[p->top].name,
			 n->name, ov->name, n->name,
			 ov->format ? ov->format : "qcow2", q);
}

/* An overlay outside the chain that reads chain node `node`, against the
 * commit job's edge there: QEMU's rule between two parents of a node. */
static int overlay_pair(struct graph *g, struct plan *p, int node,
			const struct role_policy *rp, const struct gnode *ov)
{
	const struct gnode *n = &g->nodes[node];
	const char *bn = g->nodes[p->base].name;
	char msg[1400], why[1600], hint[2 * PATH_MAX], parties[700],
	     desc[600];
	struct perm_edge job = { .desc = JOB_DESC, .role = rp->edge,
				 .perm = rp->job_perm,
				 .shared = rp->job_shared };
	struct perm_edge o = { .desc = desc, .role = "backing",
			       .perm = PERM_BACKING_PERM,
			       .shared = PERM_BACKING_SHARED };
	uint8_t bits;

	snprintf(desc, sizeof(desc), "node '%s'", ov->name);
	snprintf(parties, sizeof(parties), "%s, %s", JOB_DESC, desc);
	if (perm_edges_conflict(&o, &job, &bits)) {
		/* required by the job, unshared by the overlay */
		perm_conflict_message(&o, &job, bits, n->name, msg, sizeof(msg));
		snprintf(why, sizeof(why), "'%s' reads '%s' as its backing "
			 "file; %s, so the contents of '%s' would change.",
			 ov->name, n->name, rp->does, ov->name);
	} else if (perm_edges_conflict(&job, &o, &bits)) {
		perm_conflict_message(&job, &o, bits, n->name, msg, sizeof(msg));
		snprintf(why, sizeof(why), "'%s' reads through '%s' into '%s'; "
			 "once top's data is in '%s', the contents of '%s' "
			 "change.", ov->name, n->name, bn, bn, ov->name);
	} else {
		return 0;
	}
	overlay_hint(g, p, node, ov, hint, sizeof(hint));
	add_protect_hint(p, hint, sizeof(hint));
	return plan_add_conflict(p, CONFLICT_PERMISSION, node, bits, parties,
				 msg, why, hint);
}

/* The job's edge on chain node id against its overlays outside the
 * chain (images of the pool nobody has open: their edges are QEMU's
 * offline backing links). */
static int check_node_perms(struct graph *g, struct plan *p, int id)
{
	const struct gnode *n = &g->nodes[id];
	struct role_policy rp;
	int r;

	plan_policy(g, p, id, &rp);
	for (int c = 0; c < n->nchildren; c++) {
		const struct gnode *x = &g->nodes[n->children[c]];

		enum plan_role xr = plan_role_of(p, x->id);

		if (xr == PLAN_ROLE_TOP || xr == PLAN_ROLE_TOP_KEPT ||
		    xr == PLAN_ROLE_INTER || xr == PLAN_ROLE_PROTECTED ||
		    plan_reads_nothing(g, x->id))
			continue;    /* chain-internal link, a leftover, or
					protected first (--protect) */
		if ((r = overlay_pair(g, p, id, &rp, x)) < 0)
			return r;
	}
	return 0;
}

int plan_check_permissions(struct graph *g, struct plan *p)
{
	int r;

	/* Base and the intermediates.  Not top: its parents move above the
	 * commit filter. */
	if ((r = check_node_perms(g, p, p->base)) < 0)
		return r;
	for (int i = 0; i < p->ninter; i++)
		if ((r = check_node_perms(g, p, p->inter[i])) < 0)
			return r;
	return 0;
}

/* A process that has node x open without QEMU's locks shares nothing we
 * can see: a conflict on every file the commit opens. */
static int opener_conflict(struct graph *g, struct plan *p,
			   const struct gnode *x, const struct lock_opener *op)
{
	char who[96], msg[600], why[600];
	struct role_policy rp;

	plan_policy(g, p, x->id, &rp);
	snprintf(who, sizeof(who), "process %d (%s)", (int)op->pid,
		 op->comm[0] ? op->comm : "?");
	snprintf(msg, sizeof(msg), "%s has '%s' open without QEMU's locks",
		 who, x->name);
	snprintf(why, sizeof(why), "The file is in use by a program the lock "
		 "protocol does not cover (e.g. QEMU with locking=off), and "
		 "%s: what that program sees could be corrupted.", rp.does);
	return plan_add_conflict(p, CONFLICT_LOCK, x->id, 0, who, msg, why,
		"Stop that process or close the image in it first.");
}

static int check_openers(struct graph *g, struct plan *p, struct img_err *e)
{
	struct lock_opener *op = NULL;
	int *ids = NULL, no = 0;
	int r = plan_openers(g, p, &ids, &op, &no, e);

	for (int k = 0; k < no && r == 0; k++)
		if (!plan_live_covers(p, op[k].pid, ids[op[k].idx]))
			r = opener_conflict(g, p, &g->nodes[ids[op[k].idx]], &op[k]);
	free(op);
	free(ids);
	return r;
}

/* Who holder us is, for a message: its locks, or what its entry in the
 * users file declares. */
static void holder_desc(const struct graph *g, const struct guser *us,
			char *buf, size_t len)
{
	char a[80], b[80];

	if (us->kind == PARTY_PROCESS) {
		lock_describe(us, buf, len);
		return;
	}
	snprintf(buf, len, "user '%s' (%s, %s line %d) declares perm '%s', "
		 "shared '%s'", us->name, us->user_kind ? us->user_kind : "?",
		 g->users_file ? g->users_file : "users file", us->line,
		 perm_names(us->perm, a, sizeof(a)),
		 perm_names(us->shared, b, sizeof(b)));
}

/* A holder on a file the commit opens, a live process or an entry of the
 * users file, conflicts when it does not share what the role takes or holds
 * what the role does not share; the message is QEMU's (file-posix) for the
 * first such bit, in the order QEMU tests them. */
static int holder_conflict(struct graph *g, struct plan *p,
			   const struct guser *us)
{
	char msg[1400], why[800], hint[600], bit[80], desc[600], who[300];
	bool live = us->kind == PARTY_PROCESS;
	struct role_policy rp;
	uint8_t need, refuse;
	const struct gnode *n;

	if ((us->kind != PARTY_PROCESS && us->kind != PARTY_USER) ||
	    us->node < 0)
		return 0;
	if (live && plan_live_covers(p, us->pid, us->node))
		return 0;          /* the process runs this part itself */
	/* An entry that gave the live part its monitor (qmp:) declares
	 * that same process: its part is covered as the process's is. */
	if (!live && us->qmp && p->live.qmp && !strcmp(us->qmp, p->live.qmp) &&
	    plan_live_covers(p, p->live.pid, us->node))
		return 0;
	plan_policy(g, p, us->node, &rp);
	/* An entry of top is a parent of top, repointed in the file: the
	 * table's row for it holds nothing.  (A pull writes top itself.) */
	if (!live && us->node == p->top && !p->pull)
		policy_of(PLAN_ROLE_USER_OF_TOP, NULL, false, &rp);
	if (!policy_conflicts(&rp, us->perm, us->shared, &need, &refuse))
		return 0;
	n = &g->nodes[us->node];
	holder_desc(g, us, desc, sizeof(desc));
	snprintf(who, sizeof(who), live ? "%s" : "user '%s'", us->name);
	snprintf(msg, sizeof(msg), "Failed to get %s\"%s\" lock on '%s': %s",
		 need ? "" : "shared ", perm_names(need ? need & -need :
		 refuse & -refuse, bit, sizeof(bit)), n->name, desc);
	snprintf(why, sizeof(why), "%s '%s' %s; %s.", live ? "A running "
		 "process has" : "The users file declares a user of", n->name,
		 live ? "open with QEMU's locks" : "with these permissions",
		 rp.does);
	if (live)
		snprintf(hint, sizeof(hint), "Stop %s or detach the disk first "
			 "(for a running VM use a QEMU block-commit job); "
			 "imgraph never overrides a live lock.", us->name);
	else
		snprintf(hint, sizeof(hint), "Stop user '%s' or detach '%s' from "
			 "it; if it no longer uses the image, remove it from %s.",
			 us->name, n->name, g->users_file ? g->users_file :
			 "the users file");
	return plan_add_conflict(p, live ? CONFLICT_LOCK : CONFLICT_PERMISSION,
				 us->node, (uint8_t)(need | refuse),
				 who, msg, why, hint);
}

int plan_check_locks(struct graph *g, struct plan *p, struct img_err *e)
{
	int r = check_openers(g, p, e);

	for (int u = 0; r == 0 && u < g->nusers; u++)
		r = holder_conflict(g, p, &g->users[u]);
	return r;
}

/* A relink check that refuses ends the checks of that parent: 1, or
 * -errno when the conflict could not be added. */
static int relink_refused(struct plan *p, struct plan_parent *pp, int node,
			  const char *who, const char *msg, const char *why,
			  const char *hint)
{
	int r;

	pp->feasible = false;
	r = plan_add_conflict(p, CONFLICT_RELINK, node, 0, who, msg, why, hint);
	return r < 0 ? r : 1;
}

/* The new backing name: computed, short enough, with a known format, and
 * leading to base from the overlay's directory. */
static int relink_name_check(struct graph *g, struct plan *p,
			     struct plan_parent *pp)
{
	const struct gnode *x = &g->nodes[pp->node];
	const struct gnode *base = &g->nodes[p->base];
	char msg[1400], res[PATH_MAX];
	enum resolve_kind k;
	struct stat st;

	if (!pp->new_name)
		return relink_refused(p, pp, x->id, x->name, "cannot compute a "
			"backing name for base from this overlay's directory",
			"The path to base could not be resolved.",
			"Check that base's directory exists and is readable.");
	if (strlen(pp->new_name) > IMG_BACKING_NAME_MAX) {
		char why[80];

		snprintf(msg, sizeof(msg), "'%s': new backing name is %zu bytes, "
			 "more than %d", x->name, strlen(pp->new_name),
			 IMG_BACKING_NAME_MAX);
		snprintf(why, sizeof(why), "qcow2 stores at most %d bytes of "
			 "backing name.", IMG_BACKING_NAME_MAX);
		return relink_refused(p, pp, x->id, x->name, msg, why,
			"Move base closer to the overlay or use shorter paths.");
	}
	if (!pp->new_fmt)
		return relink_refused(p, pp, x->id, x->name, "the format of "
			"base is unknown, so it cannot be recorded",
			"Every relinked overlay records its backing format.",
			"Make base readable as an image first.");
	if (resolve_backing(x->path, pp->new_name, res, sizeof(res), &k,
			    NULL) < 0 || k != RESOLVE_FILE ||
	    stat(res, &st) < 0 || st.st_dev != base->dev ||
	    st.st_ino != base->ino) {
		snprintf(msg, sizeof(msg), "'%s': the computed name '%s' does not "
			 "lead to base", x->name, pp->new_name);
		return relink_refused(p, pp, x->id, x->name, msg,
			"A symlinked directory or a rename made the path "
			"ambiguous.", "Relink it by hand with qemu-img rebase "
			"-u.");
	}
	return 0;
}

/* The overlay file must be writable and its data trustworthy. */
static int relink_file_check(struct graph *g, struct plan *p,
			     struct plan_parent *pp)
{
	const struct gnode *x = &g->nodes[pp->node];
	char msg[1400], why[1200];

	if (x->flags & GN_RDONLY_FILE) {
		snprintf(msg, sizeof(msg), "'%s' cannot be opened for writing: "
			 "%s", x->name, access(x->path, W_OK) < 0 ?
			 strerror(errno) : "read-only");
		return relink_refused(p, pp, x->id, x->name, msg,
			"Its header must be rewritten to name base.",
			"Make the file writable (remount read-write, chattr -i, "
			"or fix its permissions).");
	}
	/* Only the header changes, and every extension survives it (as with
	 * qemu-img rebase -u): the overlay's guest view, snapshots, bitmaps,
	 * dirty bit and compression type stay valid.  What makes its data
	 * untrustworthy still refuses. */
	if (state_refusal(x, false, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "'%s' cannot be relinked: %s",
			 x->name, why);
		return relink_refused(p, pp, x->id, x->name, msg,
			"Its header would have to be rewritten.",
			"Repair or convert the image first.");
	}
	return 0;
}

/* Test-fit the new header with the driver, without writing. */
static int relink_header_check(struct graph *g, struct plan *p,
			       struct plan_parent *pp)
{
	const struct gnode *x = &g->nodes[pp->node];
	struct img_err e = { 0 };
	struct img *img = NULL;
	uint8_t *buf = NULL;
	char msg[1400];
	size_t len = 0;
	int r;

	r = img_open(x->path, x->format, IMG_O_INSPECT, &img, NULL, &e);
	if (r == 0 && !img_can_set_backing(img)) {
		char why[300];

		snprintf(msg, sizeof(msg), "'%s': format %s cannot rewrite its "
			 "backing link", x->name, img_format_name(img));
		snprintf(why, sizeof(why), "Only qcow2 and qed headers can name "
			 "another backing file: qemu-img rebase -u cannot change "
			 "a %s image's backing file either.",
			 img_format_name(img));
		img_close(img);
		return relink_refused(p, pp, x->id, x->name, msg, why,
				      "Convert the overlay to qcow2 (qemu-img "
				      "convert -O qcow2 -B TOP -F FORMAT), or "
				      "move it off top first.");
	}
	if (r == 0)
		r = img_backing_header(img, pp->new_name, pp->new_fmt, &buf,
				       &len, &e);
	free(buf);
	img_close(img);
	if (r == -ENOSPC) {
		snprintf(msg, sizeof(msg), "'%s': no room in the header cluster "
			 "for backing name '%s' and format '%s'", x->name,
			 pp->new_name, pp->new_fmt);
		return relink_refused(p, pp, x->id, x->name, msg,
			"QEMU requires the backing name to lie in the first "
			"cluster.", "Use a shorter (relative) path to base.");
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "'%s': cannot prepare the new header: "
			 "%s", x->name, e.msg);
		return relink_refused(p, pp, x->id, x->name, msg, "", "");
	}
	return 0;
}

static int check_overlay_relink(struct graph *g, struct plan *p,
				struct plan_parent *pp)
{
	int r = relink_name_check(g, p, pp);

	if (r == 0)
		r = relink_file_check(g, p, pp);
	if (r == 0)
		r = relink_header_check(g, p, pp);
	return r < 0 ? r : 0;
}

/* A users-file entry of top is repointed by rewriting the users file. */
static int check_user_relink(struct graph *g, struct plan *p,
			     struct plan_parent *pp)
{
	const struct guser *u = &g->users[pp->user];
	char dir[PATH_MAX], msg[1400];
	char *slash;
	int r = 0;

	snprintf(dir, sizeof(dir), "%s", g->users_file ? g->users_file : ".");
	slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (!pp->new_name) {
		snprintf(msg, sizeof(msg), "user '%s': cannot compute the new "
			 "image string", u->name);
		r = relink_refused(p, pp, -1, u->name, msg, "", "");
	} else if (access(dir, W_OK) < 0 || access(g->users_file, W_OK) < 0) {
		snprintf(msg, sizeof(msg), "users file '%s' cannot be rewritten: "
			 "%s", g->users_file, strerror(errno));
		r = relink_refused(p, pp, -1, u->name, msg, "User entries of top "
			"are repointed to base by rewriting the file atomically "
			"(a new file renamed over it).",
			"Make the file and its directory writable.");
	}
	return r < 0 ? r : 0;
}

int plan_check_relinks(struct graph *g, struct plan *p)
{
	/* An unusable base is already a conflict; relinks onto it say
	 * nothing more. */
	if (g->nodes[p->base].flags & (GN_ERROR | GN_EXTERNAL))
		return 0;
	for (int i = 0; i < p->nparents; i++) {
		struct plan_parent *pp = &p->parents[i];
		int r = 0;

		if (pp->node >= 0)
			r = check_overlay_relink(g, p, pp);
		else if (pp->user >= 0)
			r = check_user_relink(g, p, pp);
		if (r < 0)
			return r;
	}
	return 0;
}

/* What the commit must hold within the limits of the journal and of the
 * open-file table: passing one is a conflict that names it, found here
 * rather than after the copy. */
int plan_check_limits(struct graph *g, struct plan *p)
{
	char msg[600];
	int records = 0, nusers = 0, *ids = NULL, nf = 0, r;
	struct stat st;

	for (int i = 0; i < p->nparents; i++) {
		records += p->parents[i].node >= 0;
		nusers += p->parents[i].user >= 0;
	}
	if (records > JOURNAL_MAX_PARENTS) {
		snprintf(msg, sizeof(msg), "%d parent headers to rewrite, more "
			 "than the journal's limit of %d", records,
			 JOURNAL_MAX_PARENTS);
		if ((r = plan_add_conflict(p, CONFLICT_RELINK, p->top, 0, "",
			msg, "Every rewritten header is journaled so that a "
			"crash can be recovered.", "Commit a base with fewer "
			"overlays of top, or move some of them off top first."))
		    < 0)
			return r;
	}
	if (nusers && g->users_file && stat(g->users_file, &st) == 0 &&
	    st.st_size > (off_t)JOURNAL_MAX_USERS) {
		snprintf(msg, sizeof(msg), "users file '%s' is %lld bytes, more "
			 "than the journal's limit of %u", g->users_file,
			 (long long)st.st_size, JOURNAL_MAX_USERS);
		if ((r = plan_add_conflict(p, CONFLICT_RELINK, -1, 0, "", msg,
			"The users file's old text is journaled so that a "
			"crash can be recovered.", "Split the users file.")) < 0)
			return r;
	}
	if ((r = plan_files(p, &ids, &nf)) < 0)
		return r;
	free(ids);
	if (nf > lock_hold_max_files()) {
		snprintf(msg, sizeof(msg), "%d files to hold open, more than the "
			 "open-file limit allows (%ld: the hard RLIMIT_NOFILE "
			 "less %d spare)", nf, lock_hold_max_files(),
			 LOCK_HOLD_FD_SPARE);
		return plan_add_conflict(p, CONFLICT_RELINK, p->top, 0, "", msg,
			"The commit keeps every file it reads or rewrites open "
			"and locked until it ends.", "Raise the hard limit "
			"(ulimit -Hn) or commit with fewer overlays of top.");
	}
	return 0;
}
