#!/usr/bin/env bash
# live_monitor.sh - a QEMU whose QMP monitor is not on its command line
# (issue 17, point 1: "--qmp PATH" and the users file's "qmp:" key), on a
# real qemu-system-x86_64 -M none that gets its monitor from -readconfig:
#   1. without --qmp or qmp:, the plan refuses with a live conflict naming
#      the PID and how to give the monitor; so does a --qmp that names
#      another QEMU's monitor; nothing is written;
#   2. with --qmp, the live commit runs: QEMU's node, its overlay's header
#      and the offline overlay name base, views intact (qemu-img convert
#      and check after the process exits);
#   3. the same through "qmp:" in the users file;
#   4. bad qmp: values (relative, not a socket, not a string) are errors
#      naming file, line, column and the key; exit 1, nothing written;
#   5. nodes not found: a qemu-storage-daemon that opened top without its
#      backing chain (backing=null) cannot commit it: a live conflict.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need qemu-system-x86_64 qemu-storage-daemon qemu-img qemu-io jq python3

# fixture DIR: base <- mid <- top <- {ov1, ov2}, relative names; QEMU
# opens ov1, ov2 is offline.
fixture() {
	local d=$1
	rm -rf "$d"; mkdir -p "$d"
	mkq "$d/base.qcow2" 16M; qio "$d/base.qcow2" -c 'write -P 0x11 0 1M'
	mkq "$d/mid.qcow2" 16M base.qcow2; qio "$d/mid.qcow2" -c 'write -P 0x22 1M 1M'
	mkq "$d/top.qcow2" 16M mid.qcow2; qio "$d/top.qcow2" -c 'write -P 0x33 2M 2M'
	mkq "$d/ov1.qcow2" 16M top.qcow2; qio "$d/ov1.qcow2" -c 'write -P 0x44 3M 64k'
	mkq "$d/ov2.qcow2" 16M top.qcow2; qio "$d/ov2.qcow2" -c 'write -P 0x55 5M 64k'
}
views() { # views DIR OUT
	mkdir -p "$2"
	for v in ov1 ov2; do guest_raw "$1/$v.qcow2" "$2/$v.raw"; done
}
same_views() { # NAME DIR SAVED
	views "$2" "$T/now"
	check "$1" cmp "$3/ov1.raw" "$T/now/ov1.raw"
	cmp -s "$3/ov2.raw" "$T/now/ov2.raw" || not_ok "$1 (ov2)"
}
backing() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename"'; }
live_msgs() { jq -r '[.conflicts[] | select(.kind == "live") | .message] | join("|")' "$1"; }
D=$T/a
P=(--top "$D/top.qcow2" --base "$D/base.qcow2")

# 1. The monitor is only in -readconfig: imgraph cannot know it.
fixture "$D"; views "$D" "$T/v1"
live_qemu_start_cfg c1 "$D/ov1.qcow2" || not_ok "qemu-system c1 (monitor from -readconfig) started"
tr '\0' ' ' <"/proc/$(live_pid c1)/cmdline" >"$T/c1.cmdline"
check_nogrep "c1: no monitor on its command line" " -(qmp|mon|chardev)" "$T/c1.cmdline"
"$IMGRAPH" who --output=json "$D/top.qcow2" >"$T/w1.json"
check_eq "who: a QEMU without a (known) QMP monitor is class other" \
	"$(jq -r '.[0].holders[0] | "\(.class) \(.pid)"' "$T/w1.json")" "other $(live_pid c1)"
snap_dir "$D" >"$T/s1"
check_rc "no --qmp: plan refuses (exit 3)" 3 "$IMGRAPH" plan --output=json "${P[@]}"
check_eq "no --qmp: the live conflict names the PID and that no monitor is known" \
	"$(live_msgs "$T/.out")" \
	"process $(live_pid c1) (qemu-system-x86) runs '$D/top.qcow2' but imgraph found no QMP monitor of it"
