/* fz_chain.c - libFuzzer target: backing-chain resolution and the pool scan.
 *
 * Input: [be32 len][image a][be32 len][image b][image c] (lengths clamped).
 * The three images are written as files a, b, c in a private scratch dir;
 * a seeds' backing names are "b" and "c", so the fuzzer mutates real chains,
 * loops (a -> a, a -> b -> a), formats and hostile names.
 *
 * Confinement: every open of the library is kept inside the scratch dir
 * and read-only (fz_confine.h).
 *
 * Oracles: an opened chain has at most 3 distinct layers (only three files
 * exist; loops must be errors); chain_block_status gives 0 < pnum <= len,
 * a depth within the chain and a valid state; errors carry a message; every
 * pool node inside the scratch dir is one of a, b, c; the files are never
 * written.
 */
#include "fz_common.h"
#define FZ_NAME "fz_chain"
#include "fz_scratch.h"
#include "fz_confine.h"
#include "core/graph/chain.h"
#include "core/graph/graph.h"

static void walk_chain(struct chain *c)
{
	static uint8_t buf[65536 + 512];
	struct img_err e = { 0 };
	uint64_t vs = c->layer[0]->virtual_size, off = 0;

	for (int i = 0; off < vs && i < 2048; i++) {
		struct chain_status st;
		uint64_t pnum = 0, len = vs - off;
		int r = chain_block_status(c, 0, off, len, &pnum, &st, &e);

		if (r < 0) {
			FZ_ASSERT(e.msg[0], "chain_block_status %d without a message", r);
			break;
		}
		FZ_ASSERT(pnum > 0 && pnum <= len, "pnum %llu len %llu",
			  (unsigned long long)pnum, (unsigned long long)len);
		FZ_ASSERT(st.depth >= 0 && st.depth <= c->n, "depth %d of %d",
			  st.depth, c->n);
		FZ_ASSERT(st.bs == IMG_BS_UNALLOC || st.bs == IMG_BS_DATA ||
			  st.bs == IMG_BS_ZERO, "state %d", st.bs);
		off += pnum;
	}
	{
		const uint64_t offs[3] = { 0, vs / 2, vs > 4096 ? vs - 4096 : 0 };
		for (int i = 0; i < 3; i++) {
			uint64_t n = sizeof(buf);
			if (offs[i] >= vs)
				continue;
			if (n > vs - offs[i])
				n = vs - offs[i];
			if (chain_pread(c, 0, offs[i], buf, (size_t)n, &e) < 0)
				FZ_ASSERT(e.msg[0], "chain_pread failed without a message");
		}
	}
}

static void scan_pool(const char *dir)
{
	struct scan_opts o = { 0 };
	struct graph *g = NULL;
	struct img_err e = { 0 };
	char *paths[1] = { (char *)dir };
	int r = graph_scan(paths, 1, &o, &g, &e);

	if (r < 0) {
		FZ_ASSERT(e.msg[0], "graph_scan %d without a message", r);
		return;
	}
	for (int i = 0; i < g->n; i++) {
		const struct gnode *n = &g->nodes[i];
		FZ_ASSERT(n->backing < g->n, "node %d backing %d of %d", i,
			  n->backing, g->n);
		FZ_ASSERT(n->backing != i, "node %d is its own backing", i);
		if (n->flags & GN_IN_POOL)
			FZ_ASSERT(n->path && strstr(n->path, dir),
				  "pool node outside the dir: %s",
				  n->path ? n->path : "(null)");
	}
	graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_scratch();
	char top[PATH_MAX + 8];
	struct chain *c = NULL;
	struct img_err e = { 0 };
	int r;

	fz_scratch_put3(data, size);
	snprintf(top, sizeof(top), "%s/a", dir);

	fz_confine = 1;
	r = chain_open(top, "qcow2", IMG_O_INSPECT, 0, 0, &c, &e);
	if (r < 0) {
		FZ_ASSERT(e.msg[0], "chain_open %d without a message", r);
		FZ_ASSERT(c == NULL, "failed chain_open returned a chain");
	} else {
		FZ_ASSERT(c->n >= 1 && c->n <= 3,
			  "%d layers from 3 files (a loop not caught?)", c->n);
		walk_chain(c);
		chain_close(c);
	}
	/* the same files through the pool scan (probing, no format given) */
	scan_pool(dir);
	fz_confine = 0;
	return 0;
}
