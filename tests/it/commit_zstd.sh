#!/usr/bin/env bash
# commit_zstd.sh - chains with zstd-compressed clusters commit like any
# other: zstd in top, in an intermediate, in base; into zlib and zstd bases;
# a base cluster larger than top's, so that a write into base must decode
# the zstd cluster it lands in first.  Judged by qemu-img compare of every
# overlay's guest view and qemu-img check of base.
#
# Regression: the plan said OK, then the commit failed with exit 1 after
# writing part of base ("cluster is zstd-compressed; zstd is not
# supported"), and a zstd base was refused as not writable.
. "$(dirname "$0")/lib.sh"
need_tools qemu-img qemu-io

if ! qemu-img create -q -f qcow2 -o compression_type=zstd "$T/probe.qcow2" 1M 2>/dev/null; then
	skip zstd "qemu-img built without zstd"; done_testing; exit
fi

# chain DIR BASE_CT MID_CT TOP_CT [BASE_CLUSTER]: base <- mid <- top <- vm,
# the compression types of base, mid and top as named; every layer has
# compressed clusters; vm reads through top.
chain() {
	local d=$1 bct=$2 mct=$3 tct=$4 bcl=${5:-65536}
	mkdir -p "$d"
	mkq "$d/base.qcow2" 16M "" -o compression_type=$bct,cluster_size=$bcl
	qio "$d/base.qcow2" -c 'write -c -P 0x11 0 2M' -c 'write -P 0x12 6M 1M'
	mkq "$d/mid.qcow2" 16M base.qcow2 qcow2 -o compression_type=$mct
	qio "$d/mid.qcow2" -c 'write -c -P 0x21 1M 2M' -c 'write -P 0x22 8M 64k'
	mkq "$d/top.qcow2" 16M mid.qcow2 qcow2 -o compression_type=$tct,cluster_size=4096
	qio "$d/top.qcow2" -c 'write -c -P 0x31 4M 1M' -c 'write -P 0x32 100k 4k' \
		-c 'write -c -P 0x33 1540k 8k' -c 'write -z 6M 64k'
	mkq "$d/vm.qcow2" 16M top.qcow2
	qio "$d/vm.qcow2" -c 'write -P 0x41 12M 64k'
	guest_raw "$d/vm.qcow2" "$d/vm.raw"
	guest_raw "$d/top.qcow2" "$d/top.raw"
}

# run NAME BASE_CT MID_CT TOP_CT [BASE_CLUSTER]
run() {
	local n=$1 d=$T/$1
	chain "$d" "$2" "$3" "$4" "${5:-}"
	check_rc "$n: plan runs" 0 "$IMGRAPH" plan --top "$d/top.qcow2" --base "$d/base.qcow2" "$d"
	check_rc "$n: commit exits 0" 0 "$IMGRAPH" commit --yes -q --top "$d/top.qcow2" \
		--base "$d/base.qcow2" "$d"
	check "$n: vm reads as before" qemu-img compare -q -U -f qcow2 -F raw "$d/vm.qcow2" "$d/vm.raw"
	check "$n: base holds top's view" qemu-img compare -q -U -f qcow2 -F raw "$d/base.qcow2" "$d/top.raw"
	qcheck "$n: base checks clean" "$d/base.qcow2"
	check_eq "$n: base keeps its compression type" \
		"$(qemu-img info -U --output=json "$d/base.qcow2" | jq -r '."format-specific".data."compression-type"')" "$2"
}

run zstd-top-zlib-base zlib zlib zstd
run zstd-mid-zlib-base zlib zstd zlib
run zstd-all zstd zstd zstd
# Base clusters of 256k, top's of 4k: each write into base lands inside a
# compressed zstd cluster, which is decoded and rewritten whole.
run zstd-base-big-cluster zstd zlib zstd 262144

done_testing
