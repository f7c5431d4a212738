#!/usr/bin/env bash
# commit_foreign.sh - qed, qcow v1 and vmdk images in the chains of a
# commit: as siblings reading base, as readers through a foreign
# intermediate, as parents of top (a qed is relinked, byte for byte as
# qemu-img rebase -u would; qcow and vmdk cannot be, and the plan says
# why), as top and intermediate committed into a raw base, and a kept
# foreign top (which would be emptied) refused with the reason while
# --drop-top commits it.  Judged by qemu-img compare/check/info.
#
# Regression: a qed parent of top was a relink conflict ("format qed
# cannot rewrite its backing link"), and the conflicts of qcow/vmdk
# parents said no why.  The Why cases of the issue (a qed or qcow
# overlay of base, a qcow2 VM reading base through a qed, --drop-top
# --delete of a top that a qed child needs) are kept here as well.
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io jq

# base.qcow2 <- top.qcow2 <- vm.qcow2 in DIR
chain() {
	mkdir -p "$1"
	mkq "$1/base.qcow2" 4M
	qio "$1/base.qcow2" -c 'write -P 0x11 0 2M'
	mkq "$1/top.qcow2" 4M base.qcow2
	qio "$1/top.qcow2" -c 'write -P 0x22 512k 1M'
	mkq "$1/vm.qcow2" 4M top.qcow2
	qio "$1/vm.qcow2" -c 'write -P 0x33 3M 64k'
}

# --- Why: a qed or qcow overlay of base is a node and a conflict.
d=$T/sib; chain "$d"
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/sib.qed" 4M
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 "$d/sib.qcow" 4M
snap_dir "$d" >"$T/before"
check_rc "sib: plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow2" "$d"
check_grep "sib: the qed overlay of base conflicts" "\[permission\].*unshared by node '[^']*sib.qed'" "$T/.out"
check_grep "sib: the qcow overlay of base conflicts" "\[permission\].*unshared by node '[^']*sib.qcow'" "$T/.out"
check_rc "sib: commit refuses" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" "$d"
snap_dir "$d" >"$T/after"
check "sib: nothing written" cmp "$T/before" "$T/after"

# --- Why: a qcow2 VM reading base through a qed intermediate.
d=$T/through; chain "$d"
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/mid.qed" 4M
mkq "$d/vm2.qcow2" 4M mid.qed qed
check_rc "through: plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow2" "$d"
check_grep "through: the qed the VM reads through conflicts" "unshared by node '[^']*mid.qed'" "$T/.out"

# --- Why: --drop-top --delete must not delete top while a qed child needs it.
d=$T/drop; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
mkq "$d/top.qcow2" 4M base.qcow2
qio "$d/top.qcow2" -c 'write -P 0x22 0 64k'
qemu-img create -q -f qed -b top.qcow2 -F qcow2 "$d/child.qed" 4M
qemu-io -f qed -c 'write -P 0x44 1M 64k' "$d/child.qed" >/dev/null
guest_raw "$d/child.qed" "$T/child.raw"
check_rc "drop: commit --drop-top --delete refuses" 3 \
	"$IMGRAPH" commit --yes -q --drop-top --delete --top "$d/top.qcow2" "$d"
check "drop: top is still there" test -f "$d/top.qcow2"
check "drop: the qed child reads as before" qemu-img compare -q -U "$d/child.qed" "$T/child.raw"

