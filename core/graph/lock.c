/* lock.c - probe QEMU's OFD lock bytes and name the holders; see lock.h.
 *
 * The probe only reads lock state: F_OFD_GETLK with F_WRLCK conflicts with
 * any read lock of another open file description, which is exactly QEMU's
 * own test (util/osdep.c qemu_lock_fd_test).  One GETLK over the whole range
 * of lock bytes first: an unlocked image (the common case) costs one call.
 */
#include "lock.h"
#include "formats/io/io.h"
#include "perm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int getlk(int fd, off_t start, off_t len, bool *locked)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	*locked = fl.l_type != F_UNLCK;
	return 0;
}

int lock_probe_fd(int fd, struct lock_state *st)
{
	bool any;
	int r;

	memset(st, 0, sizeof(*st));
	r = getlk(fd, LOCK_PERM_BASE, LOCK_SHARED_BASE + LOCK_LEGACY_BIT + 1 -
		  LOCK_PERM_BASE, &any);
	for (int i = 0; r == 0 && any && i <= LOCK_LEGACY_BIT; i++) {
		bool l;

		r = getlk(fd, LOCK_PERM_BASE + i, 1, &l);
		if (r == 0 && l)
			st->held |= (uint8_t)(1u << i);
		if (r == 0)
			r = getlk(fd, LOCK_SHARED_BASE + i, 1, &l);
		if (r == 0 && l)
			st->unshared |= (uint8_t)(1u << i);
	}
	return r;
}

int lock_probe_file(const char *path, struct lock_state *st,
		    struct img_err *e)
{
	struct stat sb;
	int fd, r;

	memset(st, 0, sizeof(*st));
	if (stat(path, &sb) < 0)
		return err_set_errno(e, errno, "%s: cannot stat", path);
	if (!S_ISREG(sb.st_mode))
		return err_set(e, EINVAL, "%s: not a regular file", path);
	fd = io_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s: cannot open", path);
	r = lock_probe_fd(fd, st);
	io_close(fd);
	if (r < 0)
		return err_set_errno(e, -r, "%s: F_OFD_GETLK", path);
	return 0;
}

bool lock_line_parse(const char *line, struct lock_line *out)
{
	char kind[16], adv[16], rw[16], endbuf[32];
	long long lpid;

	/* "lock:\t1: OFDLCK  ADVISORY  READ  -1 08:02:1234 100 101", or the
	 * same without "lock:\t" in /proc/locks */
	if (!strncmp(line, "lock:", 5))
		line += 5;
	line = strchr(line, ':');            /* after the lock id */
	if (!line)
		return false;
	if (sscanf(line + 1, "%15s %15s %15s %lld %x:%x:%llu %lld %31s", kind,
		   adv, rw, &lpid, &out->maj, &out->min, &out->ino,
		   &out->start, endbuf) != 9)
		return false;
	if (strcmp(kind, "OFDLCK") && strcmp(kind, "POSIX"))
		return false;
	out->end = strcmp(endbuf, "EOF") ? atoll(endbuf) : -1;
	out->ofd = !strcmp(kind, "OFDLCK");
	return true;
}

static bool covers(const struct lock_line *l, long long byte)
{
	return l->start <= byte && (l->end < 0 || l->end >= byte);
}

void lock_line_bits(const struct lock_line *l, uint8_t *held,
		    uint8_t *unshared)
{
	*held = *unshared = 0;
	for (int b = 0; b <= LOCK_LEGACY_BIT; b++) {
		if (covers(l, LOCK_PERM_BASE + b))
			*held |= (uint8_t)(1u << b);
		if (covers(l, LOCK_SHARED_BASE + b))
			*unshared |= (uint8_t)(1u << b);
	}
}

/* One lock record of a process. */
struct lock_rec {
	pid_t pid;
	struct lock_line l;
};

struct lock_recs {
	struct lock_rec *v;
	int n, cap;
};

