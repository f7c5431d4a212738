/* fmt_tool.c - drive the format layer from the integration scripts, so
 * that qemu-img can judge what our drivers write and read.  A test tool:
 * built by the Makefile next to the unit tests, never installed.
 *
 *   fmt_tool ops [-f FMT] IMAGE OP...
 *       open IMAGE (qcow2, or FMT) read-write and apply each OP through formats/
 *       img.h, then flush:  w:OFF:LEN:BYTE  write LEN bytes of BYTE;
 *       z:OFF:LEN  write zeroes;  g:SIZE  grow;  e  make empty;  f  flush.
 *       Numbers take k/m/g suffixes.
 *   fmt_tool set-backing IMAGE NAME FMT
 *       rewrite IMAGE's backing link ("" NAME removes it, "" FMT: none).
 *   fmt_tool compare IMAGE RAW
 *       read IMAGE's guest view through its backing chain (core/graph/
 *       chain.h), in 1 MiB and odd-sized pieces so reads start and end
 *       inside clusters and subclusters, and compare it byte for byte
 *       with RAW (made by `qemu-img convert -O raw`).
 *
 * Exit 0 on success; 1 with the error (or the first differing offset) on
 * stderr; 2 on a usage error.  IMGRAPH_FAULT applies, the power-cut mode
 * included, so the scripts can fail or cut any operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/graph/chain.h"
#include "formats/img.h"
#include "formats/io/io.h"

static int usage(void)
{
	fputs("usage: fmt_tool ops [-f FMT] IMAGE OP...\n"
	      "       fmt_tool set-backing IMAGE NAME FMT\n"
	      "       fmt_tool compare IMAGE RAW\n", stderr);
	return 2;
}

static int fail(const struct img_err *e)
{
	fprintf(stderr, "%s\n", e->msg);
	return 1;
}

static uint64_t num(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	default: break;
	}
	return v;
}

/* One OP of `ops`; -EINVAL with an empty message for a malformed one. */
static int apply_op(struct img *img, const char *op, struct img_err *e)
{
	char *a[4] = { 0 }, *save = NULL, buf[128];
	int n = 0, r;

	snprintf(buf, sizeof(buf), "%s", op);
	for (char *t = strtok_r(buf, ":", &save); t && n < 4;
	     t = strtok_r(NULL, ":", &save))
		a[n++] = t;
	if (n == 4 && !strcmp(a[0], "w")) {
		uint64_t len = num(a[2]);
		uint8_t *d = malloc(len ? len : 1);
		if (!d)
			return err_set(e, ENOMEM, "out of memory");
		memset(d, (int)num(a[3]), len);
		r = img_pwrite(img, num(a[1]), d, len, e);
		free(d);
		return r;
	}
	if (n == 3 && !strcmp(a[0], "z"))
		return img_write_zeroes(img, num(a[1]), num(a[2]), e);
	if (n == 2 && !strcmp(a[0], "g"))
		return img_grow(img, num(a[1]), e);
	if (n == 1 && !strcmp(a[0], "e"))
		return img_make_empty(img, e);
	if (n == 1 && !strcmp(a[0], "f"))
		return img_flush(img, e);
	return err_set(e, EINVAL, "bad op '%s'", op);
}

static int run_ops(const char *fmt, const char *path, int nops, char **ops)
{
	struct img_err e = { 0 };
	struct img *img;
	int r = 0;

	if (img_open(path, fmt, IMG_O_RDWR, &img, NULL, &e) < 0)
		return fail(&e);
	for (int i = 0; i < nops && r == 0; i++)
		r = apply_op(img, ops[i], &e);
	if (r == 0)
		r = img_flush(img, &e);
	img_close(img);
	return r < 0 ? fail(&e) : 0;
}

static int set_backing(const char *path, const char *name, const char *fmt)
{
	struct img_err e = { 0 };
	struct img *img;
	int r;

	if (img_open(path, "qcow2", IMG_O_RDWR, &img, NULL, &e) < 0)
		return fail(&e);
	r = img_set_backing(img, *name ? name : NULL, *fmt ? fmt : NULL, &e);
	if (r == 0)
		r = img_flush(img, &e);
	img_close(img);
	return r < 0 ? fail(&e) : 0;
}

/* The first differing byte of a and b (n bytes, known to differ). */
static int report_difference(uint64_t off, const uint8_t *a, const uint8_t *b)
{
	size_t i = 0;

	while (a[i] == b[i])
		i++;
	fprintf(stderr, "differs at guest offset %llu: 0x%02x vs raw 0x%02x\n",
		(unsigned long long)(off + i), a[i], b[i]);
	return 1;
}

static int compare_view(struct chain *ch, int fd, uint8_t *a, uint8_t *b,
			size_t step)
{
	uint64_t off = 0, size = ch->layer[0]->virtual_size;
	struct img_err e = { 0 };
	off_t raw_size = lseek(fd, 0, SEEK_END);
	int odd = 0;

	if (raw_size < 0 || (uint64_t)raw_size != size) {
		fprintf(stderr, "size differs: %llu vs raw %lld\n",
			(unsigned long long)size, (long long)raw_size);
		return 1;
	}
	while (off < size) {
		size_t n = odd++ % 2 ? 1000003 % step : step;
		if (n > size - off)
			n = (size_t)(size - off);
		if (chain_pread(ch, 0, off, a, n, &e) < 0)
			return fail(&e);
		if (pread(fd, b, n, (off_t)off) != (ssize_t)n) {
			perror("pread raw");
			return 2;
		}
		if (memcmp(a, b, n))
			return report_difference(off, a, b);
		off += n;
	}
	return 0;
}

static int compare(const char *image, const char *raw)
{
	struct chain *ch = NULL;
	struct img_err e = { 0 };
	size_t step = 1 << 20;
	uint8_t *a = malloc(step), *b = malloc(step);
	int fd = open(raw, O_RDONLY | O_CLOEXEC);
	int rc;

	if (!a || !b || fd < 0) {
		perror(raw);
		rc = 2;
	} else if (chain_open(image, NULL, IMG_O_INSPECT, 0, 0, &ch, &e) < 0) {
		rc = fail(&e);
	} else {
		rc = compare_view(ch, fd, a, b, step);
	}
	chain_close(ch);
	if (fd >= 0)
		close(fd);
	free(a);
	free(b);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "ops") && !strcmp(argv[2], "-f"))
		return run_ops(argv[3], argv[4], argc - 5, argv + 5);
	if (argc >= 3 && !strcmp(argv[1], "ops"))
		return run_ops("qcow2", argv[2], argc - 3, argv + 3);
	if (argc == 5 && !strcmp(argv[1], "set-backing"))
		return set_backing(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "compare"))
		return compare(argv[2], argv[3]);
	return usage();
}
