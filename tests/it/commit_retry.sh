#!/usr/bin/env bash
# commit_retry.sh - a commit that fails at any mutating operation leaves
# every image valid: once `imgraph recover` has settled a relink that had
# begun, either the commit is done (vm names base) or running the same
# commit again completes it.
#
# Regression: a write into base that failed after the clusters it would
# fill were counted left them past the end of the file with a refcount of
# 1; the retry allocated from the end of the file, found them counted and
# refused ("new cluster N already has refcount 1").  New clusters now go
# after every counted one.
. "$(dirname "$0")/lib.sh"

mkq "$T/base.qcow2" 64M
qio "$T/base.qcow2" -c 'write -P 0x11 0 8M'
mkq "$T/top.qcow2" 64M base.qcow2
qio "$T/top.qcow2" -c 'write -P 0x22 4M 16M' -c 'write -z 30M 1M'
mkq "$T/vm.qcow2" 64M top.qcow2
qio "$T/vm.qcow2" -c 'write -P 0x33 40M 64k'
guest_raw "$T/vm.qcow2" "$T/vm.raw"
mkdir "$T/orig"
cp "$T"/*.qcow2 "$T/orig/"

# The mutating ops of one clean run, to fail each one of the copy phase.
IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT="$T/count" "$IMGRAPH" commit --yes -q \
	--top "$T/top.qcow2" "$T" >/dev/null 2>&1
n=$(cat "$T/count")
check "clean run counted its ops ($n)" test "${n:-0}" -gt 10
cp "$T"/orig/*.qcow2 "$T/"
for k in $(seq 1 "$n"); do
	cp "$T"/orig/*.qcow2 "$T/"
	rm -rf "$T"/.imgraph-*
	IMGRAPH_FAULT=err:$k:EIO "$IMGRAPH" commit --yes -q --top "$T/top.qcow2" \
		"$T" >/dev/null 2>"$T/e1"
	# A failure after the relink began leaves a journal: recover first.
	"$IMGRAPH" recover "$T" >/dev/null 2>&1
	done_already=$(qemu-img info -U --output=json "$T/vm.qcow2" |
		jq -r '."backing-filename"')
	if [ "$done_already" != base.qcow2 ] &&
		! "$IMGRAPH" commit --yes -q --top "$T/top.qcow2" "$T" >/dev/null \
		2>"$T/e2"; then
		not_ok "op $k failed, then the retry failed"; diag <"$T/e1"; diag <"$T/e2"
		continue
	fi
	# 0 clean, 3 leaks only (what a failed write may leave): both fine.
	qemu-img check "$T/base.qcow2" >"$T/ck" 2>&1; rc=$?
	if [ $rc != 0 ] && [ $rc != 3 ]; then
		not_ok "op $k: base has errors after the retry (check exit $rc)"
		head -5 "$T/ck" | diag; continue
	fi
	if ! qemu-img compare -q -U -f qcow2 -F raw "$T/vm.qcow2" "$T/vm.raw"; then
		not_ok "op $k: vm's view changed"; continue
	fi
	ok "op $k failed: the retry completed, base checks, vm reads as before"
done
done_testing
