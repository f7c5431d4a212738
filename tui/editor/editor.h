/* editor.h - what the rest of the program calls in the editor library
 * (libimgraph-editor.a): run the interactive editor on options the CLI has
 * parsed, and build the teaching pool behind `imgraph --demo`. */
#ifndef IMGRAPH_EDITOR_H
#define IMGRAPH_EDITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"
#include "core/graph/chain.h"

enum editor_color {
	EDITOR_COLOR_AUTO,         /* on unless NO_COLOR is set (non-empty) */
	EDITOR_COLOR_ALWAYS,
	EDITOR_COLOR_NEVER,
};

struct editor_opts {
	char *const *paths;        /* the pool; npaths == 0 means "." */
	int npaths;
	bool recursive;            /* -r */
	const char *users_file;    /* --users, NULL: none */
	bool ascii;                /* ASCII lines instead of box drawing */
	bool mouse;
	enum editor_color color;
	uint64_t rate;             /* commit copy limit, bytes/s; 0: none */
	/* How to read the images, as `imgraph plan` takes them (the shared
	 * option table of cli_plan.h): --format FILE=FMT statements,
	 * --base-format (for the base marked, or top's backing file),
	 * --base-is-raw and --ignore-unverified FILEs. */
	const struct fmt_stated *stated;
	int nstated;
	const char *base_format;
	bool base_is_raw;
	char *const *ignore_unverified;
	int nignore_unverified;
	/* Steps to try (demo_lessons), shown in a guide when the editor
	 * opens and on the first page of help; NULL: none. */
	const char *guide;
};

/* Open the editor on the terminal (stdin and stdout must be one: the
 * caller checks) and run it until the user quits.  Returns the exit
 * status the process should end with: 0, or 128 + n when signal n ended
 * it; a negative errno with e filled when the terminal could not be set
 * up. */
int editor_run(const struct editor_opts *o, struct img_err *e);

/* Build the teaching pool in dir (created when missing; must be empty), or
 * in a new mktemp directory when dir is NULL.  The directory used is
 * written to out.  Runs qemu-img/qemu-io; stdout lines of those tools are
 * discarded.  0 or -errno with e filled (names qemu-utils when the tools
 * are missing). */
int demo_build(const char *dir, char *out, size_t outlen, struct img_err *e);
/* What to try in the demo pool, for the user (static text). */
extern const char demo_lessons[];

#endif
