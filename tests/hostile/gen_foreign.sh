#!/usr/bin/env bash
# tests/hostile/gen_foreign.sh - hostile qcow (version 1), qed, vmdk and
# luks images, added to the corpus of tests/hostile/gen.sh.
#
#   tests/hostile/gen_foreign.sh OUTDIR      (after gen.sh OUTDIR)
#
# Same layout and MANIFEST format as gen.sh (see there); the runner is
# tests/it/hostile.sh.  Each fixture directory holds the hostile file
# bad.<ext> (an image qemu-img made, then poked with printf + dd, or a
# descriptor text written here) and top.qcow2, an overlay that names it
# with its format recorded, so the parser runs both probed (info, map) and
# declared (map/plan of top.qcow2).  OUTDIR/secret (made by gen.sh) stands
# for /etc/shadow: descriptors name it as an extent, and it must never be
# opened.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/poke.sh"
OUT=${1:?usage: gen_foreign.sh OUTDIR}
OUT=$(cd "$OUT" && pwd)
SECRET=$OUT/secret
[ -f "$SECRET" ] || { echo "gen_foreign.sh: run gen.sh $OUT first" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-hostile-foreign.XXXXXX")
trap 'rm -rf "$W"' EXIT

# ---- templates (qemu-img made; never edited in place) ----------------------
qemu-img create -q -f qcow2 "$W/base.qcow2" 4M
# qcow v1 over a qcow2 base: 512-byte clusters, L2 of 4096 entries
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 "$W/t.qcow" 4M
qemu-io -f qcow -c 'write -P 0x21 0 64k' "$W/t.qcow" >/dev/null
# qed over the qcow2 base: 64 KiB clusters, tables of 4 clusters
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$W/t.qed" 4M
qemu-io -f qed -c 'write -P 0x31 0 64k' -c 'write -z 1M 64k' "$W/t.qed" >/dev/null
# vmdk monolithicSparse with data
qemu-img create -q -f vmdk "$W/t.vmdk" 4M
qemu-io -f vmdk -c 'write -P 0x41 0 64k' "$W/t.vmdk" >/dev/null
# luks (the iteration benchmark sometimes fails on a busy machine: retry)
for _ in 1 2 3 4 5; do
	qemu-img create -q -f luks --object secret,id=s0,data=x \
		-o key-secret=s0,iter-time=10 "$W/t.luks" 1M 2>/dev/null && break
done
[ -f "$W/t.luks" ] || { echo "gen_foreign.sh: qemu-img cannot create luks" >&2; exit 1; }

n=0
# ffx ID TEMPLATE NAME FMT FIELD EXPECT ALLOW DESC: fixture dir with NAME (a
# copy of TEMPLATE, or an empty file when TEMPLATE is -) and top.qcow2
# naming it with format FMT.  Sets D (dir) and F (the hostile file).
ffx() {
	local id=$1 tmpl=$2 name=$3 fmt=$4 field=$5 expect=$6 allow=$7 desc=$8
	D=$OUT/$id F=$OUT/$id/$name
	mkdir -p "$D"
	if [ "$tmpl" = - ]; then : >"$F"; else cp "$tmpl" "$F"; fi
	# the qcow and qed templates read through base.qcow2
	case $fmt in qcow|qed) cp "$W/base.qcow2" "$D/";; esac
	(cd "$D" && qemu-img create -q -f qcow2 -u -b "$name" -F "$fmt" top.qcow2 4M)
	printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$field" "$expect" "$allow" "$desc" >>"$OUT/MANIFEST"
	n=$((n + 1))
}
# Expectations (policy in tests/it/hostile.sh): a header that is refused
# at open; a table entry found bad only when block status reaches it (a
# plan would refuse such a base for being read-only first, so none here).
hdr() { echo "info:$1=1 map:$1=1 map:top.qcow2=1 check:$1=1 tree:.=0 plan:top.qcow2=1,3"; }
tbl() { echo "info:$1=0 map:$1=1 map:top.qcow2=1 check:$1=1,63 tree:.=0"; }

