#!/usr/bin/env bash
# recover_basic.sh - imgraph recover on journals left by a killed commit:
#   finishes a half-done relink (overlays and the users file), idempotent;
#   a corrupted or truncated journal is never acted on: kept as .bad, exit
#   1, no image written;
#   a parent header changed by someone else (FOREIGN) blocks recovery:
#   exit 1, journal kept, nothing written; once the header is back,
#   recovery finishes;
#   a stale temporary (crash before the rename) is removed, a symlink at
#   the old fixed temporary name is set aside, never followed;
#   --output=json; a file PATH means its directory.
# Judged with qemu-img (guest views, backing names, check).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

N=4
W=$T/w
fixture_build "$W" "$N" || { not_ok fixture; done_testing; }
cat >"$W/users.yaml" <<'EOF'
users:
  - name: backup-job
    kind: backup
    image: top.qcow2
    perm: [consistent-read]
EOF
fixture_save "$W" "$T/v"
cp -a "$W" "$T/tpl"
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--users "$W/users.yaml" --yes -q -r "$W" >/dev/null 2>"$T/commit.err"; }
J=$W/.imgraph-journal-base.qcow2

restore
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
# journal (5) + users file (5) + 2 per parent + journal (5) + stale record
# DONE (5) + removal (2): killing before the last parent's header write
# leaves a mix.
HALF=$((TOTAL - 2 - 5 - 5 - 2 * 2 + 1))
# (a subshell, so that bash's "Killed" notice stays out of the log)
crashed() { restore; ( IMGRAPH_FAULT=kill:$HALF commit ) 2>/dev/null; }

# 1. Finish a half-done relink, users file included.
crashed
check "crash left a journal" test -f "$J"
check_rc "recover finishes" 0 "$IMGRAPH" recover "$W"
check_grep "reports finished" 'finished: 4 parents now name' "$T/.out"
fixture_verify "recovered" "$W" "$T/v" base
check_grep "users file repointed" '^    image: base.qcow2$' "$W/users.yaml"
check_rc "second recover: nothing to do" 0 "$IMGRAPH" recover "$W"
check_grep "second recover says so" 'no interrupted relink found' "$T/.out"

# 2. A flipped byte: CRC mismatch, set aside, nothing written.
crashed
python3 - "$J" <<'EOF'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x20
open(p, 'wb').write(b)
EOF
snap_dir "$W" | grep -v imgraph-journal >"$T/before.sha"
check_rc "corrupt journal: exit 1" 1 "$IMGRAPH" recover "$W"
check_grep "corrupt journal: CRC named" 'CRC' "$T/.err"
check "corrupt journal: kept as .bad" test -f "$J.bad" -a ! -e "$J"
snap_dir "$W" | grep -v imgraph-journal >"$T/after.sha"
check "corrupt journal: no image written" cmp -s "$T/before.sha" "$T/after.sha"
check_rc "after set-aside: recover finds nothing" 0 "$IMGRAPH" recover "$W"

# 3. Truncated journal: same.
crashed
truncate -s $(( $(stat -c %s "$J") - 7 )) "$J"
snap_dir "$W" | grep -v imgraph-journal >"$T/before.sha"
check_rc "truncated journal: exit 1" 1 "$IMGRAPH" recover "$W"
check_grep "truncated journal: reported" 'truncated|end' "$T/.err"
snap_dir "$W" | grep -v imgraph-journal >"$T/after.sha"
check "truncated journal: no image written" cmp -s "$T/before.sha" "$T/after.sha"

