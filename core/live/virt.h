/* virt.h - libvirt domains as imgraph needs to see them: each running
 * domain's disks and their backing chains, with libvirt's node names.
 *
 * Two sources, one parser (libxml2):
 *   - the libvirt C API (read-only connection): virConnectListAllDomains
 *     and each domain's live XML (virDomainGetXMLDesc);
 *   - libvirt's status files /run/libvirt/qemu/NAME.xml (<domstatus
 *     pid=...>), readable by root without a daemon, which also give the
 *     QEMU PID, the monitor path and the node names.
 * Every layer's file is identified by dev:ino (stat), so a domain that
 * names an image by another path or a symlink still matches it.
 * libvirt reports its errors through virGetLastError, never on stderr
 * (the default handler is replaced once).
 */
#ifndef IMGRAPH_VIRT_H
#define IMGRAPH_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "formats/io/err.h"

#define VIRT_STATUS_DIR "/run/libvirt/qemu"
#define VIRT_URI "qemu:///system"
#define VIRT_XML_MAX (16u << 20)
#define VIRT_DISKS_MAX 1024
/* libxml2 refuses documents nested deeper than 256 elements, so a chain
 * in libvirt's nested <backingStore> form ends below that anyway. */
#define VIRT_CHAIN_MAX 200

/* One image of a disk's chain; layers[0] is the disk's active image. */
struct virt_layer {
	char *type;                /* "file", "block", "network", ... */
	char *path;                /* source file= or dev=; NULL otherwise */
	char *format;              /* "qcow2", "raw", ...; NULL unknown */
	char *node_format;         /* libvirt-K-format (status XML only) */
	char *node_storage;        /* libvirt-K-storage (status XML only) */
	char *rel_path;            /* the name as the overlay records it, when
				    * libvirt kept it (status XML only) */
	int index;                 /* libvirt's index= (vda[N]); -1 none */
	bool has_id;               /* dev/ino valid (stat succeeded) */
	dev_t dev;
	ino_t ino;
};

struct virt_disk {
	char *target;              /* "vda" */
	char *device;              /* "disk", "cdrom", ... */
	bool readonly;
	struct virt_layer *layers;
	int nlayers;
};

struct virt_domain {
	char *name;
	char *uuid;
	int id;                    /* libvirt's domain id; -1 unknown */
	pid_t pid;                 /* QEMU's PID (status XML); 0 unknown */
	char *monitor;             /* monitor socket (status XML); NULL */
	const char *origin;        /* "status file" or "libvirt API" */
	struct virt_disk *disks;
	int ndisks;
};

struct virt_domains {
	struct virt_domain *v;
	int n;
};

/* Parse a <domain> or <domstatus> document (what names it for errors:
 * a file name, "domain NAME").  Refuses more than VIRT_XML_MAX bytes,
 * more than VIRT_DISKS_MAX disks or chains deeper than VIRT_CHAIN_MAX.  0, or -errno with e
 * filled naming what and the element at fault. */
int virt_parse_xml(const char *buf, size_t len, const char *what,
		   struct virt_domain *d, struct img_err *e);

/* Every NAME.xml of dir (VIRT_STATUS_DIR) that is a running domain's
 * status.  A missing dir, or one we may not read (not root), is no
 * domains, and so is a file we may not read; a malformed file is an
 * error naming it. */
int virt_status_read(const char *dir, struct virt_domains *out,
		     struct img_err *e);

/* Every running domain through the libvirt API at uri (VIRT_URI); the
 * library (libvirt.so.0) is loaded on the first call.  -ENOSYS when it
 * cannot be loaded, -ECONNREFUSED when the daemon cannot be reached (e
 * filled). */
int virt_api_list(const char *uri, struct virt_domains *out,
		  struct img_err *e);

void virt_domain_free(struct virt_domain *d);
void virt_domains_free(struct virt_domains *ds);

/* The first disk and layer of d holding dev:ino: true and *disk, *layer
 * set, else false. */
bool virt_domain_find(const struct virt_domain *d, dev_t dev, ino_t ino,
		      int *disk, int *layer);

/* Block jobs through the API (a live commit of a domain's disk).  Errors
 * carry libvirt's message. */
struct virt_conn;
int virt_open(const char *uri, bool rw, struct virt_conn **out,
	      struct img_err *e);
void virt_close(struct virt_conn *vc);
/* The domain's live XML, parsed. */
int virt_domain_get(struct virt_conn *vc, const char *dom,
		    struct virt_domain *out, struct img_err *e);
/* 1 with cur/end while a block job runs on disk, 0 when none. */
int virt_job_info(struct virt_conn *vc, const char *dom, const char *disk,
		  uint64_t *cur, uint64_t *end, struct img_err *e);
#define VIRT_COMMIT_ACTIVE   1u    /* top is the active image: pivot */
#define VIRT_COMMIT_RELATIVE 2u    /* keep relative backing names */
/* virDomainBlockCommit (top NULL: the active image). */
int virt_commit(struct virt_conn *vc, const char *dom, const char *disk,
		const char *base, const char *top, uint64_t bytes_per_s,
		unsigned flags, struct img_err *e);
/* virDomainBlockJobAbort: cancel, or pivot (-EAGAIN: not ready yet). */
int virt_job_abort(struct virt_conn *vc, const char *dom, const char *disk,
		   bool pivot, struct img_err *e);

#endif
