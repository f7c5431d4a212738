/* emit_tree.c - the pool forest as text, JSON or YAML; see emit.h. */
#include "emit.h"
#include "esc.h"
#include "core/graph/lock.h"
#include "core/graph/marks.h"
#include "core/graph/perm.h"

#include <stdlib.h>
#include <string.h>

const char *emit_size(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	const int last = (int)(sizeof(unit) / sizeof(unit[0])) - 1;
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < last) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else if (d < 1000 && !(v & ((1ull << (10 * u)) - 1)))
		/* a whole number of units (most virtual sizes): what %.3g
		 * prints, without formatting a double per image */
		snprintf(buf, len, "%llu %s",
			 (unsigned long long)(v >> (10 * u)), unit[u]);
	else if (d >= 999.5)   /* %.3g would print 1e+03 */
		snprintf(buf, len, "%.0f %s", d, unit[u]);
	else
		snprintf(buf, len, "%.3g %s", d, unit[u]);
	return buf;
}

static const struct {
	unsigned bit;
	const char *word;
} flag_words[] = {
	{ GN_IN_USE, "in use" },
	{ GN_ERROR, "error" },
	{ GN_OUTSIDE, "outside pool" },
	{ GN_PROBED, "probed" },
	{ GN_UNSAFE_PROBE, "unsafe probe" },
	{ GN_EXTERNAL, "external" },
	{ GN_MISSING, "missing" },
	{ GN_LOOP, "loop" },
	{ GN_DEEP, "too deep" },
	{ GN_RDONLY_FILE, "read-only" },
	{ GN_RAW_MAGIC, "raw with image header" },
	{ GN_JOURNAL, "unfinished relink" },
	{ GN_STALE, "stale" },
	{ GN_UNUSED, "unused" },
	{ GN_UNVERIFIED, "unverified reader" },
	{ GN_STATED, "format stated" },
};

const char *emit_node_flags(unsigned flags, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]);
	     i++) {
		int r;

		if (!(flags & flag_words[i].bit))
			continue;
		r = snprintf(buf + pos, len - pos, "%s%s", pos ? ", " : "",
			     flag_words[i].word);
		if (r < 0 || (size_t)r >= len - pos)
			break;
		pos += (size_t)r;
	}
	return buf;
}

void emit_perm_list(struct ow *w, const char *key, uint8_t mask)
{
	ow_arr_open(w, key);
	for (int i = 0; i < PERM_NBITS; i++)
		if (mask & (1u << i))
			ow_str(w, NULL, perm_qapi_name((uint8_t)(1u << i)));
	ow_close(w);
}

static void human_users(FILE *f, const struct graph *g, int node, int ind)
{
	char buf[256], p1[64], p2[64];

	for (int i = 0; i < g->nusers; i++) {
		const struct guser *u = &g->users[i];

		if (u->node != node)
			continue;
		if (u->kind == PARTY_PROCESS)
			fprintf(f, "%*s  ^ %s\n", ind, "",
				ESC(lock_describe(u, buf, sizeof(buf))));
		else
			fprintf(f, "%*s  ^ user '%s' (%s): perm '%s', shares "
				"'%s'\n", ind, "", ESC(u->name), ESC(u->user_kind),
				perm_names(u->perm, p1, sizeof(p1)),
				perm_names(u->shared, p2, sizeof(p2)));
	}
}

/* Why a node is flagged stale, unused or covered by a journal. */
static void human_marks(FILE *f, const struct graph *g, int node, int ind)
{
	const struct graph_marks *m = g->marks;
	char tm[40];

	for (int i = 0; m && i < m->nstale; i++) {
		const struct gmark_stale *s = &m->stale[i];

		if (s->node != node)
			continue;
		marks_when(s->created, tm, sizeof(tm));
		if (s->unused)
			fprintf(f, "%*s  ! unused: committed into '%s' (%s); "
				"nothing reads it any more\n", ind, "",
				ESC(g->nodes[s->base].name), tm);
		else
			fprintf(f, "%*s  ! stale: '%s' was committed into "
				"(%s%s) under it; it no longer shows what it "
				"showed\n", ind, "", ESC(g->nodes[s->base].name),
				tm, s->pending ? ", relink not done" : "");
	}
	for (int i = 0; m && i < m->njournals; i++)
		for (int k = 0; k < m->journals[i].nnodes; k++)
			if (m->journals[i].nodes[k] == node)
				fprintf(f, "%*s  ! in an unfinished relink: run "
					"'imgraph recover %s'\n", ind, "",
					ESC(m->journals[i].dir));
}

