#!/usr/bin/env bash
# commit_batch.sh - the commit's batched write path (formats/img.h):
# many writes linked behind one fdatasync must give the same images as
# qemu-img and stay crash safe.
#
# Shapes that stress the batch: writes spread over many L2 tables (4 KiB
# and 512-byte clusters), the batch's memory cap (2 MiB clusters, two L2
# tables 600 GiB apart), v2 and extended-L2 bases, 64-bit refcounts that
# force new refcount blocks and a relocated refcount table, a base smaller
# than top (grown first), zero clusters over base data (freed after the
# link).  Each commit is judged with qemu-img check and compare, and the
# number of fdatasync calls is bounded (the point of the batch).  Then a
# power cut (IMGRAPH_FAULT=cut:K:SEED) and a kill at mutating ops of two
# commits (every op of the first, every 5th of the second): after
# `imgraph recover` the overlay's guest view is unchanged and no image is
# corrupt (leaks allowed).
# IMGRAPH_LONG=1: every op of both, cut with 3 seeds, kill after the op too.
. "$(dirname "$0")/lib.sh"

LONG=${IMGRAPH_LONG:-0}

# build DIR SHAPE: base <- top <- ovl (ovl keeps top's view after commit).
build() {
	local d=$1 shape=$2 o="" bs=16M ts=16M i
	mkdir -p "$d"
	case $shape in
	c4k) o="-o cluster_size=4096" ;;
	c512) o="-o cluster_size=512" ;;
	v2) o="-o compat=0.10" ;;
	extl2) o="-o extended_l2=on,cluster_size=65536" ;;
	rc64) o="-o cluster_size=512,refcount_bits=64" ;;
	grow) bs=4M ;;
	big) o="-o cluster_size=2M"; bs=1T; ts=1T ;;
	esac
	# shellcheck disable=SC2086
	qemu-img create -q -f qcow2 $o "$d/base.qcow2" "$bs" || return 1
	qio "$d/base.qcow2" -c 'write -P 0x11 0 3M' -c 'write -P 0x12 3584k 100k'
	# shellcheck disable=SC2086
	qemu-img create -q -f qcow2 $o -b base.qcow2 -F qcow2 "$d/top.qcow2" "$ts"
	local cmds=(-c 'write -z 64k 128k' -c 'write -P 0x21 1M 8k'
		    -c 'write -P 0x22 2M 1536k' -c 'write -P 0x23 3590k 3k')
	for ((i = 0; i < 24; i++)); do
		cmds+=(-c "write -P $((0x30 + i)) $((4096 + i * 512))k $((4 + i % 5))k")
	done
	cmds+=(-c 'write -z 9M 1M')
	[ "$shape" = extl2 ] && cmds+=(-c 'write -P 0x5a 10M 2k' -c 'write -z 10240k 4k')
	[ "$shape" = big ] && cmds+=(-c 'write -P 0x6b 600G 3M' -c 'write -z 600G 2M')
	qio "$d/top.qcow2" "${cmds[@]}" || return 1
	qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 "$d/ovl.qcow2" "$ts"
	qio "$d/ovl.qcow2" -c 'write -P 0x7e 5M 4k'
}

commit() { # DIR
	"$IMGRAPH" commit --top "$1/top.qcow2" --base "$1/base.qcow2" --yes -q \
		-r "$1" >/dev/null 2>"$T/commit.err"
}

nsyncs() { # DIR: fdatasync calls on base.qcow2 during one commit (strace)
	# LeakSanitizer cannot run under ptrace (sanitizer builds)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -qq -y -e trace=fdatasync -o "$T/strace.out" \
		"$IMGRAPH" commit --top "$1/top.qcow2" --base "$1/base.qcow2" \
		--yes -q -r "$1" >/dev/null 2>"$T/commit.err" || return 1
	grep -c 'fdatasync([0-9]*<[^>]*/base\.qcow2>' "$T/strace.out"
}

