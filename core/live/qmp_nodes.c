/* qmp_nodes.c - where an image sits in a QEMU's block graph, and the
 * jobs it runs; see qmp.h.
 *
 * query-named-block-nodes lists every node with its driver and, for a
 * protocol node (drv "file"/"host_device"), the file name QEMU opened.
 * That name is matched to the image by dev:ino: an absolute name is
 * stat()ed; a relative one is resolved against the process's cwd, and,
 * since a daemonized QEMU has moved to "/", against the paths of its open
 * descriptors that are the image (the descriptor is matched by dev:ino;
 * only the relative name's tail is compared; a relative name that went
 * through a symlink cannot be told apart then, and is reported).
 * x-debug-query-block-graph gives the edges: the format node is the
 * protocol node's parent through "file"; walking up through "backing"
 * leads to the root, block-commit's "device".  A block-driver parent
 * reached through any other edge, or whose driver is a filter, is a
 * filter in the way.  A "block-job" node's edges name the nodes a job
 * holds.
 */
#include "qmp.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool is_protocol(const char *drv)
{
	return drv && (!strcmp(drv, "file") || !strcmp(drv, "host_device") ||
		       !strcmp(drv, "host_cdrom"));
}

static bool is_filter(const char *drv)
{
	static const char *const f[] = { "throttle", "copy-on-read",
		"commit_top", "mirror_top", "preallocate", "compress",
		"blkdebug", "blkverify", "blklogwrites", "copy-before-write",
		"snapshot-access", "quorum", "replication" };

	for (size_t i = 0; drv && i < sizeof(f) / sizeof(f[0]); i++)
		if (!strcmp(drv, f[i]))
			return true;
	return false;
}

static bool same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Does the descriptor link (an absolute path) end with the relative
 * name rel, at a component boundary? */
static bool tail_matches(const char *link, const char *rel)
{
	size_t ll = strlen(link), rl;

	while (!strncmp(rel, "./", 2))
		rel += 2;
	rl = strlen(rel);
	return rl && ll > rl && !strcmp(link + ll - rl, rel) &&
		link[ll - rl - 1] == '/';
}

/* A relative name of process pid: through its cwd, then through its
 * open descriptors of dev:ino. */
static bool rel_is_file(pid_t pid, const char *rel, dev_t dev, ino_t ino)
{
	char p[4200], link[4096];
	struct dirent *d;
	bool hit = false;
	DIR *dp;

	if (pid <= 0)
		return false;
	snprintf(p, sizeof(p), "/proc/%d/cwd/%s", (int)pid, rel);
	if (same_file(p, dev, ino))
		return true;
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	dp = opendir(p);
	if (!dp)
		return false;
	while (!hit && (d = readdir(dp))) {
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/fd/%s", (int)pid, d->d_name);
		if (!same_file(p, dev, ino))
			continue;
		n = readlink(p, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		hit = tail_matches(link, rel);
	}
	closedir(dp);
	return hit;
}

/* Is protocol node n the file dev:ino?  *lost set when n has a relative
 * name that resolves to no file at all. */
static bool node_is_file(pid_t pid, json_t *n, dev_t dev, ino_t ino,
			 bool *lost)
{
	const char *f = str(n, "file");
	char p[4200];
	struct stat st;

	if (!is_protocol(str(n, "drv")) || !f || !strncmp(f, "json:", 5))
		return false;
	if (f[0] == '/')
		return same_file(f, dev, ino);
	if (rel_is_file(pid, f, dev, ino))
		return true;
	snprintf(p, sizeof(p), "/proc/%d/cwd/%s", (int)pid, f);
	if (stat(p, &st) < 0)
		*lost = true;
	return false;
}

static json_t *named(json_t *nodes, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes, i, n)
		if (name && str(n, "node-name") &&
		    !strcmp(str(n, "node-name"), name))
			return n;
	return NULL;
}

/* The graph: node id by name, and walking parents. */
struct graph_q {
	json_t *nodes, *edges;     /* borrowed from the reply */
};

static json_t *gnode_by_name(const struct graph_q *g, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(g->nodes, i, n)
		if (str(n, "type") && !strcmp(str(n, "type"), "block-driver") &&
		    str(n, "name") && !strcmp(str(n, "name"), name))
			return n;
	return NULL;
}

static json_t *gnode_by_id(const struct graph_q *g, json_int_t id)
{
	size_t i;
	json_t *n;

	json_array_foreach(g->nodes, i, n)
		if (json_integer_value(json_object_get(n, "id")) == id)
			return n;
	return NULL;
}

