# tests/it/lib.sh - sourced by integration scripts.
# Each script builds real images with qemu-img/qemu-io in a scratch dir and
# judges results with qemu-img (never with our own reader alone).
# Output is TAP-like: "ok - name" / "not ok - name"; finish with `done_testing`.
set -u
: "${IMGRAPH:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/imgraph}"
T=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-it.XXXXXX")
trap 'rm -rf "$T"' EXIT
_ok=0 _nok=0
export LC_ALL=C

ok()     { echo "ok - $*"; _ok=$((_ok + 1)); }
not_ok() { echo "not ok - $*"; _nok=$((_nok + 1)); }
diag()   { sed 's/^/# /'; }

# check NAME COMMAND...: ok when the command succeeds.
check() { local n=$1; shift; if "$@" >"$T/.out" 2>&1; then ok "$n"; else not_ok "$n"; diag <"$T/.out"; fi; }
# check_rc NAME RC COMMAND...: ok when the command exits with RC.
check_rc() {
	local n=$1 want=$2 rc; shift 2
	"$@" >"$T/.out" 2>"$T/.err"; rc=$?
	if [ "$rc" = "$want" ]; then ok "$n"; else not_ok "$n (rc=$rc, want $want)"; diag <"$T/.err"; diag <"$T/.out"; fi
}
# check_grep NAME PATTERN FILE
check_grep() { if grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1 (no /$2/ in $3)"; diag <"$3"; fi; }
check_nogrep() { if ! grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1 (/$2/ found in $3)"; grep -E -- "$2" "$3" | diag; fi; }
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi; }

# qemu-img judges: clean check (exit 0 and no leaks/errors)
qcheck() { # NAME IMAGE
	if qemu-img check -f qcow2 "$2" >"$T/.qc" 2>&1; then ok "$1"; else not_ok "$1"; diag <"$T/.qc"; fi
}
# guest view as raw bytes (through the whole chain)
guest_raw() { qemu-img convert -U -O raw "$1" "$2"; }
hash_files() { sha256sum "$@" 2>/dev/null | sort -k2; }
# snapshot hashes of every file under a dir, for "nothing written" checks
snap_dir() { find "$1" -type f -print0 | sort -z | xargs -0 sha256sum; }

mkq() { # mkq FILE SIZE [BACKING [BACKING_FMT]] [extra qemu-img opts...]
	local f=$1 s=$2; shift 2
	if [ $# -ge 1 ] && [ -n "$1" ]; then
		local b=$1 bf=${2:-qcow2}; shift 2 || shift $#
		qemu-img create -q -f qcow2 -b "$b" -F "$bf" "$@" "$f" "$s"
	else
		[ $# -ge 1 ] && shift
		qemu-img create -q -f qcow2 "$@" "$f" "$s"
	fi
}
qio() { qemu-io -f qcow2 "$@" >/dev/null; }   # qio FILE -c 'write -P 0x11 0 64k'

# need_fmt_tool: set FMT_TOOL to the tests/tools/fmt_tool of the build
# that made $IMGRAPH (build-x/imgraph -> build-x/tests/tools/, ./imgraph
# -> ${BUILD:-build}/tests/tools/), or stop the script when it is missing.
need_fmt_tool() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	FMT_TOOL=${IMGRAPH_FMT_TOOL:-$(dirname "$IMGRAPH")/tests/tools/fmt_tool}
	[ -x "$FMT_TOOL" ] || FMT_TOOL=$root/${BUILD:-build}/tests/tools/fmt_tool
	if [ ! -x "$FMT_TOOL" ]; then
		not_ok "test tool not found: $FMT_TOOL (make ${BUILD:-build}/tests/tools/fmt_tool)"
		done_testing
	fi
}

# skip NAME WHY: a visible skip (TAP's "# SKIP"); under CI (CI=true),
# where everything a test needs is installed, a skip is a failure.
skip() {
	if [ "${CI:-}" = true ]; then
		not_ok "$1 (cannot run under CI: $2)"
	else
		echo "ok - $1 # SKIP $2"
		_ok=$((_ok + 1))
	fi
}

done_testing() {
	echo "# $_ok passed, $_nok failed"
	[ "$_nok" -eq 0 ]
	exit $?
}
