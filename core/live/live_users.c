/* live_users.c - a QEMU's QMP monitor given by hand: the users file's
 * qmp: key (or --qmp), and whose monitor such a socket really is.
 *
 * A monitor from -readconfig, or added at run time, leaves no trace on
 * the command line; an entry of the users file can name it.  The entry
 * stands for the process that has its image open (by dev:ino, as
 * live_find sees every holder), so the socket belongs to that process.
 * The command line's own monitor wins; a libvirt domain's QEMU is never
 * given one (it is driven through libvirt only).
 */
#include "live_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph/users.h"
#include "qmp.h"

pid_t live_qmp_other_qemu(struct qmp *q, pid_t pid)
{
	pid_t peer = qmp_peer_pid(q);

	return peer > 0 && peer != pid && live_pid_is_qemu(peer) ? peer : 0;
}

bool live_pid_opens(pid_t pid, const char *path)
{
	struct live_report r;
	bool found = false;

	if (pid <= 0 || live_find(path, LIVE_NO_LIBVIRT_API, &r, NULL) < 0)
		return false;
	for (int i = 0; i < r.n; i++)
		found |= r.v[i].pid == pid;
	live_report_free(&r);
	return found;
}

int live_users_qmp(struct live_report *r, const struct users_file *uf,
		   struct img_err *e)
{
	for (int i = 0; uf && i < r->n; i++) {
		struct live_holder *h = &r->v[i];

		if (h->kind != LIVE_OTHER || h->prog == PROG_OTHER ||
		    h->qmp_path || h->pid <= 0)
			continue;
		for (int k = 0; k < uf->n; k++) {
			const struct users_entry *ent = &uf->v[k];

			if (!ent->qmp || !live_pid_opens(h->pid, ent->path))
				continue;
			h->qmp_path = strdup(ent->qmp);
			if (!h->qmp_path)
				return err_set(e, ENOMEM, "live holders: out "
					       "of memory");
			h->kind = LIVE_QMP;
			h->qmp_how = "qmp: of a users-file entry whose image "
				     "it has open";
			h->note = NULL;
			break;
		}
	}
	return 0;
}
