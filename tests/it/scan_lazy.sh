#!/bin/bash
# scan_lazy.sh - the pool scan reads a page per image: the qcow2 header,
# its extensions and backing name, never the L1 table (read when a plan,
# map or commit needs it).  Judged against qemu-img info of every image:
#  - generated pools (bench/gen_pool.py): chains and wide templates, with
#    512-byte clusters (1 GiB: a 256 KiB L1 the scan skips) and 2 MiB
#    clusters (cluster 0 is 2 MiB: the scan reads its first page);
#  - a backing name placed past the first page of cluster 0, and an
#    extension running past it: the header is read as far as the parse
#    goes;
#  - headers that lie about the L1 table: a size too small for the
#    virtual size (refused by tree, from the header alone); a size that
#    runs the table over a data cluster (tree shows it, as it never reads
#    the table; plan and commit refuse it, nothing written); an L1 entry
#    past the end of the file (map and plan refuse it).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/hostile/poke.sh"
need_tools python3 jq strace

# facts FILE: "filename format virtual-size cluster-size backing-filename
# backing-format full-backing-filename" per image, sorted, from tree's
# JSON nodes or from qemu-img info's JSON objects (one per line).
facts() {
	jq -r '[.filename, .format, ."virtual-size", ."cluster-size",
		."backing-filename", ."backing-filename-format",
		."full-backing-filename"] | map(tostring) | join(" ")' "$1" | sort
}

# same_as_qemu DIR NAME: tree --output=json of DIR against qemu-img info
# of each image in it.
same_as_qemu() {
	local d=$1 name=$2 f
	(cd "$d" && "$IMGRAPH" tree --output=json) >"$T/tree.json" ||
		{ not_ok "$name: tree exits 0"; return; }
	jq -c '.nodes[]' "$T/tree.json" >"$T/tree.lines"
	: >"$T/qemu.lines"
	for f in $(cd "$d" && ls); do
		(cd "$d" && qemu-img info -U --output=json "$f") | jq -c . >>"$T/qemu.lines"
	done
	facts "$T/tree.lines" >"$T/a"
	facts "$T/qemu.lines" >"$T/b"
	if cmp -s "$T/a" "$T/b"; then
		ok "$name: tree's facts are qemu-img info's ($(wc -l <"$T/a") images)"
	else
		not_ok "$name: tree's facts differ from qemu-img info's"
		diff "$T/a" "$T/b" | head -20 | diag
	fi
	check_eq "$name: no image in error" \
		"$(jq '[.nodes[] | select(.error != null)] | length' "$T/tree.json")" 0
}

GEN=$ROOT/bench/gen_pool.py
python3 "$GEN" "$T/c512" 45 10 --cluster-size 512 --size 1073741824 >/dev/null
same_as_qemu "$T/c512" "chains, 512-byte clusters, 1 GiB"
python3 "$GEN" "$T/w2m" 30 10 --shape wide --cluster-size 2097152 \
	--size 1073741824 >/dev/null
same_as_qemu "$T/w2m" "wide templates, 2 MiB clusters"
check_eq "wide: a template has 9 clones" \
	"$(jq '.nodes[] | select(.filename == "t0000-base.qcow2") | .children | length' "$T/tree.json")" 9

# Cluster 0 read past its first page.  A 64 KiB cluster 0 whose backing
# name sits at 40000, and an unknown extension of 6000 bytes (QEMU keeps
# both) before the backing format extension.
F=$T/far
mkdir -p "$F"
mkq "$F/base.qcow2" 1M
qio "$F/base.qcow2" -c 'write -P 0x11 0 64k'
mkq "$F/ov.qcow2" 1M base.qcow2 qcow2
python3 - "$F/ov.qcow2" <<'EOF'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
hl = struct.unpack(">I", b[100:104])[0]
boff, bsz = struct.unpack(">QI", b[8:20])
name = bytes(b[boff:boff + bsz])
b[hl:65536] = bytes(65536 - hl)
ext = struct.pack(">II", 0x7a7a7a7a, 6000) + b"\x5a" * 6000
ext += struct.pack(">II", 0xe2792aca, 5) + b"qcow2" + bytes(3)
ext += struct.pack(">II", 0, 0)
b[hl:hl + len(ext)] = ext
b[40000:40000 + bsz] = name
b[8:20] = struct.pack(">QI", 40000, bsz)
open(p, "wb").write(b)
EOF
check_rc "far header: qemu-img reads it" 0 qemu-img info -U "$F/ov.qcow2"
same_as_qemu "$F" "backing name and an extension past the first page"
check_rc "far header: map agrees with qemu-img map" 0 "$IMGRAPH" map --output=json "$F/ov.qcow2"
jq -c '.[] | [.start, .length, .depth, .data, .zero]' "$T/.out" >"$T/m1"
qemu-img map -U --output=json "$F/ov.qcow2" | jq -c '.[] | [.start, .length, .depth, .data, .zero]' >"$T/m2"
check "far header: same extents as qemu-img map" cmp "$T/m1" "$T/m2"

