#!/usr/bin/env bash
# crash_trash.sh - crash consistency of the trash (`commit --delete` moving
# in: crash_users.sh).  `imgraph undelete` and `imgraph purge` are killed
# (SIGKILL before mutating op K) or hit by a simulated power cut
# (IMGRAPH_FAULT=cut:K:SEED), then run again.  Invariants:
#   U1 after a crashed undelete and a second one, top and mid are back at
#      their paths, byte for byte as before the commit, and check clean;
#      the overlay's guest view is unchanged; a purge then leaves no trash;
#   U2 at every crash point each file is either at its path or in the
#      trash under its record - never lost;
#   P1 after a crashed purge and a second one, the trash is gone and the
#      images that stay are unchanged.
# The trash records files by dev:ino, so a copied pool is (rightly) not
# its trash: each run builds its state with a real commit.
. "$(dirname "$0")/lib.sh"

W=$T/w
mkdir -p "$T/tpl"
mkq "$T/tpl/base.qcow2" 8M
qio "$T/tpl/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$T/tpl/mid.qcow2" 8M base.qcow2
qio "$T/tpl/mid.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$T/tpl/top.qcow2" 8M mid.qcow2
qio "$T/tpl/top.qcow2" -c 'write -P 0x33 2M 1M'
mkq "$T/tpl/vm.qcow2" 8M top.qcow2
qio "$T/tpl/vm.qcow2" -c 'write -P 0x44 3M 64k'
guest_raw "$T/tpl/vm.qcow2" "$T/vm.raw"
trashed() { # a pool whose top and mid are in the trash
	rm -rf "$W"; cp -a "$T/tpl" "$W"
	"$IMGRAPH" commit --delete --yes -q --top "$W/top.qcow2" --base "$W/base.qcow2" \
		"$W" >/dev/null 2>&1 && test ! -e "$W/top.qcow2" -a ! -e "$W/mid.qcow2"
}
trashed || { not_ok "fixture: commit --delete"; done_testing; }
images() { (cd "$W" && sha256sum base.qcow2 vm.qcow2); }
images >"$T/pool.sha"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/ucount "$IMGRAPH" undelete "$W" >/dev/null 2>&1
UT=$(cat "$T/ucount")
trashed
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/pcount "$IMGRAPH" purge "$W" >/dev/null 2>&1
PT=$(cat "$T/pcount")
[ "$UT" -ge 4 ] && [ "$PT" -ge 4 ] && ok "count: undelete $UT ops, purge $PT ops" ||
	not_ok "count: undelete $UT, purge $PT"

runs=0 fails=0
report() {
	if [ $fails = 0 ]; then ok "$1: $runs runs, invariants hold"
	else not_ok "$1: $fails of $runs runs broke an invariant"; fi
	runs=0 fails=0
}
# U2: in place, or in the trash under a record naming it.
nowhere_lost() {
	local f at hex
	for f in top mid; do
		[ -f "$W/$f.qcow2" ] && continue
		at=$(ls "$W"/.imgraph-trash/*/$f.qcow2 2>/dev/null | head -1)
		hex=$(printf %s "$f.qcow2" | od -An -tx1 | tr -d ' \n')
		if [ -z "$at" ] || ! grep -q "^file $hex " "$(dirname "$at").rec"; then
			echo "U2 $f.qcow2 neither in place nor in the trash with its record"; return 1
		fi
	done
}
undelete_case() { # FAULT
	local f
	trashed || { echo "# $1: fixture"; fails=$((fails + 1)); return; }
	runs=$((runs + 1))
	( IMGRAPH_FAULT=$1 "$IMGRAPH" undelete "$W" >/dev/null 2>&1; true ) 2>/dev/null
	if ! out=$(nowhere_lost); then echo "# $1: $out"; fails=$((fails + 1)); return; fi
	"$IMGRAPH" undelete "$W" >"$T/u.out" 2>&1
	for f in top mid; do
		if ! cmp -s "$W/$f.qcow2" "$T/tpl/$f.qcow2"; then
			echo "# $1: U1 $f.qcow2 not back as it was"; diag <"$T/u.out"
			fails=$((fails + 1)); return
		fi
		if ! qemu-img check -U -q "$W/$f.qcow2" >/dev/null 2>&1; then
			echo "# $1: U1 $f.qcow2 does not check clean"; fails=$((fails + 1)); return
		fi
	done
	if ! qemu-img compare -U -q -f qcow2 -F raw "$W/vm.qcow2" "$T/vm.raw" >/dev/null 2>&1; then
		echo "# $1: U1 vm's view changed"; fails=$((fails + 1)); return
	fi
	"$IMGRAPH" purge "$W" >/dev/null 2>&1
	if [ -e "$W/.imgraph-trash" ]; then
		echo "# $1: U1 a trash is left after undelete and purge"; fails=$((fails + 1))
	fi
}
purge_case() { # FAULT
	trashed || { echo "# $1: fixture"; fails=$((fails + 1)); return; }
	runs=$((runs + 1))
	( IMGRAPH_FAULT=$1 "$IMGRAPH" purge "$W" >/dev/null 2>&1; true ) 2>/dev/null
	if ! "$IMGRAPH" purge "$W" >"$T/p.out" 2>&1; then
		echo "# $1: P1 second purge failed"; diag <"$T/p.out"; fails=$((fails + 1)); return
	fi
	if [ -e "$W/.imgraph-trash" ]; then
		echo "# $1: P1 trash left"; fails=$((fails + 1)); return
	fi
	if ! images | cmp -s - "$T/pool.sha"; then
		echo "# $1: P1 an image changed"; fails=$((fails + 1))
	fi
}

seeds="1 2"; [ "${IMGRAPH_LONG:-0}" = 1 ] && seeds="1 2 3 4 5"
for ((k = 1; k <= UT; k++)); do undelete_case "kill:$k"; done
report "undelete killed before op K (1..$UT)"
for s in $seeds; do for ((k = 1; k <= UT; k++)); do undelete_case "cut:$k:$s"; done; done
report "undelete cut at op K (1..$UT, seeds $seeds)"
for ((k = 1; k <= PT; k++)); do purge_case "kill:$k"; done
report "purge killed before op K (1..$PT)"
for s in $seeds; do for ((k = 1; k <= PT; k++)); do purge_case "cut:$k:$s"; done; done
report "purge cut at op K (1..$PT, seeds $seeds)"

done_testing
