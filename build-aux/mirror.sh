#!/bin/sh
# mirror.sh check|update SRCDIR: the Lua files that jobd's Redis module
# mirrors in C (src/store/module/), fingerprinted.
#
# src/store/module/mirror.sums holds a SHA-256 of each file's code (comment
# lines, trailing " -- " comments and blank lines left out, so that a
# comment can change freely). "check" fails the build when a file's code no
# longer matches its line: the Lua changed, and nobody has looked at the C
# that mirrors it since. Whoever changes one of them changes the module the
# same way (or finds it needs nothing), runs tests/equivalence/module.sh, then
# "make mirror-update" to record the new fingerprints with the change.
set -eu

mode=$1
src=$2
sums=$src/src/store/module/mirror.sums
files="lib.lua create.lua claim.lua finish.lua"

code_sum() {
	sed -e 's/^[[:space:]]*--.*$//' -e 's/[[:space:]][[:space:]]*--[[:space:]].*$//' \
		-e 's/[[:space:]]*$//' "$1" | grep -v '^$' | sha256sum | cut -d' ' -f1
}

current() {
	for f in $files; do
		echo "$(code_sum "$src/src/store/lua/$f")  src/store/lua/$f"
	done
}

case $mode in
update)
	{
		echo "# The code of the Lua files src/store/module/ mirrors in C, as"
		echo "# build-aux/mirror.sh reads it. Update with 'make mirror-update'"
		echo "# only after the module matches (tests/equivalence/module.sh)."
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
		echo "mirror.sh: make src/store/module/ (lib.c, create.c, claim.c, finish.c) do what the Lua now does, or see that it need not; run tests/equivalence/module.sh; then 'make mirror-update' and commit src/store/module/mirror.sums with the change (docs/redis-module.md)" >&2
		exit 1
	fi
	;;
*)
	echo "usage: mirror.sh check|update SRCDIR" >&2
	exit 2
	;;
esac
