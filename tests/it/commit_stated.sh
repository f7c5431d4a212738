#!/usr/bin/env bash
# commit_stated.sh - commit FROM qed and qcow (v1) layers into a qcow2 base
# whose format their links do not record, once the administrator states it
# (--base-format/-F FMT, --format FILE=FMT: QEMU's -f).  A stated format
# fills a link that records none where the probe agrees; it never
# overrides a record, and a probe that disagrees is a conflict: nothing
# written.  Judged by qemu-img convert/compare/check/info.
#
# Regression: a qed top over a qcow2 base gave exit 3 ("does not record
# the format of its backing file") with no way to say what the format is
# but converting the overlay; `--base-format` did not exist (exit 2).
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io jq

qedio() { qemu-io -f qed "$@" >/dev/null; }
bfmt() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename-format" // "none"'; }
bname() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename" // "none"'; }

# views FILE...: each file's guest view into $T/view.NAME.raw (or .after).
views() { local sfx=$1 f; shift; for f; do guest_raw "$f" "$T/view.$(basename "$f").$sfx"; done; }
same_views() { # NAME FILE...
	local n=$1 f; shift
	views after "$@"
	for f; do
		check "$n: $(basename "$f") reads as before" \
			cmp "$T/view.$(basename "$f").before" "$T/view.$(basename "$f").after"
	done
}

# --- qed top over a qcow2 base, a qcow2 leaf and a qed leaf on top.
d=$T/qed; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qio "$d/base.qcow2" -c 'write -P 0x11 0 2M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/top.qed" 4M
qedio -c 'write -P 0x22 512k 1M' -c 'write -z 3M 64k' "$d/top.qed"
mkq "$d/leaf.qcow2" 4M top.qed qed
qio "$d/leaf.qcow2" -c 'write -P 0x33 1M 64k'
qemu-img create -q -f qed -b top.qed -F qed "$d/leaf.qed" 4M
qedio -c 'write -P 0x44 2M 64k' "$d/leaf.qed"
views before "$d/leaf.qcow2" "$d/leaf.qed" "$d/top.qed"
snap_dir "$d" >"$T/before"
check_rc "qed: without a statement the plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qed" "$d"
check_grep "qed: the conflict says the format is not recorded" \
	"\[format\] '[^']*top.qed' does not record the format of its backing file '[^']*base.qcow2' \(probed as qcow2\)" "$T/.out"
check_grep "qed: the hint names --base-format before converting" \
	"hint: If '[^']*base.qcow2' really is qcow2, say so: --base-format qcow2\. Or convert the overlay" "$T/.out"
check_rc "qed: commit without a statement refuses" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qed" "$d"
# The qed leaf records no format for top.qed: stated too.
check_rc "qed: --base-format raw on a qcow2 base is a conflict" 3 \
	"$IMGRAPH" commit --yes -q --top "$d/top.qed" --format "$d/top.qed=qed" --base-format raw "$d"
"$IMGRAPH" plan --top "$d/top.qed" --format "$d/top.qed=qed" --base-format raw "$d" >"$T/mm" 2>&1
check_grep "qed: the mismatch names both formats" "'[^']*base.qcow2' is stated as raw, but its bytes probe as qcow2" "$T/mm"
snap_dir "$d" >"$T/after"
check "qed: refused commits wrote nothing" cmp "$T/before" "$T/after"

check_rc "qed: with -F qcow2 the plan runs" 0 "$IMGRAPH" plan -F qcow2 --format "$d/top.qed=qed" \
	--top "$d/top.qed" --output=json "$d"
check_eq "qed: the JSON plan says base's format was stated" \
	"$(jq -r '.base."format-stated"' "$T/.out")" true
check_eq "qed: and lists both statements" \
	"$(jq -r '[."stated-formats"[] | "\(.name | split("/") | last)=\(.format):\(.used)"] | sort | join(",")' "$T/.out")" \
	"base.qcow2=qcow2:true,top.qed=qed:true"
check_rc "qed: the commit runs" 0 "$IMGRAPH" commit --yes -q -F qcow2 --format "$d/top.qed=qed" \
	--top "$d/top.qed" "$d"