# --- A qed parent of top is relinked, as qemu-img rebase -u relinks it
# (vm.qcow2 records top's format, so top's own link is followed).
d=$T/qedpar; chain "$d"
qemu-img create -q -f qed -b top.qcow2 -F qcow2 "$d/par.qed" 4M
qemu-io -f qed -c 'write -P 0x55 1536k 64k' "$d/par.qed" >/dev/null
for f in vm.qcow2 par.qed; do guest_raw "$d/$f" "$T/$f.raw"; done
mkdir -p "$T/ref"
cp "$d/par.qed" "$T/ref/par.qed"
(cd "$T/ref" && qemu-img rebase -u -b base.qcow2 -F qcow2 par.qed)
check_rc "qed parent: plan runs" 0 "$IMGRAPH" plan --top "$d/top.qcow2" "$d"
check_grep "qed parent: listed, the new format shown as probed" "par.qed: 'top.qcow2' \(format not recorded\) -> 'base.qcow2' \(qcow2, probed: qed records no format but raw\)" "$T/.out"
check_rc "qed parent: commit runs" 0 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" "$d"
check_eq "qed parent: now names base" \
	"$(qemu-img info -U --output=json "$d/par.qed" | jq -r '."backing-filename"')" base.qcow2
check "qed parent: file identical to qemu-img rebase -u's" cmp "$d/par.qed" "$T/ref/par.qed"
for f in vm.qcow2 par.qed; do
	check "qed parent: $f reads as before" qemu-img compare -q -U "$d/$f" "$T/$f.raw"
done
check "qed parent: qemu-img check" qemu-img check -q "$d/par.qed"
qcheck "qed parent: base checks clean" "$d/base.qcow2"

# --- The qed relink is journaled like a qcow2 one: a commit killed before
# or cut at each op of the whole run, then `imgraph recover`, leaves both
# parents on top or both on base, every view intact, qemu-img check clean.
W=$T/qcrash
chain "$W"
qemu-img create -q -f qed -b top.qcow2 -F qcow2 "$W/par.qed" 4M
qemu-io -f qed -c 'write -P 0x55 1536k 64k' "$W/par.qed" >/dev/null
for f in vm.qcow2 par.qed; do guest_raw "$W/$f" "$T/c$f.raw"; done
cp -a "$W" "$T/qtpl"
qcommit() { "$IMGRAPH" commit --yes -q --top "$W/top.qcow2" "$W" >/dev/null 2>&1; }
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/qcount qcommit
n=$(cat "$T/qcount")
bad=0
for k in $(seq 1 "$n"); do
	for f in kill:$k cut:$k:$k; do
		rm -rf "$W"; cp -a "$T/qtpl" "$W"
		( IMGRAPH_FAULT=$f qcommit ) 2>/dev/null
		"$IMGRAPH" recover "$W" >/dev/null 2>&1
		a=$(qemu-img info -U --output=json "$W/par.qed" | jq -r '."backing-filename"')
		b=$(qemu-img info -U --output=json "$W/vm.qcow2" | jq -r '."backing-filename"')
		if [ "$a" != "$b" ]; then
			echo "# $f: par.qed names $a, vm.qcow2 names $b"; bad=$((bad + 1)); continue
		fi
		for v in vm.qcow2 par.qed; do
			qemu-img compare -q -U "$W/$v" "$T/c$v.raw" 2>/dev/null ||
				{ echo "# $f: $v's view changed"; bad=$((bad + 1)); }
			qemu-img check -q "$W/$v" >/dev/null 2>&1; rc=$?
			[ $rc = 0 ] || [ $rc = 3 ] ||
				{ echo "# $f: $v check exit $rc"; bad=$((bad + 1)); }
		done
	done
done
check_eq "qed parent: $((2 * n)) crashes (kill, cut), recovered, invariants hold" "$bad" 0

# --- A qcow v1 parent cannot be relinked: a conflict that names the
# format and says why.  (A vmdk can only have a vmdk backing file, whose
# link records no format: see the last case.)
for f in qcow; do
	d=$T/par$f; chain "$d"
	qemu-img create -q -f $f -b top.qcow2 -F qcow2 "$d/par.$f" 4M
	snap_dir "$d" >"$T/before"
	check_rc "$f parent: plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow2" "$d"
	check_grep "$f parent: the conflict names the format" "\[relink\] '[^']*par.$f': format $f cannot rewrite its backing link" "$T/.out"
	check_grep "$f parent: and says why" "qemu-img rebase -u cannot change a $f image's backing file either" "$T/.out"
	check_rc "$f parent: commit refuses" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" "$d"
	snap_dir "$d" >"$T/after"
	check "$f parent: nothing written" cmp "$T/before" "$T/after"
