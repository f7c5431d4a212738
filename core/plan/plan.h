/* plan.h - the commit plan: the one object both front ends show.
 *
 * plan_build looks at the graph and answers, before anything is written:
 * what is copied, which parents of top are relinked (old -> new backing
 * string and format), and every conflict.  A plan with conflicts is never
 * executed.  Ownership: plan_build returns an owned plan freed by plan_free.
 */
#ifndef IMGRAPH_PLAN_H
#define IMGRAPH_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/graph/graph.h"

enum conflict_kind {
	CONFLICT_PERMISSION,       /* QEMU permission conflict */
	CONFLICT_LOCK,             /* live OFD lock holder */
	CONFLICT_RELINK,           /* a parent cannot be relinked */
	CONFLICT_IMAGE_STATE,      /* corrupt, dirty, encrypted, snapshots... */
	CONFLICT_SPACE,            /* not enough free space */
	CONFLICT_INVALID_PAIR,     /* top == base, base not below top ... */
	CONFLICT_FORMAT,           /* unrecorded/probed format on the path */
	CONFLICT_JOURNAL,          /* an unfinished relink: recover first */
	CONFLICT_STALE,            /* a stale or unused image in the chain */
	CONFLICT_LIVE,             /* the live part cannot run (QEMU too
				      old, nodes not found, a filter or a
				      job in the way, --offline) */
	CONFLICT_UNVERIFIED,       /* a pool image whose backing file is
				      unknown (GN_UNVERIFIED) */
	CONFLICT_PROTECT,          /* --protect: a reader it cannot protect */
};

struct plan_conflict {
	enum conflict_kind kind;
	int node;                  /* node id concerned, or -1 */
	char *parties;             /* who is involved, human text */
	uint8_t perms;             /* permission bits concerned (or 0) */
	char *message;             /* QEMU wording where one exists */
	char *why;                 /* one line, plain language */
	char *hint;                /* one line: how to fix */
};

struct plan_parent {
	int node;                  /* overlay node id, or -1 for a user */
	int user;                  /* index in graph->users, or -1 */
	char *path;                /* file whose header is rewritten */
	char *old_name, *old_fmt;  /* current backing string and format */
	char *new_name, *new_fmt;  /* after the relink */
	bool relative;
	bool feasible;
	/* The process of the plan's live part has this overlay open: its
	 * own block job rewrites the header (QEMU's block-commit relinks
	 * every parent of top in its graph); imgraph relinks the others
	 * offline. */
	bool live;
	char *live_node;           /* its node name there */
};

/* The part of a commit that runs inside a running process (issue 17):
 * a QEMU with a QMP monitor holds top's chain and runs block-commit
 * itself.  job PLAN_LIVE_NONE: the commit runs offline. */
enum plan_live_job {
	PLAN_LIVE_NONE,
	PLAN_LIVE_COMMIT,          /* top has overlays in the process:
				      commit of an intermediate */
	PLAN_LIVE_ACTIVE,          /* top is the process's active image:
				      active commit, then pivot to base */
};

struct plan_live {
	enum plan_live_job job;
	const char *via;           /* "qmp" or "libvirt" (static) */
	pid_t pid;
	char comm[32];
	char *qmp;                 /* its monitor socket (qmp) */
	char *domain, *disk;       /* libvirt: the domain and its disk */
	char *qemu_version;        /* "7.2.22" */
	char *device;              /* block-commit's device: root node
				      (libvirt: the disk target) */
	const char *backend_kind;  /* "device", "export", "monitor" */
	char *backend;             /* what uses the root, or NULL */
	char *top_node, *base_node;
	char **inter_nodes;        /* plan.ninter entries */
	/* block-commit's backing-file (PLAN_LIVE_COMMIT): the name the
	 * offline relink writes into the same overlays (relative stays
	 * relative); NULL for an active commit. */
	char *backing_file;
};

/* A top without parents (a leaf), decided once, here: every user of the
 * plan reads plan.leaf. */
enum plan_leaf {
	PLAN_LEAF_NONE,            /* top has parents: they are relinked */
	PLAN_LEAF_KEEP,            /* kept, relinked onto base and emptied
				      (qemu-img commit's way); it is listed
				      among the parents as its own */
	PLAN_LEAF_DROP,            /* --drop-top: left as it is */
};

/* A pool path the plan's graph was scanned from, absolute. */
struct plan_scanned {
	char *path;
	bool dir;                  /* a directory (else a file named alone) */
};

