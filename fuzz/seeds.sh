#!/usr/bin/env bash
# fuzz/seeds.sh - generate the seed corpus with qemu-img/qemu-io.
#
#   fuzz/seeds.sh [OUTDIR]      default OUTDIR: fuzz/corpus (gitignored)
#
# Writes OUTDIR/<target>/ for fz_header, fz_image, fz_foreign, fz_foreign_b, fz_chain,
# fz_scan,
# fz_users and (when an imgraph binary that can commit is given in
# $IMGRAPH) fz_journal.
# Seeds are kept small (<= 1 MiB, libFuzzer's -max_len) so the fuzzer runs
# fast: small virtual sizes, and images with 2 MiB clusters are cut to their
# first MiB for the header target.
set -eu
cd "$(dirname "$0")/.."
. tests/hostile/poke.sh
OUT=${1:-fuzz/corpus}
W=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-seeds.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT"/fz_header "$OUT"/fz_image "$OUT"/fz_chain "$OUT"/fz_users \
	"$OUT"/fz_journal "$OUT"/fz_foreign "$OUT"/fz_foreign_b "$OUT"/fz_scan

q() { qemu-img create -q -f qcow2 "$@"; }
io() { qemu-io -f qcow2 "$@" >/dev/null; }
MAXLEN=1048576
n=0
# keep NAME FILE: add an image to the header and image corpora.
keep() {
	local name=$1 f=$2
	head -c $MAXLEN "$f" >"$OUT/fz_header/$name"
	if [ "$(stat -c %s "$f")" -le $MAXLEN ]; then
		cp "$f" "$OUT/fz_image/$name"
	fi
	n=$((n + 1))
}
pattern() { # FILE: a few clusters of data at scattered offsets
	io "$1" -c 'write -P 0x11 0 4k' -c 'write -P 0x22 64k 8k' \
		-c 'write -z 128k 4k' -c 'write -P 0x33 200k 1k'
}

# compat and cluster sizes
for cs in 512 4096 65536; do
	q -o compat=0.10,cluster_size=$cs "$W/v2-$cs" 1M; pattern "$W/v2-$cs"
	keep "v2-c$cs" "$W/v2-$cs"
	q -o compat=1.1,cluster_size=$cs "$W/v3-$cs" 1M; pattern "$W/v3-$cs"
	keep "v3-c$cs" "$W/v3-$cs"
done
q -o cluster_size=2M "$W/c2m" 8M; io "$W/c2m" -c 'write -P 0x44 0 4k'
keep v3-c2m "$W/c2m"
# an active L1 of several one-page windows (formats/qcow2/qcow2_l1.c:
# QCOW2_L1_WIN = 512 entries, QCOW2_L1_SLOTS = 4 cached): 512 B clusters
# give 32 KiB per L1 entry, so 160 MiB is 5120 entries in 10 windows and a
# walk evicts; data in some windows, others empty (the sparse walk skips
# them), an entry at each window's edge.
q -o cluster_size=512 "$W/l1win" 160M
io "$W/l1win" -c 'write -P 0x21 0 512' -c 'write -P 0x22 16352k 1k' \
	-c 'write -P 0x23 16M 512' -c 'write -z 40M 64k' \
	-c 'write -P 0x24 100M 2k' -c 'write -P 0x25 167771648 512'
keep l1-windows "$W/l1win"
q -o compat=0.10,cluster_size=1024 "$W/l1win2" 1G
io "$W/l1win2" -c 'write -P 0x26 64M 1k' -c 'write -P 0x27 1073740800 1k'
keep l1-windows-v2 "$W/l1win2"
# refcount widths
for rb in 1 2 4 8 16 32 64; do
	q -o cluster_size=4096,refcount_bits=$rb "$W/rb$rb" 1M; pattern "$W/rb$rb"
	keep "refbits-$rb" "$W/rb$rb"
