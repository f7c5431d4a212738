# tests/it/lib_live.sh - sourced after lib.sh by tests/it/live_*.sh.
# Starts and stops real QEMU processes, unattended (no terminal, stdin
# from /dev/null), as root:
#   live_qsd_start NAME IMAGE [--nbd] [--locking-off]
#                              qemu-storage-daemon, QMP on $T/NAME.sock
#   live_qemu_start NAME IMAGE  qemu-system-x86_64 -M none, -qmp unix:
#   live_qemu_start_cfg NAME IMAGE  the same, monitor from -readconfig
#   live_stop NAME              quit and wait until the process is gone
#   live_libvirt_start          libvirtd with the QEMU driver (if not
#                               running already; stopped again at exit)
#   live_domain_start NAME IMAGE   a transient TCG domain with no OS
#   live_domain_stop NAME
# Everything started is stopped by the EXIT trap, whatever happens.
# Recipes: ../shared/reference/live-facts.md, the project's verified set-up.

LIVE_TIMEOUT=${LIVE_TIMEOUT:-30}      # seconds to wait for a daemon
_live_pids=()                         # "NAME PIDFILE" of our QEMUs
_live_domains=()
_live_libvirtd_ours=0

live_cleanup() {
	local d e
	for d in "${_live_domains[@]}"; do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
	done
	for e in "${_live_pids[@]}"; do
		_live_kill_pidfile "${e#* }"
	done
	if [ "$_live_libvirtd_ours" = 1 ]; then
		_live_kill_pidfile /run/libvirtd.pid
	fi
}
trap 'live_cleanup; rm -rf "$T"' EXIT

# Every tool a live test needs; a missing one fails the script (make deps
# installs them), it is never skipped silently.
live_need() {
	local c missing=""
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
	done
	if [ -n "$missing" ]; then
		not_ok "tools present (missing:$missing; run make deps)"
		done_testing
	fi
}

# A daemonized process is reaped by PID 1 whenever it gets to it: a
# zombie counts as gone.
_live_alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

_live_kill_pidfile() { # PIDFILE: TERM, wait, then KILL
	local pid i
	[ -f "$1" ] || return 0
	pid=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$pid" ] && _live_alive "$pid" || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		_live_alive "$pid" || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		_live_alive "$pid" || return 0
		sleep 0.05
	done
}

_live_wait_sock() { # SOCKET PIDFILE
	local i
	for i in $(seq 1 $((LIVE_TIMEOUT * 20))); do
		[ -S "$1" ] && [ -s "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# The pid of a started NAME.
live_pid() { cat "$T/$1.pid"; }

# live_qsd_start NAME IMAGE [--nbd] [--locking-off]: node "NAME" on IMAGE
# (its chain opens behind it), QMP monitor on $T/NAME.sock via --chardev +
# --monitor, and with --nbd a writable NBD export of the node on
# $T/NAME.nbd.
live_qsd_start() {
	local name=$1 img=$2 nbd=() lk=""
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--nbd) nbd=(--nbd-server "addr.type=unix,addr.path=$T/$name.nbd"
			    --export "type=nbd,id=e-$name,node-name=$name,name=disk,writable=on") ;;
		--locking-off) lk=",file.locking=off" ;;
		esac
		shift
	done
	rm -f "$T/$name.sock" "$T/$name.pid"
	qemu-storage-daemon \
		--chardev "socket,path=$T/$name.sock,server=on,wait=off,id=m-$name" \
		--monitor "chardev=m-$name" \
		--blockdev "driver=qcow2,node-name=$name,file.driver=file,file.filename=$img$lk" \
		"${nbd[@]}" --daemonize --pidfile "$T/$name.pid" \
		</dev/null >"$T/$name.log" 2>&1 || { cat "$T/$name.log" >&2; return 1; }
	_live_pids+=("$name $T/$name.pid")
	_live_wait_sock "$T/$name.sock" "$T/$name.pid"
}

# live_qemu_start NAME IMAGE: qemu-system-x86_64 with no machine, the
# image as -blockdev node "NAME", QMP via -qmp unix:$T/NAME.sock.
live_qemu_start() {
	local name=$1 img=$2
	rm -f "$T/$name.sock" "$T/$name.pid"
	qemu-system-x86_64 -M none -nodefaults -display none \
		-daemonize -pidfile "$T/$name.pid" \
		-qmp "unix:$T/$name.sock,server=on,wait=off" \
		-blockdev "driver=qcow2,node-name=$name,file.driver=file,file.filename=$img" \
		</dev/null >"$T/$name.log" 2>&1 || { cat "$T/$name.log" >&2; return 1; }
	_live_pids+=("$name $T/$name.pid")
	_live_wait_sock "$T/$name.sock" "$T/$name.pid"
}

