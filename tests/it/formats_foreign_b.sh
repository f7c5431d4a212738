#!/usr/bin/env bash
# formats_foreign_b.sh - the read-only drivers for vpc, vhdx, vdi,
# parallels, dmg, bochs and cloop, judged by qemu-img.
#
# Images of every subformat qemu-img writes (vpc dynamic/fixed, vhdx
# dynamic/fixed, vdi dynamic/static, parallels), data written by qemu-io;
# dmg (property list and resource fork), bochs (v1, v2) and cloop built by
# tests/tools/foreign_gen.py from a raw guest view and read back by
# qemu-img first, so the fixture is what QEMU reads.  Per image:
#   - probing by content finds the format (a fixed VHD by its footer, a
#     DMG by its koly trailer: nothing at their head says so);
#   - `imgraph info --output=json` equals `qemu-img info -f FMT
#     --output=json` key by key (lib_formats.sh info_same): every key
#     qemu-img prints, and none of format, cluster-size, backing names,
#     dirty-flag, snapshots, encrypted or format-specific where qemu-img
#     prints none (parallels, dmg, bochs and cloop have no dirty-flag);
#   - every byte read through the driver ($BUILD/tests/tools/imgcat, reads of an
#     odd size crossing every block boundary) equals `qemu-img convert -O
#     raw`;
#   - where QEMU's driver reports block status, `imgraph map` has its
#     present/zero/data extents.
# Differencing VHD and VHDX (QEMU ignores the first and refuses the second)
# name their parent, read their own sectors and leave the others to it.
# Their backing keys are the one difference from qemu-img info (which has
# no parent for them) and are checked on their own below.
# Regression for issue 15: "imgraph info calls vpc, vhdx and vdi files raw,
# with the file size as the virtual size" (the info checks fail on a build
# without these drivers).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_formats.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CAT=$ROOT/${BUILD:-build}/tests/tools/imgcat
GEN="python3 $ROOT/tests/tools/foreign_gen.py"
[ -x "$CAT" ] || { not_ok "no $CAT (make $CAT)"; done_testing; }
cd "$T" || exit 1

qi() { qemu-io -f "$1" "${@:3}" "$2" >/dev/null; }
pattern() { # FMT FILE: data at scattered, unaligned places
	qi "$1" "$2" -c 'write -P 0x11 0 64k' -c 'write -P 0x22 3M 1M' \
		-c 'write -P 0x33 5M 17k' -c 'write -P 0x44 1M 5k' \
		-c 'write -P 0x55 7340033 4096'
}

same_info() { # NAME FILE FMT
	info_same "$1: info" "$2" "$3"
}
same_bytes() { # NAME FILE FMT [EXPECTED_RAW]
	local want=${4:-}
	if [ -z "$want" ]; then
		want=$2.qemu.raw
		qemu-img convert -f "$3" -O raw "$2" "$want" 2>/dev/null ||
			{ not_ok "$1: qemu-img cannot read it"; return; }
	fi
	if "$CAT" -s 99999 "$2" >"$2.ours.raw" 2>"$T/cat.err" &&
	   cmp -s "$2.ours.raw" "$want"; then
		ok "$1: every byte as qemu-img reads it"
	else
		not_ok "$1: bytes differ from qemu-img's"; diag <"$T/cat.err"
		cmp "$2.ours.raw" "$want" 2>&1 | head -3 | diag
	fi
}
probe_is() { # NAME FILE FMT
	check_eq "$1: probed as $3" "$("$CAT" -p "$2" 2>&1)" "$3"
}
# qemu-img map and imgraph map, adjacent extents merged (qemu splits where
# host offsets jump; we report no host offsets for these formats)
MERGE='def m: reduce .[] as $e ([]; if length > 0 and (.[-1] |
	.present == $e.present and .zero == $e.zero and .data == $e.data and
	.start + .length == $e.start) then .[-1].length += $e.length
	else . + [$e] end);
	[.[] | {start, length, present, zero, data}] | m'
same_map() { # NAME FILE FMT
	local ours theirs
	ours=$("$IMGRAPH" map --output=json "$2" 2>&1 | jq -c "$MERGE")
	theirs=$(qemu-img map -f "$3" --output=json "$2" | jq -c "$MERGE")
	check_eq "$1: map extents as qemu-img map" "$ours" "$theirs"
}
all_checks() { # NAME FILE FMT
	probe_is "$@"
	same_info "$@"
	same_bytes "$@"
}

