/* policy.c - the roles of a commit and what each holds and shares; see
 * policy.h.
 *
 * Each row is the commit job's use of the node as QEMU's commit_start
 * (block/commit.c) makes it: on base the s->base backend (consistent read
 * and write, plus resize when base is smaller than top, sharing consistent
 * read and write unchanged); on top and every node down to base an
 * "intermediate node" edge (nothing held, sharing write and write
 * unchanged).  The bytes locked on the file follow from that use by QEMU's
 * storage rule (perm_file_locks), which is what file-posix locks during a
 * block-commit: a qcow2 base holds consistent read, write and resize and
 * shares consistent read and write unchanged (a raw base takes resize only
 * when it grows); top and the intermediates hold consistent read and share
 * only write unchanged, so nobody may read an image whose view the commit
 * changes.
 *
 * Where imgraph must differ, and why: QEMU commits inside the process that
 * uses the chain, moves every parent of top above a filter and rewrites
 * their headers at the end from that same process.  imgraph is another
 * process and cannot move a user: so each parent of top, and a leaf top
 * it keeps, is opened read-write and locked as a writer for the whole
 * operation (the lock QEMU's reopen for the header rewrite takes, taken
 * from the start so that nobody starts writing a header the relink
 * rewrites); an entry of the users file is a process it cannot ask, so it
 * is checked as if it held the locks its perm and shared declare, except
 * an entry of top, which is a parent of top and is repointed in the file.
 *
 * A pull follows QEMU's stream job (block/stream.c): the images between
 * top and base are held with consistent read and nobody may write them
 * meanwhile; what goes into top changes nothing top shows (QEMU's copy-
 * on-read writes are write-unchanged), so top's parents may go on reading
 * it, but as imgraph writes top's metadata from another process it holds
 * top as a writer (a live user of top conflicts).  base is only read:
 * its other readers are no conflict.
 */
#include "policy.h"
#include "plan_protect.h"
#include "core/graph/perm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CR  PERM_CONSISTENT_READ
#define W   PERM_WRITE
#define WU  PERM_WRITE_UNCHANGED
#define RS  PERM_RESIZE

static const struct role_row {
	const char *name, *does;
	const char *edge;          /* the job's edge; NULL: none */
	uint8_t perm, shared;      /* the node's use (the job's edge) */
	bool lock, write;
	bool file_level;           /* perm/shared are the lock bytes */
} rows[] = {
	[PLAN_ROLE_NONE] = { "other", "the commit does not open it", NULL,
		0, PERM_ALL, false, false, false },
	[PLAN_ROLE_BASE] = { "base", "the commit writes top's data into it",
		"base", CR | W, CR | WU, true, true, false },
	[PLAN_ROLE_INTER] = { "intermediate", "the commit reads it, and "
		"what it shows changes once base holds top's data",
		"intermediate node", 0, W | WU, true, false, false },
	[PLAN_ROLE_TOP] = { "top", "the commit reads it, and it leaves the "
		"chain", "intermediate node", 0, W | WU, true, false, false },
	[PLAN_ROLE_TOP_KEPT] = { "top", "the commit reads it, then empties "
		"it and rewrites its header to name base", "intermediate node",
		0, W | WU, true, true, false },
	[PLAN_ROLE_PARENT] = { "parent of top", "the relink rewrites its "
		"header", NULL, 0, PERM_ALL, true, true, false },
	[PLAN_ROLE_USER_OF_TOP] = { "user of top", "the users file is "
		"rewritten to name base instead", NULL, 0, PERM_ALL, false,
		false, false },
	/* --protect writes base's old data into it (what it shows stays the
	 * same: write unchanged), and allocates, so its metadata changes
	 * under anyone who has it open: nobody may hold it, not even to
	 * read (a reader's cached tables would still send it to base). */
	[PLAN_ROLE_PROTECTED] = { "protected reader", "the commit first "
		"copies base's old data into it where it reads base, so what "
		"it shows stays the same but its tables change", NULL,
		CR | WU, WU, true, true, false },
	/* QEMU's image creation (file-posix raw_co_create): write and
	 * resize, sharing everything but resize, before it truncates. */
	[PLAN_ROLE_CREATE] = { "image replaced", "create replaces it",
		NULL, W | RS, PERM_ALL & ~RS, true, true, true },
	[PLAN_ROLE_PULL_TOP] = { "top", "the pull writes the data of the "
		"images below it into it where it allocates nothing, then "
		"rewrites its header to name base", NULL, CR | WU, CR | WU,
		true, true, false },
	[PLAN_ROLE_PULL_INTER] = { "intermediate", "the pull reads it; what "
		"it shows does not change", NULL, CR, CR | WU, true, false,
		false },
	[PLAN_ROLE_PULL_BASE] = { "base", "the pull reads it through top's "
		"chain and never writes it", NULL, CR, CR | WU, true, false,
		false },
};

void policy_of(enum plan_role role, const char *fmt, bool base_grows,
	       struct role_policy *out)
{
	const struct role_row *r = &rows[role];
	uint8_t perm = r->perm;