/* A file --delete would move into the trash (or keep, and why). */
struct plan_trash {
	int node;
	bool moves;
	char *why;                 /* when it stays: who still reads it */
};

struct plan_opts {
	bool drop_top;             /* leaf top: drop it instead of relinking */
	bool delete_files;         /* list what --delete moves to the trash */
	bool skip_bytes;           /* do not open the chain to count bytes
				      (bytes_to_copy = file-size bound) */
	bool offline;              /* refuse a plan that needs a live part */
	const char *qmp;           /* QMP socket of top's holder, when its
				      command line does not say (--qmp) */
	/* --base-is-raw: base is recorded raw and its bytes carry another
	 * format's signature; commit into it anyway. */
	bool base_is_raw;
	/* --ignore-unverified FILE...: these unverified readers are known
	 * not to read the chain. */
	char *const *ignore_unverified;
	int nignore_unverified;
	bool pull;                 /* flatten the other way: the data between
				      top and base into top, then top onto
				      base (plan_pull.h) */
	bool protect;              /* --protect: copy base's old data into
				      its other readers first
				      (plan_protect.h) */
};

struct plan_pull;                  /* plan_pull.h */

struct plan {
	int top, base;
	int *inter;                /* intermediates, top-down, excluding both */
	int ninter;
	struct plan_parent *parents;
	int nparents;
	struct plan_conflict *conflicts;
	int nconflicts;
	enum plan_leaf leaf;
	uint64_t bytes_to_copy;    /* allocated above base */
	uint64_t base_old_size, base_new_size;
	uint64_t free_space;       /* on base's file system */
	bool bytes_exact;          /* bytes_to_copy from block status (else
				      an upper bound from file sizes) */
	bool base_grows;           /* base_new_size > base_old_size */
	/* Bytes base's file system must have free: the copied ranges on
	 * base's cluster grid plus the metadata they may need (an upper
	 * bound; compared with free_space). */
	uint64_t space_needed;
	/* What the graph was scanned from: readers of these images outside
	 * these directories cannot be seen. */
	struct plan_scanned *scanned;
	int nscanned;
	bool scanned_recursive;
	/* --delete (plan_opts.delete_files): top unless kept, the
	 * intermediates, and what earlier commits into base left unused. */
	struct plan_trash *trash;
	int ntrash;
	/* How each layer above base (top, then inter[] in order) moves its
	 * data into base, the method tried first (enum io_copy_how of
	 * formats/io/io.h, from copy_predict); -1 unknown (bytes not
	 * counted).  Per run a copy may still fall back (compressed data).
	 * ninter + 1 entries, owned. */
	int *copy_how;
	/* The part a running QEMU does (job PLAN_LIVE_NONE: none). */
	struct plan_live live;
	/* What each layer above base (top, then inter[] in order) gives
	 * base: the bytes where it is the top-most layer with data or zeros,
	 * and over PLAN_MAP_CELLS equal cells of top's virtual disk the
	 * share (0..1) of each cell it gives, layer_cells[i * PLAN_MAP_CELLS
	 * + cell].  Both NULL when the bytes were not counted
	 * (bytes_exact false).  The teaching view shows these. */
	uint64_t *layer_bytes;
	float *layer_cells;
	/* The overrides of plan_opts the plan was built with, owned, so that
	 * the commit's re-check on a fresh scan applies the same ones. */
	bool base_is_raw;
	char **ignore_unverified;
	int nignore_unverified;
	/* A pull (plan_opts.pull): its numbers (plan_pull.h); NULL for a
	 * commit.  The relink is parents[0], top itself. */
	struct plan_pull *pull;
	/* A commit refused because base has other readers: the pull of the
	 * same pair, so that the plan shows both strategies; else NULL. */
	struct plan *alt_pull;
	/* Base's other readers (plan_protect.h): NULL for a plan that
	 * analysed no pair; protected only when protect->on.  Owned. */
	struct plan_protect *protect;
};

#define PLAN_MAP_CELLS 256

/* --delete's one rule, for the plan and for the commit's re-check on a
 * fresh scan: a candidate (cand[i], going[cand[i]] true on entry) that
 * anything staying in g still reads - an overlay that is not going and
 * whose link the commit does not rewrite (moved[], NULL for none), a
 * users-file entry (those of top are repointed), a live lock - stays
 * (going false), until nothing changes.  why[i] (why may be NULL) gets a
 * malloc'd "read by ..." for each candidate that stays.  -ENOMEM only. */