same_views "qed" "$d/leaf.qcow2" "$d/leaf.qed"
check "qed: base holds top's view" qemu-img compare -q -U -F raw "$d/base.qcow2" "$T/view.top.qed.before"
qcheck "qed: base checks clean" "$d/base.qcow2"
check_eq "qed: the qcow2 leaf names base with -F qcow2" "$(bname "$d/leaf.qcow2") $(bfmt "$d/leaf.qcow2")" "base.qcow2 qcow2"
check_eq "qed: the qed leaf names base (qed records no format)" "$(bname "$d/leaf.qed") $(bfmt "$d/leaf.qed")" "base.qcow2 none"
check "qed: the qed leaf checks clean" qemu-img check -q "$d/leaf.qed"

# --- qcow v1 top over a qcow2 base (qcow records no backing format).
d=$T/qcow; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qio "$d/base.qcow2" -c 'write -P 0x11 0 2M'
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 "$d/top.qcow" 4M
qemu-io -f qcow -c 'write -P 0x55 1M 1M' "$d/top.qcow" >/dev/null
mkq "$d/leaf.qcow2" 4M top.qcow qcow
qio "$d/leaf.qcow2" -c 'write -P 0x66 3M 64k'
views before "$d/leaf.qcow2" "$d/top.qcow"
check_rc "qcow: without a statement the plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow" "$d"
check_grep "qcow: the hint names --base-format" "say so: --base-format qcow2\. Or convert the overlay to qcow2, which records it \(this format cannot record a backing format\)" "$T/.out"
check_rc "qcow: the commit runs with --base-format" 0 "$IMGRAPH" commit --yes -q --base-format qcow2 \
	--top "$d/top.qcow" "$d"
same_views "qcow" "$d/leaf.qcow2"
check "qcow: base holds top's view" qemu-img compare -q -U -F raw "$d/base.qcow2" "$T/view.top.qcow.before"
qcheck "qcow: base checks clean" "$d/base.qcow2"
check_eq "qcow: the leaf names base with -F qcow2" "$(bname "$d/leaf.qcow2") $(bfmt "$d/leaf.qcow2")" "base.qcow2 qcow2"

# --- qcow2 top -> qed intermediate -> qcow2 base: the intermediate's link
# records nothing; the statement for base covers it.
d=$T/inter; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qio "$d/base.qcow2" -c 'write -P 0x11 0 3M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/mid.qed" 4M
qedio -c 'write -P 0x77 1M 1M' "$d/mid.qed"
mkq "$d/top.qcow2" 4M mid.qed qed
qio "$d/top.qcow2" -c 'write -P 0x88 1536k 64k' -c 'write -z 0 64k'
mkq "$d/leaf.qcow2" 4M top.qcow2
qio "$d/leaf.qcow2" -c 'write -P 0x99 2M 64k'
views before "$d/leaf.qcow2" "$d/top.qcow2"
check_rc "inter: without a statement the plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow2" \
	--base "$d/base.qcow2" "$d"
check_grep "inter: the conflict names the intermediate's link" "'[^']*mid.qed' does not record the format of its backing file '[^']*base.qcow2'" "$T/.out"
check_rc "inter: the commit runs with -F qcow2" 0 "$IMGRAPH" commit --yes -q -F qcow2 \
	--top "$d/top.qcow2" --base "$d/base.qcow2" "$d"
same_views "inter" "$d/leaf.qcow2"
check "inter: base holds top's view" qemu-img compare -q -U -F raw "$d/base.qcow2" "$T/view.top.qcow2.before"
qcheck "inter: base checks clean" "$d/base.qcow2"
check_eq "inter: the leaf names base with -F qcow2" "$(bname "$d/leaf.qcow2") $(bfmt "$d/leaf.qcow2")" "base.qcow2 qcow2"

