/* test_qmp.c - core/live's QMP client against a real qemu-storage-daemon
 * (and qemu-system-x86_64 for a human monitor): handshake, commands and
 * errors, events queued between replies, a busy monitor, deadlines, a
 * process that exits, and node mapping by dev:ino (symlinked and relative
 * names in a daemon that moved to "/", an export, a filter, a job).
 * Each daemon is a child of the test process in the scratch dir, and dies
 * with it (PR_SET_PDEATHSIG), so a failed assertion leaves none behind. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/live/qmp.h"

static pid_t daemon_pid;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void kill_daemon(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGCONT);
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = 0;
	}
}

static void setup(void)
{
	ut_tmp_setup();
}

static void teardown(void)
{
	kill_daemon();
	ut_tmp_teardown();
}

/* Run the shell command line (exec'ed, so its pid is the daemon's) in the
 * scratch dir as our child, and wait until the unix socket sock accepts
 * (QEMU binds before it listens). */
static void spawn(const char *sock, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void spawn(const char *sock, const char *fmt, ...)
{
	struct sockaddr_un sa;
	char cmd[4096];
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (chdir(ut_tmpdir) < 0 ||
		    !freopen("/dev/null", "r", stdin))
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	daemon_pid = pid;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", ut_tmpdir, sock);
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0), r;

		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0)
			return;
		ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0,
			      "daemon exited: %s", cmd);
		usleep(10000);
	}
	ck_abort_msg("no socket %s from: %s", sa.sun_path, cmd);
}

/* Chain base <- mid <- top (relative names), 8 MiB of data in mid, and
 * link.qcow2 -> top.qcow2. */
static void make_chain(void)
{
	sh("cd %s && qemu-img create -q -f qcow2 base.qcow2 16M && "
	   "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 && "
	   "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 && "
	   "qemu-io -f qcow2 -c 'write -P 0x22 0 8M' mid.qcow2 >/dev/null && "
	   "ln -s top.qcow2 link.qcow2", ut_tmpdir);
}

/* qemu-storage-daemon in the scratch dir, QMP on m.sock, node "top" on
 * link.qcow2 (a relative name through a symlink), plus extra options. */
static void start_qsd(const char *extra)
{
	spawn("m.sock", "exec qemu-storage-daemon --chardev socket,path=m.sock,"
	      "server=on,wait=off,id=m --monitor chardev=m --blockdev "
	      "driver=qcow2,node-name=top,file.driver=file,"
	      "file.filename=link.qcow2 %s", extra);
}

static struct qmp *open_ok(int timeout_ms)
{
	char p[256];
	struct img_err e;
	struct qmp *q;

	snprintf(p, sizeof(p), "%s/m.sock", ut_tmpdir);
	ck_assert_msg(qmp_open(p, daemon_pid, timeout_ms, &q, &e) == 0, "%s",
		      e.msg);
	return q;
}

static void devino(const char *name, dev_t *dev, ino_t *ino)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", ut_tmpdir, name);
	ck_assert_int_eq(stat(p, &st), 0);
	*dev = st.st_dev;
	*ino = st.st_ino;
}

