#!/usr/bin/env bash
# live_commit_watch.sh - a reader of base created while QEMU's own commit
# job copies (issue 18, the live path of commit_watch.c), on real
# qemu-storage-daemon processes started and stopped here:
#   1. block-commit of an intermediate (qsd holds an overlay of top, a
#      second overlay is offline), slowed by --rate (the job's speed):
#      `qemu-img create -b base.qcow2` makes new.qcow2 while the job runs.
#      The commit stops (exit 3, names new.qcow2 and the offset), QEMU's
#      job is cancelled and gone, no header changed, every image is clean,
#      top's parents' views are the same; base holds top's data below the
#      offset named and its own above it (QEMU's job did stop there).
#   2. the active commit (mirror, pivot at ready) of the daemon's top:
#      the same stop, no pivot (the daemon's export still serves top).
#   3. the last look, before job-finalize: the commit asks
#      at pending (a terminal, no --yes); new.qcow2 is created while it
#      asks; answered yes, the commit still stops, QEMU's job is gone.
#   4. a libvirt domain's commit of an intermediate (libvirt's API): the
#      same stop, libvirt's job aborted, the domain's chain as it was.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need qemu-storage-daemon qemu-img qemu-io jq python3 libvirtd virsh

D=$T/a
backing() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename" // "none"'; }
# heads DIR IMAGES...: each image's backing file and first 64 KiB (its
# header) as QEMU reads it
heads() {
	local d=$1; shift
	for i in "$@"; do
		echo "$i $(backing "$d/$i.qcow2") $(head -c 65536 "$d/$i.qcow2" | sha256sum)"
	done
}
# new_reader_during ERRFILE COMMIT-ARGS...: the commit in the
# background; once QEMU's job has copied something, new.qcow2 is created
# on base.  No -u: qemu-img create opens base and reads its size while
# QEMU's job writes it (its locks let a reader in, as imgraph's do).
new_reader_during() {
	local err=$1 pid line; shift
	rm -f "$T/fifo"; mkfifo "$T/fifo"
	"$IMGRAPH" commit --yes -p "$@" >"$T/out" 2>"$T/fifo" & pid=$!
	exec 7<"$T/fifo"
	: >"$err"
	while IFS= read -r line <&7; do
		echo "$line" >>"$err"
		case $line in
		*'"phase": "copy"'*'"done": 0,'*) ;;
		*'"phase": "copy"'*)
			qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 \
				"$D/new.qcow2" 32M
			break ;;
		esac
	done
	cat <&7 >>"$err"
	exec 7<&-
	wait $pid
}

# 1. block-commit of an intermediate, an overlay of top in QEMU, one offline.
rm -rf "$D"; mkdir -p "$D"
mkq "$D/base.qcow2" 32M; qio "$D/base.qcow2" -c 'write -P 0x11 0 32M'
mkq "$D/top.qcow2" 32M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x22 0 24M'
mkq "$D/ov1.qcow2" 32M top.qcow2; qio "$D/ov1.qcow2" -c 'write -P 0x44 30M 64k'
mkq "$D/ov2.qcow2" 32M top.qcow2
for i in top ov1 ov2; do guest_raw "$D/$i.qcow2" "$T/$i.raw"; done
heads "$D" base top ov1 ov2 >"$T/h1"
live_qsd_start q1 "$D/ov1.qcow2" || not_ok "qsd q1 started"
new_reader_during "$T/c1.err" --rate 2M --top "$D/top.qcow2" --base "$D/base.qcow2"; rc=$?
check_eq "commit: refused as a conflict (exit 3)" "$rc" 3
check_grep "commit: names the new reader and where base stopped" \
	"new\.qcow2' began reading '.*base\.qcow2' during the copy.*stopped before base changed at [0-9]+" "$T/c1.err"
check_grep "commit: QEMU's job was cancelled (progress)" '"phase": ?"job".*"status": ?"(aborting|null)"' "$T/c1.err"
check_eq "commit: QEMU's job is gone" "$(live_jobs q1)" ""
check_eq "commit: QEMU's node ov1 still reads top" "$(live_backing q1 q1)" top.qcow2
check "commit: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_stop q1
heads "$D" base top ov1 ov2 >"$T/h1b"
check "commit: no header changed" cmp "$T/h1" "$T/h1b"
for i in base top ov1 ov2 new; do qcheck "commit: $i clean" "$D/$i.qcow2"; done
for i in top ov1 ov2; do
	check "commit: $i keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/$i.raw" "$D/$i.qcow2"
done
AT=$(grep -o 'stopped before base changed at [0-9]*' "$T/c1.err" | grep -o '[0-9]*$')
if [ -n "$AT" ] && [ "$AT" -lt $((24 << 20)) ]; then
	ok "commit: QEMU's job stopped at $AT, before its end (24 MiB)"
	qemu-img convert -U -O raw "$D/base.qcow2" "$T/base.raw"
	check "commit: base holds top's data below it" \
		cmp -s -n "$AT" "$T/top.raw" "$T/base.raw"
	check "commit: base keeps its own data from there on" \
		cmp -s <(tail -c +$((AT + 1)) "$T/base.raw" | head -c $(((24 << 20) - AT))) \
		<(head -c $(((24 << 20) - AT)) /dev/zero | tr '\0' '\021')
else
	not_ok "commit: QEMU's job did not stop before its end (at '$AT')"
fi
check "commit: new.qcow2 reads what the message says (base as left)" \
	qemu-img compare -q -f raw -F qcow2 "$T/base.raw" "$D/new.qcow2"
