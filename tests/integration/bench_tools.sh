#!/usr/bin/env bash
# bench_tools.sh: bench/store, bench/store-instr and bench/store-aof build
# the store from the sources bench/store_build.sh lists, not through make:
# a store file that started to call a new one (cluster.c) broke them
# unseen until someone measured. bench/store builds them here and runs a
# small lifecycle with the module (and --memory) and with the Lua
# functions alone, and bench/store-aof one into an AOF, which
# bench/aof-stat reads; the figures are not checked (bench/ is for
# those), only that every job went through and each line is printed.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server gcc pkg-config

for args in "--memory 300" "--lua 300"; do
	# shellcheck disable=SC2086
	out=$("$top_srcdir/bench/store" $args 2>&1) ||
		fail "bench/store $args failed: $(printf '%s\n' "$out" | tail -n 20)"
	for line in "create" "claim + finish" "whole lifecycle" "redis cpu per job"; do
		assert_contains "$out" "$line" "bench/store $args prints \"$line\""
	done
	case $args in
	--memory*) assert_contains "$out" "B pending" "bench/store --memory prints the bytes per pending job" ;;
	esac
done
for args in "100" "--lua 100"; do
	# shellcheck disable=SC2086
	out=$("$top_srcdir/bench/store-aof" $args 2>&1) ||
		fail "bench/store-aof $args failed: $(printf '%s\n' "$out" | tail -n 20)"
	for line in "create:" "claim + finish:" "whole lifecycle:" "HSET jobd:keys:N:N" \
		"SADD jobd:ixb:ru:s:finished:N" "total (commands: no MULTI, EXEC)"; do
		assert_contains "$out" "$line" "bench/store-aof $args prints \"$line\""
	done
done
echo "PASS: bench_tools"
