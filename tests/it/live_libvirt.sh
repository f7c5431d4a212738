#!/usr/bin/env bash
# live_libvirt.sh - a QEMU that libvirt runs is recognised as a libvirt
# domain (never as a QMP target), with the disk and the layer of its chain
# that holds the image, from libvirt's status file, from the libvirt API,
# and with the daemon stopped (issue 17, points 1 and 3: discovery).
# Starts libvirtd (unless one runs) and a transient TCG domain with no OS;
# both are stopped again at exit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need libvirtd virsh qemu-system-x86_64 qemu-img jq unshare

# base <- mid <- top, relative names; the domain names top by a symlink.
mkq "$T/base.qcow2" 16M
mkq "$T/mid.qcow2" 16M base.qcow2
mkq "$T/top.qcow2" 16M mid.qcow2
ln -s top.qcow2 "$T/vm-disk.qcow2"
dom=imgraph-t$$

if ! live_libvirt_start; then
	not_ok "libvirtd started"; tail -n 20 /var/log/libvirt/libvirtd.log 2>/dev/null | diag
	done_testing
fi
ok "libvirtd answers"
if ! live_domain_start "$dom" "$T/vm-disk.qcow2"; then
	not_ok "domain started"; diag <"$T/$dom.virsh"
	done_testing
fi
ok "transient domain started"
qpid=$(live_domain_pid "$dom")
field() { jq -r ".[0].holders[0] | $2" "$1"; }

"$IMGRAPH" who --output=json --probe "$T/top.qcow2" "$T/mid.qcow2" "$T/base.qcow2" >"$T/w.json" 2>"$T/w.err"
check "nothing on stderr (libvirt's own error printing is off)" [ ! -s "$T/w.err" ]
check_eq "top: libvirt domain, its QEMU's pid" \
	"$(field "$T/w.json" '"\(.class) \(.pid) \(.domain)"')" "libvirt $qpid $dom"
check_eq "top: recognised by the status file" \
	"$(field "$T/w.json" '."domain-found-by"')" "libvirt status file names its PID"
check_eq "top, mid, base: disk vda, layers 0, 1, 2 (by dev:ino through the symlink)" \
	"$(jq -r '[.[].holders[0] | "\(.disk)/\(.layer)"] | join(" ")' "$T/w.json")" \
	"vda/0 vda/1 vda/2"
check_eq "same disk as virsh domblklist" \
	"$(virsh -q -c qemu:///system domblklist "$dom" | awk '{print $1}')" vda
check_eq "never probed through raw QMP" \
	"$(jq -r '[.[].holders[0].probe // empty] | length' "$T/w.json")" 0
check_nogrep "domain not tainted by a monitor client" "custom-monitor" "/run/libvirt/qemu/$dom.xml"
"$IMGRAPH" who "$T/top.qcow2" >"$T/w.txt"
check_grep "human: libvirt domain, disk and layer" \
	"PID $qpid .*: libvirt domain '$dom', disk vda layer 0" "$T/w.txt"

# The API path: with the status files hidden (a private mount namespace),
# -name guest= while libvirtd runs names the domain, and the API's XML
# gives disk and layer.
if unshare -m sh -c 'mount -t tmpfs none /run/libvirt/qemu && exec "$0" who --output=json "$1"' \
	"$IMGRAPH" "$T/mid.qcow2" >"$T/api.json" 2>"$T/api.err"; then
	check_eq "API: domain, disk and layer without the status files" \
		"$(field "$T/api.json" '"\(.class) \(.domain) \(.disk) \(.layer) \(."domain-found-by")"')" \
		"libvirt $dom vda 1 -name guest= while libvirt runs"
else
	not_ok "unshare -m with a tmpfs over /run/libvirt/qemu"; diag <"$T/api.err"
fi

# With libvirtd stopped the QEMU is still libvirt's: the status file says.
if [ "$_live_libvirtd_ours" = 1 ]; then
	_live_kill_pidfile /run/libvirtd.pid
	"$IMGRAPH" who --output=json "$T/top.qcow2" >"$T/down.json"
	check_eq "daemon stopped: still a libvirt domain" \
		"$(field "$T/down.json" '"\(.class) \(.domain)"')" "libvirt $dom"
	live_libvirt_start || not_ok "libvirtd restarted"
fi

live_domain_stop "$dom"
"$IMGRAPH" who --output=json "$T/top.qcow2" >"$T/gone.json"
check_eq "domain destroyed: no holder" "$(jq '.[0].holders | length' "$T/gone.json")" 0

done_testing
