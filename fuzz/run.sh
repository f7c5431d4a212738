#!/usr/bin/env bash
# fuzz/run.sh - replay the corpus, then fuzz each target (make fuzz-run).
#
#   FUZZ_SECONDS=60        seconds of fuzzing per target (0: replay only)
#   FUZZ_TARGETS="fz_a .." subset (default: every harness built)
#   FUZZ_BUILD=build-fuzz  where fuzz/fuzz.mk put the binaries
#   FUZZ_JOBS=1            libFuzzer -jobs (the default runs ONE fuzzer at a
#                          time at nice 19: the build machines are shared)
#
# Seeds come from fuzz/seeds.sh into fuzz/corpus/<target> (generated when
# missing).  New inputs go to $FUZZ_BUILD/corpus/<target>, crashes to
# fuzz/crashes/<target>-*; both are gitignored.  The last stats line of each
# run (execs, exec/s, cov, ft, corpus) is printed and appended to
# $FUZZ_BUILD/stats.log.  Exit 1 when any target crashed or a replay failed.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${FUZZ_SECONDS:=60}" "${FUZZ_BUILD:=build-fuzz}" "${FUZZ_JOBS:=1}"
# The fuzzers run inside $FUZZ_BUILD (libFuzzer's fork mode leaves its
# fuzz-N.log files in the working directory), so every path is absolute.
R=$PWD
case $FUZZ_BUILD in /*) ;; *) FUZZ_BUILD=$R/$FUZZ_BUILD ;; esac
targets=${FUZZ_TARGETS:-$(make -s -f fuzz/fuzz.mk list)}
# journal seeds need a binary that can commit: ./imgraph unless $IMGRAPH
[ -d fuzz/corpus/fz_header ] && [ -d fuzz/corpus/fz_foreign ] && [ -d fuzz/corpus/fz_foreign_b ] && [ -d fuzz/corpus/fz_scan ] || IMGRAPH=${IMGRAPH:-$PWD/imgraph} fuzz/seeds.sh fuzz/corpus >/dev/null
mkdir -p fuzz/crashes
rc=0
for t in $targets; do
	bin=$FUZZ_BUILD/$t
	[ -x "$bin" ] || { echo "fuzz: $t not built, skipped"; continue; }
	seeds=$R/fuzz/corpus/$t work=$FUZZ_BUILD/corpus/$t log=$FUZZ_BUILD/$t.log
	mkdir -p "$seeds" "$work"
	dict=()
	case $t in fz_header|fz_image|fz_chain|fz_scan) dict=("-dict=$R/fuzz/qcow2.dict");;
	fz_foreign) dict=("-dict=$R/fuzz/foreign.dict");; esac
	opts=(-max_len=1048576 -rss_limit_mb=512 -malloc_limit_mb=128 -timeout=5
	      "-artifact_prefix=$R/fuzz/crashes/$t-" -print_final_stats=1 "${dict[@]}")
	# 1. replay: every seed and every saved input once.
	if ! env -C "$FUZZ_BUILD" nice -n 19 "$bin" "${opts[@]}" -runs=0 \
		"$work" "$seeds" >"$log.replay" 2>&1; then
		echo "fuzz: $t: REPLAY FAILED (see $log.replay)"; rc=1
		grep -E 'ERROR|SUMMARY|oracle' "$log.replay" | head -5
		# keep fuzzing: fork mode below records every crash and goes on
	fi
	[ "$FUZZ_SECONDS" -gt 0 ] || { echo "fuzz: $t: replay ok ($(ls "$seeds" "$work" | wc -l) inputs)"; continue; }
	# 2. fuzz, in fork mode so that one known crash does not end the
	# session: every crash is saved under fuzz/crashes and fuzzing goes on.
	t0=$(date +%s)
	before=$(ls fuzz/crashes | grep -c "^$t-" || true)
	TIMEFORMAT='%U %S'
	{ time env -C "$FUZZ_BUILD" nice -n 19 "$bin" "${opts[@]}" \
		-max_total_time="$FUZZ_SECONDS" -fork="$FUZZ_JOBS" -ignore_crashes=1 \
		-ignore_timeouts=1 -ignore_ooms=1 "$work" "$seeds" >"$log" 2>&1; } 2>"$log.cpu"
	r=$?
	# scratch dirs of fork children that crashed (their atexit never ran):
	# only those whose process is gone, as other fuzzers may be running
	for d in /dev/shm/imgraph-fz."$t".* /tmp/imgraph-fz."$t".*; do
		pid=${d#*/imgraph-fz."$t".}; pid=${pid%%.*}
		case $pid in ''|*[!0-9]*) continue;; esac
		kill -0 "$pid" 2>/dev/null || rm -rf "$d"
	done
	cpu=$(awk '{printf "%.0f", $1 + $2}' "$log.cpu")
	after=$(ls fuzz/crashes | grep -c "^$t-" || true)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' "$log" | tail -n1)
	secs=$(( $(date +%s) - t0 ))
	line="$(date -u +%FT%TZ) $t secs=$secs cpu_s=$cpu execs=${execs:-?} exec/s=$(( ${execs:-0} / (secs > 0 ? secs : 1) )) new_crashes=$((after - before)) rc=$r :: $last"
	echo "fuzz: $line"
	echo "$line" >>"$FUZZ_BUILD/stats.log"
	if [ $r -ne 0 ] || [ "$after" -gt "$before" ]; then
		rc=1
		echo "fuzz: $t: CRASHES, artifacts:"; ls -t fuzz/crashes/ | grep "^$t-" | head -n $((after - before)) | sed 's/^/  fuzz\/crashes\//'
		grep -E 'oracle failed|ERROR: AddressSanitizer|runtime error|SUMMARY' "$log" | sort | uniq -c | head -10
	fi
done
exit $rc