done

# --- Commit from foreign images into a raw base: a qed that records raw
# (-F raw), as top and as intermediate.
d=$T/raw; mkdir -p "$d"
qemu-img create -q -f raw "$d/base.raw" 4M
qemu-io -f raw -c 'write -P 0x11 0 2M' "$d/base.raw" >/dev/null
qemu-img create -q -f qed -b base.raw -F raw "$d/mid.qed" 4M
qemu-io -f qed -c 'write -P 0x66 1M 1M' "$d/mid.qed" >/dev/null
mkq "$d/top.qcow2" 4M mid.qed qed
qio "$d/top.qcow2" -c 'write -P 0x77 1536k 64k'
mkq "$d/vm.qcow2" 4M top.qcow2
guest_raw "$d/vm.qcow2" "$T/rvm.raw"
guest_raw "$d/top.qcow2" "$T/rtop.raw"
check_rc "qed intermediate: plan runs" 0 "$IMGRAPH" plan --top "$d/top.qcow2" --base "$d/base.raw" "$d"
check_rc "qed intermediate: commit runs" 0 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" \
	--base "$d/base.raw" "$d"
check "qed intermediate: base holds top's view" qemu-img compare -q -U -f raw -F raw "$d/base.raw" "$T/rtop.raw"
check "qed intermediate: vm reads as before" qemu-img compare -q -U "$d/vm.qcow2" "$T/rvm.raw"

d=$T/qedtop; mkdir -p "$d"
qemu-img create -q -f raw "$d/base.raw" 4M
qemu-io -f raw -c 'write -P 0x11 0 2M' "$d/base.raw" >/dev/null
qemu-img create -q -f qed -b base.raw -F raw "$d/top.qed" 4M
qemu-io -f qed -c 'write -P 0x88 1M 1M' -c 'write -z 0 64k' "$d/top.qed" >/dev/null
guest_raw "$d/top.qed" "$T/qtop.raw"
# A qed top without parents is kept and emptied, as a qcow2 one (it was
# refused while qed was read-only): its view stays, base holds it.
k=$T/qedkeep; cp -a "$d" "$k"
check_rc "qed leaf top kept: commit runs" 0 "$IMGRAPH" commit --yes -q --top "$k/top.qed" "$k"
check "qed leaf top kept: base holds its view" qemu-img compare -q -U -f raw -F raw "$k/base.raw" "$T/qtop.raw"
check "qed leaf top kept: top reads as before" qemu-img compare -q -U -f qed -F raw "$k/top.qed" "$T/qtop.raw"
check_eq "qed leaf top kept: emptied (nothing allocated in it)" \
	"$(qemu-img map -U --output=json -f qed "$k/top.qed" | jq '[.[] | select(.depth == 0)] | length')" 0
check "qed leaf top kept: qemu-img check clean" qemu-img check -q -f qed "$k/top.qed"
check_rc "qed top --drop-top: commit runs" 0 "$IMGRAPH" commit --yes -q --drop-top --top "$d/top.qed" "$d"
check "qed top --drop-top: base holds its view" qemu-img compare -q -U -f raw -F raw "$d/base.raw" "$T/qtop.raw"
check "qed top --drop-top: the qed is left as it was" qemu-img compare -q -U -f qed -F raw "$d/top.qed" "$T/qtop.raw"

# --- A qed base takes a qed top's data and grows as QEMU grows a qed (the
# header's image size); the kept qed top is emptied.
d=$T/qedbase; mkdir -p "$d"
qemu-img create -q -f qed "$d/base.qed" 4M
qemu-io -f qed -c 'write -P 0x11 0 3M' "$d/base.qed" >/dev/null
qemu-img create -q -f qed -b base.qed -F qed "$d/top.qed" 6M
qemu-io -f qed -c 'write -P 0x22 64k 1M' -c 'write -z 2M 128k' \
	-c 'write -P 0x23 5M 64k' "$d/top.qed" >/dev/null
