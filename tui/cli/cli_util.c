/* cli_util.c - small helpers shared by the CLI commands. */
#include "cmd.h"
#include "core/out/esc.h"
#include "core/out/emit.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_report(const struct img_err *e)
{
	fprintf(stderr, "imgraph: %s\n",
		e && e->msg[0] ? ESC(e->msg) : "unknown error");
	return EXIT_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (cmd && !*cmd)
		cmd = NULL;             /* the editor: "imgraph: ..." */

	fprintf(stderr, "imgraph%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'imgraph%s%s --help'.\n", cmd ? " " : "",
		cmd ? cmd : "");
	return EXIT_USAGE;
}

/* The long option called name (or the unique one it abbreviates), or
 * NULL; *ambiguous when several match. */
static const struct option *long_named(const struct option *lo,
				       const char *name, size_t len,
				       bool *ambiguous)
{
	const struct option *hit = NULL;

	*ambiguous = false;
	for (; lo && lo->name; lo++) {
		if (strncmp(lo->name, name, len))
			continue;
		if (strlen(lo->name) == len)
			return lo;                  /* exact */
		if (hit && (hit->has_arg != lo->has_arg ||
			    hit->val != lo->val))
			*ambiguous = true;
		hit = lo;
	}
	return *ambiguous ? NULL : hit;
}

int cli_bad_option(const char *cmd, char **argv, const char *shortopts,
		   const struct option *longopts)
{
	const char *w = optind > 0 ? argv[optind - 1] : NULL;

	/* A long option is the word before optind: getopt steps past it
	 * (and past its value) before reporting.  An error inside a cluster
	 * of short options ("-rZ") leaves optind alone, so the word is only
	 * trusted when it is a long option that explains optopt. */
	if (w && !strncmp(w, "--", 2) && w[2]) {
		const char *eq = strchr(w, '=');
		size_t len = eq ? (size_t)(eq - w - 2) : strlen(w + 2);
		bool amb;
		const struct option *o = long_named(longopts, w + 2, len, &amb);

		if (amb)
			return cli_usage_error(cmd, "option '%.*s' is ambiguous",
					       (int)(len + 2), w);
		if (!o && !optopt)
			return cli_usage_error(cmd, "unknown option '%.*s'",
					       (int)(len + 2), w);
		if (o && o->val == optopt) {
			if (eq && o->has_arg == no_argument)
				return cli_usage_error(cmd, "option '--%s' "
						       "takes no value",
						       o->name);
			return cli_usage_error(cmd, "option '--%s' needs a "
					       "value", o->name);
		}
	}
	if (optopt > 0 && optopt < 128) {
		const char *s = strchr(shortopts, optopt);

		if (optopt != ':' && s && s[1] == ':')
			return cli_usage_error(cmd, "option '-%c' needs a "
					       "value", optopt);
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	}
	return cli_usage_error(cmd, "unknown option '%s'", w ? w : "?");
}

int cli_parse_output(const char *cmd, const char *arg, enum out_fmt *out)
{
	if (ow_parse_fmt(arg, out) < 0) {
		cli_usage_error(cmd, "invalid --output '%s' "
				"(expected human, json or yaml)", arg);
		return -1;
	}
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'b': case 'B': shift = 0; end++; break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'p': case 'P': shift = 50; end++; break;
	case 'e': case 'E': shift = 60; end++; break;
	default: return -1;
	}
	if (*end)
		return -1;
	if (shift && v > (~0ull >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *cli_human_size(uint64_t v, char *buf, unsigned len)
{
	return emit_size(v, buf, len);     /* one size format everywhere */
}

int cli_image_args(const char *cmd, int argc, char **argv, bool allow_yaml,
		   void (*usage)(FILE *), struct cli_image_args *a)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char shortopts[] = "f:h";
	int opt;

	a->fmt = OUT_HUMAN;
	a->imgfmt = NULL;
	a->path = NULL;
	optind = 1;
	opterr = 0;            /* cli_bad_option says it once */
	while ((opt = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (opt) {
		case 'O':
			if (cli_parse_output(cmd, optarg, &a->fmt) < 0)
				return EXIT_USAGE;
			if (a->fmt == OUT_YAML && !allow_yaml)
				return cli_usage_error(cmd, "--output=yaml is "
						       "not supported (human "
						       "or json)");
			break;
		case 'f':
			a->imgfmt = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(cmd, argv, shortopts, opts);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cmd, argc - optind < 1 ?
				       "missing IMAGE" : "too many arguments");
	a->path = argv[optind];
	return -1;
}
