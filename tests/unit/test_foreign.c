/* test_foreign.c - probing by content and the read-only drivers for qcow
 * (version 1), qed, vmdk and luks (formats/qcow1.c, qed.c, vmdk/, luks.c).
 *
 * Reads are judged against qemu-img in tests/it/formats_foreign.sh (byte
 * for byte through test_qcow2_read --compare, info key by key); here: the
 * probe rules, the vmdk descriptor parser on lines QEMU skips or refuses,
 * the parent CID check, and what a keyless luks open allows.  Images are
 * made by qemu-img in a scratch directory.
 */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "formats/format.h"
#include "formats/img.h"
#include "formats/vmdk/vmdk_int.h"

static int sh(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n = snprintf(cmd, sizeof(cmd), "cd %s && ", ut_tmpdir);

	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	n = system(cmd);
	return WIFEXITED(n) ? WEXITSTATUS(n) : 255;
}

static const char *at(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", ut_tmpdir, name);
	return buf[k];
}

static const char *probe(const void *buf, size_t len)
{
	return img_format_probe(buf, len)->name;
}

/* Issue 15: "A qcow v1 file shows as qcow2 with an error" and vmdk/qed/
 * luks files were raw.  Each magic now probes as QEMU's driver would. */
START_TEST(probe_by_magic)
{
	uint8_t b[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 1 };

	ck_assert_str_eq(probe(b, sizeof(b)), "qcow");
	b[7] = 0;
	ck_assert_str_eq(probe(b, sizeof(b)), "raw");      /* nobody's */
	b[7] = 2;
	ck_assert_str_eq(probe(b, sizeof(b)), "qcow2");
	b[7] = 3;
	ck_assert_str_eq(probe(b, sizeof(b)), "qcow2");
	memcpy(b, "QED\0", 4);
	ck_assert_str_eq(probe(b, sizeof(b)), "qed");
	memcpy(b, "KDMV", 4);
	ck_assert_str_eq(probe(b, sizeof(b)), "vmdk");
	memcpy(b, "COWD", 4);
	ck_assert_str_eq(probe(b, sizeof(b)), "vmdk");
	memcpy(b, "LUKS\xba\xbe\0\1", 8);
	ck_assert_str_eq(probe(b, sizeof(b)), "luks");
	b[7] = 2;          /* LUKS2: claimed, so that open refuses it by name */
	ck_assert_str_eq(probe(b, sizeof(b)), "luks");
	memcpy(b, "LUKZ", 4);
	ck_assert_str_eq(probe(b, sizeof(b)), "raw");
	ck_assert_str_eq(probe(b, 3), "raw");
}
END_TEST

/* The vmdk text probe is QEMU's: comment lines and blank lines of spaces
 * may come first, then "version=1|2|3" ending in LF or CRLF. */
