# shellcheck shell=bash disable=SC2034
# tests/hostile/poke.sh - byte-level editing of image files (sourced).
# Used by tests/hostile/gen.sh and fuzz/seeds.sh.  printf + dd only, so no
# extra package is needed.  Values are bash integers (decimal or 0x...);
# bash arithmetic is 64-bit, so 0xffffffffffffffff works for be64.

# _poke_n FILE OFF NBYTES VALUE: big-endian store.
_poke_n() {
	local f=$1 off=$2 n=$3 v=$4 esc="" i
	for ((i = n - 1; i >= 0; i--)); do
		esc+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255)))
	done
	printf "$esc" | dd of="$f" bs=1 seek=$((off)) conv=notrunc status=none
}
poke_u8()   { _poke_n "$1" "$2" 1 "$3"; }
poke_be16() { _poke_n "$1" "$2" 2 "$3"; }
poke_be32() { _poke_n "$1" "$2" 4 "$3"; }
poke_be64() { _poke_n "$1" "$2" 8 "$3"; }
# poke_str FILE OFF STRING (no trailing NUL; printf escapes are NOT interpreted)
poke_str() { printf '%s' "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none; }
# poke_raw FILE OFF PRINTF-FORMAT (escapes like \x00 interpreted)
poke_raw() { printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none; }
# peek_be FILE OFF NBYTES -> decimal on stdout
peek_be() {
	local v=0 b
	for b in $(od -An -tu1 -j $(($2)) -N "$3" "$1"); do v=$(((v << 8) | b)); done
	echo "$v"
}

# qcow2 header field offsets (spec: interop/qcow2)
Q_MAGIC=0 Q_VERSION=4 Q_BACKING_OFF=8 Q_BACKING_SIZE=16 Q_CLUSTER_BITS=20
Q_SIZE=24 Q_CRYPT=32 Q_L1_SIZE=36 Q_L1_OFF=40 Q_REFT_OFF=48 Q_REFT_CLUSTERS=56
Q_NB_SNAP=60 Q_SNAP_OFF=64 Q_INCOMPAT=72 Q_COMPAT=80 Q_AUTOCLEAR=88
Q_REFCOUNT_ORDER=96 Q_HEADER_LEN=100 Q_COMPRESSION=104

# First L2 table offset of a qcow2 image (from L1[0]); 0 when unallocated.
q_l2_of() { echo $(( $(peek_be "$1" "$(peek_be "$1" $Q_L1_OFF 8)" 8) & 0x00fffffffffffe00 )); }
# First refcount block offset (reftable[0]).
q_rb_of() { echo $(( $(peek_be "$1" "$(peek_be "$1" $Q_REFT_OFF 8)" 8) & ~511 )); }

# Little-endian stores (qed, vmdk, vhdx, vdi ... headers).
_poke_le_n() {
	local f=$1 off=$2 n=$3 v=$4 esc="" i
	for ((i = 0; i < n; i++)); do
		esc+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255)))
	done
	printf "$esc" | dd of="$f" bs=1 seek=$((off)) conv=notrunc status=none
}
poke_le16() { _poke_le_n "$1" "$2" 2 "$3"; }
poke_le32() { _poke_le_n "$1" "$2" 4 "$3"; }
poke_le64() { _poke_le_n "$1" "$2" 8 "$3"; }
# peek_le FILE OFF NBYTES -> decimal on stdout
peek_le() {
	local v=0 b i=0
	for b in $(od -An -tu1 -j $(($2)) -N "$3" "$1"); do v=$((v | (b << (8 * i)))); i=$((i + 1)); done
	echo "$v"
}
