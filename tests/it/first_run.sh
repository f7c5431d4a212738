#!/usr/bin/env bash
# first_run.sh - the README's promise on a fresh Debian machine: the first
# `make demo` and the first `make check` pass, with nothing installed.
#
# Packages cannot be removed from a shared machine, so a shim makes them
# look absent: PATH is a directory of links to every command except those
# of the packages below, PKG_CONFIG_LIBDIR a directory of links to every
# .pc file except theirs, and a fake apt-get "installs" a package (and its
# hidden dependencies) by adding its commands and .pc files back, as dpkg
# lists them.  Guards:
#   * make reads pkg-config after `make deps` has installed the packages
#     (frozen flags made the first `make check` fail to link the Check
#     suites: undefined reference to 'suite_create');
#   * `make deps` prints one line per step and shows apt's log on failure,
#     asks for root when it is not root, and is silent with --quiet when
#     everything is there.
# shellcheck disable=SC2034  # read by lib.sh: the shim brings its own qemu
LIB_NEEDS=""
. "$(dirname "$0")/lib.sh"
need_tools dpkg dpkg-query make cc
. "$(dirname "$0")/../tui/lib_tui.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
unset IT_FILTER JOBS

HIDDEN="pkg-config pkgconf pkgconf-bin libncurses-dev libyaml-dev zlib1g-dev \
check libsubunit-dev qemu-utils qemu-system-common tmux strace jq xxd"
S=$T/shim
mkdir -p "$T/tmp"

# The shim: commands and .pc files of every package but the hidden ones.
make_shim() {
	local p f hide=()
	rm -rf "$S"
	mkdir -p "$S/pc" "$S/installed"
	for p in $HIDDEN; do
		dpkg -L "$p" >>"$S/hidden.files" 2>/dev/null
	done
	while read -r f; do
		case $f in */bin/*|*/sbin/*) hide+=("${f##*/}") ;; esac
	done <"$S/hidden.files"
	path_without "$S/bin" "${hide[@]}" apt-get id
	local IFS=:
	for p in $(pkg-config --variable pc_path pkg-config); do
		[ -d "$p" ] && ln -s "$p"/*.pc "$S/pc/" 2>/dev/null
	done
	unset IFS
	while read -r f; do
		case $f in *.pc) rm -f "$S/pc/${f##*/}" ;; esac
	done <"$S/hidden.files"
	cat >"$S/reveal" <<EOF
#!/bin/bash
# reveal PACKAGE: what dpkg lists for it comes back, and so do the hidden
# packages it depends on.
p=\$1
[ -e "$S/installed/\$p" ] && exit 0
case " $HIDDEN " in *" \$p "*) ;; *) exit 0 ;; esac
touch "$S/installed/\$p"
dpkg -L "\$p" 2>/dev/null | while read -r f; do
	case \$f in
	*/bin/*|*/sbin/*) [ -f "\$f" ] && ln -sf "\$f" "$S/bin/" ;;
	*.pc) ln -sf "\$f" "$S/pc/" ;;
	esac
done
dpkg-query -W -f '\${Depends}, \${Pre-Depends}' "\$p" 2>/dev/null |
	tr ',|' '\n\n' | awk '{ sub(/:.*/, "", \$1); if (\$1 != "") print \$1 }' |
	while read -r d; do "$S/reveal" "\$d"; done
EOF
	cat >"$S/bin/apt-get" <<EOF
#!/bin/bash
# A fake apt-get: installing reveals packages of the shim.
echo "apt-get \$*" >>"$S/apt.log"
case \$1 in
update) echo "Hit:1 http://deb.debian.org/debian bookworm InRelease"; exit 0 ;;
install) shift ;;
*) echo "E: fake apt-get: \$1 not supported"; exit 100 ;;
esac
if [ -n "\${FAKE_APT_FAIL:-}" ]; then
	echo "Reading package lists..."
	echo "E: Unable to locate package \$FAKE_APT_FAIL"
	exit 100
fi
for p in "\$@"; do
	case \$p in -*) continue ;; esac
	"$S/reveal" "\$p"
	echo "Setting up \$p ..."
done
EOF
	cat >"$S/bin/id" <<EOF
#!/bin/sh
# root unless FAKE_UID says otherwise: apt-get here is the fake one.
[ "\$1" = -u ] && { echo "\${FAKE_UID:-0}"; exit 0; }
exec $(command -v id) "\$@"
EOF
	chmod +x "$S/reveal" "$S/bin/apt-get" "$S/bin/id"
}
# shim COMMAND...: run it on the shim, as on the fresh machine.
shim() {
	env PATH="$S/bin" PKG_CONFIG_LIBDIR="$S/pc" PKG_CONFIG_PATH= \
		TMPDIR="$T/tmp" "$@"
}

