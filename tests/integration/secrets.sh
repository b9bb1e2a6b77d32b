#!/usr/bin/env bash
# tests/integration/secrets.sh: secrets outside the configuration file
# (docs/security.md). A real redis-server requires a password that jobd
# and jobctl read from a file, the monitor's token comes from another,
# jobs run end to end; the password and token never show in jobd's log or
# /metrics; the environment works as well; an unreadable secret file stops
# jobd naming the key and the file; files others may read are warnings.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server curl jq python3
need_jobd
work=$(mktemp -d "/tmp/jobd-secrets.XXXXXX")
on_exit "'$top_srcdir/scripts/redis' stop '$work/redis' >/dev/null 2>&1; rm -rf '$work'"

password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
printf 'requirepass %s\n' "$password" >"$work/redis.conf"
mkdir -p "$work/redis"
# shellcheck disable=SC2046
JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$work/redis" --conf "$work/redis.conf" $(module_args)) ||
	fail "cannot start redis-server with a password"
export JOBD_REDIS

umask 077
printf '%s\n' "$password" >"$work/redis.password"
printf '%s\n' "$token" >"$work/http.token"

# write_conf NAME [REDIS-LINES]: DIR/NAME.conf, mode 600.
write_conf() {
	cat >"$work/$1.conf" <<CONF
[redis]
address = $JOBD_REDIS
${2-password_file = redis.password}
[kafka]
brokers = embedded
[engine]
roles = work,http
workers = 2
data_dir = $work
[http]
listen = 127.0.0.1:0
token_file = $work/http.token
[type.slow]
handler = noop
CONF
}

write_conf jobd
export JOBD_CONFIG=$work/jobd.conf

# Without the password Redis refuses: the file is what lets jobctl in.
err=$(jobctl -c /dev/null list 2>&1 >/dev/null) && fail "jobctl without a password"
assert_contains "$err" "NOAUTH" "Redis requires the password"

start_jobd jobd
url=$(monitor_url "$work/jobd.log")
id=$(jobctl submit noop --payload '{"steps": 3, "sleep_ms": 10}') ||
	fail "submit with the password from the file"
wait_job 20 "$id" '.status == "finished"'

# The token from token_file guards operations.
id2=$(jobctl submit slow --payload '{"steps": 1000, "sleep_ms": 100}')
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	--data-binary "{\"op\": \"stop\", \"ids\": [$id2]}" "${url}api/jobs/ops")
assert_eq 401 "$code" "an operation without the token"
code=$(curl -s -o "$work/ops.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $token" \
	--data-binary "{\"op\": \"stop\", \"ids\": [$id2]}" "${url}api/jobs/ops")
assert_eq 200 "$code" "an operation with the token of token_file"
assert_eq true "$(jq -r '.results[0].ok' "$work/ops.json")" "the stop was done"
wait_job 20 "$id2" '.status == "stopped"'

# Neither secret shows in /metrics or the log.
curl -sf "${url}metrics" >"$work/metrics" || fail "GET /metrics"
grep -q '^jobd_' "$work/metrics" || fail "no metrics: $(cat "$work/metrics")"
stop_jobd jobd
for f in "$work/metrics" "$work/jobd.log"; do
	! grep -qF -e "$password" -e "$token" "$f" || fail "a secret in $f"
done
! grep -q "warning" "$work/jobd.log" || fail "warnings with mode-600 files: $(cat "$work/jobd.log")"

# The environment instead of a file.
write_conf env "# no password"
JOBD_REDIS_PASSWORD=$password jobctl -c "$work/env.conf" show "$id" >/dev/null ||
	fail "jobctl with JOBD_REDIS_PASSWORD"
err=$(jobctl -c "$work/env.conf" show "$id" 2>&1 >/dev/null) && fail "jobctl without JOBD_REDIS_PASSWORD"
assert_contains "$err" "NOAUTH" "without the variable, no password"

# An unreadable secret file stops jobd at once, naming key and file.
write_conf missing "password_file = $work/nowhere"
rc=0
timeout 20 "$top_builddir/src/jobd" -c "$work/missing.conf" >"$work/missing.log" 2>&1 || rc=$?
assert_eq 1 "$rc" "jobd with a missing secret file"
assert_contains "$(cat "$work/missing.log")" \
	"missing.conf:3: cannot read \"$work/nowhere\" for [redis] password_file: No such file or directory" \
	"the message names the file and the key"

# A secret file, or a file holding a secret, that others may read: a
# warning at start, and jobd runs.
chmod 644 "$work/redis.password"
write_conf inline "password = $password"
chmod 640 "$work/inline.conf"
start_jobd inline
monitor_url "$work/inline.log" >/dev/null
stop_jobd inline
log=$(cat "$work/inline.log")
assert_contains "$log" "inline.conf:3: warning: a secret in a file that group or others may read (mode 0640)" \
	"warning for the configuration file"
cp "$work/jobd.conf" "$work/again.conf"
start_jobd again
monitor_url "$work/again.log" >/dev/null
stop_jobd again
assert_contains "$(cat "$work/again.log")" \
	"warning: \"$work/redis.password\" for [redis] password_file is readable by group or others (mode 0644)" \
	"warning for the secret file"
! grep -qF "$password" "$work/again.log" "$work/inline.log" || fail "a secret in a warning"
echo "PASS: secrets"
