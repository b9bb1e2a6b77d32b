#!/usr/bin/env bash
# tests/integration/config_check.sh: jobd --check-config FILE.
#
# It starts nothing: it parses FILE and checks every key, then prints the
# effective configuration (defaults, FILE, environment; secrets hidden)
# and exits 0, or prints a FILE:LINE: line for every error of FILE, not
# just the first, and exits 2. An unknown key, which a start only warns
# about, fails the check.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-confcheck.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"
unset JOBD_CONFIG JOBD_BROKERS
# Nothing may be contacted: this Redis does not exist.
export JOBD_REDIS=$work/no-redis.sock

# check FILE: runs jobd --check-config FILE; $out, $err and $rc.
check() {
	rc=0
	timeout 20 "$jobd_bin" --check-config "$1" >"$work/out" 2>"$work/err" || rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

# --- the shipped file: every key with its default -------------------------------
check "$top_srcdir/config/jobd.conf"
assert_eq 0 "$rc" "the shipped jobd.conf checks (stderr: $err)"
assert_eq "" "$err" "nothing on stderr for a good file"
for section in redis kafka topics engine retention stats http; do
	assert_contains "$out" $'\n'"[$section]"$'\n' "the effective config has [$section]"
done
assert_contains "$out" $'\n'"address = $JOBD_REDIS"$'\n' "the environment overrides the file"
assert_contains "$out" $'\nlease = 10s\nheartbeat = 1s\n' "durations in the file's units"
assert_contains "$out" $'\n; [type.exec] (built in)\n; handler = exec\n' "built-in types"
# What it prints is a configuration that checks the same.
printf '%s\n' "$out" >"$work/effective.conf"
check "$work/effective.conf"
assert_eq 0 "$rc" "the printed configuration checks (stderr: $err)"
assert_eq "$(tail -n +2 "$work/effective.conf")" "$(printf '%s\n' "$out" | tail -n +2)" \
	"the printed configuration reads back the same"

# --- secrets are hidden -------------------------------------------------------------
cat >"$work/secret.conf" <<'CONF'
[redis]
password = pw-SECRET-1
[kafka]
kafka.sasl.password = pw-SECRET-2
kafka.sasl.username = jobd
[http]
token = tok-SECRET-3
[users]
tok-SECRET-4 = alice
[type.report]
handler = noop
CONF
check "$work/secret.conf"
assert_eq 0 "$rc" "a file with secrets checks (stderr: $err)"
case $out in *SECRET*) fail "a secret is printed: $(printf '%s\n' "$out" | grep SECRET)" ;; esac
assert_contains "$out" $'\npassword = (hidden)\n' "[redis] password hidden"
assert_contains "$out" $'\nkafka.sasl.password = (hidden)\nkafka.sasl.username = jobd\n' \
	"kafka.sasl.password hidden, the user name shown"
assert_contains "$out" $'\ntoken = (hidden)\n' "[http] token hidden"
assert_contains "$out" $'\n; (token hidden) = alice\n' "[users]: names, not tokens"
assert_contains "$out" $'\n[type.report]\nhandler = noop\n' "a configured type"

# --- every error, each with its line -------------------------------------------------
cat >"$work/bad.conf" <<'CONF'
[engine]
workers = lots
lease = 5x
wokers = 4
heartbeat = 1s

[type.report]
handler = nosuch
stoppable = maybe

[type.runner]
retries = 3

[http
listen = 1.2.3.4:80

[kafka]
max_payload = huge
[listener.l]
service = crm
command = "unterminated
CONF
check "$work/bad.conf"
assert_eq 2 "$rc" "a bad file exits 2"
assert_eq "" "$out" "no configuration printed for a bad file"
f=$work/bad.conf
want="$f:2: bad number \"lots\" for [engine] workers: use a whole number from 1 to 1024
$f:3: bad duration \"5x\" for [engine] lease: use a number with ms, s, m, h or d
$f:4: warning: unknown key \"wokers\" in [engine]; ignored
$f:8: unknown handler \"nosuch\" for [type.report] handler: use noop, exec, import, export, event, action, refactor, relationship-update or cleanup
$f:9: bad boolean \"maybe\" for [type.report] stoppable: use yes or no
$f:11: [type.runner] has handler exec but no command: add command = /path/to/program args
$f:14: unterminated section header: close it with ]
$f:18: bad size \"huge\" for [kafka] max_payload: use a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB
$f:21: unterminated double quote in [listener.l] command: close the quote, or escape the character with a backslash
jobd: $f: 8 errors, 1 warning (a start would ignore that line and keep the default: a check fails on it)"
assert_eq "$want" "$err" "every error of bad.conf, in line order"

# A start still stops at the first, with the same line.
rc=0
timeout 20 "$jobd_bin" -c "$work/bad.conf" >"$work/start.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "jobd -c bad.conf exits 1"
assert_eq "jobd: $f:2: bad number \"lots\" for [engine] workers: use a whole number from 1 to 1024" \
	"$(cat "$work/start.out")" "a start names the first error"

# A warning alone fails the check, though a start would go on.
printf '[engine]\nworkers = 2\ncolour = blue\n' >"$work/warn.conf"
check "$work/warn.conf"
assert_eq 2 "$rc" "an unknown key fails the check"
assert_contains "$err" "$work/warn.conf:3: warning: unknown key \"colour\" in [engine]; ignored" \
	"the unknown key and its line"

# A hash-tagged prefix is a prefix; a cluster seed must be a TCP host:port
# in the address's scheme.
printf '[redis]\nprefix = {jobd}\ncluster_seeds = 127.0.0.1:7000,127.0.0.1:7001\n' >"$work/cluster.conf"
check "$work/cluster.conf"
assert_eq 0 "$rc" "a tagged prefix and two seeds: $err"
assert_contains "$out" $'\nprefix = {jobd}\ncluster_seeds = 127.0.0.1:7000,127.0.0.1:7001\n' \
	"the prefix and the seeds printed"
printf '[redis]\ncluster_seeds = 127.0.0.1:7000,/tmp/x.sock\n' >"$work/badseed.conf"
check "$work/badseed.conf"
assert_eq 2 "$rc" "a unix socket as a cluster seed fails the check"
assert_contains "$err" '[redis] cluster_seeds "127.0.0.1:7000,/tmp/x.sock": bad seed "/tmp/x.sock"' \
	"the bad seed named"

# --- the file itself ---------------------------------------------------------------
check "$work/missing.conf"
assert_eq 2 "$rc" "a missing file exits 2"
assert_contains "$err" "cannot read \"$work/missing.conf\": No such file or directory" \
	"a missing file is named"
rc=0
"$jobd_bin" --check-config >/dev/null 2>"$work/err" || rc=$?
assert_eq 2 "$rc" "--check-config without FILE is a usage error"
echo "config_check.sh: ok"
