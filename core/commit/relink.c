/* relink.c - the journaled multi-parent relink (see relink.h). */
#include "relink.h"
#include "formats/img.h"
#include "formats/io/io.h"
#include "formats/io/io_replace.h"
#include "formats/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELINK_SECTOR 512u

static bool str_eq(const char *a, const char *b)
{
	if (!a || !*a)
		return !b || !*b;
	return b && !strcmp(a, b);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Open t's header through its driver and check that it still names what
 * the plan read (the world may have changed since). */
static int open_checked(const struct relink_target *t, struct img **img,
			struct img_err *e)
{
	struct img_backing bk = { 0 };
	int r = img_open_fd(t->fd, t->path, t->fmt, 0, img, NULL, e);

	if (r < 0)
		return r;
	if (!img_can_set_backing(*img))
		return err_set(e, ENOTSUP, "%s: the %s format cannot record a "
			       "backing file", t->path, img_format_name(*img));
	r = img_get_backing(*img, &bk, e);
	if (r < 0)
		return r;
	if (!str_eq(bk.name, t->old_name) || !str_eq(bk.format, t->old_fmt))
		return err_set(e, ESTALE, "%s: backing file is now '%s' (format "
			       "'%s'), the plan expected '%s' ('%s'); rescan and "
			       "plan again", t->path, bk.name ? bk.name : "",
			       bk.format ? bk.format : "",
			       t->old_name ? t->old_name : "",
			       t->old_fmt ? t->old_fmt : "");
	return 0;
}

/* The range of obuf/nbuf (n bytes) that differs, widened to whole 512-byte
 * sectors: the unit a power cut can tear, and what recovery classifies. */
static int changed_range(const struct relink_target *t, const uint8_t *obuf,
			 const uint8_t *nbuf, uint32_t n, uint32_t *off,
			 uint32_t *len, struct img_err *e)
{
	uint32_t a, b;

	for (a = 0; a < n && obuf[a] == nbuf[a]; a++)
		;
	if (a == n)
		return err_set(e, EALREADY, "%s: already names '%s'", t->path,
			       t->new_name);
	for (b = n; b > a && obuf[b - 1] == nbuf[b - 1]; b--)
		;
	a = a / RELINK_SECTOR * RELINK_SECTOR;
	b = (b + RELINK_SECTOR - 1) / RELINK_SECTOR * RELINK_SECTOR;
	if (b > n)
		b = n;
	if (b - a > JOURNAL_MAX_RANGE)
		return err_set(e, EFBIG, "%s: header rewrite spans %u bytes, "
			       "more than the journal holds", t->path, b - a);
	*off = a;
	*len = b - a;
	return 0;
}

/* Fill the journal record from the two headers (every string owned). */
static int fill_parent(const struct relink_target *t, const struct stat *st,
		       const uint8_t *obuf, const uint8_t *nbuf, uint32_t n,
		       struct journal_parent *out, struct img_err *e)
{
	int r = changed_range(t, obuf, nbuf, n, &out->off, &out->len, e);

	if (r < 0)
		return r;
	out->path = strdup(t->path);
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->hdr_len = n;
	out->old_crc = journal_crc(obuf, n);
	out->new_crc = journal_crc(nbuf, n);
	out->old_bytes = malloc(out->len);
	out->new_bytes = malloc(out->len);
	out->old_name = dup_or_null(t->old_name);
	out->old_fmt = dup_or_null(t->old_fmt);
	out->new_name = dup_or_null(t->new_name);
	out->new_fmt = dup_or_null(t->new_fmt);
	out->relative = t->relative;
	if (!out->path || !out->old_bytes || !out->new_bytes ||
	    !out->new_name || !out->new_fmt ||
	    (t->old_name && !out->old_name) || (t->old_fmt && !out->old_fmt))
		return err_set(e, ENOMEM, "%s: out of memory", t->path);
	memcpy(out->old_bytes, obuf + out->off, out->len);
	memcpy(out->new_bytes, nbuf + out->off, out->len);
	return 0;
}

int relink_prepare_parent(const struct relink_target *t,
			  struct journal_parent *out, struct img_err *e)
{
	struct img *img = NULL;
	uint8_t *nbuf = NULL, *obuf = NULL;
	size_t nlen = 0;
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	r = io_fstat(t->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", t->path);
	r = open_checked(t, &img, e);
	if (r < 0)
		goto out;
	r = img_backing_header(img, t->new_name, t->new_fmt, &nbuf, &nlen, e);
	if (r < 0) {
		err_prefix(e, "cannot relink %s to '%s': ", t->path,
			   t->new_name);
		goto out;
	}
	if (nlen == 0 || nlen > JOURNAL_MAX_HDRLEN) {
		r = err_set(e, EINVAL, "%s: header rewrite of %zu bytes is "
			    "out of range", t->path, nlen);
		goto out;
	}
	obuf = calloc(1, nlen);
	if (!obuf) {
		r = err_set(e, ENOMEM, "%s: out of memory", t->path);
		goto out;
	}
	/* The old header is the rollback data: all of it, or nothing is
	 * journaled (a short read would record zeros as its bytes). */
	r = io_pread_full(t->fd, obuf, nlen, 0);
	if (r == -EIO && (uint64_t)st.st_size < nlen)
		r = err_set(e, EIO, "%s: cannot read the whole %zu-byte header: "
			    "the file has %llu bytes", t->path, nlen,
			    (unsigned long long)st.st_size);
	else if (r < 0)
		r = err_set_errno(e, -r, "%s: cannot read the whole %zu-byte "
				  "header", t->path, nlen);
	else
		r = fill_parent(t, &st, obuf, nbuf, (uint32_t)nlen, out, e);
out:
	free(nbuf);
	free(obuf);
	img_close(img);
	return r;
}

int relink_prepare_users(const char *path, const char *old_data,
			 size_t old_len, const char *new_data, size_t new_len,
			 struct journal_users *out, struct img_err *e)
{
	memset(out, 0, sizeof(*out));
	if (old_len > JOURNAL_MAX_USERS || new_len > JOURNAL_MAX_USERS)
		return err_set(e, EFBIG, "%s: users file larger than %u bytes",
			       path, JOURNAL_MAX_USERS);
	out->path = strdup(path);
	out->old_data = malloc(old_len + 1);
	out->new_data = malloc(new_len + 1);
	if (!out->path || !out->old_data || !out->new_data) {
		free(out->path);
		free(out->old_data);
		free(out->new_data);
		memset(out, 0, sizeof(*out));
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	memcpy(out->old_data, old_data, old_len);
	memcpy(out->new_data, new_data, new_len);
	out->old_len = old_len;
	out->new_len = new_len;
	out->old_crc = journal_crc(out->old_data, out->old_len);
	out->new_crc = journal_crc(out->new_data, out->new_len);
	return 0;
}

int relink_users_unchanged(const struct journal_users *u, struct img_err *e)
{
	char *cur;
	size_t len;
	int r = io_read_file(u->path, JOURNAL_MAX_USERS, 0, &cur, &len);
	bool same;

	if (r < 0 && r != -ENOENT && r != -EFBIG && r != -EINVAL)
		return err_set_errno(e, -r, "%s: cannot read the users file",
				     u->path);
	same = r == 0 && len == u->old_len &&
	       !memcmp(cur, u->old_data, len);
	free(cur);
	if (!same)
		return err_set(e, ESTALE, "%s: the users file was changed by "
			       "someone else after the commit read it; that "
			       "edit is kept and nothing was relinked", u->path);
	return 0;
}

int relink_write_range(int fd, const char *path, uint64_t off,
		       const uint8_t *buf, size_t len, struct img_err *e)
{
	int r = io_pwrite(fd, buf, len, off);

	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot write the header",
				     path);
	r = io_fdatasync(fd);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot sync the header", path);
	return 0;
}

int relink_write_users(const char *path, const uint8_t *data, size_t len,
		       struct img_err *e)
{
	int r = io_replace_file(path, data, len, 0644, e);

	if (r < 0)
		err_prefix(e, "users file: ");
	return r;
}

/* Put OLD back into parents [0, upto) and the users file; returns 0 when
 * every undo write succeeded. */
static int relink_rollback(struct journal *j, const int *fds, int upto,
			   bool users_touched)
{
	struct img_err ignore;
	int bad = 0;

	for (int i = upto - 1; i >= 0; i--) {
		const struct journal_parent *p = &j->parents[i];
		if (relink_write_range(fds[i], p->path, p->off, p->old_bytes,
				       p->len, &ignore) < 0)
			bad = 1;
	}
	if (users_touched && j->users.path &&
	    relink_write_users(j->users.path, j->users.old_data,
				j->users.old_len, &ignore) < 0)
		bad = 1;
	return bad ? -EIO : 0;
}

int relink_apply(const char *jpath, struct journal *j, const int *fds,
		 struct img_err *e)
{
	struct img_err ignore;
	bool users_touched = false;
	int i = 0, r;

	j->state = JOURNAL_PREPARED;
	r = journal_write(jpath, j, e);
	if (r < 0) {
		/* Nothing else was written: a journal that may or may not
		 * have reached the disk describes a transaction whose every
		 * file is still OLD, which recovery would also conclude. */
		journal_remove(jpath, &ignore);
		err_prefix(e, "relink not started (every parent unchanged): ");
		return r;
	}
	if (j->users.path) {
		/* Just before the replacement: an edit made since the commit
		 * read the file must not be overwritten (nor, on rollback,
		 * undone). */
		r = relink_users_unchanged(&j->users, e);
		if (r < 0)
			goto rollback;
		users_touched = true;
		r = relink_write_users(j->users.path, j->users.new_data,
					j->users.new_len, e);
		if (r < 0)
			goto rollback;
	}
	for (i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		r = relink_write_range(fds[i], p->path, p->off, p->new_bytes,
				       p->len, e);
		if (r < 0) {
			i++;            /* this one may be torn: undo it too */
			goto rollback;
		}
	}
	j->state = JOURNAL_RELINKED;
	r = journal_write(jpath, j, e);
	if (r < 0)
		goto rollback;
	return 0;

rollback:
	if (relink_rollback(j, fds, i, users_touched) == 0 &&
	    journal_remove(jpath, &ignore) == 0) {
		err_prefix(e, "relink failed and was rolled back (every parent "
			   "still uses the old backing file): ");
		return r;
	}
	err_prefix(e, "relink failed and the rollback failed too; run "
		   "'imgraph recover' on %s: ", jpath);
	return r;
}
