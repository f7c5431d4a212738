/* virt.c - running libvirt domains, from the daemon's status files and
 * from the libvirt C API; see virt.h.  The XML of both goes through
 * virt_parse_xml. */
#include "virt.h"

#include <dirent.h>
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
	dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 :
			err_set_errno(e, errno, "%s: cannot list", dir);
	while (r == 0 && (de = readdir(dp))) {
		char path[4096], *buf = NULL;
		struct virt_domain d;
		size_t len = 0;

		if (!xml_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
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

/* libvirt's default error handler prints to stderr; core never prints. */
static void quiet_handler(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libvirt(void)
{
	virInitialize();
	virSetErrorFunc(NULL, quiet_handler);
}

static int api_domain(virDomainPtr dom, struct virt_domains *out,
		      struct img_err *e)
{
	const char *name = virDomainGetName(dom);
	char what[512], *xml;
	struct virt_domain d;
	unsigned id;
	int r;

	snprintf(what, sizeof(what), "libvirt domain '%s'", name ? name : "?");
	xml = virDomainGetXMLDesc(dom, 0);
	if (!xml) {
		/* Gone since the list was taken: not an error. */
		virErrorPtr ve = virGetLastError();
		if (ve && ve->code == VIR_ERR_NO_DOMAIN)
			return 0;
		return err_set(e, EIO, "%s: cannot get its XML: %s", what,
			       virGetLastErrorMessage());
	}
	r = virt_parse_xml(xml, strlen(xml), what, &d, e);
	free(xml);
	if (r < 0)
		return r;
	id = virDomainGetID(dom);
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
	pthread_once(&init_once, init_libvirt);
	c = virConnectOpenReadOnly(uri);
	if (!c)
		return err_set(e, ECONNREFUSED, "libvirt %s: cannot connect: "
			       "%s", uri, virGetLastErrorMessage());
	n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		r = err_set(e, EIO, "libvirt %s: cannot list domains: %s", uri,
			    virGetLastErrorMessage());
	for (int i = 0; i < n; i++) {
		if (r == 0)
			r = api_domain(doms[i], out, e);
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(c);
	if (r < 0)
		virt_domains_free(out);
	return r;
}
