#!/usr/bin/env bash
# hostile.sh - every hostile fixture of tests/hostile/gen.sh (B-01..B-31),
# gen_foreign.sh (f01..f55) and gen_foreign_c.sh (h01..) through the
# commands that read it, judged from the outside.
#
# Per fixture and command (MANIFEST: CMD:FILE=RC[,RC]):
#   info FILE / map FILE / check FILE / tree . / plan --top FILE /
#   users -> tree --users users.yaml . / recover -> recover .
# and per run:
#   - it ends by exit (no signal, no timeout) with an accepted code;
#   - exit-code policy (imgraph(1)): 1 = invalid image or I/O error; check uses
#     qemu-img's codes (2 = corruptions, 3 = leaks only, 1 = cannot check,
#     63 = format without checks, e.g. a damaged header that probes as raw);
#     plan may answer 3 (a conflict: the image state forbids writing) instead
#     of 1; tree exits 0 (a scan never fails because of one bad image:
#     the image is a node in error);
#   - a failing run names the file (bad.qcow2 / users.yaml / a file of the
#     fixture) and the field (MANIFEST regex, case-insensitive) on stdout or
#     stderr;
#   - no sanitizer report; peak RSS <= 64 MiB and CPU time (user + system)
#     <= 1 s (tests/tools/rusage.c: wait4 rusage; sanitizer builds get
#     512 MiB / 5 s; CPU, not wall time, so a loaded machine does not fail
#     it; a run still killed after 10 s of wall time is a hang),
#     under ulimit -v 1 GiB (not in sanitizer builds);
#   - strace: nothing outside the fixture dir is opened (bar the loader,
#     locale and /proc/self for sanitizers, plus the MANIFEST's allowed
#     extras); the stand-in for /etc/shadow ($H/secret) is never opened;
# and per fixture: no file changed (sha256 of every file before/after).
# B-31 (journals) is made here from a real interrupted commit when the
# binary can commit; skipped with a note otherwise.
#
# Knobs: HOSTILE_FILTER=regex (fixture ids), HOSTILE_STRACE=0 (skip strace).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/hostile/poke.sh"

H=$T/h
bash "$ROOT/tests/hostile/gen.sh" "$H" >"$T/gen.log" 2>&1 || { not_ok "gen.sh failed"; diag <"$T/gen.log"; done_testing; }
bash "$ROOT/tests/hostile/gen_foreign.sh" "$H" >"$T/gen.log" 2>&1 || { not_ok "gen_foreign.sh failed"; diag <"$T/gen.log"; done_testing; }
bash "$ROOT/tests/hostile/gen_foreign_c.sh" "$H" >"$T/gen.log" 2>&1 || { not_ok "gen_foreign_c.sh failed"; diag <"$T/gen.log"; done_testing; }
SECRET=$H/secret
RUSAGE=$T/rusage
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -o "$RUSAGE" "$ROOT/tests/tools/rusage.c" ||
	{ not_ok "build tests/tools/rusage.c"; done_testing; }

# VMEM_KB: ulimit -v of every run, so an allocation sized by a hostile
# field fails inside the run instead of growing; ASan reserves terabytes
# of address space up front, so sanitizer builds rely on the RSS check.
RSS_KB=65536 MS=1000 VMEM_KB=1048576
if grep -q __asan_init "$IMGRAPH" 2>/dev/null; then
	RSS_KB=524288 MS=5000 VMEM_KB=unlimited
	echo "# sanitizer build: limits relaxed to 512 MiB / 5 s, no ulimit -v"
fi
use_strace=1
if [ "${HOSTILE_STRACE:-1}" = 0 ] ||
   ! have_tool strace "open() confinement of every fixture"; then
	use_strace=0; echo "# strace not used: open() confinement not checked"
fi
nfix=$(grep -c . "$H/MANIFEST")
if [ "$nfix" -ge 60 ]; then ok "corpus has $nfix fixtures (>= 60)"; else not_ok "corpus has only $nfix fixtures"; fi

