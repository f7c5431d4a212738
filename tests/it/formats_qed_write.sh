#!/usr/bin/env bash
# formats_qed_write.sh - the qed write path (formats/qed_write.c), judged by
# QEMU (issue 18: a qed reader is protected by writing into it).
#   * the same operations applied through our driver (tests/tools/
#     fmt_tool.c) and through qemu-io to twin qed images over a qcow2
#     backing file give guest views that `qemu-img compare` finds
#     identical; `qemu-io read -P` reads our bytes; `qemu-img check` is
#     clean; the clusters the image allocated before stay where they were;
#   * grow and make_empty as QEMU would leave the image;
#   * refusals, nothing written: a partial write into an unallocated
#     cluster over the backing file, the need-check flag, an unknown
#     compatible feature;
#   * power cuts and kills at every mutating op: qemu-img check says 0 or
#     3 (leaked clusters only), the image stays readable, and every
#     sector reads either as before or as written; make_empty reads as
#     before or as the backing file.
# IMGRAPH_LONG=1: four seeds per cut point.
. "$(dirname "$0")/lib.sh"

need_fmt_tool
need_tools qemu-img qemu-io
cd "$T" || exit 1

qemu-img create -q -f qcow2 base.qcow2 12M
qemu-io -f qcow2 -c 'write -P 0x11 0 12M' base.qcow2 >/dev/null
# 4 KiB clusters, tables of two clusters: an L2 table maps 4 MiB
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 -b base.qcow2 \
	-F qcow2 q0.qed 12M
qemu-io -f qed -c 'write -P 0x21 64k 8k' -c 'write -z 128k 4k' q0.qed >/dev/null
qemu-img map -U --output=json -f qed q0.qed >own.json

# The workload: new clusters in a new L2 table and in an existing one,
# zero clusters, a partial write into a zero cluster (padded with zeros),
# in-place data and zeros over the image's own clusters, a third table.
# (QEMU 7.2 fills the rest of a zero cluster from the backing file on a
# partial write, which changes what the guest reads there; the twin gets
# an explicit 'write -z' of that rest, so both mean the same view.)
OPS=(w:0:8k:0x41 w:64k:4k:0x42 z:8k:8k w:5M:4k:0x43 w:128k:1k:0x44
	z:68k:2k w:9M:12k:0x45 z:10M:64k)
QOPS=(-c 'write -P 0x41 0 8k' -c 'write -P 0x42 64k 4k' -c 'write -z 8k 8k'
	-c 'write -P 0x43 5M 4k' -c 'write -P 0x44 128k 1k' -c 'write -z 129k 3k'
	-c 'write -z 68k 2k'
	-c 'write -P 0x45 9M 12k' -c 'write -z 10M 64k')
cp q0.qed ours.qed; cp q0.qed ref.qed
check "ops through our driver" "$FMT_TOOL" ops -f qed ours.qed "${OPS[@]}"
qemu-io -f qed "${QOPS[@]}" ref.qed >/dev/null
check "our qed and QEMU's twin show the same view" \
	qemu-img compare -q -f qed -F qed ours.qed ref.qed
check "qemu-io reads our bytes" qemu-io -f qed -c 'read -P 0x41 0 8k' \
	-c 'read -P 0 8k 8k' -c 'read -P 0x42 64k 4k' -c 'read -P 0 68k 2k' \
	-c 'read -P 0x21 70k 2k' -c 'read -P 0x44 128k 1k' \
	-c 'read -P 0 129k 3k' -c 'read -P 0x43 5M 4k' -c 'read -P 0x11 6M 4k' \
	-c 'read -P 0x45 9M 12k' -c 'read -P 0 10M 64k' ours.qed
check "qemu-img check clean" qemu-img check -q -f qed ours.qed
check "our reader agrees with qemu-img convert" sh -c \
	'qemu-img convert -O raw -f qed ours.qed ours.raw && "$0" compare ours.qed ours.raw' "$FMT_TOOL"
# own_kept MAP IMAGE: every extent in MAP (qemu-img map of depth 0, taken
# before) is still mapped at the same place in IMAGE's file.
own_kept() {
	qemu-img map -U --output=json -f qed "$2" >own.after
	jq -e --slurpfile a own.after '[.[] | select(.depth == 0 and .data) |
		. as $b | select([$a[0][] | select(.depth == 0 and .data and
		.start <= $b.start and .start + .length >= $b.start + $b.length
		and .offset - .start == $b.offset - $b.start)] | length == 0)] |
		length == 0' "$1" >/dev/null
}
check "the image's own clusters stayed in place" own_kept own.json ours.qed

# grow and make_empty
cp ours.qed g.qed
check "grow through our driver" "$FMT_TOOL" ops -f qed g.qed g:16M w:14M:4k:0x46
check_eq "grow: qemu-img info shows the new size" \
	"$(qemu-img info -U --output=json g.qed | jq '."virtual-size"')" $((16 << 20))
check "grow: qemu-io reads the new range" qemu-io -f qed -c 'read -P 0x46 14M 4k' \
	-c 'read -P 0 12M 2M' -c 'read -P 0x41 0 8k' g.qed
check "grow: qemu-img check clean" qemu-img check -q -f qed g.qed
check "make_empty through our driver" "$FMT_TOOL" ops -f qed g.qed e
check_eq "make_empty: nothing allocated" \
	"$(qemu-img map -U --output=json -f qed g.qed | jq '[.[] | select(.depth == 0 and .present)] | length')" 0
