#!/usr/bin/env bash
# stale_marks.sh - stale images are marked, in every later run (issue 13,
# "Stale images look valid"): after committing top into base through mid,
# mid no longer shows what it showed (qemu-img compare says so), and top is
# read by nothing; the old tree showed base <- mid <- top as an ordinary
# chain.
#   S1 tree flags mid `stale` and top `unused` (human, JSON, YAML), in
#      every later run, from a record beside base (no image header
#      changes for it);
#   S2 a plan that uses a stale or unused image as top, base or
#      intermediate refuses (exit 3) and says why;
#   S3 a commit that failed after writing into base leaves mid stale but
#      top in use, and a retry of that same commit is allowed;
#   S4 a record whose image was replaced (another dev:ino) marks nothing;
#   S5 a later `commit --delete` into the same base moves the leftovers
#      into the trash (the plan lists them);
#   S6 crash matrix: whatever instant a commit is killed or cut at,
#      `imgraph recover` leaves marks that tell the truth - top unused
#      exactly when its parent names base, mid stale whenever base changed.
. "$(dirname "$0")/lib.sh"

build() { # DIR: base <- mid <- top <- vm, each writing its own pattern
	mkdir -p "$1"
	mkq "$1/base.qcow2" 8M
	qio "$1/base.qcow2" -c 'write -P 0x11 0 2M'
	mkq "$1/mid.qcow2" 8M base.qcow2
	qio "$1/mid.qcow2" -c 'write -P 0x22 1M 2M'
	mkq "$1/top.qcow2" 8M mid.qcow2
	qio "$1/top.qcow2" -c 'write -P 0x33 512k 1M' -c 'write -P 0x34 4M 1M'
	mkq "$1/vm.qcow2" 8M top.qcow2
	qio "$1/vm.qcow2" -c 'write -P 0x44 6M 64k'
}
flags() { # DIR NAME: the JSON flags of NAME, comma-separated
	"$IMGRAPH" tree --output=json "$1" |
		jq -r --arg n "$1/$2" '.nodes[] | select(.name == $n) | .flags | join(",")'
}
commit() { # DIR [ARGS...]
	local d=$1; shift
	"$IMGRAPH" commit --top "$d/top.qcow2" --base "$d/base.qcow2" --yes -q "$@" "$d"
}

# S1
W=$T/w; build "$W"
guest_raw "$W/mid.qcow2" "$T/mid.before.raw"
guest_raw "$W/top.qcow2" "$T/top.before.raw"
for f in base mid top vm; do qemu-img info -U --output=json "$W/$f.qcow2" | jq -S 'del(."actual-size")' >"$T/$f.info"; done
check_rc "commit top into base" 0 commit "$W"
check "mid no longer shows what it showed (qemu-img compare)" \
	sh -c "! qemu-img compare -U -q -f qcow2 -F raw '$W/mid.qcow2' '$T/mid.before.raw'"
check "top keeps its view" qemu-img compare -U -q -f qcow2 -F raw "$W/top.qcow2" "$T/top.before.raw"
for f in mid top; do
	qemu-img info -U --output=json "$W/$f.qcow2" | jq -S 'del(."actual-size")' >"$T/$f.after"
	check "$f: header untouched (the mark lives beside base)" cmp "$T/$f.info" "$T/$f.after"
done
check "the record lies beside base" test -f "$W/.imgraph-stale-base.qcow2.rec"
for run in 1 2; do
	check_rc "tree (run $run)" 0 "$IMGRAPH" tree "$W"
	check_grep "tree (run $run): mid stale" "mid.qcow2 .*\\[stale\\]" "$T/.out"
	check_grep "tree (run $run): top unused" "top.qcow2 .*\\[unused\\]" "$T/.out"
	check_nogrep "tree (run $run): base and vm unmarked" "(base|vm).qcow2 .*\\[(stale|unused)" "$T/.out"
done
check_grep "tree: says why mid is stale" "! stale: '$W/base.qcow2' was committed into" "$T/.out"
check_eq "json: mid stale" "$(flags "$W" mid.qcow2)" stale
check_eq "json: top unused" "$(flags "$W" top.qcow2)" unused
check_eq "json: vm unmarked" "$(flags "$W" vm.qcow2)" ""
check_eq "json: mid's mark names base and the relink" \
	"$("$IMGRAPH" tree --output=json "$W" | jq -r --arg n "$W/mid.qcow2" \
	'.nodes[] | select(.name == $n) | .committed[0] | "\(.mark) \(.relinked)"')" "stale true"
check_rc "yaml" 0 "$IMGRAPH" tree --output=yaml "$W"
check_grep "yaml: marks" '- "stale"' "$T/.out"

# S2
check_rc "plan with stale mid as top: refused" 3 "$IMGRAPH" plan --top "$W/mid.qcow2" "$W"
check_grep "... says mid is stale" "\\[stale\\] top '$W/mid.qcow2' is stale" "$T/.out"
check_rc "plan with unused top: refused" 3 "$IMGRAPH" plan --top "$W/top.qcow2" --base "$W/base.qcow2" "$W"
check_grep "... says top is unused" "\\[stale\\] top '$W/top.qcow2' is unused" "$T/.out"
check_grep "... and mid, its intermediate, stale" "intermediate '$W/mid.qcow2' is stale" "$T/.out"
mkq "$W/x.qcow2" 8M mid.qcow2
check_rc "plan with stale mid as base: refused" 3 "$IMGRAPH" plan --top "$W/x.qcow2" --base "$W/mid.qcow2" "$W"
check_grep "... says base is stale" "\\[stale\\] base '$W/mid.qcow2' is stale" "$T/.out"
check_rc "plan through stale mid: refused" 3 "$IMGRAPH" plan --top "$W/x.qcow2" --base "$W/base.qcow2" "$W"
check_grep "... intermediate stale" "\\[stale\\] intermediate '$W/mid.qcow2' is stale" "$T/.out"
check_rc "json plan: kind stale" 3 "$IMGRAPH" plan --output=json --top "$W/x.qcow2" --base "$W/base.qcow2" "$W"
check_grep "json plan: kind stale" '"kind": "stale"' "$T/.out"
rm -f "$W/x.qcow2"