# live_qemu_start_cfg NAME IMAGE: the same, but its QMP monitor is in a
# -readconfig file ([chardev] + [mon]), so its command line names none;
# the socket is still $T/NAME.sock.
live_qemu_start_cfg() {
	local name=$1 img=$2
	rm -f "$T/$name.sock" "$T/$name.pid"
	printf '[chardev "m-%s"]\n  backend = "socket"\n  path = "%s"\n  server = "on"\n  wait = "off"\n\n[mon "mon-%s"]\n  mode = "control"\n  chardev = "m-%s"\n' \
		"$name" "$T/$name.sock" "$name" "$name" >"$T/$name.cfg"
	qemu-system-x86_64 -M none -nodefaults -display none \
		-daemonize -pidfile "$T/$name.pid" -readconfig "$T/$name.cfg" \
		-blockdev "driver=qcow2,node-name=$name,file.driver=file,file.filename=$img" \
		</dev/null >"$T/$name.log" 2>&1 || { cat "$T/$name.log" >&2; return 1; }
	_live_pids+=("$name $T/$name.pid")
	_live_wait_sock "$T/$name.sock" "$T/$name.pid"
}

live_stop() { _live_kill_pidfile "$T/$1.pid"; }

# libvirt without systemd: the configuration that keeps QEMU as root, in
# our mount namespace and cgroup, and images owned as they are.  Written
# only when no qemu.conf exists (Debian's libvirt-daemon ships none); an
# administrator's own file is left alone.
_LIVE_QEMU_CONF_MARK="# imgraph tests/it/lib_live.sh: libvirt QEMU driver for tests as root"
_live_libvirt_prepare() {
	getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
	getent passwd libvirt-qemu >/dev/null ||
		useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt \
			--no-create-home --shell /usr/sbin/nologin libvirt-qemu
	mkdir -p /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt /etc/libvirt
	[ -e /etc/libvirt/qemu.conf ] && return 0
	cat >/etc/libvirt/qemu.conf <<EOF
$_LIVE_QEMU_CONF_MARK
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
}

_live_libvirtd_alive() {
	local pid
	pid=$(cat /run/libvirtd.pid 2>/dev/null) && [ -n "$pid" ] &&
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ]
}

# live_libvirt_start: libvirtd -d unless one runs; waits until the QEMU
# driver answers.  One live test at a time uses libvirtd (flock), so two
# scripts never start or stop it under each other.
live_libvirt_start() {
	local i
	exec 9>/run/lock/imgraph-live-libvirt.lock
	flock -w 600 9 || return 1
	_live_libvirt_prepare || return 1
	if ! _live_libvirtd_alive; then
		/usr/sbin/libvirtd -d </dev/null >/dev/null 2>&1 || return 1
		_live_libvirtd_ours=1
	fi
	# A cold capability cache takes ~8 s (facts: section 6).
	for i in $(seq 1 $((LIVE_TIMEOUT * 4))); do
		virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	return 1
}

# live_domain_start NAME IMAGE [DEV]: transient TCG domain, disk DEV
# (default vda, virtio) on IMAGE (qcow2), no OS: it sits in the BIOS.
live_domain_start() {
	local name=$1 img=$2 dev=${3:-vda}
	cat >"$T/$name.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$img'/>
      <target dev='$dev' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
	virsh -q -c qemu:///system create "$T/$name.xml" </dev/null \
		>"$T/$name.virsh" 2>&1 || { cat "$T/$name.virsh" >&2; return 1; }
	_live_domains+=("$name")
}

live_domain_stop() {
	virsh -q -c qemu:///system destroy "$1" >/dev/null 2>&1
}

# The pid of a running domain's QEMU.
live_domain_pid() { cat "/run/libvirt/qemu/$1.pid"; }

# live_qmp NAME CMD [ARGS-JSON]: run one QMP command on $T/NAME.sock and
# print its "return" as compact JSON (an "error" reply: "ERROR: desc",
# status 1).  A fresh connection each time; events are skipped.
live_qmp() {
	python3 - "$T/$1.sock" "$2" "${3:-}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
f = s.makefile("rwb")
def ex(c, a=None):
    m = {"execute": c}
    if a: m["arguments"] = a
    f.write((json.dumps(m) + "\n").encode()); f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            return r
f.readline(); ex("qmp_capabilities")
r = ex(sys.argv[2], json.loads(sys.argv[3]) if sys.argv[3] else None)
if "error" in r:
    print("ERROR: " + r["error"]["desc"]); sys.exit(1)
print(json.dumps(r["return"], separators=(",", ":")))
PY
}

# live_backing NAME NODE: the backing_file QEMU shows for node NODE.
live_backing() {
	live_qmp "$1" query-named-block-nodes '{"flat":true}' |
		jq -r --arg n "$2" '.[] | select(."node-name" == $n) | .image."backing-filename" // "none"'
}

# live_jobs NAME: the job ids the process runs, space-separated.
live_jobs() { live_qmp "$1" query-jobs | jq -r '[.[].id] | join(" ")'; }
