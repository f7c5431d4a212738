#!/usr/bin/env bash
# commit_prop.sh - the property "plan OK => commit succeeds" (issue 15,
# point 8) over random chains that qemu-img and qemu-io build across the
# feature space:
#   * base: qcow2 v3 or v2 (compat=0.10), extended L2, zstd or zlib
#     compression, with an external data file, raw, or qed;
#   * 0-2 intermediates: qcow2 (the same options), qed or qcow (v1);
#   * top: qcow2 (any of the options, a data file too), qed or qcow (v1);
#   * 0-2 parents of top: qcow2, qed or qcow (v1), by relative name;
#   * now and then a sibling (qcow2 or qed) reading base or an
#     intermediate: a reader the commit would change;
#   * cluster sizes 512 B .. 2 MiB, layer sizes that differ (unaligned ones
#     too), data, compressed and zero writes (subclusters with extended
#     L2), discards;
#   * for the images that a qed or qcow link reaches without recording a
#     format, --format FILE=FMT statements: mostly true, sometimes
#     missing, seldom false.
# Per chain, `imgraph plan` then `imgraph commit --yes`, judged by qemu-img
# only, one of:
#   plan 0 => commit 0, every image other than base and the intermediates
#             has the guest view it had (qemu-img compare against views
#             saved before), every parent of top reads base (qemu-img
#             info), base shows top's old view, and qemu-img check is
#             clean on every image it can check;
#   plan 3 => commit 3 and no byte of any file in the pool changed
#             (sha256 of every file before and after);
#   plan 1 => the commit fails too and writes nothing (an image we cannot
#             read is never half-committed).
# Chains whose own images qemu-img check does not call clean (qemu-io left
# them so) are not a fair input and are skipped (counted).
#
# Seedable: chain i uses seed SEED+i, the first line prints SEED; replay one
# chain with SEED=<its seed> PROP_N=1.  PROP_N chains (make check: 16 from
# SEED=1; `make prop`: 300 from a random seed).  PROP_DEBUG=1 prints every
# chain's images, plan and commit codes and conflicts.  A failing chain keeps its
# ops log in the TAP diagnostics; KEEP_FAILED=DIR keeps its files.
. "$(dirname "$0")/lib.sh"

SEED=${SEED:-1}
PROP_N=${PROP_N:-16}
echo "# SEED=$SEED PROP_N=$PROP_N (replay one chain: SEED=<seed> PROP_N=1)"
# zstd joins the feature space when qemu-img writes it (QEMU built
# without libzstd cannot).
ZSTD=0
if qemu-img create -q -f qcow2 -o compression_type=zstd "$T/zp.qcow2" 1M 2>/dev/null; then
	ZSTD=1
else
	echo "# qemu-img cannot write zstd: zlib only"
fi

# pick VAR CHOICES...: one of CHOICES (RANDOM, never in a subshell: bash
# reseeds it there and a seed must replay the same chain)
pick() { local v=$1; shift; local a=("$@"); printf -v "$v" %s "${a[RANDOM % ${#a[@]}]}"; }
chance() { [ $((RANDOM % 100)) -lt "$1" ]; }
log() { printf '%s\n' "$*" >>"$OPS"; }

# Per image: FMT[name] (qemu's format), ROLE[name]; IMAGES in build order;
# UNREC: the images some link reaches without recording a format.
declare -A FMT ROLE
IMAGES=() UNREC=() STATED=()

# qcow2_opts VAR: random qcow2 creation options into the array VAR
qcow2_opts() {
	local -n o=$1
	local cs extra=""
	pick cs 512 4096 65536 65536 2097152
	[ "$cs" -ge 16384 ] && chance 30 && extra+=",extended_l2=on"
	[ -z "$extra" ] && chance 20 && extra+=",compat=0.10"
	[ $ZSTD = 1 ] && [[ $extra != *compat* ]] && chance 35 && extra+=",compression_type=zstd"
	o=(-o "cluster_size=$cs$extra")
}

