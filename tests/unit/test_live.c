/* test_live.c - core/live without a QEMU: command lines read as QEMU reads
 * them, the lock tables, the remote/hidden split, libvirt's XML, and
 * live_find on real files locked by a real child process. */
#include "helpers.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/live/live.h"
#include "core/live/live_int.h"
#include "core/live/virt.h"
#include "core/graph/users.h"

/* ---- QEMU's option syntax ------------------------------------------------ */

START_TEST(opt_get_keys_implied_and_escapes)
{
	char *v;

	ck_assert_int_eq(live_opt_get("socket,id=m,path=/a,,b,server=on",
				      "backend", "path", &v), 1);
	ck_assert_str_eq(v, "/a,b");
	free(v);
	ck_assert_int_eq(live_opt_get("socket,id=m", "backend", "backend",
				      &v), 1);
	ck_assert_str_eq(v, "socket");
	free(v);
	ck_assert_int_eq(live_opt_get("chardev=x,mode=control", "chardev",
				      "chardev", &v), 1);
	ck_assert_str_eq(v, "x");
	free(v);
	/* An implied key applies to the first element only. */
	ck_assert_int_eq(live_opt_get("id=m,socket", "backend", "backend",
				      &v), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(live_opt_get("", "guest", "guest", &v), 0);
}
END_TEST

static void parse(struct live_proc *p, const char *exe, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(live_proc_parse(p, argv, argc, exe), 0);
}

START_TEST(proc_qmp_forms)
{
	struct live_proc p;
	char *a1[] = { "qemu-system-x86_64", "-M", "none", "-qmp",
		"unix:/run/q,,1.sock,server=on,wait=off", NULL };
	char *a2[] = { "/usr/bin/qemu-system-x86_64", "-chardev",
		"socket,id=mon0,path=/t/m.sock,server=on", "-mon",
		"chardev=mon0,mode=control", NULL };
	char *a3[] = { "qemu-storage-daemon", "--chardev=socket,path=/t/s,id=c",
		"--monitor", "c", NULL };
	char *a4[] = { "qemu-system-x86_64", "-name",
		"guest=probe1,debug-threads=on", "-chardev",
		"socket,id=charmonitor,fd=28,server=on,wait=off", "-mon",
		"chardev=charmonitor,id=monitor,mode=control", NULL };

	parse(&p, NULL, a1);
	ck_assert_int_eq(p.prog, PROG_QEMU_SYSTEM);
	ck_assert_str_eq(p.qmp_path, "/run/q,1.sock");
	ck_assert_str_eq(p.qmp_how, "-qmp unix:");
	live_proc_free(&p);

	parse(&p, NULL, a2);
	ck_assert_str_eq(p.qmp_path, "/t/m.sock");
	live_proc_free(&p);

	/* qsd: getopt_long's --opt=value; every --monitor is QMP. */
	parse(&p, "/usr/bin/qemu-storage-daemon", a3);
	ck_assert_int_eq(p.prog, PROG_QSD);
	ck_assert_str_eq(p.qmp_path, "/t/s");
	live_proc_free(&p);

	/* libvirt: the monitor is an inherited fd, -name names the guest. */
	parse(&p, NULL, a4);
	ck_assert_ptr_null(p.qmp_path);
	ck_assert_int_eq(p.qmp_fd, 28);
	ck_assert_str_eq(p.guest, "probe1");
	live_proc_free(&p);
}
END_TEST

START_TEST(proc_not_qmp)
{
	struct live_proc p;
	/* -mon defaults to the human monitor; -monitor is always human. */
	char *a1[] = { "qemu-system-x86_64", "-chardev",
		"socket,id=h,path=/t/h.sock", "-mon", "chardev=h", "-monitor",
		"unix:/t/x.sock,server=on", "-name", "plain", NULL };
	char *a2[] = { "qemu-system-aarch64", "-qmp", "tcp:127.0.0.1:4444,server",
		NULL };
	/* Not QEMU: its arguments mean nothing to us. */
	char *a3[] = { "qemu-io", "-qmp", "unix:/t/z.sock", NULL };
	/* An option as the last word has no value. */
	char *a4[] = { "qemu-system-x86_64", "-qmp", NULL };

	parse(&p, NULL, a1);
	ck_assert_ptr_null(p.qmp_path);
	ck_assert_int_eq(p.qmp_fd, -1);
	ck_assert_str_eq(p.guest, "plain");
	live_proc_free(&p);

	parse(&p, NULL, a2);
	ck_assert_ptr_null(p.qmp_path);
	ck_assert(p.qmp_not_unix);
	live_proc_free(&p);

	parse(&p, "/usr/bin/qemu-io", a3);
	ck_assert_int_eq(p.prog, PROG_OTHER);
	ck_assert_ptr_null(p.qmp_path);
	live_proc_free(&p);

	parse(&p, NULL, a4);
	ck_assert_ptr_null(p.qmp_path);
	live_proc_free(&p);
}
END_TEST

START_TEST(proc_cmdline_is_bounded)
{
	struct live_proc p;
	char *a[] = { "qemu-system-x86_64", "-name", "guest=abcdefghij", NULL };
	char *s;

	parse(&p, NULL, a);
	s = live_proc_cmdline(&p, 4096);
	ck_assert_str_eq(s, "qemu-system-x86_64 -name guest=abcdefghij");
	free(s);
	s = live_proc_cmdline(&p, 24);
	ck_assert_uint_le(strlen(s), 24);
	ck_assert_str_eq(s + strlen(s) - 3, "...");
	free(s);
	live_proc_free(&p);
}
END_TEST

/* ---- lock tables ------------------------------------------------------- */

static void write_text(const char *name, const char *text, char *path,
		       size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", ut_tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(locks_scan_both_formats)
{
	char p[256];
	uint8_t h, u;
	dev_t dev = makedev(0xfe, 0);

	/* /proc/locks: bytes 100-101, 103 held; 201, 203 not shared; a
	 * waiter, a lock of another file and libvirt's byte 0 ignored. */
	write_text("locks",
		   "1: POSIX  ADVISORY  WRITE 18504 fe:00:99 0 EOF\n"
		   "2: OFDLCK ADVISORY  READ -1 fe:00:777 203 203\n"
		   "3: OFDLCK ADVISORY  READ -1 fe:00:777 201 201\n"
		   "4: OFDLCK ADVISORY  READ -1 fe:00:777 103 103\n"
		   "4: -> OFDLCK ADVISORY  WRITE -1 fe:00:777 103 103\n"
		   "5: OFDLCK ADVISORY  READ -1 fe:00:777 100 101\n"
		   "6: POSIX  ADVISORY  READ 4242 fe:00:777 0 0\n"
		   "7: OFDLCK ADVISORY  READ -1 fe:01:777 100 100\n",
		   p, sizeof(p));
	ck_assert_int_eq(live_locks_scan(p, dev, 777, &h, &u), 4);
	ck_assert_uint_eq(h, 0x0b);
	ck_assert_uint_eq(u, 0x0a);
	/* fdinfo "lock:" lines; a range to EOF covers every byte. */
	write_text("fdinfo", "pos:\t0\nflags:\t02\n"
		   "lock:\t1: OFDLCK ADVISORY READ -1 fe:00:777 150 EOF\n", p,
		   sizeof(p));
	ck_assert_int_eq(live_locks_scan(p, dev, 777, &h, &u), 1);
	ck_assert_uint_eq(h, 0);
	ck_assert_uint_eq(u, 0x1f);
	ck_assert_int_eq(live_locks_scan("/nonexistent/locks", dev, 1, &h, &u),
			 -ENOENT);
}
END_TEST

/* Guards the remote-holder rule: lock bits that no local process and no
 * local lock record explain are another host's (as on NFS); bits the
 * local table lists are a local process we cannot see. */
START_TEST(unexplained_split)
{
	struct live_bits u = { 0x03, 0x0a }, table = { 0x01, 0x08 }, h, r;

	live_split_unexplained(u, table, &h, &r);
	ck_assert_uint_eq(h.held, 0x01);
	ck_assert_uint_eq(h.unshared, 0x08);
	ck_assert_uint_eq(r.held, 0x02);
	ck_assert_uint_eq(r.unshared, 0x02);
	table.held = table.unshared = 0;
	live_split_unexplained(u, table, &h, &r);
	ck_assert_uint_eq(h.held | h.unshared, 0);
	ck_assert_uint_eq(r.held, 0x03);
	ck_assert_uint_eq(r.unshared, 0x0a);
}
END_TEST

/* ---- live_find on real processes --------------------------------------- */

static void ofd_lock(int fd, off_t start, off_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
}

/* A child that opens path, takes QEMU's bytes as a writer would (held
 * 100, 101; unshared 201) unless nolock, says so on a pipe, and waits. */
static pid_t holder(const char *path, bool nolock)
{
	int pfd[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_RDWR);

		if (fd < 0)
			_exit(1);
		if (!nolock) {
			ofd_lock(fd, 100, 2);
			ofd_lock(fd, 201, 1);
		}
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void make_file(const char *name, char *path, size_t len)
{
	write_text(name, "image", path, len);
}

START_TEST(find_lock_holder_and_opener)
{
	char img[256], link[256];
	struct live_report r;
	struct img_err e;
	pid_t a, b;

	make_file("img", img, sizeof(img));
	snprintf(link, sizeof(link), "%s/link", ut_tmpdir);
	ck_assert_int_eq(symlink("img", link), 0);
	a = holder(img, false);
	b = holder(link, true);
	/* Asked by the symlink: the same dev:ino, the same holders. */
	ck_assert_msg(live_find(link, LIVE_NO_LIBVIRT_API, &r, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(r.n, 2);
	for (int i = 0; i < r.n; i++) {
		const struct live_holder *h = &r.v[i];

		ck_assert_int_eq(h->kind, LIVE_OTHER);
		ck_assert_ptr_nonnull(h->cmdline);
		if (h->pid == a) {
			ck_assert(h->locks);
			ck_assert_uint_eq(h->held, 0x03);
			ck_assert_uint_eq(h->unshared, 0x02);
		} else {
			ck_assert_int_eq(h->pid, b);
			ck_assert(!h->locks);
		}
	}
	ck_assert_uint_eq(r.probe_held, 0x03);
	live_report_free(&r);
	reap(a);
	reap(b);
	ck_assert_int_eq(live_find(img, 0, &r, &e), 0);
	ck_assert_int_eq(r.n, 0);
	live_report_free(&r);
}
END_TEST

/* Our own locks (a commit probing again) are never another holder. */
START_TEST(find_ignores_own_locks)
{
	struct live_report r;
	struct img_err e;
	char img[256];
	int fd;

	make_file("img", img, sizeof(img));
	fd = open(img, O_RDONLY);
	ofd_lock(fd, 100, 1);
	ck_assert_int_eq(live_find(img, LIVE_NO_LIBVIRT_API, &r, &e), 0);
	ck_assert_uint_eq(r.probe_held, 0x01);
	ck_assert_int_eq(r.n, 0);
	live_report_free(&r);
	close(fd);
}
END_TEST

START_TEST(find_bad_input)
{
	struct live_report r;
	struct img_err e;
	char p[256];

	snprintf(p, sizeof(p), "%s/missing", ut_tmpdir);
	ck_assert_int_eq(live_find(p, 0, &r, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
	ck_assert_int_eq(live_find(ut_tmpdir, 0, &r, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
	/* NULL err pointer: detail ignored, never dereferenced. */
	ck_assert_int_eq(live_find(p, 0, &r, NULL), -ENOENT);
}
END_TEST

START_TEST(unix_path_of_fd)
{
	struct sockaddr_un sa;
	char *path;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/mon.sock", ut_tmpdir);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	path = live_unix_path_of_fd(getpid(), fd);
	ck_assert_ptr_nonnull(path);
	ck_assert_str_eq(path, sa.sun_path);
	free(path);
	ck_assert_ptr_null(live_unix_path_of_fd(getpid(), 0 /* not one */));
	close(fd);
}
END_TEST

/* ---- libvirt XML ----------------------------------------------------------- */

static const char status_fmt[] =
	"<!-- WARNING: auto-generated -->\n"
	"<domstatus state='running' reason='booted' pid='%d'>\n"
	"  <taint flag='high-privileges'/>\n"
	"  <monitor path='/var/lib/libvirt/qemu/domain-1-p1/monitor.sock' "
	"type='unix'/>\n"
	"  <domain type='qemu' id='7'>\n"
	"    <name>p1</name><uuid>2eb6a1ab-a1bb-412e-baa9-17eaf7f142e1</uuid>\n"
	"    <devices>\n"
	"      <disk type='file' device='disk'>\n"
	"        <driver name='qemu' type='qcow2'/>\n"
	"        <source file='%s/top' index='1'><privateData><nodenames>\n"
	"          <nodename type='storage' name='libvirt-1-storage'/>\n"
	"          <nodename type='format' name='libvirt-1-format'/>\n"
	"        </nodenames></privateData></source>\n"
	"        <backingStore type='file' index='2'><format type='qcow2'/>\n"
	"          <source file='%s/base'><privateData><nodenames>\n"
	"            <nodename type='format' name='libvirt-2-format'/>\n"
	"          </nodenames><relPath>base</relPath></privateData></source>\n"
	"          <backingStore/>\n"
	"        </backingStore>\n"
	"        <target dev='vda' bus='virtio'/>\n"
	"      </disk>\n"
	"      <disk type='network' device='cdrom'><readonly/>\n"
	"        <source protocol='nbd' name='x'/><target dev='hdc'/>\n"
	"      </disk>\n"
	"    </devices>\n"
	"  </domain>\n"
	"</domstatus>\n";

START_TEST(xml_status_file)
{
	char buf[4096], top[256], base[256];
	struct virt_domain d;
	struct img_err e;
	struct stat st;
	int disk, layer;

	make_file("top", top, sizeof(top));
	make_file("base", base, sizeof(base));
	snprintf(buf, sizeof(buf), status_fmt, 4321, ut_tmpdir, ut_tmpdir);
	ck_assert_msg(virt_parse_xml(buf, strlen(buf), "p1.xml", &d, &e) == 0,
		      "%s", e.msg);
	ck_assert_str_eq(d.name, "p1");
	ck_assert_int_eq(d.pid, 4321);
	ck_assert_int_eq(d.id, 7);
	ck_assert_str_eq(d.monitor,
			 "/var/lib/libvirt/qemu/domain-1-p1/monitor.sock");
	ck_assert_int_eq(d.ndisks, 2);
	ck_assert_str_eq(d.disks[0].target, "vda");
	ck_assert_int_eq(d.disks[0].nlayers, 2);
	ck_assert_str_eq(d.disks[0].layers[0].node_format, "libvirt-1-format");
	ck_assert_str_eq(d.disks[0].layers[0].format, "qcow2");
	ck_assert_int_eq(d.disks[0].layers[0].index, 1);
	ck_assert_int_eq(d.disks[0].layers[1].index, 2);
	ck_assert_str_eq(d.disks[0].layers[1].rel_path, "base");
	ck_assert(d.disks[1].readonly);
	ck_assert_ptr_null(d.disks[1].layers[0].path);
	/* Matched by dev:ino, also through another name of the file. */
	ck_assert_int_eq(stat(base, &st), 0);
	ck_assert(virt_domain_find(&d, st.st_dev, st.st_ino, &disk, &layer));
	ck_assert_int_eq(disk, 0);
	ck_assert_int_eq(layer, 1);
	virt_domain_free(&d);
}
END_TEST

START_TEST(xml_bad_input)
{
	struct virt_domain d;
	struct img_err e;
	const char *bad = "<domain><name>x</name>\n<devices><disk></devices>";
	const char *root = "<network><name>n</name></network>";
	const char *noname = "<domain type='qemu'><devices/></domain>";
	char *deep;
	size_t n = 0, cap = (VIRT_CHAIN_MAX + 10) * 80 + 200;

	ck_assert_int_eq(virt_parse_xml(bad, strlen(bad), "f.xml", &d, &e),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "f.xml: not well-formed XML (line"));
	ck_assert_int_eq(virt_parse_xml(root, strlen(root), "g.xml", &d, &e),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "root element is <network>"));
	ck_assert_int_eq(virt_parse_xml(noname, strlen(noname), "h", &d, &e),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "no <name>"));
	/* A chain deeper than the cap is refused, not followed. */
	deep = malloc(cap);
	ck_assert_ptr_nonnull(deep);
	n += (size_t)sprintf(deep + n, "<domain><name>d</name><devices>"
			     "<disk type='file'><source file='/x'/>");
	for (int i = 0; i < VIRT_CHAIN_MAX + 5; i++)
		n += (size_t)sprintf(deep + n, "<backingStore type='file'>"
				     "<source file='/y'/>");
	for (int i = 0; i < VIRT_CHAIN_MAX + 5; i++)
		n += (size_t)sprintf(deep + n, "</backingStore>");
	n += (size_t)sprintf(deep + n, "</disk></devices></domain>");
	ck_assert_int_eq(virt_parse_xml(deep, n, "deep", &d, &e), -E2BIG);
	ck_assert_ptr_nonnull(strstr(e.msg, "deeper than"));
	free(deep);
}
END_TEST

/* The status directory: stale files (their QEMU gone) are skipped, a
 * malformed one is an error naming it. */
START_TEST(status_dir)
{
	char buf[4096], p[256];
	struct virt_domains ds;
	struct img_err e;

	snprintf(buf, sizeof(buf), status_fmt, (int)getpid(), ut_tmpdir,
		 ut_tmpdir);
	write_text("p1.xml", buf, p, sizeof(p));
	snprintf(buf, sizeof(buf), status_fmt, 0x3fffffff, ut_tmpdir,
		 ut_tmpdir);
	write_text("stale.xml", buf, p, sizeof(p));
	write_text("p1.pid", "1\n", p, sizeof(p));
	ck_assert_msg(virt_status_read(ut_tmpdir, &ds, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ds.n, 1);
	ck_assert_int_eq(ds.v[0].pid, getpid());
	ck_assert_str_eq(ds.v[0].origin, "status file");
	virt_domains_free(&ds);
	write_text("broken.xml", "<domstatus pid='1'>", p, sizeof(p));
	ck_assert_int_eq(virt_status_read(ut_tmpdir, &ds, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "broken.xml"));
	snprintf(p, sizeof(p), "%s/none", ut_tmpdir);
	ck_assert_int_eq(virt_status_read(p, &ds, &e), 0);
	ck_assert_int_eq(ds.n, 0);
}
END_TEST

/* Guards: libvirt's status files are root's alone; for anyone else they
 * are no domains (the API may still know them), not an error. */
START_TEST(status_dir_not_ours)
{
	char dir[256], p[256], buf[4096];
	int st;
	pid_t pid;

	/* A listable directory of unreadable files, and an unlistable one. */
	ck_assert_int_eq(chmod(ut_tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/priv", ut_tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/qemu", ut_tmpdir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(buf, sizeof(buf), status_fmt, (int)getpid(), ut_tmpdir,
		 ut_tmpdir);
	write_text("qemu/p1.xml", buf, p, sizeof(p));
	ck_assert_int_eq(chmod(p, 0600), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct virt_domains ds;

		if (setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		if (virt_status_read(dir, &ds, NULL) != 0 || ds.n != 0)
			_exit(1);
		snprintf(dir, sizeof(dir), "%s/priv", ut_tmpdir);
		if (virt_status_read(dir, &ds, NULL) != 0 || ds.n != 0)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "status %d (2: cannot drop root)", st);
}
END_TEST

/* The users file's qmp: goes to a QEMU whose command line names no
 * monitor and that has the entry's image open (by dev:ino, through a
 * symlink here); a libvirt domain's QEMU, a QEMU with its own monitor, a
 * program that is no QEMU and a QEMU holding another file keep theirs. */
START_TEST(users_qmp_rule)
{
	char img[256], link[256], other[256];
	struct users_entry ent[3];
	struct users_file uf = { .path = (char *)"users.yaml", .v = ent,
				 .n = 3 };
	struct live_report r;
	struct img_err e;
	pid_t a, b;

	make_file("img", img, sizeof(img));
	make_file("other", other, sizeof(other));
	snprintf(link, sizeof(link), "%s/link", ut_tmpdir);
	ck_assert_int_eq(symlink("img", link), 0);
	a = holder(img, true);
	b = holder(other, false);
	memset(ent, 0, sizeof(ent));
	ent[0].path = (char *)"/nonexistent/x.qcow2";
	ent[0].qmp = (char *)"/run/x0.sock";
	ent[1].path = link;                     /* no qmp: */
	ent[2].path = link;
	ent[2].qmp = (char *)"/run/x2.sock";
	memset(&r, 0, sizeof(r));
	r.n = 5;
	r.v = calloc(5, sizeof(*r.v));
	ck_assert_ptr_nonnull(r.v);
	for (int i = 0; i < 5; i++) {
		r.v[i].kind = LIVE_OTHER;
		r.v[i].prog = PROG_QEMU_SYSTEM;
		r.v[i].pid = a;
		r.v[i].note = "QEMU without a QMP monitor";
	}
	r.v[1].kind = LIVE_LIBVIRT;
	r.v[2].kind = LIVE_QMP;
	r.v[2].qmp_path = strdup("/cmd.sock");
	r.v[3].prog = PROG_OTHER;
	r.v[4].prog = PROG_QSD;
	r.v[4].pid = b;
	ck_assert_int_eq(live_users_qmp(&r, NULL, &e), 0);
	ck_assert_int_eq(r.v[0].kind, LIVE_OTHER);
	ck_assert_msg(live_users_qmp(&r, &uf, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(r.v[0].kind, LIVE_QMP);
	ck_assert_str_eq(r.v[0].qmp_path, "/run/x2.sock");
	ck_assert_ptr_null(r.v[0].note);
	ck_assert_int_eq(r.v[1].kind, LIVE_LIBVIRT);
	ck_assert_ptr_null(r.v[1].qmp_path);
	ck_assert_str_eq(r.v[2].qmp_path, "/cmd.sock");
	ck_assert_int_eq(r.v[3].kind, LIVE_OTHER);
	ck_assert_ptr_null(r.v[3].qmp_path);
	ck_assert_int_eq(r.v[4].kind, LIVE_OTHER);
	ck_assert_ptr_null(r.v[4].qmp_path);
	ck_assert(live_pid_opens(b, other));
	ck_assert(!live_pid_opens(b, img));
	ck_assert(!live_pid_opens(a, "/nonexistent/x.qcow2"));
	live_report_free(&r);
	reap(a);
	reap(b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("live");
	TCase *t = tcase_create("parse");

	tcase_add_test(t, opt_get_keys_implied_and_escapes);
	tcase_add_test(t, proc_qmp_forms);
	tcase_add_test(t, proc_not_qmp);
	tcase_add_test(t, proc_cmdline_is_bounded);
	tcase_add_test(t, unexplained_split);
	suite_add_tcase(s, t);

	t = tcase_create("files");
	tcase_add_checked_fixture(t, ut_tmp_setup, ut_tmp_teardown);
	tcase_add_test(t, locks_scan_both_formats);
	tcase_add_test(t, find_lock_holder_and_opener);
	tcase_add_test(t, find_ignores_own_locks);
	tcase_add_test(t, find_bad_input);
	tcase_add_test(t, unix_path_of_fd);
	tcase_add_test(t, xml_status_file);
	tcase_add_test(t, xml_bad_input);
	tcase_add_test(t, status_dir);
	tcase_add_test(t, status_dir_not_ours);
	tcase_add_test(t, users_qmp_rule);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ut_run(suite());
}
