#!/usr/bin/env bash
# protect_basic.sh - commit --protect: flatten one clone of a shared
# template into the template while every other reader of the template
# keeps its view (issue 18).  Judged with qemu-img compare/check/map.
#   1. a template with 1, 3 and 12 clones: without --protect the plan is
#      refused with the hint "Run with --protect to copy N MiB into these K
#      images first" and commit writes nothing; with it, every other
#      clone's view is unchanged, check is clean, the flattened clone (and
#      its overlay, relinked) shows its old view, the others still read the
#      template, JSON lists the protection set with bytes.
#   2. readers of every shape: qcow2 v2 and v3, extended L2 with partial
#      subclusters, compressed clusters (left compressed), zero clusters
#      over base data and discards, smaller and larger than base (top
#      larger too: base grows), one that allocates everything (0 B).
#   3. a reader of an intermediate (base <- mid <- top, x on mid) is
#      protected the same way; --delete leaves mid in place, read by x,
#      and says so.
#   4. refusals with nothing written: a qcow v1 reader (a format imgraph
#      cannot write), a qed reader with the need-check flag, a live holder on a clone (writer and reader), a clone on a
#      read-only file system, a clone whose file system lacks the space.
#   5. qed readers (written by imgraph's qed driver): views, qemu-img check,
#      still naming base, their own clusters left in place, growth as the
#      plan said.
. "$(dirname "$0")/lib.sh"
need_tools jq

# save_views DIR IMAGE...: each image's guest view, raw, into DIR.
save_views() {
	local d=$1 i; shift
	mkdir -p "$d"
	for i in "$@"; do guest_raw "$i" "$d/$(basename "$i").raw"; done
}
# same_views NAME DIR IMAGE...: every image still shows the saved view.
same_views() {
	local n=$1 d=$2 i bad=""; shift 2
	for i in "$@"; do
		qemu-img compare -q -f raw -F "$(fmt_of "$i")" \
			"$d/$(basename "$i").raw" "$i" 2>/dev/null || bad+=" $(basename "$i")"
	done
	if [ -z "$bad" ]; then ok "$n"; else not_ok "$n (changed:$bad)"; fi
}
fmt_of() { qemu-img info -U --output=json "$1" | jq -r .format; }
# all_clean NAME IMAGE...: qemu-img check exits 0 for every qcow2.
all_clean() {
	local n=$1 i bad=""; shift
	for i in "$@"; do
		[ "$(fmt_of "$i")" = qcow2 ] || continue
		qemu-img check -q "$i" >/dev/null 2>&1 || bad+=" $(basename "$i")"
	done
	if [ -z "$bad" ]; then ok "$n"; else not_ok "$n (not clean:$bad)"; fi
}
backing_is() { # IMAGE: prints the backing file name recorded
	qemu-img info -U --output=json "$1" | jq -r '."backing-filename" // "-"'
}

