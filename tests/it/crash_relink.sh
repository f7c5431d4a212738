#!/usr/bin/env bash
# crash_relink.sh - crash consistency of commit + relink with 8 overlays.
#
# The commit is killed (SIGKILL, before or after mutating op K) or hit by a
# simulated power cut (IMGRAPH_FAULT=cut:K:SEED: a seeded subset of the
# writes not yet covered by an fsync is undone, possibly torn at 512
# bytes), then `imgraph recover` runs.  Invariants, judged with qemu-img
# after every run:
#   I1 every overlay's guest view equals the copy saved before;
#   I2 all overlays name base, or all name top - never a mix;
#      base shows top's old view when they name base;
#   I3 qemu-img check: no corruption (leaks allowed);
#   I5 files outside the plan untouched, no journal left;
#   I7 a second recover finds nothing; a crash inside recover converges.
# K ranges come from IMGRAPH_FAULT=count.  Default (make check): every op
# of the relink phase killed before it, every 4th killed after it, every
# 5th cut with 2 seeds, a sample of the copy phase, and recover killed at
# each of its own ops (cut at every other one).  IMGRAPH_LONG=1: every op of the whole
# commit, kill before/after, cut with 5 seeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

N=8
W=$T/w          # fixed path: absolute backing names stay valid on restore
fixture_build "$W" "$N" || { not_ok fixture; done_testing; }
fixture_save "$W" "$T/v"
cp -a "$W" "$T/tpl"
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--yes -q -r "$W" >/dev/null 2>"$T/commit.err"; }

restore
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
# The relink phase: journal (5 ops), 2 per parent, journal RELINKED (5),
# the stale record marked DONE (5), journal removal (2).
RELINK=$((5 + 2 * N + 5 + 5 + 2))
FIRST=$((TOTAL - RELINK + 1))
if [ "$TOTAL" -gt "$RELINK" ]; then
	ok "count: $TOTAL mutating ops, relink phase $FIRST..$TOTAL"
else
	not_ok "count: $TOTAL mutating ops is too few"; done_testing
fi

runs=0 fails=0
crash_case() { # FAULT: commit with the fault, recover, verify
	local f=$1 rc out
	restore
	( IMGRAPH_FAULT=$f commit ) 2>/dev/null; rc=$?
	runs=$((runs + 1))
	if [ $rc = 0 ] && [[ $f != *:after ]]; then
		echo "# $f: commit exited 0"; fails=$((fails + 1)); return
	fi
	if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
		echo "# $f: recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); return
	fi
	if ! out=$(quiet_verify "$W" "$T/v" same "$T/tpl"); then
		echo "# $f: $out"; fails=$((fails + 1)); return
	fi
	"$IMGRAPH" recover "$W" >"$T/rec2.out" 2>&1
	if ! grep -q 'no interrupted relink found' "$T/rec2.out"; then
		echo "# $f: second recover did something"; diag <"$T/rec2.out"
		fails=$((fails + 1))
	fi
}
report() { # NAME
	if [ $fails = 0 ]; then ok "$1: $runs runs, invariants hold"
	else not_ok "$1: $fails of $runs runs broke an invariant"; fi
	runs=0 fails=0
}

LONG=${IMGRAPH_LONG:-0}
if [ "$LONG" = 1 ]; then lo=1; else lo=$FIRST; fi

for ((k = lo; k <= TOTAL; k++)); do crash_case "kill:$k"; done
report "kill before op K ($lo..$TOTAL)"
step=4; [ "$LONG" = 1 ] && step=1
for ((k = lo; k <= TOTAL; k += step)); do crash_case "kill:$k:after"; done
report "kill after op K ($lo..$TOTAL step $step)"

seeds="1 2"; step=5
[ "$LONG" = 1 ] && { seeds="1 2 3 4 5"; step=1; }
for s in $seeds; do
	for ((k = lo; k <= TOTAL; k += step)); do crash_case "cut:$k:$s"; done
done
report "power cut at op K ($lo..$TOTAL step $step, seeds $seeds)"

if [ "$LONG" != 1 ]; then
	stride=$(( (FIRST - 1) / 3 )); [ $stride -lt 1 ] && stride=1
	for ((k = 1; k < FIRST; k += stride)); do
		crash_case "kill:$k"; crash_case "cut:$k:7"
	done
	report "copy phase sample (every ${stride}th op, kill and cut)"
fi

