/* commit_int.h - pieces of the commit engine shared by commit.c and
 * commit_check.c (not a public API). */
#ifndef IMGRAPH_COMMIT_INT_H
#define IMGRAPH_COMMIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/graph/chain.h"
#include "commit.h"
#include "lock_hold.h"
#include "journal.h"
#include "users_tx.h"
#include "formats/img.h"
#include "protect.h"
#include "stale.h"

#include <limits.h>
#include <time.h>

/* One file the commit holds for its whole run, locked as its role says
 * (core/plan/policy.h). */
struct commit_file {
	int node;                  /* graph node id */
	struct lock_hold lock;
};

/* The pool's directories and when each last changed (commit_watch.c). */
struct pool_watch {
	char **dirs;
	struct timespec *mt;
	int n;
	bool always;               /* -r: subdirectories change unseen */
	char *reader, *reads;      /* the new reader found, what it reads */
};
int pool_watch_init(struct pool_watch *w, const struct graph *g);
/* True when a directory changed since the last call (or always). */
bool pool_watch_changed(struct pool_watch *w);
void pool_watch_free(struct pool_watch *w);
/* One commit's run (commit.c, commit_live.c). */
struct commit_run {
	struct graph *g;
	const struct plan *p;
	const struct commit_opts *o;
	struct commit_result *res;
	struct commit_file *f;
	int nf;
	uint64_t txid;             /* the journal's, the stale and trash
				      records' */
	struct users_tx users;     /* read once, locked, during the relink */
	char jpath[PATH_MAX];
	struct chain *chain;
	struct img *base;
	int pull_lock;             /* a pull: its lock (pull_tx_lock) */
	struct protect_run prot;   /* --protect: base's other readers */
	struct stale_tx prot_tx;   /* --protect: its journal (the prot line
				      of this commit's stale transaction) */
	struct pool_watch watch;   /* new readers during the copy */
	uint64_t next_watch;       /* base offset of the next look */
};

/* A reader of base or of an intermediate that the plan's graph does not
 * have (created during the copy): -EBUSY naming it (kept in cr->watch).
 * at: the offset of base the copy stopped before, UINT64_MAX after the
 * copy, or COMMIT_AT_BYTES | n: n bytes copied in no fixed order (QEMU's
 * mirror, an active commit). */
#define COMMIT_AT_BYTES (1ull << 63)
int commit_new_readers(struct commit_run *cr, uint64_t at,
		       struct img_err *e);
/* The same message again for the reader found, with a later at (QEMU's
 * job copies on until its cancel takes effect). */
int commit_new_reader_err(const struct pool_watch *w, uint64_t at,
			  struct img_err *e);
/* The watch's cadence: done is the copy's progress; each 16 MiB of it,
 * and with polled (a job QEMU runs) at every call, the pool is scanned
 * when a directory changed. */
int commit_watch_step(struct commit_run *cr, uint64_t done, uint64_t at,
		      bool polled, struct img_err *e);

struct commit_file *commit_file_of(struct commit_run *cr, int node);
/* Report a phase; a callback asking to cancel sets the cancel flag. */
void commit_phase(const struct commit_opts *o, const char *name,
		  uint64_t done, uint64_t total);
/* The journal of the parents imgraph rewrites (not those QEMU relinks)
 * and the users file, with each parent's fd. */
int commit_build_journal(struct commit_run *cr, struct journal **out,
			 int **fds_out, struct img_err *e);
/* A process that opened a file of ours without QEMU's locks meanwhile:
 * -EBUSY. */
int commit_check_late_openers(struct commit_run *cr, struct img_err *e);
/* commit_live.c: the plan's live part: QEMU's block job copies and
 * relinks its own overlays, imgraph the offline parents, under one
 * journal.  Replaces the copy and the relink of an offline commit. */
int commit_live_run(struct commit_run *cr, struct img_err *e);

/* commit_live_virt.c: the libvirt domain's job (plan.live.domain). */
struct virt_conn;
int commit_virt_start(struct commit_run *cr, struct virt_conn *vc,
		      struct img_err *e);
/* Until the job took effect (an active one pivoted); *done its bytes. */
int commit_virt_wait(struct commit_run *cr, struct virt_conn *vc,
		     uint64_t *done, struct img_err *e);

/* Absolute path of path (realpath of the directory + last component, so a
 * symlink named by the user stays that name) into out. */
int commit_abs_path(const char *path, char *out, size_t outlen,
		    struct img_err *e);

/* Rescan the whole pool (plan_scan: the pool paths the plan's graph was
 * scanned from) and rebuild the plan for the same top/base: refuses when
 * the fresh plan has conflicts or a different set of parents,
 * intermediates or leaf handling. */
int commit_revalidate(const struct graph *g, const struct plan *p,
		      struct img_err *e);

/* After the locks: the opened chain must be top, the intermediates, base
 * (by dev:ino), and each layer's header must still name what the graph
 * read.  Returns the layer index of base in *nabove. */
int commit_check_chain(const struct graph *g, const struct plan *p,
		       struct chain *c, int *nabove, struct img_err *e);

/* commit_marks.c: the stale record of this commit (stale.h): PENDING
 * before base is first written, DONE once every parent names base.  Both
 * do nothing when the commit leaves nothing stale or unused. */
int commit_stale_begin(const struct graph *g, const struct plan *p,
		       uint64_t txid, const struct stale_tx *prot,
		       struct img_err *e);
/* --protect's journal (protect.h).  commit_prot_resume: what an earlier
 * run of the same commit recorded (same top and base, PENDING): t[i]
 * (node nodes[i]) gets its done when the record lists it, and cr->prot_tx
 * becomes the prot line the new transaction starts with (the listed
 * readers still protected, or every reader from 0).  commit_prot_record
 * is protect_run.record: every reader holds what is below done. */
int commit_prot_resume(struct commit_run *cr, struct protect_target *t,
		       const int *nodes, int n, struct img_err *e);
int commit_prot_record(void *cr, uint64_t done, struct img_err *e);
int commit_stale_done(const struct graph *g, const struct plan *p,
		      uint64_t txid, struct img_err *e);

/* commit_delete.c: --delete.  What the plan lists to move is checked
 * again on a fresh scan of the pool (by dev:ino: anything still reading
 * a file keeps it) and moved into the trash (trash.h), which re-checks
 * each file just before it moves.  Fills res->trash and res->deleted. */
int commit_delete_files(const struct graph *g, const struct plan *p,
			uint64_t txid, struct commit_result *res,
			struct img_err *e);

#endif
