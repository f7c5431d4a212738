/* fz_journal.c - libFuzzer target: the relink journal parser, the
 * recovery planner and the stale record parser (core/commit/journal.h,
 * core/commit/recover.h, core/commit/stale.h; pure functions, no file is
 * touched).  Every input goes to both parsers: the two records share the
 * text form (rectext.h) and the seeds hold both.
 *
 * Oracles:
 *  - parse either fails with a message and no journal, or succeeds;
 *  - a parsed journal renders and re-parses to the same rendering
 *    (render(parse(render(j))) == render(j));
 *  - recover_classify of a file that is not the journal's (same_file false)
 *    is MISSING;
 *  - recover_plan, for parent/users classes derived from the input:
 *      * never plans anything when a class is FOREIGN or MISSING (blocked),
 *      * returns no actions with -EINVAL,
 *      * indexes only existing parents, writes the users file only when the
 *        journal has one,
 *      * never empties top when rolling back, nor before every parent is
 *        NEW (a MARK_RELINKED first, or the journal already RELINKED), nor
 *        when the journal did not ask for it.
 *  An invalid journal (parse error) can never reach the planner, which is
 *  the "never plan a write from an invalid journal" rule.
 *  - the stale record parses the same way: fails with a message and no
 *    record, or renders and re-parses to the same rendering, within its
 *    bounds (transactions, images, protected readers).
 */
#include "fz_common.h"
#include "core/commit/journal.h"
#include "core/commit/recover.h"
#include "core/commit/stale.h"

static uint32_t mix(const uint8_t *d, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 16777619u;
	return h;
}

static void check_plan(const struct journal *j, const uint8_t *data,
		       size_t size)
{
	enum rec_class *pcls = calloc((size_t)j->nparents + 1, sizeof(*pcls));
	enum rec_class ucls;
	struct rec_plan plan = { 0 };
	struct img_err e = { 0 };
	uint32_t h = mix(data, size);
	bool bad = false, rollback = h & 1;
	int r, relinked_at = -1;

	FZ_ASSERT(pcls, "oom");
	/* classes from the input hash: each parent independently */
	for (int i = 0; i < j->nparents; i++) {
		uint32_t x = (h >> ((i % 8) * 4)) ^ (uint32_t)i * 2654435761u;
		pcls[i] = (enum rec_class)(x % 5);
		bad |= pcls[i] == REC_FOREIGN || pcls[i] == REC_MISSING;
	}
	ucls = (enum rec_class)((h >> 7) % 5);
	if (j->users.path)
		bad |= ucls == REC_FOREIGN || ucls == REC_MISSING;

	r = recover_plan(j, pcls, ucls, rollback, &plan, &e);
	if (r < 0) {
		FZ_ASSERT(plan.n == 0, "%d actions with error %d", plan.n, r);
		goto out;
	}
	if (bad)
		FZ_ASSERT(plan.blocked && plan.n == 0,
			  "planned %d actions (blocked=%d) with a FOREIGN/MISSING class",
			  plan.n, plan.blocked);
	if (plan.blocked)
		FZ_ASSERT(plan.n == 0, "blocked plan with %d actions", plan.n);
	for (int i = 0; i < plan.n; i++) {
		const struct rec_action *a = &plan.v[i];

		switch (a->kind) {
		case RA_WRITE_PARENT:
			FZ_ASSERT(a->index >= 0 && a->index < j->nparents,
				  "parent index %d of %d", a->index, j->nparents);
			FZ_ASSERT(a->to_new == !rollback,
				  "parent write direction %d with rollback %d",
				  a->to_new, rollback);
			FZ_ASSERT(relinked_at < 0,
				  "parent write after MARK_RELINKED");
			break;
		case RA_WRITE_USERS:
			FZ_ASSERT(j->users.path != NULL,
				  "users write without a users record");
			break;
		case RA_MARK_RELINKED:
			FZ_ASSERT(!rollback, "MARK_RELINKED while rolling back");
			relinked_at = i;
			break;
		case RA_EMPTY_TOP:
			FZ_ASSERT(!rollback, "top emptied while rolling back");
			FZ_ASSERT(j->empty_top, "top emptied without empty_top");
			FZ_ASSERT(relinked_at >= 0 || j->state == JOURNAL_RELINKED,
				  "top emptied before the journal says RELINKED");
			break;
		case RA_REMOVE_JOURNAL:
			FZ_ASSERT(i == plan.n - 1, "journal removed before the end");
			break;
		default:
			FZ_ASSERT(0, "unknown action %d", a->kind);
		}
	}
out:
	recover_plan_free(&plan);
	free(pcls);
}

