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
# The journal of the protection (protect.h), on a 64 MiB fixture where it
# moves on mid-run: after a kill or a power cut at ops from the middle on,
# recover reports how far it says the readers are protected, and the
# rerun resumes there, finds no gap below it (a record ahead of the
# readers' flush would show as one), protects less than a full run, and
# every view is identical and every image clean.  Writing top in a range
# below the record between the crash and the rerun makes a gap the
# rerun's verification must find and protect (the readers' views stay).
# Kill before and power cut at every op (the rerun after every 4th), kill
# after and ENOSPC at every 4th (IMGRAPH_LONG=1: every op, a rerun after
# each, and three cut seeds instead of one).  A qed clone of base (written
# by imgraph's qed driver) gets its own small fixture: kill before and
# power cut at every op, recover, rerun.
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

# Nothing is redone: after a crash once the readers were protected (the
# first K from the middle on where the plan has less left to protect),
# the rerun's plan copies only what the readers still read from base, and
# the rerun writes no more than that into them.
LEFT=$PLANNED
for ((k = TOTAL / 2; k <= TOTAL && LEFT == PLANNED; k += 2)); do
	restore
	( IMGRAPH_FAULT=kill:$k commit ) 2>/dev/null
	"$IMGRAPH" recover "$W" >/dev/null 2>&1
	"$IMGRAPH" plan --protect --output=json --top "$W/top.qcow2" \
		--base "$W/base.qcow2" "$W" >"$T/plan2.json"
	LEFT=$(jq -r '.protect.bytes // empty' "$T/plan2.json")
	[ -n "$LEFT" ] || LEFT=$PLANNED
done
[ "$LEFT" -lt "$PLANNED" ] && ok "a crash after op $((k - 2)): $LEFT of $PLANNED bytes left to protect" ||
	not_ok "no crash point leaves less to protect ($LEFT of $PLANNED)"
"$IMGRAPH" commit --protect --output=json --top "$W/top.qcow2" \
	--base "$W/base.qcow2" --yes -q "$W" >"$T/rerun.json" 2>"$T/commit.err"
check_eq "the rerun completes" $? 0
DID=$(jq -r '."bytes-protected"' "$T/rerun.json")
[ "$DID" -le "$LEFT" ] 2>/dev/null && ok "the rerun writes $DID bytes into the readers (<= $LEFT)" ||
	not_ok "the rerun writes $DID bytes into the readers (> $LEFT)"
out=$(verify) && ok "after the rerun every view is intact" || not_ok "after the rerun: $out"

# ---- a qed reader ----------------------------------------------------------------
# Written by imgraph's qed driver (new clusters and L2 tables appended,
# entries linked after their data is durable): a kill before, and a power
# cut at, every op of a commit that protects a qed clone, then recover and
# a rerun: the qed's view intact, qemu-img check 0 or 3 (leaks only).
Q=$T/q
mkdir -p "$Q" && cd "$Q" || exit 1
mkq base.qcow2 8M
qio base.qcow2 -c 'write -P 0x11 0 8M'
mkq top.qcow2 8M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0xb1 0 2M' -c 'write -P 0xb2 5M 1M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 q.qed 8M
qemu-io -f qed -c 'write -P 0x41 1M 64k' -c 'write -z 5M 64k' q.qed >/dev/null
cd "$T" || exit 1
guest_raw "$Q/q.qed" "$T/q.raw"; guest_raw "$Q/top.qcow2" "$T/qtop.raw"
cp -a "$Q" "$T/qtpl"
qcommit() { "$IMGRAPH" commit --protect --top "$Q/top.qcow2" \
	--base "$Q/base.qcow2" --yes -q "$Q" >/dev/null 2>"$T/qcommit.err"; }
