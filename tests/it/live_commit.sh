#!/usr/bin/env bash
# live_commit.sh - commit through a running QEMU's own block job (issue 17,
# points 3-5), on real qemu-storage-daemon and qemu-system-x86_64
# processes started and stopped here:
#   1. qsd holds an overlay of top (writable NBD export), another overlay
#      is offline: the plan shows the live part, the commit runs QEMU's
#      block-commit, QEMU's node and the offline overlay both name base,
#      every view is intact (qemu-img convert after the daemon exits);
#   2. active commit of the daemon's own top: the export pivots to base;
#   3. qemu-system-x86_64 -M none, found from its command line alone;
#   4. refusals up front: --offline, a busy monitor, a job already running;
#   5. Ctrl-C cancels QEMU's job; a late opener of an offline overlay
#      found at pending cancels it; QEMU exits mid-job; kill -9 of imgraph
#      mid-job, then recover;
#   6. imgraph killed before each of its own mutating ops (before the
#      job, at pending, after finalize, mid offline relink), then recover:
#      all overlays name the same image, views intact, no job left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need qemu-storage-daemon qemu-system-x86_64 qemu-img qemu-io jq python3

# fixture DIR: base <- mid <- top <- {ov1, ov2}, relative names, each
# layer with its own pattern.
fixture() {
	local d=$1
	rm -rf "$d"; mkdir -p "$d"
	mkq "$d/base.qcow2" 16M; qio "$d/base.qcow2" -c 'write -P 0x11 0 1M'
	mkq "$d/mid.qcow2" 16M base.qcow2; qio "$d/mid.qcow2" -c 'write -P 0x22 1M 1M'
	mkq "$d/top.qcow2" 16M mid.qcow2; qio "$d/top.qcow2" -c 'write -P 0x33 2M 2M'
	mkq "$d/ov1.qcow2" 16M top.qcow2; qio "$d/ov1.qcow2" -c 'write -P 0x44 3M 64k'
	mkq "$d/ov2.qcow2" 16M top.qcow2; qio "$d/ov2.qcow2" -c 'write -P 0x55 5M 64k'
}
# views DIR OUT: each overlay's guest view as raw, into OUT/NAME.raw
views() {
	mkdir -p "$2"
	for v in ov1 ov2; do guest_raw "$1/$v.qcow2" "$2/$v.raw"; done
}
same_views() { # NAME DIR SAVED
	views "$2" "$T/now"
	check "$1" cmp "$3/ov1.raw" "$T/now/ov1.raw"
	cmp -s "$3/ov2.raw" "$T/now/ov2.raw" || not_ok "$1 (ov2)"
}
backing() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename"'; }
plan_json() { "$IMGRAPH" plan --output=json "$@"; }
D=$T/a

# 1. qemu-storage-daemon, commit of an intermediate; ov2 offline.
fixture "$D"; views "$D" "$T/v1"
live_qsd_start q1 "$D/ov1.qcow2" --nbd || not_ok "qsd q1 started"
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p1.json"
check_eq "plan: runnable" "$(jq -r .runnable "$T/p1.json")" true
check_eq "plan: the live part is the daemon's commit of an intermediate" \
	"$(jq -r '.live | "\(.job) \(.pid) \(.device) \(."backend-kind") \(."backing-file")"' "$T/p1.json")" \
	"commit $(live_pid q1) q1 export base.qcow2"
check_eq "plan: QEMU relinks ov1, imgraph ov2" \
	"$(jq -r '[.parents[] | "\(.filename | split("/") | last)=\(."relinked-by")"] | sort | join(" ")' "$T/p1.json")" \
	"ov1.qcow2=qemu ov2.qcow2=imgraph"
check_eq "plan: node names from QEMU" \
	"$(jq -r '.live."top-node" != null and .live."base-node" != null and (.live."intermediate-nodes" | length) == 1' "$T/p1.json")" true
