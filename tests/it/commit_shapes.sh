#!/usr/bin/env bash
# commit_shapes.sh - the commit on every image shape the copy engine must
# handle, judged by qemu-img (guest views of the overlays unchanged, base
# shows top's old view, check clean, outside files untouched):
#   8 overlays in four directories (relative and absolute names);
#   512 B clusters, 2 MiB clusters, extended L2 (subclusters);
#   a v2 (compat=0.10) base under v3 layers; a raw base;
#   base smaller than top, also with a backing file under base whose data
#   must not show through the grown area; base larger than an unaligned
#   top with an overlay larger than top; data past 4 GiB.
# IMGRAPH_LONG=1 adds refcount_bits=1 and 4 KiB clusters.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

commit_ok() { # NAME TOP BASE PATHS...
	local n=$1 top=$2 base=$3; shift 3
	check_rc "$n: commit" 0 "$IMGRAPH" commit --top "$top" --base "$base" \
		--yes -q -r "$@"
}

shape() { # NAME N [qemu-img create opts...]
	local n=$1 cnt=$2 d=$T/$1; shift 2
	fixture_build "$d" "$cnt" "$@" || { not_ok "$n: fixture"; return; }
	fixture_save "$d" "$d.v"
	commit_ok "$n" "$d/top.qcow2" "$d/base.qcow2" "$d"
	fixture_verify "$n" "$d" "$d.v" base
}

shape overlays8 8
shape cluster512 2 -o cluster_size=512
shape cluster2M 2 -o cluster_size=2M
shape extl2 2 -o extended_l2=on,cluster_size=64k
if [ "${IMGRAPH_LONG:-0}" = 1 ]; then
	shape refcount1 2 -o refcount_bits=1
	shape cluster4k 3 -o cluster_size=4k
fi

# A v2 base (no zero clusters there) under v3 layers with zero clusters.
d=$T/v2
fixture_build "$d" 2
qemu-img convert -O qcow2 -o compat=0.10 "$d/base.qcow2" "$d/b2.qcow2" && mv "$d/b2.qcow2" "$d/base.qcow2"
fixture_save "$d" "$d.v"
commit_ok v2base "$d/top.qcow2" "$d/base.qcow2" "$d"
fixture_verify v2base "$d" "$d.v" base
check_eq "v2base: base is still compat 0.10" \
	"$(qemu-img info --output=json "$d/base.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["data"]["compat"])')" "0.10"

# A raw base: zeros become holes, the relinked overlays record 'raw'.
d=$T/raw; mkdir -p "$d/d0"
qemu-img create -q -f raw "$d/base.img" 16M
qemu-io -f raw -c 'write -P 0x21 0 4M' -c 'write -P 0x22 8M 1M' "$d/base.img" >/dev/null
qemu-img create -q -f qcow2 -b base.img -F raw "$d/mid.qcow2" 16M
qemu-io -f qcow2 -c 'write -c -P 0xa1 3M 64k' "$d/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 16M
qemu-io -f qcow2 -c 'write -z 0 1M' -c 'write -P 0xb1 8200k 5k' -c 'discard 2M 64k' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/ovl0.qcow2" 16M
qemu-img convert -O raw "$d/d0/ovl0.qcow2" "$T/raw.ovl0"
qemu-img convert -O raw "$d/top.qcow2" "$T/raw.top"
commit_ok rawbase "$d/top.qcow2" "$d/base.img" "$d"
check "rawbase: overlay view unchanged" qemu-img compare -q -f qcow2 -F raw "$d/d0/ovl0.qcow2" "$T/raw.ovl0"
check "rawbase: base shows top's old view" cmp "$d/base.img" "$T/raw.top"
check_eq "rawbase: overlay names base as raw" \
	"$(qemu-img info --output=json "$d/d0/ovl0.qcow2" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["backing-filename"], d["backing-filename-format"])')" \
	"../base.img raw"
qcheck "rawbase: overlay check" "$d/d0/ovl0.qcow2"

