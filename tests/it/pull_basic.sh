#!/usr/bin/env bash
# pull_basic.sh - commit --pull (issue 18, "Pull: the other direction"):
# the data of the images between top and base goes into top where top
# allocates nothing, then top is relinked onto base.  Judged with QEMU's
# tools: every image's guest view (qemu-img compare against its view saved
# before), top's backing file (qemu-img info), qemu-img check, and base
# byte-identical (sha256).
#   P1 a template with 3 clones; one clone's chain is pulled; the other
#      clones and the template are untouched, and the commit of the same
#      pair is refused while the plan shows the pull and recommends it.
#   P2 layer variety in top: v2 and v3, extended L2 with partly allocated
#      clusters, compressed clusters, zero clusters over lower data, zeros
#      in an intermediate, a top larger than its backing file.
#   P3 a top that allocates everything: the plan says 0 B; nothing copied.
#   P4 refusals, nothing written: a live holder on top, a top whose format
#      imgraph cannot write (qcow v1), a pair with nothing between; a qed
#      top is pulled (imgraph writes qed).
#   P5 a top smaller and one larger than base, a raw base.
#   P6 a template on a read-only mount: the relink journal cannot be
#      written beside it, a conflict before anything is written.
. "$(dirname "$0")/lib.sh"
trap 'holder_stop; umount "$T/ro" 2>/dev/null; rm -rf "$T"' EXIT

W=$T/w
bk() { qemu-img info -U --output=json "$1" | sed -n 's/^ *"backing-filename": "\(.*\)",*$/\1/p'; }
compressed() { # FILE: its compressed clusters, as qemu-img check counts them
	qemu-img check -U --output=json "$1" | jq '."compressed-clusters" // 0'
}

