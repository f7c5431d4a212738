#!/usr/bin/env bash
# Commit through the editor, judged by qemu-img:
#  - answering No at the first question writes nothing;
#  - declining the relink leaves every parent on top (guest views equal);
#  - the clean multi-parent commit (top into base, two overlays) through
#    both confirmations: overlays backed by base, guest views unchanged,
#    base passes qemu-img check.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

guest_views() { # DIR OUT: raw guest view of every image that stays
	local d=$1 o=$2 f
	mkdir -p "$o"
	for f in vm-web vm-db golden dev dev-snap test; do
		guest_raw "$d/$f.qcow2" "$o/$f.raw" || return 1
	done
}
same_views() { # NAME DIR_A DIR_B
	local f bad=0
	for f in vm-web vm-db golden dev dev-snap test; do
		qemu-img compare -q -f raw -F raw "$2/$f.raw" "$3/$f.raw" || { bad=1; echo "# $f differs"; }
	done
	[ $bad = 0 ] && ok "$1" || not_ok "$1"
}
backing_of() { qemu-img info --output=json "$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p'; }

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }
guest_views "$P" "$T/v0" || { not_ok "guest views"; done_testing; }

start 120 40 -- "$P"
see "editor open" "10 images"
select_img top; keys t
select_img base; keys b
see "clean pair validated" "top.qcow2 into base.qcow2: clean, copies 5.5 MiB, relinks 2 parents"

# 1. No at the first question: nothing written.
snap_dir "$P" >"$T/snap0"
keys c
see "commit shows the plan" "Plan: commit top.qcow2 into base.qcow2 - 0 conflicts"
see "plan lists the relinks" "vm-db.qcow2: 'top.qcow2' \(qcow2\) -> 'base.qcow2' \(qcow2\)"
see "first question defaults to No" "Commit: copy top's data into base now\? \(y/N\)"
keys Enter
see "Enter answers No" "commit not started; nothing was written"
snap_dir "$P" >"$T/snap1"
check "No wrote nothing" cmp "$T/snap0" "$T/snap1"

# 2. Yes to the copy, No to the relink.
keys c
see "asked again" "\(y/N\)"
keys y
see "relink question after the copy" "Copy done\. Relink every parent of top to base now" 30
see "after-graph in the dialog" "After the relink:"
see "after-graph: overlays under base" "vm-web.qcow2 +reads base now - view stays"
see "after-graph: leaving images named" "top.qcow2 +left unused - nothing reads it"
keys n
see "relink declined reported" "Commit done, relink declined" 30
check_eq "vm-web still on top" "$(backing_of "$P/vm-web.qcow2")" "top.qcow2"
check_eq "vm-db still on top" "$(backing_of "$P/vm-db.qcow2")" "top.qcow2"
guest_views "$P" "$T/v1"
same_views "declined relink: guest views unchanged" "$T/v0" "$T/v1"
qcheck "base passes qemu-img check after the copy" "$P/base.qcow2"

# 3. The whole commit through both confirmations.
keys Escape
see "back to the tree after the result" "/ Search  t Top"
select_img top; keys t
select_img base; keys b
keys c
see "plan again" "\(y/N\)"
keys y
see "relink question" "Relink every parent of top to base now" 30
keys y
see "commit finished" "Commit finished" 30
see "result counts" "relinked: 2 parents"
check_eq "vm-web now on base" "$(backing_of "$P/vm-web.qcow2")" "base.qcow2"
check_eq "vm-db now on base" "$(backing_of "$P/vm-db.qcow2")" "base.qcow2"
check_grep "backing format recorded" '"backing-filename-format": "qcow2"' <(qemu-img info --output=json "$P/vm-web.qcow2")
guest_views "$P" "$T/v2"
same_views "after the commit: guest views unchanged" "$T/v0" "$T/v2"
qcheck "base passes qemu-img check" "$P/base.qcow2"
qcheck "vm-web passes qemu-img check" "$P/vm-web.qcow2"
# The tree was rescanned: the overlays hang under base now.
keys Escape
see "rescanned tree: overlays under base" "├─vm-db.qcow2"
screen >"$T/s"
# top and mid stay on disk (unchanged, nothing reads through them now).
check_grep "rescanned tree: top has no overlays left" "└─top.qcow2 +qcow2 +64 MiB +[0-9.]+ MiB +0" "$T/s"
check_grep "rescanned tree: base has three overlays" "^    base.qcow2 .* 3 *$" "$T/s"
keys q
check_eq "exit 0" "$(wait_exit)" 0
done_testing
