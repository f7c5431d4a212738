#!/bin/bash
# scan_prefetch.sh - a directory's images are peeked (open, fstat, header
# read, lock probe, access check) on worker threads ahead of the scan
# (core/graph/graph_prefetch.c).  What the scan shows must not depend on
# it: tree, JSON and YAML are byte for byte those of the one-thread scan
# (IMGRAPH_SCAN_THREADS=0), on a pool that mixes images with what is not
# one (text, raw disks by name, symlinks, hard links, a FIFO, imgraph's
# own records, an image whose locks a qemu-io holds, a broken header),
# flat and recursive (peeking stops for each subdirectory walked and
# starts again after it).  Also: the workers do open the images (on other
# threads than the scan's); a process with few descriptors left keeps
# every image (the workers' EMFILE is not a skipped image); injected I/O
# faults keep the scan on one thread, so their counts stay in order.
# Images interleaved with subdirectories (vm1/, vm1.qcow2, vm2/, ...),
# with -r: peeking stops at each subdirectory, so it does not start for a
# run of images too short to pay; the threaded scan opens the images no
# more often than the one-thread scan plus one window (it opened them
# 8 times as often, and took 24 times as long, starting 4 threads and
# peeking ahead a window at every subdirectory).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
need_tools python3 strace qemu-io

