#!/usr/bin/env bash
# durable_symlinks.sh - every file imgraph writes whole (the journal, the
# users file, created images) goes through one primitive: a fresh,
# unpredictable temporary created with O_EXCL|O_NOFOLLOW next to the target,
# renamed over it.  Judged with strace and qemu-img:
#   S1 symlinks planted at every temporary name older versions used
#      (.imgraph-journal-BASE.tmp, NAME.imgraph-tmp, NAME.imgraph-tmp.PID)
#      and at guessable ones, each pointing at its own file outside the
#      pool: create (qcow2, raw, over an old image), commit with a users
#      file, and the users-file repoint change no file outside the pool,
#      and every planted link is still there, unchanged;
#   S2 every open(O_CREAT) those commands make has O_EXCL (strace -f);
#   S3 the commands still do their job (qemu-img check/info/compare);
#   S4 a users file that is a symlink (to another directory) stays that
#      symlink after the commit repoints it; the file it leads to is
#      repointed, keeps its mode, and no temporary is left in either
#      directory.
# Regression: the journal's temporary used to be opened O_CREAT|O_TRUNC
# without O_EXCL at a fixed name, so a symlink planted there made a commit
# (exit 0) overwrite the file it pointed to with the journal's text (S1).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_commit.sh"

if ! command -v strace >/dev/null 2>&1; then
	[ "${CI:-}" = true ] && { not_ok "strace is required (CI=true)"; done_testing; }
	echo "ok - # SKIP strace not installed"; done_testing
fi

P=$T/pool O=$T/outside
mkdir -p "$O"
fixture_build "$P" 2 || { not_ok fixture; done_testing; }
fixture_users "$P"
fixture_save "$P" "$T/v"
qemu-img create -q -f qcow2 "$P/old.qcow2" 1M

# Plant one link per name, each to its own victim outside the pool.
nv=0
plant() { # NAME...
	local n
	for n in "$@"; do
		nv=$((nv + 1))
		printf 'victim %d\n' "$nv" >"$O/v$nv"
		ln -s "$O/v$nv" "$P/$n"
	done
}
plant .imgraph-journal-base.qcow2.tmp users.yaml.imgraph-tmp \
	.imgraph-journal-base.qcow2.new users.yaml.tmp users.yaml~ \
	.users.yaml.swp base.qcow2.tmp new.qcow2.tmp new.raw.tmp \
	new.raw.imgraph-tmp old.qcow2.imgraph-tmp .imgraph-tmp \
	.imgraph-tmp-0000000000000000 .imgraph-tmp-ffffffffffffffff \
	.imgraph-tmp-0123456789abcdef