# --- qed top -> qed intermediate -> qcow2 base, a qed leaf: no link above
# base records a format; each image is stated, and the chain the commit
# reads follows the stated intermediate (it stopped there before).
d=$T/qq; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qio "$d/base.qcow2" -c 'write -P 0x11 0 2M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/mid.qed" 4M
qedio -c 'write -P 0x12 1M 1M' "$d/mid.qed"
qemu-img create -q -f qed -b mid.qed -F qed "$d/top.qed" 4M
qedio -c 'write -P 0x13 1536k 64k' "$d/top.qed"
qemu-img create -q -f qed -b top.qed -F qed "$d/leaf.qed" 4M
qedio -c 'write -P 0x14 3M 64k' "$d/leaf.qed"
views before "$d/leaf.qed" "$d/top.qed"
check_rc "qed chain: without statements the plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qed" \
	--base "$d/base.qcow2" "$d"
check_rc "qed chain: base alone is not enough" 3 "$IMGRAPH" plan --top "$d/top.qed" \
	--base "$d/base.qcow2" -F qcow2 --format "$d/top.qed=qed" "$d"
check_grep "qed chain: the why names the --format that follows it" "the chain stops at '[^']*mid.qed'.*say so: --format [^ ]*mid.qed=qed" "$T/.out"
check_rc "qed chain: the commit runs with every format stated" 0 "$IMGRAPH" commit --yes -q \
	--top "$d/top.qed" --base "$d/base.qcow2" -F qcow2 --format "$d/top.qed=qed" \
	--format "$d/mid.qed=qed" "$d"
same_views "qed chain" "$d/leaf.qed"
check "qed chain: base holds top's view" qemu-img compare -q -U -F raw "$d/base.qcow2" "$T/view.top.qed.before"
qcheck "qed chain: base checks clean" "$d/base.qcow2"

# --- A stated format never overrides a recorded one.
d=$T/rec; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
mkq "$d/top.qcow2" 4M base.qcow2
qio "$d/top.qcow2" -c 'write -P 0x21 0 64k'
mkq "$d/leaf.qcow2" 4M top.qcow2
snap_dir "$d" >"$T/before"
check_rc "record: a stated format that differs is a conflict" 3 "$IMGRAPH" plan --top "$d/top.qcow2" \
	--format "$d/base.qcow2=raw" "$d"
check_grep "record: it names the record and the statement" "'[^']*top.qcow2' records the format of '[^']*base.qcow2' as qcow2, but it is stated as raw" "$T/.out"
check_rc "record: so is --base-format" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" --base-format raw "$d"
snap_dir "$d" >"$T/after"
check "record: nothing written" cmp "$T/before" "$T/after"
check_rc "record: a statement that agrees changes nothing" 0 "$IMGRAPH" plan --top "$d/top.qcow2" \
	--base-format qcow2 "$d"

# --- A qcow v1 parent of top stays a relink conflict, formats stated or
# not.
d=$T/par; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/top.qed" 4M
qedio -c 'write -P 0x31 0 64k' "$d/top.qed"
qemu-img create -q -f qcow -b top.qed -F qed "$d/par.qcow" 4M
snap_dir "$d" >"$T/before"
check_rc "qcow parent: the plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qed" -F qcow2 \
	--format "$d/top.qed=qed" "$d"
check_grep "qcow parent: a relink conflict naming the format" "\[relink\] '[^']*par.qcow': format qcow cannot rewrite its backing link" "$T/.out"
check_rc "qcow parent: the commit refuses" 3 "$IMGRAPH" commit --yes -q --top "$d/top.qed" -F qcow2 \
	--format "$d/top.qed=qed" "$d"
snap_dir "$d" >"$T/after"
check "qcow parent: nothing written" cmp "$T/before" "$T/after"

# --- vmdk tops: QEMU reads a vmdk's parentFileNameHint as a vmdk only
# (qemu-img create refuses any other backing format; a descriptor edited to
# name a qcow2 image fails to open), so imgraph takes the link as recording
# vmdk, and stating qcow2 for its parent is a conflict, not a way round.
d=$T/vmdk; mkdir -p "$d"
mkq "$d/pbase.qcow" 4M
qio "$d/pbase.qcow" -c 'write -P 0x41 0 1M'
check_rc "vmdk: qemu-img create refuses a qcow2 parent" 1 qemu-img create -q -f vmdk \
	-b pbase.qcow -F qcow2 "$d/nope.vmdk" 4M
