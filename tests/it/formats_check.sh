#!/usr/bin/env bash
# formats_check.sh - `imgraph check` against `qemu-img check` on the same
# images: clean ones (v2, v3, 512 B clusters, extended L2, refcount widths 1
# and 64, compressed clusters, internal snapshots, persistent bitmaps,
# images we wrote) and damaged ones (leaked cluster, refcount 0 under a used
# cluster, COPIED flag cleared, unaligned and past-EOF L2 entries, refcount
# table entry past EOF).  Equal: exit code, the JSON numbers qemu-img
# prints, and the set of "ERROR ..."/"Leaked cluster ..." lines.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# Big-endian helpers for poking headers and tables.
be64() { echo $(( 16#$(od -An -tx1 -j "$2" -N8 "$1" | tr -d ' \n') )); }
poke() { # FILE OFF HEXBYTES
	local hex=$3 esc=""
	while [ -n "$hex" ]; do esc+="\\x${hex:0:2}"; hex=${hex:2}; done
	printf "$esc" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# same_check NAME IMAGE [WANT_RC]
same_check() {
	local n=$1 img=$2 want=${3:-} qrc orc k
	qemu-img check --output=json "$img" >q.json 2>q.err; qrc=$?
	"$IMGRAPH" check --output=json "$img" >o.json 2>o.err; orc=$?
	check_eq "$n: exit code equals qemu-img's ($qrc)" "$orc" "$qrc"
	[ -n "$want" ] && check_eq "$n: exit code is $want" "$qrc" "$want"
	for k in corruptions leaks check-errors image-end-offset total-clusters \
		 allocated-clusters fragmented-clusters compressed-clusters; do
		check_eq "$n: $k" "$(jq -r ".\"$k\" // 0" o.json)" "$(jq -r ".\"$k\" // 0" q.json)"
	done
	grep -E '^(ERROR|Leaked)' q.err | sort >q.msgs
	grep -E '^(ERROR|Leaked)' o.err | sort >o.msgs
	if cmp -s q.msgs o.msgs; then ok "$n: same messages ($(wc -l <q.msgs))"
	else not_ok "$n: same messages"; diff q.msgs o.msgs | diag; fi
	# Human output: same verdict lines.
	qemu-img check "$img" 2>/dev/null | grep -E 'errors were found|leaked clusters|No errors' >q.h
	"$IMGRAPH" check "$img" 2>/dev/null | grep -E 'errors were found|leaked clusters|No errors' >o.h
	check "$n: same human verdict" cmp -s q.h o.h
}

# ---- clean images ----
qemu-img create -q -f qcow2 v3.qcow2 64M
qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 8M 64k' -c 'write -z 2M 64k' \
	-c 'write -c -P 3 4M 256k' v3.qcow2 >/dev/null
same_check "v3 clean" v3.qcow2 0
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 v2.qcow2 8M
qemu-io -f qcow2 -c 'write -P 1 0 100k' -c 'write -P 2 5M 3k' v2.qcow2 >/dev/null
same_check "v2 512 clean" v2.qcow2 0
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k x.qcow2 16M
qemu-io -f qcow2 -c 'write -P 1 0 3k' -c 'write -z 64k 1k' -c 'write -c -P 5 1M 64k' x.qcow2 >/dev/null
same_check "extended L2 clean" x.qcow2 0
qemu-img create -q -f qcow2 -o refcount_bits=1,cluster_size=4k r1.qcow2 8M
qemu-io -f qcow2 -c 'write -P 1 0 300k' r1.qcow2 >/dev/null
same_check "refcount_bits=1 clean" r1.qcow2 0
qemu-img create -q -f qcow2 -o refcount_bits=64,cluster_size=512 r64.qcow2 1M
qemu-io -f qcow2 -c 'write -P 1 0 300k' r64.qcow2 >/dev/null
same_check "refcount_bits=64 clean" r64.qcow2 0
qemu-img create -q -f qcow2 sn.qcow2 64M
qemu-io -f qcow2 -c 'write -P 1 0 1M' sn.qcow2 >/dev/null
qemu-img snapshot -c s1 sn.qcow2
qemu-io -f qcow2 -c 'write -P 2 512k 1M' sn.qcow2 >/dev/null
qemu-img snapshot -c s2 sn.qcow2
same_check "internal snapshots (shared clusters)" sn.qcow2 0
qemu-img create -q -f qcow2 bm.qcow2 64M
qemu-img bitmap --add bm.qcow2 b0
qemu-io -f qcow2 -c 'write -P 3 4M 1M' bm.qcow2 >/dev/null
same_check "persistent bitmap" bm.qcow2 0
qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 16M
qemu-io -f qcow2 -c 'write -P 1 0 1M' df.qcow2 >/dev/null
same_check "external data file (data not refcounted)" df.qcow2 0
qemu-img create -q -f qcow2 empty.qcow2 0
same_check "size 0" empty.qcow2 0
"$IMGRAPH" create -q -f qcow2 -o cluster_size=4k ours.qcow2 16M
same_check "image made by imgraph create" ours.qcow2 0

# ---- damaged images ----
cs=65536
mk() { qemu-img create -q -f qcow2 "$1" 64M; qemu-io -f qcow2 -c 'write -P 7 0 256k' "$1" >/dev/null; }
rb0() { be64 "$1" "$(be64 "$1" 48)"; }     # first refcount block

mk leak.qcow2
size=$(stat -c %s leak.qcow2); c=$(( (size + cs - 1) / cs ))
truncate -s $(( (c + 1) * cs )) leak.qcow2
poke leak.qcow2 $(( $(rb0 leak.qcow2) + 2 * c )) 0001
same_check "leaked cluster" leak.qcow2 3

mk corrupt.qcow2
data=$(qemu-img map --output=json corrupt.qcow2 | jq '[.[] | select(.data)][0].offset')
poke corrupt.qcow2 $(( $(rb0 corrupt.qcow2) + 2 * data / cs )) 0000
same_check "refcount 0 under a used cluster" corrupt.qcow2 2

mk copied.qcow2
l2=$(( $(be64 copied.qcow2 "$(be64 copied.qcow2 40)") & 0x00fffffffffffe00 ))
poke copied.qcow2 "$l2" 00
same_check "COPIED flag cleared" copied.qcow2 2

mk unal.qcow2
l2=$(( $(be64 unal.qcow2 "$(be64 unal.qcow2 40)") & 0x00fffffffffffe00 ))
e=$(be64 unal.qcow2 $((l2 + 8)))
poke unal.qcow2 $((l2 + 8)) "$(printf '%016x' $(( e + 0x200 )))"
same_check "unaligned L2 entry" unal.qcow2 2

mk eof.qcow2
l2=$(( $(be64 eof.qcow2 "$(be64 eof.qcow2 40)") & 0x00fffffffffffe00 ))
poke eof.qcow2 $((l2 + 16)) 8000000010000000
same_check "L2 entry past the end of the file" eof.qcow2 2

mk reft.qcow2
poke reft.qcow2 $(( $(be64 reft.qcow2 48) + 8 )) 0000000100000000
same_check "refcount table entry past the end of the file" reft.qcow2 2
mk reft2.qcow2
poke reft2.qcow2 $(( $(be64 reft2.qcow2 48) + 8 )) 0000000000050200
same_check "unaligned refcount table entry" reft2.qcow2 2

mk l1res.qcow2
l1=$(be64 l1res.qcow2 40)
poke l1res.qcow2 "$l1" "$(printf '%016x' $(( $(be64 l1res.qcow2 "$l1") | 0x0100000000000000 )))"
same_check "L1 entry with reserved bits" l1res.qcow2 2
mk l2res.qcow2
l2=$(( $(be64 l2res.qcow2 "$(be64 l2res.qcow2 40)") & 0x00fffffffffffe00 ))
poke l2res.qcow2 $((l2 + 8)) "$(printf '%016x' $(( $(be64 l2res.qcow2 $((l2 + 8))) | 0x02 )))"
same_check "L2 entry with reserved bits" l2res.qcow2 2

mk both.qcow2
size=$(stat -c %s both.qcow2); c=$(( (size + cs - 1) / cs ))
truncate -s $(( (c + 1) * cs )) both.qcow2
poke both.qcow2 $(( $(rb0 both.qcow2) + 2 * c )) 0002
data=$(qemu-img map --output=json both.qcow2 | jq '[.[] | select(.data)][0].offset')
poke both.qcow2 $(( $(rb0 both.qcow2) + 2 * data / cs + 2 )) 0000
same_check "leak and corruption together" both.qcow2 2

# ---- usage and other formats ----
"$IMGRAPH" create -q -f raw r.raw 1M
check_rc "raw: no check (63, like qemu-img)" 63 "$IMGRAPH" check r.raw
check_rc "missing file: error" 1 "$IMGRAPH" check nope.qcow2
check_rc "bad --output" 2 "$IMGRAPH" check --output=xml v3.qcow2
check_rc "--help" 0 "$IMGRAPH" check --help
printf 'QFI\xfb\x00\x00\x00\x03' >trunc.qcow2
check_rc "truncated header: error naming the file" 1 "$IMGRAPH" check trunc.qcow2
check_grep "  ... names the file" "trunc.qcow2" "$T/.err"

done_testing
