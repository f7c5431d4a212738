# shellcheck shell=bash
# tests/it/lib.sh - sourced by integration scripts.
# Each script builds real images with qemu-img/qemu-io in a scratch dir and
# judges results with qemu-img (never with our own reader alone).
# Output is TAP-like: "ok - name" / "not ok - name" / "ok - name # SKIP why";
# finish with `done_testing`.
#
# Tools: sourcing this needs qemu-img and qemu-io, or the tools listed in
# LIB_NEEDS when the script sets it first (LIB_NEEDS="" for none).  A
# script that needs more calls need_tools; a part of a script that needs
# one calls have_tool.  A missing tool is a SKIP, except with CI=true,
# where it is a failure: CI must run every test.
set -u
: "${IMGRAPH:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/imgraph}"
T=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-it.XXXXXX")
trap 'holder_stop; rm -rf "$T"' EXIT
_ok=0 _nok=0 _skip=0
export LC_ALL=C

ok()     { echo "ok - $*"; _ok=$((_ok + 1)); }
# skip NAME WHY: a visible skip (TAP's "# SKIP"); under CI (CI=true),
# where everything a test needs is installed, a skip is a failure.
skip() {
	if in_ci; then
		not_ok "$1 (cannot run under CI: $2)"
	else
		echo "ok - $1 # SKIP $2"; _skip=$((_skip + 1))
	fi
}
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
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; return 1; fi; }

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

# ---- holders: one background process kept running while the script looks
# at it; HOLDER is its pid.  holder_stop also runs at exit.
HOLDER=
holder_stop() {
	if [ -n "$HOLDER" ]; then
		kill "$HOLDER" 2>/dev/null
		wait "$HOLDER" 2>/dev/null
	fi
	HOLDER=
	exec 7>&- 2>/dev/null
}
# holder_wait lock | fd FILE: until HOLDER holds a lock, or has FILE open
# (5 s at most; nonzero when it did not, or died).
holder_wait() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$HOLDER" 2>/dev/null || return 1
		if [ "$1" = lock ]; then
			grep -q "lock:" /proc/"$HOLDER"/fdinfo/* 2>/dev/null && return 0
		else
			ls -l /proc/"$HOLDER"/fd 2>/dev/null | grep -qF "$2" && return 0
		fi
		sleep 0.05
	done
	return 1
}
# holder_qio ARGS...: qemu-io ARGS reading its commands from a FIFO kept
# open on fd 7, until its locks show; its output goes to $T/holder.log.
holder_qio() {
	rm -f "$T/in"; mkfifo "$T/in"
	qemu-io "$@" <"$T/in" >"$T/holder.log" 2>&1 &
	HOLDER=$!
	exec 7>"$T/in"
	holder_wait lock
}

done_testing() {
	echo "# $_ok passed, $_nok failed, $_skip skipped"
	[ "$_nok" -eq 0 ]
	exit $?
}

# True when running in CI (CI=true, as CI services set it).
in_ci() { case ${CI:-} in true|1|yes) return 0 ;; esac; return 1; }

# The tools of "$@" that are not installed, space-separated.
missing_tools() {
	local t out=""
	for t in "$@"; do command -v "$t" >/dev/null 2>&1 || out+=" $t"; done
	echo "${out# }"
}

# need_tools TOOL...: the whole script needs them.  When one is missing the
# script ends here: skipped, or failed under CI=true.
need_tools() {
	local miss
	miss=$(missing_tools "$@")
	[ -z "$miss" ] && return 0
	if in_ci; then
		echo "not ok - $(basename "$0"): $miss not installed (CI=true runs every test; make deps installs it)"
		exit 1
	fi
	echo "ok - $(basename "$0") # SKIP $miss not installed (make deps installs it)"
	exit 0
}

# have_tool TOOL WHAT: 0 when TOOL is installed; else WHAT (the part of
# the script that needs it) is reported skipped, or failed under CI=true,
# and 1 is returned.
have_tool() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if in_ci; then
		not_ok "$2: $1 not installed (CI=true runs every test; make deps installs it)"
	else
		skip "$2" "$1 not installed (make deps installs it)"
	fi
	return 1
}

# path_without DIR TOOL...: fill DIR with links to every command on $PATH
# but the TOOLs, so that PATH=DIR runs as if they were not installed.
path_without() {
	local dir=$1 d t
	shift
	mkdir -p "$dir"
	local IFS=:
	for d in $PATH; do
		# the first of a name on PATH wins; ln skips the names it has
		[ -d "$d" ] && ln -s "$d"/* "$dir/" 2>/dev/null
	done
	for t in "$@"; do rm -f "$dir/$t"; done
	return 0
}

# copy_tree DEST: the sources, scripts and Makefile of this tree (no build
# output, no fuzz corpus; times kept, so objects copied along stay
# current), for tests that build or break a copy.  make in
# the copy must not inherit the outer make's flags (SAN, -j); BUILD comes
# from the environment, so such tests pass their own.
copy_tree() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	mkdir -p "$1/fuzz"
	(cd "$root" && cp -rp Makefile scripts formats core tui tests bench docs "$1/" &&
		find fuzz -maxdepth 1 -type f -exec cp -p {} "$1/fuzz/" \;)
	unset MAKEFLAGS MFLAGS MAKELEVEL
}

# shellcheck disable=SC2086
need_tools ${LIB_NEEDS-qemu-img qemu-io}