guest_raw "$d/top.qed" "$T/qbtop.raw"
check_rc "qed base: commit runs" 0 "$IMGRAPH" commit --yes -q --top "$d/top.qed" \
	--format "$d/top.qed=qed" --base-format qed "$d"
check "qed base: holds top's view" qemu-img compare -q -U -f qed -F raw "$d/base.qed" "$T/qbtop.raw"
check "qed base: qemu-img check clean" qemu-img check -q -f qed "$d/base.qed"
check_eq "qed base: grown to top's size" \
	"$(qemu-img info -U --output=json "$d/base.qed" | jq '."virtual-size"')" $((6 << 20))
check "qed base: the kept top reads as before" qemu-img compare -q -U -f qed -F raw "$d/top.qed" "$T/qbtop.raw"
check "qed base: the kept top checks clean" qemu-img check -q -f qed "$d/top.qed"

# --- A qcow v1 top records no backing format: the plan says so, and how
# to record one; nothing is written.  (A vmdk's backing file is always a
# vmdk, which imgraph never writes: base is refused as such.)
d=$T/nofmt; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 "$d/top.qcow" 4M
qemu-io -f qcow -c 'write -P 0x99 0 64k' "$d/top.qcow" >/dev/null
qemu-img create -q -f vmdk "$d/vbase.vmdk" 4M
qemu-img create -q -f vmdk -b vbase.vmdk -F vmdk "$d/vtop.vmdk" 4M
snap_dir "$d" >"$T/before"
check_rc "qcow top: plan refuses" 3 "$IMGRAPH" plan --drop-top --top "$d/top.qcow" "$d"
check_grep "qcow top: the hint says the format cannot record one" "convert the overlay to qcow2, which records it \(this format cannot record a backing format\)" "$T/.out"
check_rc "qcow top: commit refuses" 3 "$IMGRAPH" commit --yes -q --drop-top --top "$d/top.qcow" "$d"
check_rc "vmdk top: plan refuses" 3 "$IMGRAPH" plan --drop-top --top "$d/vtop.vmdk" "$d"
check_grep "vmdk top: base refused as vmdk" "base '[^']*vbase.vmdk' cannot be written: vmdk images are read, never written" "$T/.out"
snap_dir "$d" >"$T/after"
check "qcow/vmdk tops: nothing written" cmp "$T/before" "$T/after"

# --- vmdk parentFileNameHint with the parent CID check: once the parent
# changed (a write gives it a new CID), QEMU refuses to read through the
# link, and so does imgraph: the overlay is in error, its chain fails.
d=$T/cid; mkdir -p "$d"
qemu-img create -q -f vmdk "$d/base.vmdk" 4M
qemu-img create -q -f vmdk -b base.vmdk -F vmdk "$d/top.vmdk" 4M
"$IMGRAPH" tree "$d" >"$T/tree" 2>&1
check_nogrep "cid: a matching parent CID is no error" "top.vmdk .*error" "$T/tree"
qemu-io -f vmdk -c 'write -P 1 0 64k' "$d/base.vmdk" >/dev/null
check_rc "cid: qemu-img cannot read through it" 1 qemu-img convert -O raw "$d/top.vmdk" "$T/cid.raw"
"$IMGRAPH" tree "$d" >"$T/tree" 2>&1
check_grep "cid: the tree shows the overlay in error" "top.vmdk .*\[error\]" "$T/tree"
check_grep "cid: the error names parentCID and the parent" "field 'parentCID' is [0-9a-f]+ but the parent '[^']*base.vmdk' has CID" "$T/tree"
need_fmt_tool
check_rc "cid: reading the chain fails, as QEMU's does" 1 "$FMT_TOOL" compare "$d/top.vmdk" "$d/base.vmdk"

done_testing
