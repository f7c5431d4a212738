/* editor_journal.c - an unfinished relink in the editor: the screen that
 * says so (opened first when the pool has one), what finishing and
 * rolling back would do (recover_describe), and doing it with the same
 * function as `imgraph recover` (recover_journal), then a rescan. */
#include "editor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/commit/recover.h"
#include "core/graph/marks.h"

/* The journal the screen is about: the pool's first. */
static const struct gmark_journal *first_journal(const struct editor *ed)
{
	const struct graph_marks *m = ed->g ? ed->g->marks : NULL;
	return m && m->njournals ? &m->journals[0] : NULL;
}

void editor_show_journal(struct editor *ed)
{
	const struct gmark_journal *j = first_journal(ed);
	struct img_err e = { 0 };
	char *text = NULL, *body = NULL;
	if (!j)
		return;
	if (!j->valid) {
		if (asprintf(&text, "An unfinished relink's journal cannot be "
			     "read: %s\n%s\n\nimgraph recover %s sets it aside "
			     "(renamed .bad) and tells what to check; nothing "
			     "else is written.\n", j->path,
			     j->error ? j->error : "", j->dir) < 0)
			text = NULL;
	} else if (recover_describe(j->path, j->dir, &body, &e) < 0) {
		if (asprintf(&text, "The journal %s cannot be read: %s\n",
			     j->path, e.msg) < 0)
			text = NULL;
	} else {
		text = editor_relative_text(ed->g, &ed->st.rows, body);
		free(body);
	}
	editor_show_text(ed, "Unfinished relink: finish (F) or roll back (U) "
			 "first", text);
	ed->st.journal_screen = j->valid;
}

void editor_recover(struct editor *ed, bool rollback)
{
	const struct gmark_journal *j = first_journal(ed);
	struct rec_item it = { 0 };
	struct img_err e = { 0 };
	char *text = NULL;
	if (!j)
		return;
	char *path = strdup(j->path);
	int r = path ? recover_journal(path, rollback, &it, &e) : -1;
	if (asprintf(&text, "%s: %s\n\n%s\nThe pool was rescanned: Esc "
		     "returns to the tree.\n", r == 0 ? (rollback ?
		     "Rolled back" : "Finished") : "Not recovered",
		     it.msg[0] ? it.msg : e.msg,
		     r == 0 ? "" : "Nothing more was written; the journal "
		     "stays, and the screen J shows it again.\n") < 0)
		text = NULL;
	free(it.journal);
	free(path);
	editor_scan(ed);
	ed->st.mark_top = ed->st.mark_base = -1;
	char *rel = ed->g ? editor_relative_text(ed->g, &ed->st.rows, text)
			  : NULL;
	if (rel) {
		free(text);
		text = rel;
	}
	editor_show_text(ed, r == 0 ? "Relink recovered" : "Recovery failed",
			 text);
	ui_msg(&ed->st, r == 0 ? R_OK : R_ERROR, "%s",
	       r == 0 ? "recovered; the pool was rescanned" : "not recovered");
}
