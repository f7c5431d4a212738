/* luks_hdr.h - the LUKS1 header: parsed and checked as QEMU's LUKS code
 * checks it, for the luks driver and for the "encrypt" info of a qcow2
 * image with a LUKS header.  No key handling: nothing here decrypts.
 */
#ifndef IMGRAPH_LUKS_HDR_H
#define IMGRAPH_LUKS_HDR_H

#include <stddef.h>
#include <stdint.h>

#include "formats/format.h"

#define LUKS_HDR_SIZE     592u     /* the fixed header, key slots included */
#define LUKS_MAGIC_LEN    6

extern const uint8_t luks_magic[LUKS_MAGIC_LEN];

struct luks_hdr {
	/* What info shows; its strings point into this struct, so a
	 * struct luks_hdr must not be copied after luks_parse(). */
	struct img_encrypt_info info;
	char cipher_alg[24], uuid[41];
	uint32_t payload_sectors;      /* payload offset, 512-byte sectors */
	uint32_t key_bytes;
};

/* Parse buf[0..len) (the first bytes of the header) into h.  Every check
 * QEMU makes before it asks for a key is made here, and a failure names
 * path and the field; kind prefixes the field ("luks", "qcow2 LUKS").
 * -EINVAL (bad header), -ENOTSUP (valid, but a version or algorithm QEMU
 * does not support). */
int luks_parse(struct luks_hdr *h, const uint8_t *buf, size_t len,
	       const char *path, const char *kind, struct img_err *e);

#endif
