/* plan_marks.c - what earlier transactions left beside the pool, as the
 * plan sees it (core/graph/marks.h): an unfinished relink stops the plan,
 * stale and unused images refuse to be used again, and --delete lists
 * what moves into the trash. */
#include "plan_int.h"
#include "core/graph/marks.h"
#include "core/graph/resolve.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- journals ----------------------------------------------------------- */

/* "base.qcow2, top.qcow2 and 2 files outside the pool" into buf. */
static void covered(const struct graph *g, const struct gmark_journal *j,
		    char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < j->nnodes && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s'%s'",
				      i ? ", " : "", g->nodes[j->nodes[i]].name);
	if (j->noutside && o < len)
		snprintf(buf + o, len - o, "%s%d file%s outside the pool",
			 o ? " and " : "", j->noutside,
			 j->noutside == 1 ? "" : "s");
}

int plan_check_journals(struct graph *g, struct plan *p)
{
	const struct graph_marks *m = g->marks;
	int r;

	for (int i = 0; m && i < m->njournals; i++) {
		const struct gmark_journal *j = &m->journals[i];
		char cov[1600], msg[2400], hint[PATH_MAX + 200];

		covered(g, j, cov, sizeof(cov));
		if (j->valid)
			snprintf(msg, sizeof(msg), "an unfinished relink "
				 "(journal '%s', %s) covers %s", j->path,
				 j->relinked ? "every parent relinked, "
				 "cleanup pending" : "parents partly relinked",
				 cov[0] ? cov : "no image of the pool");
		else
			snprintf(msg, sizeof(msg), "a journal that cannot be "
				 "read ('%s': %s) is left beside %s", j->path,
				 j->error ? j->error : "invalid",
				 cov[0] ? cov : "the pool");
		snprintf(hint, sizeof(hint), "Run 'imgraph recover %s' to "
			 "finish it ('imgraph recover --rollback %s' undoes "
			 "it), then plan again.", j->dir, j->dir);
		r = plan_add_conflict(p, CONFLICT_JOURNAL,
			j->nnodes ? j->nodes[0] : -1, 0, j->path, msg,
			"A commit stopped in the middle of its relink: some "
			"parents may name base and others top, so the pool is "
			"split and no other check can be trusted until the "
			"transaction is finished.", hint);
		if (r < 0)
			return r;
	}
	return m && m->njournals ? 1 : 0;
}

/* ---- stale and unused images -------------------------------------------- */

/* A retry of the commit that left mark s may use its intermediates: same
 * top, same base, and that commit has not relinked. */
static bool is_retry(const struct graph *g, const struct plan *p,
		     const struct gmark_stale *s)
{
	const struct gnode *top = &g->nodes[p->top];

	return s->pending && !s->unused && s->base == p->base &&
	       s->top_dev == (uint64_t)top->dev &&
	       s->top_ino == (uint64_t)top->ino;
}

static int stale_conflict(struct graph *g, struct plan *p,
			  const struct gmark_stale *s, const char *role)
{
	const char *n = g->nodes[s->node].name, *b = g->nodes[s->base].name;
	char msg[1600], tm[40];

	marks_when(s->created, tm, sizeof(tm));
	if (s->unused)
		snprintf(msg, sizeof(msg), "%s '%s' is unused: it was "
			 "committed into '%s' (transaction %016llx, %s) and "
			 "nothing reads it since", role, n, b,
			 (unsigned long long)s->txid, tm);
	else
		snprintf(msg, sizeof(msg), "%s '%s' is stale: '%s' was "
			 "committed into (transaction %016llx, %s%s) while "
			 "'%s' lay between that commit's top and base", role,
			 n, b, (unsigned long long)s->txid, tm,
			 s->pending ? ", not relinked yet" : "", n);
	return plan_add_conflict(p, CONFLICT_STALE, s->node, 0, n, msg,
		s->unused ? "Its data is in base already and its parents "
		"read base: committing or reading through it again would "
		"copy old data over newer." :
		"Its own clusters now lie over base's new data, so it no "
		"longer shows what it showed; using it would spread a view "
		"no guest ever had.",
		s->pending && !s->unused ? "Only a retry of that commit (same "
		"top and base) may use it; otherwise delete it." :
		"Delete it ('imgraph commit --delete' moves what nothing "
		"reads into the trash), or choose another chain.");
}

