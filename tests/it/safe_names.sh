#!/usr/bin/env bash
# safe_names.sh - a file name never reaches the terminal raw (issue 14,
# "File names reach the terminal raw": tree, plan and info printed the
# escape byte of weird\e[7mname.qcow2 as is).
#   S1 every human output (tree, plan, info, map, check, commit, who,
#      recover, errors) shows the name escaped as ls -b does
#      (weird\033[7mname.qcow2) and carries no control byte;
#   S2 JSON keeps the exact name (jq reads back the ESC byte).
. "$(dirname "$0")/lib.sh"
need_tools jq

ESC=$'\e'
WEIRD="weird${ESC}[7mname.qcow2"
SHOWN='weird\\033\[7mname\.qcow2'
W=$T/pool
mkdir -p "$W"
mkq "$W/base.qcow2" 4M
qio "$W/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$W/$WEIRD" 4M base.qcow2
qio "$W/$WEIRD" -c 'write -P 0x22 1M 1M'
# A backing name with a control character is refused (the qcow2 reader
# says so); the weird name is a leaf, and a weird directory carries the
# journal below.

# human NAME FILE: the escaped name is there, no control byte is.
human() {
	check_grep "$1: shows the name escaped" "${3:-$SHOWN}" "$2"
	if LC_ALL=C grep -q "[[:cntrl:]]" <(tr -d '\n' <"$2"); then
		not_ok "$1: no control byte"; cat -v "$2" | diag
	else ok "$1: no control byte"; fi
}
run() { # run NAME CMD...: stdout+stderr of CMD into $T/NAME.txt
	local n=$1; shift
	"$@" >"$T/$n.txt" 2>&1
}

run tree "$IMGRAPH" tree "$W";                         human tree "$T/tree.txt"
run plan "$IMGRAPH" plan --top "$W/$WEIRD" "$W";       human plan "$T/plan.txt"
run info "$IMGRAPH" info "$W/$WEIRD";                  human info "$T/info.txt"
qemu-img convert -O raw "$W/base.qcow2" "$W/$WEIRD.raw"
run map "$IMGRAPH" map "$W/$WEIRD.raw";                human map "$T/map.txt"
rm "$W/$WEIRD.raw"
run check "$IMGRAPH" check "$W/$WEIRD.none";           human "error message" "$T/check.txt"
run who "$IMGRAPH" who "$W/$WEIRD";                    human who "$T/who.txt"
run create "$IMGRAPH" create -f qcow2 "$T/new-$WEIRD" 1M; human create "$T/create.txt"

# S2
"$IMGRAPH" tree --output=json "$W" >"$T/tree.json"
check_eq "tree json: the exact name" \
	"$(jq -r --arg n "/$WEIRD" '[.nodes[] | select(.name | endswith($n))] | length' "$T/tree.json")" 1
"$IMGRAPH" plan --top "$W/$WEIRD" --output=json "$W" >"$T/plan.json"
check_eq "plan json: the exact name" \
	"$(jq -r '.top.name' "$T/plan.json")" "$W/$WEIRD"

# commit: the result names top and the images left stale.
cp -a "$W" "$T/tpl"
run commit "$IMGRAPH" commit --top "$W/$WEIRD" --yes -q "$W"
human commit "$T/commit.txt"
check "commit: qemu-img check base" qemu-img check -q "$W/base.qcow2"

# recover: a relink killed half-way in a weird directory.
W=$T/${WEIRD%.qcow2}
mkdir -p "$W"
mkq "$W/base.qcow2" 4M
mkq "$W/top.qcow2" 4M base.qcow2
for vm in vm-a vm-b vm-c; do mkq "$W/$vm.qcow2" 4M top.qcow2; done
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --yes -q "$W" >/dev/null 2>&1; }
cp -a "$W" "$T/tpl2"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
rm -rf "$W"; cp -a "$T/tpl2" "$W"
( IMGRAPH_FAULT=kill:$((TOTAL - 2 - 5 - 5 - 2 + 1)) commit ) 2>/dev/null
check "the kill left a journal" test -f "$W/.imgraph-journal-base.qcow2"
run tree2 "$IMGRAPH" tree "$W";                        human "tree (journal)" "$T/tree2.txt" 'weird\\033\[7mname/'
run recover "$IMGRAPH" recover "$W";                   human recover "$T/recover.txt" 'weird\\033\[7mname/'
done_testing