qverify() { # what is wrong, if anything
	local i rc
	qemu-img compare -q -f raw -F qed "$T/q.raw" "$Q/q.qed" >/dev/null 2>&1 ||
		{ echo "q.qed: view changed"; return 1; }
	for i in q.qed base.qcow2; do
		qemu-img check -q "$Q/$i" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || [ $rc = 3 ] || { echo "$i: check exit $rc"; return 1; }
	done
}
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/qcount qcommit
QN=$(cat "$T/qcount")
out=$(qverify) && ok "qed reader: a clean protected commit keeps its view ($QN ops)" ||
	not_ok "qed reader: clean run: $out"
qseeds=7; [ "$LONG" = 1 ] && qseeds="3 7 11"
for ((k = 1; k <= QN; k++)); do
	for f in "kill:$k" $(for s in $qseeds; do echo "cut:$k:$s"; done); do
		rm -rf "$Q"; cp -a "$T/qtpl" "$Q"
		( IMGRAPH_FAULT=$f qcommit ) 2>/dev/null
		runs=$((runs + 1))
		if ! "$IMGRAPH" recover "$Q" >"$T/qrec.out" 2>&1; then
			echo "# qed $f: recover failed"; diag <"$T/qrec.out"
			fails=$((fails + 1)); continue
		fi
		if ! out=$(qverify); then
			echo "# qed $f: after recover: $out"; fails=$((fails + 1)); continue
		fi
		if ! qcommit; then
			echo "# qed $f: rerun failed: $(head -1 "$T/qcommit.err")"
			fails=$((fails + 1)); continue
		fi
		if ! out=$(qverify) || ! qemu-img compare -q -f raw -F qcow2 \
			"$T/qtop.raw" "$Q/base.qcow2" >/dev/null 2>&1; then
			echo "# qed $f: after the rerun: ${out:-base differs from the old top}"
			fails=$((fails + 1))
		fi
	done
done
report "qed reader: kill before and power cut at op K (1..$QN), recover, rerun"

# ---- the journal of the protection -------------------------------------------
J=$T/j
jbuild() {
	rm -rf "$J"; mkdir -p "$J" && cd "$J" || return 1
	mkq base.qcow2 64M
	qio base.qcow2 -c 'write -P 0x11 0 64M'
	mkq top.qcow2 64M base.qcow2 qcow2
	qio top.qcow2 -c 'write -P 0x22 0 40M' -c 'write -P 0x23 56M 4M'
	mkq vm.qcow2 64M top.qcow2 qcow2
	mkq d1.qcow2 64M base.qcow2 qcow2
	mkq d2.qcow2 64M base.qcow2 qcow2 -o extended_l2=on
	qio d2.qcow2 -c 'write -P 0x32 8M 4k'
	mkq d3.qcow2 64M base.qcow2 qcow2 -o compat=0.10
	cd "$T" || return 1
}
JVIEWS="vm d1 d2 d3"
jcommit() { # OUT [env...]
	local out=$1; shift
	env "$@" "$IMGRAPH" commit --protect --top "$J/top.qcow2" \
		--base "$J/base.qcow2" --yes -q --output=json "$J" \
		>"$out" 2>"$T/jcommit.err"
}
jverify() { # [LEAKS]: LEAKS 1 allows leaked clusters (after a power cut)
	local i rc
	for i in $JVIEWS; do
		qemu-img compare -q -f raw -F qcow2 "$T/jv/$i.raw" "$J/$i.qcow2" \
			>/dev/null 2>&1 || { echo "$i: view changed"; return 1; }
	done
	for i in base vm d1 d2 d3; do
		qemu-img check -q "$J/$i.qcow2" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || { [ "${1:-0}" = 1 ] && [ $rc = 3 ]; } ||
			{ echo "$i: check exit $rc"; return 1; }
	done
}
jbuild || { not_ok "journal fixture"; done_testing; }
mkdir -p "$T/jv"
for i in $JVIEWS; do guest_raw "$J/$i.qcow2" "$T/jv/$i.raw"; done
cp -a "$J" "$T/jtpl"
jcommit "$T/jfull.json" IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$T/jcount"
JFULL=$(jq -r '."bytes-protected"' "$T/jfull.json")
JOPS=$(cat "$T/jcount")
out=$(jverify) && ok "journal fixture: a clean run protects $JFULL bytes in $JOPS ops" ||
	not_ok "journal fixture: $out"
