#!/usr/bin/env bash
# journal_left.sh - an interrupted relink is never invisible (issue 13,
# "An interrupted relink is invisible"): after a commit is killed in the
# middle of its relink, the journal it leaves beside base stops everything
# and says what to do.
#   J1 tree marks every image the journal covers (human flag, JSON flags
#      and a "journals" entry naming `imgraph recover DIR`), and says so
#      before the forest;
#   J2 plan refuses (exit 3) with ONE conflict: the journal, the images it
#      covers, and `imgraph recover DIR` - not a permission conflict whose
#      hint is to move an overlay off base;
#   J3 commit refuses the same way (exit 3) and writes nothing;
#   J4 after `imgraph recover` the marks are gone.
# On the old code the tree showed the split pool with no word and the plan
# reported "move 'vm-db.qcow2' off 'base.qcow2' first".
. "$(dirname "$0")/lib.sh"

W=$T/pool
mkdir -p "$W"
mkq "$W/base.qcow2" 8M
qio "$W/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$W/top.qcow2" 8M base.qcow2
qio "$W/top.qcow2" -c 'write -P 0x22 1M 1M'
for vm in vm-db vm-web vm-mail; do
	mkq "$W/$vm.qcow2" 8M top.qcow2
done
cp -a "$W" "$T/tpl"
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--yes -q "$W" >/dev/null 2>&1; }

# Kill the commit between the first and the last parent's header write:
# ops at the end are journal (5), 2 per parent, RELINKED (5), stale record
# DONE (5), journal removal (2).
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
rm -rf "$W"; cp -a "$T/tpl" "$W"
( IMGRAPH_FAULT=kill:$((TOTAL - 2 - 5 - 5 - 2 + 1)) commit ) 2>/dev/null
names=$(for o in vm-db vm-web vm-mail; do
	qemu-img info -U --output=json "$W/$o.qcow2" | jq -r '."backing-filename"'
done | sort -u | paste -sd' ')
check_eq "the kill left a split pool" "$names" "base.qcow2 top.qcow2"
check "the kill left a journal" test -f "$W/.imgraph-journal-base.qcow2"

# J1
check_rc "tree: exit 0" 0 "$IMGRAPH" tree "$W"
cp "$T/.out" "$T/tree.txt"
check_grep "tree: says so first, with the command" \
	"^! unfinished relink: .*imgraph recover $W" "$T/tree.txt"
for img in base top vm-db vm-web vm-mail; do
	check_grep "tree: $img flagged" "$img.qcow2 .*\\[.*unfinished relink" "$T/tree.txt"
done
check_rc "tree json: exit 0" 0 "$IMGRAPH" tree --output=json "$W"
cp "$T/.out" "$T/tree.json"
check_eq "tree json: 5 nodes flagged" \
	"$(jq '[.nodes[] | select(.flags | index("unfinished relink"))] | length' "$T/tree.json")" 5
check_eq "tree json: the journal covers them, and says the fix" \
	"$(jq -r '.journals[0] | "\(.nodes | length) \(.fix)"' "$T/tree.json")" \
	"5 imgraph recover $W"
check_rc "tree yaml: exit 0" 0 "$IMGRAPH" tree --output=yaml "$W"
check_grep "tree yaml: flag" 'unfinished relink' "$T/.out"

# J2
snap_dir "$W" >"$T/before.sha"
check_rc "plan: refused (exit 3)" 3 "$IMGRAPH" plan --top "$W/top.qcow2" --base "$W/base.qcow2" "$W"
cp "$T/.out" "$T/plan.txt"
check_grep "plan: one conflict" '^conflicts \(1\)' "$T/plan.txt"
check_grep "plan: it is the journal" '^  \[journal\] an unfinished relink' "$T/plan.txt"
check_grep "plan: names the images it covers" "covers .*vm-db.qcow2.*vm-mail.qcow2" "$T/plan.txt"
check_grep "plan: says to run recover on the pool" "hint: Run 'imgraph recover $W'" "$T/plan.txt"
check_nogrep "plan: no misleading hint" "move '.*' off" "$T/plan.txt"
check_rc "plan json: exit 3" 3 "$IMGRAPH" plan --output=json --top "$W/top.qcow2" "$W"
check_eq "plan json: one conflict of kind journal" \
	"$(jq -r '[.conflicts[].kind] | join(",")' "$T/.out")" journal
# Any plan of the pool, not only this commit's.
check_rc "another plan of the pool: refused too" 3 "$IMGRAPH" plan --top "$W/vm-db.qcow2" "$W"
check_grep "another plan: the journal" '\[journal\]' "$T/.out"

# J3
check_rc "commit: refused (exit 3)" 3 "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" --yes -q "$W"
check_grep "commit: stderr says to run recover" "imgraph recover $W" "$T/.err"
snap_dir "$W" >"$T/after.sha"
check "plan and commit wrote nothing" cmp "$T/before.sha" "$T/after.sha"

# J4
check_rc "recover finishes it" 0 "$IMGRAPH" recover "$W"
check_rc "tree after recover" 0 "$IMGRAPH" tree "$W"
check_nogrep "tree after recover: no mark" 'unfinished relink' "$T/.out"
for vm in vm-db vm-web vm-mail; do
	check_eq "$vm on base" "$(qemu-img info -U --output=json "$W/$vm.qcow2" | jq -r '."backing-filename"')" base.qcow2
done

# An unreadable journal (a torn copy, an old format) still stops the plan:
# recover sets it aside.
printf 'imgraph-journal 1 *00000000\n' >"$W/.imgraph-journal-base.qcow2"
check_rc "unreadable journal: plan refused" 3 "$IMGRAPH" plan --top "$W/vm-db.qcow2" "$W"
check_grep "unreadable journal: says so" 'a journal that cannot be read' "$T/.out"
check_grep "unreadable journal: and the fix" "imgraph recover $W" "$T/.out"

done_testing