for shape in c4k c512 v2 extl2 rc64 grow big; do
	d=$T/$shape
	build "$d" "$shape" || { not_ok "$shape: fixture"; continue; }
	cp -a "$d" "$T/$shape.orig"     # the chain as built, to compare with
	if [ "$shape" = c512 ] && have_tool strace "$shape: fdatasync calls on base"; then
		n=$(nsyncs "$d")
		# the batch, the flush, new refcount blocks: not one per write
		# (8 here; 44 without the batch)
		if [ -n "$n" ] && [ "$n" -le 12 ]; then ok "$shape: $n fdatasync calls on base"
		else not_ok "$shape: ${n:-?} fdatasync calls on base (want <= 12)"; diag <"$T/commit.err"; fi
	else
		check "$shape: commit" commit "$d"
	fi
	qemu-img check -q "$d/base.qcow2" >"$T/chk" 2>&1 &&
		ok "$shape: qemu-img check base clean (no leaks)" ||
		{ not_ok "$shape: qemu-img check base"; diag <"$T/chk"; }
	qemu-img compare -q "$T/$shape.orig/top.qcow2" "$d/base.qcow2" &&
		ok "$shape: base shows top's view" || not_ok "$shape: base shows top's view"
	qemu-img compare -q "$T/$shape.orig/ovl.qcow2" "$d/ovl.qcow2" &&
		ok "$shape: overlay's view unchanged" || not_ok "$shape: overlay's view unchanged"
	rm -rf "$T/$shape.orig" "$d"
done

# Crash matrix: every mutating op of the commit.
crash_matrix() { # SHAPE STEP: ops 1, 1+STEP, ... (every op when LONG)
	local shape=$1 step=$2 d=$T/cm-$shape tpl=$T/cm-$shape.tpl total k f rc
	local runs=0 fails=0 seeds=11 modes
	[ "$LONG" = 1 ] && seeds="11 12 13"
	build "$tpl" "$shape" || { not_ok "crash $shape: fixture"; return; }
	qemu-img convert -U -O raw "$tpl/ovl.qcow2" "$T/cm.ovl.raw"
	rm -rf "$d"; cp -a "$tpl" "$d"
	# same absolute path for every run: the images name their backing
	# files relatively, so the copy behaves like the template
	IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit "$d"
	total=$(cat "$T/count")
	[ "$LONG" = 1 ] && step=1
	for ((k = 1; k <= total; k += step)); do
		modes="kill:$k"
		for s in $seeds; do modes="$modes cut:$k:$s"; done
		[ "$LONG" = 1 ] && modes="$modes kill:$k:after"
		for f in $modes; do
			rm -rf "$d"; cp -a "$tpl" "$d"
			( IMGRAPH_FAULT=$f commit "$d" ) 2>/dev/null; rc=$?
			runs=$((runs + 1))
			if [ $rc = 0 ] && [[ $f != *:after ]]; then
				echo "# $f: commit exited 0"; fails=$((fails + 1)); continue
			fi
			"$IMGRAPH" recover "$d" >"$T/rec.out" 2>&1 ||
				{ echo "# $f: recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); continue; }
			if ! qemu-img compare -U -q -f qcow2 -F raw "$d/ovl.qcow2" \
				"$T/cm.ovl.raw" >/dev/null 2>&1; then
				echo "# $f: overlay's guest view changed"; fails=$((fails + 1)); continue
			fi
			for img in base top ovl; do
				qemu-img check -U -q "$d/$img.qcow2" >/dev/null 2>&1; rc=$?
				if [ $rc != 0 ] && [ $rc != 3 ]; then
					echo "# $f: $img.qcow2: qemu-img check rc=$rc"
					qemu-img check -U "$d/$img.qcow2" 2>&1 | head -4 | diag
					fails=$((fails + 1)); break
				fi
			done
		done
	done
	if [ "$fails" = 0 ]; then ok "crash $shape: $runs runs over $total ops, invariants hold"
	else not_ok "crash $shape: $fails of $runs runs broke an invariant"; fi
}

crash_matrix c4k 1
crash_matrix rc64 5     # many refcount blocks and a table relocation

done_testing
