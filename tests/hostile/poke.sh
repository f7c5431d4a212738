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

# qcow2 header field offsets, read from the driver's own layout header
# (formats/qcow2/qcow2_hdr.h), the one place they are written down.
_Q_HDR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/formats/qcow2/qcow2_hdr.h
_q_off() {
	local v
	v=$(sed -n "s/^#define QCOW2_$1[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p" "$_Q_HDR")
	if [ -z "$v" ]; then
		echo "poke.sh: QCOW2_$1 not found in $_Q_HDR" >&2
		return 1
	fi
	echo "$v"
}
Q_MAGIC=$(_q_off HDR_MAGIC) Q_VERSION=$(_q_off HDR_VERSION)
Q_BACKING_OFF=$(_q_off HDR_BACKING_FILE_OFFSET) Q_BACKING_SIZE=$(_q_off HDR_BACKING_FILE_SIZE)
Q_CLUSTER_BITS=$(_q_off HDR_CLUSTER_BITS) Q_SIZE=$(_q_off HDR_SIZE) Q_CRYPT=$(_q_off HDR_CRYPT_METHOD)
Q_L1_SIZE=$(_q_off HDR_L1_SIZE) Q_L1_OFF=$(_q_off HDR_L1_TABLE_OFFSET)
Q_REFT_OFF=$(_q_off HDR_REFCOUNT_TABLE_OFFSET) Q_REFT_CLUSTERS=$(_q_off HDR_REFCOUNT_TABLE_CLUSTERS)
Q_NB_SNAP=$(_q_off HDR_NB_SNAPSHOTS) Q_SNAP_OFF=$(_q_off HDR_SNAPSHOTS_OFFSET)
Q_INCOMPAT=$(_q_off HDR_INCOMPATIBLE_FEATURES) Q_COMPAT=$(_q_off HDR_COMPATIBLE_FEATURES)
Q_AUTOCLEAR=$(_q_off HDR_AUTOCLEAR_FEATURES) Q_REFCOUNT_ORDER=$(_q_off HDR_REFCOUNT_ORDER)
Q_HEADER_LEN=$(_q_off HDR_HEADER_LENGTH) Q_COMPRESSION=$(_q_off HDR_COMPRESSION_TYPE)
# qemu-img writes header_length = QCOW2_HDR_V3_LEN: its first extension
# record starts there ({ type, length, data }).
Q_EXT0=$(_q_off HDR_V3_LEN) Q_EXT_LEN=$(_q_off EXT_LEN) Q_EXT_DATA=$(_q_off EXT_DATA)

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
