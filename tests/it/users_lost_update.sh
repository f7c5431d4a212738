#!/usr/bin/env bash
# users_lost_update.sh - the users file never loses an update (issue 13,
# "The users file can lose an update"): the commit reads it once, under a
# lock, and compares it again just before replacing it.
#   L1 an edit made after the commit read the file (here: while the
#      journal's rename is held up by strace) stops the commit before the
#      relink with a clear error; the edit is kept, every parent still
#      names top, no journal is left; a retry then repoints the file with
#      the edit in it (the old code read the file twice without a lock
#      and overwrote the edit, exit 0);
#   L2 another process holding the file's lock makes the commit stop
#      before the relink (exit 3) and write nothing to the file.
. "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || { not_ok "strace is not installed (make deps)"; done_testing; }

build() {
	rm -rf "$W"; mkdir -p "$W"
	mkq "$W/base.qcow2" 8M
	qio "$W/base.qcow2" -c 'write -P 0x11 0 1M'
	mkq "$W/top.qcow2" 8M base.qcow2
	qio "$W/top.qcow2" -c 'write -P 0x22 1M 1M'
	mkq "$W/vm1.qcow2" 8M top.qcow2
	mkq "$W/vm2.qcow2" 8M top.qcow2
	mkq "$W/other.qcow2" 8M
	cat >"$W/users.yaml" <<'EOF'
# who uses what
users:
  - name: nightly-backup
    kind: backup
    image: top.qcow2
    perm: [consistent-read]
  - name: other-vm
    kind: vm
    image: other.qcow2
EOF
}
side() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename"'; }
commit() { "$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--users "$W/users.yaml" --yes -q "$W"; }

# L1
W=$T/l1; build
guest_raw "$W/vm1.qcow2" "$T/vm1.raw"
# Every rename waits 1.5 s: the journal's temporary stays long enough for
# the edit to land between the commit's read and its replacement.
# (LeakSanitizer cannot run under ptrace: off for this run.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
	-e inject=rename,renameat,renameat2:delay_enter=1500000 \
	"$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" \
	--users "$W/users.yaml" --yes -q "$W" >"$T/l1.out" 2>"$T/l1.err" &
pid=$!
edited=0
for _ in $(seq 600); do
	for f in "$W"/.imgraph-tmp-*; do
		[ -f "$f" ] && [ "$(head -c 15 "$f" 2>/dev/null)" = imgraph-journal ] || continue
		printf '  - name: added-meanwhile\n    kind: vm\n    image: other.qcow2\n' >>"$W/users.yaml"
		edited=1
		break 2
	done
	sleep 0.05
done
wait $pid; rc=$?
check_eq "L1 the edit landed while the journal was written" "$edited" 1
check_eq "L1 commit stopped (exit 1)" "$rc" 1
check_grep "L1 says the file changed and nothing was relinked" \
	'users.yaml: the users file was changed by someone else after the commit read it; that edit is kept and nothing was relinked' "$T/l1.err"
check_grep "L1 the edit is kept" 'name: added-meanwhile' "$W/users.yaml"
check_grep "L1 the file was not repointed" '^    image: top.qcow2$' "$W/users.yaml"
check_eq "L1 vm1 still on top" "$(side "$W/vm1.qcow2")" top.qcow2
check_eq "L1 vm2 still on top" "$(side "$W/vm2.qcow2")" top.qcow2
check "L1 no journal left" test ! -e "$W/.imgraph-journal-base.qcow2"
check "L1 vm1's view unchanged" qemu-img compare -U -q -f qcow2 -F raw "$W/vm1.qcow2" "$T/vm1.raw"
check_rc "L1 retry" 0 commit
check_grep "L1 retry: the edit is there" 'name: added-meanwhile' "$W/users.yaml"
check_grep "L1 retry: repointed" '^    image: base.qcow2$' "$W/users.yaml"
check_grep "L1 retry: comment kept" '^# who uses what$' "$W/users.yaml"
check_eq "L1 retry: vm1 on base" "$(side "$W/vm1.qcow2")" base.qcow2
check "L1 retry: vm1's view unchanged" qemu-img compare -U -q -f qcow2 -F raw "$W/vm1.qcow2" "$T/vm1.raw"

# L2: a process holds the users file's lock (another imgraph repointing it).
W=$T/l2; build
cp "$W/users.yaml" "$T/users.before"
python3 - "$W/users.yaml" "$T/locked" <<'EOF' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))
open(sys.argv[2], 'w').close()
time.sleep(30)
EOF
holder=$!
for _ in $(seq 100); do [ -e "$T/locked" ] && break; sleep 0.05; done
check_rc "L2 commit while the file is locked: exit 3" 3 commit
check_grep "L2 says why" 'another process is changing the users file' "$T/.err"
check "L2 users file untouched" cmp "$W/users.yaml" "$T/users.before"
check_eq "L2 vm1 still on top" "$(side "$W/vm1.qcow2")" top.qcow2
check "L2 no journal left" test ! -e "$W/.imgraph-journal-base.qcow2"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check_rc "L2 once the lock is gone" 0 commit
check_grep "L2 repointed" '^    image: base.qcow2$' "$W/users.yaml"

done_testing
