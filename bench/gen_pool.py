#!/usr/bin/env python3
"""gen_pool.py DIR N [DEPTH] [--shape chains|wide] [--cluster-size BYTES]
[--size BYTES] - write a pool of N real qcow2 images into DIR.

  chains (default): N/DEPTH chains, each DEPTH layers deep (DEPTH <= 100;
      c00000-l00.qcow2 <- c00000-l01 ...), every tenth chain with a sibling
      branch at layer 1 (c00000-sb.qcow2);
  wide: templates with many clones: N/DEPTH templates (t0000-base.qcow2),
      each with DEPTH-1 overlays on it (t0000-c00001.qcow2 ...).

Two templates are made by qemu-img (a base, and an overlay naming a
fixed-length placeholder) with the cluster size and virtual size asked
(default 64 KiB and 64 MiB), and every file is a copy of one with its
backing name bytes replaced, so the pool is made in seconds and every image
is one qemu-img itself wrote.  Files are written sparse (runs of zeros,
such as a large L1 table, are holes), so 100,000 images of 1 GiB with
512-byte clusters fit on a small disk."""
import argparse
import os
import struct
import subprocess
import tempfile

BLOCK = 4096


def write_sparse(path, data):
    """Write data with its all-zero 4 KiB blocks left as holes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        zero = bytes(BLOCK)
        for off in range(0, len(data), BLOCK):
            blk = data[off:off + BLOCK]
            if blk != zero[:len(blk)]:
                os.pwrite(fd, blk, off)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def templates(td, cluster, size, placeholder):
    base_t = os.path.join(td, "base.qcow2")
    ov_t = os.path.join(td, "ov.qcow2")
    opt = ["-o", "cluster_size=%d" % cluster]
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2"] + opt +
                   [base_t, str(size)], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2"] + opt +
                   ["-u", "-b", placeholder, "-F", "qcow2", ov_t, str(size)],
                   check=True)
    base = open(base_t, "rb").read()
    ov = bytearray(open(ov_t, "rb").read())
    off, nlen = struct.unpack(">QI", bytes(ov[8:20]))
    assert nlen == len(placeholder)
    return base, ov, off, nlen


def plan_chains(n, depth):
    """(name, backing name or None) for the chains shape."""
    name = lambda c, l: "c%05d-l%02d.qcow2" % (c, l)
    made, c = 0, 0
    while made < n:
        for l in range(depth):
            if made >= n:
                break
            yield name(c, l), (name(c, l - 1) if l else None)
            made += 1
        if c % 10 == 0 and made < n and depth > 2:
            yield "c%05d-sb.qcow2" % c, name(c, 1)
            made += 1
        c += 1


def plan_wide(n, per):
    made, t = 0, 0
    while made < n:
        base = "t%04d-base.qcow2" % t
        yield base, None
        made += 1
        for k in range(1, per):
            if made >= n:
                break
            yield "t%04d-c%05d.qcow2" % (t, k), base
            made += 1
        t += 1


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("dir")
    ap.add_argument("n", type=int)
    ap.add_argument("depth", type=int, nargs="?", default=10,
                    help="layers per chain, or images per template (wide)")
    ap.add_argument("--shape", choices=("chains", "wide"), default="chains")
    ap.add_argument("--cluster-size", type=int, default=65536)
    ap.add_argument("--size", type=int, default=64 << 20)
    a = ap.parse_args()
    if a.shape == "chains":
        assert 1 <= a.depth <= 100, "DEPTH must be 1..100"
        plan, ph = plan_chains(a.n, a.depth), "c00000-l00.qcow2"
    else:
        assert a.depth >= 1
        plan, ph = plan_wide(a.n, a.depth), "t0000-base.qcow2"
    os.makedirs(a.dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        base, ov, off, nlen = templates(td, a.cluster_size, a.size, ph)
    made = 0
    for name, backing in plan:
        if backing is None:
            data = base
        else:
            assert len(backing) == nlen
            ov[off:off + nlen] = backing.encode()
            data = ov
        write_sparse(os.path.join(a.dir, name), data)
        made += 1
    print("%d images in %s" % (made, a.dir))


main()