/* Before the forest: unfinished transactions come first. */
static void human_journals(FILE *f, const struct graph *g)
{
	const struct graph_marks *m = g->marks;

	for (int i = 0; m && i < m->njournals; i++) {
		const struct gmark_journal *j = &m->journals[i];

		fprintf(f, "! unfinished relink: %s (%s, covers %d image%s%s)"
			"; run 'imgraph recover %s' before anything else\n",
			ESC(j->path), !j->valid ? "unreadable" : j->relinked ?
			"relinked, cleanup pending" : "parents partly relinked",
			j->nnodes, j->nnodes == 1 ? "" : "s",
			j->noutside ? " in the pool, more outside" : "", ESC(j->dir));
	}
}

/* After the forest: what the trash holds, and records we cannot read. */
static void human_trash(FILE *f, const struct graph *g)
{
	const struct graph_marks *m = g->marks;
	char sz[32], tm[40];

	for (int i = 0; m && i < m->ntrash; i++) {
		const struct gmark_trash *t = &m->trash[i];

		fprintf(f, "trash: %s/.imgraph-trash holds %d file%s (%s) from "
			"%d commit%s, the last %s; 'imgraph undelete %s' puts "
			"its files back, 'imgraph purge %s' frees the space\n",
			ESC(t->dir), t->files, t->files == 1 ? "" : "s",
			emit_size(t->bytes, sz, sizeof(sz)), t->ntx,
			t->ntx == 1 ? "" : "s",
			marks_when(t->last_created, tm, sizeof(tm)), ESC(t->dir),
			ESC(t->dir));
	}
	for (int i = 0; m && i < m->nbad; i++)
		fprintf(f, "! stale record %s cannot be read: %s\n",
			ESC(m->bad[i].path), ESC(m->bad[i].error));
}

/* Deeper levels are not indented further (a long chain would push names
 * off the screen); their lines say the depth instead. */
#define TREE_MAX_INDENT_LEVEL 32
#define TREE_INDENT 2              /* columns per level */

static void human_node(FILE *f, const struct graph *g, int id, int depth)
{
	const struct gnode *n = &g->nodes[id];
	char vs[32], as[32], fl[256];
	int ind = (depth < TREE_MAX_INDENT_LEVEL ? depth :
		   TREE_MAX_INDENT_LEVEL) * TREE_INDENT;

	if (depth > TREE_MAX_INDENT_LEVEL)
		fprintf(f, "%*s[depth %d] ", ind, "", depth);
	else
		fprintf(f, "%*s", ind, "");
	esc_put(f, n->name);
	if (n->flags & (GN_EXTERNAL | GN_MISSING) ||
	    ((n->flags & GN_ERROR) && !n->format)) {
		/* nothing was read from this one */
	} else {
		fprintf(f, "  %s  %s virtual, %s allocated",
			n->format ? n->format : "?",
			emit_size(n->info.virtual_size, vs, sizeof(vs)),
			emit_size(n->info.actual_size, as, sizeof(as)));
	}
	fprintf(f, "  %d %s", n->nchildren,
		n->nchildren == 1 ? "child" : "children");
	emit_node_flags(n->flags, fl, sizeof(fl));
	if (fl[0])
		fprintf(f, "  [%s]", fl);
	fputc('\n', f);
	if (n->error)
		fprintf(f, "%*s  ! %s\n", ind, "", ESC(n->error));
	if (n->flags & GN_UNSAFE_PROBE)
		fprintf(f, "%*s  ! format %s was only probed (no reference "
			"records it, or a raw-disk name carries an image "
			"header): its backing file '%s' is not opened "
			"(CVE-2008-2004)\n", ind, "",
			n->format ? n->format : "?",
			ESC(n->backing_name));
	human_marks(f, g, id, ind);
	human_users(f, g, id, ind);
}

