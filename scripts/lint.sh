#!/bin/sh
# lint.sh BUILD - the layering rules, checked on the source and on the
# built objects (make lint builds them first).
#
#   layers, top first:  cli (tui/cli) > editor (tui/editor) > core >
#                       formats > io (formats/io)
#
# 1. No object references a symbol that only a layer above it defines
#    (nm: undefined symbols of each layer against the definitions of every
#    higher layer).
# 2. core, formats and io never include curses and reference no curses
#    symbol.
# 3. No source file includes a .c file.
# 4. No source includes a header of a layer above it.
# Exit 0 when clean; 1 with one line per violation.
set -u
B=${1:-build}
cd "$(dirname "$0")/.." || exit 2
LC_ALL=C
export LC_ALL
fail=0
bad() { echo "lint: $*"; fail=1; }

layers="io formats core editor cli"
# The objects of a layer's current sources (stale objects of moved files
# in BUILD are ignored).
objs_of() {
	d=$(src_of "$1")
	find "$d" -name '*.c' | while read -r c; do
		[ "$1" = formats ] && case $c in formats/io/*) continue ;; esac
		o="$B/${c%.c}.o"
		[ -f "$o" ] && echo "$o"
	done
}
src_of() {
	case $1 in
	io) echo formats/io ;;
	formats) echo formats ;;
	core) echo core ;;
	editor) echo tui/editor ;;
	cli) echo tui/cli ;;
	esac
}

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

for l in $layers; do
	o=$(objs_of "$l")
	[ -n "$o" ] || { bad "no objects for layer $l under $B (run make first)"; continue; }
	# shellcheck disable=SC2086
	nm -A --defined-only $o 2>/dev/null |
		awk '$2 ~ /^[TDBRCVW]$/ {print $3}' | sort -u >"$tmp/def.$l"
	# shellcheck disable=SC2086
	nm -A --undefined-only $o 2>/dev/null |
		awk '{f=$1; sub(/:$/, "", f); print $NF, f}' | sort -u >"$tmp/undef.$l"
done

# Rule 1: each layer against every layer above it.
above=""
for l in cli editor core formats io; do
	for h in $above; do
		join "$tmp/undef.$l" "$tmp/def.$h" 2>/dev/null | while read -r sym obj; do
			echo "lint: $obj ($l) references $sym, defined in layer $h above it"
		done >>"$tmp/violations"
	done
	above="$above $l"
done
if [ -s "$tmp/violations" ]; then
	sort -u "$tmp/violations"
	fail=1
fi

# Rule 2: no curses below the editor.
curses_lib=$(for d in /usr/lib/*-linux-gnu /usr/lib /lib/*-linux-gnu; do
	ls "$d"/libncursesw.so* 2>/dev/null; done | head -n 1)
if [ -n "$curses_lib" ]; then
	nm -D --defined-only "$curses_lib" 2>/dev/null | awk '{print $NF}' |
		sed 's/@.*//' | sort -u >"$tmp/curses"
	for l in io formats core; do
		join "$tmp/undef.$l" "$tmp/curses" | while read -r sym obj; do
			echo "lint: $obj ($l) references the curses symbol $sym"
		done
	done >"$tmp/cv"
	[ -s "$tmp/cv" ] && { cat "$tmp/cv"; fail=1; }
fi
for d in formats core; do
	grep -rlE '#[[:space:]]*include[[:space:]]*[<"](n?cursesw?/)?n?curses(w)?\.h' \
		--include='*.[ch]' "$d" 2>/dev/null | while read -r f; do
		echo "lint: $f includes curses"
	done
done >"$tmp/ci"
[ -s "$tmp/ci" ] && { cat "$tmp/ci"; fail=1; }

# Rule 3: no included .c files anywhere in the tree's C sources.
grep -rnE '#[[:space:]]*include[[:space:]]*"[^"]*\.c"' --include='*.[ch]' \
	core formats tui tests bench fuzz 2>/dev/null >"$tmp/incc"
if [ -s "$tmp/incc" ]; then
	sed 's/^/lint: includes a .c file: /' "$tmp/incc"
	fail=1
fi

# Rule 4: includes point down.  A header path names its layer.
layer_of_path() {
	case $1 in
	formats/io/*) echo io ;;
	formats/*) echo formats ;;
	core/*) echo core ;;
	tui/editor/*) echo editor ;;
	tui/cli/*) echo cli ;;
	*) echo none ;;
	esac
}
rank() {
	case $1 in io) echo 1 ;; formats) echo 2 ;; core) echo 3 ;;
	editor) echo 4 ;; cli) echo 5 ;; *) echo 0 ;; esac
}
for l in $layers; do
	d=$(src_of "$l")
	r=$(rank "$l")
	find "$d" -name '*.[ch]' | while read -r f; do
		[ "$l" = formats ] && case $f in formats/io/*) continue ;; esac
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while read -r inc; do
			case $inc in */*) ;; *) continue ;; esac
			il=$(layer_of_path "$inc")
			[ "$il" = none ] && continue
			if [ "$(rank "$il")" -gt "$r" ]; then
				echo "lint: $f ($l) includes $inc from layer $il above it"
			fi
		done
	done
done >"$tmp/up"
[ -s "$tmp/up" ] && { cat "$tmp/up"; fail=1; }

[ $fail = 0 ] && echo "lint: clean (layers: cli > editor > core > formats > io)"
exit $fail
