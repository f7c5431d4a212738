/* emit_protect.c - the plan's protection set (plan_protect.h) as text and
 * as a JSON/YAML member; emit_plan.c calls these. */
#include "emit.h"
#include "core/plan/plan_protect.h"

void emit_protect_human(FILE *f, const struct graph *g, const struct plan *p)
{
	const struct plan_protect *pp = p->protect;
	char a[32], b[32], c[32], d[32];

	if (!pp || !pp->n)
		return;
	fprintf(f, "other readers of base (%d): %s %s into them first%s\n",
		pp->n, pp->on ? "protected (--protect): copies" :
		"not protected: --protect would copy",
		emit_size(pp->bytes, a, sizeof(a)),
		pp->on ? "; they still read base for the rest" : "");
	for (int i = 0; i < pp->n; i++) {
		const struct plan_reader *r = &pp->r[i];

		fprintf(f, "  %s: copy %s%s, grows up to %s, needs up to %s "
			"free", g->nodes[r->node].name,
			emit_size(r->bytes, a, sizeof(a)),
			r->exact ? "" : " (upper bound)",
			emit_size(r->growth, b, sizeof(b)),
			emit_size(r->space_needed, c, sizeof(c)));
		if (r->free_space)
			fprintf(f, " (has %s)", emit_size(r->free_space, d,
							  sizeof(d)));
		fputc('\n', f);
	}
}

void emit_protect_struct(struct ow *w, const struct graph *g,
			 const struct plan *p)
{
	const struct plan_protect *pp = p->protect;

	ow_obj_open(w, "protect");
	ow_bool(w, "protected", pp && pp->on);
	ow_u64(w, "bytes", pp ? pp->bytes : 0);
	ow_u64(w, "growth", pp ? pp->growth : 0);
	ow_arr_open(w, "readers");
	for (int i = 0; pp && i < pp->n; i++) {
		const struct plan_reader *r = &pp->r[i];

		ow_obj_open(w, NULL);
		ow_i64(w, "node", r->node);
		ow_str(w, "name", g->nodes[r->node].name);
		ow_str(w, "filename", g->nodes[r->node].path);
		ow_u64(w, "bytes", r->bytes);
		ow_bool(w, "bytes-exact", r->exact);
		ow_u64(w, "growth", r->growth);
		ow_u64(w, "space-needed", r->space_needed);
		ow_u64(w, "free-space", r->free_space);
		ow_close(w);
	}
	ow_close(w);
	ow_close(w);
}
