#!/usr/bin/env bash
# formats_write.sh - `imgraph create` and the qcow2 write path, judged by
# qemu-img.
#   * images made by `imgraph create` (every option) pass `qemu-img check`
#     and `qemu-img info` shows the options;
#   * the same operations applied through our driver (tests/tools/
#     fmt_tool.c) and through qemu-io to twin images
#     give guest views that `qemu-img compare` finds identical, and our
#     image checks clean;
#   * power cuts (IMGRAPH_FAULT=cut:K:SEED, unsynced writes undone at
#     random) at every mutating op of a workload that grows the L1 and the
#     refcount table never leave a corrupt image: qemu-img check says 0
#     (clean) or 3 (leaks only), and the image stays readable.
# IMGRAPH_LONG=1: four seeds per cut point and every op of workload 2
# (several minutes); by default workload 2 is sampled.
. "$(dirname "$0")/lib.sh"

need_fmt_tool
cd "$T" || exit 1

# ---- create ------------------------------------------------------------
i=0
for o in "" "cluster_size=512" "compat=0.10" "compat=0.10,cluster_size=512" \
	"extended_l2=on" "extended_l2=on,cluster_size=16k" \
	"refcount_bits=1" "refcount_bits=64,cluster_size=4k" \
	"cluster_size=2M,refcount_bits=8" "compression_type=zlib"; do
	i=$((i + 1))
	check_rc "create -o '$o'" 0 "$IMGRAPH" create -q -f qcow2 ${o:+-o "$o"} c$i.qcow2 3G
	qcheck "create -o '$o': qemu-img check" c$i.qcow2
	qemu-img info --output=json c$i.qcow2 >info$i.json
	check_grep "create -o '$o': virtual size" '"virtual-size": 3221225472' info$i.json
	case $o in
	*cluster_size=512*) check_grep "cluster 512" '"cluster-size": 512' info$i.json;;
	*cluster_size=16k*) check_grep "cluster 16k" '"cluster-size": 16384' info$i.json;;
	*cluster_size=2M*) check_grep "cluster 2M" '"cluster-size": 2097152' info$i.json;;
	esac
	case $o in *compat=0.10*) check_grep "compat 0.10" '"compat": "0.10"' info$i.json;;
	*) check_grep "compat 1.1" '"compat": "1.1"' info$i.json;; esac
	case $o in *extended_l2=on*) check_grep "extended l2" '"extended-l2": true' info$i.json;; esac
	case $o in *refcount_bits=1,*|*refcount_bits=1) check_grep "refcount bits 1" '"refcount-bits": 1,' info$i.json;; esac
	case $o in *refcount_bits=64*) check_grep "refcount bits 64" '"refcount-bits": 64' info$i.json;; esac
done

check_rc "create raw" 0 "$IMGRAPH" create -q -f raw r.raw 10M
check_eq "raw size" "$(stat -c %s r.raw)" 10485760
check_rc "create: -b without -F refused" 1 "$IMGRAPH" create -q -f qcow2 -b c1.qcow2 nofmt.qcow2
check_grep "  ... qemu's wording" "Backing file specified without backing format" "$T/.err"
check "  ... nothing created" test ! -e nofmt.qcow2
check_rc "create: extended_l2 with 8k clusters refused" 1 "$IMGRAPH" create -q -f qcow2 -o extended_l2=on,cluster_size=8k x.qcow2 1M
check_grep "  ... says why" "16384" "$T/.err"
check_rc "create: refcount_bits=8 with compat=0.10 refused" 1 "$IMGRAPH" create -q -f qcow2 -o compat=0.10,refcount_bits=8 x.qcow2 1M
check_rc "create: zstd refused" 2 "$IMGRAPH" create -q -f qcow2 -o compression_type=zstd x.qcow2 1M
check_rc "create: bad cluster size refused" 1 "$IMGRAPH" create -q -f qcow2 -o cluster_size=1000 x.qcow2 1M
check_rc "create: unknown option" 2 "$IMGRAPH" create -q -f qcow2 -o foo=1 x.qcow2 1M
check_rc "create: missing size" 2 "$IMGRAPH" create -q -f qcow2 x.qcow2
check_rc "create: qcow2 options for raw refused" 2 "$IMGRAPH" create -q -f raw -o cluster_size=4k x.raw 1M
check_rc "create --help" 0 "$IMGRAPH" create --help

mkdir -p sub
check_rc "create -b with size from the backing file (relative to the image)" 0 \
	"$IMGRAPH" create -q -f qcow2 -b ../c1.qcow2 -F qcow2 sub/ov.qcow2
