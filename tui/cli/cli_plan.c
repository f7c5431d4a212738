/* cli_plan.c - what `plan` and `commit` share: find --top/--base in the
 * pool and build the plan. */
#include "cli_plan.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The open error of node n when the scan found it in error because the
 * file itself does not open as an image (what 'imgraph info' would say),
 * else 0.  Errors the pool gives a valid image (loops, overlays that
 * disagree on its format...) stay conflicts. */
static int named_unreadable(const struct graph *g, int n, struct img_err *e)
{
	struct img *img;
	int r;

	if (n < 0 || n >= g->n || !(g->nodes[n].flags & GN_ERROR))
		return 0;
	r = img_open(g->nodes[n].path, NULL, IMG_O_INSPECT, &img, NULL, e);
	if (r < 0)
		return r;
	img_close(img);
	return 0;
}

int cli_stated_exist(const struct scan_opts *so)
{
	struct img_err e = { 0 };
	struct stat st;

	for (int i = 0; so && i < so->nstated; i++)
		if (stat(so->stated[i].path, &st) < 0) {
			err_set_errno(&e, errno, "%s: cannot stat --format",
				      so->stated[i].path);
			return cli_report(&e);
		}
	return EXIT_OK;
}

int cli_plan_load(const struct cli_plan_args *a, struct graph **gp,
		  struct plan **pp)
{
	struct plan_request rq = { .paths = a->paths, .npaths = a->npaths,
				   .scan = a->scan, .top = a->top,
				   .base = a->base, .plan = a->plan,
				   .base_format = a->base_format };
	struct img_err e = { 0 };
	struct stat st;
	int r;

	*gp = NULL;
	*pp = NULL;
	/* A file that does not exist is an error, not a conflict. */
	if (stat(a->top, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --top", a->top);
		return cli_report(&e);
	}
	if (a->base && stat(a->base, &st) < 0) {
		err_set_errno(&e, errno, "%s: cannot stat --base", a->base);
		return cli_report(&e);
	}
	r = cli_stated_exist(a->scan);
	if (r != EXIT_OK)
		return r;
	if (plan_scan(&rq, gp, pp, &e) < 0)
		return cli_report(&e);
	/* A file named on the command line that is not a readable image is
	 * an error (exit 1, as for 'imgraph info'), not a conflict:
	 * conflicts are what the pool does to a valid pair. */
	if ((r = named_unreadable(*gp, (*pp)->top, &e)) < 0 ||
	    (a->base && (r = named_unreadable(*gp, (*pp)->base, &e)) < 0)) {
		plan_free(*pp);
		graph_free(*gp);
		*pp = NULL;
		*gp = NULL;
		return cli_report(&e);
	}
	return EXIT_OK;
}

int cli_plan_set_init(struct cli_plan_set *s, int argc)
{
	s->ignore = calloc((size_t)argc + 1, sizeof(char *));
	s->stated = calloc((size_t)argc + 1, sizeof(*s->stated));
	s->nstated = 0;
	s->base_format = NULL;
	if (!s->ignore || !s->stated) {
		cli_plan_set_free(s);
		fprintf(stderr, "imgraph%s%s: out of memory\n", *s->cmd ? " " : "",
			s->cmd);
		return -ENOMEM;
	}
	return 0;
}

void cli_plan_set_free(struct cli_plan_set *s)
{
	free(s->ignore);
	free(s->stated);
	s->ignore = NULL;
	s->stated = NULL;
}

/* A format name imgraph can read, for --format and --base-format. */
static int known_format(const struct cli_plan_set *s, const char *opt,
			const char *fmt)
{
	if (fmt && *fmt && img_format_find(fmt))
		return 0;
	cli_usage_error(s->cmd, "%s: unknown format '%s' (qemu-img's names: "
			"qcow2, raw, qed, qcow, vmdk, vpc, vhdx, vdi ...)", opt,
			fmt ? fmt : "");
	return -1;
}

/* --format FILE=FMT: the last '=' splits, so FILE may hold one. */
static int add_stated(struct cli_plan_set *s, char *arg)
{
	char *eq = strrchr(arg, '=');

	if (!eq || eq == arg) {
		cli_usage_error(s->cmd, "--format %s: expected FILE=FORMAT", arg);
		return -1;
	}
	if (known_format(s, "--format", eq + 1) < 0)
		return -1;
	*eq = '\0';
	s->stated[s->nstated].path = arg;
	s->stated[s->nstated].fmt = eq + 1;
	s->nstated++;
	return 1;
}

int cli_plan_format_option(int c, char *arg, struct cli_plan_set *s)
{
	struct plan_opts *po = s->po;

	switch (c) {
	case 'f': return add_stated(s, arg);
	case 'F':
		if (known_format(s, "--base-format", arg) < 0)
			return -1;
		s->base_format = arg;
		break;
	case 'W': po->base_is_raw = true; break;
	case 'I':
		s->ignore[po->nignore_unverified++] = arg;
		po->ignore_unverified = s->ignore;
		break;
	default: return 0;
	}
	return 1;
}

int cli_plan_option(int c, char *arg, struct cli_plan_set *s)
{
	struct plan_opts *po = s->po;
	int k = cli_plan_format_option(c, arg, s);

	if (k)
		return k;
	switch (c) {
	case 'D': po->drop_top = true; break;
	case 'X': po->delete_files = true; break;
	case 'O': po->offline = true; break;
	case 'Q': po->qmp = arg; break;
	case 'P': po->pull = true; break;
	case 'S': po->protect = true; break;
	default: return 0;
	}
	return 1;
}

void cli_plan_set_scan(const struct cli_plan_set *s, struct scan_opts *so)
{
	so->stated = s->stated;
	so->nstated = s->nstated;
}
