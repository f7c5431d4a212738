#!/usr/bin/env bash
# bench/commit.sh CASE [WHERE...] - imgraph commit next to its anchors, in
# the same run, on the same chains.  Not a test: it prints numbers.
#
# CASE
#   scattered   512 MiB in top as scattered 64 KiB..1 MiB runs over a 4 GiB
#               base with 256 MiB of its own
#   dense       1 GiB written contiguously in top
#   compressed  a middle layer of 16384 compressed 64 KiB clusters (1 GiB;
#               qemu-img convert -c of half-filled clusters) under an 8 MiB
#               top: the commit inflates it into base
#   inplace     base already holds the 512 MiB top overwrites (its
#               clusters are rewritten in place)
#   reflink     the dense chain, on file systems that share extents
# WHERE (default: disk tmpfs; for reflink: xfs btrfs)
#   disk        a directory on the disk ($BENCH_DISK, default /var/tmp)
#   tmpfs       a tmpfs (mounted for the run as root, else /dev/shm): the
#               disk is out of the picture, the copy's CPU cost shows
#   xfs, btrfs  made for the run on a loop file in $BENCH_DISK (root;
#               mkfs.xfs -m reflink=1, mkfs.btrfs)
#
# Anchors, each timed in the same run right after a fresh copy of the chain
# (cp --reflink=never, then sync), the order rotating between runs:
#   qemu-img    qemu-img commit -d -b base top
#   cp+sync     cp --reflink=never of the files above base, sync -f
#   cfr         one copy_file_range of each of those files, fsync: the
#               physical floor (python3 os.copy_file_range; its start-up,
#               about 20 ms, counts)
# BENCH_RUNS counted runs (default 3) after one warm-up run.  Output: one
# markdown table row per anchor,
#   | case | where | anchor | imgraph s | anchor s | ratio | min | max | RSS |
# with medians of the seconds and of the per-run ratios imgraph / anchor
# (min and max of those ratios too) and imgraph's largest peak RSS; then
# the same for CPU seconds (user + system, all threads) against qemu-img
# and cfr, as anchors "qemu-img cpu" and "cfr cpu".  On a loaded machine
# wall time also measures how much of the CPU each tool gets (a tool with
# more runnable threads gets more), CPU time what the work costs.  The
# bases written by imgraph and by qemu-img are compared (qemu-img
# compare): different bases end the run with exit 1.  Wall time from
# bash's EPOCHREALTIME, peak RSS from GNU time.
#   IMGRAPH=path/to/imgraph [BENCH_RUNS=n] bench/commit.sh dense disk tmpfs
set -eu
IMGRAPH=${IMGRAPH:-$(cd "$(dirname "$0")/.." && pwd)/imgraph}
RUNS=${BENCH_RUNS:-3}
DISK=${BENCH_DISK:-/var/tmp}
case=${1:?usage: commit.sh CASE [WHERE...]}
shift
wheres=${*:-}
[ -n "$wheres" ] || { [ "$case" = reflink ] && wheres="xfs btrfs" || wheres="disk tmpfs"; }
[ -x /usr/bin/time ] || { echo "bench/commit.sh: GNU time missing (make deps)" >&2; exit 1; }
ROOT=$(mktemp -d "$DISK/imgraph-bench.XXXXXX")
MNTS=() DIRS=()
cleanup() {
	for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || true; done
	rm -rf "$ROOT" "${DIRS[@]}"
}
trap cleanup EXIT

qio_script() { # FILE: many -c args from stdin, one qemu-io process
	local f=$1 args=()
	while read -r line; do args+=(-c "$line"); done
	qemu-io -f qcow2 "${args[@]}" "$f" >/dev/null
}

scattered_writes() { # SEED TOTAL_MIB SIZE_GIB: qemu-io writes
	python3 - "$@" <<'EOF'
import random, sys
random.seed(int(sys.argv[1]))
left, size = int(sys.argv[2]) << 20, int(sys.argv[3]) << 30
while left > 0:
    n = min(left, random.randint(1, 16) * 65536)
    off = random.randrange(0, size - n, 65536)
    print("write -P %d %d %d" % (random.randint(1, 255), off, n))
    left -= n
EOF
}

