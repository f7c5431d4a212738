#!/usr/bin/env bash
# live_who.sh - imgraph who: the processes behind an image's locks, found by
# dev:ino and classified, on real qemu-storage-daemon and qemu-system-x86_64
# processes (issue 17, point 1), and the QMP client through --probe:
# version, node mapping, a busy monitor (point 2); --users FILE gives a
# QEMU the qmp: socket its command line does not name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need qemu-storage-daemon qemu-system-x86_64 qemu-img qemu-io jq python3 unshare

chain() { # chain PREFIX: PREFIX-base <- PREFIX-top (relative names)
	mkq "$T/$1-base.qcow2" 16M
	mkq "$T/$1-top.qcow2" 16M "$1-base.qcow2"
}
who_json() { "$IMGRAPH" who --output=json "$@"; }
# field FILE JQ-EXPR: the first holder's field
field() { jq -r ".[0].holders[0] | $2" "$1"; }

# 1. qemu-storage-daemon with a QMP monitor and a writable NBD export.
chain a
live_qsd_start qa "$T/a-top.qcow2" --nbd || not_ok "qsd qa started"
who_json "$T/a-top.qcow2" >"$T/a.json" 2>"$T/a.err"
check_eq "qsd: one holder" "$(jq '.[0].holders | length' "$T/a.json")" 1
check "qsd: nothing on stderr" [ ! -s "$T/a.err" ]
check_eq "qsd: class qmp" "$(field "$T/a.json" .class)" qmp
check_eq "qsd: its pid" "$(field "$T/a.json" .pid)" "$(live_pid qa)"
check_eq "qsd: monitor socket from --chardev + --monitor" \
	"$(field "$T/a.json" '.qmp + " / " + ."qmp-found-by"')" \
	"$T/qa.sock / --chardev socket + --monitor"
check_eq "qsd: holds write on top" \
	"$(field "$T/a.json" '.holds | join(",")')" "consistent-read,write,resize"
who_json "$T/a-base.qcow2" >"$T/ab.json"
check_eq "qsd: reads base only" \
	"$(field "$T/ab.json" '.holds | join(",")')" "consistent-read"
who_json --probe "$T/a-top.qcow2" "$T/a-base.qcow2" >"$T/ap.json"
check_eq "probe: QEMU version from the greeting" \
	"$(jq -r '.[0].holders[0].probe."qemu-version"' "$T/ap.json")" \
	"$(qemu-storage-daemon --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -n1)"
check_eq "probe: top is node qa, root, used by export e-qa" \
	"$(jq -r '.[0].holders[0].probe | "\(."node-name") \(.root) \(.depth) \(."backend-kind") \(.backend)"' "$T/ap.json")" \
	"qa qa 0 export e-qa"
check_eq "probe: base is found by dev:ino one level down, read-only" \
	"$(jq -r '.[1].holders[0].probe | "\(.root) \(.depth) \(."read-only")"' "$T/ap.json")" \
	"qa 1 true"
"$IMGRAPH" who "$T/a-top.qcow2" >"$T/a.txt"
check_grep "human: names PID and class" \
	"PID $(live_pid qa) \\(qemu-storage-d.*\\): QEMU with a QMP monitor at $T/qa.sock" "$T/a.txt"

