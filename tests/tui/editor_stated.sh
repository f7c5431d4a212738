#!/usr/bin/env bash
# The editor takes the options that say how to read the images, from the
# table `plan` and `commit` share: --base-format/-F and --format (a qed top
# over a qcow2 base commits once base's format is stated), --ignore-
# unverified FILE and --base-is-raw.  Judged by qemu-img.
#
# Regression: the editor refused all four (exit 2, unknown option), so a
# pair with a qed top could not be committed from it at all.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool; mkdir -p "$P"
mkq "$P/base.qcow2" 4M
qio "$P/base.qcow2" -c 'write -P 0x11 0 2M'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$P/top.qed" 4M
qemu-io -f qed -c 'write -P 0x22 512k 1M' "$P/top.qed" >/dev/null
mkq "$P/leaf.qcow2" 4M top.qed qed
qio "$P/leaf.qcow2" -c 'write -P 0x33 3M 64k'
# An overlay of base whose header was damaged: an unverified reader.
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$P/broken.qed" 4M
printf '\x00\x00\x00\x03' | dd of="$P/broken.qed" bs=1 seek=4 conv=notrunc 2>/dev/null
guest_raw "$P/leaf.qcow2" "$T/leaf.raw"
guest_raw "$P/top.qed" "$T/top.raw"

start 120 30 -- "$P"
see "no statement: editor open" "4 images"
select_img top.qed; keys t
see "no statement: the pair has conflicts" "top.qed into base.qcow2: 2 conflicts"
keys p
see "no statement: the plan names the option" "say so: --base-format qcow2"

start 120 30 -- -F qcow2 "$P"
see "-F qcow2: editor open" "4 images"
select_img top.qed; keys t
see "-F qcow2: the unverified reader is left" "top.qed into base.qcow2: 1 conflict"

start 120 30 -- --base-format qcow2 --ignore-unverified "$P/broken.qed" "$P"
see "both: editor open" "4 images"
select_img top.qed; keys t
see "both: the pair is clean" "top.qed into base.qcow2 \(its backing file\): clean"
keys c
see "both: the plan shows base's format as stated" "base:  +base.qcow2 \(qcow2, format stated"
keys y
see "both: relink question" "Relink every parent of top to base now" 30
keys y
see "both: commit finished" "Commit finished" 30
check "leaf reads as before" qemu-img compare -q -U -F raw "$P/leaf.qcow2" "$T/leaf.raw"
check "base holds top's view" qemu-img compare -q -U -F raw "$P/base.qcow2" "$T/top.raw"
qcheck "base checks clean" "$P/base.qcow2"
check_eq "leaf names base with -F qcow2" \
	"$(qemu-img info -U --output=json "$P/leaf.qcow2" | jq -r '."backing-filename" + " " + ."backing-filename-format"')" \
	"base.qcow2 qcow2"

# --base-is-raw: a base recorded raw that carries a qcow2 header.
R=$T/raw; mkdir -p "$R"
qemu-img create -q -f qcow2 "$R/disk.img" 4M
mkq "$R/top.qcow2" 4M disk.img raw
qio "$R/top.qcow2" -c 'write -P 0x44 0 64k'
start 120 30 -- "$R"
see "raw base: editor open" "2 images"
select_img top.qcow2; keys t
see "raw base: a conflict without --base-is-raw" "top.qcow2 into disk.img: 1 conflict"
start 120 30 -- --base-is-raw "$R"
see "--base-is-raw: editor open" "2 images"
select_img top.qcow2; keys t
see "--base-is-raw: the pair is clean" "top.qcow2 into disk.img \(its backing file\): clean"

done_testing
