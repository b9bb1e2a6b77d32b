#!/bin/sh
# revision.sh SRCDIR [HEADER]: the git revision jobd is built from.
#
# Without HEADER, prints it; with HEADER, writes there a header defining
# JOBD_REVISION, but only when its text changed, so that a build where the
# revision stayed recompiles nothing and one where it moved recompiles only
# what prints it (jobd and jobctl --version, /metrics).
#
# The revision is SRCDIR/.revision when there is one (make dist writes it
# into the tarball, which has no .git), else the commit of the git checkout
# SRCDIR is the top of (12 hex digits, "-dirty" when tracked files differ
# from it), else "unknown". .revision comes first because a tarball
# unpacked inside another checkout (make distcheck's) is not that commit.
set -eu

src=$1
header=${2:-}

revision() {
	if [ -f "$src/.revision" ]; then
		sed -n '1p' "$src/.revision"
		return
	fi
	top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null) || top=
	if [ -n "$top" ] && [ "$top" = "$(cd "$src" && pwd -P)" ] &&
		rev=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null); then
		git -C "$src" diff --quiet HEAD -- 2>/dev/null || rev=$rev-dirty
		echo "$rev"
		return
	fi
	echo unknown
}

rev=$(revision)
case $rev in
'' | *[!0-9a-zA-Z.-]*)
	echo "revision.sh: bad revision \"$rev\" (from $src/.revision?)" >&2
	exit 1
	;;
esac
if [ -z "$header" ]; then
	echo "$rev"
	exit 0
fi
text="/* Written by build-aux/revision.sh: the git revision of this build. */
#define JOBD_REVISION \"$rev\""
if [ -f "$header" ] && [ "$(cat "$header")" = "$text" ]; then
	exit 0
fi
mkdir -p "$(dirname "$header")"
printf '%s\n' "$text" >"$header.tmp"
mv "$header.tmp" "$header"