# Base smaller than top (274): base 8M <- mid 12M <- top 24M.  Data past
# the short middle image reads as zero before and after.
d=$T/grow; mkdir -p "$d/d0"
qemu-img create -q -f qcow2 "$d/base.qcow2" 8M
qemu-io -f qcow2 -c 'write -P 0x31 7M 1M' "$d/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2" 12M
qemu-io -f qcow2 -c 'write -P 0x32 9M 1M' "$d/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 24M
qemu-io -f qcow2 -c 'write -P 0x33 20M 1M' -c 'write -P 0x34 7680k 1k' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/ovl0.qcow2" 24M
qemu-img convert -O raw "$d/d0/ovl0.qcow2" "$T/grow.ovl0"
qemu-img convert -O raw "$d/top.qcow2" "$T/grow.top"
commit_ok grow "$d/top.qcow2" "$d/base.qcow2" "$d"
check_eq "grow: base grew to top's size" \
	"$(qemu-img info --output=json "$d/base.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" 25165824
check "grow: base shows top's old view" qemu-img compare -q -f qcow2 -F raw "$d/base.qcow2" "$T/grow.top"
check "grow: overlay view unchanged" qemu-img compare -q -f qcow2 -F raw "$d/d0/ovl0.qcow2" "$T/grow.ovl0"
qcheck "grow: base check" "$d/base.qcow2"

# Base smaller than top AND backed by a larger root with data where base
# grows: the grown area must read as zeros (top's view), not root's data.
d=$T/growb; mkdir -p "$d/d0"
qemu-img create -q -f qcow2 "$d/root.qcow2" 32M
qemu-io -f qcow2 -c 'write -P 0x41 0 32M' "$d/root.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b root.qcow2 -F qcow2 "$d/base.qcow2" 8M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 32M
qemu-io -f qcow2 -c 'write -P 0x42 20M 64k' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/ovl0.qcow2" 32M
qemu-img convert -O raw "$d/d0/ovl0.qcow2" "$T/growb.ovl0"
qemu-img convert -O raw "$d/top.qcow2" "$T/growb.top"
commit_ok growb "$d/top.qcow2" "$d/base.qcow2" "$d"
check "growb: base shows top's old view (zeros where it grew)" \
	qemu-img compare -q -f qcow2 -F raw "$d/base.qcow2" "$T/growb.top"
check "growb: overlay view unchanged" qemu-img compare -q -f qcow2 -F raw "$d/d0/ovl0.qcow2" "$T/growb.ovl0"
qcheck "growb: base check" "$d/base.qcow2"

# Base larger than top, top's size not cluster-aligned, and an overlay
# larger than top: the overlay reads zeros past top's end today and reads
# base there after the relink, so base must hold zeros up to the overlay's
# size and keep its own data beyond.
d=$T/short; mkdir -p "$d/d0"
qemu-img create -q -f qcow2 "$d/base.qcow2" 20M
qemu-io -f qcow2 -c 'write -P 0x61 0 20M' "$d/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 10486272
qemu-io -f qcow2 -c 'write -P 0x62 10420224 66048' -c 'write -z 0 64k' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/ovl0.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x63 15M 64k' "$d/d0/ovl0.qcow2" >/dev/null
qemu-img convert -O raw "$d/d0/ovl0.qcow2" "$T/short.ovl0"
qemu-img convert -O raw "$d/top.qcow2" "$T/short.top"
qemu-img convert -O raw "$d/base.qcow2" "$T/short.base"
commit_ok short "$d/top.qcow2" "$d/base.qcow2" "$d"
check "short: larger overlay's view unchanged" qemu-img compare -q -f qcow2 -F raw "$d/d0/ovl0.qcow2" "$T/short.ovl0"
qemu-img convert -O raw "$d/base.qcow2" "$T/short.base2"
check "short: base starts with top's view" cmp -n 10486272 "$T/short.base2" "$T/short.top"
check "short: base keeps its data past the overlay's size" cmp -i 16777216 "$T/short.base2" "$T/short.base"
qcheck "short: base check" "$d/base.qcow2"