# save_views DIR: the guest view of every image, and base's hash.
save_views() {
	local f
	rm -rf "$T/views"; mkdir -p "$T/views"
	for f in "$1"/*.qcow2; do guest_raw "$f" "$T/views/$(basename "$f").raw"; done
	sha256sum "$1/$2" >"$T/base.sha"
}
# verify NAME DIR TOP BASE: every view as saved, check clean, base intact,
# top names base.
verify() {
	local name=$1 d=$2 top=$3 base=$4 f bad=0
	for f in "$d"/*.qcow2; do
		if ! qemu-img compare -U -q "$f" "$T/views/$(basename "$f").raw" 2>"$T/.cmp"; then
			echo "# $name: $(basename "$f")'s view changed"; diag <"$T/.cmp"; bad=1
		fi
		if ! qemu-img check -U -q "$f" >"$T/.qc" 2>&1; then
			echo "# $name: $(basename "$f") check"; diag <"$T/.qc"; bad=1
		fi
	done
	sha256sum -c --quiet "$T/base.sha" >/dev/null 2>&1 || { echo "# $name: base written"; bad=1; }
	[ "$(bk "$d/$top")" = "$base" ] || { echo "# $name: $top names '$(bk "$d/$top")'"; bad=1; }
	[ $bad = 0 ] && ok "$name: views unchanged, check clean, base untouched, $top on $base" ||
		not_ok "$name"
}
pull() { # TOP BASE [more args]
	local t=$1 b=$2; shift 2
	"$IMGRAPH" commit --pull --top "$W/$t" --base "$W/$b" --yes -q "$@"
}

# ---- P1: a template with 3 clones ------------------------------------------
rm -rf "$W"; mkdir -p "$W"
mkq "$W/tpl.qcow2" 32M
qio "$W/tpl.qcow2" -c 'write -P 0x11 0 16M' -c 'write -P 0x12 20M 4M'
for i in 1 2 3; do
	mkq "$W/clone$i.qcow2" 32M tpl.qcow2
	qio "$W/clone$i.qcow2" -c "write -P 0x2$i $((i))M 1M" -c "write -z 8M 512k"
done
mkq "$W/snap1.qcow2" 32M clone1.qcow2
qio "$W/snap1.qcow2" -c 'write -P 0x33 1536k 64k' -c 'write -P 0x34 21M 64k'
mkq "$W/vm1.qcow2" 32M snap1.qcow2          # a parent of top: keeps top
qio "$W/vm1.qcow2" -c 'write -P 0x44 5M 64k'
save_views "$W" tpl.qcow2

check_rc "P1 commit of the clone's chain into the template is refused" 3 \
	"$IMGRAPH" plan --top "$W/snap1.qcow2" --base "$W/tpl.qcow2"
cp "$T/.out" "$T/p1.plan"
check_grep "P1 the plan shows the pull beside the commit" \
	"pull: +writes .* into [^ ]*snap1.qcow2 .*can run" "$T/p1.plan"
check_grep "P1 ... and recommends it" "recommended: pull \(imgraph commit --pull" "$T/p1.plan"
"$IMGRAPH" plan --top "$W/snap1.qcow2" --base "$W/tpl.qcow2" --output=json >"$T/p1.json"
check_eq "P1 JSON: recommended pull" "$(jq -r .recommended "$T/p1.json")" pull
check_eq "P1 JSON: two strategies, pull into snap1" \
	"$(jq -r '[.strategies[].name] | join(",")' "$T/p1.json"),$(jq -r '.strategies[1].written[0] | sub(".*/"; "")' "$T/p1.json")" \
	"commit,pull,snap1.qcow2"
"$IMGRAPH" plan --pull --top "$W/snap1.qcow2" --base "$W/tpl.qcow2" --output=json >"$T/p1p.json"
# clone1 allocates 1M at 1M (snap1 holds 64k of it) and 512k of zeros at 8M
check_eq "P1 pull plan: bytes to copy = what clone1 holds that snap1 does not" \
	"$(jq -r '.pull."bytes-to-copy"' "$T/p1p.json")" $((1024 * 1024 - 65536 + 512 * 1024))
check_eq "P1 pull plan: runnable, into snap1" \
	"$(jq -r '.runnable, (.pull.into | sub(".*/"; ""))' "$T/p1p.json" | tr '\n' ' ')" "true snap1.qcow2 "
check "P1 pull runs (-p: JSON progress lines on a stderr that is no terminal)" \
	"$IMGRAPH" commit --pull --top "$W/snap1.qcow2" --base "$W/tpl.qcow2" --yes -p
grep '"phase": *"copy"' "$T/.out" | tail -1 >"$T/p1.prog"
check_eq "P1 progress: the copy ends at the plan's bytes" \
	"$(jq -r '"\(.done) \(.total)"' "$T/p1.prog")" \
	"$(jq -r '.pull."bytes-to-copy" | "\(.) \(.)"' "$T/p1p.json")"
check_grep "P1 progress: the relink phase" '"phase": *"relink"' "$T/.out"
verify "P1" "$W" snap1.qcow2 tpl.qcow2
check_eq "P1 top's parent still reads top" "$(bk "$W/vm1.qcow2")" snap1.qcow2
check_eq "P1 the clone between keeps its own backing" "$(bk "$W/clone1.qcow2")" tpl.qcow2
check_rc "P1 nothing left to pull: top now reads base" 3 \
	"$IMGRAPH" plan --pull --top "$W/snap1.qcow2" --base "$W/tpl.qcow2"
check_grep "P1 ... says so" "nothing to pull" "$T/.out"
check_nogrep "P1 no journal left" . <(ls -A "$W" | grep imgraph-journal)

# ---- P2: layer variety ------------------------------------------------------
# A chain base <- mid1 <- mid2 <- top; the intermediates hold data, zeros
# over base data and compressed data; top's own clusters of every kind
# must stay as they are.
variety() { # NAME TOP_OPTS...
	local name=$1; shift
	rm -rf "$W"; mkdir -p "$W"
	mkq "$W/base.qcow2" 16M
	qio "$W/base.qcow2" -c 'write -P 0x11 0 14M'   # past mid2's end too
	mkq "$W/mid1.qcow2" 16M base.qcow2
	qio "$W/mid1.qcow2" -c 'write -P 0x21 1M 2M' -c 'write -z 4M 1M' \
		-c 'write -c -P 0x22 6M 1M'
	mkq "$W/mid2.qcow2" 12M mid1.qcow2         # shorter: zeros past 12M
	qio "$W/mid2.qcow2" -c 'write -P 0x31 2M 64k' -c 'write -P 0x32 9M 3k'
	mkq "$W/top.qcow2" 16M mid2.qcow2 qcow2 "$@"
	qio "$W/top.qcow2" -c 'write -P 0x41 1M 4k' -c 'write -z 1088k 64k' \
		-c 'write -c -P 0x42 6M 64k' -c 'write -z 4M 64k' \
		-c 'write -P 0x43 9M 1k'
	mkq "$W/other.qcow2" 16M base.qcow2       # base's other reader
	qio "$W/other.qcow2" -c 'write -P 0x51 0 64k'
	save_views "$W" base.qcow2
	local ncomp; ncomp=$(compressed "$W/top.qcow2")
	[ "$ncomp" -gt 0 ] || not_ok "P2 $name: top has no compressed cluster"
	local before; before=$(qemu-img map -U --output=json "$W/top.qcow2" |
		jq -c '[.[] | select(.depth == 0 and .present)]')
	check "P2 $name: pull runs" pull top.qcow2 base.qcow2
	verify "P2 $name" "$W" top.qcow2 base.qcow2
	# top's own extents (compressed, zero, partial) are all still its own
	local kept; kept=$(qemu-img map -U --output=json "$W/top.qcow2" |
		jq --argjson b "$before" '[$b[] as $x | select(any(.[]; .depth == 0 and
			.zero == $x.zero and .data == $x.data and
			.start <= $x.start and .start + .length >= $x.start + $x.length))] | length')
	check_eq "P2 $name: every extent top held is still top's own, same kind" \
		"$kept" "$(jq length <<<"$before")"
	check_eq "P2 $name: top's compressed clusters are untouched" \
		"$(compressed "$W/top.qcow2")" "$ncomp"
}
variety "v3" -o cluster_size=65536
variety "v2" -o compat=0.10
variety "extended L2" -o extended_l2=on,cluster_size=65536
variety "small clusters" -o cluster_size=4096

