#!/usr/bin/env bash
# tests/equivalence/schema.sh: build-aux/schema.sh, which gives the Lua
# functions and the module their shared names from src/store/schema.def
# (docs/redis-module.md, "One list of names"):
#  1. schema.h compiles, and its enums index the names in the schema's
#     order; keys and numbers are the schema's values;
#  2. the Lua symbols become their literals, and a word that only ends
#     like a symbol is left alone;
#  3. a symbol the schema lacks fails, naming the file and line, in
#     schema.sh and through lua2c.sh (whose pipeline must not hide it);
#  4. a malformed schema line fails, naming its line.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need cc
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-schema.XXXXXX")
on_exit "rm -rf '$work'"
schema=$top_srcdir/src/store/schema.def
sh_schema() { sh "$top_srcdir/build-aux/schema.sh" "$@"; }

# 1. The header, against the schema read here independently.
mkdir -p "$work/store"
sh_schema header "$schema" >"$work/store/schema.h" || fail "schema.sh header failed"
cat >"$work/names.c" <<'EOF'
#include <stdio.h>
#include "store/schema.h"
static const char *const fields[NFIELDS] = { SCHEMA_FIELD_NAMES };
static const char *const statuses[NSTATUSES] = { SCHEMA_STATUS_NAMES };
int main(void)
{
	for (int i = 0; i < NFIELDS; i++)
		printf("field %s\n", fields[i]);
	for (int i = 0; i < NSTATUSES; i++)
		printf("status %s\n", statuses[i]);
	printf("%d %s %s %s %s %d %d\n", F_STATUS, fields[F_LOW_PRIORITY],
	       statuses[S_IN_PROGRESS], K_READY, W_WAIT_SUM, N_MAX_DEPTH,
	       N_MINUTE_MS);
	return 0;
}
EOF
cc -Wall -Werror -I"$work" -o "$work/names" "$work/names.c" || fail "schema.h does not compile"
"$work/names" >"$work/names.out"
awk '{ sub(/#.*/, "") } $1 == "field" || $1 == "status" { print $1, $2 }' "$schema" >"$work/want"
[ "$(grep -c '' "$work/want")" -gt 50 ] || fail "the schema lists $(grep -c '' "$work/want") fields and statuses: this test reads it wrong"
assert_eq "$(cat "$work/want")" "$(head -n -1 "$work/names.out")" "schema.h lists the fields and statuses in the schema's order"
assert_eq "0 low_priority in_progress :ready: wait_sum 32 60000" "$(tail -n 1 "$work/names.out")" \
	"schema.h indexes names by enum and has the keys and numbers"

# 2. Substitution.
cat >"$work/ok.lua" <<'EOF'
local f = {F_status, S_IN_PROGRESS, W_created}
redis.call('GET', P .. K_ready .. id) -- depth < N_MAX_DEPTH
local XF_status, MY_S_PENDING = 1, 2
EOF
out=$(sh_schema lua "$schema" "$work/ok.lua") || fail "schema.sh lua refused a file of known symbols"
assert_eq "local f = {'status', 'in_progress', 'created'}
redis.call('GET', P .. ':ready:' .. id) -- depth < 32
local XF_status, MY_S_PENDING = 1, 2" "$out" "the symbols become their literals, other words stay"

# 3. A symbol the schema lacks.
printf 'local a = F_status\nlocal b = F_statsu\n' >"$work/bad.lua"
if sh_schema lua "$schema" "$work/bad.lua" >/dev/null 2>"$work/err"; then
	fail "a misspelt field passed schema.sh"
fi
assert_contains "$(cat "$work/err")" "bad.lua:2: F_statsu is not in the schema" "the error names the file, line and symbol"
mkdir -p "$work/tree/src/store/lua"
cp "$top_srcdir"/src/store/lua/*.lua "$work/tree/src/store/lua/"
cp "$schema" "$work/tree/src/store/"
lua2c() { (cd "$work/tree/src/store/lua" && sh "$top_srcdir/build-aux/lua2c.sh" . lib.lua claim.lua finish.lua); }
lua2c >/dev/null 2>"$work/err" || fail "lua2c.sh fails on the tree's Lua: $(cat "$work/err")"
printf 'local _schema_test = K_raedy\n' >>"$work/tree/src/store/lua/claim.lua"
if lua2c >/dev/null 2>"$work/err"; then
	fail "lua2c.sh embedded a Lua file with a symbol the schema lacks"
fi
assert_contains "$(cat "$work/err")" "claim.lua:" "lua2c.sh names the file"
assert_contains "$(cat "$work/err")" "K_raedy is not in the schema" "lua2c.sh names the symbol"

# 4. Malformed schema lines.
bad_schema() {
	local line=$1 want=$2
	{ cat "$schema"; printf '%s\n' "$line"; } >"$work/bad.def"
	if sh_schema header "$work/bad.def" >/dev/null 2>"$work/err"; then
		fail "schema.sh took the line \"$line\""
	fi
	assert_contains "$(cat "$work/err")" "bad.def:$(grep -c '' "$work/bad.def"): $want" "\"$line\" is refused"
}
bad_schema "field 9lives" "a name must be a Lua identifier"
bad_schema "field status" "field \"status\" again"
bad_schema "status stopped extra" "status takes a name alone"
bad_schema "key lost nocolon" "key takes a name and a value starting with"
bad_schema "const SOON later" "const takes a name and a number"
bad_schema "table jobs" "unknown kind \"table\""
echo "PASS: schema"
