/* cmd_info.c - `imgraph info [--output=human|json|yaml] [-f FMT] IMAGE`.
 *
 * One image (not the chain).  JSON/YAML use qemu-img info's keys so that
 * scripts written for qemu-img keep working; imgraph adds "write-refusal"
 * (why we would not write this image) and "snapshot-count".  The image is opened with IMG_O_INSPECT, so dirty,
 * corrupt or snapshot-carrying images can still be examined.
 */
#include "cmd.h"
#include "core/out/esc.h"
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
	      "  -f, --format=FMT     format of IMAGE (qcow2, qcow, qed, vmdk, "
	      "luks or raw;\n"
	      "                       default: probe the contents)\n"
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

static void emit_luks(struct ow *w, const struct img_encrypt_info *c)
{
	ow_str(w, "cipher-alg", c->cipher_alg);
	ow_str(w, "cipher-mode", c->cipher_mode);
	ow_str(w, "ivgen-alg", c->ivgen_alg);
	if (c->ivgen_hash_alg)
		ow_str(w, "ivgen-hash-alg", c->ivgen_hash_alg);
	ow_str(w, "hash-alg", c->hash_alg);
	ow_str(w, "uuid", c->uuid);
	ow_u64(w, "payload-offset", c->payload_offset);
	ow_u64(w, "master-key-iters", c->master_key_iters);
	ow_arr_open(w, "slots");
	for (int i = 0; i < IMG_LUKS_SLOTS; i++) {
		const struct img_luks_slot *k = &c->slots[i];

		ow_obj_open(w, NULL);
		ow_bool(w, "active", k->active);
		if (k->active) {
			ow_u64(w, "iters", k->iters);
			ow_u64(w, "stripes", k->stripes);
		}
		ow_u64(w, "key-offset", k->key_offset);
		ow_close(w);
	}
	ow_close(w);
}

/* qemu-img's "encrypt" object: the format, then the LUKS fields. */
static void emit_encrypt(struct ow *w, const struct img_encrypt_info *c)
{
	ow_obj_open(w, "encrypt");
	ow_str(w, "format", c->format);
	if (!strcmp(c->format, "luks"))
		emit_luks(w, c);
	ow_close(w);
}

static void emit_bitmaps(struct ow *w, const struct img_info *in)
{
	ow_arr_open(w, "bitmaps");
	for (uint32_t i = 0; i < in->nb_bitmaps; i++) {
		const struct img_bitmap_info *b = &in->bitmap_list[i];

		ow_obj_open(w, NULL);
		ow_str(w, "name", b->name);
		ow_u64(w, "granularity", b->granularity);
		ow_arr_open(w, "flags");
		if (b->in_use)
			ow_str(w, NULL, "in-use");
		if (b->autoload)
			ow_str(w, NULL, "auto");
		ow_close(w);
		ow_close(w);
	}
	ow_close(w);
}

static void emit_qcow2(struct ow *w, const struct img_info *in)
{
	ow_str(w, "compat", compat_of(in->version));
	ow_str(w, "compression-type", ctype_of(in->compression_type));
	if (in->version >= 3)
		ow_bool(w, "lazy-refcounts", in->lazy_refcounts);
	if (in->nb_bitmaps)
		emit_bitmaps(w, in);
	ow_i64(w, "refcount-bits", in->refcount_bits);
	if (in->encrypt)
		emit_encrypt(w, in->encrypt);
	if (in->data_file_name) {
		ow_str(w, "data-file", in->data_file_name);
		ow_bool(w, "data-file-raw", in->data_file_raw);
	}
	if (in->version >= 3) {
		ow_bool(w, "corrupt", in->corrupt);
		ow_bool(w, "extended-l2", in->extended_l2);
	}
}

static void emit_vmdk(struct ow *w, const struct img_info *in)
{
	ow_u64(w, "cid", in->cid);
	ow_u64(w, "parent-cid", in->parent_cid);
	ow_str(w, "create-type", in->create_type);
	ow_arr_open(w, "extents");
	for (uint32_t i = 0; i < in->nb_extents; i++) {
		const struct img_extent_info *x = &in->extents[i];

		ow_obj_open(w, NULL);
		ow_str(w, "filename", x->filename);
		ow_str(w, "format", x->type);
		ow_u64(w, "virtual-size", x->virtual_size);
		if (x->cluster_size)
			ow_u64(w, "cluster-size", x->cluster_size);
		if (x->compressed)
			ow_bool(w, "compressed", true);
		ow_close(w);
	}
	ow_close(w);
}

