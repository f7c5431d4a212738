#!/usr/bin/env bash
# tests/hostile/gen_foreign_c.sh - more hostile foreign-format fixtures
# (issue 15, point 9), added to the corpus of gen.sh and gen_foreign.sh:
#
#   tests/hostile/gen_foreign_c.sh OUTDIR    (after gen.sh OUTDIR)
#
#   * a truncated header for every foreign format (qcow, qed, vmdk sparse,
#     stream-optimized and embedded descriptors, luks, vpc, vhdx, vdi,
#     parallels, bochs, cloop, dmg), cut at a place the earlier sets do not;
#   * vmdk descriptors whose extents are absurd (type, access, offset,
#     sizes, a name of 600 bytes, a directory, a megabyte of text) or leave
#     the pool (/etc/shadow as a sparse extent, deep ../, a symlinked
#     directory, /dev/zero, /proc/self/mem);
#   * backing loops through foreign parents (qcow and qed naming
#     themselves, qcow2 -> qed -> qcow2, qed -> qcow -> qcow2 -> qed, vmdk
#     hints in a cycle, differencing vhd and vhdx naming themselves, a vhd
#     pair naming each other);
#   * table sizes that are huge for the file (qcow, qed, vmdk grains,
#     grain tables and directories, vdi, parallels, cloop).
#
# Same layout and MANIFEST format as gen.sh (see there); the runner is
# tests/it/hostile.sh.  Each fixture directory holds the hostile file
# bad.<ext> and top.qcow2, an overlay naming it with its format recorded,
# so the parser runs probed (info, map, check) and declared (map/plan of
# top.qcow2).  OUTDIR/secret (made by gen.sh) stands for /etc/shadow.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/poke.sh"
GEN="python3 $HERE/../tools/foreign_gen.py"
OUT=${1:?usage: gen_foreign_c.sh OUTDIR}
OUT=$(cd "$OUT" && pwd)
SECRET=$OUT/secret
[ -f "$SECRET" ] || { echo "gen_foreign_c.sh: run gen.sh $OUT first" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-hostile-foreign-c.XXXXXX")
trap 'rm -rf "$W"' EXIT

# ---- templates (qemu-img made, or built from the published layouts) ---------
qi() { qemu-io -f "$1" "${@:3}" "$2" >/dev/null; }
qemu-img create -q -f qcow2 "$W/base.qcow2" 4M
qemu-img create -q -f qcow -b base.qcow2 -F qcow2 "$W/t.qcow" 4M
qi qcow "$W/t.qcow" -c 'write -P 0x21 0 64k'
qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$W/t.qed" 4M
qi qed "$W/t.qed" -c 'write -P 0x31 0 64k'
qemu-img create -q -f vmdk "$W/t.vmdk" 4M
qi vmdk "$W/t.vmdk" -c 'write -P 0x41 0 64k'
head -c 4M /dev/zero >"$W/g.raw"
qemu-io -f raw -c 'write -P 0x42 0 1M' "$W/g.raw" >/dev/null
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$W/g.raw" "$W/s.vmdk"
for _ in 1 2 3 4 5; do
	qemu-img create -q -f luks --object secret,id=s0,data=x \
		-o key-secret=s0,iter-time=10 "$W/t.luks" 1M 2>/dev/null && break
done
[ -f "$W/t.luks" ] || { echo "gen_foreign_c.sh: qemu-img cannot create luks" >&2; exit 1; }
qemu-img create -q -f vpc "$W/t.vhd" 4M && qi vpc "$W/t.vhd" -c 'write -P 0x51 0 1M'
qemu-img create -q -f vhdx -o block_size=1M "$W/t.vhdx" 4M
qi vhdx "$W/t.vhdx" -c 'write -P 0x52 0 1M'
qemu-img create -q -f vdi "$W/t.vdi" 4M && qi vdi "$W/t.vdi" -c 'write -P 0x53 0 1M'
qemu-img create -q -f parallels "$W/t.hds" 4M && qi parallels "$W/t.hds" -c 'write -P 0x54 0 1M'
head -c 1M "$W/g.raw" >"$W/g1.raw"
$GEN bochs "$W/g1.raw" "$W/t.bochs"
$GEN cloop "$W/g1.raw" "$W/t.cloop"
$GEN dmg "$W/g1.raw" "$W/t.dmg"
# differencing vhd / vhdx (parents named later per fixture)
qemu-img create -q -f vpc "$W/d0.vhd" 4M && qi vpc "$W/d0.vhd" -c 'write -P 0x55 0 64k'
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off "$W/d0.vhdx" 4M
qi vhdx "$W/d0.vhdx" -c 'write -P 0x56 0 1M'

n=0
# fxc ID TEMPLATE NAME FMT FIELD EXPECT DESC: fixture dir with NAME (a copy
# of TEMPLATE, or an empty file when TEMPLATE is -) and top.qcow2 naming it
# with format FMT.  Sets D (dir) and F (the hostile file).
fxc() {
	local id=$1 tmpl=$2 name=$3 fmt=$4 field=$5 expect=$6 desc=$7
	D=$OUT/$id F=$OUT/$id/$name
	mkdir -p "$D"
	if [ "$tmpl" = - ]; then : >"$F"; else cp "$tmpl" "$F"; fi
	case $fmt in qcow|qed) cp "$W/base.qcow2" "$D/";; esac
	(cd "$D" && qemu-img create -q -f qcow2 -u -b "$name" -F "$fmt" top.qcow2 4M)
	printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$field" "$expect" "" "$desc" >>"$OUT/MANIFEST"
	n=$((n + 1))
}
# Expectations (policy in tests/it/hostile.sh).  hdr: refused at open,
# probed and declared (a probe sees a short file zero-padded to 2 KiB, as
# QEMU's does, so a truncated header still names its format: regression
# for vdi, parallels and bochs files cut inside the header, which passed
# for raw).  decl: the damage removed what probing looks for
# (the file is raw to a probe, as to qemu-img), so only the declared format
# must fail.  loop: the files open, the chain through them is an error.
# tol: a hostile field QEMU ignores or tolerates (it opens the image), so
# must we, within the same time and memory bounds.
hdr() { echo "info:$1=1 map:$1=1 map:top.qcow2=1 check:$1=1 tree:.=0 plan:top.qcow2=1,3"; }
decl() { echo "info:$1=0 map:$1=0 map:top.qcow2=1 check:$1=0,63 tree:.=0 plan:top.qcow2=1,3"; }
tol() { echo "info:$1=0 map:$1=0 map:top.qcow2=0 check:$1=0,63 tree:.=0 plan:top.qcow2=0,3"; }
loop() { echo "info:$1=0,1 map:$1=1 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3"; }

