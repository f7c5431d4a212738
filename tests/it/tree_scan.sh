#!/bin/bash
# tree_scan.sh - imgraph tree on real qemu-img pools: chains, siblings,
# outside backing files, dev:ino identity, and every bad reference (missing,
# json:/nbd:, FIFO, directory, device, loops via self/2-cycle/symlink/
# hardlink, ELOOP symlinks) as error nodes - never a crash or hang, nothing
# written (hash before/after).
. "$(dirname "$0")/lib.sh"
need_tools strace
# LeakSanitizer cannot run under ptrace: runs traced by strace skip only
# the leak check of a sanitized binary.
NOLSAN="env ASAN_OPTIONS=detect_leaks=0"

P=$T/pool
mkdir -p "$P/sub" "$T/out"
cd "$P" || exit 1

# base <- mid <- top, base <- sub/sib (relative ../), out/ext <- ext-ov
mkq base.qcow2 1M
qio base.qcow2 -c 'write -P 0x11 0 64k'
mkq mid.qcow2 1M base.qcow2 qcow2
mkq top.qcow2 1M mid.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x22 64k 64k'
mkq sub/sib.qcow2 1M ../base.qcow2 qcow2
mkq "$T/out/ext.qcow2" 2M
mkq ext-ov.qcow2 2M "$T/out/ext.qcow2" qcow2
# a raw disk counts by name; a text file does not
qemu-img create -q -f raw disk.raw 1M
echo "not an image" > notes.txt
ln -s top.qcow2 top-link.qcow2     # same node as top.qcow2
snap_dir "$P" > "$T/before"; snap_dir "$T/out" >> "$T/before"

check_rc "tree (human) exits 0" 0 timeout 20 "$IMGRAPH" tree
cp "$T/.out" "$T/h1"
check_grep "base is a root with 1 child (non-recursive)" \
	'^base\.qcow2  qcow2  1 MiB virtual, .* allocated  1 child$' "$T/h1"
check_grep "mid under base" '^  mid\.qcow2  qcow2 ' "$T/h1"
check_grep "top under mid" '^    top\.qcow2  qcow2 .*0 children' "$T/h1"
check_nogrep "symlink to top is not a second node" 'top-link' "$T/h1"
check_grep "raw disk by name" '^disk\.raw  raw  1 MiB virtual' "$T/h1"
check_nogrep "text file not in the pool" 'notes' "$T/h1"
check_grep "backing file outside the pool is shown, flagged" \
	'out/ext\.qcow2  qcow2  2 MiB .*\[outside pool\]' "$T/h1"

check_rc "tree -r" 0 "$IMGRAPH" tree -r .
cp "$T/.out" "$T/h2"
check_grep "-r: base has 2 children" '^base\.qcow2  qcow2 .*  2 children$' "$T/h2"
check_grep "-r: sibling via ../ is base's child" '^  sub/sib\.qcow2  qcow2' "$T/h2"

# Two spellings and a symlink of the same directory are one pool.
check_rc "tree of ./, ../pool and sub" 0 "$IMGRAPH" tree ./ "../pool" sub
check_eq "each image once" "$(grep -c 'top\.qcow2' "$T/.out")" 1

check_rc "tree --output=json" 0 "$IMGRAPH" tree -r --output=json .
cp "$T/.out" "$T/j"
check_grep "json: qemu-img key names" '"backing-filename": "\.\./base\.qcow2"' "$T/j"
check_grep "json: resolved against the overlay's directory" \
	'"full-backing-filename": "sub/\.\./base\.qcow2"' "$T/j"
check_grep "json: edges carry the offline backing perms" \
	'"role": "backing"' "$T/j"
check_rc "tree --output=yaml" 0 "$IMGRAPH" tree --output=yaml .
check_grep "yaml: nodes list" '^nodes:' "$T/.out"
check_rc "bad --output is a usage error" 2 "$IMGRAPH" tree --output=xml .
check_rc "missing PATH is an error" 1 "$IMGRAPH" tree "$T/nonexistent"
check_grep "error names the path" 'nonexistent: cannot stat' "$T/.err"

# ---- bad references: each an error node with a message -------------------
B=$T/bad
mkdir -p "$B"
cd "$B" || exit 1
qemu-img create -q -f qcow2 -u -b self.qcow2 -F qcow2 tmp.qcow2 1M
mv tmp.qcow2 self.qcow2
qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M
qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M
ln -s sl.qcow2 sl-link
qemu-img create -q -f qcow2 -u -b sl-link -F qcow2 sl.qcow2 1M
qemu-img create -q -f qcow2 -u -b hl-2 -F qcow2 hl.qcow2 1M
ln hl.qcow2 hl-2
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 miss.qcow2 1M
qemu-img create -q -f qcow2 -u \
	-b 'json:{"driver":"qcow2","file":{"driver":"file","filename":"/etc/passwd"}}' \
	-F qcow2 json.qcow2 1M
