#!/bin/bash
# plan_matrix.sh - the plan's verdict is the commit's outcome, proven
# against real holders.
#
# Holders: qemu-io read-only, read-write and -U; qemu-io --image-opts
# reading the file as raw with a size (it does not share resize);
# qemu-storage-daemon with a read-only node and no writable export, and
# with a writable NBD export; a plain process with the file open and no
# lock; users-file entries with the perm/shared combinations that matter.
# Each is placed on one role: base, the intermediate, top, a parent of top,
# a sibling reader of base and a reader of the intermediate (those two live
# outside the scanned pool, where only their locks can give them away).
# Shapes: top with a parent, a leaf top kept, a leaf top dropped
# (--drop-top), base smaller than top, and a raw base of top's size and
# smaller.
#
# For every case: `plan` exits 0 or 3 and `commit` with the same arguments
# exits the same.  After 3, the commit printed the plan's conflicts and
# every file hashes as before.  After 0, every image of the pool shows what
# it showed (qemu-img compare against views saved before), base shows top's
# old view and qemu-img check finds no corruption.
#
# Then holders started while a commit copies (slowed with --rate): each is
# refused exactly when the plan with that holder present said 3; a process
# that opens a file without locks cannot be refused, so then the commit
# stops before the relink (exit 3) exactly when the plan said 3.
#
# make check runs a bounded selection; IMGRAPH_LONG=1 runs every holder on
# every role of every shape.
. "$(dirname "$0")/lib.sh"

LONG=${IMGRAPH_LONG:-0}
W=$T/w          # the pool: the directory of top and base
O=$T/out        # outside it: readers imgraph sees only through their locks

stop_holder() { holder_stop; rm -f "$W/users.yaml"; }

# ---- shapes ---------------------------------------------------------------
# build SHAPE: $T/p-SHAPE/{w,out} and the views of top and ov in
# $T/p-SHAPE/views.  base 8M (4M when smaller), mid and top 8M.
build() {
	local s=$1 d=$T/p-$1 bf=qcow2 bsz=8M base=base.qcow2
	mkdir -p "$d/w" "$d/out" "$d/views"
	case $s in grow|rawgrow) bsz=4M ;; esac
	case $s in raw*) bf=raw; base=base.raw ;; esac
	if [ $bf = raw ]; then
		qemu-img create -q -f raw "$d/w/$base" $bsz
		qemu-io -f raw -c 'write -P 0x11 0 1M' "$d/w/$base" >/dev/null
	else
		mkq "$d/w/$base" $bsz
		qio "$d/w/$base" -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 64k'
	fi
	mkq "$d/w/mid.qcow2" 8M "$base" $bf
	qio "$d/w/mid.qcow2" -c 'write -P 0xa1 512k 1M'
	mkq "$d/w/top.qcow2" 8M mid.qcow2 qcow2
	qio "$d/w/top.qcow2" -c 'write -P 0xb1 2M 2M' -c 'write -z 0 64k'
	case $s in leaf|drop) ;; *)
		mkq "$d/w/ov.qcow2" 8M top.qcow2 qcow2
		qio "$d/w/ov.qcow2" -c 'write -P 0xc1 7M 64k' ;;
	esac
	mkq "$d/out/sib.qcow2" 8M "../w/$base" $bf
	mkq "$d/out/rdmid.qcow2" 8M ../w/mid.qcow2 qcow2
	guest_raw "$d/w/top.qcow2" "$d/views/top.raw"
	[ -f "$d/w/ov.qcow2" ] && guest_raw "$d/w/ov.qcow2" "$d/views/ov.raw"
	return 0
}

# Hashes of every file of the pool and outside it (not the users file the
# case wrote).
snap_pool() { { snap_dir "$W"; snap_dir "$O"; } | grep -v '/users\.yaml$'; }

restore() { # SHAPE
	rm -rf "$W" "$O"
	cp -a "$T/p-$1/w" "$W" && cp -a "$T/p-$1/out" "$O"
}

base_of() { case $1 in raw*) echo "$W/base.raw" ;; *) echo "$W/base.qcow2" ;; esac; }

