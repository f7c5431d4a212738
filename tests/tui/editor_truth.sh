#!/usr/bin/env bash
# The editor tells the truth and guides (issue 14, points 1, 2, 4, 10), at
# 80x24, 120x40, 200x50 and 60x17, on the demo pool and hand-made pools.
# Each check is a case of the issue that failed on the old editor:
#   plan screen: a plan that cannot run drew an after-graph ("base growth:
#     0 B -> 1 GiB" for a missing backing file); QEMU's wording came before
#     the plain why; absolute paths; generic hints;
#   marks: an impossible mark stayed set; B:- while base defaulted to top's
#     backing file;
#   guide: the hint vanished after ? then Esc; messages cut mid-word; the
#     function bar lost q at 60x17 and never offered u/R;
#   small things: an empty pool took t/m/i silently; "relinks 1 parent"
#     when that parent is top itself.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }
# A top whose backing file is gone.
G=$T/gone
mkdir -p "$G"
mkq "$G/gone.qcow2" 16M
mkq "$G/orphan.qcow2" 16M gone.qcow2
mkq "$G/big.qcow2" 1G
rm "$G/gone.qcow2"
# An empty pool with images in subdirectories only.
mkdir -p "$T/empty/sub"
mkq "$T/empty/sub/a.qcow2" 1M
mkq "$T/empty/sub/b.qcow2" 1M
# status: the status line (the last but one row)
status() { screen | tail -n 2 | head -n 1 | sed 's/ *$//'; }
bar() { screen | tail -n 1; }
# before NAME A B: on the current screen a line matching A comes before
# one matching B.
before() {
	screen >"$T/.screen"
	local a b
	a=$(grep -nE -- "$2" "$T/.screen" | head -1 | cut -d: -f1)
	b=$(grep -nE -- "$3" "$T/.screen" | head -1 | cut -d: -f1)
	if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]; then ok "$1"
	else not_ok "$1 (/$2/ at ${a:-none}, /$3/ at ${b:-none})"; diag <"$T/.screen"; fi
}
# see_text NAME REGEX: the screen's text, wrapped lines joined (runs of
# blanks as one), matches REGEX.
see_text() {
	local n=50
	while [ $n -gt 0 ]; do
		screen >"$T/.screen"
		tr '\n' ' ' <"$T/.screen" | tr -s ' ' | grep -qE -- "$2" && { ok "$1"; return; }
		sleep 0.1; n=$((n - 1))
	done
	not_ok "$1 (text lacks /$2/)"; diag <"$T/.screen"
}
# no_abs NAME: no line but "Names are relative to" shows the pool's path.
no_abs() {
	screen >"$T/.screen"
	if grep -F -- "$P/" "$T/.screen" | grep -vq "^Names are relative to\|^pool scanned:\|imgraph recover"; then
		not_ok "$1"; diag <"$T/.screen"
	else ok "$1"; fi
}

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2 S="$1x$2"
	start "$W" "$H" -- "$P"
	see "$S: opens" "10 images"

	# ---- point 4: the hint, and it comes back after ? then Esc
	see "$S: the hint says what to do" "select one and press t to mark the top"
	keys '?'
	see "$S: help" "imgraph help"
	keys Escape
	see "$S: the hint is back after ? Esc" "select one and press t to mark the top"
	check_grep "$S: the bar keeps q" "q Quit" <(bar)

	# ---- point 2: impossible marks are refused, never left set
	select_img scratch; keys t
	see "$S: [T] on a root refused" "Not marked, impossible pair: scratch.raw cannot be top"
	not_see "$S: ... and not left set" "^\[T\]"
	# A message too long for the line ends at a whole word, with an
	# ellipsis.
	line=$(status)
	full="Not marked, impossible pair: scratch.raw cannot be top; top is the bottom of its chain: there is nothing to commit it into. Choose a top image that has a backing file (an overlay)."
	pre=${line%…}
	if [ "$line" = "$full" ] && [ "$W" -gt ${#full} ]; then
		ok "$S: the whole message fits"
	elif [ "$line" != "$pre" ] && [ "${full#"$pre" }" != "$full" ]; then
		ok "$S: long message cut at a word, with an ellipsis"
	else not_ok "$S: long message cut at a word, with an ellipsis (got '$line')"; fi
	select_img top.q; keys t
	see "$S: header names the default base" "T:top.qcow2 B:mid.qcow2 \(backing\)"
	check_grep "$S: u offered once marked" "u Unmark" <(bar)
	check_grep "$S: ... with q still there" "q Quit" <(bar)
	select_img golden; keys b
	see "$S: base outside top's chain refused" "Not marked, impossible pair: golden.qcow2 cannot be base"
	not_see "$S: [B] not left set" "^\[B\]"
	see "$S: top still marked" "^\[T\] .*top.qcow2"

	# ---- point 1: a plan that can run
	select_img "^base" 2>/dev/null; select_img base.q; keys b
	keys p
	see "$S: plan screen" "Plan: commit top.qcow2 into base.qcow2 - 0 conflicts"
	see "$S: one line in plain words first" "^In short: base.qcow2 will take top's data;"
	see_text "$S: ... naming who reads base and who is left" \
		"In short: base.qcow2 will take top's data; vm-db.qcow2 and vm-web.qcow2 will read base.qcow2; mid.qcow2 will be left stale; top.qcow2 will be left unused"
	[ "$H" -lt 24 ] && keys Down Down Down Down
	see "$S: base marked: its view changes" "base.qcow2 +takes top's data - its view changes"
	see "$S: parents marked: view stays" "vm-web.qcow2 +reads base now - view stays"
	see "$S: intermediate marked stale" "mid.qcow2 +left stale - its view changes"
	see "$S: top marked unused" "top.qcow2 +left unused - nothing reads it"
	no_abs "$S: names relative to the pool"
	keys Escape u

	# ---- point 1: a plan that cannot run
	select_img dev.q; keys t
	select_img golden; keys b
	keys p
	see "$S: conflicting plan" "Plan: commit dev.qcow2 into golden.qcow2 - 1 conflict"
	see "$S: says it cannot run" "this plan cannot run \(1 conflict\)"
	not_see "$S: no after-graph" "After the relink"
	not_see "$S: no plan details that suggest it runs" "base growth|bytes to copy|parents relinked"
	if [ "$H" -ge 24 ]; then
		before "$S: the plain why before QEMU's words" "^ +why: " "^ +QEMU's words: "
	fi
	keys End
	see_text "$S: the hint names the overlay and the real command" \
		"Otherwise: No image between 'dev.qcow2' and 'golden.qcow2' is read by this chain alone, so no other base avoids it; first move 'test.qcow2' off 'golden.qcow2', keeping what it shows: qemu-img rebase -f qcow2 -b '' test.qcow2"
	not_see "$S: no 'branch point'" "branch point"
	not_see "$S: no 'imgraph tree' inside the editor" "imgraph tree"
	no_abs "$S: conflict names relative to the pool"
	keys Escape u

	# ---- point 10: a leaf top is not "a parent"
	select_img dev-s; keys t
	see "$S: a leaf top is clean" "dev-snap.qcow2 into dev.qcow2 \(its backing file\): clean"
	if [ "$W" -ge 120 ]; then
		see "$S: ... and says it is kept" "copies [0-9.]+ [KM]i?B, top has no parents: kept, emptied, on base"
	fi
	not_see "$S: ... not 'relinks 1 parent'" "relinks 1 parent"
	keys u q
	check_eq "$S: exits 0" "$(wait_exit)" 0

	# ---- point 1: a top whose backing file is missing
	start "$W" "$H" -- "$G"
	see "$S: missing-backing pool" "3 images"
	select_img orphan; keys t p
	see "$S: missing base: cannot run" "this plan cannot run"
	not_see "$S: missing base: no base growth" "base growth"
	not_see "$S: missing base: no relink to an unknown format" "\(\?\)"
	not_see "$S: missing base: no after-graph" "After the relink"
	keys Escape q
	check_eq "$S: exits 0 (missing base)" "$(wait_exit)" 0

	# ---- point 10: an empty pool
	start "$W" "$H" -- "$T/empty"
	see "$S: empty pool says -r" "No images here, 2 in subdirectories: run imgraph -r"
	check_nogrep "$S: empty pool: bar offers no t" "t Top|m Map|i Info" <(bar)
	keys t
	see "$S: empty pool refuses t" "no image to mark: the pool is empty"
	keys m
	see "$S: empty pool refuses m" "no image to show: the pool is empty"
	keys i
	see "$S: empty pool refuses i" "no image to show: the pool is empty"
	keys q
	check_eq "$S: exits 0 (empty)" "$(wait_exit)" 0
done
done_testing
