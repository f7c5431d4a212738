#!/usr/bin/env bash
# live_commit_libvirt.sh - a live commit through libvirt's API (issue 17,
# points 3 and 4) on transient TCG domains with no OS, started here:
#   1. commit of an intermediate: the domain runs vm <- top <- mid <- base,
#      top into base; libvirt relinks vm, imgraph the offline sibling ov2
#      in the same run; virsh domblklist, the XML's backingStore chain and
#      every view are checked;
#   2. active commit with pivot: the domain's disk moves to base;
#   3. --offline refuses; the domain is never tainted (no raw QMP);
#   4. Ctrl-C aborts libvirt's job; kill -9 of imgraph mid-job, then
#      recover aborts it: the chain and every header as they were.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need libvirtd virsh qemu-system-x86_64 qemu-img qemu-io jq

V="virsh -q -c qemu:///system"
backing() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename"'; }
# chain DOM: the disk's chain as libvirt shows it, file names only
chain() {
	$V dumpxml "$1" | python3 -c '
import sys, xml.etree.ElementTree as E
d = E.fromstring(sys.stdin.read()).find("devices/disk")
out = [d.find("source").get("file")]
b = d.find("backingStore")
while b is not None and b.find("source") is not None:
    out.append(b.find("source").get("file")); b = b.find("backingStore")
print(" ".join(x.rsplit("/", 1)[-1] for x in out))'
}

if ! live_libvirt_start; then
	not_ok "libvirtd started"; tail -n 20 /var/log/libvirt/libvirtd.log 2>/dev/null | diag
	done_testing
fi
ok "libvirtd answers"

# 1. Commit of an intermediate, with an offline sibling.
D=$T/a; mkdir -p "$D"
mkq "$D/base.qcow2" 16M; qio "$D/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$D/mid.qcow2" 16M base.qcow2; qio "$D/mid.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$D/top.qcow2" 16M mid.qcow2; qio "$D/top.qcow2" -c 'write -P 0x33 2M 2M'
mkq "$D/vm.qcow2" 16M top.qcow2; qio "$D/vm.qcow2" -c 'write -P 0x44 3M 64k'
mkq "$D/ov2.qcow2" 16M top.qcow2; qio "$D/ov2.qcow2" -c 'write -P 0x55 5M 64k'
for v in vm ov2; do guest_raw "$D/$v.qcow2" "$T/$v.0"; done
dom=imgraph-c$$
live_domain_start "$dom" "$D/vm.qcow2" || { not_ok "domain started"; done_testing; }
check_eq "libvirt's chain before" "$(chain "$dom")" "vm.qcow2 top.qcow2 mid.qcow2 base.qcow2"
"$IMGRAPH" plan --output=json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p1.json"
check_eq "plan: runnable, libvirt's commit of an intermediate" \
	"$(jq -r '"\(.runnable) \(.live.via) \(.live.job) \(.live.domain) \(.live.disk)"' "$T/p1.json")" \
	"true libvirt commit $dom vda"
check_eq "plan: libvirt relinks vm, imgraph ov2" \
	"$(jq -r '[.parents[] | "\(.filename | split("/") | last)=\(."relinked-by")"] | sort | join(" ")' "$T/p1.json")" \
	"ov2.qcow2=imgraph vm.qcow2=qemu"
check_rc "--offline refuses" 3 "$IMGRAPH" plan --offline --top "$D/top.qcow2" --base "$D/base.qcow2"
check_rc "commit exits 0" 0 "$IMGRAPH" commit --yes --top "$D/top.qcow2" --base "$D/base.qcow2"
cp "$T/.err" "$T/c1.err"
check_eq "virsh domblklist: the disk is still vm" \
	"$($V domblklist "$dom" | awk '{print $2}' | xargs basename)" vm.qcow2
check_eq "the XML's backingStore chain: vm on base" "$(chain "$dom")" "vm.qcow2 base.qcow2"
check_eq "vm's header names base (relative kept)" "$(backing "$D/vm.qcow2")" base.qcow2
check_eq "offline ov2 names base, in the same run" "$(backing "$D/ov2.qcow2")" base.qcow2
check "no journal left" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
check_nogrep "the domain is not tainted" "custom-monitor" "/run/libvirt/qemu/$dom.xml"
live_domain_stop "$dom"
for v in vm ov2; do
	guest_raw "$D/$v.qcow2" "$T/$v.1"
	check "$v: view intact" cmp "$T/$v.0" "$T/$v.1"