check_eq "no --qmp: the hint says how to give it" \
	"$(jq -r '[.conflicts[] | select(.kind == "live") | .hint] | .[0]' "$T/.out")" \
	"Give its monitor socket with --qmp PATH, or as 'qmp:' of the entry of its image in the users file."
check_rc "no --qmp: commit refuses (exit 3)" 3 "$IMGRAPH" commit --yes "${P[@]}"
check_grep "no --qmp: commit names PID and --qmp" "process $(live_pid c1) .*found no QMP monitor" "$T/.out"
# --qmp naming another QEMU's monitor: its listener is not top's holder.
mkq "$T/other.qcow2" 16M
live_qsd_start o1 "$T/other.qcow2" || not_ok "qsd o1 started"
check_rc "--qmp of another QEMU: plan refuses (exit 3)" 3 \
	"$IMGRAPH" plan --output=json --qmp "$T/o1.sock" "${P[@]}"
check_eq "--qmp of another QEMU: the conflict says whose monitor it is" \
	"$(live_msgs "$T/.out")" \
	"the QMP monitor $T/o1.sock is served by process $(live_pid o1), not by process $(live_pid c1) (qemu-system-x86) that runs top"
live_stop o1
snap_dir "$D" >"$T/s1b"
check "no --qmp, or another QEMU's: nothing written" cmp "$T/s1" "$T/s1b"

# 2. --qmp gives the socket: the live commit runs.
check_rc "--qmp: plan exits 0" 0 "$IMGRAPH" plan --output=json --qmp "$T/c1.sock" "${P[@]}"
check_eq "--qmp: the live part runs in that QEMU through that socket" \
	"$(jq -r '"\(.live.job) \(.live.pid) \(.live.qmp)"' "$T/.out")" \
	"commit $(live_pid c1) $T/c1.sock"
check_rc "--qmp: commit exits 0" 0 "$IMGRAPH" commit --yes --qmp "$T/c1.sock" "${P[@]}"
check_eq "--qmp: QEMU's node names base" "$(live_backing c1 c1)" base.qcow2
check_eq "--qmp: no job left" "$(live_jobs c1)" ""
live_stop c1
check_eq "--qmp: ov1's header names base (QEMU), ov2 too (offline)" \
	"$(backing "$D/ov1.qcow2") $(backing "$D/ov2.qcow2")" "base.qcow2 base.qcow2"
same_views "--qmp: views intact after QEMU exits" "$D" "$T/v1"
for f in base ov1 ov2; do qcheck "--qmp: qemu-img check $f" "$D/$f.qcow2"; done

# 3. The same, the socket given as qmp: in the users file.
fixture "$D"; views "$D" "$T/v3"
live_qemu_start_cfg c3 "$D/ov1.qcow2" || not_ok "qemu-system c3 started"
cat >"$D/users.yaml" <<EOF
users:
  - name: vm-c3               # the VM that runs ov1
    kind: vm
    image: ov1.qcow2
    qmp: $T/c3.sock
EOF
U=(--users "$D/users.yaml")
check_rc "qmp: in the users file: plan exits 0" 0 "$IMGRAPH" plan --output=json "${U[@]}" "${P[@]}"
check_eq "qmp: the live part through the users file's socket" \
	"$(jq -r '"\(.live.job) \(.live.pid) \(.live.qmp)"' "$T/.out")" \
	"commit $(live_pid c3) $T/c3.sock"
check_rc "qmp: commit exits 0" 0 "$IMGRAPH" commit --yes "${U[@]}" "${P[@]}"
check_eq "qmp: QEMU's node names base" "$(live_backing c3 c3)" base.qcow2
live_stop c3
check_eq "qmp: both overlays name base" \
	"$(backing "$D/ov1.qcow2") $(backing "$D/ov2.qcow2")" "base.qcow2 base.qcow2"
check_grep "qmp: the key is kept in the users file" "^    qmp: $T/c3.sock$" "$D/users.yaml"
same_views "qmp: views intact after QEMU exits" "$D" "$T/v3"
for f in base ov1 ov2; do qcheck "qmp: qemu-img check $f" "$D/$f.qcow2"; done

