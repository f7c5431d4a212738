/* cmd_create.c - `imgraph create -f qcow2|raw [-b BACKING -F BACKING_FMT]
 *                [-o OPTS] [-u] [-q] IMAGE [SIZE]`.
 *
 * Like qemu-img create: an existing IMAGE is overwritten (replaced) unless
 * another process holds it under QEMU's lock protocol, the default format
 * is raw, and the backing file must open (read-only, WITH
 * THE DECLARED FORMAT -F, never probed) unless -u is given; SIZE may be left
 * out when a backing file is given and is then its virtual size.  The
 * backing name resolves against IMAGE's directory, as QEMU resolves it.
 * An image that would be its own backing file is refused before anything
 * is written.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/commit/lock_hold.h"
#include "core/graph/resolve.h"
#include "core/plan/policy.h"
#include "formats/img.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fputs("Usage: imgraph create -f qcow2|raw [-b BACKING -F BACKING_FMT] "
	      "[-o OPTS] [-u] [-q] IMAGE [SIZE]\n"
	      "Create a new image (an existing IMAGE is overwritten, as "
	      "qemu-img does).\n"
	      "  -f, --format=FMT          qcow2 or raw (default: raw)\n"
	      "  -b, --backing=NAME        backing file name to record (qcow2); "
	      "relative\n"
	      "                            names are relative to IMAGE's "
	      "directory\n"
	      "  -F, --backing-format=FMT  format of the backing file "
	      "(required with -b)\n"
	      "  -o OPTS                   comma-separated qcow2 options:\n"
	      "                              cluster_size=N (512..2M, power "
	      "of two; default 64K)\n"
	      "                              compat=0.10|1.1 (default 1.1)\n"
	      "                              extended_l2=on|off (needs "
	      "cluster_size >= 16K)\n"
	      "                              refcount_bits=N (1..64, power of "
	      "two; default 16)\n"
	      "                              compression_type=zlib\n"
	      "  -u, --unsafe              do not open the backing file (SIZE "
	      "required)\n"
	      "  -q, --quiet               do not print the 'Formatting' line\n"
	      "  -h, --help                show this help\n"
	      "SIZE takes K, M, G, T suffixes (binary); it defaults to the "
	      "backing file's\nvirtual size when -b is given.\n", f);
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Parse "-o a=b,c=d" into o.  Returns 0 or a usage exit code. */
static int parse_opts(char *s, struct img_create_opts *o, const char **bfile,
		      const char **bfmt)
{
	for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		uint64_t n;

		if (!v)
			return cli_usage_error("create", "option '%s' needs a "
					       "value (key=value)", kv);
		*v++ = '\0';
		if (!strcmp(kv, "cluster_size")) {
			if (cli_parse_size(v, &n) < 0 || n > (2u << 20))
				return cli_usage_error("create", "invalid "
						       "cluster_size '%s'", v);
			o->cluster_size = (uint32_t)n;
			if (!n)
				return cli_usage_error("create", "invalid "
						       "cluster_size '%s'", v);
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->compat = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->compat = 3;
			else
				return cli_usage_error("create", "invalid compat "
						       "'%s' (0.10 or 1.1)", v);
		} else if (!strcmp(kv, "extended_l2")) {
			if (parse_bool(v, &o->extended_l2) < 0)
				return cli_usage_error("create", "invalid "
						       "extended_l2 '%s' (on or "
						       "off)", v);
		} else if (!strcmp(kv, "refcount_bits")) {
			char *end;
			unsigned long b = strtoul(v, &end, 10);
			if (*end || !*v || b > 64)
				return cli_usage_error("create", "invalid "
						       "refcount_bits '%s'", v);
			o->refcount_bits = (int)b;
			if (!b)
				return cli_usage_error("create", "invalid "
						       "refcount_bits '%s'", v);
		} else if (!strcmp(kv, "compression_type")) {
			if (strcmp(v, "zlib"))
				return cli_usage_error("create", "compression_"
						       "type '%s' is not "
						       "supported (only zlib)",
						       v);
		} else if (!strcmp(kv, "backing_file")) {
			*bfile = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			*bfmt = v;
		} else {
			return cli_usage_error("create", "unknown option '%s'",
					       kv);
		}
	}
	return 0;
}

