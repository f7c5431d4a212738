/* test_journal.c - the relink journal: render/parse round trip, refusal of
 * every truncation and every single-byte corruption, bounded parsing of
 * hostile counts, the recovery classifier (OLD/NEW/TORN/FOREIGN), the
 * recovery planner, durable write/read/remove, the OFD lock holder and
 * the power-cut simulator (io_cut.c). */
#include "helpers.h"
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/io/io.h"
#include "formats/io/io_replace.h"
#include "core/commit/journal.h"
#include "core/commit/lock_hold.h"
#include "core/graph/perm.h"
#include "core/commit/recover.h"
#include "core/commit/relink.h"

/* A journal with two parents (1024-byte range each) and a users file. */
/* io_replace temporaries in dir. */
static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += io_replace_is_temp(de->d_name);
	closedir(d);
	return n;
}

static struct journal *sample(void)
{
	struct journal *j = calloc(1, sizeof(*j));

	j->txid = 0x0123456789abcdefull;
	j->created = 1732580000;
	j->state = JOURNAL_PREPARED;
	j->base_path = strdup("/pool/base.qcow2");
	j->base_fmt = strdup("qcow2");
	j->base_dev = 2049;
	j->base_ino = 11;
	j->top_path = strdup("/pool/top.qcow2");
	j->top_fmt = strdup("qcow2");
	j->top_dev = 2049;
	j->top_ino = 12;
	j->users.path = strdup("/pool/users.yaml");
	j->users.old_data = (uint8_t *)strdup("users:\n  - image: top\n");
	j->users.old_len = strlen((char *)j->users.old_data);
	j->users.new_data = (uint8_t *)strdup("users:\n  - image: base\n");
	j->users.new_len = strlen((char *)j->users.new_data);
	j->users.old_crc = journal_crc(j->users.old_data, j->users.old_len);
	j->users.new_crc = journal_crc(j->users.new_data, j->users.new_len);
	j->nparents = 2;
	j->parents = calloc(2, sizeof(*j->parents));
	for (int i = 0; i < 2; i++) {
		struct journal_parent *p = &j->parents[i];
		uint8_t hdr[4096];
		char name[64];

		snprintf(name, sizeof(name), "/pool/d%d/ovl %d.qcow2", i, i);
		p->path = strdup(name);
		p->dev = 2049;
		p->ino = 100 + (uint64_t)i;
		p->hdr_len = sizeof(hdr);
		p->off = 512;
		p->len = 1024;
		p->old_bytes = malloc(p->len);
		p->new_bytes = malloc(p->len);
		memset(p->old_bytes, 0x11 + i, p->len);
		memset(p->new_bytes, 0x22 + i, p->len);
		memset(hdr, 0x5a, sizeof(hdr));
		memcpy(hdr + p->off, p->old_bytes, p->len);
		p->old_crc = journal_crc(hdr, sizeof(hdr));
		memcpy(hdr + p->off, p->new_bytes, p->len);
		p->new_crc = journal_crc(hdr, sizeof(hdr));
		p->old_name = strdup(i ? "../top.qcow2" : "/pool/top.qcow2");
		p->old_fmt = i ? strdup("qcow2") : NULL;
		p->new_name = strdup(i ? "../base.qcow2" : "/pool/base.qcow2");
		p->new_fmt = strdup("qcow2");
		p->relative = i == 1;
	}
	return j;
}

/* The header bytes of sample parent i in state OLD (0) or NEW (1). */
static void header_of(const struct journal_parent *p, int state,
		      uint8_t *hdr)
{
	memset(hdr, 0x5a, p->hdr_len);
	memcpy(hdr + p->off, state ? p->new_bytes : p->old_bytes, p->len);
}