# v3 zeros become zero clusters, v2 literal zeros: the zeroed 1M at 4M of
# mid1 (top holds 64k of it)
rm -rf "$W"; mkdir -p "$W"
mkq "$W/base.qcow2" 8M; qio "$W/base.qcow2" -c 'write -P 0x11 0 8M'
mkq "$W/mid.qcow2" 8M base.qcow2; qio "$W/mid.qcow2" -c 'write -z 4M 1M'
mkq "$W/v3.qcow2" 8M mid.qcow2
mkq "$W/v2.qcow2" 8M mid.qcow2 qcow2 -o compat=0.10
save_views "$W" base.qcow2
pull v3.qcow2 base.qcow2 >/dev/null && pull v2.qcow2 base.qcow2 >/dev/null
check_eq "P2 zeros: v3 top holds them as zero clusters (no data)" \
	"$(qemu-img map -U --output=json "$W/v3.qcow2" | jq -c '[.[] | select(.depth == 0) | [.start, .length, .zero, .data]]')" \
	"[[4194304,1048576,true,false]]"
check_eq "P2 zeros: v2 top holds them as literal zeros (data)" \
	"$(qemu-img map -U --output=json "$W/v2.qcow2" | jq -c '[.[] | select(.depth == 0) | [.start, .length, .data]]')" \
	"[[4194304,1048576,true]]"
for f in v3 v2; do
	check "P2 zeros: $f view unchanged" qemu-img compare -U -q "$W/$f.qcow2" "$T/views/$f.qcow2.raw"
	qcheck "P2 zeros: $f check clean" "$W/$f.qcow2"
done

# ---- P3: a top that allocates everything -----------------------------------
rm -rf "$W"; mkdir -p "$W"
mkq "$W/base.qcow2" 4M; qio "$W/base.qcow2" -c 'write -P 0x11 0 4M'
mkq "$W/mid.qcow2" 4M base.qcow2; qio "$W/mid.qcow2" -c 'write -P 0x21 0 2M'
mkq "$W/top.qcow2" 4M mid.qcow2; qio "$W/top.qcow2" -c 'write -P 0x31 0 4M'
save_views "$W" base.qcow2
"$IMGRAPH" plan --pull --top "$W/top.qcow2" --base "$W/base.qcow2" >"$T/p3.plan"
check_grep "P3 the plan says 0 B" "^bytes to copy: +0 B \(0 bytes\) into [^ ]*top.qcow2" "$T/p3.plan"
sha256sum "$W/top.qcow2" >"$T/top.sha"
"$IMGRAPH" commit --pull --top "$W/top.qcow2" --base "$W/base.qcow2" --yes -q \
	--output=json >"$T/p3.json"
check_eq "P3 0 bytes copied" "$(jq -r '."bytes-copied"' "$T/p3.json")" 0
verify "P3" "$W" top.qcow2 base.qcow2