P=$T/pool
python3 "$ROOT/bench/gen_pool.py" "$P" 600 20 >/dev/null
python3 "$ROOT/bench/gen_pool.py" "$T/w" 300 100 --shape wide >/dev/null
mv "$T"/w/* "$P"/
echo "not an image" >"$P/c00003-l05.txt"
truncate -s 1M "$P/disk.img" "$P/m00-disk.raw"
ln -s c00000-l03.qcow2 "$P/c00000-l03-link.qcow2"
ln "$P/c00001-l07.qcow2" "$P/c00001-l07-hard.qcow2"
mkfifo "$P/c00002-fifo.qcow2"
echo "a record" >"$P/.imgraph-trash-x"
# A header that lies: cluster_bits 40 (field at byte 20).
cp "$P/c00004-l02.qcow2" "$P/c00004-zz-bad.qcow2"
printf '\x00\x00\x00\x28' | dd of="$P/c00004-zz-bad.qcow2" bs=1 seek=20 \
	conv=notrunc status=none
mkdir -p "$P/sub1" "$P/sub2/deeper"
python3 "$ROOT/bench/gen_pool.py" "$P/sub1" 200 10 >/dev/null
python3 "$ROOT/bench/gen_pool.py" "$P/sub2/deeper" 100 10 --shape wide >/dev/null
n_img=$(find "$P" -name '*.qcow2' -type f | wc -l)
check "the pool holds $n_img qcow2 files" test "$n_img" -gt 1200

holder_qio -f qcow2 "$P/c00005-l10.qcow2"

# scan_as NAME OUT ARGS...: tree ARGS in the pool, stdout to OUT.
scan_as() {
	local threads=$1 out=$2
	shift 2
	(cd "$P" && IMGRAPH_SCAN_THREADS=$threads "$IMGRAPH" tree "$@") \
		>"$out" 2>"$out.err"
	echo $? >"$out.rc"
}

for args in "" "--output=json" "--output=yaml" "-r" "-r --output=json"; do
	# shellcheck disable=SC2086 # args are words
	scan_as 0 "$T/one" $args
	for threads in "" 1 3; do
		# shellcheck disable=SC2086
		scan_as "$threads" "$T/many" $args
		if cmp -s "$T/one" "$T/many" && cmp -s "$T/one.err" "$T/many.err" &&
		   cmp -s "$T/one.rc" "$T/many.rc"; then
			ok "tree $args with ${threads:-default} worker threads: output, messages and exit the one-thread scan's ($(wc -l <"$T/one") lines)"
		else
			not_ok "tree $args with ${threads:-default} worker threads differs from the one-thread scan"
			diff "$T/one" "$T/many" | head -20 | diag
			diff "$T/one.err" "$T/many.err" | head -5 | diag
		fi
	done
done
# What the pool holds is seen (by the default, threaded scan).
scan_as "" "$T/h"
scan_as "" "$T/j" --output=json
check_grep "the held image shows its holder's lock" 'c00005-l10\.qcow2.*in use' "$T/h"
check_eq "the lying header is a node in error" \
	"$(jq -r '.nodes[] | select(.filename == "c00004-zz-bad.qcow2") | .error != null' "$T/j")" true
check_eq "the hard link is one node" \
	"$(jq '[.nodes[] | select(.filename | test("c00001-l07"))] | length' "$T/j")" 1
check_eq "imgraph's own record is no node" \
	"$(jq '[.nodes[] | select(.filename | test("imgraph-"))] | length' "$T/j")" 0
check_eq "the text file and the FIFO are no nodes" \
	"$(jq '[.nodes[] | select(.filename | test("txt|fifo"))] | length' "$T/j")" 0
check_eq "the raw disks by name are nodes" \
	"$(jq '[.nodes[] | select(.filename | test("disk"))] | length' "$T/j")" 2
check_eq "the symlink is a node" \
	"$(jq '[.nodes[] | select(.filename | test("c00000-l03"))] | length' "$T/j")" 1

# Who opens the images: workers (other threads) with the default, the
# scan's own thread with none.
threads_opening() { # THREADS: distinct TIDs that opened a pool image
	(cd "$P" && IMGRAPH_SCAN_THREADS=$1 strace -f -qq -o "$T/st" \
		-e trace=openat "$IMGRAPH" tree >/dev/null 2>&1)
	grep -E 'openat\(.*"c0[0-9]+-l[0-9]+\.qcow2"' "$T/st" |
		awk '{ print $1 }' | sort -u | wc -l
}
n=$(threads_opening 2)
check "with 2 workers the images are opened on 2 threads (got $n)" test "$n" -eq 2
n=$(threads_opening 0)
check_eq "with none, on the scan's thread alone" "$n" 1
(cd "$P" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count strace -f -qq \
	-o "$T/st" -e trace=openat "$IMGRAPH" tree >/dev/null 2>&1)
n=$(grep -E 'openat\(.*"c0[0-9]+-l[0-9]+\.qcow2"' "$T/st" | awk '{ print $1 }' | sort -u | wc -l)
check_eq "with I/O faults armed the scan stays on one thread" "$n" 1

# Few descriptors left: 1000 of 1024 held by the process before it starts.
(cd "$P" && IMGRAPH_SCAN_THREADS=0 "$IMGRAPH" tree --output=json) >"$T/ref.json"
# shellcheck disable=SC2016 # expanded by the inner bash
(cd "$P" && bash -c 'ulimit -n 1024
	for ((i = 0; i < 1000; i++)); do exec {fd}</dev/null; done
	IMGRAPH_SCAN_THREADS=2 exec "$0" tree --output=json' "$IMGRAPH") \
	>"$T/starved.json" 2>"$T/starved.err"
if cmp -s "$T/ref.json" "$T/starved.json"; then
	ok "24 descriptors to spare: every image is still in the tree"
else
	not_ok "24 descriptors to spare: the tree differs"
	diff <(jq -r '.nodes[].filename' "$T/ref.json" | sort) \
		<(jq -r '.nodes[].filename' "$T/starved.json" 2>/dev/null | sort) |
		head -10 | diag
	diag <"$T/starved.err"
fi

# Interleaved with subdirectories (-r): the images opened as often as by
# the one-thread scan, plus at most one window (128) of peeks ahead.
I=$T/interleaved
mkdir -p "$I"
qemu-img create -q -f qcow2 "$T/proto.qcow2" 64M
for i in $(seq -w 1 600); do cp "$T/proto.qcow2" "$I/vm$i.qcow2"; mkdir "$I/vm$i"; done
# A long run after them still has its images peeked on worker threads.
for i in $(seq -w 1 300); do cp "$T/proto.qcow2" "$I/x$i.qcow2"; done
mkdir "$I/y"
opens_of() { # THREADS: opens of the pool's images; threads that opened them in $T/tids
	(cd "$I" && IMGRAPH_SCAN_THREADS=$1 strace -f -qq -o "$T/st" \
		-e trace=openat "$IMGRAPH" tree -r >"$T/il.$1" 2>"$T/il.$1.err")
	grep -E 'openat\(.*"(vm|x)[0-9]+\.qcow2"' "$T/st" >"$T/st.img"
	awk '/"x[0-9]+\.qcow2"/ { print $1 }' "$T/st.img" | sort -u | wc -l >"$T/tids"
	wc -l <"$T/st.img"
}
one=$(opens_of 0)
many=$(opens_of 2)
# stdout only: under strace a sanitizer build's leak checker gives up
# with a message naming its PID on stderr
check "interleaved, -r: the tree is the one-thread scan's" cmp "$T/il.0" "$T/il.2"
check "interleaved, -r: images opened $many times with 2 workers, $one with none (at most one window more)" \
	test "$many" -le $((one + 128))
check "interleaved, -r: the long run after them is peeked on the 2 workers (got $(cat "$T/tids") threads)" \
	test "$(cat "$T/tids")" -eq 2

holder_stop
done_testing