done
# lazy refcounts with the dirty bit left by a killed writer
q -o cluster_size=4096,lazy_refcounts=on "$W/dirty" 1M
io "$W/dirty" -c 'write -P 0x55 0 8k' -c 'sigraise 9' 2>/dev/null || true
keep lazy-dirty "$W/dirty"
# extended L2 (cluster >= 16K)
q -o cluster_size=16384,extended_l2=on "$W/el2" 1M
io "$W/el2" -c 'write -P 0x66 0 1k' -c 'write -P 0x67 16k 512' -c 'write -z 32k 2k'
keep extl2 "$W/el2"
q -o cluster_size=65536,extended_l2=on "$W/el2b" 2M
io "$W/el2b" -c 'write -P 0x66 2k 2k' -c 'write -z 64k 64k'
keep extl2-64k "$W/el2b"
# compressed clusters (zlib, and zstd when this qemu-img has it)
head -c 65536 /dev/urandom >"$W/rnd"
{ yes abcdefgh | head -c 65536; head -c 16384 "$W/rnd"; yes 12345678 | head -c 49152; } >"$W/raw"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$W/raw" "$W/comp"
keep compressed-zlib "$W/comp"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=65536 "$W/raw" "$W/comp64"
keep compressed-zlib-64k "$W/comp64"
if qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096,compression_type=zstd \
	"$W/raw" "$W/zstd" 2>/dev/null; then keep compressed-zstd "$W/zstd"; fi
# internal snapshots
q -o cluster_size=4096 "$W/snap" 1M; pattern "$W/snap"
qemu-img snapshot -c s1 "$W/snap"; io "$W/snap" -c 'write -P 0x77 0 4k'
qemu-img snapshot -c second-snapshot "$W/snap"
keep snapshots "$W/snap"
# persistent bitmaps
q -o cluster_size=4096 "$W/bm" 1M
qemu-img bitmap --add "$W/bm" b0; qemu-img bitmap --add -g 65536 "$W/bm" b1
io "$W/bm" -c 'write -P 0x12 0 4k'
keep bitmaps "$W/bm"
# backing file + format (relative name), raw backing, backing without format
q -o cluster_size=4096 "$W/base" 1M; pattern "$W/base"
(cd "$W" && q -o cluster_size=4096 -b base -F qcow2 ovl 1M)
io "$W/ovl" -c 'write -P 0x99 4k 4k'
keep backing-qcow2 "$W/ovl"
head -c 1048576 /dev/zero >"$W/base.raw"
(cd "$W" && q -o cluster_size=4096 -b base.raw -F raw ovlraw 1M)
keep backing-raw "$W/ovlraw"
cp "$W/ovl" "$W/nofmt"
# drop the backing-format extension: an unknown (zero-type) extension list
# end just after the header makes the image "backing without format"
poke_be32 "$W/nofmt" $Q_EXT0 0; poke_be32 "$W/nofmt" $((Q_EXT0 + Q_EXT_LEN)) 0
keep backing-nofmt "$W/nofmt"
(cd "$W" && q -o cluster_size=4096 -b "$(printf 'x%.0s' $(seq 1 1000))" -F qcow2 -u longname 1M)
keep backing-longname "$W/longname"
# external data file
(cd "$W" && q -o cluster_size=4096,data_file=data.raw,data_file_raw=on ext 1M)
keep data-file "$W/ext"
# LUKS encryption (header cut to 1 MiB for fz_header)
if qemu-img create -q -f qcow2 --object secret,id=s0,data=pw \
	-o encrypt.format=luks,encrypt.key-secret=s0,cluster_size=4096 "$W/luks" 1M 2>/dev/null; then
	keep luks "$W/luks"
fi
# corrupt bit, unknown incompatible / autoclear bits, a few poked headers
cp "$W/v3-4096" "$W/corrupt"; poke_be64 "$W/corrupt" $Q_INCOMPAT 2; keep corrupt "$W/corrupt"
cp "$W/v3-4096" "$W/unk"; poke_be64 "$W/unk" $Q_INCOMPAT $((1 << 60)); keep incompat-unknown "$W/unk"
cp "$W/v3-4096" "$W/ac"; poke_be64 "$W/ac" $Q_AUTOCLEAR 0x80; keep autoclear-unknown "$W/ac"
cp "$W/v3-4096" "$W/big"; poke_be64 "$W/big" $Q_SIZE $((1 << 62)); keep size-huge "$W/big"
cp "$W/v3-4096" "$W/l1"; poke_be64 "$W/l1" $Q_L1_OFF 0x10000000; keep l1-past-eof "$W/l1"
cp "$W/v3-4096" "$W/hl"; poke_be32 "$W/hl" $Q_HEADER_LEN 4096; keep header-len-cluster "$W/hl"
# many small unknown extensions after the header (backing name none)
cp "$W/v3-4096" "$W/exts"
off=112
for i in $(seq 1 40); do
	poke_be32 "$W/exts" $off $((0x1000 + i)); poke_be32 "$W/exts" $((off + 4)) 8
	poke_be64 "$W/exts" $((off + 8)) $i; off=$((off + 16))