static void emit_human(FILE *f, const struct graph *g)
{
	int *stack, *dep, sp = 0;

	human_journals(f, g);
	if (!g->n) {
		fprintf(f, "(no images in the pool)\n");
		human_trash(f, g);
		return;
	}
	stack = malloc(sizeof(int) * (size_t)g->n);
	dep = malloc(sizeof(int) * (size_t)g->n);
	if (!stack || !dep) {
		free(stack);
		free(dep);
		return;
	}
	for (int r = 0; r < g->n; r++) {
		if (g->nodes[r].backing >= 0)
			continue;
		stack[sp] = r;
		dep[sp++] = 0;
		while (sp > 0) {
			int id = stack[--sp], d = dep[sp];
			const struct gnode *n = &g->nodes[id];

			human_node(f, g, id, d);
			/* push in reverse so children print in order */
			for (int c = n->nchildren - 1; c >= 0; c--) {
				stack[sp] = n->children[c];
				dep[sp++] = d + 1;
			}
		}
	}
	free(stack);
	free(dep);
	human_trash(f, g);
}

static void flag_list(struct ow *w, unsigned flags)
{
	ow_arr_open(w, "flags");
	for (size_t i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]);
	     i++)
		if (flags & flag_words[i].bit)
			ow_str(w, NULL, flag_words[i].word);
	ow_close(w);
}

static void txid_str(struct ow *w, const char *key, uint64_t txid)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)txid);
	ow_str(w, key, buf);
}

