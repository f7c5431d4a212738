#!/bin/bash
# plan_basic.sh - imgraph plan on real qemu-img pools: the exact verdict of
# each scenario (exit code, conflict kind, node, parties, permissions) and
# that no file changed (hash of every file before and after each run).
. "$(dirname "$0")/lib.sh"

P=$T/pool
mkdir -p "$P"
cd "$P" || exit 1

# Every run must leave every byte of the pool alone.
plan_rc() { # NAME RC ARGS...
	local n=$1 want=$2
	shift 2
	snap_dir "$P" > "$T/h_before"
	check_rc "$n" "$want" "$IMGRAPH" plan "$@"
	snap_dir "$P" > "$T/h_after"
	if cmp -s "$T/h_before" "$T/h_after"; then ok "$n: no file changed"
	else not_ok "$n: a file changed"; diff "$T/h_before" "$T/h_after" | diag; fi
}
same_file() { [ "$(stat -L -c %d:%i "$1")" = "$(stat -L -c %d:%i "$2")" ]; }

# ---- a plain chain -------------------------------------------------------
mkq base.qcow2 1M
qio base.qcow2 -c 'write -P 0x11 0 64k'
mkq mid.qcow2 1M base.qcow2 qcow2
qio mid.qcow2 -c 'write -P 0x22 64k 64k'
mkq top.qcow2 2M mid.qcow2 qcow2
qio top.qcow2 -c 'write -P 0x33 128k 64k' -c 'write -z 256k 64k'
plan_rc "plain chain: runnable" 0 --top top.qcow2 --base base.qcow2
cp "$T/.out" "$T/p1"
check_grep "intermediates" '^intermediates: +mid\.qcow2$' "$T/p1"
# 64k (mid) + 64k data + 64k zero (top), as qemu-img map shows above base
above=$(qemu-img map -U --output=json top.qcow2 | grep -c '"depth": [01],.*"present": true')
check_grep "bytes to copy = allocated above base (192 KiB)" \
	'^bytes to copy: +192 KiB \(196608 bytes\)$' "$T/p1"
check_grep "base growth 1 MiB -> 2 MiB" '^base growth: +1 MiB -> 2 MiB$' "$T/p1"
check_grep "leaf top: kept, relinked onto base, emptied" \
	"top\.qcow2 \(top itself, emptied\): 'mid\.qcow2' \(qcow2\) -> 'base\.qcow2' \(qcow2\)  \[relative\]" "$T/p1"
check_grep "no conflicts" '^conflicts: none' "$T/p1"
[ "$above" -ge 2 ] && ok "qemu-img map agrees data lies above base" || not_ok "qemu-img map: $above extents above base"
plan_rc "default base is top's backing file" 0 --top top.qcow2
check_grep "base = mid" '^base: +mid\.qcow2' "$T/.out"
plan_rc "--drop-top: no parents" 0 --top top.qcow2 --base base.qcow2 --drop-top
check_grep "drop-top listed" 'parents relinked to base \(0\)' "$T/.out"
plan_rc "json output" 0 --top top.qcow2 --base base.qcow2 --output=json
check_grep "json: runnable" '"runnable": true' "$T/.out"
check_grep "json: new backing and format" '"new-backing": "base\.qcow2"' "$T/.out"
check_grep "json: exact bytes" '"bytes-to-copy": 196608' "$T/.out"
plan_rc "yaml output" 0 --top top.qcow2 --base base.qcow2 --output=yaml
check_grep "yaml: runnable" '^runnable: true' "$T/.out"

