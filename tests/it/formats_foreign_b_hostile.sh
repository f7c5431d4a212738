#!/usr/bin/env bash
# formats_foreign_b_hostile.sh - hostile vpc, vhdx, vdi, parallels, dmg,
# bochs and cloop images: truncated headers, huge table sizes, offsets past
# the end of the file, absurd block counts, overlapping regions and chunks,
# broken checksums and compressed data.
#
# Pristine images are made by qemu-img (and tests/tools/foreign_gen.py for
# the formats it cannot write); `foreign_gen.py hostile` then makes one
# field of a copy hostile per fixture (fixing checksums where the field is
# behind one) and writes the MANIFEST: id, file, command, field regex.
# Per fixture, `imgraph info -f FMT FILE` (or, for "read", every byte
# through $BUILD/tests/tools/imgcat -f FMT):
#   - exits 1 (no signal, no timeout), nothing on stdout for info;
#   - the message names the file and the field (MANIFEST regex);
#   - no sanitizer report; peak RSS <= 64 MiB, CPU time <= 1 s
#     (tests/tools/rusage.c; sanitizer builds: 512 MiB / 5 s), under
#     ulimit -v 1 GiB (not in sanitizer builds);
#   - the file is byte for byte what it was (nothing written).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CAT=$ROOT/${BUILD:-build}/tests/tools/imgcat
GEN="python3 $ROOT/tests/tools/foreign_gen.py"
[ -x "$CAT" ] || { not_ok "no $CAT (make $CAT)"; done_testing; }
RUSAGE=$T/rusage
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -o "$RUSAGE" "$ROOT/tests/tools/rusage.c" ||
	{ not_ok "build tests/tools/rusage.c"; done_testing; }
# VMEM_KB: ulimit -v of every run (as in hostile.sh); not with ASan, which
# reserves terabytes of address space up front.
RSS_KB=65536 MS=1000 VMEM_KB=1048576
if grep -q __asan_init "$IMGRAPH" 2>/dev/null; then
	RSS_KB=524288 MS=5000 VMEM_KB=unlimited
	echo "# sanitizer build: limits relaxed to 512 MiB / 5 s, no ulimit -v"
fi

H=$T/h
P=$H/pristine
mkdir -p "$P"
cd "$P" || exit 1
qi() { qemu-io -f "$1" "${@:3}" "$2" >/dev/null; }
{
	qemu-img create -q -f vpc dyn.vhd 8M && qi vpc dyn.vhd -c 'write -P 0x11 2M 1M'
	qemu-img create -q -f vpc -o subformat=fixed,force_size=on fixed.vhd 4M
	qemu-img create -q -f vpc diff0.vhd 8M && qi vpc diff0.vhd -c 'write -P 0x22 0 1M'
	$GEN vpc-diff diff0.vhd diff.vhd parent.vhd
	qemu-img create -q -f vhdx -o block_size=1M x.vhdx 8M
	qi vhdx x.vhdx -c 'write -P 0x33 0 1M' -c 'write -P 0x44 3M 1M'
	qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off diff0.vhdx 4M
	qi vhdx diff0.vhdx -c 'write -P 0x55 0 1M'
	$GEN vhdx-diff diff0.vhdx diff.vhdx parent.vhdx
	qemu-img create -q -f vdi dyn.vdi 8M && qi vdi dyn.vdi -c 'write -P 0x66 0 1M'
	qemu-img create -q -f parallels p.hds 8M && qi parallels p.hds -c 'write -P 0x77 0 1M'
	head -c 1M /dev/urandom >g.raw && head -c 1M /dev/zero >>g.raw
	$GEN bochs g.raw v2.bochs
	$GEN cloop g.raw c.cloop
	$GEN dmg --rsrc g.raw rsrc.dmg
	$GEN dmg g.raw plist.dmg
} >"$T/gen.log" 2>&1 || { not_ok "pristine images"; diag <"$T/gen.log"; done_testing; }
for f in dyn.vhd fixed.vhd x.vhdx dyn.vdi p.hds v2.bochs c.cloop rsrc.dmg plist.dmg; do
	case $f in *.vhd) fmt=vpc;; *.hds) fmt=parallels;; *) fmt=${f##*.};; esac
	if "$IMGRAPH" info -f "$fmt" "$f" >/dev/null 2>&1 && "$CAT" -f "$fmt" "$f" >/dev/null 2>&1; then
		ok "pristine $f reads"
	else
		not_ok "pristine $f does not read"
	fi
done
cd "$H" || exit 1
$GEN hostile "$H" 2>"$T/gen.err" || { not_ok "foreign_gen.py hostile"; diag <"$T/gen.err"; done_testing; }
nfix=$(grep -c . MANIFEST)
if [ "$nfix" -ge 20 ]; then ok "$nfix hostile fixtures (>= 20)"; else not_ok "only $nfix hostile fixtures"; fi

fmt_of() {
	case $1 in *.vhd) echo vpc;; *.hds) echo parallels;; *) echo "${1##*.}";; esac
}

while IFS=$'\t' read -r id file cmd field desc; do
	fmt=$(fmt_of "$file")
	before=$(sha256sum <"$file")
	if [ "$cmd" = read ]; then
		argv=("$CAT" -f "$fmt" "$file")
	else
		argv=("$IMGRAPH" info -f "$fmt" "$file")
	fi
	rm -f "$T/ru"
	(ulimit -v "$VMEM_KB" && exec "$RUSAGE" -t 10 "$T/ru" "${argv[@]}") >"$T/out" 2>"$T/err" </dev/null
	read -r kind code rss ms _ <"$T/ru" || { kind=none code=-1 rss=0 ms=0; }
	why=""
	[ "$kind" = exit ] || why+=" ended by $kind $code;"
	[ "$kind" != exit ] || [ "$code" = 1 ] || why+=" rc=$code, want 1;"
	grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$T/err" && why+=" sanitizer report;"
	[ "$rss" -le "$RSS_KB" ] || why+=" peak RSS ${rss} KiB > $RSS_KB;"
	[ "$ms" -le "$MS" ] || why+=" took ${ms} ms of CPU > $MS;"
	[ "$cmd" = read ] || [ ! -s "$T/out" ] || why+=" output on stdout;"
	grep -qF -- "$file" "$T/err" || why+=" message does not name the file;"
	grep -qE -- "$field" "$T/err" || why+=" message lacks /$field/;"
	[ "$before" = "$(sha256sum <"$file")" ] || why+=" the file changed;"
	if [ -z "$why" ]; then
		ok "$id ($desc): rc=1 ${rss}KiB ${ms}ms CPU"
	else
		not_ok "$id ($desc):$why"
		head -c 400 "$T/err" | diag
	fi
done <MANIFEST

done_testing