make_shim
shim sh -c 'for t in tmux qemu-img qemu-io qemu-storage-daemon strace pkg-config; do
	command -v $t; done; ls "$PKG_CONFIG_LIBDIR" | grep -xE "(check|ncursesw|yaml-0.1|zlib).pc"' \
	>"$T/hidden.out" 2>&1
check_eq "the shim hides the tools and the .pc files" "$(cat "$T/hidden.out")" ""

# make deps: the steps, the log on failure.
shim env FAKE_APT_FAIL=check DEPS_LOG="$T/deps.log" sh "$ROOT/scripts/deps.sh" \
	>"$T/deps1.out" 2>&1
check_eq "apt-get fails: deps exits 1" "$?" 1
check_eq "apt-get fails: one line per step (missing, update, install)" \
	"$(grep -c '^deps: ' "$T/deps1.out")" 4
check_grep "apt-get fails: the failed step says so" \
	"^deps: apt-get install .*check.* \.\.\. FAILED$" "$T/deps1.out"
check_grep "apt-get fails: apt's own message is shown from the log" \
	"^  \| E: Unable to locate package check$" "$T/deps1.out"
check_grep "apt-get fails: the log is named" "last lines of $T/deps.log" "$T/deps1.out"

shim env FAKE_UID=1000 sh "$ROOT/scripts/deps.sh" >"$T/deps2.out" 2>&1
check_eq "not root: deps exits 1" "$?" 1
check_grep "not root: prints the command to run as root" \
	"^deps: run as root:  apt-get install -y --no-install-recommends .*libncurses-dev" "$T/deps2.out"

shim env DEPS_LOG="$T/deps.log" sh "$ROOT/scripts/deps.sh" >"$T/deps3.out" 2>&1
check_eq "install: deps exits 0" "$?" 0
check_eq "install: one line per step, nothing of apt's" \
	"$(grep -vc '^deps: ' "$T/deps3.out")" 0
check_grep "install: the update step" "^deps: apt-get update \.\.\. ok$" "$T/deps3.out"
check_grep "install: the install step" "^deps: apt-get install .*tmux.* \.\.\. ok$" "$T/deps3.out"
check_grep "install: apt's output went to the log" "Setting up tmux" "$T/deps.log"
shim sh "$ROOT/scripts/deps.sh" --quiet >"$T/deps4.out" 2>&1
check_eq "installed: deps --quiet exits 0" "$?" 0
check_eq "installed: deps --quiet says nothing" "$(cat "$T/deps4.out")" ""

# The first `make demo` in a fresh copy, in a terminal.
make_shim
W=$T/tree
copy_tree "$W"
NSOCK=1 SOCK=imgraph-$$-1
# make's output and then the editor go to the pane, as in a terminal.
tm new-session -d -x 100 -y 30 "env TERM=xterm-256color LANG=C.UTF-8 \
PATH='$S/bin' PKG_CONFIG_LIBDIR='$S/pc' PKG_CONFIG_PATH= TMPDIR='$T/tmp' \
make -C '$W' -j2 --no-print-directory BUILD=build demo 2>'$T/demo.err'; echo \$? >'$T/demo.rc'; sleep 600"
# Until the editor shows the pool, or make has ended without it.
n=4000
until screen | grep -q "Guide: the demo pool" || [ -s "$T/demo.rc" ] ||
	[ $n = 0 ]; do
	sleep 0.1; n=$((n - 1))
done
# It opens on the guide of the demo; Esc shows the pool.
see "first make demo: the editor opens on the demo's guide" "Guide: the demo pool" 1
keys Escape
see "first make demo: ... over the demo pool" "10 images"
keys q
n=100
while [ ! -s "$T/demo.rc" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
check_eq "first make demo: exits 0" "$(cat "$T/demo.rc" 2>/dev/null)" 0 ||
	{ diag <"$T/demo.err"; screen | diag; }

# The first `make check` of the copy, everything hidden again: one unit
# suite (it links Check) and one terminal test (it needs tmux, qemu-img).
make_shim
shim make -C "$W" -j2 --no-print-directory BUILD=build check \
	UNIT_BINS=build/tests/test_rows \
	IT_FILTER=editor_basic >"$T/check.out" 2>&1
rc=$?
check_eq "first make check: exits 0" "$rc" 0
check_grep "first make check: deps installed check first" \
	"^deps: apt-get install .*check.* \.\.\. ok$" "$T/check.out"
check_grep "first make check: the Check suite linked and passed" \
	"^PASS unit test_rows" "$T/check.out"
check_grep "first make check: the terminal test ran" \
	"^PASS tests/tui/editor_basic.sh" "$T/check.out"
check_grep "first make check: the summary" "^[1-9][0-9]* passed, 0 failed, 0 skipped$" "$T/check.out"
[ $rc = 0 ] || tail -n 30 "$T/check.out" | diag
done_testing