# ---- 1. a template with K clones --------------------------------------------
template_case() { # K
	local k=$1 d=$T/tpl$1 i others=()
	mkdir -p "$d" && cd "$d" || return
	mkq base.qcow2 32M
	qio base.qcow2 -c 'write -P 0x11 0 4M' -c 'write -P 0x12 8M 2M' \
		-c 'write -P 0x13 20M 1M'
	for ((i = 0; i < k; i++)); do
		mkq c$i.qcow2 32M base.qcow2 qcow2
		qio c$i.qcow2 -c "write -P $((0x40 + i)) $((i * 256))k 64k"
		[ $i -gt 0 ] && others+=("$d/c$i.qcow2")
	done
	# clone 0 is flattened: its overlay vm0 is relinked onto the template
	qio c0.qcow2 -c 'write -P 0xc0 1M 2M' -c 'write -z 8M 512k' \
		-c 'discard 20M 64k' -c 'write -P 0xc1 30M 64k'
	mkq vm0.qcow2 32M c0.qcow2 qcow2
	qio vm0.qcow2 -c 'write -P 0xd0 3M 64k'
	save_views "$T/v$k" vm0.qcow2 "${others[@]}"
	guest_raw c0.qcow2 "$T/v$k/c0.raw"

	if [ $k -gt 1 ]; then
		snap_dir "$d" >"$T/h0"
		check_rc "$k clones: plan without --protect is refused" 3 \
			"$IMGRAPH" plan --top c0.qcow2 --base base.qcow2 .
		check_grep "$k clones: hint offers --protect with the cost" \
			"hint: Run with --protect to copy [0-9.]+ MiB into (this|these) $((k - 1)) images? first" "$T/.out"
		check_rc "$k clones: commit without --protect refused" 3 \
			"$IMGRAPH" commit --yes -q --top c0.qcow2 --base base.qcow2 .
		snap_dir "$d" >"$T/h1"
		check "$k clones: refused commit wrote nothing" cmp -s "$T/h0" "$T/h1"
	fi
	check_rc "$k clones: plan --protect runs" 0 "$IMGRAPH" plan --protect \
		--output=json --top c0.qcow2 --base base.qcow2 .
	check_eq "$k clones: JSON lists the protection set" \
		"$(jq -r '[.protect.protected, (.protect.readers | length)] | @tsv' "$T/.out")" \
		"$(printf 'true\t%d' $((k - 1)))"
	check_eq "$k clones: JSON bytes are the readers' sum" \
		"$(jq -r '.protect.bytes == ([.protect.readers[].bytes] | add // 0)' "$T/.out")" true
	check_rc "$k clones: commit --protect" 0 "$IMGRAPH" commit --protect \
		--yes -q --top c0.qcow2 --base base.qcow2 .
	[ $k -gt 1 ] && same_views "$k clones: every other clone's view unchanged" \
		"$T/v$k" "${others[@]}"
	same_views "$k clones: the flattened chain's overlay keeps its view" \
		"$T/v$k" vm0.qcow2
	check "$k clones: the template shows the flattened clone's old view" \
		qemu-img compare -q -f raw -F qcow2 "$T/v$k/c0.raw" base.qcow2
	all_clean "$k clones: qemu-img check clean" base.qcow2 vm0.qcow2 "${others[@]}"
	check_eq "$k clones: vm0 relinked onto the template" "$(backing_is vm0.qcow2)" base.qcow2
	local still=0
	for i in "${others[@]}"; do [ "$(backing_is "$i")" = base.qcow2 ] && still=$((still + 1)); done
	check_eq "$k clones: the others still read the template" $still $((k - 1))
	cd "$T" || return
}
template_case 1
template_case 3
template_case 12

# ---- 2. readers of every shape -----------------------------------------------
d=$T/shapes; mkdir -p "$d"; cd "$d" || exit 1
mkq base.qcow2 16M
qio base.qcow2 -c 'write -P 0x11 0 6M' -c 'write -P 0x12 8M 4M' -c 'write -z 6M 1M'
mkq top.qcow2 24M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0xa1 0 2M' -c 'write -P 0xa2 3M 1M' \
	-c 'write -z 5M 2M' -c 'write -P 0xa3 8M 4M' -c 'write -P 0xa4 20M 2M'
