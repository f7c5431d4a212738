#!/usr/bin/env bash
# --protect in the editor (issue 18), judged by qemu-img: in the demo pool
# dev.qcow2 into golden.qcow2 is refused because test.qcow2 also reads
# golden.  The status line offers S with the cost; the plan screen shows
# the reader as not protected, and S on that screen plans again with
# --protect (no conflict, the after-graph shows test still reading golden);
# the commit through both questions leaves test's and dev-snap's views
# unchanged and golden holding dev's old view.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"

P=$T/pool
demo "$P" || { not_ok "demo pool"; done_testing; }
for f in test dev-snap dev; do guest_raw "$P/$f.qcow2" "$T/$f.raw"; done

start 160 50 -- "$P"
see "editor open" "10 images"
select_img dev.qcow2; keys t
select_img golden; keys b
see "refusal offers S with the cost" "dev.qcow2 into golden.qcow2: .*S protects (base's 1 other reader|them) \(copies [0-9.]+ [KM]iB\)"
keys p
see "plan names the unprotected reader" "other readers of base \(1\): not protected: --protect would copy"
see "after-graph: the reader would change" "test.qcow2 .*NOT protected"
snap_dir "$P" >"$T/snap0"
keys S
see "S plans again with --protect" "Plan: commit dev.qcow2 into golden.qcow2 - 0 conflicts"
see "plan: reader protected" "other readers of base \(1\): protected \(--protect\)"
see "after-graph: still reads base" "test.qcow2 .*protected: still reads base"
snap_dir "$P" >"$T/snap1"
check "planning wrote nothing" cmp "$T/snap0" "$T/snap1"
keys Escape
keys c
see "commit asks" "\(y/N\)"
keys y
see "relink question" "Relink every parent of top to base now" 30
keys y
see "commit finished" "Commit finished" 30
check "test.qcow2 keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/test.raw" "$P/test.qcow2"
check "dev-snap.qcow2 keeps its view" qemu-img compare -q -f raw -F qcow2 "$T/dev-snap.raw" "$P/dev-snap.qcow2"
check "golden holds dev's old view" qemu-img compare -q -f raw -F qcow2 "$T/dev.raw" "$P/golden.qcow2"
qcheck "test.qcow2 passes qemu-img check" "$P/test.qcow2"
qcheck "golden.qcow2 passes qemu-img check" "$P/golden.qcow2"
keys Escape
keys q
check_eq "exit 0" "$(wait_exit)" 0
done_testing