START_TEST(roundtrip)
{
	struct journal *j = sample(), *k;
	struct img_err e;
	char *buf, *buf2;
	size_t len, len2;

	ck_assert_int_eq(journal_render(j, &buf, &len, &e), 0);
	ck_assert_int_eq(journal_parse(buf, len, &k, &e), 0);
	ck_assert_int_eq(k->nparents, 2);
	ck_assert_str_eq(k->parents[0].path, "/pool/d0/ovl 0.qcow2");
	ck_assert_ptr_null(k->parents[0].old_fmt);
	ck_assert_str_eq(k->parents[1].old_fmt, "qcow2");
	ck_assert(k->parents[1].relative);
	ck_assert_uint_eq(k->parents[1].len, 1024);
	ck_assert_int_eq(memcmp(k->parents[1].new_bytes,
				j->parents[1].new_bytes, 1024), 0);
	ck_assert_uint_eq(k->txid, j->txid);
	ck_assert_uint_eq(k->users.new_len, j->users.new_len);
	/* Rendering the parsed journal gives the same bytes. */
	ck_assert_int_eq(journal_render(k, &buf2, &len2, &e), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert_int_eq(memcmp(buf, buf2, len), 0);
	free(buf);
	free(buf2);
	journal_free(j);
	journal_free(k);
}
END_TEST

/* A live commit's journal: QEMU's job and the overlays it relinks, with
 * no offline parent at all (still a change to recover). */
static struct journal *live_sample(void)
{
	struct journal *j = sample();

	for (int i = 0; i < j->nparents; i++) {
		struct journal_parent *p = &j->parents[i];
		free(p->path);
		free(p->old_bytes);
		free(p->new_bytes);
		free(p->old_name);
		free(p->old_fmt);
		free(p->new_name);
		free(p->new_fmt);
	}
	free(j->parents);
	j->parents = NULL;
	j->nparents = 0;
	free(j->users.path);
	free(j->users.old_data);
	free(j->users.new_data);
	memset(&j->users, 0, sizeof(j->users));
	j->live.present = true;
	j->live.pid = 4242;
	j->live.job_id = strdup("imgraph-0123456789abcdef");
	j->live.qmp = strdup("/run/q m.sock");
	j->live.nlp = 1;
	j->live.lp = calloc(1, sizeof(*j->live.lp));
	j->live.lp[0].dev = 2049;
	j->live.lp[0].ino = 77;
	j->live.lp[0].path = strdup("/pool/vm 1.qcow2");
	return j;
}

START_TEST(live_roundtrip)
{
	struct journal *j = live_sample(), *k;
	struct img_err e;
	char *buf, *buf2;
	size_t len, len2;

	for (int fin = 0; fin < 2; fin++) {
		j->live.finalized = fin;
		j->live.active = !fin;
		ck_assert_int_eq(journal_render(j, &buf, &len, &e), 0);
		ck_assert_int_eq(journal_parse(buf, len, &k, &e), 0);
		ck_assert(k->live.present);
		ck_assert_int_eq(k->live.pid, 4242);
		ck_assert_str_eq(k->live.job_id, "imgraph-0123456789abcdef");
		ck_assert_str_eq(k->live.qmp, "/run/q m.sock");
		ck_assert_int_eq(k->live.finalized, fin);
		ck_assert_int_eq(k->live.active, !fin);
		ck_assert_int_eq(k->live.nlp, 1);
		ck_assert_str_eq(k->live.lp[0].path, "/pool/vm 1.qcow2");
		ck_assert_uint_eq(k->live.lp[0].ino, 77);
		ck_assert_int_eq(k->nparents, 0);
		ck_assert_int_eq(journal_render(k, &buf2, &len2, &e), 0);
		ck_assert_uint_eq(len, len2);
		ck_assert_int_eq(memcmp(buf, buf2, len), 0);
		/* every truncation and every flipped bit is refused */
		for (size_t n = 0; n < len; n++) {
			char *copy = malloc(n + 1);
			struct journal *x;

			memcpy(copy, buf, n);
			ck_assert_int_eq(journal_parse(copy, n, &x, &e), -EINVAL);
			free(copy);
			buf[n] ^= 0x01;
			ck_assert_int_eq(journal_parse(buf, len, &x, &e), -EINVAL);
			buf[n] ^= 0x01;
		}
		free(buf);
		free(buf2);
		journal_free(k);
	}
	/* without the live record, a journal of no change is refused */
	j->live.present = false;
	ck_assert_int_eq(journal_render(j, &buf, &len, &e), 0);
	ck_assert_int_eq(journal_parse(buf, len, &k, &e), -EINVAL);
	free(buf);
	journal_free(j);
}
END_TEST

START_TEST(every_truncation_refused)
{
	struct journal *j = sample(), *k;
	struct img_err e;
	char *buf;
	size_t len;

	ck_assert_int_eq(journal_render(j, &buf, &len, &e), 0);
	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n + 1);     /* exact size: ASan sees overreads */
		memcpy(copy, buf, n);
		ck_assert_int_eq(journal_parse(copy, n, &k, &e), -EINVAL);
		ck_assert_ptr_null(k);
		free(copy);
	}
	free(buf);
	journal_free(j);
}
END_TEST

