/* test_base.c - the error object, the output writer, the I/O layer's fault
 * modes and the raw driver. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "core/out/emit.h"
#include "formats/io/err.h"
#include "formats/io/io.h"
#include "core/out/ow.h"
#include "formats/format.h"

START_TEST(err_set_returns_negative_code)
{
	struct img_err e;

	ck_assert_int_eq(err_set(&e, EINVAL, "%s: field '%s'", "a.qcow2", "x"),
			 -EINVAL);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_str_eq(e.msg, "a.qcow2: field 'x'");
	err_prefix(&e, "while %s: ", "relinking");
	ck_assert_str_eq(e.msg, "while relinking: a.qcow2: field 'x'");
	ck_assert_int_eq(err_set_errno(&e, ENOENT, "b"), -ENOENT);
	ck_assert_str_eq(e.msg, "b: No such file or directory");
	ck_assert_int_eq(err_set(NULL, EIO, "ignored"), -EIO);
}
END_TEST

START_TEST(err_prefix_truncates_safely)
{
	struct img_err e;
	char big[2000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	err_set(&e, EIO, "%s", big);
	err_prefix(&e, "%s", big);
	ck_assert_uint_eq(strlen(e.msg), IMG_ERR_MSG_MAX - 1);
}
END_TEST

static char *render(enum out_fmt f)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	struct ow w;

	ow_init(&w, m, f);
	ow_obj_open(&w, NULL);
	ow_str(&w, "filename", "we\"ird\nname: yes");
	ow_u64(&w, "virtual-size", 1ull << 40);
	ow_arr_open(&w, "children");
	ow_obj_open(&w, NULL);
	ow_str(&w, "name", "x");
	ow_bool(&w, "ok", true);
	ow_close(&w);
	ow_arr_open(&w, NULL);
	ow_str(&w, NULL, "inner");
	ow_close(&w);
	ow_close(&w);
	ow_obj_open(&w, "empty");
	ow_close(&w);
	ow_null(&w, "nothing");
	ow_close(&w);
	ow_finish(&w);
	fclose(m);
	return buf;
}

START_TEST(ow_json_exact)
{
	char *s = render(OUT_JSON);

	ck_assert_str_eq(s,
		"{\n"
		"    \"filename\": \"we\\\"ird\\nname: yes\",\n"
		"    \"virtual-size\": 1099511627776,\n"
		"    \"children\": [\n"
		"        {\n"
		"            \"name\": \"x\",\n"
		"            \"ok\": true\n"
		"        },\n"
		"        [\n"
		"            \"inner\"\n"
		"        ]\n"
		"    ],\n"
		"    \"empty\": {},\n"
		"    \"nothing\": null\n"
		"}\n");
	free(s);
}
END_TEST

/* The YAML must parse (libyaml) back to the same scalars in order. */
START_TEST(ow_yaml_parses_back)
{
	char *s = render(OUT_YAML);
	yaml_parser_t p;
	yaml_event_t ev;
	const char *want[] = { "filename", "we\"ird\nname: yes",
			       "virtual-size", "1099511627776", "children",
			       "name", "x", "ok", "true", "inner", "empty",
			       "nothing", "null" };
	size_t i = 0;
	int done = 0;

	ck_assert(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)s, strlen(s));
	while (!done) {
		ck_assert_msg(yaml_parser_parse(&p, &ev), "YAML error: %s\n%s",
			      p.problem, s);
		if (ev.type == YAML_SCALAR_EVENT) {
			ck_assert_uint_lt(i, sizeof(want) / sizeof(want[0]));
			ck_assert_str_eq((char *)ev.data.scalar.value, want[i]);
			i++;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	ck_assert_uint_eq(i, sizeof(want) / sizeof(want[0]));
	yaml_parser_delete(&p);
	free(s);
}
END_TEST

/* Run fn in a child with IMGRAPH_FAULT set; return its wait status. */
static int run_with_fault(const char *spec, void (*fn)(void))
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("IMGRAPH_FAULT", spec, 1);
		io_fault_reload();
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static char fault_file[256];

/* Three mutating ops: create, write, fdatasync; exit code says which failed. */
static void three_ops(void)
{
	int fd = io_open(fault_file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		_exit(10);
	if (io_pwrite(fd, "abcdefgh", 8, 0) < 0)
		_exit(20 + (errno == ENOSPC));
	if (io_fdatasync(fd) < 0)
		_exit(30);
	_exit(0);
}

START_TEST(io_fault_modes)
{
	int st;

	snprintf(fault_file, sizeof(fault_file), "%s/f", ut_tmpdir);
	st = run_with_fault("kill:2", three_ops);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* killed before the write: the file exists and is empty */
	ck_assert_int_eq(access(fault_file, F_OK), 0);
	{
		FILE *f = fopen(fault_file, "r");
		fseek(f, 0, SEEK_END);
		ck_assert_int_eq(ftell(f), 0);
		fclose(f);
	}
	st = run_with_fault("kill:2:after", three_ops);
	ck_assert(WIFSIGNALED(st));
	st = run_with_fault("err:3:EIO", three_ops);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 30);
	st = run_with_fault("err:1:ENOSPC", three_ops);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 10);
	st = run_with_fault("short:2", three_ops);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 20);
	st = run_with_fault("", three_ops);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(raw_driver_roundtrip)
{
	struct img_create_opts o = { .size = 4 << 20 };
	struct img_err e;
	struct img *img;
	char path[256], buf[4096];
	uint64_t pnum;
	bool probed;
	int bs;

	snprintf(path, sizeof(path), "%s/r.raw", ut_tmpdir);
	ck_assert_int_eq(img_format_raw.create(path, &o, &e), 0);
	ck_assert_int_eq(img_open(path, NULL, IMG_O_RDWR, &img, &probed, &e), 0);
	ck_assert(probed);
	ck_assert_str_eq(img->drv->name, "raw");
	ck_assert_uint_eq(img->virtual_size, 4 << 20);
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(img->drv->pwrite(img, 1 << 20, buf, sizeof(buf), &e), 0);
	bs = img->drv->block_status(img, 1 << 20, 4096, &pnum, &e);
	ck_assert_int_eq(bs, IMG_BS_DATA);
	bs = img->drv->block_status(img, 0, 1 << 20, &pnum, &e);
	ck_assert_int_eq(bs, IMG_BS_ZERO);
	ck_assert_uint_eq(pnum, 1 << 20);
	ck_assert_int_eq(img->drv->write_zeroes(img, 1 << 20, 4096, &e), 0);
	memset(buf, 1, sizeof(buf));
	ck_assert_int_eq(img->drv->pread(img, 1 << 20, buf, sizeof(buf), &e), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_int_eq(img->drv->grow(img, 8 << 20, &e), 0);
	ck_assert_uint_eq(img->virtual_size, 8 << 20);
	img_close(img);
	/* the raw driver refuses a backing file */
	o.backing = "x";
	ck_assert_int_eq(img_format_raw.create(path, &o, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "backing"));
}
END_TEST

START_TEST(probe_claims_every_qcow_version_but_zero)
{
	/* magic, then the version: 0 is raw (as in QEMU), 1 is QEMU's old
	 * qcow format (its driver refuses this header: size 0), >= 4 are
	 * claimed by the qcow2 driver, which then refuses to open them */
	static const uint32_t versions[] = { 0, 1, 2, 3, 4, 255 };
	uint8_t buf[512] = { 'Q', 'F', 'I', 0xfb };
	struct img_err e;
	struct img *img;
	char path[256];
	FILE *f;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		uint32_t v = versions[i];

		buf[4] = (uint8_t)(v >> 24), buf[5] = (uint8_t)(v >> 16);
		buf[6] = (uint8_t)(v >> 8), buf[7] = (uint8_t)v;
		ck_assert_str_eq(img_format_probe(buf, sizeof(buf))->name,
				 v == 0 ? "raw" : v == 1 ? "qcow" : "qcow2");
		if (v == 2 || v == 3)
			continue;	/* the rest of buf is no valid header */
		snprintf(path, sizeof(path), "%s/v%u.img", ut_tmpdir, v);
		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		ck_assert_uint_eq(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
		fclose(f);
		if (v == 0) {
			ck_assert_int_eq(img_open(path, NULL, 0,
						  &img, NULL, &e), 0);
			img_close(img);
			continue;
		}
		ck_assert_int_lt(img_open(path, NULL, 0, &img,
					  NULL, &e), 0);
		ck_assert_msg(strstr(e.msg, path) &&
			      strstr(e.msg, v == 1 ? "qcow (version 1) header "
					    "field 'size' is 0" : "'version'"),
			      "%s", e.msg);
	}
	ck_assert_ptr_nonnull(strstr(e.msg, "is 255; must be 2 or 3"));
}
END_TEST

START_TEST(open_refuses_fifo_without_blocking)
{
	struct img_err e;
	struct img *img;
	char path[256];

	snprintf(path, sizeof(path), "%s/fifo", ut_tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_lt(img_open(path, NULL, 0, &img, NULL, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
	ck_assert_int_lt(img_open(ut_tmpdir, NULL, 0, &img, NULL, &e), 0);
}
END_TEST

START_TEST(size_format)
{
	char b[32];

	ck_assert_str_eq(emit_size(512, b, sizeof(b)), "512 B");
	ck_assert_str_eq(emit_size(1638400, b, sizeof(b)), "1.56 MiB");
	ck_assert_str_eq(emit_size(64ull << 20, b, sizeof(b)), "64 MiB");
	/* 1000..1023 of a unit: no scientific notation */
	ck_assert_str_eq(emit_size(1000ull << 10, b, sizeof(b)), "1000 KiB");
	ck_assert_str_eq(emit_size(1023ull << 30, b, sizeof(b)), "1023 GiB");
}
END_TEST

static Suite *base_suite(void)
{
	Suite *s = suite_create("base");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, err_set_returns_negative_code);
	tcase_add_test(tc, err_prefix_truncates_safely);
	tcase_add_test(tc, ow_json_exact);
	tcase_add_test(tc, ow_yaml_parses_back);
	tcase_add_test(tc, io_fault_modes);
	tcase_add_test(tc, raw_driver_roundtrip);
	tcase_add_test(tc, probe_claims_every_qcow_version_but_zero);
	tcase_add_test(tc, open_refuses_fifo_without_blocking);
	tcase_add_test(tc, size_format);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(base_suite());
}