static int check_role(struct graph *g, struct plan *p, int id,
		      const char *role)
{
	const struct graph_marks *m = g->marks;
	int r;

	for (int i = 0; m && i < m->nstale; i++) {
		const struct gmark_stale *s = &m->stale[i];

		if (s->node != id || is_retry(g, p, s))
			continue;
		if ((r = stale_conflict(g, p, s, role)) < 0)
			return r;
		break;          /* one reason per image is enough */
	}
	return 0;
}

/* A stale record beside base that cannot be read hides what it marks. */
static int check_bad_records(struct graph *g, struct plan *p)
{
	const struct graph_marks *m = g->marks;
	char msg[1600];

	for (int i = 0; m && i < m->nbad; i++) {
		if (m->bad[i].base != p->base)
			continue;
		snprintf(msg, sizeof(msg), "the stale record beside base "
			 "cannot be read: %s", m->bad[i].error);
		return plan_add_conflict(p, CONFLICT_STALE, p->base, 0,
			m->bad[i].path, msg, "It says which images earlier "
			"commits into base left stale; without it they cannot "
			"be told from valid ones.", "Inspect it; remove it once "
			"the images it names are gone.");
	}
	return 0;
}

int plan_check_stale(struct graph *g, struct plan *p)
{
	int r = check_role(g, p, p->top, "top");

	for (int i = 0; r == 0 && i < p->ninter; i++)
		r = check_role(g, p, p->inter[i], "intermediate");
	if (r == 0)
		r = check_role(g, p, p->base, "base");
	if (r == 0)
		r = check_bad_records(g, p);
	return r;
}

/* Left over by finished commits, with nothing above that still matters:
 * node n is stale or unused, nobody uses it, and the same holds for every
 * overlay of it.  Writing under such a node changes no view anyone has. */
static bool left_over(const struct graph *g, int n, int depth)
{
	const struct gnode *nd = &g->nodes[n];

	if (!(nd->flags & (GN_STALE | GN_UNUSED)) || depth > GRAPH_MAX_DEPTH)
		return false;
	for (int i = 0; i < g->nusers; i++)
		if (g->users[i].node == n)
			return false;
	for (int i = 0; i < nd->nchildren; i++)
		if (!left_over(g, nd->children[i], depth + 1))
			return false;
	return true;
}

bool plan_reads_nothing(const struct graph *g, int n)
{
	return left_over(g, n, 0);
}

/* ---- --delete ----------------------------------------------------------- */

/* A node staying in g that may read n without an edge saying so: an
 * unverified reader (what it reads is unknown), or a backing reference
 * that was never followed (a probe not trusted) yet names n's file. */
static bool named_by_unlinked(const struct graph *g, int n, const bool *going,
			      char *buf, size_t len)
{
	const struct gnode *nd = &g->nodes[n];

	for (int i = 0; i < g->n; i++) {
		const struct gnode *x = &g->nodes[i];
		char res[PATH_MAX];
		enum resolve_kind k;
		struct stat st;

		if (i == n || going[i])
			continue;
		if (x->flags & GN_UNVERIFIED) {
			snprintf(buf, len, "may be read by unverified reader "
				 "'%s'", x->name);
			return true;
		}
		if (!x->backing_name || x->backing >= 0 || !x->path ||
		    resolve_backing(x->path, x->backing_name, res, sizeof(res),
				    &k, NULL) < 0 || k != RESOLVE_FILE ||
		    stat(res, &st) < 0 || st.st_dev != nd->dev ||
		    st.st_ino != nd->ino)
			continue;
		snprintf(buf, len, "named as backing file by '%s'", x->name);
		return true;
	}
	return false;
}

