#!/bin/bash
# plan_space.sh - the `space` conflict: a plan whose copy may not fit in the
# free space of base's file system is refused (exit 3), and `commit`
# refuses it too without writing anything.  Base lives on a small tmpfs
# mounted here (root only; otherwise every case is a TAP SKIP).
#   1. chain on a 4 MiB tmpfs, top holds more than is free: space conflict.
#   2. top outside, base inside: the same, seen from another directory.
#   3. data alone fits but base's new L2 tables and refcount blocks do not
#      (top's data in L2 ranges base has no table for): space conflict, not
#      an ENOSPC half way through the copy.
#   4. base reached through a symlink from a big file system: the free
#      space of the file system that holds base's data is what counts.
#   5. enough room: runnable, and the commit succeeds (qemu-img judges).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "ok - # SKIP space conflicts: needs root for mount -t tmpfs"
	done_testing
fi
M=$T/mnt
mkdir -p "$M"
if ! mount -t tmpfs -o size=4m tmpfs "$M" 2>/dev/null; then
	echo "ok - # SKIP space conflicts: mount -t tmpfs failed (no CAP_SYS_ADMIN?)"
	done_testing
fi
trap 'cd /; umount "$M" 2>/dev/null || umount -l "$M" 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP     # unmount on a signal too (via EXIT)

free_of() { echo $(( $(stat -f -c %a "$1") * $(stat -f -c %S "$1") )); }
# expect_space NAME ARGS...: plan and commit both refuse with a space
# conflict naming base; commit writes nothing (sha256 of every file of the
# tmpfs and of $T/out before and after).
expect_space() {
	local n=$1; shift
	check_rc "$n: plan exits 3" 3 "$IMGRAPH" plan "$@"
	check_grep "$n: space conflict on base" '^  \[space\] up to [0-9]+ bytes must be written into ' "$T/.out"
	check_grep "$n: hint" '^      hint: Free space' "$T/.out"
	check_rc "$n: plan json exits 3" 3 "$IMGRAPH" plan --output=json "$@"
	check_eq "$n: json conflict kind" "$(jq -r '[.conflicts[].kind] | join(",")' "$T/.out")" space
	check_eq "$n: json not runnable" "$(jq -r .runnable "$T/.out")" false
	local need free
	need=$(jq -r '."space-needed"' "$T/.out"); free=$(jq -r '."free-space"' "$T/.out")
	case $need$free in ''|*[!0-9]*) need=0 free=0 ;; esac
	[ "$need" -gt "$free" ] && ok "$n: space-needed ($need) > free-space ($free)" ||
		not_ok "$n: space-needed ($need) > free-space ($free)"
	{ snap_dir "$M"; snap_dir "$T/out"; } >"$T/h0"
	check_rc "$n: commit exits 3" 3 "$IMGRAPH" commit --yes "$@"
	check_grep "$n: commit says nothing was written" "nothing was written" "$T/.err"
	{ snap_dir "$M"; snap_dir "$T/out"; } >"$T/h1"
	check "$n: commit wrote nothing (sha256 before/after)" cmp -s "$T/h0" "$T/h1"
	check "$n: no journal left" test -z "$(find "$M" "$T/out" -name '.imgraph-journal*')"
}
mkdir -p "$T/out"

# ---- 1. the whole chain on the tmpfs -------------------------------------
cd "$M" || exit 1
mkq base.qcow2 16M
qio base.qcow2 -c 'write -P 0x11 0 256k'
mkq mid.qcow2 16M base.qcow2 qcow2
qio mid.qcow2 -c 'write -P 0x22 256k 64k'
mkq top.qcow2 16M mid.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x33 1M 2560k'
free=$(free_of "$M")
[ "$free" -lt $((2560 * 1024)) ] && ok "setup: top holds more than is free ($free)" ||
	not_ok "setup: free $free"
expect_space "chain on tmpfs" --top top.qcow2 --base base.qcow2
expect_space "chain on tmpfs, default base (mid)" --top top.qcow2
rm -f top.qcow2 mid.qcow2

# ---- 2. top outside the tmpfs, base inside --------------------------------
mkq "$T/out/top.qcow2" 16M "$M/base.qcow2" qcow2
qio "$T/out/top.qcow2" -c 'write -P 0x44 0 6M'
cd "$T/out" || exit 1
expect_space "top outside, base on tmpfs" --top top.qcow2 --base "$M/base.qcow2" . "$M"
# an overlay of top (relinked by a commit) changes nothing
mkq "$T/out/vm.qcow2" 16M top.qcow2 qcow2
expect_space "with an overlay of top" --top top.qcow2 . "$M"
rm -f "$T/out/"*.qcow2