# mk NAME FMT ROLE SIZE [BACKING BACKING_FMT]: create one image
mk() {
	local name=$1 fmt=$2 role=$3 size=$4 b=${5:-} bf=${6:-} opts=() cs
	case $fmt in
	qcow2) qcow2_opts opts
		[ "$role" != parent ] && [ "$role" != sibling ] && chance 12 &&
			opts=(-o "${opts[1]},data_file=$D/$name.data")
		[[ ${opts[1]} == *compat=0.10* ]] && opts=(-o "${opts[1]/,data_file=*/}") ;;
	qed) pick cs 4096 65536; opts=(-o "cluster_size=$cs") ;;
	esac
	[ -n "$b" ] && opts+=(-b "$b" -F "$bf")
	log "create $name $fmt $role $size ${opts[*]}"
	# data files by absolute name: QEMU 7.2 resolves a relative one from
	# its working directory, not from the image's
	qemu-img create -q -f "$fmt" "${opts[@]}" "$D/$name" "$size" 2>>"$OPS" || return 1
	FMT[$name]=$fmt ROLE[$name]=$role
	IMAGES+=("$name")
	# a link that records no format: qcow (v1) never does, qed only raw
	[ -n "$b" ] && { [ "$fmt" = qcow ] || { [ "$fmt" = qed ] && [ "$bf" != raw ]; }; } &&
		UNREC+=("$b")
	ops "$name" "$size"
}

# ops NAME SIZE: 1-8 random qemu-io writes the format supports; compressed
# ones first, to clusters nothing wrote yet (QEMU compresses only into
# unallocated clusters)
ops() {
	local name=$1 size=$2 fmt=${FMT[$1]} n i kind off len cs args=() first=()
	cs=$(qemu-img info -U -f "$fmt" --output=json "$D/$name" 2>/dev/null |
		sed -n 's/^ *"cluster-size": \([0-9]*\).*/\1/p')
	cs=${cs:-65536}
	n=$((1 + RANDOM % 8))
	for ((i = 0; i < n; i++)); do
		off=$(( (RANDOM * 32768 + RANDOM) % (size / 512) * 512 ))
		len=$(( (1 + RANDOM % 256) * 512 ))
		[ $((off + len)) -gt "$size" ] && len=$((size - off))
		[ "$len" -gt 0 ] || continue
		case $fmt in
		qcow2) pick kind data data zero zero-unmap discard compressed ;;
		qed) pick kind data data zero ;;
		*) pick kind data data data zero ;;
		esac
		[ "$kind" = compressed ] && grep -q "create $name .*data_file" "$OPS" && kind=data
		case $kind in
		data) args+=(-c "write -P $((1 + RANDOM % 254)) $off $len") ;;
		zero) args+=(-c "write -z $off $len") ;;
		zero-unmap) args+=(-c "write -z -u $off $len") ;;
		discard) args+=(-c "discard $off $len") ;;
		compressed)
			off=$(( off / cs * cs ))
			[ $((off + cs)) -le "$size" ] || continue
			[[ " ${first[*]} " == *" $off "* ]] && continue
			first+=(-c "write -c -P $((1 + RANDOM % 254)) $off $cs") ;;
		esac
	done
	args=("${first[@]}" "${args[@]}")
	log "ops $name ${args[*]}"
	[ ${#args[@]} -eq 0 ] && return
	qemu-io -f "$fmt" "${args[@]}" "$D/$name" >"$T/qio.out" 2>&1 ||
		{ cat "$T/qio.out" >>"$OPS"; return 1; }
}

# size VAR: 4-8 MiB in 512-byte units (so layers differ, unaligned too)
size() { printf -v "$1" %s $(( (8192 + RANDOM % 8192) * 512 )); }

# build: the chain of this seed into $D; sets TOP, BASE, TSIZE
build() {
	local kind below bf s i n name
	pick kind qcow2 qcow2 qcow2 qcow2 qcow2 qcow2 raw raw raw qed
	size s; BASE=base.$kind
	[ "$kind" = raw ] && BASE=base.raw
	mk "$BASE" "$kind" base "$s" || return 1
	below=$BASE bf=$kind
	n=$((RANDOM % 3))
	for ((i = 0; i < n; i++)); do
		pick kind qcow2 qcow2 qcow2 qcow2 qed qed qcow
		# qed records only a raw backing format: over anything else
		# it is mostly replaced (the rest makes a [format] conflict)
		[ "$kind" = qed ] && [ "$bf" != raw ] && chance 70 && kind=qcow2
		size s; name=mid$i.$kind
		mk "$name" "$kind" mid "$s" "$below" "$bf" || return 1
		below=$name bf=$kind
		if chance 10; then
			pick kind qcow2 qed
			mk "sib$i.$kind" "$kind" sibling "$s" "$below" "$bf" || return 1
		fi
	done
	if chance 8; then
		pick kind qcow2 qed
		size s; mk "sibb.$kind" "$kind" sibling "$s" "$BASE" "${FMT[$BASE]}" || return 1
	fi
	pick kind qcow2 qcow2 qcow2 qcow2 qcow2 qcow2 qcow2 qcow2 qed qed qcow
	size TSIZE; TOP=top.$kind
	mk "$TOP" "$kind" top "$TSIZE" "$below" "$bf" || return 1
	n=$((RANDOM % 3))
	for ((i = 0; i < n; i++)); do
		pick kind qcow2 qcow2 qcow2 qcow2 qcow2 qcow2 qed qed qcow
		size s; mk "ovl$i.$kind" "$kind" parent "$s" "$TOP" "${FMT[$TOP]}" || return 1
	done
}

# state: --format statements into STATED for the images reached through
# links that record no format: mostly the truth (the format qemu-img made
# it with), now and then none, seldom a lie (a conflict, nothing written)
state() {
	local b lie
	STATED=()
	for b in "${UNREC[@]}"; do
		if chance 5; then
			pick lie raw qcow2 qed
			[ "$lie" = "${FMT[$b]}" ] && lie=raw
			[ "$lie" = "${FMT[$b]}" ] && lie=qcow2
			STATED+=(--format "$b=$lie")
		elif chance 75; then
			STATED+=(--format "$b=${FMT[$b]}")
		fi
	done
	log "stated ${STATED[*]}"
}

# fair: every image as qemu-img checks it (formats without checks pass)
fair() {
	local f rc
	for f in "${IMAGES[@]}"; do
		case ${FMT[$f]} in qcow2|qed) ;; *) continue ;; esac
		qemu-img check -q -f "${FMT[$f]}" "$D/$f" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || { log "unfair: $f check rc=$rc"; return 1; }
	done
}

