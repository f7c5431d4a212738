#!/usr/bin/env bash
# crash_protect.sh - crash and fault consistency of a protected commit
# (commit --protect, issue 18): base <- mid <- top <- vm, plus three clones
# of base (v3, extended L2, v2) that --protect gives base's old data.
#
# At every mutating op K of the commit: SIGKILL before op K, SIGKILL after
# it, a simulated power cut (IMGRAPH_FAULT=cut:K:SEED), and ENOSPC from op
# K on (a full disk, mid-protection included).  Then `imgraph recover`.
# Judged with qemu-img after every run:
#   every clone's and vm's guest view equals the one saved before;
#   qemu-img check finds no corruption (leaks allowed);
#   a rerun of the same commit completes, every view still the same, base
#   showing top's old view, and the rerun copies into the clones only what
#   they still read from base (never more than the first plan said).
# Kill before and power cut at every op (the rerun after every 4th), kill
# after and ENOSPC at every 4th (IMGRAPH_LONG=1: every op, a rerun after
# each, and three cut seeds instead of one).
. "$(dirname "$0")/lib.sh"
need_tools jq

LONG=${IMGRAPH_LONG:-0}
W=$T/w
build() {
	mkdir -p "$W" && cd "$W" || return 1
	mkq base.qcow2 16M
	qio base.qcow2 -c 'write -P 0x11 0 6M' -c 'write -P 0x12 8M 4M'
	mkq mid.qcow2 16M base.qcow2 qcow2
	qio mid.qcow2 -c 'write -c -P 0xa1 4M 1M' -c 'write -P 0xa2 9M 512k'
	mkq top.qcow2 16M mid.qcow2 qcow2
	qio top.qcow2 -c 'write -P 0xb1 0 2M' -c 'write -z 5M 1M' \
		-c 'discard 10M 64k' -c 'write -P 0xb2 14M 1M'
	mkq vm.qcow2 16M top.qcow2 qcow2
	qio vm.qcow2 -c 'write -P 0xc1 64k 4k'
	mkq c1.qcow2 16M base.qcow2 qcow2
	qio c1.qcow2 -c 'write -P 0x31 1M 64k'
	mkq c2.qcow2 16M base.qcow2 qcow2 -o extended_l2=on
	qio c2.qcow2 -c 'write -P 0x32 4100k 4k' -c 'write -z 9M 2k'
	mkq c3.qcow2 16M base.qcow2 qcow2 -o compat=0.10
	qio c3.qcow2 -c 'write -P 0x33 14M 64k'
	cd "$T" || return 1
}
VIEWS="vm c1 c2 c3"
build || { not_ok fixture; done_testing; }
mkdir -p "$T/v"
for i in $VIEWS top; do guest_raw "$W/$i.qcow2" "$T/v/$i.raw"; done
cp -a "$W" "$T/tpl"
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
commit() { "$IMGRAPH" commit --protect --top "$W/top.qcow2" \
	--base "$W/base.qcow2" --yes -q "$W" >/dev/null 2>"$T/commit.err"; }

# verify: every view as saved, no corruption.  Prints what is wrong.
verify() {
	local i rc
	for i in $VIEWS; do
		qemu-img compare -q -f raw -F qcow2 "$T/v/$i.raw" "$W/$i.qcow2" \
			>/dev/null 2>&1 || { echo "$i: view changed"; return 1; }
	done
	for i in base vm c1 c2 c3; do
		qemu-img check -q "$W/$i.qcow2" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || [ $rc = 3 ] || { echo "$i: check exit $rc"; return 1; }
	done
}
# rerun: the same commit completes (unless the crash came after its
# relink, which recover finished); views intact; base shows top's view.
rerun() {
	if [ "$(qemu-img info -U --output=json "$W/vm.qcow2" |
		jq -r '."backing-filename"')" = top.qcow2 ]; then
		commit || { echo "rerun failed: $(head -1 "$T/commit.err")"; return 1; }
	fi
	verify || return 1
	qemu-img compare -q -f raw -F qcow2 "$T/v/top.raw" "$W/base.qcow2" \
		>/dev/null 2>&1 || { echo "base is not top's old view"; return 1; }
}

