/* virt.c - running libvirt domains, from the daemon's status files and
 * from the libvirt C API; see virt.h.  The XML of both goes through
 * virt_parse_xml. */
#include "virt.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static int push(struct virt_domains *ds, struct virt_domain *d,
		struct img_err *e)
{
	struct virt_domain *nv = realloc(ds->v, sizeof(*nv) *
					 (size_t)(ds->n + 1));

	if (!nv) {
		virt_domain_free(d);
		return err_set(e, ENOMEM, "libvirt domains: out of memory");
	}
	ds->v = nv;
	nv[ds->n++] = *d;
	return 0;
}

/* A whole small file, NUL-terminated, at most VIRT_XML_MAX bytes. */
static int read_small(const char *path, char **buf, size_t *len,
		      struct img_err *e)
{
	struct stat st;
	size_t n = 0;
	char *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return err_set_errno(e, errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > VIRT_XML_MAX) {
		close(fd);
		return err_set(e, EINVAL, "%s: not a regular file of at most "
			       "%u bytes", path, VIRT_XML_MAX);
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, b + n, (size_t)st.st_size - n);

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

static bool alive(pid_t pid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	return pid > 0 && access(p, F_OK) == 0;
}

static bool xml_name(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' && l > 4 && !strcmp(n + l - 4, ".xml");
}

int virt_status_read(const char *dir, struct virt_domains *out,
		     struct img_err *e)
{
	struct dirent *de;
	DIR *dp;
	int r = 0;

