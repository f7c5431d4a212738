#!/bin/sh
# lint.sh [BUILD] - the layering rules, checked on the sources and on the
# objects in BUILD (default build; `make lint` builds them first).
#
#   layers, top first:  cli (tui/cli) > editor (tui/editor) > core >
#                       formats > io (formats/io)
#
# 1. No object references a symbol that only a layer above it defines
#    (nm: the undefined symbols of each layer against the definitions of
#    every higher layer).
# 2. io, formats and core neither include curses nor reference a curses
#    symbol.
# 3. No C source or header includes a .c file.
# 4. No source includes a header of a layer above it (the include is
#    resolved the way the compiler does: next to the file, then from the
#    root, so "../core/x.h" counts as core).
# 5. Every .PHONY target of the Makefile has a rule.
# Exit 0 when clean; 1 with one line per violation; 2 when it cannot check
# (no nm, objects missing).
set -u
B=${1:-build}
cd "$(dirname "$0")/.." || exit 2
LC_ALL=C
export LC_ALL
fail=0

command -v nm >/dev/null 2>&1 || { echo "lint: nm not found (binutils)"; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imgraph-lint.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# report FILE: print the violations collected in FILE, if any.
report() {
	[ -s "$1" ] || return 0
	sort -u "$1"
	fail=1
}

layers="io formats core editor cli"
# Every C file of the layers, as "LAYER PATH" (the layer a path belongs
# to: the longest directory prefix that names one).
find formats core tui -type f -name '*.[ch]' | sort | awk '
	/^formats\/io\// { print "io", $0; next }
	/^formats\// { print "formats", $0; next }
	/^core\// { print "core", $0; next }
	/^tui\/editor\// { print "editor", $0; next }
	/^tui\/cli\// { print "cli", $0; next }
' >"$tmp/files"
# The files of layer $1 matching the shell pattern $2.
files_of() {
	while read -r l f; do
		[ "$l" = "$1" ] || continue
		# shellcheck disable=SC2254  # $2 is a pattern
		case $f in $2) echo "$f" ;; esac
	done <"$tmp/files"
}

# Rule 1: symbols.  Every current source must have its object: a lint of
# stale objects would pass a tree it never saw.
for l in $layers; do
	: >"$tmp/objs.$l"
	for c in $(files_of "$l" '*.c'); do
		o="$B/${c%.c}.o"
		if [ -f "$o" ]; then
			echo "$o" >>"$tmp/objs.$l"
		else
			echo "$o" >>"$tmp/unbuilt"
		fi
	done
done
if [ -s "$tmp/unbuilt" ]; then
	echo "lint: not built under $B (make lint builds them):"
	sed 's/^/  /' "$tmp/unbuilt"
	exit 2
fi
for l in $layers; do
	# shellcheck disable=SC2046
	nm -A --defined-only $(cat "$tmp/objs.$l") </dev/null 2>/dev/null |
		awk '$2 ~ /^[TDBRCVWGSi]$/ { print $3 }' | sort -u >"$tmp/def.$l"
	# shellcheck disable=SC2046
	nm -A --undefined-only $(cat "$tmp/objs.$l") </dev/null 2>/dev/null |
		awk '{ f = $1; sub(/:$/, "", f); print $NF, f }' | sort -u >"$tmp/undef.$l"
done
above=""
for l in cli editor core formats io; do
	for h in $above; do
		join "$tmp/undef.$l" "$tmp/def.$h" | while read -r sym obj; do
			echo "lint: $obj ($l) references $sym, defined in layer $h above it"
		done
	done >>"$tmp/v1"
	above="$above $l"
done
report "$tmp/v1"

