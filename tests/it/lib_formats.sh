# tests/it/lib_formats.sh - judges shared by the format scripts (sourced
# after lib.sh): our map, reads and info against qemu-img's.
#   map_same NAME IMAGE     imgraph map = qemu-img map, extent by extent
#                           (MAP_OFFSETS=0: host offsets not compared)
#   bytes_same NAME IMAGE   guest view read through core/graph/chain.c
#                           (tests/tools/fmt_tool compare) = qemu-img
#                           convert -O raw
#   info_same NAME IMAGE [FMT]
#                           imgraph info --output=json has every key qemu-img
#                           info --output=json prints, with equal values, and
#                           none of issue 15's keys that qemu-img leaves out
#                           (FMT: qemu-img -f, where qemu-img probes another)
#   all3 NAME IMAGE         the three

# The reader: tests/tools/fmt_tool compare (the guest view through
# core/graph/chain.c, in 1 MiB and odd-sized pieces, against RAW).
need_fmt_tool
READER=$FMT_TOOL

# map_same NAME IMAGE: compare our map with qemu-img's, extent by extent.
map_same() {
	local n=$1 img=$2 offsets=${MAP_OFFSETS:-1}
	if ! "$IMGRAPH" map --output=json "$img" >"$T/ours.json" 2>"$T/ours.err"; then
		not_ok "$n: map (imgraph failed)"; diag <"$T/ours.err"; return
	fi
	qemu-img map --output=json "$img" >"$T/qemu.json" 2>/dev/null
	if python3 - "$T/ours.json" "$T/qemu.json" "$offsets" >"$T/mapdiff" 2>&1 <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
offsets = sys.argv[3] == "1"
def cuts(l):
    s = set()
    for x in l:
        s.add(x["start"]); s.add(x["start"] + x["length"])
    return s
c = sorted(cuts(a) | cuts(b))
def split(l):
    out = {}
    for x in l:
        pts = [p for p in c if x["start"] <= p < x["start"] + x["length"]]
        for p in pts:
            k = {f: x[f] for f in ("depth", "present", "zero", "data")}
            if offsets and "offset" in x:
                k["offset"] = x["offset"] + p - x["start"]
            out[p] = k
    return out
sa, sb = split(a), split(b)
if sa != sb:
    for p in sorted(set(sa) | set(sb)):
        if sa.get(p) != sb.get(p):
            print("at", p, "imgraph", sa.get(p), "qemu-img", sb.get(p))
            break
    sys.exit(1)
# every extent that qemu-img would merge, we merged too
if offsets and len(a) != len(b):
    print("extent count", len(a), "vs qemu-img", len(b)); sys.exit(1)
EOF
	then ok "$n: map equals qemu-img map"; else not_ok "$n: map differs"; diag <"$T/mapdiff"; fi
}

# bytes_same NAME IMAGE: guest view equals qemu-img convert -O raw.
bytes_same() {
	local n=$1 img=$2
	rm -f "$T/guest.raw"
	qemu-img convert -U -O raw "$img" "$T/guest.raw"
	if "$READER" compare "$img" "$T/guest.raw" >"$T/cmp.out" 2>&1; then
		ok "$n: reads equal qemu-img convert"
	else
		not_ok "$n: reads differ"; diag <"$T/cmp.out"
	fi
	rm -f "$T/guest.raw"
}

# info_same NAME IMAGE [FMT]: every key qemu-img info prints, with equal
# values; and the keys issue 15 lists (format, sizes, backing names, the
# dirty flag, snapshots, format-specific data: data-file, bitmaps,
# encrypt) are absent where qemu-img prints none.  imgraph's own keys
# (write-refusal, snapshot-count) are not qemu-img's and not compared.
info_same() {
	local n=$1 img=$2 fmt=${3:+-f$3}
	if ! "$IMGRAPH" info --output=json "$img" >"$T/oi.json" 2>"$T/oi.err"; then
		not_ok "$n: info (imgraph failed)"; diag <"$T/oi.err"; return
	fi
	qemu-img info -U $fmt --output=json "$img" >"$T/qi.json"
	if python3 - "$T/oi.json" "$T/qi.json" >"$T/infodiff" 2>&1 <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
listed = ["format", "virtual-size", "cluster-size", "backing-filename",
          "full-backing-filename", "backing-filename-format", "dirty-flag",
          "snapshots", "encrypted", "format-specific"]
bad = [k for k in b if a.get(k) != b[k]]
bad += [k for k in listed if k in a and k not in b]
for k in bad:
    print(k, "imgraph:", a.get(k, "(absent)"), "qemu-img:", b.get(k, "(absent)"))
sys.exit(1 if bad else 0)
EOF
	then ok "$n: info equals qemu-img info"; else not_ok "$n: info differs"; diag <"$T/infodiff"; fi
}

all3() { map_same "$1" "$2"; bytes_same "$1" "$2"; info_same "$1" "$2"; }

