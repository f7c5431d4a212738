#!/usr/bin/env bash
# plan_below_base.sh - base's view includes what base reads below itself,
# so a chain below base that QEMU cannot open is a conflict, and nothing
# is written.  The plan used to say "the plan can run" for each of these:
#   B1 a backing loop strictly below base (base -> x -> y -> x);
#   B2 base's own backing file is missing;
#   B3 a probed layer below base whose backing file the scan does not
#      follow (a qed base reading a qcow v1 file, which records no
#      format), where QEMU itself finds a loop; stating the formats lets
#      imgraph follow the chain, and it then names the loop;
#   B4 control: a sound chain below base plans and commits, judged by
#      qemu-img.
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io

# refused NAME DIR ARGS...: plan and commit exit 3, and no file changes.
refused() {
	local n=$1 d=$2; shift 2
	snap_dir "$d" >"$T/before"
	cd "$d" || exit 1
	check_rc "$n: plan conflicts" 3 "$IMGRAPH" plan "$@" .
	cp "$T/.out" "$T/plan.out"
	check_rc "$n: commit refuses" 3 "$IMGRAPH" commit --yes "$@" .
	snap_dir "$d" >"$T/after"
	check "$n: nothing written" cmp -s "$T/before" "$T/after"
}

# B1
D=$T/b1; mkdir -p "$D"; cd "$D" || exit 1
mkq x.qcow2 4M
mkq y.qcow2 4M x.qcow2
qemu-img rebase -q -u -f qcow2 -b y.qcow2 -F qcow2 x.qcow2
# -u: the chain loops, so QEMU cannot open it to take the size
qemu-img create -q -f qcow2 -u -b x.qcow2 -F qcow2 base.qcow2 4M
qemu-img create -q -f qcow2 -u -b base.qcow2 -F qcow2 top.qcow2 4M
check "B1: QEMU cannot open top (control)" sh -c \
	'! qemu-img info --backing-chain top.qcow2 >/dev/null 2>&1'
refused B1 "$D" --top top.qcow2
check_grep "B1: the loop below base is named" \
	"base 'base\.qcow2' reads 'x\.qcow2' below it, which cannot be used: backing loop: x\.qcow2 .* -> y\.qcow2 .* -> x\.qcow2" "$T/plan.out"
check_grep "B1: as an image-state conflict" '^  \[image-state\]' "$T/plan.out"

# B2
D=$T/b2; mkdir -p "$D"; cd "$D" || exit 1
mkq gone.qcow2 4M
mkq base.qcow2 4M gone.qcow2
mkq top.qcow2 4M base.qcow2
qio top.qcow2 -c 'write -P 0x22 0 64k'
rm gone.qcow2
refused B2 "$D" --top top.qcow2
check_grep "B2: the missing file below base is named" \
	"base 'base\.qcow2' reads 'gone\.qcow2' below it, which cannot be used" "$T/plan.out"

# B3: qed base -> a.qcow (qcow v1, its link records no format) ->
# b.qcow2 -> bad.qed again.
D=$T/b3; mkdir -p "$D"; cd "$D" || exit 1
qemu-img create -q -f qed bad.qed 4M
qemu-img create -q -f qcow2 -u -b bad.qed -F qed b.qcow2 4M
qemu-img create -q -f qcow -u -b b.qcow2 -F qcow2 a.qcow 4M
qemu-img rebase -q -f qed -u -b a.qcow -F qcow bad.qed
qemu-img create -q -f qcow2 -u -b bad.qed -F qed top.qcow2 4M
check "B3: QEMU cannot open top (control)" sh -c \
	'! qemu-img info --backing-chain top.qcow2 >/dev/null 2>&1'
refused B3 "$D" --top top.qcow2
check_grep "B3: the probed layer and its unfollowed backing file are named" \
	"base 'bad\.qed' reads 'a\.qcow' below it, whose format was probed \(qcow\) .*its backing file 'b\.qcow2' is not followed" "$T/plan.out"
check_grep "B3: the hint states the format" "hint: If it really is qcow, say so: --format .*a\.qcow=qcow" "$T/plan.out"
refused "B3 stated" "$D" --top top.qcow2 --format a.qcow=qcow --format b.qcow2=qcow2
check_grep "B3 stated: the loop is found and named" "backing loop: .*bad\.qed" "$T/plan.out"

# B4
D=$T/b4; mkdir -p "$D"; cd "$D" || exit 1
mkq under.qcow2 4M
qio under.qcow2 -c 'write -P 0x11 0 1M'
mkq base.qcow2 4M under.qcow2
mkq top.qcow2 4M base.qcow2
qio top.qcow2 -c 'write -P 0x22 512k 64k'
mkq leaf.qcow2 4M top.qcow2
guest_raw leaf.qcow2 "$T/leaf.before"
check_rc "B4: a sound chain below base plans clean" 0 "$IMGRAPH" plan --top top.qcow2 .
check_rc "B4: and commits" 0 "$IMGRAPH" commit --yes -q --top top.qcow2 .
guest_raw leaf.qcow2 "$T/leaf.after"
check "B4: qemu-img: leaf's view unchanged" cmp -s "$T/leaf.before" "$T/leaf.after"
qcheck "B4: qemu-img check base" base.qcow2
done_testing