int plan_trash_settle(const struct graph *g, int top, const int *cand,
		      int ncand, bool *going, const bool *moved, char **why);

/* True when holder pid on node is the plan's live process using a file
 * of its own part (its locks are the live part's business, not a
 * conflict). */
bool plan_live_covers(const struct plan *p, pid_t pid, int node);

/* True when the plan may run (no conflicts and a valid pair). */
bool plan_runnable(const struct plan *p);

/* base = -1: top's immediate backing file (as qemu-img commit).  top = -1
 * (not in the pool) gives a plan whose only conflict says so; so does a
 * base >= g->n (a file that exists but is not in the pool).  Returns
 * -errno (e filled with the cause) only for failures of our own: out of
 * memory, or the scan of /proc for processes that have an image open;
 * every problem of the images is a conflict in the plan.  Nothing is
 * written; images are opened read-only to count bytes and to test-fit new
 * headers. */
int plan_build(struct graph *g, int top, int base, const struct plan_opts *o,
	       struct plan **out, struct img_err *e);
void plan_free(struct plan *p);

/* What plan_scan is asked: a commit of top into base over the pool PATHs. */
struct plan_request {
	char *const *paths;        /* PATHs as given; may be empty */
	int npaths;
	const struct scan_opts *scan;
	const char *top;           /* an existing file */
	const char *base;          /* an existing file, or NULL: top's backing
				      file */
	const struct plan_opts *plan;
	/* --base-format: base's format, stated (scan_opts.stated) for base
	 * or, without base, for the file top's header names; NULL: none. */
	const char *base_format;
};

/* The whole pool, always: scan the PATHs and the directories of top and
 * base, build the plan, and while it can run scan again with the
 * directories of the intermediates and of every parent added until they
 * are all scanned, so that the plan sees every image that reads through
 * the chain and every parent of top, whatever PATHs were given.  A top or base outside the
 * pool gives the plan of plan_build.  Returns 0 with *g and *p owned by
 * the caller, or -errno with e filled (scan errors, plan_build's). */
int plan_scan(const struct plan_request *rq, struct graph **g,
	      struct plan **p, struct img_err *e);

/* The directories the runnable plan p needs scanned that g was not
 * scanned from (none: p saw the whole pool, or cannot run).  *dirs and its strings are malloc'd
 * (caller frees).  -ENOMEM. */
int plan_pool_missing(const struct graph *g, const struct plan *p,
		      char ***dirs, int *n);
const char *conflict_kind_name(enum conflict_kind k);

/* ---- the plan in plain words (plan_words.c) ---------------------------- */

/* What a runnable plan does to an image, from its role (policy.h). */
enum plan_fx {
	PLAN_FX_NONE,              /* untouched: what it shows stays */
	PLAN_FX_TAKES_DATA,        /* base: takes top's data, its view changes */
	PLAN_FX_READS_BASE,        /* a parent of top, relinked: view stays */
	PLAN_FX_KEPT,              /* leaf top kept, emptied: view stays */
	PLAN_FX_STALE,             /* an intermediate: its view changes */
	PLAN_FX_UNUSED,            /* top: nothing reads it any more */
	PLAN_FX_DROPPED,           /* leaf top with --drop-top */
	PLAN_FX_PROTECTED,         /* --protect: gets base's old data where
				      it reads it, still reads base */
	PLAN_FX_PULLED,            /* pull: top takes the data between, then
				      reads base: view stays */
	PLAN_FX_NOT_WRITTEN,       /* pull: base is only read */
};
enum plan_fx plan_effect(const struct plan *p, int id);
/* "left stale - its view changes" and so on ("view": what a guest reading
 * the image sees). */
const char *plan_effect_words(enum plan_fx fx);

/* How a front end names node id (NULL: the node's name). */
typedef const char *(*plan_label_fn)(const void *ctx, const struct graph *g,
				     int id);
/* One line in plain words, into buf: "base.qcow2 will take top's data;
 * vm-web.qcow2 and vm-db.qcow2 will read base.qcow2; mid.qcow2 will be left
 * stale; top.qcow2 will be left unused (nothing reads it); what every other
 * image shows stays", or for a plan that cannot run, that it cannot and
 * how many conflicts it has.  Returns buf. */
const char *plan_summary(const struct graph *g, const struct plan *p,
			 plan_label_fn label, const void *ctx, char *buf,
			 size_t len);

#endif
