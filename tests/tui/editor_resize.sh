#!/usr/bin/env bash
# A long commit (rate-limited copy) stays responsive: the window is resized
# while it copies (bigger, too small, back), Esc asks before cancelling and
# No keeps it running; a cancelled commit and one stopped by SIGTERM leave
# every image valid with the same guest views, and the terminal restored.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

mkpool() { # DIR: base <- top <- {a, b}; 48 MiB to copy
	mkdir -p "$1"
	mkq "$1/base.qcow2" 256M
	qio "$1/base.qcow2" -c 'write -P 0x11 0 64M'
	mkq "$1/top.qcow2" 256M base.qcow2 qcow2
	qio "$1/top.qcow2" -c 'write -P 0x22 16M 48M'
	mkq "$1/a.qcow2" 256M top.qcow2 qcow2
	qio "$1/a.qcow2" -c 'write -P 0x33 0 1M'
	mkq "$1/b.qcow2" 256M top.qcow2 qcow2
	qio "$1/b.qcow2" -c 'write -P 0x44 100M 1M'
}
views() { # DIR OUT
	mkdir -p "$2"; guest_raw "$1/a.qcow2" "$2/a.raw"; guest_raw "$1/b.qcow2" "$2/b.raw"
}
same_views() { # NAME A B
	if qemu-img compare -q -f raw -F raw "$2/a.raw" "$3/a.raw" &&
	   qemu-img compare -q -f raw -F raw "$2/b.raw" "$3/b.raw"; then ok "$1"; else not_ok "$1"; fi
}
backing_of() { qemu-img info --output=json "$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p'; }
begin_commit() { # start the copy of top into base
	see "editor open" "4 images"
	select_img top; keys t
	select_img base; keys b
	see "pair is clean" "top.qcow2 into base.qcow2: clean"
	keys c
	see "plan question" "\(y/N\)"
	keys y
	see "progress screen" "Committing top.qcow2 into base.qcow2"
	see "copy phase with rate" "Rate: [0-9.]+ [KM]iB/s +Elapsed: [0-9:]+ +ETA: [0-9:]+"
}

# 1. Resize during the copy, decline the cancel, finish.
P=$T/p1
mkpool "$P"
views "$P" "$T/v1"
start 80 24 -- --rate 6M "$P"
begin_commit
see "overall bar moves" "Overall" 
tm resize-window -x 120 -y 40
see "redrawn at 120x40" "Phases: .*\[copy\]"
check_eq "pane is 40 rows" "$(screen | wc -l)" 40
bar=$(grep -m1 -E '\] +[0-9.]+%$' "$T/.screen")
check_eq "bar spans the new width (120 - 4 columns)" "$(printf '%s' "$bar" | LC_ALL=C.UTF-8 wc -m)" 118
tm resize-window -x 50 -y 12
see "too small during the copy" "Terminal too small"
tm resize-window -x 80 -y 24
see "progress again at 80x24" "Committing top.qcow2 into base.qcow2"
keys Escape
see "Esc asks before cancelling" "Cancel the running commit\? Every image stays valid \(y/N\)"
keys n
not_see "No keeps it running" "Cancelling"
see "still copying after No" "\[copy\]|Relink every parent" 
see "relink question at the end" "Relink every parent of top to base now" 40
keys y
see "finished" "Commit finished" 30
check_eq "a on base" "$(backing_of "$P/a.qcow2")" "base.qcow2"
check_eq "b on base" "$(backing_of "$P/b.qcow2")" "base.qcow2"
views "$P" "$T/v1b"
same_views "guest views unchanged after the commit" "$T/v1" "$T/v1b"
qcheck "base clean" "$P/base.qcow2"
keys Escape q
check_eq "exit 0" "$(wait_exit)" 0

# 2. Cancel with Esc + y: images valid, parents still on top.
P=$T/p2
mkpool "$P"
views "$P" "$T/v2"
start 80 24 -- --rate 8M "$P"
begin_commit
keys Escape
see "cancel question" "Cancel the running commit\?"
keys y
see "cancelling shown or done" "Cancelling|Commit cancelled" 
see "cancelled result" "Commit cancelled" 30
check_eq "a still on top" "$(backing_of "$P/a.qcow2")" "top.qcow2"
check_eq "b still on top" "$(backing_of "$P/b.qcow2")" "top.qcow2"
views "$P" "$T/v2b"
same_views "cancel: guest views unchanged" "$T/v2" "$T/v2b"
qcheck "cancel: base clean" "$P/base.qcow2"
qcheck "cancel: top clean" "$P/top.qcow2"
keys Escape q
check_eq "exit 0 after cancel" "$(wait_exit)" 0

# 3. Ctrl-C during the copy cancels the commit; the editor stays open.
P=$T/p4
mkpool "$P"
start 80 24 -- --rate 8M "$P"
begin_commit
keys C-c
see "Ctrl-C cancels the commit" "Commit cancelled" 30
check_eq "Ctrl-C: a still on top" "$(backing_of "$P/a.qcow2")" "top.qcow2"
qcheck "Ctrl-C: base clean" "$P/base.qcow2"
keys Escape
see "Ctrl-C: editor still open" "/ Search  t Top"
keys q
check_eq "Ctrl-C during a commit then q: exit 0" "$(wait_exit)" 0

# 4. SIGTERM during the copy: cancels, exits, terminal restored.
P=$T/p3
mkpool "$P"
views "$P" "$T/v3"
start 80 24 -- --rate 8M "$P"
begin_commit
check_eq "editor on the alternate screen" "$(tm display -p '#{alternate_on}')" 1
kill -TERM "$(cat "$T/pid")"
rc=$(wait_exit 30)
check_eq "SIGTERM: exit status 143" "$rc" 143
check_eq "SIGTERM: alternate screen left" "$(tm display -p '#{alternate_on}')" 0
check_eq "SIGTERM: a still on top" "$(backing_of "$P/a.qcow2")" "top.qcow2"
views "$P" "$T/v3b"
same_views "SIGTERM: guest views unchanged" "$T/v3" "$T/v3b"
qcheck "SIGTERM: base clean" "$P/base.qcow2"
done_testing
