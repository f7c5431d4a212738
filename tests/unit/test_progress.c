/* test_progress.c - the meter of core/commit/progress.h that the CLI's
 * bar and JSON lines and the editor's progress screen all show: the
 * overall share over every phase (never going back, skipped phases
 * counted as over), the rate over a window of running time (a slow
 * stretch shows, one burst does not hold it up), time on a question kept
 * out of rate and ETA. */
#include "helpers.h"
#include <check.h>
#include <math.h>

#include "core/commit/progress.h"

static void feed(struct progress_meter *m, const char *ph, uint64_t d,
		 uint64_t t, double now)
{
	struct progress_event ev = { ph, d, t, NULL };
	progress_meter_feed(m, &ev, now);
}

START_TEST(phases_and_overall)
{
	struct progress_meter m;
	progress_meter_init(&m, 100);
	ck_assert_int_eq(progress_phase_index("check"), 0);
	ck_assert_int_eq(progress_phase_index("cleanup"), 4);
	ck_assert_int_eq(progress_phase_index("nope"), -1);
	/* No check (a raw base): the copy starts after it, counted over. */
	feed(&m, "copy", 0, 100, 100);
	ck_assert(!m.seen[0] && m.seen[1]);
	double f0 = m.fraction;
	ck_assert(f0 > 0 && f0 < 0.05);
	feed(&m, "copy", 50, 100, 101);
	ck_assert(m.fraction > f0 && m.fraction < 0.9);
	/* A total that grows does not take the bar back. */
	double f1 = m.fraction;
	feed(&m, "copy", 50, 400, 101.5);
	ck_assert(m.fraction >= f1);
	feed(&m, "copy", 400, 400, 102);
	feed(&m, "flush", 0, 1, 102);
	feed(&m, "relink", 1, 2, 102);
	feed(&m, "cleanup", 1, 1, 102);
	ck_assert(fabs(m.fraction - 1.0) < 1e-9);
	ck_assert_int_eq(m.bytes, 400);
	/* After the copy: its average, and nothing left to wait for. */
	ck_assert(fabs(progress_meter_rate(&m, 200) - 200.0) < 1e-6);
	ck_assert(progress_meter_eta(&m, 200) == 0);
}
END_TEST

START_TEST(rate_window_and_pause)
{
	struct progress_meter m;
	progress_meter_init(&m, 0);
	feed(&m, "check", 1, 1, 0);
	feed(&m, "copy", 0, 1000, 0);
	ck_assert(progress_meter_rate(&m, 0) == 0);   /* nothing moved */
	ck_assert(progress_meter_eta(&m, 0) < 0);
	/* 10 bytes a second for 5 s, then 100 a second. */
	for (int t = 1; t <= 5; t++)
		feed(&m, "copy", (uint64_t)(10 * t), 1000, t);
	ck_assert(fabs(progress_meter_rate(&m, 5) - 10) < 1e-6);
	for (int t = 6; t <= 10; t++)
		feed(&m, "copy", 50 + (uint64_t)(100 * (t - 5)), 1000, t);
	/* The window (3 s) sees only the new speed. */
	ck_assert(fabs(progress_meter_rate(&m, 10) - 100) < 1e-6);
	ck_assert(fabs(progress_meter_eta(&m, 10) - 4.5) < 1e-6);
	/* A question open 60 s: neither rate nor ETA move. */
	progress_meter_pause(&m, true, 10);
	ck_assert(fabs(progress_meter_rate(&m, 70) - 100) < 1e-6);
	ck_assert(fabs(progress_meter_eta(&m, 70) - 4.5) < 1e-6);
	progress_meter_pause(&m, false, 70);
	ck_assert(fabs(progress_meter_running(&m, 70) - 10) < 1e-6);
	feed(&m, "copy", 650, 1000, 71);
	ck_assert(fabs(progress_meter_rate(&m, 71) - 100) < 1e-6);
	/* A stall longer than a second shows in the rate. */
	ck_assert(progress_meter_rate(&m, 75) < 100);
}
END_TEST

START_TEST(first_burst)
{
	struct progress_meter m;
	progress_meter_init(&m, 0);
	feed(&m, "copy", 0, 1000, 0);
	/* 100 bytes at once, then a rate limit's pause: under a second of
	 * reports, the average since the copy began. */
	feed(&m, "copy", 100, 1000, 0.01);
	ck_assert(fabs(progress_meter_rate(&m, 0.5) - 200) < 1e-6);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("meter");
	tcase_add_test(tc, phases_and_overall);
	tcase_add_test(tc, rate_window_and_pause);
	tcase_add_test(tc, first_burst);
	suite_add_tcase(s, tc);
	return ut_run(s);
}
