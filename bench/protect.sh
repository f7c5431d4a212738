#!/usr/bin/env bash
# bench/protect.sh [WHERE] - flatten one clone of a shared template: imgraph
# commit --protect next to what an administrator can do today, in the same
# run, on the same pool.  Not a test: it prints numbers.
#
# The pool: a 1 GiB qcow2 template with 512 MiB of data (64 KiB..1 MiB runs
# spread over the disk), clone c0 with 128 MiB of its own (scattered 64
# KiB..1 MiB runs) and three more clones c1..c3 with 16 MiB each.  c0 is
# flattened into the template; c1..c3 must keep their views.
#   imgraph   imgraph commit --protect --yes --top c0 --base template
#   convert   qemu-img convert -O qcow2 of each of c1..c3 to a standalone
#             image (the template's data included), then qemu-img commit
#             -d c0: the template is then c0's view, and c1..c3 no longer
#             need it
# Each run starts from a fresh copy of the pool (cp --reflink=never, sync);
# each operation's time includes a sync -f of the pool's file system, so
# both are on disk when the clock stops.  Bytes written: what the pool's
# files gained in allocated blocks plus what the standalone copies take
# (stat %b * 512); both results are judged with qemu-img compare against
# the views saved before.  BENCH_RUNS counted runs (default 3); medians.
# Output: a markdown table row per operation,
#   | pool | operation | seconds | bytes written |
# WHERE: a directory (default $BENCH_DISK or /var/tmp).
set -eu
IMGRAPH=${IMGRAPH:-$(cd "$(dirname "$0")/.." && pwd)/imgraph}
RUNS=${BENCH_RUNS:-3}
DISK=${1:-${BENCH_DISK:-/var/tmp}}
ROOT=$(mktemp -d "$DISK/imgraph-bench-protect.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

qio_script() { # FILE: many -c args from stdin, one qemu-io process
	local f=$1 args=()
	while read -r line; do args+=(-c "$line"); done
	qemu-io -f qcow2 "${args[@]}" "$f" >/dev/null
}
# runs SEED TOTAL_MIB PATTERN: qemu-io writes of 64 KiB..1 MiB runs, spread
# over 1 GiB, TOTAL_MIB in all (deterministic per SEED).
runs() {
	python3 - "$1" "$2" "$3" <<'EOF'
import random, sys
seed, total, pat = int(sys.argv[1]), int(sys.argv[2]) << 20, sys.argv[3]
r = random.Random(seed)
done = 0
while done < total:
    ln = r.choice([64, 128, 256, 512, 1024]) << 10
    off = r.randrange(0, (1 << 30) - ln) // 65536 * 65536
    print(f"write -P {pat} {off} {ln}")
    done += ln
EOF
}
P=$ROOT/pool
mkdir -p "$P"
qemu-img create -q -f qcow2 "$P/template.qcow2" 1G
runs 1 512 0x11 | qio_script "$P/template.qcow2"
for i in 0 1 2 3; do
	qemu-img create -q -f qcow2 -b template.qcow2 -F qcow2 "$P/c$i.qcow2" 1G
done
runs 2 128 0xc0 | qio_script "$P/c0.qcow2"
for i in 1 2 3; do runs $((10 + i)) 16 $((0x20 + i)) | qio_script "$P/c$i.qcow2"; done
V=$ROOT/views
mkdir -p "$V"
for i in 0 1 2 3; do qemu-img convert -O raw "$P/c$i.qcow2" "$V/c$i.raw"; done

W=$ROOT/w
fresh() { rm -rf "$W"; cp -r --reflink=never "$P" "$W"; sync -f "$W"; }
alloc() { local s=0 f; for f in "$@"; do s=$((s + $(stat -c '%b * %B' "$f"))); done; echo $s; }
now() { echo "${EPOCHREALTIME/./}"; }   # microseconds
judge() { # PREFIX: PREFIX1..3 show c1..c3's views, the template c0's
	local i
	for i in 1 2 3; do
		qemu-img compare -q -f raw "$V/c$i.raw" "$W/$1$i.qcow2" ||
			{ echo "bench/protect.sh: $1$i is not c$i's view" >&2; exit 1; }
	done
	qemu-img compare -q -f raw "$V/c0.raw" "$W/template.qcow2" ||
		{ echo "bench/protect.sh: the template is not c0's view" >&2; exit 1; }
}

op_imgraph() {
	"$IMGRAPH" commit --protect --yes -q --top "$W/c0.qcow2" \
		--base "$W/template.qcow2" "$W" >/dev/null
	sync -f "$W"
}
op_convert() {
	local i
	for i in 1 2 3; do
		qemu-img convert -O qcow2 "$W/c$i.qcow2" "$W/s$i.qcow2"
	done
	qemu-img commit -q -d "$W/c0.qcow2"
	sync -f "$W"
}
declare -A secs bytes
for ((run = 0; run < RUNS; run++)); do
	for op in imgraph convert; do
		fresh
		b0=$(alloc "$W"/*.qcow2)
		t0=$(now)
		"op_$op"
		t1=$(now)
		b1=$(alloc "$W"/*.qcow2)
		if [ $op = convert ]; then judge s; else judge c; fi
		secs[$op]+="$((t1 - t0)) "
		bytes[$op]+="$((b1 - b0)) "
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "| pool | operation | seconds | bytes written |"
echo "|---|---|---|---|"
for op in imgraph convert; do
	s=$(echo "${secs[$op]}" | median)
	b=$(echo "${bytes[$op]}" | median)
	name="imgraph commit --protect"
	[ $op = convert ] && name="qemu-img convert x3 + qemu-img commit"
	printf '| 1 GiB template, 3 clones (%s) | %s | %d.%02d | %d MiB |\n' \
		"$(basename "$DISK")" "$name" $((s / 1000000)) $((s % 1000000 / 10000)) \
		$((b >> 20))
done