# ---- qcow (version 1): header at 0, big-endian ------------------------------
# magic 0, version 4, backing_file_offset 8, backing_file_size 16, size 24,
# cluster_bits 32, l2_bits 33, crypt_method 36, l1_table_offset 40
QC=bad.qcow
ffx f01-qcow-truncated "$W/t.qcow" $QC qcow 'truncated' "$(hdr $QC)" "" "qcow v1 header cut to 30 bytes"
truncate -s 30 "$F"
ffx f02-qcow-cluster-bits-8 "$W/t.qcow" $QC qcow 'cluster_bits' "$(hdr $QC)" "" "cluster_bits 8"
poke_u8 "$F" 32 8
ffx f03-qcow-cluster-bits-17 "$W/t.qcow" $QC qcow 'cluster_bits' "$(hdr $QC)" "" "cluster_bits 17"
poke_u8 "$F" 32 17
ffx f04-qcow-l2-bits-20 "$W/t.qcow" $QC qcow 'l2_bits' "$(hdr $QC)" "" "l2_bits 20"
poke_u8 "$F" 33 20
ffx f05-qcow-size-huge "$W/t.qcow" $QC qcow "'size'" "$(hdr $QC)" "" "size 2^62: an L1 table of 2^32 entries"
poke_be64 "$F" 24 $((1 << 62))
ffx f06-qcow-l1-past-eof "$W/t.qcow" $QC qcow 'l1_table_offset' "$(hdr $QC)" "" "L1 table at 1 TiB"
poke_be64 "$F" 40 $((1 << 40))
ffx f07-qcow-backing-size-2000 "$W/t.qcow" $QC qcow 'backing_file_size' "$(hdr $QC)" "" "backing name 2000 bytes (> 1023)"
poke_be32 "$F" 16 2000
ffx f08-qcow-backing-past-eof "$W/t.qcow" $QC qcow 'backing_file_offset' "$(hdr $QC)" "" "backing name offset past the end"
poke_be64 "$F" 8 $((1 << 40))
ffx f09-qcow-crypt-7 "$W/t.qcow" $QC qcow 'crypt_method' "$(hdr $QC)" "" "crypt_method 7"
poke_be32 "$F" 36 7
ffx f10-qcow-l2-past-eof "$W/t.qcow" $QC qcow 'L1 entry' "$(tbl $QC)" "" "L1[0] points 1 TiB past the end"
poke_be64 "$F" "$(peek_be "$F" 40 8)" $((1 << 40))

# ---- qed: header at 0, little-endian ----------------------------------------
# cluster_size 4, table_size 8, header_size 12, features 16, l1 40,
# image_size 48, backing offset 56, backing size 60
QD=bad.qed
ffx f11-qed-truncated "$W/t.qed" $QD qed 'truncated' "$(hdr $QD)" "" "qed header cut to 40 bytes"
truncate -s 40 "$F"
ffx f12-qed-cluster-size-1000 "$W/t.qed" $QD qed 'cluster_size' "$(hdr $QD)" "" "cluster_size 1000"
poke_le32 "$F" 4 1000
ffx f13-qed-table-size-3 "$W/t.qed" $QD qed 'table_size' "$(hdr $QD)" "" "table_size 3"
poke_le32 "$F" 8 3
ffx f14-qed-tables-1gib "$W/t.qed" $QD qed 'table_size' "$(hdr $QD)" "" "64 MiB clusters x 16: 1 GiB tables"
poke_le32 "$F" 4 $((64 << 20)); poke_le32 "$F" 8 16
ffx f15-qed-image-size-odd "$W/t.qed" $QD qed 'image_size' "$(hdr $QD)" "" "image_size not a multiple of 512"
poke_le64 "$F" 48 1000
ffx f16-qed-l1-unaligned "$W/t.qed" $QD qed 'l1_table_offset' "$(hdr $QD)" "" "L1 table not cluster-aligned"
poke_le64 "$F" 40 $(( $(peek_le "$F" 40 8) + 8 ))
ffx f17-qed-l1-past-eof "$W/t.qed" $QD qed 'l1_table_offset' "$(hdr $QD)" "" "L1 table at 1 TiB"
poke_le64 "$F" 40 $((1 << 40))
ffx f18-qed-backing-outside-header "$W/t.qed" $QD qed 'backing_filename' "$(hdr $QD)" "" "backing name past the header clusters"
poke_le32 "$F" 56 $((1 << 30))
ffx f19-qed-features-unknown "$W/t.qed" $QD qed 'features' "$(hdr $QD)" "" "unknown feature bit 0x100"
poke_le64 "$F" 16 $(( $(peek_le "$F" 16 8) | 0x100 ))
ffx f20-qed-header-size-0 "$W/t.qed" $QD qed 'header_size' "$(hdr $QD)" "" "header_size 0"
poke_le32 "$F" 12 0
ffx f21-qed-l2-bad "$W/t.qed" $QD qed 'L1 entry' "$(tbl $QD)" "" "L1[0] not a cluster offset"
poke_le64 "$F" "$(peek_le "$F" 40 8)" 12345