/* Virtual size of the backing file, opened with its declared format. */
static int backing_size(const char *image, const char *name, const char *fmt,
			uint64_t *size, struct img_err *e)
{
	char path[PATH_MAX];
	enum resolve_kind kind;
	struct stat si, sb;
	struct img *b;
	int r;

	r = resolve_backing(image, name, path, sizeof(path), &kind, e);
	if (r < 0)
		return r;
	if (kind != RESOLVE_FILE)
		return err_set(e, EINVAL, "%s: backing file '%s' is not a local "
			       "file", image, name);
	if (stat(path, &sb) < 0)
		return err_set_errno(e, errno, "%s: cannot stat backing file",
				     path);
	if (!S_ISREG(sb.st_mode))
		return err_set(e, EINVAL, "%s: backing file is not a regular "
			       "file", path);
	if (stat(image, &si) == 0 && si.st_dev == sb.st_dev &&
	    si.st_ino == sb.st_ino)
		return err_set(e, EINVAL, "%s: the image would be its own "
			       "backing file", image);
	r = img_open(path, fmt, IMG_O_INSPECT, &b, NULL, e);
	if (r < 0)
		return r;
	*size = b->virtual_size;
	img_close(b);
	return 0;
}

/* Create image, holding QEMU's lock on the file it replaces as QEMU's own
 * image creation does: a process that has it open and does not share
 * writing (every QEMU that opened it without -U) keeps it, with QEMU's
 * message, and nothing is touched. */
static int create_locked(const struct img_format *drv, const char *image,
			 const struct img_create_opts *o, struct img_err *e)
{
	struct role_policy rp;
	struct lock_hold h;
	int r;

	lock_hold_init(&h);
	if (access(image, F_OK) == 0) {
		policy_of(PLAN_ROLE_CREATE, NULL, false, &rp);
		r = lock_hold_open(&h, image, false, e);
		if (r == 0)
			r = lock_hold_set(&h, rp.perm, rp.shared, e);
		if (r < 0) {
			lock_hold_close(&h);
			return r;
		}
	}
	r = img_create(drv, image, o, e);
	lock_hold_close(&h);
	return r;
}

/* The command line, parsed. */
struct create_args {
	struct img_create_opts o;
	const char *fmt, *bfile, *bfmt, *image;
	bool quiet, have_size, unsafe, had_o;
};

/* Options and operands; -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct create_args *a)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "backing", required_argument, NULL, 'b' },
		{ "backing-format", required_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "unsafe", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "f:b:F:o:quh";
	int c, r;

	optind = 1;
	opterr = 0;            /* cli_bad_option says it once */
	while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'b': a->bfile = optarg; break;
		case 'F': a->bfmt = optarg; break;
		case 'o':
			a->had_o = true;
			r = parse_opts(optarg, &a->o, &a->bfile, &a->bfmt);
			if (r)
				return r;
			break;
		case 'q': a->quiet = true; break;
		case 'u': a->unsafe = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default:
			return cli_bad_option("create", argv, shortopts, lo);
		}
	}
	if (optind >= argc)
		return cli_usage_error("create", "missing IMAGE");
	if (argc - optind > 2)
		return cli_usage_error("create", "too many arguments");
	a->image = argv[optind];
	if (argc - optind == 2) {
		if (cli_parse_size(argv[optind + 1], &a->o.size) < 0)
			return cli_usage_error("create", "invalid size '%s'",
					       argv[optind + 1]);
		a->have_size = true;
	}
	return -1;
}

/* The combination of options, in qemu-img's order of complaints; -1 to go
 * on (*drv set), else the exit code. */
