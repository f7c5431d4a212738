/* err.c - the error object; see err.h. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int err_vset(struct img_err *e, int code, int with_errno,
		    const char *fmt, va_list ap)
{
	if (code <= 0)
		code = code ? -code : 5 /* EIO: a caller passed no code */;
	if (e) {
		e->code = code;
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		if (with_errno) {
			size_t n = strlen(e->msg);
			snprintf(e->msg + n, sizeof(e->msg) - n, ": %s",
				 strerror(code));
		}
	}
	return -code;
}

int err_set(struct img_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = err_vset(e, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int err_set_errno(struct img_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = err_vset(e, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

void err_prefix(struct img_err *e, const char *fmt, ...)
{
	char pre[IMG_ERR_MSG_MAX], old[IMG_ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Build with explicit lengths: the result is cut at the buffer end. */
	size_t np = strnlen(pre, sizeof(pre)), no = strnlen(old, sizeof(old));
	if (np > sizeof(e->msg) - 1)
		np = sizeof(e->msg) - 1;
	if (no > sizeof(e->msg) - 1 - np)
		no = sizeof(e->msg) - 1 - np;
	memcpy(e->msg, pre, np);
	memcpy(e->msg + np, old, no);
	e->msg[np + no] = '\0';
}

void err_clear(struct img_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

int err_propagate(struct img_err *e, const struct img_err *from)
{
	int code = from->code > 0 ? from->code : EIO;

	if (e && e != from) {
		*e = *from;
		e->code = code;
	}
	return -code;
}
