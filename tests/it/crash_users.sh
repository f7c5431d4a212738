#!/usr/bin/env bash
# crash_users.sh - crash consistency of the parts of a commit that replace or
# move whole files: the users file (written to a temporary name, renamed
# into place, directory fsynced) and --delete (top and mid moved into the
# trash once the relink is durable).  The power-cut simulator loses renames and unlinks
# whose directory was not fsynced, so these are the runs that would catch a
# missing directory sync.
#
# Every run: commit with the fault, `imgraph recover`, then judged with
# qemu-img (quiet_verify: guest views, all overlays on one side, check,
# outside untouched, no journal) and on the users file:
#   U1 it exists and loads (imgraph tree --users exits 0);
#   U2 top's entry names base exactly when the overlays do, else top;
#   U3 the other entry and the comment are kept, no temporary is left;
#   D1 with --delete: when the overlays are on base, top and mid are each in
#      place or in the trash under a record naming them, byte for byte as
#      before; when on top, both are in place;
#   D2 `imgraph undelete` puts back whatever moved, and top shows its old
#      view.
# Default: the relink and the trash ops, killed before each, cut with 2
# seeds.  IMGRAPH_LONG=1: every op, cut with 4 seeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

W=$T/w          # fixed path: absolute backing names stay valid on restore
fixture_build "$W" 2 || { not_ok fixture; done_testing; }
fixture_users "$W"
fixture_save "$W" "$T/v"
cp -a "$W" "$T/tpl"
restore() { rm -rf "$W"; cp -a "$T/tpl" "$W"; }
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--users "$W/users.yaml" --yes -q -r "$@" "$W" >/dev/null 2>"$T/commit.err"; }

LONG=${IMGRAPH_LONG:-0}
runs=0 fails=0
users_verify() { # DELETE(0|1): prints the first broken property
	local side want
	"$IMGRAPH" tree --users "$W/users.yaml" "$W" >/dev/null 2>"$T/tree.err" ||
		{ echo "U1 users file does not load: $(head -c 200 "$T/tree.err")"; return 1; }
	side=$(backing_of "$W/d0/ovl0.qcow2")
	[ "$side" = "$(realpath "$W/base.qcow2")" ] && want=base || want=top
	grep -q "^    image: $want.qcow2\$" "$W/users.yaml" ||
		{ echo "U2 overlays on $want, users file: $(grep image: "$W/users.yaml" | head -1)"; return 1; }
	grep -q '^    image: other.qcow2$' "$W/users.yaml" && grep -q '^# who uses what$' "$W/users.yaml" ||
		{ echo "U3 users file lost content"; return 1; }
	if ls -a "$W" | grep -qE 'imgraph-tmp|\.tmp$|^\.imgraph-cut'; then
		echo "U3 temporary left: $(ls -a "$W" | grep -E 'imgraph-tmp|\.tmp$|imgraph-cut')"; return 1
	fi
	if [ "$1" = 1 ]; then
		local f at
		for f in top mid; do
			if [ "$want" = top ] && [ ! -f "$W/$f.qcow2" ]; then
				echo "D1 $f.qcow2 moved while the overlays still use it"; return 1
			fi
			# in place, or in the trash under a record naming it
			at=$W/$f.qcow2
			[ -f "$at" ] || at=$(ls "$W"/.imgraph-trash/*/$f.qcow2 2>/dev/null | head -1)
			if [ -z "$at" ]; then
				echo "D1 $f.qcow2 neither in place nor in the trash"; return 1
			fi
			if [ "$at" != "$W/$f.qcow2" ] &&
			   ! grep -q "^file $(printf %s "$f.qcow2" | od -An -tx1 | tr -d ' \n') " \
				"$(dirname "$at").rec"; then
				echo "D1 $f.qcow2 in the trash without its record"; return 1
			fi
			# a commit with parents never writes top or mid
			if ! cmp -s "$at" "$T/tpl/$f.qcow2"; then
				echo "D1 $at changed"; return 1
			fi
		done
		# D2 undelete puts back whatever moved; top shows its old view
		if ls "$W"/.imgraph-trash/*/*.qcow2 >/dev/null 2>&1; then
			"$IMGRAPH" undelete "$W" >"$T/und.out" 2>&1 ||
				{ echo "D2 undelete failed: $(head -c 300 "$T/und.out")"; return 1; }
		fi
		[ -f "$W/top.qcow2" ] && [ -f "$W/mid.qcow2" ] ||
			{ echo "D2 top or mid not back after undelete"; return 1; }
		qemu-img compare -U -q -f qcow2 -F raw "$W/top.qcow2" "$T/v/top.raw" >/dev/null 2>&1 ||
			{ echo "D2 top's view changed"; return 1; }
	fi
	return 0
}
crash_case() { # DELETE FAULT
	local del=$1 f=$2 rc out extra=()
	[ "$del" = 1 ] && extra=(--delete)
	restore
	( IMGRAPH_FAULT=$f commit "${extra[@]}" ) 2>/dev/null; rc=$?
	runs=$((runs + 1))
	if [ $rc = 0 ]; then echo "# $f: commit exited 0"; fails=$((fails + 1)); return; fi
	if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
		echo "# $f: recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); return
	fi
	if ! out=$(quiet_verify "$W" "$T/v" same "$T/tpl"); then
		echo "# $f: $out"; fails=$((fails + 1)); return
	fi
	if ! out=$(users_verify "$del"); then
		echo "# $f: $out"; fails=$((fails + 1)); return
	fi
}
report() { # NAME
	if [ $fails = 0 ]; then ok "$1: $runs runs, invariants hold"
	else not_ok "$1: $fails of $runs runs broke an invariant"; fi
	runs=0 fails=0
}

for del in 0 1; do
	name=users; extra=()
	[ "$del" = 1 ] && { name="users + --delete"; extra=(--delete); }
	restore
	IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count commit "${extra[@]}"
	TOTAL=$(cat "$T/count")
	[ "$del" = 1 ] && check "$name: top and mid moved into the trash" \
		test ! -e "$W/top.qcow2" -a ! -e "$W/mid.qcow2" \
		-a -f "$(ls "$W"/.imgraph-trash/*/top.qcow2 | head -1)"
	out=$(users_verify "$del") && ok "$name: plain commit ($TOTAL ops)" ||
		not_ok "$name: plain commit: $out"
	# The relink phase: journal (5), users file (5), 2 per parent,
	# journal RELINKED (5), stale record DONE (5), journal removal (2);
	# --delete adds the trash (mkdir, sync, the transaction's directory,
	# its record: create, write, sync, sync) and a rename per file and
	# two syncs.
	lo=$((TOTAL - 26)); seeds="1 2"
	[ "$del" = 1 ] && lo=$((TOTAL - 26 - 11))
	[ "$LONG" = 1 ] && { lo=1; seeds="1 2 3 4"; }
	[ $lo -lt 1 ] && lo=1
	for ((k = lo; k <= TOTAL; k++)); do crash_case "$del" "kill:$k"; done
	report "$name: kill before op K ($lo..$TOTAL)"
	for s in $seeds; do
		for ((k = lo; k <= TOTAL; k++)); do crash_case "$del" "cut:$k:$s"; done
	done
	report "$name: power cut at op K ($lo..$TOTAL, seeds $seeds)"
done

done_testing
