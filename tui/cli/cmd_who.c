/* cmd_who.c - imgraph who [--probe] [--users FILE] [--output=human|json]
 * IMAGE...
 *
 * Which processes hold or open each IMAGE now, and what they are: a
 * libvirt domain, a QEMU with a QMP monitor, a process on another host,
 * a local process not visible here, or anything else (core/live).  With
 * --probe, each QEMU with a QMP monitor is asked (never a libvirt
 * domain's QEMU) for its version and where the image sits in its block
 * graph.  With --users, a QEMU whose command line names no monitor gets
 * the qmp: of a users-file entry whose image it has open (as plan and
 * commit do).  Exit 0 when every IMAGE could be examined, 1 otherwise.
 */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/graph/perm.h"
#include "core/live/live.h"
#include "core/live/qmp.h"
#include "core/graph/users.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs("Usage: imgraph who [--probe] [--users FILE] "
	      "[--output=human|json] IMAGE...\n"
	      "List the processes that hold QEMU's locks on IMAGE or have it\n"
	      "open (matched by device and inode), and what each is: a libvirt\n"
	      "domain, a QEMU with a QMP monitor, a process on another host, a\n"
	      "local process not visible here, or another program.\n"
	      "      --probe          ask each QEMU with a QMP monitor (not\n"
	      "                       libvirt's) its version, node and jobs\n"
	      "      --users FILE     a QEMU whose command line names no QMP\n"
	      "                       monitor: the qmp: of an entry whose\n"
	      "                       image it has open\n"
	      "      --output=FMT     human (default) or json\n"
	      "  -h, --help           show this help\n"
	      "Exit codes: 0 examined, 1 error, 2 usage.\n", f);
}

static void put_h(const char *s)
{
	esc_put(stdout, s);
}

struct probe {
	bool done;
	char err[IMG_ERR_MSG_MAX];
	struct qmp_version ver;
	struct qmp_node_info node;
	bool have_node;
	struct qmp_job *jobs;
	int njobs;
};

static void probe_one(const struct live_report *r, const struct live_holder *h,
		      struct probe *p)
{
	struct img_err e;
	struct qmp *q;
	pid_t peer;

	memset(p, 0, sizeof(*p));
	if (h->kind != LIVE_QMP || !h->qmp_path)
		return;
	p->done = true;
	err_clear(&e);
	if (qmp_open(h->qmp_path, h->pid, 0, &q, &e) < 0) {
		snprintf(p->err, sizeof(p->err), "%s", e.msg);
		return;
	}
	/* a socket given by hand may be another QEMU's (as plan checks) */
	peer = live_qmp_other_qemu(q, h->pid);
	if (peer > 0) {
		snprintf(p->err, sizeof(p->err), "the QMP monitor %s is served "
			 "by process %d, not by process %d", h->qmp_path,
			 (int)peer, (int)h->pid);
		qmp_close(q);
		return;
	}
	p->ver = *qmp_version(q);
	if (qmp_find_node(q, r->dev, r->ino, &p->node, &e) == 0)
		p->have_node = true;
	else
		snprintf(p->err, sizeof(p->err), "%s", e.msg);
	if (qmp_query_jobs(q, &p->jobs, &p->njobs, &e) < 0 && !p->err[0])
		snprintf(p->err, sizeof(p->err), "%s", e.msg);
	qmp_close(q);
}

static void probe_free(struct probe *p)
{
	qmp_node_info_free(&p->node);
	qmp_jobs_free(p->jobs, p->njobs);
}

static void human_locks(const struct live_holder *h)
{
	char a[80], b[80];

	if (!h->locks) {
		fputs("    locks: none (opened without locking)\n", stdout);
		return;
	}
	perm_names(h->held & PERM_ALL, a, sizeof(a));
	perm_names(h->unshared & PERM_ALL, b, sizeof(b));
	printf("    locks: holds '%s', does not share '%s'\n",
	       a[0] ? a : "nothing", b[0] ? b : "nothing");
}

