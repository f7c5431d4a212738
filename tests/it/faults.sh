#!/usr/bin/env bash
# faults.sh - the fault-injection matrix (iotest 026 model) over create,
# commit and recover, plus a real full file system.
#
# IMGRAPH_FAULT (formats/io/io.h) fails the k-th mutating op.  For every k
# from 1 to the op count of a clean run and every mode
#     err:k:EIO  err:k:ENOSPC  err:k:EIO:always  err:k:ENOSPC:always  short:k
# we assert:
#   F1 the run does not exit 0 (an injected failure is never swallowed), and
#      ends by exit, not by a signal;
#   F2 every image left is 0 corruptions for `qemu-img check` (leaks are
#      tolerated: "waste of disk space, but no harm to data");
#   F3 commit/recover: every overlay's guest view equals the copy saved
#      before the run (qemu-img compare), and each overlay names top or
#      base;
#   F4 commit/recover: a clean `imgraph recover` afterwards exits 0, leaves
#      no journal, all overlays name the same backing file, F2/F3 hold, and
#      a second recover changes nothing (idempotent);
#   F5 create: a retry without faults succeeds and gives a clean image.
# A real ENOSPC: base on a 2 MiB tmpfs (root only; TAP skip otherwise).
#
# Scope: the crash tests (crash_*.sh) kill/cut at every op of the relink;
# this is the errno matrix over whole commands.
# Runtime: by default each op k gets ONE mode (rotating through the five);
# IMGRAPH_LONG=1 runs all five modes at every op.
. "$(dirname "$0")/lib.sh"
need_tools strace
trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT

MODES=(err:%d:EIO err:%d:ENOSPC err:%d:EIO:always err:%d:ENOSPC:always short:%d)
long=${IMGRAPH_LONG:-0}
runs=0 failed_runs=0

# short:K only shortens a write; at any other op it injects nothing, so it
# is only used where op K is a pwrite (OPKINDS, from op_kinds below).
modes_for() { # K -> the modes to run at op K
	local m kind=${OPKINDS:$(($1 - 1)):1} all=()
	for m in "${MODES[@]}"; do
		[[ $m == short* && $kind != w ]] && continue
		all+=("$m")
	done
	if [ "$long" = 1 ]; then
		for m in "${all[@]}"; do printf "$m\n" "$1"; done
	else
		printf "${all[$(( ($1 - 1) % ${#all[@]} ))]}\n" "$1"
	fi
}