# ---- vmdk descriptors: text, extents in the fixture dir -----------------------
VD=bad.vmdk
# desc D CREATETYPE EXTENT-LINES...: write $D/bad.vmdk
desc() {
	local d=$1 ct=$2; shift 2
	{ printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
	  printf 'createType="%s"\n\n# Extent description\n' "$ct"
	  printf '%s\n' "$@"; } >"$d/$VD"
}
flat() { truncate -s 1M "$1"; }   # a 1 MiB flat extent
ffx f22-vmdk-etc-shadow - $VD vmdk 'extent|absolute' "$(hdr $VD)" "" "descriptor names /etc/shadow as a flat extent"
desc "$D" monolithicFlat 'RW 2048 FLAT "/etc/shadow" 0'
ffx f23-vmdk-secret-absolute - $VD vmdk 'extent|absolute' "$(hdr $VD)" "" "descriptor names the secret by absolute path"
desc "$D" monolithicFlat "RW 2048 FLAT \"$SECRET\" 0"
ffx f24-vmdk-dotdot - $VD vmdk 'extent|leaves' "$(hdr $VD)" "" "descriptor names ../secret"
desc "$D" monolithicFlat 'RW 2048 FLAT "../secret" 0'
ffx f25-vmdk-symlink-out - $VD vmdk 'extent|outside' "$(hdr $VD)" "" "extent is a symlink to ../secret"
ln -s ../secret "$D/link-flat.vmdk"
desc "$D" monolithicFlat 'RW 2048 FLAT "link-flat.vmdk" 0'
ffx f26-vmdk-extent-huge - $VD vmdk 'extent|2\^61|sectors' "$(hdr $VD)" "" "one extent of 2^60 sectors"
flat "$D/f.vmdk"; desc "$D" monolithicFlat "RW $((1 << 60)) FLAT \"f.vmdk\" 0"
ffx f27-vmdk-extents-sum-huge - $VD vmdk 'extent|2\^61' "$(hdr $VD)" "" "4 extents of 2^51 sectors each (2^62 bytes in all)"
L="RW $((1 << 51)) FLAT \"f.vmdk\" 0"
flat "$D/f.vmdk"; desc "$D" twoGbMaxExtentFlat "$L" "$L" "$L" "$L"
ffx f28-vmdk-5000-extents - $VD vmdk 'extent' "$(hdr $VD)" "" "5000 extent lines (cap 4096)"
flat "$D/f.vmdk"; desc "$D" twoGbMaxExtentFlat; for i in $(seq 5000); do echo 'RW 8 FLAT "f.vmdk" 0'; done >>"$D/$VD"
ffx f29-vmdk-flat-no-offset - $VD vmdk 'extent line' "$(hdr $VD)" "" "FLAT extent line without an offset"
flat "$D/f.vmdk"; desc "$D" monolithicFlat 'RW 2048 FLAT "f.vmdk"'
ffx f30-vmdk-no-createtype - $VD vmdk 'createType' "$(hdr $VD)" "" "descriptor without createType"
flat "$D/f.vmdk"; desc "$D" x 'RW 2048 FLAT "f.vmdk" 0'; sed -i '/createType/d' "$D/$VD"
ffx f31-vmdk-createtype-stream - $VD vmdk 'createType' "$(hdr $VD)" "" "descriptor file claiming streamOptimized"
flat "$D/f.vmdk"; desc "$D" streamOptimized 'RW 2048 FLAT "f.vmdk" 0'
ffx f32-vmdk-no-cid - $VD vmdk 'CID' "$(hdr $VD)" "" "descriptor without CID"
flat "$D/f.vmdk"; desc "$D" monolithicFlat 'RW 2048 FLAT "f.vmdk" 0'; sed -i '/CID/d' "$D/$VD"
ffx f33-vmdk-hint-unterminated - $VD vmdk 'parentFileNameHint' "$(hdr $VD)" "" "parentFileNameHint without a closing quote"
flat "$D/f.vmdk"; desc "$D" monolithicFlat 'RW 2048 FLAT "f.vmdk" 0'; printf 'parentFileNameHint="base.vmdk\n' >>"$D/$VD"
ffx f34-vmdk-extent-missing - $VD vmdk 'extent' "$(hdr $VD)" "" "extent file does not exist"
desc "$D" monolithicFlat 'RW 2048 FLAT "nowhere.vmdk" 0'
ffx f35-vmdk-extent-fifo - $VD vmdk 'regular' "$(hdr $VD)" "" "extent is a FIFO (must not block)"
mkfifo "$D/fifo.vmdk"; desc "$D" monolithicFlat 'RW 2048 FLAT "fifo.vmdk" 0'
ffx f36-vmdk-self-as-sparse - $VD vmdk 'magic|KDMV' "$(hdr $VD)" "" "descriptor names itself as a sparse extent"
desc "$D" twoGbMaxExtentSparse "RW 2048 SPARSE \"$VD\""
ffx f37-vmdk-nested-descriptor - $VD vmdk 'capacity' "$(hdr $VD)" "" "sparse extent with an embedded descriptor of its own"
cp "$W/t.vmdk" "$D/s.vmdk"; poke_le64 "$D/s.vmdk" 12 0
desc "$D" twoGbMaxExtentSparse 'RW 8192 SPARSE "s.vmdk"'

