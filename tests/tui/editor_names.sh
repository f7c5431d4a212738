#!/usr/bin/env bash
# A file name never reaches the terminal raw (issue 14, "File names reach
# the terminal raw"): the editor draws weird\e[7mname.qcow2 escaped as the
# CLI prints it (weird\033[7mname.qcow2) in the tree, the detail pane and
# the plan screen; the old editor drew "weird?[7mname.qcow2".
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
mkdir -p "$P"
WEIRD=$'weird\e[7mname.qcow2'
mkq "$P/base.qcow2" 8M
mkq "$P/$WEIRD" 8M base.qcow2
SHOWN='weird\\033\[7mname\.qcow2'

for size in "80 24" "200 50" "60 17"; do
	set -- $size
	start "$1" "$2" -- "$P"
	see "$1x$2: the tree shows the name escaped" "└─$SHOWN"
	select_img weird
	see "$1x$2: the detail pane too" "── .*$SHOWN"
	keys t p
	see "$1x$2: the plan screen too" "Plan: commit $SHOWN"
	keys Escape q
	check_eq "$1x$2: exits 0" "$(wait_exit)" 0
done
done_testing
