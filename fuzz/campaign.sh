#!/usr/bin/env bash
# fuzz/campaign.sh - fuzz every target until it has had CPU_GOAL CPU-seconds
# in all (make fuzz-campaign).
#
#   CPU_GOAL=3600      CPU-seconds per target, counted over every run
#                      recorded in $FUZZ_BUILD/stats.log (the corpus carries
#                      over from run to run, so the time adds up); runs
#                      recorded without a cpu_s figure count as zero
#   WORKERS=2          targets fuzzed at the same time (one core each)
#   CHUNK=1200         longest single run, in wall seconds; short chunks let
#                      the workers share out the targets evenly
#   FUZZ_TARGETS, FUZZ_BUILD as for fuzz/run.sh, which does the fuzzing.
#
# The goal is in CPU time, not wall time, because the fuzzers run at nice 19
# and yield to anything else on the machine.  Prints the per-target totals at
# the end; exit 1 when any run reported a crash.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${CPU_GOAL:=3600}" "${WORKERS:=2}" "${CHUNK:=1200}" "${FUZZ_BUILD:=build-fuzz}"
export FUZZ_BUILD
targets=${FUZZ_TARGETS:-$(make -s -f fuzz/fuzz.mk list)}
stats=$FUZZ_BUILD/stats.log
locks=$FUZZ_BUILD/campaign.locks
rm -rf "$locks"
mkdir -p "$locks"
touch "$stats"

cpu_of() {	# CPU-seconds recorded for target $1 so far
	awk -v t="$1" '$2 == t { for (i = 3; i <= NF; i++)
		if ($i ~ /^cpu_s=[0-9]+$/) s += substr($i, 7) } END { print s + 0 }' "$stats"
}

worker() {
	local rc=0 t need secs best bestneed
	while :; do
		# take the free target that still needs the most time
		best= bestneed=0
		for t in $targets; do
			[ -d "$locks/$t" ] && continue
			need=$((CPU_GOAL - $(cpu_of "$t")))
			[ "$need" -gt "$bestneed" ] && best=$t bestneed=$need
		done
		[ -n "$best" ] || break
		mkdir "$locks/$best" 2>/dev/null || continue	# another worker won
		# ask for a little more wall time than CPU time is missing: the
		# fuzzer gets less than a whole core while anything else runs
		secs=$((bestneed + bestneed / 20 + 5))
		[ "$secs" -gt "$CHUNK" ] && secs=$CHUNK
		FUZZ_TARGETS=$best FUZZ_SECONDS=$secs fuzz/run.sh || rc=1
		rmdir "$locks/$best"
	done
	return $rc
}

pids=()
for _ in $(seq "$WORKERS"); do
	worker & pids+=($!)
	sleep 2	# let the first worker lock its target before the next looks
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rm -rf "$locks"
for t in $targets; do
	printf 'fuzz-campaign: %-10s %6d CPU-s in all\n' "$t" "$(cpu_of "$t")"
done
exit $rc
