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

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOB_DESC "commit job 'commit'"

static bool in_chain(const struct plan *p, int n)
{
	if (n == p->top || n == p->base)
		return true;
	for (int i = 0; i < p->ninter; i++)
		if (p->inter[i] == n)
			return true;
	return false;
}

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
	else if (i->data_file)
		snprintf(buf, len, "'%s' uses an external data file "
			 "(refused: CVE-2024-32498)", n->name);
	else if (!write)
		return NULL;
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
		snprintf(msg, sizeof(msg), "%s '%s' cannot be used: %s", role,
			 n->name, n->error ? n->error :
			 "it is an external (protocol or json:) name");
		return plan_add_conflict(p, CONFLICT_IMAGE_STATE, id, 0,
			n->name, msg, "imgraph only commits images it can read "
			"completely and check.",
			"Fix the image or its backing reference first "
			"(imgraph tree shows the error).");
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

/* Every link on the path must record its format: a probed one can be
 * forged by whoever writes the image's data. */
static int check_link_format(struct graph *g, struct plan *p, int id)
{
	const struct gnode *c = &g->nodes[id];
	const struct gnode *b;
	char msg[1200];

	if (c->backing < 0 || c->backing_fmt)
		return 0;
	b = &g->nodes[c->backing];
	snprintf(msg, sizeof(msg), "'%s' does not record the format of its "
		 "backing file '%s' (probed as %s)", c->name, b->name,
		 b->format ? b->format : "?");
	return plan_add_conflict(p, CONFLICT_FORMAT, c->backing, 0, c->name,
		msg, "A probed format can be forged by whoever writes the "
		"image's data (CVE-2008-2004); imgraph never reads or writes "
		"through a guessed format.",
		"Record it: qemu-img rebase -u -F FORMAT -b BACKING_NAME "
		"OVERLAY.");
}

int plan_check_states(struct graph *g, struct plan *p)
{
	bool top_written = p->top_is_leaf && !p->drop_top;
	int r;

	if ((r = check_node_state(g, p, p->top, top_written, "top")) < 0)
		return r;
	for (int i = 0; i < p->ninter; i++)
		if ((r = check_node_state(g, p, p->inter[i], false,
					  "intermediate")) < 0)
			return r;
	if ((r = check_node_state(g, p, p->base, true, "base")) < 0)
		return r;
	/* Formats on the path: top's link and every intermediate's. */
	if ((r = check_link_format(g, p, p->top)) < 0)
		return r;
	for (int i = 0; i < p->ninter; i++)
		if ((r = check_link_format(g, p, p->inter[i])) < 0)
			return r;
	return 0;
}

/* One other parent of a chain node, for the permission rule. */
static int perm_pair(struct graph *g, struct plan *p, int node,
		     const struct perm_edge *job, const struct perm_edge *o,
		     const char *oname, bool is_user)
{
	const struct gnode *n = &g->nodes[node];
	char msg[1400], why[1200], hint[1200], parties[600];
	uint8_t bits;

	snprintf(parties, sizeof(parties), "%s, %s", JOB_DESC, o->desc);
	if (perm_edges_conflict(o, job, &bits)) {
		/* required by the job, unshared by the other parent */
		perm_conflict_message(o, job, bits, n->name, msg, sizeof(msg));
		if (node == p->base && !is_user)
			snprintf(why, sizeof(why), "'%s' reads '%s' as its "
				 "backing file; the commit writes top's data "
				 "into '%s', so the contents of '%s' would "
				 "change.", oname, n->name, n->name, oname);
		else
			snprintf(why, sizeof(why), "%s uses '%s' and does not "
				 "let others change it, but the commit writes "
				 "into it.", o->desc, n->name);
	} else if (perm_edges_conflict(job, o, &bits)) {
		perm_conflict_message(job, o, bits, n->name, msg, sizeof(msg));
		if (is_user)
			snprintf(why, sizeof(why), "%s %s '%s', which the "
				 "commit does not allow while it runs.",
				 o->desc, o->perm & PERM_WRITE ? "writes" :
				 "reads", n->name);
		else
			snprintf(why, sizeof(why), "'%s' reads through '%s' "
				 "into '%s'; once top's data is in '%s', the "
				 "contents of '%s' change.", oname, n->name,
				 g->nodes[p->base].name,
				 g->nodes[p->base].name, oname);
	} else {
		return 0;
	}
	if (is_user)
		snprintf(hint, sizeof(hint), "Stop %s or detach '%s' from it; if "
			 "it no longer uses the image, remove it from %s.",
			 o->desc, n->name, g->users_file ? g->users_file :
			 "the users file");
	else if (node == p->base)
		snprintf(hint, sizeof(hint), "Pick a base that only this chain "
			 "uses (a node above the branch point), or move '%s' "
			 "off '%s' first.", oname, n->name);
	else
		snprintf(hint, sizeof(hint), "Commit into '%s' instead (so it "
			 "becomes the base), or move '%s' off it first.",
			 n->name, oname);
	return plan_add_conflict(p, CONFLICT_PERMISSION, node, bits, parties,
				 msg, why, hint);
}