static void human_probe(const struct probe *p)
{
	const struct qmp_node_info *n = &p->node;

	if (!p->done)
		return;
	if (p->ver.major)
		printf("    QEMU %d.%d.%d\n", p->ver.major, p->ver.minor,
		       p->ver.micro);
	if (p->have_node) {
		printf("    node '%s' (%s%s), depth %d under root '%s', used "
		       "by %s%s%s\n", ESC(n->node), n->drv ? ESC(n->drv) : "?",
		       n->ro ? ", read-only" : "", n->depth, ESC(n->root),
		       ESC(n->backend_kind), n->backend ? " " : "",
		       ESC(n->backend));
		if (n->filter)
			printf("    filter in the way: %s\n", ESC(n->filter));
		if (n->job)
			printf("    job on it: %s\n", ESC(n->job));
	}
	for (int j = 0; j < p->njobs; j++)
		printf("    job '%s' (%s): %s\n", ESC(p->jobs[j].id),
		       ESC(p->jobs[j].type), ESC(p->jobs[j].status));
	if (p->err[0]) {
		fputs("    probe: ", stdout);
		put_h(p->err);
		putchar('\n');
	}
}

static void human_holder(const struct live_holder *h, const struct probe *p)
{
	if (h->pid)
		printf("  PID %d (", (int)h->pid);
	else
		fputs("  ", stdout);
	if (h->pid) {
		put_h(h->comm);
		fputs("): ", stdout);
	}
	switch (h->kind) {
	case LIVE_LIBVIRT:
		fputs("libvirt domain '", stdout);
		put_h(h->domain);
		putchar('\'');
		if (h->disk)
			printf(", disk %s layer %d", ESC(h->disk), h->layer);
		printf(" (%s)\n", ESC(h->domain_how));
		break;
	case LIVE_QMP:
		fputs("QEMU with a QMP monitor at ", stdout);
		put_h(h->qmp_path);
		printf(" (%s)\n", ESC(h->qmp_how));
		break;
	case LIVE_REMOTE:
		fputs("held by a process on another host\n", stdout);
		break;
	case LIVE_HIDDEN:
		fputs("held by a local process not visible here (another PID "
		      "namespace)\n", stdout);
		break;
	case LIVE_OTHER:
		printf("%s\n", h->note ? ESC(h->note) : "another program");
		break;
	}
	human_locks(h);
	if (h->cmdline) {
		fputs("    command: ", stdout);
		put_h(h->cmdline);
		putchar('\n');
	}
	human_probe(p);
}

static void json_probe(struct ow *w, const struct probe *p)
{
	const struct qmp_node_info *n = &p->node;

	if (!p->done)
		return;
	ow_obj_open(w, "probe");
	if (p->ver.major) {
		char v[48];

		snprintf(v, sizeof(v), "%d.%d.%d", p->ver.major, p->ver.minor,
			 p->ver.micro);
		ow_str(w, "qemu-version", v);
	}
	if (p->have_node) {
		ow_str(w, "node-name", n->node);
		ow_str(w, "file-node-name", n->file_node);
		ow_str(w, "driver", n->drv);
		ow_bool(w, "read-only", n->ro);
		ow_i64(w, "depth", n->depth);
		ow_str(w, "root", n->root);
		ow_str(w, "backend-kind", n->backend_kind);
		ow_str(w, "backend", n->backend);
		ow_str(w, "filter", n->filter);
		ow_str(w, "job", n->job);
	}
	ow_arr_open(w, "jobs");
	for (int j = 0; j < p->njobs; j++) {
		ow_obj_open(w, NULL);
		ow_str(w, "id", p->jobs[j].id);
		ow_str(w, "type", p->jobs[j].type);
		ow_str(w, "status", p->jobs[j].status);
		ow_close(w);
	}
	ow_close(w);
	if (p->err[0])
		ow_str(w, "error", p->err);
	ow_close(w);
}

