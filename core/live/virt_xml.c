/* virt_xml.c - a libvirt domain's disks and backing chains from its XML
 * (libxml2).  The same parser reads the API's live XML and the daemon's
 * status files; see virt.h.
 *
 * Disk shape (libvirt 9.0):
 *   <disk type='file' device='disk'>
 *     <driver name='qemu' type='qcow2'/>
 *     <source file='/p/top.qcow2' index='1'>
 *       <privateData><nodenames><nodename type='format' name='libvirt-1-format'/>...
 *     </source>
 *     <backingStore type='file' index='2'><format type='qcow2'/>
 *       <source file='/p/mid.qcow2'>...<relPath>mid.qcow2</relPath>...</source>
 *       <backingStore/>                        (end of the chain)
 *     </backingStore>
 *     <target dev='vda' bus='virtio'/>
 *   </disk>
 * The parser never loads external entities or DTDs and reports no errors
 * itself (XML_PARSE_NOERROR); the message goes into struct img_err.
 */
#include "virt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static bool is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
		!strcmp((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/* Attribute as a malloc'd string (NULL when absent); *oom set when the
 * copy fails. */
static char *prop(const xmlNode *n, const char *name, bool *oom)
{
	xmlChar *v = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
	char *s;

	if (!v)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	if (!s)
		*oom = true;
	return s;
}

static char *text(const xmlNode *n, bool *oom)
{
	xmlChar *v = n ? xmlNodeGetContent(n) : NULL;
	char *s;

	if (!v)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	if (!s)
		*oom = true;
	return s;
}

static int int_prop(const xmlNode *n, const char *name, int dflt)
{
	bool oom = false;
	char *v = prop(n, name, &oom), *end;
	bool ok;
	long l;

	if (!v)
		return dflt;
	l = strtol(v, &end, 10);
	ok = end != v && !*end && l >= 0 && l <= 1000000000;
	free(v);
	return ok ? (int)l : dflt;
}

/* <source> (and its privateData) into l. */
static void read_source(const xmlNode *src, struct virt_layer *l, bool *oom)
{
	const xmlNode *pd = child(src, "privateData");
	const xmlNode *nn = child(pd, "nodenames");

	l->path = prop(src, "file", oom);
	if (!l->path)
		l->path = prop(src, "dev", oom);
	if (l->index < 0)
		l->index = int_prop(src, "index", -1);
	for (xmlNode *c = nn ? nn->children : NULL; c; c = c->next) {
		char *t;

		if (!is_elem(c, "nodename"))
			continue;
		t = prop(c, "type", oom);
		if (t && !strcmp(t, "format") && !l->node_format)
			l->node_format = prop(c, "name", oom);
		else if (t && !strcmp(t, "storage") && !l->node_storage)
			l->node_storage = prop(c, "name", oom);
		free(t);
	}
	l->rel_path = text(child(pd, "relPath"), oom);
	if (l->path) {
		struct stat st;

		if (stat(l->path, &st) == 0) {
			l->has_id = true;
			l->dev = st.st_dev;
			l->ino = st.st_ino;
		}
	}
}

static int add_layer(struct virt_disk *d, struct virt_layer **out)
{
	struct virt_layer *nv = realloc(d->layers, sizeof(*nv) *
					(size_t)(d->nlayers + 1));

	if (!nv)
		return -ENOMEM;
	d->layers = nv;
	*out = &nv[d->nlayers++];
	memset(*out, 0, sizeof(**out));
	(*out)->index = -1;
	return 0;
}

/* The disk's own image, then each <backingStore> that has a source. */
static int read_chain(const xmlNode *disk, struct virt_disk *d,
		      const char *what, struct img_err *e)
{
	const xmlNode *bs = disk;
	bool oom = false;
	struct virt_layer *l;

	if (add_layer(d, &l) < 0)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	l->type = prop(disk, "type", &oom);
	l->format = prop(child(disk, "driver"), "type", &oom);
	read_source(child(disk, "source"), l, &oom);
	while (!oom && (bs = child(bs, "backingStore")) &&
	       (child(bs, "source") || xmlHasProp(bs, (const xmlChar *)"type"))) {
		if (d->nlayers >= VIRT_CHAIN_MAX)
			return err_set(e, E2BIG, "%s: disk '%s': backing chain "
				       "deeper than %d", what,
				       d->target ? d->target : "?",
				       VIRT_CHAIN_MAX);
		if (add_layer(d, &l) < 0)
			return err_set(e, ENOMEM, "%s: out of memory", what);
		l->type = prop(bs, "type", &oom);
		l->index = int_prop(bs, "index", -1);
		l->format = prop(child(bs, "format"), "type", &oom);
		read_source(child(bs, "source"), l, &oom);
	}
	return oom ? err_set(e, ENOMEM, "%s: out of memory", what) : 0;
}

static int read_disk(const xmlNode *n, struct virt_domain *dom,
		     const char *what, struct img_err *e)
{
	struct virt_disk *nv, *d;
	bool oom = false;

	if (dom->ndisks >= VIRT_DISKS_MAX)
		return err_set(e, E2BIG, "%s: more than %d <disk> elements",
			       what, VIRT_DISKS_MAX);
	nv = realloc(dom->disks, sizeof(*nv) * (size_t)(dom->ndisks + 1));
	if (!nv)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	dom->disks = nv;
	d = &nv[dom->ndisks++];
	memset(d, 0, sizeof(*d));
	d->target = prop(child(n, "target"), "dev", &oom);
	d->device = prop(n, "device", &oom);
	d->readonly = child(n, "readonly") != NULL;
	if (oom)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	return read_chain(n, d, what, e);
}

static int read_domain(const xmlNode *dn, struct virt_domain *d,
		       const char *what, struct img_err *e)
{
	const xmlNode *devs = child(dn, "devices");
	bool oom = false;
	int r = 0;

	d->name = text(child(dn, "name"), &oom);
	d->uuid = text(child(dn, "uuid"), &oom);
	d->id = int_prop(dn, "id", -1);
	if (oom)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	if (!d->name || !d->name[0])
		return err_set(e, EINVAL, "%s: <domain> has no <name>", what);
	for (xmlNode *c = devs ? devs->children : NULL; c && r == 0;
	     c = c->next)
		if (is_elem(c, "disk"))
			r = read_disk(c, d, what, e);
	return r;
}

static int read_root(const xmlNode *root, struct virt_domain *d,
		     const char *what, struct img_err *e)
{
	bool oom = false;

	if (root && is_elem(root, "domain"))
		return read_domain(root, d, what, e);
	if (!root || !is_elem(root, "domstatus"))
		return err_set(e, EINVAL, "%s: root element is <%s>, not "
			       "<domain> or <domstatus>", what,
			       root ? (const char *)root->name : "");
	d->pid = int_prop(root, "pid", 0);
	d->monitor = prop(child(root, "monitor"), "path", &oom);
	if (oom)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	if (!child(root, "domain"))
		return err_set(e, EINVAL, "%s: <domstatus> holds no <domain>",
			       what);
	return read_domain(child(root, "domain"), d, what, e);
}

int virt_parse_xml(const char *buf, size_t len, const char *what,
		   struct virt_domain *d, struct img_err *e)
{
	xmlParserCtxtPtr ctx;
	xmlDocPtr doc;
	int r;

	memset(d, 0, sizeof(*d));
	d->id = -1;
	if (len > VIRT_XML_MAX)
		return err_set(e, EFBIG, "%s: %zu bytes of XML, more than %u",
			       what, len, VIRT_XML_MAX);
	xmlInitParser();
	ctx = xmlNewParserCtxt();
	if (!ctx)
		return err_set(e, ENOMEM, "%s: out of memory", what);
	doc = xmlCtxtReadMemory(ctx, buf, (int)len, NULL, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR |
				XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *xe = xmlCtxtGetLastError(ctx);

		r = err_set(e, EINVAL, "%s: not well-formed XML (line %d: %s)",
			    what, xe ? xe->line : 0,
			    xe && xe->message ? xe->message : "?");
		if (e)
			e->msg[strcspn(e->msg, "\n")] = '\0';
		xmlFreeParserCtxt(ctx);
		return r;
	}
	r = read_root(xmlDocGetRootElement(doc), d, what, e);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctx);
	if (r < 0)
		virt_domain_free(d);
	return r;
}

void virt_domain_free(struct virt_domain *d)
{
	for (int i = 0; i < d->ndisks; i++) {
		struct virt_disk *k = &d->disks[i];

		for (int j = 0; j < k->nlayers; j++) {
			free(k->layers[j].type);
			free(k->layers[j].path);
			free(k->layers[j].format);
			free(k->layers[j].node_format);
			free(k->layers[j].node_storage);
			free(k->layers[j].rel_path);
		}
		free(k->layers);
		free(k->target);
		free(k->device);
	}
	free(d->disks);
	free(d->name);
	free(d->uuid);
	free(d->monitor);
	memset(d, 0, sizeof(*d));
	d->id = -1;
}

void virt_domains_free(struct virt_domains *ds)
{
	for (int i = 0; i < ds->n; i++)
		virt_domain_free(&ds->v[i]);
	free(ds->v);
	ds->v = NULL;
	ds->n = 0;
}

bool virt_domain_find(const struct virt_domain *d, dev_t dev, ino_t ino,
		      int *disk, int *layer)
{
	for (int i = 0; i < d->ndisks; i++)
		for (int j = 0; j < d->disks[i].nlayers; j++) {
			const struct virt_layer *l = &d->disks[i].layers[j];

			if (l->has_id && l->dev == dev && l->ino == ino) {
				*disk = i;
				*layer = j;
				return true;
			}
		}
	return false;
}