mkq vm.qcow2 24M top.qcow2 qcow2
qio vm.qcow2 -c 'write -P 0xb1 100k 4k'
mkq v2.qcow2 16M base.qcow2 qcow2 -o compat=0.10
qio v2.qcow2 -c 'write -P 0x21 512k 64k'
mkq v3.qcow2 16M base.qcow2 qcow2
qio v3.qcow2 -c 'write -P 0x31 9M 64k'
mkq xl2.qcow2 16M base.qcow2 qcow2 -o extended_l2=on,cluster_size=64k
qio xl2.qcow2 -c 'write -P 0x41 4k 2k' -c 'write -P 0x42 3M 6k' -c 'write -z 8M 2k'
mkq comp.qcow2 16M base.qcow2 qcow2
qio comp.qcow2 -c 'write -c -P 0x51 1M 64k' -c 'write -c -P 0x52 9M 64k'
mkq zd.qcow2 16M base.qcow2 qcow2
qio zd.qcow2 -c 'write -z 0 1M' -c 'discard 8M 1M' -c 'write -z 3M 64k'
mkq small.qcow2 4M base.qcow2 qcow2
qio small.qcow2 -c 'write -P 0x61 0 64k'
mkq large.qcow2 32M base.qcow2 qcow2
qio large.qcow2 -c 'write -P 0x71 30M 64k'
mkq full.qcow2 16M base.qcow2 qcow2
qio full.qcow2 -c 'write -P 0x81 0 16M'
readers=(v2.qcow2 v3.qcow2 xl2.qcow2 comp.qcow2 zd.qcow2 small.qcow2 large.qcow2 full.qcow2)
save_views "$T/vs" vm.qcow2 "${readers[@]}"
guest_raw top.qcow2 "$T/vs/top.raw"
compressed_at() { # IMAGE OFFSET: depth-0 extent there has no offset (compressed)
	qemu-img map -U --output=json "$1" |
		jq -e --argjson o "$2" '[.[] | select(.start <= $o and .start + .length > $o and .depth == 0 and (has("offset") | not))] | length == 1' >/dev/null
}
check "shapes: compressed clusters before" compressed_at comp.qcow2 $((1 << 20))
check_rc "shapes: plan --protect runs" 0 "$IMGRAPH" plan --protect --output=json \
	--top top.qcow2 --base base.qcow2 .
cp "$T/.out" "$T/shapes.json"
check_eq "shapes: every reader listed" \
	"$(jq -r '[.protect.readers[].name] | sort | join(" ")' "$T/shapes.json")" \
	"$(printf '%s\n' "${readers[@]}" | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "shapes: a reader that allocates everything copies 0 B" \
	"$(jq -r '.protect.readers[] | select(.name == "full.qcow2") | .bytes' "$T/shapes.json")" 0
check_eq "shapes: a v3 reader copies what it does not allocate of top's ranges" \
	"$(jq -r '.protect.readers[] | select(.name == "v3.qcow2") | .bytes' "$T/shapes.json")" \
	$(((2 + 1 + 2 + 4 - 0) * 1048576 - 65536))
check_eq "shapes: a smaller reader copies only inside its size" \
	"$(jq -r '.protect.readers[] | select(.name == "small.qcow2") | .bytes' "$T/shapes.json")" \
	$(((2 + 1) * 1048576 - 65536))
"$IMGRAPH" plan --protect --top top.qcow2 --base base.qcow2 . >"$T/shapes.txt"
check_grep "shapes: human plan shows the cost per reader" \
	'^  full\.qcow2: copy 0 B, grows up to 0 B' "$T/shapes.txt"
check_rc "shapes: commit --protect" 0 "$IMGRAPH" commit --protect --yes -q \
	--top top.qcow2 --base base.qcow2 .
same_views "shapes: every reader's view unchanged" "$T/vs" "${readers[@]}"
same_views "shapes: the overlay of top keeps its view" "$T/vs" vm.qcow2
check "shapes: base shows top's old view (grown)" \
	qemu-img compare -q -f raw -F qcow2 "$T/vs/top.raw" base.qcow2
all_clean "shapes: qemu-img check clean" base.qcow2 vm.qcow2 "${readers[@]}"
check "shapes: compressed clusters left compressed" compressed_at comp.qcow2 $((1 << 20))
check "shapes: compressed clusters left compressed (2)" compressed_at comp.qcow2 $((9 << 20))
check_eq "shapes: the v2 reader is still v2" \
	"$(qemu-img info -U --output=json v2.qcow2 | jq -r '."format-specific".data.compat')" 0.10
