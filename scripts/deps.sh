#!/bin/sh
# Install what imgraph needs to build and test, when it is missing.
# As root: apt-get install.  Otherwise: print the exact command.
# --quiet: say nothing when everything is present.
set -e
quiet=0
[ "$1" = "--quiet" ] && quiet=1

pkgs=""
need() { # need PACKAGE TEST-COMMAND...
	pkg=$1; shift
	if ! "$@" >/dev/null 2>&1; then pkgs="$pkgs $pkg"; fi
}
has_pc() { pkg-config --exists "$1"; }
has_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need pkg-config command -v pkg-config
need libncurses-dev has_pc ncursesw
need libyaml-dev has_pc yaml-0.1
need zlib1g-dev has_pc zlib
# Inflates qcow2's compressed clusters 2-3x faster than zlib (which stays
# the judge of streams libdeflate does not take whole).
need libdeflate-dev has_pc libdeflate
need check has_pc check
need qemu-utils command -v qemu-img
need qemu-system-common command -v qemu-storage-daemon
need tmux command -v tmux
need strace command -v strace
need make command -v make
need python3 command -v python3
need jq command -v jq
need xxd command -v xxd
need time test -x /usr/bin/time
need e2fsprogs command -v chattr
need gcc command -v cc
# Loop file systems that share extents, for the reflink test
# (tests/it/commit_reflink.sh) and benchmark (bench/commit.sh).
need xfsprogs command -v mkfs.xfs
need btrfs-progs command -v mkfs.btrfs

# Live commit (core/live, tests/it/live_*.sh): QEMU itself, libvirt with
# its QEMU driver (no libvirt-daemon-system: the tests start libvirtd),
# jansson and libxml2, and libvirt's headers (the library is loaded at
# run time).
need qemu-system-x86 command -v qemu-system-x86_64
need libvirt-daemon test -x /usr/sbin/libvirtd
need libvirt-daemon-driver-qemu has_deb libvirt-daemon-driver-qemu
need libvirt-clients command -v virsh
need libvirt-dev has_pc libvirt
need libjansson-dev has_pc jansson
need libxml2-dev has_pc libxml-2.0
need libtirpc-dev has_pc libtirpc     # the sanitizer build links it (Makefile)

if [ -z "$pkgs" ]; then
	[ $quiet = 1 ] || echo "deps: everything imgraph needs is installed"
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing:$pkgs"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $pkgs
else
	echo "deps: missing packages:$pkgs" >&2
	echo "deps: run as root:  apt-get install -y$pkgs" >&2
	exit 1
fi