build_scattered() {
	local d=$1
	qemu-img create -q -f qcow2 "$d/base.qcow2" 4G
	qemu-io -f qcow2 -c 'write -P 0x11 0 256M' "$d/base.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 4G
	scattered_writes 42 512 4 | qio_script "$d/top.qcow2"
}

build_dense() {
	local d=$1 i
	qemu-img create -q -f qcow2 "$d/base.qcow2" 2G
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 2G
	for ((i = 0; i < 16; i++)); do echo "write -P $((i + 1)) $((i * 64))M 64M"; done |
		qio_script "$d/top.qcow2"
}
build_reflink() { build_dense "$@"; }

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

build_inplace() {
	local d=$1
	qemu-img create -q -f qcow2 "$d/base.qcow2" 4G
	scattered_writes 7 512 4 | qio_script "$d/base.qcow2"
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 4G
	# the same ranges again, other bytes
	scattered_writes 7 512 4 | sed 's/-P [0-9]*/-P 0x5a/' | qio_script "$d/top.qcow2"
}

# place WHERE: PLACE, a directory for the run on WHERE, or return 1 (why
# on stderr)
place() {
	local w=$1 dir=$ROOT/$1
	mkdir -p "$dir"
	case $w in
	disk) ;;
	tmpfs)
		if [ "$(id -u)" = 0 ]; then
			mount -t tmpfs -o size=8G tmpfs "$dir" && MNTS+=("$dir") || return 1
		elif [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
			dir=$(mktemp -d /dev/shm/imgraph-bench.XXXXXX)
			DIRS+=("$dir")
		else
			echo "no tmpfs (not root, no /dev/shm)" >&2; return 1
		fi ;;
	xfs|btrfs)
		[ "$(id -u)" = 0 ] || { echo "$w needs root (loop devices)" >&2; return 1; }
		command -v "mkfs.$w" >/dev/null || { echo "mkfs.$w missing (make deps)" >&2; return 1; }
		truncate -s 8G "$ROOT/$w.img"
		if [ "$w" = xfs ]; then mkfs.xfs -q -f -m reflink=1 "$ROOT/$w.img"
		else mkfs.btrfs -q -f "$ROOT/$w.img" >/dev/null; fi
		mount -o loop "$ROOT/$w.img" "$dir" && MNTS+=("$dir") || return 1 ;;
	*) echo "unknown place $w" >&2; return 1 ;;
	esac
	PLACE=$dir
}

# timed OUT CMD...: append "seconds peak_rss_kib" of one run to OUT
timed() {
	local o=$1 t0 t1; shift
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%M %U %S' -o "$W/rss" "$@" >/dev/null 2>"$W/err"; then
		echo "bench/commit.sh: failed: $*" >&2; cat "$W/err" >&2; exit 1
	fi
	t1=$EPOCHREALTIME
	# seconds, peak RSS KiB, CPU seconds (user + system)
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') $(tail -n 1 "$W/rss" |
		awk '{ printf "%d %.2f", $1, $2 + $3 }')" >>"$o"
}

# One copy_file_range of each file into a directory, then fsync.
CFR_PY='
import os, sys
for src in sys.argv[2:]:
    dst = os.path.join(sys.argv[1], os.path.basename(src))
    with open(src, "rb") as f, open(dst, "wb") as g:
        n, off = os.fstat(f.fileno()).st_size, 0
        while off < n:
            k = os.copy_file_range(f.fileno(), g.fileno(), n - off)
            if k == 0:
                break
            off += k
        os.fsync(g.fileno())
'

fresh() { # DIR: a fresh copy of the chain, on the disk for real
	rm -rf "$1"
	cp -a --reflink=never --sparse=always "$W/tpl" "$1"
	sync -f "$1"
}

