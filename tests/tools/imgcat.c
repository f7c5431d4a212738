/* imgcat.c - test tool: one layer of an image, as the formats layer
 * reads it, for comparison with `qemu-img convert -O raw`.
 *
 *   imgcat [-f FMT] [-s STEP] IMAGE > out.raw    bytes of the layer
 *   imgcat [-f FMT] -m IMAGE                     block status extents
 *   imgcat [-f FMT] -p IMAGE                     the probed/used format
 *
 * Reads go through img_pread in STEP-byte pieces (default 1 MiB; an odd
 * STEP makes every piece cross block and sector boundaries).  -m prints
 * "START LENGTH data|zero|unalloc" per img_block_status step.  Errors are
 * printed with the img_err message; exit 1.
 */
#include "formats/img.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const struct img_err *e)
{
	fprintf(stderr, "imgcat: %s\n", e->msg);
	return 1;
}

static int dump(struct img *img, size_t step)
{
	struct img_err e = { 0 };
	uint8_t *buf = malloc(step);
	uint64_t off = 0, size = img->virtual_size;

	if (!buf)
		return 1;
	while (off < size) {
		size_t n = size - off < step ? (size_t)(size - off) : step;
		if (img_pread(img, off, buf, n, &e) < 0) {
			free(buf);
			return fail(&e);
		}
		if (fwrite(buf, 1, n, stdout) != n) {
			free(buf);
			return 1;
		}
		off += n;
	}
	free(buf);
	return fflush(stdout) ? 1 : 0;
}

static int map(struct img *img)
{
	static const char *const names[] = { "unalloc", "data", "zero" };
	struct img_err e = { 0 };
	uint64_t off = 0, size = img->virtual_size;

	while (off < size) {
		uint64_t pnum = 0;
		int r = img_block_status(img, off, size - off, &pnum, &e);
		if (r < 0)
			return fail(&e);
		if (r > 2 || pnum == 0 || pnum > size - off) {
			fprintf(stderr, "imgcat: bad status %d/%" PRIu64 "\n",
				r, pnum);
			return 1;
		}
		printf("%" PRIu64 " %" PRIu64 " %s\n", off, pnum, names[r]);
		off += pnum;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *fmt = NULL;
	size_t step = 1 << 20;
	int c, mode = 0, rc;
	struct img_err e = { 0 };
	struct img *img;

	while ((c = getopt(argc, argv, "f:s:mp")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 's': step = (size_t)strtoul(optarg, NULL, 0); break;
		case 'm': mode = 'm'; break;
		case 'p': mode = 'p'; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || step == 0) {
		fprintf(stderr, "usage: imgcat [-f FMT] [-s STEP] [-m|-p] "
			"IMAGE\n");
		return 2;
	}
	if (img_open(argv[optind], fmt, IMG_O_INSPECT, &img, NULL, &e) < 0)
		return fail(&e);
	if (mode == 'p') {
		printf("%s\n", img_format_name(img));
		rc = 0;
	} else {
		rc = mode == 'm' ? map(img) : dump(img, step);
	}
	img_close(img);
	return rc;
}