# ---- vmdk sparse header (KDMV), little-endian -------------------------------
# version 4, flags 8, capacity 12, grain 20, desc 28, gtes 44, gd 56, overhead 64
ffx f38-vmdk-sparse-truncated "$W/t.vmdk" $VD vmdk 'truncated' "$(hdr $VD)" "" "sparse header cut to 24 bytes"
truncate -s 24 "$F"
ffx f39-vmdk-gtes-1000 "$W/t.vmdk" $VD vmdk 'numGTEsPerGT' "$(hdr $VD)" "" "numGTEsPerGT 1000 (> 512)"
poke_le32 "$F" 44 1000
ffx f40-vmdk-grain-0 "$W/t.vmdk" $VD vmdk 'grainSize' "$(hdr $VD)" "" "grainSize 0"
poke_le64 "$F" 20 0
ffx f41-vmdk-capacity-huge "$W/t.vmdk" $VD vmdk 'capacity' "$(hdr $VD)" "" "capacity 2^60 sectors"
poke_le64 "$F" 12 $((1 << 60))
ffx f42-vmdk-gd-past-eof "$W/t.vmdk" $VD vmdk 'gdOffset' "$(hdr $VD)" "" "grain directory at 2^40 sectors"
poke_le64 "$F" 56 $((1 << 40))
ffx f43-vmdk-overhead-past-eof "$W/t.vmdk" $VD vmdk 'overHead' "$(hdr $VD)" "" "grains start past the end of the file"
poke_le64 "$F" 64 $((1 << 30))
ffx f44-vmdk-version-4 "$W/t.vmdk" $VD vmdk 'version' "$(hdr $VD)" "" "sparse version 4"
poke_le32 "$F" 4 4
ffx f45-vmdk-footer-missing "$W/t.vmdk" $VD vmdk 'gdOffset|footer' "$(hdr $VD)" "" "grain directory 'at the end' without a footer"
poke_le64 "$F" 56 0xffffffffffffffff
ffx f46-vmdk-gt-past-eof "$W/t.vmdk" $VD vmdk 'grain directory entry' "$(tbl $VD)" "" "GD[0] points past the end"
poke_le32 "$F" $(( $(peek_le "$F" 56 8) * 512 )) $((1 << 30))
ffx f47-vmdk-cowd - $VD vmdk 'COWD' "$(hdr $VD)" "" "VMDK3 COWD magic (not supported)"
printf 'COWD' >"$F"; truncate -s 4096 "$F"