check "make_empty: reads the backing file" qemu-io -f qed -c 'read -P 0x11 0 12M' g.qed
check "make_empty: qemu-img check clean" qemu-img check -q -f qed g.qed

# refusals, nothing written
cp q0.qed p.qed
check_rc "partial write over the backing file refused" 1 "$FMT_TOOL" ops -f qed p.qed w:6M:1k:0x47
check_grep "partial write: the error says why" "partial write at guest offset 6291456 .*backing" "$T/.err"
check "partial write: nothing written" cmp q0.qed p.qed
setbyte() { printf "$(printf '\\%03o' "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
cp q0.qed nc.qed; setbyte nc.qed 16 3     # features: backing file | need check
cp nc.qed nc0.qed
check_rc "need-check set: refused" 1 "$FMT_TOOL" ops -f qed nc.qed w:0:4k:0x48
check_grep "need-check: named" "need-check flag is set" "$T/.err"
check "need-check: nothing written" cmp nc0.qed nc.qed
check_rc "need-check: imgraph info names the write refusal" 0 "$IMGRAPH" info --output=json nc.qed
check_grep "need-check: write-refusal in JSON" '"write-refusal": *"the qed need-check flag' "$T/.out"
cp q0.qed cf.qed; setbyte cf.qed 24 1     # an unknown compatible feature
cp cf.qed cf0.qed
check_rc "unknown compat feature: refused" 1 "$FMT_TOOL" ops -f qed cf.qed w:0:4k:0x48
check_grep "unknown compat feature: named" "compat_features" "$T/.err"
check "unknown compat feature: nothing written" cmp cf0.qed cf.qed

# ---- power cuts and kills --------------------------------------------------
seeds=1; [ "${IMGRAPH_LONG:-0}" = 1 ] && seeds=4
cp q0.qed n.qed
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count "$FMT_TOOL" ops -f qed n.qed "${OPS[@]}"
N=$(cat "$T/count")
check "the workload has mutating ops ($N)" test "$N" -gt 10
qemu-img convert -O raw -f qed q0.qed before.raw
qemu-img convert -O raw -f qed ours.qed after.raw
# mixed RAW: how many 512-byte sectors of the view read neither as before
# nor as after (an in-place write may tear at sectors, as a disk's does)
mixed() {
	cmp -l before.raw "$1" 2>/dev/null | awk '{print int(($1 - 1) / 512)}' | sort -u >d.before
	cmp -l after.raw "$1" 2>/dev/null | awk '{print int(($1 - 1) / 512)}' | sort -u >d.after
	comm -12 d.before d.after | wc -l
}
bad=0
for K in $(seq 1 "$N"); do
	for mode in kill cut; do
		for sd in $(seq 1 $seeds); do
			[ $mode = kill ] && [ "$sd" -gt 1 ] && continue
			cp q0.qed pc.qed
			f=kill:$K; [ $mode = cut ] && f=cut:$K:$((K * 7 + sd))
			( IMGRAPH_FAULT=$f "$FMT_TOOL" ops -f qed pc.qed "${OPS[@]}"; true ) >/dev/null 2>&1
			qemu-img check -f qed pc.qed >pc.out 2>&1; rc=$?
			if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
				bad=$((bad + 1)); echo "# $f: check rc=$rc"; diag <pc.out
			elif ! qemu-img convert -O raw -f qed pc.qed pc.raw 2>pc.out; then
				bad=$((bad + 1)); echo "# $f: unreadable"; diag <pc.out
			elif [ "$(mixed pc.raw)" != 0 ]; then
				bad=$((bad + 1)); echo "# $f: a sector reads neither as before nor as written"
			fi
		done
	done
done
check_eq "kill and power cut at each of $N ops: check 0 or 3, readable, every sector old or new" "$bad" 0

# make_empty (a kept qed top): the L1 table zeroed and synced, then the
# file cut back.  Killed or cut at each op: check 0 or 3, and the image
# reads as before or as its backing file.
qemu-img convert -O raw -f qed q0.qed before.raw
qemu-img convert -O raw -f qcow2 base.qcow2 after.raw
cp q0.qed n.qed
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count "$FMT_TOOL" ops -f qed n.qed e
N=$(cat "$T/count")
check "make_empty has mutating ops ($N)" test "$N" -ge 3
bad=0
for K in $(seq 1 "$N"); do
	for f in kill:$K kill:$K:after cut:$K:3 cut:$K:9; do
		cp q0.qed pc.qed
		( IMGRAPH_FAULT=$f "$FMT_TOOL" ops -f qed pc.qed e; true ) >/dev/null 2>&1
		qemu-img check -f qed pc.qed >pc.out 2>&1; rc=$?
		if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
			bad=$((bad + 1)); echo "# empty $f: check rc=$rc"; diag <pc.out
		elif ! qemu-img convert -O raw -f qed pc.qed pc.raw 2>pc.out; then
			bad=$((bad + 1)); echo "# empty $f: unreadable"; diag <pc.out
		elif ! cmp -s pc.raw before.raw && ! cmp -s pc.raw after.raw; then
			bad=$((bad + 1)); echo "# empty $f: neither the old view nor the backing file"
		fi
	done
done
check_eq "make_empty killed or cut at each of its $N ops: check 0 or 3, old view or emptied" "$bad" 0
done_testing