"$IMGRAPH" plan --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p1.txt"
check_grep "plan (text): live part" "^live part: +PID $(live_pid q1) " "$T/p1.txt"
check_grep "plan (text): offline parents" "imgraph relinks offline: [^,]*/ov2.qcow2$" "$T/p1.txt"
check_rc "commit exits 0" 0 "$IMGRAPH" commit --yes -p --top "$D/top.qcow2" --base "$D/base.qcow2"
cp "$T/.err" "$T/c1.err"
check_grep "progress: JOB_STATUS_CHANGE lines" '"phase": ?"job".*"status": ?"pending"' "$T/c1.err"
check_grep "progress: QEMU's bytes" '"phase": ?"copy".*"done": ?[1-9]' "$T/c1.err"
check_eq "QEMU's node ov1 names base" "$(live_backing q1 q1)" base.qcow2
check_eq "no job left in QEMU" "$(live_jobs q1)" ""
check_eq "ov1's header names base (written by QEMU)" "$(backing "$D/ov1.qcow2")" base.qcow2
check_eq "offline ov2 names base" "$(backing "$D/ov2.qcow2")" base.qcow2
check "no journal left" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
live_stop q1
same_views "views intact after the daemon exits" "$D" "$T/v1"
qcheck "qemu-img check base" "$D/base.qcow2"
qcheck "qemu-img check ov1" "$D/ov1.qcow2"
qcheck "qemu-img check ov2" "$D/ov2.qcow2"

# 2. Active commit of the daemon's own top: the export moves to base.
rm -rf "$D"; mkdir -p "$D"
mkq "$D/base.qcow2" 16M; qio "$D/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$D/top.qcow2" 16M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x33 2M 2M'
live_qsd_start q2 "$D/top.qcow2" --nbd || not_ok "qsd q2 started"
plan_json --top "$D/top.qcow2" >"$T/p2.json"
check_eq "active: plan says active commit with pivot, top dropped" \
	"$(jq -r '"\(.runnable) \(.live.job) \(.live.pivot) \(."drop-top") \(.parents | length)"' "$T/p2.json")" \
	"true active-commit true true 0"
check_rc "active: commit exits 0" 0 "$IMGRAPH" commit --yes --top "$D/top.qcow2"
check_eq "active: the export serves base's node now" \
	"$(live_qmp q2 query-block-exports | jq -r '.[0]."node-name"')" \
	"$(jq -r '.live."base-node"' "$T/p2.json")"
qemu-io -f raw -c 'write -P 0x66 6M 64k' "nbd+unix:///disk?socket=$T/q2.nbd" >/dev/null
live_stop q2
check "active: base holds top's data" qemu-io -f qcow2 -r -c 'read -P 0x33 2M 2M' "$D/base.qcow2"
check "active: a write through the export after the pivot lands in base" \
	qemu-io -f qcow2 -r -c 'read -P 0x66 6M 64k' "$D/base.qcow2"
qcheck "active: qemu-img check base" "$D/base.qcow2"

# 3. qemu-system-x86_64 -M none, monitor found from -qmp on its command line.
fixture "$D"; views "$D" "$T/v3"
live_qemu_start s3 "$D/ov1.qcow2" || not_ok "qemu-system s3 started"
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p3.json"
check_eq "qemu-system: live part through -qmp from its command line" \
	"$(jq -r '"\(.live.job) \(.live.pid) \(.live.qmp)"' "$T/p3.json")" \
	"commit $(live_pid s3) $T/s3.sock"
check_rc "qemu-system: commit exits 0" 0 "$IMGRAPH" commit --yes --top "$D/top.qcow2" --base "$D/base.qcow2"
check_eq "qemu-system: its node names base" "$(live_backing s3 s3)" base.qcow2
live_stop s3
check_eq "qemu-system: ov2 names base" "$(backing "$D/ov2.qcow2")" base.qcow2
same_views "qemu-system: views intact" "$D" "$T/v3"

# 4. Refused up front, nothing written.
fixture "$D"
live_qsd_start q4 "$D/ov1.qcow2" || not_ok "qsd q4 started"
snap_dir "$D" >"$T/s4"
check_rc "--offline refuses a plan that needs a live part" 3 \
	"$IMGRAPH" commit --offline --yes --top "$D/top.qcow2" --base "$D/base.qcow2"
check_grep "--offline: the live conflict" "--offline: process $(live_pid q4)" "$T/.out"
cat >"$T/hold.py" <<'EOF'
import socket, sys, os, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]): time.sleep(0.05)
EOF
python3 "$T/hold.py" "$T/q4.sock" "$T/h.ready" "$T/h.go" & hold=$!
for _ in $(seq 1 200); do [ -e "$T/h.ready" ] && break; sleep 0.05; done
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p4b.json"
check_eq "busy monitor: conflict names it" \
	"$(jq -r '[.conflicts[] | select(.kind == "live") | .message] | .[0]' "$T/p4b.json")" \
	"QMP monitor of PID $(live_pid q4) is busy (another client is connected)"
