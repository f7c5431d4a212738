/* resolve.c - backing-name resolution as QEMU does it; see resolve.h.
 *
 * QEMU (block.c bdrv_make_absolute_filename) joins a relative backing name
 * onto the directory part of the overlay's file name exactly as the overlay
 * was opened, without normalising.  We do the same, so that the path we
 * open is the path QEMU would open; "a/../b" is resolved by the kernel, which
 * walks ".." physically, exactly as it does for QEMU.
 */
#include "resolve.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* QEMU's path_has_protocol: a ':' before the first '/'. */
static int has_protocol(const char *name)
{
	const char *colon = strchr(name, ':');
	const char *slash = strchr(name, '/');

	return colon && (!slash || colon < slash);
}

/* Length of the directory part of path, including its trailing '/'
 * (0 when path has no '/', i.e. the directory is the CWD). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) + 1 : 0;
}

int resolve_backing(const char *overlay_path, const char *name, char *out,
		    size_t outlen, enum resolve_kind *kind, struct img_err *e)
{
	size_t dl, nl;

	if (!name || !*name) {
		*kind = RESOLVE_NONE;
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	nl = strlen(name);
	if (has_protocol(name) || name[0] == '/') {
		*kind = has_protocol(name) ? RESOLVE_EXTERNAL : RESOLVE_FILE;
		if (nl + 1 > outlen)
			return err_set(e, ENAMETOOLONG,
				       "%s: backing file name is %zu bytes, "
				       "longer than %zu", overlay_path, nl,
				       outlen ? outlen - 1 : 0);
		memcpy(out, name, nl + 1);
		return 0;
	}
	dl = dir_len(overlay_path);
	if (dl + nl + 1 > outlen)
		return err_set(e, ENAMETOOLONG,
			       "%s: resolved backing path '%.*s%s' is longer "
			       "than %zu bytes", overlay_path, (int)dl,
			       overlay_path, name, outlen ? outlen - 1 : 0);
	memcpy(out, overlay_path, dl);
	memcpy(out + dl, name, nl + 1);
	*kind = RESOLVE_FILE;
	return 0;
}

/* Canonical absolute form of path: realpath() of its directory joined with
 * its last component.  The last component is kept as named (a symlink to
 * base stays a symlink: the user chose that name), while the directory
 * part is made physical because the kernel resolves ".." physically. */
static int canon_keep_last(const char *path, char *out, size_t outlen,
			   struct img_err *e)
{
	char dir[PATH_MAX], real[PATH_MAX];
	size_t dl = dir_len(path);
	const char *last = path + dl;
	size_t rl, ll = strlen(last);

	if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
		return err_set(e, EINVAL, "%s: not a file name", path);
	if (dl == 0) {
		strcpy(dir, ".");
	} else {
		if (dl >= sizeof(dir))
			return err_set(e, ENAMETOOLONG, "%s: path too long",
				       path);
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	if (!realpath(dir, real))
		return err_set_errno(e, errno, "%s: cannot resolve directory "
				     "'%s'", path, dir);
	rl = strlen(real);
	if (rl == 1)            /* "/" */
		rl = 0;
	if (rl + 1 + ll + 1 > outlen)
		return err_set(e, ENAMETOOLONG, "%s: path too long", path);
	memcpy(out, real, rl);
	out[rl] = '/';
	memcpy(out + rl + 1, last, ll + 1);
	return 0;
}

int resolve_make_name(const char *overlay_path, const char *target_path,
		      int relative, char *out, size_t outlen,
		      struct img_err *e)
{
	char ov[PATH_MAX], tg[PATH_MAX], rel[PATH_MAX];
	size_t common = 0, i, pos = 0, ovdir, need;
	int r;

	r = canon_keep_last(target_path, tg, sizeof(tg), e);
	if (r < 0)
		return r;
	if (!relative) {
		if (strlen(tg) + 1 > outlen)
			return err_set(e, ENAMETOOLONG, "%s: backing name for "
				       "'%s' does not fit %zu bytes",
				       overlay_path, tg, outlen);
		strcpy(out, tg);
		return 0;
	}
	r = canon_keep_last(overlay_path, ov, sizeof(ov), e);
	if (r < 0)
		return r;
	/* ov and tg are "/dir.../last".  Find the longest common directory
	 * prefix that ends at a '/' in both. */
	ovdir = dir_len(ov);            /* includes the trailing '/' */
	for (i = 0; i < ovdir && tg[i] && ov[i] == tg[i]; i++)
		if (ov[i] == '/')
			common = i + 1;
	/* One "../" for each directory of the overlay below the common one. */
	for (i = common; i < ovdir; i++) {
		if (ov[i] != '/')
			continue;
		if (pos + 3 >= sizeof(rel))
			return err_set(e, ENAMETOOLONG, "%s: relative name "
				       "too long", overlay_path);
		memcpy(rel + pos, "../", 3);
		pos += 3;
	}
	need = strlen(tg + common);
	if (pos + need + 1 > sizeof(rel))
		return err_set(e, ENAMETOOLONG, "%s: relative name too long",
			       overlay_path);
	memcpy(rel + pos, tg + common, need + 1);
	/* A relative name with a ':' before its first '/' would read as a
	 * protocol prefix; QEMU itself writes "./" in front then. */
	if (has_protocol(rel)) {
		if (strlen(rel) + 3 > outlen)
			return err_set(e, ENAMETOOLONG, "%s: backing name does "
				       "not fit %zu bytes", overlay_path, outlen);
		out[0] = '.';
		out[1] = '/';
		strcpy(out + 2, rel);
		return 0;
	}
	if (strlen(rel) + 1 > outlen)
		return err_set(e, ENAMETOOLONG, "%s: backing name does not fit "
			       "%zu bytes", overlay_path, outlen);
	strcpy(out, rel);
	return 0;
}

/* path ends in suffix and has a name before it. */
static int has_suffix(const char *path, const char *suffix)
{
	size_t l = strlen(path), sl = strlen(suffix);

	return l > sl && !strcmp(path + l - sl, suffix);
}

int resolve_raw_disk_name(const char *path)
{
	return has_suffix(path, ".raw") || has_suffix(path, ".img");
}
