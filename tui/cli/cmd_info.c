/* cmd_info.c - `imgraph info [--output=human|json|yaml] [-f FMT] IMAGE`.
 *
 * One image (not the chain).  JSON/YAML use qemu-img info's keys so that
 * scripts written for qemu-img keep working; imgraph adds "write-refusal"
 * (why we would not write this image) and "snapshot-count".  The image is opened with IMG_O_INSPECT, so dirty,
 * corrupt or snapshot-carrying images can still be examined.
 */
#include "cmd.h"
#include "formats/img.h"
#include "core/graph/resolve.h"
#include "formats/format.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs("Usage: imgraph info [--output=human|json|yaml] [-f FMT] IMAGE\n"
	      "Show the format, sizes, backing file and feature flags of IMAGE,\n"
	      "like 'qemu-img info'.\n"
	      "  -f, --format=FMT     format of IMAGE (qcow2 or raw; default: "
	      "probe)\n"
	      "      --output=FMT     human (default), json or yaml\n"
	      "  -h, --help           show this help\n", f);
}

struct info_view {
	const char *path;
	struct img_info in;
	struct img_backing b;
	char full[PATH_MAX];       /* resolved backing path */
	bool has_full;
};

static const char *compat_of(int version)
{
	return version == 2 ? "0.10" : "1.1";
}

static const char *ctype_of(int t)
{
	return t == 1 ? "zstd" : "zlib";
}

static void emit_structured(struct ow *w, const struct info_view *v)
{
	const struct img_info *in = &v->in;

	ow_obj_open(w, NULL);
	ow_str(w, "filename", v->path);
	ow_str(w, "format", in->format);
	ow_u64(w, "virtual-size", in->virtual_size);
	ow_u64(w, "actual-size", in->actual_size);
	if (in->cluster_size)
		ow_u64(w, "cluster-size", in->cluster_size);
	if (in->encrypted)
		ow_bool(w, "encrypted", true);
	if (v->b.name) {
		ow_str(w, "backing-filename", v->b.name);
		ow_str(w, "full-backing-filename",
		       v->has_full ? v->full : v->b.name);
		if (v->b.format)
			ow_str(w, "backing-filename-format", v->b.format);
	}
	ow_bool(w, "dirty-flag", in->dirty);
	if (!strcmp(in->format, "qcow2")) {
		ow_obj_open(w, "format-specific");
		ow_str(w, "type", "qcow2");
		ow_obj_open(w, "data");
		ow_str(w, "compat", compat_of(in->version));
		ow_str(w, "compression-type", ctype_of(in->compression_type));
		if (in->version >= 3)
			ow_bool(w, "lazy-refcounts", in->lazy_refcounts);
		ow_i64(w, "refcount-bits", in->refcount_bits);
		if (in->version >= 3) {
			ow_bool(w, "corrupt", in->corrupt);
			ow_bool(w, "extended-l2", in->extended_l2);
		}
		ow_close(w);
		ow_close(w);
	}
	/* imgraph's own keys */
	if (in->nb_snapshots)
		ow_u64(w, "snapshot-count", in->nb_snapshots);
	if (in->write_refusal)
		ow_str(w, "write-refusal", in->write_refusal);
	ow_close(w);
	ow_finish(w);
}

static const char *yesno(bool v)
{
	return v ? "true" : "false";
}

static void emit_human(const struct info_view *v)
{
	const struct img_info *in = &v->in;
	char hs[32], ds[32];

	printf("image: %s\n", v->path);
	printf("file format: %s\n", in->format);
	printf("virtual size: %s (%llu bytes)\n",
	       cli_human_size(in->virtual_size, hs, sizeof(hs)),
	       (unsigned long long)in->virtual_size);
	printf("disk size: %s\n",
	       cli_human_size(in->actual_size, ds, sizeof(ds)));
	if (in->cluster_size)
		printf("cluster_size: %u\n", in->cluster_size);
	if (in->encrypted)
		printf("encrypted: yes\n");
	if (v->b.name) {
		if (v->has_full && strcmp(v->full, v->b.name))
			printf("backing file: %s (actual path: %s)\n",
			       v->b.name, v->full);
		else
			printf("backing file: %s\n", v->b.name);
		if (v->b.format)
			printf("backing file format: %s\n", v->b.format);
	}
	if (in->nb_snapshots)
		printf("internal snapshots: %u\n", in->nb_snapshots);
	if (!strcmp(in->format, "qcow2")) {
		printf("Format specific information:\n");
		printf("    compat: %s\n", compat_of(in->version));
		printf("    compression type: %s\n",
		       ctype_of(in->compression_type));
		if (in->version >= 3)
			printf("    lazy refcounts: %s\n",
			       yesno(in->lazy_refcounts));
		printf("    refcount bits: %d\n", in->refcount_bits);
		if (in->version >= 3) {
			printf("    corrupt: %s\n", yesno(in->corrupt));
			printf("    extended l2: %s\n", yesno(in->extended_l2));
		}
		if (in->data_file)
			printf("    external data file: yes\n");
	}
	if (in->dirty)
		printf("dirty flag: true\n");
	if (in->write_refusal)
		printf("imgraph will not write it: %s\n", in->write_refusal);
}

int cmd_info(int argc, char **argv)
{
	struct cli_image_args a;
	struct img_err e = { 0 };
	struct info_view v;
	struct img *img;
	int rc = cli_image_args("info", argc, argv, true, usage, &a);

	if (rc >= 0)
		return rc;
	memset(&v, 0, sizeof(v));
	v.path = a.path;
	if (img_open(v.path, a.imgfmt, IMG_O_INSPECT, &img, NULL, &e) < 0)
		return cli_report(&e);
	if (img_get_info(img, &v.in, &e) < 0 ||
	    img_get_backing(img, &v.b, &e) < 0) {
		img_close(img);
		return cli_report(&e);
	}
	if (v.b.name && !*v.b.name)
		v.b.name = NULL;
	if (v.b.name) {
		enum resolve_kind k;
		struct img_err re;
		v.has_full = resolve_backing(v.path, v.b.name, v.full,
					     sizeof(v.full), &k, &re) == 0 &&
			     k != RESOLVE_NONE;
	}
	if (a.fmt == OUT_HUMAN) {
		emit_human(&v);
	} else {
		struct ow w;
		ow_init(&w, stdout, a.fmt);
		emit_structured(&w, &v);
	}
	img_close(img);
	return EXIT_OK;
}