done
poke_be32 "$W/exts" $off 0; poke_be32 "$W/exts" $((off + 4)) 0
keep many-extensions "$W/exts"

# the hostile corpus (tests/hostile/gen.sh): every damaged image is a seed
# for the error paths
if bash tests/hostile/gen.sh "$W/hostile" >/dev/null 2>&1; then
	bash tests/hostile/gen_foreign.sh "$W/hostile" >/dev/null 2>&1 || true
	bash tests/hostile/gen_foreign_c.sh "$W/hostile" >/dev/null 2>&1 || true
	for f in "$W"/hostile/*/bad.qcow2; do
		[ "$(stat -c %s "$f")" -le $MAXLEN ] || continue
		id=$(basename "$(dirname "$f")")
		cp "$f" "$OUT/fz_header/hostile-$id"; cp "$f" "$OUT/fz_image/hostile-$id"
	done
	for f in "$W"/hostile/u-*/users.yaml; do
		[ "$(stat -c %s "$f")" -le $MAXLEN ] || continue
		cp "$f" "$OUT/fz_users/hostile-$(basename "$(dirname "$f")")"
	done
fi

# fz_chain seeds: [be32 len a][a][be32 len b][b][c]; a names "b", b names "c".
pack3() { # OUT A B C
	{
		printf "$(printf '\\x%02x' $(( $(stat -c %s "$2") >> 24 & 255)) \
			$(( $(stat -c %s "$2") >> 16 & 255)) $(( $(stat -c %s "$2") >> 8 & 255)) \
			$(( $(stat -c %s "$2") & 255)))"
		cat "$2"
		printf "$(printf '\\x%02x' $(( $(stat -c %s "$3") >> 24 & 255)) \
			$(( $(stat -c %s "$3") >> 16 & 255)) $(( $(stat -c %s "$3") >> 8 & 255)) \
			$(( $(stat -c %s "$3") & 255)))"
		cat "$3"
		[ -z "${4:-}" ] || cat "$4"
	} >"$1"
}
C=$W/chain; mkdir -p "$C"
(cd "$C"
q -o cluster_size=512 c 64k; qemu-io -f qcow2 -c 'write -P 0xc1 0 1k' c >/dev/null
q -o cluster_size=512 -b c -F qcow2 b 64k; qemu-io -f qcow2 -c 'write -P 0xb1 512 1k' b >/dev/null
q -o cluster_size=512 -b b -F qcow2 a 64k; qemu-io -f qcow2 -c 'write -P 0xa1 1k 1k' a >/dev/null
head -c 65536 /dev/zero >r
q -o cluster_size=512 -b r -F raw braw 64k
q -o cluster_size=512 -b braw -F qcow2 araw 64k
q -o cluster_size=512 -b a -F qcow2 -u self 64k
q -o cluster_size=4096 -b 'json:{"file":{"driver":"file","filename":"c"}}' -F qcow2 -u ajson 64k
q -o cluster_size=512 -b /etc/passwd -F raw -u aabs 64k
q -o cluster_size=512 -b ../../c -F qcow2 -u adotdot 64k
q -o cluster_size=512 -b b -F qcow2 -u anofmt 64k; poke_be64 anofmt $Q_EXT0 0
q -o cluster_size=512 -b a -F qcow2 -u bloop 64k)
pack3 "$OUT/fz_chain/abc" "$C/a" "$C/b" "$C/c"
# a chain whose layers' L1 spans ten windows, data in different ones
(mkdir -p "$C/w" && cd "$C/w"
q -o cluster_size=512 c 160M; io c -c 'write -P 0xc1 16M 1k'
q -o cluster_size=512 -b c -F qcow2 b 160M; io b -c 'write -P 0xb1 100M 512'
q -o cluster_size=512 -b b -F qcow2 a 160M; io a -c 'write -P 0xa1 167771648 512')
pack3 "$OUT/fz_chain/l1-windows" "$C/w/a" "$C/w/b" "$C/w/c"
pack3 "$OUT/fz_chain/ab-raw" "$C/araw" "$C/braw" "$C/r"
pack3 "$OUT/fz_chain/self" "$C/self" "$C/b" "$C/c"     # a names a
pack3 "$OUT/fz_chain/loop2" "$C/a" "$C/bloop" "$C/c"   # a -> b -> a
pack3 "$OUT/fz_chain/json" "$C/ajson" "$C/b" "$C/c"
pack3 "$OUT/fz_chain/abs" "$C/aabs" "$C/b" "$C/c"
pack3 "$OUT/fz_chain/dotdot" "$C/adotdot" "$C/b" "$C/c"
pack3 "$OUT/fz_chain/nofmt" "$C/anofmt" "$C/b" "$C/c"
# chains through foreign parents: qcow2 -> qed -> qcow v1 (and the qed
# naming the qcow2 again: a loop), vmdk -> vmdk -> vmdk
mkdir -p "$C/f" "$C/v"
(cd "$C/f"
qemu-img create -q -f qcow c 64k; qemu-io -f qcow -c 'write -P 0xc2 0 8k' c >/dev/null
qemu-img create -q -f qed -o cluster_size=4096 -b c -F qcow b 64k
qemu-io -f qed -c 'write -P 0xb2 4k 4k' b >/dev/null
q -o cluster_size=512 -b b -F qed a 64k; qemu-io -f qcow2 -c 'write -P 0xa2 0 1k' a >/dev/null
qemu-img create -q -f qed -o cluster_size=4096 -u -b a -F qcow2 bloop 64k) >/dev/null 2>&1 || true
(cd "$C/v"
qemu-img create -q -f vmdk c 64k; qemu-io -f vmdk -c 'write -P 0xc3 0 4k' c >/dev/null
qemu-img create -q -f vmdk -b c -F vmdk b 64k
qemu-img create -q -f vmdk -b b -F vmdk a 64k) >/dev/null 2>&1 || true
pack3 "$OUT/fz_chain/foreign" "$C/f/a" "$C/f/b" "$C/f/c"
pack3 "$OUT/fz_chain/foreign-loop" "$C/f/a" "$C/f/bloop" "$C/f/c"
pack3 "$OUT/fz_chain/vmdk" "$C/v/a" "$C/v/b" "$C/v/c"