# ---- truncated headers, one per format (cut where the earlier sets do not) --
fxc h01-qcow-magic-only "$W/t.qcow" bad.qcow qcow 'truncated|header' "$(decl bad.qcow)" \
	"qcow v1: only the 4-byte magic (raw to a probe, as in QEMU)"
truncate -s 4 "$F"
fxc h02-qcow-backing-cut "$W/t.qcow" bad.qcow qcow 'backing' "$(hdr bad.qcow)" \
	"qcow v1: the file ends inside the backing file name"
truncate -s $(( $(peek_be "$F" 8 8) + 3 )) "$F"
fxc h03-qed-l1-cut "$W/t.qed" bad.qed qed 'l1_table_offset|L1' "$(hdr bad.qed)" \
	"qed: the file ends inside the L1 table"
truncate -s $(( $(peek_le "$F" 40 8) + 8 )) "$F"
fxc h04-vmdk-magic-only "$W/t.vmdk" bad.vmdk vmdk 'truncated|header' "$(hdr bad.vmdk)" \
	"vmdk sparse: only the KDMV magic"
truncate -s 4 "$F"
fxc h05-vmdk-after-header "$W/t.vmdk" bad.vmdk vmdk 'overHead.*truncated' "$(hdr bad.vmdk)" \
	"vmdk sparse: header only, descriptor and grain directory cut off"
truncate -s 512 "$F"
fxc h06-vmdk-stream-cut "$W/s.vmdk" bad.vmdk vmdk 'overHead.*truncated' "$(hdr bad.vmdk)" \
	"vmdk streamOptimized: cut inside the embedded descriptor"
truncate -s 4096 "$F"
fxc h07-luks-magic-only "$W/t.luks" bad.luks luks 'truncated|header' "$(hdr bad.luks)" \
	"luks: only the 6-byte magic"
truncate -s 6 "$F"
fxc h08-luks-keyslots-cut "$W/t.luks" bad.luks luks 'key_slot|key material|truncated|payload' "$(hdr bad.luks)" \
	"luks: phdr whole, key material and payload cut off"
