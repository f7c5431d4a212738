/* helpers.c - see helpers.h. */
#include "helpers.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Whether name is an executable file in a directory of $PATH. */
static bool on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		size_t n = strcspn(path, ":");
		if (n && (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)n,
					  path, name) < sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

static bool in_ci(void)
{
	const char *ci = getenv("CI");
	return ci && (!strcmp(ci, "true") || !strcmp(ci, "1") ||
		      !strcmp(ci, "yes"));
}

int ut_need_tools(const char *tool, ...)
{
	char missing[512] = "";
	size_t len = 0;
	va_list ap;

	va_start(ap, tool);
	for (const char *t = tool; t; t = va_arg(ap, const char *)) {
		if (on_path(t) || len + strlen(t) + 2 > sizeof(missing))
			continue;
		len += (size_t)sprintf(missing + len, " %s", t);
	}
	va_end(ap);
	if (!len)
		return -1;
	if (in_ci()) {
		fprintf(stderr, "FAIL:%s not installed (CI=true runs every "
			"test; make deps installs it)\n", missing);
		return EXIT_FAILURE;
	}
	fprintf(stderr, "skipped:%s not installed (make deps installs it)\n",
		missing);
	return UT_EXIT_SKIP;
}