# op_kinds DIR CMD... -> one letter per mutating op of a clean run, in
# order (w pwrite, s f(data)sync, t ftruncate, f fallocate, r rename,
# u unlink, c open with O_CREAT), read from strace: the same ops io.c counts.
op_kinds() {
	local d=$1; shift
	rm -rf "$T/kinds"; cp -a "$d" "$T/kinds"
	(cd "$T/kinds" && exec strace -f -qq -o "$T/kinds.st" \
		-e trace=pwrite64,fsync,fdatasync,ftruncate,fallocate,rename,renameat,renameat2,unlink,unlinkat,open,openat,creat,ioctl,copy_file_range \
		"$@") >/dev/null 2>&1
	# One copy between files (io_copy_range) is one op: a clone attempt
	# (k) the file system may refuse, then copy_file_range (y); a refused
	# clone is not tried again for the same files.
	sed -nE 's/^[0-9]+ +//; /^(open|openat)\(.*O_CREAT/{s/.*/c/p;d}; /^creat\(/{s/.*/c/p;d};
		s/^pwrite64\(.*/w/p; s/^f(data)?sync\(.*/s/p; s/^ftruncate\(.*/t/p;
		s/^fallocate\(.*/f/p; s/^rename(at2?)?\(.*/r/p; s/^unlink(at)?\(.*/u/p;
		s/^ioctl\(.*FICLONERANGE.*/k/p; s/^copy_file_range\(.*/y/p' "$T/kinds.st" |
		tr -d '\n' | sed 's/ky/w/g; s/[ky]/w/g'
	rm -rf "$T/kinds" "$T/kinds.st"
}

count_ops() { # DIR CMD... -> mutating ops of a clean run (in a throwaway copy)
	local d=$1; shift
	rm -rf "$T/count"; cp -a "$d" "$T/count"
	(cd "$T/count" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$T/nops" "$@") >/dev/null 2>&1
	cat "$T/nops" 2>/dev/null || echo 0
	rm -rf "$T/count" "$T/nops"
}

# run_fault DIR FAULT CMD...: run and check F1; sets $rc
run_fault() {
	local d=$1 f=$2; shift 2
	(cd "$d" && IMGRAPH_FAULT=$f exec "$@") >"$T/out" 2>&1
	rc=$?
	runs=$((runs + 1))
}

# images_clean NAME DIR: F2 for every qcow2 image in DIR; sets $why
images_clean() {
	local f r
	for f in "$1"/*.qcow2; do
		[ -f "$f" ] || continue
		qemu-img check -U -f qcow2 "$f" >"$T/qc" 2>&1; r=$?
		case $r in
		0|3) ;;
		*) why+=" $(basename "$f"): qemu-img check rc=$r;"; diag <"$T/qc" >>"$T/whydiag";;
		esac
	done
}

# ---- chain fixture: base <- top <- {o1, o2}; o-dir names top relatively ----
mkchain() {
	mkdir -p "$1" && (cd "$1" &&
		qemu-img create -q -f qcow2 -o cluster_size=4096 base.qcow2 4M
		qio base.qcow2 -c 'write -P 0x11 0 256k' -c 'write -P 0x12 1M 64k'
		mkq top.qcow2 4M base.qcow2 qcow2 -o cluster_size=4096
		qio top.qcow2 -c 'write -P 0x21 64k 128k' -c 'write -z 1M 4k' -c 'write -P 0x22 3M 8k'
		mkq o1.qcow2 4M top.qcow2 qcow2
		qio o1.qcow2 -c 'write -P 0x31 0 4k'
		mkq o2.qcow2 4M top.qcow2 qcow2)
}
mkchain "$T/tmpl"
for o in o1 o2; do guest_raw "$T/tmpl/$o.qcow2" "$T/$o.want"; done
COMMIT=("$IMGRAPH" commit --top top.qcow2 --base base.qcow2 --yes .)

backing_of() { qemu-img info -U --output=json "$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p'; }

# overlays_ok DIR: F3 (guest view + names top or base); appends to $why
overlays_ok() {
	local o b
	for o in o1 o2; do
		if ! qemu-img compare -U -f qcow2 -F raw "$1/$o.qcow2" "$T/$o.want" >/dev/null 2>&1; then
			why+=" $o guest view changed;"
		fi
		b=$(backing_of "$1/$o.qcow2")
		case $b in top.qcow2|base.qcow2) ;; *) why+=" $o names '$b';";; esac
	done
}

# recover_converges DIR: F4
recover_converges() {
	local d=$1 r b1 b2
	(cd "$d" && "$IMGRAPH" recover .) >"$T/rec" 2>&1; r=$?
	[ $r = 0 ] || { why+=" recover rc=$r;"; diag <"$T/rec" >>"$T/whydiag"; }
	compgen -G "$d/.imgraph-journal-*" >/dev/null && why+=" journal left after recover;"
	images_clean "$d"
	overlays_ok "$d"
	b1=$(backing_of "$d/o1.qcow2"); b2=$(backing_of "$d/o2.qcow2")
	[ "$b1" = "$b2" ] || why+=" mixed state after recover: o1->$b1 o2->$b2;"
	snap_dir "$d" >"$T/hash1"
	(cd "$d" && "$IMGRAPH" recover .) >/dev/null 2>&1 || why+=" second recover failed;"
	snap_dir "$d" >"$T/hash2"
	cmp -s "$T/hash1" "$T/hash2" || { why+=" second recover changed files;"; diff "$T/hash1" "$T/hash2" | diag >>"$T/whydiag"; }
}

report() { # NAME
	cat "$T/out" "$T/rec" 2>/dev/null | grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' &&
		why+=" sanitizer report;"
	rm -f "$T/rec"
	if [ -z "$why" ]; then ok "$1"
	else
		not_ok "$1:$why"; failed_runs=$((failed_runs + 1))
		[ -s "$T/whydiag" ] && cat "$T/whydiag"; { head -c 800 "$T/out"; echo; } | diag
	fi
	: >"$T/whydiag"
}

# ---- create ---------------------------------------------------------------
mkdir -p "$T/c0"; qemu-img create -q -f qcow2 "$T/c0/base.qcow2" 1M
CREATE=("$IMGRAPH" create -f qcow2 -b base.qcow2 -F qcow2 -o cluster_size=4096 new.qcow2 8M)
n=$(count_ops "$T/c0" "${CREATE[@]}")
OPKINDS=$(op_kinds "$T/c0" "${CREATE[@]}")
check_eq "create: strace sees the $n ops io.c counts ($OPKINDS)" "${#OPKINDS}" "$n"
if [ "$n" -gt 0 ] 2>/dev/null; then ok "create: $n mutating ops"; else not_ok "create: no ops counted"; n=0; fi
for ((k = 1; k <= n; k++)); do
	for f in $(modes_for "$k"); do
		rm -rf "$T/c"; cp -a "$T/c0" "$T/c"; why=""
		run_fault "$T/c" "$f" "${CREATE[@]}"
		[ $rc -lt 128 ] || why+=" killed by signal $((rc - 128));"
		[ $rc != 0 ] || why+=" exit 0 despite the fault;"
		images_clean "$T/c"
		[ -e "$T/c/new.qcow2" ] && echo "# create $f: left new.qcow2 ($(stat -c %s "$T/c/new.qcow2") bytes)"
		# F5: a retry without faults works
		rm -f "$T/c/new.qcow2.retry"
		if (cd "$T/c" && "${CREATE[@]}") >"$T/retry" 2>&1; then
			qemu-img check -q -f qcow2 "$T/c/new.qcow2" >/dev/null 2>&1 || why+=" retry image not clean;"
		else
			why+=" retry after the fault failed: $(head -c 200 "$T/retry");"
		fi
		report "create $f"
	done
done

# ---- commit ---------------------------------------------------------------
n=$(count_ops "$T/tmpl" "${COMMIT[@]}")
OPKINDS=$(op_kinds "$T/tmpl" "${COMMIT[@]}")
check_eq "commit: strace sees the $n ops io.c counts ($OPKINDS)" "${#OPKINDS}" "$n"
if [ "$n" -gt 0 ] 2>/dev/null; then ok "commit: $n mutating ops"; else not_ok "commit: no ops counted"; n=0; fi
for ((k = 1; k <= n; k++)); do
	for f in $(modes_for "$k"); do
		rm -rf "$T/w"; cp -a "$T/tmpl" "$T/w"; why=""
		run_fault "$T/w" "$f" "${COMMIT[@]}"
		[ $rc -lt 128 ] || why+=" killed by signal $((rc - 128));"
		[ $rc != 0 ] || why+=" exit 0 despite the fault;"
		images_clean "$T/w"
		overlays_ok "$T/w"
		recover_converges "$T/w"
		report "commit $f (rc=$rc)"
	done
done

# ---- recover --------------------------------------------------------------
# States to recover from: commits killed at the first and at the middle op
# that leave a journal (PREPARED, mid-relink).  The chain is made in place
# for each run: the journal records dev:ino.
jpoints=()
for ((k = 1; k <= n; k++)); do
	rm -rf "$T/w"; mkchain "$T/w"
	{ (cd "$T/w" && IMGRAPH_FAULT=kill:$k exec "${COMMIT[@]}") >/dev/null 2>&1; } 2>/dev/null
	for j in "$T"/w/.imgraph-journal-*; do
		[ -f "$j" ] && { jpoints+=("$k"); break; }
	done
done
if [ ${#jpoints[@]} -eq 0 ]; then
	not_ok "recover: no kill point of the commit leaves a journal"
else
	picks=("${jpoints[0]}")
	mid=${jpoints[$(( ${#jpoints[@]} / 2 ))]}
	[ "$mid" = "${picks[0]}" ] || picks+=("$mid")
	[ "$long" = 1 ] && picks=("${jpoints[@]}")
	ok "recover: journals left by kills at ops ${jpoints[*]}; testing ${picks[*]}"
	for kp in "${picks[@]}"; do
		# counted in place (a copy would have other dev:ino: "foreign")
		rm -rf "$T/r1"; mkchain "$T/r1"
		{ (cd "$T/r1" && IMGRAPH_FAULT=kill:$kp exec "${COMMIT[@]}") >/dev/null 2>&1; } 2>/dev/null
		rn=$( (cd "$T/r1" && IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$T/rn" "$IMGRAPH" recover .) >/dev/null 2>&1; cat "$T/rn")
		rm -rf "$T/r1"; mkchain "$T/r1"
		{ (cd "$T/r1" && IMGRAPH_FAULT=kill:$kp exec "${COMMIT[@]}") >/dev/null 2>&1; } 2>/dev/null
		OPKINDS=$(cd "$T/r1" && strace -f -qq -o "$T/rk.st" \
			-e trace=pwrite64,fsync,fdatasync,ftruncate,fallocate,rename,renameat,renameat2,unlink,unlinkat,open,openat,creat \
			"$IMGRAPH" recover . >/dev/null 2>&1; sed -nE 's/^[0-9]+ +//; /^(open|openat)\(.*O_CREAT/{s/.*/c/p;d};
			s/^pwrite64\(.*/w/p; s/^f(data)?sync\(.*/s/p; s/^ftruncate\(.*/t/p; s/^fallocate\(.*/f/p;
			s/^rename(at2?)?\(.*/r/p; s/^unlink(at)?\(.*/u/p' "$T/rk.st" | tr -d '\n')
		check_eq "recover after kill:$kp: strace sees the $rn ops ($OPKINDS)" "${#OPKINDS}" "$rn"
		if [ "${rn:-0}" -gt 0 ] 2>/dev/null; then ok "recover after kill:$kp: $rn mutating ops"
		else not_ok "recover after kill:$kp: no ops counted"; rn=0; fi
		for ((k = 1; k <= rn; k++)); do
			for f in $(modes_for "$k"); do
				rm -rf "$T/w"; mkchain "$T/w"
				{ (cd "$T/w" && IMGRAPH_FAULT=kill:$kp exec "${COMMIT[@]}") >/dev/null 2>&1; } 2>/dev/null
				why=""
				run_fault "$T/w" "$f" "$IMGRAPH" recover .
				[ $rc -lt 128 ] || why+=" killed by signal $((rc - 128));"
				[ $rc != 0 ] || why+=" exit 0 despite the fault;"
				images_clean "$T/w"
				overlays_ok "$T/w"
				recover_converges "$T/w"
				report "recover (after kill:$kp) $f (rc=$rc)"
			done
		done
	done
fi

# ---- a real full file system ------------------------------------------------
# base on a 2 MiB tmpfs, top (with more data than fits) outside it.
if [ "$(id -u)" != 0 ]; then
	echo "ok - # SKIP real ENOSPC: needs root for mount -t tmpfs"
elif ! mkdir -p "$T/mnt" || ! mount -t tmpfs -o size=2m tmpfs "$T/mnt" 2>/dev/null; then
	echo "ok - # SKIP real ENOSPC: mount -t tmpfs failed (no CAP_SYS_ADMIN?)"
else
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$T/mnt/base.qcow2" 4M
	qio "$T/mnt/base.qcow2" -c 'write -P 0x11 0 64k'
	free=$(( $(stat -f -c %a "$T/mnt") * $(stat -f -c %S "$T/mnt") ))
	# The plan checks free space (and refuses with 3), so the disk is
	# filled by another writer while a rate-limited commit runs: the
	# plan saw room, the writes meet ENOSPC (the case of iotest
	# qemu-img-close-errors).
	mkdir -p "$T/full"
	mkq "$T/full/top.qcow2" 4M "$T/mnt/base.qcow2" qcow2 -o cluster_size=4096
	fill=$(( free / 2 / 4096 * 4096 ))
	head -c "$fill" /dev/urandom >"$T/rand"
	qemu-io -f qcow2 -c "write -s $T/rand 256k $fill" "$T/full/top.qcow2" >/dev/null 2>&1 ||
		qemu-io -f qcow2 -c "write -P 0x5a 256k $fill" "$T/full/top.qcow2" >/dev/null
	mkq "$T/full/o1.qcow2" 4M top.qcow2 qcow2
	guest_raw "$T/full/o1.qcow2" "$T/full.want"
	(cd "$T/full" && exec "$IMGRAPH" commit --top top.qcow2 --base "$T/mnt/base.qcow2" \
		--rate 524288 --yes . "$T/mnt") >"$T/out" 2>&1 &
	cpid=$!
	sleep 0.4
	dd if=/dev/zero of="$T/mnt/filler" bs=64k status=none 2>/dev/null
	wait $cpid; rc=$?
	rm -f "$T/mnt/filler"
	why=""
	hit="no ENOSPC reached (the commit finished before the disk filled)"
	grep -qi 'no space' "$T/out" && hit="ENOSPC hit"
	[ $rc = 0 ] && grep -qi 'no space' "$T/out" && why+=" exit 0 after ENOSPC;"
	[ $rc -lt 128 ] || why+=" killed by signal;"
	for f in "$T/mnt/base.qcow2" "$T/full/top.qcow2" "$T/full/o1.qcow2"; do
		qemu-img check -U -f qcow2 "$f" >"$T/qc" 2>&1; r=$?
		case $r in 0|3) ;; *) why+=" $(basename "$f"): check rc=$r;";; esac
	done
	qemu-img compare -U -f qcow2 -F raw "$T/full/o1.qcow2" "$T/full.want" >/dev/null 2>&1 ||
		why+=" o1 guest view changed;"
	case $(backing_of "$T/full/o1.qcow2") in
	top.qcow2) [ $rc != 0 ] || why+=" exit 0 but o1 still names top;";;
	*base.qcow2) ;;
	*) why+=" o1 names neither top nor base;";;
	esac
	(cd "$T/full" && "$IMGRAPH" recover . "$T/mnt") >/dev/null 2>&1 || why+=" recover after ENOSPC failed;"
	[ -z "$why" ] && ok "real ENOSPC (tmpfs 2 MiB, $fill bytes to copy): rc=$rc, $hit, images valid" ||
		{ not_ok "real ENOSPC:$why"; diag <"$T/out"; }
	umount "$T/mnt"
fi

echo "# fault runs: $runs, failing: $failed_runs (IMGRAPH_LONG=$long)"
done_testing