# A crash inside recovery converges (I7): leave a half-done relink, then
# kill recover at each of its own ops and recover again.  (The crash state
# is made afresh each time: the journal names files by dev:ino, so a copy
# of a crashed pool is rightly refused as foreign - checked below.)
MID=$((FIRST + 5 + N))          # about half of the parents rewritten
crashed() { restore; ( IMGRAPH_FAULT=kill:$MID commit ) 2>/dev/null; }
crashed
check_grep "half-done relink leaves a journal" 'journal' <(ls -a "$W")
(cd "$W" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/rcount "$IMGRAPH" recover >/dev/null 2>&1)
RTOTAL=$(cat "$T/rcount" 2>/dev/null || echo 0)
[ "$RTOTAL" -gt 0 ] && ok "recover has $RTOTAL mutating ops" || not_ok "recover counted no ops"
for ((k = 1; k <= RTOTAL; k++)); do
	modes="kill:$k"
	[ $((k % 2)) = 1 ] || [ "$LONG" = 1 ] && modes="$modes cut:$k:3"
	for mode in $modes; do
		crashed
		( IMGRAPH_FAULT=$mode "$IMGRAPH" recover "$W" >/dev/null 2>&1 ) 2>/dev/null
		runs=$((runs + 1))
		if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
			echo "# recover after $mode failed"; diag <"$T/rec.out"; fails=$((fails + 1)); continue
		fi
		if ! out=$(quiet_verify "$W" "$T/v" base "$T/tpl"); then
			echo "# recover after $mode: $out"; fails=$((fails + 1))
		fi
	done
done
report "crash inside recover (1..$RTOTAL, kill and cut)"

# Roll back instead: all overlays end on top, top and mid intact.
crashed
check_rc "recover --rollback" 0 "$IMGRAPH" recover --rollback "$W"
check_grep "rollback reported" 'rolled-back' "$T/.out"
mv "$T/v/top.raw" "$T/top.raw"
fixture_verify "after rollback" "$W" "$T/v" top
mv "$T/top.raw" "$T/v/top.raw"
check_rc "commit again after the rollback" 0 "$IMGRAPH" commit --top "$W/top.qcow2" \
	--base "$W/base.qcow2" --yes -q -r "$W"
fixture_verify "commit after rollback" "$W" "$T/v" base

# Long backing names (E7: a relink can span several 512-byte sectors of the
# header, so a power cut can tear it): two overlays name top through a
# ~370-byte relative path; power cuts in the relink must produce at least
# one TORN header that recover repairs.
L=$T/long
fixture_build "$L" 2
long="..$(printf '/d1/..%.0s' $(seq 60))/top.qcow2"    # ../d1/../d1/.../top
for o in "$L/d0/ovl0.qcow2" "$L/d1/ovl1.qcow2"; do
	qemu-img rebase -u -b "$long" -F qcow2 "$o"
done
check "long names resolve" qemu-img info "$L/d0/ovl0.qcow2"
fixture_save "$L" "$T/lv"
cp -a "$L" "$T/ltpl"
lcommit() { "$IMGRAPH" commit --top "$L/top.qcow2" --base "$L/base.qcow2" \
	--yes -q -r "$L" >/dev/null 2>&1; }
rm -rf "$L"; cp -a "$T/ltpl" "$L"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/lcount lcommit
# journal (5), 2 parents (4), RELINKED (5), stale record DONE (5), removal
# (2)
LT=$(cat "$T/lcount"); LF=$((LT - (5 + 4 + 5 + 5 + 2) + 1))
# Every relink op with 2 seeds, and the syncs right after each parent's
# header write (where a cut can tear it) with 12 seeds.  The simulator is
# deterministic per seed, so this is a fixed set of crash states.
cases=""
for s in 1 2; do for ((k = LF; k <= LT; k++)); do cases="$cases $k:$s"; done; done
for s in $(seq 3 12); do cases="$cases $((LF + 6)):$s $((LF + 8)):$s"; done
torn=0
for c in $cases; do
	k=${c%:*} s=${c#*:}
	{
		rm -rf "$L"; cp -a "$T/ltpl" "$L"
		( IMGRAPH_FAULT=cut:$k:$s lcommit ) 2>/dev/null
		runs=$((runs + 1))
		if ! "$IMGRAPH" recover "$L" >"$T/rec.out" 2>&1; then
			echo "# cut:$k:$s recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); continue
		fi
		grep -q 'torn' "$T/rec.out" && torn=$((torn + 1))
		if ! out=$(quiet_verify "$L" "$T/lv" same "$T/ltpl"); then
			echo "# long cut:$k:$s: $out"; fails=$((fails + 1))
		fi
	}
done
report "long names, power cut at relink ops"
check "long names: some cuts tore a header and recover repaired it ($torn)" test "$torn" -gt 0

# A copied crash state: the journal no longer matches the files (dev:ino)
# and is set aside, nothing written, exit 1.
crashed
cp -a "$W" "$T/copy"; rm -rf "$W"; mv "$T/copy" "$W"
snap_dir "$W" | grep -v imgraph-journal >"$T/before.sha"
check_rc "journal of a copied pool: refused" 1 "$IMGRAPH" recover "$W"
check_grep "journal of a copied pool: set aside" 'set-aside' "$T/.err"
check "journal of a copied pool: kept as .bad" test -f "$W/.imgraph-journal-base.qcow2.bad"
snap_dir "$W" | grep -v imgraph-journal >"$T/after.sha"
check "journal of a copied pool: no image written" cmp -s "$T/before.sha" "$T/after.sha"

done_testing