static void check_stale(const uint8_t *data, size_t size)
{
	struct stale_record *r1 = NULL, *r2 = NULL;
	struct img_err e = { 0 };
	char *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	int r = stale_parse((const char *)data, size, &r1, &e);

	if (r < 0) {
		FZ_ASSERT(r1 == NULL, "failed stale parse returned a record");
		FZ_ASSERT(e.msg[0], "stale parse failed (%d) without a message", r);
		return;
	}
	FZ_ASSERT(r1 && r1->ntx >= 0 && r1->ntx <= STALE_MAX_TX,
		  "ntx %d", r1 ? r1->ntx : -1);
	for (int i = 0; i < r1->ntx; i++)
		FZ_ASSERT(r1->tx[i].n >= 0 && r1->tx[i].n <= STALE_MAX_IMGS &&
			  r1->tx[i].nrd >= 0 && r1->tx[i].nrd <= STALE_MAX_IMGS,
			  "tx %d: %d images, %d readers", i, r1->tx[i].n,
			  r1->tx[i].nrd);
	r = stale_render(r1, &b1, &l1, &e);
	FZ_ASSERT(r == 0, "render of a parsed stale record failed: %s", e.msg);
	r = stale_parse(b1, l1, &r2, &e);
	FZ_ASSERT(r == 0, "re-parse of a rendered stale record failed: %s",
		  e.msg);
	r = stale_render(r2, &b2, &l2, &e);
	FZ_ASSERT(r == 0 && l1 == l2 && !memcmp(b1, b2, l1),
		  "stale render/parse/render is not stable");
	free(b1);
	free(b2);
	stale_free(r1);
	stale_free(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal *j = NULL, *j2 = NULL;
	struct img_err e = { 0 };
	char *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;
	int r;

	check_stale(data, size);
	r = journal_parse((const char *)data, size, &j, &e);
	if (r < 0) {
		FZ_ASSERT(j == NULL, "failed parse returned a journal");
		FZ_ASSERT(e.msg[0], "parse failed (%d) without a message", r);
		return 0;
	}
	FZ_ASSERT(j && j->nparents >= 0 && j->nparents <= JOURNAL_MAX_PARENTS,
		  "nparents %d", j ? j->nparents : -1);
	/* round trip */
	r = journal_render(j, &buf, &len, &e);
	FZ_ASSERT(r == 0, "render of a parsed journal failed: %s", e.msg);
	r = journal_parse(buf, len, &j2, &e);
	FZ_ASSERT(r == 0, "re-parse of a rendered journal failed: %s", e.msg);
	r = journal_render(j2, &buf2, &len2, &e);
	FZ_ASSERT(r == 0 && len == len2 && !memcmp(buf, buf2, len),
		  "render/parse/render is not stable");
	for (int i = 0; i < j->nparents; i++) {
		const struct journal_parent *p = &j->parents[i];
		FZ_ASSERT(recover_classify(p, data, size, false) == REC_MISSING,
			  "another file at the path not classified MISSING");
		(void)recover_classify(p, data, size, true);
	}
	check_plan(j, data, size);
	free(buf);
	free(buf2);
	journal_free(j);
	journal_free(j2);
	return 0;
}
