#!/usr/bin/env bash
# The editor and a running QEMU (issue 17, point 6): images a
# qemu-storage-daemon holds are marked in the tree with its PID and name;
# the plan screen shows the live part; the progress screen shows QEMU's
# job and its status; the commit through the editor leaves QEMU's overlay
# and the offline one on base, judged by QEMU and qemu-img.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"
. "$(dirname "$0")/../it/lib_live.sh"
trap 'kill_all; live_cleanup; rm -rf "$T"' EXIT
live_need qemu-storage-daemon qemu-img qemu-io jq python3

D=$T/pool
mkdir -p "$D"
mkq "$D/base.qcow2" 16M; qio "$D/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$D/mid.qcow2" 16M base.qcow2; qio "$D/mid.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$D/top.qcow2" 16M mid.qcow2; qio "$D/top.qcow2" -c 'write -P 0x33 2M 2M'
mkq "$D/ov1.qcow2" 16M top.qcow2
mkq "$D/ov2.qcow2" 16M top.qcow2
for v in ov1 ov2; do guest_raw "$D/$v.qcow2" "$T/$v.0"; done
live_qsd_start qe "$D/ov1.qcow2" --nbd || not_ok "qsd started"
PID=$(live_pid qe)

start 140 40 -- --rate 256K "$D"
see "editor open" "5 images"
see "tree: QEMU's overlay marked with PID and name" \
	"ov1.qcow2 \[live: process $PID \(qemu-storage-d"
see "tree: its chain too" "top.qcow2 \[live: process $PID "
not_see "tree: the offline overlay is not marked" "ov2.qcow2 \[live"
select_img top.q; keys t
select_img base; keys b
see "the pair is clean" "top.qcow2 into base.qcow2: clean"
keys p
see "plan screen: the live part" "live part: +PID $PID \(qemu-storage-da\), QEMU "
see "plan screen: the job" "job: +block-commit, commit of an intermediate"
see "plan screen: who relinks what" "imgraph relinks offline: .*ov2.qcow2"
keys Escape
keys c
see "commit: asked first" "\(y/N\)"
keys y
see "progress: QEMU's job running" "QEMU job imgraph-[0-9a-f]+: running" 20
see "relink question when the job is pending" "Relink every parent of top to base now" 60
keys y
see "commit finished" "Commit finished" 30
check_eq "QEMU's node names base" "$(live_backing qe qe)" base.qcow2
check_eq "ov2 names base" \
	"$(qemu-img info -U --output=json "$D/ov2.qcow2" | jq -r '."backing-filename"')" base.qcow2
keys Escape
keys q
check_eq "exit 0" "$(wait_exit)" 0
live_stop qe
for v in ov1 ov2; do
	guest_raw "$D/$v.qcow2" "$T/$v.1"
	check "$v: guest view unchanged" cmp "$T/$v.0" "$T/$v.1"
done
qcheck "base passes qemu-img check" "$D/base.qcow2"
done_testing
