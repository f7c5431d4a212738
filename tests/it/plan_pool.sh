#!/bin/bash
# plan_pool.sh - the pool a plan sees is the pool the commit acts on.
#
#  * The narrow pool: `plan --top dev.qcow2 --base golden.qcow2 dev.qcow2`
#    scans the directory of top and base anyway, sees test.qcow2 reading
#    golden and refuses; the commit with the same arguments refuses with
#    the same conflict (it used to say "the pool changed since the plan").
#  * The directory of an intermediate and of every parent is scanned: a
#    reader of the intermediate in its own directory, and a second parent
#    beside one named as a PATH, are seen.
#  * 70 overlays of top, the last one the plan lists open read-write by a
#    process without a lock: every parent is checked for openers (the
#    check used to stop at 64), plan and commit refuse, nothing written.
#  * Limits are conflicts that name them: a hard open-file limit too low
#    for the files the commit holds.
. "$(dirname "$0")/lib.sh"

# pair NAME RC ARGS...: plan and commit with the same arguments both exit
# RC; with 3, the commit shows the plan's conflicts and writes nothing.
pair() {
	local n=$1 want=$2 d=$3
	shift 3
	snap_dir "$d" >"$T/before"
	check_rc "$n: plan exits $want" "$want" "$IMGRAPH" plan "$@"
	cp "$T/.out" "$T/plan.out"
	check_rc "$n: commit exits $want" "$want" "$IMGRAPH" commit --yes -q "$@"
	cp "$T/.out" "$T/commit.out"
	cp "$T/.err" "$T/commit.err"
	[ "$want" = 3 ] || return 0
	snap_dir "$d" >"$T/after"
	check "$n: commit wrote nothing" cmp -s "$T/before" "$T/after"
	check "$n: commit shows the plan's conflicts" cmp -s \
		<(sed -n '/^conflicts (/,$p' "$T/plan.out") \
		<(sed -n '/^conflicts (/,$p' "$T/commit.out")
	check_nogrep "$n: not 'the pool changed'" 'pool changed' "$T/commit.err"
}

# ---- the narrow pool ---------------------------------------------------------
N=$T/narrow
mkdir -p "$N"
cd "$N" || exit 1
mkq golden.qcow2 4M
qio golden.qcow2 -c 'write -P 0x11 0 1M'
mkq dev.qcow2 4M golden.qcow2 qcow2
qio dev.qcow2 -c 'write -P 0x22 0 64k'
mkq test.qcow2 4M golden.qcow2 qcow2
pair "narrow pool" 3 "$N" --top dev.qcow2 --base golden.qcow2 dev.qcow2
check_grep "narrow pool: the sibling is seen" \
	"\[permission\] .*unshared by node 'test\.qcow2'" "$T/plan.out"
check_grep "narrow pool: lists the directory scanned" \
	"^pool scanned: +$(realpath "$N")/dev\.qcow2, $(realpath "$N")/\$" "$T/plan.out"

# ---- directories of the intermediates and of the parents ---------------------
D=$T/dirs
mkdir -p "$D/lib" "$D/mids" "$D/vm" "$D/other"
cd "$D" || exit 1
mkq lib/golden.qcow2 4M
mkq mids/mid.qcow2 4M ../lib/golden.qcow2 qcow2
qio mids/mid.qcow2 -c 'write -P 0x33 0 64k'
mkq vm/dev.qcow2 4M ../mids/mid.qcow2 qcow2
mkq mids/reader.qcow2 4M mid.qcow2 qcow2
pair "reader of the intermediate" 3 "$D" --top vm/dev.qcow2 --base lib/golden.qcow2 vm
check_grep "reader of the intermediate: seen in the intermediate's directory" \
	"unshared by commit job 'commit' \(uses node 'mids/mid\.qcow2' as 'intermediate node' child\)" "$T/plan.out"
check_grep "reader of the intermediate: its directory listed" \
	"^pool scanned: .*$(realpath "$D")/mids/" "$T/plan.out"
rm mids/reader.qcow2
mkq other/ov1.qcow2 4M ../vm/dev.qcow2 qcow2
mkq other/ov2.qcow2 4M ../vm/dev.qcow2 qcow2
check_rc "a parent named as a PATH: its directory is scanned" 0 "$IMGRAPH" plan \
	--top vm/dev.qcow2 --base lib/golden.qcow2 other/ov1.qcow2
check_grep "both parents found" '^parents relinked to base \(2\):' "$T/.out"
check_rc "json: both parents" 0 "$IMGRAPH" plan --output=json \
	--top vm/dev.qcow2 --base lib/golden.qcow2 other/ov1.qcow2
check "json: scanned lists the added directories" sh -c "jq -e '.scanned.directories | index(\"$(realpath "$D")/other\") and index(\"$(realpath "$D")/mids\")' '$T/.out' >/dev/null"

# ---- 70 overlays, the last one open without a lock ---------------------------
M=$T/many
mkdir -p "$M"
cd "$M" || exit 1
mkq base.qcow2 4M
qio base.qcow2 -c 'write -P 0x11 0 1M'
mkq top.qcow2 4M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x22 0 64k'
for i in $(seq -w 1 70); do mkq "ov$i.qcow2" 4M top.qcow2 qcow2; done
check_rc "70 parents, no holder: runnable" 0 "$IMGRAPH" plan --output=json \
	--top top.qcow2 --base base.qcow2
check_eq "70 parents listed" "$(jq '.parents | length' "$T/.out")" 70
last=$(jq -r '.parents[-1].filename' "$T/.out")
bash -c 'exec 3<>"$1"; exec sleep 600' _ "$last" &
HOLDER=$!
holder_wait fd "$(basename "$last")" || not_ok "the opener started"
pair "the 70th parent open without a lock" 3 "$M" --top top.qcow2 --base base.qcow2
check_grep "70th parent: the opener is named" \
	"\[lock\] process $HOLDER \(sleep\) has '$(basename "$last")' open without QEMU's locks" "$T/plan.out"
holder_stop

# ---- limits ------------------------------------------------------------------
# 72 files to hold (base, top, 70 parents) with a hard limit of 360: less
# the spare descriptors for the chain and the journal, too few.
check_rc "open-file limit: plan refuses" 3 bash -c \
	"ulimit -n 360 && exec '$IMGRAPH' plan --top top.qcow2 --base base.qcow2"
check_grep "open-file limit: named" \
	'72 files to hold open, more than the open-file limit allows \([0-9]+: the hard RLIMIT_NOFILE less [0-9]+ spare\)' "$T/.out"
snap_dir "$M" >"$T/before"
check_rc "open-file limit: commit refuses" 3 bash -c \
	"ulimit -n 360 && exec '$IMGRAPH' commit --yes -q --top top.qcow2 --base base.qcow2"
snap_dir "$M" >"$T/after"
check "open-file limit: nothing written" cmp -s "$T/before" "$T/after"
check_rc "within the limit: the commit runs" 0 "$IMGRAPH" commit --yes -q \
	--top top.qcow2 --base base.qcow2
check_eq "every parent now on base" "$(for f in ov*.qcow2; do qemu-img info -U "$f" | grep -c '^backing file: base.qcow2'; done | grep -c 1)" 70
done_testing