START_TEST(every_byte_flip_refused)
{
	struct journal *j = sample(), *k;
	struct img_err e;
	char *buf;
	size_t len;

	ck_assert_int_eq(journal_render(j, &buf, &len, &e), 0);
	for (size_t i = 0; i < len; i++) {
		char saved = buf[i];
		buf[i] ^= 0x01;
		ck_assert_int_eq(journal_parse(buf, len, &k, &e), -EINVAL);
		buf[i] = saved;
	}
	/* Sanity: unmodified still parses. */
	ck_assert_int_eq(journal_parse(buf, len, &k, &e), 0);
	journal_free(k);
	free(buf);
	journal_free(j);
}
END_TEST

/* A journal line with a correct CRC but a hostile field. */
static char *with_line(const char *head, const char *line)
{
	static char out[8192];
	char tmp[4096];
	uint32_t c;

	snprintf(tmp, sizeof(tmp), "%s", line);
	c = journal_crc(tmp, strlen(tmp));
	snprintf(out, sizeof(out), "%s%s *%08x\n", head, tmp, c);
	return out;
}

static void add_line(char *doc, size_t cap, const char *line)
{
	uint32_t c = journal_crc(line, strlen(line));
	size_t n = strlen(doc);

	snprintf(doc + n, cap - n, "%s *%08x\n", line, c);
}

static void finish(char *doc, size_t cap)
{
	size_t n = strlen(doc);

	snprintf(doc + n, cap - n, "end %08x\n", journal_crc(doc, n));
}

START_TEST(hostile_fields_refused)
{
	static char doc[16384];
	struct journal *k;
	struct img_err e;
	const char *bad_parents[] = {
		"parents 4096",                    /* more than the input holds */
		"parents 99999999999999999999",    /* overflow */
		"parents -1",
		"parents 01",
	};

	for (size_t i = 0; i < sizeof(bad_parents) / sizeof(*bad_parents);
	     i++) {
		doc[0] = 0;
		add_line(doc, sizeof(doc), "imgraph-journal 1");
		add_line(doc, sizeof(doc), "tx 0123456789abcdef 1 PREPARED");
		add_line(doc, sizeof(doc), "base 1 2 2f62 7163");
		add_line(doc, sizeof(doc), "top 1 3 2f74 7163 1");
		add_line(doc, sizeof(doc), bad_parents[i]);
		finish(doc, sizeof(doc));
		ck_assert_int_eq(journal_parse(doc, strlen(doc), &k, &e),
				 -EINVAL);
	}
	/* A range reaching past the header, OLD == NEW, a NUL in a path,
	 * an unknown state: each refused with a message naming the line. */
	const char *bad_parent_lines[] = {
		"parent 0 1 4 2f6f 1024 00000000 00000000 1024 00 11 - - 2f62 7163 0",
		"parent 0 1 4 2f6f 1024 00000000 00000000 0 00 00 - - 2f62 7163 0",
		"parent 0 1 4 2f00 1024 00000000 00000000 0 00 11 - - 2f62 7163 0",
		"parent 1 1 4 2f6f 1024 00000000 00000000 0 00 11 - - 2f62 7163 0",
		"parent 0 1 4 2f6f 1024 00000000 00000000 0 001 110 - - 2f62 7163 0",
	};
	for (size_t i = 0; i < sizeof(bad_parent_lines) /
			       sizeof(*bad_parent_lines); i++) {
		doc[0] = 0;
		add_line(doc, sizeof(doc), "imgraph-journal 1");
		add_line(doc, sizeof(doc), "tx 0123456789abcdef 1 PREPARED");
		add_line(doc, sizeof(doc), "base 1 2 2f62 7163");
		add_line(doc, sizeof(doc), "top 1 3 2f74 7163 0");
		add_line(doc, sizeof(doc), "parents 1");
		add_line(doc, sizeof(doc), bad_parent_lines[i]);
		finish(doc, sizeof(doc));
		ck_assert_int_eq(journal_parse(doc, strlen(doc), &k, &e),
				 -EINVAL);
		ck_assert_ptr_nonnull(strstr(e.msg, "journal"));
	}
	/* The same document with a good parent line parses. */
	doc[0] = 0;
	add_line(doc, sizeof(doc), "imgraph-journal 1");
	add_line(doc, sizeof(doc), "tx 0123456789abcdef 1 PREPARED");
	add_line(doc, sizeof(doc), "base 1 2 2f62 7163");
	add_line(doc, sizeof(doc), "top 1 3 2f74 7163 0");
	add_line(doc, sizeof(doc), "parents 1");
	add_line(doc, sizeof(doc), "parent 0 1 4 2f6f 1024 00000000 00000000 0 00 11 - - 2f62 7163 0");
	finish(doc, sizeof(doc));
	ck_assert_int_eq(journal_parse(doc, strlen(doc), &k, &e), 0);
	journal_free(k);
	/* Wrong magic and wrong version. */
	ck_assert_int_eq(journal_parse(with_line("", "imgraph-journal 2"),
				       strlen(with_line("", "imgraph-journal 2")),
				       &k, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "version"));
	ck_assert_int_eq(journal_parse("hello\n", 6, &k, &e), -EINVAL);
}
END_TEST

