# tests/it/lib_commit.sh - fixtures and qemu-img judges for the commit,
# recover and crash scripts (sourced after lib.sh).
#
# The fixture: base <- mid <- top in DIR, and N overlays of top spread over
# DIR/d0, DIR/d1, DIR/d2/deep, DIR/d3, every other one named by an absolute
# path, the rest relative.  Every layer writes a distinct pattern; mid has a
# compressed cluster, top has a zero cluster and a discard over base data
# and a partial-cluster write.  A sibling pool image outside the plan
# (other.qcow2 on its own base) checks that nothing else is written.

# fixture_build DIR N [extra qemu-img create opts for every qcow2...]
fixture_build() {
	local d=$1 n=$2 i sub name; shift 2
	mkdir -p "$d/d0" "$d/d1" "$d/d2/deep" "$d/d3"
	qemu-img create -q -f qcow2 "$@" "$d/base.qcow2" 16M || return 1
	qemu-io -f qcow2 -c 'write -P 0x11 0 2M' -c 'write -P 0x12 6M 1M' \
		-c 'write -P 0x13 12M 512k' "$d/base.qcow2" >/dev/null || return 1
	qemu-img create -q -f qcow2 "$@" -b base.qcow2 -F qcow2 "$d/mid.qcow2" 16M
	qemu-io -f qcow2 -c 'write -c -P 0xa1 4M 2M' -c 'write -P 0xa2 8M 512k' \
		-c 'write -P 0xa3 1536k 64k' "$d/mid.qcow2" >/dev/null || return 1
	qemu-img create -q -f qcow2 "$@" -b mid.qcow2 -F qcow2 "$d/top.qcow2" 16M
	qemu-io -f qcow2 -c 'write -P 0xb1 1M 1M' -c 'write -z 0 64k' \
		-c 'discard 6M 64k' -c 'write -P 0xb2 12289k 3k' \
		-c 'write -z 8M 128k' "$d/top.qcow2" >/dev/null || return 1
	for ((i = 0; i < n; i++)); do
		case $((i % 4)) in
		0) sub=d0; name=../top.qcow2 ;;
		1) sub=d1; name=$d/top.qcow2 ;;
		2) sub=d2/deep; name=../../top.qcow2 ;;
		3) sub=d3; name=$d/top.qcow2 ;;
		esac
		[ $((i % 2)) = 1 ] && name=$d/top.qcow2
		qemu-img create -q -f qcow2 "$@" -b "$name" -F qcow2 \
			"$d/$sub/ovl$i.qcow2" 16M || return 1
		qemu-io -f qcow2 -c "write -P $((0x40 + i)) $((i * 64 + 64))k 4k" \
			"$d/$sub/ovl$i.qcow2" >/dev/null || return 1
	done
	qemu-img create -q -f qcow2 "$d/obase.qcow2" 16M
	qemu-io -f qcow2 -c 'write -P 0x77 0 1M' "$d/obase.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -b obase.qcow2 -F qcow2 "$d/other.qcow2" 16M
}

# fixture_users DIR: DIR/users.yaml with a backup reading top (repointed by
# a commit) and a VM on other.qcow2 (kept), after a comment line.
fixture_users() {
	cat >"$1/users.yaml" <<'EOF'
# who uses what
users:
  - name: nightly-backup
    kind: backup
    image: top.qcow2
    perm: [consistent-read]
    shared: [consistent-read, write-unchanged]
  - name: other-vm
    kind: vm
    image: other.qcow2
EOF
}

# fixture_overlays DIR: every overlay of the fixture, one per line.
fixture_overlays() { find "$1" -name 'ovl*.qcow2' | sort; }

# fixture_save DIR VIEWS: guest views of every overlay and of top, plus the
# hashes of the files outside the plan.
fixture_save() {
	local d=$1 v=$2 o
	mkdir -p "$v"
	for o in $(fixture_overlays "$d"); do
		qemu-img convert -U -O raw "$o" "$v/$(basename "$o").raw"
	done
	qemu-img convert -U -O raw "$d/top.qcow2" "$v/top.raw"
	sha256sum "$d/obase.qcow2" "$d/other.qcow2" >"$v/outside.sha"
}

# backing_of IMAGE: the backing path as qemu-img resolves it (realpath).
backing_of() {
	local b
	# sed, not python: this runs thousands of times in the crash matrices
	b=$(qemu-img info -U --output=json "$1" 2>/dev/null |
	    sed -n 's/^ *"full-backing-filename": "\(.*\)",*$/\1/p')
	[ -n "$b" ] && realpath -m "$b"
}

