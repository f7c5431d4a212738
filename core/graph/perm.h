/* perm.h - QEMU's block permission bits and the conflict rule.
 *
 * On one node, a conflict exists when some parent's perm is not inside
 * another parent's shared mask (block.c bdrv_a_allow_b).
 */
#ifndef IMGRAPH_PERM_H
#define IMGRAPH_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERM_CONSISTENT_READ  0x01
#define PERM_WRITE            0x02
#define PERM_WRITE_UNCHANGED  0x04
#define PERM_RESIZE           0x08
#define PERM_ALL              0x0f
#define PERM_NBITS            4          /* bits 0..3 above */

/* Offline backing link: what an overlay needs of its backing file. */
#define PERM_BACKING_PERM     PERM_CONSISTENT_READ
#define PERM_BACKING_SHARED   (PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED)

/* The bytes a QEMU process locks on an image's file for a node used with
 * (node_perm, node_shared): block.c bdrv_default_perms_for_storage for the
 * file child of a format with metadata (qcow2: consistent read always,
 * write and resize when writable, and nobody else may write or resize),
 * the filter pass-through for raw.  file-posix locks the result as bytes
 * 100+i (perm) and 200+i (not shared). */
void perm_file_locks(uint8_t node_perm, uint8_t node_shared, bool metadata,
		     bool writable, uint8_t *perm, uint8_t *shared);

/* "consistent read, write" (QEMU message names, comma-separated) into buf. */
const char *perm_names(uint8_t mask, char *buf, size_t len);
/* QAPI names ("consistent-read") parse/print, for the users file and JSON. */
int perm_parse_qapi(const char *name, uint8_t *bit);
const char *perm_qapi_name(uint8_t bit);

#endif