qemu-img info --output=json sub/ov.qcow2 >ov.json
check_grep "  ... virtual size taken from the backing file" '"virtual-size": 3221225472' ov.json
check_grep "  ... backing name recorded" '"backing-filename": "../c1.qcow2"' ov.json
check_grep "  ... backing format recorded" '"backing-filename-format": "qcow2"' ov.json
qcheck "  ... qemu-img check" sub/ov.qcow2
check_rc "create -b raw backing, v2" 0 "$IMGRAPH" create -q -f qcow2 -o compat=0.10 -b r.raw -F raw ov2.qcow2
check_grep "  ... raw size" '"virtual-size": 10485760' <(qemu-img info --output=json ov2.qcow2)
check_grep "  ... backing fmt raw in a v2 image" '"backing-filename-format": "raw"' <(qemu-img info --output=json ov2.qcow2)
cp c1.qcow2 self.qcow2
before=$(sha256sum self.qcow2)
check_rc "create: image as its own backing file refused" 1 "$IMGRAPH" create -q -f qcow2 -b self.qcow2 -F qcow2 self.qcow2
check_eq "  ... and left alone" "$(sha256sum self.qcow2)" "$before"
check_rc "create: missing backing file refused (like qemu-img)" 1 "$IMGRAPH" create -q -f qcow2 -b missing.qcow2 -F qcow2 m.qcow2 1M
check_grep "  ... says how to skip the check" "-u" "$T/.err"
check_rc "create: backing opened with the declared format (raw as qcow2 refused)" 1 "$IMGRAPH" create -q -f qcow2 -b r.raw -F qcow2 m.qcow2
check_rc "create -u: missing backing file accepted with a size" 0 "$IMGRAPH" create -q -u -f qcow2 -b missing.qcow2 -F qcow2 m.qcow2 1M
check_grep "  ... recorded" '"backing-filename": "missing.qcow2"' <(qemu-img info -U --output=json m.qcow2 2>/dev/null)
long=$(printf 'n%.0s' $(seq 1023))
check_rc "create with a 1023-byte backing name" 0 "$IMGRAPH" create -q -u -f qcow2 -b "$long" -F qcow2 l.qcow2 1M
check_grep "  ... qemu-img reads it" "\"backing-filename\": \"$long\"" <(qemu-img info -U --output=json l.qcow2 2>/dev/null)
check_rc "create with a 1024-byte backing name refused" 1 "$IMGRAPH" create -q -u -f qcow2 -b "${long}n" -F qcow2 l2.qcow2 1M
check_grep "  ... documented message" "backing name is 1024 bytes; qcow2 allows at most 1023" "$T/.err"