# Rule 2: no curses below the editor, by symbol and by include.
# (each library once: /lib and /usr/lib are often one directory)
for d in /usr/lib/*-linux-gnu /usr/lib64 /usr/lib /lib/*-linux-gnu; do
	for lib in "$d"/libncursesw.so* "$d"/libtinfo.so* "$d"/libpanelw.so* \
		   "$d"/libmenuw.so* "$d"/libformw.so*; do
		[ -f "$lib" ] && realpath "$lib"
	done
done | sort -u | while read -r lib; do
	nm -D --defined-only "$lib" 2>/dev/null
done | awk '{ sub(/@.*/, "", $NF); print $NF }' | sort -u >"$tmp/curses"
if [ -s "$tmp/curses" ]; then
	for l in io formats core; do
		join "$tmp/undef.$l" "$tmp/curses" | while read -r sym obj; do
			echo "lint: $obj ($l) references the curses symbol $sym"
		done
	done >"$tmp/v2"
else
	echo "lint: note: no curses library found, rule 2 checks includes only"
fi
curses_h='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([a-z]*/)?(n?curses(w)?|term|panel|menu|form)\.h[>"]'
for l in io formats core; do
	files_of "$l" '*.[ch]' | xargs -r grep -lE "$curses_h" |
		sed "s|.*|lint: & ($l) includes curses|"
done >>"$tmp/v2"
report "$tmp/v2"

# Rule 3: no included .c files anywhere in the tree's C sources.
grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]*\.c[">]' \
	--include='*.[ch]' core formats tui tests bench fuzz 2>/dev/null |
	sed 's/^/lint: includes a .c file: /' >"$tmp/v3"
report "$tmp/v3"

# Rule 4: includes point down.  Every quoted include, resolved as the
# compiler does (next to the file, then from the root, -I.), is looked up
# in the index; a header outside it is not a layer's.
while read -r l f; do
	sed -n "s|^[[:space:]]*#[[:space:]]*include[[:space:]]*\"\([^\"]*\)\".*|$l $f \1|p" "$f"
done <"$tmp/files" | awk -v index_file="$tmp/files" '
	function norm(p,    n, i, k, part, out) {
		n = split(p, part, "/"); k = 0
		for (i = 1; i <= n; i++) {
			if (part[i] == "" || part[i] == ".") continue
			if (part[i] == "..") { if (k > 0) k--; continue }
			out[++k] = part[i]
		}
		p = ""
		for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
		return p
	}
	BEGIN {
		rank["io"] = 1; rank["formats"] = 2; rank["core"] = 3
		rank["editor"] = 4; rank["cli"] = 5
		while ((getline line < index_file) > 0) {
			split(line, w, " "); layer[w[2]] = w[1]
		}
	}
	{
		l = $1; f = $2; inc = $3; dir = f; sub(/\/[^\/]*$/, "", dir)
		p = norm(dir "/" inc)
		if (!(p in layer)) p = norm(inc)
		if (!(p in layer)) next
		if (rank[layer[p]] > rank[l])
			printf "lint: %s (%s) includes %s (%s) from layer %s above it\n", \
				f, l, inc, p, layer[p]
	}
' >"$tmp/v4"
report "$tmp/v4"

# Rule 5: a .PHONY target without a rule does nothing, silently.
make -pq .imgraph-lint-none 2>/dev/null | awk '
	/^# Files/ { files = 1 }
	/^# Finished Make data base/ { files = 0 }
	/^\.PHONY:/ { for (i = 2; i <= NF; i++) phony[$i] = 1; next }
	files && /^[^#\t][^:=]*:([^=]|$)/ {
		t = $0; sub(/:.*/, "", t)
		dep = $0; sub(/^[^:]*:+/, "", dep)
		cur = t; has[t] = has[t] || (dep ~ /[^ \t]/); next
	}
	files && /^\t/ && cur != "" { has[cur] = 1; next }
	files && /^$/ { cur = "" }
	END { for (p in phony) if (!has[p]) print "lint: Makefile: .PHONY target " p " has no rule" }
' >"$tmp/v5"
report "$tmp/v5"

[ $fail = 0 ] && echo "lint: clean (layers: cli > editor > core > formats > io)"
exit $fail