save_views() {
	local f
	for f in "${IMAGES[@]}"; do
		qemu-img convert -U -f "${FMT[$f]}" -O raw "$D/$f" "$V/$f.raw" 2>>"$OPS" || return 1
	done
}

# judge_ok: the commit ran; every remaining view intact, base shows top's
# old view, every checkable image clean.  Prints why not.
judge_ok() {
	local f rc b
	for f in "${IMAGES[@]}"; do
		case ${ROLE[$f]} in base|mid) continue ;; esac
		[ -f "$D/$f" ] || { echo "$f is gone"; return; }
		qemu-img compare -U -q -f "${FMT[$f]}" -F raw "$D/$f" "$V/$f.raw" >/dev/null 2>&1 ||
			{ echo "$f (${ROLE[$f]}): guest view changed"; return; }
	done
	# the parents of top read base now (an intact view alone would also
	# hold if top were left in their chains untouched)
	for f in "${IMAGES[@]}"; do
		[ "${ROLE[$f]}" = parent ] || continue
		b=$(qemu-img info -U -f "${FMT[$f]}" --output=json "$D/$f" 2>/dev/null |
			sed -n 's/^ *"full-backing-filename": "\(.*\)",*$/\1/p')
		[ "$(realpath -m "$b")" = "$(realpath "$D/$BASE")" ] ||
			{ echo "$f: backing '$b', not $BASE"; return; }
	done
	qemu-img convert -U -f "${FMT[$BASE]}" -O raw "$D/$BASE" "$V/base.after" 2>/dev/null
	cmp -n "$TSIZE" "$V/base.after" "$V/$TOP.raw" >/dev/null 2>&1 ||
		{ echo "$BASE does not show top's old view: $(cmp -n "$TSIZE" "$V/base.after" "$V/$TOP.raw" 2>&1 | head -n 1)"; return; }
	for f in "${IMAGES[@]}"; do
		case ${FMT[$f]} in qcow2|qed) ;; *) continue ;; esac
		qemu-img check -U -q -f "${FMT[$f]}" "$D/$f" >/dev/null 2>&1; rc=$?
		[ $rc = 0 ] || { echo "$f: qemu-img check rc=$rc: $(qemu-img check -U -f "${FMT[$f]}" "$D/$f" 2>&1 | tail -n 2 | tr '\n' ' ')"; return; }
	done
}

