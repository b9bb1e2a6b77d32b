#!/usr/bin/env bash
# Redis AUTH: a password, and an ACL user, from the config file; a wrong
# one is a clear error (jobctl exit 3, jobd refuses to start: exit 1).
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

command -v redis-server >/dev/null 2>&1 ||
	skip_or_fail "redis-server not found (run scripts/bootstrap)"
dir=$(mktemp -d "/tmp/jobd-auth.XXXXXX")
on_exit "'$top_srcdir/scripts/redis' stop '$dir/redis' >/dev/null 2>&1; rm -rf '$dir'"
cat >"$dir/acl.conf" <<'CONF'
requirepass s3cret
user alice on >apw ~jobd:* &* +@all -@dangerous +script|load +info
CONF
mkdir -p "$dir/redis"
# shellcheck disable=SC2046
JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$dir/redis" --conf "$dir/acl.conf" $(module_args)) ||
	fail "cannot start redis-server with AUTH"
export JOBD_REDIS

conf() {
	printf '[redis]\n%s\n' "$1" >"$dir/jobd.conf"
	echo "$dir/jobd.conf"
}

# Without a password: refused, exit 3, one line naming the problem.
err=$(jobctl submit noop 2>&1 >/dev/null); rc=$?
assert_eq 3 "$rc" "submit without a password"
assert_contains "$err" "NOAUTH" "the reason"
assert_eq 1 "$(printf '%s\n' "$err" | wc -l)" "one line on stderr"

# The default user's password.
c=$(conf "password = s3cret")
id=$(jobctl -c "$c" submit noop) || fail "submit with the password"
assert_eq pending "$(jobctl -c "$c" show "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" "job made with AUTH"

# An ACL user.
c=$(conf "$(printf 'user = alice\npassword = apw')")
id2=$(jobctl -c "$c" submit noop) || fail "submit as ACL user alice"
[ "$id2" -gt "$id" ] || fail "ACL user's job id $id2 after $id"
jobctl -c "$c" list --json >/dev/null || fail "list as ACL user"

# A wrong password: jobctl exit 3, jobd refuses to start (exit 1) at once.
c=$(conf "password = wrong")
err=$(jobctl -c "$c" list 2>&1 >/dev/null); rc=$?
assert_eq 3 "$rc" "wrong password"
assert_contains "$err" "cannot authenticate" "wrong password message"
timeout 20 "$top_builddir/src/jobd" -c "$c" >"$dir/jobd.out" 2>&1; rc=$?
assert_eq 1 "$rc" "jobd with a wrong password"
assert_contains "$(cat "$dir/jobd.out")" "cannot authenticate" "jobd's message"
echo "PASS: auth"
