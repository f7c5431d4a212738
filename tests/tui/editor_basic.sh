#!/usr/bin/env bash
# The editor on the demo pool at 80x24 and 120x40: tree, detail pane,
# search, marks with validation, a conflicting pair's plan, help, map,
# the too-small screen, quitting.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }
ok "demo pool built"
# The demo keeps its promises (judged by qemu-img and the CLI).
for f in "$P"/*.qcow2; do qcheck "demo: $(basename "$f") passes qemu-img check" "$f"; done
qemu-img check "$P/base.qcow2" >"$T/qc" 2>&1
check_grep "demo: base holds compressed clusters" "[1-9][0-9.]*% compressed clusters" "$T/qc"
qemu-img map --output=json "$P/top.qcow2" >"$T/map"
check_grep "demo: top has a zero range of its own" '"depth": 0, "present": true, "zero": true, "data": false' "$T/map"
check_rc "demo: top into base is clean" 0 "$IMGRAPH" plan --top "$P/top.qcow2" --base "$P/base.qcow2" "$P"
check_grep "demo: ... and relinks both overlays" "parents relinked to base \(2\)" "$T/.out"
check_rc "demo: dev into golden conflicts" 3 "$IMGRAPH" plan --top "$P/dev.qcow2" --base "$P/golden.qcow2" "$P"
check_grep "demo: ... because of test.qcow2" "unshared by node '.*test.qcow2'" "$T/.out"

for size in "80 24" "120 40"; do
	set -- $size
	W=$1 H=$2
	start "$W" "$H" -- "$P"
	see "$W x $H: title with counts" "imgraph  .*pool  10 images, 3 chains"
	screen >"$T/s"
	check_grep "$W x $H: tree lines" "└─mid.qcow2" "$T/s"
	check_grep "$W x $H: two branches" "├─dev.qcow2" "$T/s"
	check_grep "$W x $H: sizes and kids" "top.qcow2 +qcow2 +64 MiB +[0-9.]+ MiB +2" "$T/s"
	check_grep "$W x $H: column header" "IMAGE .*FMT +VSIZE +ALLOC KIDS FLAGS" "$T/s"
	check_grep "$W x $H: detail pane" "── .*/pool/base.qcow2 ──" "$T/s"
	check_grep "$W x $H: function bar" "^/ Search  t Top  b Base  m Map  i Info  .*q Quit" "$T/s"
	see "$W x $H: cluster strip" "A base.qcow2 +█"
	check_eq "$W x $H: screen is $H lines" "$(wc -l <"$T/s")" "$H"

	# Search; n/N move between matches.
	select_img dev-s
	see "$W x $H: search selects" "── .*/pool/dev-snap.qcow2 ──"
	keys / qcow Enter
	see "$W x $H: search starts after the selection" "── .*/pool/test.qcow2 ──"
	keys n
	see "$W x $H: n wraps to the next match" "── .*/pool/base.qcow2 ──"
	keys N
	see "$W x $H: N goes back" "── .*/pool/test.qcow2 ──"

	# Marks: an impossible mark is refused with the reason and not left
	# set (issue 14: [T] stayed on a root, [B] on mid).
	select_img golden; keys t
	see "$W x $H: [T] on a root refused" "Not marked, impossible pair: golden.qcow2 cannot be top"
	not_see "$W x $H: ... and not left set" "^\[T\]"
	select_img dev.q; keys t
	select_img mid; keys b
	see "$W x $H: impossible pair explained" "Not marked, impossible pair: mid.qcow2 cannot be base"
	not_see "$W x $H: [B] not left on mid" "^\[B\]"
	see "$W x $H: top stays marked" "^\[T\] .*dev.qcow2"
	keys u
	# A conflicting pair: the plan shows the conflict, why and hint.
	select_img dev.q; keys t
	select_img golden; keys b
	see "$W x $H: conflict counted on marking" "dev.qcow2 into golden.qcow2: 1 conflict"
	screen >"$T/s"
	check_grep "$W x $H: [T] marker" "^\[T\] .*dev.qcow2" "$T/s"
	check_grep "$W x $H: [B] marker" "^\[B\] .*golden.qcow2" "$T/s"
	keys p
	see "$W x $H: plan screen" "Plan: commit dev.qcow2 into golden.qcow2 - 1 conflict"
	see "$W x $H: conflict text" "Permission conflict on node"
	keys End
	see "$W x $H: why of the conflict" "why: .*test.qcow2"
	see "$W x $H: fix hint" "hint: "
	not_see "$W x $H: no after-graph for a plan that cannot run" "After the relink:"
	keys Escape
	# c on a conflicting pair refuses and writes nothing.
	snap_dir "$P" >"$T/before"
	keys c
	see "$W x $H: commit refused" "commit refused: the plan has 1 conflict"
	keys Escape
	snap_dir "$P" >"$T/after"
	check "$W x $H: refused commit wrote nothing" cmp "$T/before" "$T/after"

	# A clean pair, base defaulting to top's backing file.
	keys u
	select_img top; keys t
	see "$W x $H: clean default base" "top.qcow2 into mid.qcow2 \(its backing file\): clean"

	# Info, map, help.
	keys i
	see "$W x $H: info screen" "Info: top.qcow2"
	see "$W x $H: info fields" "backing file: mid.qcow2"
	keys Escape m
	see "$W x $H: map screen" "Cluster map: top.qcow2 +\(64 MiB virtual, 3 layers\)"
	see "$W x $H: map legend" "A/a top.qcow2 +B/b mid.qcow2 +C/c base.qcow2"
	# top has a zero range (16M) over base data and compressed data.
	see "$W x $H: map shows zero clusters of top" "a"
	keys Escape '?'
	see "$W x $H: help from the action table" "mark the selected image as top"
	keys G
	see "$W x $H: help lists flags" "U in use, ! error"
	keys q
	see "$W x $H: back to the tree" "/ Search  t Top"

	# Collapse / expand.
	keys g h
	see "$W x $H: collapsed subtree marked" "base.qcow2 \[\+\]"
	keys Enter
	see "$W x $H: expanded again" "└─mid.qcow2"

	keys q
	check_eq "$W x $H: q exits 0" "$(wait_exit)" 0
done

# Too small, then big enough again.
start 80 24 -- "$P"
see "starts at 80x24" "10 images"
tm resize-window -x 50 -y 12
see "too-small screen" "Terminal too small"
see "too-small says the minimum" "50x12, need 60x17"
tm resize-window -x 90 -y 30
see "layout back after growing" "/ Search  t Top"
keys q
check_eq "quit after resize" "$(wait_exit)" 0

# --demo itself opens the editor on the new pool, with the steps to try
# inside it (issue 14: they were printed before curses and hidden until
# quitting); Esc closes the guide, ? shows it again.
start 80 24 -- --demo "$T/demo2"
see "--demo opens on the guide" "Guide: the demo pool"
see "--demo: the steps are in the editor" "1\. select top.qcow2, press t"
keys Escape
see "--demo: Esc shows the tree" "imgraph  .*demo2  10 images"
keys '?'
see "--demo: the guide is help's first page" "^ *Try this in the editor:"
keys Escape q
check_eq "--demo exits 0" "$(wait_exit)" 0
check "--demo pool images pass qemu-img check" qemu-img check -q "$T/demo2/top.qcow2"
done_testing