static int set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
	return (s && !*dst) ? -ENOMEM : 0;
}

/* Does a block-job hold an edge to graph node id?  Its name, else NULL. */
static const char *job_on(const struct graph_q *g, json_int_t id)
{
	size_t i;
	json_t *ed;

	json_array_foreach(g->edges, i, ed) {
		json_t *p;

		if (json_integer_value(json_object_get(ed, "child")) != id)
			continue;
		p = gnode_by_id(g, json_integer_value(json_object_get(ed,
								      "parent")));
		if (p && str(p, "type") && !strcmp(str(p, "type"), "block-job"))
			return str(p, "name");
	}
	return NULL;
}

/* One step up from graph node id: the first block-driver parent (*edge
 * its edge's name), or NULL at the root.  *bb set when a block-backend
 * is a parent; *bb_name to a named one. */
static json_t *parent_of(const struct graph_q *g, json_int_t id,
			 const char **edge, bool *bb, const char **bb_name)
{
	json_t *up = NULL, *ed;
	size_t i;

	json_array_foreach(g->edges, i, ed) {
		json_t *p;
		const char *t;

		if (json_integer_value(json_object_get(ed, "child")) != id)
			continue;
		p = gnode_by_id(g, json_integer_value(json_object_get(ed,
								      "parent")));
		t = p ? str(p, "type") : NULL;
		if (t && !strcmp(t, "block-backend")) {
			*bb = true;
			if (str(p, "name") && str(p, "name")[0])
				*bb_name = str(p, "name");
		} else if (t && !strcmp(t, "block-driver") && !up) {
			up = p;
			*edge = str(ed, "name");
		}
	}
	return up;
}

/* From node up to the root: depth, filter, job, root, backend name. */
static int walk_up(const struct graph_q *g, json_t *nodes, json_t *gn,
		   struct qmp_node_info *o, bool *bb, const char **bb_name)
{
	size_t guard = json_array_size(g->nodes);
	int r = 0;

	for (;;) {
		json_int_t id = json_integer_value(json_object_get(gn, "id"));
		const char *edge = NULL, *job = job_on(g, id);
		json_t *up;

		if (job && !o->job)
			r = set_str(&o->job, job);
		*bb = false;
		*bb_name = NULL;
		up = parent_of(g, id, &edge, bb, bb_name);
		if (!up || !guard-- || r < 0)
			return r < 0 ? r : set_str(&o->root, str(gn, "name"));
		if (edge && !strcmp(edge, "backing") &&
		    !is_filter(str(named(nodes, str(up, "name")), "drv"))) {
			o->depth++;
		} else if (!o->filter) {
			char f[300];

			snprintf(f, sizeof(f), "%s (%s)", str(up, "name"),
				 str(named(nodes, str(up, "name")), "drv") ?
				 str(named(nodes, str(up, "name")), "drv") : "?");
			if ((r = set_str(&o->filter, f)) < 0)
				return r;
		}
		gn = up;
	}
}

/* What uses the root: a named BlockBackend, a device (query-block), an
 * export (query-block-exports), or nothing but the monitor. */
static int find_backend(struct qmp *q, struct qmp_node_info *o, bool bb,
			const char *bb_name, struct img_err *e)
{
	json_t *v = NULL, *x;
	size_t i;
	int r;

	o->backend_kind = bb ? "device" : "monitor";
	if (bb_name)
		return set_str(&o->backend, bb_name);
	if (!bb)
		return 0;
	r = qmp_exec(q, "query-block", NULL, &v, 0, e);
	if (r < 0)
		return r;
	json_array_foreach(v, i, x) {
		json_t *in = json_object_get(x, "inserted");

		if (str(in, "node-name") && !strcmp(str(in, "node-name"), o->root)) {
			r = set_str(&o->backend, str(x, "qdev") ? str(x, "qdev") :
				    str(x, "device"));
			json_decref(v);
			return r;
		}
	}
	json_decref(v);
	v = NULL;
	/* Older QEMUs have no query-block-exports: then it stays unnamed. */
	if (qmp_exec(q, "query-block-exports", NULL, &v, 0, NULL) < 0)
		return 0;
	json_array_foreach(v, i, x)
		if (str(x, "node-name") && !strcmp(str(x, "node-name"), o->root)) {
			o->backend_kind = "export";
			r = set_str(&o->backend, str(x, "id"));
			break;
		}
	json_decref(v);
	return r;
}

