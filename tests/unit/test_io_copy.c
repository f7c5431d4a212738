/* test_io_copy.c - io_copy_range, the file-to-file copy under the commit:
 * the bytes land at the asked offsets whatever the method, a method the
 * file system refuses falls back and is remembered, a source that ends
 * early is an error (never zeros), one call is one mutating op for the
 * fault modes (an injected error writes nothing, a short op writes half
 * and fails), and io_copy_predict never offers more than the two files'
 * file systems allow. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/io/io.h"

#define N (300u * 1024 + 123)      /* not a multiple of any block size */

static char *at(const char *name)
{
	static char buf[2][512];
	static int k;

	k = (k + 1) % 2;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", ut_tmpdir, name);
	return buf[k];
}

/* src: N bytes of a pattern at offset 4096; dst: 1 MiB of 0xee. */
static void files(int *src, int *dst, uint8_t *want)
{
	uint8_t *b = malloc(1 << 20);

	ck_assert_ptr_nonnull(b);
	*src = open(at("src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	*dst = open(at("dst"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(*src, 0);
	ck_assert_int_ge(*dst, 0);
	for (size_t i = 0; i < N; i++)
		want[i] = (uint8_t)(i * 7 + i / 4096);
	ck_assert_int_eq(pwrite(*src, want, N, 4096), (ssize_t)N);
	memset(b, 0xee, 1 << 20);
	ck_assert_int_eq(pwrite(*dst, b, 1 << 20, 0), 1 << 20);
	free(b);
}

/* dst holds want at off, and 0xee in the bytes just around it. */
static void dst_is(int dst, uint64_t off, const uint8_t *want, size_t n)
{
	uint8_t *b = malloc(n ? n : 1), edge;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pread(dst, b, n, (off_t)off), (ssize_t)n);
	ck_assert(memcmp(b, want, n) == 0);
	free(b);
	if (off) {
		ck_assert_int_eq(pread(dst, &edge, 1, (off_t)off - 1), 1);
		ck_assert_uint_eq(edge, 0xee);
	}
	ck_assert_int_eq(pread(dst, &edge, 1, (off_t)(off + n)), 1);
	ck_assert_uint_eq(edge, 0xee);
}

START_TEST(every_method_lands_the_bytes)
{
	static uint8_t want[N];

	for (int first = IO_COPY_CLONE; first <= IO_COPY_RW; first++) {
		struct io_copy_ctx ctx = { .first = first };
		int src, dst, how;
		files(&src, &dst, want);
		how = io_copy_range(dst, 8192 + 512, src, 4096, N, &ctx);
		ck_assert_int_ge(how, first);
		ck_assert_int_le(how, IO_COPY_RW);
		ck_assert_uint_eq(ctx.bytes[IO_COPY_CLONE] +
				  ctx.bytes[IO_COPY_CFR] +
				  ctx.bytes[IO_COPY_RW], N);
		dst_is(dst, 8192 + 512, want, N);
		if (first == IO_COPY_RW)
			ck_assert_uint_eq(ctx.bytes[IO_COPY_RW], N);
		close(src);
		close(dst);
	}
}
END_TEST

START_TEST(refusal_is_remembered)
{
	static uint8_t want[N];
	struct io_copy_ctx ctx = { .first = IO_COPY_CLONE };
	int src, dst;

	files(&src, &dst, want);
	/* Unaligned: a clone is refused for this range only (EINVAL). */
	ck_assert_int_ge(io_copy_range(dst, 1, src, 4096, 1000, &ctx), 0);
	/* A file system that cannot clone at all says so for good. */
	ck_assert_int_ge(io_copy_range(dst, 8192, src, 4096, 4096, &ctx), 0);
	dst_is(dst, 8192, want, 4096);
	if (ctx.bytes[IO_COPY_CLONE] == 0)
		ck_assert(ctx.refused & 1u << IO_COPY_CLONE);
	/* Whatever was refused, later calls still land the bytes. */
	ck_assert_int_ge(io_copy_range(dst, 65536, src, 4096, N, &ctx), 0);
	dst_is(dst, 65536, want, N);
	dst_is(dst, 1, want, 1000);
	close(src);
	close(dst);
}
END_TEST

START_TEST(short_source_is_an_error)
{
	static uint8_t want[N];

	for (int first = IO_COPY_CLONE; first <= IO_COPY_RW; first++) {
		struct io_copy_ctx ctx = { .first = first };
		int src, dst;
		files(&src, &dst, want);
		/* src ends at 4096 + N: ask for 4096 bytes more. */
		ck_assert_int_eq(io_copy_range(dst, 0, src, 4096, N + 4096,
					       &ctx), -EIO);
		close(src);
		close(dst);
	}
}
END_TEST

static int run_with_fault(const char *spec, int *dst_out, uint8_t *want)
{
	struct io_copy_ctx ctx = { .first = IO_COPY_CLONE };
	int src, dst, r;

	files(&src, &dst, want);
	setenv("IMGRAPH_FAULT", spec, 1);
	io_fault_reload();
	r = io_copy_range(dst, 0, src, 4096, N, &ctx);
	unsetenv("IMGRAPH_FAULT");
	io_fault_reload();
	close(src);
	*dst_out = dst;
	return r;
}

START_TEST(one_op_for_the_fault_modes)
{
	static uint8_t want[N];
	uint8_t ee[16];
	int dst;

	/* An injected error: nothing written. */
	ck_assert_int_eq(run_with_fault("err:1:ENOSPC", &dst, want), -ENOSPC);
	ck_assert_int_eq(pread(dst, ee, sizeof(ee), 0), (ssize_t)sizeof(ee));
	ck_assert_uint_eq(ee[0], 0xee);
	close(dst);
	/* A short op: the first half lands, the call fails. */
	ck_assert_int_eq(run_with_fault("short:1", &dst, want), -EIO);
	dst_is(dst, 0, want, N / 2);
	close(dst);
	/* The op after it is not faulted: one call, one op. */
	ck_assert_int_ge(run_with_fault("err:2:EIO", &dst, want), 0);
	dst_is(dst, 0, want, N);
	close(dst);
}
END_TEST

START_TEST(predict_stays_within_the_file_systems)
{
	int a = open(at("a"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int b = open(at("b"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int p[2];
	struct stat sa, sp;

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	/* Same file system: the kernel copies at least. */
	ck_assert_int_le(io_copy_predict(a, b, 65536), IO_COPY_CFR);
	/* A pipe lives on another (pipefs): read and write. */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fstat(a, &sa), 0);
	ck_assert_int_eq(fstat(p[0], &sp), 0);
	ck_assert(sa.st_dev != sp.st_dev);
	ck_assert_int_eq(io_copy_predict(p[0], b, 65536), IO_COPY_RW);
	close(p[0]);
	close(p[1]);
	close(a);
	close(b);
}
END_TEST

static Suite *io_copy_suite(void)
{
	Suite *s = suite_create("io_copy");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, every_method_lands_the_bytes);
	tcase_add_test(tc, refusal_is_remembered);
	tcase_add_test(tc, short_source_is_an_error);
	tcase_add_test(tc, one_op_for_the_fault_modes);
	tcase_add_test(tc, predict_stays_within_the_file_systems);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(io_copy_suite());
}
