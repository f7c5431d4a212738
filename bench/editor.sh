#!/bin/bash
# bench/editor.sh [N] - is the editor fast with a big pool?  Targets: with
# 100,000 images, moving the selection redraws in under 10 ms and a search
# takes under 50 ms.  Not a test: it prints numbers.
#  1. editor_bench.c: rows + full-screen render per move, no terminal
#     (80x24 and 200x60), on a graph made in memory;
#  2. the same on a generated N-image pool (bench/gen_pool.py), scanned as
#     the editor scans it;
#  3. the real editor in tmux on that pool: time to open (scan + first
#     draw) and to apply 500 'j' keys sent at once (drained as typeahead:
#     one redraw for the burst).
set -eu
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMGRAPH=${IMGRAPH:-$ROOT/imgraph}
D=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-bench.XXXXXX")
SOCK=imgraph-bench-$$
export TMUX_TMPDIR=$D
trap 'tmux -L "$SOCK" kill-server 2>/dev/null; rm -rf "$D"' EXIT

# The benchmark links the editor library: make builds it (and keeps it
# current) in the same build directory as the binary under test.
B=${BUILD:-build}
make -s -C "$ROOT" BUILD="$B" "$B/bench/editor_bench"
case $B in /*) BENCH_BIN=$B/bench/editor_bench ;; *) BENCH_BIN=$ROOT/$B/bench/editor_bench ;; esac
rc=0
LC_ALL=C.UTF-8 "$BENCH_BIN" "$N" 80 24 || rc=1
LC_ALL=C.UTF-8 "$BENCH_BIN" "$N" 200 60 || rc=1

command -v tmux >/dev/null && command -v qemu-img >/dev/null || {
	echo "tmux/qemu-img missing: skipping the pool parts"; exit $rc; }
python3 "$ROOT/bench/gen_pool.py" "$D/pool" "$N" >/dev/null
# Warm the page cache (and measure the scan on a real pool).
LC_ALL=C.UTF-8 "$BENCH_BIN" --pool "$D/pool" 80 24 >/dev/null || true
LC_ALL=C.UTF-8 "$BENCH_BIN" --pool "$D/pool" 80 24 || rc=1
t0=$(date +%s.%N)
tmux -L "$SOCK" new-session -d -x 120 -y 40 \
	"env TERM=xterm-256color LANG=C.UTF-8 '$IMGRAPH' '$D/pool'; sleep 60"
wait_screen() { # REGEX
	for _ in $(seq 1 600); do
		tmux -L "$SOCK" capture-pane -p | grep -qE -- "$1" && return 0
		sleep 0.05
	done
	echo "timeout waiting for /$1/"; return 1
}
wait_screen "$N images" || exit 1
t1=$(date +%s.%N)
printf 'editor in tmux: open %d images (scan + draw): %.3f s\n' "$N" \
	"$(awk "BEGIN{print $t1 - $t0}")"
keys=$(printf 'j%.0s' $(seq 1 500))
last=$(printf 'c%05d-l00' $(( N / 11 )))
t0=$(date +%s.%N)
tmux -L "$SOCK" send-keys -l "$keys"
# Keys are handled in order: once a search typed after the moves shows
# its match, all 500 moves were applied (the search itself is < 1 ms).
tmux -L "$SOCK" send-keys / "$last" Enter
wait_screen "── .*$last.qcow2 ──" || exit 1
t1=$(date +%s.%N)
# Typeahead is drained before the next redraw, so a burst costs one frame;
# the per-move render cost is the editor_bench figure above.
printf 'editor in tmux: 500 queued moves + a search, shown: %.3f s\n' \
	"$(awk "BEGIN{print $t1 - $t0}")"
exit $rc