static int check_args(const struct create_args *a,
		      const struct img_format **drv)
{
	struct img_err e = { 0 };
	struct stat st;

	*drv = img_format_find(a->fmt);
	if (!*drv || !img_format_can_create(*drv))
		return cli_usage_error("create", "unknown or unsupported format "
				       "'%s' (qcow2 or raw)", a->fmt);
	if (a->had_o && strcmp(a->fmt, "qcow2") && !a->bfile)
		return cli_usage_error("create", "-o options apply to qcow2 "
				       "only");
	if (a->bfmt && !a->bfile)
		return cli_usage_error("create", "-F needs -b");
	if (a->bfile && strcmp(a->fmt, "qcow2")) {
		err_set(&e, EINVAL, "%s: format '%s' has no backing files",
			a->image, a->fmt);
		return cli_report(&e);
	}
	if (a->bfile && !a->bfmt) {
		err_set(&e, EINVAL, "%s: Backing file specified without backing "
			"format", a->image);
		return cli_report(&e);
	}
	if (a->bfmt && !img_format_find(a->bfmt)) {
		err_set(&e, EINVAL, "%s: unknown backing format '%s'", a->image,
			a->bfmt);
		return cli_report(&e);
	}
	if (!a->have_size && !a->bfile)
		return cli_usage_error("create", "missing SIZE");
	/* Never write through a device node or a FIFO by accident. */
	if (stat(a->image, &st) == 0 && !S_ISREG(st.st_mode)) {
		err_set(&e, EINVAL, "%s: exists and is not a regular file",
			a->image);
		return cli_report(&e);
	}
	if (!a->have_size && a->unsafe)
		return cli_usage_error("create", "-u needs SIZE");
	return -1;
}

/* qemu-img's "Formatting ..." line for the image just created. */
static void print_formatting(const struct create_args *a)
{
	const struct img_create_opts *o = &a->o;
	bool qcow2 = !strcmp(a->fmt, "qcow2");

	printf("Formatting '%s', fmt=%s", ESC(a->image), a->fmt);
	if (qcow2)
		printf(" cluster_size=%u extended_l2=%s compression_type=zlib",
		       o->cluster_size ? o->cluster_size : 65536,
		       o->extended_l2 > 0 ? "on" : "off");
	printf(" size=%llu", (unsigned long long)o->size);
	if (o->compat == 2)
		printf(" compat=0.10");
	if (a->bfile)
		printf(" backing_file=%s backing_fmt=%s", ESC(a->bfile),
		       ESC(a->bfmt));
	if (qcow2)
		printf(" refcount_bits=%d",
		       o->refcount_bits > 0 ? o->refcount_bits : 16);
	printf("\n");
	fflush(stdout);
}

int cmd_create(int argc, char **argv)
{
	struct create_args a = {
		.o = { .extended_l2 = -1, .refcount_bits = -1 },
		.fmt = "raw",
	};
	const struct img_format *drv;
	struct img_err e = { 0 };

	int r = parse_args(argc, argv, &a);
	if (r < 0)
		r = check_args(&a, &drv);
	if (r >= 0)
		return r;
	/* Like qemu-img: the backing file must open with the declared
	 * format (and gives the size when none is given), unless -u. */
	if (a.bfile && !a.unsafe) {
		uint64_t bsize = 0;
		if (backing_size(a.image, a.bfile, a.bfmt, &bsize, &e) < 0) {
			err_prefix(&e, "could not open the backing file (use -u "
				   "to skip this check): ");
			return cli_report(&e);
		}
		if (!a.have_size)
			a.o.size = bsize;
	}
	a.o.backing = a.bfile;
	a.o.backing_fmt = a.bfmt;
	if (create_locked(drv, a.image, &a.o, &e) < 0)
		return cli_report(&e);
	/* qemu-img prints this line first; it comes once the image exists,
	 * so that a failed create leaves stdout empty (nothing but results
	 * on stdout). */
	if (!a.quiet)
		print_formatting(&a);
	return EXIT_OK;
}
