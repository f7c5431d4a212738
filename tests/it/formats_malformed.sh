#!/usr/bin/env bash
# formats_malformed.sh - every validated qcow2 header field, and bad L1/L2
# entries, poked one at a time into an image made by qemu-img.
#
# For each case: `imgraph info` (or `map` for table entries) exits 1 (not a
# crash, not 0), the message names the file and the field or entry, and the
# file is byte-identical afterwards (sha256 before/after).  qemu-img is the
# judge that the pristine images are valid (qemu-img check), so each
# failure is caused by the one poked field.
. "$(dirname "$0")/lib.sh"

# Pristine images (v3, 64 KiB clusters, 1 MiB):
#   plain.qcow2: header 0..112, end marker at 112; L1 at 0x30000
#   ov.qcow2:    backing-fmt ext at 112, feature table at 128, name at 528;
#                L2 at 0x40000 with entry 0 = data, entry 1 = compressed
#   small.qcow2: 4 KiB clusters
mkq "$T/base.qcow2" 1M
mkq "$T/plain.qcow2" 1M
mkq "$T/ov.qcow2" 1M base.qcow2 qcow2
qio "$T/ov.qcow2" -c "write -P 0x11 0 64k" -c "write -c -P 0x22 64k 64k"
mkq "$T/small.qcow2" 1M "" -o cluster_size=4k
for f in plain ov small; do qcheck "pristine $f.qcow2 is valid" "$T/$f.qcow2"; done
# the layout assumptions above, checked rather than trusted
check_eq "layout: L2 entry 0" "$(xxd -p -s 0x40000 -l 8 "$T/ov.qcow2")" "8000000000050000"
check_eq "layout: backing name at 528" "$(dd if="$T/ov.qcow2" bs=1 skip=528 count=10 status=none)" "base.qcow2"

