#!/usr/bin/env bash
# Progress as good as the CLI's (issue 14, point 5), on the demo pool,
# top into base under --rate so the copy takes a few seconds:
#  - never "0 B of 0 B" nor "Phase: starting"; every phase named as it runs
#    and, on the result screen, the phases run are the ones the CLI's JSON
#    lines name for the same commit on a copy of the same pool;
#  - the image being read is named (one of top's chain above base);
#  - the cancel question holds the copy: bytes and ETA do not move while it
#    is open, and the screen says so;
#  - the result screen gives elapsed time, bytes, the average rate and the
#    parents relinked (judged by qemu-img info);
#  - after a cancel the message names base and mid as changed and top's
#    parents as unchanged, exactly as qemu-img compare finds them;
#  - the CLI's JSON lines carry a rate on every line once bytes moved.
. "$(dirname "$0")/../it/lib.sh"
. "$(dirname "$0")/lib_tui.sh"
need_tools qemu-img jq

demo "$T/tpl" || { not_ok "demo pool"; done_testing; }

# The CLI on a copy of the pool: its phases and its JSON lines.
cp -a "$T/tpl" "$T/cli"
"$IMGRAPH" commit --top "$T/cli/top.qcow2" --base "$T/cli/base.qcow2" --yes \
	-p --rate 4M "$T/cli" >/dev/null 2>"$T/cli.json"
check "CLI commit ran" test -s "$T/cli.json"
check "CLI progress: every line is JSON" jq -e . "$T/cli.json"
CLI_PHASES=$(jq -r .phase "$T/cli.json" | uniq | tr '\n' ' ' | sed 's/ $//')
check_eq "CLI progress names every phase in order" "$CLI_PHASES" "check copy flush relink cleanup"
check_eq "CLI progress: a rate on every line once bytes moved" \
	"$(jq -c 'select(.bytes > 0 and .rate == 0)' "$T/cli.json" | wc -l)" 0
check "CLI progress: copy lines name the layer being read" \
	sh -c "jq -r 'select(.phase == \"copy\" and .done > 0) | .layer' '$T/cli.json' | grep -Eq '/(top|mid)\.qcow2$'"
check_eq "CLI progress: overall reaches 1000 permille" \
	"$(jq -s 'map(.["overall-permille"]) | max' "$T/cli.json")" 1000
check_eq "CLI progress: overall never goes back" \
	"$(jq -s '[.[]["overall-permille"]] as $a | [range(1; $a | length) | select($a[.] < $a[. - 1])] | length' "$T/cli.json")" 0

guest() { qemu-img convert -U -O raw "$1" "$2"; }

for size in "80 24" "120 40" "200 50" "60 17"; do
	set -- $size
	W=$1 H=$2
	P=$T/p$W
	rm -rf "$P"; cp -a "$T/tpl" "$P"
	for f in mid top vm-web vm-db; do guest "$P/$f.qcow2" "$T/$f.raw"; done
	start "$W" "$H" -- --rate 1M "$P"
	see "$W x $H: editor up" "10 images"
	select_img top.q; keys t
	select_img base; keys b
	see "$W x $H: clean pair" "clean"
	keys c
	see "$W x $H: asks before the copy" "Commit: copy top's data into base now"
	keys y
	# Every frame until the copy runs: no empty counts, no "starting".
	bad=0
	for _ in $(seq 1 30); do
		screen >"$T/f"
		grep -qE "0 B of 0 B|Phase: starting" "$T/f" && bad=1
		grep -q "\[copy\]" "$T/f" && break
		sleep 0.1
	done
	check_eq "$W x $H: no empty first frame" "$bad" 0
	see "$W x $H: the copy is named as it runs" "\[copy\]"
	see "$W x $H: the check before it is done" "check done"
	see "$W x $H: the image being read is named" "reading (top|mid)\.qcow2"
	see "$W x $H: one overall bar over every phase" "Overall \(all phases\)"
	see "$W x $H: a rate" "Rate: [0-9.]+ [KM]iB/s"
	# The cancel question holds the copy; the time is not counted.
	keys Escape
	see "$W x $H: cancel asks" "Cancel the running commit\?"
	see "$W x $H: paused while asking" "Paused: the copy waits for your answer"
	screen | grep -E "copied|ETA" >"$T/q1"
	sleep 2
	screen | grep -E "copied|ETA" | sed 's/Elapsed: [0-9:]*//' >"$T/q2"
	sed -i 's/Elapsed: [0-9:]*//' "$T/q1"
	check "$W x $H: bytes and ETA stand still while the question is open" cmp -s "$T/q1" "$T/q2"
	if [ "$W" = 80 ]; then
		# Cancel here: base and mid changed, top's parents did not.
		keys y
		see "$W x $H: cancelled" "Commit cancelled" 30
		see "$W x $H: result says base changed" "Changed: base\.qcow2 now holds"
		for f in mid top vm-web vm-db; do
			if qemu-img compare -q -U "$T/$f.raw" "$P/$f.qcow2" 2>/dev/null; then
				same=yes; else same=no; fi
			case $f in
			mid) check_eq "$W x $H: qemu-img: mid's view changed" "$same" no
			     see "$W x $H: ... and the result says so" "Changed: mid\.qcow2 reads" ;;
			*) check_eq "$W x $H: qemu-img: $f's view unchanged" "$same" yes ;;
			esac
		done
		see "$W x $H: result says top and its parents unchanged" \
			"Unchanged: top\.qcow2 and its parents \(vm-db\.qcow2, vm-web\.qcow2\)"
		not_see "$W x $H: no 'no guest sees a change'" "no guest sees a change"
		keys Escape q
		check_eq "$W x $H: q exits 0" "$(wait_exit)" 0
		continue
	fi
	keys n
	see "$W x $H: relink asked after the copy" "Relink every parent of top" 40
	keys y
	see "$W x $H: finished" "Commit finished" 20
	see "$W x $H: result: bytes, time and average rate" \
		"copied: [0-9.]+ [KM]iB in [0-9]+:[0-9]{2} \(average [0-9.]+ [KM]iB/s"
	see "$W x $H: result: elapsed with the waiting" "elapsed: [0-9]+:[0-9]{2} \([0-9]+ s of it waiting"
	see "$W x $H: result: the parents relinked" "relinked: 2 parents \(vm-db\.qcow2, vm-web\.qcow2\) now read( base\.qcow2|$)"
	screen >"$T/s"
	ED_PHASES=$(grep -o "phases: .*" "$T/s" | sed 's/^phases: //; s/ *$//')
	check_eq "$W x $H: the editor's phases are the CLI's" "$ED_PHASES" "$CLI_PHASES"
	for f in vm-web vm-db; do
		check_eq "$W x $H: qemu-img: $f now on base" \
			"$(qemu-img info -U --output=json "$P/$f.qcow2" | jq -r '."backing-filename"')" base.qcow2
		check "$W x $H: qemu-img: $f's view unchanged" qemu-img compare -q -U "$T/$f.raw" "$P/$f.qcow2"
	done
	keys Escape q
	check_eq "$W x $H: q exits 0" "$(wait_exit)" 0
done
done_testing
