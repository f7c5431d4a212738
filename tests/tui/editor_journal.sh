#!/usr/bin/env bash
# An unfinished relink in the editor (issue 14, point 3): the editor opens
# on a screen that says so, with each parent's header as it is now and
# what finishing (F) and rolling back (U) would do; each asks first, then
# does what `imgraph recover [--rollback]` does (judged by qemu-img).
# Stale images carry their reason in the detail pane.  The old editor only
# put "UNFINISHED RELINK" in the title and offered nothing.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
mkdir -p "$T/tpl"
mkq "$T/tpl/base.qcow2" 8M
qio "$T/tpl/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$T/tpl/mid.qcow2" 8M base.qcow2
qio "$T/tpl/mid.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$T/tpl/top.qcow2" 8M mid.qcow2
qio "$T/tpl/top.qcow2" -c 'write -P 0x33 2M 1M'
mkq "$T/tpl/vm1.qcow2" 8M top.qcow2
mkq "$T/tpl/vm2.qcow2" 8M top.qcow2
commit() { "$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q "$P" >/dev/null 2>&1; }
rm -rf "$P"; cp -a "$T/tpl" "$P"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
# A pool whose relink was killed between the two parents' header writes
# (journal 5, 2 per parent, RELINKED 5, stale record DONE 5, removal 2).
killed_pool() {
	rm -rf "$P"; cp -a "$T/tpl" "$P"
	( IMGRAPH_FAULT=kill:$((TOTAL - 2 - 5 - 5 - 2 + 1)) commit ) 2>/dev/null
	[ -f "$P/.imgraph-journal-base.qcow2" ]
}
backing() { qemu-img info -U --output=json "$P/$1.qcow2" | jq -r '."backing-filename"'; }
views_kept() { # NAME: vm1 and vm2 show what they showed before the commit
	local v
	for v in vm1 vm2; do
		check "$1: $v shows what it showed" qemu-img compare -U "$T/tpl/$v.qcow2" "$P/$v.qcow2"
	done
}
need_tools jq

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2
	check "$W x $H: a journal is left" killed_pool
	check_eq "$W x $H: the kill split the parents" "$(backing vm1) $(backing vm2)" "base.qcow2 top.qcow2"
	start "$W" "$H" -- "$P"
	see "$W x $H: opens on the unfinished relink" "Unfinished relink: finish \(F\) or roll back \(U\)"
	see "$W x $H: each parent as it is now" "vm1.qcow2: names base.qcow2 \(relinked\)"
	see "$W x $H: ... the other not yet" "vm2.qcow2: still names top.qcow2"
	see "$W x $H: what F does" "F finishes it \(imgraph recover"
	see "$W x $H: the bar offers F and U" "F Finish +U Roll back"
	keys End
	see "$W x $H: what U does" "U rolls it back \(imgraph recover --rollback"
	# F asks; No writes nothing.
	snap_dir "$P" >"$T/before"
	keys F
	see "$W x $H: F asks first" "Finish the relink: every parent will name base"
	keys n
	snap_dir "$P" >"$T/after"
	check "$W x $H: No wrote nothing" cmp "$T/before" "$T/after"
	# Esc leaves it for later; the hint and J bring it back.
	keys Escape
	see "$W x $H: the hint says what to do" "An unfinished relink must be recovered first: J shows it"
	keys J
	see "$W x $H: J shows it again" "Unfinished relink: finish"
	if [ "$W" = 80 ] || [ "$W" = 200 ]; then
		keys U
		see "$W x $H: U asks first" "Roll the relink back: every parent will name top"
		keys y
		see "$W x $H: rolled back" "Rolled back: 2 parents now name top.qcow2"
		check_eq "$W x $H: both parents name top again" "$(backing vm1) $(backing vm2)" "top.qcow2 top.qcow2"
		views_kept "$W x $H rollback"
	else
		keys F y
		see "$W x $H: finished" "Finished: 2 parents now name base.qcow2"
		check_eq "$W x $H: both parents name base" "$(backing vm1) $(backing vm2)" "base.qcow2 base.qcow2"
		views_kept "$W x $H finish"
		# Stale images: flagged, drawn dim like the tree's guides (no
		# change of style between the guide and the name, where a
		# live image's name changes it), and the detail pane says why.
		keys Escape
		see "$W x $H: back on the tree" "mid.qcow2"
		tm capture-pane -p -e >"$T/styled"
		check_grep "$W x $H: mid drawn dim" "─mid\.qcow2" "$T/styled"
		check_nogrep "$W x $H: vm1 drawn live" "─vm1\.qcow2" "$T/styled"
		select_img mid
		see "$W x $H: mid flagged stale" "mid.qcow2 .* S *$"
		see "$W x $H: the detail pane says why" "stale: base.qcow2 under it was committed into"
		select_img top
		see "$W x $H: top: why it is unused" "unused: its data was committed into base.qcow2"
	fi
	check "$W x $H: journal gone" test ! -e "$P/.imgraph-journal-base.qcow2"
	for f in "$P"/*.qcow2; do qcheck "$W x $H: $(basename "$f") passes qemu-img check" "$f"; done
	keys Escape q
	check_eq "$W x $H: exits 0" "$(wait_exit)" 0
done
done_testing