check_eq "shapes: the full reader was not written" \
	"$(qemu-img map -U --output=json full.qcow2 | jq -r '[.[] | select(.depth > 0)] | length')" 0
cd "$T" || exit 1

# ---- 3. a reader of an intermediate, and --delete -----------------------------
d=$T/inter; mkdir -p "$d"; cd "$d" || exit 1
mkq base.qcow2 16M
qio base.qcow2 -c 'write -P 0x11 0 8M'
mkq mid.qcow2 16M base.qcow2 qcow2
qio mid.qcow2 -c 'write -P 0x22 2M 2M'
mkq top.qcow2 16M mid.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x33 0 1M' -c 'write -P 0x34 3M 2M'
mkq vm.qcow2 16M top.qcow2 qcow2
mkq x.qcow2 16M mid.qcow2 qcow2
qio x.qcow2 -c 'write -P 0x44 3M 64k'
mkq c.qcow2 16M base.qcow2 qcow2
save_views "$T/vi" vm.qcow2 x.qcow2 c.qcow2
check_rc "intermediate's reader: refused without --protect" 3 "$IMGRAPH" plan \
	--top top.qcow2 --base base.qcow2 .
check_grep "intermediate's reader: the hint counts it" \
	'hint: Run with --protect to copy [0-9.]+ MiB into these 2 images first' "$T/.out"
check_rc "intermediate's reader: commit --protect --delete" 0 "$IMGRAPH" commit \
	--protect --delete --yes --top top.qcow2 --base base.qcow2 .
check_grep "intermediate's reader: --delete says mid stays" \
	"Kept mid\.qcow2: read by 'x\.qcow2'" "$T/.out"
check "intermediate's reader: mid left in place" test -f mid.qcow2
same_views "intermediate's reader: every view unchanged" "$T/vi" vm.qcow2 x.qcow2 c.qcow2
all_clean "intermediate's reader: qemu-img check clean" base.qcow2 mid.qcow2 x.qcow2 c.qcow2 vm.qcow2
check_eq "intermediate's reader: x still reads mid" "$(backing_is x.qcow2)" mid.qcow2
cd "$T" || exit 1

# ---- 4. refusals, nothing written --------------------------------------------
d=$T/ref; mkdir -p "$d"; cd "$d" || exit 1
mkq base.qcow2 8M
qio base.qcow2 -c 'write -P 0x11 0 4M'
mkq top.qcow2 8M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0xa1 0 2M'
mkq c1.qcow2 8M base.qcow2 qcow2
refused() { # NAME KIND PATTERN: plan and commit --protect refuse, nothing written
	local n=$1 kind=$2 pat=$3
	snap_dir "$d" >"$T/h0"
	check_rc "$n: plan --protect refused" 3 "$IMGRAPH" plan --protect \
		--top top.qcow2 --base base.qcow2 .
	check_grep "$n: named conflict" "^  \[$kind\] .*$pat" "$T/.out"
	check_rc "$n: commit --protect refused" 3 "$IMGRAPH" commit --protect \
		--yes -q --top top.qcow2 --base base.qcow2 .
	snap_dir "$d" >"$T/h1"
	check "$n: nothing written" cmp -s "$T/h0" "$T/h1"
}
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 q.qcow 8M
refused "qcow v1 reader" protect "'q\.qcow' is qcow, a format imgraph cannot write"
check_rc "qcow v1 reader: plan without --protect does not offer it" 3 \
	"$IMGRAPH" plan --top top.qcow2 --base base.qcow2 .
check_nogrep "qcow v1 reader: no --protect hint" 'Run with --protect' "$T/.out"
rm -f q.qcow
# a qed reader QEMU marked need-check (not closed cleanly): not written
qemu-img create -q -f qed -b base.qcow2 -F qcow2 q.qed 8M
printf '\003' | dd of=q.qed bs=1 seek=16 conv=notrunc status=none
refused "qed reader with need-check" protect "'q\.qed' .*need-check flag is set"
rm -f q.qed