/* Who, staying in g, reads node n?  Into buf; false when nobody. */
static bool read_by(const struct graph *g, int top, int n, const bool *going,
		    const bool *moved, char *buf, size_t len)
{
	const struct gnode *nd = &g->nodes[n];

	for (int i = 0; i < nd->nchildren; i++) {
		int ch = nd->children[i];

		if (going[ch] || (moved && moved[ch]))
			continue;
		snprintf(buf, len, "read by '%s'", g->nodes[ch].name);
		return true;
	}
	if (named_by_unlinked(g, n, going, buf, len))
		return true;
	for (int i = 0; i < g->nusers; i++) {
		const struct guser *u = &g->users[i];

		if (u->node != n || (n == top && u->kind == PARTY_USER))
			continue;
		if (u->kind == PARTY_PROCESS)
			snprintf(buf, len, "used by %s", u->name);
		else
			snprintf(buf, len, "used by user '%s'", u->name);
		return true;
	}
	return false;
}

int plan_trash_settle(const struct graph *g, int top, const int *cand,
		      int ncand, bool *going, const bool *moved, char **why)
{
	bool changed = true;
	char buf[600];

	while (changed) {
		changed = false;
		for (int i = 0; i < ncand; i++) {
			int n = cand[i];

			if (!going[n] || !read_by(g, top, n, going, moved, buf,
						  sizeof(buf)))
				continue;
			going[n] = false;
			changed = true;
			if (why && !(why[i] = strdup(buf)))
				return -ENOMEM;
		}
	}
	return 0;
}

static int add_cand(int *cand, int *n, bool *going, int id)
{
	if (going[id])
		return 0;
	going[id] = true;
	cand[(*n)++] = id;
	return 0;
}

/* Top unless kept, the intermediates, and what earlier finished commits
 * into base left stale or unused. */
static int candidates(const struct graph *g, const struct plan *p, int *cand,
		      bool *going)
{
	const struct graph_marks *m = g->marks;
	int n = 0;

	if (p->leaf != PLAN_LEAF_KEEP)
		add_cand(cand, &n, going, p->top);
	for (int i = 0; i < p->ninter; i++)
		add_cand(cand, &n, going, p->inter[i]);
	for (int i = 0; m && i < m->nstale; i++)
		if (m->stale[i].base == p->base && !m->stale[i].pending)
			add_cand(cand, &n, going, m->stale[i].node);
	return n;
}

int plan_list_trash(struct graph *g, struct plan *p)
{
	bool *going = calloc((size_t)g->n, sizeof(bool));
	bool *moved = calloc((size_t)g->n, sizeof(bool));
	int *cand = calloc((size_t)g->n, sizeof(int));
	char **why = calloc((size_t)g->n, sizeof(char *));
	int n = 0, r = -ENOMEM;

	if (!going || !moved || !cand || !why)
		goto out;
	for (int i = 0; i < p->nparents; i++)
		if (p->parents[i].node >= 0)
			moved[p->parents[i].node] = true;
	n = candidates(g, p, cand, going);
	r = plan_trash_settle(g, p->top, cand, n, going, moved, why);
	if (r == 0 && n && !(p->trash = calloc((size_t)n, sizeof(*p->trash))))
		r = -ENOMEM;
	for (int i = 0; r == 0 && i < n; i++) {
		p->trash[i] = (struct plan_trash){ cand[i], going[cand[i]],
						   why[i] };
		why[i] = NULL;
		p->ntrash++;
	}
out:
	for (int i = 0; why && i < n; i++)
		free(why[i]);
	free(why);
	free(cand);
	free(moved);
	free(going);
	return r;
}
