#!/usr/bin/env bash
# Terminal conventions: colour vs NO_COLOR / --color, --ascii and non-UTF-8
# locales, mouse only with --mouse, no terminal -> exit 2, --help, bad
# options, SIGINT restores the terminal.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }

colour_re=$'\e\\[(3[0-7]|4[0-7]|9[0-7]|38;5;[0-9]+|48;5;[0-9]+)(;[0-9]+)*m'
styled() { tm capture-pane -p -e >"$T/styled"; }
has_colour() { grep -qE "$colour_re" "$T/styled"; }

# Default: colour.
start 80 24 -- "$P"
see "default opens" "10 images"
styled
if has_colour; then ok "colour by default"; else not_ok "colour by default"; fi
check_eq "no mouse reporting without --mouse" "$(tm display -p '#{mouse_any_flag}')" 0
keys q; wait_exit >/dev/null

# NO_COLOR (non-empty): no colour, selection still visible (reverse).
start 80 24 NO_COLOR=1 -- "$P"
see "NO_COLOR opens" "10 images"
styled
if has_colour; then not_ok "NO_COLOR: no colour"; grep -E "$colour_re" "$T/styled" | head -3 | cat -v | diag; else ok "NO_COLOR: no colour"; fi
check_grep "NO_COLOR: selection in reverse video" $'\e\\[(0;)?7m|\e\\[[0-9;]*;7m' "$T/styled"
check_grep "NO_COLOR: markers are text" "10 images" "$T/styled"
select_img top; keys t
see "NO_COLOR: [T] marker text" "^\[T\] .*top.qcow2"
keys q; wait_exit >/dev/null

# NO_COLOR empty: colour stays (no-color.org: set and non-empty).
start 80 24 NO_COLOR= -- "$P"
see "empty NO_COLOR opens" "10 images"
styled
if has_colour; then ok "empty NO_COLOR keeps colour"; else not_ok "empty NO_COLOR keeps colour"; fi
keys q; wait_exit >/dev/null

# The flag beats the environment.
start 80 24 NO_COLOR=1 -- --color=always "$P"
see "--color=always opens" "10 images"
styled
if has_colour; then ok "--color=always beats NO_COLOR"; else not_ok "--color=always beats NO_COLOR"; fi
keys q; wait_exit >/dev/null
start 80 24 -- --color=never "$P"
see "--color=never opens" "10 images"
styled
if has_colour; then not_ok "--color=never: no colour"; else ok "--color=never: no colour"; fi
keys q; wait_exit >/dev/null

# --ascii: no box drawing anywhere.
start 80 24 -- --ascii "$P"
see "--ascii opens" "10 images"
see "--ascii tree lines" "    \`-mid.qcow2"
see "--ascii branches" "    \|-dev.qcow2"
see "--ascii strip" "A base.qcow2 +#"
screen >"$T/s"
check_nogrep "--ascii: no UTF-8 line drawing" "─|│|└|├|█|░" "$T/s"
keys q; wait_exit >/dev/null

# A non-UTF-8 locale picks ASCII by itself.
start 80 24 LANG=C LC_ALL=C -- "$P"
see "C locale opens" "10 images"
see "C locale: ASCII lines" "    \`-mid.qcow2"
keys q; wait_exit >/dev/null

# --mouse: mouse reporting on; a click selects a row.
start 80 24 -- --mouse "$P"
see "--mouse opens" "10 images"
check_eq "--mouse turns mouse reporting on" "$(tm display -p '#{mouse_any_flag}')" 1
# Row 6 of the screen is the 4th image (vm-db): press + release, SGR.
keys -l $'\e[<0;12;6M'
keys -l $'\e[<0;12;6m'
see "click selects vm-db" "── .*/pool/vm-db.qcow2 ──"
keys q; wait_exit >/dev/null

# Ctrl-C with nothing running: leaves, terminal restored.
start 80 24 -- "$P"
see "opens for Ctrl-C" "10 images"
check_eq "on the alternate screen" "$(tm display -p '#{alternate_on}')" 1
keys C-c
check_eq "Ctrl-C exits (128 + SIGINT)" "$(wait_exit)" 130
check_eq "Ctrl-C: alternate screen left" "$(tm display -p '#{alternate_on}')" 0

# No terminal: refuse, point to the commands, exit 2.
check_rc "no terminal: exit 2" 2 "$IMGRAPH" "$P"
check_grep "no terminal: says why" "needs a terminal" "$T/.err"
check_grep "no terminal: names the commands" "imgraph tree" "$T/.err"
check_rc "--help exits 0" 0 "$IMGRAPH" --ascii --help
check_grep "--help lists --demo" "--demo \[DIR\]" "$T/.out"
check_grep "--help lists --color" "--color=WHEN" "$T/.out"
check_rc "--color=bad is a usage error" 2 "$IMGRAPH" --color=purple "$P"
check_grep "--color=bad names the value" "purple" "$T/.err"
check_rc "unknown option is a usage error" 2 "$IMGRAPH" --frobnicate "$P"
# --demo without a terminal refuses before building anything (issue 14:
# it built the whole pool and only then exited 2).
check_rc "--demo without a terminal: exit 2" 2 "$IMGRAPH" --demo "$T/d0"
check_grep "--demo without a terminal: says so" "needs a terminal.*--demo builds nothing" "$T/.err"
check "--demo without a terminal: nothing built" test ! -e "$T/d0"
start 80 24 -- --demo "$P"
see "--demo into a non-empty dir refused" "not empty"
check_eq "--demo into a non-empty dir: exit 1" "$(wait_exit)" 1
# --demo without qemu-utils: names the package.
mkdir -p "$T/nobin"
ln -s "$(command -v sh)" "$T/nobin/sh"
start 80 24 PATH="$T/nobin" -- --demo "$T/d3"
see "--demo names qemu-utils" "qemu-utils"
check_eq "--demo without qemu-img fails" "$(wait_exit)" 1
done_testing