touch "$T/h.go"; wait "$hold"
snap_dir "$D" >"$T/s4b"
check "refusals wrote nothing" cmp "$T/s4" "$T/s4b"
# a job of someone else on the chain: mid into base, left pending
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p4.json"
live_qmp q4 block-commit "$(jq -c '{"job-id": "other", device: .live.device,
	"top-node": .live."intermediate-nodes"[0], "base-node": .live."base-node",
	"auto-finalize": false}' "$T/p4.json")" >/dev/null
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/p4.json"
check_eq "a job already running: conflict" \
	"$(jq -r '[.conflicts[] | select(.kind == "live") | .message] | .[0]' "$T/p4.json" | grep -c "job 'other' is already running")" 1
live_qmp q4 job-cancel '{"id":"other"}' >/dev/null
for _ in $(seq 1 100); do
	[ -z "$(live_jobs q4)" ] && break
	live_qmp q4 job-dismiss '{"id":"other"}' >/dev/null 2>&1; sleep 0.05
done
live_stop q4
# a filter between the export and the chain (throttle over ov1)
rm -f "$T/qf.sock" "$T/qf.pid"
qemu-storage-daemon --chardev "socket,path=$T/qf.sock,server=on,wait=off,id=mf" \
	--monitor chardev=mf --object throttle-group,id=tg0 \
	--blockdev "driver=qcow2,node-name=qfov,file.driver=file,file.filename=$D/ov2.qcow2" \
	--blockdev driver=throttle,node-name=qf,throttle-group=tg0,file=qfov \
	--daemonize --pidfile "$T/qf.pid" </dev/null >"$T/qf.log" 2>&1 &&
	_live_pids+=("qf $T/qf.pid") && _live_wait_sock "$T/qf.sock" "$T/qf.pid" ||
	not_ok "qsd with a throttle filter started"
plan_json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/pf.json"
check_eq "a filter in the way: conflict" \
	"$(jq -r '[.conflicts[] | select(.kind == "live") | .message] | map(select(test("filter qf \\(throttle\\) is in the way"))) | length' "$T/pf.json")" 1
live_stop qf