START_TEST(probe_vmdk_descriptor_text)
{
	static const struct { const char *text; const char *want; } t[] = {
		{ "# Disk DescriptorFile\nversion=1\nCID=1\n", "vmdk" },
		{ "version=3\r\n", "vmdk" },
		{ "#a\n#b\n   \n  \r\nversion=2\n", "vmdk" },
		{ "version=4\n", "raw" },
		{ "\nversion=1\n", "raw" },        /* an empty line: no */
		{ "  x\nversion=1\n", "raw" },
		{ "CID=1\nversion=1\n", "raw" },
		{ "version=1", "raw" },            /* no line end */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(!strcmp(probe(t[i].text, strlen(t[i].text)),
				      t[i].want), "%s", t[i].text);
}
END_TEST

static uint32_t extents(const char *text, struct vmdk_line **l,
			struct img_err *e)
{
	uint32_t n = 0;

	ck_assert_int_eq(vmdk_desc_extents(text, "d.vmdk", l, &n, e), 0);
	return n;
}

/* Extent lines QEMU skips stay skipped; those it uses keep their fields. */
START_TEST(vmdk_extent_lines)
{
	const char *text =
		"# RW 5 FLAT \"comment.vmdk\" 0\n"
		"RW 100 FLAT \"a b.vmdk\" 7\n"
		"RDONLY 100 FLAT \"ro.vmdk\" 0\n"      /* QEMU: RW only */
		"NOACCESS 100 FLAT \"na.vmdk\" 0\n"
		"RW 100 ZERO \"z.vmdk\"\n"             /* type not used */
		"RW 0 SPARSE \"empty.vmdk\"\n"         /* no sectors */
		"RW 100 FLAT x.vmdk 0\n"               /* no quotes */
		"RW 100 FLAT \"\" 0\n"                 /* empty name */
		"\tRW\t200 SPARSE \"s.vmdk\"\r\n"
		"RW 300 VMFS \"v.vmdk\"\n";
	struct vmdk_line *l;
	struct img_err e;
	uint32_t n = extents(text, &l, &e);

	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(l[0].fname, "a b.vmdk");
	ck_assert_str_eq(l[0].type, "FLAT");
	ck_assert_uint_eq(l[0].sectors, 100);
	ck_assert_uint_eq(l[0].flat_offset, 7);
	ck_assert_int_eq(l[0].lineno, 2);
	ck_assert_str_eq(l[1].fname, "s.vmdk");
	ck_assert_uint_eq(l[1].sectors, 200);
	ck_assert_str_eq(l[2].type, "VMFS");
	ck_assert_uint_eq(l[2].flat_offset, 0);
	free(l);
}
END_TEST

/* Lines QEMU calls invalid are errors naming the file and the line. */
START_TEST(vmdk_extent_lines_invalid)
{
	static const char *bad[] = {
		"RW 100 FLAT \"f.vmdk\"\n",            /* FLAT needs an offset */
		"RW 100 FLAT \"f.vmdk\" -1\n",
		"RW 100 SPARSE \"s.vmdk\" 5\n",        /* SPARSE takes none */
		"RW 100 VMFS \"v.vmdk\" 0\n",
		"RW 9007199254740992 FLAT \"f.vmdk\" 0\n",   /* 2^53 sectors */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmdk_line *l = NULL;
		struct img_err e = { 0 };
		uint32_t n = 0;

		ck_assert_int_lt(vmdk_desc_extents(bad[i], "d.vmdk", &l, &n,
						   &e), 0);
		ck_assert_msg(strstr(e.msg, "d.vmdk") &&
			      strstr(e.msg, "line 1"), "%s", e.msg);
		ck_assert_ptr_null(l);
	}
}
END_TEST

/* A 511-byte name is the longest QEMU reads; a longer one skips the line. */
START_TEST(vmdk_extent_name_length)
{
	char text[700], name[520];
	struct vmdk_line *l;
	struct img_err e;

	memset(name, 'n', 511);
	name[511] = '\0';
	snprintf(text, sizeof(text), "RW 8 FLAT \"%s\" 0\n", name);
	ck_assert_uint_eq(extents(text, &l, &e), 1);
	ck_assert_uint_eq(strlen(l[0].fname), 511);
	free(l);
	strcat(name, "n");
	snprintf(text, sizeof(text), "RW 8 FLAT \"%s\" 0\n", name);
	ck_assert_uint_eq(extents(text, &l, &e), 0);
	free(l);
}
END_TEST

/* CID and the other keys are found where QEMU finds them: at the first
 * occurrence of the word, so a parentCID line written first is what QEMU
 * (and we) take as the CID. */
START_TEST(vmdk_descriptor_keys)
{
	char v[64];
	uint32_t cid = 0;

	ck_assert_int_eq(vmdk_desc_cid("CID=0a1B\nparentCID=ffffffff\n", false,
				       &cid), 0);
	ck_assert_uint_eq(cid, 0xa1b);
	ck_assert_int_eq(vmdk_desc_cid("CID=0a1B\nparentCID=ffffffff\n", true,
				       &cid), 0);
	ck_assert_uint_eq(cid, 0xffffffff);
	ck_assert_int_eq(vmdk_desc_cid("parentCID=12\nCID=34\n", false, &cid),
			 0);
	ck_assert_uint_eq(cid, 0x12);
	ck_assert_int_eq(vmdk_desc_cid("CID=\nx", false, &cid), -1);
	ck_assert_int_eq(vmdk_desc_cid("nothing", false, &cid), -1);
	ck_assert_int_eq(vmdk_desc_string("a\ncreateType=\"vmfs\"\n",
					  "createType", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "vmfs");
	ck_assert_int_eq(vmdk_desc_string("createType=\"vmfs\n", "createType",
					  v, sizeof(v)), -1);
	ck_assert_int_eq(vmdk_desc_string("x", "createType", v, sizeof(v)), 0);
	ck_assert_int_eq(vmdk_desc_string("parentFileNameHint=\"../b.vmdk\"",
					  "parentFileNameHint", v, sizeof(v)),
			 1);
	ck_assert_str_eq(v, "../b.vmdk");
	ck_assert(vmdk_desc_type_ok("twoGbMaxExtentFlat"));
	ck_assert(!vmdk_desc_type_ok("monolithicSparse"));   /* sparse file */
}
END_TEST

static struct img *open_ok(const char *name, const char *fmt)
{
	struct img_err e = { 0 };
	struct img *img = NULL;

	ck_assert_msg(img_open(at(name), fmt, IMG_O_INSPECT, &img, NULL,
			       &e) == 0, "%s", e.msg);
	return img;
}

/* parentFileNameHint is a backing file of format vmdk; QEMU reads through
 * it only while the parent's CID equals parentCID, so check_backing says
 * the same.  Writing to the parent changes its CID and breaks the link. */
START_TEST(vmdk_parent_cid)
{
	struct img *child, *parent, *other;
	struct img_backing b;
	struct img_err e = { 0 };

	ck_assert_int_eq(sh("qemu-img create -q -f vmdk p.vmdk 1M && "
			    "qemu-img create -q -f vmdk -b p.vmdk -F vmdk "
			    "c.vmdk 1M && qemu-img create -q -f qcow2 "
			    "q.qcow2 1M"), 0);
	child = open_ok("c.vmdk", NULL);
	parent = open_ok("p.vmdk", NULL);
	other = open_ok("q.qcow2", NULL);
	ck_assert_int_eq(img_get_backing(child, &b, &e), 0);
	ck_assert_str_eq(b.name, "p.vmdk");
	ck_assert_str_eq(b.format, "vmdk");
	ck_assert_int_eq(img_check_backing(child, parent, &e), 0);
	ck_assert_int_eq(img_check_backing(parent, child, &e), 0); /* none */
	ck_assert_int_eq(img_check_backing(child, other, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "c.vmdk") && strstr(e.msg, "qcow2"), "%s",
		      e.msg);
	img_close(parent);
	ck_assert_int_eq(sh("qemu-io -f vmdk -c 'write 0 512' p.vmdk "
			    ">/dev/null"), 0);
	parent = open_ok("p.vmdk", NULL);
	ck_assert_int_eq(img_check_backing(child, parent, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "'parentCID'") && strstr(e.msg, "p.vmdk"),
		      "%s", e.msg);
	img_close(parent);
	img_close(child);
	img_close(other);
}
END_TEST

/* A luks image opens without its key for info and block status; its data
 * cannot be read, and it is never opened for writing. */
START_TEST(luks_without_key)
{
	struct img_info in;
	struct img_err e = { 0 };
	struct img *img = NULL;
	uint64_t pnum = 0;
	char buf[512];
	int made = 1;

	/* the PBKDF benchmark of qemu-img fails now and then on a busy
	 * machine ("Unable to get accurate CPU usage"): retry */
	for (int i = 0; i < 5 && made; i++)
		made = sh("qemu-img create -q -f luks --object secret,id=s,"
			  "data=pw -o key-secret=s,iter-time=10 l.luks 1M "
			  "2>/dev/null");
	ck_assert_int_eq(made, 0);
	img = open_ok("l.luks", NULL);
	ck_assert_str_eq(img_format_name(img), "luks");
	ck_assert_int_eq(img_get_info(img, &in, &e), 0);
	ck_assert_uint_eq(in.virtual_size, 1 << 20);
	ck_assert(in.encrypted);
	ck_assert_ptr_nonnull(in.encrypt);
	ck_assert_str_eq(in.encrypt->cipher_alg, "aes-256");
	ck_assert(in.encrypt->slots[0].active && !in.encrypt->slots[1].active);
	ck_assert_int_eq(img_block_status(img, 0, 1 << 20, &pnum, &e),
			 IMG_BS_DATA);
	ck_assert_uint_eq(pnum, 1 << 20);
	ck_assert_int_eq(img_pread(img, 0, buf, sizeof(buf), &e), -ENOTSUP);
	ck_assert_msg(strstr(e.msg, "l.luks") && strstr(e.msg, "key"), "%s",
		      e.msg);
	img_close(img);
	ck_assert_int_lt(img_open(at("l.luks"), NULL, IMG_O_RDWR, &img, NULL,
				  &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "read-only"));
}
END_TEST

/* The read-only drivers refuse a read-write open (a commit base) with a
 * message naming the file, before anything is written. */
START_TEST(foreign_formats_refuse_writing)
{
	static const char *const mk[][2] = {
		{ "qemu-img create -q -f qcow x.qcow 1M", "x.qcow" },
		{ "qemu-img create -q -f vmdk x.vmdk 1M", "x.vmdk" },
	};

	for (size_t i = 0; i < sizeof(mk) / sizeof(mk[0]); i++) {
		struct img_err e = { 0 };
		struct img *img = NULL;

		ck_assert_int_eq(sh("%s", mk[i][0]), 0);
		ck_assert_int_eq(img_open(at(mk[i][1]), NULL, IMG_O_RDWR, &img,
					  NULL, &e), -EROFS);
		ck_assert_msg(strstr(e.msg, mk[i][1]), "%s", e.msg);
		ck_assert(!img_can_write(img = open_ok(mk[i][1], NULL)));
		img_close(img);
	}
}
END_TEST

/* qed is written (issue 18: protected readers): what our driver writes,
 * QEMU reads back (qemu-io read -P, qemu-img check); a qed with the
 * need-check flag is refused for writing, the reason in its info. */
START_TEST(qed_written_read_by_qemu)
{
	struct img_err e = { 0 };
	struct img_info in;
	struct img *img = NULL;
	static uint8_t buf[65536];

	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 b.qcow2 4M && "
			    "qemu-io -f qcow2 -c 'write -P 0x11 0 4M' b.qcow2 "
			    ">/dev/null && qemu-img create -q -f qed -b b.qcow2 "
			    "-F qcow2 x.qed 4M"), 0);
	ck_assert_int_eq(img_open(at("x.qed"), NULL, IMG_O_RDWR, &img, NULL,
				  &e), 0);
	ck_assert(img_can_write(img));
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(img_pwrite(img, 1 << 20, buf, sizeof(buf), &e), 0);
	ck_assert_int_eq(img_write_zeroes(img, 2 << 20, 131072, &e), 0);
	/* a partial cluster over the backing file: refused, named */
	ck_assert_int_eq(img_pwrite(img, 3 << 20, buf, 512, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "partial write"));
	ck_assert_int_eq(img_flush(img, &e), 0);
	img_close(img);
	ck_assert_int_eq(sh("qemu-io -f qed -c 'read -P 0x5a 1M 64k' -c "
			    "'read -P 0 2M 128k' -c 'read -P 0x11 0 1M' -c "
			    "'read -P 0x11 3M 1M' x.qed >/dev/null && "
			    "qemu-img check -q -f qed x.qed"), 0);

	ck_assert_int_eq(sh("printf '\\003' | dd of=x.qed bs=1 seek=16 "
			    "conv=notrunc status=none"), 0);
	ck_assert_int_eq(img_open(at("x.qed"), NULL, IMG_O_RDWR, &img, NULL,
				  &e), -EROFS);
	ck_assert_msg(strstr(e.msg, "x.qed") && strstr(e.msg, "need-check"),
		      "%s", e.msg);
	img = open_ok("x.qed", NULL);
	ck_assert_int_eq(img_get_info(img, &in, &e), 0);
	ck_assert_ptr_nonnull(in.write_refusal);
	ck_assert_ptr_nonnull(strstr(in.write_refusal, "need-check"));
	img_close(img);
}
END_TEST

static Suite *foreign_suite(void)
{
	Suite *s = suite_create("foreign");
	TCase *t = tcase_create("core");

	tcase_add_checked_fixture(t, ut_tmp_setup, ut_tmp_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, probe_by_magic);
	tcase_add_test(t, qed_written_read_by_qemu);
	tcase_add_test(t, probe_vmdk_descriptor_text);
	tcase_add_test(t, vmdk_extent_lines);
	tcase_add_test(t, vmdk_extent_lines_invalid);
	tcase_add_test(t, vmdk_extent_name_length);
	tcase_add_test(t, vmdk_descriptor_keys);
	tcase_add_test(t, vmdk_parent_cid);
	tcase_add_test(t, luks_without_key);
	tcase_add_test(t, foreign_formats_refuse_writing);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ut_run(foreign_suite());
}