static void parse_lock_line(const char *line, pid_t pid, struct lock_recs *rs)
{
	struct lock_line l;

	if (!lock_line_parse(line, &l))
		return;
	if (rs->n == rs->cap) {
		int nc = rs->cap ? rs->cap * 2 : 32;
		struct lock_rec *nv = realloc(rs->v, sizeof(*nv) * nc);
		if (!nv)
			return;
		rs->v = nv;
		rs->cap = nc;
	}
	rs->v[rs->n].pid = pid;
	rs->v[rs->n].l = l;
	rs->n++;
}

static void scan_fdinfo(pid_t pid, struct lock_recs *rs)
{
	char dpath[64], fpath[320], line[256];
	struct dirent *d;
	DIR *dp;

	snprintf(dpath, sizeof(dpath), "/proc/%d/fdinfo", (int)pid);
	dp = opendir(dpath);
	if (!dp)
		return;                      /* gone, or not ours to see */
	while ((d = readdir(dp))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(fpath, sizeof(fpath), "%s/%s", dpath, d->d_name);
		/* /proc text, not an image: plain stdio is fine here. */
		f = fopen(fpath, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "lock:", 5))
				parse_lock_line(line, pid, rs);
		fclose(f);
	}
	closedir(dp);
}

static void scan_proc(struct lock_recs *rs)
{
	struct dirent *d;
	DIR *dp = opendir("/proc");

	if (!dp)
		return;
	while ((d = readdir(dp))) {
		char *end;
		long pid;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = strtol(d->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		scan_fdinfo((pid_t)pid, rs);
	}
	closedir(dp);
}

/* The command name of pid (/proc/PID/comm), "" when it is gone. */
static void read_comm(pid_t pid, char *buf, size_t len)
{
	char cpath[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(cpath, sizeof(cpath), "/proc/%d/comm", (int)pid);
	f = fopen(cpath, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Holders of dev:ino among the records; ourselves excluded. */
static int holders_from(const struct lock_recs *rs, dev_t dev, ino_t ino,
			struct lock_holder **out, int *n, struct img_err *e)
{
	struct lock_holder *v = NULL;
	int nv = 0;
	pid_t self = getpid();

	*out = NULL;
	*n = 0;
	for (int i = 0; i < rs->n; i++) {
		const struct lock_rec *r = &rs->v[i];
		uint8_t held, unsh;
		int k;

		if (r->l.maj != major(dev) || r->l.min != minor(dev) ||
		    r->l.ino != (unsigned long long)ino || r->pid == self)
			continue;
		lock_line_bits(&r->l, &held, &unsh);
		if (!held && !unsh)
			continue;            /* e.g. libvirt's byte 0 */
		for (k = 0; k < nv && v[k].pid != r->pid; k++)
			;
		if (k == nv) {
			struct lock_holder *nvv = realloc(v, sizeof(*v) *
							  (size_t)(nv + 1));

			if (!nvv) {
				free(v);
				return err_set(e, ENOMEM, "lock probe: out of "
					       "memory");
			}
			v = nvv;
			memset(&v[nv], 0, sizeof(v[nv]));
			v[nv].pid = r->pid;
			read_comm(r->pid, v[nv].comm, sizeof(v[nv].comm));
			nv++;
		}
		v[k].held |= held;
		v[k].unshared |= unsh;
		v[k].ofd |= r->l.ofd;
	}
	*out = v;
	*n = nv;
	return 0;
}

int lock_find_holders(dev_t dev, ino_t ino, struct lock_holder **out, int *n,
		      struct img_err *e)
{
	struct lock_recs rs = { 0 };
	int r;

	scan_proc(&rs);
	r = holders_from(&rs, dev, ino, out, n, e);
	free(rs.v);
	return r;
}

struct openers {
	const dev_t *devs;
	const ino_t *inos;
	int n;                     /* files asked about */
	struct lock_opener *v;     /* found so far */
	int nv;
};

/* Record that pid has file idx open (once per pid and file). */
static int add_opener(struct openers *o, long pid, int idx, struct img_err *e)
{
	struct lock_opener *nv;

	for (int k = 0; k < o->nv; k++)
		if (o->v[k].pid == pid && o->v[k].idx == idx)
			return 0;
	nv = realloc(o->v, sizeof(*nv) * (size_t)(o->nv + 1));
	if (!nv)
		return err_set(e, ENOMEM, "lock probe: out of memory");
	o->v = nv;
	nv[o->nv].idx = idx;
	nv[o->nv].pid = (pid_t)pid;
	read_comm((pid_t)pid, nv[o->nv].comm, sizeof(nv[o->nv].comm));
	o->nv++;
	return 0;
}

/* A process that is gone or not ours to see has no files we can know
 * of; any other failure to read its fd directory (out of descriptors or
 * memory) would hide an opener, so it is an error. */
static bool pid_unseen(int err)
{
	return err == ENOENT || err == ESRCH || err == EACCES || err == EPERM;
}

/* The open files of pid that are among the files asked about. */
static int scan_pid_fds(struct openers *o, long pid, struct img_err *e)
{
	char fdd[64], fp[352];
	struct dirent *f;
	DIR *fdp;
	int r = 0;

	snprintf(fdd, sizeof(fdd), "/proc/%ld/fd", pid);
	fdp = opendir(fdd);
	if (!fdp) {
		int err = errno;

		return pid_unseen(err) ? 0 : err_set_errno(e, err, "%s: cannot "
			"look for processes that have an image open", fdd);
	}
	while (r == 0 && (f = readdir(fdp))) {
		struct stat st;

		if (f->d_name[0] == '.')
			continue;
		snprintf(fp, sizeof(fp), "%s/%s", fdd, f->d_name);
		/* stat follows the magic link to the open file without
		 * opening it. */
		if (stat(fp, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		for (int i = 0; r == 0 && i < o->n; i++)
			if (st.st_dev == o->devs[i] && st.st_ino == o->inos[i])
				r = add_opener(o, pid, i, e);
	}
	closedir(fdp);
	return r;
}

int lock_find_openers(const dev_t *devs, const ino_t *inos, int n,
		      struct lock_opener **out, int *nout, struct img_err *e)
{
	struct openers o = { .devs = devs, .inos = inos, .n = n };
	pid_t self = getpid();
	struct dirent *d;
	DIR *dp;
	int r = 0;

	*out = NULL;
	*nout = 0;
	dp = opendir("/proc");
	if (!dp) {
		int err = errno;

		if (err == ENOENT)
			return 0;    /* no /proc: nothing can be said */
		return err_set_errno(e, err, "/proc: cannot look for "
				     "processes that have an image open");
	}
	while (r == 0 && (d = readdir(dp))) {
		char *end;
		long pid = strtol(d->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		r = scan_pid_fds(&o, pid, e);
	}
	closedir(dp);
	if (r < 0) {
		free(o.v);
		return r;
	}
	*out = o.v;
	*nout = o.nv;
	return 0;
}

static int add_user(struct graph *g, int node, pid_t pid, const char *comm,
		    uint8_t held, uint8_t unshared, struct img_err *e)
{
	struct guser *nu = realloc(g->users, sizeof(*nu) *
				   (size_t)(g->nusers + 1));
	struct guser *u;
	char name[128], legacy[64] = "";

	if (!nu)
		return err_set(e, ENOMEM, "lock probe: out of memory");
	g->users = nu;
	u = &g->users[g->nusers];
	memset(u, 0, sizeof(*u));
	if ((held | unshared) & (1u << LOCK_LEGACY_BIT))
		snprintf(legacy, sizeof(legacy), " [QEMU <= 6.x: byte %d/%d]",
			 LOCK_PERM_BASE + LOCK_LEGACY_BIT,
			 LOCK_SHARED_BASE + LOCK_LEGACY_BIT);
	if (pid)
		snprintf(name, sizeof(name), "process %d (%s)%s", (int)pid,
			 comm[0] ? comm : "?", legacy);
	else
		snprintf(name, sizeof(name), "a process not visible in /proc");
	u->kind = PARTY_PROCESS;
	u->name = strdup(name);
	u->user_kind = strdup("lock");
	u->image = strdup(g->nodes[node].path);
	u->node = node;
	u->perm = held & PERM_ALL;
	u->shared = (uint8_t)(PERM_ALL & ~unshared);
	u->pid = pid;
	if (!u->name || !u->user_kind || !u->image) {
		free(u->name);
		free(u->user_kind);
		free(u->image);
		return err_set(e, ENOMEM, "lock probe: out of memory");
	}
	g->nusers++;
	g->nodes[node].flags |= GN_IN_USE;
	return 0;
}

/* Whether we hold locks on node n ourselves (e.g. a commit holding its
 * locks while the editor rescans): our fdinfo was scanned too. */
static bool locked_by_us(const struct lock_recs *rs, const struct gnode *n)
{
	for (int k = 0; k < rs->n; k++)
		if (rs->v[k].pid == getpid() &&
		    rs->v[k].l.ino == (unsigned long long)n->ino &&
		    rs->v[k].l.maj == major(n->dev) &&
		    rs->v[k].l.min == minor(n->dev))
			return true;
	return false;
}

int lock_probe_graph(struct graph *g, struct img_err *e)
{
	struct lock_recs rs = { 0 };
	bool scanned = false;
	int r = 0;

	for (int i = 0; i < g->n && r == 0; i++) {
		struct gnode *n = &g->nodes[i];
		struct lock_state st;
		struct lock_holder *h = NULL;
		uint8_t seen_held = 0, seen_unsh = 0;
		int nh = 0;

		if (!n->dev || (n->flags & (GN_EXTERNAL | GN_MISSING)))
			continue;
		if (n->lock_probed) {
			st.held = n->lock_held;
			st.unshared = n->lock_unshared;
		} else if (lock_probe_file(n->path, &st, NULL) < 0) {
			continue;            /* unreadable: nothing to learn */
		}
		if (!st.held && !st.unshared)
			continue;
		if (!scanned) {
			scan_proc(&rs);
			scanned = true;
		}
		r = holders_from(&rs, n->dev, n->ino, &h, &nh, e);
		for (int k = 0; r == 0 && k < nh; k++) {
			seen_held |= h[k].held;
			seen_unsh |= h[k].unshared;
			r = add_user(g, i, h[k].pid, h[k].comm, h[k].held,
				     h[k].unshared, e);
		}
		free(h);
		/* Locks nobody visible explains, and that are not our own
		 * (our own descriptions are listed under our pid and were
		 * skipped; a lock GETLK sees that no /proc entry explains is
		 * another namespace's). */
		if (r == 0 && ((st.held & ~seen_held) ||
			       (st.unshared & ~seen_unsh)) &&
		    !locked_by_us(&rs, n))
			r = add_user(g, i, 0, "", st.held & ~seen_held,
				     st.unshared & ~seen_unsh, e);
	}
	free(rs.v);
	return r;
}

const char *lock_describe(const struct guser *u, char *buf, size_t len)
{
	char held[80], unsh[80];
	uint8_t un = (uint8_t)(PERM_ALL & ~u->shared);

	perm_names(u->perm, held, sizeof(held));
	perm_names(un, unsh, sizeof(unsh));
	if (u->perm && un)
		snprintf(buf, len, "%s holds '%s', does not share '%s'",
			 u->name, held, unsh);
	else if (u->perm)
		snprintf(buf, len, "%s holds '%s'", u->name, held);
	else
		snprintf(buf, len, "%s does not share '%s'", u->name, unsh);
	return buf;
}
