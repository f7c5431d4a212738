#!/usr/bin/env bash
# The pull through the editor (issue 18), judged by qemu-img: in the demo
# pool, committing dev-snap into golden is refused (test also reads
# golden); the status line and the plan screen offer the pull, P on the
# plan screen runs it through both confirmations: dev-snap then reads
# golden directly, every guest view is unchanged and golden is
# byte-identical.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

IMGS="vm-web vm-db base mid top golden dev dev-snap test"
guest_views() { # DIR OUT
	local f
	mkdir -p "$2"
	for f in $IMGS; do guest_raw "$1/$f.qcow2" "$2/$f.raw" || return 1; done
}
same_views() { # NAME DIR_A DIR_B
	local f bad=0
	for f in $IMGS; do
		qemu-img compare -q -f raw -F raw "$2/$f.raw" "$3/$f.raw" || { bad=1; echo "# $f differs"; }
	done
	[ $bad = 0 ] && ok "$1" || not_ok "$1"
}
backing_of() { qemu-img info --output=json "$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p'; }

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }
guest_views "$P" "$T/v0" || { not_ok "guest views"; done_testing; }
sha256sum "$P/golden.qcow2" >"$T/golden.sha"

start 120 40 -- "$P"
see "editor open" "10 images"
select_img dev-snap; keys t
select_img golden; keys b
see "the status line offers the pull" "base has other readers .*P pulls into top instead"
keys p
see "the plan screen offers the pull" "Plan: commit dev-snap.qcow2 into golden.qcow2 - 1 conflict - P: pull instead"
see "the plan shows both strategies" "recommended: pull"
snap_dir "$P" >"$T/snap0"
keys P
see "P shows the pull's plan" "Plan: pull into dev-snap.qcow2 onto golden.qcow2 - 0 conflicts"
see "the pull asks first" "Pull: copy the data between top and base into top now .*\(y/N\)"
keys n
see "No: nothing started" "pull not started; nothing was written"
check "No wrote nothing" cmp "$T/snap0" <(snap_dir "$P")
keys P
see "asked again" "\(y/N\)"
keys y
see "relink question after the pull" "Pull done\. Relink top onto base now" 30
see "after-graph: golden not written" "golden.qcow2 +\[B\] not written"
keys y
see "pull finished" "Pull finished" 30
check_eq "dev-snap now reads golden" "$(backing_of "$P/dev-snap.qcow2")" "golden.qcow2"
check_eq "dev still reads golden" "$(backing_of "$P/dev.qcow2")" "golden.qcow2"
check "golden byte-identical" sha256sum -c --quiet "$T/golden.sha"
guest_views "$P" "$T/v1"
same_views "after the pull: every guest view unchanged" "$T/v0" "$T/v1"
qcheck "dev-snap passes qemu-img check" "$P/dev-snap.qcow2"
keys Escape
see "back to the tree: dev-snap under golden" "├─dev-snap.qcow2|└─dev-snap.qcow2"
keys q
check_eq "exit 0" "$(wait_exit)" 0
done_testing
