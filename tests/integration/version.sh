#!/usr/bin/env bash
# tests/integration/version.sh: what a build says it is.
#
# jobd --version and jobctl --version print the package version and the
# git revision of the build, and /metrics serves the same pair as
# jobd_build_info; the revision is the checkout's HEAD (build-aux/
# revision.sh), or the .revision a tarball carries when there is no .git.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need curl redis-cli
need_jobd
jobctl_bin=$top_builddir/src/jobctl
[ -x "$jobctl_bin" ] || fail "missing $jobctl_bin (make builds it)"
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-version.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"

version=$(sed -n 's/^AC_INIT(\[jobd\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
[ -n "$version" ] || fail "no version in configure.ac's AC_INIT"

# The revision this build must carry, found without the script under test.
if [ -f "$top_srcdir/.revision" ]; then
	revision=$(head -n 1 "$top_srcdir/.revision")
elif head=$(git -C "$top_srcdir" rev-parse --short=12 HEAD 2>/dev/null); then
	revision=$head
	git -C "$top_srcdir" diff --quiet HEAD -- || revision=$head-dirty
else
	fail "$top_srcdir has neither .git nor .revision"
fi

# --- --version ---------------------------------------------------------------
for prog in jobd jobctl; do
	out=$("$top_builddir/src/$prog" --version) || fail "$prog --version exited $?"
	[[ $out =~ ^$prog\ ([^ ]+)\ \(revision\ ([^,]+),\ librdkafka\ [0-9.]+\)$ ]] ||
		fail "$prog --version printed '$out', want '$prog VERSION (revision R, librdkafka V)'"
	assert_eq "$version" "${BASH_REMATCH[1]}" "$prog --version: the version"
	assert_eq "$revision" "${BASH_REMATCH[2]}" \
		"$prog --version: the revision (a stale build? run make)"
done

# --- build-aux/revision.sh in a tarball: .revision, not the enclosing .git ---
# make distcheck unpacks the tarball inside the checkout's build directory:
# the checkout's commit is not the tarball's.
mkdir -p "$work/tarball"
echo 0123456789ab >"$work/tarball/.revision"
sh "$top_srcdir/build-aux/revision.sh" "$work/tarball" "$work/revision.h" ||
	fail "revision.sh failed on a tree with .revision"
assert_contains "$(cat "$work/revision.h")" '#define JOBD_REVISION "0123456789ab"' \
	"a tarball's revision is its .revision"
touch -d '2000-01-01' "$work/revision.h"
sh "$top_srcdir/build-aux/revision.sh" "$work/tarball" "$work/revision.h"
assert_eq 946684800 "$(date -u -r "$work/revision.h" +%s)" \
	"an unchanged revision leaves the header alone (nothing recompiles)"
rm "$work/tarball/.revision"
assert_eq unknown "$(cd "$work" && sh "$top_srcdir/build-aux/revision.sh" "$work/tarball")" \
	"a tree with neither .git nor .revision"
echo '0123; rm -rf /' >"$work/tarball/.revision"
sh "$top_srcdir/build-aux/revision.sh" "$work/tarball" "$work/bad.h" 2>"$work/bad.err" &&
	fail "revision.sh took a .revision that is no revision"
assert_contains "$(cat "$work/bad.err")" 'bad revision "0123; rm -rf /"' "a bad .revision is named"

# --- /metrics ------------------------------------------------------------------
start_redis
cat >"$work/monitor.conf" <<CONF
[engine]
roles = http
[http]
listen = 127.0.0.1:0
CONF
start_jobd monitor
url=$(monitor_url "$work/monitor.log")
assert_contains "$(cat "$work/monitor.log")" "jobd $version (revision $revision) starting" \
	"the log names the revision"
metrics=$(curl -fsS "${url}metrics") || fail "GET /metrics failed"
info=$(printf '%s\n' "$metrics" | grep '^jobd_build_info' || true)
[[ $info =~ ^jobd_build_info\{instance=\"[^\"]+\",version=\"$version\",revision=\"$revision\"\}\ 1$ ]] ||
	fail "/metrics: jobd_build_info is '$info'"
assert_contains "$metrics" "# TYPE jobd_build_info gauge" "/metrics: its type"
stop_jobd monitor
echo "version.sh: ok"
