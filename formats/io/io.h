/* io.h - the single I/O layer.
 *
 * Every file operation of core/ and formats/ goes through these functions, so
 * that tests can count mutating operations and inject faults at any of them:
 *
 *   IMGRAPH_FAULT=count          at exit, write the number of mutating ops
 *                                to $IMGRAPH_FAULT_OUT (or stderr)
 *   IMGRAPH_FAULT=kill:K         SIGKILL ourselves just before mutating op K
 *   IMGRAPH_FAULT=kill:K:after   ... just after mutating op K
 *   IMGRAPH_FAULT=err:K:EIO      fail mutating op K once with EIO (or ENOSPC)
 *   IMGRAPH_FAULT=err:K:ENOSPC:always   fail op K and every later one
 *   IMGRAPH_FAULT=short:K        make mutating op K (a write) write half
 *   IMGRAPH_FAULT=rerr:K:EIO     fail read op K (reads are counted apart)
 *   IMGRAPH_FAULT=rshort:K[:N]   make read op K return N bytes (default
 *                                half of what it asks for), as if the
 *                                file ended there
 *   IMGRAPH_FAULT=cut:K:SEED     power cut at op K (see io_cut.h)
 *   IMGRAPH_FAULT_FILE=PATH      with any mode: only the ops on the file
 *                                PATH names (by dev:ino, from start-up:
 *                                writes, syncs, truncates, punches,
 *                                copies into it) count, and only they
 *                                fail: ENOSPC on one file system, say
 *
 * Ops are numbered from 1.  Mutating ops: pwrite, fdatasync, fsync, ftruncate,
 * fallocate, rename, unlink, mkdir, and open with O_CREAT (and their *at
 * forms).
 *
 * All functions return >= 0 on success and -errno on failure; they never
 * print and never set an img_err (callers add file and field context).
 * Reads and writes loop over EINTR and short transfers.
 */
#ifndef IMGRAPH_IO_H
#define IMGRAPH_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* open(2) with O_CLOEXEC always added. Returns fd or -errno. */
int io_open(const char *path, int flags, mode_t mode);
/* Open name relative to the directory dirfd without ever leaving it: no
 * absolute name, no ".." above it, no symlink pointing outside (openat2
 * with RESOLVE_BENEATH; on kernels without openat2, the name is checked
 * lexically and a final symlink is not followed).  O_CLOEXEC is added;
 * O_CREAT is refused (-EINVAL).  -EXDEV when name would leave dirfd. */
int io_openat_beneath(int dirfd, const char *name, int flags);
int io_close(int fd);
int io_fstat(int fd, struct stat *st);

/* Read up to n bytes at off; returns the number read (short only at EOF). */
ssize_t io_pread(int fd, void *buf, size_t n, uint64_t off);
/* Read exactly n bytes; -EIO ("truncated") when EOF comes first. */
int io_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Write exactly n bytes (one logical mutating op). */
int io_pwrite(int fd, const void *buf, size_t n, uint64_t off);

int io_fdatasync(int fd);
int io_fsync(int fd);
int io_ftruncate(int fd, uint64_t len);
/* Deallocate [off, off+len) keeping the size; -EOPNOTSUPP when the file
 * system cannot punch holes (the caller then writes zeros). */
int io_punch_hole(int fd, uint64_t off, uint64_t len);
int io_rename(const char *from, const char *to);
int io_unlink(const char *path);
/* fsync the directory that contains path (after create/rename/unlink). */
int io_fsync_dir_of(const char *path);

/* The same, relative to directory fds (AT_FDCWD allowed), for callers that
 * must not follow a symlink planted in a path (the trash).  io_openat is
 * openat(2) with O_CLOEXEC added (a mutating op with O_CREAT); mkdirat,
 * renameat and unlinkat are mutating ops.  noreplace: fail with -EEXIST
 * rather than replace an existing name (renameat2 RENAME_NOREPLACE).
 * io_unlinkat with AT_REMOVEDIR removes an empty directory. */
int io_openat(int dirfd, const char *name, int flags, mode_t mode);
int io_mkdirat(int dirfd, const char *name, mode_t mode);
int io_renameat(int fromfd, const char *from, int tofd, const char *to,
		int noreplace);
int io_unlinkat(int dirfd, const char *name, int flags);

/* Read a whole regular file of at most max bytes into a malloc'd,
 * NUL-terminated buffer (*buf, owned by the caller; *len excludes the NUL).
 * Never blocks on a FIFO and never follows a final symlink when nofollow.
 * -EINVAL: not a regular file; -EFBIG: larger than max; else -errno. */
int io_read_file(const char *path, size_t max, int nofollow, char **buf,
		 size_t *len);

/* Ask the kernel to start writing back dirty pages of fd now (no
 * durability promise, no mutating op: errors surface at the next sync). */
void io_writeback_hint(int fd);

/* Ways to make a range of one file hold the bytes of a range of another,
 * cheapest first. */
enum io_copy_how {
	IO_COPY_CLONE = 0,      /* share the extents (FICLONERANGE): no data
				   moves, the file system counts references */
	IO_COPY_CFR = 1,        /* copy_file_range: one copy in the kernel,
				   on the server for NFS 4.2 */
	IO_COPY_RW = 2,         /* read and write through a bounce buffer */
};
#define IO_COPY_HOWS 3

/* One pair of files copied between (zero it, then set first): the first
 * method to try, what their file system refused for good (EXDEV,
 * EOPNOTSUPP: bit 1 << how; never tried again), and the bytes each way
 * moved. */
struct io_copy_ctx {
	int first;
	unsigned refused;
	uint64_t bytes[IO_COPY_HOWS];
};

/* Make dst's [doff, doff+n) hold src's [soff, soff+n): ONE mutating op (of
 * dst; fault and power-cut modes see it as a write of that range).  Tries
 * the methods from ctx->first on, skipping those ctx->refused, each falling
 * back to the next when the file system refuses it (for the files: EXDEV,
 * EOPNOTSUPP, ENOTTY, ENOSYS, remembered in ctx; for this range only:
 * EINVAL, an unaligned clone).  The bytes read past src's end are an
 * error (-EIO), never zeros.  Durable like a write: after an fdatasync of
 * dst.  Returns the method that did it (enum io_copy_how) or -errno. */
int io_copy_range(int dst, uint64_t doff, int src, uint64_t soff,
		  uint64_t n, struct io_copy_ctx *ctx);

/* The first method worth trying from src into dst, asking the kernel
 * without changing anything: CLONE when both are on one file system that
 * shares extents (btrfs, XFS with reflink) and blocks of that file system
 * divide align; CFR when both are on one file system; else RW.  Ranges
 * may still fall back (io_copy_range). */
int io_copy_predict(int src, int dst, uint64_t align);

/* Re-read IMGRAPH_FAULT and reset the op counters (for tests that set the
 * variable after start-up, e.g. in a forked child).  IMGRAPH_FAULT is read
 * here and at start-up only; "cut" starts the simulator itself. */
void io_fault_reload(void);

/* True when IMGRAPH_FAULT asks for anything: the ops it counts must then
 * happen in one order from run to run (no work spread over threads). */
bool io_faults_armed(void);

/* Number of mutating ops performed so far (for tests and progress). */
uint64_t io_mutating_ops(void);

#endif
