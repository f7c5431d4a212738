#!/usr/bin/env bash
# plan_hints.sh - the plan's hints are real commands with real names, and
# following one fixes what it says (issue 14: hints were generic -
# "qemu-img rebase -u -F FORMAT -b BACKING_NAME OVERLAY", "Run 'imgraph
# tree'", "pick a base above the branch point" where there was none).
#   H1 a branch on base: the hint names the overlay and a command that
#      moves it off keeping what it shows; run as printed, the plan is
#      clean and the overlay's guest view is unchanged (qemu-img compare);
#   H2 a branch point above base: the hint names the image to commit into
#      instead, which is clean;
#   H3 an unrecorded backing format: the hint is the exact rebase -u
#      command, and running it clears the conflict;
#   H4 a base not in top's chain: the hint lists the chain;
#   H5 a runnable plan ends with one line in plain words;
#   H6 tree on a directory whose images are all in subdirectories says
#      to add -r (it said only "(no images in the pool)");
#   H7 the man page's gate on conflicts, run as printed, tells a clean
#      plan from one with conflicts;
#   H8 a missing backing file: no base growth nor relink to "(?)".
. "$(dirname "$0")/lib.sh"
MAN=$(cd "$(dirname "$0")/../.." && pwd)/docs/imgraph.1

W=$T/pool
mkdir -p "$W"
cd "$W" || exit 1
mkq golden.qcow2 8M
qio golden.qcow2 -c 'write -P 0x11 0 2M'
mkq dev.qcow2 8M golden.qcow2
qio dev.qcow2 -c 'write -P 0x22 1M 1M'
mkq test.qcow2 8M golden.qcow2
qio test.qcow2 -c 'write -P 0x33 3M 1M'
# hint LINE of the plan in $T/.out, without "hint: "
hint() { sed -n 's/^ *hint: //p' "$T/.out" | head -1; }

# H1
check_rc "H1: dev into golden conflicts" 3 "$IMGRAPH" plan --top dev.qcow2 --base golden.qcow2 .
check_grep "H1: --protect is offered first" "hint: Run with --protect to copy 1.0 MiB into this 1 image first" "$T/.out"
check_eq "H1: the hint names test.qcow2 and the command" "$(hint | sed 's/^.* Otherwise: //')" \
	"No image between 'dev.qcow2' and 'golden.qcow2' is read by this chain alone, so no other base avoids it; first move 'test.qcow2' off 'golden.qcow2', keeping what it shows: qemu-img rebase -f qcow2 -b '' test.qcow2"
check_nogrep "H1: no 'above the branch point'" "branch point" "$T/.out"
cmd=$(hint | sed 's/.*keeping what it shows: //')
guest_raw test.qcow2 "$T/test.before"
check "H1: the command runs as printed" sh -c "$cmd"
guest_raw test.qcow2 "$T/test.after"
check "H1: test.qcow2 shows what it showed" cmp "$T/test.before" "$T/test.after"
check_rc "H1: then the plan is clean" 0 "$IMGRAPH" plan --top dev.qcow2 --base golden.qcow2 .

