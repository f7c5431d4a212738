#!/usr/bin/env bash
# Deep and wide trees stay readable (issue 14, point 7): a chain 15 deep
# with a branch at depth 10.  Every row either has its full indentation
# (two columns a level) or starts with its depth number ("<11"); guides stay
# on the two-column grid (at 80 columns depth 10 used to be one column off)
# and a child in a compressed window is drawn one level right of its parent
# with the parent's "│" continuing above it.  (Where the numbered rows start
# the indentation steps back: no width can hold every level.)  At 200 columns the IMAGE
# column is capped so FMT and VSIZE stay next to the names.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"
need_tools qemu-img

P=$T/deep
mkdir -p "$P"
qemu-img create -q -f qcow2 "$P/c00.qcow2" 1M
for i in $(seq 1 14); do
	qemu-img create -q -f qcow2 -b "$(printf c%02d $((i - 1))).qcow2" -F qcow2 \
		"$P/$(printf c%02d "$i").qcow2"
done
qemu-img create -q -f qcow2 -b c09.qcow2 -F qcow2 "$P/x10.qcow2"
# The depths qemu-img sees: the length of each image's backing chain.
depth_of() { qemu-img info --backing-chain "$P/$1" | grep -c '^image:' | awk '{print $1 - 1}'; }
check_eq "qemu-img: c14 is 14 deep" "$(depth_of c14.qcow2)" 14
check_eq "qemu-img: x10 is 10 deep" "$(depth_of x10.qcow2)" 10

# The screen with the tree glyphs as one byte each, so that awk's byte
# columns are screen columns.
ascii_screen() { screen | sed 's/│/|/g; s/├/+/g; s/└/`/g; s/─/-/g'; }

# row_check NAME DEPTH: the row of NAME on the current screen ($T/s).
row_check() {
	local name=$1 d=$2 row col lead
	row=$(grep -E "[ -]$name " "$T/s" | head -1)
	[ -n "$row" ] || { echo "no row for $name"; return 1; }
	# Column of the name (characters, not bytes).
	col=$(printf '%s' "$row" | awk -v n="$name" '{ print index($0, n) - 1 }')
	lead=$(printf '%s' "${row:4}" | cut -c1-4)
	if [[ "$lead" =~ ^\<([0-9]+)\ *$ ]] || [[ "$lead" =~ ^\<([0-9]+) ]]; then
		[ "${BASH_REMATCH[1]}" = "$d" ] || { echo "$name: depth ${BASH_REMATCH[1]}, want $d"; return 1; }
	else
		[ "$col" -eq $((4 + 2 * d)) ] || { echo "$name: at column $col, want $((4 + 2 * d))"; return 1; }
	fi
	[ $(((col - 4) % 2)) -eq 0 ] || { echo "$name: guide off the two-column grid (column $col)"; return 1; }
}

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2
	start "$W" "$H" -- "$P"
	see "$W x $H: editor up" "16 images, 1 chain"
	compressed=0
	for name in $(cd "$P" && ls *.qcow2 | sed 's/\.qcow2$//'); do
		d=$(depth_of "$name.qcow2")
		select_img "$name"
		see "$W x $H: $name on screen" "(─|^    )$name\.qcow2 " 5
		ascii_screen | head -n $((H - 2)) >"$T/s"
		# Only the tree pane (the detail pane has the name too).
		sed -i '/^--/,$d' "$T/s"
		check "$W x $H: $name at depth $d: indented or numbered" row_check "$name.qcow2" "$d"
		grep -qE "^.{4}<$d " "$T/s" && compressed=$((compressed + 1))
	done
	# At 80 and 60 columns depth 10 and 11 are in one window: c11's "│"
	# (c10 has a sibling after it) is in the column of c10's tee.
	[ "$W" -le 80 ] || { keys q; wait_exit >/dev/null; continue; }
	select_img c11
	see "$W x $H: c11 on screen" "c11.qcow2"
	ascii_screen >"$T/s"
	tee_col=$(grep -E "c10\.qcow2" "$T/s" | head -1 | awk '{ print index($0, "+-c10") }')
	bar_col=$(grep -E "c11\.qcow2" "$T/s" | head -1 | awk '{ print index($0, "| `-c11") }')
	if [ "$tee_col" -gt 0 ] && [ "$bar_col" -gt 0 ]; then
		check_eq "$W x $H: c11's guide under c10's tee" "$bar_col" "$tee_col"
	else
		not_ok "$W x $H: c10 tee / c11 guide not found ($tee_col, $bar_col)"; diag <"$T/s"
	fi
	check "$W x $H: deep rows are numbered" test "$compressed" -gt 0
	keys q
	check_eq "$W x $H: q exits 0" "$(wait_exit)" 0
done

# Wide: on the demo pool at 200 columns the sizes sit next to the names.
demo "$T/pool" || { not_ok "demo pool"; done_testing; }
start 200 50 -- "$T/pool"
see "200 x 50: demo tree" "10 images"
screen >"$T/s"
fmt_col=$(grep -m1 "IMAGE" "$T/s" | awk '{ print index($0, "FMT") }')
check "200 x 50: FMT column near the names (column $fmt_col)" test "$fmt_col" -le 80
check_grep "200 x 50: vm-web row has its size close by" "vm-web.qcow2 {1,40}qcow2 +64 MiB" "$T/s"
keys q
check_eq "200 x 50: q exits 0" "$(wait_exit)" 0
done_testing
