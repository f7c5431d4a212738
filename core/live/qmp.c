/* qmp.c - the QMP connection: connect, greeting, capabilities, commands
 * with ids, queued events, deadlines; see qmp.h.
 *
 * Wire format: one JSON object per line, both ways.  Commands carry an
 * "id" so a reply is matched to its command (a reply without id, as QEMU
 * sends for a line it could not parse, belongs to the command waiting).
 */
#include "qmp.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct qmp {
	int fd;
	pid_t pid;
	char who[64];              /* "PID 1234" or the socket path */
	int timeout_ms;
	struct qmp_version ver;
	char *buf;                 /* received, not yet parsed */
	size_t len, cap;
	json_t *events;            /* array, oldest first */
	pid_t peer;                /* SO_PEERCRED: who listens; 0 unknown */
	unsigned long dropped;
	unsigned long next_id;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect a non-blocking unix stream socket to path (QEMU cannot bind
 * a longer name than sun_path either). */
static int unix_connect(const char *path, int *fdout)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*fdout = fd;
	return 0;
}

/* Wait for fd to be readable until deadline: 1 ready, 0 timed out. */
static int wait_in(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r > 0 ? 1 : 0;
	}
}

static int closed(const struct qmp *q, struct img_err *e)
{
	return err_set(e, ECONNRESET, "QMP monitor of %s closed the "
		       "connection (did the process exit?)", q->who);
}

/* One line (without its newline) into *line (malloc'd), waiting until
 * deadline.  0 when none came in time, 1 with a line, -errno. */
static int read_line(struct qmp *q, int64_t deadline, char **line,
		     struct img_err *e)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		ssize_t k;
		int r;

		if (nl) {
			size_t l = (size_t)(nl - q->buf);

			*line = strndup(q->buf, l);
			if (!*line)
				return err_set(e, ENOMEM, "QMP: out of memory");
			memmove(q->buf, nl + 1, q->len - l - 1);
			q->len -= l + 1;
			return 1;
		}
		if (q->len >= QMP_MSG_MAX)
			return err_set(e, EMSGSIZE, "QMP monitor of %s: a message "
				       "longer than %u bytes", q->who,
				       QMP_MSG_MAX);
		if (q->cap - q->len < 65536) {
			size_t nc = q->cap ? q->cap * 2 : 131072;
			char *nb = realloc(q->buf, nc);

			if (!nb)
				return err_set(e, ENOMEM, "QMP: out of memory");
			q->buf = nb;
			q->cap = nc;
		}
		k = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
		if (k > 0) {
			q->len += (size_t)k;
			continue;
		}
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return closed(q, e);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return err_set_errno(e, errno, "QMP monitor of %s: "
					     "receive", q->who);
		r = wait_in(q->fd, deadline);
		if (r <= 0)
			return r < 0 ? err_set_errno(e, -r, "QMP: poll") : 0;
	}
}

/* The next message as JSON: 1 with *msg, 0 timed out, -errno. */
static int read_msg(struct qmp *q, int64_t deadline, json_t **msg,
		    struct img_err *e)
{
	json_error_t je;
	char *line = NULL;
	int r;

	do {
		free(line);
		line = NULL;
		r = read_line(q, deadline, &line, e);
		if (r <= 0)
			return r;
	} while (strspn(line, " \t\r") == strlen(line));
	*msg = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	free(line);
	if (!*msg || !json_is_object(*msg)) {
		json_decref(*msg);
		return err_set(e, EPROTO, "QMP monitor of %s sent something "
			       "that is not a JSON object (%s)", q->who,
			       je.text[0] ? je.text : "not an object");
	}
	return 1;
}