START_TEST(classify_states)
{
	struct journal *j = sample();
	const struct journal_parent *p = &j->parents[0];
	uint8_t hdr[4096];

	header_of(p, 0, hdr);
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), true), REC_OLD);
	header_of(p, 1, hdr);
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), true), REC_NEW);
	/* First sector new, second old: a torn write. */
	memcpy(hdr + p->off + 512, p->old_bytes + 512, 512);
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), true),
			 REC_TORN);
	/* A byte inside the range that is neither: foreign. */
	hdr[p->off + 3] = 0x77;
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), true),
			 REC_FOREIGN);
	/* A byte outside the range changed: foreign. */
	header_of(p, 1, hdr);
	hdr[4000] ^= 1;
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), true),
			 REC_FOREIGN);
	/* Short file, other file. */
	header_of(p, 1, hdr);
	ck_assert_int_eq(recover_classify(p, hdr, 2000, true), REC_FOREIGN);
	ck_assert_int_eq(recover_classify(p, hdr, sizeof(hdr), false),
			 REC_MISSING);
	/* Users file. */
	ck_assert_int_eq(recover_classify_users(&j->users, j->users.new_data,
						j->users.new_len, true),
			 REC_NEW);
	ck_assert_int_eq(recover_classify_users(&j->users, j->users.old_data,
						j->users.old_len, true),
			 REC_OLD);
	ck_assert_int_eq(recover_classify_users(&j->users,
						(const uint8_t *)"x", 1, true),
			 REC_FOREIGN);
	journal_free(j);
}
END_TEST

static int count_kind(const struct rec_plan *p, enum rec_action_kind k)
{
	int n = 0;

	for (int i = 0; i < p->n; i++)
		n += p->v[i].kind == k;
	return n;
}

