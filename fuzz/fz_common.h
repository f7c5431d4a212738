/* fz_common.h - helpers shared by the libFuzzer harnesses (fuzz/fz_*.c).
 *
 * Harnesses never print on the normal path: libFuzzer runs them millions of
 * times.  An oracle failure prints the reason and abort()s, which libFuzzer
 * records as a crash with the input saved under -artifact_prefix.
 */
#ifndef IMGRAPH_FZ_COMMON_H
#define IMGRAPH_FZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FZ_ASSERT(cond, ...)                                                \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "fuzz oracle failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
			abort();                                            \
		}                                                           \
	} while (0)

/* One memfd per process, refilled for every input: creating a memfd per
 * input would cost more than most parses.  Returns the fd, or -1. */
static inline int fz_memfd_fill(const uint8_t *data, size_t size)
{
	static int fd = -1;
	size_t done = 0;

	if (fd < 0) {
		fd = memfd_create("imgraph-fuzz", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
	}
	if (ftruncate(fd, 0) < 0)
		abort();
	while (done < size) {
		ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			abort();
		done += (size_t)k;
	}
	return fd;
}

/* True when the memfd still holds exactly the input (nothing written). */
static inline int fz_memfd_same(int fd, const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	static size_t cap;
	ssize_t k;

	if (lseek(fd, 0, SEEK_END) != (off_t)size)
		return 0;
	if (size > cap) {
		free(buf);
		buf = malloc(size);
		cap = buf ? size : 0;
		if (!buf)
			abort();
	}
	k = size ? pread(fd, buf, size, 0) : 0;
	return k == (ssize_t)size && (size == 0 || !memcmp(buf, data, size));
}

/* The error contract: a failure fills a message that names the file. */
static inline void fz_check_err(int r, const char *msg, const char *path,
				const char *what)
{
	FZ_ASSERT(r < 0, "%s returned %d", what, r);
	FZ_ASSERT(msg[0] != '\0', "%s failed (%d) without a message", what, r);
	FZ_ASSERT(strstr(msg, path) != NULL,
		  "%s: message does not name the file: %s", what, msg);
}

#endif