# ---- luks: header at 0, big-endian -------------------------------------------
LK=bad.luks
ffx f48-luks-truncated "$W/t.luks" $LK luks 'truncated' "$(hdr $LK)" "" "LUKS header cut to 100 bytes"
truncate -s 100 "$F"
ffx f49-luks-version-2 "$W/t.luks" $LK luks 'version' "$(hdr $LK)" "" "LUKS version 2 (not in QEMU 7.2)"
poke_be16 "$F" 6 2
ffx f50-luks-stripes "$W/t.luks" $LK luks 'key_slot' "$(hdr $LK)" "" "key slot 0 with 3999 stripes"
poke_be32 "$F" $((208 + 44)) 3999
ffx f51-luks-payload-past-eof "$W/t.luks" $LK luks 'payload_offset' "$(hdr $LK)" "" "payload at 2^31 sectors"
poke_be32 "$F" 104 $((1 << 31))
ffx f52-luks-cipher-unknown "$W/t.luks" $LK luks 'cipher_name' "$(hdr $LK)" "" "cipher 'rot13'"
poke_raw "$F" 8 'rot13\000'
ffx f53-luks-slots-overlap "$W/t.luks" $LK luks 'key_slot' "$(hdr $LK)" "" "key slot 1 overlaps slot 0"
poke_be32 "$F" $((208 + 48 + 40)) "$(peek_be "$F" $((208 + 40)) 4)"

# ---- loops through foreign parents -------------------------------------------
ffx f54-loop-qed-qcow "$W/t.qed" $QD qed 'loop|probe|a.qcow|bad.qed' \
	"info:$QD=0 map:top.qcow2=0,1 tree:.=0 plan:top.qcow2=0,1,3" "" \
	"qed -> qcow v1 -> qed (backing loop through foreign formats)"
qemu-img create -q -f qcow -u -b "$QD" -F qed "$D/a.qcow" 4M
qemu-img rebase -q -f qed -u -b a.qcow -F qcow "$F"
ffx f55-loop-vmdk-self "$W/t.vmdk" $VD vmdk 'loop|CID|bad.vmdk' \
	"info:$VD=0 map:$VD=0,1 map:top.qcow2=0,1 tree:.=0 plan:top.qcow2=0,1,3" "" \
	"vmdk whose parentFileNameHint names itself"
dd if=/dev/zero of="$F" bs=512 seek=1 count=20 conv=notrunc status=none
poke_raw "$F" 512 '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=12345678\ncreateType="monolithicSparse"\nparentFileNameHint="bad.vmdk"\n'

echo $(( $(cat "$OUT/COUNT" 2>/dev/null || echo 0) + n )) >"$OUT/COUNT"