# H2: golden <- mid <- {dev2 <- snap, side}: committing snap into golden
# meets side on mid; dev2 is read by this chain alone.
rm -f ./*.qcow2
mkq golden.qcow2 8M
mkq mid.qcow2 8M golden.qcow2
mkq dev2.qcow2 8M mid.qcow2
mkq snap.qcow2 8M dev2.qcow2
mkq side.qcow2 8M mid.qcow2
check_rc "H2: snap into golden conflicts" 3 "$IMGRAPH" plan --top snap.qcow2 --base golden.qcow2 .
check_grep "H2: the hint names the base to pick" "hint: (.* Otherwise: )?Commit into 'dev2.qcow2' instead \(only this chain reads it\)" "$T/.out"
check_rc "H2: ... and that plan is clean" 0 "$IMGRAPH" plan --top snap.qcow2 --base dev2.qcow2 .

# H3: test names golden without recording its format.
rm -f ./*.qcow2
mkq golden.qcow2 8M
mkq dev.qcow2 8M golden.qcow2
off=$(grep -obUaP '\xe2\x79\x2a\xca' dev.qcow2 | head -1 | cut -d: -f1)
printf '\0\0\0\0' | dd of=dev.qcow2 bs=1 seek="$off" conv=notrunc status=none
check_rc "H3: unrecorded format conflicts" 3 "$IMGRAPH" plan --top dev.qcow2 .
check_eq "H3: the hint is the exact command" "$(hint)" \
	"If 'golden.qcow2' really is qcow2, say so: --base-format qcow2. Or record it: qemu-img rebase -u -F qcow2 -b golden.qcow2 dev.qcow2"
cmd=$(hint | sed 's/.*record it: //')
check_rc "H3: stating it makes the plan clean" 0 "$IMGRAPH" plan --top dev.qcow2 --base-format qcow2 .
check "H3: the command runs as printed" sh -c "$cmd"
check_rc "H3: then the plan is clean" 0 "$IMGRAPH" plan --top dev.qcow2 .

# H4
mkq other.qcow2 8M
check_rc "H4: a base outside top's chain" 3 "$IMGRAPH" plan --top dev.qcow2 --base other.qcow2 .
check_eq "H4: the hint lists the chain" "$(hint)" \
	"Pick a base from the chain of 'dev.qcow2': 'golden.qcow2'."
check_nogrep "H4: no 'imgraph tree' inside the plan" "imgraph tree" "$T/.out"

# H5
mkq vm.qcow2 8M dev.qcow2
check_rc "H5: dev into golden" 0 "$IMGRAPH" plan --top dev.qcow2 .
check_grep "H5: one line in plain words" \
	"^in short: +golden\.qcow2 will take top's data; vm\.qcow2 will read golden\.qcow2; dev\.qcow2 will be left unused \(nothing reads it\); what every other image shows stays\.$" "$T/.out"

# H6
mkdir -p "$T/deep/a/b"
mkq "$T/deep/a/one.qcow2" 1M
mkq "$T/deep/a/b/two.qcow2" 1M
check_rc "H6: tree exits 0" 0 "$IMGRAPH" tree "$T/deep"
check_grep "H6: says to add -r" "^\(2 images in subdirectories: add -r to scan them\)$" "$T/.out"
check_rc "H6: -r finds them" 0 "$IMGRAPH" tree -r "$T/deep"
check_nogrep "H6: no hint with -r" "add -r" "$T/.out"
mkdir -p "$T/empty"
check_rc "H6: a truly empty dir" 0 "$IMGRAPH" tree "$T/empty"
check_nogrep "H6: ... has no -r hint" "add -r" "$T/.out"

# H8: a top whose backing file is gone: the plan says so, and shows
# nothing that could only be true of a readable base ("base growth: 0 B
# -> 1 GiB", "'gone.qcow2' (qcow2) -> 'gone.qcow2' (?)").
mkdir -p "$T/m" && cd "$T/m" || exit 1
mkq gone.qcow2 16M
mkq orphan.qcow2 1G gone.qcow2
rm gone.qcow2
check_rc "H8: missing base: conflicts" 3 "$IMGRAPH" plan --top orphan.qcow2 .
check_grep "H8: base is named missing" "^base: +gone\.qcow2 \(missing\)$" "$T/.out"
check_nogrep "H8: no growth, bytes or relinks" "base growth|bytes to copy|parents relinked|\(\?\)" "$T/.out"
check_eq "H8: the hint says who looks for it, and where" "$(hint)" \
	"Put the file back where 'orphan.qcow2' looks for it ('gone.qcow2'), or, if it moved, record its new place in 'orphan.qcow2' with qemu-img rebase -u."

# H7: the man page's gate on conflicts, run as printed (it said
# "conflicts" for a clean plan: `plan > f || [ $? -eq 3 ] && echo`).
sed -n '/^imgraph plan \\-\\-top top.qcow2 \\-\\-output=json/,/^esac$/p' "$MAN" |
	sed 's/\\-/-/g' >"$T/gate.sh"
check_grep "H7: the example is in the man page" "^esac$" "$T/gate.sh"
rm -rf "$T/g" && mkdir -p "$T/g" && cd "$T/g" || exit 1
mkq base.qcow2 1M
mkq top.qcow2 1M base.qcow2
mkq vm.qcow2 1M top.qcow2
check_eq "H7: a clean plan is not called a conflict" \
	"$(PATH=$(dirname "$IMGRAPH"):$PATH sh "$T/gate.sh")" "clean"
mkq other.qcow2 1M base.qcow2
check_eq "H7: a conflicting plan is" \
	"$(PATH=$(dirname "$IMGRAPH"):$PATH sh "$T/gate.sh")" "conflicts, see plan.json"
done_testing
