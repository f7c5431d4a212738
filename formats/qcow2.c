/* qcow2.c - PLACEHOLDER ops table until the format issue lands. */
#include "qcow2_int.h"

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	if (len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC &&
	    (qcow2_be32(buf + 4) == 2 || qcow2_be32(buf + 4) == 3))
		return 100;
	return 0;
}

static int qcow2_open(struct img *img, int flags, struct img_err *e)
{
	(void)flags;
	return err_set(e, 95, "%s: qcow2 not built yet", img->path);
}

const struct img_format img_format_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
};