# ---- P5: sizes, and a raw base --------------------------------------------
# A top smaller than base (only its own size is pulled), a top larger than
# base and the intermediate (zeros past them stay implicit), a raw base.
rm -rf "$W"; mkdir -p "$W"
qemu-img create -q -f raw "$W/base.raw" 8M
qemu-io -f raw -c 'write -P 0x11 0 8M' "$W/base.raw" >/dev/null
mkq "$W/mid.qcow2" 8M base.raw raw
qio "$W/mid.qcow2" -c 'write -P 0x21 1M 1M' -c 'write -P 0x22 6M 1M'
mkq "$W/small.qcow2" 4M mid.qcow2
mkq "$W/large.qcow2" 16M mid.qcow2
qio "$W/large.qcow2" -c 'write -P 0x31 12M 64k'
save_views "$W" base.raw
"$IMGRAPH" plan --pull --top "$W/small.qcow2" --base "$W/base.raw" --output=json >"$T/p5.json"
check_eq "P5 a top smaller than base: only its own size is pulled" \
	"$(jq -r '.pull."bytes-to-copy"' "$T/p5.json")" $((1024 * 1024))
"$IMGRAPH" plan --pull --top "$W/large.qcow2" --base "$W/base.raw" --output=json >"$T/p5.json"
check_eq "P5 a top larger than both: nothing past their ends is pulled" \
	"$(jq -r '.pull."bytes-to-copy"' "$T/p5.json")" $((2 * 1024 * 1024))
check "P5 small pulls onto the raw base" pull small.qcow2 base.raw
check "P5 large pulls onto the raw base" pull large.qcow2 base.raw
verify "P5 small" "$W" small.qcow2 base.raw
verify "P5 large" "$W" large.qcow2 base.raw
check_eq "P5 the base's format is recorded" \
	"$(qemu-img info -U --output=json "$W/large.qcow2" | jq -r '."backing-filename-format"')" raw

# ---- P4: refusals, nothing written ------------------------------------------
rm -rf "$W"; mkdir -p "$W"
mkq "$W/base.qcow2" 4M; qio "$W/base.qcow2" -c 'write -P 0x11 0 4M'
mkq "$W/mid.qcow2" 4M base.qcow2; qio "$W/mid.qcow2" -c 'write -P 0x21 0 2M'
mkq "$W/top.qcow2" 4M mid.qcow2
snap_dir "$W" >"$T/before"
if holder_qio -f qcow2 "$W/top.qcow2"; then
	check_rc "P4 a live holder on top: refused" 3 pull top.qcow2 base.qcow2
	check_grep "P4 ... the conflict names the lock on top" \
		"\[lock\] Failed to get .*lock on '[^']*top.qcow2'" "$T/.out"
else
	not_ok "P4 holder did not start"; diag <"$T/holder.log"
fi
holder_stop
check_eq "P4 nothing written (live holder)" "$(snap_dir "$W")" "$(cat "$T/before")"
if holder_qio -f qcow2 "$W/mid.qcow2"; then
	check_rc "P4 a writer holds an intermediate: refused" 3 pull top.qcow2 base.qcow2
	check_grep "P4 ... the conflict names the intermediate" \
		"\[lock\] Failed to get .*lock on '[^']*mid.qcow2'" "$T/.out"
else
	not_ok "P4 holder did not start"; diag <"$T/holder.log"
fi
holder_stop
if holder_qio -r -f qcow2 "$W/base.qcow2"; then
	check_rc "P4 a reader of base is no conflict for a pull" 0 \
		"$IMGRAPH" plan --pull --top "$W/top.qcow2" --base "$W/base.qcow2"
else
	not_ok "P4 holder did not start"; diag <"$T/holder.log"
fi
holder_stop
cat >"$W/users.yaml" <<'YAML'
users:
  - name: vm-top
    kind: vm
    image: top.qcow2
    perm: [consistent-read, write]
    shared: [consistent-read, write-unchanged]
YAML
check_rc "P4 a users-file entry that writes top: refused" 3 \
	pull top.qcow2 base.qcow2 --users "$W/users.yaml"
check_grep "P4 ... the conflict names the user" "user 'vm-top'" "$T/.out"
check_eq "P4 nothing written (holders, users)" "$(snap_dir "$W" | grep -v users.yaml)" "$(cat "$T/before")"
rm -f "$W/users.yaml"
qemu-img create -q -f qcow -b mid.qcow2 -F qcow2 "$W/q.qcow" 4M
snap_dir "$W" >"$T/before"
check_rc "P4 a qcow v1 top (a format imgraph does not write): refused" 3 \
	pull q.qcow base.qcow2 --format "$W/q.qcow=qcow" --format "$W/mid.qcow2=qcow2"
