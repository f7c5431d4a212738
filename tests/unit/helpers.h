/* helpers.h - shared by the Check unit suites (tests/unit/helpers.c is
 * linked into every unit test binary). */
#ifndef IMGRAPH_UT_HELPERS_H
#define IMGRAPH_UT_HELPERS_H

#include <check.h>

/* Run the suite (takes ownership), print Check's summary line, and return
 * the process exit status: EXIT_SUCCESS when no test failed. */
int ut_run(Suite *s);

/* A fresh scratch directory per test (checked fixture): ut_tmpdir holds
 * its path between ut_tmp_setup() and ut_tmp_teardown(), which removes it. */
extern char ut_tmpdir[];
void ut_tmp_setup(void);
void ut_tmp_teardown(void);

#endif