truncate -s 4096 "$F"
fxc h09-vpc-dynhdr-cut "$W/t.vhd" bad.vhd vpc 'dynamic header|footer|truncated|data_offset' "$(hdr bad.vhd)" \
	"vpc dynamic: the file ends inside the dynamic header"
truncate -s 700 "$F"
fxc h10-vhdx-ident-only "$W/t.vhdx" bad.vhdx vhdx 'header|truncated' "$(hdr bad.vhdx)" \
	"vhdx: the file identifier only (64 KiB)"
truncate -s 65536 "$F"
fxc h11-vdi-header-cut "$W/t.vdi" bad.vdi vdi 'header|truncated' "$(hdr bad.vdi)" \
	"vdi: the file ends inside the header, after the signature"
truncate -s 100 "$F"
fxc h12-parallels-header-cut "$W/t.hds" bad.hds parallels 'header|truncated' "$(hdr bad.hds)" \
	"parallels: the file ends inside the 64-byte header"
truncate -s 40 "$F"
fxc h13-bochs-header-cut "$W/t.bochs" bad.bochs bochs 'header|truncated' "$(hdr bad.bochs)" \
	"bochs: the file ends inside the 512-byte header"
truncate -s 100 "$F"
fxc h14-cloop-offsets-cut "$W/t.cloop" bad.cloop cloop 'offset|truncated|n_blocks' "$(hdr bad.cloop)" \
	"cloop: the file ends inside the block offsets"
truncate -s 140 "$F"
fxc h15-dmg-koly-cut "$W/t.dmg" bad.dmg dmg 'koly|trailer|truncated' "$(decl bad.dmg)" \
	"dmg: the koly trailer cut off (the file is raw to a probe)"
truncate -s $(( $(stat -c %s "$F") - 100 )) "$F"

# ---- vmdk descriptors: extents that are absurd or leave the pool ---------------
VD=bad.vmdk
desc() { # CREATETYPE EXTENT-LINES...: write $D/bad.vmdk
	local ct=$1; shift
	{ printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
	  printf 'createType="%s"\n\n# Extent description\n' "$ct"
	  printf '%s\n' "$@"; } >"$D/$VD"
}
flat() { truncate -s 1M "$D/$1"; }
fxc h16-vmdk-shadow-sparse - $VD vmdk 'extent|absolute' "$(hdr $VD)" \
	"descriptor names /etc/shadow as a SPARSE extent"
desc twoGbMaxExtentSparse 'RW 2048 SPARSE "/etc/shadow"'
fxc h17-vmdk-deep-dotdot - $VD vmdk 'extent|leaves|outside' "$(hdr $VD)" \
	"descriptor names ../../../../../../etc/shadow"
desc monolithicFlat 'RW 2048 FLAT "../../../../../../etc/shadow" 0'
fxc h18-vmdk-symlinked-dir - $VD vmdk 'extent|outside|leaves' "$(hdr $VD)" \
	"extent inside a directory that is a symlink out of the pool"
ln -s .. "$D/up"; desc monolithicFlat 'RW 2048 FLAT "up/secret" 0'
fxc h19-vmdk-dev-zero - $VD vmdk 'extent|absolute' "$(hdr $VD)" \
	"descriptor names /dev/zero (an endless device)"
desc monolithicFlat 'RW 2048 FLAT "/dev/zero" 0'
fxc h20-vmdk-proc-mem - $VD vmdk 'extent|absolute' "$(hdr $VD)" \
	"descriptor names /proc/self/mem"
desc monolithicFlat 'RW 2048 FLAT "/proc/self/mem" 0'
fxc h21-vmdk-flat-offset-huge - $VD vmdk 'extent|offset' "$(hdr $VD)" \
	"FLAT extent at sector offset 2^62"
flat f.vmdk; desc monolithicFlat "RW 2048 FLAT \"f.vmdk\" $((1 << 62))"
fxc h22-vmdk-sectors-0 - $VD vmdk 'extent|sectors' "$(hdr $VD)" \
	"extent of 0 sectors"
flat f.vmdk; desc monolithicFlat 'RW 0 FLAT "f.vmdk" 0'
fxc h23-vmdk-sectors-negative - $VD vmdk 'extent' "$(hdr $VD)" \
	"extent of -2048 sectors"