START_TEST(plan_decisions)
{
	struct journal *j = sample();
	enum rec_class cls[2];
	struct rec_plan pl;
	struct img_err e;

	/* Forward: one OLD, one TORN -> two writes of NEW, users to NEW. */
	cls[0] = REC_OLD;
	cls[1] = REC_TORN;
	ck_assert_int_eq(recover_plan(j, cls, REC_OLD, false, &pl, &e), 0);
	ck_assert(!pl.blocked);
	ck_assert_int_eq(count_kind(&pl, RA_WRITE_PARENT), 2);
	ck_assert_int_eq(count_kind(&pl, RA_WRITE_USERS), 1);
	ck_assert_int_eq(pl.v[pl.n - 1].kind, RA_REMOVE_JOURNAL);
	for (int i = 0; i < pl.n; i++)
		if (pl.v[i].kind == RA_WRITE_PARENT)
			ck_assert(pl.v[i].to_new);
	recover_plan_free(&pl);
	/* Already NEW everywhere: only the journal goes. */
	cls[0] = cls[1] = REC_NEW;
	ck_assert_int_eq(recover_plan(j, cls, REC_NEW, false, &pl, &e), 0);
	ck_assert_int_eq(pl.n, 1);
	recover_plan_free(&pl);
	/* Rollback: NEW and TORN -> OLD. */
	cls[0] = REC_NEW;
	cls[1] = REC_TORN;
	ck_assert_int_eq(recover_plan(j, cls, REC_NEW, true, &pl, &e), 0);
	ck_assert_int_eq(count_kind(&pl, RA_WRITE_PARENT), 2);
	for (int i = 0; i < pl.n; i++)
		ck_assert(!pl.v[i].to_new);
	recover_plan_free(&pl);
	/* Any FOREIGN or MISSING: blocked, no action at all. */
	cls[0] = REC_OLD;
	cls[1] = REC_FOREIGN;
	ck_assert_int_eq(recover_plan(j, cls, REC_OLD, false, &pl, &e), 0);
	ck_assert(pl.blocked);
	ck_assert_int_eq(pl.n, 0);
	recover_plan_free(&pl);
	cls[1] = REC_OLD;
	ck_assert_int_eq(recover_plan(j, cls, REC_FOREIGN, false, &pl, &e), 0);
	ck_assert(pl.blocked);
	recover_plan_free(&pl);
	/* An emptied-top transaction past RELINKED cannot be rolled back,
	 * and a forward run marks RELINKED before it empties top. */
	j->empty_top = true;
	cls[0] = cls[1] = REC_OLD;
	ck_assert_int_eq(recover_plan(j, cls, REC_OLD, false, &pl, &e), 0);
	int mark = -1, empty = -1;
	for (int i = 0; i < pl.n; i++) {
		if (pl.v[i].kind == RA_MARK_RELINKED)
			mark = i;
		if (pl.v[i].kind == RA_EMPTY_TOP)
			empty = i;
	}
	ck_assert_int_ge(mark, 2);
	ck_assert_int_gt(empty, mark);
	recover_plan_free(&pl);
	j->state = JOURNAL_RELINKED;
	ck_assert_int_eq(recover_plan(j, cls, REC_OLD, true, &pl, &e), 0);
	ck_assert(pl.blocked);
	recover_plan_free(&pl);
	/* An inconsistent (hand-built) journal plans nothing. */
	j->parents[0].off = 4000;
	ck_assert_int_eq(recover_plan(j, cls, REC_OLD, false, &pl, &e),
			 -EINVAL);
	ck_assert_int_eq(pl.n, 0);
	journal_free(j);
}
END_TEST

START_TEST(durable_write_read_remove)
{
	struct journal *j = sample(), *k;
	struct img_err e;
	char path[256], base[256];
	struct stat st;

	snprintf(base, sizeof(base), "%s/base.qcow2", ut_tmpdir);
	ck_assert_int_eq(journal_path_for(base, path, sizeof(path), &e), 0);
	ck_assert_ptr_nonnull(strstr(path, "/.imgraph-journal-base.qcow2"));
	ck_assert_int_eq(journal_write(path, j, &e), 0);
	ck_assert_int_eq(journal_read(path, &k, &e), 0);
	ck_assert_int_eq(k->nparents, 2);
	journal_free(k);
	/* No temp file is left behind. */
	ck_assert_int_eq(count_temps(ut_tmpdir), 0);
	/* A journal state change is a full atomic replace. */
	j->state = JOURNAL_RELINKED;
	ck_assert_int_eq(journal_write(path, j, &e), 0);
	ck_assert_int_eq(journal_read(path, &k, &e), 0);
	ck_assert_int_eq(k->state, JOURNAL_RELINKED);
	journal_free(k);
	ck_assert_int_eq(journal_remove(path, &e), 0);
	ck_assert_int_ne(stat(path, &st), 0);
	ck_assert_int_eq(journal_remove(path, &e), 0);   /* idempotent */
	journal_free(j);
}
END_TEST

