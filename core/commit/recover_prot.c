/* recover_prot.c - what recover says about a protected commit that
 * stopped during its copy: the journal of its protection (the prot line
 * of its PENDING stale transaction, protect.h).  Nothing to finish or
 * undo: every view is intact at every instant of a protected copy; the
 * record stays for the rerun of the same commit, which resumes there. */
#include "recover.h"
#include "stale.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(struct rec_report *rep, const char *path,
	       const struct stale_record *s, const struct stale_tx *t)
{
	struct rec_prot *nv = realloc(rep->prot, sizeof(*nv) *
				      (size_t)(rep->nprot + 1));

	if (!nv)
		return -ENOMEM;
	rep->prot = nv;
	nv += rep->nprot;
	memset(nv, 0, sizeof(*nv));
	nv->done = t->prot_done;
	nv->nreaders = t->nrd;
	nv->record = strdup(path);
	nv->base = strdup(s->base_path);
	nv->top = strdup(t->prot_top);
	rep->nprot++;
	return nv->record && nv->base && nv->top ? 0 : -ENOMEM;
}

static int scan_record(struct rec_report *rep, const char *path)
{
	struct stale_record *s;
	struct img_err e;
	int r = 0;

	err_clear(&e);
	for (int i = 0; i < rep->nprot; i++)
		if (!strcmp(rep->prot[i].record, path))
			return 0;
	/* an unreadable record is the stale marks' business (tree shows
	 * it); it holds nothing recover could act on */
	if (stale_read(path, &s, &e) < 0)
		return 0;
	for (int i = 0; i < s->ntx && r == 0; i++)
		if (s->tx[i].state == STALE_PENDING && s->tx[i].prot)
			r = add(rep, path, s, &s->tx[i]);
	stale_free(s);
	return r;
}

int recover_prot_scan(const char *dir, struct rec_report *rep,
		      struct img_err *e)
{
	size_t lp = strlen(STALE_PREFIX), ls = strlen(STALE_SUFFIX);
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);
	int r = 0;

	if (!d)
		return err_set_errno(e, errno, "%s: cannot read directory",
				     dir);
	while (r == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n <= lp + ls || strncmp(de->d_name, STALE_PREFIX, lp) ||
		    strcmp(de->d_name + n - ls, STALE_SUFFIX))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			continue;
		r = scan_record(rep, path);
	}
	closedir(d);
	return r < 0 ? err_set(e, -r, "out of memory") : 0;
}
