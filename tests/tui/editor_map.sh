#!/usr/bin/env bash
# The cluster map teaches (issue 14, point 6): the detail pane's strips and
# the map screen have a complete legend (data, compressed, partly data,
# zero, not here) with the size of one cell; compressed clusters have their
# own glyph (UTF-8 and --ascii), on exactly the layers where qemu-img map
# shows compressed data; with more layers than rows the strips scroll and
# the legend stays; a raw image is "raw", not "raw0".
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"
need_tools qemu-img

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }

# Layers (qemu-img map's depth) of IMAGE's chain holding compressed data:
# data with no host offset.
comp_depths() {
	qemu-img map --output=json "$1" |
		grep '"data": true' | grep -v '"offset"' |
		sed 's/.*"depth": \([0-9]*\).*/\1/' | sort -u
}
comp_depths "$P/vm-web.qcow2" >"$T/cd"
check "qemu-img: the demo's chain under vm-web holds compressed data" test -s "$T/cd"

# strip_line LETTER NAME: the detail pane's strip row of that layer.
strip_line() { grep -E "^ $1 $2 " "$T/s"; }

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2
	for mode in utf8 ascii; do
		if [ $mode = utf8 ]; then
			start "$W" "$H" -- "$P"; COMP='▓'; EMPTY='·'
		else
			start "$W" "$H" -- --ascii "$P"; COMP='%'; EMPTY='\.'
		fi
		see "$W x $H $mode: editor up" "10 images"
		select_img vm-web
		see "$W x $H $mode: vm-web's strips" "^ A vm-web.qcow2 "
		# The legend is on screen with every kind and the cell size,
		# even with four layers in the pane.
		see "$W x $H $mode: legend names compressed and partly data" \
			"$COMP ?comp(ressed)? .*(part).* .*zero .*(not here|none)"
		see "$W x $H $mode: legend states the cell size" \
			"(cell [0-9.]+ [KM]iB|[0-9.]+ [KM]iB/cell|1 cell = [0-9.]+ [KM]iB)"
		# Each layer's strip: the compressed glyph exactly where
		# qemu-img map shows compressed data (scroll to see them all).
		i=0
		for l in vm-web top mid base; do
			letter=$(printf "\\x$(printf %x $((65 + i)))")
			wait_for "^ $letter $l.qcow2 " 2 || keys ']'
			see "$W x $H $mode: strip $letter ($l) on screen" "^ $letter $l.qcow2 "
			screen >"$T/s"
			if grep -qx "$i" "$T/cd"; then
				check "$W x $H $mode: $l has the compressed glyph" \
					sh -c "grep -E '^ $letter $l.qcow2 ' '$T/s' | grep -q '$COMP'"
			else
				check "$W x $H $mode: $l has no compressed glyph" \
					sh -c "! grep -E '^ $letter $l.qcow2 ' '$T/s' | grep -q '$COMP'"
			fi
			i=$((i + 1))
		done
		see "$W x $H $mode: legend still there after scrolling" "$COMP ?comp"
		# The map screen: letters, the compressed glyph, the legend.
		keys m
		see "$W x $H $mode: map screen" "Cluster map: vm-web.qcow2"
		see "$W x $H $mode: map legend: layers" "D/d base.qcow2"
		see "$W x $H $mode: map legend: kinds and cell size" \
			"zero.*$COMP compressed,? 1 cell ?= ?[0-9.]+ [KM]iB"
		screen >"$T/s"
		check "$W x $H $mode: map grid shows compressed cells" \
			sh -c "grep -E '^ *[0-9.]+ [KMG]?i?B  ' '$T/s' | grep -q '$COMP'"
		check "$W x $H $mode: map grid shows unallocated cells" \
			sh -c "grep -E '^ *[0-9.]+ [KMG]?i?B  ' '$T/s' | grep -q '$EMPTY'"
		keys Escape
		# A raw image: "raw", never "raw0".
		select_img scratch
		see "$W x $H $mode: raw image says raw" "^ raw, 16 MiB virtual"
		not_see "$W x $H $mode: no raw0" "raw0"
		keys q
		check_eq "$W x $H $mode: q exits 0" "$(wait_exit)" 0
	done
done
done_testing
