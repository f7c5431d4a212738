/* resolve.h - backing-name resolution, as QEMU does it.
 *
 * Empty name: no backing file.  A ':' before the first '/' (json:, nbd:,
 * http:, file: ...): external, never opened.  Absolute: as is.  Relative:
 * against the directory of the overlay that holds the name (never the CWD).
 */
#ifndef IMGRAPH_RESOLVE_H
#define IMGRAPH_RESOLVE_H

#include <stddef.h>
#include "formats/io/err.h"

enum resolve_kind {
	RESOLVE_NONE,              /* no backing file */
	RESOLVE_FILE,              /* out holds the path to open */
	RESOLVE_EXTERNAL,          /* protocol or json: name; not opened */
};

/* out receives the resolved path (not normalised beyond joining). */
int resolve_backing(const char *overlay_path, const char *name, char *out,
		    size_t outlen, enum resolve_kind *kind, struct img_err *e);

/* The backing string an overlay at overlay_path should store to reach
 * target_path: relative (to the overlay's directory) when relative is true,
 * else absolute.  Used for relinks: "relative stays relative". */
int resolve_make_name(const char *overlay_path, const char *target_path,
		      int relative, char *out, size_t outlen,
		      struct img_err *e);

/* True for a name that says "raw disk" (*.raw, *.img): such a file that
 * carries an image header was most likely written by a guest, so when its
 * format is only probed, its backing reference is never followed. */
int resolve_raw_disk_name(const char *path);

#endif
