#!/bin/bash
# bench/scan.sh [N] - time `imgraph tree` on a generated N-image pool
# (default 10000) next to a loop of `qemu-img info --backing-chain` over the
# same images.  Not a test: it prints numbers.  Needs python3 and qemu-img.
set -eu
N=${1:-10000}
IMGRAPH=${IMGRAPH:-$(cd "$(dirname "$0")/.." && pwd)/imgraph}
D=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
python3 "$(dirname "$0")/gen_pool.py" "$D/pool" "$N"
cd "$D/pool"
# warm the page cache so both tools are measured on the same footing
cat ./*.qcow2 > /dev/null
t0=$(date +%s.%N)
"$IMGRAPH" tree > "$D/tree.txt"
t1=$(date +%s.%N)
"$IMGRAPH" tree --no-locks > /dev/null
t2=$(date +%s.%N)
printf 'imgraph tree (%d images, with lock probe): %.3f s\n' "$N" "$(awk "BEGIN{print $t1 - $t0}")"
printf 'imgraph tree --no-locks:                    %.3f s\n' "$(awk "BEGIN{print $t2 - $t1}")"
# qemu-img: one process per image (the only way it sees a pool)
t0=$(date +%s.%N)
for f in ./*.qcow2; do qemu-img info -U --backing-chain "$f" > /dev/null; done
t1=$(date +%s.%N)
printf 'qemu-img info --backing-chain loop:         %.3f s\n' "$(awk "BEGIN{print $t1 - $t0}")"
