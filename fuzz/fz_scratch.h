/* fz_scratch.h - a private scratch directory for harnesses that must drive
 * path-based APIs (chain_open, graph_scan, users_load).  Created once per
 * process on /dev/shm (tmpfs, so the file writes per input stay cheap) and
 * removed at exit.  The including harness defines FZ_NAME; the directory is
 * named imgraph-fz.FZ_NAME.PID.XXXXXX so that fuzz/run.sh, cleaning up after
 * children that crashed, removes only directories whose process is gone
 * and never those of fuzzers still running (another target, or another
 * checkout fuzzing the same one). */
#ifndef IMGRAPH_FZ_SCRATCH_H
#define IMGRAPH_FZ_SCRATCH_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[PATH_MAX];

static void fz_scratch_cleanup(void)
{
	DIR *d = opendir(fz_dir);
	struct dirent *de;
	char p[PATH_MAX + 256];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fz_dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fz_dir);
}

/* Returns the canonical scratch dir path. */
static const char *fz_scratch(void)
{
	char tmpl[PATH_MAX];

	if (fz_dir[0])
		return fz_dir;
	snprintf(tmpl, sizeof(tmpl), "%s/imgraph-fz.%s.%ld.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", FZ_NAME,
		 (long)getpid());
	if (!mkdtemp(tmpl) || !realpath(tmpl, fz_dir)) {
		perror("fuzz scratch dir");
		abort();
	}
	atexit(fz_scratch_cleanup);
	return fz_dir;
}

/* Write data into scratch/name (replacing it). */
static void fz_scratch_put(const char *name, const uint8_t *data, size_t size)
{
	char p[PATH_MAX + 64];
	size_t done = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", fz_scratch(), name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(p);
		abort();
	}
	while (done < size) {
		ssize_t k = write(fd, data + done, size - done);
		if (k <= 0)
			abort();
		done += (size_t)k;
	}
	close(fd);
}

static inline size_t fz_take(const uint8_t **p, size_t *left)
{
	size_t n;

	if (*left < 4) {
		n = *left;
		*left = 0;
		*p += n;
		return 0;
	}
	n = ((size_t)(*p)[0] << 24) | ((size_t)(*p)[1] << 16) |
	    ((size_t)(*p)[2] << 8) | (*p)[3];
	*p += 4;
	*left -= 4;
	return n > *left ? *left : n;
}

/* Input [be32 len][a][be32 len][b][c] (lengths clamped) as the files a, b
 * and c of the scratch dir (fz_chain, fz_scan). */
static inline void fz_scratch_put3(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size, n;

	n = fz_take(&p, &left);
	fz_scratch_put("a", p, n);
	p += n; left -= n;
	n = fz_take(&p, &left);
	fz_scratch_put("b", p, n);
	p += n; left -= n;
	fz_scratch_put("c", p, left);
}

#endif
