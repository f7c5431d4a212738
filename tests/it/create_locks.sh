#!/bin/bash
# create_locks.sh - `imgraph create` over an existing image respects QEMU's
# locks, as `qemu-img create` does: while qemu-io holds the image
# read-write (or read-only: a qcow2 open shares no writing), create fails
# with QEMU's message and the image is untouched; a -U reader shares
# everything, so both tools go ahead; with no holder the image is replaced.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
fresh() {
	rm -f vm.qcow2
	mkq vm.qcow2 16M
	qio vm.qcow2 -c 'write -P 0x5a 0 1M'
	guest_raw vm.qcow2 "$T/vm.raw"
}
for mode in rw r; do
	fresh
	args=(-f qcow2 vm.qcow2); [ $mode = r ] && args=(-r "${args[@]}")
	holder_qio "${args[@]}" || not_ok "$mode holder started"
	sha256sum vm.qcow2 >"$T/before"
	check_rc "held $mode: imgraph create refused" 1 "$IMGRAPH" create -f raw vm.qcow2 16M
	check_grep "held $mode: QEMU's message" \
		'vm\.qcow2: Failed to get "write" lock.*Is another process using the image \[vm\.qcow2\]\?' "$T/.err"
	check "held $mode: nothing truncated or replaced" sha256sum -c --quiet "$T/before"
	check "held $mode: still the qcow2 image with its data" \
		qemu-img compare -U -q -F raw vm.qcow2 "$T/vm.raw"
	check_rc "held $mode: qemu-img create refuses alike" 1 qemu-img create -q -f raw vm.qcow2 16M
	check "held $mode: qemu-img did not touch it either" sha256sum -c --quiet "$T/before"
	holder_stop
done

fresh
holder_qio -r -U -f qcow2 vm.qcow2 || not_ok "-U holder started"
check_rc "a -U reader shares everything: qemu-img create goes ahead" 0 \
	qemu-img create -q -f qcow2 vm.qcow2 16M
check_rc "a -U reader shares everything: imgraph create goes ahead" 0 \
	"$IMGRAPH" create -q -f raw vm.qcow2 16M
holder_stop
check_grep "replaced by a raw image" 'file format: raw' <(qemu-img info vm.qcow2)

fresh
check_rc "no holder: create replaces the image" 0 "$IMGRAPH" create -q -f qcow2 vm.qcow2 8M
check_grep "the new image" 'virtual size: 8 MiB' <(qemu-img info vm.qcow2)
qcheck "the new image is clean" vm.qcow2
done_testing
