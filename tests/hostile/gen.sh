#!/usr/bin/env bash
# tests/hostile/gen.sh - generate the hostile-input corpus (B-01..B-31 of
# the reliability test plan) into OUTDIR.
#
#   tests/hostile/gen.sh OUTDIR
#
# Every fixture is a directory OUTDIR/<id>/ built from images that qemu-img
# made, then edited byte by byte (printf + dd, tests/hostile/poke.sh).  Most
# hold bad.qcow2 (the hostile image) and top.qcow2, an overlay that names
# bad.qcow2 WITH a recorded format, so the header parser runs both through
# probing (info/check bad.qcow2) and through a declared format (map/plan of
# top.qcow2).  OUTDIR/secret stands for a host file (/etc/shadow) that
# hostile names point at: it must never be opened.
#
# OUTDIR/MANIFEST has one line per fixture, fields separated by TABs:
#   id | field regex | expectations | allowed extra opens | description
# expectations: space-separated CMD:FILE=RC[,RC...] with CMD one of info,
# map, check, tree, plan, recover, users; FILE relative to the fixture dir
# ("." for the dir).  The runner is tests/it/hostile.sh, which documents the
# exit-code policy.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/poke.sh"
OUT=${1:?usage: gen.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SECRET=$OUT/secret
printf 'root:SECRET-HASH:19000:0:99999:7:::\n' >"$SECRET"
: >"$OUT/MANIFEST"
W=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-hostile-gen.XXXXXX")
trap 'rm -rf "$W"' EXIT

q() { qemu-img create -q -f qcow2 "$@"; }
io() { qemu-io -f qcow2 "$@" >/dev/null; }

# ---- templates (qemu-img made; never edited in place) ----------------------
# g64: 64 MiB, 64 KiB clusters, data at 0..128K and 32M.
q "$W/g64" 64M; io "$W/g64" -c 'write -P 0xaa 0 128k' -c 'write -P 0xbb 32M 64k'
# g4k: 4 MiB, 4 KiB clusters (small tables for snapshot/compressed cases)
q -o cluster_size=4096 "$W/g4k" 4M; io "$W/g4k" -c 'write -P 0xaa 0 16k' -c 'write -P 0xbb 1M 4k'
# snapshots
cp "$W/g4k" "$W/snap"; qemu-img snapshot -c snap-one "$W/snap"
io "$W/snap" -c 'write -P 0xcc 0 4k'
# compressed (4 KiB clusters)
{ yes 'imgraph hostile ' | head -c 65536; } >"$W/raw64k"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$W/raw64k" "$W/comp"
# extended L2 (16 KiB clusters)
q -o cluster_size=16384,extended_l2=on "$W/el2" 4M; io "$W/el2" -c 'write -P 0xdd 0 4k'
# lazy refcounts + dirty bit left by a killed writer
q -o cluster_size=4096,lazy_refcounts=on "$W/dirty" 4M
io "$W/dirty" -c 'write -P 0xee 0 8k' -c 'sigraise 9' 2>/dev/null || true

L1=$(peek_be "$W/g64" $Q_L1_OFF 8)
REFT=$(peek_be "$W/g64" $Q_REFT_OFF 8)
RB=$(q_rb_of "$W/g64")
L2=$(q_l2_of "$W/g64")
DATA=$(( $(peek_be "$W/g64" "$L2" 8) & 0x00fffffffffffe00 ))

n=0
# fx ID TEMPLATE FIELD EXPECT [ALLOW] DESC: fixture dir with bad.qcow2 (a copy
# of TEMPLATE, or an empty file when TEMPLATE is -) and top.qcow2 naming it
# as qcow2.  Sets D (dir) and F (bad.qcow2) for the caller's edits.
fx() {
	local id=$1 tmpl=$2 field=$3 expect=$4 allow=$5 desc=$6
	D=$OUT/$id F=$OUT/$id/bad.qcow2
	mkdir -p "$D"
	if [ "$tmpl" = - ]; then : >"$F"; else cp "$tmpl" "$F"; fi
	(cd "$D" && q -u -b bad.qcow2 -F qcow2 top.qcow2 64M)
	printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$field" "$expect" "$allow" "$desc" >>"$OUT/MANIFEST"
	n=$((n + 1))
}
# manifest-only registration for fixtures built by hand
reg() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$OUT/MANIFEST"; n=$((n + 1)); }

# Expectation sets (see tests/it/hostile.sh for the policy):
HDR="info:bad.qcow2=1 map:top.qcow2=1 check:bad.qcow2=1 tree:.=0 plan:top.qcow2=1,3"
# header broken so that it no longer probes as qcow2: probing says raw
NOPROBE="info:bad.qcow2=0 map:top.qcow2=1 check:bad.qcow2=0,1,63 tree:.=0 plan:top.qcow2=1,3"
# metadata below the header: info may work, a map must fail, check = 2
DATA2="info:bad.qcow2=0,1 map:top.qcow2=1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=0,1,3"
# corruption only a refcount pass sees: map may work
REF2="info:bad.qcow2=0,1 map:top.qcow2=0,1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=0,1,3"
# a broken chain below top
CHAIN="info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3"

# ---- B-01 magic and version ------------------------------------------------
fx b01-magic "$W/g64" 'magic|not.*qcow2|format' "$NOPROBE" "" "bad magic"
poke_str "$F" $Q_MAGIC 'QFI?'
# version 0 probes as raw (as in QEMU); 1 (QEMU's qcow) and >= 4 (QEMU's
# qcow2, which refuses them) must not: called raw, a commit could write over
# a header that QEMU reads
fx b01-version-0 "$W/g64" 'version' "$NOPROBE" "" "version 0"
poke_be32 "$F" $Q_VERSION 0
for v in 1 4 255; do
	fx b01-version-$v "$W/g64" 'version' "$HDR" "" "version $v"
	poke_be32 "$F" $Q_VERSION $v
done

# ---- B-02 cluster_bits -------------------------------------------------------
for cb in 0 8 22 31 63; do
	fx b02-cluster-bits-$cb "$W/g64" 'cluster.?bits|cluster.?size' "$HDR" "" "cluster_bits $cb"
	poke_be32 "$F" $Q_CLUSTER_BITS $cb
done
fx b02-extl2-cluster-bits-13 "$W/el2" 'cluster.?bits|cluster.?size|extended' "$HDR" "" \
	"extended L2 with 8 KiB clusters (needs >= 16 KiB)"
poke_be32 "$F" $Q_CLUSTER_BITS 13

# ---- B-03 header_length ------------------------------------------------------
for hl in 100 105 0x10008 0xffffffff; do
	fx b03-header-length-$hl "$W/g64" 'header.?length' "$HDR" "" "header_length $hl"
	poke_be32 "$F" $Q_HEADER_LEN $hl
done

# ---- B-04 backing name offset/size -----------------------------------------
# g64 has no backing name: give it one first, then break offset or size.
bkname() { poke_str "$1" 1024 "base.qcow2"; poke_be64 "$1" $Q_BACKING_OFF 1024; poke_be32 "$1" $Q_BACKING_SIZE 10; }
fx b04-backing-offset-past-cluster "$W/g64" 'backing' "$HDR" "" "backing name outside cluster 0"
bkname "$F"; poke_be64 "$F" $Q_BACKING_OFF 65540
fx b04-backing-offset-in-header "$W/g64" 'backing' "$HDR" "" "backing name overlapping the header"
bkname "$F"; poke_be64 "$F" $Q_BACKING_OFF 16
fx b04-backing-offset-past-eof "$W/g64" 'backing' "$HDR" "" "backing name offset 1 TiB"
bkname "$F"; poke_be64 "$F" $Q_BACKING_OFF $((1 << 40))
fx b04-backing-size-1024 "$W/g64" 'backing' "$HDR" "" "backing name 1024 bytes (> 1023)"
bkname "$F"; poke_be32 "$F" $Q_BACKING_SIZE 1024
fx b04-backing-size-huge "$W/g64" 'backing' "$HDR" "" "backing name size 0xffffffff"
bkname "$F"; poke_be32 "$F" $Q_BACKING_SIZE 0xffffffff
fx b04-backing-offset-overflow "$W/g64" 'backing' "$HDR" "" "backing offset+size wraps 2^64"
bkname "$F"; poke_be64 "$F" $Q_BACKING_OFF 0xfffffffffffffff8; poke_be32 "$F" $Q_BACKING_SIZE 16

# ---- B-05 backing name contents ---------------------------------------------
fx b05-backing-nul "$W/g64" 'backing' "$HDR" "" "backing name with a NUL byte"
bkname "$F"; poke_raw "$F" 1028 '\000'
fx b05-backing-newline "$W/g64" 'backing' "$HDR" "" "backing name with a newline"
bkname "$F"; poke_raw "$F" 1028 '\n'
# size 0 with an offset: the spec says "no backing file" -> must work
fx b05-backing-size-0 "$W/g64" 'backing' \
	"info:bad.qcow2=0 map:top.qcow2=0 check:bad.qcow2=0 tree:.=0 plan:top.qcow2=0,3" "" \
	"backing offset set, size 0 (= no backing file)"
bkname "$F"; poke_be32 "$F" $Q_BACKING_SIZE 0

# ---- B-06 header extensions ----------------------------------------------------
# g64 has the feature-name table at $Q_EXT0; the end marker follows it.
fx b06-ext-length-huge "$W/g64" 'extension' "$HDR" "" "extension length 0x7fffffff"
poke_be32 "$F" $((Q_EXT0 + Q_EXT_LEN)) 0x7fffffff
fx b06-ext-past-cluster "$W/g64" 'extension' "$HDR" "" "extension running past cluster 0"
poke_be32 "$F" $((Q_EXT0 + Q_EXT_LEN)) 65520
fx b06-ext-many "$W/g64" 'extension' "$HDR" "" "5000 unknown extensions (iteration cap)"
{ for i in $(seq 1 5000); do printf '\x00\x00\x10\x01\x00\x00\x00\x00'; done; printf '\0\0\0\0\0\0\0\0'; } \
	| dd of="$F" bs=1 seek=$Q_EXT0 conv=notrunc status=none
fx b06-ext-dup-backing-fmt "$W/g64" 'backing.?f(or)?ma?t|extension|duplicate' "$HDR" "" \
	"two backing-format extensions"
bkname "$F"
poke_raw "$F" $Q_EXT0 '\xe2\x79\x2a\xca\x00\x00\x00\x05qcow2\x00\x00\x00\xe2\x79\x2a\xca\x00\x00\x00\x03raw\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
fx b06-backing-fmt-unknown "$W/g64" 'foo|format' \
	"info:bad.qcow2=0,1 map:bad.qcow2=1 tree:.=0 plan:top.qcow2=0,1,3" "" \
	"recorded backing format 'foo' (no probing fallback, iotest 114)"
bkname "$F"
poke_raw "$F" $Q_EXT0 '\xe2\x79\x2a\xca\x00\x00\x00\x03foo\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
: >"$D/base.qcow2"
fx b06-backing-fmt-long "$W/g64" 'format|backing' \
	"info:bad.qcow2=0,1 map:bad.qcow2=1 tree:.=0 plan:top.qcow2=1,3" "" \
	"recorded backing format of 40 bytes"
bkname "$F"
poke_raw "$F" $Q_EXT0 '\xe2\x79\x2a\xca\x00\x00\x00\x28qcow2qcow2qcow2qcow2qcow2qcow2qcow2qcow2\x00\x00\x00\x00\x00\x00\x00\x00'

# ---- B-07 feature bits -------------------------------------------------------------
fx b07-incompat-unknown "$W/g64" 'incompatible|feature|bit' \
	"info:bad.qcow2=0,1 map:top.qcow2=1 check:bad.qcow2=1 tree:.=0 plan:top.qcow2=1,3" "" \
	"unknown incompatible bit 60"
poke_be64 "$F" $Q_INCOMPAT $((1 << 60))
fx b07-compression-type-unknown "$W/g64" 'compression' "$HDR" "" \
	"compression bit with compression_type 7"
poke_be64 "$F" $Q_INCOMPAT 8; poke_be32 "$F" $Q_HEADER_LEN $Q_EXT0; poke_u8 "$F" $Q_COMPRESSION 7
fx b07-crypt-method-9 "$W/g64" 'crypt|encrypt' "$HDR" "" "crypt_method 9"
poke_be32 "$F" $Q_CRYPT 9
# corrupt and dirty: reading is legal, writing (plan) is refused
fx b07-corrupt "$W/g64" 'corrupt' \
	"info:bad.qcow2=0 map:top.qcow2=0 check:bad.qcow2=0,2 tree:.=0 plan:top.qcow2=3" "" \
	"corrupt bit set (read-only use is legal, writes refused)"
poke_be64 "$F" $Q_INCOMPAT 2
fx b07-dirty "$W/dirty" 'dirty' \
	"info:bad.qcow2=0 map:top.qcow2=0 check:bad.qcow2=0,2,3 tree:.=0 plan:top.qcow2=3" "" \
	"dirty bit from a killed lazy-refcounts writer"

# ---- B-08 L1 table -------------------------------------------------------------------
fx b08-l1-size-huge "$W/g64" 'l1' "$HDR" "" "l1_size 2^25 (256 MiB table)"
poke_be32 "$F" $Q_L1_SIZE $((1 << 25))
fx b08-l1-size-too-small "$W/g64" 'l1' "$HDR" "" "l1_size 0 for 64 MiB"
poke_be32 "$F" $Q_L1_SIZE 0
fx b08-l1-offset-0 "$W/g64" 'l1' "$HDR" "" "L1 at offset 0 (the header)"
poke_be64 "$F" $Q_L1_OFF 0
fx b08-l1-offset-unaligned "$W/g64" 'l1' "$HDR" "" "L1 offset not cluster aligned"
poke_be64 "$F" $Q_L1_OFF $((L1 + 8))
fx b08-l1-past-eof "$W/g64" 'l1' \
	"info:bad.qcow2=0,1 map:top.qcow2=1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=1,3" "" \
	"L1 offset 2^50, past EOF (qemu-img info accepts it, E1)"
poke_be64 "$F" $Q_L1_OFF $((1 << 50))
fx b08-l1-overlaps-reftable "$W/g64" 'l1|overlap|refcount' "$DATA2" "" "L1 on the refcount table"
poke_be64 "$F" $Q_L1_OFF "$REFT"

# ---- B-09 refcount table ------------------------------------------------------------
fx b09-reftable-clusters-0 "$W/g64" 'refcount' "$REF2" "" "refcount_table_clusters 0"
poke_be32 "$F" $Q_REFT_CLUSTERS 0
fx b09-reftable-huge "$W/g64" 'refcount' "$REF2" "" "refcount table of 64 GiB"
poke_be32 "$F" $Q_REFT_CLUSTERS 0x100000
fx b09-reftable-unaligned "$W/g64" 'refcount' "$REF2" "" "refcount table offset unaligned"
poke_be64 "$F" $Q_REFT_OFF $((REFT + 512))
fx b09-reftable-on-header "$W/g64" 'refcount|overlap' "$REF2" "" "refcount table at offset 0"
poke_be64 "$F" $Q_REFT_OFF 0

# ---- B-10 refcount_order ------------------------------------------------------------
fx b10-refcount-order-7 "$W/g64" 'refcount' "$HDR" "" "refcount_order 7 (128-bit)"
poke_be32 "$F" $Q_REFCOUNT_ORDER 7
fx b10-refcount-order-huge "$W/g64" 'refcount' "$HDR" "" "refcount_order 0xffffffff"
poke_be32 "$F" $Q_REFCOUNT_ORDER 0xffffffff

# ---- B-11 snapshots -----------------------------------------------------------------
SNAPOK="info:bad.qcow2=0,1 map:top.qcow2=0,1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=1,3"
SNAP=$(peek_be "$W/snap" $Q_SNAP_OFF 8)
fx b11-nb-snapshots-huge "$W/snap" 'snapshot' "$SNAPOK" "" "nb_snapshots 0x7fffffff"
poke_be32 "$F" $Q_NB_SNAP 0x7fffffff
fx b11-snapshots-unaligned "$W/snap" 'snapshot' "$SNAPOK" "" "snapshot table offset unaligned"
poke_be64 "$F" $Q_SNAP_OFF $((SNAP + 3))
fx b11-snapshots-past-eof "$W/snap" 'snapshot' "$SNAPOK" "" "snapshot table at 2^56"
poke_be64 "$F" $Q_SNAP_OFF $((1 << 56))
fx b11-snapshot-l1-huge "$W/snap" 'snapshot|l1' "$SNAPOK" "" "snapshot L1 size 0xffffffff"
poke_be32 "$F" $((SNAP + 8)) 0xffffffff
fx b11-snapshot-name-huge "$W/snap" 'snapshot' "$SNAPOK" "" "snapshot name_size 0xffff past EOF"
poke_be16 "$F" $((SNAP + 14)) 0xffff
fx b11-snapshot-extra-huge "$W/snap" 'snapshot' "$SNAPOK" "" "snapshot extra_data_size 0xffffffff"
poke_be32 "$F" $((SNAP + 36)) 0xffffffff

# ---- B-12 virtual size ----------------------------------------------------------------
fx b12-size-2p62 "$W/g64" 'size' "$HDR" "" "virtual size 2^62 (> 2^61)"
poke_be64 "$F" $Q_SIZE $((1 << 62))
fx b12-size-max "$W/g64" 'size' "$HDR" "" "virtual size 2^64-1"
poke_be64 "$F" $Q_SIZE 0xffffffffffffffff

# ---- B-13 L1 entries ------------------------------------------------------------------
fx b13-l1e-reserved "$W/g64" 'l1|reserved' "$DATA2" "" "L1[0] with reserved bits"
poke_be64 "$F" "$L1" $((0x8000000000000000 | L2 | 0x0100000000000000))
fx b13-l1e-unaligned "$W/g64" 'l1|l2|align' "$DATA2" "" "L1[0] -> unaligned L2 offset"
poke_be64 "$F" "$L1" $((0x8000000000000000 | (L2 + 512)))
fx b13-l1e-on-refblock "$W/g64" 'l1|l2|overlap|metadata|refcount' "$REF2" "" "L1[0] -> the refcount block"
poke_be64 "$F" "$L1" $((0x8000000000000000 | RB))
fx b13-l1e-on-l1 "$W/g64" 'l1|l2|overlap|metadata' "$REF2" "" "L1[0] -> the L1 table itself"
poke_be64 "$F" "$L1" $((0x8000000000000000 | L1))
fx b13-l1e-past-eof "$W/g64" 'l1|l2|eof|truncat|beyond|past' "$DATA2" "" "L1[0] -> 2^40"
poke_be64 "$F" "$L1" $((0x8000000000000000 | (1 << 40)))

# ---- B-14 L2 entries ------------------------------------------------------------------
fx b14-l2e-unaligned "$W/g64" 'l2|align' "$DATA2" "" "L2[0] data offset unaligned"
poke_be64 "$F" "$L2" $((0x8000000000000000 | (DATA + 512)))
fx b14-l2e-past-eof "$W/g64" 'l2|eof|past|beyond' "$REF2" "" "L2[0] data cluster at 2^45"
poke_be64 "$F" "$L2" $((0x8000000000000000 | (1 << 45)))
fx b14-l2e-on-l1 "$W/g64" 'l2|overlap|metadata|refcount' "$REF2" "" "L2[0] data cluster = the L1 table"
poke_be64 "$F" "$L2" $((0x8000000000000000 | L1))
fx b14-l2e-reserved "$W/g64" 'l2|reserved' "$DATA2" "" "L2[0] with reserved bits 56..61"
poke_be64 "$F" "$L2" $((0x8000000000000000 | 0x0f00000000000000 | DATA))
fx b14-zero-unaligned "$W/g64" 'l2|align|zero' "$DATA2" "" "preallocated zero entry, unaligned"
poke_be64 "$F" "$L2" $((0x8000000000000000 | (DATA + 1024) | 1))
COMP_L2=$(q_l2_of "$W/comp")
fx b14-compressed-past-eof "$W/comp" 'compress|l2|eof|past|beyond' "$REF2" "" \
	"compressed descriptor past EOF"
poke_be64 "$F" "$COMP_L2" $((0x4000000000000000 | (1 << 40)))
fx b14-compressed-huge-count "$W/comp" 'compress|l2|eof|past|beyond|size' "$REF2" "" \
	"compressed descriptor with max sector count at the end of the file"
poke_be64 "$F" "$COMP_L2" $((0x4000000000000000 | (15 << 58) | ($(stat -c %s "$F") - 100)))

# ---- B-15 two L2 entries share one host cluster (COPIED lie) -------------------------
fx b15-shared-cluster "$W/g64" 'refcount|reference|copied|shared|l2' "$REF2" "" \
	"L2[0] and L2[1] -> one cluster, refcount 1, both COPIED"
poke_be64 "$F" $((L2 + 8)) "$(peek_be "$F" "$L2" 8)"

# ---- B-16 refcount blocks --------------------------------------------------------------
fx b16-refblock-at-0 "$W/g64" 'refcount' "$REF2" "" "reftable[0] = 0 (refblock missing)"
poke_be64 "$F" "$REFT" 0
fx b16-refblock-unaligned "$W/g64" 'refcount|align' "$REF2" "" "refblock offset unaligned"
poke_be64 "$F" "$REFT" $((RB + 512))
fx b16-refblock-past-eof "$W/g64" 'refcount|eof|past|beyond' "$REF2" "" "refblock at 2^40"
poke_be64 "$F" "$REFT" $((1 << 40))
fx b16-refblock-on-l1 "$W/g64" 'refcount|overlap' "$REF2" "" "refblock = the L1 table"
poke_be64 "$F" "$REFT" "$L1"

# ---- B-17 truncation -------------------------------------------------------------------
fx b17-truncated-header "$W/g64" 'header|truncat|short|eof' "$HDR" "" "file cut at 60 bytes"
truncate -s 60 "$F"
fx b17-truncated-in-l1 "$W/g64" 'l1|truncat|short|eof' \
	"info:bad.qcow2=0,1 map:top.qcow2=1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=1,3" "" \
	"file cut in the middle of the L1 table"
truncate -s $((L1 + 4)) "$F"
fx b17-truncated-in-l2 "$W/g64" 'l2|truncat|short|eof' "$DATA2" "" "file cut in the middle of an L2 table"
truncate -s $((L2 + 4096)) "$F"
fx b17-truncated-in-refblock "$W/g64" 'refcount|truncat|short|eof|l1' \
	"info:bad.qcow2=0,1 map:top.qcow2=1 check:bad.qcow2=1,2 tree:.=0 plan:top.qcow2=1,3" "" \
	"file cut in the middle of the refcount block"
truncate -s $((RB + 100)) "$F"

# ---- B-18 huge sparse image: time must not depend on the virtual size -----------------
D=$OUT/b18-sparse-1p; mkdir -p "$D"
q "$D/bad.qcow2" 1P
io "$D/bad.qcow2" -c 'write -P 0x18 0 64k' -c 'write -P 0x19 512T 64k' -c 'write -P 0x1a 1023T 4k'
(cd "$D" && q -b bad.qcow2 -F qcow2 top.qcow2 1P)
reg b18-sparse-1p 'size' "info:bad.qcow2=0 map:top.qcow2=0 check:bad.qcow2=0 tree:.=0 plan:top.qcow2=0,3" "" \
	"1 PiB virtual, 3 clusters written (16 MiB L1)"

# ---- B-19 compressed clusters: zlib bomb and garbage ------------------------------------
# A raw deflate stream of 1 MiB of zeros (~1 KiB): gzip output without its
# 10-byte header and 8-byte trailer.  Appended to the file; L2[0] points at it
# with 16 sectors.  Reading must stop at one cluster.
bomb_tail() { # FILE STREAMFILE
	local f=$1 s=$2 end
	end=$(stat -c %s "$f"); end=$(( (end + 511) / 512 * 512 ))
	truncate -s "$end" "$f"; cat "$s" >>"$f"; truncate -s $((end + 8192)) "$f"
	poke_be64 "$f" "$COMP_L2" $((0x4000000000000000 | (15 << 58) | end))
}
head -c 1048576 /dev/zero | gzip -9 -n -c | tail -c +11 | head -c -8 >"$W/bomb"
fx b19-zlib-bomb "$W/comp" 'compress|inflate|zlib|size' \
	"info:bad.qcow2=0 map:top.qcow2=0,1 check:bad.qcow2=0,1,2 tree:.=0 plan:top.qcow2=0,3" "" \
	"compressed cluster inflating to 1 MiB (cluster 4 KiB)"
bomb_tail "$F" "$W/bomb"
head -c 4096 /dev/urandom >"$W/garbage"
fx b19-zlib-garbage "$W/comp" 'compress|inflate|zlib' \
	"info:bad.qcow2=0 map:top.qcow2=0,1 check:bad.qcow2=0,1,2 tree:.=0 plan:top.qcow2=0,3" "" \
	"compressed cluster holding random bytes"
bomb_tail "$F" "$W/garbage"

# qnamed FILE NAME FMT SIZE: overlay whose backing name is NAME, written
# after creation (qemu-img refuses to create some hostile names, e.g. itself).
qnamed() {
	local ph off
	ph=$(printf '%*s' ${#2} '' | tr ' ' X)
	q -u -b "$ph" -F "$3" "$1" "$4"
	off=$(peek_be "$1" $Q_BACKING_OFF 8)
	poke_str "$1" "$off" "$2"
}

# drop_exts FILE: end the extension list at $Q_EXT0, which drops the recorded
# backing format (qemu-img 7.2 refuses to create an overlay without one).
drop_exts() { poke_be64 "$1" $Q_EXT0 0; }

# ---- B-20 loops --------------------------------------------------------------------------
LOOP="info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3"
D=$OUT/b20-loop-self; mkdir -p "$D"; (cd "$D" && qnamed top.qcow2 top.qcow2 qcow2 1M)
reg b20-loop-self 'loop|cycle' "$LOOP" "" "top names itself"
# self loop whose recorded format is unknown (fz_chain found a use-after-free
# in the pool scan with this shape): the ext at $Q_EXT0 is the backing format
D=$OUT/b20-loop-self-unknown-fmt; mkdir -p "$D"; (cd "$D" && qnamed top.qcow2 top.qcow2 qcow2 1M)
[ "$(dd if="$D/top.qcow2" bs=1 skip=120 count=5 status=none)" = qcow2 ] && poke_str "$D/top.qcow2" 120 qcow1
reg b20-loop-self-unknown-fmt 'loop|cycle|qcow1|format' \
	"info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3" "" "top names itself, format 'qcow1'"
D=$OUT/b20-loop-2cycle; mkdir -p "$D"
(cd "$D" && q -u -b b.qcow2 -F qcow2 a.qcow2 1M && q -u -b a.qcow2 -F qcow2 b.qcow2 1M &&
	q -u -b a.qcow2 -F qcow2 top.qcow2 1M)
reg b20-loop-2cycle 'loop|cycle' "$LOOP" "" "top -> a -> b -> a"
D=$OUT/b20-loop-symlink; mkdir -p "$D"
(cd "$D" && q -u -b link.qcow2 -F qcow2 top.qcow2 1M && ln -s top.qcow2 link.qcow2)
reg b20-loop-symlink 'loop|cycle' "$LOOP" "" "top -> symlink to top"
D=$OUT/b20-loop-hardlink; mkdir -p "$D"
(cd "$D" && q -u -b hard.qcow2 -F qcow2 top.qcow2 1M && ln top.qcow2 hard.qcow2)
reg b20-loop-hardlink 'loop|cycle' "$LOOP" "" "top -> hardlink of top (same dev:ino)"
D=$OUT/b20-loop-dotdot; mkdir -p "$D/sub"
(cd "$D" && q -u -b sub/../top.qcow2 -F qcow2 top.qcow2 1M)
reg b20-loop-dotdot 'loop|cycle' "$LOOP" "" "top -> sub/../top.qcow2"

# ---- B-21 deep chain (cap 256): 300 layers, made by copying one template -------------------
D=$OUT/b21-deep-300; mkdir -p "$D"
(cd "$D" && q -o cluster_size=512 l0000.qcow2 1M && q -o cluster_size=512 -u -b l0000.qcow2 -F qcow2 "$W/layer" 1M)
off=$(peek_be "$W/layer" $Q_BACKING_OFF 8)
for i in $(seq 1 300); do
	f=$D/$(printf 'l%04d.qcow2' "$i")
	cp "$W/layer" "$f"
	poke_str "$f" "$off" "$(printf 'l%04d' $((i - 1)))"
done
mv "$D/l0300.qcow2" "$D/top.qcow2"
reg b21-deep-300 'depth|deep|chain|256' "info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3" "" \
	"backing chain of 301 images (cap 256)"

# ---- B-22 non-regular backing targets ------------------------------------------------------
NONREG="info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3"
D=$OUT/b22-fifo; mkdir -p "$D"; mkfifo "$D/fifo"
(cd "$D" && q -u -b fifo -F raw top.qcow2 1M)
reg b22-fifo 'regular|fifo|type' "$NONREG" "" "backing file is a FIFO (must not block)"
D=$OUT/b22-fifo-probe; mkdir -p "$D"; mkfifo "$D/fifo"
(cd "$D" && q -u -b fifo -F raw top.qcow2 1M && drop_exts top.qcow2)
reg b22-fifo-probe 'regular|fifo|type|format' "$NONREG" "" "backing FIFO without a format (probe must not read it)"
D=$OUT/b22-directory; mkdir -p "$D/dir"
(cd "$D" && q -u -b dir -F qcow2 top.qcow2 1M)
reg b22-directory 'regular|director|type' "$NONREG" "" "backing file is a directory"
D=$OUT/b22-chardev; mkdir -p "$D"
(cd "$D" && q -u -b /dev/zero -F raw top.qcow2 1M)
reg b22-chardev 'regular|device|type' "$NONREG" "/dev/zero" "backing file is /dev/zero"
D=$OUT/b22-proc-fd; mkdir -p "$D"
(cd "$D" && q -u -b /proc/self/fd/0 -F raw top.qcow2 1M)
reg b22-proc-fd 'regular|device|type|proc' "$NONREG" "/proc/self/fd/0" "backing file /proc/self/fd/0"
if command -v python3 >/dev/null 2>&1; then
	D=$OUT/b22-socket; mkdir -p "$D"
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$D/sock"
	(cd "$D" && q -u -b sock -F raw top.qcow2 1M)
	reg b22-socket 'regular|socket|type|no such device' "$NONREG" "" "backing file is a unix socket"
fi

# ---- B-23 protocol and json: names ------------------------------------------------------------
PROTO="info:top.qcow2=0 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3"
mkproto() { # ID NAME DESC
	local d=$OUT/$1; mkdir -p "$d"
	(cd "$d" && q -u -b "$2" -F qcow2 top.qcow2 1M)
	reg "$1" 'json|protocol|external|not.*(opened|follow|supported)' "$PROTO" "" "$3"
}
mkproto b23-json "json:{\"file\":{\"driver\":\"file\",\"filename\":\"$SECRET\"}}" "json: name naming the secret"
mkproto b23-nbd "nbd://127.0.0.1:10809/export" "nbd:// name"
mkproto b23-nbd-unix "nbd+unix:///export?socket=/run/x.sock" "nbd+unix name"
mkproto b23-https "https://example.invalid/base.qcow2" "https:// name"
mkproto b23-ssh "ssh://root@example.invalid/etc/shadow" "ssh:// name"
mkproto b23-file-colon "file:$SECRET" "file: protocol prefix naming the secret"

# ---- B-24 external data file --------------------------------------------------------------------
D=$OUT/b24-data-file; mkdir -p "$D"
q -o data_file="$SECRET" "$W/ext" 1M 2>/dev/null || true
cp "$W/ext" "$D/bad.qcow2"
(cd "$D" && q -u -b bad.qcow2 -F qcow2 top.qcow2 1M)
reg b24-data-file 'data.?file|external' "info:bad.qcow2=0,1 map:top.qcow2=0,1 tree:.=0 plan:top.qcow2=1,3" "" \
	"external data file naming the secret (CVE-2024-32498)"
D=$OUT/b24-data-file-bit-only; mkdir -p "$D"
cp "$W/g64" "$D/bad.qcow2"; poke_be64 "$D/bad.qcow2" $Q_INCOMPAT 4
(cd "$D" && q -u -b bad.qcow2 -F qcow2 top.qcow2 64M)
reg b24-data-file-bit-only 'data.?file|external' "info:bad.qcow2=0,1 map:top.qcow2=1 tree:.=0 plan:top.qcow2=1,3" "" \
	"data-file bit without the extension"

# ---- B-25 recorded backing format contradicts the file; missing targets ----------------------------
D=$OUT/b25-says-qcow2-is-raw; mkdir -p "$D"
head -c 1048576 /dev/zero >"$D/base.raw"
(cd "$D" && q -u -b base.raw -F qcow2 top.qcow2 1M)
reg b25-says-qcow2-is-raw 'magic|qcow2|format' "$CHAIN" "" "backing format qcow2 recorded, target is raw"
D=$OUT/b25-missing; mkdir -p "$D"
(cd "$D" && q -u -b gone.qcow2 -F qcow2 top.qcow2 1M)
reg b25-missing 'gone|no such|missing|not found|cannot open' "$CHAIN" "" "backing file does not exist (069)"
D=$OUT/b25-dangling-symlink; mkdir -p "$D"
(cd "$D" && q -u -b link.qcow2 -F qcow2 top.qcow2 1M && ln -s nowhere.qcow2 link.qcow2)
reg b25-dangling-symlink 'link|no such|missing|not found|cannot open' "$CHAIN" "" "backing is a dangling symlink"
D=$OUT/b25-traversal; mkdir -p "$D"
(cd "$D" && q -u -b ../../../../../../../../../etc/shadow-imgraph-none -F qcow2 top.qcow2 1M)
# Backing files outside the pool are followed (imgraph(1)), so the open attempt
# of the resolved path is allowed; it must fail cleanly.
reg b25-traversal 'no such|missing|not found|cannot open|shadow' "$CHAIN" "/etc/shadow-imgraph-none" "../ traversal to a missing host file"

# ---- B-26 raw base whose block 0 is a qcow2 header, format recorded as raw ------------------------
evil_raw() { # FILE: 1 MiB raw file whose first sector is a qcow2 header naming SECRET
	q -u -b "$SECRET" -F raw "$W/evilhdr" 1M
	head -c 1048576 /dev/zero >"$1"
	dd if="$W/evilhdr" of="$1" bs=65536 count=1 conv=notrunc status=none
}
D=$OUT/b26-raw-with-qcow2-header; mkdir -p "$D"
evil_raw "$D/base.raw"
(cd "$D" && q -b base.raw -F raw top.qcow2 1M)
reg b26-raw-with-qcow2-header 'raw|probe|qcow2' \
	"info:top.qcow2=0 map:top.qcow2=0 tree:.=0 plan:top.qcow2=0,3" "" \
	"raw base carrying a qcow2 header that names the secret; recorded raw"

# ---- B-27 probing trap --------------------------------------------------------------------------
D=$OUT/b27-probe-by-reference; mkdir -p "$D"
evil_raw "$D/base.img"
(cd "$D" && q -u -b base.img -F raw top.qcow2 1M && drop_exts top.qcow2)
reg b27-probe-by-reference 'probe|format|recorded|unsafe' \
	"info:top.qcow2=0 map:top.qcow2=0,1 tree:.=0 plan:top.qcow2=1,3" "" \
	"backing without a recorded format; target is raw with a qcow2 header naming the secret"
D=$OUT/b27-probe-direct; mkdir -p "$D"
evil_raw "$D/disk.img"
reg b27-probe-direct 'probe|format|recorded|unsafe' \
	"info:disk.img=0 map:disk.img=0,1 check:disk.img=0,1,2,3,63 tree:.=0" "" \
	"raw disk given on the command line; its qcow2 header names the secret (E2)"

# ---- B-28..B-30 foreign formats: nothing outside the pool is followed ----------------------------------
# B-28: the vmdk driver refuses extents outside the descriptor's directory
# before opening anything (more in gen_foreign.sh); B-29/B-30: formats we do
# not parse are treated as raw.
D=$OUT/b28-vmdk-extent; mkdir -p "$D"
cat >"$D/disk.vmdk" <<EOF
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"
RW 2048 FLAT "$SECRET" 0
RW 2048 FLAT "../../../etc/shadow" 0
ddb.virtualHWVersion = "4"
EOF
reg b28-vmdk-extent 'extent' "info:disk.vmdk=1 map:disk.vmdk=1 tree:.=0" "" \
	"VMDK descriptor with absolute and ../ extents (CVE-2022-47951): refused, never opened"
D=$OUT/b29-vhd; mkdir -p "$D"
qemu-img create -q -f vpc "$D/disk.vhd" 4M
reg b29-vhd 'raw' "info:disk.vhd=0 map:disk.vhd=0 tree:.=0" "" "VHD image (unsupported: raw, nothing parsed)"
D=$OUT/b30-vhdx; mkdir -p "$D"
qemu-img create -q -f vhdx "$D/disk.vhdx" 4M
reg b30-vhdx 'raw' "info:disk.vhdx=0 map:disk.vhdx=0 tree:.=0" "" "VHDX image (unsupported: raw, nothing parsed)"

# ---- users files (YAML) -----------------------------------------------------------------------
# A valid pool (base <- top) plus a hostile users.yaml; `tree --users`.
USERS="users:users.yaml=1"
mkusers() { # ID DESC (YAML on stdin)
	local d=$OUT/$1
	mkdir -p "$d"
	(cd "$d" && q -o cluster_size=4096 base.qcow2 1M && q -o cluster_size=4096 -b base.qcow2 -F qcow2 top.qcow2 1M)
	cat >"$d/users.yaml"
	reg "$1" "$2" "$USERS" "${ALLOW:-}" "$3"
}
printf 'users:\n  - name: vm\n    kind: vm\n    image: top.qcow2\n    perm: [consistent-read, write\n' |
	mkusers u-syntax-error 'users\.yaml.*(line|:[0-9])' "YAML syntax error (unclosed flow sequence)"
printf 'users:\n  - name: vm\n    kind: vm\n    image: top.qcow2\n    perm: [consistent-read, frobnicate]\n' |
	mkusers u-unknown-perm 'frobnicate|perm' "unknown permission name"
printf 'users:\n  - name: vm\n    kind: starship\n    image: top.qcow2\n' |
	mkusers u-unknown-kind 'starship|kind' "unknown user kind"
printf 'users:\n  - name: vm\n    kind: vm\n    perm: [write]\n' |
	mkusers u-missing-image 'image' "entry without image"
printf 'users:\n  - name: vm\n    kind: vm\n    image: [a, b]\n' |
	mkusers u-image-not-scalar 'image' "image is a sequence"
printf 'users: 42\n' | mkusers u-users-not-list 'users' "users is a scalar"
printf -- '- just\n- a list\n' | mkusers u-top-list 'users|mapping|top' "top level is a sequence"
printf 'users:\n  - &a {name: x, kind: vm, image: top.qcow2}\n  - *a\n  - *a\n' |
	mkusers u-alias 'alias|anchor|duplicate|\*' "YAML aliases (refused: no alias expansion)"
{ printf 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
  for l in b c d e f g h i; do p=$(echo "$l" | tr 'b-i' 'a-h'); printf '%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n' $l $l $p $p $p $p $p $p $p $p $p; done
  printf 'users: *i\n'; } | mkusers u-billion-laughs 'alias|anchor|users' "alias expansion bomb (9^9 nodes)"
printf 'users:\n  - name: vm\n    kind: vm\n    image: top.qcow2\n    image: base.qcow2\n' |
	mkusers u-duplicate-key 'image|duplicate' "duplicate key"
printf 'users:\n  - name: vm\n    kind: vm\n    image: "top.qcow2\\0x"\n' |
	mkusers u-nul-in-name 'image|NUL|\\0' "image name with a NUL escape"
{ printf 'users:\n'; for i in $(seq 1 200); do printf '%*s- [\n' $((i * 2)) ''; done; } |
	mkusers u-deep-nesting 'users|nest|deep|depth|line' "200 nested sequences"
{ printf 'users:\n  - name: "'; head -c 2000000 /dev/zero | tr '\0' 'x'; printf '"\n    kind: vm\n    image: top.qcow2\n'; } |
	USERS="users:users.yaml=0,1" mkusers u-huge-scalar 'name|long|size|large' "2 MB user name (bounded, may be accepted)"
printf '\xff\xfeu\x00s\x00e\x00r\x00s\x00:\x00\n\x00' | USERS="users:users.yaml=0,1" mkusers u-utf16 'users\.yaml|encod|utf|line' "UTF-16 with BOM (libyaml decodes it)"
printf 'users:\n  - name: vm\n    kind: vm\n    image: /etc/shadow\n' |
	USERS="users:users.yaml=0,1" ALLOW=/etc/shadow mkusers u-image-outside 'shadow|pool|not|image' \
	"user image outside the pool: probed like any referenced image, never written"

# ---- B-31 journals: written by tests/it/hostile.sh at run time -------------------------------------
# The journal format belongs to core/commit/journal.c; the runner makes a real
# interrupted commit with the binary under test and then damages the journal
# it leaves (bad magic, truncation, flipped CRC byte, huge count, dev:ino of
# a file replaced).  See hostile.sh: journal_fixtures.

echo "$n" >"$OUT/COUNT"