rm -f "$d/nope.vmdk"
qemu-img create -q -f vmdk "$d/pbase.vmdk" 4M
for sub in monolithicSparse streamOptimized; do
	qemu-img create -q -f vmdk -o subformat=$sub -b pbase.vmdk -F vmdk "$d/$sub.tmp" 4M
	# the same descriptor, its parent renamed to the qcow2 image
	sed 's/parentFileNameHint="pbase.vmdk"/parentFileNameHint="pbase.qcow"/' \
		"$d/$sub.tmp" >"$d/$sub.vmdk"
	rm -f "$d/$sub.tmp"
	check_rc "vmdk $sub: QEMU cannot read it through a qcow2 parent" 1 \
		qemu-img convert -U -O raw "$d/$sub.vmdk" "$T/$sub.raw"
	snap_dir "$d" >"$T/before"
	check_rc "vmdk $sub: the plan refuses with -F qcow2" 3 "$IMGRAPH" plan --drop-top \
		--top "$d/$sub.vmdk" -F qcow2 "$d"
	check_grep "vmdk $sub: the link records vmdk, not the statement" \
		"'[^']*$sub.vmdk' records the format of '[^']*pbase.qcow' as vmdk, but it is stated as qcow2" "$T/.out"
	check_rc "vmdk $sub: the commit refuses" 3 "$IMGRAPH" commit --yes -q --drop-top \
		--top "$d/$sub.vmdk" -F qcow2 "$d"
	snap_dir "$d" >"$T/after"
	check "vmdk $sub: nothing written" cmp "$T/before" "$T/after"
	rm -f "$d/$sub.vmdk"
done

# --- Bad statements are usage errors (exit 2).
d=$T/par
check_rc "usage: --format without =" 2 "$IMGRAPH" plan --top "$d/top.qed" --format "$d/top.qed"
check_rc "usage: an unknown format" 2 "$IMGRAPH" plan --top "$d/top.qed" --base-format qcow3
check_grep "usage: the unknown format is named" "unknown format 'qcow3'" "$T/.err"
check_rc "a --format FILE that does not exist is an error" 1 "$IMGRAPH" plan --top "$d/top.qed" \
	--format "$d/nosuch.qcow2=qcow2"
check_grep "the error names the file" "nosuch.qcow2: cannot stat --format" "$T/.err"
check_rc "a --format FILE outside the pool is a conflict" 3 "$IMGRAPH" plan --top "$d/top.qed" \
	-F qcow2 --format "$d/top.qed=qed" --format "$T/qed/base.qcow2=qcow2" "$d"
check_grep "the conflict names it" "\[format\] --format [^ ]*qed/base.qcow2=qcow2: the file is not an image of the pool" "$T/.out"

# --- tree takes the same statements: the pool it shows is the one plan
# and commit see (a qed intermediate records no format for its qcow2
# base, so base is only probed until it is stated).
d=$T/tree; mkdir -p "$d"
mkq "$d/base.qcow2" 4M
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$d/mid.qed" 4M
check_rc "tree: without a statement base is only probed" 0 "$IMGRAPH" tree "$d"
check_grep "tree: it says so" "base.qcow2 .*\[probed, unsafe probe\]" "$T/.out"
check_rc "tree --format: exit 0" 0 "$IMGRAPH" tree --format "$d/base.qcow2=qcow2" "$d"
check_grep "tree --format: base's format is stated" "base.qcow2 .*\[format stated\]" "$T/.out"
check_nogrep "tree --format: no unsafe probe left" "unsafe probe" "$T/.out"
check_rc "tree --format --output=json: exit 0" 0 "$IMGRAPH" tree --output=json \
	--format "$d/base.qcow2=qcow2" "$d"
check_eq "tree --format: the JSON flags say stated" \
	"$(jq -r '.nodes[] | select(.filename | endswith("base.qcow2")) | .flags | join(",")' "$T/.out")" \
	"format stated"
check_rc "tree --format: an unknown format is a usage error" 2 "$IMGRAPH" tree \
	--format "$d/base.qcow2=qcow3" "$d"
check_rc "tree --format: a missing FILE is an error" 1 "$IMGRAPH" tree \
	--format "$d/nosuch.qcow2=qcow2" "$d"
check_grep "tree --format: the error names the file" "nosuch.qcow2: cannot stat --format" "$T/.err"

done_testing