# file ROLE SHAPE: the file the role names, and its format (FILE FMT).
file_of() {
	case $1 in
	base) case $2 in raw*) echo "$W/base.raw raw" ;; *) echo "$W/base.qcow2 qcow2" ;; esac ;;
	inter) echo "$W/mid.qcow2 qcow2" ;;
	top) echo "$W/top.qcow2 qcow2" ;;
	parent) echo "$W/ov.qcow2 qcow2" ;;
	sib) echo "$O/sib.qcow2 qcow2" ;;
	rdmid) echo "$O/rdmid.qcow2 qcow2" ;;
	esac
}

# ---- holders ---------------------------------------------------------------
# qio_args HOLDER FILE FMT: qemu-io's arguments for a holder kind.
qio_args() {
	case $1 in
	qio_r) echo "-r -f $3 $2" ;;
	qio_rw) echo "-f $3 $2" ;;
	qio_U) echo "-r -U -f $3 $2" ;;
	qio_rawsize) echo "-r --image-opts driver=raw,size=65536,file.driver=file,file.filename=$2" ;;
	esac
}

# users_entry HOLDER FILE: the YAML entry of a users-file holder.
users_entry() {
	local img=$2 perm shared="[consistent-read, write-unchanged]" kind=other
	case $1 in
	u_read) perm="[consistent-read]" ;;
	u_vm) perm="[consistent-read, write]"; kind=vm ;;
	u_shareall) perm="[consistent-read]"; shared="[consistent-read, write, write-unchanged, resize]" ;;
	u_none) perm="[]"; shared="[consistent-read, write, write-unchanged, resize]" ;;
	u_rawsize) perm="[consistent-read]"; shared="[consistent-read, write, write-unchanged]" ;;
	u_sharerw) perm="[consistent-read, write]"; shared="[consistent-read, write, write-unchanged, resize]" ;;
	esac
	printf 'users:\n  - name: %s\n    kind: %s\n    image: %s\n    perm: %s\n    shared: %s\n' \
		"$1" "$kind" "$img" "$perm" "$shared"
}

# start HOLDER FILE FMT: the holder runs (HOLDER=pid) or the users file
# says it.  Returns nonzero when the holder could not start.
start() {
	local h=$1 f=$2 fmt=$3
	case $h in
	qio_*)
		# shellcheck disable=SC2046
		holder_qio $(qio_args "$h" "$f" "$fmt") ;;
	qsd_ro|qsd_rw)
		local ro=on wr=off
		[ $h = qsd_rw ] && { ro=off; wr=on; }
		rm -f "$T/nbd.sock"
		qemu-storage-daemon --blockdev driver=file,node-name=f,filename="$f" \
			--blockdev driver="$fmt",node-name=q,file=f,read-only=$ro \
			--nbd-server addr.type=unix,addr.path="$T/nbd.sock" \
			--export type=nbd,id=e,node-name=q,writable=$wr \
			>"$T/holder.log" 2>&1 &
		HOLDER=$!
		holder_wait lock ;;
	plain)
		bash -c 'exec 3<>"$1"; exec sleep 600' _ "$f" &
		HOLDER=$!
		holder_wait fd "$f" ;;
	u_*)
		users_entry "$h" "$(realpath --relative-to="$W" "$f")" >"$W/users.yaml" ;;
	esac
}

# ---- one case --------------------------------------------------------------
NOK0=0 NOK3=0
declare -A VERDICT