static int send_all(struct qmp *q, const char *s, size_t len, int64_t deadline,
		    struct img_err *e)
{
	while (len) {
		ssize_t k = send(q->fd, s, len, MSG_NOSIGNAL);

		if (k > 0) {
			s += k;
			len -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			int64_t left = deadline - now_ms();

			if (left <= 0 || poll(&p, 1, (int)left) == 0)
				return err_set(e, ETIMEDOUT, "QMP monitor of %s "
					       "takes no input", q->who);
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return closed(q, e);
		return err_set_errno(e, errno, "QMP monitor of %s: send",
				     q->who);
	}
	return 0;
}

static int queue_event(struct qmp *q, json_t *ev, struct img_err *e)
{
	if (json_array_size(q->events) >= QMP_EVENTS_MAX) {
		json_array_remove(q->events, 0);
		q->dropped++;
	}
	if (json_array_append_new(q->events, ev) < 0)
		return err_set(e, ENOMEM, "QMP: out of memory");
	return 0;
}

/* One version number: a JSON integer in 0..INT_MAX. */
static int version_part(json_t *qe, const char *key, int *out,
			struct img_err *e)
{
	json_t *n = json_object_get(qe, key);

	if (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) > INT_MAX)
		return err_set(e, EPROTO, "QEMU's version: \"qemu\".\"%s\" "
			       "is %s, not a version number", key,
			       !n ? "missing" : json_is_integer(n) ?
			       "out of range" : "not an integer");
	*out = (int)json_integer_value(n);
	return 0;
}

int qmp_parse_version(json_t *v, struct qmp_version *out, struct img_err *e)
{
	json_t *qe = json_object_get(v, "qemu");
	json_t *pkg = json_object_get(v, "package");
	int r;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(v) || !json_is_object(qe))
		return err_set(e, EPROTO, "QEMU's version: no \"qemu\" "
			       "object with major, minor and micro");
	if ((r = version_part(qe, "major", &out->major, e)) < 0 ||
	    (r = version_part(qe, "minor", &out->minor, e)) < 0 ||
	    (r = version_part(qe, "micro", &out->micro, e)) < 0)
		return r;
	if (pkg && !json_is_string(pkg))
		return err_set(e, EPROTO, "QEMU's version: \"package\" is "
			       "not a string");
	snprintf(out->package, sizeof(out->package), "%s",
		 pkg ? json_string_value(pkg) : "");
	return 0;
}

int qmp_version_supported(const struct qmp_version *v, struct img_err *e)
{
	if (v->major > QMP_LIVE_MAJOR ||
	    (v->major == QMP_LIVE_MAJOR && v->minor >= QMP_LIVE_MINOR))
		return 0;
	return err_set(e, ENOTSUP, "QEMU %d.%d.%d, older than %d.%d",
		       v->major, v->minor, v->micro, QMP_LIVE_MAJOR,
		       QMP_LIVE_MINOR);
}

static int greet(struct qmp *q, struct img_err *e)
{
	json_t *msg = NULL;
	int r = read_msg(q, now_ms() + q->timeout_ms, &msg, e);

	if (r == 0)
		return err_set(e, EBUSY, "QMP monitor of %s is busy (another "
			       "client is connected)", q->who);
	if (r < 0)
		return r;
	if (!json_is_object(json_object_get(msg, "QMP"))) {
		json_decref(msg);
		return err_set(e, EPROTO, "%s: no QMP greeting (is it a human "
			       "monitor, or not QEMU?)", q->who);
	}
	r = qmp_parse_version(json_object_get(json_object_get(msg, "QMP"),
					      "version"), &q->ver, e);
	json_decref(msg);
	if (r < 0) {
		err_prefix(e, "%s: QMP greeting: ", q->who);
		return r;
	}
	return qmp_exec(q, "qmp_capabilities", NULL, NULL, 0, e);
}

int qmp_open(const char *path, pid_t pid, int timeout_ms, struct qmp **out,
	     struct img_err *e)
{
	struct qmp *q = calloc(1, sizeof(*q));
	int64_t deadline;
	int r;