/* "committed": why the node is stale or unused (absent when neither). */
static void struct_node_marks(struct ow *w, const struct graph *g, int id)
{
	const struct graph_marks *m = g->marks;

	if (!(g->nodes[id].flags & (GN_STALE | GN_UNUSED)))
		return;
	ow_arr_open(w, "committed");
	for (int i = 0; m && i < m->nstale; i++) {
		const struct gmark_stale *s = &m->stale[i];

		if (s->node != id)
			continue;
		ow_obj_open(w, NULL);
		ow_str(w, "mark", s->unused ? "unused" : "stale");
		ow_i64(w, "base", s->base);
		txid_str(w, "transaction", s->txid);
		ow_i64(w, "time", s->created);
		ow_bool(w, "relinked", !s->pending);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_journals(struct ow *w, const struct graph *g)
{
	const struct graph_marks *m = g->marks;

	ow_arr_open(w, "journals");
	for (int i = 0; m && i < m->njournals; i++) {
		const struct gmark_journal *j = &m->journals[i];
		char cmd[4200];

		ow_obj_open(w, NULL);
		ow_str(w, "journal", j->path);
		ow_bool(w, "valid", j->valid);
		ow_str(w, "state", !j->valid ? NULL : j->relinked ?
		       "RELINKED" : "PREPARED");
		ow_str(w, "error", j->error);
		if (j->valid)
			txid_str(w, "transaction", j->txid);
		ow_arr_open(w, "nodes");
		for (int k = 0; k < j->nnodes; k++)
			ow_i64(w, NULL, j->nodes[k]);
		ow_close(w);
		ow_i64(w, "files-outside", j->noutside);
		snprintf(cmd, sizeof(cmd), "imgraph recover %s", j->dir);
		ow_str(w, "fix", cmd);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_trash(struct ow *w, const struct graph *g)
{
	const struct graph_marks *m = g->marks;

	ow_arr_open(w, "trash");
	for (int i = 0; m && i < m->ntrash; i++) {
		const struct gmark_trash *t = &m->trash[i];

		ow_obj_open(w, NULL);
		ow_str(w, "dir", t->dir);
		ow_i64(w, "files", t->files);
		ow_u64(w, "bytes", t->bytes);
		ow_i64(w, "commits", t->ntx);
		txid_str(w, "last-transaction", t->last_txid);
		ow_i64(w, "last-time", t->last_created);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_node(struct ow *w, const struct graph *g, int i)
{
	const struct gnode *n = &g->nodes[i];

	ow_obj_open(w, NULL);
	ow_i64(w, "id", i);
	ow_str(w, "name", n->name);
	ow_str(w, "filename", n->path);
	ow_str(w, "format", n->format);
	if (n->dev) {
		ow_u64(w, "virtual-size", n->info.virtual_size);
		ow_u64(w, "actual-size", n->info.actual_size);
	}
	if (n->info.cluster_size)
		ow_u64(w, "cluster-size", n->info.cluster_size);
	ow_str(w, "backing-filename", n->backing_name);
	ow_str(w, "backing-filename-format", n->backing_fmt);
	ow_str(w, "full-backing-filename", n->backing_path);
	if (n->backing >= 0)
		ow_i64(w, "backing", n->backing);
	else
		ow_null(w, "backing");
	ow_arr_open(w, "children");
	for (int c = 0; c < n->nchildren; c++)
		ow_i64(w, NULL, n->children[c]);
	ow_close(w);
	ow_i64(w, "depth", n->depth);
	flag_list(w, n->flags);
	if (n->dev && !(n->flags & GN_ERROR)) {
		ow_bool(w, "dirty-flag", n->info.dirty);
		ow_bool(w, "corrupt", n->info.corrupt);
		ow_bool(w, "encrypted", n->info.encrypted);
		ow_u64(w, "snapshots", n->info.nb_snapshots);
	}
	ow_str(w, "error", n->error);
	struct_node_marks(w, g, i);
	ow_close(w);
}

static void struct_edges(struct ow *w, const struct graph *g)
{
	ow_arr_open(w, "edges");
	for (int i = 0; i < g->n; i++) {
		const struct gnode *n = &g->nodes[i];

		if (n->backing < 0)
			continue;
		ow_obj_open(w, NULL);
		ow_i64(w, "from", i);
		ow_i64(w, "to", n->backing);
		ow_str(w, "role", "backing");
		ow_str(w, "name", n->backing_name);
		ow_str(w, "path", n->backing_path);
		/* Offline backing link: read, tolerate only unchanged
		 * writes (bdrv_default_perms_for_cow). */
		emit_perm_list(w, "perm", PERM_BACKING_PERM);
		emit_perm_list(w, "shared", PERM_BACKING_SHARED);
		ow_close(w);
	}
	ow_close(w);
}

static void struct_users(struct ow *w, const struct graph *g)
{
	ow_arr_open(w, "users");
	for (int i = 0; i < g->nusers; i++) {
		const struct guser *u = &g->users[i];

		ow_obj_open(w, NULL);
		ow_str(w, "name", u->name);
		ow_str(w, "kind", u->user_kind);
		ow_str(w, "party", u->kind == PARTY_PROCESS ? "process" :
		       "user");
		if (u->node >= 0)
			ow_i64(w, "node", u->node);
		else
			ow_null(w, "node");
		ow_str(w, "image", u->image);
		emit_perm_list(w, "perm", u->perm);
		emit_perm_list(w, "shared", u->shared);
		if (u->kind == PARTY_PROCESS)
			ow_i64(w, "pid", u->pid);
		if (u->line)
			ow_i64(w, "line", u->line);
		ow_close(w);
	}
	ow_close(w);
}

static void emit_struct(FILE *f, const struct graph *g, enum out_fmt fmt)
{
	struct ow w;

	ow_init(&w, f, fmt);
	ow_obj_open(&w, NULL);
	ow_arr_open(&w, "pool");
	for (int i = 0; i < g->npool_paths; i++)
		ow_str(&w, NULL, g->pool_paths[i]);
	ow_close(&w);
	ow_str(&w, "users-file", g->users_file);
	ow_arr_open(&w, "nodes");
	for (int i = 0; i < g->n; i++)
		struct_node(&w, g, i);
	ow_close(&w);
	struct_edges(&w, g);
	struct_users(&w, g);
	struct_journals(&w, g);
	struct_trash(&w, g);
	ow_close(&w);
	ow_finish(&w);
}

void emit_tree(FILE *f, const struct graph *g, enum out_fmt fmt)
{
	if (fmt == OUT_HUMAN)
		emit_human(f, g);
	else
		emit_struct(f, g, fmt);
}
