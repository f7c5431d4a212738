#!/usr/bin/env bash
# suite_skip.sh - how the suite reports a test whose tools are missing
# (tests/run.sh, need_tools/have_tool in lib.sh, ut_need_tools in
# tests/unit/helpers.c):
#   * elsewhere it is counted and shown as SKIP, and the run passes;
#   * with CI=true it FAILS, naming the tool, because CI runs every test.
# Guards the first-run promise: on a machine without tmux or qemu-img a
# test must neither pass silently nor fail without saying why.
# shellcheck disable=SC2034  # read by lib.sh: this script needs no qemu
LIB_NEEDS=""
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
unset CI IT_FILTER

# A tree holding only the runner, the library and three scripts.
W=$T/tree
mkdir -p "$W/tests/it"
cp "$ROOT/tests/run.sh" "$W/tests/"
cp "$ROOT/tests/it/lib.sh" "$W/tests/it/"
cat >"$W/tests/it/all_there.sh" <<'S'
LIB_NEEDS=""; . "$(dirname "$0")/lib.sh"
ok one; ok two; done_testing
S
cat >"$W/tests/it/needs_absent.sh" <<'S'
LIB_NEEDS=""; . "$(dirname "$0")/lib.sh"
need_tools sh imgraph-absent-tool
ok "never reached"; done_testing
S
cat >"$W/tests/it/part_absent.sh" <<'S'
LIB_NEEDS=""; . "$(dirname "$0")/lib.sh"
ok before
if have_tool imgraph-absent-tool "the part that needs it"; then ok "never reached"; fi
ok after; done_testing
S
run() { # LOG ENV...: the runner over the three scripts
	local log=$1; shift
	env "$@" IMGRAPH=/nonexistent bash "$W/tests/run.sh" --only-it >"$log" 2>&1
}

run "$T/plain.log"
check_eq "no CI: the run passes" "$?" 0
check_grep "no CI: summary counts the skips" "^4 passed, 0 failed, 2 skipped$" "$T/plain.log"
check_grep "no CI: a skipped script is shown as SKIP with the tool" \
	"^SKIP tests/it/needs_absent.sh \(imgraph-absent-tool not installed" "$T/plain.log"
check_grep "no CI: a script with a skipped part says so" \
	"^PASS tests/it/part_absent.sh \(.*2 ok, 1 skipped\)" "$T/plain.log"

run "$T/ci.log" CI=true
check_eq "CI=true: the run fails" "$?" 1
check_grep "CI=true: summary counts the failures" "^4 passed, 2 failed, 0 skipped$" "$T/ci.log"
check_grep "CI=true: the message names the script and the tool" \
	"not ok - needs_absent.sh: imgraph-absent-tool not installed \(CI=true" "$T/ci.log"
check_grep "CI=true: a part that needs a tool fails too" \
	"not ok - the part that needs it: imgraph-absent-tool not installed" "$T/ci.log"

# The real scripts: the terminal tests without tmux, a unit suite without
# qemu-img and qemu-io.
path_without "$T/notmux" tmux
path_without "$T/noqemu" qemu-img qemu-io
env PATH="$T/notmux" bash "$ROOT/tests/tui/editor_basic.sh" >"$T/tui.log" 2>&1
check_eq "no tmux: editor_basic.sh exits 0" "$?" 0
check_grep "no tmux: editor_basic.sh is a SKIP naming what is missing" \
	"^ok - editor_basic.sh # SKIP .*tmux not installed" "$T/tui.log"
env PATH="$T/notmux" CI=true bash "$ROOT/tests/tui/editor_basic.sh" >"$T/tui-ci.log" 2>&1
check_eq "no tmux, CI=true: editor_basic.sh fails" "$?" 1
check_grep "no tmux, CI=true: the failure names tmux" \
	"^not ok - editor_basic.sh: .*tmux not installed" "$T/tui-ci.log"

QW=$B/tests/test_qcow2_write
if [ -x "$QW" ]; then
	(cd "$ROOT" && env PATH="$T/noqemu" bash tests/run.sh --only-unit "$QW") >"$T/unit.log" 2>&1
	check_eq "no qemu-img: the unit run passes" "$?" 0
	check_grep "no qemu-img: test_qcow2_write is a SKIP naming the tools" \
		"^SKIP unit test_qcow2_write \(skipped: qemu-img qemu-io not installed" "$T/unit.log"
	check_grep "no qemu-img: summary" "^0 passed, 0 failed, 1 skipped$" "$T/unit.log"
	(cd "$ROOT" && env PATH="$T/noqemu" CI=true bash tests/run.sh --only-unit "$QW") >"$T/unit-ci.log" 2>&1
	check_eq "no qemu-img, CI=true: the unit run fails" "$?" 1
	check_grep "no qemu-img, CI=true: the failure names the tools" \
		"FAIL: qemu-img qemu-io not installed \(CI=true" "$T/unit-ci.log"
else
	not_ok "$QW is not built (make check builds it)"
fi
done_testing
