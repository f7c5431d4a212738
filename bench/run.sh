#!/usr/bin/env bash
# bench/run.sh - every benchmark, one line each (`make bench`; not part of
# `make check`).  Each prints imgraph's figures next to its anchors measured
# in the same run.  Result rows that are markdown table rows ("| ...") are
# printed again at the end as one table.
#   BENCH_RUNS=n     counted runs per case (default 3)
#   BENCH_DISK=dir   where "disk" cases and loop files go (default /var/tmp)
set -u
cd "$(dirname "$0")" || exit 1
OUT=$(mktemp "${TMPDIR:-/tmp}/imgraph-bench-out.XXXXXX")
trap 'rm -f "$OUT"' EXIT
rc=0
run() {
	echo "== bench/$*"
	bash "$@" 2>&1 | tee -a "$OUT"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
}

run commit.sh scattered
run commit.sh dense
run commit.sh compressed
run commit.sh inplace
run commit.sh reflink
run scan.sh
run editor.sh 100000
run protect.sh

echo
echo "== commit: imgraph seconds over each anchor's, median of ${BENCH_RUNS:-3} runs (min, max); anchors \"... cpu\": CPU seconds"
echo "| case | where | anchor | imgraph s | anchor s | ratio | min | max | imgraph peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|"
grep '^| ' "$OUT" | grep -v '^| 1 GiB template' | grep -v '^| pool '
echo
echo "== protect: flatten one clone of a shared template, median of ${BENCH_RUNS:-3} runs"
echo "| pool | operation | seconds | bytes written |"
echo "|---|---|---|---|"
grep '^| 1 GiB template' "$OUT"
exit $rc
