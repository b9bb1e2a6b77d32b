#!/usr/bin/env bash
# tests/equivalence/mirror.sh: build-aux/mirror.sh, the guard that fails
# the build when a Lua file the module mirrors, or the schema of names
# both take, changed since src/store/module/mirror.sums was updated
# (docs/redis-module.md, "One behaviour, two implementations"). On a copy
# of the tree's files:
#  1. the committed fingerprints match the committed Lua and schema;
#  2. a comment added, or a trailing comment changed: still matches;
#  3. a line of code changed in each mirrored file, and an entry added to
#     the schema: the check fails and names that file;
#  4. "update" records the change, and the check passes again.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-mirror.XXXXXX")
on_exit "rm -rf '$work'"
mkdir -p "$work/src/store/lua" "$work/src/store/module"
cp "$top_srcdir"/src/store/lua/*.lua "$work/src/store/lua/"
cp "$top_srcdir/src/store/schema.def" "$work/src/store/"
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
# The schema's comments: a line of its own, and one after an entry.
echo "# a comment at the end" >>"$work/src/store/schema.def"
grep -q '^const MAX_DEPTH .*# ' "$work/src/store/schema.def" ||
	fail "the trailing comment this test rewords is gone from schema.def"
sed -i 's/^\(const MAX_DEPTH .*\)# .*$/\1# reworded by tests\/mirror.sh/' "$work/src/store/schema.def"
check || fail "a comment tripped the check: $(cat "$work/err")"
# Adds LINE to FILE (under src/store/): the check must fail, naming FILE.
must_trip() {
	local file=$1 line=$2

	cp "$work/src/store/$file" "$work/orig"
	printf '%s\n' "$line" >>"$work/src/store/$file"
	if check; then
		fail "a code change in $file passed the check"
	fi
	assert_contains "$(cat "$work/err")" "src/store/$file changed" "the check names $file"
	cp "$work/orig" "$work/src/store/$file"
}
for f in lib create claim finish; do
	must_trip "lua/$f.lua" 'local _mirror_test = 1'
done
must_trip schema.def 'field mirror_test'
check || fail "the files restored still fail: $(cat "$work/err")"
printf 'local _mirror_test = 1\n' >>"$work/src/store/lua/claim.lua"
sh "$top_srcdir/build-aux/mirror.sh" update "$work" >/dev/null
check || fail "update did not record the change: $(cat "$work/err")"
echo "PASS: mirror"
