/* cmd_check.c - `imgraph check [--output=human|json] [-f FMT] IMAGE`.
 *
 * Read-only consistency check with qemu-img check's classes, wording,
 * JSON keys and exit codes: 0 clean, 2 corruptions, 3 leaks only, 1 the
 * check could not run or complete, 63 the format has no check (raw).
 * The per-cluster messages go to stderr (as qemu-img prints them), the
 * summary to stdout.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "formats/img.h"
#include "formats/format.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define EXIT_CHECK_CORRUPT 2
#define EXIT_CHECK_LEAKS   3
#define EXIT_CHECK_NOTSUP  63

static void usage(FILE *f)
{
	fputs("Usage: imgraph check [--output=human|json] [-f FMT] IMAGE\n"
	      "Check the metadata of IMAGE (read-only), like 'qemu-img "
	      "check'.\n"
	      "  -f, --format=FMT   format of IMAGE (default: probe)\n"
	      "      --output=FMT   human (default) or json\n"
	      "  -h, --help         show this help\n"
	      "Exit status: 0 no errors, 2 corruptions, 3 leaked clusters only,\n"
	      "1 the check failed, 63 the format has no check (raw).\n", f);
}

static void emit_json(const char *path, const char *fmt,
		      const struct img_check *c)
{
	struct ow w;

	ow_init(&w, stdout, OUT_JSON);
	ow_obj_open(&w, NULL);
	if (c->image_end_offset)
		ow_u64(&w, "image-end-offset", c->image_end_offset);
	if (c->compressed_clusters)
		ow_u64(&w, "compressed-clusters", c->compressed_clusters);
	if (c->total_clusters)
		ow_u64(&w, "total-clusters", c->total_clusters);
	ow_u64(&w, "check-errors", c->check_errors);
	if (c->leaks)
		ow_u64(&w, "leaks", c->leaks);
	if (c->corruptions)
		ow_u64(&w, "corruptions", c->corruptions);
	if (c->allocated_clusters)
		ow_u64(&w, "allocated-clusters", c->allocated_clusters);
	ow_str(&w, "filename", path);
	ow_str(&w, "format", fmt);
	if (c->fragmented_clusters)
		ow_u64(&w, "fragmented-clusters", c->fragmented_clusters);
	ow_close(&w);
	ow_finish(&w);
}

static void emit_human(const struct img_check *c)
{
	if (!c->corruptions && !c->leaks && !c->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (c->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the "
			       "image may corrupt it.\n",
			       (unsigned long long)c->corruptions);
		if (c->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to "
			       "data.\n", (unsigned long long)c->leaks);
		if (c->check_errors)
			printf("\n%llu internal errors have occurred during the "
			       "check.\n", (unsigned long long)c->check_errors);
	}
	if (c->total_clusters && c->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, "
		       "%0.2f%% compressed clusters\n",
		       (unsigned long long)c->allocated_clusters,
		       (unsigned long long)c->total_clusters,
		       c->allocated_clusters * 100.0 / c->total_clusters,
		       c->fragmented_clusters * 100.0 / c->allocated_clusters,
		       c->compressed_clusters * 100.0 / c->allocated_clusters);
	if (c->image_end_offset)
		printf("Image end offset: %llu\n",
		       (unsigned long long)c->image_end_offset);
}

int cmd_check(int argc, char **argv)
{
	struct cli_image_args a;
	struct img_check res;
	struct img_err e = { 0 };
	struct img *img;
	int r = cli_image_args("check", argc, argv, false, usage, &a);

	if (r >= 0)
		return r;
	const char *path = a.path;
	enum out_fmt ofmt = a.fmt;

	r = img_open(path, a.imgfmt, IMG_O_INSPECT, &img, NULL, &e);
	if (r < 0)
		return cli_report(&e);
	if (!img_can_check(img)) {
		fprintf(stderr, "imgraph: %s: this image format (%s) does not "
			"support checks\n", ESC(path), img_format_name(img));
		img_close(img);
		return EXIT_CHECK_NOTSUP;
	}
	const char *dname = img_format_name(img);
	r = img_check(img, &res, &e);
	img_close(img);
	if (r < 0)
		return cli_report(&e);
	for (int i = 0; i < res.nmsgs; i++)
		fprintf(stderr, "%s\n", ESC(res.msgs[i]));
	if (res.msgs_dropped)
		fprintf(stderr, "(%llu more messages not shown)\n",
			(unsigned long long)res.msgs_dropped);
	if (ofmt == OUT_JSON)
		emit_json(path, dname, &res);
	else
		emit_human(&res);
	img_check_free(&res);
	if (res.check_errors)
		return EXIT_ERR;
	if (res.corruptions)
		return EXIT_CHECK_CORRUPT;
	if (res.leaks)
		return EXIT_CHECK_LEAKS;
	return EXIT_OK;
}