# 5a. Ctrl-C cancels QEMU's job: everything as it was.
fixture "$D"; views "$D" "$T/v5"
live_qsd_start q5 "$D/ov1.qcow2" || not_ok "qsd q5 started"
# wait_job ERRFILE: until imgraph's progress says QEMU's job runs (the
# monitor serves one client, imgraph, meanwhile: it cannot be asked)
wait_job() {
	for _ in $(seq 1 400); do
		grep -q '"status": *"running"' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
"$IMGRAPH" commit --yes --rate 65536 --top "$D/top.qcow2" --base "$D/base.qcow2" \
	>/dev/null 2>"$T/c5.err" & pid=$!
wait_job "$T/c5.err" || not_ok "cancel: the job started"
kill -INT "$pid"; wait "$pid"; rc=$?
check_eq "cancel: exit 1" "$rc" 1
check_grep "cancel: says so" "cancelled" "$T/c5.err"
check_eq "cancel: no job left" "$(live_jobs q5)" ""
check_eq "cancel: QEMU's node still on top" "$(live_backing q5 q5)" top.qcow2
check_eq "cancel: ov2 still on top" "$(backing "$D/ov2.qcow2")" top.qcow2
check "cancel: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]

# 5a'. The re-check at pending: a process opens the offline overlay
# (without QEMU's locks) while the job runs: QEMU's job is cancelled,
# nothing is relinked.
"$IMGRAPH" commit --yes --rate 256K --top "$D/top.qcow2" --base "$D/base.qcow2" \
	>/dev/null 2>"$T/c5r.err" & pid=$!
wait_job "$T/c5r.err" || not_ok "re-check: the job started"
sleep 600 <"$D/ov2.qcow2" & opener=$!
wait "$pid"; rc=$?
kill "$opener"; wait "$opener" 2>/dev/null
check_eq "re-check: refused as a conflict (exit 3)" "$rc" 3
check_grep "re-check: names the opener" "process $opener \\(sleep\\) opened .*ov2.qcow2" "$T/c5r.err"
check_eq "re-check: no job left, all still on top" \
	"$(live_jobs q5) $(live_backing q5 q5) $(backing "$D/ov2.qcow2")" " top.qcow2 top.qcow2"
check "re-check: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]

# 5b. kill -9 of imgraph mid-job, then recover: the job is cancelled.
"$IMGRAPH" commit --yes --rate 65536 --top "$D/top.qcow2" --base "$D/base.qcow2" \
	>/dev/null 2>"$T/c5b.err" & pid=$!
wait_job "$T/c5b.err" || not_ok "kill: the job started"
kill -9 "$pid"; wait "$pid" 2>/dev/null
check_eq "--rate 65536 is the job's speed (query-block-jobs)" \
	"$(live_qmp q5 query-block-jobs | jq -r '.[0].speed')" 65536
check "kill: the journal is left" [ -e "$D/.imgraph-journal-base.qcow2" ]
check_rc "kill: plan refuses until recover" 3 "$IMGRAPH" plan --top "$D/top.qcow2" --base "$D/base.qcow2"
check_rc "kill: recover exits 0" 0 "$IMGRAPH" recover "$D"
check_eq "kill: recover cancelled QEMU's job" "$(live_jobs q5)" ""
check_eq "kill: all still on top" "$(live_backing q5 q5) $(backing "$D/ov2.qcow2")" "top.qcow2 top.qcow2"
check "kill: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]

# 5c. QEMU exits mid-job.
"$IMGRAPH" commit --yes --rate 65536 --top "$D/top.qcow2" --base "$D/base.qcow2" \
	>/dev/null 2>"$T/c5c.err" & pid=$!
wait_job "$T/c5c.err" || not_ok "QEMU exits: the job started"
kill -9 "$(live_pid q5)"; wait "$pid"; rc=$?
check_eq "QEMU exits: imgraph exits 1" "$rc" 1
check_grep "QEMU exits: says so" "went away" "$T/c5c.err"
check "QEMU exits: no journal" [ ! -e "$D/.imgraph-journal-base.qcow2" ]
check_eq "QEMU exits: all still on top" "$(backing "$D/ov1.qcow2") $(backing "$D/ov2.qcow2")" "top.qcow2 top.qcow2"
same_views "QEMU exits: views intact" "$D" "$T/v5"
qcheck "QEMU exits: qemu-img check base" "$D/base.qcow2"

# 6. imgraph killed before each of its mutating ops, then recover.
fixture "$D"; cp -a "$D" "$T/tpl"; views "$D" "$T/v6"
live_qsd_start q6 "$D/ov1.qcow2" || not_ok "qsd q6 started"
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count "$IMGRAPH" commit --yes -q \
	--top "$D/top.qcow2" --base "$D/base.qcow2" >/dev/null 2>&1
live_stop q6
TOTAL=$(cat "$T/count")
check "count: the live commit has mutating ops ($TOTAL)" [ "$TOTAL" -gt 10 ]
bad=0 fwd=0 back=0 at_before=0 at_pending=0 at_final=0 at_relink=0
for k in $(seq 1 "${LIVE_KMAX:-$TOTAL}"); do
	rm -rf "$D"; cp -a "$T/tpl" "$D"
	live_qsd_start q6 "$D/ov1.qcow2" || { bad=1; echo "# k=$k: qsd"; break; }
	( IMGRAPH_FAULT=kill:$k "$IMGRAPH" commit --yes -q --top "$D/top.qcow2" \
		--base "$D/base.qcow2" >/dev/null 2>&1; : ) 2>/dev/null
	# where the kill landed, as QEMU and the offline overlay show it
	st=$(live_qmp q6 query-jobs | jq -r '[.[].status] | join(" ")')
	case "$st $(live_backing q6 q6)" in
	" top.qcow2") at_before=$((at_before + 1)) ;;    # no job yet
	"pending "*) at_pending=$((at_pending + 1)) ;;   # base holds the data
	"concluded "*) at_final=$((at_final + 1)) ;;     # finalized, not dismissed
	" base.qcow2") at_relink=$((at_relink + 1)) ;;   # QEMU done, offline relink
	*) echo "# k=$k: job status '$st'" ;;
	esac
	"$IMGRAPH" recover "$D" >"$T/r6" 2>&1 || { bad=1; echo "# k=$k: recover failed"; diag <"$T/r6"; }
	jobs6=$(live_jobs q6); b1=$(live_backing q6 q6)
	live_stop q6
	b1d=$(backing "$D/ov1.qcow2"); b2=$(backing "$D/ov2.qcow2")
	if [ -n "$jobs6" ] || [ "$b1" != "$b1d" ] || [ "$b1d" != "$b2" ] ||
	   [ -e "$D/.imgraph-journal-base.qcow2" ]; then
		bad=1; echo "# k=$k: jobs '$jobs6' qemu '$b1' ov1 '$b1d' ov2 '$b2'"
	fi
	case $b2 in base.qcow2) fwd=$((fwd + 1)) ;; *) back=$((back + 1)) ;; esac
	views "$D" "$T/now"
	cmp -s "$T/v6/ov1.raw" "$T/now/ov1.raw" && cmp -s "$T/v6/ov2.raw" "$T/now/ov2.raw" ||
		{ bad=1; echo "# k=$k: a view changed"; }
	qemu-img check -q "$D/base.qcow2" >/dev/null 2>&1 || { bad=1; echo "# k=$k: base check"; }