	*out = NULL;
	if (q)
		q->events = json_array();
	if (!q || !q->events) {
		free(q);
		return err_set(e, ENOMEM, "QMP: out of memory");
	}
	q->fd = -1;
	q->pid = pid;
	q->timeout_ms = timeout_ms > 0 ? timeout_ms : QMP_TIMEOUT_MS;
	if (pid > 0)
		snprintf(q->who, sizeof(q->who), "PID %d", (int)pid);
	else
		snprintf(q->who, sizeof(q->who), "%.60s", path);
	/* A full backlog refuses with EAGAIN: try again until the deadline. */
	deadline = now_ms() + q->timeout_ms;
	while ((r = unix_connect(path, &q->fd)) == -EAGAIN &&
	       now_ms() < deadline)
		usleep(10000);
	if (r < 0)
		r = err_set_errno(e, -r, "QMP monitor %s%s%s: cannot connect",
				  path, pid ? " of " : "", pid ? q->who : "");
	else
		r = greet(q, e);
	if (r < 0) {
		qmp_close(q);
		return r;
	}
	{
		struct ucred uc;
		socklen_t ul = sizeof(uc);

		if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
			q->peer = uc.pid;
	}
	*out = q;
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	json_decref(q->events);
	free(q->buf);
	free(q);
}

pid_t qmp_peer_pid(const struct qmp *q)
{
	return q->peer;
}

const struct qmp_version *qmp_version(const struct qmp *q)
{
	return &q->ver;
}


pid_t qmp_pid(const struct qmp *q)
{
	return q->pid;
}

static int reply_error(struct qmp *q, const char *cmd, json_t *err,
		       struct img_err *e)
{
	const char *cls = json_string_value(json_object_get(err, "class"));
	const char *desc = json_string_value(json_object_get(err, "desc"));

	return err_set(e, EIO, "QMP %s on %s failed: %s (%s)", cmd, q->who,
		       desc ? desc : "no description",
		       cls ? cls : "GenericError");
}

/* Wait for the reply with id (or without any id); queue events. */
static int await_reply(struct qmp *q, const char *cmd, json_int_t id,
		       int64_t deadline, json_t **ret, struct img_err *e)
{
	for (;;) {
		json_t *msg = NULL, *mid;
		int r = read_msg(q, deadline, &msg, e);

		if (r == 0)
			return err_set(e, ETIMEDOUT, "QMP %s on %s: no reply "
				       "within the deadline", cmd, q->who);
		if (r < 0)
			return r;
		if (json_object_get(msg, "event")) {
			if ((r = queue_event(q, msg, e)) < 0)
				return r;
			continue;
		}
		mid = json_object_get(msg, "id");
		if (mid && json_integer_value(mid) != id) {
			json_decref(msg);        /* a stale reply */
			continue;
		}
		r = 0;
		if (json_object_get(msg, "error"))
			r = reply_error(q, cmd, json_object_get(msg, "error"),
					e);
		else if (ret)
			*ret = json_incref(json_object_get(msg, "return"));
		json_decref(msg);
		return r;
	}
}

int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret,
	     int timeout_ms, struct img_err *e)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms :
				       q->timeout_ms);
	json_int_t id = (json_int_t)++q->next_id;
	json_t *m;
	char *s;
	int r;

	if (ret)
		*ret = NULL;
	m = json_pack("{s:s, s:I}", "execute", cmd, "id", id);
	if (m && args && json_object_set(m, "arguments", args) < 0) {
		json_decref(m);
		m = NULL;
	}
	s = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!s)
		return err_set(e, ENOMEM, "QMP %s: out of memory", cmd);
	r = send_all(q, s, strlen(s), deadline, e);
	if (r == 0)
		r = send_all(q, "\n", 1, deadline, e);
	free(s);
	if (r == 0)
		r = await_reply(q, cmd, id, deadline, ret, e);
	return r;
}

int qmp_event(struct qmp *q, int timeout_ms, json_t **ev, struct img_err *e)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	*ev = NULL;
	while (!json_array_size(q->events)) {
		json_t *msg = NULL;
		int r = read_msg(q, deadline, &msg, e);

		if (r <= 0)
			return r;
		if (json_object_get(msg, "event")) {
			if ((r = queue_event(q, msg, e)) < 0)
				return r;
		} else {
			json_decref(msg);        /* a reply nobody awaits */
		}
	}
	*ev = json_incref(json_array_get(q->events, 0));
	json_array_remove(q->events, 0);
	return 1;
}

int qmp_events_queued(const struct qmp *q)
{
	return (int)json_array_size(q->events);
}

unsigned long qmp_events_dropped(const struct qmp *q)
{
	return q->dropped;
}
