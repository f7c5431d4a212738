/* live_int.h - pieces of core/live shared between its files and tested
 * one by one: a process's command line read as QEMU reads it, the system
 * lock table, unix socket paths, the libvirt daemon's presence. */
#ifndef IMGRAPH_LIVE_INT_H
#define IMGRAPH_LIVE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"
#include "live.h"

/* /proc/PID/cmdline of one process, read as QEMU parses its options. */
struct live_proc {
	pid_t pid;
	char **argv;               /* owned, NULL-terminated */
	int argc;
	enum live_prog prog;
	char *guest;               /* -name [guest=]X */
	/* The first QMP monitor: a unix socket path, or the fd of a socket
	 * passed in (libvirt: chardev fd=N) whose path /proc/net/unix knows. */
	char *qmp_path;
	int qmp_fd;                /* -1 when none */
	const char *qmp_how;
	bool qmp_not_unix;         /* a QMP monitor exists, not on a unix
				    * socket (tcp:, stdio, ...) */
};

/* Read /proc/PID/{cmdline,exe} and parse.  -ESRCH when the process
 * is gone, -errno (e filled) otherwise. */
int live_proc_read(pid_t pid, struct live_proc *p, struct img_err *e);
/* Parse argv (copied) as the command line of program exe (its path or
 * name; NULL: argv[0]).  -ENOMEM on allocation failure. */
int live_proc_parse(struct live_proc *p, char *const *argv, int argc,
		    const char *exe);
void live_proc_free(struct live_proc *p);
/* argv joined by spaces, at most max bytes (cut with "..."); malloc'd. */
char *live_proc_cmdline(const struct live_proc *p, size_t max);

/* QEMU's key=value,key=value option syntax (",," is a literal comma).
 * implied names the key of a first element without '=' (NULL: none).
 * Returns 1 and *val (malloc'd) when key is present, 0 when not,
 * -ENOMEM. */
int live_opt_get(const char *spec, const char *implied, const char *key,
		 char **val);

/* Lock records on dev:ino in a file of /proc/locks lines or of
 * /proc/PID/fdinfo "lock:" lines that cover QEMU's lock bytes (100..104,
 * 200..204), whoever holds them; their bits into *held / *unshared.
 * Returns the count, -errno when the file cannot be read. */
int live_locks_scan(const char *file, dev_t dev, ino_t ino, uint8_t *held,
		    uint8_t *unshared);
/* The same over our own process's descriptions (/proc/self/fdinfo). */
int live_own_locks(dev_t dev, ino_t ino, uint8_t *held, uint8_t *unshared);

struct live_bits {
	uint8_t held, unshared;
};
/* Lock bits that no visible holder explains (u), split by the bits the
 * local lock table lists on the file (table): those are a local process
 * not visible here (*hidden), the rest a process on another host
 * (*remote), whose locks no local table lists. */
void live_split_unexplained(struct live_bits u, struct live_bits table,
			    struct live_bits *hidden, struct live_bits *remote);

/* The path a unix socket inode is bound to, from /proc/net/unix; NULL
 * when unnamed or not found. */
char *live_unix_path_of_inode(unsigned long ino);
/* The path of the unix socket behind /proc/PID/fd/FD; NULL when not a
 * named unix socket. */
char *live_unix_path_of_fd(pid_t pid, int fd);

/* Whether a libvirt daemon (libvirtd or virtqemud) runs on this host:
 * its pidfile names a live process of that name. */
bool live_libvirt_running(void);

#endif
