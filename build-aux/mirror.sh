#!/bin/sh
# mirror.sh check|update SRCDIR: the Lua files that jobd's Redis module
# mirrors in C (src/store/module/), and the schema of names both take
# (src/store/schema.def), fingerprinted.
#
# src/store/module/mirror.sums holds a SHA-256 of each file's code (comment
# lines, trailing " -- " comments in Lua and " #" ones in the schema, and
# blank lines left out, so that a comment can change freely). "check"
# fails the build when a file's code no longer matches its line: the Lua
# or the schema changed, and nobody has looked at the C that mirrors it
# since (a new field or status changes the module's enums; a key or
# constant it uses changes what it writes). Whoever changes one of them
# changes the module the same way (or finds it needs nothing), runs
# tests/equivalence/module.sh, then "make mirror-update" to record the new
# fingerprints with the change.
set -eu

mode=$1
src=$2
sums=$src/src/store/module/mirror.sums
files="src/store/schema.def src/store/lua/lib.lua src/store/lua/create.lua
	src/store/lua/claim.lua src/store/lua/finish.lua"

code_sum() {
	case $1 in
	*.def) c='#' ;;
	*) c='--' ;;
	esac
	sed -e "s/^[[:space:]]*$c.*\$//" -e "s/[[:space:]][[:space:]]*$c[[:space:]].*\$//" \
		-e 's/[[:space:]]*$//' "$1" | grep -v '^$' | sha256sum | cut -d' ' -f1
}

current() {
	for f in $files; do
		echo "$(code_sum "$src/$f")  $f"
	done
}

case $mode in
update)
	{
		echo "# The code of the Lua files src/store/module/ mirrors in C, and of"
		echo "# the schema of names both take, as build-aux/mirror.sh reads it."
		echo "# Update with 'make mirror-update' only after the module matches"
		echo "# (tests/equivalence/module.sh)."
		current
	} >"$sums.tmp"
	mv "$sums.tmp" "$sums"
	echo "mirror.sh: $sums updated"
	;;
check)
	bad=0
	current >"${TMPDIR:-/tmp}/mirror.$$"
	while read -r sum file; do
		if ! grep -q "^$sum  $file\$" "$sums" 2>/dev/null; then
			echo "mirror.sh: $file changed since the module was last checked against it" >&2
			bad=1
		fi
	done <"${TMPDIR:-/tmp}/mirror.$$"
	rm -f "${TMPDIR:-/tmp}/mirror.$$"
	if [ $bad = 1 ]; then
		echo "mirror.sh: make src/store/module/ (lib.c, create.c, claim.c, finish.c) do what the Lua and the schema now say, or see that it need not; run tests/equivalence/module.sh; then 'make mirror-update' and commit src/store/module/mirror.sums with the change (docs/redis-module.md)" >&2
		exit 1
	fi
	;;
*)
	echo "usage: mirror.sh check|update SRCDIR" >&2
	exit 2
	;;
esac