holder_qio -f qcow2 "$d/c1.qcow2"
refused "live writer on a clone" lock "c1\.qcow2"
holder_stop
holder_qio -r -f qcow2 "$d/c1.qcow2"
refused "live reader on a clone" lock "c1\.qcow2"
holder_stop

if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	mkdir -p ro && mkq ro/c2.qcow2 8M ../base.qcow2 qcow2
	snap_dir "$d" >"$T/h0"
	unshare -m bash -c "mount --bind -o ro '$d/ro' '$d/ro' && cd '$d' &&
		'$IMGRAPH' plan --protect -r --top top.qcow2 --base base.qcow2 . &&
		exit 9; '$IMGRAPH' commit --protect --yes -q -r --top top.qcow2 \
		--base base.qcow2 . >/dev/null 2>&1; echo rc=\$?" >"$T/ro.out" 2>&1
	check_grep "clone on a read-only file system: named conflict" \
		"\[protect\] 'ro/c2\.qcow2' cannot be written: its file system is read-only" "$T/ro.out"
	check_grep "clone on a read-only file system: commit refused" '^rc=3$' "$T/ro.out"
	snap_dir "$d" >"$T/h1"
	check "clone on a read-only file system: nothing written" cmp -s "$T/h0" "$T/h1"
	rm -rf ro

	M=$T/mnt; mkdir -p "$M"
	if mount -t tmpfs -o size=1m tmpfs "$M" 2>/dev/null; then
		trap 'holder_stop; umount "$M" 2>/dev/null || umount -l "$M"; rm -rf "$T"' EXIT
		qemu-img create -q -f qcow2 -b "$d/base.qcow2" -F qcow2 "$M/c3.qcow2" 8M
		snap_dir "$d" >"$T/h0"; snap_dir "$M" >>"$T/h0"
		check_rc "clone short of space: plan --protect refused" 3 \
			"$IMGRAPH" plan --protect --top top.qcow2 --base base.qcow2 . "$M"
		check_grep "clone short of space: space conflict names it" \
			"^  \[space\] up to [0-9]+ bytes must be written into '.*c3\.qcow2' to protect it" "$T/.out"
		check_rc "clone short of space: commit refused" 3 "$IMGRAPH" commit \
			--protect --yes -q --top top.qcow2 --base base.qcow2 . "$M"
		snap_dir "$d" >"$T/h1"; snap_dir "$M" >>"$T/h1"
		check "clone short of space: nothing written" cmp -s "$T/h0" "$T/h1"
		umount "$M"
	else
		skip "clone short of space" "mount -t tmpfs failed"
	fi
else
	skip "read-only file system and space cases" "need root and unshare -m"
fi
# ---- 5. qed readers ------------------------------------------------------------
# Written by imgraph's qed driver: base's old bytes go into clusters a qed
# reader does not allocate (new clusters and L2 tables appended), its own
# clusters (data and zero) are left where they are.  q2's 4 KiB clusters
# and two-cluster tables (4 MiB each) need new L2 tables for 4-8M and
# 12-16M; q3 is smaller.  (QEMU refuses a qed of one 4 KiB cluster per
# table: "QED table offset is invalid".)
d=$T/qed; mkdir -p "$d"; cd "$d" || exit 1
mkq base.qcow2 16M
qio base.qcow2 -c 'write -P 0x11 0 16M'
mkq top.qcow2 16M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0xa1 0 3M' -c 'write -P 0xa2 5M 2M' -c 'write -P 0xa3 12M 4M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 q1.qed 16M
qemu-io -f qed -c 'write -P 0x51 1M 128k' -c 'write -z 2M 256k' \
	-c 'write -P 0x52 6M 64k' -c 'write -P 0x53 9M 64k' q1.qed >/dev/null
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 -b base.qcow2 \
	-F qcow2 q2.qed 16M