check_grep "P4 ... the conflict names top's format" "top '[^']*q.qcow' cannot be written" "$T/.out"
check_eq "P4 nothing written (qcow v1 top)" "$(snap_dir "$W")" "$(cat "$T/before")"
rm -f "$W/q.qcow"
# A qed top is written by imgraph's qed driver: pulled like a qcow2 one.
qemu-img create -q -f qed -b mid.qcow2 -F qcow2 "$W/q.qed" 4M
qemu-io -f qed -c 'write -P 0x5a 1M 64k' "$W/q.qed" >/dev/null
guest_raw "$W/q.qed" "$T/q.raw"
check_rc "P4 a qed top: pulled" 0 pull q.qed base.qcow2 --format "$W/q.qed=qed" \
	--format "$W/mid.qcow2=qcow2"
check "P4 ... its view unchanged" qemu-img compare -q -f raw -F qed "$T/q.raw" "$W/q.qed"
check "P4 ... qemu-img check clean" qemu-img check -q -f qed "$W/q.qed"
check_eq "P4 ... it now names base" \
	"$(qemu-img info -U --output=json "$W/q.qed" | jq -r '."backing-filename"')" base.qcow2
rm -f "$W/q.qed"
check_rc "P4 nothing between top and base: refused" 3 pull mid.qcow2 base.qcow2
check_grep "P4 ... says so" "nothing to pull" "$T/.out"
# Two pulls onto one base exclude each other (one relink journal per
# base): the second is refused while the first runs; the first, cancelled
# with SIGINT, leaves every view as it was.
mkq "$W/top2.qcow2" 4M mid.qcow2
snap_dir "$W" >"$T/before"
"$IMGRAPH" commit --pull --top "$W/top.qcow2" --base "$W/base.qcow2" --yes \
	-q --rate 64K >/dev/null 2>"$T/first.err" &
first=$!
for _ in $(seq 1 100); do
	ls /proc/$first/fd -l 2>/dev/null | grep -q top.qcow2 && break
	sleep 0.05
done
check_rc "P4 a second pull onto the same base while one runs: refused" 3 \
	pull top2.qcow2 base.qcow2
check_grep "P4 ... says another pull runs" "another pull onto .*base.qcow2' is running" "$T/.err"
kill -INT $first; wait $first; rc=$?
check_eq "P4 the first pull, cancelled, exits 1" "$rc" 1
check_grep "P4 ... and says it was cancelled" "cancelled" "$T/first.err"
for f in top top2; do
	check "P4 $f's view unchanged after the cancel" qemu-img compare -U -q \
		"$W/$f.qcow2" "$W/mid.qcow2"
done
check_eq "P4 top still names mid" "$(bk "$W/top.qcow2")" mid.qcow2
rm -f "$W/top2.qcow2"
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$W/top.qcow2" 4M   # as before
snap_dir "$W" >"$T/before"
check_rc "P4 --pull with --delete: usage" 2 pull top.qcow2 base.qcow2 --delete
check_eq "P4 nothing written (all refusals)" "$(snap_dir "$W")" "$(cat "$T/before")"

# ---- P6: a template on a read-only mount -----------------------------------
if [ "$(id -u)" != 0 ]; then
	skip "P6 read-only template" "needs root for mount -t tmpfs"
elif ! mkdir -p "$T/ro" || ! mount -t tmpfs -o size=16m tmpfs "$T/ro" 2>/dev/null; then
	skip "P6 read-only template" "mount -t tmpfs failed (no CAP_SYS_ADMIN?)"
else
	rm -rf "$W"; mkdir -p "$W"
	mkq "$T/ro/tpl.qcow2" 4M; qio "$T/ro/tpl.qcow2" -c 'write -P 0x11 0 4M'
	mkq "$W/mid.qcow2" 4M "$T/ro/tpl.qcow2"; qio "$W/mid.qcow2" -c 'write -P 0x21 0 1M'
	mkq "$W/top.qcow2" 4M mid.qcow2
	mount -o remount,ro "$T/ro"
	snap_dir "$W" >"$T/before"
	check_rc "P6 a template on a read-only mount: refused" 3 \
		"$IMGRAPH" commit --pull --top "$W/top.qcow2" --base "$T/ro/tpl.qcow2" --yes -q
	check_grep "P6 ... the conflict names the journal's directory" \
		"\[relink\] the relink journal goes beside base, in '[^']*/ro', which cannot be written" "$T/.out"
	check_eq "P6 nothing written" "$(snap_dir "$W")" "$(cat "$T/before")"
	umount "$T/ro"
fi

done_testing