"$IMGRAPH" plan --output=json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p1.json"
check_eq "commit: the rerun's plan has new.qcow2 as a reader of base" \
	"$(jq -r '[.conflicts[] | select(.message | test("new\\.qcow2"))] | length > 0' "$T/p1.json")" true

# 2. Active commit of the daemon's own top: stopped, no pivot.
rm -rf "$D"; mkdir -p "$D"
mkq "$D/base.qcow2" 32M; qio "$D/base.qcow2" -c 'write -P 0x11 0 32M'
mkq "$D/top.qcow2" 32M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x22 0 24M'
guest_raw "$D/top.qcow2" "$T/top2.raw"
heads "$D" base top >"$T/h2"
live_qsd_start q2 "$D/top.qcow2" --nbd || not_ok "qsd q2 started"
new_reader_during "$T/c2.err" --rate 2M --top "$D/top.qcow2"; rc=$?
check_eq "active: refused as a conflict (exit 3)" "$rc" 3
check_grep "active: names the new reader, the bytes QEMU copied" \
	"new\.qcow2' began reading '.*base\.qcow2' during the copy.*cancelled after it copied [0-9]+ bytes" "$T/c2.err"
check_eq "active: QEMU's job is gone" "$(live_jobs q2)" ""
check_eq "active: no pivot, the export still serves top's node" \
	"$(live_qmp q2 query-block-exports | jq -r '.[0]."node-name"')" q2
check "active: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_stop q2
heads "$D" base top >"$T/h2b"
check "active: no header changed" cmp "$T/h2" "$T/h2b"
for i in base top new; do qcheck "active: $i clean" "$D/$i.qcow2"; done
check "active: top keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/top2.raw" "$D/top.qcow2"

# 3. The last look, before job-finalize: created while the commit asks
# (through a pseudo-terminal) whether to relink, at pending.
rm -rf "$D"; mkdir -p "$D"
mkq "$D/base.qcow2" 32M; qio "$D/base.qcow2" -c 'write -P 0x11 0 32M'
mkq "$D/top.qcow2" 32M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x22 0 24M'
mkq "$D/ov1.qcow2" 32M top.qcow2
for i in top ov1; do guest_raw "$D/$i.qcow2" "$T/$i.4"; done
heads "$D" base top ov1 >"$T/h4"
live_qsd_start q4 "$D/ov1.qcow2" || not_ok "qsd q4 started"
cat >"$T/ask.py" <<'PY'
import os, pty, subprocess, sys
img, d = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(img, [img, "commit", "--top", d + "/top.qcow2", "--base", d + "/base.qcow2"])
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
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                        "base.qcow2", "-F", "qcow2", d + "/new.qcow2", "32M"], check=True)
        os.write(fd, b"y\n")
until(b"\0")
sys.stdout.write(buf.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
python3 "$T/ask.py" "$IMGRAPH" "$D" >"$T/c4.out"; rc=$?
check_eq "at pending: refused as a conflict (exit 3)" "$rc" 3
check_grep "at pending: it asked, then names the new reader" \
	"new\.qcow2' began reading '.*base\.qcow2' during the copy" "$T/c4.out"
check_eq "at pending: QEMU's job is gone, its node still reads top" \
	"$(live_jobs q4) $(live_backing q4 q4)" " top.qcow2"
check "at pending: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_stop q4
heads "$D" base top ov1 >"$T/h4b"
check "at pending: no header changed" cmp "$T/h4" "$T/h4b"
for i in base top ov1 new; do qcheck "at pending: $i clean" "$D/$i.qcow2"; done
for i in top ov1; do
	check "at pending: $i keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/$i.4" "$D/$i.qcow2"
done

# 4. libvirt: the domain runs vm <- top <- base, top into base.
V="virsh -q -c qemu:///system"
if ! live_libvirt_start; then
	not_ok "libvirtd started"; done_testing
fi
rm -rf "$D"; mkdir -p "$D"
mkq "$D/base.qcow2" 32M; qio "$D/base.qcow2" -c 'write -P 0x11 0 32M'
mkq "$D/top.qcow2" 32M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x22 0 24M'
mkq "$D/vm.qcow2" 32M top.qcow2
for i in top vm; do guest_raw "$D/$i.qcow2" "$T/$i.3"; done
dom=imgraph-w$$
live_domain_start "$dom" "$D/vm.qcow2" || { not_ok "domain started"; done_testing; }
heads "$D" base top vm >"$T/h3"
new_reader_during "$T/c3.err" --rate 2M --top "$D/top.qcow2" --base "$D/base.qcow2"; rc=$?
check_eq "libvirt: refused as a conflict (exit 3)" "$rc" 3
check_grep "libvirt: names the new reader" \
	"new\.qcow2' began reading '.*base\.qcow2' during the copy" "$T/c3.err"
check_eq "libvirt: no block job on the disk" \
	"$($V blockjob "$dom" vda --raw 2>/dev/null | grep -c 'type=')" 0
check_eq "libvirt: the domain's chain as it was" \
	"$($V dumpxml "$dom" | grep -o "file='[^']*'" | sed "s|.*/||; s|'||" | tr '\n' ' ')" \
	"vm.qcow2 top.qcow2 base.qcow2 "
check "libvirt: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_domain_stop "$dom"
heads "$D" base top vm >"$T/h3b"
check "libvirt: no header changed" cmp "$T/h3" "$T/h3b"
for i in base top vm new; do qcheck "libvirt: $i clean" "$D/$i.qcow2"; done
for i in top vm; do
	check "libvirt: $i keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/$i.3" "$D/$i.qcow2"
done

done_testing