START_TEST(handshake_and_commands)
{
	struct img_err e;
	json_t *v = NULL;
	struct qmp *q;
	const struct qmp_version *ver;

	make_chain();
	start_qsd("");
	q = open_ok(0);
	ver = qmp_version(q);
	ck_assert_int_ge(ver->major, 7);
	/* the listener is the daemon itself (exec'ed: our child's pid) */
	ck_assert_int_eq(qmp_peer_pid(q), daemon_pid);
	ck_assert_int_eq(qmp_exec(q, "query-version", NULL, &v, 0, &e), 0);
	{
		/* the real reply parses as the greeting did */
		struct qmp_version pv;

		ck_assert_msg(qmp_parse_version(v, &pv, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(pv.major, ver->major);
		ck_assert_int_eq(pv.minor, ver->minor);
		ck_assert_int_eq(pv.micro, ver->micro);
		ck_assert_str_eq(pv.package, ver->package);
		ck_assert_int_eq(qmp_version_supported(&pv, &e), 0);
	}
	json_decref(v);
	ck_assert_int_eq(qmp_exec(q, "no-such-command", NULL, &v, 0, &e),
			 -EIO);
	ck_assert_ptr_null(v);
	ck_assert_ptr_nonnull(strstr(e.msg, "QMP no-such-command on PID"));
	ck_assert_ptr_nonnull(strstr(e.msg, "CommandNotFound"));
	qmp_close(q);
}
END_TEST

static const char *ev_status(json_t *ev)
{
	return json_string_value(json_object_get(json_object_get(ev, "data"),
						 "status"));
}

/* Guards: events that arrive before a reply are queued, in order, not
 * lost and not taken for the reply. */
START_TEST(events_between_replies)
{
	struct qmp_node_info n, mid, base;
	struct qmp_job *jobs;
	struct img_err e;
	json_t *args, *ev;
	struct qmp *q;
	int nj, got_concluded = 0;
	dev_t dev;
	ino_t ino;

	make_chain();
	start_qsd("");
	q = open_ok(0);
	devino("mid.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &mid, &e) == 0, "%s", e.msg);
	devino("base.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &base, &e) == 0, "%s", e.msg);
	/* speed 1: the job stays running until cancelled. */
	args = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:b}", "job-id", "c1",
			 "device", mid.root, "top-node", mid.node, "base-node",
			 base.node, "speed", 1, "auto-finalize", 0,
			 "auto-dismiss", 0);
	qmp_node_info_free(&mid);
	qmp_node_info_free(&base);
	ck_assert_msg(qmp_exec(q, "block-commit", args, NULL, 0, &e) == 0,
		      "%s", e.msg);
	json_decref(args);
	ck_assert_int_ge(qmp_events_queued(q), 1);
	ck_assert_int_eq(qmp_event(q, 0, &ev, &e), 1);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "event")),
			 "JOB_STATUS_CHANGE");
	ck_assert_str_eq(ev_status(ev), "created");
	json_decref(ev);
	ck_assert_int_eq(qmp_query_jobs(q, &jobs, &nj, &e), 0);
	ck_assert_int_eq(nj, 1);
	ck_assert_str_eq(jobs[0].id, "c1");
	ck_assert_str_eq(jobs[0].type, "commit");
	ck_assert_int_gt(jobs[0].total, 0);
	qmp_jobs_free(jobs, nj);
	/* The job holds mid: node mapping names it. */
	devino("mid.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &n, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(n.job, "c1");
	qmp_node_info_free(&n);
	args = json_pack("{s:s}", "id", "c1");
	ck_assert_int_eq(qmp_exec(q, "job-cancel", args, NULL, 0, &e), 0);
	json_decref(args);
	while (!got_concluded) {
		ck_assert_msg(qmp_event(q, 5000, &ev, &e) == 1, "no event: %s",
			      e.msg);
		if (ev_status(ev) && !strcmp(ev_status(ev), "concluded"))
			got_concluded = 1;
		json_decref(ev);
	}
	ck_assert_int_eq(qmp_event(q, 50, &ev, &e), 0);   /* none left */
	ck_assert_uint_eq(qmp_events_dropped(q), 0);
	qmp_close(q);
}
END_TEST

/* Guards: a monitor with another client gets nothing from us and says
 * who is busy; the other client's session goes on. */