bad=0 runs=0 unfair=0 n0=0 n3=0 n1=0
for ((k = 0; k < PROP_N; k++)); do
	seed=$((SEED + k))
	RANDOM=$seed
	D=$T/c$seed V=$T/v$seed OPS=$T/c$seed.ops
	mkdir -p "$D" "$V"
	FMT=() ROLE=() IMAGES=() UNREC=()
	echo "# seed $seed" >"$OPS"
	if ! build || ! fair; then
		[ -n "${PROP_DEBUG:-}" ] && { echo "# seed $seed unfair"; diag <"$OPS"; }
		unfair=$((unfair + 1)); rm -rf "$D" "$V" "$OPS"; continue
	fi
	if ! save_views; then
		[ -n "${PROP_DEBUG:-}" ] && { echo "# seed $seed: no views"; tail -n 3 "$OPS" | diag; }
		unfair=$((unfair + 1)); rm -rf "$D" "$V" "$OPS"; continue
	fi
	runs=$((runs + 1))
	state
	snap_dir "$D" >"$V/before.sha"
	(cd "$D" && "$IMGRAPH" plan --top "$TOP" --base "$BASE" "${STATED[@]}" .) >"$V/plan.out" 2>&1
	prc=$?
	(cd "$D" && "$IMGRAPH" commit --top "$TOP" --base "$BASE" "${STATED[@]}" --yes -q .) >"$V/commit.out" 2>&1
	crc=$?
	why=""
	[ -n "${PROP_DEBUG:-}" ] && { echo "# seed $seed plan $prc commit $crc"; grep -E "^(create|stated)" "$OPS" | diag; grep -A1 '^  \[' "$V/plan.out" | diag; }
	case $prc in
	0) n0=$((n0 + 1))
	   if [ $crc != 0 ]; then why="plan 0, commit $crc: $(tail -n 3 "$V/commit.out" | tr '\n' ' ')"
	   else why=$(judge_ok); fi ;;
	3|1) [ $prc = 3 ] && n3=$((n3 + 1)) || n1=$((n1 + 1))
	   snap_dir "$D" >"$V/after.sha"
	   if [ $prc = 3 ] && [ $crc != 3 ]; then why="plan 3, commit $crc"
	   elif [ $crc = 0 ]; then why="plan $prc, commit 0"
	   elif ! cmp -s "$V/before.sha" "$V/after.sha"; then
		why="plan $prc, commit $crc wrote: $(diff "$V/before.sha" "$V/after.sha" | grep '^>' | awk '{print $3}' | tr '\n' ' ')"
	   fi ;;
	*) why="plan exit $prc: $(tail -n 3 "$V/plan.out" | tr '\n' ' ')" ;;
	esac
	if [ -z "$why" ]; then
		ok "seed $seed: plan $prc, commit $crc$([ $prc = 0 ] && echo ', views intact, checks clean' || echo ', nothing written')"
	else
		bad=$((bad + 1))
		not_ok "seed $seed: $why"
		{ cat "$OPS"; echo "plan:"; head -c 1500 "$V/plan.out"; } | diag
		if [ -n "${KEEP_FAILED:-}" ]; then
			mkdir -p "$KEEP_FAILED"; cp -a "$D" "$V" "$OPS" "$KEEP_FAILED/"
		fi
	fi
	rm -rf "$D" "$V" "$OPS"
done
echo "# $runs chains: plan 0 in $n0, plan 3 in $n3, plan 1 in $n1; $unfair not fair inputs (skipped); zstd $([ $ZSTD = 1 ] && echo in || echo OUT)"
if [ $bad = 0 ] && [ $runs -gt 0 ]; then
	ok "plan OK => commit succeeds: $runs chains from SEED=$SEED, qemu-img agrees on every one"
else
	not_ok "plan OK => commit succeeds: $bad of $runs chains broke (SEED=$SEED)"
fi

done_testing
