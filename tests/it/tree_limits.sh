#!/bin/bash
# tree_limits.sh - bounded scans and the probing rule:
#  * a 1000-deep qcow2 chain scans with `ulimit -n 32` (open, read header,
#    close), bounded memory, and the part deeper than 256 in error;
#  * the same chain reached from one pool file stops after 256 files
#    outside the pool, before opening more;
#  * a raw file carrying a qcow2 header naming /etc/passwd, referenced
#    without a backing format: /etc/passwd is never opened (strace), and a
#    plan through it is refused.
. "$(dirname "$0")/lib.sh"
need_tools strace
# LeakSanitizer cannot run under ptrace: runs traced by strace skip only
# the leak check of a sanitized binary.
NOLSAN="env ASAN_OPTIONS=detect_leaks=0"

# gen_chain DIR N: L0000 <- L0001 <- ... <- L(N-1), real qcow2 images made
# by patching the backing name of one qemu-img template (same length).
gen_chain() {
	local d=$1 n=$2 off i
	mkdir -p "$d"
	qemu-img create -q -f qcow2 "$d/L0000.qcow2" 1M
	qemu-img create -q -f qcow2 -u -b L0000.qcow2 -F qcow2 "$T/tmpl.qcow2" 1M
	off=$(od -An -t u8 --endian=big -j 8 -N 8 "$T/tmpl.qcow2" | tr -d ' ')
	for ((i = 1; i < n; i++)); do
		cp "$T/tmpl.qcow2" "$d/$(printf 'L%04d.qcow2' "$i")"
		printf 'L%04d.qcow2' $((i - 1)) | dd of="$d/$(printf 'L%04d.qcow2' "$i")" \
			bs=1 seek="$off" conv=notrunc status=none
	done
}

C=$T/chain
gen_chain "$C" 1000
check "generated layer 999 is a qcow2 image naming L0998" \
	sh -c "qemu-img info -U '$C/L0999.qcow2' | grep -q 'backing file: L0998.qcow2'"
snap_dir "$C" > "$T/before"

cd "$C" || exit 1
check_rc "1000-deep chain, 32 fds: tree exits 0" 0 \
	bash -c "ulimit -n 32; exec timeout 60 '$IMGRAPH' tree"
cp "$T/.out" "$T/deep"
check_eq "744 layers beyond the cap are in error" \
	"$(grep -c 'backing chain of [0-9]* images is deeper than the limit of 256' "$T/deep")" 744
check_grep "layer 255 is fine" '^ *(\[depth 255\] )?L0255\.qcow2  qcow2 .*  1 child$' "$T/deep"
check_grep "layer 256 is flagged" 'L0256\.qcow2  qcow2 .*\[error, too deep\]' "$T/deep"
if grep -qa __asan_init "$IMGRAPH"; then
	echo "ok - # SKIP max RSS: sanitized binary"
elif [ -x /usr/bin/time ]; then
	/usr/bin/time -f '%M' -o "$T/rss" "$IMGRAPH" tree >/dev/null 2>&1
	rss=$(tail -1 "$T/rss")
	if [ "$rss" -lt 65536 ]; then ok "max RSS ${rss} KiB < 64 MiB"
	else not_ok "max RSS ${rss} KiB >= 64 MiB"; fi
else
	echo "ok - # SKIP /usr/bin/time not installed"
fi
check_rc "json of the deep chain" 0 "$IMGRAPH" tree --output=json

# Reached from one pool file: everything else is outside the pool.
check_rc "deep chain from one file exits 0" 0 \
	bash -c "ulimit -n 32; exec $NOLSAN strace -f -o '$T/st' -e trace=openat '$IMGRAPH' tree L0999.qcow2"
check_grep "stops after 256 outside files" \
	'not opened: more than 256 backing files in a row outside the pool' "$T/.out"
n=$(grep -c 'openat(.*"L[0-9]*\.qcow2"' "$T/st")
if [ "$n" -le 520 ]; then ok "opened $n chain files (<= 2 per followed layer)"
else not_ok "opened $n chain files"; fi
check_nogrep "L0100 and below never opened" 'openat\(.*"L0(0|1)[0-9][0-9]\.qcow2"' "$T/st"
snap_dir "$C" > "$T/after"
check "deep chain: no file changed" cmp -s "$T/before" "$T/after"

# ---- CVE-2008-2004 shape ------------------------------------------------
V=$T/cve
mkdir -p "$V/sub"
cd "$V" || exit 1
# A "raw" disk whose bytes are a qcow2 header naming /etc/passwd.
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw disk.bin 1M
# Overlays naming it without a backing format (qemu-img 7.2 insists on -F,
# so the format extension is removed afterwards, as an old image has it).
strip_fmt() {
	local f=$1 off
	off=$(grep -obUaP '\xe2\x79\x2a\xca' "$f" | head -1 | cut -d: -f1)
	printf '\0\0\0\0' | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
qemu-img create -q -f qcow2 -u -b disk.bin -F raw ov.qcow2 1M
strip_fmt ov.qcow2
qemu-img create -q -f qcow2 -u -b ../disk.bin -F raw sub/ov2.qcow2 1M
strip_fmt sub/ov2.qcow2
check "overlay records no backing format" \
	sh -c "! qemu-img info -U ov.qcow2 | grep -q 'backing file format'"
mkdir "$V/alone"
cp disk.bin "$V/alone/guest.raw"
snap_dir "$V" > "$T/cve_before"
for pool in . sub "ov.qcow2"; do
	check_rc "tree $pool exits 0" 0 $NOLSAN strace -f -o "$T/st2" \
		-e trace=open,openat,openat2,stat,newfstatat,statx,lstat,readlink \
		"$IMGRAPH" tree "$pool"
	check_nogrep "tree $pool: /etc/passwd never opened nor stat'ed" \
		'/etc/passwd' "$T/st2"
	check_grep "tree $pool: shown as an unsafe probe" \
		'disk\.bin  qcow2 .*\[.*probed, unsafe probe\]' "$T/.out"
	check_grep "tree $pool: warning names the reference it skipped" \
		"its backing file '/etc/passwd' is not opened" "$T/.out"
done
# Named like a raw disk but carrying a qcow2 header, referenced by nobody.
check_rc "tree of a lone *.raw with a qcow2 header" 0 $NOLSAN strace -f -o "$T/st3" \
	-e trace=open,openat,openat2 "$IMGRAPH" tree "$V/alone"
check_nogrep "lone *.raw: /etc/passwd never opened" '/etc/passwd' "$T/st3"
check_rc "plan through the probed image is refused" 3 "$IMGRAPH" plan \
	--top ov.qcow2 --base disk.bin
check_grep "refusal says why" 'format was probed|does not record the format' "$T/.out"
snap_dir "$V" > "$T/cve_after"
check "cve pool: no file changed" cmp -s "$T/cve_before" "$T/cve_after"
done_testing
