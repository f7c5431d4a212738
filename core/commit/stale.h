/* stale.h - the stale record: what earlier commits into a base left
 * behind, kept durably beside base (never inside an image header: nothing
 * of QEMU's reads it).
 *
 * Once a commit writes into base, every intermediate between top and base
 * no longer shows what it showed (its own clusters over base's new data),
 * and once its parents name base, top is read by nothing.  The record
 * (".imgraph-stale-<base file name>.rec": the suffix keeps it out of
 * globs for images) names those images by dev:ino, per commit transaction (the journal's
 * txid), so that every later run can mark them:
 *
 *   PENDING  written before the first byte of base changes: the
 *            intermediates are stale from then on, but top and its
 *            chain still serve top's parents (a retry of the same
 *            commit is allowed);
 *   DONE     written once every parent names base (before the journal
 *            goes, so a crash cannot lose it; `imgraph recover` sets it
 *            after finishing a relink, and back to PENDING after rolling
 *            one back): top, when the commit did not keep it, is unused.
 *
 * Text form (rectext.h):
 *   imgraph-stale 1 *CRC
 *   base DEV INO PATH *CRC
 *   tx TXID CREATED STATE TOPDEV TOPINO N *CRC      STATE: PENDING | DONE
 *   img ROLE DEV INO PATH *CRC                      ROLE: inter | top
 *   prot DONE N TOPPATH *CRC                        (optional, version 2)
 *   reader DEV INO PATH *CRC                        N of them
 *   end CRC
 * The prot line is commit --protect's journal of its protection
 * (protect.h): every range below DONE that the copy writes into base is
 * held, flushed, by each reader listed.  It is written before the first
 * byte of base changes and again as the copy moves on (never ahead of the
 * readers' fdatasync), dropped when the transaction is DONE.  A record
 * without it (version 1, as every earlier imgraph wrote) reads as before;
 * version 2 is written only when a transaction has one.
 * An image whose path now holds another file (dev:ino differ) is dropped
 * when the record is next written; one that is gone is kept (the trash may
 * give it back) but marks nothing while it is gone.
 *
 * Ownership: stale_parse/stale_read return an owned record freed by
 * stale_free; every string and array inside belongs to it.
 */
#ifndef IMGRAPH_STALE_H
#define IMGRAPH_STALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/io/err.h"

#define STALE_PREFIX     ".imgraph-stale-"
#define STALE_SUFFIX     ".rec"
#define STALE_MAX_TX     256          /* the oldest go first */
#define STALE_MAX_IMGS   4096         /* per transaction */
#define STALE_MAX_STR    4096
#define STALE_MAX_BYTES  (16u << 20)

enum stale_state { STALE_PENDING = 1, STALE_DONE = 2 };
enum stale_role { STALE_INTER = 1, STALE_TOP = 2 };

struct stale_img {
	enum stale_role role;
	uint64_t dev, ino;
	char *path;                /* absolute, as when recorded */
};

/* A reader commit --protect protected (the prot line). */
struct stale_reader {
	uint64_t dev, ino;
	char *path;
};

struct stale_tx {
	uint64_t txid;
	int64_t created;
	enum stale_state state;
	uint64_t top_dev, top_ino; /* the commit's top (a retry's key) */
	struct stale_img *v;
	int n;
	/* commit --protect's progress (the prot line); prot false: none */
	bool prot;
	uint64_t prot_done;        /* protected in every reader below this */
	char *prot_top;            /* top's path, for recover's report */
	struct stale_reader *rd;
	int nrd;
};

struct stale_record {
	uint64_t base_dev, base_ino;
	char *base_path;
	struct stale_tx *tx;       /* oldest first */
	int ntx;
};

/* Free what transaction t owns (not t itself). */
void stale_tx_clear(struct stale_tx *t);
int stale_parse(const char *buf, size_t len, struct stale_record **out,
		struct img_err *e);
int stale_render(const struct stale_record *r, char **buf, size_t *len,
		 struct img_err *e);
void stale_free(struct stale_record *r);

/* The record's path for a base image: same directory, STALE_PREFIX +
 * name + STALE_SUFFIX. */
int stale_path_for(const char *base_path, char *out, size_t outlen,
		   struct img_err *e);
/* Read and parse; -ENOENT (e filled) when there is none, -EINVAL when it
 * is not a valid record. */
int stale_read(const char *path, struct stale_record **out,
	       struct img_err *e);

/* Add transaction tx (state PENDING; its strings are copied) to the record
 * beside base_path (base_dev:base_ino), durably (io_replace.h).  A record
 * for another file at base's name is replaced; earlier PENDING
 * transactions of the same top are folded into this one; images whose
 * path holds another file now are dropped. */
int stale_begin(const char *base_path, uint64_t base_dev, uint64_t base_ino,
		const struct stale_tx *tx, struct img_err *e);
/* Set transaction txid of the record beside base_path to state, durably.
 * No record, another base, or no such transaction: nothing to do (0). */
int stale_set_state(const char *base_path, uint64_t base_dev,
		    uint64_t base_ino, uint64_t txid, enum stale_state state,
		    struct img_err *e);

/* commit --protect's progress of transaction txid: every reader in
 * rd[0..nrd) holds (flushed) what the copy writes below done.  Durable
 * (io_replace.h); no such PENDING transaction: nothing to do (0). */
int stale_set_prot(const char *base_path, uint64_t base_dev,
		   uint64_t base_ino, uint64_t txid, uint64_t done,
		   const struct stale_reader *rd, int nrd, struct img_err *e);
/* The PENDING transaction of top (top_dev:top_ino) with a prot line in
 * the record beside base_path: 1 and *out (a copy, stale_tx_clear) when
 * there is one, 0 when not. */
int stale_find_prot(const char *base_path, uint64_t base_dev,
		    uint64_t base_ino, uint64_t top_dev, uint64_t top_ino,
		    struct stale_tx *out, struct img_err *e);

#endif