# fz_scan seeds: [ctl0][ctl1] + a chain seed (fuzz/fz_scan.c: ctl0 sets the
# number of links, ctl1 bit 0 a recursive scan, 1 symlinks, 2 a
# subdirectory, 3 a descriptor shortage).  Every chain with 66 links (69
# regular files: workers peek, the window does not wrap), and a -> b -> c
# with 130 links (the window wraps) in each shape.
for f in "$OUT"/fz_chain/*; do
	{ printf '\x08\x00'; cat "$f"; } >"$OUT/fz_scan/$(basename "$f")"
done
for c in 01 02 05 07 0f 4f f8; do
	{ printf "\\xc8\\x$c"; cat "$OUT/fz_chain/abc"; } >"$OUT/fz_scan/abc-$c"
done
{ printf '\xff\x03'; cat "$OUT/fz_chain/loop2"; } >"$OUT/fz_scan/loop2-ff03"

# fz_foreign_b seeds: [format selector byte][image] (fuzz/fz_foreign_b.c: 0
# probes, 1..7 = vpc vhdx vdi parallels dmg bochs cloop); small images of
# every subformat, the differencing ones, and the hostile fixtures of
# tests/it/formats_foreign_b_hostile.sh.
F=$W/foreign; mkdir -p "$F/pristine"
fkeep() { # SELECTOR FILE NAME
	[ -f "$2" ] && [ "$(stat -c %s "$2")" -lt $MAXLEN ] || return 0
	{ printf "\\x$(printf %02x "$1")"; cat "$2"; } >"$OUT/fz_foreign_b/$3"
}
FGEN=$PWD/tests/tools/foreign_gen.py
fgen() { python3 "$FGEN" "$@"; }
(cd "$F/pristine"
qi() { qemu-io -f "$1" "${@:3}" "$2" >/dev/null; }
head -c 65536 /dev/urandom >g.raw && head -c 65536 /dev/zero >>g.raw
qemu-img create -q -f vpc dyn.vhd 64M
qemu-img create -q -f vpc -o subformat=fixed,force_size=on fixed.vhd 256k
fgen vpc g.raw small.vhd
fgen vpc-diff --clear-half 0 small.vhd diff.vhd parent.vhd
# a VDI block is 1 MiB: cut, its data reads as zeros past the end
qemu-img create -q -f vdi dyn.vdi 4M && qi vdi dyn.vdi -c 'write -P 3 0 4k'
head -c $((MAXLEN - 1)) dyn.vdi >cut.vdi
qemu-img create -q -f parallels -o cluster_size=64k p.hds 4M
qi parallels p.hds -c 'write -P 4 64k 4k'
fgen bochs --extent 4096 g.raw v2.bochs
fgen bochs --v1 --extent 4096 g.raw v1.bochs
fgen cloop --block 4096 g.raw c.cloop
fgen dmg --chunk 8 g.raw plist.dmg
fgen dmg --rsrc --chunk 8 g.raw rsrc.dmg
fgen dmg --bzip2 --chunk 8 g.raw bz.dmg
# vhdx images are at least a few MiB: cut to MAXLEN they still parse up
# to the BAT and metadata, which lie in the first MiBs
qemu-img create -q -f vhdx -o block_size=1M x.vhdx 4M && qi vhdx x.vhdx -c 'write -P 5 0 4k'
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off diff0.vhdx 4M
qi vhdx diff0.vhdx -c 'write -P 6 0 1M'
fgen vhdx-diff diff0.vhdx diff.vhdx parent.vhdx) >/dev/null 2>&1 || true
for f in "$F"/pristine/*.vhd; do fkeep 1 "$f" "vpc-$(basename "$f")"; done
for f in "$F"/pristine/*.vhdx; do
	head -c $((MAXLEN - 1)) "$f" >"$F/cut"; fkeep 2 "$F/cut" "vhdx-$(basename "$f")"
done
fkeep 3 "$F/pristine/dyn.vdi" vdi
fkeep 3 "$F/pristine/cut.vdi" vdi-cut
fkeep 4 "$F/pristine/p.hds" parallels
for f in "$F"/pristine/*.dmg; do fkeep 5 "$f" "dmg-$(basename "$f")"; done
for f in "$F"/pristine/*.bochs; do fkeep 6 "$f" "bochs-$(basename "$f")"; done
fkeep 7 "$F/pristine/c.cloop" cloop
fkeep 0 "$F/pristine/fixed.vhd" probe-fixed-vhd
fkeep 0 "$F/pristine/plist.dmg" probe-dmg
# the hostile fixtures, made from the images above
if fgen hostile "$F" >/dev/null 2>&1; then
	while IFS=$'\t' read -r id file _; do
		case $file in
		*.vhd) sel=1;; *.vhdx) sel=2;; *.vdi) sel=3;; *.hds) sel=4;;
		*.dmg) sel=5;; *.bochs) sel=6;; *.cloop) sel=7;; *) continue;;
		esac
		head -c $((MAXLEN - 1)) "$F/$file" >"$F/cut"
		fkeep $sel "$F/cut" "hostile-$id"
	done <"$F/MANIFEST"
fi

# fz_users seeds: the users-file YAML of imgraph(1), and awkward variants.
U=$OUT/fz_users
cat >"$U/basic.yaml" <<'Y'
users:
  - name: vm-web01
    kind: vm
    image: web01.qcow2
    perm: [consistent-read, write]
    shared: [consistent-read, write-unchanged]
Y
cat >"$U/many.yaml" <<'Y'
# two users, block style lists, every kind
users:
  - name: "export 1"
    kind: export
    image: /srv/pool/base.qcow2
    perm:
      - consistent-read
    shared:
      - consistent-read
      - write
      - write-unchanged
      - resize
  - name: backup
    kind: backup
    image: ../other/img.qcow2
    perm: []
    shared: [consistent-read]
  - {name: job1, kind: job, image: a, perm: [write, resize], shared: []}
  - name: x
    kind: other
    image: 'quoted name.qcow2'
Y
printf 'users: []\n' >"$U/empty-list.yaml"
# "img" exists in the harness's scratch dir: these entries get repointed
printf 'users:\n  - name: a\n    kind: vm\n    image: img\n  - name: "b"\n    kind: backup\n    image: "img"\n    perm: []\n  - {name: c, kind: job, image: ./img}\n' >"$U/repoint.yaml"
printf '# comment\nusers:\n- name: x # trailing\n  kind: export\n  image: '"'"'img'"'"'\n  shared: [consistent-read, write, write-unchanged, resize]\n' >"$U/repoint-quoted.yaml"
printf 'users:\n  - name: a\n    kind: vm\n    image: a\n    perm: [bogus]\n' >"$U/bad-perm.yaml"
printf 'users:\n  - &x {name: a, kind: vm, image: a}\n  - *x\n' >"$U/alias.yaml"
printf 'users:\n  - name: [1, 2]\n    kind: {a: b}\n    image: !!binary aGVsbG8=\n' >"$U/types.yaml"
printf -- '--- \nusers:\n  - name: a\n---\nusers: 3\n' >"$U/two-docs.yaml"
printf 'users:\n\t- name: tab\n' >"$U/tab.yaml"
printf '\xef\xbb\xbfusers:\n  - name: "\\u00e9\\x00z"\n    image: "a\\nb"\n' >"$U/escapes.yaml"

# fz_journal seeds: real journals left by an interrupted commit, when the
# binary given in $IMGRAPH can commit (D's format is read from the files it
# writes; nothing here hard-codes that format).
if [ -n "${IMGRAPH:-}" ] && [ -x "$IMGRAPH" ]; then
	J=$W/j; mkdir -p "$J"
	(cd "$J"
	q -o cluster_size=4096 base 1M; qemu-io -f qcow2 -c 'write -P 1 0 64k' base >/dev/null
	q -o cluster_size=4096 -b base -F qcow2 top 1M
	qemu-io -f qcow2 -c 'write -P 2 0 8k' top >/dev/null
	for i in 1 2 3; do q -o cluster_size=4096 -b top -F qcow2 o$i 1M; done)
	cp -a "$J" "$W/j0"
	total=$(cd "$J" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$W/count" \
		"$IMGRAPH" commit --top top --base base --yes . >/dev/null 2>&1; cat "$W/count" 2>/dev/null || echo 0)
	for k in $(seq 1 "$total"); do
		rm -rf "$J"; cp -a "$W/j0" "$J"
		(cd "$J" && IMGRAPH_FAULT=kill:$k "$IMGRAPH" commit --top top --base base --yes . >/dev/null 2>&1) || true
		for jf in "$J"/.imgraph-journal-* "$J"/.imgraph-stale-*; do
			[ -f "$jf" ] && cp "$jf" "$OUT/fz_journal/kill$k$(basename "$jf")"
		done
	done
	# commit --protect, killed at each operation: stale records with the
	# protection's progress (their prot and reader lines)
	P=$W/p; mkdir -p "$P"
	(cd "$P"
	q -o cluster_size=4096 base 1M; qemu-io -f qcow2 -c 'write -P 1 0 256k' base >/dev/null
	q -o cluster_size=4096 -b base -F qcow2 top 1M
	qemu-io -f qcow2 -c 'write -P 2 0 128k' top >/dev/null
	q -o cluster_size=4096 -b base -F qcow2 sib 1M
	q -o cluster_size=4096 -b top -F qcow2 o1 1M)
	cp -a "$P" "$W/p0"
	total=$(cd "$P" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$W/pcount" \
		"$IMGRAPH" commit --protect --top top --base base --yes . >/dev/null 2>&1; cat "$W/pcount" 2>/dev/null || echo 0)
	for k in $(seq 1 "$total"); do
		rm -rf "$P"; cp -a "$W/p0" "$P"
		(cd "$P" && IMGRAPH_FAULT=kill:$k "$IMGRAPH" commit --protect --top top --base base --yes . >/dev/null 2>&1) || true
		for jf in "$P"/.imgraph-journal-* "$P"/.imgraph-stale-*; do
			[ -f "$jf" ] && cp "$jf" "$OUT/fz_journal/pkill$k$(basename "$jf")"
		done
	done
else
	echo "seeds.sh: no journal seeds for fz_journal: \$IMGRAPH is not an" \
		"executable imgraph (make imgraph, or make fuzz-run builds it)" >&2
fi
# fz_foreign seeds: [mode byte][image] (see fuzz/fz_foreign.c): each image
# probed (mode 0) and with its format given; vmdk descriptors as texts for
# the parser (mode 5) and as images naming the harness's flat.vmdk and
# sparse.vmdk; the hostile foreign corpus (tests/hostile/gen_foreign.sh).
F=$OUT/fz_foreign; mkdir -p "$F"
fseed() { # MODE NAME FILE
	{ printf "\\x$(printf %02x "$1")"; head -c $MAXLEN "$3"; } >"$F/$2-m$1"
}
X=$W/x; mkdir -p "$X"
qemu-img create -q -f qcow "$X/q.qcow" 1M; qemu-io -f qcow -c 'write -P 1 0 8k' "$X/q.qcow" >/dev/null
qemu-img create -q -f raw "$X/r.raw" 256k
qemu-io -f raw -c 'write -P 7 0 64k' -c 'write -P 8 252k 4k' "$X/r.raw" >/dev/null
# qemu-img 7.2's convert -c -O qcow writes the whole image, then exits 1
qemu-img convert -c -O qcow "$X/r.raw" "$X/qc.qcow" 2>/dev/null || [ -s "$X/qc.qcow" ]
qemu-img create -q -f qed -o cluster_size=4096 -b r.raw -F raw "$X/d.qed" 256k
qemu-io -f qed -c 'write -P 2 0 8k' -c 'write -z 16k 4k' "$X/d.qed" >/dev/null
qemu-img create -q -f vmdk -o zeroed_grain=on "$X/v.vmdk" 1M
qemu-io -f vmdk -c 'write -P 3 0 64k' -c 'write -z 64k 64k' "$X/v.vmdk" >/dev/null
qemu-img convert -O vmdk -o subformat=streamOptimized "$X/r.raw" "$X/s.vmdk"
for _ in 1 2 3 4 5; do
	qemu-img create -q -f luks --object secret,id=s0,data=x \
		-o key-secret=s0,iter-time=10 "$X/l.luks" 64k 2>/dev/null && break
done
for f in q.qcow:1 qc.qcow:1 d.qed:2 v.vmdk:3 s.vmdk:3 l.luks:4; do
	[ -f "$X/${f%%:*}" ] || continue
	fseed 0 "${f%%:*}" "$X/${f%%:*}"; fseed "${f#*:}" "${f%%:*}" "$X/${f%%:*}"
done
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nparentFileNameHint="base.vmdk"\nRW 128 SPARSE "sparse.vmdk"\nRW 128 FLAT "flat.vmdk" 0\nRW 8 FLAT "flat.vmdk" 64\nRDONLY 8 ZERO "z"\n' >"$X/desc"
printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfs"\nRW 64 VMFS "flat.vmdk"\nRW 16 VMFSSPARSE "sparse.vmdk"\n' >"$X/desc-vmfs"
for d in desc desc-vmfs; do fseed 0 "$d" "$X/$d"; fseed 3 "$d" "$X/$d"; fseed 5 "$d" "$X/$d"; done
for f in "$W"/hostile/f*/bad.*; do
	[ -f "$f" ] && fseed 0 "$(basename "$(dirname "$f")")" "$f"
