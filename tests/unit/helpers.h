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

/* Exit status of a skipped test binary (as automake's harness counts it);
 * tests/run.sh shows such a binary as SKIP. */
#define UT_EXIT_SKIP 77

/* The tools (a NULL-terminated list of command names) a suite runs, such
 * as qemu-img.  -1 when every one is installed; otherwise a message on
 * stderr and the exit status main should return: UT_EXIT_SKIP, or
 * EXIT_FAILURE under CI=true, where every test must run. */
int ut_need_tools(const char *tool, ...) __attribute__((sentinel));

#endif
