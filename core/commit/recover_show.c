/* recover_show.c - what `imgraph recover` would do to one journal, said
 * before anything is written (recover.h): the journal is read and each
 * parent classified with recover_classify, and recover_plan decides both
 * ways, exactly as a run does; only the locks and the writes are left
 * out, so the run itself may still find the files changed meanwhile. */
#include "recover.h"
#include "core/graph/marks.h"
#include "core/out/esc.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How parent p's header stands now, read without a lock. */
static enum rec_class classify_now(const struct journal_parent *p)
{
	struct stat st;
	enum rec_class c = REC_MISSING;
	uint8_t *cur;
	int fd = io_open(p->path, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0)
		return REC_MISSING;
	cur = malloc(p->hdr_len ? p->hdr_len : 1);
	if (cur && io_fstat(fd, &st) == 0 && (uint64_t)st.st_dev == p->dev &&
	    (uint64_t)st.st_ino == p->ino)
		c = io_pread_full(fd, cur, p->hdr_len, 0) == 0 ?
		    recover_classify(p, cur, p->hdr_len, true) : REC_FOREIGN;
	free(cur);
	io_close(fd);
	return c;
}

/* How the users file stands now (REC_NEW when the journal has none). */
static enum rec_class users_now(const struct journal_users *u)
{
	struct stat st;
	enum rec_class c = REC_FOREIGN;
	uint8_t *cur;
	int fd;

	if (!u->path)
		return REC_NEW;
	fd = io_open(u->path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return recover_classify_users(u, NULL, 0, false);
	if (io_fstat(fd, &st) < 0 || st.st_size > JOURNAL_MAX_USERS) {
		io_close(fd);
		return REC_FOREIGN;
	}
	cur = malloc((size_t)st.st_size + 1);
	if (cur && io_pread_full(fd, cur, (size_t)st.st_size, 0) == 0)
		c = recover_classify_users(u, cur, (size_t)st.st_size, true);
	free(cur);
	io_close(fd);
	return c;
}

static const char *class_words(enum rec_class c, const struct journal *j,
			       char *buf, size_t len)
{
	switch (c) {
	case REC_OLD:
		snprintf(buf, len, "still names %s", ESC(j->top_path));
		break;
	case REC_NEW:
		snprintf(buf, len, "names %s (relinked)", ESC(j->base_path));
		break;
	case REC_TORN:
		snprintf(buf, len, "torn: part old, part new header");
		break;
	case REC_FOREIGN:
		snprintf(buf, len, "changed by someone else since");
		break;
	case REC_MISSING:
		snprintf(buf, len, "gone, or another file at its path");
		break;
	}
	return buf;
}

/* One way out: what recover_plan would do, in words. */
static void way(FILE *f, const struct journal *j, const enum rec_class *pc,
		enum rec_class uc, bool rollback, const char *cmd)
{
	struct rec_plan rp;
	struct img_err e = { 0 };
	int writes = 0;

	fprintf(f, "%s %s (%s):\n", rollback ? "U" : "F",
		rollback ? "rolls it back" : "finishes it", cmd);
	if (recover_plan(j, pc, uc, rollback, &rp, &e) < 0) {
		fprintf(f, "  cannot: %s\n", ESC(e.msg));
		return;
	}
	if (rp.blocked) {
		fprintf(f, "  cannot, nothing would be written: %s\n",
			ESC(rp.why));
		recover_plan_free(&rp);
		return;
	}
	for (int i = 0; i < rp.n; i++)
		writes += rp.v[i].kind == RA_WRITE_PARENT;
	fprintf(f, "  rewrites %d header%s so that all %d parent%s name %s",
		writes, writes == 1 ? "" : "s", j->nparents,
		j->nparents == 1 ? "" : "s",
		ESC(rollback ? j->top_path : j->base_path));
	if (j->users.path)
		fprintf(f, ", puts the users file's %s entries back",
			rollback ? "old" : "new");
	if (!rollback && j->empty_top)
		fprintf(f, ", empties top (it names base)");
	fprintf(f, ", then removes the journal.\n");
	if (rollback)
		fprintf(f, "  Base keeps the data already copied into it; "
			"every parent reads through top again, so what each "
			"shows is as before the commit.\n");
	else
		fprintf(f, "  Every parent reads base, which holds top's data: "
			"what each shows stays.\n");
	recover_plan_free(&rp);
}

int recover_describe(const char *jpath, const char *dir, char **text,
		     struct img_err *e)
{
	struct journal *j = NULL;
	enum rec_class *pc, uc;
	char cls[600], tm[40], cmd[ESC_MAX + 64];
	size_t len = 0;
	FILE *f;
	int r = journal_read(jpath, &j, e);

	*text = NULL;
	if (r < 0)
		return r;
	pc = calloc((size_t)j->nparents + 1, sizeof(*pc));
	f = pc ? open_memstream(text, &len) : NULL;
	if (!f) {
		free(pc);
		journal_free(j);
		return err_set(e, ENOMEM, "out of memory");
	}
	fprintf(f, "A commit of %s into %s stopped while relinking the "
		"parents of top (journal %s, started %s; %s).\n",
		ESC(j->top_path), ESC(j->base_path), ESC(jpath),
		marks_when(j->created, tm, sizeof(tm)),
		j->state == JOURNAL_RELINKED ? "every parent was relinked, "
		"cleanup pending" : "parents partly relinked");
	fprintf(f, "Until it is finished or rolled back the pool is split, and "
		"no plan can run.\n\nParents of top, as their headers are "
		"now:\n");
	for (int i = 0; i < j->nparents; i++) {
		pc[i] = classify_now(&j->parents[i]);
		fprintf(f, "  %s: %s\n", ESC(j->parents[i].path),
			class_words(pc[i], j, cls, sizeof(cls)));
	}
	uc = users_now(&j->users);
	if (j->users.path)
		fprintf(f, "  users file %s: %s\n", ESC(j->users.path),
			uc == REC_NEW ? "new entries" : uc == REC_OLD ?
			"old entries" : uc == REC_MISSING ? "gone" :
			"changed by someone else since");
	fputc('\n', f);
	snprintf(cmd, sizeof(cmd), "imgraph recover %s", ESC(dir));
	way(f, j, pc, uc, false, cmd);
	snprintf(cmd, sizeof(cmd), "imgraph recover --rollback %s", ESC(dir));
	way(f, j, pc, uc, true, cmd);
	fclose(f);
	free(pc);
	journal_free(j);
	return *text ? 0 : err_set(e, ENOMEM, "out of memory");
}