/* Our lock holder against a second open file description. */
START_TEST(lock_hold_conflicts)
{
	struct lock_hold a, b;
	struct img_err e;
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/img", ut_tmpdir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(lock_hold_open(&a, path, true, &e), 0);
	ck_assert_int_eq(lock_hold_open(&b, path, false, &e), 0);
	/* a: writer that shares only read. */
	ck_assert_int_eq(lock_hold_set(&a, PERM_CONSISTENT_READ | PERM_WRITE,
				       PERM_CONSISTENT_READ |
				       PERM_WRITE_UNCHANGED, &e), 0);
	/* b wants write: refused, QEMU's wording. */
	ck_assert_int_eq(lock_hold_set(&b, PERM_WRITE, PERM_ALL, &e), -EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "Failed to get \"write\" lock"));
	/* b as a plain reader sharing everything: fine. */
	ck_assert_int_eq(lock_hold_set(&b, PERM_CONSISTENT_READ, PERM_ALL, &e),
			 0);
	/* b refusing to share write while a holds it: refused. */
	ck_assert_int_eq(lock_hold_set(&b, PERM_CONSISTENT_READ,
				       PERM_CONSISTENT_READ, &e), -EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "shared \"write\""));
	/* The failed attempt left b's previous set intact: a recheck of a
	 * passes and a can still drop to a reader. */
	ck_assert_int_eq(lock_hold_recheck(&a, &e), 0);
	lock_hold_close(&a);
	ck_assert_int_eq(lock_hold_set(&b, PERM_WRITE, PERM_ALL, &e), 0);
	lock_hold_close(&b);
}
END_TEST

/* Child: write X, fdatasync, write Y over it (unsynced), then the cut at
 * op 4 undoes a seeded subset of Y, possibly torn, and kills us. */
static void cut_child(const char *path, unsigned seed)
{
	char env[64];
	uint8_t x[4096], y[4096];
	int fd;

	snprintf(env, sizeof(env), "cut:6:%u", seed);
	setenv("IMGRAPH_FAULT", env, 1);
	io_fault_reload();
	memset(x, 'X', sizeof(x));
	memset(y, 'Y', sizeof(y));
	fd = io_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);  /* op 1 */
	io_fsync_dir_of(path);                                /* op 2 */
	io_pwrite(fd, x, sizeof(x), 0);                       /* op 3 */
	io_fdatasync(fd);                                     /* op 4 */
	io_pwrite(fd, y, sizeof(y), 0);                       /* op 5 */
	io_fdatasync(fd);                                     /* op 6: cut */
	_exit(3);
}

