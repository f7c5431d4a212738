#!/usr/bin/env bash
# crash_pull.sh - crash consistency of commit --pull: a template with 3
# clones, one clone's snapshot (extended L2 with partly allocated
# clusters, then plain v3) pulled onto the template.  Killed at every
# mutating op (and power-cut at every 3rd, 2 seeds), then `imgraph
# recover`; judged with qemu-img:
#   every image's guest view unchanged (qemu-img compare); top names the
#   template (the journal was reached) or still its clone; check without
#   corruptions everywhere (a crash may leak); the template byte-identical
#   (sha256); no journal.
# Then ENOSPC in top mid-pull (IMGRAPH_FAULT=err:K:ENOSPC:always at a data
# write): the pull stops with an error, every view intact, top still on its
# clone, no journal; the rerun completes.
# IMGRAPH_LONG=1: power cut at every op with 4 seeds.
. "$(dirname "$0")/lib.sh"

W=$T/w
# setup SNAP_OPTS...: the template, its clones, the snapshot pulled and its
# overlay; the views and the template's hash saved.
setup() {
	local i f
	rm -rf "$W" "$T/tpl" "$T/views"; mkdir -p "$W" "$T/views"
	mkq "$W/tpl.qcow2" 16M
	qio "$W/tpl.qcow2" -c 'write -P 0x11 0 12M'
	for i in 1 2 3; do
		mkq "$W/clone$i.qcow2" 16M tpl.qcow2
		qio "$W/clone$i.qcow2" -c "write -P 0x2$i 0 512k" -c "write -P 0x3$i 3M 1M" \
			-c "write -z 6M 256k" -c "write -c -P 0x4$i 9M 512k"
	done
	mkq "$W/snap.qcow2" 16M clone1.qcow2 qcow2 "$@"
	# partial clusters of its own where clone1 has data
	qio "$W/snap.qcow2" -c 'write -P 0x55 3200k 4k' -c 'write -P 0x56 14M 64k' \
		-c 'write -P 0x57 100k 2k'
	mkq "$W/vm.qcow2" 16M snap.qcow2
	qio "$W/vm.qcow2" -c 'write -P 0x66 5M 64k'
	for f in "$W"/*.qcow2; do guest_raw "$f" "$T/views/$(basename "$f").raw"; done
	sha256sum "$W/tpl.qcow2" >"$T/tpl.sha"
	cp -a "$W" "$T/tpl"
}
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
pull() { "$IMGRAPH" commit --pull --top "$W/snap.qcow2" --base "$W/tpl.qcow2" \
	--yes -q >/dev/null 2>"$T/pull.err"; }
bk() { qemu-img info -U --output=json "$1" | sed -n 's/^ *"backing-filename": "\(.*\)",*$/\1/p'; }

# views_ok WHY: every view as saved, checks without corruptions, the
# template untouched; 0 or 1 (and says why).
views_ok() {
	local f rc
	for f in "$W"/*.qcow2; do
		if ! qemu-img compare -U -q "$f" "$T/views/$(basename "$f").raw" 2>/dev/null; then
			echo "# $1: $(basename "$f")'s view changed"; return 1
		fi
		qemu-img check -U -q "$f" >/dev/null 2>&1; rc=$?
		if [ $rc != 0 ] && [ $rc != 3 ]; then
			echo "# $1: $(basename "$f") check rc=$rc"; return 1
		fi
	done
	sha256sum -c --quiet "$T/tpl.sha" >/dev/null 2>&1 || { echo "# $1: template written"; return 1; }
	return 0
}
runs=0 fails=0 relinked=0
crash_case() {
	local f=$1 side
	restore
	( IMGRAPH_FAULT=$f pull ) 2>/dev/null
	runs=$((runs + 1))
	if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
		echo "# $f: recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); return
	fi
	views_ok "$f" || { fails=$((fails + 1)); return; }
	side=$(bk "$W/snap.qcow2")
	case "$side" in
	tpl.qcow2) relinked=$((relinked + 1)) ;;
	clone1.qcow2) ;;
	*) echo "# $f: top names '$side'"; fails=$((fails + 1)); return ;;
	esac
	if [ "$(bk "$W/vm.qcow2")" != snap.qcow2 ]; then
		echo "# $f: top's parent moved"; fails=$((fails + 1)); return
	fi
	if ls -a "$W" | grep -q '^\.imgraph-journal'; then
		echo "# $f: journal left"; fails=$((fails + 1))
	fi
}
report() {
	if [ $fails = 0 ]; then ok "$1: $runs runs, invariants hold"
	else not_ok "$1: $fails of $runs runs broke an invariant"; fi
	runs=0 fails=0
}

# scenario NAME SNAP_OPTS...: kill at every op, power cut at every 3rd.
scenario() {
	local name=$1 k s step=3 seeds="1 2"
	shift
	setup "$@"
	restore
	IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count pull
	TOTAL=$(cat "$T/count")
	[ "$TOTAL" -gt 5 ] && ok "$name: count: $TOTAL mutating ops" || not_ok "$name: count: $TOTAL"
	relinked=0
	for ((k = 1; k <= TOTAL; k++)); do crash_case "kill:$k"; done
	report "$name: kill before every op (1..$TOTAL)"
	check "$name: some killed runs were relinked ($relinked)" test "$relinked" -gt 0
	[ "${IMGRAPH_LONG:-0}" = 1 ] && { step=1; seeds="1 2 3 4"; }
	for s in $seeds; do
		for ((k = 1; k <= TOTAL; k += step)); do crash_case "cut:$k:$s"; done
	done
	report "$name: power cut (every ${step}th op, seeds $seeds)"
}
scenario "extended L2 top" -o extended_l2=on,cluster_size=65536
scenario "v3 top"

# ---- ENOSPC in top mid-pull -------------------------------------------------
# Op 2 is a write of pulled data into top (op 1 its first): the pull
# stops there, with part of the data in top.
K=2
restore
IMGRAPH_FAULT=err:$K:ENOSPC:always "$IMGRAPH" commit --pull --top "$W/snap.qcow2" \
	--base "$W/tpl.qcow2" --yes -q >"$T/enospc.out" 2>&1; rc=$?
check "ENOSPC at op $K of $TOTAL: the pull fails (rc=$rc)" test "$rc" != 0
check_grep "ENOSPC: the error says so" "No space left on device" "$T/enospc.out"
check "ENOSPC: every view intact, template untouched" views_ok ENOSPC
check_eq "ENOSPC: top still names its clone" "$(bk "$W/snap.qcow2")" clone1.qcow2
check_nogrep "ENOSPC: no journal" . <(ls -A "$W" | grep imgraph-journal)
check "ENOSPC: the rerun completes" pull
check "ENOSPC: after the rerun every view intact" views_ok rerun
check_eq "ENOSPC: top names the template" "$(bk "$W/snap.qcow2")" tpl.qcow2
check "ENOSPC: the template's other clones check clean" \
	qemu-img check -q "$W/clone2.qcow2"

done_testing