flat f.vmdk; desc monolithicFlat 'RW -2048 FLAT "f.vmdk" 0'
fxc h24-vmdk-type-unknown - $VD vmdk 'extent|type' "$(hdr $VD)" \
	"extent type VMFSRDM (not readable)"
flat f.vmdk; desc monolithicFlat 'RW 2048 VMFSRDM "f.vmdk" 0'
fxc h25-vmdk-name-600 - $VD vmdk 'extent|name|long' "$(hdr $VD)" \
	"extent name of 600 bytes"
desc monolithicFlat "RW 2048 FLAT \"$(printf 'x%.0s' $(seq 600))\" 0"
fxc h26-vmdk-name-empty - $VD vmdk 'extent|name' "$(hdr $VD)" \
	"extent name empty"
desc monolithicFlat 'RW 2048 FLAT "" 0'
fxc h27-vmdk-extent-dir - $VD vmdk 'extent|regular|directory' "$(hdr $VD)" \
	"extent is a directory"
mkdir "$D/dir.vmdk"; desc monolithicFlat 'RW 2048 FLAT "dir.vmdk" 0'
fxc h28-vmdk-sparse-is-qcow2 - $VD vmdk 'magic|KDMV|extent' "$(hdr $VD)" \
	"SPARSE extent that is a qcow2 image"
cp "$W/base.qcow2" "$D/s.vmdk"; desc twoGbMaxExtentSparse 'RW 8192 SPARSE "s.vmdk"'
fxc h29-vmdk-sparse-is-descriptor - $VD vmdk 'magic|KDMV|extent' "$(hdr $VD)" \
	"SPARSE extent that is another descriptor (nesting)"
flat f.vmdk; desc monolithicFlat 'RW 2048 FLAT "f.vmdk" 0'; cp "$D/$VD" "$D/inner.vmdk"
desc twoGbMaxExtentSparse 'RW 2048 SPARSE "inner.vmdk"'
fxc h30-vmdk-desc-2mib - $VD vmdk 'descriptor|size|large|long' "$(hdr $VD)" \
	"descriptor file of 2 MiB (its only extent line at the end)"
flat f.vmdk; desc monolithicFlat
{ for _ in $(seq 40000); do echo '# ........................................'; done
  echo 'RW 2048 FLAT "f.vmdk" 0'; } >>"$D/$VD"
fxc h31-vmdk-embedded-desc-huge "$W/t.vmdk" $VD vmdk 'descriptor|desc' "$(tol $VD)" \
	"sparse header: embedded descriptor of 2^40 sectors (QEMU reads 1 KiB at sector 1; never allocated)"
poke_le64 "$F" 36 $((1 << 40))
fxc h32-vmdk-embedded-desc-eof "$W/t.vmdk" $VD vmdk 'descriptor|desc' "$(tol $VD)" \
	"sparse header: embedded descriptor offset past the end of the file (ignored, as by QEMU)"
poke_le64 "$F" 28 $((1 << 40))

# ---- loops through foreign parents -------------------------------------------
fxc h33-loop-qcow-self "$W/t.qcow" bad.qcow qcow 'loop|bad\.qcow' "$(loop bad.qcow)" \
	"qcow v1 naming itself as its backing file"
(cd "$D" && qemu-img create -q -f qcow -u -b bad.qcow -F qcow new.qcow 4M && mv new.qcow bad.qcow)
fxc h34-loop-qed-self "$W/t.qed" bad.qed qed 'loop|bad\.qed' "$(loop bad.qed)" \
	"qed naming itself as its backing file"
qemu-img rebase -q -f qed -u -b bad.qed -F qed "$F"
fxc h35-loop-qed-qcow2 "$W/t.qed" bad.qed qed 'loop|bad\.qed|top\.qcow2' "$(loop bad.qed)" \
	"qed -> qcow2 -> qed (top.qcow2 reads bad.qed, which reads top.qcow2)"
qemu-img rebase -q -f qed -u -b top.qcow2 -F qcow2 "$F"
fxc h36-loop-qed-qcow-qcow2 "$W/t.qed" bad.qed qed 'loop|bad\.qed|a\.qcow|b\.qcow2' "$(loop bad.qed)" \
	"qed -> qcow v1 -> qcow2 -> qed (three formats)"
(cd "$D" && qemu-img create -q -f qcow2 -u -b bad.qed -F qed b.qcow2 4M &&
	qemu-img create -q -f qcow -u -b b.qcow2 -F qcow2 a.qcow 4M)