# qcow2 create's old pattern NAME.imgraph-tmp.PID for the next 1000 PIDs
# (one process plants them all, so that planting uses up no PID)
read -r last </proc/sys/kernel/ns_last_pid 2>/dev/null || last=$$
nv=$(python3 - "$P" "$O" "$nv" "$last" <<'PY'
import os, sys
pool, out, nv, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for pid in range(last + 1, last + 1001):
    for img in ("new.qcow2", "old.qcow2"):
        nv += 1
        with open(f"{out}/v{nv}", "w") as f:
            f.write(f"victim {nv}\n")
        os.symlink(f"{out}/v{nv}", f"{pool}/{img}.imgraph-tmp.{pid}")
print(nv)
PY
)
links() { find "$P" -maxdepth 1 -type l -printf '%f -> %l\n' | sort; }
links >"$T/links.before"
sha256sum "$O"/* >"$T/outside.before"

# Run a command under strace; its O_CREAT opens go to $T/creates.
traced() { # NAME CMD...
	local n=$1; shift
	# (LeakSanitizer cannot run under ptrace: off for a sanitizer build)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -qq -o "$T/st" -e trace=open,openat,creat "$@" >"$T/.out" 2>"$T/.err"
	local rc=$?
	grep -E 'O_CREAT|creat\(' "$T/st" | sed "s/^/$n: /" >>"$T/creates"
	return $rc
}
: >"$T/creates"
check "create qcow2" traced create-qcow2 "$IMGRAPH" create -q -f qcow2 "$P/new.qcow2" 2M
check "create raw" traced create-raw "$IMGRAPH" create -q -f raw "$P/new.raw" 3M
check "create over an old image" traced create-over "$IMGRAPH" create -q -f qcow2 "$P/old.qcow2" 4M
check "commit with a users file" traced commit "$IMGRAPH" commit \
	--top "$P/top.qcow2" --base "$P/base.qcow2" --users "$P/users.yaml" --yes -q -r "$P"

# S1
sha256sum "$O"/* >"$T/outside.after"
check "S1 no file outside the pool changed" cmp "$T/outside.before" "$T/outside.after"
links >"$T/links.after"
check "S1 every planted link is still there, unchanged" cmp "$T/links.before" "$T/links.after"
check_eq "S1 outside: still only regular files" \
	"$(find "$O" -type f | wc -l)" "$nv"
# S2
check_grep "S2 the commands created files" 'O_CREAT' "$T/creates"
check_nogrep "S2 every create is exclusive (O_EXCL)" 'O_CREAT' \
	<(grep -v 'O_EXCL' "$T/creates")
check_nogrep "S2 no create truncates" 'O_TRUNC' "$T/creates"
check_nogrep "S2 no create at a planted or fixed name" \
	'\.tmp"|imgraph-tmp"|imgraph-tmp\.[0-9]|\.new"|~"' "$T/creates"
# S3
qcheck "S3 new.qcow2 checks clean" "$P/new.qcow2"
qcheck "S3 old.qcow2 recreated, checks clean" "$P/old.qcow2"
check_eq "S3 old.qcow2 has the new size" \
	"$(qemu-img info -U --output=json "$P/old.qcow2" | sed -n 's/^ *"virtual-size": \([0-9]*\),*$/\1/p')" 4194304
check_eq "S3 new.raw: 3M" "$(stat -c %s "$P/new.raw")" 3145728
# (the planted links named like journals would read as "journal left")
rm -f "$P"/.imgraph-journal-*
fixture_verify "S3 commit" "$P" "$T/v" base
check_grep "S3 users file repointed" '^    image: base.qcow2$' "$P/users.yaml"
check_eq "S3 no temporary left" \
	"$(find "$P" -maxdepth 1 -type f -name '.imgraph-tmp-*' | wc -l)" 0

# S4: the users file is a symlink into another directory.
Q=$T/q C=$T/conf
mkdir -p "$C"
fixture_build "$Q" 1 || { not_ok fixture2; done_testing; }
fixture_users "$C"
sed -i "s|image: top.qcow2|image: $Q/top.qcow2|; s|image: other.qcow2|image: $Q/other.qcow2|" "$C/users.yaml"
chmod 0640 "$C/users.yaml"
ln -s "$C/users.yaml" "$Q/users.yaml"
ino=$(stat -c %i "$C/users.yaml")
check "S4 commit through a symlinked users file" "$IMGRAPH" commit \
	--top "$Q/top.qcow2" --base "$Q/base.qcow2" --users "$Q/users.yaml" --yes -q -r "$Q"
check "S4 the users file is still a symlink" test -L "$Q/users.yaml"
check_eq "S4 ... to the same file" "$(readlink "$Q/users.yaml")" "$C/users.yaml"
check_grep "S4 the file it leads to is repointed" "^    image: $Q/base.qcow2\$" "$C/users.yaml"
check_grep "S4 the other entry is kept" "^    image: $Q/other.qcow2\$" "$C/users.yaml"
check_eq "S4 mode kept" "$(stat -c %a "$C/users.yaml")" 640
check "S4 replaced, not rewritten in place (new inode)" test "$(stat -c %i "$C/users.yaml")" != "$ino"
check_eq "S4 no temporary left" "$(ls -A "$C" "$Q" | grep -c 'imgraph-tmp')" 0
check "S4 imgraph reads it back" "$IMGRAPH" tree --users "$Q/users.yaml" "$Q"
check_grep "S4 overlay now on base" "$(realpath "$Q/base.qcow2")" \
	<(qemu-img info -U --output=json "$Q/d0/ovl0.qcow2" | sed -n 's/^ *"full-backing-filename": "\(.*\)",*$/\1/p' | xargs realpath -m)

done_testing