# ---- formats qemu-img writes ------------------------------------------------
qemu-img create -q -f vpc dyn.vhd 16M && pattern vpc dyn.vhd
all_checks "vpc dynamic" dyn.vhd vpc
same_map "vpc dynamic" dyn.vhd vpc
qemu-img create -q -f vpc -o subformat=fixed fixed.vhd 16M && pattern vpc fixed.vhd
all_checks "vpc fixed (CHS size)" fixed.vhd vpc
check_eq "vpc fixed: qemu-img itself probes it as raw (the footer is at the end)" \
	"$(qemu-img info --output=json fixed.vhd | jq -r .format)" raw
qemu-img create -q -f vpc -o subformat=fixed,force_size=on fixedfs.vhd 16M
pattern vpc fixedfs.vhd
all_checks "vpc fixed (current_size)" fixedfs.vhd vpc

qemu-img create -q -f vhdx dyn.vhdx 16M && pattern vhdx dyn.vhdx
all_checks "vhdx dynamic" dyn.vhdx vhdx
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off sparse.vhdx 12M
pattern vhdx sparse.vhdx
all_checks "vhdx 1 MiB blocks, not-present state" sparse.vhdx vhdx
qemu-img create -q -f vhdx -o subformat=fixed,block_size=2M fixed.vhdx 10M
pattern vhdx fixed.vhdx
all_checks "vhdx fixed" fixed.vhdx vhdx

qemu-img create -q -f vdi dyn.vdi 16M && pattern vdi dyn.vdi
all_checks "vdi dynamic" dyn.vdi vdi
same_map "vdi dynamic" dyn.vdi vdi
qemu-img create -q -f vdi -o static=on static.vdi 9M && pattern vdi static.vdi
all_checks "vdi static" static.vdi vdi

qemu-img create -q -f parallels p.hds 16M && pattern parallels p.hds
all_checks "parallels" p.hds parallels
same_map "parallels" p.hds parallels
qemu-img create -q -f parallels -o cluster_size=64k p64.hds 9M
pattern parallels p64.hds
all_checks "parallels 64 KiB clusters" p64.hds parallels
same_map "parallels 64 KiB clusters" p64.hds parallels

# ---- formats built from their layouts ---------------------------------------
# guest view: random data, text, zeros, an unaligned tail
python3 - <<'EOF'
import random
random.seed(15)
b = bytearray(4 << 20)
for off, n in ((0, 70000), (200000, 5000), (1 << 20, 300000), (3 << 20, 4096),
               ((4 << 20) - 1000, 1000)):
    b[off:off + n] = bytes(random.getrandbits(8) for _ in range(n))
b[2 << 20:(2 << 20) + 65536] = b'imgraph!' * 8192
open('guest.raw', 'wb').write(b)
EOF
built() { # NAME FMT FILE GEN-ARGS...: build, then qemu-img must read it back
	local name=$1 fmt=$2 f=$3; shift 3
	$GEN "$@" guest.raw "$f" 2>"$T/gen.err" || { not_ok "$name: generator"; diag <"$T/gen.err"; return 1; }
	if qemu-img convert -f "$fmt" -O raw "$f" "$f.qemu.raw" 2>/dev/null &&
	   cmp -s "$f.qemu.raw" guest.raw; then
		ok "$name: qemu-img reads the fixture back to the guest view"
	else
		not_ok "$name: qemu-img does not read the fixture as built"; return 1
	fi
	all_checks "$name" "$f" "$fmt"
}
built "vpc dynamic, 4 KiB blocks" vpc small.vhd vpc
built "dmg, property list" dmg plist.dmg dmg
built "dmg, resource fork" dmg rsrc.dmg dmg --rsrc
built "dmg, 8-sector chunks" dmg small.dmg dmg --chunk 8
# the name says nothing: the koly trailer is found at the end
cp plist.dmg noext.img
probe_is "dmg named .img" noext.img dmg
built "bochs v2" bochs v2.bochs bochs
built "bochs v1, 4 KiB extents" bochs v1.bochs bochs --v1 --extent 4096
built "cloop" cloop c.cloop cloop
built "cloop, 512-byte blocks" cloop c512.cloop cloop --block 512

