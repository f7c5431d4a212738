#!/usr/bin/env bash
# formats_read.sh - the qcow2 read side, judged by qemu-img.
#
# For images made by qemu-img/qemu-io (v2, v3, cluster sizes 512 B..2 MiB,
# extended L2, refcount widths 1 and 64, compressed and zero clusters,
# backing chains of 2-3 layers, data past 4 GiB):
#   * `imgraph map --output=json` equals `qemu-img map --output=json` on
#     start/length/depth/present/zero/data/offset (both split at the union of
#     their extent boundaries, so only a different merge could hide, never
#     fake, a difference);
#   * the guest view read through core/graph/chain.c equals `qemu-img convert
#     -O raw` (tests/tools/fmt_tool.c compare);
#   * `imgraph info --output=json` equals `qemu-img info --output=json` on
#     every key qemu-img prints.
# IMGRAPH_LONG=1 adds more cluster sizes and a bigger image.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/lib_formats.sh"

# A mixed workload: data, partial clusters, zeros, discard, compressed.
fill() { # IMG CLUSTER
	local f=$1 cs=$2
	qio "$f" -c "write -P 0x11 0 $((cs * 3))" \
		-c "write -P 0x22 $((cs * 5 + 512)) 1536" \
		-c "write -z $((cs * 8)) $((cs * 2))" \
		-c "write -P 0x44 $((cs * 12)) $cs" \
		-c "discard $((cs * 12)) $cs" \
		-c "write -c -P 0x33 $((cs * 16)) $cs" \
		-c "write -P 0x55 $((cs * 20)) $((cs * 4))"
}

sizes="512 4096 65536 2097152"
[ "${IMGRAPH_LONG:-0}" = 1 ] && sizes="512 1024 4096 16384 65536 262144 2097152"
for cs in $sizes; do
	mkq "$T/c$cs.qcow2" $((cs * 64)) "" -o cluster_size=$cs
	fill "$T/c$cs.qcow2" "$cs"
	all3 "v3 cluster $cs" "$T/c$cs.qcow2"
done

mkq "$T/v2.qcow2" 4M "" -o compat=0.10
fill "$T/v2.qcow2" 65536
all3 "v2 (compat=0.10)" "$T/v2.qcow2"

mkq "$T/xl2.qcow2" 8M "" -o extended_l2=on
qio "$T/xl2.qcow2" -c "write -P 0x11 8k 4k" -c "write -z 64k 2k" \
	-c "write -P 0x22 1M 64k" -c "write -z 2M 64k" -c "write -c -P 0x33 3M 64k" \
	-c "write -P 0x44 4M 2k" -c "write -P 0x45 4100k 6k"
all3 "extended_l2=on" "$T/xl2.qcow2"

mkq "$T/xl2s.qcow2" 4M "" -o extended_l2=on,cluster_size=16k
qio "$T/xl2s.qcow2" -c "write -P 0x11 512 1k" -c "write -z 16k 512" -c "write -P 7 100k 9k"
all3 "extended_l2 16k clusters" "$T/xl2s.qcow2"

for rb in 1 64; do
	mkq "$T/rb$rb.qcow2" 4M "" -o refcount_bits=$rb
	fill "$T/rb$rb.qcow2" 65536
	all3 "refcount_bits=$rb" "$T/rb$rb.qcow2"
done

# qemu-img convert -c: every cluster compressed
qemu-img create -q -f raw "$T/src.raw" 4M
qemu-io -f raw -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 512k" "$T/src.raw" >/dev/null
qemu-img convert -c -O qcow2 "$T/src.raw" "$T/conv.qcow2"
all3 "convert -c" "$T/conv.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=4k "$T/src.raw" "$T/conv4k.qcow2"
all3 "convert -c 4k clusters" "$T/conv4k.qcow2"

# Chains: raw <- qcow2 (v2) <- qcow2 (v3), zero clusters over backing data,
# a top larger than its backing file (zeros past the backing file's end).
qemu-img create -q -f raw "$T/base.raw" 2M
qemu-io -f raw -c "write -P 0xb0 0 2M" "$T/base.raw" >/dev/null
mkq "$T/mid.qcow2" 2M base.raw raw -o compat=0.10
qio "$T/mid.qcow2" -c "write -P 0x21 64k 64k" -c "write -z 256k 64k"
mkq "$T/top.qcow2" 6M mid.qcow2 qcow2
qio "$T/top.qcow2" -c "write -z 0 64k" -c "write -P 0x31 128k 4k" \
	-c "write -z 512k 64k" -c "write -P 0x32 3M 64k"
all3 "3-layer chain raw<-v2<-v3" "$T/top.qcow2"
map_same "chain middle" "$T/mid.qcow2"

# Metadata preallocation: every cluster is counted but the file is sparse,
# so QEMU (and the qcow2 driver's map_status, with QEMU's heuristic) ask
# the file system and report the holes under data as zeros.  A plain image
# with a hole punched under a data cluster is below the heuristic's
# threshold: no question asked, the cluster stays plain data.
qemu-img create -q -f qcow2 -o preallocation=metadata "$T/pm.qcow2" 4M
qio "$T/pm.qcow2" -c "write -P 0x11 1M 64k"
all3 "preallocation=metadata" "$T/pm.qcow2"
mkq "$T/hole.qcow2" 4M
qio "$T/hole.qcow2" -c "write -P 0x12 0 1M"
fallocate -p -o $((5 * 65536)) -l 65536 "$T/hole.qcow2" 2>/dev/null
map_same "data cluster over a hole, no preallocation" "$T/hole.qcow2"

