#!/usr/bin/env bash
# lint.sh - `make lint` (scripts/lint.sh) on a copy of the tree: clean as
# it is, and FAILING, with a line naming the file and the rule, for each
# kind of violation planted in the copy:
#   * formats/raw.c includes core/graph/graph.h and calls graph_free (a
#     reversed include: formats calling up into core);
#   * the same include spelled relative ("../../core/graph/graph.h");
#   * core calling a curses function, and core including curses.h;
#   * the editor calling a CLI helper (editor -> cli is upward);
#   * a test including a .c file;
#   * a .PHONY target without a rule;
# and exit 2 when it is asked to check objects that were not built.
# shellcheck disable=SC2034  # read by lib.sh: no qemu here
LIB_NEEDS=""
. "$(dirname "$0")/lib.sh"
need_tools make cc nm ar
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$T/tree
copy_tree "$W"
# The layers' objects of the tree under test come along (make rebuilds
# what is not current), so only the planted files are compiled here.
SRC_B=${BUILD:-build}
case $SRC_B in /*) ;; *) SRC_B=$ROOT/$SRC_B ;; esac
mkdir -p "$W/b"
for d in formats core tui; do
	[ -d "$SRC_B/$d" ] && cp -rp "$SRC_B/$d" "$W/b/"
done
cp -p "$SRC_B"/libimgraph-*.a "$W/b/" 2>/dev/null
cd "$W" || exit 1

lint() { make -j2 -s lint BUILD=b >"$T/lint.out" 2>&1; }
# save FILE before planting a violation in it; restore FILE after.
save() { cp -p "$1" "$T/saved.$(echo "$1" | tr / _)"; }
restore() { cp -p "$T/saved.$(echo "$1" | tr / _)" "$1"; touch "$1"; }

lint; rc=$?
check_eq "clean tree: make lint exits 0" "$rc" 0
check_grep "clean tree: says clean" "^lint: clean" "$T/lint.out"

# 1. The reversed include of the issue: formats calls core.
save formats/raw.c
cat >>formats/raw.c <<'C'
#include "core/graph/graph.h"
void raw_lint_reversed(void);
void raw_lint_reversed(void) { graph_free(NULL); }
C
lint; rc=$?
check_eq "formats -> core: make lint fails" "$rc" 2   # make's status for a failed recipe
check_grep "formats -> core: the symbol is named" \
	"^lint: b/formats/raw.o \(formats\) references graph_free, defined in layer core above it$" "$T/lint.out"
check_grep "formats -> core: the include is named" \
	"^lint: formats/raw.c \(formats\) includes core/graph/graph.h .* from layer core above it$" "$T/lint.out"
restore formats/raw.c

# 2. Every other kind at once (each line must still be there): the
# reversed include spelled relative to the file, core calling curses and
# including curses.h, the editor calling up into the CLI, a test including
# a .c file, a .PHONY target with no rule.
for f in formats/qcow2/qcow2.c core/graph/perm.c core/graph/lock.c \
	 tui/editor/ui.c tests/unit/test_rows.c Makefile; do save "$f"; done
echo '#include "../../core/graph/graph.h"' >>formats/qcow2/qcow2.c
cat >>core/graph/perm.c <<'C'
int beep(void);
void perm_lint_beep(void);
void perm_lint_beep(void) { beep(); }
C
echo '#include <curses.h>' >>core/graph/lock.c
cat >>tui/editor/ui.c <<'C'
int cli_parse_size(const char *s, uint64_t *out);
int ui_lint_up(void);
int ui_lint_up(void) { uint64_t v; return cli_parse_size("1K", &v); }
C
echo '#include "tui/editor/rows.c"' >>tests/unit/test_rows.c
echo '.PHONY: coverage' >>Makefile
lint; rc=$?
check_eq "every other kind: make lint fails" "$rc" 2
check_grep "relative include: resolved to core" \
	"^lint: formats/qcow2/qcow2.c \(formats\) includes ../../core/graph/graph.h \(core/graph/graph.h\) from layer core above it$" "$T/lint.out"
check_grep "core calls curses: the symbol is named" \
	"^lint: b/core/graph/perm.o \(core\) references the curses symbol beep$" "$T/lint.out"
check_grep "core includes curses.h: named" "^lint: core/graph/lock.c \(core\) includes curses$" "$T/lint.out"
check_grep "editor -> cli: the symbol is named" \
	"^lint: b/tui/editor/ui.o \(editor\) references cli_parse_size, defined in layer cli above it$" "$T/lint.out"
check_grep "included .c file: named with its line" \
	"^lint: includes a .c file: tests/unit/test_rows.c:[0-9]+:#include \"tui/editor/rows.c\"$" "$T/lint.out"
check_grep "phony target without a rule: named" \
	"^lint: Makefile: .PHONY target coverage has no rule$" "$T/lint.out"
for f in formats/qcow2/qcow2.c core/graph/perm.c core/graph/lock.c \
	 tui/editor/ui.c tests/unit/test_rows.c Makefile; do restore "$f"; done

# Clean again, then an object missing: the lint refuses to judge.
lint; rc=$?
check_eq "restored tree: clean again" "$rc" 0
rm -f b/core/graph/perm.o
scripts/lint.sh b >"$T/lint.out" 2>&1; rc=$?
check_eq "missing object: exit 2" "$rc" 2
check_grep "missing object: named" "^  b/core/graph/perm.o$" "$T/lint.out"
done_testing
