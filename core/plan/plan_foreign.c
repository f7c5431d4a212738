/* plan_foreign.c - the conflicts that images of other formats, or images
 * that cannot be read, add to a plan: a base recorded raw whose bytes are
 * another format's image (--base-is-raw overrides), and unverified readers
 * (--ignore-unverified FILE overrides).  The overrides are kept in the plan
 * so that the commit's re-check applies the same ones.
 */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int plan_keep_overrides(struct plan *p, const struct plan_opts *o)
{
	int n = o->nignore_unverified;

	p->base_is_raw = o->base_is_raw;
	if (n <= 0)
		return 0;
	p->ignore_unverified = calloc((size_t)n, sizeof(char *));
	if (!p->ignore_unverified)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		p->ignore_unverified[i] = strdup(o->ignore_unverified[i]);
		if (!p->ignore_unverified[i])
			return -ENOMEM;
		p->nignore_unverified++;
	}
	return 0;
}

/* Base is recorded raw, but the registry's probe finds another format's
 * signature in it: a commit would write guest data over that image's
 * header (or footer), as qemu-img commit would. */
int plan_check_raw_base(struct graph *g, struct plan *p)
{
	const struct gnode *b = &g->nodes[p->base];
	char msg[1400];

	if (!(b->flags & GN_RAW_MAGIC) || p->base_is_raw)
		return 0;
	const char *m = b->raw_magic ? b->raw_magic : "?";

	if (b->raw_magic_tail)
		snprintf(msg, sizeof(msg), "base '%s' is recorded as raw, but "
			 "it ends with a %s footer: committing treats that "
			 "image's footer as guest data and can overwrite it",
			 b->name, m);
	else
		snprintf(msg, sizeof(msg), "base '%s' is recorded as raw, but "
			 "it starts with a %s header: committing would "
			 "overwrite that image's header", b->name, m);
	return plan_add_conflict(p, CONFLICT_FORMAT, b->id, 0, b->name, msg,
		"Either the overlay recorded the wrong backing format, or a "
		"guest wrote an image into its raw disk; which one only you "
		"can tell, and a wrong guess destroys an image.",
		"If the overlay's format record is wrong, fix it with qemu-img "
		"rebase -u -F FORMAT; if base really is a raw disk, pass "
		"--base-is-raw.");
}

static bool ignored(const struct plan *p, const struct gnode *n)
{
	struct stat st;

	for (int i = 0; i < p->nignore_unverified; i++)
		if (stat(p->ignore_unverified[i], &st) == 0 &&
		    st.st_dev == n->dev && st.st_ino == n->ino)
			return true;
	return false;
}

static bool in_chain(const struct plan *p, int id)
{
	if (id == p->top || id == p->base)
		return true;
	for (int i = 0; i < p->ninter; i++)
		if (p->inter[i] == id)
			return true;
	return false;
}

/* Every unverified reader of the pool, wherever it is: what it reads is
 * unknown, so it may read any image of the chain.  Those of the chain are
 * conflicts of their own (they cannot be read). */
int plan_check_unverified(struct graph *g, struct plan *p)
{
	char msg[1400];
	int r = 0;

	for (int i = 0; r == 0 && i < g->n; i++) {
		const struct gnode *n = &g->nodes[i];

		if (!(n->flags & GN_UNVERIFIED) || in_chain(p, i) ||
		    ignored(p, n))
			continue;
		snprintf(msg, sizeof(msg), "unverified reader '%s': it carries "
			 "a %s signature, but cannot be read far enough to "
			 "know its backing file (%s)", n->name,
			 n->format ? n->format : "known image",
			 n->error ? n->error : "unreadable");
		r = plan_add_conflict(p, CONFLICT_UNVERIFIED, i, 0, n->name, msg,
			"It may read an image of this chain: the commit would "
			"then change what it shows without any conflict saying "
			"so.",
			"Repair or remove it, or pass --ignore-unverified FILE "
			"if it reads nothing of this chain.");
	}
	return r;
}