# ---- our writes vs qemu-io's on twin images -----------------------------
# twin NAME "create opts" SIZE OPS...: ops as for the tool (w/z/g).
twin() {
	local n=$1 opts=$2 size=$3; shift 3
	qemu-img create -q -f qcow2 ${opts:+-o "$opts"} ours.qcow2 "$size"
	cp ours.qcow2 theirs.qcow2
	local args=() op
	for op in "$@"; do
		IFS=: read -r k a b c <<<"$op"
		case $k in
		w) args+=(-c "write -P $c $a $b");;
		z) args+=(-c "write -z $a $b");;
		g) [ ${#args[@]} -gt 0 ] && qemu-io -f qcow2 "${args[@]}" theirs.qcow2 >/dev/null
		   args=(); qemu-img resize -q theirs.qcow2 "$a";;
		esac
	done
	[ ${#args[@]} -gt 0 ] && qemu-io -f qcow2 "${args[@]}" theirs.qcow2 >/dev/null
	check "$n: driver ops succeed" "$FMT_TOOL" ops ours.qcow2 "$@"
	check "$n: qemu-img compare with qemu-io's twin" qemu-img compare -q ours.qcow2 theirs.qcow2
	qcheck "$n: qemu-img check" ours.qcow2
}
twin "v3 64k" "" 64M w:0:1M:0x11 w:100000:5000:0x22 z:65536:131072 w:3M:64k:0x33 z:3M:1000 w:60M:4M:0x44
twin "v2 512" "compat=0.10,cluster_size=512" 8M w:0:1M:0x11 w:1000:3:0x22 z:4096:8192 w:7M:1M:0x33 z:0:512
twin "grow 512/rc64" "cluster_size=512,refcount_bits=64" 256k w:0:100k:0x11 g:32M w:20M:2M:0x22 w:31M:1M:0x23 z:0:50k g:40M w:39M:1M:0x24
twin "extended l2" "extended_l2=on,cluster_size=32k" 16M w:0:3000:0x11 w:4096:1024:0x12 z:8192:1024 w:1M:2M:0x13 z:2M:64k w:15M:1M:0x14
twin "refcount_bits=1" "refcount_bits=1,cluster_size=4k" 8M w:0:1M:0x11 z:4096:8192 w:512k:4097:0x12
# The driver holds the L1 in a few windows of 512 entries (16 MiB of guest
# each with 512-byte clusters): writes in more windows than it caches, back
# to an evicted one, zeroes over two of them, then growth that copies all
# sixteen windows into the new table, and writes on both sides of the old end.
twin "L1 windows 512" "cluster_size=512" 256M w:0:1M:0x11 w:100M:1M:0x12 \
	w:200M:1M:0x13 w:250M:1M:0x14 w:50M:1M:0x15 w:500k:1M:0x16 z:100M:40M \
	w:16383k:2M:0x17 g:600M w:590M:1M:0x18 w:255M:2M:0x19 w:10M:1M:0x1a

# Compressed clusters made by qemu-io, overwritten through the driver.
qemu-img create -q -f qcow2 -o cluster_size=4096 ours.qcow2 1M
qemu-io -f qcow2 -c 'write -c -P 0x11 0 64k' -c 'write -c -P 0x22 64k 64k' ours.qcow2 >/dev/null
cp ours.qcow2 theirs.qcow2
check "compressed: overwrite partial/whole/zero" "$FMT_TOOL" ops ours.qcow2 w:100:1000:0x55 w:8k:4k:0x56 z:64k:8k w:70k:10k:0x57
qemu-io -f qcow2 -c 'write -P 0x55 100 1000' -c 'write -P 0x56 8k 4k' -c 'write -z 64k 8k' -c 'write -P 0x57 70k 10k' theirs.qcow2 >/dev/null
check "compressed: qemu-img compare" qemu-img compare -q ours.qcow2 theirs.qcow2
qcheck "compressed: qemu-img check (spans decremented)" ours.qcow2

# Overlay: whole clusters fine, partial into an unallocated cluster refused.
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x61 0 4M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2
before=$(sha256sum ov.qcow2)
check_rc "overlay: partial write into an unallocated cluster refused" 1 "$FMT_TOOL" ops ov.qcow2 w:100:10:0x1
check_grep "  ... says why" "backing" "$T/.err"
check_eq "  ... file unchanged" "$(sha256sum ov.qcow2)" "$before"
check_rc "overlay: whole cluster + partial unallocated one refused" 1 "$FMT_TOOL" ops ov.qcow2 w:0:65546:0x1
check_rc "overlay: zeroes with a partial unallocated edge refused" 1 "$FMT_TOOL" ops ov.qcow2 z:100:200000
check_eq "  ... nothing written (not even the whole clusters)" "$(sha256sum ov.qcow2)" "$before"
cp ov.qcow2 ov-q.qcow2
check "overlay: whole clusters and zeroes" "$FMT_TOOL" ops ov.qcow2 w:64k:128k:0x71 z:1M:64k w:64k:10:0x72
qemu-io -f qcow2 -c 'write -P 0x71 64k 128k' -c 'write -z 1M 64k' -c 'write -P 0x72 64k 10' ov-q.qcow2 >/dev/null
check "overlay: qemu-img compare" qemu-img compare -q ov.qcow2 ov-q.qcow2
qcheck "overlay: qemu-img check" ov.qcow2
check "overlay: make_empty" "$FMT_TOOL" ops ov.qcow2 e
check "overlay: empty overlay reads as its base" qemu-img compare -q ov.qcow2 base.qcow2
qcheck "overlay: check after make_empty" ov.qcow2
# make_empty over an L1 of many windows (512-byte clusters, 256 MiB: 16).
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 ovw.qcow2 256M
qemu-io -f qcow2 -c 'write -P 0x71 0 1M' -c 'write -P 0x72 40M 1M' \
	-c 'write -P 0x73 130M 2M' -c 'write -P 0x74 255M 1M' ovw.qcow2 >/dev/null
check "overlay, many L1 windows: make_empty" "$FMT_TOOL" ops ovw.qcow2 e
check "  ... reads as its base" qemu-img compare -q ovw.qcow2 base.qcow2
qcheck "  ... qemu-img check" ovw.qcow2

# ---- power cuts ----------------------------------------------------------
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 pc0.qcow2 64k
qemu-io -f qcow2 -c 'write -c -P 0x31 0 4k' -c 'write -P 0x32 8k 4k' pc0.qcow2 >/dev/null
be32() { echo $(( 16#$(od -An -tx1 -j "$2" -N4 "$1" | tr -d ' \n') )); }
seeds=1; [ "${IMGRAPH_LONG:-0}" = 1 ] && seeds=4

# count_ops: mutating ops of the workload "${OPS[@]}" on a copy of pc0.
count_ops() {
	cp pc0.qcow2 pcn.qcow2
	IMGRAPH_FAULT=count IMGRAPH_FAULT_OUT=$T/count "$FMT_TOOL" ops pcn.qcow2 "${OPS[@]}"
	cat "$T/count"
}

# cut_at K...: power cut at each op K; the image must check 0 or 3, stay
# readable, and imgraph check must give qemu-img's verdict.
cut_at() {
	local bad=0 K sd rc orc
	for K in "$@"; do
		for sd in $(seq 1 $seeds); do
			cp pc0.qcow2 pc.qcow2
			( IMGRAPH_FAULT=cut:$K:$((K * 7 + sd)) "$FMT_TOOL" ops pc.qcow2 "${OPS[@]}"; true ) >/dev/null 2>&1
			qemu-img check pc.qcow2 >pc.out 2>&1; rc=$?
			if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
				bad=$((bad + 1)); echo "# cut at op $K seed $sd: check rc=$rc"; diag <pc.out
			elif ! qemu-img convert -O raw pc.qcow2 pc.raw 2>pc.out; then
				bad=$((bad + 1)); echo "# cut at op $K: unreadable"; diag <pc.out
			else
				"$IMGRAPH" check pc.qcow2 >/dev/null 2>&1; orc=$?
				if [ $orc -ne $rc ]; then
					bad=$((bad + 1)); echo "# cut at op $K: imgraph check rc=$orc, qemu-img $rc"
				fi
			fi
		done
	done
	echo "$bad"
}

# Workload 1 (every op): data, L1 growth, zeroes over data and over a
# compressed cluster, a new refcount block.
OPS=(w:0:1k:0x41 g:1M w:100k:24k:0x42 z:8k:2k w:600k:40k:0x43 w:1000:100:0x44 z:600k:4k)
N=$(count_ops)
check "power cut: workload 1 has mutating ops ($N)" test "$N" -gt 20
bad=$(cut_at $(seq 1 "$N") | tee cut.log | tail -n 1); grep '^#' cut.log
check_eq "power cut at each of $N ops: never corrupt, always readable, imgraph check agrees" "$bad" 0

# I/O errors and short writes at each op: a clean error, never a crash,
# never a corrupt image.
bad=0
for K in $(seq 1 "$N"); do
	for f in "err:$K:EIO" "short:$K" "rerr:$K:EIO"; do
		cp pc0.qcow2 pc.qcow2
		IMGRAPH_FAULT=$f "$FMT_TOOL" ops pc.qcow2 "${OPS[@]}" >/dev/null 2>pc.err; rc=$?
		if [ $rc -ne 0 ] && { [ $rc -ne 1 ] || ! [ -s pc.err ]; }; then
			bad=$((bad + 1)); echo "# $f: rc=$rc"; diag <pc.err
		fi
		qemu-img check pc.qcow2 >pc.out 2>&1; rc=$?
		if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
			bad=$((bad + 1)); echo "# $f: check rc=$rc"; diag <pc.out
		fi
	done
done
check_eq "EIO / short write / read error at each of $N ops: clean error, never corrupt" "$bad" 0

# Workload 2: 2.5 MiB of 512-byte clusters with 64-bit refcounts (a block
# covers 64 clusters, the first table 2 MiB of file): many new blocks and a
# relocated refcount table.  Sampled (every op with IMGRAPH_LONG=1).
OPS=(g:4M w:1M:2560k:0x45 w:0:4k:0x46)
N=$(count_ops)
check "power cut: workload 2 relocates the refcount table" test "$(be32 pcn.qcow2 56)" -gt 1
qcheck "power cut: workload 2 uncut checks clean" pcn.qcow2
if [ "${IMGRAPH_LONG:-0}" = 1 ]; then ks=$(seq 1 "$N"); else ks=$(seq 1 $(( N / 40 + 1 )) "$N"); fi
bad=$(cut_at $ks | tee cut.log | tail -n 1); grep '^#' cut.log
check_eq "power cut at sampled ops of $N: never corrupt, always readable" "$bad" 0

done_testing