qemu-img create -q -f qcow2 -u -b nbd://127.0.0.1:1/x -F raw nbd.qcow2 1M
mkfifo fifo
qemu-img create -q -f qcow2 -u -b fifo -F raw onfifo.qcow2 1M
mkdir adir
qemu-img create -q -f qcow2 -u -b adir -F raw ondir.qcow2 1M
qemu-img create -q -f qcow2 -u -b /dev/null -F raw ondev.qcow2 1M
ln -s e2 e1; ln -s e1 e2
qemu-img create -q -f qcow2 -u -b e1 -F raw oneloop.qcow2 1M
snap_dir "$B" > "$T/bad_before"

check_rc "tree of bad references exits 0 (no hang)" 0 timeout 20 \
	$NOLSAN strace -f -o "$T/strace" -e trace=open,openat,connect "$IMGRAPH" tree .
cp "$T/.out" "$T/hb"
check_grep "self loop" 'self\.qcow2 .*\[error, loop\]' "$T/hb"
check_grep "self loop names dev:ino" \
	'backing loop: self\.qcow2 \([0-9]+:[0-9]+:[0-9]+\) -> self\.qcow2' "$T/hb"
check_grep "2-cycle" 'backing loop: a\.qcow2 \([0-9:]+\) -> b\.qcow2 \([0-9:]+\) -> a\.qcow2' "$T/hb"
check_grep "symlink loop (same dev:ino)" 'backing loop: sl\.qcow2 .* -> sl\.qcow2' "$T/hb"
check_grep "hardlink loop" 'backing loop: hl-2 .* -> hl-2|backing loop: hl\.qcow2 .* -> hl\.qcow2' "$T/hb"
check_grep "missing backing file" \
	'gone\.qcow2: backing file of .miss\.qcow2. cannot be opened: No such file' "$T/hb"
check_grep "json: name is external" '^json:\{.*\[outside pool, external\]' "$T/hb"
check_grep "nbd: name is external" '^nbd://127\.0\.0\.1:1/x .*external' "$T/hb"
check_grep "FIFO refused" "fifo: backing file of 'onfifo.qcow2' is a FIFO" "$T/hb"
check_grep "directory refused" "adir: backing file of 'ondir.qcow2' is a directory" "$T/hb"
check_grep "device refused" "/dev/null: backing file of 'ondev.qcow2' is a character device" "$T/hb"
check_grep "ELOOP symlinks" 'e1: backing file of .oneloop\.qcow2. cannot be opened: Too many levels' "$T/hb"
check_nogrep "FIFO, device, json target, /etc/passwd never opened" \
	'open(at)?\(.*("[^"]*fifo"|/dev/null"|/etc/passwd|"e1")' "$T/strace"
check_nogrep "no network for nbd:" 'connect\(' "$T/strace"
check_rc "tree json of bad references" 0 timeout 20 "$IMGRAPH" tree --output=json .
check_grep "json: loop flag" '"loop"' "$T/.out"
check_grep "json: missing flag" '"missing"' "$T/.out"

snap_dir "$B" > "$T/bad_after"
check "bad pool: no file changed" cmp -s "$T/bad_before" "$T/bad_after"
# ---- recorded formats are believed, never replaced by a probe -------------
F=$T/fmt
mkdir -p "$F"
cd "$F" || exit 1
# a qcow2 header inside a file an overlay records as raw (B-26)
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw disk.img 1M
qemu-img create -q -f qcow2 -u -b disk.img -F raw onraw.qcow2 1M
# an unsupported recorded format (B-25, iotest 114): vvfat is a QEMU
# driver imgraph will never read (vmdk, used here before, now is one)
mkq real.qcow2 1M
qemu-img create -q -f qcow2 -u -b real.qcow2 -F vvfat onvmdk.qcow2 1M
snap_dir "$F" > "$T/fmt_before"
check_rc "tree of recorded formats" 0 $NOLSAN strace -f -o "$T/st_fmt" \
	-e trace=open,openat "$IMGRAPH" tree .
cp "$T/.out" "$T/hf"
check_grep "recorded raw wins over the qcow2 header, flagged" \
	'^disk\.img  raw  192 KiB virtual, .*\[raw with image header\]' "$T/hf"
check_nogrep "its forged backing name is never opened" '/etc/passwd' "$T/st_fmt"
check_grep "unsupported recorded format: error, no probing" \
	"real\.qcow2: backing format 'vvfat' recorded by 'onvmdk\.qcow2' is not supported \(not probing instead\)" "$T/hf"
snap_dir "$F" > "$T/fmt_after"
check "formats pool: no file changed" cmp -s "$T/fmt_before" "$T/fmt_after"

snap_dir "$P" > "$T/after"; snap_dir "$T/out" >> "$T/after"
check "pool: no file changed" cmp -s "$T/before" "$T/after"
done_testing