static int locate(struct qmp *q, json_t *nodes, json_t *graph,
		  const char *file_node, struct qmp_node_info *o,
		  struct img_err *e)
{
	struct graph_q g = { json_object_get(graph, "nodes"),
			     json_object_get(graph, "edges") };
	json_t *gn = gnode_by_name(&g, file_node), *up, *nn;
	const char *edge = NULL, *bb_name = NULL;
	bool bb = false;
	int r;

	if (!gn)
		return err_set(e, EPROTO, "QMP: node '%s' is missing from the "
			       "block graph", file_node);
	up = parent_of(&g, json_integer_value(json_object_get(gn, "id")),
		       &edge, &bb, &bb_name);
	if (up && edge && !strcmp(edge, "file") &&
	    !is_filter(str(named(nodes, str(up, "name")), "drv")))
		gn = up;
	nn = named(nodes, str(gn, "name"));
	o->ro = json_is_true(json_object_get(nn, "ro"));
	if ((r = set_str(&o->file_node, file_node)) < 0 ||
	    (r = set_str(&o->node, str(gn, "name"))) < 0 ||
	    (r = set_str(&o->drv, str(nn, "drv"))) < 0 ||
	    (r = walk_up(&g, nodes, gn, o, &bb, &bb_name)) < 0)
		return err_set(e, -r, "QMP: out of memory");
	return find_backend(q, o, bb, bb_name, e);
}

int qmp_find_node(struct qmp *q, dev_t dev, ino_t ino,
		  struct qmp_node_info *out, struct img_err *e)
{
	json_t *nodes = NULL, *graph = NULL, *n, *hit = NULL;
	json_t *args = json_pack("{s:b}", "flat", 1);
	bool lost = false;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if (!args)
		return err_set(e, ENOMEM, "QMP: out of memory");
	r = qmp_exec(q, "query-named-block-nodes", args, &nodes, 0, e);
	json_decref(args);
	json_array_foreach(r == 0 ? nodes : NULL, i, n) {
		if (!hit && node_is_file(qmp_pid(q), n, dev, ino, &lost))
			hit = n;
	}
	if (r == 0 && !hit)
		r = err_set(e, ENOENT, "QMP: no block node of PID %d has the "
			    "image (dev %lu, inode %lu) open%s", (int)qmp_pid(q),
			    (unsigned long)dev, (unsigned long)ino, lost ?
			    " (some nodes name their files relative to a "
			    "working directory the process has left)" : "");
	if (r == 0)
		r = qmp_exec(q, "x-debug-query-block-graph", NULL, &graph, 0,
			     e);
	if (r == 0)
		r = locate(q, nodes, graph, str(hit, "node-name"), out, e);
	json_decref(nodes);
	json_decref(graph);
	if (r < 0)
		qmp_node_info_free(out);
	return r;
}

void qmp_node_info_free(struct qmp_node_info *n)
{
	free(n->file_node);
	free(n->node);
	free(n->drv);
	free(n->root);
	free(n->backend);
	free(n->filter);
	free(n->job);
	memset(n, 0, sizeof(*n));
}

int qmp_query_jobs(struct qmp *q, struct qmp_job **out, int *n,
		   struct img_err *e)
{
	json_t *v = NULL, *x;
	struct qmp_job *jv;
	size_t i;
	int r = qmp_exec(q, "query-jobs", NULL, &v, 0, e);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	jv = calloc(json_array_size(v) + 1, sizeof(*jv));
	if (!jv) {
		json_decref(v);
		return err_set(e, ENOMEM, "QMP: out of memory");
	}
	json_array_foreach(v, i, x) {
		struct qmp_job *j = &jv[i];

		if (set_str(&j->id, str(x, "id")) < 0 ||
		    set_str(&j->type, str(x, "type")) < 0 ||
		    set_str(&j->status, str(x, "status")) < 0 ||
		    set_str(&j->error, str(x, "error")) < 0)
			r = -ENOMEM;
		j->current = json_integer_value(json_object_get(x,
							"current-progress"));
		j->total = json_integer_value(json_object_get(x,
							"total-progress"));
	}
	json_decref(v);
	if (r < 0) {
		qmp_jobs_free(jv, (int)i);
		return err_set(e, ENOMEM, "QMP: out of memory");
	}
	*out = jv;
	*n = (int)i;
	return 0;
}

void qmp_jobs_free(struct qmp_job *v, int n)
{
	for (int i = 0; v && i < n; i++) {
		free(v[i].id);
		free(v[i].type);
		free(v[i].status);
		free(v[i].error);
	}
	free(v);
}