restore
"$IMGRAPH" plan --protect --output=json --top "$W/top.qcow2" \
	--base "$W/base.qcow2" "$W" >"$T/plan.json"
PLANNED=$(jq -r .protect.bytes "$T/plan.json")
[ "$PLANNED" -gt 0 ] && ok "plan: $PLANNED bytes to protect" || not_ok "plan: $PLANNED bytes"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit
TOTAL=$(cat "$T/count")
out=$(verify) && ok "a clean protected commit keeps every view" || not_ok "clean run: $out"
[ "$TOTAL" -gt 10 ] && ok "count: $TOTAL mutating ops" || not_ok "count: $TOTAL"

runs=0 fails=0
fault_case() { # FAULT [RERUN]: RERUN 0 skips the rerun
	local f=$1 out
	restore
	( IMGRAPH_FAULT=$f commit ) 2>/dev/null
	runs=$((runs + 1))
	if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
		echo "# $f: recover failed"; diag <"$T/rec.out"
		fails=$((fails + 1)); return
	fi
	if ! out=$(verify); then
		echo "# $f: after recover: $out"; fails=$((fails + 1)); return
	fi
	[ "${2:-1}" = 0 ] && return
	if ! out=$(rerun); then
		echo "# $f: $out"; fails=$((fails + 1))
	fi
}
report() {
	if [ $fails = 0 ]; then ok "$1: $runs runs, every view intact, reruns complete"
	else not_ok "$1: $fails of $runs runs failed"; fi
	runs=0 fails=0
}

# Which modes, from which op (a script being debugged may narrow them).
MODES=${CP_MODES:-kill after cut enospc}
FROM=${CP_FROM:-1}
step=4; [ "$LONG" = 1 ] && step=1
# every op reruns the commit in the long run; by default every 4th
again() { [ "$LONG" = 1 ] || [ $(($1 % 4)) = 0 ] && echo 1 || echo 0; }
for m in $MODES; do
	case $m in
	kill)
		for ((k = FROM; k <= TOTAL; k++)); do
			fault_case "kill:$k" "$(again $k)"
		done
		report "killed before op K ($FROM..$TOTAL; rerun every 4th)" ;;
	after)
		for ((k = FROM; k <= TOTAL; k += step)); do fault_case "kill:$k:after"; done
		report "killed after op K ($FROM..$TOTAL, every ${step})" ;;
	cut)
		seeds="7"; [ "$LONG" = 1 ] && seeds="3 7 11"
		for ((k = FROM; k <= TOTAL; k++)); do
			for s in $seeds; do fault_case "cut:$k:$s" "$(again $k)"; done
		done
		report "power cut at op K ($FROM..$TOTAL, seeds $seeds; rerun every 4th)" ;;
	enospc)
		for ((k = FROM; k <= TOTAL; k += step)); do
			fault_case "err:$k:ENOSPC:always"
		done
		report "ENOSPC from op K on ($FROM..$TOTAL, every ${step})" ;;
	esac
done

# Nothing is redone: after a crash half way through, the rerun's plan
# copies into the clones no more than what they still read from base.
restore
( IMGRAPH_FAULT=kill:$((TOTAL / 2)) commit ) 2>/dev/null
"$IMGRAPH" recover "$W" >/dev/null 2>&1
"$IMGRAPH" plan --protect --output=json --top "$W/top.qcow2" \
	--base "$W/base.qcow2" "$W" >"$T/plan2.json"
LEFT=$(jq -r .protect.bytes "$T/plan2.json")
[ "$LEFT" -lt "$PLANNED" ] && ok "rerun after a crash half way: $LEFT of $PLANNED bytes left to protect" ||
	not_ok "rerun after a crash half way: $LEFT of $PLANNED bytes left to protect"
done_testing