	if (role == PLAN_ROLE_BASE && base_grows)
		perm |= RS;
	memset(out, 0, sizeof(*out));
	out->role = role;
	out->name = r->name;
	out->does = r->does;
	out->edge = r->edge;
	out->job_perm = r->edge ? perm : 0;
	out->job_shared = r->edge ? r->shared : PERM_ALL;
	out->lock = r->lock;
	out->write = r->write;
	if (!r->lock)
		return;
	if (r->file_level) {
		out->perm = perm;
		out->shared = r->shared;
		return;
	}
	perm_file_locks(perm, r->shared, !fmt || strcmp(fmt, "raw"),
			r->write, &out->perm, &out->shared);
}

static bool is_parent(const struct plan *p, int id)
{
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node == id)
			return true;
	return false;
}

enum plan_role plan_role_of(const struct plan *p, int id)
{
	if (id < 0)
		return PLAN_ROLE_NONE;
	if (p->pull) {
		if (id == p->base)
			return PLAN_ROLE_PULL_BASE;
		if (id == p->top)
			return PLAN_ROLE_PULL_TOP;
		for (int i = 0; i < p->ninter; i++)
			if (p->inter[i] == id)
				return PLAN_ROLE_PULL_INTER;
		return PLAN_ROLE_NONE;
	}
	if (id == p->base)
		return PLAN_ROLE_BASE;
	if (id == p->top)
		return p->leaf == PLAN_LEAF_KEEP ? PLAN_ROLE_TOP_KEPT
						 : PLAN_ROLE_TOP;
	for (int i = 0; i < p->ninter; i++)
		if (p->inter[i] == id)
			return PLAN_ROLE_INTER;
	if (is_parent(p, id))
		return PLAN_ROLE_PARENT;
	return plan_protects(p, id) ? PLAN_ROLE_PROTECTED : PLAN_ROLE_NONE;
}

void plan_policy(const struct graph *g, const struct plan *p, int id,
		 struct role_policy *out)
{
	enum plan_role role = plan_role_of(p, id);

	policy_of(role, role != PLAN_ROLE_NONE ? g->nodes[id].format : NULL,
		  p->base_grows, out);
}

int plan_files(const struct plan *p, int **ids, int *n)
{
	int cap = p->nparents + p->ninter + 2 +
		  (p->protect ? p->protect->n : 0), k = 0;
	int *v = malloc(sizeof(*v) * (size_t)cap);

	*ids = NULL;
	*n = 0;
	if (!v)
		return -ENOMEM;
	v[k++] = p->base;
	v[k++] = p->top;
	for (int i = 0; i < p->ninter; i++)
		v[k++] = p->inter[i];
	/* A kept leaf top is listed among the parents too: once is enough. */
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node >= 0 && p->parents[i].node != p->top)
			v[k++] = p->parents[i].node;
	for (int i = 0; p->protect && i < p->protect->n; i++)
		if (plan_protects(p, p->protect->r[i].node))
			v[k++] = p->protect->r[i].node;
	*ids = v;
	*n = k;
	return 0;
}

/* Does pid hold QEMU's locks on dev:ino?  Then its locks judge it. */
static int holds_locks(dev_t dev, ino_t ino, pid_t pid, bool *yes,
		       struct img_err *e)
{
	struct lock_holder *h = NULL;
	int n = 0, r = lock_find_holders(dev, ino, &h, &n, e);

	*yes = false;
	for (int k = 0; r == 0 && k < n; k++)
		*yes |= h[k].pid == pid;
	free(h);
	return r;
}

int plan_openers(const struct graph *g, const struct plan *p, int **ids,
		 struct lock_opener **op, int *no, struct img_err *e)
{
	dev_t *devs = NULL;
	ino_t *inos = NULL;
	int n = 0, k = 0, r;

	*op = NULL;
	*no = 0;
	r = plan_files(p, ids, &n);
	if (r == 0) {
		devs = calloc((size_t)n + 1, sizeof(*devs));
		inos = calloc((size_t)n + 1, sizeof(*inos));
		if (!devs || !inos)
			r = -ENOMEM;
	}
	if (r < 0)
		r = err_set(e, ENOMEM, "plan: out of memory");
	for (int i = 0; r == 0 && i < n; i++) {
		devs[i] = g->nodes[(*ids)[i]].dev;
		inos[i] = g->nodes[(*ids)[i]].ino;
	}
	if (r == 0)
		r = lock_find_openers(devs, inos, n, op, no, e);
	for (int i = 0; r == 0 && i < *no; i++) {
		bool locked;

		r = holds_locks(devs[(*op)[i].idx], inos[(*op)[i].idx],
				(*op)[i].pid, &locked, e);
		if (r == 0 && !locked)
			(*op)[k++] = (*op)[i];
	}
	if (r == 0)
		*no = k;
	free(devs);
	free(inos);
	return r;
}

bool policy_conflicts(const struct role_policy *rp, uint8_t hperm,
		      uint8_t hshared, uint8_t *need, uint8_t *refuse)
{
	*need = rp->lock ? (uint8_t)(rp->perm & ~hshared & PERM_ALL) : 0;
	*refuse = rp->lock ? (uint8_t)(hperm & ~rp->shared & PERM_ALL) : 0;
	return *need || *refuse;
}