# Headers that lie about the L1 table.
L=$T/lie
mkdir -p "$L"
mkq "$L/base.qcow2" 64M
qio "$L/base.qcow2" -c 'write -P 0x11 0 128k'
mkq "$L/small.qcow2" 64M base.qcow2 qcow2
poke_be32 "$L/small.qcow2" $Q_L1_SIZE 0
mkq "$L/over.qcow2" 64M base.qcow2 qcow2
qio "$L/over.qcow2" -c 'write -P 0x41 0 64k'
l1=$(peek_be "$L/over.qcow2" $Q_L1_OFF 8)
sz=$(stat -c %s "$L/over.qcow2")
# The table now runs to the end of the file, over the data cluster:
# those entries read as 0x4141414141414141.
poke_be32 "$L/over.qcow2" $Q_L1_SIZE $(((sz - l1) / 8))
mkq "$L/past.qcow2" 64M base.qcow2 qcow2
qio "$L/past.qcow2" -c 'write -P 0x42 0 64k'
poke_be64 "$L/past.qcow2" "$(peek_be "$L/past.qcow2" $Q_L1_OFF 8)" $(((1 << 63) | (sz * 64)))
snap_dir "$L" >"$T/before"

check_rc "lying pool: tree exits 0" 0 "$IMGRAPH" tree --output=json "$L"
cp "$T/.out" "$T/lie.json"
err_of() { jq -r --arg f "$L/$1" '.nodes[] | select(.filename == $f) | .error' "$T/lie.json"; }
check_grep "l1_size too small: tree says so from the header" \
	"l1_size.*too small" <(err_of small.qcow2)
check_eq "L1 over a data cluster: tree does not read the table" "$(err_of over.qcow2)" null
check_eq "L1 entry past the end: tree does not read the table" "$(err_of past.qcow2)" null

check_rc "l1_size too small: map refuses" 1 "$IMGRAPH" map "$L/small.qcow2"
check_grep "... naming the field" "small\.qcow2: .*'l1_size'" "$T/.err"
check_rc "L1 over a data cluster: plan refuses" 3 \
	"$IMGRAPH" plan --top "$L/over.qcow2" --base "$L/base.qcow2"
check_grep "... naming the L1 entry" "over\.qcow2: L1 entry [0-9]+ .*0x4141414141414141" "$T/.out"
check_rc "L1 over a data cluster: commit refuses" 3 \
	"$IMGRAPH" commit --yes --top "$L/over.qcow2" --base "$L/base.qcow2"
check_rc "L1 entry past the end: map refuses" 1 "$IMGRAPH" map "$L/past.qcow2"
check_grep "... naming the L1 entry" "past\.qcow2: L1 entry 0 " "$T/.err"
check_rc "L1 entry past the end: plan refuses" 3 \
	"$IMGRAPH" plan --top "$L/past.qcow2" --base "$L/base.qcow2"
check_grep "... naming the L1 entry" "past\.qcow2: L1 entry 0 " "$T/.out"
# The driver holds the L1 in windows of 512 entries and checks it window
# by window when a plan opens the image: an entry with reserved bits in
# the fifth window (entry 2100 of 32768, 512-byte clusters) is found.
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 \
	"$L/far.qcow2" 1G
poke_be64 "$L/far.qcow2" $(( $(peek_be "$L/far.qcow2" $Q_L1_OFF 8) + 2100 * 8 )) \
	$(((1 << 62) | 4096))
snap_dir "$L" >"$T/before"
check_rc "L1 entry 2100 with reserved bits: plan refuses" 3 \
	"$IMGRAPH" plan --top "$L/far.qcow2" --base "$L/base.qcow2"
check_grep "... naming the L1 entry" "far\.qcow2: L1 entry 2100 .*reserved bits" "$T/.out"
check_rc "... commit refuses" 3 \
	"$IMGRAPH" commit --yes --top "$L/far.qcow2" --base "$L/base.qcow2"
snap_dir "$L" >"$T/after"
check "nothing written" cmp "$T/before" "$T/after"
qcheck "base is still clean" "$L/base.qcow2"

# The pool's directory is listed once: the records beside the images
# (journals, stale records, trash) are found in the scan's own listing,
# not by reading the directory again (each full listing ends with a
# getdents64 that returns 0).  A stale record there is still seen.
D=$T/once
python3 "$GEN" "$D" 20 10 --cluster-size 65536 --size 1048576 >/dev/null
(cd "$D" && "$IMGRAPH" commit --yes -q --top c00001-l02.qcow2 \
	--base c00001-l00.qcow2 .) >/dev/null 2>&1
check "a commit left a stale record beside its base" \
	test -f "$D/.imgraph-stale-c00001-l00.qcow2.rec"
(cd "$D" && env ASAN_OPTIONS=detect_leaks=0 strace -o "$T/st_once" \
	-e trace=getdents64 "$IMGRAPH" tree --output=json .) >"$T/once.json"
check_eq "the pool directory is read to its end once" \
	"$(grep -c '^getdents64(.*= 0$' "$T/st_once")" 1
check_eq "... the stale record is still seen" \
	"$(jq -r '.nodes[] | select(.flags | index("stale")) | .name' "$T/once.json")" \
	c00001-l01.qcow2

done_testing
