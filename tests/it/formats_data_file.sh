#!/usr/bin/env bash
# formats_data_file.sh - qcow2 images with an external data file: map, info
# and reads go through the data file as qemu-img's do (map names the data
# file), such an image can be top, intermediate or a relinked parent, and
# as base (or a kept top, which is emptied) it stays refused with the
# reason.  A data file outside the image's directory is never opened
# (CVE-2024-32498).  qemu-img opens a relative data file name from its
# working directory, so every qemu-img judge runs in the pool.
#
# Regression: map named the qcow2 file instead of the data file, reads
# failed ("data lives in the external data file ... not supported") and
# the plan refused such an image as top or intermediate.
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io jq python3
. "$(dirname "$0")/lib_formats.sh"

d=$T/pool; mkdir -p "$d"; cd "$d" || exit 1
mkq base.qcow2 8M
qio base.qcow2 -c 'write -P 0x11 0 4M'
mkq mid.qcow2 8M base.qcow2 qcow2 -o data_file=mid.data
qio mid.qcow2 -c 'write -P 0x21 1M 1M' -c 'write -z 3M 64k' -c 'write -P 0x22 5M 100k'
mkq top.qcow2 8M mid.qcow2 qcow2 -o data_file=top.data
qio top.qcow2 -c 'write -P 0x31 64k 128k' -c 'write -P 0x32 1536k 64k' -c 'discard 2M 64k'
mkq vm.qcow2 8M top.qcow2 qcow2 -o data_file=vm.data
qio vm.qcow2 -c 'write -P 0x41 7M 64k'
mkq vm2.qcow2 8M top.qcow2
qio vm2.qcow2 -c 'write -P 0x42 6M 64k'

# data_file_raw (no backing file allowed with it).
mkq raw.qcow2 8M "" -o data_file=raw.data,data_file_raw=on
qemu-io -f qcow2 -c 'write -P 0x51 0 1M' -c 'write -z 2M 64k' raw.qcow2 >/dev/null
for f in mid top vm raw; do
	all3 "$f (data file)" "$f.qcow2"
done
"$IMGRAPH" map top.qcow2 >"$T/map.txt" 2>&1
check_grep "map names the data file" "^0x10000 .* top\.data$" "$T/map.txt"
check_nogrep "map never names top.qcow2 for its data" " top\.qcow2$" "$T/map.txt"
"$IMGRAPH" info --output=json mid.qcow2 >"$T/info.json"
check_eq "info: data-file" "$(jq -r '."format-specific".data."data-file"' "$T/info.json")" mid.data

# A leaf with a data file on a base of its own.
mkq b2.qcow2 8M
qio b2.qcow2 -c 'write -P 0x61 0 1M'
mkq leaf.qcow2 8M b2.qcow2 qcow2 -o data_file=leaf.data
qio leaf.qcow2 -c 'write -P 0x62 512k 1M'
guest_raw leaf.qcow2 "$T/leaf.raw"
for v in vm vm2; do guest_raw "$v.qcow2" "$T/$v.raw"; done
guest_raw top.qcow2 "$T/top.raw"
snap_dir "$d" >"$T/before"

# As base: refused, with the reason.
check_rc "mid as base: plan refuses" 3 "$IMGRAPH" plan --top top.qcow2 --base mid.qcow2 "$d"
check_grep "the reason names the data file" "base '[^']*mid.qcow2' cannot be written: .*external data file 'mid.data'" "$T/.out"
# A leaf top is emptied, which writes it: refused too.
check_rc "kept leaf top with a data file: plan refuses" 3 "$IMGRAPH" plan --top leaf.qcow2 "$d"
check_grep "the reason names the data file" "top '[^']*leaf.qcow2' cannot be written: .*external data file 'leaf.data'" "$T/.out"
snap_dir "$d" >"$T/after"
check "plans wrote nothing" cmp "$T/before" "$T/after"

# top (data file) and mid (data file, intermediate) into base; vm (data
# file) and vm2 are relinked.
check_rc "top and mid with data files: plan runs" 0 "$IMGRAPH" plan --top top.qcow2 --base base.qcow2 "$d"
check_rc "commit runs" 0 "$IMGRAPH" commit --yes -q --top top.qcow2 --base base.qcow2 "$d"
check "base holds top's view" qemu-img compare -q -U -f qcow2 -F raw base.qcow2 "$T/top.raw"
qcheck "base checks clean" base.qcow2
for v in vm vm2; do
	check_eq "$v relinked to base" "$(qemu-img info -U --output=json "$v.qcow2" | jq -r '."backing-filename"')" base.qcow2
	check "$v reads as before" qemu-img compare -q -U -f qcow2 -F raw "$v.qcow2" "$T/$v.raw"
	qcheck "$v checks clean" "$v.qcow2"
done
check_eq "vm keeps its data file" "$(qemu-img info -U --output=json vm.qcow2 | jq -r '."format-specific".data."data-file"')" vm.data

# --drop-top leaves the leaf as it is: it commits.
check_rc "--drop-top: a leaf top with a data file commits" 0 \
	"$IMGRAPH" commit --yes -q --drop-top --top leaf.qcow2 "$d"
check "b2 holds the leaf's view" qemu-img compare -q -U -f qcow2 -F raw b2.qcow2 "$T/leaf.raw"
qcheck "b2 checks clean" b2.qcow2

# A data file outside the image's directory: never opened.
mkdir -p "$d/sub"
qemu-img create -q -f qcow2 -o data_file="$d/abs.data" "$d/sub/abs.qcow2" 1M
qemu-img create -q -f qcow2 -o data_file=../up.data "$d/sub/up.qcow2" 1M 2>/dev/null ||
	qemu-img create -q -f qcow2 -o data_file="$d/up.data" "$d/sub/up.qcow2" 1M
check_rc "absolute data file: info refuses" 1 "$IMGRAPH" info "$d/sub/abs.qcow2"
check_grep "the message names the data file" "data file '$d/abs.data' is an absolute path" "$T/.err"
ln -s /etc/passwd "$d/sub/link.data"
qemu-img create -q -f qcow2 -o data_file=link.data,data_file_raw=on "$d/sub/link.qcow2" 1M 2>/dev/null
check_rc "data file symlinked out of the directory: info refuses" 1 "$IMGRAPH" info "$d/sub/link.qcow2"
check_grep "the message says it leaves the directory" "data file 'link.data' leaves the image's directory" "$T/.err"

done_testing