START_TEST(power_cut_undoes_only_unsynced_writes)
{
	char path[256];
	int undone = 0, kept = 0, torn = 0;

	snprintf(path, sizeof(path), "%s/cut", ut_tmpdir);
	for (unsigned seed = 1; seed <= 24; seed++) {
		uint8_t buf[4096];
		int st, nx = 0, ny = 0;
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			cut_child(path, seed);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		int fd = open(path, O_RDONLY);
		ck_assert_int_eq(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
		close(fd);
		/* Every 512-byte sector is all X (synced) or all Y. */
		for (int s = 0; s < 8; s++) {
			int cx = 0, cy = 0;
			for (int i = 0; i < 512; i++) {
				cx += buf[s * 512 + i] == 'X';
				cy += buf[s * 512 + i] == 'Y';
			}
			ck_assert(cx == 512 || cy == 512);
			nx += cx == 512;
			ny += cy == 512;
		}
		undone += ny == 0;
		kept += nx == 0;
		torn += nx && ny;
	}
	/* 24 seeds see every outcome of the unsynced write. */
	ck_assert_int_gt(undone, 0);
	ck_assert_int_gt(kept, 0);
	ck_assert_int_gt(torn, 0);
}
END_TEST

/* Child: the journal's publish pattern on names.  "dst" holds OLD (synced);
 * "gone" exists (synced); a new "tmp" gets NEW and is fdatasync'd, renamed
 * over "dst", "gone" is unlinked, a file grows by ftruncate, and the cut
 * comes at the directory fsync that would have made the names durable
 * (sync_dir=0) or at an op after it (sync_dir=1). */
static void cut_names_child(const char *dir, unsigned seed, int sync_dir)
{
	char env[64], tmp[300], dst[300], gone[300], grow[300];
	int fd, gfd;

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	snprintf(gone, sizeof(gone), "%s/gone", dir);
	snprintf(grow, sizeof(grow), "%s/grow", dir);
	snprintf(env, sizeof(env), "cut:%d:%u", sync_dir ? 9 : 8, seed);
	setenv("IMGRAPH_FAULT", env, 1);
	io_fault_reload();
	gfd = open(grow, O_RDWR);
	fd = io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);  /* op 1 */
	io_pwrite(fd, "NEW", 3, 0);                             /* op 2 */
	io_fdatasync(fd);                                       /* op 3 */
	io_close(fd);
	io_rename(tmp, dst);                                    /* op 4 */
	io_unlink(gone);                                        /* op 5 */
	io_ftruncate(gfd, 8192);                                /* op 6 */
	io_pwrite(gfd, "G", 1, 8191);                           /* op 7 */
	io_fsync_dir_of(dst);                                   /* op 8 */
	io_fdatasync(gfd);                                      /* op 9 */
	_exit(3);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[300];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	ck_assert_int_ge(fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void get(const char *dir, const char *name, char *buf, size_t len)
{
	char p[300];
	int fd;
	ssize_t n = -1;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if ((fd = open(p, O_RDONLY)) >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
}

static bool exists(const char *dir, const char *name, off_t *size)
{
	char p[300];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (stat(p, &st) < 0)
		return false;
	if (size)
		*size = st.st_size;
	return true;
}

START_TEST(power_cut_loses_a_suffix_of_unsynced_names)
{
	int lost_rename = 0, lost_unlink = 0, kept_both = 0, grown = 0,
	    shrunk = 0;

	for (int sync_dir = 0; sync_dir <= 1; sync_dir++)
	for (unsigned seed = 1; seed <= 24; seed++) {
		char dir[256], dst[64], tmp[64];
		struct dirent *de;
		off_t gsize = -1;
		bool gone;
		DIR *d;
		int status;
		pid_t pid;

		snprintf(dir, sizeof(dir), "%s/n%d.%u", ut_tmpdir, sync_dir,
			 seed);
		ck_assert_int_eq(mkdir(dir, 0700), 0);
		put(dir, "dst", "OLD");
		put(dir, "gone", "GONE");
		put(dir, "grow", "g");
		ck_assert_int_ge(pid = fork(), 0);
		if (pid == 0)
			cut_names_child(dir, seed, sync_dir);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		/* only our names are left: no hidden link of the simulator */
		ck_assert_ptr_nonnull(d = opendir(dir));
		while ((de = readdir(d)))
			ck_assert_msg(strncmp(de->d_name, ".imgraph-cut", 12),
				      "left behind: %s", de->d_name);
		closedir(d);
		get(dir, "dst", dst, sizeof(dst));
		get(dir, "tmp", tmp, sizeof(tmp));
		gone = !exists(dir, "gone", NULL);
		ck_assert(exists(dir, "grow", &gsize));
		ck_assert_msg(gsize == 1 || gsize == 8192, "grow: %lld",
			      (long long)gsize);
		/* the rename is all or nothing: OLD stays under dst and NEW
		 * under tmp (or under no name, when tmp's creation was lost
		 * too), or NEW is under dst alone */
		ck_assert_msg((!strcmp(dst, "OLD") &&
			       (!strcmp(tmp, "NEW") || !exists(dir, "tmp", NULL))) ||
			      (!strcmp(dst, "NEW") && !exists(dir, "tmp", NULL)),
			      "dst '%s', tmp '%s'", dst, tmp);
		if (sync_dir) {
			/* the directory was synced: every name stands */
			ck_assert_str_eq(dst, "NEW");
			ck_assert(gone);
			continue;
		}
		/* a suffix is lost: the unlink came after the rename, so it
		 * cannot have stood without it */
		ck_assert(!gone || !strcmp(dst, "NEW"));
		lost_rename += !strcmp(dst, "OLD");
		lost_unlink += !strcmp(dst, "NEW") && !gone;
		kept_both += gone;
		grown += gsize == 8192;
		shrunk += gsize == 1;
	}
	/* 24 seeds without the directory fsync see every outcome */
	ck_assert_int_gt(lost_rename, 0);
	ck_assert_int_gt(lost_unlink, 0);
	ck_assert_int_gt(kept_both, 0);
	ck_assert_int_gt(grown, 0);
	ck_assert_int_gt(shrunk, 0);
}
END_TEST

/* A short header read is never journaled as a parent's old header: with
 * each read in turn cut to 16 bytes (rshort:K:16, so that the cut lands
 * before the backing name the relink rewrites), relink_prepare_parent either
 * fails or records the header the file really has (its crc over the whole
 * covered range, the old bytes of the rewritten range).  Some K must make
 * it fail: the header read itself. */
START_TEST(short_header_read_never_journaled)
{
	char cmd[512], ov[300], env[32];
	int fd, failed = 0, k;

	snprintf(cmd, sizeof(cmd), "cd %s && qemu-img create -q -f qcow2 "
		 "base.qcow2 1M && qemu-img create -q -f qcow2 -b base.qcow2 "
		 "-F qcow2 top.qcow2 1M && qemu-img create -q -f qcow2 -b "
		 "top.qcow2 -F qcow2 ov.qcow2 1M", ut_tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(ov, sizeof(ov), "%s/ov.qcow2", ut_tmpdir);
	fd = io_open(ov, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	for (k = 1; k <= 200; k++) {
		struct relink_target t = { .path = ov, .fmt = "qcow2", .fd = fd,
			.old_name = "top.qcow2", .old_fmt = "qcow2",
			.new_name = "base.qcow2", .new_fmt = "qcow2",
			.relative = true };
		struct journal_parent jp;
		struct img_err e = { 0 };
		uint8_t *real;
		int r;

		snprintf(env, sizeof(env), "rshort:%d:16", k);
		setenv("IMGRAPH_FAULT", env, 1);
		io_fault_reload();
		r = relink_prepare_parent(&t, &jp, &e);
		unsetenv("IMGRAPH_FAULT");
		io_fault_reload();
		if (r < 0) {
			failed++;
			continue;
		}
		real = malloc(jp.hdr_len);
		ck_assert_ptr_nonnull(real);
		ck_assert_int_eq(pread(fd, real, jp.hdr_len, 0),
				 (ssize_t)jp.hdr_len);
		ck_assert_msg(jp.old_crc == journal_crc(real, jp.hdr_len),
			      "read %d cut short: a wrong old header was "
			      "journaled", k);
		ck_assert(!memcmp(jp.old_bytes, real + jp.off, jp.len));
		free(real);
		free(jp.path);
		free(jp.old_bytes);
		free(jp.new_bytes);
		free(jp.old_name);
		free(jp.old_fmt);
		free(jp.new_name);
		free(jp.new_fmt);
		if (failed)
			break;  /* the reads after the header's succeed alike */
	}
	ck_assert_int_gt(failed, 0);
	io_close(fd);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, live_roundtrip);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_test(tc, every_byte_flip_refused);
	tcase_add_test(tc, hostile_fields_refused);
	tcase_add_test(tc, classify_states);
	tcase_add_test(tc, plan_decisions);
	tcase_add_test(tc, durable_write_read_remove);
	tcase_add_test(tc, lock_hold_conflicts);
	tcase_add_test(tc, short_header_read_never_journaled);
	tcase_add_test(tc, power_cut_undoes_only_unsynced_writes);
	tcase_add_test(tc, power_cut_loses_a_suffix_of_unsynced_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run(journal_suite());
}
