#!/usr/bin/env bash
# live_libvirt_unlisted.sh - issue 17, point 3: "a libvirt domain whose
# disk is not in its XML" is a conflict before anything starts.
# A transient TCG domain (no OS) runs vm.qcow2 <- top.qcow2 <- base.qcow2
# as disk vda; then its QEMU is made to open images behind libvirt's back
# (virsh qemu-monitor-command ... blockdev-add: how such a state arises in
# practice; it taints the domain, which is fine for a test domain):
#   hx.qcow2 <- htop.qcow2 <- hbase.qcow2   (a chain the XML does not list)
#   hov.qcow2 <- top.qcow2                  (an overlay of the disk's top)
#   hlo.qcow2 <- top.qcow2                  (the same, opened with locking=off)
# Every plan and commit that needs the domain's QEMU to commit an image
# its XML does not list must exit 3 with a conflict naming the domain, the
# image and that the XML does not list it; libvirt's QEMU is never driven
# through raw QMP (not even with --qmp naming its monitor); nothing is
# written (sha256 of every file, qemu-img check).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_live.sh"
live_need libvirtd virsh qemu-system-x86_64 qemu-img qemu-io jq

V="virsh -q -c qemu:///system"

if ! live_libvirt_start; then
	not_ok "libvirtd started"; tail -n 20 /var/log/libvirt/libvirtd.log 2>/dev/null | diag
	done_testing
fi
ok "libvirtd answers"

D=$T/p; mkdir -p "$D"
mkq "$D/base.qcow2" 16M; qio "$D/base.qcow2" -c 'write -P 0x11 0 1M'
mkq "$D/top.qcow2" 16M base.qcow2; qio "$D/top.qcow2" -c 'write -P 0x12 1M 1M'
mkq "$D/vm.qcow2" 16M top.qcow2; qio "$D/vm.qcow2" -c 'write -P 0x13 3M 64k'
mkq "$D/hov.qcow2" 16M top.qcow2; qio "$D/hov.qcow2" -c 'write -P 0x14 4M 64k'
mkq "$D/hlo.qcow2" 16M top.qcow2; qio "$D/hlo.qcow2" -c 'write -P 0x15 5M 64k'
mkq "$D/hbase.qcow2" 16M; qio "$D/hbase.qcow2" -c 'write -P 0x21 0 1M'
mkq "$D/htop.qcow2" 16M hbase.qcow2; qio "$D/htop.qcow2" -c 'write -P 0x22 1M 1M'
mkq "$D/hx.qcow2" 16M htop.qcow2; qio "$D/hx.qcow2" -c 'write -P 0x23 3M 64k'
for v in vm hov hlo hx; do guest_raw "$D/$v.qcow2" "$T/$v.0"; done
dom=imgraph-u$$
live_domain_start "$dom" "$D/vm.qcow2" || { not_ok "domain started"; done_testing; }
pid=$(live_domain_pid "$dom")
hotadd() { # NODE IMAGE [LOCKING]: open IMAGE (and its chain) in the domain's QEMU
	$V qemu-monitor-command "$dom" --pretty "{\"execute\":\"blockdev-add\",
		\"arguments\":{\"driver\":\"qcow2\",\"node-name\":\"$1\",
		\"file\":{\"driver\":\"file\",\"filename\":\"$2\",
		\"locking\":\"${3:-auto}\"}}}"
}
check "blockdev-add hx behind libvirt's back" hotadd hx "$D/hx.qcow2"
check "blockdev-add hov behind libvirt's back" hotadd hov "$D/hov.qcow2"
check_eq "the domain's XML lists vda only: vm <- top <- base" \
	"$($V domblklist "$dom" | awk '{print $2}' | xargs -n1 basename | tr '\n' ' ')$($V dumpxml "$dom" | grep -c "hx.qcow2\|htop\|hbase\|hov\|hlo")" \
	"vm.qcow2 0"
"$IMGRAPH" who --output=json "$D/htop.qcow2" "$D/hov.qcow2" >"$T/who.json"
check_eq "who: the domain's QEMU holds htop and hov, with no disk of its XML" \
	"$(jq -r '[.[] | .holders[] | select(.pid == '"$pid"') | "\(.class) \(.domain) \(.disk)"] | unique | join(",")' "$T/who.json")" \
	"libvirt $dom null"

