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

/* The QEMU lock bits one line covers on dev:ino; false when none.  A
 * POSIX line of a process in another PID namespace is left out of
 * /proc/locks by the kernel, an OFD line never is (its pid is -1
 * anyway). */
static bool line_bits(const char *line, dev_t dev, ino_t ino, uint8_t *held,
		      uint8_t *unsh)
{
	struct lock_line l;

	if (!lock_line_parse(line, &l) || l.maj != major(dev) ||
	    l.min != minor(dev) || l.ino != (unsigned long long)ino)
		return false;
	lock_line_bits(&l, held, unsh);
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

bool live_pid_alive(pid_t pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (comm) S ...": comm may hold anything, the state follows
	 * the last ')'. */
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] && rp[2] != 'Z' && rp[2] != 'X';
}
