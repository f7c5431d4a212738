/* qcow2_craft.h - build small qcow2 images byte by byte for unit tests
 * (shared by test_qcow2_read.c and test_chain.c; header-only so that it is
 * not linked into every test binary).  Memory: struct craft owns c.b
 * (free it); images only need what reading uses (no refcounts).  Field
 * offsets come from the driver's formats/qcow2/qcow2_hdr.h. */
#ifndef IMGRAPH_TEST_QCOW2_CRAFT_H
#define IMGRAPH_TEST_QCOW2_CRAFT_H

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/format.h"
#include "formats/qcow2/qcow2_hdr.h"

/* ---- crafting ---------------------------------------------------------- */

#define CB 16
#define CS (1u << CB)

struct craft {
	uint8_t *b;
	size_t len;
};

static inline void cr_need(struct craft *c, size_t end)
{
	if (end > c->len) {
		c->b = realloc(c->b, end);
		ck_assert_ptr_nonnull(c->b);
		memset(c->b + c->len, 0, end - c->len);
		c->len = end;
	}
}

static inline void p64(struct craft *c, size_t off, uint64_t v)
{
	cr_need(c, off + 8);
	qcow2_put_be64(c->b + off, v);
}

static inline void p32(struct craft *c, size_t off, uint32_t v)
{
	cr_need(c, off + 4);
	qcow2_put_be32(c->b + off, v);
}

/* A version 3 header (QCOW2_HDR_V3_LEN bytes, 16-bit refcounts, no
 * backing file); cluster_bits cb, virtual size, L1 and refcount table. */
static inline void cr_header(struct craft *c, uint32_t cb, uint64_t size,
			     uint32_t l1_size, uint64_t l1_off,
			     uint64_t reft_off)
{
	cr_need(c, QCOW2_HDR_V3_LEN);
	p32(c, QCOW2_HDR_MAGIC, QCOW2_MAGIC);
	p32(c, QCOW2_HDR_VERSION, 3);
	p32(c, QCOW2_HDR_CLUSTER_BITS, cb);
	p64(c, QCOW2_HDR_SIZE, size);
	p32(c, QCOW2_HDR_L1_SIZE, l1_size);
	p64(c, QCOW2_HDR_L1_TABLE_OFFSET, l1_off);
	p64(c, QCOW2_HDR_REFCOUNT_TABLE_OFFSET, reft_off);
	p32(c, QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS, 1);
	p32(c, QCOW2_HDR_REFCOUNT_ORDER, 4);
	p32(c, QCOW2_HDR_HEADER_LENGTH, QCOW2_HDR_V3_LEN);
}

/* The first header extension record of a cr_header image. */
#define EXT0 QCOW2_HDR_V3_LEN

/* Write an extension record at pos; returns where the next one starts. */
static inline size_t cr_ext(struct craft *c, size_t pos, uint32_t type,
			    const void *data, uint32_t len)
{
	p32(c, pos + QCOW2_EXT_TYPE, type);
	p32(c, pos + QCOW2_EXT_LEN, len);
	cr_need(c, pos + QCOW2_EXT_DATA + len);
	if (len)
		memcpy(c->b + pos + QCOW2_EXT_DATA, data, len);
	return pos + QCOW2_EXT_DATA + ((len + 7u) & ~7u);
}

/* Point the header's backing name at len bytes of name stored at off. */
static inline void cr_backing_name(struct craft *c, size_t off,
				   const char *name, uint32_t len)
{
	p64(c, QCOW2_HDR_BACKING_FILE_OFFSET, off);
	p32(c, QCOW2_HDR_BACKING_FILE_SIZE, len);
	if (name) {
		cr_need(c, off + len);
		memcpy(c->b + off, name, len);
	}
}

/* Backing name (and backing-format extension when fmt is non-NULL), laid
 * out as qemu-img does: extensions, end marker, then the name. */
static inline void cr_backing(struct craft *c, const char *name,
			      const char *fmt)
{
	size_t off = EXT0;

	if (fmt)
		off = cr_ext(c, off, QCOW2_EXT_BACKING_FMT, fmt,
			     (uint32_t)strlen(fmt));
	off = cr_ext(c, off, QCOW2_EXT_END, NULL, 0);
	cr_backing_name(c, off, name, (uint32_t)strlen(name));
}

/* A v3 image with 64 KiB clusters: header, refcount table at 1 cluster,
 * L1 (one entry per 512 MiB) at 3 clusters, L2 table at 4 clusters; data
 * clusters from 5 on.  Refcounts are not needed for reading. */
static inline struct craft make_v3(uint64_t size)
{
	struct craft c = { 0 };
	uint32_t l1 = (uint32_t)((size + (512ull << 20) - 1) >> 29);

	cr_need(&c, 5 * CS);
	cr_header(&c, CB, size, l1, 3 * CS, 1 * CS);
	if (l1)
		p64(&c, 3 * CS, (4ull * CS) | QCOW2_OFLAG_COPIED);
	return c;
}

static inline void set_l2(struct craft *c, unsigned idx, uint64_t ent)
{
	p64(c, 4 * CS + idx * 8, ent);
}

static inline int memfd_of(const struct craft *c)
{
	int fd = memfd_create("crafted", 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, c->b, c->len, 0), (ssize_t)c->len);
	return fd;
}

static inline int open_craft(const struct craft *c, int flags, struct img **img,
		      struct img_err *e)
{
	int fd = memfd_of(c);
	int r = img_open_fd(fd, "crafted.qcow2", "qcow2", flags, img, NULL, e);
	close(fd);
	return r;
}

/* Open must fail and the message must name the file and contain want. */
static inline void expect_refused(struct craft *c, int flags, const char *want)
{
	struct img *img = NULL;
	struct img_err e = { 0 };
	int r = open_craft(c, flags, &img, &e);

	ck_assert_msg(r < 0, "opened, but wanted error '%s'", want);
	ck_assert_ptr_null(img);
	ck_assert_msg(strstr(e.msg, "crafted.qcow2") != NULL,
		      "message does not name the file: %s", e.msg);
	ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'",
		      e.msg, want);
	free(c->b);
}

static inline struct img *expect_open(struct craft *c, int flags)
{
	struct img *img = NULL;
	struct img_err e = { 0 };
	int r = open_craft(c, flags, &img, &e);

	ck_assert_msg(r == 0, "open failed: %s", e.msg);
	return img;
}

#endif
