/* live.h - who holds an image right now, and how imgraph could reach it.
 *
 * For one image (by st_dev:st_ino, never by path string) live_find lists
 * every process that holds QEMU lock bytes on it or merely has it open
 * (a QEMU started with locking=off), and classifies each:
 *
 *   LIVE_LIBVIRT  a QEMU that libvirt runs: never driven through raw QMP
 *                 (that taints the domain and leaves libvirt's view stale);
 *   LIVE_QMP      qemu-system-* or qemu-storage-daemon with a QMP monitor
 *                 on a unix socket imgraph can connect to;
 *   LIVE_REMOTE   lock bytes are held but no process on this host holds
 *                 or opens the file and no local lock record exists: a
 *                 process on another host (NFS honours OFD locks across
 *                 hosts);
 *   LIVE_HIDDEN   a local lock record exists, but its process is not
 *                 visible here (another PID namespace, a container);
 *   LIVE_OTHER    anything else: PID and command line.
 *
 * Holders come from core/graph/lock.c (fdinfo lock lines and /proc/PID/fd
 * links, both compared by dev:ino); this module adds the classification.
 * Our own process is never listed, and its locks (a commit that probes
 * again while it holds them) are not taken for anyone else's.
 */
#ifndef IMGRAPH_LIVE_H
#define IMGRAPH_LIVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"

enum live_kind {
	LIVE_LIBVIRT,
	LIVE_QMP,
	LIVE_REMOTE,
	LIVE_HIDDEN,
	LIVE_OTHER,
};

/* Which program a process runs, from /proc/PID/exe (argv[0] when the
 * link cannot be read). */
enum live_prog {
	PROG_OTHER,
	PROG_QEMU_SYSTEM,          /* qemu-system-* */
	PROG_QSD,                  /* qemu-storage-daemon */
};

struct live_holder {
	enum live_kind kind;
	pid_t pid;                 /* 0 for LIVE_REMOTE and LIVE_HIDDEN */
	char comm[32];
	char *cmdline;             /* argv joined by spaces (bounded); NULL
				    * when unknown */
	enum live_prog prog;
	bool locks;                /* holds lock bytes (else only opens it) */
	uint8_t held, unshared;    /* lock bits as in struct lock_state */
	char *qmp_path;            /* unix socket of a QMP monitor, or NULL */
	const char *qmp_how;       /* how it was found (static text) */
	char *domain;              /* libvirt domain name (LIVE_LIBVIRT) */
	const char *domain_how;    /* how the domain was recognised */
	char *disk;                /* the domain's disk target holding the
				    * image ("vda"), when its XML says */
	int layer;                 /* 0 = the disk's top image, 1 its
				    * backing, ...; -1 unknown */
	const char *note;          /* why LIVE_OTHER for a QEMU, or NULL */
};

struct live_report {
	dev_t dev;
	ino_t ino;
	uint8_t probe_held, probe_unshared;  /* what F_OFD_GETLK saw */
	struct live_holder *v;
	int n;
};

/* Do not ask libvirtd (status files under /run/libvirt are still read). */
#define LIVE_NO_LIBVIRT_API 1u

/* Find and classify the holders of path (a regular file).  Fills *r
 * (free with live_report_free) and returns 0; -errno with e filled when
 * path cannot be examined.  A holder that disappears meanwhile is simply
 * not listed. */
int live_find(const char *path, unsigned flags, struct live_report *r,
	      struct img_err *e);
void live_report_free(struct live_report *r);

/* True while process pid runs (a zombie, which a daemon's parent has not
 * reaped yet, has exited). */
bool live_pid_alive(pid_t pid);

/* True when process pid runs qemu-system-* or qemu-storage-daemon. */
bool live_pid_is_qemu(pid_t pid);

/* True when process pid has path open (by dev:ino, as live_find sees
 * its holders and openers). */
bool live_pid_opens(pid_t pid, const char *path);

struct users_file;
/* The users file's qmp: for the QEMUs of r whose command line names no
 * monitor (class "other"): the first entry with a qmp: whose image the
 * process has open; such a holder becomes class "qmp".  A libvirt
 * domain's QEMU, or one whose command line names a monitor, keeps what
 * it has.  uf may be NULL.  0, or -ENOMEM with e filled. */
int live_users_qmp(struct live_report *r, const struct users_file *uf,
		   struct img_err *e);

struct qmp;
/* A monitor socket given by hand (--qmp, qmp:) may be another QEMU's:
 * the PID of the QEMU that listens on q's socket (SO_PEERCRED) when that
 * is not pid, else 0 (a listener that is no QEMU, such as a parent that
 * passed the socket down, is accepted). */
pid_t live_qmp_other_qemu(struct qmp *q, pid_t pid);

/* "libvirt", "qmp", "remote", "hidden", "other". */
const char *live_kind_name(enum live_kind k);

#endif