# ---- 3. data fits, metadata does not --------------------------------------
# base is 2 GiB with one L2 table (the first 512 MiB); top writes one
# cluster into each of three other L2 ranges.  192 KiB of data, but base
# needs three new L2 tables (and refcounts) on top of it.
cd "$M" || exit 1
rm -f base.qcow2
mkq base.qcow2 2G
qio base.qcow2 -c 'write -P 0x11 0 64k'
mkq top.qcow2 2G base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x33 600M 64k' -c 'write -P 0x33 1100M 64k' \
	-c 'write -P 0x33 1700M 64k'
free=$(free_of "$M")
fallocate -l $((free - 256 * 1024)) "$M/filler"    # 256 KiB stay free
check_rc "metadata: plan exits 3" 3 "$IMGRAPH" plan --output=json --top top.qcow2
check_eq "metadata: data alone would fit" \
	"$(jq -r '."bytes-to-copy" < ."free-space"' "$T/.out")" true
check_eq "metadata: space conflict" "$(jq -r '[.conflicts[].kind] | join(",")' "$T/.out")" space
need=$(jq -r '."space-needed"' "$T/.out")
case $need in ''|*[!0-9]*) need=0 ;; esac
snap_dir "$M" >"$T/h0"
check_rc "metadata: commit exits 3" 3 "$IMGRAPH" commit --yes --top top.qcow2
snap_dir "$M" >"$T/h1"
check "metadata: commit wrote nothing" cmp -s "$T/h0" "$T/h1"
# The same commit with the room it asked for goes through: the estimate
# is an upper bound, not a guess that fails the other way.
rm -f "$M/filler"
free=$(free_of "$M")
fallocate -l $((free - need)) "$M/filler"
guest_raw top.qcow2 "$T/want.raw"
check_rc "metadata: with space-needed free, commit runs" 0 "$IMGRAPH" commit --yes -q --top top.qcow2
qcheck "metadata: base passes qemu-img check" base.qcow2
qcheck "metadata: top passes qemu-img check" top.qcow2
check "metadata: base holds top's old view" qemu-img compare -q -f qcow2 -F raw base.qcow2 "$T/want.raw"
check "metadata: top's guest view unchanged" qemu-img compare -q -f qcow2 -F raw top.qcow2 "$T/want.raw"
rm -f "$M/filler" top.qcow2 base.qcow2

# ---- 4. base behind a symlink on a big file system ---------------------------
mkq "$M/base.qcow2" 16M
qio "$M/base.qcow2" -c 'write -P 0x11 0 64k'
mkdir -p "$T/big"
ln -s "$M/base.qcow2" "$T/big/base.qcow2"
mkq "$T/big/top.qcow2" 16M base.qcow2 qcow2
qio "$T/big/top.qcow2" -c 'write -P 0x55 0 6M'
cd "$T/big" || exit 1
expect_space "base symlinked onto the tmpfs" --top top.qcow2
rm -rf "$T/big"

# ---- 5. enough room: runnable, and the commit works -------------------------
cd "$M" || exit 1
mkq mid.qcow2 16M base.qcow2 qcow2
qio mid.qcow2 -c 'write -P 0x22 64k 64k'
mkq top.qcow2 16M mid.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x33 1M 512k'
check_rc "room: plan exits 0" 0 "$IMGRAPH" plan --top top.qcow2 --base base.qcow2
check_grep "room: free space and need shown" '^free space: .*\(needs up to .*\)$' "$T/.out"
check_grep "room: no conflicts" '^conflicts: none' "$T/.out"
guest_raw top.qcow2 "$T/want.raw"
check_rc "room: commit exits 0" 0 "$IMGRAPH" commit --yes -q --top top.qcow2 --base base.qcow2
qcheck "room: base passes qemu-img check" base.qcow2
check "room: top's guest view unchanged" qemu-img compare -q -f qcow2 -F raw top.qcow2 "$T/want.raw"
check "room: base holds it" qemu-img compare -q -f qcow2 -F raw base.qcow2 "$T/want.raw"

cd /
done_testing