# Paths a run may open outside its fixture dir.
sys_allowed() {
	case $1 in
	/etc/ld.so.*|/lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*|/usr/local/lib/*|\
	/usr/share/locale/*|/usr/share/terminfo/*|/etc/terminfo/*|\
	/usr/share/zoneinfo/*|/etc/localtime|/etc/locale.alias|\
	/etc/nsswitch.conf|/etc/passwd|/etc/group|\
	/dev/null|/dev/tty|/dev/urandom|/proc/self/*|/proc/[0-9]*/*|/sys/*|/proc/sys/*|\
	/proc/meminfo|/proc/mounts|/proc/locks|/proc/cpuinfo|/proc|/proc/[0-9]*)
		return 0;;
	esac
	return 1
}

# run_case ID DIR CMD FILE RCS FIELD ALLOW
run_case() {
	local id=$1 d=$2 cmd=$3 file=$4 rcs=$5 field=$6 allow=$7
	local argv=() why="" kind code rss ms name
	case $cmd in
	info|map|check) argv=("$cmd" "$file");;
	tree) argv=(tree "$file");;
	plan) argv=(plan --top "$file" .);;
	users) argv=(tree --users "$file" .);;
	recover) argv=(recover "$file");;
	*) not_ok "$id: unknown command $cmd in MANIFEST"; return;;
	esac
	rm -f "$T/ru"
	(ulimit -v "$VMEM_KB" && cd "$d" && exec "$RUSAGE" -t 10 "$T/ru" "$IMGRAPH" "${argv[@]}") \
		>"$T/out" 2>"$T/err" </dev/null
	read -r kind code rss ms _ <"$T/ru" || { kind=none code=-1 rss=0 ms=0; }
	[ "$kind" = exit ] || why+=" ended by $kind $code;"
	if [ "$kind" = exit ] && ! [[ ",$rcs," == *",$code,"* ]]; then
		why+=" rc=$code, want $rcs;"
	fi
	if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer|UndefinedBehaviorSanitizer' "$T/err"; then
		why+=" sanitizer report;"
	fi
	[ "$rss" -le "$RSS_KB" ] || why+=" peak RSS ${rss} KiB > $RSS_KB;"
	[ "$ms" -le "$MS" ] || why+=" took ${ms} ms of CPU > $MS;"
	# check: a finished report (2 corruptions, 3 leaks) is about its
	# argument and lists qemu-img style ERROR lines; it must agree with
	# qemu-img check: never "clean" or "leaks only" where qemu-img finds
	# corruptions.  63: format without checks (probed raw).
	if [ "$cmd" = check ] && [ "$kind" = exit ]; then
		local qrc
		qemu-img check -U -f qcow2 "$d/$file" >/dev/null 2>&1; qrc=$?
		if [ "$qrc" = 2 ] && { [ "$code" = 0 ] || [ "$code" = 3 ]; }; then
			why+=" qemu-img check finds corruptions, we said rc=$code;"
		fi
	fi
	if [ "$kind" = exit ] && [ "$code" != 0 ] && [ "$code" != 63 ] &&
	   ! { [ "$cmd" = check ] && [ "$code" -ge 2 ]; }; then
		# the file: the hostile image, else the users file, else any
		# entry of the fixture
		if [ -f "$d/bad.qcow2" ]; then name=bad.qcow2
		elif [ "$cmd" = users ]; then name=users.yaml
		else name=$(cd "$d" && ls -A | paste -sd'|'); fi
		cat "$T/out" "$T/err" >"$T/msg"
		# a check report is about its argument (qemu-img's ERROR lines)
		[ "$cmd" = check ] || grep -qE -- "$name" "$T/msg" ||
			why+=" message does not name the file ($name);"
		grep -qiE -- "$field" "$T/msg" || why+=" message does not name the field (/$field/);"
	fi
	printf '%q ' "$IMGRAPH" "${argv[@]}" >>"$T/cmds.sh"
	echo '>/dev/null 2>&1 </dev/null' >>"$T/cmds.sh"
	if [ -z "$why" ]; then
		ok "$id: $cmd $file rc=$code ${rss}KiB ${ms}ms CPU"
	else
		not_ok "$id: $cmd $file:$why"
		{ echo "stdout:"; head -c 600 "$T/out"; echo; echo "stderr:"; head -c 600 "$T/err"; echo; } | diag
	fi
}

# One strace per fixture over all its commands (strace start-up dominates
# the run time otherwise): every path opened by any of them is checked.
strace_fixture() { # ID DIR ALLOW
	local id=$1 d=$2 allow=$3 p bad=""
	(cd "$d" && exec timeout -s KILL 30 strace -f -qq -e trace=open,openat,openat2,creat \
		-o "$T/st" bash "$T/cmds.sh") >/dev/null 2>&1 </dev/null
	sed -nE 's/^[0-9]+ +(open|openat|openat2|creat)\((AT_FDCWD, |[0-9]+, )?"([^"]*)".*/\3/p' "$T/st" |
		sort -u | sed "/^\//!s|^|$d/|" | tr '\n' '\0' | xargs -0 -r realpath -ms -- >"$T/paths"
	while IFS= read -r p; do
		case $p in "$d"|"$d"/*|"$T/cmds.sh") continue;; esac
		[ "$p" = "$SECRET" ] && { bad+=" SECRET($p)"; continue; }
		sys_allowed "$p" && continue
		[[ " $allow " == *" $p "* ]] && continue
		case $p in /bin/bash|/usr/bin/bash|"$IMGRAPH") continue;; esac
		bad+=" $p"
	done <"$T/paths"
	if [ -z "$bad" ]; then ok "$id: opens confined to the fixture"
	else not_ok "$id: opened outside the fixture:$bad"; fi
}

fixture_hash() { # DIR -> hashes of every regular file + the secret
	{ find "$1" -type f -print0 | sort -z | xargs -0 -r sha256sum; sha256sum "$SECRET"; } 2>/dev/null
}

run_fixture() { # ID FIELD EXPECT ALLOW
	local id=$1 field=$2 expect=$3 allow=$4 d=$H/$1 e cmd file rcs
	fixture_hash "$d" >"$T/h.before"
	: >"$T/cmds.sh"
	for e in $expect; do
		cmd=${e%%:*}; e=${e#*:}; file=${e%%=*}; rcs=${e#*=}
		run_case "$id" "$d" "$cmd" "$file" "$rcs" "$field" "$allow"
	done
	[ $use_strace = 0 ] || strace_fixture "$id" "$d" "$allow"
	fixture_hash "$d" >"$T/h.after"
	if cmp -s "$T/h.before" "$T/h.after"; then
		ok "$id: nothing written"
	else
		not_ok "$id: files changed"; diff "$T/h.before" "$T/h.after" | diag
	fi
}

while IFS=$'\t' read -r id field expect allow desc; do
	[ -n "$id" ] || continue
	if [ -n "${HOSTILE_FILTER:-}" ] && ! [[ $id =~ $HOSTILE_FILTER ]]; then continue; fi
	echo "# $id: $desc"
	run_fixture "$id" "$field" "$expect" "$allow"
done <"$H/MANIFEST"

# ---- B-31: damaged journals from a real interrupted commit ------------------
# The journal format is core/commit/journal.c's; we only need the file it leaves.
# Find the latest mutating op at which a kill leaves a journal behind, then
# damage copies of that state in format-independent ways.
# jchain DIR: base <- top <- {o1, o2}, data in base and top.
jchain() {
	mkdir -p "$1" && (cd "$1" &&
		qemu-img create -q -f qcow2 -o cluster_size=4096 base.qcow2 1M &&
		qio base.qcow2 -c 'write -P 1 0 64k' &&
		mkq top.qcow2 1M base.qcow2 qcow2 -o cluster_size=4096 &&
		qio top.qcow2 -c 'write -P 2 0 8k' &&
		mkq o1.qcow2 1M top.qcow2 qcow2 && mkq o2.qcow2 1M top.qcow2 qcow2)
}
jcommit() { # DIR [FAULT]  (stderr: the shell's "Killed" notice)
	(cd "$1" && IMGRAPH_FAULT=${2:-} exec "$IMGRAPH" commit --top top.qcow2 --base base.qcow2 --yes .) \
		>/dev/null 2>&1
}
jfile() { (cd "$1" && find . -maxdepth 1 -type f -name '.imgraph-journal-*' -printf '%f\n' | head -n1); }
# The journal records dev:ino of every parent, so each variant is made in
# place by its own killed commit (a copied directory would be "foreign").
journal_fixtures() {
	local total k jf="" variant d size
	jchain "$T/jc"
	total=$(IMGRAPH_FAULT_OUT="$T/jcount" jcommit "$T/jc" count 2>/dev/null; cat "$T/jcount" 2>/dev/null || echo 0)
	if ! [ "${total:-0}" -gt 0 ] 2>/dev/null; then
		echo "# B-31 skipped: this imgraph cannot commit yet (no mutating ops counted)"
		return
	fi
	for ((k = total; k >= 1; k--)); do
		rm -rf "$T/jk"; jchain "$T/jk"; jcommit "$T/jk" "kill:$k" 2>/dev/null
		jf=$(jfile "$T/jk")
		[ -n "$jf" ] && break
	done
	rm -rf "$T/jc" "$T/jk"
	if [ -z "$jf" ]; then
		not_ok "B-31: no kill point of $total left a journal behind"
		return
	fi
	echo "# B-31: journal '$jf' left by a kill at op $k of $total"
	for variant in intact bad-magic truncated-half truncated-1 flipped-middle flipped-last zero-filled huge-count replaced-overlay; do
		d=$H/j-$variant
		rm -rf "$d"; jchain "$d"; jcommit "$d" "kill:$k" 2>/dev/null
		size=$(stat -c %s "$d/$jf")
		case $variant in
		bad-magic) poke_raw "$d/$jf" 0 'XXXX';;
		truncated-half) truncate -s $((size / 2)) "$d/$jf";;
		truncated-1) truncate -s $((size - 1)) "$d/$jf";;
		flipped-middle) poke_u8 "$d/$jf" $((size / 2)) $(( $(peek_be "$d/$jf" $((size / 2)) 1) ^ 0x40 ));;
		flipped-last) poke_u8 "$d/$jf" $((size - 2)) $(( $(peek_be "$d/$jf" $((size - 2)) 1) ^ 0x01 ));;
		zero-filled) head -c "$size" /dev/zero >"$d/$jf.z" && mv "$d/$jf.z" "$d/$jf";;
		huge-count) sed -i 's/^parents [0-9]* /parents 99999999 /' "$d/$jf";;
		replaced-overlay) cp "$d/o1.qcow2" "$d/o1.new" && mv "$d/o1.new" "$d/o1.qcow2";;
		esac
		if [ $variant = intact ]; then
			# control: the undamaged journal is acted on and the chain ends valid
			(cd "$d" && "$IMGRAPH" recover . >"$T/out" 2>&1); local rc=$?
			check_eq "B-31 j-intact: recover exits 0" "$rc" 0
			for f in "$d"/*.qcow2; do qcheck "B-31 j-intact: $(basename "$f") clean" "$f"; done
			[ -z "$(jfile "$d")" ] && ok "B-31 j-intact: journal removed" || not_ok "B-31 j-intact: journal left"
			continue
		fi
		# damaged: never acted on.  The journal may be set aside
		# (renamed) but its bytes stay; no image changes.
		(cd "$d" && sha256sum ./*.qcow2) >"$T/jh.before"
		sha256sum <"$d/$jf" >"$T/jj.before"
		echo "# B-31 j-$variant"
		: >"$T/cmds.sh"
		run_case "j-$variant" "$d" recover . 1 'journal|magic|crc|checksum|truncat|corrupt|invalid|inode|changed|foreign|parents' ""
		[ $use_strace = 0 ] || strace_fixture "j-$variant" "$d" ""
		(cd "$d" && sha256sum ./*.qcow2) >"$T/jh.after"
		if cmp -s "$T/jh.before" "$T/jh.after"; then ok "j-$variant: no image written"
		else not_ok "j-$variant: images changed"; diff "$T/jh.before" "$T/jh.after" | diag; fi
		local kept=0 c
		for c in "$d"/* "$d"/.[!.]*; do
			[ -f "$c" ] || continue
			case ${c##*/} in base.qcow2|top.qcow2|o1.qcow2|o2.qcow2) continue;; esac
			[ "$(sha256sum <"$c")" = "$(cat "$T/jj.before")" ] && kept=1
		done
		if [ $kept = 1 ]; then ok "j-$variant: journal bytes kept"
		else not_ok "j-$variant: journal lost or rewritten"; ls -la "$d" | diag; fi
	done
}
if [ -z "${HOSTILE_FILTER:-}" ] || [[ j- =~ ${HOSTILE_FILTER} ]]; then journal_fixtures; fi

done_testing