# 4. FOREIGN: someone rebased a not-yet-relinked overlay meanwhile.
crashed
victim=$(fixture_overlays "$W" | tail -1)
qemu-img rebase -u -b "$W/mid.qcow2" -F qcow2 "$victim"
snap_dir "$W" >"$T/before.sha"
check_rc "foreign header: exit 1" 1 "$IMGRAPH" recover "$W"
check_grep "foreign header: names the file" "$(basename "$victim").*changed by someone else" "$T/.err"
snap_dir "$W" >"$T/after.sha"
check "foreign header: nothing written, journal kept" cmp -s "$T/before.sha" "$T/after.sha"
qemu-img rebase -u -b "$W/top.qcow2" -F qcow2 "$victim"
# qemu-img writes the header its own way: the bytes are not the journal's
# OLD any more, so this stays blocked - as it must (never guess).  Put the
# exact old header back from the template instead.
dd if="$T/tpl/${victim#$W/}" of="$victim" bs=512 count=2 conv=notrunc status=none
check_rc "header restored: recover finishes" 0 "$IMGRAPH" recover "$W"
fixture_verify "after foreign fix" "$W" "$T/v" base

# 5. Stale temporary (a commit killed right after creating the journal's
#    temporary, before its rename): recover removes it.  The first op that
#    leaves one is the journal temporary's create (kill just after it).
tmps() { ls -A "$W" | grep -c '^\.imgraph-tmp-[0-9a-f]\{16\}$'; }
left=0
for ((k = 1; k <= TOTAL && left == 0; k++)); do
	restore
	( IMGRAPH_FAULT=kill:$k:after commit ) 2>/dev/null
	left=$(tmps)
done
check_eq "stale temp: a killed commit left one" "$left" 1
check "stale temp: no journal yet" test ! -e "$J"
check_rc "stale temp: recover" 0 "$IMGRAPH" recover "$W/base.qcow2"
check_grep "stale temp: reported" 'removed 1 stale temporary file$' "$T/.out"
check_eq "stale temp: gone" "$(tmps)" 0
fixture_verify "stale temp" "$W" "$T/v" top
# A name of the old fixed pattern is no temporary of ours (and a symlink
# there is never followed): recover sets it aside like any invalid journal.
restore
echo keep >"$T/outside"
ln -s "$T/outside" "$W/.imgraph-journal-base.qcow2.tmp"
check_rc "old temp name: recover refuses it (exit 1)" 1 "$IMGRAPH" recover "$W"
check "old temp name: the symlink itself set aside" \
	test -L "$W/.imgraph-journal-base.qcow2.tmp.bad"
check_eq "old temp name: its target untouched" "$(cat "$T/outside")" keep

# 6. JSON report.
crashed
check_rc "recover --output=json" 0 "$IMGRAPH" recover --output=json "$W"
cp "$T/.out" "$T/rec.json"
check "json report parses" python3 -c "
import json; d = json.load(open('$T/rec.json'))
j = d['journals'][0]
assert j['outcome'] == 'finished' and j['parents'] == 4 and j['written'] >= 1, d"

# 7. A commit run with relative paths from inside the pool, recovered from
#    another directory: the journal holds absolute paths.
restore
( cd "$W" && IMGRAPH_FAULT=kill:$HALF "$IMGRAPH" commit --top top.qcow2 \
	--base base.qcow2 --users users.yaml --yes -q -r . >/dev/null 2>&1 ) 2>/dev/null
check_rc "relative commit, recover from /" 0 sh -c "cd / && '$IMGRAPH' recover '$W'"
fixture_verify "relative paths" "$W" "$T/v" base

# 8. While a commit of this base runs (holding its locks), recover leaves
#    it alone: no journal yet, nothing removed, the commit goes on.  (A
#    temporary still being written is kept too: tests/unit/test_io_replace.)
restore
"$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" --yes \
	--rate 256K -r "$W" >/dev/null 2>"$T/run.err" &
pid=$!
for _ in $(seq 50); do grep -q '"copy"' "$T/run.err" 2>/dev/null && break; sleep 0.1; done
check_rc "recover during a commit" 0 "$IMGRAPH" recover "$W"
check_grep "recover during a commit: nothing to do" 'no interrupted relink found' "$T/.out"
kill -INT $pid; wait $pid
check_eq "the commit was still running (cancelled by SIGINT: 1)" "$?" 1

done_testing
