/* emit.h - human/json/yaml renderings of the pool tree and of a plan,
 * shared by the CLI (imgraph tree / plan) and the editor (which renders
 * into open_memstream so both show the same text).  Writers go through
 * ow.h for json/yaml.  Nothing is owned: they write to f only.
 */
#ifndef IMGRAPH_EMIT_H
#define IMGRAPH_EMIT_H

#include <stdint.h>
#include <stdio.h>

#include "core/graph/graph.h"
#include "ow.h"
#include "core/plan/plan.h"

/* The forest: human = indented tree, one line per node (format, virtual
 * size, allocated size, child count, flags) plus indented error and user
 * lines; json/yaml = {pool, users-file, nodes, edges, users}. */
void emit_tree(FILE *f, const struct graph *g, enum out_fmt fmt);

/* The plan: top, base, intermediates, bytes to copy, base growth, every
 * parent with old/new backing string and format, every conflict. */
void emit_plan(FILE *f, const struct graph *g, const struct plan *p,
	       enum out_fmt fmt);

/* The plan's other readers of base (plan_protect.h): human lines (none
 * when base has no other readers), and the "protect" member. */
void emit_protect_human(FILE *f, const struct graph *g, const struct plan *p);
void emit_protect_struct(struct ow *w, const struct graph *g,
			 const struct plan *p);

/* Comma-separated flag words of a node ("in use, outside pool"), "" if
 * none; into buf. */
const char *emit_node_flags(unsigned flags, char *buf, size_t len);
/* "1.5 GiB" style (binary units) into buf. */
const char *emit_size(uint64_t v, char *buf, size_t len);
/* Permission mask as a json/yaml list of QAPI names under key. */
void emit_perm_list(struct ow *w, const char *key, uint8_t mask);

#endif
