#!/usr/bin/env bash
# plan_unverified.sh - a pool file that carries a known image signature
# but cannot be parsed far enough to know its backing file is an
# "unverified reader": the plan lists it as a conflict (exit 3), the
# commit writes nothing, and --ignore-unverified FILE (repeatable)
# overrides it.  --delete then still keeps what such a reader may read.
#
# Regression: the plan said "no conflicts" although a broken qcow2 or qed
# overlay of base, which QEMU itself may still open after a repair, could
# have read anything of the chain.
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io

d=$T/pool; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qio "$d/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$d/top.qcow2" 4M base.qcow2
qio "$d/top.qcow2" -c 'write -P 0x22 0 64k'
mkq "$d/vm.qcow2" 4M top.qcow2
guest_raw "$d/vm.qcow2" "$T/vm.raw"
# Overlays of base whose headers were damaged afterwards: cluster_bits 40
# (qcow2), a cluster size that is no power of two (qed); and a vmdk whose
# extent file is gone.
mkq "$d/broken.qcow2" 4M base.qcow2
printf '\x00\x00\x00\x28' | dd of="$d/broken.qcow2" bs=1 seek=20 conv=notrunc 2>/dev/null
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/broken.qed" 4M
printf '\x00\x00\x00\x03' | dd of="$d/broken.qed" bs=1 seek=4 conv=notrunc 2>/dev/null
qemu-img create -q -f vmdk -o subformat=monolithicFlat "$d/ext.vmdk" 4M
rm "$d/ext-flat.vmdk"
for f in broken.qcow2 broken.qed ext.vmdk; do
	check_rc "qemu-img cannot open $f either" 1 qemu-img info "$d/$f"
done
snap_dir "$d" >"$T/before"

check_rc "plan: conflicts" 3 "$IMGRAPH" plan --top "$d/top.qcow2" "$d"
for f in broken.qcow2:qcow2 broken.qed:qed ext.vmdk:vmdk; do
	check_grep "plan names $f" "\[unverified-reader\] unverified reader '[^']*${f%%:*}': it carries a ${f#*:} signature" "$T/.out"
done
check_rc "commit refuses" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" "$d"
snap_dir "$d" >"$T/after"
check "commit wrote nothing" cmp "$T/before" "$T/after"
"$IMGRAPH" plan --output=json --top "$d/top.qcow2" "$d" >"$T/plan.json"
check_eq "json: kind unverified-reader" \
	"$(jq '[.conflicts[] | select(.kind == "unverified-reader")] | length' "$T/plan.json")" 3

check_rc "one ignored: still conflicts" 3 "$IMGRAPH" plan --top "$d/top.qcow2" \
	--ignore-unverified "$d/broken.qcow2" "$d"
check_nogrep "the ignored one is not listed" "unverified reader '[^']*broken.qcow2'" "$T/.out"
ign="--ignore-unverified $d/broken.qcow2 --ignore-unverified $d/broken.qed --ignore-unverified $d/ext.vmdk"
# shellcheck disable=SC2086
check_rc "all ignored: the plan runs" 0 "$IMGRAPH" plan --top "$d/top.qcow2" $ign "$d"
# shellcheck disable=SC2086
check_rc "--delete: the plan keeps top" 0 "$IMGRAPH" plan --delete --top "$d/top.qcow2" $ign "$d"
check_grep "--delete: kept because an unverified reader may read it" "may be read by unverified reader" "$T/.out"
# shellcheck disable=SC2086
check_rc "all ignored: commit --delete runs" 0 "$IMGRAPH" commit --yes -q --delete \
	--top "$d/top.qcow2" $ign "$d"
check "top is still there" test -f "$d/top.qcow2"
check "vm reads as before" qemu-img compare -q -U -f qcow2 -F raw "$d/vm.qcow2" "$T/vm.raw"
qcheck "base checks clean" "$d/base.qcow2"

done_testing
