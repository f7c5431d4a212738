#!/usr/bin/env bash
# protect_enospc.sh - a protected reader's file system fills up in the
# middle of commit --protect (issue 18): the commit stops with ENOSPC
# naming the reader, every view is intact (qemu-img compare), no image is
# corrupt (qemu-img check), and once there is room again the rerun
# completes.  The reader lives on a small tmpfs mounted here (root); the
# commit runs throttled (--rate) and the tmpfs is filled up once the
# reader has started to grow, so the plan's up-front space check passes and
# the space runs out half way.
. "$(dirname "$0")/lib.sh"
need_tools jq dd

if [ "$(id -u)" != 0 ]; then
	skip "ENOSPC mid-protection" "needs root for mount -t tmpfs"
	done_testing
fi
M=$T/mnt
mkdir -p "$M"
if ! mount -t tmpfs -o size=12m tmpfs "$M" 2>/dev/null; then
	skip "ENOSPC mid-protection" "mount -t tmpfs failed"
	done_testing
fi
trap 'holder_stop; cd /; umount "$M" 2>/dev/null || umount -l "$M"; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

D=$T/pool; mkdir -p "$D"; cd "$D" || exit 1
mkq base.qcow2 16M
qio base.qcow2 -c 'write -P 0x11 0 10M'
mkq top.qcow2 16M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x22 0 8M'
mkq vm.qcow2 16M top.qcow2 qcow2
qemu-img create -q -f qcow2 -b "$D/base.qcow2" -F qcow2 "$M/c.qcow2" 16M
qio "$M/c.qcow2" -c 'write -P 0x33 1M 64k'
guest_raw "$M/c.qcow2" "$T/c.raw"
guest_raw vm.qcow2 "$T/vm.raw"
guest_raw top.qcow2 "$T/top.raw"
size0=$(stat -c %s "$M/c.qcow2")

check_rc "plan --protect fits up front" 0 "$IMGRAPH" plan --protect \
	--top top.qcow2 --base base.qcow2 . "$M"
"$IMGRAPH" commit --protect --yes -q --rate 1M --top top.qcow2 \
	--base base.qcow2 . "$M" >"$T/commit.out" 2>"$T/commit.err" &
pid=$!
for _ in $(seq 1 200); do
	[ "$(stat -c %s "$M/c.qcow2")" -gt "$size0" ] && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
dd if=/dev/zero of="$M/filler" bs=64k 2>/dev/null
wait $pid; rc=$?
[ $rc != 0 ] && ok "commit stops (exit $rc)" || not_ok "commit stops (it completed)"
check_grep "the error names the reader and ENOSPC" \
	"c\.qcow2.*(No space left on device|ENOSPC)|(No space left on device|ENOSPC).*c\.qcow2" "$T/commit.err"
check "the reader's view is intact" qemu-img compare -q -f raw -F qcow2 "$T/c.raw" "$M/c.qcow2"
check "the overlay of top keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/vm.raw" vm.qcow2
check_rc "the reader is not corrupt (leaks allowed)" 0 bash -c \
	"qemu-img check -q '$M/c.qcow2' >/dev/null 2>&1; r=\$?; [ \$r = 0 ] || [ \$r = 3 ]"
qcheck "base passes qemu-img check" base.qcow2
rm -f "$M/filler"
check_rc "rerun completes once there is room" 0 "$IMGRAPH" commit --protect \
	--yes -q --top top.qcow2 --base base.qcow2 . "$M"
check "after the rerun: the reader's view is intact" \
	qemu-img compare -q -f raw -F qcow2 "$T/c.raw" "$M/c.qcow2"
check "after the rerun: the overlay keeps its view" \
	qemu-img compare -q -f raw -F qcow2 "$T/vm.raw" vm.qcow2
check "after the rerun: base shows top's old view" \
	qemu-img compare -q -f raw -F qcow2 "$T/top.raw" base.qcow2
check_rc "after the rerun: the reader is not corrupt" 0 bash -c \
	"qemu-img check -q '$M/c.qcow2' >/dev/null 2>&1; r=\$?; [ \$r = 0 ] || [ \$r = 3 ]"
done_testing
