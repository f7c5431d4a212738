#!/usr/bin/env bash
# commit_reflink.sh - the three ways data moves into base give one base.
#
# --copy-method clone (shared extents), copy_file_range and read/write (the
# plain path) commit the same chains; each base must show top's view from
# before the commit (qemu-img compare), pass qemu-img check, and equal the
# others.  Where: XFS (reflink=1) and btrfs file systems on loop devices
# made here (root only; a visible SKIP otherwise, a failure under CI), and
# the scratch directory's own file system, which shares no extents (a
# clone asked for falls back to copy_file_range there).
#
# Guards: runs moved file to file land at the right guest offsets in a
# qcow2 base (contiguous new clusters) and in a raw base (guest offset to
# guest offset); compressed clusters and 512-byte clusters (not clonable:
# unaligned) fall back per run; a cloned base shares extents with top
# (filefrag) and keeps its data when top and mid are deleted.
. "$(dirname "$0")/lib.sh"

MNTS=()
cleanup() {
	for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# chain_q DIR: qcow2 base (64 KiB clusters, data of its own) <- mid (4 KiB
# clusters: 1 MiB compressed, 2 MiB plain) <- top (64 KiB clusters: data,
# zeros, a 1 KiB write, data past base's data).
chain_q() {
	local d=$1
	mkdir -p "$d"
	qemu-img create -q -f qcow2 "$d/base.qcow2" 64M
	qio "$d/base.qcow2" -c 'write -P 0x11 0 8M'
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.qcow2 -F qcow2 "$d/mid.qcow2" 64M
	qio "$d/mid.qcow2" -c 'write -c -P 0x22 1M 1M' -c 'write -P 0x23 4M 2M'
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 64M
	qio "$d/top.qcow2" -c 'write -P 0x33 1536k 3M' -c 'write -z 6M 128k' \
		-c 'write -P 0x34 9M 1k' -c 'write -P 0x35 20M 16M' -c 'write -P 0x36 63M 1M'
}

# chain_r DIR: raw base <- top with 512-byte clusters.
chain_r() {
	local d=$1
	mkdir -p "$d"
	qemu-img create -q -f raw "$d/base.raw" 32M
	qemu-io -f raw -c 'write -P 0x41 0 4M' "$d/base.raw" >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw "$d/top.qcow2" 32M
	qio "$d/top.qcow2" -c 'write -P 0x42 1M 5M' -c 'write -P 0x43 17M 64k'
}

# by_method JSON METHOD: bytes the commit moved that way
by_method() { jq -r --arg m "$2" '."bytes-by-method"[$m]' "$1"; }

# run_methods WHERE KIND SHARES: commit chain KIND (q or r) once per method
# under WHERE; SHARES=1 where the file system shares extents.
run_methods() {
	local w=$1 kind=$2 shares=$3 base=base.qcow2 fmt=qcow2 m d tag
	[ "$kind" = r ] && base=base.raw fmt=raw
	"chain_$kind" "$w/tpl_$kind"
	guest_raw "$w/tpl_$kind/top.qcow2" "$w/view_$kind.raw"
	for m in clone copy_file_range read/write; do
		tag="$(basename "$w") $kind ${m%%/*}"
		d=$w/$kind-${m%%/*}
		cp -a "$w/tpl_$kind" "$d"
		check_rc "$tag: commit" 0 "$IMGRAPH" commit --top "$d/top.qcow2" \
			--base "$d/$base" --drop-top --yes -o json --copy-method "$m" "$d"
		cp "$T/.out" "$d.json"
		check "$tag: base shows top's view" qemu-img compare -q -f "$fmt" -F raw "$d/$base" "$w/view_$kind.raw"
		[ "$fmt" = qcow2 ] && qcheck "$tag: base check" "$d/$base"
	done
	check "$(basename "$w") $kind: clone base = read/write base" \
		qemu-img compare -q -f "$fmt" -F "$fmt" "$w/$kind-clone/$base" "$w/$kind-read/$base"
	check "$(basename "$w") $kind: copy_file_range base = read/write base" \
		qemu-img compare -q -f "$fmt" -F "$fmt" "$w/$kind-copy_file_range/$base" "$w/$kind-read/$base"
	tag="$(basename "$w") $kind"
	check_eq "$tag: read/write moves nothing file to file" \
		"$(by_method "$w/$kind-read.json" clone)+$(by_method "$w/$kind-read.json" copy_file_range)" "0+0"
	if [ "$shares" = 1 ] && [ "$kind" = q ]; then
		check "$tag: clone shared extents" test "$(by_method "$w/$kind-clone.json" clone)" -gt 0
		check_grep "$tag: base's extents are shared" 'shared' <(filefrag -v "$w/$kind-clone/$base")
	elif [ "$shares" = 0 ]; then
		check_eq "$tag: no clone where the file system cannot" "$(by_method "$w/$kind-clone.json" clone)" 0
		check "$tag: the clone asked for fell back to copy_file_range" \
			test "$(by_method "$w/$kind-clone.json" copy_file_range)" -gt 0
	fi
	# The cloned base keeps its data without the images it came from.
	d=$w/$kind-clone
	rm -f "$d/top.qcow2" "$d/mid.qcow2"
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	check "$tag: base survives deleting top" qemu-img compare -q -f "$fmt" -F raw "$d/$base" "$w/view_$kind.raw"
	[ "$fmt" = qcow2 ] && qcheck "$tag: base check after deleting top" "$d/$base"
}

# loop_fs FS: mount a fresh FS on a loop device under $T/FS; why in $why
loop_fs() {
	local fs=$1 img=$T/$1.img mnt=$T/$1
	why=""
	[ "$(id -u)" = 0 ] || { why="needs root (loop devices)"; return 1; }
	command -v "mkfs.$fs" >/dev/null || { why="mkfs.$fs missing (make deps)"; return 1; }
	truncate -s 512M "$img" && mkdir -p "$mnt" || { why="no scratch space"; return 1; }
	if [ "$fs" = xfs ]; then
		mkfs.xfs -q -f -m reflink=1 "$img" >/dev/null 2>&1 || { why="mkfs.xfs -m reflink=1 failed"; return 1; }
	else
		mkfs.btrfs -q -f "$img" >/dev/null 2>&1 || { why="mkfs.btrfs failed"; return 1; }
	fi
	mount -o loop "$img" "$mnt" 2>"$T/.mnt" || { why="mount -o loop failed: $(head -c 120 "$T/.mnt")"; return 1; }
	MNTS+=("$mnt")
}

# The scratch file system (ext4 or tmpfs here): no clone.
mkdir -p "$T/scratch"
run_methods "$T/scratch" q 0
run_methods "$T/scratch" r 0

for fs in xfs btrfs; do
	if loop_fs "$fs"; then
		run_methods "$T/$fs" q 1
		run_methods "$T/$fs" r 1
		# The plan says clone for both layers above base.
		chain_q "$T/$fs/plan"
		check_rc "$fs: plan" 0 "$IMGRAPH" plan --top "$T/$fs/plan/top.qcow2" \
			--base "$T/$fs/plan/base.qcow2" -o json "$T/$fs/plan"
		check_eq "$fs: plan's copy methods" "$(jq -r '."copy-methods"[].method' "$T/.out" | tr '\n' ' ')" "clone clone "
	else
		skip "$fs: reflink, copy_file_range and plain paths" "$why"
	fi
done

# The plan on the scratch file system: copy_file_range, the kernel's copy.
chain_q "$T/scratch/plan"
check_rc "scratch: plan" 0 "$IMGRAPH" plan --top "$T/scratch/plan/top.qcow2" \
	--base "$T/scratch/plan/base.qcow2" "$T/scratch/plan"
check_grep "scratch: plan names the method" '^copy method: +.*top.qcow2 copy_file_range, .*mid.qcow2 copy_file_range' "$T/.out"

done_testing