# judge_ok NAME SHAPE: after commit exit 0, every view of the pool intact.
judge_ok() {
	local n=$1 s=$2 v=$T/p-$2/views bad="" f rc
	qemu-img compare -U -q -F raw "$W/top.qcow2" "$v/top.raw" 2>/dev/null ||
		bad="$bad top's view;"
	if [ -f "$v/ov.raw" ]; then
		qemu-img compare -U -q -F raw "$W/ov.qcow2" "$v/ov.raw" 2>/dev/null ||
			bad="$bad ov's view;"
	fi
	qemu-img compare -U -q -F raw "$(base_of "$s")" "$v/top.raw" 2>/dev/null ||
		bad="$bad base does not show top's old view;"
	for f in "$W"/*.qcow2; do
		qemu-img check -U -q "$f" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || [ $rc = 3 ] || bad="$bad check $(basename "$f") rc=$rc;"
	done
	ls -a "$W" | grep -q '^\.imgraph-journal-' && bad="$bad journal left;"
	[ -z "$bad" ] && ok "$n: commit 0, every view intact" ||
		not_ok "$n: commit 0 but$bad"
}

# one SHAPE ROLE HOLDER: plan, commit, judge.
one() {
	local s=$1 role=$2 h=$3 n="$1/$2/$3" f fmt rp rc extra=()
	read -r f fmt <<<"$(file_of "$role" "$s")"
	restore "$s" || { not_ok "$n: restore"; return; }
	[ "$s" = drop ] && extra+=(--drop-top)
	if ! start "$h" "$f" "$fmt"; then
		not_ok "$n: holder did not start"; diag <"$T/holder.log"; stop_holder; return
	fi
	[ -f "$W/users.yaml" ] && extra+=(--users "$W/users.yaml")
	snap_pool >"$T/before.sha"
	"$IMGRAPH" plan --top "$W/top.qcow2" --base "$(base_of "$s")" "${extra[@]}" \
		>"$T/plan.out" 2>"$T/plan.err"; rp=$?
	"$IMGRAPH" commit --top "$W/top.qcow2" --base "$(base_of "$s")" "${extra[@]}" \
		--yes -q >"$T/commit.out" 2>"$T/commit.err"; rc=$?
	stop_holder
	VERDICT[$n]=$rp
	if [ $rp != 0 ] && [ $rp != 3 ]; then
		not_ok "$n: plan exit $rp"; diag <"$T/plan.err"; return
	fi
	if [ $rc != $rp ]; then
		not_ok "$n: plan exit $rp, commit exit $rc"
		diag <"$T/plan.out"; diag <"$T/commit.err"; return
	fi
	if [ $rp = 3 ]; then
		NOK3=$((NOK3 + 1))
		snap_pool >"$T/after.sha"
		sed -n '/^conflicts (/,$p' "$T/plan.out" >"$T/pc"
		sed -n '/^conflicts (/,$p' "$T/commit.out" >"$T/cc"
		if ! cmp -s "$T/before.sha" "$T/after.sha"; then
			not_ok "$n: commit 3 but a file changed"; diff "$T/before.sha" "$T/after.sha" | diag
		elif ! [ -s "$T/pc" ] || ! cmp -s "$T/pc" "$T/cc"; then
			not_ok "$n: commit 3 with other conflicts than the plan's"
			diff "$T/pc" "$T/cc" | diag; diag <"$T/commit.err"
		else
			ok "$n: plan 3, commit 3, same conflicts, nothing written"
		fi
	else
		NOK0=$((NOK0 + 1))
		judge_ok "$n" "$s"
	fi
}

LIVE="qio_r qio_rw qio_U qio_rawsize qsd_ro qsd_rw plain"
USERS="u_read u_vm u_shareall u_none u_rawsize u_sharerw"
roles_of() { case $1 in leaf|drop) echo "base inter top sib rdmid" ;; *) echo "base inter top parent sib rdmid" ;; esac; }

if [ "$LONG" = 1 ]; then
	SHAPES="parents leaf drop grow rawbase rawgrow"
	for s in $SHAPES; do
		build "$s" || { not_ok "build $s"; done_testing; }
		for role in $(roles_of "$s"); do
			for h in $LIVE $USERS; do one "$s" "$role" "$h"; done
		done
	done
else
	for s in parents leaf drop rawbase rawgrow; do
		build "$s" || { not_ok "build $s"; done_testing; }
	done
	for role in base inter top parent sib rdmid; do
		for h in qio_r qio_U qio_rawsize plain u_vm u_shareall; do
			one parents "$role" "$h"
		done
	done
	one parents parent qsd_rw
	one parents inter qsd_ro
	one parents parent qio_rw
	one parents parent u_read
	for s in leaf drop; do
		one "$s" top qio_U
		one "$s" top u_read
		one "$s" base qio_r
	done
	for s in rawbase rawgrow; do
		one "$s" base qio_rawsize
		one "$s" base u_rawsize
	done
fi

# The matrix proves something only if both verdicts occur; these cases
# pin the ones the plan used to get wrong.
[ $NOK0 -gt 0 ] && [ $NOK3 -gt 0 ] && ok "both verdicts occur ($NOK0 runnable, $NOK3 refused)" ||
	not_ok "both verdicts occur ($NOK0 runnable, $NOK3 refused)"
check_eq "raw base of top's size read as raw with a size: runnable" "${VERDICT[rawbase/base/qio_rawsize]}" 0
check_eq "raw base that grows, the same reader (it does not share resize): refused" "${VERDICT[rawgrow/base/qio_rawsize]}" 3
check_eq "a declared VM writing a parent of top: refused like a live one" "${VERDICT[parents/parent/u_vm]}" 3
check_eq "a live reader of the intermediate outside the pool: refused" "${VERDICT[parents/rdmid/qio_U]}" 3

# ---- holders started during the copy ----------------------------------------
# during ROLE HOLDER: a commit of the "parents" shape copies slowly; the
# holder tries to open its file; it must get in exactly when the plan with
# it present said 0.
during() {
	local role=$1 h=$2 n="during copy: parents/$1/$2" f fmt pid rc want got
	want=${VERDICT[parents/$role/$h]:-}
	[ -n "$want" ] || { not_ok "$n: no verdict from the matrix"; return; }
	read -r f fmt <<<"$(file_of "$role" parents)"
	restore parents
	rm -f "$T/c.err"     # so that no earlier run's progress is waited for
	# ~3 MiB above base at 2 MiB/s: the holder starts well inside the copy
	"$IMGRAPH" commit --top "$W/top.qcow2" --base "$W/base.qcow2" --yes \
		--rate 2M >"$T/c.out" 2>"$T/c.err" &
	pid=$!
	for _ in $(seq 100); do grep -q '"copy"' "$T/c.err" 2>/dev/null && break; sleep 0.05; done
	if [ "$h" = plain ]; then
		# No lock test can refuse it: the commit must stop before the
		# relink, exactly when the plan would have refused it.
		bash -c 'exec 3<>"$1"; exec sleep 600' _ "$f" &
		HOLDER=$!
		holder_wait fd "$f"
		grep -q '"relink"' "$T/c.err" && { not_ok "$n: too late"; holder_stop; wait "$pid"; return; }
		wait "$pid"; rc=$?
		holder_stop
		during_plain_judge "$n" "$want" "$rc"
		return
	fi
	# shellcheck disable=SC2046
	if qemu-io $(qio_args "$h" "$f" "$fmt") -c quit >"$T/q.out" 2>&1; then
		got=0
	elif grep -qE 'Failed to get (shared )?"[a-z ]+" lock' "$T/q.out"; then
		got=3
	else
		got=error
	fi
	grep -q '"relink"' "$T/c.err" && got="late ($got)"
	wait "$pid"; rc=$?
	if [ "$got" = "$want" ] && [ $rc = 0 ]; then
		ok "$n: $( [ $want = 0 ] && echo admitted || echo refused) as the plan said, commit 0"
	else
		not_ok "$n: holder got '$got', plan said $want, commit exit $rc"
		diag <"$T/q.out"; diag <"$T/c.err"
	fi
}

# A process that opened a file without locks during the copy: the commit
# exits as the plan with it present did; after 3 every parent still uses
# top and shows what it showed.
during_plain_judge() { # NAME WANT RC
	local n=$1 want=$2 rc=$3 v=$T/p-parents/views
	if [ "$rc" != "$want" ]; then
		not_ok "$n: commit exit $rc, the plan said $want"; diag <"$T/c.err"
	elif [ "$rc" = 3 ] && ! qemu-img info -U "$W/ov.qcow2" | grep -q '^backing file: top\.qcow2'; then
		not_ok "$n: commit 3 but the parent was relinked"
	elif ! qemu-img compare -U -q -F raw "$W/ov.qcow2" "$v/ov.raw" 2>/dev/null; then
		not_ok "$n: the parent's view changed"
	else
		ok "$n: commit exit $rc as the plan said, the parent's view intact"
	fi
}

if [ "$LONG" = 1 ]; then
	for role in base inter top parent sib rdmid; do
		for h in qio_r qio_rw qio_U qio_rawsize plain; do during "$role" "$h"; done
	done
else
	during base qio_r
	during base qio_U
	during parent qio_r
	during rdmid qio_rawsize
	during parent plain
	during sib plain
fi
done_testing
