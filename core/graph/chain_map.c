/* chain_map.c - qemu-img map's extents over a chain; see chain_map.h.
 *
 * qemu-img map (7.2, get_block_status) asks each layer in turn, top first,
 * and stops at the first one that reports data or zeros.  A layer reports
 * zeros for a range it does not allocate when it has no backing file, or
 * when the range lies past its backing file's end; such a range is
 * "zero" but not "present" (nothing is allocated), at that layer's depth.
 */
#include "chain_map.h"
#include "formats/img.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct chain_mapper {
	struct chain *c;
};

int chain_map_begin(struct chain *c, struct chain_mapper **out,
		    struct img_err *e)
{
	struct chain_mapper *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return err_set(e, ENOMEM, "out of memory");
	m->c = c;
	*out = m;
	return 0;
}

void chain_map_end(struct chain_mapper *m)
{
	free(m);
}

int chain_map_next(struct chain_mapper *m, uint64_t off, uint64_t len,
		   struct chain_map_extent *x, struct img_err *e)
{
	struct chain *c = m->c;

	memset(x, 0, sizeof(*x));
	x->start = off;
	for (int i = 0; i < c->n; i++) {
		struct img *l = c->layer[i];
		struct img_map mp;
		uint64_t n;

		if (off >= l->virtual_size || len == 0)
			return err_set(e, EINVAL, "%s: map at %llu is past the "
				       "end of the image", l->path,
				       (unsigned long long)off);
		if (len > l->virtual_size - off)
			len = l->virtual_size - off;
		int r = img_map_status(l, off, len, &n, &mp, e);
		if (r < 0)
			return r;
		if (n == 0 || n > len)
			return err_set(e, EIO, "%s: block status at %llu "
				       "returned a bad length", l->path,
				       (unsigned long long)off);
		x->length = n;
		x->depth = i;
		x->filename = mp.file;
		x->has_offset = mp.offset_valid;
		x->offset = mp.offset_valid ? mp.offset : 0;
		if (r != IMG_BS_UNALLOC) {
			x->present = true;
			x->zero = r == IMG_BS_ZERO || mp.zero;
			x->data = r == IMG_BS_DATA;
			return 0;
		}
		len = n;
		if (i == c->n - 1) {
			/* Nothing below: zeros, unless a backing reference
			 * was deliberately not followed. */
			uint64_t pn;
			struct chain_status st;
			r = chain_block_status(c, i, off, len, &pn, &st, e);
			if (r < 0)
				return r;
			x->zero = true;
			return 0;
		}
		if (off >= c->layer[i + 1]->virtual_size) {
			x->zero = true;
			return 0;
		}
	}
	return err_set(e, EINVAL, "empty chain");
}

bool chain_map_mergeable(const struct chain_map_extent *a,
			 const struct chain_map_extent *b)
{
	if (a->start + a->length != b->start || a->depth != b->depth ||
	    a->present != b->present || a->zero != b->zero ||
	    a->data != b->data || a->has_offset != b->has_offset)
		return false;
	if (a->has_offset && a->offset + a->length != b->offset)
		return false;
	if ((a->filename == NULL) != (b->filename == NULL))
		return false;
	return !a->filename || !strcmp(a->filename, b->filename);
}
