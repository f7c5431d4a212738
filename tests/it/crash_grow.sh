#!/usr/bin/env bash
# crash_grow.sh - a commit that grows a base which has a backing file of
# its own: base (1M) over bb (2M, data everywhere), top (2M) on base, vm
# on top, and c1 (2M), another reader of base, protected (--protect).
# Past base's old end top, vm and c1 read zeros; bb's data there must
# never show.  The old code grew base (one header write) and zeroed the
# new range only when the copy reached it, so a kill or a power cut in
# between showed bb's data in top, vm and c1 (and a protected commit is
# meant to keep every view at every instant).  Base qcow2 v3, v2 (literal
# zeros), v3 with extended L2 whose old end cuts a cluster (and a
# subcluster) in two, and qed (written by imgraph's qed driver), killed before every mutating op and power-cut at every op (one
# seed; IMGRAPH_LONG=1: three); judged with qemu-img:
#   G1 vm's, top's and c1's guest views equal the ones saved before;
#   G2 qemu-img check finds no corruption in base (a crash may leak);
#   G3 after recover, a commit that had not relinked vm yet reruns to the
#      end, and every view is still the same.
. "$(dirname "$0")/lib.sh"

LONG=${IMGRAPH_LONG:-0}
SEEDS="1"
[ "$LONG" = 1 ] && SEEDS="1 2 3"
W=$T/w
BF=qcow2 BSZ=1M
setup() { # BASE_OPTS...
	rm -rf "$W" "$T/tpl" "$T/v"; mkdir -p "$W" "$T/v"
	mkq "$W/bb.qcow2" 2M
	qio "$W/bb.qcow2" -c 'write -P 0x77 0 2M'
	qemu-img create -q -f $BF -b bb.qcow2 -F qcow2 "$@" "$W/base.$BF" $BSZ
	qemu-io -f $BF -c 'write -P 0x11 0 256k' "$W/base.$BF" >/dev/null
	mkq "$W/top.qcow2" 2M base.$BF $BF
	qio "$W/top.qcow2" -c 'write -P 0x22 256k 256k' -c 'write -P 0x23 1536k 64k'
	mkq "$W/vm.qcow2" 2M top.qcow2
	mkq "$W/c1.qcow2" 2M base.$BF $BF
	for i in vm top c1; do guest_raw "$W/$i.qcow2" "$T/v/$i.raw"; done
	cp -a "$W" "$T/tpl"
}
commit() {
	"$IMGRAPH" commit --protect --top "$W/top.qcow2" --base "$W/base.$BF" \
		--yes -q "$W" >/dev/null 2>"$T/commit.err"
}
views() {
	local i
	for i in vm top c1; do
		qemu-img compare -U -q -f qcow2 -F raw "$W/$i.qcow2" "$T/v/$i.raw" \
			>/dev/null 2>&1 || { echo "$i's view changed"; return 1; }
	done
}
judge() { # WHAT
	local out rc
	if ! out=$(views); then echo "# $1: G1 $out"; return 1; fi
	qemu-img check -U -q "$W/base.$BF" >/dev/null 2>&1; rc=$?
	if [ $rc != 0 ] && [ $rc != 3 ]; then echo "# $1: G2 check rc=$rc"; return 1; fi
	"$IMGRAPH" recover "$W" >/dev/null 2>&1
	qemu-img info -U "$W/vm.qcow2" | grep -q '^backing file: top.qcow2$' || return 0
	if ! commit; then echo "# $1: G3 rerun failed"; diag <"$T/commit.err"; return 1; fi
	if ! out=$(views); then echo "# $1: G3 after the rerun: $out"; return 1; fi
}
run_matrix() { # NAME BASE_OPTS...
	local name=$1 n k s runs=0 fails=0; shift
	setup "$@"
	IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
	n=$(cat "$T/count")
	if ! views; then not_ok "$name: a plain run keeps every view"; return; fi
	ok "$name: a plain run keeps every view ($n ops)"
	for k in $(seq 1 "$n"); do
		rm -rf "$W"; cp -a "$T/tpl" "$W"
		( IMGRAPH_FAULT=kill:$k commit ) 2>/dev/null
		runs=$((runs + 1)); judge "kill:$k" || fails=$((fails + 1))
		for s in $SEEDS; do
			rm -rf "$W"; cp -a "$T/tpl" "$W"
			( IMGRAPH_FAULT=cut:$k:$s commit ) 2>/dev/null
			runs=$((runs + 1)); judge "cut:$k:$s" || fails=$((fails + 1))
		done
	done
	if [ $fails = 0 ]; then ok "$name: $runs crashes, every view kept"
	else not_ok "$name: $fails of $runs crashes broke a view or the rerun"; fi
}
run_matrix "base v3"
run_matrix "base v2" -o compat=0.10
BSZ=$((1024 * 1024 + 512))
run_matrix "base v3, extended L2, its end inside a cluster" -o extended_l2=on
BSZ=1M
BF=qed
run_matrix "base qed"
done_testing
