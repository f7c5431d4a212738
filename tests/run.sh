#!/usr/bin/env bash
# Run the test suite; the last line is "N passed, N failed, N skipped".
#   tests/run.sh [--only-unit|--only-it] UNIT_BINARY...
# Integration scripts: tests/it/*.sh and tests/tui/*.sh.  Each prints TAP
# lines ("ok - ...", "not ok - ...", "ok - ... # SKIP why") and exits
# nonzero on failure.  A unit binary exits 77 when it is skipped (a tool it
# needs is missing; with CI=true that is a failure instead, see
# tests/it/lib.sh and tests/unit/helpers.h).
# IT_FILTER=regex limits which scripts run.  JOBS=N runs scripts in parallel.
# IT_TIMEOUT=S kills a script after S seconds (default 600; 0: never).
set -u
cd "$(dirname "$0")/.." || exit 1
mode=all
case "${1:-}" in --only-unit) mode=unit; shift;; --only-it) mode=it; shift;; esac
: "${IMGRAPH:=$PWD/imgraph}"
export IMGRAPH
logdir=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-tests.XXXXXX")
pass=0 fail=0 skipped=0 failed_names=()
SKIP_RE='^ok .*#[[:space:]]*[Ss][Kk][Ii][Pp]'

if [ "$mode" != it ]; then
	for t in "$@"; do
		name=$(basename "$t")
		log="$logdir/$name.log"
		CK_FORK=yes "$t" >"$log" 2>&1
		rc=$?
		if [ $rc -eq 77 ]; then
			skipped=$((skipped + 1))
			echo "SKIP unit $name ($(tail -n 1 "$log"))"
			continue
		fi
		# Check's summary: "100%: Checks: N, Failures: F, Errors: E";
		# a binary that ended without one failed as a whole.
		line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
		if [ -n "$line" ]; then
			read -r checks nf ne < <(sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/' <<<"$line")
			nf=$((nf + ne))
		else
			checks=0 nf=1
		fi
		pass=$((pass + checks - nf)); fail=$((fail + nf))
		if [ $rc -ne 0 ] || [ "$nf" -ne 0 ]; then
			failed_names+=("$name"); echo "FAIL unit $name (rc=$rc)"
			if [ -n "$line" ]; then grep -E ':[EF]:' "$log" | head -20
			else tail -n 5 "$log"; fi
		else
			echo "PASS unit $name ($checks checks)"
		fi
	done
fi

if [ "$mode" != unit ]; then
	scripts=()
	for s in tests/it/*.sh tests/tui/*.sh; do
		[ -f "$s" ] || continue
		case "$(basename "$s")" in lib*.sh) continue;; esac
		if [ -n "${IT_FILTER:-}" ] && ! [[ "$s" =~ $IT_FILTER ]]; then continue; fi
		scripts+=("$s")
	done
	run_one() {
		local s=$1 log=$2 t0=$SECONDS
		timeout "${IT_TIMEOUT:-600}" bash "$s" >"$log" 2>&1
		echo "rc=$? secs=$((SECONDS - t0))" >>"$log"
	}
	export -f run_one
	jobs=${JOBS:-2}
	printf '%s\n' "${scripts[@]}" | xargs -r -P "$jobs" -I{} bash -c \
		'run_one "$1" "$2/$(echo "$1" | tr / _).log"' _ {} "$logdir"
	for s in "${scripts[@]}"; do
		log="$logdir/$(echo "$s" | tr / _).log"
		p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
		sk=$(grep -cE "$SKIP_RE" "$log"); p=$((p - sk))
		pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + sk))
		rc=$(sed -n 's/^rc=\([0-9]*\).*/\1/p' "$log" | tail -n1)
		secs=$(sed -n 's/.*secs=\([0-9]*\).*/\1/p' "$log" | tail -n1)
		if [ "${rc:-1}" != 0 ] || [ "$f" != 0 ]; then
			[ "$f" != 0 ] || fail=$((fail + 1))
			failed_names+=("$s"); echo "FAIL $s (rc=$rc, ${secs}s)"
			grep -E '^not ok|^#' "$log" | head -30
			[ "$f" != 0 ] || tail -n 20 "$log"
		elif [ "$p" = 0 ] && [ "$sk" != 0 ]; then
			echo "SKIP $s ($(grep -E "$SKIP_RE" "$log" | head -n 1 | sed 's/.*# *[Ss][Kk][Ii][Pp] *//'))"
		else
			extra=""; [ "$sk" = 0 ] || extra=", $sk skipped"
			echo "PASS $s (${secs}s, $p ok$extra)"
		fi
	done
fi

echo "logs: $logdir"
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]
