#!/usr/bin/env bash
# bench/commit.sh - imgraph commit next to `qemu-img commit -d -b` on the
# same chains (not a test: it prints numbers).
#
#   scattered   512 MiB in top as scattered 64 KiB..1 MiB runs over a 4 GiB
#               base with data of its own
#   dense       1 GiB written contiguously in top
#   compressed  a 256 MiB compressed middle layer (qemu-img convert -c)
#               under a small top: the commit decompresses it into base
#
# For each: wall time and peak RSS of both tools (GNU time when installed,
# else a getrusage wrapper), their ratio, and `cp` + `sync` of top's file
# (about the same bytes) as the floor.  Both results are checked to have
# the same guest view with `qemu-img compare`.  Page cache is warm for all.
# Each tool runs BENCH_RUNS times (default 3) after one uncounted warm-up
# run, on a fresh copy of the chain, each run right after its own copy +
# sync and the two tools alternating who goes first; the medians are
# printed.  Single runs on a shared VM vary by 2-5x (page-cache allocation
# after large deletes, host writeback) and the first runs after building
# a chain are the slowest for whichever tool goes first.
#   IMGRAPH=path/to/imgraph [BENCH_RUNS=n] bench/commit.sh [scattered|dense|compressed...]
set -eu
IMGRAPH=${IMGRAPH:-$(cd "$(dirname "$0")/.." && pwd)/imgraph}
D=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
cases=${*:-scattered dense compressed}
RUNS=${BENCH_RUNS:-3}

# run_timed OUTFILE CMD...: "seconds max_rss_kib" into OUTFILE
if [ -x /usr/bin/time ]; then
	run_timed() { local o=$1; shift; /usr/bin/time -f '%e %M' -o "$o" "$@" >/dev/null 2>"$o.err"; }
else
	run_timed() {
		local o=$1; shift
		python3 - "$o" "$@" <<'EOF'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
el = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.2f %d\n" % (el, ru.ru_maxrss))
sys.exit(rc)
EOF
	}
fi

qio_script() { # FILE: many -c args from stdin, one qemu-io process
	local f=$1 args=()
	while read -r line; do args+=(-c "$line"); done
	qemu-io -f qcow2 "${args[@]}" "$f" >/dev/null
}

build_scattered() {
	local d=$1
	qemu-img create -q -f qcow2 "$d/base.qcow2" 4G
	qemu-io -f qcow2 -c 'write -P 0x11 0 256M' "$d/base.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 4G
	# 512 MiB in runs of 64 KiB..1 MiB at random 64 KiB-aligned offsets
	python3 - <<'EOF' | qio_script "$d/top.qcow2"
import random
random.seed(42)
left, size = 512 << 20, 4 << 30
while left > 0:
    n = min(left, random.randint(1, 16) * 65536)
    off = random.randrange(0, size - n, 65536)
    print("write -P %d %d %d" % (random.randint(1, 255), off, n))
    left -= n
EOF
}

build_dense() {
	local d=$1 i
	qemu-img create -q -f qcow2 "$d/base.qcow2" 2G
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 2G
	for ((i = 0; i < 16; i++)); do echo "write -P $((i + 1)) $((i * 64))M 64M"; done |
		qio_script "$d/top.qcow2"
}

build_compressed() {
	local d=$1 i
	qemu-img create -q -f qcow2 "$d/base.qcow2" 1G
	qemu-img create -q -f qcow2 "$d/m.qcow2" 1G
	# half-compressible data: a pattern per 64 KiB, so zlib has work
	for ((i = 0; i < 4096; i++)); do echo "write -P $((i % 251 + 1)) $((i * 64))k 32k"; done |
		qio_script "$d/m.qcow2"
	qemu-img convert -q -c -O qcow2 -B base.qcow2 -F qcow2 "$d/m.qcow2" "$d/mid.qcow2"
	rm -f "$d/m.qcow2"
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 1G
	qemu-io -f qcow2 -c 'write -P 0x77 100M 8M' "$d/top.qcow2" >/dev/null
}

# med FILE: median seconds and the largest peak RSS of "seconds rss" lines
med() {
	sort -n "$1" | awk '{ t[NR] = $1; if ($2 > m) m = $2 }
		END { printf "%s %d\n", NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2, m }'
}

fig() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

printf '%-11s %-22s %9s %11s\n' case tool seconds "peak RSS"
for c in $cases; do
	t=$D/$c.tpl
	mkdir -p "$t"
	"build_$c" "$t"
	top_bytes=$(stat -c %s "$t/top.qcow2")
	: >"$D/i.all"; : >"$D/q.all"; : >"$D/c.all"
	# run -1 warms up (not counted): the first runs after building the
	# chain were 2-5x slower for whichever tool went first
	for ((run = -1; run < RUNS; run++)); do
		order="imgraph qemu"
		[ $((run % 2)) != 0 ] && order="qemu imgraph"
		for tool in $order; do
			w=$D/$tool
			rm -rf "$w"; cp -a --sparse=always "$t" "$w"; sync
			if [ "$tool" = imgraph ]; then
				run_timed "$D/i.time" "$IMGRAPH" commit --top "$w/top.qcow2" \
					--base "$w/base.qcow2" --yes -q --drop-top "$w"
				[ $run -ge 0 ] && cat "$D/i.time" >>"$D/i.all"
			else
				run_timed "$D/q.time" qemu-img commit -q -d -b "$w/base.qcow2" \
					"$w/top.qcow2"
				[ $run -ge 0 ] && cat "$D/q.time" >>"$D/q.all"
			fi
		done
		# the floor: copy top's file and make it durable
		run_timed "$D/c.time" sh -c "cp --sparse=never '$t/top.qcow2' '$D/cp.out' && sync -f '$D/cp.out'"
		[ $run -ge 0 ] && cat "$D/c.time" >>"$D/c.all"
		rm -f "$D/cp.out"
	done
	read -r is ir <<<"$(med "$D/i.all")"; read -r qs qr <<<"$(med "$D/q.all")"
	read -r cs cr <<<"$(med "$D/c.all")"
	printf '%-11s %-22s %9s %8s KiB   runs: %s\n' "$c" "imgraph commit" "$is" "$ir" "$(cut -d' ' -f1 "$D/i.all" | tr '\n' ' ')"
	printf '%-11s %-22s %9s %8s KiB   runs: %s\n' "" "qemu-img commit -d -b" "$qs" "$qr" "$(cut -d' ' -f1 "$D/q.all" | tr '\n' ' ')"
	printf '%-11s %-22s %9s %8s KiB   (%s MiB)\n' "" "cp + sync of top" "$cs" "$cr" "$((top_bytes >> 20))"
	printf '%-11s imgraph/qemu-img time %s, RSS %s; imgraph/cp time %s (medians of %d)\n' "" \
		"$(fig "$is" "$qs")" "$(fig "$ir" "$qr")" "$(fig "$is" "$cs")" "$RUNS"
	if qemu-img compare -q "$D/imgraph/base.qcow2" "$D/qemu/base.qcow2"; then
		echo "            bases identical (qemu-img compare)"
	else
		echo "            BASES DIFFER"; exit 1
	fi
	rm -rf "$t" "$D/imgraph" "$D/qemu"
done
