/* emit_tree.c - the pool forest as text, JSON or YAML; see emit.h. */
#include "emit.h"
#include "core/graph/lock.h"
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
				lock_describe(u, buf, sizeof(buf)));
		else
			fprintf(f, "%*s  ^ user '%s' (%s): perm '%s', shares "
				"'%s'\n", ind, "", u->name, u->user_kind,
				perm_names(u->perm, p1, sizeof(p1)),
				perm_names(u->shared, p2, sizeof(p2)));
	}
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
	fputs(n->name, f);
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
		fprintf(f, "%*s  ! %s\n", ind, "", n->error);
	if (n->flags & GN_UNSAFE_PROBE)
		fprintf(f, "%*s  ! format %s was only probed (no reference "
			"records it, or a raw-disk name carries an image "
			"header): its backing file '%s' is not opened "
			"(CVE-2008-2004)\n", ind, "",
			n->format ? n->format : "?",
			n->backing_name ? n->backing_name : "");
	human_users(f, g, id, ind);
}

static void emit_human(FILE *f, const struct graph *g)
{
	int *stack, *dep, sp = 0;

	if (!g->n) {
		fprintf(f, "(no images in the pool)\n");
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
