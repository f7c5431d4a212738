/* live_proc.c - a process's command line, read the way QEMU reads it:
 * which program, which -name, where its QMP monitor listens.
 *
 * qemu-system-* takes "-opt VALUE" (or "--opt VALUE"); QMP monitors are
 * "-qmp unix:PATH[,...]", "-qmp-pretty ..." or "-chardev socket,id=X,
 * path=PATH" with "-mon chardev=X,mode=control" (-mon without
 * mode=control is the human monitor).  qemu-storage-daemon parses with
 * getopt_long ("--opt VALUE" or "--opt=VALUE") and every --monitor of it
 * is QMP.  libvirt passes the monitor as an inherited socket
 * ("-chardev socket,id=charmonitor,fd=N"); its path comes from
 * /proc/net/unix by the socket's inode.
 */
#include "live_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A command line longer than this is parsed as far as it was read. */
#define CMDLINE_MAX (4u << 20)
/* At most this many chardevs are remembered (one per -chardev). */
#define CHARDEV_MAX 256

/* One element of a key=value list; *p advanced past it.  ",," inside a
 * value is a literal comma.  Returns the unescaped element (malloc'd). */
static char *next_elem(const char **p)
{
	const char *s = *p;
	size_t len = strlen(s), n = 0;
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	while (*s) {
		if (s[0] == ',' && s[1] == ',') {
			out[n++] = ',';
			s += 2;
		} else if (s[0] == ',') {
			s++;
			break;
		} else {
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	*p = s;
	return out;
}

int live_opt_get(const char *spec, const char *implied, const char *key,
		 char **val)
{
	const char *p = spec;
	bool first = true;

	*val = NULL;
	while (*p) {
		char *el = next_elem(&p), *eq;

		if (!el)
			return -ENOMEM;
		eq = strchr(el, '=');
		if (!eq && first && implied && !strcmp(implied, key)) {
			*val = el;
			return 1;
		}
		if (eq) {
			*eq = '\0';
			if (!strcmp(el, key)) {
				memmove(el, eq + 1, strlen(eq + 1) + 1);
				*val = el;
				return 1;
			}
		}
		free(el);
		first = false;
	}
	return 0;
}

struct chardev {
	char *id, *path;
	int fd;
};

struct parse_state {
	struct chardev cd[CHARDEV_MAX];
	int ncd;
	char *mon[CHARDEV_MAX];    /* chardev ids of QMP monitors, in order */
	int nmon;
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static enum live_prog prog_of(const char *exe)
{
	const char *b = base_name(exe);

	if (!strncmp(b, "qemu-system-", 12))
		return PROG_QEMU_SYSTEM;
	if (!strncmp(b, "qemu-storage-daemon", 19))
		return PROG_QSD;
	return PROG_OTHER;
}

/* "unix:PATH[,opts]" of -qmp: the path, else NULL (*not_unix set when
 * the backend is something else). */
static int qmp_spec_path(const char *spec, char **path, bool *not_unix)
{
	const char *p;

	*path = NULL;
	if (strncmp(spec, "unix:", 5)) {
		*not_unix = true;
		return 0;
	}
	p = spec + 5;
	*path = next_elem(&p);
	return *path ? 0 : -ENOMEM;
}

static int add_chardev(struct parse_state *ps, const char *spec)
{
	char *backend = NULL, *id = NULL, *path = NULL, *fd = NULL;
	int r;

	if ((r = live_opt_get(spec, "backend", "backend", &backend)) < 0 ||
	    (r = live_opt_get(spec, NULL, "id", &id)) < 0 ||
	    (r = live_opt_get(spec, NULL, "path", &path)) < 0 ||
	    (r = live_opt_get(spec, NULL, "fd", &fd)) < 0)
		goto out;
	r = 0;
	if (!backend || strcmp(backend, "socket") || !id ||
	    ps->ncd == CHARDEV_MAX)
		goto out;
	ps->cd[ps->ncd].id = id;
	ps->cd[ps->ncd].path = path;
	ps->cd[ps->ncd].fd = fd ? atoi(fd) : -1;
	ps->ncd++;
	id = path = NULL;
out:
	free(backend);
	free(id);
	free(path);
	free(fd);
	return r;
}

/* -mon / --monitor: remember the chardev when the monitor speaks QMP. */
static int add_monitor(struct parse_state *ps, const char *spec, bool qsd)
{
	char *cd = NULL, *mode = NULL;
	int r;

	if ((r = live_opt_get(spec, "chardev", "chardev", &cd)) < 0 ||
	    (r = live_opt_get(spec, NULL, "mode", &mode)) < 0) {
		free(cd);
		return r;
	}
	if (cd && ps->nmon < CHARDEV_MAX &&
	    (qsd || (mode && !strcmp(mode, "control")))) {
		ps->mon[ps->nmon++] = cd;
		cd = NULL;
	}
	free(cd);
	free(mode);
	return 0;
}

/* The QMP monitor from the -mon/--monitor list, if no -qmp gave one. */
static int resolve_monitors(struct live_proc *p, struct parse_state *ps)
{
	for (int m = 0; m < ps->nmon && !p->qmp_path && p->qmp_fd < 0; m++)
		for (int c = 0; c < ps->ncd; c++) {
			if (strcmp(ps->cd[c].id, ps->mon[m]))
				continue;
			if (ps->cd[c].path) {
				p->qmp_path = strdup(ps->cd[c].path);
				if (!p->qmp_path)
					return -ENOMEM;
			} else {
				p->qmp_fd = ps->cd[c].fd;
			}
			p->qmp_how = p->prog == PROG_QSD ?
				"--chardev socket + --monitor" :
				"-chardev socket + -mon mode=control";
			break;
		}
	return 0;
}

/* One option with its value. */
static int take_opt(struct live_proc *p, struct parse_state *ps,
		    const char *name, const char *val)
{
	bool qsd = p->prog == PROG_QSD;

	if (!qsd && !strcmp(name, "name") && !p->guest) {
		int r = live_opt_get(val, "guest", "guest", &p->guest);
		return r < 0 ? r : 0;
	}
	if (!qsd && (!strcmp(name, "qmp") || !strcmp(name, "qmp-pretty")) &&
	    !p->qmp_path && p->qmp_fd < 0) {
		int r = qmp_spec_path(val, &p->qmp_path, &p->qmp_not_unix);
		if (p->qmp_path)
			p->qmp_how = "-qmp unix:";
		return r;
	}
	if (!strcmp(name, "chardev"))
		return add_chardev(ps, val);
	if ((!qsd && !strcmp(name, "mon")) || (qsd && !strcmp(name, "monitor")))
		return add_monitor(ps, val, qsd);
	return 0;
}

static bool wanted(const char *name)
{
	static const char *const names[] = { "name", "qmp", "qmp-pretty",
		"chardev", "mon", "monitor" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

static int parse_qemu_args(struct live_proc *p, struct parse_state *ps)
{
	for (int i = 1; i < p->argc; i++) {
		const char *a = p->argv[i], *eq;
		char name[32];
		size_t nl;
		int r;

		if (a[0] != '-')
			continue;
		a += a[1] == '-' ? 2 : 1;
		eq = strchr(a, '=');
		nl = eq ? (size_t)(eq - a) : strlen(a);
		if (nl >= sizeof(name))
			continue;
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (!wanted(name))
			continue;
		if (eq && p->prog == PROG_QSD)
			r = take_opt(p, ps, name, eq + 1);
		else if (!eq && i + 1 < p->argc)
			r = take_opt(p, ps, name, p->argv[++i]);
		else
			continue;
		if (r < 0)
			return r;
	}
	return resolve_monitors(p, ps);
}

static void free_state(struct parse_state *ps)
{
	for (int i = 0; i < ps->ncd; i++) {
		free(ps->cd[i].id);
		free(ps->cd[i].path);
	}
	for (int i = 0; i < ps->nmon; i++)
		free(ps->mon[i]);
}

int live_proc_parse(struct live_proc *p, char *const *argv, int argc,
		    const char *exe)
{
	struct parse_state *ps;
	int r = 0;

	p->qmp_fd = -1;
	p->argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!p->argv)
		return -ENOMEM;
	for (p->argc = 0; p->argc < argc; p->argc++)
		if (!(p->argv[p->argc] = strdup(argv[p->argc])))
			return -ENOMEM;
	if (!exe)
		exe = argc ? argv[0] : "";
	p->prog = prog_of(exe);
	if (p->prog == PROG_OTHER)
		return 0;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	r = parse_qemu_args(p, ps);
	free_state(ps);
	free(ps);
	return r;
}

void live_proc_free(struct live_proc *p)
{
	if (p->argv)
		for (int i = 0; i < p->argc; i++)
			free(p->argv[i]);
	free(p->argv);
	free(p->guest);
	free(p->qmp_path);
	memset(p, 0, sizeof(*p));
	p->qmp_fd = -1;
}

char *live_proc_cmdline(const struct live_proc *p, size_t max)
{
	size_t n = 0;
	char *s;

	if (max < 4)
		return NULL;
	s = malloc(max + 1);
	if (!s)
		return NULL;
	for (int i = 0; i < p->argc; i++) {
		size_t l = strlen(p->argv[i]);

		if (n + l + (i ? 1 : 0) > max) {
			if (n > max - 3)
				n = max - 3;
			memcpy(s + n, "...", 3);
			n += 3;
			break;
		}
		if (i)
			s[n++] = ' ';
		memcpy(s + n, p->argv[i], l);
		n += l;
	}
	s[n] = '\0';
	return s;
}

/* The NUL-separated /proc/PID/cmdline, up to CMDLINE_MAX bytes. */
static int read_cmdline(pid_t pid, char **buf, size_t *len)
{
	char path[64];
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	int fd;

	if (!b)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(b);
		return errno == ENOENT ? -ESRCH : -errno;
	}
	for (;;) {
		ssize_t k;

		if (n == cap) {
			char *nb;

			if (cap >= CMDLINE_MAX)
				break;
			nb = realloc(b, cap * 2 + 1);
			if (!nb) {
				close(fd);
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		k = read(fd, b + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

static int split_args(char *buf, size_t len, char ***argv, int *argc)
{
	int n = 0, k = 0;
	char **v;

	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			n++;
	if (len && buf[len - 1] != '\0')
		n++;                     /* cut short: last one unterminated */
	v = calloc((size_t)n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < len && k < n; k++) {
		v[k] = buf + i;
		i += strlen(buf + i) + 1;
	}
	*argv = v;
	*argc = k;
	return 0;
}

/* /proc/PID/exe without a " (deleted)" suffix (the binary was upgraded
 * while the process runs); "" when unreadable. */
static void read_exe(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	size_t dl = strlen(" (deleted)");

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if ((size_t)n > dl && !strcmp(buf + n - dl, " (deleted)"))
		buf[n - dl] = '\0';
}

/* A relative socket name was bound in the process's working directory
 * (a daemonized QEMU has since moved to "/", and then it is lost). */
static int absolute_in_cwd(pid_t pid, char **path)
{
	char link[64], cwd[PATH_MAX], *abs;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return 0;
	cwd[n] = '\0';
	abs = malloc((size_t)n + strlen(*path) + 2);
	if (!abs)
		return -ENOMEM;
	sprintf(abs, "%s%s%s", cwd, cwd[n - 1] == '/' ? "" : "/", *path);
	free(*path);
	*path = abs;
	return 0;
}

int live_proc_read(pid_t pid, struct live_proc *p, struct img_err *e)
{
	char exe[PATH_MAX], *buf = NULL, **argv = NULL;
	size_t len = 0;
	int argc = 0, r;

	memset(p, 0, sizeof(*p));
	p->qmp_fd = -1;
	p->pid = pid;
	r = read_cmdline(pid, &buf, &len);
	if (r == -ESRCH)
		return r;
	if (r < 0)
		return err_set_errno(e, -r, "/proc/%d/cmdline: cannot read",
				     (int)pid);
	read_exe(pid, exe, sizeof(exe));
	r = split_args(buf, len, &argv, &argc);
	if (r == 0)
		r = live_proc_parse(p, argv, argc, exe[0] ? exe : NULL);
	if (r == 0 && p->qmp_path && p->qmp_path[0] != '/')
		r = absolute_in_cwd(pid, &p->qmp_path);
	if (r == 0 && p->qmp_fd >= 0 && !p->qmp_path) {
		p->qmp_path = live_unix_path_of_fd(pid, p->qmp_fd);
		if (p->qmp_path)
			p->qmp_how = "inherited socket fd + /proc/net/unix";
	}
	free(argv);
	free(buf);
	if (r < 0) {
		live_proc_free(p);
		return err_set_errno(e, -r, "/proc/%d/cmdline: cannot parse",
				     (int)pid);
	}
	return 0;
}