/* The commit job's edge on chain node id, as QEMU's commit_start makes
 * them: s->base on base, "intermediate node" edges on every node above
 * it. */
static void job_edge(const struct graph *g, const struct plan *p, int id,
		     struct perm_edge *job)
{
	const struct gnode *top = &g->nodes[p->top];
	const struct gnode *base = &g->nodes[p->base];

	if (id == p->base) {
		job->perm = PERM_CONSISTENT_READ | PERM_WRITE;
		if (base->info.virtual_size < top->info.virtual_size)
			job->perm |= PERM_RESIZE;
		job->shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
		job->role = "base";
	} else {
		job->perm = 0;
		job->shared = PERM_WRITE | PERM_WRITE_UNCHANGED;
		job->role = "intermediate node";
	}
	job->desc = JOB_DESC;
}

/* The job's edge on chain node id against every other parent of it:
 * overlays outside the chain and users-file entries. */
static int check_node_perms(struct graph *g, struct plan *p, int id)
{
	const struct gnode *n = &g->nodes[id];
	struct perm_edge job;
	char desc[600];
	int r;

	job_edge(g, p, id, &job);
	for (int c = 0; c < n->nchildren; c++) {
		const struct gnode *x = &g->nodes[n->children[c]];
		struct perm_edge o = { .role = "backing",
				       .perm = PERM_BACKING_PERM,
				       .shared = PERM_BACKING_SHARED };

		if (in_chain(p, x->id) || plan_reads_nothing(g, x->id))
			continue;    /* chain-internal link, or a leftover */
		snprintf(desc, sizeof(desc), "node '%s'", x->name);
		o.desc = desc;
		if ((r = perm_pair(g, p, id, &job, &o, x->name, false)) < 0)
			return r;
	}
	for (int u = 0; u < g->nusers; u++) {
		const struct guser *us = &g->users[u];
		struct perm_edge o = { .role = "root" };

		if (us->kind != PARTY_USER || us->node != id)
			continue;
		snprintf(desc, sizeof(desc), "user '%s'", us->name);
		o.desc = desc;
		o.perm = us->perm;
		o.shared = us->shared;
		if ((r = perm_pair(g, p, id, &job, &o, us->name, true)) < 0)
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

/* The locks a commit takes on node id, as perm and shared masks (QEMU's
 * lock bytes, see lock.h); false when it does not open node id. */
static bool our_locks(const struct plan *p, int id, uint8_t *perm,
		      uint8_t *shared)
{
	bool parent = false;

	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == id)
			parent = true;
	if (id == p->base) {
		*perm = PERM_CONSISTENT_READ | PERM_WRITE |
			(p->base_grows ? PERM_RESIZE : 0);
		*shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
	} else if (id == p->top && parent) {
		/* leaf top: relinked and emptied */
		*perm = PERM_CONSISTENT_READ | PERM_WRITE;
		*shared = PERM_WRITE_UNCHANGED;
	} else if (id == p->top) {
		*perm = PERM_CONSISTENT_READ;
		*shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
	} else if (in_chain(p, id)) {
		*perm = PERM_CONSISTENT_READ;
		*shared = PERM_WRITE_UNCHANGED;
	} else if (parent) {
		*perm = PERM_CONSISTENT_READ | PERM_WRITE;
		*shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
	} else {
		return false;
	}
	return true;
}

/* Files checked for openers without locks: base and at most this many
 * parents of top. */
#define OPENER_PARENTS_MAX 64

/* A process that has node x open without QEMU's locks: a conflict, unless
 * its locks already made one. */
static int opener_conflict(struct graph *g, struct plan *p,
			   const struct gnode *x, const struct lock_opener *op)
{
	char who[96], msg[600];

	for (int u = 0; u < g->nusers; u++)
		if (g->users[u].kind == PARTY_PROCESS &&
		    g->users[u].pid == op->pid && g->users[u].node == x->id)
			return 0;    /* already reported with its locks */
	snprintf(who, sizeof(who), "process %d (%s)", (int)op->pid,
		 op->comm[0] ? op->comm : "?");
	snprintf(msg, sizeof(msg), "%s has '%s' open without QEMU's locks",
		 who, x->name);
	return plan_add_conflict(p, CONFLICT_LOCK, x->id, 0, who, msg,
		"The file is in use by a program the lock protocol does not "
		"cover (e.g. QEMU with locking=off); writing it now could "
		"corrupt what that program sees.",
		"Stop that process or close the image in it first.");
}

/* Processes that have a file we write open without any QEMU lock
 * (locking=off, a non-QEMU program): found through /proc/PID/fd. */
static int check_openers(struct graph *g, struct plan *p, struct img_err *e)
{
	dev_t devs[1 + OPENER_PARENTS_MAX];
	ino_t inos[1 + OPENER_PARENTS_MAX];
	int ids[1 + OPENER_PARENTS_MAX], n = 0, no = 0, r;
	struct lock_opener *op = NULL;

	ids[n] = p->base;
	devs[n] = g->nodes[p->base].dev;
	inos[n++] = g->nodes[p->base].ino;
	for (int i = 0; i < p->nparents && n < 1 + OPENER_PARENTS_MAX; i++) {
		int id = p->parents[i].node;
		if (id < 0)
			continue;
		ids[n] = id;
		devs[n] = g->nodes[id].dev;
		inos[n++] = g->nodes[id].ino;
	}
	r = lock_find_openers(devs, inos, n, &op, &no, e);
	for (int k = 0; k < no && r == 0; k++)
		r = opener_conflict(g, p, &g->nodes[ids[op[k].idx]], &op[k]);
	free(op);
	return r;
}

/* A process holding QEMU's locks on node us->node conflicts when it does
 * not share what the commit takes, or holds what the commit does not
 * share; the message is QEMU's (file-posix) for the first such bit. */
static int lock_conflict(struct graph *g, struct plan *p,
			 const struct guser *us)
{
	char msg[1400], why[800], hint[600], held[80], desc[400];
	uint8_t perm, shared, need, refuse;
	const struct gnode *n;

	if (us->kind != PARTY_PROCESS || us->node < 0 ||
	    !our_locks(p, us->node, &perm, &shared))
		return 0;
	n = &g->nodes[us->node];
	need = perm & ~us->shared & PERM_ALL;    /* they don't share */
	refuse = us->perm & ~shared & PERM_ALL;  /* they hold */
	if (!need && !refuse)
		return 0;
	lock_describe(us, desc, sizeof(desc));
	if (need)
		snprintf(msg, sizeof(msg), "Failed to get \"%s\" lock on '%s': "
			 "%s", perm_names(need & -need, held, sizeof(held)),
			 n->name, desc);
	else
		snprintf(msg, sizeof(msg), "Failed to get shared \"%s\" lock on "
			 "'%s': %s", perm_names(refuse & -refuse, held,
						 sizeof(held)), n->name, desc);
	snprintf(why, sizeof(why), "A running process has '%s' open with "
		 "QEMU's locks; %s.", n->name, us->node == p->base ?
		 "the commit writes into it" : in_chain(p, us->node) ?
		 "the commit reads it and must not see it change" :
		 "relinking rewrites its header");
	snprintf(hint, sizeof(hint), "Stop %s or detach the disk first (for a "
		 "running VM use a QEMU block-commit job); imgraph never "
		 "overrides a live lock.", us->name);
	return plan_add_conflict(p, CONFLICT_LOCK, us->node,
				 (uint8_t)(need | refuse), us->name, msg, why,
				 hint);
}

int plan_check_locks(struct graph *g, struct plan *p, struct img_err *e)
{
	int r = check_openers(g, p, e);

	for (int u = 0; r == 0 && u < g->nusers; u++)
		r = lock_conflict(g, p, &g->users[u]);
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
		snprintf(msg, sizeof(msg), "'%s': format %s cannot rewrite its "
			 "backing link", x->name, img_format_name(img));
		img_close(img);
		return relink_refused(p, pp, x->id, x->name, msg, "",
				      "Convert the overlay to qcow2.");
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
