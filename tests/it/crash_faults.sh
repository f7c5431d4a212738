#!/usr/bin/env bash
# crash_faults.sh - I/O errors injected into commit + relink (the model of
# qemu-iotests 026): EIO once at every mutating op, ENOSPC "always" (every
# op from K on fails, as on a full disk) and a short write at a sample of
# ops.  Every run must exit nonzero (I6: an injected error is never a
# success) with a message, and leave the pool valid, judged by qemu-img:
# guest views unchanged, overlays all on one side (after `imgraph recover`
# when the rollback itself failed), check clean, nothing else written.
# Default: EIO at every op, ENOSPC-always at every 3rd, short at every 4th;
# IMGRAPH_LONG=1: all three at every op, on 8 overlays.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

LONG=${IMGRAPH_LONG:-0}
N=2; [ "$LONG" = 1 ] && N=8
W=$T/w
fixture_build "$W" "$N" || { not_ok fixture; done_testing; }
fixture_save "$W" "$T/v"
cp -a "$W" "$T/tpl"
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--yes -q -r "$W" >/dev/null 2>"$T/commit.err"; }

restore
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
[ "$TOTAL" -gt 10 ] && ok "count: $TOTAL mutating ops" || not_ok "count: $TOTAL"

runs=0 fails=0
fault_case() { # FAULT
	local f=$1 rc out
	restore
	( IMGRAPH_FAULT=$f commit ) 2>/dev/null; rc=$?
	runs=$((runs + 1))
	# "short" only bites when op K is a write; at a sync, rename or
	# unlink it injects nothing and the commit must simply complete.
	if [ $rc = 0 ] && [[ $f == short:* ]]; then
		if ! out=$(quiet_verify "$W" "$T/v" base "$T/tpl"); then
			echo "# $f: $out"; fails=$((fails + 1))
		fi
		return
	fi
	if [ $rc = 0 ] || [ $rc -ge 128 ]; then
		echo "# $f: commit exited $rc"; fails=$((fails + 1)); return
	fi
	if ! grep -q 'imgraph' "$T/commit.err"; then
		echo "# $f: no error message"; fails=$((fails + 1)); return
	fi
	# A failed rollback keeps the journal: recover must then finish.
	if ls -a "$W" | grep -q '^\.imgraph-journal-.*[^p]$'; then
		if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
			echo "# $f: recover failed"; diag <"$T/rec.out"
			fails=$((fails + 1)); return
		fi
	fi
	if ! out=$(quiet_verify "$W" "$T/v" same "$T/tpl"); then
		echo "# $f: $out"; sed 's/^/#   /' "$T/commit.err" | head -3
		fails=$((fails + 1))
	fi
}
report() {
	if [ $fails = 0 ]; then ok "$1: $runs runs, nonzero exit, pool valid"
	else not_ok "$1: $fails of $runs runs failed"; fi
	runs=0 fails=0
}

for ((k = 1; k <= TOTAL; k++)); do fault_case "err:$k:EIO"; done
report "EIO once at every op (1..$TOTAL)"
step=3; [ "$LONG" = 1 ] && step=1
for ((k = 1; k <= TOTAL; k += step)); do fault_case "err:$k:ENOSPC:always"; done
report "ENOSPC from op K on (every ${step}th)"
step=4; [ "$LONG" = 1 ] && step=1
for ((k = 1; k <= TOTAL; k += step)); do fault_case "short:$k"; done
report "short write at op K (every ${step}th)"

# After any of these, a clean rerun completes the commit.  The fault hits
# the rename of the RELINKED journal (before the stale record's DONE (5
# ops) and the journal's removal (2)): the relink is rolled back.
restore
IMGRAPH_FAULT=err:$((TOTAL - 8)):EIO commit
check_rc "rerun after an injected error" 0 "$IMGRAPH" commit --top "$W/top.qcow2" \
	--base "$W/base.qcow2" --yes -q -r "$W"
fixture_verify "rerun" "$W" "$T/v" base

done_testing
