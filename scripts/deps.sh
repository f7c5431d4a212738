#!/bin/sh
# Install what imgraph needs to build and test, when it is missing.
#   scripts/deps.sh [--quiet]
# As root with apt-get: installs the missing Debian packages, one line per
# step; apt's own output goes to a log (DEPS_LOG, default build/deps.log)
# that is shown when a step fails.  Otherwise: prints the exact command and
# fails.  --quiet: say nothing when everything is present.
# Exit 0 when everything is present at the end, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
log=${DEPS_LOG:-build/deps.log}

# need PACKAGE TEST-COMMAND...: PACKAGE provides what TEST-COMMAND checks.
need() {
	pkg=$1
	shift
	"$@" >/dev/null 2>&1 || missing="$missing $pkg"
}
has_pc() { pkg-config --exists "$1"; }
has_py() { python3 -c "import $1"; }
has_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The table: one line per package, with what shows it is installed.
scan() {
	missing=""
	need pkg-config command -v pkg-config
	need libncurses-dev has_pc ncursesw
	need libyaml-dev has_pc yaml-0.1
	need zlib1g-dev has_pc zlib
	# Inflates qcow2's compressed clusters 2-3x faster than zlib (which
	# stays the judge of streams libdeflate does not take whole).
	need libdeflate-dev has_pc libdeflate
	# qcow2's zstd-compressed clusters (compression_type 1).
	need libzstd-dev has_pc libzstd
	need check has_pc check
	need qemu-utils command -v qemu-img
	need qemu-utils command -v qemu-io
	need qemu-system-common command -v qemu-storage-daemon
	need tmux command -v tmux
	need strace command -v strace
	need make command -v make
	need gcc command -v cc
	need binutils command -v nm
	need python3 command -v python3
	need python3-yaml has_py yaml
	need jq command -v jq
	need xxd command -v xxd
	need time test -x /usr/bin/time
	need e2fsprogs command -v chattr
	# Loop file systems that share extents, for the reflink test
	# (tests/it/commit_reflink.sh) and benchmark (bench/commit.sh).
	need xfsprogs command -v mkfs.xfs
	need btrfs-progs command -v mkfs.btrfs
	# Live commit (core/live, tests/it/live_*.sh): QEMU itself, libvirt
	# with its QEMU driver (no libvirt-daemon-system: the tests start
	# libvirtd), jansson and libxml2, and libvirt's headers (the library
	# is loaded at run time).
	need qemu-system-x86 command -v qemu-system-x86_64
	need libvirt-daemon test -x /usr/sbin/libvirtd
	need libvirt-daemon-driver-qemu has_deb libvirt-daemon-driver-qemu
	need libvirt-clients command -v virsh
	need libvirt-dev has_pc libvirt
	need libjansson-dev has_pc jansson
	need libxml2-dev has_pc libxml-2.0
	need libtirpc-dev has_pc libtirpc     # the sanitizer build links it
	# one name per package, in the order first seen
	# shellcheck disable=SC2086
	missing=$(printf '%s\n' $missing | awk 'NF && !seen[$0]++' | tr '\n' ' ')
	missing=${missing% }
}

say() { echo "deps: $*"; }

# step WHAT COMMAND...: one line for the step; its output goes to the log,
# whose end is shown when the step fails.
step() {
	what=$1
	shift
	printf 'deps: %s ... ' "$what"
	echo "== $what: $*" >>"$log"
	if "$@" >>"$log" 2>&1; then
		echo ok
		return 0
	fi
	echo FAILED
	echo "deps: the last lines of $log:" >&2
	tail -n 40 "$log" | sed 's/^/  | /' >&2
	return 1
}

scan
if [ -z "$missing" ]; then
	[ $quiet = 1 ] || say "everything imgraph needs is installed"
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	say "missing packages: $missing" >&2
	if command -v apt-get >/dev/null 2>&1; then
		say "run as root:  apt-get install -y --no-install-recommends $missing" >&2
	else
		say "these are Debian package names; install their equivalents" >&2
	fi
	exit 1
fi

if ! mkdir -p "$(dirname "$log")" || ! : >"$log"; then
	say "cannot write $log" >&2
	exit 1
fi
say "missing: $missing (apt output: $log)"
export DEBIAN_FRONTEND=noninteractive
step "apt-get update" apt-get update || exit 1
# shellcheck disable=SC2086
step "apt-get install $missing" \
	apt-get install -y --no-install-recommends $missing || exit 1
wanted=$missing
scan
if [ -n "$missing" ]; then
	say "still missing after the install: $missing" >&2
	exit 1
fi
say "installed: $wanted"
