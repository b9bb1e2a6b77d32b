#!/usr/bin/env bash
# tests/equivalence/mirror.sh: build-aux/mirror.sh, the guard that fails the build
# when a Lua file the module mirrors changed since src/store/module/
# mirror.sums was updated (docs/redis-module.md, "One behaviour, two
# implementations"). On a copy of the tree's files:
#  1. the committed fingerprints match the committed Lua;
#  2. a comment added, or a trailing comment changed: still matches;
#  3. a line of code changed in each mirrored file: the check fails and
#     names that file;
#  4. "update" records the change, and the check passes again.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-mirror.XXXXXX")
on_exit "rm -rf '$work'"
mkdir -p "$work/src/store/lua" "$work/src/store/module"
cp "$top_srcdir"/src/store/lua/*.lua "$work/src/store/lua/"
cp "$top_srcdir/src/store/module/mirror.sums" "$work/src/store/module/"
check() { sh "$top_srcdir/build-aux/mirror.sh" check "$work" 2>"$work/err"; }

check || fail "the committed fingerprints do not match the committed Lua: $(cat "$work/err")"
for f in lib create claim finish; do
	echo "-- a comment at the end" >>"$work/src/store/lua/$f.lua"
done
# A trailing comment on a line of code, reworded.
grep -q ' then -- "=ID": a root' "$work/src/store/lua/claim.lua" ||
	fail "the trailing comment this test rewords is gone from claim.lua"
sed -i 's/ then -- "=ID": a root.*$/ then -- reworded by tests\/mirror.sh/' "$work/src/store/lua/claim.lua"
check || fail "a comment tripped the check: $(cat "$work/err")"
for f in lib create claim finish; do
	cp "$work/src/store/lua/$f.lua" "$work/$f.orig"
	printf 'local _mirror_test = 1\n' >>"$work/src/store/lua/$f.lua"
	if check; then
		fail "a code change in $f.lua passed the check"
	fi
	assert_contains "$(cat "$work/err")" "src/store/lua/$f.lua changed" "the check names $f.lua"
	cp "$work/$f.orig" "$work/src/store/lua/$f.lua"
done
check || fail "the files restored still fail: $(cat "$work/err")"
printf 'local _mirror_test = 1\n' >>"$work/src/store/lua/claim.lua"
sh "$top_srcdir/build-aux/mirror.sh" update "$work" >/dev/null
check || fail "update did not record the change: $(cat "$work/err")"
echo "PASS: mirror"