qemu-io -f qed -c 'write -P 0x61 100k 8k' -c 'write -z 10M 4k' q2.qed >/dev/null
qemu-img create -q -f qed -b base.qcow2 -F qcow2 q3.qed 6M
qemu-io -f qed -c 'write -P 0x71 5M 64k' q3.qed >/dev/null
qeds=(q1.qed q2.qed q3.qed)
save_views "$T/vq" "${qeds[@]}"
# own_kept IMAGE MAPFILE: every extent the image allocated before is still
# there, at the same place in its file (nothing of it was overwritten).
own_kept() {
	qemu-img map -U --output=json -f qed "$1" >"$T/own.after"
	jq -e --slurpfile a "$T/own.after" '[.[] | select(.depth == 0) | . as $b |
		select([$a[0][] | select(.depth == 0 and .start <= $b.start and
		 .start + .length >= $b.start + $b.length and .data == $b.data and
		 ((.offset // 0) - .start) == (($b.offset // 0) - $b.start))] |
		 length == 0)] | length == 0' "$2" >/dev/null
}
for q in "${qeds[@]}"; do
	qemu-img map -U --output=json -f qed "$q" >"$T/own.$q"
	stat -c %s "$q" >"$T/size.$q"
done
check_rc "qed: plan --protect runs" 0 "$IMGRAPH" plan --protect --output=json \
	--top top.qcow2 --base base.qcow2 .
cp "$T/.out" "$T/qed.json"
check_eq "qed: no conflict" "$(jq -r '.conflicts | length' "$T/qed.json")" 0
check_eq "qed: every qed reader protected" \
	"$(jq -r '[.protect.readers[].name] | sort | join(" ")' "$T/qed.json")" "q1.qed q2.qed q3.qed"
# top's ranges 0-3M, 5-7M, 12-16M less what each reader allocates there
check_eq "qed: q1 copies what it does not allocate" \
	"$(jq -r '.protect.readers[] | select(.name == "q1.qed") | .bytes' "$T/qed.json")" \
	$(((3 + 2 + 4) * 1048576 - 131072 - 262144 - 65536))
check_eq "qed: q3 copies only inside its 6 MiB" \
	"$(jq -r '.protect.readers[] | select(.name == "q3.qed") | .bytes' "$T/qed.json")" \
	$(((3 + 1) * 1048576 - 65536))
check_rc "qed: commit --protect" 0 "$IMGRAPH" commit --protect --yes -q \
	--top top.qcow2 --base base.qcow2 .
same_views "qed: every qed reader's view unchanged" "$T/vq" "${qeds[@]}"
check "qed: base shows top's old view" qemu-img compare -q -f qcow2 -F qcow2 top.qcow2 base.qcow2
for q in "${qeds[@]}"; do
	check "qed: $q checks clean (qemu-img check)" qemu-img check -q -f qed "$q"
	check_eq "qed: $q still names base" "$(backing_is "$q")" base.qcow2
	check "qed: $q kept its own clusters in place" own_kept "$q" "$T/own.$q"
	grown=$(($(stat -c %s "$q") - $(cat "$T/size.$q")))
	plan_g=$(jq -r --arg n "$q" '.protect.readers[] | select(.name == $n) | .growth' "$T/qed.json")
	need=$(jq -r --arg n "$q" '.protect.readers[] | select(.name == $n) | ."space-needed"' "$T/qed.json")
	# the plan's growth is the data clusters; the file also gains the L2
	# tables it lacked, which the space needed covers
	check "qed: $q grew by the plan's clusters, within the space needed ($grown: $plan_g..$need)" \
		test "$grown" -ge "$plan_g" -a "$grown" -le "$need"
done
check_eq "qed: q2 gained two 8 KiB L2 tables besides the data" \
	$(($(stat -c %s q2.qed) - $(cat "$T/size.q2.qed") - $(jq -r '.protect.readers[] | select(.name == "q2.qed") | .growth' "$T/qed.json"))) \
	$((2 * 8192))
cd "$T" || exit 1
done_testing
