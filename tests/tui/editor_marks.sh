#!/usr/bin/env bash
# The editor marks what earlier transactions left (issue 13): an
# unfinished relink (title and a J flag on every image it covers, where
# the old editor showed the split pool with no word), stale and unused
# images (S and u flags), and the plan it previews is the journal's one
# conflict.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
mkdir -p "$P"
mkq "$P/base.qcow2" 8M
qio "$P/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$P/mid.qcow2" 8M base.qcow2
qio "$P/mid.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$P/top.qcow2" 8M mid.qcow2
qio "$P/top.qcow2" -c 'write -P 0x33 2M 1M'
mkq "$P/vm1.qcow2" 8M top.qcow2
mkq "$P/vm2.qcow2" 8M top.qcow2
cp -a "$P" "$T/tpl"
commit() { "$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q "$P" >/dev/null 2>&1; }

# Stale and unused.
check_rc "commit" 0 "$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q "$P"
start 100 24 -- "$P"
see "stale: tree shown" "mid.qcow2"
screen >"$T/s"
check_grep "mid flagged S" "mid.qcow2 .* S *$" "$T/s"
check_grep "top flagged u" "top.qcow2 .* u *$" "$T/s"
check_nogrep "vm1 unflagged" "vm1.qcow2 .* [JSu] *$" "$T/s"
keys q

# An unfinished relink: killed between the two parents' header writes
# (journal 5, 2 per parent, RELINKED 5, stale record DONE 5, removal 2).
rm -rf "$P"; cp -a "$T/tpl" "$P"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
rm -rf "$P"; cp -a "$T/tpl" "$P"
( IMGRAPH_FAULT=kill:$((TOTAL - 2 - 5 - 5 - 2 + 1)) commit ) 2>/dev/null
check "a journal is left" test -f "$P/.imgraph-journal-base.qcow2"
start 100 24 -- "$P"
# The editor opens on the unfinished relink (editor_journal.sh); Esc
# leaves it for later, and the tree still says so.
see "journal: opens on it" "Unfinished relink: finish"
keys Escape
see "journal: the title says to recover" "UNFINISHED RELINK: run imgraph recover"
screen >"$T/s"
for img in base top vm1 vm2; do
	check_grep "journal: $img flagged J" "$img.qcow2 .* J[A-Za-z!?]* *$" "$T/s"
done
check_nogrep "journal: mid not covered" "mid.qcow2 .* J" "$T/s"
keys q

done_testing
