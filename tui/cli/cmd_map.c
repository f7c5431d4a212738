/* cmd_map.c - `imgraph map [--output=human|json] [-f FMT] IMAGE`.
 *
 * Prints the extents of the guest view through the whole backing chain with
 * qemu-img map's fields and merge rule (core/graph/chain_map.h), so that scripts
 * and tests can compare the two outputs field by field.  JSON adds
 * "filename": the layer that serves the extent.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/graph/chain_map.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs("Usage: imgraph map [--output=human|json] [-f FMT] IMAGE\n"
	      "Show which layer of IMAGE's backing chain serves each range of "
	      "the guest\nview, like 'qemu-img map'.\n"
	      "  -f, --format=FMT     format of IMAGE (qcow2 or raw; default: "
	      "probe)\n"
	      "      --output=FMT     human (default) or json\n"
	      "  -h, --help           show this help\n", f);
}

static void emit(struct ow *w, const struct chain_map_extent *x)
{
	if (w->fmt == OUT_HUMAN) {
		/* qemu-img lists only extents with data at a known place. */
		if (!x->data)
			return;
		char off[32];
		if (x->has_offset)
			snprintf(off, sizeof(off), "%#" PRIx64, x->offset);
		else
			snprintf(off, sizeof(off), "compressed");
		printf("%#-15" PRIx64 " %#-15" PRIx64 " %-15s %s\n", x->start,
		       x->length, off, ESC(x->filename));
		return;
	}
	ow_obj_open(w, NULL);
	ow_u64(w, "start", x->start);
	ow_u64(w, "length", x->length);
	ow_i64(w, "depth", x->depth);
	ow_bool(w, "present", x->present);
	ow_bool(w, "zero", x->zero);
	ow_bool(w, "data", x->data);
	if (x->has_offset)
		ow_u64(w, "offset", x->offset);
	if (x->present || x->has_offset)
		ow_str(w, "filename", x->filename);
	ow_close(w);
}

int cmd_map(int argc, char **argv)
{
	struct cli_image_args a;
	struct img_err e = { 0 };
	struct chain *c = NULL;
	struct ow w;
	int r = cli_image_args("map", argc, argv, false, usage, &a);

	if (r >= 0)
		return r;
	r = chain_open(a.path, a.imgfmt, IMG_O_INSPECT, 0, 0, &c, &e);
	if (r < 0)
		return cli_report(&e);

	uint64_t size = c->layer[0]->virtual_size, off = 0;
	struct chain_map_extent cur, nx;
	bool have = false;
	/* Emit only after the whole map is known, so an error half way never
	 * leaves a truncated document on stdout. */
	size_t cap = 0, n = 0;
	struct chain_map_extent *all = NULL;

	struct chain_mapper *m = NULL;
	r = chain_map_begin(c, &m, &e);
	while (r >= 0 && off < size) {
		r = chain_map_next(m, off, size - off, &nx, &e);
		if (r < 0)
			break;
		off += nx.length;
		if (have && chain_map_mergeable(&cur, &nx)) {
			cur.length += nx.length;
			continue;
		}
		if (have) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				void *p = realloc(all, cap * sizeof(*all));
				if (!p) {
					r = err_set(&e, ENOMEM, "out of memory");
					break;
				}
				all = p;
			}
			all[n++] = cur;
		}
		cur = nx;
		have = true;
	}
	if (r >= 0 && have) {
		if (n == cap) {
			void *p = realloc(all, (cap + 1) * sizeof(*all));
			if (!p)
				r = err_set(&e, ENOMEM, "out of memory");
			else
				all = p;
		}
		if (r >= 0)
			all[n++] = cur;
	}
	chain_map_end(m);
	if (r < 0) {
		free(all);
		chain_close(c);
		return cli_report(&e);
	}
	ow_init(&w, stdout, a.fmt);
	if (a.fmt == OUT_HUMAN)
		printf("%-15s %-15s %-15s %s\n", "Offset", "Length",
		       "Mapped to", "File");
	else
		ow_arr_open(&w, NULL);
	for (size_t i = 0; i < n; i++)
		emit(&w, &all[i]);
	if (a.fmt != OUT_HUMAN) {
		ow_close(&w);
		ow_finish(&w);
	}
	free(all);
	chain_close(c);
	return EXIT_OK;
}