jruns=0 jbad="" jresumed=0
# (the first round of the protection looks 64 MiB ahead: most ops, and
# the record moves on in the windows after it, from ~85% of the ops on,
# and the relink starts at ~94%: after it recover finishes the commit)
for f in kill:$((JOPS * 88 / 100)) kill:$((JOPS * 91 / 100)) kill:$((JOPS * 92 / 100)) \
	 cut:$((JOPS * 88 / 100)):7 cut:$((JOPS * 91 / 100)):3 cut:$((JOPS * 92 / 100)):11; do
	rm -rf "$J"; cp -a "$T/jtpl" "$J"
	( IMGRAPH_FAULT=$f jcommit "$T/jx.json" ) 2>/dev/null
	jruns=$((jruns + 1))
	"$IMGRAPH" recover --output=json "$J" >"$T/jrec.json" 2>&1 || { jbad+=" $f:recover"; continue; }
	done_at=$(jq -r '."protected-copies"[0]."protected-below" // 0' "$T/jrec.json")
	jcommit "$T/jre.json" || { jbad+=" $f:rerun($(head -c 200 "$T/jcommit.err"))"; continue; }
	[ "$(jq -r '."protect-resumed-at"' "$T/jre.json")" = "$done_at" ] || jbad+=" $f:resumed"
	[ "$(jq -r '."bytes-reprotected"' "$T/jre.json")" = 0 ] || jbad+=" $f:gap"
	[ "$(jq -r '."bytes-protected"' "$T/jre.json")" -lt "$JFULL" ] || jbad+=" $f:redone"
	[ "$done_at" -gt 0 ] && jresumed=$((jresumed + 1))
	leaks=0; case $f in cut:*) leaks=1 ;; esac
	out=$(jverify $leaks) || jbad+=" $f:$out"
	qemu-img compare -q "$T/jtpl/top.qcow2" "$J/base.qcow2" >/dev/null 2>&1 ||
		jbad+=" $f:base"
done
[ -z "$jbad" ] && ok "journal: $jruns kills and cuts, the rerun resumes where recover said, no gap, less than a full run, every view identical, check clean (leaks only after a cut)" ||
	not_ok "journal:$jbad"
[ "$jresumed" -ge 4 ] && ok "journal: $jresumed of $jruns runs resumed past 0" ||
	not_ok "journal: only $jresumed of $jruns runs resumed past 0"
# A gap below the record: top written (by its VM) between the crash and the
# rerun, in a range base still holds old data in and no reader allocates.
rm -rf "$J"; cp -a "$T/jtpl" "$J"
( IMGRAPH_FAULT=kill:$((JOPS * 92 / 100)) jcommit "$T/jx.json" ) 2>/dev/null
"$IMGRAPH" recover --output=json "$J" >"$T/jrec.json" 2>&1
done_at=$(jq -r '."protected-copies"[0]."protected-below" // 0' "$T/jrec.json")
if [ "$done_at" -gt $((44 << 20)) ]; then
	qio "$J/top.qcow2" -c 'write -P 0x24 42M 1M'
	guest_raw "$J/top.qcow2" "$T/jtop2.raw"
	guest_raw "$J/vm.qcow2" "$T/jv/vm.raw"
	check_rc "gap: the rerun completes" 0 jcommit "$T/jre.json"
	GAP=$(jq -r '."bytes-reprotected"' "$T/jre.json")
	[ "$GAP" -gt 0 ] && ok "gap: the verification found and protected $GAP bytes below the record" ||
		not_ok "gap: no gap protected (got $GAP)"
	out=$(jverify) && ok "gap: every view identical and clean" || not_ok "gap: $out"
	check "gap: base shows top's view, the new write included" \
		qemu-img compare -q -f raw -F qcow2 "$T/jtop2.raw" "$J/base.qcow2"
else
	not_ok "gap: the record at $done_at does not reach past 44 MiB"
fi
done_testing
