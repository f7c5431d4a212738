#!/bin/bash
# plan_locks.sh - live QEMU lock holders (qemu-io, qemu-storage-daemon)
# found by F_OFD_GETLK on bytes 100..103/200..203 and named from
# /proc/PID/fdinfo: tree shows them, plan refuses naming the process and
# the permissions; a QEMU with locking=off is found through /proc/PID/fd.
# No file changes.  Holders are killed in a trap.
. "$(dirname "$0")/lib.sh"

P=$T/pool
mkdir -p "$P/s"
cd "$P" || exit 1
mkq base.qcow2 1M
qio base.qcow2 -c 'write -P 0x11 0 64k'
mkq mid.qcow2 1M base.qcow2 qcow2
mkq top.qcow2 1M mid.qcow2 qcow2
mkq ov.qcow2 1M top.qcow2 qcow2
mkq s/sib.qcow2 1M ../base.qcow2 qcow2

# hold ARGS...: qemu-io ARGS kept open until its locks show.
hold() {
	holder_qio "$@" && return 0
	echo "# holder did not lock:"; diag < "$T/holder.log"
	return 1
}

plan_rc() { # NAME RC ARGS...
	local n=$1 want=$2
	shift 2
	snap_dir "$P" > "$T/h_before"
	check_rc "$n" "$want" "$IMGRAPH" plan "$@"
	snap_dir "$P" > "$T/h_after"
	cmp -s "$T/h_before" "$T/h_after" && ok "$n: no file changed" ||
		not_ok "$n: a file changed"
}

plan_rc "no holder: runnable" 0 --top top.qcow2 --base base.qcow2

# 1. a VM-like qemu-io writes the overlay of top (chain ov->top->mid->base)
hold -f qcow2 ov.qcow2
pid=$HOLDER
check_rc "tree with a holder" 0 "$IMGRAPH" tree
check_grep "tree names the holder on ov" \
	"\^ process $pid \(qemu-io\) holds 'consistent read, write, resize', does not share 'write, resize'" "$T/.out"
check_grep "tree: backing files held for reading" \
	"\^ process $pid \(qemu-io\) holds 'consistent read', does not share 'write, resize'" "$T/.out"
plan_rc "writer on the overlay of top: refused" 3 --top top.qcow2 --base base.qcow2
cp "$T/.out" "$T/p1"
check_grep "lock on base: we need write" \
	"\[lock\] Failed to get \"write\" lock on 'base\.qcow2': process $pid \(qemu-io\) holds 'consistent read', does not share 'write, resize'" "$T/p1"
check_grep "lock on the relinked overlay" \
	"\[lock\] Failed to get \"write\" lock on 'ov\.qcow2': process $pid \(qemu-io\)" "$T/p1"
check_grep "parties name the process" "parties: process $pid \(qemu-io\)" "$T/p1"
check_grep "permissions listed" '^      permissions: write' "$T/p1"
check_grep "hint" 'hint: Stop process' "$T/p1"
check_rc "json lists the process" 3 "$IMGRAPH" plan --output=json --top top.qcow2 --base base.qcow2
check_grep "json kind lock" '"kind": "lock"' "$T/.out"
holder_stop

# 2. holding top read-write (top is then a leaf of that process's view):
# the commit job shares only write unchanged on top, and QEMU tests the
# bits it does not share from consistent read up
hold -f qcow2 top.qcow2
pid=$HOLDER
plan_rc "top held read-write: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "shared consistent read lock on top" \
	"Failed to get shared \"consistent read\" lock on 'top\.qcow2': process $pid \(qemu-io\) holds 'consistent read, write, resize'" "$T/.out"
holder_stop

# 3. holding a sibling of base (read-only is enough: qcow2 unshares write)
hold -r -f qcow2 s/sib.qcow2
pid=$HOLDER
plan_rc "sibling of base held: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "base lock names the sibling's process" \
	"Failed to get \"write\" lock on 'base\.qcow2': process $pid \(qemu-io\)" "$T/.out"
holder_stop

# 4. holding base read-only
hold -r -f qcow2 base.qcow2
pid=$HOLDER
plan_rc "base held read-only: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "named with permissions" \
	"Failed to get \"write\" lock on 'base\.qcow2': process $pid \(qemu-io\) holds 'consistent read', does not share 'write, resize'" "$T/.out"
holder_stop

# 5. qemu-storage-daemon exporting top over a unix-socket NBD server
if have_tool qemu-storage-daemon "qemu-storage-daemon as a holder"; then
	qemu-storage-daemon \
		--blockdev driver=file,node-name=f,filename="$P/mid.qcow2" \
		--blockdev driver=qcow2,node-name=q,file=f \
		--nbd-server addr.type=unix,addr.path="$T/nbd.sock" \
		--export type=nbd,id=e,node-name=q,writable=on \
		> "$T/qsd.log" 2>&1 &
	HOLDER=$!
	for _ in $(seq 1 100); do
		grep -q "lock:" /proc/$HOLDER/fdinfo/* 2>/dev/null && break
		sleep 0.05
	done
	plan_rc "qemu-storage-daemon on an intermediate: refused" 3 --top top.qcow2 --base base.qcow2
	check_grep "daemon named" "process $HOLDER \(qemu-storage-d.*\) holds 'consistent read, write, resize'" "$T/.out"
	holder_stop
fi

# 6. QEMU with locking=off on base: no lock bytes, found through /proc fds
rm -f "$T/in"; mkfifo "$T/in"
qemu-io --image-opts driver=qcow2,file.driver=file,file.filename="$P/base.qcow2",file.locking=off \
	< "$T/in" > "$T/holder.log" 2>&1 &
HOLDER=$!
exec 7> "$T/in"
for _ in $(seq 1 100); do
	ls -l /proc/$HOLDER/fd 2>/dev/null | grep -q 'base\.qcow2' && break
	sleep 0.05
done
pid=$HOLDER
check "locking=off holder took no lock" sh -c "! grep -q lock: /proc/$pid/fdinfo/*"
plan_rc "base open with locking=off: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "named as an unlocked opener" \
	"\[lock\] process $pid \(qemu-io\) has 'base\.qcow2' open without QEMU's locks" "$T/.out"
holder_stop

plan_rc "holders gone: runnable again" 0 --top top.qcow2 --base base.qcow2
check_rc "tree --no-locks" 0 "$IMGRAPH" tree --no-locks
done_testing
