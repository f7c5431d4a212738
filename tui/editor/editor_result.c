/* editor_result.c - what the editor says when a commit returns: done,
 * declined, failed or cancelled; after a cancel exactly which images
 * changed (base, and each intermediate reading through it) and which did
 * not; elapsed time, bytes and the copy's average rate (the meter's, as
 * the CLI's -p shows them), the phases run and the parents relinked. */
#include "editor_int.h"

#include "core/out/emit.h"

#include <errno.h>
#include <stdio.h>

#include "core/plan/plan.h"

/* The name a plan parent goes by: its image, or the users-file entry. */
static const char *parent_name(const struct editor *ed, int i)
{
	const struct plan_parent *pp = &ed->plan->parents[i];
	if (pp->node >= 0)
		return editor_label(ed, pp->node);
	if (pp->user >= 0 && pp->user < ed->g->nusers)
		return ed->g->users[pp->user].name;
	return pp->path ? pp->path : "?";
}

/* "a.qcow2, b.qcow2" of the plan's parents (nodes only when nodes). */
static void parent_list(FILE *f, const struct editor *ed)
{
	for (int i = 0; i < ed->plan->nparents; i++)
		fprintf(f, "%s%s", i ? ", " : "", parent_name(ed, i));
}

/* A cancel or failure before the relink: which images changed (base, and
 * every intermediate that reads through it) and which did not. */
static void cancel_text(FILE *f, const struct editor *ed, uint64_t bytes)
{
	const struct plan *p = ed->plan;
	char sz[16];
	if (!bytes) {
		fprintf(f, "Nothing was written into %s: no image changed.\n",
			editor_label(ed, p->base));
		return;
	}
	fprintf(f, "Changed: %s now holds %s of top's data, so its own "
		"guest view changed.\n", editor_label(ed, p->base),
		emit_size(bytes, sz, sizeof(sz)));
	if (p->ninter) {
		fprintf(f, "Changed: ");
		for (int i = 0; i < p->ninter; i++)
			fprintf(f, "%s%s", i ? ", " : "",
				editor_label(ed, p->inter[i]));
		fprintf(f, " read%s through %s, so %s view changed too "
			"(marked stale).\n", p->ninter == 1 ? "s" : "",
			editor_label(ed, p->base),
			p->ninter == 1 ? "its" : "their");
	}
	fprintf(f, "Unchanged: %s", editor_label(ed, p->top));
	if (p->nparents && p->leaf != PLAN_LEAF_KEEP) {
		fprintf(f, " and its parents (");
		parent_list(f, ed);
		fprintf(f, ")");
	}
	fprintf(f, " still read exactly what they read before: top's "
		"data shadows base there.\n");
}

/* Elapsed time, bytes and the copy's average rate, as the meter saw them. */
static void stats_text(FILE *f, const struct editor_job_snap *s, double t0)
{
	char sz[16], r[16], el[16], cp[16];
	double rate = progress_meter_rate(&s->m, s->t_end);
	double copy_s = (s->m.copy_t1 >= 0 ? s->m.copy_t1 : s->m.copy_t0) -
			s->m.copy_t0;
	unsigned e = (unsigned)(s->t_end - t0 + 0.5);
	snprintf(el, sizeof(el), "%u:%02u", e / 60, e % 60);
	unsigned c = (unsigned)(copy_s > 0 ? copy_s + 0.5 : 0);
	snprintf(cp, sizeof(cp), "%u:%02u", c / 60, c % 60);
	fprintf(f, "copied: %s in %s (average %s/s%s%s)\n",
		emit_size(s->res_bytes, sz, sizeof(sz)), cp,
		rate > 0 ? emit_size((uint64_t)rate, r, sizeof(r)) : "-",
		s->how ? ", by " : "", s->how ? s->how : "");
	fprintf(f, "elapsed: %s", el);
	if (s->m.paused >= 0.5)
		fprintf(f, " (%.0f s of it waiting for your answers)",
			s->m.paused);
	fprintf(f, "\nphases:");
	for (int i = 0; i < PROGRESS_NPHASES; i++)
		if (s->m.seen[i])
			fprintf(f, " %s", progress_phases[i]);
	fputc('\n', f);
}

void editor_result_text(FILE *f, const struct editor *ed,
			const struct editor_job_snap *s, const char **title)
{
	const struct plan *p = ed->plan;
	if (s->rc == -ECANCELED && p->pull) {
		/* A pull writes only into top, which already read all of
		 * it through its chain. */
		*title = "Pull cancelled";
		fprintf(f, "The pull was cancelled.  Every image is valid; "
			"%s holds part of what it read through its chain, so "
			"no guest view changed.\n", editor_label(ed, p->top));
	} else if (s->rc < 0 && !s->m.seen[progress_phase_index("relink")]) {
		*title = s->rc == -ECANCELED ? "Commit cancelled"
					     : "Commit failed";
		if (s->rc != -ECANCELED)
			fprintf(f, "error: %s\n\n", s->err.msg);
		else
			fprintf(f, "The commit was cancelled before the "
				"relink.  Every image is valid.\n\n");
		cancel_text(f, ed, s->res_bytes);
	} else if (s->rc < 0) {
		*title = "Commit failed";
		fprintf(f, "error: %s\n\nImages that stay in the graph keep "
			"their guest view; run 'imgraph recover' on the pool if "
			"a relink was interrupted.\n", s->err.msg);
	} else if (s->res_declined) {
		*title = "Commit done, relink declined";
		fprintf(f, "Base now holds top's data; the parents of top were "
			"NOT relinked and still read through top, so their "
			"guest view is unchanged.\n");
	} else if (p->pull) {
		*title = "Pull finished";
		fprintf(f, "ok: pulled into %s; it now reads %s directly, "
			"which was not written.\n", editor_label(ed, p->top),
			editor_label(ed, p->base));
	} else {
		*title = "Commit finished";
		fprintf(f, "ok: committed %s into %s.\n",
			editor_label(ed, p->top), editor_label(ed, p->base));
	}
	fputc('\n', f);
	stats_text(f, s, ed->t0);
	fprintf(f, "relinked: %d parent%s", s->res_relinked,
		s->res_relinked == 1 ? "" : "s");
	if (s->res_relinked) {
		fprintf(f, " (");
		parent_list(f, ed);
		fprintf(f, ") now read %s", editor_label(ed, p->base));
	}
	fputc('\n', f);
	if (s->res_deleted)
		fprintf(f, "deleted: %d file%s\n", s->res_deleted,
			s->res_deleted == 1 ? "" : "s");
}
