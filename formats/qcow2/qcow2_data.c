/* qcow2_data.c - the external data file (incompatible feature bit 2):
 * guest data lives in another file at the host offsets of the L2 tables,
 * and every read and map of such data goes there, as QEMU's does.
 *
 * The name is recorded in the image, so whoever wrote the image chose it
 * (CVE-2024-32498: a data file naming a host file exposes that file through
 * every reader).  It is opened read-only, only inside the image's directory
 * (no absolute name, no ".." above it, no symlink out of it:
 * io_openat_beneath), and must be a regular file: the vmdk extent rule.
 * json: and protocol names are refused.  Writing an image with a data file
 * stays refused (decide_refusal in qcow2.c).
 */
#include "qcow2_int.h"
#include "formats/fmt_util.h"
#include "formats/io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A name QEMU would parse as a protocol ("nbd:...", "json:{...}"): a
 * colon before the first slash. */
static bool protocol_name(const char *name)
{
	const char *colon = strchr(name, ':');
	const char *slash = strchr(name, '/');

	return colon && (!slash || colon < slash);
}

static int refuse(struct img *img, const char *name, const char *why,
		  struct img_err *e)
{
	char shown[256];

	fmt_printable(name, strlen(name), shown, sizeof(shown));
	return err_set(e, EPERM, "%s: qcow2 data file '%s' %s (not opened)",
		       img->path, shown, why);
}

/* The image's directory, as an O_PATH descriptor. */
static int open_dir(struct img *img, int *dfd, struct img_err *e)
{
	const char *slash = strrchr(img->path, '/');
	char *dir = slash ? strndup(img->path, (size_t)(slash - img->path) + 1)
			  : strdup(".");
	int fd;

	if (!dir)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	fd = io_open(dir, O_PATH | O_DIRECTORY, 0);
	free(dir);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s: cannot open the image's "
				     "directory", img->path);
	*dfd = fd;
	return 0;
}

/* The path reads and maps name: the image's directory + name, as qemu-img
 * names it when run from that directory. */
static int set_path(struct img *img, struct qcow2_state *s, struct img_err *e)
{
	const char *slash = strrchr(img->path, '/');
	size_t n = slash ? (size_t)(slash - img->path) + 1 : 0;
	size_t l = strlen(s->data_file_name);

	s->data_path = malloc(n + l + 1);
	if (!s->data_path)
		return err_set(e, ENOMEM, "%s: out of memory", img->path);
	memcpy(s->data_path, img->path, n);
	memcpy(s->data_path + n, s->data_file_name, l + 1);
	return 0;
}

int qcow2_data_open(struct img *img, struct img_err *e)
{
	struct qcow2_state *s = img->priv;
	const char *name = s->data_file_name;
	struct stat st;
	int dfd = -1, fd, r;

	if (!(s->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return 0;
	if (!name || !*name)
		return refuse(img, "", "is empty", e);
	if (protocol_name(name))
		return refuse(img, name, "is a protocol or json: name", e);
	if (name[0] == '/')
		return refuse(img, name, "is an absolute path; a data file "
			      "must lie in the image's directory", e);
	r = open_dir(img, &dfd, e);
	if (r < 0)
		return r;
	fd = io_openat_beneath(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	io_close(dfd);
	if (fd == -EXDEV || fd == -ELOOP)
		return refuse(img, name, "leaves the image's directory", e);
	if (fd < 0)
		return err_set_errno(e, -fd, "%s: cannot open qcow2 data file "
				     "'%s'", img->path, name);
	if (io_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		io_close(fd);
		return refuse(img, name, "is not a regular file", e);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	s->data_fd = fd;
	return set_path(img, s, e);
}

void qcow2_data_close(struct qcow2_state *s)
{
	if (s->data_fd >= 0)
		io_close(s->data_fd);
	s->data_fd = -1;
	free(s->data_path);
	s->data_path = NULL;
}