# a bzip2 chunk: QEMU's build here has no bzip2 module; we refuse by name
$GEN dmg --bzip2 guest.raw bz.dmg
check_rc "dmg with a bzip2 chunk: info works" 0 "$IMGRAPH" info bz.dmg
if "$CAT" bz.dmg >/dev/null 2>"$T/bz.err"; then
	not_ok "dmg bzip2 chunk: read should be refused"
else
	check_grep "dmg bzip2 chunk: refused naming the file and bzip2" "bz\.dmg.*bzip2-compressed" "$T/bz.err"
fi

# ---- differencing disks -----------------------------------------------------
# VHD: QEMU reads a type-4 disk as dynamic and ignores the parent; block 1
# has its second half's bitmap bits cleared over garbage, which must not be
# read (zeros in this layer, the parent's in the chain).
qemu-img create -q -f vpc vparent.vhd 8M && qi vpc vparent.vhd -c 'write -P 0x99 0 8M'
qemu-img create -q -f vpc vchild0.vhd 8M
qi vpc vchild0.vhd -c 'write -P 0x11 0 3M' -c 'write -P 0x22 6M 64k'
$GEN vpc-diff --clear-half 1 vchild0.vhd vchild.vhd vparent.vhd
"$IMGRAPH" info --output=json vchild.vhd >vc.json 2>&1
check_eq "vpc differencing: parent from the W2ru locator" \
	"$(jq -c '[."backing-filename", ."backing-filename-format"]' vc.json)" '["vparent.vhd","vpc"]'
qemu-img convert -f vpc -O raw vchild0.vhd vc.want
dd if=/dev/zero of=vc.want bs=1M seek=3 count=1 conv=notrunc status=none
same_bytes "vpc differencing (cleared bitmap bits read as zeros)" vchild.vhd vpc vc.want
"$CAT" -m vchild.vhd >vc.map
check_grep "vpc differencing: cleared sectors are the parent's" "^3145728 1048576 unalloc$" vc.map
check_grep "vpc differencing: unallocated blocks are the parent's" "^4194304 [0-9]+ unalloc$" vc.map
"$IMGRAPH" map --output=json vchild.vhd >vcm.json 2>&1
check_eq "vpc differencing: the chain map reads cleared sectors from the parent" \
	"$(jq -c '[.[] | select(.start == 3145728) | .depth]' vcm.json)" "[1]"

# VHDX: QEMU refuses differencing files; block 0 is made partially present
# (first half here, second half the parent's, garbage stored under it).
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off xparent.vhdx 6M
qi vhdx xparent.vhdx -c 'write -P 0x99 0 6M'
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off xchild0.vhdx 6M
qi vhdx xchild0.vhdx -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 1M'
$GEN vhdx-diff xchild0.vhdx xchild.vhdx xparent.vhdx
if qemu-img info xchild.vhdx >/dev/null 2>&1; then
	not_ok "vhdx differencing: qemu-img was expected to refuse it"
else
	ok "vhdx differencing: qemu-img refuses it (so we are the only reader)"
fi
"$IMGRAPH" info --output=json xchild.vhdx >xc.json 2>&1
check_eq "vhdx differencing: parent from relative_path" \
	"$(jq -c '[."backing-filename", ."backing-filename-format", ."cluster-size"]' xc.json)" \
	'["xparent.vhdx","vhdx",1048576]'
qemu-img convert -f vhdx -O raw xchild0.vhdx xc.want
dd if=/dev/zero of=xc.want bs=512K seek=1 count=1 conv=notrunc status=none
same_bytes "vhdx differencing (partially present block)" xchild.vhdx vhdx xc.want
"$CAT" -m xchild.vhdx >xc.map
check_eq "vhdx differencing: block status" "$(tr '\n' ' ' <xc.map)" \
	"0 524288 data 524288 524288 unalloc 1048576 1048576 unalloc 2097152 1048576 data 3145728 3145728 unalloc "
"$IMGRAPH" map --output=json xchild.vhdx >xcm.json 2>&1
check_eq "vhdx differencing: the chain map reads absent sectors from the parent" \
	"$(jq -c '[.[] | select(.depth == 1) | .start]' xcm.json)" "[524288,3145728]"

done_testing
