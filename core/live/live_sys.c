/* live_sys.c - system tables read by the holder search: /proc/locks,
 * /proc/net/unix, and the libvirt daemon's pidfile. */
#include "live_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/graph/lock.h"

/* "1: OFDLCK ADVISORY  READ -1 fe:00:10955043 203 203" (/proc/locks) or
 * "lock:\t1: OFDLCK ..." (/proc/PID/fdinfo/FD).  A POSIX line of a
 * process in another PID namespace is left out of /proc/locks by the
 * kernel, an OFD line never is (its pid is -1 anyway).  Waiters
 * ("1: -> POSIX ...") fail the kind test.  Returns the QEMU lock bits the
 * line covers on dev:ino (bit i: byte 100+i in *held, 200+i in *unsh),
 * false when it covers none. */
static bool line_bits(const char *line, dev_t dev, ino_t ino, uint8_t *held,
		      uint8_t *unsh)
{
	char kind[16], adv[16], rw[16], endbuf[32];
	unsigned maj, min;
	unsigned long long fino;
	long long pid, start, end;
	const char *s;

	if (!strncmp(line, "lock:", 5))
		line += 5;
	s = strchr(line, ':');
	if (!s || sscanf(s + 1, "%15s %15s %15s %lld %x:%x:%llu %lld %31s",
			 kind, adv, rw, &pid, &maj, &min, &fino, &start,
			 endbuf) != 9)
		return false;
	if (strcmp(kind, "OFDLCK") && strcmp(kind, "POSIX"))
		return false;
	if (maj != major(dev) || min != minor(dev) ||
	    fino != (unsigned long long)ino)
		return false;
	end = strcmp(endbuf, "EOF") ? atoll(endbuf) : -1;
	*held = *unsh = 0;
	for (int b = 0; b <= LOCK_LEGACY_BIT; b++) {
		if (start <= LOCK_PERM_BASE + b &&
		    (end < 0 || end >= LOCK_PERM_BASE + b))
			*held |= (uint8_t)(1u << b);
		if (start <= LOCK_SHARED_BASE + b &&
		    (end < 0 || end >= LOCK_SHARED_BASE + b))
			*unsh |= (uint8_t)(1u << b);
	}
	return *held || *unsh;
}

int live_locks_scan(const char *file, dev_t dev, ino_t ino, uint8_t *held,
		    uint8_t *unshared)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(file, "re");

	*held = *unshared = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		uint8_t h, u;

		if (line_bits(line, dev, ino, &h, &u)) {
			n++;
			*held |= h;
			*unshared |= u;
		}
	}
	fclose(f);
	return n;
}

int live_own_locks(dev_t dev, ino_t ino, uint8_t *held, uint8_t *unshared)
{
	struct dirent *d;
	int n = 0;
	DIR *dp = opendir("/proc/self/fdinfo");

	*held = *unshared = 0;
	if (!dp)
		return 0;
	while ((d = readdir(dp))) {
		char p[300];
		uint8_t h, u;
		int k;

		if (d->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/self/fdinfo/%s", d->d_name);
		k = live_locks_scan(p, dev, ino, &h, &u);
		if (k > 0) {
			n += k;
			*held |= h;
			*unshared |= u;
		}
	}
	closedir(dp);
	return n;
}

char *live_unix_path_of_inode(unsigned long ino)
{
	char line[4096 + 128];
	char *path = NULL;
	FILE *f = fopen("/proc/net/unix", "re");

	if (!f)
		return NULL;
	/* "Num RefCount Protocol Flags Type St Inode Path" */
	while (!path && fgets(line, sizeof(line), f)) {
		unsigned long li;
		int off = 0;

		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %n", &li,
			   &off) < 1 || li != ino || !off)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (line[off] && line[off] != '@')   /* '@': abstract */
			path = strdup(line + off);
	}
	fclose(f);
	return path;
}

char *live_unix_path_of_fd(pid_t pid, int fd)
{
	char link[64], target[128];
	unsigned long ino;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	if (sscanf(target, "socket:[%lu]", &ino) != 1)
		return NULL;
	return live_unix_path_of_inode(ino);
}

static bool pidfile_names(const char *pidfile, const char *comm)
{
	char buf[64], cpath[64];
	long pid;
	FILE *f = fopen(pidfile, "re");

	if (!f)
		return false;
	pid = fgets(buf, sizeof(buf), f) ? strtol(buf, NULL, 10) : 0;
	fclose(f);
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
		return false;
	snprintf(cpath, sizeof(cpath), "/proc/%ld/comm", pid);
	f = fopen(cpath, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return !strcmp(buf, comm);
}

bool live_libvirt_running(void)
{
	/* The monolithic daemon, or the modular QEMU driver daemon. */
	return pidfile_names("/run/libvirtd.pid", "libvirtd") ||
		pidfile_names("/run/libvirt/virtqemud.pid", "virtqemud") ||
		pidfile_names("/run/virtqemud.pid", "virtqemud");
}