static void json_bits(struct ow *w, const char *key, uint8_t bits)
{
	ow_arr_open(w, key);
	for (int i = 0; i < PERM_NBITS; i++)
		if (bits & (1u << i))
			ow_str(w, NULL, perm_qapi_name((uint8_t)(1u << i)));
	ow_close(w);
}

static void json_holder(struct ow *w, const struct live_holder *h,
			const struct probe *p)
{

	ow_obj_open(w, NULL);
	ow_str(w, "class", live_kind_name(h->kind));
	if (h->pid) {
		ow_i64(w, "pid", h->pid);
		ow_str(w, "comm", h->comm);
		ow_str(w, "command", h->cmdline);
	}
	ow_bool(w, "locks", h->locks);
	json_bits(w, "holds", h->held);
	json_bits(w, "does-not-share", h->unshared);
	if (h->qmp_path) {
		ow_str(w, "qmp", h->qmp_path);
		ow_str(w, "qmp-found-by", h->qmp_how);
	}
	if (h->domain) {
		ow_str(w, "domain", h->domain);
		ow_str(w, "domain-found-by", h->domain_how);
		if (h->disk) {
			ow_str(w, "disk", h->disk);
			ow_i64(w, "layer", h->layer);
		}
	}
	if (h->note)
		ow_str(w, "note", h->note);
	json_probe(w, p);
	ow_close(w);
}

static int who_one(struct ow *w, const char *path, bool probe,
		   const struct users_file *uf)
{
	struct live_report r;
	struct img_err e;

	err_clear(&e);
	if (live_find(path, 0, &r, &e) < 0)
		return cli_report(&e);
	if (live_users_qmp(&r, uf, &e) < 0) {
		live_report_free(&r);
		return cli_report(&e);
	}
	if (w->fmt == OUT_HUMAN) {
		put_h(path);
		fputs(r.n ? ":\n" : ": no process holds or opens it\n", stdout);
	} else {
		ow_obj_open(w, NULL);
		ow_str(w, "filename", path);
		ow_arr_open(w, "holders");
	}
	for (int i = 0; i < r.n; i++) {
		struct probe p;

		if (probe)
			probe_one(&r, &r.v[i], &p);
		else
			memset(&p, 0, sizeof(p));
		if (w->fmt == OUT_HUMAN)
			human_holder(&r.v[i], &p);
		else
			json_holder(w, &r.v[i], &p);
		probe_free(&p);
	}
	if (w->fmt != OUT_HUMAN) {
		ow_close(w);
		ow_close(w);
	}
	live_report_free(&r);
	return EXIT_OK;
}

int cmd_who(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "probe", no_argument, NULL, 'P' },
		{ "output", required_argument, NULL, 'o' },
		{ "users", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "h";
	enum out_fmt fmt = OUT_HUMAN;
	bool probe = false;
	const char *users = NULL;
	struct users_file *uf = NULL;
	struct img_err e;
	struct ow w;
	int c, rc = EXIT_OK;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			probe = true;
			break;
		case 'o':
			if (cli_parse_output("who", optarg, &fmt) < 0)
				return EXIT_USAGE;
			if (fmt == OUT_YAML)
				return cli_usage_error("who", "--output=yaml "
						       "is not offered; use "
						       "json");
			break;
		case 'u':
			users = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option("who", argv, shortopts, opts);
		}
	}
	if (optind >= argc)
		return cli_usage_error("who", "no IMAGE given");
	err_clear(&e);
	if (users && users_load(users, &uf, &e) < 0)
		return cli_report(&e);
	ow_init(&w, stdout, fmt);
	if (fmt != OUT_HUMAN)
		ow_arr_open(&w, NULL);
	for (int i = optind; i < argc; i++)
		if (who_one(&w, argv[i], probe, uf) != EXIT_OK)
			rc = EXIT_ERR;
	if (fmt != OUT_HUMAN) {
		ow_close(&w);
		ow_finish(&w);
	}
	users_free(uf);
	return rc;
}