/* "format-specific" as qemu-img 7.2 prints it, for the formats that have
 * one. */
static void emit_specific(struct ow *w, const struct img_info *in)
{
	bool qcow2 = !strcmp(in->format, "qcow2");
	bool vmdk = !strcmp(in->format, "vmdk");
	bool luks = !strcmp(in->format, "luks") && in->encrypt;

	if (!qcow2 && !vmdk && !luks)
		return;
	ow_obj_open(w, "format-specific");
	ow_str(w, "type", in->format);
	ow_obj_open(w, "data");
	if (qcow2)
		emit_qcow2(w, in);
	else if (vmdk)
		emit_vmdk(w, in);
	else
		emit_luks(w, in->encrypt);
	ow_close(w);
	ow_close(w);
}

static void emit_snapshots(struct ow *w, const struct img_info *in)
{
	ow_arr_open(w, "snapshots");
	for (uint32_t i = 0; i < in->nb_snapshots; i++) {
		const struct img_snapshot_info *s = &in->snapshots[i];

		ow_obj_open(w, NULL);
		ow_str(w, "id", s->id);
		ow_str(w, "name", s->name);
		ow_u64(w, "vm-state-size", s->vm_state_size);
		ow_u64(w, "date-sec", s->date_sec);
		ow_u64(w, "date-nsec", s->date_nsec);
		ow_u64(w, "vm-clock-sec", s->vm_clock_nsec / 1000000000u);
		ow_u64(w, "vm-clock-nsec", s->vm_clock_nsec % 1000000000u);
		if (s->has_icount)
			ow_u64(w, "icount", s->icount);
		ow_close(w);
	}
	ow_close(w);
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
	if (!in->no_dirty_flag)
		ow_bool(w, "dirty-flag", in->dirty);
	if (in->nb_snapshots && in->snapshots)
		emit_snapshots(w, in);
	emit_specific(w, in);
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

static void human_vmdk(const struct img_info *in)
{
	printf("Format specific information:\n");
	printf("    cid: %u\n", in->cid);
	printf("    parent cid: %u\n", in->parent_cid);
	printf("    create type: %s\n",
	       ESC(in->create_type));
	printf("    extents:\n");
	for (uint32_t i = 0; i < in->nb_extents; i++) {
		const struct img_extent_info *x = &in->extents[i];

		printf("        [%u]: %s, %s%s, %llu bytes", i,
		       ESC(x->filename),
		       x->type[0] ? x->type : "sparse",
		       x->compressed ? ", compressed" : "",
		       (unsigned long long)x->virtual_size);
		if (x->cluster_size)
			printf(", cluster size %u", x->cluster_size);
		printf("\n");
	}
}

static void emit_human(const struct info_view *v)
{
	const struct img_info *in = &v->in;
	char hs[32], ds[32];

	printf("image: %s\n", ESC(v->path));
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
			       ESC(v->b.name), ESC(v->full));
		else
			printf("backing file: %s\n", ESC(v->b.name));
		if (v->b.format)
			printf("backing file format: %s\n",
			       ESC(v->b.format));
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
		if (in->data_file_name)
			printf("    data file: %s%s\n",
			       ESC(in->data_file_name),
			       in->data_file_raw ? " (raw)" : "");
		for (uint32_t i = 0; i < in->nb_bitmaps; i++)
			printf("    bitmap: %s (granularity %llu%s%s)\n",
			       ESC(in->bitmap_list[i].name),
			       (unsigned long long)in->bitmap_list[i].granularity,
			       in->bitmap_list[i].in_use ? ", in use" : "",
			       in->bitmap_list[i].autoload ? ", auto" : "");
	}
	if (!strcmp(in->format, "vmdk"))
		human_vmdk(in);
	if (in->encrypt && !strcmp(in->encrypt->format, "luks"))
		printf("%s    cipher: %s %s-%s%s%s, hash %s, payload at %llu\n",
		       strcmp(in->format, "qcow2") ?
		       "Format specific information:\n" : "",
		       in->encrypt->cipher_alg, in->encrypt->cipher_mode,
		       in->encrypt->ivgen_alg,
		       in->encrypt->ivgen_hash_alg ? ":" : "",
		       in->encrypt->ivgen_hash_alg ? in->encrypt->ivgen_hash_alg
						   : "", in->encrypt->hash_alg,
		       (unsigned long long)in->encrypt->payload_offset);
	if (in->dirty)
		printf("dirty flag: true\n");
	if (in->write_refusal)
		printf("imgraph will not write it: %s\n",
		       ESC(in->write_refusal));
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