done
check_eq "kill before each op + recover: one image named by all, views intact, no job, no journal" "$bad" 0
# (LIVE_KMAX=N, for quick runs by hand, stops after op N: then only back)
if [ -z "${LIVE_KMAX:-}" ]; then
	check "kill: some runs rolled forward ($fwd), some back ($back)" \
		test "$fwd" -gt 0 -a "$back" -gt 0
	check "kill: before the job ($at_before), while pending ($at_pending), after finalize ($at_final), in the offline relink ($at_relink)" \
		test "$at_before" -gt 0 -a "$at_pending" -gt 0 -a "$at_final" -gt 0 -a "$at_relink" -gt 0
fi

# 7. The job fails: base's file system fills up while QEMU writes.
M=$T/small; mkdir -p "$M"
trap 'live_cleanup; umount "$M" 2>/dev/null; rm -rf "$T"' EXIT
truncate -s 64M "$T/small.img"
if mkfs.ext4 -q -F "$T/small.img" >/dev/null 2>&1 && mount -o loop "$T/small.img" "$M"; then
	rm -rf "$D"; mkdir -p "$D"
	mkq "$M/base.qcow2" 32M; qio "$M/base.qcow2" -c 'write -P 0x11 0 1M'
	mkq "$D/top.qcow2" 32M "$M/base.qcow2"; qio "$D/top.qcow2" -c 'write -P 0x77 1M 8M'
	mkq "$D/ov1.qcow2" 32M top.qcow2; mkq "$D/ov2.qcow2" 32M top.qcow2
	views "$D" "$T/v7"
	live_qsd_start q7 "$D/ov1.qcow2" || not_ok "qsd q7 started"
	"$IMGRAPH" commit --yes --rate 1M --top "$D/top.qcow2" --base "$M/base.qcow2" \
		>/dev/null 2>"$T/c7.err" & pid=$!
	wait_job "$T/c7.err" || not_ok "ENOSPC: the job started"
	dd if=/dev/zero of="$M/fill" bs=1M >/dev/null 2>&1; sync
	wait "$pid"; rc=$?
	check_eq "ENOSPC: imgraph exits 1" "$rc" 1
	check_grep "ENOSPC: QEMU's error is reported" "No space left on device" "$T/c7.err"
	check "ENOSPC: no journal" [ ! -e "$M/.imgraph-journal-base.qcow2" ]
	check_eq "ENOSPC: no job left, all still on top" \
		"$(live_jobs q7) $(live_backing q7 q7) $(backing "$D/ov2.qcow2")" " top.qcow2 top.qcow2"
	rm -f "$M/fill"
	live_stop q7
	same_views "ENOSPC: views intact" "$D" "$T/v7"
	qemu-img check -q "$M/base.qcow2" >/dev/null 2>&1; rc=$?
	check "ENOSPC: base has no corruption (leaks allowed)" test "$rc" != 2 -a "$rc" != 1
	umount "$M"
else
	not_ok "ENOSPC: a small ext4 on a loop device (mkfs.ext4, mount -o loop as root)"
fi

done_testing
