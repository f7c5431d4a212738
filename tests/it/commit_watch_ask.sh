#!/usr/bin/env bash
# commit_watch_ask.sh - the offline commit's last look for a new reader of
# base (commit_watch.c) comes after the relink question, not before it:
#   1. a terminal, no --yes: while the commit asks whether to relink,
#      `qemu-img create -b base.qcow2` makes new.qcow2.  Answered yes, the
#      commit still stops (exit 3, names new.qcow2), no header is
#      rewritten, no journal is left, top's parent keeps reading top and
#      every image is clean (judged with qemu-img).
#   2. the same with a reader of the plan's intermediate (mid), created
#      while it asks: the same stop.
#   3. an image the plan saw reading nothing (other.qcow2) rebased onto
#      base while it asks (`qemu-img rebase -u`): as new a reader of base
#      as a new file, the same stop, naming it.
#   4. nothing created while it asks: answered yes, the relink is done
#      (the look after the question refuses only a new reader).
. "$(dirname "$0")/lib.sh"
need_tools python3 jq

D=$T/pool
heads() { # DIR NAME...: the first 64 KiB of each image (its header)
	local d=$1 i; shift
	for i in "$@"; do head -c 65536 "$d/$i.qcow2" | sha256sum; done
}
cat >"$T/ask.py" <<'PY'
import os, pty, subprocess, sys
img, d, top, base, reads = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.chdir(d)
    os.execv(img, [img, "commit", "--top", top, "--base", base, "."])
buf = b""
def until(s):
    global buf
    while s not in buf:
        try:
            b = os.read(fd, 4096)
        except OSError:
            b = b""
        if not b:
            return False
        buf += b
    return True
if until(b"as planned?"):
    os.write(fd, b"y\n")
    if until(b"Relink"):
        if reads.startswith("rebase:"):
            subprocess.run(["qemu-img", "rebase", "-u", "-b", reads[7:],
                            "-F", "qcow2", d + "/other.qcow2"],
                           check=True, cwd=d)
        elif reads != "-":
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                            reads, "-F", "qcow2", d + "/new.qcow2", "32M"],
                           check=True, cwd=d)
        os.write(fd, b"y\n")
until(b"\0")
sys.stdout.write(buf.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY

build() {
	rm -rf "$D"; mkdir -p "$D"
	mkq "$D/base.qcow2" 32M; qio "$D/base.qcow2" -c 'write -P 0x11 0 32M'
	mkq "$D/mid.qcow2" 32M base.qcow2 qcow2; qio "$D/mid.qcow2" -c 'write -P 0x33 8M 4M'
	mkq "$D/top.qcow2" 32M mid.qcow2 qcow2; qio "$D/top.qcow2" -c 'write -P 0x22 0 4M'
	mkq "$D/vm.qcow2" 32M top.qcow2 qcow2
	mkq "$D/other.qcow2" 32M; qio "$D/other.qcow2" -c 'write -P 0x44 0 1M'
	guest_raw "$D/vm.qcow2" "$T/vm.raw"
	heads "$D" base mid top vm >"$T/h"
}

# asked NAME READS [NEW]: the commit of top into base through a terminal,
# new reader NEW (new.qcow2) of READS made while it asks whether to relink
# (READS rebase:FILE: other.qcow2 rebased onto FILE).
asked() {
	local n=$1 reads=$2 new=${3:-new} rc
	build
	python3 "$T/ask.py" "$IMGRAPH" "$D" top.qcow2 base.qcow2 "$reads" >"$T/$n.out"; rc=$?
	check_grep "$n: it asked whether to relink" "Relink" "$T/$n.out"
	check_eq "$n: refused as a conflict (exit 3)" "$rc" 3
	check_grep "$n: names the new reader" \
		"$new\.qcow2' began reading '.*${reads#rebase:}' during the copy" "$T/$n.out"
	check_eq "$n: vm still reads top" "$(qemu-img info -U --output=json "$D/vm.qcow2" |
		jq -r '."backing-filename"')" top.qcow2
	check "$n: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
	heads "$D" base mid top vm >"$T/h.after"
	check "$n: no header rewritten" cmp "$T/h" "$T/h.after"
	check "$n: vm keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/vm.raw" "$D/vm.qcow2"
	for i in base mid top vm $new; do qcheck "$n: $i clean" "$D/$i.qcow2"; done
}

# ---- 1. a reader of base created while it asks -----------------------------
asked "reader of base" base.qcow2
# ---- 2. a reader of the intermediate ----------------------------------------
asked "reader of mid" mid.qcow2

# ---- 3. an image the plan saw, rebased onto base -----------------------------
asked "rebased onto base" rebase:base.qcow2 other

# ---- 4. nothing new: the relink is done -------------------------------------
build
python3 "$T/ask.py" "$IMGRAPH" "$D" top.qcow2 base.qcow2 - >"$T/3.out"; rc=$?
check_eq "no new reader: the commit completes" "$rc" 0
check_eq "no new reader: vm reads base" "$(qemu-img info -U --output=json "$D/vm.qcow2" |
	jq -r '."backing-filename"')" base.qcow2
check "no new reader: vm keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/vm.raw" "$D/vm.qcow2"
for i in base vm; do qcheck "no new reader: $i clean" "$D/$i.qcow2"; done
done_testing