# S4: mid replaced by a new file: the record does not apply to it.
mv "$W/mid.qcow2" "$T/mid.moved"
mkq "$W/mid.qcow2" 8M base.qcow2
check_eq "replaced mid: not marked" "$(flags "$W" mid.qcow2)" ""
rm -f "$W/mid.qcow2"; mv "$T/mid.moved" "$W/mid.qcow2"
check_eq "mid back: marked again" "$(flags "$W" mid.qcow2)" stale

# S5: a later commit of vm into base with --delete takes the leftovers.
check_rc "later plan --delete lists the leftovers" 0 "$IMGRAPH" plan --delete \
	--top "$W/vm.qcow2" --base "$W/base.qcow2" "$W"
check_grep "... top" "^  $W/top.qcow2\$" "$T/.out"
check_grep "... mid" "^  $W/mid.qcow2\$" "$T/.out"
guest_raw "$W/vm.qcow2" "$T/vm.raw"
check_rc "later commit --delete" 0 "$IMGRAPH" commit --delete --top "$W/vm.qcow2" \
	--base "$W/base.qcow2" --yes -q "$W"
check "leftovers moved into the trash" test ! -e "$W/top.qcow2" -a ! -e "$W/mid.qcow2"
check "vm kept, its view unchanged" qemu-img compare -U -q -f qcow2 -F raw "$W/vm.qcow2" "$T/vm.raw"

# S3: a commit that fails after writing into base, before its relink; then
# the retry.  The fault hits the first op of the relink phase: journal (5),
# the parent (2), RELINKED (5), stale record DONE (5), removal (2).
W=$T/r; build "$W"
guest_raw "$W/vm.qcow2" "$T/rvm.raw"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/rcount commit "$W" >/dev/null 2>&1
RT=$(cat "$T/rcount")
rm -rf "$W"; build "$W"
IMGRAPH_FAULT=err:$((RT - 18)):EIO commit "$W" >/dev/null 2>"$T/r.err"; rc=$?
check_grep "failed commit: at the relink" 'relink not started' "$T/r.err"
check "failed commit: exit 1" test "$rc" = 1
check_eq "failed commit: mid stale" "$(flags "$W" mid.qcow2)" stale
check_eq "failed commit: top still in use, not unused" "$(flags "$W" top.qcow2)" ""
check "failed commit: vm's view unchanged" qemu-img compare -U -q -f qcow2 -F raw "$W/vm.qcow2" "$T/rvm.raw"
check_rc "a retry of the same commit is allowed" 0 commit "$W"
check_eq "after the retry: top unused" "$(flags "$W" top.qcow2)" unused
check_eq "after the retry: mid stale" "$(flags "$W" mid.qcow2)" stale
check "after the retry: vm's view unchanged" qemu-img compare -U -q -f qcow2 -F raw "$W/vm.qcow2" "$T/rvm.raw"

# S6: crash matrix over the whole commit.
W=$T/c; build "$W"; guest_raw "$W/base.qcow2" "$T/base.raw"; cp -a "$W" "$T/ctpl"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/ccount commit "$W" >/dev/null 2>&1
CT=$(cat "$T/ccount")
runs=0 fails=0
crash_case() { # FAULT
	local side base_changed mf tf
	rm -rf "$W"; cp -a "$T/ctpl" "$W"
	( IMGRAPH_FAULT=$1 commit "$W" >/dev/null 2>&1 ) 2>/dev/null
	runs=$((runs + 1))
	if ! "$IMGRAPH" recover "$W" >"$T/rec.out" 2>&1; then
		echo "# $1: recover failed"; diag <"$T/rec.out"; fails=$((fails + 1)); return
	fi
	side=$(qemu-img info -U --output=json "$W/vm.qcow2" | jq -r '."backing-filename"')
	qemu-img compare -U -q -f qcow2 -F raw "$W/base.qcow2" "$T/base.raw" >/dev/null 2>&1 &&
		base_changed=0 || base_changed=1
	mf=$(flags "$W" mid.qcow2); tf=$(flags "$W" top.qcow2)
	if [ "$side" = base.qcow2 ] && [ "$tf" != unused ]; then
		echo "# $1: vm on base, top not marked unused ('$tf')"; fails=$((fails + 1)); return
	fi
	if [ "$side" = top.qcow2 ] && [ -n "$tf" ]; then
		echo "# $1: vm still on top, yet top marked '$tf'"; fails=$((fails + 1)); return
	fi
	if [ "$base_changed" = 1 ] && [ "$mf" != stale ]; then
		echo "# $1: base changed, mid not marked stale ('$mf')"; fails=$((fails + 1)); return
	fi
}
for ((k = 1; k <= CT; k++)); do crash_case "kill:$k"; done
step=3; [ "${IMGRAPH_LONG:-0}" = 1 ] && step=1
for ((k = 1; k <= CT; k += step)); do crash_case "cut:$k:$k"; done
if [ $fails = 0 ]; then ok "crash matrix: $runs runs, the marks tell the truth"
else not_ok "crash matrix: $fails of $runs runs left false marks"; fi

done_testing
