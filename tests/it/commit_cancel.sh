#!/usr/bin/env bash
# commit_cancel.sh - a running commit (slowed with --rate) holds QEMU's
# locks: qemu-io opening base, top, mid or an overlay read-write is refused
# with its own "Failed to get ... lock" error, and the lock bytes are in
# /proc/locks.  SIGINT then cancels the copy: exit 1, every overlay still
# on top with its guest view unchanged, check clean, no journal, locks
# gone; a rerun completes.  Before that: a qemu-io holding an overlay open
# read-write makes the commit refuse (exit 3) without writing anything.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

P=$T/pool
fixture_build "$P" 2 || { not_ok fixture; done_testing; }
# 24 MiB more above base, so that 4 MiB/s takes ~6 s.
qemu-img resize -q "$P/top.qcow2" 48M
for o in $(fixture_overlays "$P"); do qemu-img resize -q "$o" 48M; done
qemu-io -f qcow2 -c 'write -P 0xc1 16M 24M' "$P/top.qcow2" >/dev/null
fixture_save "$P" "$T/v"

# A live writer on an overlay (QEMU's lock bytes 101 and 201 held).
mkfifo "$T/fifo"
qemu-io -f qcow2 "$P/d1/ovl1.qcow2" <"$T/fifo" >/dev/null 2>&1 &
qpid=$!
exec 7>"$T/fifo"
for _ in $(seq 50); do grep -q ":$(stat -c %i "$P/d1/ovl1.qcow2") 10[01] " /proc/locks && break; sleep 0.1; done
snap_dir "$P" >"$T/before.sha"
check_rc "live writer on an overlay: refused, exit 3" 3 "$IMGRAPH" commit \
	--top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q -r "$P"
check_grep "live writer: the holder is named" 'qemu-io|process' "$T/.out"
snap_dir "$P" >"$T/after.sha"
check "live writer: nothing written" cmp -s "$T/before.sha" "$T/after.sha"
echo quit >&7; exec 7>&-; wait $qpid

"$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes \
	--rate 4M -r "$P" >"$T/c.out" 2>"$T/c.err" &
pid=$!
# Wait until the copy has started (first progress line).
for _ in $(seq 50); do grep -q '"copy"' "$T/c.err" 2>/dev/null && break; sleep 0.1; done

refused() { # NAME FILE: qemu-io read-write must fail with a lock error
	if qemu-io -f qcow2 -c 'read 0 512' "$2" >"$T/q.out" 2>&1; then
		not_ok "$1: qemu-io was allowed in"
	elif grep -qE 'Failed to get (shared )?"[a-z ]+" lock' "$T/q.out"; then
		ok "$1: qemu-io refused ($(grep -oE 'Failed to get[^"]*"[a-z ]+" lock' "$T/q.out" | head -1))"
	else
		not_ok "$1: qemu-io failed without a lock error"; diag <"$T/q.out"
	fi
}
refused "during commit, base" "$P/base.qcow2"
refused "during commit, top" "$P/top.qcow2"
refused "during commit, mid" "$P/mid.qcow2"
refused "during commit, overlay" "$P/d0/ovl0.qcow2"
snap_dir "$P" | grep -v base.qcow2 >"$T/b2.sha"
check_rc "during commit, a second imgraph commit: refused, exit 3" 3 \
	"$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q -r "$P"
snap_dir "$P" | grep -v base.qcow2 >"$T/a2.sha"
check "second commit: wrote nothing" cmp -s "$T/b2.sha" "$T/a2.sha"
ino=$(stat -c %i "$P/base.qcow2")
check_grep "base's lock bytes 100-101,103 and 201,203 are held" \
	":$ino 10[0-3] 10[0-3]" /proc/locks
check "qemu-img info -U still works during the commit" qemu-img info -U "$P/base.qcow2"

kill -INT "$pid"
wait "$pid"; rc=$?
check_eq "SIGINT: exit 1" "$rc" 1
check_grep "SIGINT: says cancelled" 'cancelled' "$T/c.err"
check_nogrep "SIGINT: no relink happened" '"relink"' "$T/c.err"
mv "$T/v/top.raw" "$T/top.raw"   # base need not hold top's view yet
fixture_verify "after cancel" "$P" "$T/v" top
check_nogrep "after cancel: no lock left" ":$ino " /proc/locks

check_rc "rerun completes" 0 "$IMGRAPH" commit --top "$P/top.qcow2" \
	--base "$P/base.qcow2" --yes -q -r "$P"
mv "$T/top.raw" "$T/v/top.raw"
fixture_verify "after rerun" "$P" "$T/v" base

done_testing
