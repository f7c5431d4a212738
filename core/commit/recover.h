/* recover.h - finish or roll back an interrupted relink (imgraph recover).
 *
 * Three layers, so that the fuzzer can drive the decision logic without
 * touching files:
 *   recover_classify*  pure: what state a parent header / the users file is
 *                      in, given the bytes read from disk;
 *   recover_plan       pure: the list of actions for a parsed journal and
 *                      those classes; never plans a write when anything is
 *                      FOREIGN/MISSING or the journal is inconsistent;
 *   recover_journal / recover_paths   execute, under QEMU-protocol locks.
 *
 * Every action is idempotent and the journal changes state only by atomic
 * rename, so a crash inside recovery is recovered by running it again.
 */
#ifndef IMGRAPH_RECOVER_H
#define IMGRAPH_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"
#include "journal.h"

enum rec_class {
	REC_OLD,                   /* range holds OLD, the rest unchanged */
	REC_NEW,                   /* range holds NEW, the rest unchanged */
	REC_TORN,                  /* each sector OLD or NEW, a mix */
	REC_FOREIGN,               /* something else changed: do not touch */
	REC_MISSING,               /* file gone or another file at the path */
};
const char *rec_class_name(enum rec_class c);

/* cur: the first cur_len bytes of the parent file (cur_len < hdr_len when
 * the file is shorter).  same_file: dev:ino match the journal. */
enum rec_class recover_classify(const struct journal_parent *p,
				const uint8_t *cur, size_t cur_len,
				bool same_file);
/* exists false: the users file is missing. */
enum rec_class recover_classify_users(const struct journal_users *u,
				      const uint8_t *cur, size_t len,
				      bool exists);

enum rec_action_kind {
	RA_WRITE_PARENT,           /* parent[index] range <- NEW or OLD */
	RA_WRITE_USERS,            /* users file <- NEW or OLD content */
	RA_MARK_RELINKED,          /* journal state -> RELINKED */
	RA_EMPTY_TOP,              /* make top empty (it names base now) */
	RA_REMOVE_JOURNAL,
};

struct rec_action {
	enum rec_action_kind kind;
	int index;                 /* RA_WRITE_PARENT */
	bool to_new;               /* write NEW (roll forward) or OLD */
};

struct rec_plan {
	struct rec_action *v;      /* owned; recover_plan_free */
	int n;
	bool blocked;              /* nothing may be written; see why */
	char why[512];
};

/* pcls[i] classifies j->parents[i] (j->nparents entries); ucls the users
 * file (ignored when the journal has none).  Fills *out; returns 0 even
 * when blocked (out->blocked), -EINVAL for an inconsistent journal (then no
 * actions), -ENOMEM. */
int recover_plan(const struct journal *j, const enum rec_class *pcls,
		 enum rec_class ucls, bool rollback, struct rec_plan *out,
		 struct img_err *e);
void recover_plan_free(struct rec_plan *p);

/* ---- execution --------------------------------------------------------- */

enum rec_outcome {
	REC_DONE_FORWARD,          /* every parent names the new base */
	REC_DONE_ROLLBACK,         /* every parent names top again */
	REC_SET_ASIDE,             /* invalid/foreign journal renamed .bad */
	REC_BLOCKED,               /* foreign change or in use: left alone */
	REC_FAILED,                /* I/O error; journal kept */
};

struct rec_item {
	char *journal;             /* path (owned) */
	enum rec_outcome outcome;
	int parents;               /* parents in the journal */
	int written;               /* writes performed */
	int torn;                  /* parent headers found TORN */
	char msg[1024];
};

/* A protected commit that stopped during its copy (recover_prot.c):
 * nothing to do, reported. */
struct rec_prot {
	char *record;              /* the stale record holding its journal */
	char *base, *top;
	uint64_t done;             /* every reader listed holds what the
				      copy writes below this */
	int nreaders;
};

struct rec_report {
	struct rec_item *v;        /* owned; recover_report_free */
	int n;
	struct rec_prot *prot;     /* owned */
	int nprot;
	int stale_tmp_removed;     /* io_replace temporaries of dead writers */
};
void recover_report_free(struct rec_report *r);

/* Recover one journal file.  Returns 0 when the outcome is DONE_* or
 * SET_ASIDE, -errno otherwise (item->msg and e say why). */
int recover_journal(const char *jpath, bool rollback, struct rec_item *item,
		    struct img_err *e);

/* A journal with a live record (a QEMU's block job did the copy): which
 * way it goes, *forward, after ending the job if it still runs
 * (recover_live.c).  -EBUSY with why filled when it cannot be decided
 * now (the monitor is busy, the overlays disagree). */
int recover_live_direction(const struct journal *j, bool *forward,
			   char *why, size_t wlen);

/* Find journals in the directories of paths (files: their directory) and
 * recover each.  npaths == 0 means ".".  Returns 0 when every journal was
 * finished or set aside, else the first -errno (all were attempted). */
int recover_paths(char *const *paths, int npaths, bool rollback,
		  struct rec_report *rep, struct img_err *e);

/* The journals of protected commits stopped during their copy in dir
 * (stale records beside their base), into rep->prot. */
int recover_prot_scan(const char *dir, struct rec_report *rep,
		      struct img_err *e);

/* What recovering jpath (a journal in directory dir) would do, before
 * anything is written: the journal, each parent's header as it is now
 * (recover_classify, read without locks) and, for finishing and for
 * rolling back, what recover_plan would write or why it refuses.  Human
 * text, names escaped; *text is malloc'd (recover_show.c).  -errno with e
 * filled when the journal cannot be read. */
int recover_describe(const char *jpath, const char *dir, char **text,
		     struct img_err *e);

#endif
