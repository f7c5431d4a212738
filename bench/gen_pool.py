#!/usr/bin/env python3
"""gen_pool.py DIR N [DEPTH] - write a pool of N real qcow2 images into DIR:
N/DEPTH chains, each DEPTH layers deep (c00000-l00.qcow2 <- c00000-l01 ...),
every tenth chain with a sibling branch at layer 1.  Two templates are made
by qemu-img (a base, and an overlay naming a fixed-length placeholder), and
every file is a copy of one with its backing name bytes replaced, so the
pool is made in seconds and every image is one qemu-img itself wrote."""
import os
import struct
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, n = sys.argv[1], int(sys.argv[2])
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    os.makedirs(out, exist_ok=True)
    name = lambda c, l: "c%05d-l%02d.qcow2" % (c, l)
    with tempfile.TemporaryDirectory() as td:
        base_t = os.path.join(td, "base.qcow2")
        ov_t = os.path.join(td, "ov.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base_t,
                        "64M"], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u",
                        "-b", name(0, 0), "-F", "qcow2", ov_t, "64M"],
                       check=True)
        base = open(base_t, "rb").read()
        ov = bytearray(open(ov_t, "rb").read())
    off, size = struct.unpack(">QI", bytes(ov[8:20]))
    assert size == len(name(0, 0))
    made = 0
    c = 0
    while made < n:
        for l in range(depth):
            if made >= n:
                break
            path = os.path.join(out, name(c, l))
            if l == 0:
                data = base
            else:
                ov[off:off + size] = name(c, l - 1).encode()
                data = ov
            with open(path, "wb") as f:
                f.write(data)
            made += 1
        if c % 10 == 0 and made < n and depth > 2:
            ov[off:off + size] = name(c, 1).encode()
            with open(os.path.join(out, "c%05d-sb.qcow2" % c), "wb") as f:
                f.write(ov)
            made += 1
        c += 1
    print("%d images in %s" % (made, out))


main()