# 2. A busy monitor: another client holds it.  who --probe says so, sends
# nothing, and the other client's session goes on.
cat >"$T/hold.py" <<'EOF'
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
def ex(c):
    f.write((json.dumps({"execute": c}) + "\n").encode()); f.flush()
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            return m
f.readline(); ex("qmp_capabilities")
open(sys.argv[2], "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
print("after:", "ok" if "return" in ex("query-version") else "error", flush=True)
EOF
python3 "$T/hold.py" "$T/qa.sock" "$T/hold.ready" "$T/hold.go" >"$T/hold.out" 2>&1 &
hold=$!
for _ in $(seq 1 200); do [ -e "$T/hold.ready" ] && break; sleep 0.05; done
t0=$SECONDS
who_json --probe "$T/a-top.qcow2" >"$T/busy.json"
check_eq "busy monitor: reported as such" \
	"$(field "$T/busy.json" .probe.error)" \
	"QMP monitor of PID $(live_pid qa) is busy (another client is connected)"
check "busy monitor: within the deadline" [ $((SECONDS - t0)) -lt 10 ]
touch "$T/hold.go"; wait "$hold"
check_grep "busy monitor: the other client's session is untouched" "^after: ok" "$T/hold.out"

# 3. Symlinks: the daemon opened a symlink, who is asked by the real path,
# and the other way round; all one dev:ino.
chain b
ln -s b-top.qcow2 "$T/b-link.qcow2"
live_qsd_start qb "$T/b-link.qcow2" || not_ok "qsd qb started"
who_json "$T/b-top.qcow2" >"$T/b.json"
check_eq "symlink: found by the real path" "$(field "$T/b.json" .pid)" "$(live_pid qb)"
ln -s "$T/a-top.qcow2" "$T/a-link.qcow2"
who_json "$T/a-link.qcow2" >"$T/al.json"
check_eq "symlink: asked by a link to it" "$(field "$T/al.json" .pid)" "$(live_pid qa)"

# 4. locking=off: no lock bytes, found through /proc/PID/fd by dev:ino.
chain c
live_qsd_start qc "$T/c-top.qcow2" --locking-off || not_ok "qsd qc started"
check_rc "locking=off: image shows no lock" 0 qemu-img info "$T/c-top.qcow2"
who_json "$T/c-top.qcow2" >"$T/c.json"
check_eq "locking=off: still found, class qmp, no locks" \
	"$(field "$T/c.json" '"\(.pid) \(.class) \(.locks)"')" "$(live_pid qc) qmp false"

# 5. qemu-system-x86_64 -M none with -blockdev and -qmp unix:, found from
# its command line alone.
chain d
live_qemu_start qd "$T/d-top.qcow2" || not_ok "qemu qd started"
who_json --probe "$T/d-top.qcow2" >"$T/d.json"
check_eq "qemu-system: class qmp via -qmp unix:" \
	"$(field "$T/d.json" '"\(.pid) \(.class) \(."qmp-found-by") \(.qmp)"')" \
	"$(live_pid qd) qmp -qmp unix: $T/qd.sock"
check_eq "qemu-system: node qd, owned by the monitor" \
	"$(field "$T/d.json" '.probe | "\(."node-name") \(."backend-kind")"')" "qd monitor"

# 6. A QEMU without a QMP monitor, and other programs: PID and command.
chain e
qemu-system-x86_64 -M none -nodefaults -display none -daemonize -pidfile "$T/qe.pid" \
	-blockdev "driver=qcow2,node-name=e,file.driver=file,file.filename=$T/e-top.qcow2" \
	</dev/null >/dev/null 2>&1 || not_ok "qemu qe started"
_live_pids+=("qe $T/qe.pid")
who_json "$T/e-top.qcow2" >"$T/e.json"
check_eq "QEMU without QMP: class other, with a note" \
	"$(field "$T/e.json" '"\(.pid) \(.class) \(.note)"')" \
	"$(live_pid qe) other QEMU without a QMP monitor"
live_stop qe
qemu-io -f qcow2 "$T/e-top.qcow2" -c 'sleep 60000' </dev/null >/dev/null 2>&1 &
qio_pid=$!
sleep 0.5
(exec 7<"$T/e-base.qcow2"; exec sleep 60) &
sleep_pid=$!
sleep 0.2
who_json "$T/e-top.qcow2" "$T/e-base.qcow2" >"$T/e2.json"
check_eq "qemu-io: class other, locks held, its command shown" \
	"$(field "$T/e2.json" '"\(.pid) \(.class) \(.locks) \(.command | startswith("qemu-io"))"')" \
	"$qio_pid other true true"
check_eq "a reader without locks: listed too" \
	"$(jq -r --arg p "$sleep_pid" '.[1].holders[] | select(.pid == ($p | tonumber)) | "\(.class) \(.locks)"' "$T/e2.json")" \
	"other false"
kill "$qio_pid" "$sleep_pid" 2>/dev/null; wait "$qio_pid" "$sleep_pid" 2>/dev/null

# 7. Hidden: imgraph in its own PID namespace sees the lock in /proc/locks
# but not the daemon's process.
if unshare --pid --fork --mount-proc "$IMGRAPH" who --output=json "$T/a-top.qcow2" >"$T/h.json" 2>"$T/h.err"; then
	check_eq "hidden: a local holder not visible here" \
		"$(field "$T/h.json" '"\(.class) \(.pid // "none") \(.holds | join(","))"')" \
		"hidden none consistent-read,write,resize"
else
	not_ok "unshare --pid --mount-proc"; diag <"$T/h.err"
fi

# 8. Relative names in a daemon that moved to "/" (--daemonize): the node
# is still found, through its descriptors matched by dev:ino.
chain f
(cd "$T" && qemu-storage-daemon --chardev "socket,path=$T/qf.sock,server=on,wait=off,id=m" \
	--monitor chardev=m --blockdev driver=qcow2,node-name=qf,file.driver=file,file.filename=f-top.qcow2 \
	--daemonize --pidfile "$T/qf.pid" </dev/null >/dev/null 2>&1) || not_ok "qsd qf started"
_live_pids+=("qf $T/qf.pid")
check_eq "relative names: the daemon is in /" "$(readlink "/proc/$(live_pid qf)/cwd")" /
who_json --probe "$T/f-top.qcow2" "$T/f-base.qcow2" >"$T/f.json"
check_eq "relative names: top and base mapped" \
	"$(jq -r '[.[].holders[0].probe | "\(."node-name" // "none")/\(.depth)"] | join(" ")' "$T/f.json" | sed 's/#block[0-9]*/#N/g')" \
	"qf/0 #N/1"

# 10. --users FILE: a QEMU whose monitor is only in -readconfig gets the
# qmp: of a users-file entry whose image it has open (by dev:ino, here its
# backing file under another name); the command line's monitor wins; an
# entry of an image the process does not have open gives nothing.
chain u
live_qemu_start_cfg qu "$T/u-top.qcow2" || not_ok "qemu qu (monitor from -readconfig) started"
ln -s u-base.qcow2 "$T/u-base.link"
cat >"$T/users.yaml" <<EOF2
users:
  - name: elsewhere
    kind: vm
    image: e-top.qcow2
    qmp: $T/qf.sock
  - name: vm-u
    kind: vm
    image: u-base.link
    qmp: $T/qu.sock
  - name: vm-a
    kind: vm
    image: a-top.qcow2
    qmp: $T/qu.sock
EOF2
who_json "$T/u-top.qcow2" >"$T/u0.json"
check_eq "--users: without it, class other" "$(field "$T/u0.json" '"\(.class) \(.qmp // "none")"')" "other none"
who_json --users "$T/users.yaml" --probe "$T/u-top.qcow2" >"$T/u1.json"
check_eq "--users: class qmp, the entry's socket, said how" \
	"$(field "$T/u1.json" '"\(.pid) \(.class) \(.qmp) \(."qmp-found-by")"')" \
	"$(live_pid qu) qmp $T/qu.sock qmp: of a users-file entry whose image it has open"
check_eq "--users --probe: asked through that socket" \
	"$(field "$T/u1.json" '"\(.probe."node-name") \(.probe.depth) \(.probe.error // "ok")"')" "qu 0 ok"
"$IMGRAPH" who --users "$T/users.yaml" "$T/u-top.qcow2" >"$T/u1.txt"
check_grep "--users: human output shows the socket" "QEMU with a QMP monitor at $T/qu.sock \(qmp: of a users-file entry" "$T/u1.txt"
who_json --users "$T/users.yaml" "$T/a-top.qcow2" >"$T/u2.json"
check_eq "--users: the command line's monitor wins" \
	"$(field "$T/u2.json" '"\(.class) \(.qmp) \(."qmp-found-by")"')" \
	"qmp $T/qa.sock --chardev socket + --monitor"
sed -i "s|qmp: $T/qu.sock|qmp: $T/qf.sock|" "$T/users.yaml"
who_json --users "$T/users.yaml" --probe "$T/u-top.qcow2" >"$T/u3.json"
check_eq "--users: another QEMU's socket is said to be its, not probed" \
	"$(field "$T/u3.json" '"\(.qmp) \(.probe.error) \(.probe."node-name" // "none")"')" \
	"$T/qf.sock the QMP monitor $T/qf.sock is served by process $(live_pid qf), not by process $(live_pid qu) none"
printf 'users:\n  - name: x\n    image: u-top.qcow2\n    qmp: rel.sock\n' >"$T/bad.yaml"
check_rc "--users: a bad file is an error (exit 1)" 1 "$IMGRAPH" who --users "$T/bad.yaml" "$T/u-top.qcow2"
check_grep "... naming the file, line and key" "bad.yaml:4:[0-9]+: 'qmp' must be" "$T/.err"
check_rc "--users: a missing file is an error (exit 1)" 1 "$IMGRAPH" who --users "$T/nope.yaml" "$T/u-top.qcow2"
live_stop qu

# 9. Gone: nothing holds it once the daemon quit.
live_stop qa
who_json "$T/a-top.qcow2" >"$T/g.json"
check_eq "after exit: no holder" "$(jq '.[0].holders | length' "$T/g.json")" 0
"$IMGRAPH" who "$T/a-top.qcow2" >"$T/g.txt"
check_grep "after exit: human says so" "no process holds or opens it" "$T/g.txt"
check_rc "missing image: error" 1 "$IMGRAPH" who "$T/nope.qcow2"
check_grep "missing image: names it" "nope.qcow2" "$T/.err"
check_rc "no image: usage" 2 "$IMGRAPH" who

done_testing