done
qcheck "qemu-img check base" "$D/base.qcow2"

# 2. Active commit with pivot.
D=$T/b; mkdir -p "$D"
mkq "$D/base.qcow2" 16M; qio "$D/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$D/top.qcow2" 16M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x33 2M 2M'
guest_raw "$D/top.qcow2" "$T/top.0"
dom2=imgraph-a$$
live_domain_start "$dom2" "$D/top.qcow2" || { not_ok "domain 2 started"; done_testing; }
"$IMGRAPH" plan --output=json --top "$D/top.qcow2" >"$T/p2.json"
check_eq "active: plan says active commit with pivot" \
	"$(jq -r '"\(.runnable) \(.live.via) \(.live.job) \(.live.pivot)"' "$T/p2.json")" \
	"true libvirt active-commit true"
check_rc "active: commit exits 0" 0 "$IMGRAPH" commit --yes --top "$D/top.qcow2"
check_eq "active: virsh domblklist shows base" \
	"$($V domblklist "$dom2" | awk '{print $2}' | xargs basename)" base.qcow2
check_eq "active: the XML's chain is base alone" "$(chain "$dom2")" "base.qcow2"
live_domain_stop "$dom2"
guest_raw "$D/base.qcow2" "$T/base.1"
check "active: base shows top's view" cmp "$T/top.0" "$T/base.1"
qcheck "active: qemu-img check base" "$D/base.qcow2"

# 4. Ctrl-C, and kill -9 + recover, while libvirt's job runs (slowly).
D=$T/c; mkdir -p "$D"
mkq "$D/base.qcow2" 16M
mkq "$D/top.qcow2" 16M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x33 0 8M'
mkq "$D/vm.qcow2" 16M top.qcow2
mkq "$D/ov2.qcow2" 16M top.qcow2
dom3=imgraph-k$$
live_domain_start "$dom3" "$D/vm.qcow2" || { not_ok "domain 3 started"; done_testing; }
job_runs() { # until virsh shows a block job on vda
	for _ in $(seq 1 200); do
		$V blockjob "$dom3" vda --raw 2>/dev/null | grep -q "type=" && return 0
		sleep 0.05
	done
	return 1
}
# someone else's job on the disk (1 MiB/s), then aborted
$V blockcommit "$dom3" vda --top "$D/top.qcow2" --base "$D/base.qcow2" --bandwidth 1 >/dev/null
job_runs || not_ok "virsh blockcommit started"
check_rc "a block job already on the disk: plan refuses" 3 \
	"$IMGRAPH" plan --top "$D/top.qcow2"
check_grep "... and says so" "disk vda: a block job is already running on it" "$T/.out"
$V blockjob "$dom3" vda --abort >/dev/null
"$IMGRAPH" commit --yes --rate 64K --top "$D/top.qcow2" >/dev/null 2>"$T/c4.err" & pid=$!
job_runs || not_ok "Ctrl-C: the job started"
kill -INT "$pid"; wait "$pid"; rc=$?
check_eq "Ctrl-C: exit 1, cancelled" "$rc $(grep -c 'commit cancelled' "$T/c4.err")" "1 1"
check_eq "Ctrl-C: no job, the chain as it was" \
	"$($V blockjob "$dom3" vda --raw 2>/dev/null | grep -c 'type=') $(chain "$dom3")" \
	"0 vm.qcow2 top.qcow2 base.qcow2"
check "Ctrl-C: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
"$IMGRAPH" commit --yes --rate 64K --top "$D/top.qcow2" >/dev/null 2>&1 & pid=$!
job_runs || not_ok "kill: the job started"
kill -9 "$pid"; wait "$pid" 2>/dev/null
check "kill: the journal is left" [ -e "$D/.imgraph-journal-base.qcow2" ]
check_rc "kill: recover exits 0" 0 "$IMGRAPH" recover "$D"
check_eq "kill: recover aborted libvirt's job; the chain as it was" \
	"$($V blockjob "$dom3" vda --raw 2>/dev/null | grep -c 'type=') $(chain "$dom3")" \
	"0 vm.qcow2 top.qcow2 base.qcow2"
check_eq "kill: all still on top" "$(backing "$D/vm.qcow2") $(backing "$D/ov2.qcow2")" "top.qcow2 top.qcow2"
check "kill: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_domain_stop "$dom3"

done_testing
