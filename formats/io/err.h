/* err.h - the error object (QEMU errp style).
 *
 * A function that fails fills a struct img_err (code + message naming the file
 * and the field) and returns a negative errno; it never prints.  The caller
 * decides how to report.  Passing e == NULL is allowed and ignores the detail:
 * no function dereferences it (use err_propagate to hand a local error up).
 * The object owns no heap memory: it can live on the stack and be reused.
 */
#ifndef IMGRAPH_ERR_H
#define IMGRAPH_ERR_H

#include <stddef.h>

#define IMG_ERR_MSG_MAX 1024

struct img_err {
	int code;                 /* positive errno value, 0 when clear */
	char msg[IMG_ERR_MSG_MAX];
};

/* Fill e (if non-NULL) with code and a printf-style message; returns -code
 * (so "return err_set(e, EINVAL, ...)" reads naturally).  code must be > 0. */
int err_set(struct img_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set, and append ": strerror(code)". */
int err_set_errno(struct img_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context ("while relinking X: ") to an existing message. */
void err_prefix(struct img_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void err_clear(struct img_err *e);

/* Hand a local error up to the caller's (QEMU's error_propagate): copy
 * *from into e when e is non-NULL; returns -from->code (-EIO when from
 * holds no code).  For code that must read a message itself and so works
 * on a local struct img_err while its caller may pass NULL. */
int err_propagate(struct img_err *e, const struct img_err *from);

#endif