# ---- invalid pairs (distinct from errors) --------------------------------
plan_rc "top == base" 3 --top top.qcow2 --base top.qcow2
check_grep "QEMU's message" 'Invalid files for merge: top and base are the same' "$T/.out"
plan_rc "reversed" 3 --top base.qcow2 --base top.qcow2
check_grep "reversed named" "Did not find 'top\.qcow2' in the backing chain of 'base\.qcow2': it is above it" "$T/.out"
plan_rc "bottom image as top" 3 --top base.qcow2
check_grep "no backing file" 'Image does not have a backing file' "$T/.out"
plan_rc "nonexistent top is an error" 1 --top nope.qcow2
check_grep "names the file" 'nope\.qcow2: cannot stat --top' "$T/.err"
plan_rc "missing --top is a usage error" 2 --base base.qcow2
mkdir -p "$T/elsewhere"
mkq "$T/elsewhere/x.qcow2" 1M
# The directories of top and base are scanned whatever PATHs say.
plan_rc "PATH elsewhere: top's directory scanned too" 0 --top top.qcow2 --base base.qcow2 "$T/elsewhere"
check_grep "lists both directories" "^pool scanned: +$(realpath "$T")/elsewhere/, $(realpath "$P")/\$" "$T/.out"
check_grep "says what it cannot see" "readers outside these directories cannot be seen" "$T/.out"
check_rc "json lists them" 0 "$IMGRAPH" plan --output=json --top top.qcow2 --base base.qcow2 "$T/elsewhere"
check "json: scanned directories" sh -c "jq -e '.scanned.directories == [\"$(realpath "$T")/elsewhere\", \"$(realpath "$P")\"] and (.scanned.note | test(\"outside\"))' '$T/.out' >/dev/null"

# ---- a sibling of base, an overlay of an intermediate ---------------------
mkdir -p b1
mkq b1/sib.qcow2 1M ../base.qcow2 qcow2
plan_rc "sibling of base: conflict" 3 -r --top top.qcow2 --base base.qcow2 .
cp "$T/.out" "$T/p2"
check_grep "QEMU wording, sibling named" \
	"Permission conflict on node 'base\.qcow2': permissions 'write, resize' are both required by commit job 'commit' \(uses node 'base\.qcow2' as 'base' child\) and unshared by node 'b1/sib\.qcow2' \(uses node 'base\.qcow2' as 'backing' child\)\." "$T/p2"
check_grep "permissions line (base grows: resize too)" '^      permissions: write, resize$' "$T/p2"
check_grep "why" "why: 'b1/sib\.qcow2' reads 'base\.qcow2' as its backing file" "$T/p2"
check_grep "hint" '^      hint: ' "$T/p2"
plan_rc "sibling outside the default pool is not seen without -r" 0 \
	--top top.qcow2 --base base.qcow2
rm -rf b1
mkq ov-mid.qcow2 1M mid.qcow2 qcow2
plan_rc "overlay of an intermediate: conflict" 3 --top top.qcow2 --base base.qcow2
check_grep "consistent read unshared by the job" \
	"Permission conflict on node 'mid\.qcow2': permissions 'consistent read' are both required by node 'ov-mid\.qcow2' \(uses node 'mid\.qcow2' as 'backing' child\) and unshared by commit job 'commit' \(uses node 'mid\.qcow2' as 'intermediate node' child\)\." "$T/.out"
plan_rc "committing into mid makes it a sibling of base" 3 --top top.qcow2 --base mid.qcow2
check_grep "now as 'base' child" "required by commit job 'commit' \(uses node 'mid\.qcow2' as 'base' child\) and unshared by node 'ov-mid\.qcow2'" "$T/.out"
rm -f ov-mid.qcow2

