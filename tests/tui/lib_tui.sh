# tests/tui/lib_tui.sh - drive the editor in a real terminal under tmux.
# Sourced after tests/it/lib.sh.  A private tmux server (-L imgraph-$$)
# provides the pty, so the tests run without a terminal (CI, cron).
# Screens are read with capture-pane and judged as text; images are judged
# with qemu-img.
need_tools tmux
[ -x "$IMGRAPH" ] || { echo "not ok - $IMGRAPH is not built"; exit 1; }

# One private server per start() (imgraph-PID-N): a server being killed
# cannot swallow the next session.
NSOCK=0
export TMUX_TMPDIR=$T         # sockets go away with the scratch dir
SOCK=imgraph-$$-0
tm() { tmux -L "$SOCK" "$@"; }
kill_all() {
	local i
	for i in $(seq 0 "$NSOCK"); do tmux -L "imgraph-$$-$i" kill-server 2>/dev/null; done
	return 0
}
trap 'kill_all; rm -rf "$T"' EXIT

# start W H [ENV=VAL...] -- ARGS...: run imgraph ARGS in a W x H pane.
# Its exit status lands in $T/exit; its pid in $T/pid.
start() {
	local w=$1 h=$2; shift 2
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	rm -f "$T/exit" "$T/pid"
	local q envq="" argq=""
	for q in "${envs[@]}"; do envq+=" $(printf '%q' "$q")"; done
	for q in "$@"; do argq+=" $(printf '%q' "$q")"; done
	tm kill-server 2>/dev/null
	NSOCK=$((NSOCK + 1))
	SOCK=imgraph-$$-$NSOCK
	tm new-session -d -x "$w" -y "$h" \
		"env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8$envq sh -c 'echo \$\$ > $T/pid; exec $(printf '%q' "$IMGRAPH")$argq'; echo \$? > $T/exit; sleep 600"
}
screen() { tm capture-pane -p; }
keys() { tm send-keys "$@"; }
# wait_for REGEX [SECONDS]: until the screen matches (default 30 s: a
# loaded CI machine can take seconds per frame; a pass never waits long).
wait_for() {
	local re=$1 n=$(( ${2:-30} * 10 ))
	while [ $n -gt 0 ]; do
		screen >"$T/.screen"
		grep -qE -- "$re" "$T/.screen" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
# see NAME REGEX [SECONDS]: ok when the screen shows REGEX.
see() {
	if wait_for "$2" "${3:-30}"; then ok "$1"
	else not_ok "$1 (screen lacks /$2/)"; diag <"$T/.screen"; fi
}
# not_see NAME REGEX: the current screen does not show REGEX.
not_see() {
	screen >"$T/.screen"
	if grep -qE -- "$2" "$T/.screen"; then
		not_ok "$1 (screen shows /$2/)"; diag <"$T/.screen"
	else ok "$1"; fi
}
# wait_exit [SECONDS]: until imgraph has exited (default 30 s); prints its status.
wait_exit() {
	local n=$(( ${1:-30} * 10 ))
	while [ $n -gt 0 ] && [ ! -s "$T/exit" ]; do sleep 0.1; n=$((n - 1)); done
	cat "$T/exit" 2>/dev/null || echo none
}
# demo DIR: build the teaching pool.  --demo needs a terminal (without
# one it refuses before building), so it runs in a pane and is left at
# once: q closes the guide it opens on, q quits.
demo() {
	start 80 24 -- --demo "$1"
	if ! wait_for "Guide: the demo pool" 120; then
		echo "# demo build failed"; diag <"$T/.screen"; return 1
	fi
	keys q q
	wait_exit >/dev/null
	[ -f "$1/vm-web.qcow2" ] || { echo "# demo build failed"; return 1; }
}
# select NAME: search for NAME (the selection lands on the first match).
select_img() { keys / "$1" Enter; }
