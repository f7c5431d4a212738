/* luks.c - the luks format (a LUKS1 header, then the encrypted payload), as
 * QEMU's "luks" driver sees it: virtual size = file size - payload offset.
 *
 * Read-only and keyless: info and block status work (every byte of the
 * payload is data, as QEMU reports it); reading guest data needs the key,
 * so pread refuses with a message that says so.  Probing claims the LUKS
 * magic whatever the version, so that a LUKS2 volume is refused by name
 * instead of being taken for raw data that a commit could overwrite.
 */
#include "format.h"
#include "fmt_util.h"
#include "luks_hdr.h"
#include "formats/io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct luks_state {
	struct luks_hdr h;
	uint64_t file_size;
};

static int luks_probe(const uint8_t *buf, size_t len)
{
	return len >= LUKS_MAGIC_LEN && !memcmp(buf, luks_magic,
						LUKS_MAGIC_LEN) ? 100 : 0;
}

static int luks_open(struct img *img, int flags, struct img_err *e)
{
	uint8_t buf[LUKS_HDR_SIZE];
	struct luks_state *s;
	struct stat st;
	ssize_t n;
	int r;

	(void)flags;       /* read-write opens are refused by img_open_drv */
	r = io_fstat(img->fd, &st);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot stat", img->path);
	n = io_pread(img->fd, buf, sizeof(buf), 0);
	if (n < 0)
		return err_set_errno(e, (int)-n, "%s: cannot read the LUKS "
				     "header", img->path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	r = luks_parse(&s->h, buf, (size_t)n, img->path, "luks", e);
	s->file_size = (uint64_t)st.st_size;
	if (r == 0 && s->h.info.payload_offset > s->file_size)
		r = fmt_bad_field(e, img->path, "luks", "payload_offset",
				  "is %llu bytes; past the end of the file "
				  "(%llu bytes)",
				  (unsigned long long)s->h.info.payload_offset,
				  (unsigned long long)s->file_size);
	if (r < 0) {
		free(s);
		return r;
	}
	img->priv = s;
	img->virtual_size = s->file_size - s->h.info.payload_offset;
	return 0;
}

static void luks_close(struct img *img)
{
	free(img->priv);
	img->priv = NULL;
}

static int luks_get_info(struct img *img, struct img_info *o,
			 struct img_err *e)
{
	struct luks_state *s = img->priv;
	int r = img_info_base(img, o, e);

	if (r < 0)
		return r;
	o->encrypted = true;
	o->encrypt = &s->h.info;
	o->write_refusal = "the image is LUKS-encrypted; its data can only "
			   "be read or written with the key, which imgraph "
			   "does not take";
	return 0;
}

/* Every payload byte is stored (QEMU's answer for a driver without block
 * status of its own). */
static int luks_block_status(struct img *img, uint64_t off, uint64_t len,
			     uint64_t *pnum, struct img_err *e)
{
	(void)e;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	*pnum = len;
	return IMG_BS_DATA;
}

static int luks_pread(struct img *img, uint64_t off, void *buf, size_t len,
		      struct img_err *e)
{
	(void)off;
	(void)buf;
	(void)len;
	return err_set(e, ENOTSUP, "%s: the luks image's data is encrypted; "
		       "reading it needs the key (QEMU's key-secret), which "
		       "imgraph does not take", img->path);
}

const struct img_format img_format_luks = {
	.name = "luks",
	.probe = luks_probe,
	.open = luks_open,
	.close = luks_close,
	.get_info = luks_get_info,
	.block_status = luks_block_status,
	.pread = luks_pread,
};