snap_dir "$D" >"$T/sha.0"
# unlisted TOP BASE NAME [OPTS...]: plan (text and JSON) and commit exit 3
# with the live conflict naming the domain, NAME and the XML; the plan's
# live part is empty; nothing is written.
unlisted() {
	local top=$1 base=$2 img=$3 want; shift 3
	want="libvirt domain '$dom' has '$D/$img'( \(an overlay of top\))? open, but the domain's XML does not list it"
	check_rc "$img: plan exits 3" 3 "$IMGRAPH" plan "$@" --top "$D/$top" --base "$D/$base"
	check_grep "$img: the conflict names the domain, the image and the XML" "\[live\] $want" "$T/.out"
	check_nogrep "$img: no raw QMP on the domain's QEMU" "QMP monitor|QMP:|busy" "$T/.out"
	"$IMGRAPH" plan "$@" --output=json --top "$D/$top" --base "$D/$base" >"$T/u.json"
	check_eq "$img: JSON: not runnable, one live conflict naming it, no live part" \
		"$(jq -r '"\(.runnable) \([.conflicts[] | select(.kind == "live") | .node | split("/") | last] | join(",")) \(.live.job // "none")"' "$T/u.json")" \
		"false $img none"
	check_rc "$img: commit --yes exits 3" 3 "$IMGRAPH" commit "$@" --yes --top "$D/$top" --base "$D/$base"
	check_grep "$img: commit names the conflict" "$want" "$T/.out"
	snap_dir "$D" >"$T/sha.1"
	check "$img: nothing written (sha256 of every file)" cmp "$T/sha.0" "$T/sha.1"
}
# 1. top is an image the XML does not list: a commit of an intermediate
#    (htop, below the hot-added hx) and an active commit (hx itself)
unlisted htop.qcow2 hbase.qcow2 htop.qcow2
unlisted hx.qcow2 htop.qcow2 hx.qcow2
# 2. top is the disk's own layer, but the domain's QEMU also has an
#    overlay of it open that the XML does not list (libvirt's commit would
#    not relink it, and imgraph cannot rewrite a header QEMU has open)
unlisted top.qcow2 base.qcow2 hov.qcow2
# 3. the unlisted overlay as top: its base is the disk's layer 1
unlisted hov.qcow2 top.qcow2 hov.qcow2
# 4. --qmp, or a users-file qmp:, naming the domain's own monitor changes
#    nothing: never raw QMP
mon=$(sed -n "s/.*<monitor path='\([^']*\)'.*/\1/p" "/run/libvirt/qemu/$dom.xml" | head -n1)
check "the domain's monitor socket exists" test -S "$mon"
unlisted htop.qcow2 hbase.qcow2 htop.qcow2 --qmp "$mon"
printf 'users:\n  - name: hot\n    kind: vm\n    image: hx.qcow2\n    qmp: %s\n' "$mon" >"$T/users.yaml"
unlisted htop.qcow2 hbase.qcow2 htop.qcow2 --users "$T/users.yaml"
"$IMGRAPH" who --users "$T/users.yaml" --probe --output=json "$D/htop.qcow2" >"$T/who2.json"
check_eq "who --users --probe: still libvirt's, no qmp: taken, not probed" \
	"$(jq -r '[.[0].holders[] | select(.pid == '"$pid"') | "\(.class) \(.qmp // "none") \(.probe // "none")"] | join(",")' "$T/who2.json")" \
	"libvirt none none"
check "libvirt still answers for the domain (its monitor untouched)" \
	$V qemu-monitor-command "$dom" '{"execute":"query-status"}'

# 5. an overlay of top opened without locks (locking=off): found by dev:ino
check "blockdev-del hov" $V qemu-monitor-command "$dom" '{"execute":"blockdev-del","arguments":{"node-name":"hov"}}'
check "blockdev-add hlo with locking=off" hotadd hlo "$D/hlo.qcow2" off
unlisted top.qcow2 base.qcow2 hlo.qcow2

# The control: the disk's own chain, once the hot-added overlay of top is
# gone, is libvirt's commit again (the conflict is not libvirt in general).
check "blockdev-del hlo" $V qemu-monitor-command "$dom" '{"execute":"blockdev-del","arguments":{"node-name":"hlo"}}'
"$IMGRAPH" plan --output=json --top "$D/top.qcow2" --base "$D/base.qcow2" >"$T/c.json"
check_eq "control: without hov or hlo open, libvirt's commit of an intermediate" \
	"$(jq -r '"\(.live.via) \(.live.job) \([.conflicts[] | select(.kind == "live")] | length)"' "$T/c.json")" \
	"libvirt commit 0"

live_domain_stop "$dom"
snap_dir "$D" >"$T/sha.2"
check "after the domain stopped: nothing written" cmp "$T/sha.0" "$T/sha.2"
for v in base top vm hov hlo hbase htop hx; do qcheck "qemu-img check $v" "$D/$v.qcow2"; done
for v in vm hov hlo hx; do
	guest_raw "$D/$v.qcow2" "$T/$v.1"
	check "$v: view intact" cmp "$T/$v.0" "$T/$v.1"
done

done_testing