# fixture_verify NAME DIR VIEWS WANT: WANT is base|mid|top|same.  Judged only
# with qemu-img: guest views, every header on one side, check clean (leaks
# allowed), the outside untouched, no journal left.  Prints one TAP line
# per property; returns nonzero when any failed.
fixture_verify() {
	local n=$1 d=$2 v=$3 want=$4 o bad=0 side first="" rc f
	for o in $(fixture_overlays "$d"); do
		if ! qemu-img compare -U -q -f qcow2 -F raw "$o" \
			"$v/$(basename "$o").raw" 2>/dev/null; then
			echo "# $o: guest view changed"; bad=1
		fi
	done
	[ $bad = 0 ] && ok "$n: every overlay's guest view unchanged" ||
		not_ok "$n: every overlay's guest view unchanged"
	bad=0
	for o in $(fixture_overlays "$d"); do
		side=$(backing_of "$o")
		case "$side" in
		"$(realpath "$d/base.qcow2")") side=base ;;
		"$(realpath "$d/top.qcow2")") side=top ;;
		"$(realpath "$d/mid.qcow2")") side=mid ;;
		*) echo "# $o: backing '$side'"; bad=1 ;;
		esac
		[ -z "$first" ] && first=$side
		[ "$side" != "$first" ] && { echo "# $o: $side, others $first"; bad=1; }
	done
	if [ "$want" != same ] && [ "$first" != "$want" ]; then bad=1; fi
	[ $bad = 0 ] && ok "$n: all overlays on ${first:-?} (want $want)" ||
		not_ok "$n: all overlays on one side (got ${first:-?}, want $want)"
	if [ "$first" = base ] && [ -f "$v/top.raw" ]; then
		qemu-img compare -U -q -f qcow2 -F raw "$d/base.qcow2" "$v/top.raw" \
			>/dev/null 2>&1 && ok "$n: base shows top's old view" ||
			not_ok "$n: base shows top's old view"
	fi
	bad=0
	# (the trash is judged apart: its images' backing names lead nowhere
	# until they are put back)
	for f in $(find "$d" -name '*.qcow2' -not -path '*/.imgraph-trash/*'); do
		qemu-img check -U -q "$f" >/dev/null 2>&1; rc=$?
		if [ $rc != 0 ] && [ $rc != 3 ]; then
			echo "# $f: qemu-img check rc=$rc"; qemu-img check -U "$f" 2>&1 | head -5 | diag; bad=1
		fi
	done
	[ $bad = 0 ] && ok "$n: qemu-img check: no corruption" ||
		not_ok "$n: qemu-img check: no corruption"
	sha256sum --quiet -c "$v/outside.sha" >/dev/null 2>&1 &&
		ok "$n: files outside the plan untouched" ||
		not_ok "$n: files outside the plan untouched"
	if ls -a "$d" | grep -v '\.bad$' | grep -q '^\.imgraph-journal-'; then
		not_ok "$n: no journal left"
	else
		ok "$n: no journal left"
	fi
}

# quiet_verify DIR VIEWS [WANT [TEMPLATE]]: the same judges, silent and
# faster (for the crash matrices, one TAP line per batch of runs): prints
# the first failed property and returns 1.  With TEMPLATE (the pool as
# built, already judged clean), qemu-img check runs only on files that
# differ from it; checks and compares run 4 at a time.
quiet_verify() {
	local d=$1 v=$2 want=${3:-same} tpl=${4:-} o side first="" f rel
	local rb rt rm
	rb=$(realpath "$d/base.qcow2"); rt=$(realpath "$d/top.qcow2")
	rm=$(realpath "$d/mid.qcow2")
	if ! fixture_overlays "$d" | xargs -P 4 -I{} sh -c \
		'qemu-img compare -U -q -f qcow2 -F raw "$1" "$2/$(basename "$1").raw" >/dev/null 2>&1 || { echo "# $1: guest view changed"; exit 1; }' _ {} "$v"; then
		echo "not ok - guest view changed"; return 1
	fi
	for o in $(fixture_overlays "$d"); do
		side=$(backing_of "$o")
		case "$side" in
		"$rb") side=base ;; "$rt") side=top ;; "$rm") side=mid ;;
		*) echo "not ok - $o: backing '$side'"; return 1 ;;
		esac
		[ -z "$first" ] && first=$side
		if [ "$side" != "$first" ]; then
			echo "not ok - mixed: $o on $side, others on $first"; return 1
		fi
	done
	if [ "$want" != same ] && [ "$first" != "$want" ]; then
		echo "not ok - overlays on $first, want $want"; return 1
	fi
	if [ "$first" = base ] && ! qemu-img compare -U -q -f qcow2 -F raw \
		"$d/base.qcow2" "$v/top.raw" >/dev/null 2>&1; then
		echo "not ok - base does not show top's old view"; return 1
	fi
	for f in $(cd "$d" && find . -name '*.qcow2' -not -path '*/.imgraph-trash/*'); do
		if [ -n "$tpl" ] && cmp -s "$d/$f" "$tpl/$f"; then continue; fi
		echo "$d/$f"
	done | xargs -r -P 4 -I{} sh -c 'qemu-img check -U -q "$1" >/dev/null 2>&1; rc=$?; [ $rc = 0 ] || [ $rc = 3 ] || { echo "# $1: check rc=$rc"; exit 1; }' _ {} >"$d.chk" 2>&1
	if [ -s "$d.chk" ]; then
		echo "not ok - qemu-img check:"; cat "$d.chk"; return 1
	fi
	if ! sha256sum --quiet -c "$v/outside.sha" >/dev/null 2>&1; then
		echo "not ok - files outside the plan changed"; return 1
	fi
	if ls -a "$d" | grep -v '\.bad$' | grep -q '^\.imgraph-journal-'; then
		echo "not ok - journal left"; return 1
	fi
	return 0
}
