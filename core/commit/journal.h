/* journal.h - the relink transaction's journal (format, parse, durable I/O).
 *
 * The journal lives next to base as
 * ".imgraph-journal-<base file name>" and holds, for every parent whose
 * header is rewritten, the OLD and NEW bytes of the rewritten range, so that
 * `imgraph recover` can finish or undo an interrupted relink.
 *
 * Format (text, one record per line, fields separated by one space, strings
 * and bytes in lowercase hex, "-" for none; every line ends with " *CRC"
 * where CRC is the zlib crc32 of the line's text before " *"):
 *
 *   imgraph-journal 1 *CRC
 *   tx TXID CREATED STATE *CRC                 STATE: PREPARED | RELINKED
 *   base DEV INO PATH FMT *CRC
 *   top DEV INO PATH FMT EMPTY *CRC           EMPTY 1: make top empty after
 *   users PATH OLDCRC NEWCRC OLD NEW *CRC      (optional) users file content
 *   live PID JOBID STAGE ACTIVE QMP N *CRC     (optional) a QEMU runs the
 *                                              copy: its block job; STAGE
 *                                              STARTED | FINALIZED
 *   lparent I DEV INO PATH *CRC                N overlays QEMU relinks
 *   parents N *CRC
 *   parent I DEV INO PATH HDRLEN OLDCRC NEWCRC OFF OLD NEW ONAME OFMT NNAME NFMT REL *CRC
 *   end CRC *                                  crc32 of every byte before it
 *
 * OLD/NEW are the bytes of file range [OFF, OFF+len) before and after the
 * rewrite (same length); OLDCRC/NEWCRC are crc32 of the whole header range
 * [0, HDRLEN) before and after, so a reader can tell "only the range
 * changed" (OLD/NEW/TORN) from "something else changed" (FOREIGN).
 * The parser rejects anything else (bad magic, CRC, counts, sizes, order);
 * a rejected journal is never acted on.
 *
 * Ownership: journal_parse/journal_read return an owned struct journal freed
 * by journal_free; every string and buffer inside belongs to it.
 */
#ifndef IMGRAPH_JOURNAL_H
#define IMGRAPH_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

#define JOURNAL_PREFIX       ".imgraph-journal-"
#define JOURNAL_VERSION      1
#define JOURNAL_MAX_PARENTS  4096
#define JOURNAL_MAX_RANGE    (256u << 10)   /* rewritten header bytes */
#define JOURNAL_MAX_HDRLEN   (2u << 20)     /* qcow2 cluster 0 at most */
#define JOURNAL_MAX_USERS    (1u << 20)     /* users file content */
#define JOURNAL_MAX_STR      4096
#define JOURNAL_MAX_LIVE     4096           /* overlays QEMU relinks */
#define JOURNAL_MAX_BYTES    (JOURNAL_MAX_PARENTS * 2ull * (JOURNAL_MAX_RANGE + 8192) + 4ull * JOURNAL_MAX_USERS)

enum journal_state {
	JOURNAL_PREPARED = 1,      /* no parent is known to be rewritten */
	JOURNAL_RELINKED = 2,      /* every parent and the users file are NEW */
};

struct journal_parent {
	char *path;
	uint64_t dev, ino;
	uint32_t hdr_len;          /* header range [0, hdr_len) covered by crcs */
	uint32_t old_crc, new_crc; /* crc32 of [0, hdr_len) before / after */
	uint32_t off, len;         /* rewritten range inside [0, hdr_len) */
	uint8_t *old_bytes, *new_bytes;
	char *old_name, *old_fmt;  /* NULL: none */
	char *new_name, *new_fmt;
	bool relative;
};

struct journal_users {
	char *path;                /* NULL: no users file change */
	uint8_t *old_data, *new_data;
	size_t old_len, new_len;
	uint32_t old_crc, new_crc;
};

/* A live commit (plan.live): QEMU's job copies and relinks the overlays
 * it has open; the parents records are the offline ones.  Until the job
 * is finalized recover cancels it and rolls back; after it (or when the
 * live parents already name base) it rolls forward. */
struct journal_lparent {
	uint64_t dev, ino;
	char *path;
};

struct journal_live {
	bool present;
	int64_t pid;
	char *job_id;
	char *qmp;                 /* the monitor socket */
	bool active;               /* active commit (pivot) */
	bool finalized;            /* job-finalize succeeded */
	struct journal_lparent *lp;
	int nlp;
};

struct journal {
	uint64_t txid;
	int64_t created;
	enum journal_state state;
	char *base_path, *base_fmt;
	uint64_t base_dev, base_ino;
	char *top_path, *top_fmt;
	uint64_t top_dev, top_ino;
	bool empty_top;            /* cleanup after RELINKED: make top empty */
	struct journal_users users;
	struct journal_live live;
	struct journal_parent *parents;
	int nparents;
};

/* Strictly parse a journal image.  Never reads outside buf; memory is
 * bounded by len.  On any error returns -EINVAL (e names the line and the
 * field) and *out stays NULL. */
int journal_parse(const char *buf, size_t len, struct journal **out,
		  struct img_err *e);
/* Render into a malloc'd buffer (*buf owned by the caller). */
int journal_render(const struct journal *j, char **buf, size_t *len,
		   struct img_err *e);
void journal_free(struct journal *j);

/* The journal path for a base image: same directory, JOURNAL_PREFIX + name. */
int journal_path_for(const char *base_path, char *out, size_t outlen,
		     struct img_err *e);
/* Durable replace of path (io_replace.h): a new journal or a new state is
 * on disk entirely or not at all. */
int journal_write(const char *path, const struct journal *j,
		  struct img_err *e);
/* Read and parse (files over JOURNAL_MAX_BYTES are refused). */
int journal_read(const char *path, struct journal **out, struct img_err *e);
/* unlink + fsync of the directory; a missing file is not an error. */
int journal_remove(const char *path, struct img_err *e);

/* Helpers shared with relink/recover. */
uint32_t journal_crc(const void *buf, size_t len);
/* Continue a crc32 over more bytes (journal_crc(a+b) ==
 * journal_crc_more(journal_crc(a), b)). */
uint32_t journal_crc_more(uint32_t crc, const void *buf, size_t len);

#endif
