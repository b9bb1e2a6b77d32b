#!/bin/sh
# run.sh: build one libFuzzer target with clang and fuzz it for a bounded time.
#
#   tests/fuzz/run.sh TARGET [SECONDS]
#
# TARGET is a name such as "conf": the target is tests/fuzz/fuzz_TARGET.c,
# its seeds tests/fuzz/corpus/TARGET/, the code under test is listed in
# sources_of() below. A path ending in fuzz_TARGET.c or TARGET.fuzz is
# accepted too, so automake can pass a test's file name. SECONDS defaults to
# $FUZZ_SECONDS, else 60.
#
# The fuzzer runs over a copy of the corpus (new inputs are not written into
# the source tree) in a temp dir. The binary goes to
# $top_builddir/tests/fuzz/ when top_builddir is set (make check), else to
# the temp dir.
#
# Exit: 0 nothing found; 1 a crash, leak, timeout or build error (the
# reproducer's path is printed and kept); 77 skipped: clang or libFuzzer
# missing while CI is not "true", or the target's sources are not written
# yet.
set -u

usage() {
	echo "usage: $0 TARGET [SECONDS]" >&2
	exit 2
}

# The code each target links, relative to the source tree. Add a target
# here when adding tests/fuzz/fuzz_NAME.c.
sources_of() {
	case $1 in
	conf) echo "src/base/conf.c src/base/cron.c src/base/tz.c src/base/util.c src/base/log.c" ;;
	codec) echo "src/kafka/codec.c src/base/schedule.c src/base/conf.c src/base/cron.c src/base/tz.c src/base/util.c src/base/log.c" ;;
	execproto) echo "src/handlers/execproto.c src/kafka/codec.c src/base/schedule.c src/base/conf.c src/base/cron.c src/base/tz.c src/base/util.c src/base/log.c" ;;
	csv) echo "src/handlers/csv.c src/kafka/codec.c src/base/schedule.c src/base/conf.c src/base/cron.c src/base/tz.c src/base/util.c src/base/log.c" ;;
	http) echo "src/http/parse.c src/base/conf.c src/base/cron.c src/base/tz.c src/base/job.c src/base/schedule.c src/base/util.c src/base/log.c" ;;
	ndjson) echo "src/handlers/ndjson.c src/handlers/csv.c src/kafka/codec.c src/base/schedule.c src/base/conf.c src/base/cron.c src/base/tz.c src/base/util.c src/base/log.c" ;;
	*) return 1 ;;
	esac
}

# pkg-config modules each target needs; "msgpack" falls back to msgpack-c.
packages_of() {
	case $1 in
	codec | execproto | csv | ndjson) echo "jansson msgpack" ;;
	http | conf) echo "jansson" ;;
	*) echo "" ;;
	esac
}

skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $1 (CI=true)" >&2
		exit 1
	fi
	echo "SKIP: $1" >&2
	exit 77
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
target=$(basename "$1")
target=${target%.fuzz}
target=${target%.c}
target=${target#fuzz_}
secs=${2:-${FUZZ_SECONDS:-60}}
case $secs in
'' | *[!0-9]*) usage ;;
esac

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-}
cc=${CLANG:-clang}

srcs=$(sources_of "$target") || {
	echo "$0: unknown target \"$target\": add it to sources_of()" >&2
	exit 2
}
for f in $srcs "tests/fuzz/fuzz_$target.c"; do
	# A path left behind by a move must fail CI, not skip.
	[ -f "$top_srcdir/$f" ] || skip_or_fail "fuzz target $target: $f does not exist"
done

command -v "$cc" >/dev/null 2>&1 || skip_or_fail "$cc not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-fuzz-$target.XXXXXX") || exit 1
keep=no
cleanup() {
	[ "$keep" = yes ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# clang without compiler-rt cannot link libFuzzer: that is a missing tool,
# not a bug in the target.
cat >"$work/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	return d && n > 1000000 ? 1 : 0;
}
EOF
"$cc" $san "$work/probe.c" -o "$work/probe" >/dev/null 2>&1 ||
	skip_or_fail "$cc cannot build libFuzzer targets (compiler-rt missing?)"

pkg_cflags=
pkg_libs=
for p in $(packages_of "$target"); do
	if ! pkg-config --exists "$p" 2>/dev/null; then
		if [ "$p" = msgpack ] && pkg-config --exists msgpack-c 2>/dev/null; then
			p=msgpack-c
		else
			skip_or_fail "pkg-config module $p not found"
		fi
	fi
	pkg_cflags="$pkg_cflags $(pkg-config --cflags "$p")"
	pkg_libs="$pkg_libs $(pkg-config --libs "$p")"
done

if [ -n "$top_builddir" ]; then
	bindir=$top_builddir/tests/fuzz
	mkdir -p "$bindir" || exit 1
else
	bindir=$work
fi
bin=$bindir/fuzz_$target

# config.h is generated into the build tree; without one (a bare checkout
# fuzzed by hand) an empty one will do, the code only needs feature macros.
inc="-I$top_srcdir -I$top_srcdir/src"
if [ -n "$top_builddir" ] && [ -f "$top_builddir/config.h" ]; then
	inc="-I$top_builddir -I$top_builddir/src $inc"
elif [ ! -f "$top_srcdir/config.h" ]; then
	echo '#define _GNU_SOURCE 1' >"$work/config.h"
	inc="-I$work $inc"
fi

paths=
for f in $srcs "tests/fuzz/fuzz_$target.c"; do
	paths="$paths $top_srcdir/$f"
done
echo "building $bin"
# shellcheck disable=SC2086 # word splitting of flag lists is intended
"$cc" -g -O1 -fno-omit-frame-pointer $san $inc $pkg_cflags $paths \
	-o "$bin" $pkg_libs -pthread || {
	echo "FAIL: cannot build fuzz target $target" >&2
	exit 1
}

mkdir -p "$work/corpus"
if [ -d "$top_srcdir/tests/fuzz/corpus/$target" ]; then
	cp -R "$top_srcdir/tests/fuzz/corpus/$target/." "$work/corpus/"
else
	echo "warning: no seeds in tests/fuzz/corpus/$target/" >&2
fi

echo "fuzzing $target for ${secs}s"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus"
rc=$?
if [ $rc -ne 0 ]; then
	keep=yes
	echo "FAIL: fuzz target $target exited $rc; reproducer(s):" >&2
	ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* \
		2>/dev/null >&2
	echo "reproduce with: $bin FILE" >&2
	exit 1
fi
echo "PASS: fuzz target $target: nothing found in ${secs}s"
exit 0
