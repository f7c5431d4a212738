/* helpers.c - see helpers.h. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ut_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define UT_TMP_TEMPLATE "/tmp/imgraph-ut.XXXXXX"
char ut_tmpdir[sizeof(UT_TMP_TEMPLATE)] = UT_TMP_TEMPLATE;

void ut_tmp_setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(ut_tmpdir));
}

void ut_tmp_teardown(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", ut_tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(ut_tmpdir, UT_TMP_TEMPLATE);
}