qemu-img rebase -q -f qed -u -b a.qcow -F qcow "$F"
fxc h37-loop-vmdk-pair - $VD vmdk 'loop|bad\.vmdk|b\.vmdk|CID' "$(loop $VD)" \
	"two vmdk files whose parentFileNameHint name each other"
for p in "$VD:b.vmdk" "b.vmdk:$VD"; do
	flat "f-${p%%:*}"
	printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=12345678\ncreateType="monolithicFlat"\nparentFileNameHint="%s"\nRW 2048 FLAT "f-%s" 0\n' \
		"${p#*:}" "${p%%:*}" >"$D/${p%%:*}"
done
fxc h38-loop-vhd-self - bad.vhd vpc 'loop|bad\.vhd' "$(loop bad.vhd)" \
	"differencing vhd whose parent locator names itself"
$GEN vpc-diff "$W/d0.vhd" "$F" bad.vhd
fxc h39-loop-vhd-pair - bad.vhd vpc 'loop|bad\.vhd|b\.vhd' "$(loop bad.vhd)" \
	"two differencing vhd files naming each other"
$GEN vpc-diff "$W/d0.vhd" "$F" b.vhd; $GEN vpc-diff "$W/d0.vhd" "$D/b.vhd" bad.vhd
fxc h40-loop-vhdx-self - bad.vhdx vhdx 'loop|bad\.vhdx' "$(loop bad.vhdx)" \
	"differencing vhdx whose parent locator names itself"
$GEN vhdx-diff "$W/d0.vhdx" "$F" bad.vhdx

# ---- huge table sizes ---------------------------------------------------------
fxc h41-qcow-l1-huge "$W/t.qcow" bad.qcow qcow 'size|l1|L1' "$(hdr bad.qcow)" \
	"qcow v1: 512-byte clusters, 64-entry L2 tables, 2^50 bytes (an L1 of 2^35 entries)"
poke_u8 "$F" 32 9; poke_u8 "$F" 33 6; poke_be64 "$F" 24 $((1 << 50))
fxc h42-qed-image-past-tables "$W/t.qed" bad.qed qed 'image_size|table' "$(hdr bad.qed)" \
	"qed: 4 KiB clusters, 1-cluster tables, image_size 2^50 (past what the tables map)"
poke_le32 "$F" 4 4096; poke_le32 "$F" 8 1; poke_le64 "$F" 48 $((1 << 50))
fxc h43-vmdk-grain-huge "$W/t.vmdk" $VD vmdk 'grainSize|grain' "$(hdr $VD)" \
	"vmdk sparse: grains of 2^40 sectors"
poke_le64 "$F" 20 $((1 << 40))
fxc h44-vmdk-gd-huge "$W/t.vmdk" $VD vmdk 'capacity|gdOffset|grain directory' "$(hdr $VD)" \
	"vmdk sparse: capacity 2^40 sectors with 4 KiB grains (a grain directory of 2^19 entries past the end)"
poke_le64 "$F" 12 $((1 << 40)); poke_le64 "$F" 20 8
fxc h45-vdi-blocks-huge "$W/t.vdi" bad.vdi vdi "field 'disk_size'" "$(hdr bad.vdi)" \
	"vdi: disk size 2^50 with 2^30 blocks in the image"
poke_le64 "$F" 368 $((1 << 50)); poke_le32 "$F" 384 $((1 << 30))
fxc h46-vmdk-gtes-2g "$W/t.vmdk" $VD vmdk 'numGTEsPerGT' "$(hdr $VD)" \
	"vmdk sparse: grain tables of 2^31 entries"
poke_le32 "$F" 44 $((1 << 31))
fxc h47-parallels-size-huge "$W/t.hds" bad.hds parallels 'bat_entries|nb_sectors|size|catalog' "$(tol bad.hds)" \
	"parallels: 2^40 sectors, a catalog for 4 MiB (the rest reads as unallocated, as in QEMU)"
poke_le64 "$F" 36 $((1 << 40))
fxc h48-cloop-blocks-huge "$W/t.cloop" bad.cloop cloop 'n_blocks|block|offset' "$(hdr bad.cloop)" \
	"cloop: 2^28 blocks of 64 KiB (offsets past the end)"
poke_be32 "$F" 132 $((1 << 28))

echo $(( $(cat "$OUT/COUNT" 2>/dev/null || echo 0) + n )) >"$OUT/COUNT"
