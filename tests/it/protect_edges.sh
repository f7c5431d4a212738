#!/usr/bin/env bash
# protect_edges.sh - open edges of commit --protect (issue 18), judged with
# qemu-img compare/check:
#   1. a reader created while the commit copies (a new overlay of base,
#      made while the commit is stopped with SIGSTOP after its first copy
#      progress line): the commit stops at its next look at the pool
#      (commit_watch.c) before base changes further, rewrites no header,
#      names the new reader; top's parents keep reading top, the protected
#      readers keep their views, every image is clean; base holds top's
#      data only below the offset named (compared with qemu-img).  A plain
#      commit (no --protect) is stopped the same way.  The rerun with
#      --protect protects the new reader too and completes.
#   2. base smaller than its own, larger backing file (base grows to top's
#      size): the protected readers' views past base's old end (zeros,
#      not the backing file's data) stay intact, and base shows top's
#      view.
. "$(dirname "$0")/lib.sh"
need_tools jq

D=$T/pool
build() {
	rm -rf "$D"; mkdir -p "$D" && cd "$D" || return 1
	mkq base.qcow2 64M
	qio base.qcow2 -c 'write -P 0x11 0 64M'
	mkq top.qcow2 64M base.qcow2 qcow2
	qio top.qcow2 -c 'write -P 0x22 0 48M'
	mkq vm.qcow2 64M top.qcow2 qcow2
	mkq c1.qcow2 64M base.qcow2 qcow2
	mkq c2.qcow2 64M base.qcow2 qcow2 -o compat=0.10
}
# new_reader_during NAME [--protect]: the commit, stopped after its first
# copy progress line past 0 while new.qcow2 is created on base.
new_reader_during() {
	local pid line
	rm -f "$T/fifo"; mkfifo "$T/fifo"
	"$IMGRAPH" commit "$@" --yes -p --rate 4M --top top.qcow2 \
		--base base.qcow2 . >"$T/out" 2>"$T/fifo" &
	pid=$!
	exec 7<"$T/fifo"
	while IFS= read -r line <&7; do
		echo "$line" >>"$T/err"
		case $line in
		*'"phase": "copy"'*'"done": 0,'*) ;;
		*'"phase": "copy"'*)
			kill -STOP $pid
			mkq new.qcow2 64M base.qcow2 qcow2
			kill -CONT $pid
			break ;;
		esac
	done
	cat <&7 >>"$T/err"
	exec 7<&-
	wait $pid
}

build || { not_ok fixture; done_testing; }
for i in vm c1 c2 top; do guest_raw "$i.qcow2" "$T/$i.raw"; done

# ---- 1. a reader created during the copy --------------------------------------
: >"$T/err"
new_reader_during --protect; rc=$?
check_eq "new reader: the commit is refused" "$rc" 3
check_grep "new reader: named, the copy stopped before base changed further" \
	"new\.qcow2' began reading 'base\.qcow2' during the copy.*stopped before base changed at [0-9]+" "$T/err"
AT=$(grep -o 'stopped before base changed at [0-9]*' "$T/err" | grep -o '[0-9]*$')
check_eq "new reader: vm still reads top" "$(qemu-img info -U --output=json vm.qcow2 |
	jq -r '."backing-filename"')" top.qcow2
for i in vm c1 c2; do
	check "new reader: $i keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/$i.raw" $i.qcow2
done
for i in base top vm c1 c2 new; do qcheck "new reader: $i clean" $i.qcow2; done
if [ -n "$AT" ] && [ "$AT" -lt $((48 << 20)) ]; then
	ok "new reader: the copy stopped at $AT, before its end (48 MiB)"
	qemu-img convert -U -O raw base.qcow2 "$T/base.raw"
	check "new reader: base holds top's data below it" \
		cmp -s -n "$AT" "$T/top.raw" "$T/base.raw"
	check "new reader: base keeps its own data from there to the copy's end" \
		cmp -s <(tail -c +$((AT + 1)) "$T/base.raw" | head -c $(((48 << 20) - AT))) \
		<(head -c $(((48 << 20) - AT)) /dev/zero | tr '\0' '\021')
else
	not_ok "new reader: the copy did not stop before its end (at '$AT')"
fi
guest_raw new.qcow2 "$T/new.raw"
check_rc "new reader: the rerun with --protect completes" 0 "$IMGRAPH" commit \
	--protect --yes -q --top top.qcow2 --base base.qcow2 .
for i in vm c1 c2 new; do
	check "new reader: after the rerun $i keeps its view" \
		qemu-img compare -q -f raw -F qcow2 "$T/$i.raw" $i.qcow2
done
check "new reader: after the rerun base shows top's view" \
	qemu-img compare -q -f raw -F qcow2 "$T/top.raw" base.qcow2

# The same without --protect: base has no other reader when planned.
rm -rf "$D"; mkdir -p "$D" && cd "$D" || exit 1
mkq base.qcow2 64M
qio base.qcow2 -c 'write -P 0x11 0 64M'
mkq top.qcow2 64M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x22 0 48M'
mkq vm.qcow2 64M top.qcow2 qcow2
guest_raw vm.qcow2 "$T/vm.raw"
: >"$T/err"
new_reader_during; rc=$?
check_eq "new reader, plain commit: refused" "$rc" 3
check_grep "new reader, plain commit: named" "new\.qcow2' began reading 'base\.qcow2' during the copy" "$T/err"
check_eq "new reader, plain commit: vm still reads top" "$(qemu-img info -U --output=json vm.qcow2 |
	jq -r '."backing-filename"')" top.qcow2
check "new reader, plain commit: vm keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/vm.raw" vm.qcow2
qcheck "new reader, plain commit: base clean" base.qcow2

# ---- 2. base smaller than its own larger backing file ----------------------
rm -rf "$D"; mkdir -p "$D" && cd "$D" || exit 1
mkq bb.qcow2 64M
qio bb.qcow2 -c 'write -P 0x77 0 64M'
mkq base.qcow2 32M bb.qcow2 qcow2
qio base.qcow2 -c 'write -P 0x11 0 8M'
mkq top.qcow2 64M base.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x22 4M 4M' -c 'write -P 0x23 40M 2M'
mkq vm.qcow2 64M top.qcow2 qcow2
mkq c.qcow2 64M base.qcow2 qcow2
qio c.qcow2 -c 'write -P 0x31 50M 64k'
mkq c2.qcow2 48M base.qcow2 qcow2 -o compat=0.10
mkq c3.qcow2 64M base.qcow2 qcow2 -o extended_l2=on
for i in vm c c2 c3 top; do guest_raw "$i.qcow2" "$T/$i.raw"; done
check_rc "base grows over a larger backing: commit --protect" 0 "$IMGRAPH" commit \
	--protect --yes -q --top top.qcow2 --base base.qcow2 .
check_eq "base grew to top's size" "$(qemu-img info --output=json base.qcow2 |
	jq -r '."virtual-size"')" $((64 << 20))
for i in vm c c2 c3; do
	check "base grows: $i keeps its view (zeros past base's old end)" \
		qemu-img compare -q -f raw -F qcow2 "$T/$i.raw" $i.qcow2
done
check "base grows: base shows top's view, not bb's data" \
	qemu-img compare -q -f raw -F qcow2 "$T/top.raw" base.qcow2
for i in base vm c c2 c3; do qcheck "base grows: $i clean" $i.qcow2; done
done_testing
