/* cli_util.c - small helpers shared by the CLI commands. */
#include "cmd.h"
#include "../core/emit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_report(const struct img_err *e)
{
	fprintf(stderr, "imgraph: %s\n",
		e && e->msg[0] ? e->msg : "unknown error");
	return EXIT_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "imgraph%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'imgraph%s%s --help'.\n", cmd ? " " : "",
		cmd ? cmd : "");
	return EXIT_USAGE;
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
