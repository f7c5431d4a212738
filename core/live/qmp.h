/* qmp.h - a QMP client (JSON through jansson) for QEMU processes that are
 * not libvirt's: qemu-system-* and qemu-storage-daemon.
 *
 * A QMP monitor serves one client at a time.  A second client's connect()
 * still succeeds (the listen backlog) but no greeting ever comes; qmp_open
 * then reports the monitor busy and closes without having sent a byte, so
 * the other client's session is untouched.  Events (JOB_STATUS_CHANGE,
 * BLOCK_JOB_*) may arrive between a command and its reply; they are
 * queued in arrival order for qmp_event.  Every wait has a deadline; a
 * process that exits is reported as such, never waited for.
 */
#ifndef IMGRAPH_QMP_H
#define IMGRAPH_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "formats/io/err.h"

#define QMP_TIMEOUT_MS 3000            /* default deadline of one step */
#define QMP_MSG_MAX (64u << 20)        /* largest message accepted */
#define QMP_EVENTS_MAX 4096            /* queued events; older dropped */

struct qmp;

struct qmp_version {
	int major, minor, micro;
	char package[128];
};

/* Connect to the QMP monitor at path, served by process pid (0 unknown;
 * only for messages), read the greeting and leave negotiation mode with
 * qmp_capabilities, each step within timeout_ms (<= 0: QMP_TIMEOUT_MS).
 * Errors (e filled): -ENOENT / -ECONNREFUSED no monitor listens there;
 * -EBUSY "QMP monitor of PID N is busy (another client is connected)":
 * no greeting within the deadline; -EPROTO not a QMP greeting;
 * -ECONNRESET the process closed the connection. */
int qmp_open(const char *path, pid_t pid, int timeout_ms, struct qmp **out,
	     struct img_err *e);
void qmp_close(struct qmp *q);

/* The process that listens on the monitor socket (SO_PEERCRED: the one
 * that called listen(); a parent that passed the socket down, when it was
 * inherited), 0 when unknown. */
pid_t qmp_peer_pid(const struct qmp *q);
/* QEMU's version from the greeting. */
const struct qmp_version *qmp_version(const struct qmp *q);
/* Parse QEMU's version object, as the greeting's "QMP"."version" and
 * query-version's "return" carry it: {"qemu": {"major", "minor",
 * "micro"}, "package"}.  -EPROTO (e naming the field) when malformed. */
int qmp_parse_version(json_t *v, struct qmp_version *out, struct img_err *e);

/* The oldest QEMU imgraph runs a live commit in: block-commit with
 * auto-finalize off and job-finalize exist since 2.12, but 7.2 is what
 * was tested (and what the issue asks for). */
#define QMP_LIVE_MAJOR 7
#define QMP_LIVE_MINOR 2
/* The plan's one version decision: 0 when v is at least 7.2, else
 * -ENOTSUP with e "QEMU X.Y.Z, older than 7.2". */
int qmp_version_supported(const struct qmp_version *v, struct img_err *e);
pid_t qmp_pid(const struct qmp *q);

/* Run cmd with args (borrowed; NULL: none) and wait up to timeout_ms
 * (<= 0: the open's deadline) for its reply.  *ret (may be NULL) gets a
 * new reference to "return".  A QMP error reply is -EIO with e naming the
 * command, QMP's error class and its description. */
int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret,
	     int timeout_ms, struct img_err *e);

/* The oldest queued event, else wait up to timeout_ms (0: do not wait)
 * for one.  1 with *ev (new reference), 0 when none came, -errno. */
int qmp_event(struct qmp *q, int timeout_ms, json_t **ev,
	      struct img_err *e);
/* Events queued and not yet taken; events dropped because the queue
 * was full. */
int qmp_events_queued(const struct qmp *q);
unsigned long qmp_events_dropped(const struct qmp *q);

/* Where an image sits in the process's block graph (by dev:ino of the
 * file behind each protocol node, never by name). */
struct qmp_node_info {
	char *file_node;           /* protocol node (drv file/host_device) */
	char *node;                /* format node above it (or file_node
				    * when nothing is above) */
	char *drv;                 /* node's driver: "qcow2", "raw" */
	bool ro;
	int depth;                 /* backing edges from root down to node */
	char *root;                /* top-most node above: block-commit's
				    * "device" */
	char *backend;             /* what uses root: a device's qdev path
				    * or id, an export's id; NULL none */
	const char *backend_kind;  /* "device", "export", "monitor" (the
				    * node is only owned by the monitor) */
	char *filter;              /* a node between root and node reached
				    * other than through "backing" (a filter
				    * in the way), or NULL */
	char *job;                 /* a job holding node or a node above
				    * it, or NULL */
};

/* Find dev:ino among the process's nodes.  0 and *out filled; -ENOENT
 * (e filled) when no node has that file open. */
int qmp_find_node(struct qmp *q, dev_t dev, ino_t ino,
		  struct qmp_node_info *out, struct img_err *e);
void qmp_node_info_free(struct qmp_node_info *n);

struct qmp_job {
	char *id, *type, *status, *error;
	int64_t current, total;    /* current-progress, total-progress */
};
/* query-jobs.  *out malloc'd (qmp_jobs_free). */
int qmp_query_jobs(struct qmp *q, struct qmp_job **out, int *n,
		   struct img_err *e);
void qmp_jobs_free(struct qmp_job *v, int n);

/* One job followed by its id (qmp_job.c). */
struct qmp_job_state {
	char id[64];
	char status[32];           /* QMP's JobStatus; "null" once gone */
	bool found;                /* query-jobs lists it */
	bool changed;              /* status changed in the last poll */
	int64_t current, total;    /* current-progress, total-progress */
	char error[512];           /* the job's error, when it failed */
};
/* Wait up to wait_ms for events (JOB_STATUS_CHANGE of s->id), then
 * query-jobs: status, progress, error.  -errno (e filled) when the
 * monitor fails (-ECONNRESET: the process closed it, or exited). */
int qmp_job_poll(struct qmp *q, struct qmp_job_state *s, int wait_ms,
		 struct img_err *e);
bool qmp_job_is(const struct qmp_job_state *s, const char *status);
/* cmd ("job-complete", "job-finalize", "job-dismiss", "job-cancel")
 * with {"id": id}. */
int qmp_job_simple(struct qmp *q, const char *cmd, const char *id,
		   struct img_err *e);
/* Cancel job id unless it has concluded, wait up to timeout_ms until
 * it has, and dismiss it: 0 (also when there is no such job). */
int qmp_job_abandon(struct qmp *q, const char *id, int timeout_ms,
		    struct img_err *e);
/* The same for the job s follows: s ends with its last progress (what a
 * cancelled job had done when the cancel took effect). */
int qmp_job_end(struct qmp *q, struct qmp_job_state *s, int timeout_ms,
		struct img_err *e);

#endif
