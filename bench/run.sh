#!/usr/bin/env bash
# Run every benchmark under bench/ (not part of `make check`): each prints
# imgraph's figures next to the QEMU equivalent measured in the same run.
set -u
cd "$(dirname "$0")" || exit 1
rc=0
for b in *.sh; do
	[ "$b" = run.sh ] && continue
	echo "== bench/$b"
	bash "$b" || rc=1
done
exit $rc
