#!/usr/bin/env bash
# The teaching view (issue 14, point 8): s on the plan screen steps through
# the commit one stage at a time.  Every stage is checked against
# `imgraph plan --output=json` of the same pool: one copy stage per layer
# above base with the bytes that layer gives base (copy-layers, summing to
# bytes-to-copy), one relink stage per parent with its old and new backing
# (parents[]); and what a parent "reads after" is what qemu-img finds once
# the commit has run.  A plan that cannot run has no teaching view.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"
need_tools qemu-img jq

demo "$T/pool" || { not_ok "demo pool"; done_testing; }
P=$T/pool
"$IMGRAPH" plan --top "$P/top.qcow2" --base "$P/base.qcow2" --output=json "$P" >"$T/plan.json"
check "plan JSON has copy-layers" jq -e '."copy-layers" | length > 0' "$T/plan.json"
check_eq "plan JSON: copy-layers sum to bytes-to-copy" \
	"$(jq '[."copy-layers"[].bytes] | add' "$T/plan.json")" "$(jq '."bytes-to-copy"' "$T/plan.json")"
# The editor names images relative to the pool: compare file names.
jq -r '."copy-layers"[] | "\(.image | split("/") | last) \(.bytes)"' "$T/plan.json" >"$T/want.copy"
jq -r '.parents[] | "\(.name | split("/") | last) \(."old-backing") \(."new-backing")"' "$T/plan.json" >"$T/want.relink"
NL=$(jq '."copy-layers" | length' "$T/plan.json")
NP=$(jq '.parents | length' "$T/plan.json")
NSTAGES=$((4 + NL + NP))       # before, check, copies, flush, relinks, cleanup

# The screen with wrapped continuation lines (indented 4) joined back.
joined() { screen | awk '/^    [^ ]/ && NR > 1 { sub(/^ +/, " "); printf "%s", $0; next } NR > 1 { print "" } { printf "%s", $0 } END { print "" }'; }

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2
	start "$W" "$H" -- "$P"
	see "$W x $H: editor up" "10 images"
	select_img top.q; keys t
	select_img base; keys b
	see "$W x $H: clean pair" "clean"
	keys p
	see "$W x $H: plan screen" "Plan: commit top.qcow2 into base.qcow2"
	see "$W x $H: the plan offers the teaching view" "s Stages"
	keys s
	see "$W x $H: teaching view" "Teaching view: stage 1 of $NSTAGES"
	see "$W x $H: stage 1 says who reads what" "vm-web\.qcow2 -> top\.qcow2 -> mid\.qcow2 -> base\.qcow2"
	: >"$T/got.copy"; : >"$T/got.relink"; : >"$T/phases"
	for i in $(seq 1 "$NSTAGES"); do
		see "$W x $H: stage $i" "Teaching view: stage $i of $NSTAGES" 5
		joined >"$T/st"
		sed -n 's/.*Teaching view: stage [0-9]* of [0-9]* (phase \([a-z]*\)).*/\1/p' "$T/st" >>"$T/phases"
		sed -n 's/^\([0-9][0-9]*\) bytes where \([^ ]*\) is the top-most layer.*/\2 \1/p' "$T/st" >>"$T/got.copy"
		who=$(sed -n "s/^ Relink: \(.*\)'s header is rewritten.*/\1/p" "$T/st")
		if [ -n "$who" ]; then
			ob=$(sed -n "s/^backing '\([^']*\)' ([^)]*) -> '\([^']*\)'.*/\1 \2/p" "$T/st")
			echo "$who $ob" >>"$T/got.relink"
			after=$(sed -n 's/^reads after: *//p' "$T/st" | sed 's/ -> / /g; s/ *$//')
			echo "$who $after" >>"$T/after"
		fi
		# The map: the stage's layer lit, base's strip growing.
		if grep -q "^ Copy: clusters from" "$T/st"; then
			check "$W x $H: stage $i lights its layer on the map" grep -qE "^ >[a-z]" "$T/st"
			check "$W x $H: stage $i shows what base got" grep -qE "base\.qcow2 gets +[·█▒]" "$T/st"
		fi
		keys Right
	done
	check_eq "$W x $H: copy stages = plan JSON copy-layers" "$(cat "$T/got.copy")" "$(cat "$T/want.copy")"
	check_eq "$W x $H: relink stages = plan JSON parents" "$(cat "$T/got.relink")" "$(cat "$T/want.relink")"
	check_eq "$W x $H: stages follow the commit's phases" \
		"$(uniq "$T/phases" | tr '\n' ' ')" "check copy flush relink cleanup "
	keys Left
	see "$W x $H: Left goes back a stage" "stage $((NSTAGES - 1)) of $NSTAGES"
	keys Escape
	see "$W x $H: Esc returns to the plan" "Plan: commit top.qcow2 into base.qcow2"
	keys Escape
	# A plan that cannot run has no teaching view.
	keys u
	select_img dev.q; keys t
	select_img golden; keys b
	see "$W x $H: conflicting pair" "1 conflict"
	keys p
	see "$W x $H: conflicting plan" "Plan: commit dev.qcow2 into golden.qcow2 - 1 conflict"
	keys s
	not_see "$W x $H: no teaching view for a plan that cannot run" "Teaching view"
	keys Escape q
	check_eq "$W x $H: q exits 0" "$(wait_exit)" 0
done

# What each parent reads after, as the teaching view said: qemu-img's
# backing chain once the same plan ran.
check_rc "the commit runs" 0 "$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" --yes -q "$P"
sort -u "$T/after" | while read -r who chain; do
	got=$(qemu-img info -U --backing-chain "$P/$who" | sed -n 's/^image: //p' | xargs -n1 basename | tr '\n' ' ' | sed 's/ $//')
	check_eq "qemu-img: $who reads what the teaching view said" "$got" "$chain"
done
done_testing