done
# gen_foreign_c.sh's fixtures, probed and with their format given; those
# of the read-only formats go to fz_foreign_b
for f in "$W"/hostile/h*/bad.*; do
	[ -f "$f" ] && [ "$(stat -c %s "$f")" -lt $MAXLEN ] || continue
	id=$(basename "$(dirname "$f")")
	case $f in
	*.qcow) m=1;; *.qed) m=2;; *.vmdk) m=3;; *.luks) m=4;;
	*.vhd) fkeep 1 "$f" "hostile-$id"; fkeep 0 "$f" "hostile-$id-probe"; continue;;
	*.vhdx) fkeep 2 "$f" "hostile-$id"; continue;;
	*.vdi) fkeep 3 "$f" "hostile-$id"; continue;;
	*.hds) fkeep 4 "$f" "hostile-$id"; continue;;
	*.dmg) fkeep 5 "$f" "hostile-$id"; continue;;
	*.bochs) fkeep 6 "$f" "hostile-$id"; continue;;
	*.cloop) fkeep 7 "$f" "hostile-$id"; continue;;
	*) continue;;
	esac
	fseed 0 "$id" "$f"; fseed $m "$id" "$f"
done
echo "seeds: $n images; $(ls "$OUT"/fz_chain | wc -l) chains; $(ls "$OUT"/fz_users | wc -l) users files; $(ls "$OUT"/fz_journal | wc -l) journals; $(ls "$F" | wc -l) foreign and $(ls "$OUT"/fz_foreign_b | wc -l) foreign_b in $OUT"
