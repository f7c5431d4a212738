#!/usr/bin/env bash
# commit_basic.sh - imgraph commit on base <- mid <- top with two overlays of
# top in different directories (one relative, one absolute name) and a
# users-file entry for top, judged by qemu-img: guest views unchanged, base
# shows top's old view, names stay relative/absolute with the format
# recorded, check clean, files outside the plan untouched, the users file
# repointed atomically, no journal left.  Also: the plan is refused with
# exit 3 when base has another overlay, exit 2 without --yes off a
# terminal, and while a journal is pending - nothing written in each case.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

P=$T/pool
fixture_build "$P" 2 || { not_ok "fixture"; done_testing; }
fixture_users "$P"
fixture_save "$P" "$T/v"

# Refusal without a terminal and without --yes: exit 2, nothing written.
snap_dir "$P" >"$T/before.sha"
check_rc "no --yes off a terminal: exit 2" 2 \
	"$IMGRAPH" commit --top "$P/top.qcow2" --base "$P/base.qcow2" -r "$P" </dev/null
snap_dir "$P" >"$T/after.sha"
check "no --yes: nothing written" cmp -s "$T/before.sha" "$T/after.sha"

check_rc "commit with --yes" 0 "$IMGRAPH" commit --top "$P/top.qcow2" \
	--base "$P/base.qcow2" --users "$P/users.yaml" --yes -r "$P"
check_grep "stdout names the relinked parents" 'Relinked 2 parents' "$T/.out"
check_grep "progress is JSON lines on stderr off a terminal" \
	'^\{"phase": ?"relink"' "$T/.err"
fixture_verify "commit" "$P" "$T/v" base

# Names: relative stays relative (recomputed per directory), absolute stays
# absolute, the format is recorded.
info() { qemu-img info -U --output=json "$1" | python3 -c \
	"import json,sys; d=json.load(sys.stdin); print(d.get('backing-filename',''), d.get('backing-filename-format',''))"; }
check_eq "d0 overlay: relative name" "$(info "$P/d0/ovl0.qcow2")" "../base.qcow2 qcow2"
check_eq "d1 overlay: absolute name" "$(info "$P/d1/ovl1.qcow2")" "$P/base.qcow2 qcow2"
check "top and mid kept on disk" test -f "$P/top.qcow2" -a -f "$P/mid.qcow2"
check_eq "top unchanged: still on mid" "$(info "$P/top.qcow2")" "mid.qcow2 qcow2"

# The users file: top's entry repointed, everything else byte for byte.
check_grep "users file: top's entry now names base" '^    image: base.qcow2$' "$P/users.yaml"
check_grep "users file: comment kept" '^# who uses what$' "$P/users.yaml"
check_grep "users file: other entry kept" '^    image: other.qcow2$' "$P/users.yaml"
check_nogrep "users file: no temp left" 'x' <(ls -a "$P" | grep -E 'imgraph-tmp|\.tmp$' || true)

# A second commit of the same pair now: top has no parents left (a leaf);
# the plan still runs (qemu-img semantics) - but first the refusals.
# Base with another overlay: the commit would change its view -> exit 3.
Q=$T/conf
fixture_build "$Q" 1
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$Q/sibling.qcow2" 16M
snap_dir "$Q" >"$T/before.sha"
check_rc "sibling of base: conflict, exit 3" 3 \
	"$IMGRAPH" commit --top "$Q/top.qcow2" --base "$Q/base.qcow2" --yes -r "$Q"
check_grep "conflict is shown in the plan" 'conflict' "$T/.out"
snap_dir "$Q" >"$T/after.sha"
check "conflict: nothing written" cmp -s "$T/before.sha" "$T/after.sha"
rm -f "$Q/sibling.qcow2"

# A pending journal next to base blocks a new commit until recover runs.
printf 'imgraph-journal 1 *00000000\n' >"$Q/.imgraph-journal-base.qcow2"
snap_dir "$Q" >"$T/before.sha"
check_rc "pending journal: refused" 3 \
	"$IMGRAPH" commit --top "$Q/top.qcow2" --base "$Q/base.qcow2" --yes -r "$Q"
check_grep "pending journal: says to run recover" 'imgraph recover' "$T/.err"
snap_dir "$Q" >"$T/after.sha"
check "pending journal: nothing written" cmp -s "$T/before.sha" "$T/after.sha"
rm -f "$Q/.imgraph-journal-base.qcow2"

# A base whose refcounts qemu-img check calls corrupt (a data cluster with
# refcount 0: the allocator could hand it out again) is refused before
# anything is written, naming base and the first error.
C=$T/corrupt
fixture_build "$C" 1
dc=$(qemu-img map --output=json "$C/base.qcow2" |
	sed -n 's/.*"data": true.*"offset": \([0-9]*\).*/\1/p' | head -n 1)
rt=$((0x$(od -An -tx1 -j48 -N8 "$C/base.qcow2" | tr -d ' \n')))
rb=$((0x$(od -An -tx1 -j"$rt" -N8 "$C/base.qcow2" | tr -d ' \n')))
printf '\0\0' | dd of="$C/base.qcow2" bs=1 seek=$((rb + dc / 65536 * 2)) conv=notrunc status=none
check_rc "corrupt base: qemu-img check says 2 (corruptions)" 2 qemu-img check "$C/base.qcow2"
check_grep "corrupt base: qemu-img counts 2 errors, as imgraph will" "^2 errors were found" "$T/.out"
snap_dir "$C" >"$T/before.sha"
check_rc "corrupt base: refused, exit 1" 1 \
	"$IMGRAPH" commit --top "$C/top.qcow2" --base "$C/base.qcow2" --yes -q -r "$C"
check_grep "corrupt base: names base, the error and the repair" \
	"base.qcow2: base has 2 corruption.*cluster 5 refcount=0 reference=1.*qemu-img check -r all.*nothing was written" "$T/.err"
snap_dir "$C" >"$T/after.sha"
check "corrupt base: nothing written" cmp -s "$T/before.sha" "$T/after.sha"

# --output=json: one result document on stdout.
fixture_save "$Q" "$T/vq"
check_rc "commit --output=json" 0 "$IMGRAPH" commit --top "$Q/top.qcow2" \
	--yes -q --output=json -r "$Q"
cp "$T/.out" "$T/result.json"
check "json result parses" python3 -c "import json; d=json.load(open('$T/result.json')); assert d['relinked']==1, d"
check_eq "-q: no progress on stderr" "$(wc -c <"$T/.err")" 0
fixture_verify "default base (top's backing file = mid)" "$Q" "$T/vq" mid

done_testing
