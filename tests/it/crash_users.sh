#!/usr/bin/env bash
# crash_users.sh - crash consistency of the parts of a commit that replace or
# remove whole files: the users file (written to a temporary name, renamed
# into place, directory fsynced) and --delete (top and mid unlinked once the
# relink is durable).  The power-cut simulator loses renames and unlinks
# whose directory was not fsynced, so these are the runs that would catch a
# missing directory sync.
#
# Every run: commit with the fault, `imgraph recover`, then judged with
# qemu-img (quiet_verify: guest views, all overlays on one side, check,
# outside untouched, no journal) and on the users file:
#   U1 it exists and loads (imgraph tree --users exits 0);
#   U2 top's entry names base exactly when the overlays do, else top;
#   U3 the other entry and the comment are kept, no temporary is left;
#   D1 with --delete: when the overlays are on base, top and mid are gone or
#      intact (qemu-img check), never half-written; when on top, both exist.
# Default: the last 24 ops (the relink and the deletes), killed before each,
# cut with 2 seeds.  IMGRAPH_LONG=1: every op, cut with 4 seeds.
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
		local f
		for f in top mid; do
			if [ "$want" = top ] && [ ! -f "$W/$f.qcow2" ]; then
				echo "D1 $f.qcow2 deleted while the overlays still use it"; return 1
			fi
			if [ -f "$W/$f.qcow2" ] && ! qemu-img check -U -q "$W/$f.qcow2" >/dev/null 2>&1; then
				echo "D1 $f.qcow2 left half-written"; return 1
			fi
		done
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
	out=$(users_verify "$del") && ok "$name: plain commit ($TOTAL ops)" ||
		not_ok "$name: plain commit: $out"
	if [ "$del" = 1 ]; then
		check "$name: top and mid deleted" test ! -e "$W/top.qcow2" -a ! -e "$W/mid.qcow2"
	fi
	lo=$((TOTAL - 23)); seeds="1 2"
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