# An entry whose image the QEMU does not have open gives it no monitor.
fixture "$D"
live_qemu_start_cfg c4 "$D/ov1.qcow2" || not_ok "qemu-system c4 started"
printf 'users:\n  - name: other\n    image: ov2.qcow2\n    qmp: %s\n' "$T/c4.sock" >"$D/users.yaml"
check_rc "qmp: of another image's entry: not this QEMU's (exit 3)" 3 \
	"$IMGRAPH" plan --output=json "${U[@]}" "${P[@]}"
check_eq "qmp: of another image's entry: no monitor found" \
	"$(live_msgs "$T/.out")" \
	"process $(live_pid c4) (qemu-system-x86) runs '$D/top.qcow2' but imgraph found no QMP monitor of it"

# 4. Bad values: an error naming file:line:column and the key, exit 1,
# nothing written (plan and commit alike).
touch "$D/not-a-socket"
bad() { # NAME QMP-VALUE EXPECTED-MESSAGE-REGEX
	printf 'users:\n  - name: vm\n    image: ov1.qcow2\n    qmp: %s\n' "$2" >"$D/users.yaml"
	snap_dir "$D" >"$T/sb"
	check_rc "bad qmp ($1): plan exits 1" 1 "$IMGRAPH" plan "${U[@]}" "${P[@]}"
	check_grep "bad qmp ($1): says where and what" "$3" "$T/.err"
	check_rc "bad qmp ($1): commit exits 1" 1 "$IMGRAPH" commit --yes "${U[@]}" "${P[@]}"
	snap_dir "$D" >"$T/sb2"
	check "bad qmp ($1): nothing written" cmp "$T/sb" "$T/sb2"
}
bad relative "c4.sock" \
	"users\.yaml:4:10: 'qmp' must be the absolute path of a QMP monitor socket, not 'c4\.sock'"
bad "not a socket" "$D/not-a-socket" \
	"users\.yaml:4:10: 'qmp' of user 'vm': .*/not-a-socket is not a socket"
bad "a list" "[$T/c4.sock]" "users\.yaml:4:10: 'qmp' must be a non-empty string"
bad empty '""' "users\.yaml:4:10: 'qmp' must be a non-empty string"
bad "a mapping" "{path: $T/c4.sock}" "users\.yaml:4:10: 'qmp' must be a non-empty string"
bad "not YAML" "\"$T/c4.sock" "users\.yaml:[0-9]+:[0-9]+: .*quoted scalar"
live_stop c4

# 5. The chain's other images are no nodes of the process.
fixture "$D"
rm -f "$T/n5.sock" "$T/n5.pid"
qemu-storage-daemon --chardev "socket,path=$T/n5.sock,server=on,wait=off,id=m5" \
	--monitor chardev=m5 \
	--blockdev "{\"driver\": \"qcow2\", \"node-name\": \"n5\", \"backing\": null,
		\"file\": {\"driver\": \"file\", \"filename\": \"$D/top.qcow2\"}}" \
	--daemonize --pidfile "$T/n5.pid" </dev/null >"$T/n5.log" 2>&1 &&
	_live_pids+=("n5 $T/n5.pid") && _live_wait_sock "$T/n5.sock" "$T/n5.pid" ||
	not_ok "qsd n5 (top without its backing chain) started"
snap_dir "$D" >"$T/s5"
check_rc "nodes not found: plan refuses (exit 3)" 3 "$IMGRAPH" plan --output=json "${P[@]}"
check_eq "nodes not found: the live conflict names mid and says why" \
	"$(live_msgs "$T/.out" | grep -c "^'$D/mid.qcow2': .*no block node of PID $(live_pid n5)")" 1
check_rc "nodes not found: commit refuses (exit 3)" 3 "$IMGRAPH" commit --yes "${P[@]}"
live_stop n5
snap_dir "$D" >"$T/s5b"
check "nodes not found: nothing written" cmp "$T/s5" "$T/s5b"

done_testing
