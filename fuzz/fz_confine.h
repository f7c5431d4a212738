/* fz_confine.h - keep a path-driven harness's library calls inside its
 * scratch dir (fz_chain, fz_scan).
 *
 * chain_open and graph_scan resolve names to paths and open them, so a
 * fuzzed name such as /etc/shadow or ../../x would reach host files.  The
 * harness is linked with -Wl,--wrap=open64,--wrap=fopen64 (fuzz/fuzz.mk):
 * every open(2)/fopen(3) the library makes comes to __wrap_open64 /
 * __wrap_fopen64 below, which refuse (EACCES) any path whose canonical form
 * is outside the scratch dir while fz_confine is set, and abort on an open
 * for writing.  Metadata calls (stat, realpath) are not wrapped: they never
 * read file contents.  The scan's worker threads open through the same
 * wrapper; fz_confine is only changed while no worker runs.
 */
#ifndef IMGRAPH_FZ_CONFINE_H
#define IMGRAPH_FZ_CONFINE_H

#include "fz_common.h"
#include "fz_scratch.h"

#include <stdarg.h>

static int fz_confine;
static unsigned long fz_refused;  /* atomic: workers open too */

int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);
FILE *__real_fopen64(const char *path, const char *mode);
FILE *__wrap_fopen64(const char *path, const char *mode);

static int fz_inside(const char *path)
{
	char canon[PATH_MAX];
	size_t n = strlen(fz_dir);

	if (!realpath(path, canon))
		return 0;
	return !strncmp(canon, fz_dir, n) && (canon[n] == '/' || !canon[n]);
}

int __wrap_open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (fz_confine) {
		/* Read-only use: the library must never create or write. */
		FZ_ASSERT(!(flags & (O_CREAT | O_TRUNC)) &&
			  (flags & O_ACCMODE) == O_RDONLY,
			  "open(%s, 0x%x) for writing during a read-only scan",
			  path, flags);
		if (!fz_inside(path)) {
			__atomic_add_fetch(&fz_refused, 1, __ATOMIC_RELAXED);
			errno = EACCES;
			return -1;
		}
	}
	return __real_open64(path, flags, mode);
}

FILE *__wrap_fopen64(const char *path, const char *mode)
{
	if (fz_confine && !fz_inside(path)) {
		__atomic_add_fetch(&fz_refused, 1, __ATOMIC_RELAXED);
		errno = EACCES;
		return NULL;
	}
	return __real_fopen64(path, mode);
}

#endif
