#!/bin/bash
# bench/scan.sh [N...] - time `imgraph tree` on generated pools of N images
# (default: 10000 100000) next to its anchor, a loop of `qemu-img info`
# over the same images (one process per image: the only way qemu-img sees
# a pool), measured in the same run.  Not a test: it prints numbers.
#
# Each N is run in both shapes (bench/gen_pool.py): 100-deep chains, and
# wide templates (one base with 999 clones), with 512-byte and 2 MiB
# clusters, all 1 GiB virtual (a 512-byte-cluster image then has a 256 KiB
# L1 table, which the scan must not read).  The page cache is warm: one
# unmeasured run of each tool comes first.
#   BENCH_RUNS=n     measured runs per case (default 3): median, min, max
#   BENCH_DISK=dir   where the pools go (default /var/tmp)
#   SCAN_SHAPES, SCAN_CLUSTERS   override the case lists
#   SCAN_SAMPLE=n    images the qemu-img loop runs on (default 50), scaled
#                    to N: a loop over 100,000 images would take an hour
# Prints one markdown row per case (see bench/run.sh), the ratio being
# imgraph's wall time over the qemu-img loop's, and the imgraph process's
# peak RSS with the bytes per image above that of an empty pool.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMGRAPH=${IMGRAPH:-$ROOT/imgraph}
RUNS=${BENCH_RUNS:-3}
SAMPLE=${SCAN_SAMPLE:-50}
SIZES=${*:-10000 100000}
SHAPES=${SCAN_SHAPES:-chains wide}
CLUSTERS=${SCAN_CLUSTERS:-512 2097152}
command -v qemu-img >/dev/null || { echo "bench/scan.sh: needs qemu-img"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/scan.sh: needs /usr/bin/time"; exit 1; }
D=$(mktemp -d "${BENCH_DISK:-/var/tmp}/imgraph-scan.XXXXXX")
trap 'rm -rf "$D"' EXIT

# stats FILE COLUMN: "median min max" of a column of numbers
stats() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.4f %.4f %.4f\n", m, v[1], v[NR] }'
}

# timed OUT CMD...: append "wall user+sys maxrss_kib" of one run to OUT
# (the wall time from date: /usr/bin/time counts in hundredths)
timed() {
	local out=$1
	shift
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S %M' -o "$D/t" "$@" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" '{ printf "%.4f %.3f %s\n", b - a, $1 + $2, $3 }' \
		"$D/t" >>"$out"
}

human_cluster() { [ "$1" -ge 1048576 ] && echo "$(($1 / 1048576)) MiB" || echo "$1 B"; }

# Peak RSS of a scan of an empty pool: what is not per image.
mkdir "$D/empty"
(cd "$D/empty" && timed "$D/empty.all" "$IMGRAPH" tree)
read -r _ _ rss0 <<<"$(stats "$D/empty.all" 3)"

one_case() { # N SHAPE CLUSTER
	local n=$1 shape=$2 cl=$3 p=$D/pool label per r i
	case $shape in
	chains) per=100; label="$n images, $((n / 100)) chains x 100" ;;
	wide) per=1000; label="$n images, $((n / 1000)) templates x 1000" ;;
	esac
	label="scan $label, $(human_cluster "$cl") clusters"
	rm -rf "$p" "$D"/*.all
	python3 "$ROOT/bench/gen_pool.py" "$p" "$n" "$per" --shape "$shape" \
		--cluster-size "$cl" --size 1073741824 >/dev/null
	# Every (n / SAMPLE)-th image, for the qemu-img loop.
	(cd "$p" && ls -f | grep '\.qcow2$' | sort |
		awk -v k=$(((n + SAMPLE - 1) / SAMPLE)) 'NR % k == 1') >"$D/sample"
	local ns
	ns=$(wc -l <"$D/sample")
	for ((r = -1; r < RUNS; r++)); do
		if [ "$r" -lt 0 ]; then o=$D/warm; else o=$D/imgraph.all; fi
		(cd "$p" && timed "$o" "$IMGRAPH" tree)
		if [ "$r" -lt 0 ]; then o=$D/warm; else o=$D/qemu.all; fi
		(cd "$p" && timed "$o" sh -c 'while read -r f; do
			qemu-img info -U --output=json "$f" || exit 1; done' <"$D/sample")
	done
	awk -v s="$n" -v k="$ns" '{ print $1 * s / k }' "$D/qemu.all" >"$D/qemu.scaled"
	paste -d' ' "$D/imgraph.all" "$D/qemu.scaled" | awk '{ print $1 / $4 }' >"$D/ratio"
	read -r im imin imax <<<"$(stats "$D/imgraph.all" 1)"
	read -r cpu cmin cmax <<<"$(stats "$D/imgraph.all" 2)"
	read -r _ _ rss <<<"$(stats "$D/imgraph.all" 3)"
	read -r qs _ _ <<<"$(stats "$D/qemu.scaled" 1)"
	read -r rm rmin rmax <<<"$(stats "$D/ratio" 1)"
	local bpi
	bpi=$(awk -v a="$rss" -v b="$rss0" -v n="$n" 'BEGIN { printf "%d", (a - b) * 1024 / n }')
	echo "$label: imgraph tree $im s (min $imin, max $imax; CPU $cpu s, min $cmin, max $cmax), qemu-img info loop ${qs} s (scaled from $ns images)"
	printf '| %s | %s | qemu-img info loop | %.3f | %.1f | %.4f | %.4f | %.4f | %d MiB, %d B/image |\n' \
		"$label" "${BENCH_DISK:-/var/tmp}" "$im" "$qs" "$rm" "$rmin" "$rmax" \
		$((${rss%.*} / 1024)) "$bpi"
	rm -rf "$p"
}

for n in $SIZES; do
	for shape in $SHAPES; do
		for cl in $CLUSTERS; do
			one_case "$n" "$shape" "$cl"
		done
	done
done