	out->v = NULL;
	out->n = 0;
	/* Missing (no libvirt) or not ours to read (the files are root's
	 * alone): no domains from here; the API may still know them. */
	dp = opendir(dir);
	if (!dp)
		return errno == ENOENT || errno == EACCES ? 0 :
			err_set_errno(e, errno, "%s: cannot list", dir);
	while (r == 0 && (de = readdir(dp))) {
		char path[4096], *buf = NULL;
		struct virt_domain d;
		size_t len = 0;

		if (!xml_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (access(path, R_OK) < 0 && errno == EACCES)
			continue;
		r = read_small(path, &buf, &len, e);
		if (r == 0)
			r = virt_parse_xml(buf, len, path, &d, e);
		free(buf);
		if (r < 0)
			break;
		/* A status file whose QEMU is gone is stale (the daemon
		 * died before removing it). */
		if (!d.pid || !alive(d.pid)) {
			virt_domain_free(&d);
			continue;
		}
		d.origin = "status file";
		r = push(out, &d, e);
	}
	closedir(dp);
	if (r < 0)
		virt_domains_free(out);
	return r;
}

/* libvirt is loaded when first needed, not linked: linked, it and the
 * libraries it pulls in (selinux, numa, capabilities, TLS, ...) would run
 * their constructors, read /proc and /sys in every imgraph command, and
 * double its start-up time, for the few commands that ask libvirt. */
#define VIRT_LIB "libvirt.so.0"

#define VIRT_FNS(X) \
	X(virInitialize) X(virSetErrorFunc) X(virConnectOpenReadOnly) \
	X(virConnectClose) X(virConnectListAllDomains) X(virDomainGetName) \
	X(virDomainGetXMLDesc) X(virDomainGetID) X(virDomainFree) \
	X(virGetLastError) X(virGetLastErrorMessage) X(virConnectOpen) \
	X(virDomainLookupByName) X(virDomainBlockCommit) \
	X(virDomainGetBlockJobInfo) X(virDomainBlockJobAbort)

static struct {
#define X(f) __typeof__(f) *f;
	VIRT_FNS(X)
#undef X
	char err[256];             /* why loading failed, "" when loaded */
} lv;

/* libvirt's default error handler prints to stderr; core never prints. */
static void quiet_handler(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err;
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load_libvirt(void)
{
	void *h = dlopen(VIRT_LIB, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(lv.err, sizeof(lv.err), "%s", dlerror());
		return;
	}
#define X(f) \
	if (!lv.err[0] && !(lv.f = (__typeof__(f) *)dlsym(h, #f))) \
		snprintf(lv.err, sizeof(lv.err), "%s: no %s", VIRT_LIB, #f);
	VIRT_FNS(X)
#undef X
	if (lv.err[0])
		return;
	lv.virInitialize();
	lv.virSetErrorFunc(NULL, quiet_handler);
}

static int api_domain(virDomainPtr dom, struct virt_domains *out,
		      struct img_err *e)
{
	const char *name = lv.virDomainGetName(dom);
	char what[512], *xml;
	struct virt_domain d;
	unsigned id;
	int r;

	snprintf(what, sizeof(what), "libvirt domain '%s'", name ? name : "?");
	xml = lv.virDomainGetXMLDesc(dom, 0);
	if (!xml) {
		/* Gone since the list was taken: not an error. */
		virErrorPtr ve = lv.virGetLastError();
		if (ve && ve->code == VIR_ERR_NO_DOMAIN)
			return 0;
		return err_set(e, EIO, "%s: cannot get its XML: %s", what,
			       lv.virGetLastErrorMessage());
	}
	r = virt_parse_xml(xml, strlen(xml), what, &d, e);
	free(xml);
	if (r < 0)
		return r;
	id = lv.virDomainGetID(dom);
	if (id != (unsigned)-1)
		d.id = (int)id;
	d.origin = "libvirt API";
	return push(out, &d, e);
}

int virt_api_list(const char *uri, struct virt_domains *out,
		  struct img_err *e)
{
	virDomainPtr *doms = NULL;
	virConnectPtr c;
	int n, r = 0;

	out->v = NULL;
	out->n = 0;
	pthread_once(&load_once, load_libvirt);
	if (lv.err[0])
		return err_set(e, ENOSYS, "libvirt cannot be used: %s", lv.err);
	c = lv.virConnectOpenReadOnly(uri);
	if (!c)
		return err_set(e, ECONNREFUSED, "libvirt %s: cannot connect: "
			       "%s", uri, lv.virGetLastErrorMessage());
	n = lv.virConnectListAllDomains(c, &doms,
					VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		r = err_set(e, EIO, "libvirt %s: cannot list domains: %s", uri,
			    lv.virGetLastErrorMessage());
	for (int i = 0; i < n; i++) {
		if (r == 0)
			r = api_domain(doms[i], out, e);
		lv.virDomainFree(doms[i]);
	}
	free(doms);
	lv.virConnectClose(c);
	if (r < 0)
		virt_domains_free(out);
	return r;
}

/* ---- block jobs (a live commit through libvirt) ----------------------- */

struct virt_conn {
	virConnectPtr c;
};

int virt_open(const char *uri, bool rw, struct virt_conn **out,
	      struct img_err *e)
{
	struct virt_conn *vc;

	*out = NULL;
	pthread_once(&load_once, load_libvirt);
	if (lv.err[0])
		return err_set(e, ENOSYS, "libvirt cannot be used: %s", lv.err);
	vc = calloc(1, sizeof(*vc));
	if (!vc)
		return err_set(e, ENOMEM, "libvirt: out of memory");
	vc->c = rw ? lv.virConnectOpen(uri) : lv.virConnectOpenReadOnly(uri);
	if (!vc->c) {
		free(vc);
		return err_set(e, ECONNREFUSED, "libvirt %s: cannot connect: "
			       "%s", uri, lv.virGetLastErrorMessage());
	}
	*out = vc;
	return 0;
}

void virt_close(struct virt_conn *vc)
{
	if (!vc)
		return;
	lv.virConnectClose(vc->c);
	free(vc);
}

static virDomainPtr lookup(struct virt_conn *vc, const char *dom,
			   struct img_err *e)
{
	virDomainPtr d = lv.virDomainLookupByName(vc->c, dom);

	if (!d)
		err_set(e, ENOENT, "libvirt domain '%s': %s", dom,
			lv.virGetLastErrorMessage());
	return d;
}

int virt_domain_get(struct virt_conn *vc, const char *dom,
		    struct virt_domain *out, struct img_err *e)
{
	virDomainPtr d = lookup(vc, dom, e);
	char what[300], *xml;
	int r;

	if (!d)
		return -ENOENT;
	xml = lv.virDomainGetXMLDesc(d, 0);
	lv.virDomainFree(d);
	if (!xml)
		return err_set(e, EIO, "libvirt domain '%s': cannot get its "
			       "XML: %s", dom, lv.virGetLastErrorMessage());
	snprintf(what, sizeof(what), "libvirt domain '%s'", dom);
	r = virt_parse_xml(xml, strlen(xml), what, out, e);
	free(xml);
	if (r == 0)
		out->origin = "libvirt API";
	return r;
}

int virt_job_info(struct virt_conn *vc, const char *dom, const char *disk,
		  uint64_t *cur, uint64_t *end, struct img_err *e)
{
	virDomainBlockJobInfo info;
	virDomainPtr d = lookup(vc, dom, e);
	int r;

	if (!d)
		return -ENOENT;
	memset(&info, 0, sizeof(info));
	r = lv.virDomainGetBlockJobInfo(d, disk, &info, 0);
	lv.virDomainFree(d);
	if (r < 0)
		return err_set(e, EIO, "libvirt domain '%s' disk %s: block job "
			       "info: %s", dom, disk,
			       lv.virGetLastErrorMessage());
	if (cur)
		*cur = info.cur;
	if (end)
		*end = info.end;
	return r > 0 ? 1 : 0;
}

int virt_commit(struct virt_conn *vc, const char *dom, const char *disk,
		const char *base, const char *top, uint64_t bytes_per_s,
		unsigned flags, struct img_err *e)
{
	unsigned vf = VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES;
	virDomainPtr d = lookup(vc, dom, e);
	int r;

	if (!d)
		return -ENOENT;
	if (flags & VIRT_COMMIT_ACTIVE)
		vf |= VIR_DOMAIN_BLOCK_COMMIT_ACTIVE;
	if (flags & VIRT_COMMIT_RELATIVE)
		vf |= VIR_DOMAIN_BLOCK_COMMIT_RELATIVE;
	r = lv.virDomainBlockCommit(d, disk, base, top,
				    (unsigned long)bytes_per_s, vf);
	lv.virDomainFree(d);
	if (r < 0)
		return err_set(e, EIO, "libvirt domain '%s' disk %s: block "
			       "commit: %s", dom, disk,
			       lv.virGetLastErrorMessage());
	return 0;
}

int virt_job_abort(struct virt_conn *vc, const char *dom, const char *disk,
		   bool pivot, struct img_err *e)
{
	virDomainPtr d = lookup(vc, dom, e);
	int r;

	if (!d)
		return -ENOENT;
	r = lv.virDomainBlockJobAbort(d, disk, pivot ?
				      VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT : 0);
	lv.virDomainFree(d);
	if (r < 0)
		return err_set(e, EAGAIN, "libvirt domain '%s' disk %s: %s: "
			       "%s", dom, disk, pivot ? "pivot" : "abort",
			       lv.virGetLastErrorMessage());
	return 0;
}
