/* editor_int.h - internals shared by the editor's own files (not its
 * public API: the rest of the program calls editor.h). */
#ifndef IMGRAPH_EDITOR_INT_H
#define IMGRAPH_EDITOR_INT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "formats/io/err.h"
#include "core/commit/progress.h"
#include "core/graph/graph.h"
#include "editor.h"
#include "ui.h"

/* Cluster map of node id (chain opened read-only); returns an owned map
 * (cmap_free) whose error[] says why when it could not be built; NULL only
 * when out of memory. */
struct cmap *editor_cmap(const struct graph *g, int id, int nregions);

/* Info text of node id (the image re-read through its driver), malloc'd. */
char *editor_info_text(const struct graph *g, int id);

/* The commit worker (editor_commit.c).  Ownership: editor_job_start
 * returns a job freed by editor_job_join (which waits for it); g and p are
 * borrowed and must not be used by the caller until the join. */
struct plan;
struct editor_job;
struct editor_job_snap {
	char phase[24];
	const char *how;           /* how the copy moves bytes (static), or NULL */
	char job[96];              /* a live commit: "QEMU job ID: status" */
	char layer[1024];          /* path of the image being read, or "" */
	struct progress_meter m;   /* fed by the worker on every report */
	double t_end;              /* editor_now() when the commit returned */
	uint64_t done, total;
	unsigned seq;              /* changes on every update */
	bool asking;               /* worker waits for editor_job_answer */
	bool finished;
	int rc;                    /* commit_execute's return */
	uint64_t res_bytes;
	int res_relinked, res_deleted;
	bool res_declined;
	struct img_err err;
};
int editor_job_start(struct editor_job **out, struct graph *g,
		     const struct plan *p, uint64_t rate, struct img_err *e);
void editor_job_snapshot(struct editor_job *j, struct editor_job_snap *s);
void editor_job_answer(struct editor_job *j, bool yes);
void editor_job_cancel(struct editor_job *j);
/* A question is open (on) or closed: the worker waits at its next
 * report meanwhile, and the time does not count in rate and ETA. */
void editor_job_hold(struct editor_job *j, bool on);
/* Seconds on the monotonic clock the meter runs on. */
double editor_now(void);
void editor_job_join(struct editor_job *j);

/* The pool tree around base as it will look after the relink (top and
 * intermediates gone, parents of top under base), malloc'd. */
char *editor_after_text(const struct graph *g, const struct plan *p,
			bool utf8);

/* ---- the editor's state (editor.c, editor_flow.c) ---- */
/* Regions of a cluster map (detail strip and map screen). */
#define MAP_REGIONS 4096

enum question { Q_NONE, Q_COMMIT, Q_RELINK, Q_CANCEL, Q_FINISH,
		Q_ROLLBACK };

struct editor {
	struct ui_state st;
	struct canvas cv;
	struct graph *g;           /* owned */
	char *const *paths;        /* the options', or paths_owned */
	char **paths_owned;        /* the pool once widened (ours), or NULL */
	int npaths;
	/* Directories a plan needed scanned beyond the PATHs (owned). */
	char **extra;
	int nextra;
	struct scan_opts so;
	/* so.stated: the options' statements and, last, --base-format's
	 * for the base of the pair (base_stated, owned), once known. */
	struct fmt_stated *stated;
	int nstated_opt;
	const char *base_format;
	char *base_stated;
	/* The plan options from the command line. */
	bool base_is_raw;
	char *const *ignore_unverified;
	int nignore_unverified;
	bool mouse;
	uint64_t rate;
	bool pull;                 /* the plan asked for is a pull */
	enum question q;
	struct plan *plan;         /* the plan a running commit executes */
	struct editor_job *job;
	struct editor_job_snap snap;
	char *after_text;          /* the plan text shown before relinking */
	double t0;
	bool map_stale;
	bool quit_after_job;
};

/* The name the tree shows for node id (the pool's directory stripped). */
static inline const char *editor_label(const struct editor *ed, int id)
{
	return rows_label(&ed->st.rows, id);
}

void editor_scan(struct editor *ed);
/* Build the selection's cluster map if it is not current. */
void editor_update_map(struct editor *ed);
/* After t/b: say whether the pair can be committed, or why not. */
void editor_validate_marks(struct editor *ed);
/* Show text (malloc'd, taken over) as a scrollable screen. */
void editor_show_text(struct editor *ed, const char *title, char *text);
/* The plan screen; for_commit also asks the first y/N question. */
void editor_show_plan(struct editor *ed, bool for_commit);
/* Mirror the worker into the view-model; joins it when finished. */
void editor_poll_job(struct editor *ed);
/* The result of the commit ed->plan ran (s: the worker's last state),
 * written to f; *title gets the screen's title.  The graph must be the
 * editor's again (the worker joined). */
void editor_result_text(FILE *f, const struct editor *ed,
			const struct editor_job_snap *s, const char **title);
/* The answer to the open y/N question. */
void editor_answer(struct editor *ed, bool yes);

/* The unfinished relink screen (editor_journal.c): what the first journal
 * of the pool holds, and what finishing or rolling it back would do. */
void editor_show_journal(struct editor *ed);
/* After the y/N: recover it as `imgraph recover [--rollback]` does,
 * rescan, and show the outcome. */
void editor_recover(struct editor *ed, bool rollback);

/* The plan as `imgraph plan` prints it (core/out/emit.h), malloc'd. */
char *editor_plan_text(const struct graph *g, const struct plan *p);
/* The plan screen (editor_plan.c): the summary in plain words, then the
 * conflicts of a plan that cannot run, or the after-graph and the plan's
 * text; names relative to the pool (as r labels them).  malloc'd. */
char *editor_plan_screen(const struct graph *g, const struct plan *p,
			 const struct rows *r, bool utf8);
/* text with the pool's directory dropped from every name (said once, on
 * a first line), as the plan screen shows names; malloc'd. */
char *editor_relative_text(const struct graph *g, const struct rows *r,
			   const char *text);

#endif