# ---- 2 and 8 overlays of top in other dirs, relative and absolute ---------
relink_check() { # N
	local n=$1 i d name line ov new kind old bad=0 cnt=0
	rm -rf o; mkdir o
	for ((i = 1; i <= n; i++)); do
		d=o/d$i/$( ((i % 2)) && echo deeper || echo x)
		mkdir -p "$d"
		if ((i % 3 == 0)); then name=$P/top.qcow2
		else name=$(realpath --relative-to="$d" "$P/top.qcow2"); fi
		mkq "$d/ov$i.qcow2" 2M "$name" qcow2
	done
	plan_rc "$n overlays of top: runnable" 0 -r --top top.qcow2 --base base.qcow2 .
	cp "$T/.out" "$T/pn"
	check_grep "$n overlays: all listed" "^parents relinked to base \($n\):" "$T/pn"
	while IFS= read -r line; do
		ov=${line%%: *}; ov=${ov#  }
		old=$(qemu-img info -U "$ov" | sed -n 's/^backing file: //p')
		new=$(printf '%s\n' "$line" | sed -n "s/.* -> '\(.*\)' (qcow2)  \[\(relative\|absolute\)\]$/\1/p")
		kind=$(printf '%s\n' "$line" | sed -n 's/.*\[\(relative\|absolute\)\]$/\1/p')
		cnt=$((cnt + 1))
		# resolves to base from the overlay's own directory
		( cd "$(dirname "$ov")" && same_file "$new" "$P/base.qcow2" ) || { bad=1; echo "# $ov: '$new' is not base"; }
		case $old in
		/*) [ "$kind" = absolute ] && [ "${new#/}" != "$new" ] || { bad=1; echo "# $ov: absolute not kept"; } ;;
		*) [ "$kind" = relative ] && [ "${new#/}" = "$new" ] || { bad=1; echo "# $ov: relative not kept"; } ;;
		esac
	done < <(grep "^  o/.*: '.*' (qcow2) -> " "$T/pn")
	check_eq "$n overlays: one line each" "$cnt" "$n"
	check_eq "$n overlays: each new name resolves to base, kind kept" "$bad" 0
	# qemu-img judges one of them on a copy: after rebase -u to the new
	# string, its chain reaches base.
	line=$(grep -m1 "^  o/.*\[relative\]" "$T/pn")
	ov=${line%%: *}; ov=${ov#  }
	new=$(printf '%s\n' "$line" | sed -n "s/.* -> '\(.*\)' (qcow2)  \[relative\]$/\1/p")
	rm -rf "$T/copy"; cp -a "$P" "$T/copy"
	( cd "$T/copy" && qemu-img rebase -q -u -b "$new" -F qcow2 "$ov" &&
	  qemu-img info -U --backing-chain "$ov" | grep -q "^image: .*base\.qcow2$" )
	check_eq "$n overlays: qemu-img follows the new string to base" $? 0
}
relink_check 2
relink_check 8
rm -rf o "$T/copy"

# Overlays naming top through other spellings are parents of the same node
# (dev:ino): via a symlink, with ./ and ../, absolute (C-29).
ln -s top.qcow2 top-alias.qcow2
mkdir -p a1 a2
mkq a1/v1.qcow2 2M ../top-alias.qcow2 qcow2
mkq a2/v2.qcow2 2M ./../a1/../top.qcow2 qcow2
mkq v3.qcow2 2M "$P/./top.qcow2" qcow2
plan_rc "spellings of top: one node, runnable" 0 -r --top top-alias.qcow2 --base base.qcow2 .
check_grep "three parents" '^parents relinked to base \(3\):' "$T/.out"
check_grep "via symlink" "^  a1/v1\.qcow2: '\.\./top-alias\.qcow2' \(qcow2\) -> '\.\./base\.qcow2' \(qcow2\)  \[relative\]" "$T/.out"
check_grep "with ./ and ../" "^  a2/v2\.qcow2: '\./\.\./a1/\.\./top\.qcow2' \(qcow2\) -> '\.\./base\.qcow2' \(qcow2\)  \[relative\]" "$T/.out"
check_grep "absolute stays absolute" "^  v3\.qcow2: '$P/\./top\.qcow2' \(qcow2\) -> '$(realpath "$P")/base\.qcow2' \(qcow2\)  \[absolute\]" "$T/.out"
rm -rf a1 a2 v3.qcow2 top-alias.qcow2

# ---- users file -----------------------------------------------------------
cat > users.yaml <<'EOF'
# who uses what
users:
  - name: vm-web01
    kind: vm
    image: base.qcow2
    perm: [consistent-read, write]
    shared: [consistent-read, write-unchanged]
EOF
plan_rc "VM writing base: conflict" 3 --users users.yaml --top top.qcow2 --base base.qcow2
check_grep "names the user" "\[permission\] Failed to get \"write\" lock on 'base\.qcow2': user 'vm-web01' \(vm, users\.yaml line 3\) declares perm 'consistent read, write', shared 'consistent read, write unchanged'" "$T/.out"
check_rc "tree shows the user" 0 "$IMGRAPH" tree --users users.yaml
check_grep "user line" "\^ user 'vm-web01' \(vm\): perm 'consistent read, write'" "$T/.out"
check_grep "in use flag" '^base\.qcow2 .*\[in use\]' "$T/.out"
cat > users.yaml <<'EOF'
users:
  - name: vm-top
    kind: vm
    image: ./top.qcow2   # written with ./
EOF
plan_rc "VM on top: relinked, runnable" 0 --users users.yaml --top top.qcow2 --base mid.qcow2
check_grep "user listed as a parent" "user 'vm-top' in users\.yaml: '\./top\.qcow2' -> 'mid\.qcow2'  \[relative\]" "$T/.out"
printf 'users:\n  - name: x\n    image: top.qcow2\n    perm: [write, graph-mod]\n' > users.yaml
plan_rc "bad users file is an error" 1 --users users.yaml --top top.qcow2
check_grep "file:line:column" "users\.yaml:4:19: 'perm': unknown permission 'graph-mod'" "$T/.err"
rm -f users.yaml

# ---- image states and formats ---------------------------------------------
cp base.qcow2 "$T/base.save"
printf '\x02' | dd of=base.qcow2 bs=1 seek=79 conv=notrunc status=none
plan_rc "corrupt base: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "corrupt named" "\[image-state\] base 'base\.qcow2' cannot be written: 'base\.qcow2' is marked corrupt" "$T/.out"
printf '\x01' | dd of=base.qcow2 bs=1 seek=79 conv=notrunc status=none
plan_rc "dirty base: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "dirty named, repair hint" "dirty bit.*|hint: Repair it first: qemu-img check -r all" "$T/.out"
cp "$T/base.save" base.qcow2
qemu-img snapshot -c snap1 base.qcow2
plan_rc "base with internal snapshots: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "snapshots named" "has 1 internal snapshot" "$T/.out"
cp "$T/base.save" base.qcow2
# mid names base without recording its format
off=$(grep -obUaP '\xe2\x79\x2a\xca' mid.qcow2 | head -1 | cut -d: -f1)
printf '\0\0\0\0' | dd of=mid.qcow2 bs=1 seek="$off" conv=notrunc status=none
plan_rc "unrecorded backing format on the path: refused" 3 --top top.qcow2 --base base.qcow2
check_grep "format conflict" "\[format\] 'mid\.qcow2' does not record the format of its backing file 'base\.qcow2' \(probed as qcow2\)" "$T/.out"
qemu-img rebase -u -b base.qcow2 -F qcow2 mid.qcow2

# ---- relink feasibility ---------------------------------------------------
L=$(printf 'l%.0s' $(seq 1 200))
mkdir -p "$L/$L"
mkq "$L/$L/deepbase.qcow2" 1M
mkq deeptop.qcow2 1M "$L/$L/deepbase.qcow2" qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 -b deeptop.qcow2 -F qcow2 small.qcow2 1M
plan_rc "no room for the new name in a 512-byte header cluster" 3 -r \
	--top deeptop.qcow2 --base "$L/$L/deepbase.qcow2" .
check_grep "relink conflict" "\[relink\] 'small\.qcow2': no room in the header cluster" "$T/.out"
rm -rf "$L" deeptop.qcow2 small.qcow2

mkdir -p ro
mkq ro/ov.qcow2 2M ../top.qcow2 qcow2
ro_ok=0
if [ "$(id -u)" != 0 ]; then
	chmod 444 ro/ov.qcow2 && ro_ok=1
elif chattr +i ro/ov.qcow2 2>/dev/null; then
	ro_ok=2
	trap 'chattr -i "$P/ro/ov.qcow2" 2>/dev/null; rm -rf "$T"' EXIT
fi
if [ $ro_ok != 0 ]; then
	plan_rc "read-only overlay: relink refused" 3 -r --top top.qcow2 --base base.qcow2 .
	check_grep "says it cannot be written" "\[relink\] 'ro/ov\.qcow2' cannot be opened for writing" "$T/.out"
	check_grep "tree flags it read-only" 'ro/ov\.qcow2 .*read-only' <("$IMGRAPH" tree -r .; echo)
	[ $ro_ok = 2 ] && chattr -i ro/ov.qcow2
elif command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
	# root without chattr support: a read-only bind mount in a private
	# mount namespace
	unshare -m bash -c "mount --bind -o ro '$P/ro' '$P/ro' && cd '$P' &&
		'$IMGRAPH' plan -r --top top.qcow2 --base base.qcow2 ." > "$T/ro.out" 2>&1
	check_eq "read-only bind mount: relink refused (rc)" $? 3
	check_grep "read-only file system named" "'ro/ov\.qcow2' cannot be opened for writing: Read-only file system" "$T/ro.out"
else
	echo "ok - # SKIP cannot make a file read-only for root here (no chattr, no unshare)"
fi
rm -rf ro
done_testing