# A sparse raw file alone and under a larger overlay (holes are zero extents
# with offsets, as qemu-img reports them).
truncate -s 4M "$T/sparse.raw"
printf 'abc' | dd of="$T/sparse.raw" bs=1 seek=1048576 conv=notrunc status=none
map_same "sparse raw" "$T/sparse.raw"
info_same "sparse raw" "$T/sparse.raw"
mkq "$T/over-raw.qcow2" 8M sparse.raw raw
qio "$T/over-raw.qcow2" -c "write -P 0x41 2M 64k"
all3 "qcow2 over sparse raw, larger" "$T/over-raw.qcow2"

mkq "$T/b2.qcow2" 4M "" -o cluster_size=4k
qio "$T/b2.qcow2" -c "write -P 0x12 0 1M" -c "write -c -P 0x13 2M 64k"
mkq "$T/t2.qcow2" 4M b2.qcow2 qcow2 -o extended_l2=on
qio "$T/t2.qcow2" -c "write -P 0x14 8k 2k" -c "write -z 512k 4k" -c "write -P 0x15 2M 10k"
all3 "2-layer chain, extended L2 over 4k clusters" "$T/t2.qcow2"

# Data past 4 GiB (32-bit truncation would show here).
big=$((4096 + 128))M
[ "${IMGRAPH_LONG:-0}" = 1 ] && big=12G
mkq "$T/big.qcow2" "$big"
qio "$T/big.qcow2" -c "write -P 0x66 4G 64k" -c "write -P 0x67 $((4096 + 100))M 4k" -c "write -P 0x68 0 4k"
all3 "data past 4 GiB" "$T/big.qcow2"

# A huge sparse image maps quickly (L1 ranges skipped, no per-cluster work).
mkq "$T/huge.qcow2" 1P "" -o cluster_size=2M
qio "$T/huge.qcow2" -c "write -P 1 $((1 << 49)) 4k"
# Bounded by CPU time (user + system), not wall time, so a loaded machine
# cannot fail it: per-cluster work over 1 PiB would take hours.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUSAGE=$T/rusage
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -o "$RUSAGE" "$ROOT/tests/tools/rusage.c" ||
	not_ok "build tests/tools/rusage.c"
cpu_max=2000
grep -q __asan_init "$IMGRAPH" 2>/dev/null && cpu_max=10000
check "1 PiB sparse image: map runs" "$RUSAGE" -t 120 "$T/huge.use" \
	"$IMGRAPH" map --output=json "$T/huge.qcow2"
read -r _ _ _ cpu_ms _ <"$T/huge.use" 2>/dev/null || cpu_ms=unknown
check "1 PiB map: ${cpu_ms} ms of CPU (<= $cpu_max)" \
	[ "${cpu_ms:-x}" -le "$cpu_max" ] 2>/dev/null
map_same "1 PiB sparse image" "$T/huge.qcow2"
info_same "1 PiB sparse image" "$T/huge.qcow2"

# Images we read but never write: internal snapshot (read the active L1),
# dirty lazy-refcount image after a crash, zstd compression (read through
# libzstd).
mkq "$T/snap.qcow2" 2M
qio "$T/snap.qcow2" -c "write -P 1 0 128k"
qemu-img snapshot -c s1 "$T/snap.qcow2"
qio "$T/snap.qcow2" -c "write -P 2 64k 4k" -c "write -z 1M 64k"
map_same "internal snapshot" "$T/snap.qcow2"
bytes_same "internal snapshot" "$T/snap.qcow2"

mkq "$T/dirty.qcow2" 2M "" -o lazy_refcounts=on
# (in a child shell, so that the expected SIGABRT is not reported here)
bash -c 'qemu-io -f qcow2 -c "write -P 3 0 192k" -c abort "$1" >/dev/null 2>&1; exit 0' _ "$T/dirty.qcow2" 2>/dev/null
if qemu-img info -U --output=json "$T/dirty.qcow2" | grep -q '"dirty-flag": true'; then
	all3 "dirty (lazy refcounts, crashed)" "$T/dirty.qcow2"
else
	not_ok "setup: qemu-io abort did not leave the image dirty"
fi

if qemu-img convert -c -O qcow2 -o compression_type=zstd "$T/src.raw" "$T/zstd.qcow2" 2>/dev/null; then
	map_same "zstd" "$T/zstd.qcow2"
	info_same "zstd" "$T/zstd.qcow2"
	qemu-img convert -O raw "$T/zstd.qcow2" "$T/zstd.raw"
	check "zstd: reads match qemu-img's byte for byte" "$FMT_TOOL" compare "$T/zstd.qcow2" "$T/zstd.raw"
	rm -f "$T/zstd.raw"
else
	ok "zstd # SKIP qemu-img built without zstd"
fi

# The CVE-2008-2004 rule through a real chain: a backing file recorded
# without a format that probes as qcow2 has its own backing never followed.
mkq "$T/p_base.qcow2" 1M
qio "$T/p_base.qcow2" -c "write -P 0x77 0 64k"
mkq "$T/p_mid.qcow2" 1M p_base.qcow2 qcow2
mkq "$T/p_top.qcow2" 1M p_mid.qcow2 qcow2
# Drop the recorded format of p_top's backing reference: qemu-img 7.2 will
# not write such a reference, so turn the backing-format extension (first
# extension, at header_length 112) into an unknown one.
printf '\x0b\xad\xf0\x0d' | dd of="$T/p_top.qcow2" bs=1 seek=112 conv=notrunc status=none
if qemu-img info --output=json "$T/p_top.qcow2" | grep -q backing-filename-format; then
	not_ok "setup: could not make a backing reference without a format"
else
	check_rc "unrecorded format: map refuses" 1 "$IMGRAPH" map --output=json "$T/p_top.qcow2"
	check_grep "unrecorded format: message" "no recorded format and probes as qcow2; refusing to follow" "$T/.err"
fi

done_testing