START_TEST(busy_monitor)
{
	char p[256], want[128];
	struct img_err e;
	struct qmp *q1, *q2;
	struct timespec t0, t1;

	make_chain();
	start_qsd("");
	q1 = open_ok(0);
	snprintf(p, sizeof(p), "%s/m.sock", ut_tmpdir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(qmp_open(p, daemon_pid, 300, &q2, &e), -EBUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_ptr_null(q2);
	snprintf(want, sizeof(want), "QMP monitor of PID %d is busy (another "
		 "client is connected)", (int)daemon_pid);
	ck_assert_str_eq(e.msg, want);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
	ck_assert_int_eq(qmp_exec(q1, "query-version", NULL, NULL, 0, &e), 0);
	qmp_close(q1);
	/* Free again once the first client left. */
	q2 = open_ok(0);
	qmp_close(q2);
}
END_TEST

/* Guards: every wait has a deadline; a late reply is not mistaken for the
 * next command's; a process that exits is reported, not waited for. */
START_TEST(deadlines_and_exit)
{
	struct img_err e;
	json_t *v = NULL;
	struct qmp *q;
	int r;

	make_chain();
	start_qsd("");
	q = open_ok(0);
	kill(daemon_pid, SIGSTOP);
	ck_assert_int_eq(qmp_exec(q, "query-version", NULL, NULL, 200, &e),
			 -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no reply"));
	kill(daemon_pid, SIGCONT);
	ck_assert_int_eq(qmp_exec(q, "query-named-block-nodes", NULL, &v, 0,
				  &e), 0);
	ck_assert(json_is_array(v));        /* not query-version's object */
	json_decref(v);
	/* QEMU may be gone before its reply to quit reaches us. */
	r = qmp_exec(q, "quit", NULL, NULL, 0, &e);
	ck_assert_msg(r == 0 || r == -ECONNRESET, "quit: %s", e.msg);
	ck_assert_int_eq(qmp_exec(q, "query-version", NULL, NULL, 0, &e),
			 -ECONNRESET);
	ck_assert_ptr_nonnull(strstr(e.msg, "closed the connection"));
	qmp_close(q);
}
END_TEST

START_TEST(connect_errors)
{
	struct sockaddr_un sa;
	char p[256];
	struct img_err e;
	struct qmp *q;
	int fd;

	snprintf(p, sizeof(p), "%s/none.sock", ut_tmpdir);
	ck_assert_int_eq(qmp_open(p, 0, 200, &q, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "none.sock"));
	/* A socket file nobody listens on (a QEMU that died). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dead.sock", ut_tmpdir);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(qmp_open(sa.sun_path, 0, 200, &q, NULL),
			 -ECONNREFUSED);
}
END_TEST

/* A human monitor is not QMP. */
START_TEST(human_monitor_refused)
{
	char p[256];
	struct img_err e;
	struct qmp *q;

	spawn("h.sock", "exec qemu-system-x86_64 -M none -nodefaults -display "
	      "none -monitor unix:h.sock,server=on,wait=off");
	snprintf(p, sizeof(p), "%s/h.sock", ut_tmpdir);
	ck_assert_int_eq(qmp_open(p, daemon_pid, 2000, &q, &e), -EPROTO);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a JSON object"));
}
END_TEST

/* Node mapping by dev:ino: the daemon opened top through a symlink by a
 * relative name, its backing files by relative names; an NBD export uses
 * top. */
START_TEST(node_mapping_export)
{
	struct qmp_node_info n;
	struct img_err e;
	struct qmp *q;
	char extra[512];
	dev_t dev;
	ino_t ino;

	make_chain();
	snprintf(extra, sizeof(extra), "--nbd-server addr.type=unix,addr.path="
		 "nbd.sock --export type=nbd,id=e0,node-name=top,name=disk,"
		 "writable=on");
	start_qsd(extra);
	q = open_ok(0);
	devino("top.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &n, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(n.node, "top");
	ck_assert_str_eq(n.drv, "qcow2");
	ck_assert_ptr_nonnull(n.file_node);
	ck_assert_str_ne(n.file_node, "top");
	ck_assert(!n.ro);
	ck_assert_int_eq(n.depth, 0);
	ck_assert_str_eq(n.root, "top");
	ck_assert_str_eq(n.backend_kind, "export");
	ck_assert_str_eq(n.backend, "e0");
	ck_assert_ptr_null(n.filter);
	ck_assert_ptr_null(n.job);
	qmp_node_info_free(&n);
	devino("base.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &n, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(n.depth, 2);
	ck_assert(n.ro);
	ck_assert_str_eq(n.root, "top");
	qmp_node_info_free(&n);
	sh("cd %s && qemu-img create -q -f qcow2 other.qcow2 1M", ut_tmpdir);
	devino("other.qcow2", &dev, &ino);
	ck_assert_int_eq(qmp_find_node(q, dev, ino, &n, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no block node of PID"));
	qmp_close(q);
}
END_TEST

/* A filter above top is in the way; with no device or export the root
 * belongs to the monitor alone. */
START_TEST(node_mapping_filter)
{
	struct qmp_node_info n;
	struct img_err e;
	struct qmp *q;
	dev_t dev;
	ino_t ino;

	make_chain();
	start_qsd("--object throttle-group,id=tg,x-bps-total=1000000 "
		  "--blockdev driver=throttle,node-name=thr,file=top,"
		  "throttle-group=tg");
	q = open_ok(0);
	devino("top.qcow2", &dev, &ino);
	ck_assert_msg(qmp_find_node(q, dev, ino, &n, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(n.node, "top");
	ck_assert_str_eq(n.root, "thr");
	ck_assert_str_eq(n.filter, "thr (throttle)");
	ck_assert_str_eq(n.backend_kind, "monitor");
	ck_assert_ptr_null(n.backend);
	qmp_node_info_free(&n);
	qmp_close(q);
}
END_TEST

/* The version decision the plan takes (plan_live.c open_qmp calls
 * qmp_version_supported on what qmp_parse_version read): only 7.2 is
 * installed, so older and newer QEMUs are their query-version replies. */
static int version_of(const char *reply, struct qmp_version *v,
		      struct img_err *e)
{
	json_error_t je;
	json_t *j = json_loads(reply, 0, &je);
	int r;

	ck_assert_msg(j != NULL, "bad test JSON: %s", je.text);
	r = qmp_parse_version(json_object_get(j, "return"), v, e);
	json_decref(j);
	return r;
}

#define REPLY(maj, min, mic) "{\"return\": {\"qemu\": {\"major\": " #maj \
	", \"minor\": " #min ", \"micro\": " #mic "}, \"package\": \"\"}}"

START_TEST(version_decision)
{
	static const struct { const char *reply; int ok; } cases[] = {
		{ REPLY(7, 1, 0), 0 },
		{ REPLY(7, 1, 99), 0 },
		{ REPLY(6, 2, 0), 0 },
		{ REPLY(2, 12, 0), 0 },
		{ REPLY(7, 2, 0), 1 },
		{ REPLY(7, 2, 22), 1 },
		{ REPLY(8, 0, 0), 1 },
		{ REPLY(10, 1, 0), 1 },
	};
	struct qmp_version v;
	struct img_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err_clear(&e);
		ck_assert_msg(version_of(cases[i].reply, &v, &e) == 0, "%s",
			      e.msg);
		ck_assert_msg((qmp_version_supported(&v, &e) == 0) ==
			      cases[i].ok, "%s", cases[i].reply);
		if (!cases[i].ok) {
			ck_assert_int_eq(qmp_version_supported(&v, &e),
					 -ENOTSUP);
			ck_assert_msg(strstr(e.msg, "QEMU ") == e.msg &&
				      strstr(e.msg, ", older than 7.2"), "%s",
				      e.msg);
		}
	}
	err_clear(&e);
	ck_assert_int_eq(version_of(REPLY(7, 1, 0), &v, &e), 0);
	qmp_version_supported(&v, &e);
	ck_assert_str_eq(e.msg, "QEMU 7.1.0, older than 7.2");
}
END_TEST

START_TEST(version_malformed)
{
	static const struct { const char *reply, *says; } cases[] = {
		{ "{\"return\": {}}", "no \"qemu\" object" },
		{ "{\"return\": []}", "no \"qemu\" object" },
		{ "{\"error\": {\"class\": \"GenericError\"}}",
		  "no \"qemu\" object" },
		{ "{\"return\": {\"qemu\": \"7.2.0\"}}", "no \"qemu\" object" },
		{ "{\"return\": {\"qemu\": {\"minor\": 2, \"micro\": 0}}}",
		  "\"qemu\".\"major\" is missing" },
		{ "{\"return\": {\"qemu\": {\"major\": \"8\", \"minor\": 0, "
		  "\"micro\": 0}}}", "\"qemu\".\"major\" is not an integer" },
		{ "{\"return\": {\"qemu\": {\"major\": 8, \"minor\": 1.5, "
		  "\"micro\": 0}}}", "\"qemu\".\"minor\" is not an integer" },
		{ "{\"return\": {\"qemu\": {\"major\": 8, \"minor\": 0, "
		  "\"micro\": -1}}}", "\"qemu\".\"micro\" is out of range" },
		{ "{\"return\": {\"qemu\": {\"major\": 9999999999, "
		  "\"minor\": 0, \"micro\": 0}}}",
		  "\"qemu\".\"major\" is out of range" },
		{ "{\"return\": {\"qemu\": {\"major\": 8, \"minor\": 0, "
		  "\"micro\": 0}, \"package\": 7}}", "\"package\" is not a "
		  "string" },
	};
	struct qmp_version v;
	struct img_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err_clear(&e);
		ck_assert_int_eq(version_of(cases[i].reply, &v, &e), -EPROTO);
		ck_assert_msg(strstr(e.msg, "QEMU's version: ") == e.msg &&
			      strstr(e.msg, cases[i].says), "%s: %s",
			      cases[i].reply, e.msg);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("qmp");
	TCase *t = tcase_create("qsd");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, handshake_and_commands);
	tcase_add_test(t, events_between_replies);
	tcase_add_test(t, busy_monitor);
	tcase_add_test(t, deadlines_and_exit);
	tcase_add_test(t, connect_errors);
	tcase_add_test(t, human_monitor_refused);
	tcase_add_test(t, node_mapping_export);
	tcase_add_test(t, node_mapping_filter);
	suite_add_tcase(s, t);
	t = tcase_create("version");
	tcase_add_test(t, version_decision);
	tcase_add_test(t, version_malformed);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ut_run(suite());
}