# poke FILE OFFSET HEX: write bytes (hex string, e.g. 0000000a) at OFFSET.
poke() {
	local f=$1 off=$2 hex=$3 esc
	esc=$(sed 's/../\\x&/g' <<<"$hex")
	printf "$esc" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# bad NAME SRC CMD OFFSET HEX PATTERN: poke a copy of SRC, run imgraph CMD.
n=0
bad() {
	local name=$1 src=$2 cmd=$3 off=$4 hex=$5 pat=$6 rc
	n=$((n + 1))
	local f="$T/m$n-$src"
	cp "$T/$src" "$f"
	poke "$f" "$off" "$hex"
	local before after
	before=$(sha256sum <"$f")
	"$IMGRAPH" $cmd "$f" >"$T/m.out" 2>"$T/m.err"; rc=$?
	after=$(sha256sum <"$f")
	if [ "$rc" != 1 ]; then
		not_ok "$name: exit $rc, want 1"; diag <"$T/m.err"
	elif ! grep -qF -- "$f" "$T/m.err"; then
		not_ok "$name: message does not name the file"; diag <"$T/m.err"
	elif ! grep -qE -- "$pat" "$T/m.err"; then
		not_ok "$name: message lacks /$pat/"; diag <"$T/m.err"
	elif [ "$before" != "$after" ]; then
		not_ok "$name: file changed"
	elif [ -s "$T/m.out" ]; then
		not_ok "$name: something on stdout"; diag <"$T/m.out"
	else
		ok "$name"
	fi
	rm -f "$f"
}

I=info
# a wrong magic or version probes as raw (as with qemu-img), so name the format
F="info -f qcow2"
M="map --output=json"
bad "magic"                     plain.qcow2 "$F" 0   514649fa          "field 'magic'"
bad "version 4"                 plain.qcow2 "$F" 4   00000004          "field 'version' is 4; must be 2 or 3"
bad "version 1"                 plain.qcow2 "$F" 4   00000001          "field 'version' is 1"
bad "cluster_bits 25"           plain.qcow2 $I 20  00000019          "field 'cluster_bits' is 25; must be 9..21"
bad "cluster_bits 8"            plain.qcow2 $I 20  00000008          "field 'cluster_bits' is 8"
bad "size over 2^61"            plain.qcow2 $I 24  4000000000000000  "field 'size'"
bad "crypt_method 3"            plain.qcow2 $I 32  00000003          "field 'crypt_method' is 3"
bad "l1_size too small"         plain.qcow2 $I 36  00000000          "field 'l1_size' is 0.*too small"
bad "l1_size over 32 MiB"       plain.qcow2 $I 36  00500000          "field 'l1_size' is 5242880"
bad "l1_table_offset unaligned" plain.qcow2 $I 40  0000000000030200  "field 'l1_table_offset' is 197120"
bad "l1_table_offset past EOF"  plain.qcow2 $I 40  0000010000000000  "field 'l1_table_offset'.*past the end"
bad "refcount_table_offset unaligned" plain.qcow2 $I 48 0000000000010008 "field 'refcount_table_offset' is 65544"
bad "refcount_table_offset past EOF"  plain.qcow2 $I 48 0000010000000000 "field 'refcount_table_offset'.*past the end"
bad "refcount_table_clusters 0"       plain.qcow2 $I 56 00000000 "field 'refcount_table_clusters' is 0"
bad "refcount_table_clusters > 8 MiB" plain.qcow2 $I 56 00100000 "field 'refcount_table_clusters' is 1048576"
bad "nb_snapshots over cap"     plain.qcow2 $I 60  00020000          "field 'nb_snapshots' is 131072"
bad "snapshots_offset unaligned" plain.qcow2 $I 64 00000000000003e8  "field 'snapshots_offset' is 1000"
bad "unknown incompatible bit"  plain.qcow2 $I 72  0000000000100000  "unknown incompatible feature bit 20"
bad "compression bit, type zlib" plain.qcow2 $I 72 0000000000000008  "field 'compression_type' is 0 but"
bad "refcount_order 7"          plain.qcow2 $I 96  00000007          "field 'refcount_order' is 7"
bad "header_length 100"         plain.qcow2 $I 100 00000064          "field 'header_length' is 100"
bad "header_length unaligned"   plain.qcow2 $I 100 0000006c          "field 'header_length' is 108"
bad "header_length > cluster"   plain.qcow2 $I 100 00020000          "field 'header_length' is 131072"
bad "compression_type 2"        plain.qcow2 $I 104 02                "field 'compression_type' is 2"
bad "compression_type 1, no bit" plain.qcow2 $I 104 01               "field 'compression_type' is 1 but"
bad "extended L2, 4k clusters"  small.qcow2 $I 72  0000000000000010  "field 'cluster_bits' is 12; extended L2"
bad "data-file bit, no name"    plain.qcow2 $I 72  0000000000000004  "field 'incompatible_features'.*data file"
bad "backing_file_offset in header" ov.qcow2 $I 8  0000000000000040  "field 'backing_file_offset' is 64"
bad "backing_file_offset past cluster" ov.qcow2 $I 8 0000000000010000 "field 'backing_file_offset' is 65536"
bad "backing_file_size 1024"    ov.qcow2 $I 16 00000400              "field 'backing_file_size' is 1024"
bad "backing name past cluster" ov.qcow2 $I 8  000000000000fff8      "field 'backing_file_size' is 10"
bad "NUL in backing name"       ov.qcow2 $I 530 00                   "NUL"
bad "extension length overflow" ov.qcow2 $I 116 7fffffff             "extension 0xe2792aca.*length 2147483647"
bad "backing format too long"   ov.qcow2 $I 116 00000010             "backing format extension: length 16"
bad "duplicate extension"       ov.qcow2 $I 128 e2792aca             "0xe2792aca appears more than once"
bad "feature table length"      ov.qcow2 $I 132 00000181             "feature name table.*not a multiple of 48"
# table entries: info does not need them, map does
bad "L1 entry reserved bit"     ov.qcow2 "$M" 196608 8100000000040000 "L1 entry 0 .*reserved bits"
bad "L1 entry unaligned"        ov.qcow2 "$M" 196608 8000000000040200 "L1 entry 0 .*not cluster aligned"
bad "L1 entry past EOF"         ov.qcow2 "$M" 196608 8000010000000000 "L1 entry 0 .*past the end of the file"
bad "L2 entry reserved bits"    ov.qcow2 "$M" 262144 8000000000050002 "guest offset 0: L2 entry 0x8000000000050002 has reserved bits"
bad "L2 entry unaligned"        ov.qcow2 "$M" 262144 8000000000050200 "guest offset 0: L2 entry .*not cluster aligned"
bad "L2 entry past EOF"         ov.qcow2 "$M" 262144 8000001000000000 "guest offset 0: L2 entry .*past the end of the file"
bad "compressed entry past EOF" ov.qcow2 "$M" 262152 4000001000000000 "guest offset 65536: compressed L2 entry .*past the end"

# Images we read but refuse to write: info works and says why.
cp "$T/plain.qcow2" "$T/dirty.qcow2"
poke "$T/dirty.qcow2" 72 0000000000000001
check "dirty image: info works" "$IMGRAPH" info "$T/dirty.qcow2"
check_grep "dirty image: info names the refusal" "will not write it: .*dirty" "$T/.out"
"$IMGRAPH" info --output=json "$T/dirty.qcow2" >"$T/d.json"
check_eq "dirty image: dirty-flag true" "$(jq -r '."dirty-flag"' "$T/d.json")" true
cp "$T/plain.qcow2" "$T/bm.qcow2"
poke "$T/bm.qcow2" 88 0000000000000001
check "bitmaps bit: info works" "$IMGRAPH" info --output=json "$T/bm.qcow2"
check_grep "bitmaps bit: refusal explains" "persistent bitmaps would go stale" "$T/.out"

done_testing