one_tool() { # TOOL COUNTED
	local t=$1 n=$2 out=/dev/null
	case $t in
	imgraph)
		fresh "$W/i"; [ "$n" = 1 ] && out=$W/imgraph.all
		timed "$out" "$IMGRAPH" commit --top "$W/i/top.qcow2" --base "$W/i/base.qcow2" \
			--yes -q --drop-top "$W/i" ;;
	qemu-img)
		fresh "$W/q"; [ "$n" = 1 ] && out=$W/qemu-img.all
		timed "$out" qemu-img commit -q -d -b "$W/q/base.qcow2" "$W/q/top.qcow2" ;;
	cp+sync)
		rm -rf "$W/c"; mkdir "$W/c"; sync -f "$W"; [ "$n" = 1 ] && out=$W/cp+sync.all
		timed "$out" sh -c 'd=$1; shift; cp --reflink=never --sparse=never "$@" "$d" &&
			sync -f "$d"' sh "$W/c" "${ABOVE[@]}"
		rm -rf "$W/c" ;;
	cfr)
		rm -rf "$W/f"; mkdir "$W/f"; sync -f "$W"; [ "$n" = 1 ] && out=$W/cfr.all
		timed "$out" python3 -c "$CFR_PY" "$W/f" "${ABOVE[@]}"
		rm -rf "$W/f" ;;
	esac
}

# stats FILE COLUMN: "median min max" of a column of numbers
stats() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

bench_where() { # WHERE
	local where=$1 tools r a
	place "$where" || { echo "| $case | $where | skipped: see above | | | | | | |"; return 0; }
	W=$PLACE/work
	mkdir -p "$W/tpl"
	"build_$case" "$W/tpl"
	ABOVE=()
	for f in "$W"/tpl/*.qcow2; do [ "$(basename "$f")" = base.qcow2 ] || ABOVE+=("$f"); done
	tools=(imgraph qemu-img cp+sync cfr)
	for ((r = -1; r < RUNS; r++)); do
		for ((a = 0; a < ${#tools[@]}; a++)); do
			one_tool "${tools[$(( (a + r + 1) % ${#tools[@]} ))]}" $((r >= 0))
		done
	done
	if ! qemu-img compare -q "$W/i/base.qcow2" "$W/q/base.qcow2"; then
		echo "bench/commit.sh: $case on $where: imgraph's and qemu-img's bases differ" >&2
		exit 1
	fi
	read -r im _ _ <<<"$(stats "$W/imgraph.all" 1)"
	read -r _ _ rss <<<"$(stats "$W/imgraph.all" 2)"
	for a in qemu-img cp+sync cfr; do
		paste -d' ' "$W/imgraph.all" "$W/$a.all" | awk '{ print $1 / $4 }' >"$W/ratio"
		read -r as _ _ <<<"$(stats "$W/$a.all" 1)"
		read -r rm rmin rmax <<<"$(stats "$W/ratio" 1)"
		printf '| %s | %s | %s | %.3f | %.3f | %.2f | %.2f | %.2f | %d MiB |\n' \
			"$case" "$where" "$a" "$im" "$as" "$rm" "$rmin" "$rmax" $((${rss%.*} / 1024))
	done
	# CPU seconds: GNU time's resolution is 10 ms, so never divide by 0
	read -r ic _ _ <<<"$(stats "$W/imgraph.all" 3)"
	for a in qemu-img cfr; do
		paste -d' ' "$W/imgraph.all" "$W/$a.all" |
			awk '{ print ($3 > 0.01 ? $3 : 0.01) / ($6 > 0.01 ? $6 : 0.01) }' >"$W/ratio"
		read -r ac _ _ <<<"$(stats "$W/$a.all" 3)"
		read -r rm rmin rmax <<<"$(stats "$W/ratio" 1)"
		printf '| %s | %s | %s cpu | %.3f | %.3f | %.2f | %.2f | %.2f | %d MiB |\n' \
			"$case" "$where" "$a" "$ic" "$ac" "$rm" "$rmin" "$rmax" $((${rss%.*} / 1024))
	done
	rm -rf "$W"
}

for where in $wheres; do
	bench_where "$where"
done