# Data past 4 GiB (020): 32-bit truncation would land it at low offsets.
d=$T/big; mkdir -p "$d/d0"
qemu-img create -q -f qcow2 "$d/base.qcow2" 6G
qemu-io -f qcow2 -c 'write -P 0x51 4G 64k' -c 'write -P 0x52 0 64k' "$d/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 6G
qemu-io -f qcow2 -c 'write -P 0x53 4100M 512' -c 'write -P 0x54 5G 1M' -c 'write -z 4G 64k' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$d/top.qcow2" -F qcow2 "$d/d0/ovl0.qcow2" 6G
commit_ok big "$d/top.qcow2" "$d/base.qcow2" "$d"
check "big: overlay equals top's old view" qemu-img compare -q "$d/d0/ovl0.qcow2" "$d/top.qcow2"
check "big: base equals top's old view" qemu-img compare -q "$d/base.qcow2" "$d/top.qcow2"
check_eq "big: 0x54 at 5G in base" "$(qemu-io -f qcow2 -r -U -c 'read -P 0x54 5G 1M' "$d/base.qcow2" | grep -c 'read 1048576')" 1
check_eq "big: zeros at 4G in base" "$(qemu-io -f qcow2 -r -U -c 'read -P 0 4G 64k' "$d/base.qcow2" | grep -c 'read 65536')" 1
check_eq "big: 0x52 still at 0" "$(qemu-io -f qcow2 -r -U -c 'read -P 0x52 0 64k' "$d/base.qcow2" | grep -c 'read 65536')" 1
qcheck "big: base check" "$d/base.qcow2"

# Overlays carrying what only a data write would disturb: a persistent
# bitmap, an internal snapshot, zstd compression.  A relink rewrites only
# the header (qemu-img rebase -u does the same), so they must be relinked
# with all of it intact.  A base with a bitmap must still be refused.
d=$T/ext; mkdir -p "$d/d0"
qemu-img create -q -f qcow2 "$d/base.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x31 0 4M' "$d/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x32 1M 2M' "$d/top.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/bm.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x33 2M 64k' "$d/d0/bm.qcow2" >/dev/null
qemu-img bitmap --add "$d/d0/bm.qcow2" backup0
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 "$d/d0/sn.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x34 3M 64k' "$d/d0/sn.qcow2" >/dev/null
qemu-img snapshot -c s1 "$d/d0/sn.qcow2"
qemu-io -f qcow2 -c 'write -P 0x35 3M 64k' "$d/d0/sn.qcow2" >/dev/null
qemu-img convert -U -O raw -l s1 "$d/d0/sn.qcow2" "$T/ext.sn.s1"
ext_ovls="bm sn"
if qemu-img create -q -f qcow2 -o compression_type=zstd -b ../top.qcow2 -F qcow2 "$d/d0/zs.qcow2" 16M 2>/dev/null; then
	qemu-io -f qcow2 -c 'write -c -P 0x36 0 64k' "$d/d0/zs.qcow2" >/dev/null
	ext_ovls="$ext_ovls zs"
else
	ok "ext: zstd overlay # SKIP qemu-img built without zstd"
fi
for o in $ext_ovls; do qemu-img convert -U -O raw "$d/d0/$o.qcow2" "$T/ext.$o"; done
qemu-img bitmap --add "$d/base.qcow2" base-bm
check_rc "ext: base with a bitmap: plan refuses" 3 "$IMGRAPH" plan --top "$d/top.qcow2" -r "$d"
check_grep "ext: the refusal names base and its bitmaps" "base.qcow2.*persistent.*bitmaps" "$T/.out"
qemu-img bitmap --remove "$d/base.qcow2" base-bm
commit_ok ext "$d/top.qcow2" "$d/base.qcow2" "$d"
for o in $ext_ovls; do
	f=$d/d0/$o.qcow2
	check_eq "ext: $o relinked onto base" "$(backing_of "$f")" "$(realpath "$d/base.qcow2")"
	check "ext: $o guest view unchanged" qemu-img compare -q -f qcow2 -F raw "$f" "$T/ext.$o"
	qcheck "ext: $o check" "$f"
done
qemu-img info --output=json "$d/d0/bm.qcow2" >"$T/ext.info"
check_grep "ext: bitmap kept, still persistent" '"name": "backup0"' "$T/ext.info"
check_nogrep "ext: bitmap not marked in-use or inconsistent" '"in-use"|"inconsistent"' "$T/ext.info"
check_eq "ext: snapshot kept" "$(qemu-img snapshot -l "$d/d0/sn.qcow2" | grep -c ' s1 ')" 1
qemu-img convert -U -O raw -l s1 "$d/d0/sn.qcow2" "$T/ext.sn.s1b"
check "ext: snapshot view unchanged" cmp "$T/ext.sn.s1" "$T/ext.sn.s1b"
if [ -f "$d/d0/zs.qcow2" ]; then
	check_eq "ext: zstd kept" "$(qemu-img info --output=json "$d/d0/zs.qcow2" | grep -c '"compression-type": "zstd"')" 1
fi

done_testing
