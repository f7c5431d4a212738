/* plan_words.c - a plan in plain words (plan.h): what each image's role
 * means for what it shows, and the one-line summary both front ends print
 * before the details.  The roles are policy.c's (plan_role_of), so the
 * words cannot disagree with what the commit does. */
#include "plan.h"
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum plan_fx plan_effect(const struct plan *p, int id)
{
	switch (plan_role_of(p, id)) {
	case PLAN_ROLE_BASE: return PLAN_FX_TAKES_DATA;
	case PLAN_ROLE_PARENT: return PLAN_FX_READS_BASE;
	case PLAN_ROLE_TOP_KEPT: return PLAN_FX_KEPT;
	case PLAN_ROLE_INTER: return PLAN_FX_STALE;
	case PLAN_ROLE_TOP:
		return p->leaf == PLAN_LEAF_DROP ? PLAN_FX_DROPPED
						 : PLAN_FX_UNUSED;
	case PLAN_ROLE_PROTECTED: return PLAN_FX_PROTECTED;
	case PLAN_ROLE_PULL_TOP: return PLAN_FX_PULLED;
	case PLAN_ROLE_PULL_BASE: return PLAN_FX_NOT_WRITTEN;
	default: return PLAN_FX_NONE;
	}
}

const char *plan_effect_words(enum plan_fx fx)
{
	switch (fx) {
	case PLAN_FX_TAKES_DATA: return "takes top's data - its view changes";
	case PLAN_FX_READS_BASE: return "reads base now - view stays";
	case PLAN_FX_KEPT: return "kept, emptied, reads base - view stays";
	case PLAN_FX_STALE: return "left stale - its view changes";
	case PLAN_FX_UNUSED: return "left unused - nothing reads it";
	case PLAN_FX_DROPPED: return "dropped, keeps its old link - stale";
	case PLAN_FX_PROTECTED:
		return "protected: still reads base, takes its old data - "
		       "view stays";
	case PLAN_FX_PULLED:
		return "takes the data between, then reads base - view stays";
	case PLAN_FX_NOT_WRITTEN: return "not written - view stays";
	case PLAN_FX_NONE: break;
	}
	return "untouched - view stays";
}

static const char *name_of(const struct graph *g, int id, plan_label_fn label,
			   const void *ctx)
{
	if (label)
		return label(ctx, g, id);
	return id >= 0 && id < g->n ? g->nodes[id].name : "?";
}

struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (o->pos >= o->len)
		return;
	va_start(ap, fmt);
	r = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (r > 0)
		o->pos += (size_t)r < o->len - o->pos ? (size_t)r
						      : o->len - o->pos - 1;
}

/* "a", "a and b", "a, b and c"; past four names "a, b, c and 3 more". */
static int list(struct out *o, const struct graph *g, const struct plan *p,
		enum plan_fx fx, plan_label_fn label, const void *ctx)
{
	int ids[4], n = 0, total = 0;

	for (int i = 0; i < g->n; i++) {
		if (plan_effect(p, i) != fx)
			continue;
		if (n < 4)
			ids[n++] = i;
		total++;
	}
	for (int i = 0; i < n; i++) {
		bool last = i == n - 1 && total == n;
		put(o, "%s%s", i == 0 ? "" : last ? " and " : ", ",
		    name_of(g, ids[i], label, ctx));
	}
	if (total > n)
		put(o, " and %d more", total - n);
	return total;
}

/* One clause "; NAMES VERB" when any image has effect fx. */
static void clause(struct out *o, const struct graph *g, const struct plan *p,
		   enum plan_fx fx, const char *verb, plan_label_fn label,
		   const void *ctx)
{
	int total = 0;

	for (int i = 0; i < g->n; i++)
		total += plan_effect(p, i) == fx;
	if (!total)
		return;
	put(o, "; ");
	list(o, g, p, fx, label, ctx);
	put(o, " %s", verb);
}

const char *plan_summary(const struct graph *g, const struct plan *p,
			 plan_label_fn label, const void *ctx, char *buf,
			 size_t len)
{
	struct out o = { buf, len, 0 };
	char base[1024], verb[2200];
	int users = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	if (!plan_runnable(p)) {
		put(&o, "this plan cannot run (%d conflict%s): nothing would "
		    "be written", p->nconflicts, p->nconflicts == 1 ? "" : "s");
		return buf;
	}
	snprintf(base, sizeof(base), "%s", name_of(g, p->base, label, ctx));
	if (p->pull) {
		put(&o, "%s will take the data between it and %s, then read "
		    "%s; %s is not written; what every other image shows "
		    "stays", name_of(g, p->top, label, ctx), base, base, base);
		return buf;
	}
	snprintf(verb, sizeof(verb), "will read %s", base);
	put(&o, "%s will take top's data", base);
	clause(&o, g, p, PLAN_FX_READS_BASE, verb, label, ctx);
	snprintf(verb, sizeof(verb), "will be kept, emptied, reading %s",
		 base);
	clause(&o, g, p, PLAN_FX_KEPT, verb, label, ctx);
	for (int i = 0; i < p->nparents; i++)
		users += p->parents[i].node < 0;
	if (users)
		put(&o, "; %d users-file entr%s will name %s", users,
		    users == 1 ? "y" : "ies", base);
	snprintf(verb, sizeof(verb), "will first take %s's old data where "
		 "they read it, and keep reading %s", base, base);
	clause(&o, g, p, PLAN_FX_PROTECTED, verb, label, ctx);
	clause(&o, g, p, PLAN_FX_STALE, "will be left stale", label, ctx);
	clause(&o, g, p, PLAN_FX_UNUSED, "will be left unused (nothing reads "
	       "it)", label, ctx);
	clause(&o, g, p, PLAN_FX_DROPPED, "will be dropped, left stale",
	       label, ctx);
	put(&o, "; what every other image shows stays");
	return buf;
}

const char *plan_sh_quote(const char *s, char *buf, size_t len)
{
	size_t k = 0;
	bool plain = s && *s;

	for (const char *q = s; plain && *q; q++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
			       "VWXYZ0123456789._/-+,:@%=", *q) != NULL;
	if (plain) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	if (len < 3) {
		if (len)
			buf[0] = 0;
		return buf;
	}
	buf[k++] = '\'';
	for (const char *q = s ? s : ""; *q && k + 5 < len; q++) {
		if (*q == '\'') {
			memcpy(buf + k, "'\\''", 4);
			k += 4;
		} else
			buf[k++] = *q;
	}
	buf[k++] = '\'';
	buf[k] = 0;
	return buf;
}
