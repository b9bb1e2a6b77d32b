#!/usr/bin/env bash
# tests/integration/schedules.sh: [schedule.NAME] sections
# (docs/schedules.md) on a real redis-server and two jobd instances.
# The store's clock is the module's test clock (src/store/module/
# testclock.c, as tests/integration/metrics.sh uses it): it jumps to a
# second and a half before a minute boundary and runs on at the real pace,
# so a tick comes in seconds, on the same clock every jobd reads.
#  1. a bad cron, time zone, type, payload or catch_up is an error naming
#     FILE:LINE, at --check-config and at a start;
#  2. a schedule every minute and three hourly ones fire exactly once per
#     tick across both instances, three ticks in a row;
#  3. after a restart of one instance, the next tick fires once and no
#     earlier one again;
#  4. after an outage of every instance (3.5 hours of the store's clock),
#     catch_up = latest fires the latest missed tick once, none fires
#     nothing, all fires each missed tick; the missed count is kept; after
#     Redis was unreachable (SIGSTOP) with the tickers running and three
#     ticks passed, the latest fires once and both instances live on;
#  5. jobctl schedules and GET /api/schedules show the next run and the
#     last job with its status.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"

need redis-server redis-cli curl jq
need_jobd
dir=$(mktemp -d /tmp/jobd-sched.XXXXXX) || fail "cannot create a temp dir"
on_exit "rm -rf '$dir'"

# 1. Bad sections, each error on its line.
cat >"$dir/bad.conf" <<'CONF'
[schedule.bad]
cron = 61 * * * *
timezone = Europe/Nowhere
type = nosuch
payload = {"a":
catch_up = sometimes
[schedule.empty]
enabled = yes
CONF
rc=0
"$jobd_bin" --check-config "$dir/bad.conf" >/dev/null 2>"$dir/check.err" || rc=$?
assert_eq 2 "$rc" "--check-config of bad schedules exits"
errs=$(cat "$dir/check.err")
assert_contains "$errs" "bad.conf:2: [schedule.bad] cron: minute 61 out of range 0-59"
assert_contains "$errs" "bad.conf:3: [schedule.bad] timezone: unknown time zone \"Europe/Nowhere\""
assert_contains "$errs" "bad.conf:4: [schedule.bad] type: unknown job type \"nosuch\""
assert_contains "$errs" "bad.conf:5: [schedule.bad] payload is not valid JSON"
assert_contains "$errs" "bad.conf:6: [schedule.bad] bad catch_up \"sometimes\""
assert_contains "$errs" "bad.conf:7: [schedule.empty] has no cron"
assert_contains "$errs" "bad.conf:7: [schedule.empty] has no type"
printf '[schedule.x]\ncron = 0 0 31 2 *\ntype = noop\n' >"$dir/never.conf"
rc=0
"$jobd_bin" -c "$dir/never.conf" >/dev/null 2>"$dir/never.err" || rc=$?
assert_eq 1 "$rc" "a start with a cron that never fires exits"
assert_contains "$(cat "$dir/never.err")" "never.conf:2: [schedule.x] cron: cron expression \"0 0 31 2 *\" never fires"

# 2. The store with the test clock; two instances.
start_redis_test_clock "$dir"

# 2026-01-05T12:00:00Z, a Monday.
t0=1767614400000
set_clock $((t0 - 30000))

for name in a b; do
	roles=work
	[ $name = a ] && roles=work,http
	cat >"$dir/$name.conf" <<CONF
[engine]
roles = $roles
instance = sched-$name
workers = 2
[http]
listen = 127.0.0.1:0
[type.every_minute]
handler = noop
[type.hourly_latest]
handler = noop
[type.hourly_none]
handler = noop
[type.hourly_all]
handler = noop
[schedule.minutely]
cron = * * * * *
type = every_minute
payload = {"from": "cron"}
[schedule.latest]
cron = @hourly
type = hourly_latest
[schedule.none]
cron = 0 * * * *
type = hourly_none
catch_up = none
[schedule.all]
cron = 0 */1 * * *
timezone = Europe/Paris
type = hourly_all
catch_up = all
[schedule.off]
cron = * * * * *
type = every_minute
enabled = no
CONF
done
export JOBD_CONFIG=$dir/a.conf

# Jobs of TYPE (roots; at most 1000).
count() {
	jobctl list --type "$1" --limit 1000 --json | jq '.jobs | length'
}
# The ticks (ms) of the jobs of TYPE, from their keys, ascending.
ticks() {
	jobctl list --type "$1" --limit 1000 --json |
		jq -r '[.jobs[].key | split(":")[2] | tonumber] | sort | map(tostring) | join(" ")'
}
scheduler_up() {
	grep -q "scheduler: 5 schedules" "$dir/$1.log"
}
# Both instances saw the schedules once (their state exists).
known() {
	[ -n "$(rcli hget jobd:schedule:minutely tick)" ] &&
		[ -n "$(rcli hget jobd:schedule:all tick)" ]
}
# tick MS: moves the clock to 1.5 s before MS, waits until the minutely
# job of MS exists, then 3 s more, so that both tickers stepped past it.
tick() {
	set_clock $(($1 - 1500))
	wait_for 15 "the minutely job of tick $1" \
		eval "[ \"\$(key_id schedule:minutely:$1)\" != '' ]"
	sleep 3
}

start_jobd a "$dir"
start_jobd b "$dir"
wait_for 20 "instance a's scheduler" scheduler_up a
wait_for 20 "instance b's scheduler" scheduler_up b
wait_for 10 "the schedules' state" known
url=$(monitor_url "$dir/a.log") || exit 1

tick $t0
assert_eq 1 "$(count every_minute)" "minutely jobs after 12:00"
assert_eq 1 "$(count hourly_latest)" "hourly (latest) jobs after 12:00"
assert_eq 1 "$(count hourly_none)" "hourly (none) jobs after 12:00: on time"
assert_eq 1 "$(count hourly_all)" "hourly (all) jobs after 12:00"
tick $((t0 + 60000))
tick $((t0 + 120000))
assert_eq 3 "$(count every_minute)" "minutely jobs after three ticks, two instances"
assert_eq "$t0 $((t0 + 60000)) $((t0 + 120000))" "$(ticks every_minute)" \
	"one job per tick"
assert_eq 1 "$(count hourly_latest)" "hourly jobs after 12:02"
id=$(rcli hget jobd:schedule:minutely job)
wait_job 10 "$id" '.status == "finished" and .payload.from == "cron"'
# Both instances created jobs (the log names who was first).
grep -q "scheduler: \[schedule.minutely\] tick" "$dir/a.log" ||
	grep -q "scheduler: \[schedule.minutely\] tick" "$dir/b.log" ||
	fail "no instance logged a tick"

# 3. A restart of a: the next tick fires once; none fires again.
stop_jobd a
start_jobd a "$dir"

tick $((t0 + 180000))
assert_eq 4 "$(count every_minute)" "minutely jobs after a restart"
assert_eq "$t0 $((t0 + 60000)) $((t0 + 120000)) $((t0 + 180000))" \
	"$(ticks every_minute)" "no tick repeated after the restart"

# 4. Every instance down for 3.5 hours of the store's clock.
stop_jobd a
stop_jobd b
set_clock $((t0 + 3 * 3600000 + 1800000)) # 15:30:00
start_jobd a "$dir"
start_jobd b "$dir"
h=3600000
m15=$((t0 + 3 * h + 1800000))
wait_for 20 "the catch-up of the minutely schedule" \
	eval "[ \"\$(key_id schedule:minutely:$m15)\" != '' ]"
wait_for 20 "the catch-up of the hourly (all) schedule" \
	eval "[ \"\$(count hourly_all)\" = 4 ]"
sleep 3
# latest: the 15:30 tick once; 12:04 to 15:29 (206 ticks) skipped.
assert_eq 5 "$(count every_minute)" "minutely jobs after the outage"
assert_eq "$m15" "$(ticks every_minute | awk '{ print $NF }')" \
	"the latest missed tick fired"
assert_eq 206 "$(rcli hget jobd:schedule:minutely missed)" "minutely ticks skipped"
assert_eq "$t0 $((t0 + 3 * h))" "$(ticks hourly_latest)" "hourly (latest): 15:00 once"
assert_eq 2 "$(rcli hget jobd:schedule:latest missed)" "hourly (latest) skipped 13:00 and 14:00"
# none: 15:00 was 30 minutes old when seen; nothing fires.
assert_eq "$t0" "$(ticks hourly_none)" "hourly (none): nothing after the outage"
assert_eq 3 "$(rcli hget jobd:schedule:none missed)" "hourly (none) skipped three"
# all: 13:00, 14:00 and 15:00, each once.
assert_eq "$t0 $((t0 + h)) $((t0 + 2 * h)) $((t0 + 3 * h))" "$(ticks hourly_all)" \
	"hourly (all): every missed tick"
# A disabled schedule fires nothing, ever.
[ -z "$(jobctl key --scan 'schedule:off:*')" ] || fail "a disabled schedule fired"

# 4b. Redis unreachable (stopped, SIGSTOP) while the tickers run, then
# back with three minutely ticks missed: the latest fires once.
redis_pid=$(cat "$dir/redis/redis.pid")
kill -STOP "$redis_pid"
on_exit "kill -CONT $redis_pid 2>/dev/null"
sleep 7
kill -CONT "$redis_pid"
m33=$((t0 + 3 * h + 33 * 60000))
set_clock $((m33 + 30000)) # 15:33:30
wait_for 20 "the minutely job of 15:33 after Redis came back" \
	eval "[ \"\$(key_id schedule:minutely:$m33)\" != '' ]"
sleep 3
for name in a b; do
	kill -0 "${jobd_pids[$name]}" 2>/dev/null || fail "jobd $name died while Redis was away"
done
grep -q "scheduler: .*retrying" "$dir/a.log" "$dir/b.log" ||
	fail "no ticker noticed that Redis was away"
assert_eq 6 "$(count every_minute)" "minutely jobs after Redis came back"
assert_eq "$m33" "$(ticks every_minute | awk '{ print $NF }')" \
	"the latest tick missed while Redis was away fired"
assert_eq 208 "$(rcli hget jobd:schedule:minutely missed)" "15:31 and 15:32 skipped"

# 5. jobctl schedules and GET /api/schedules.
out=$(jobctl schedules)
assert_contains "$out" "minutely             * * * * *        UTC                2026-01-05 15:34:00"
assert_contains "$out" "(disabled)"
last=$(jobctl list --type every_minute --limit 1 --json | jq -r '.jobs[0].id')
wait_job 10 "$last" '.status == "finished"'
json=$(jobctl schedules --json)
assert_eq "minutely $last finished 2026-01-05T15:33:00.000Z" \
	"$(jq -r '.[] | select(.name == "minutely") | "\(.name) \(.last.id) \(.last.status) \(.last.tick)"' <<<"$json")" \
	"jobctl schedules --json, minutely"
assert_eq "Europe/Paris latest none all" \
	"$(jq -r '[(.[] | select(.name == "all") | .timezone), (.[] | select(.name == "latest") | .catch_up), (.[] | select(.name == "none") | .catch_up), (.[] | select(.name == "all") | .catch_up)] | join(" ")' <<<"$json")" \
	"time zone and catch_up"
url=$(tail -n 50 "$dir/a.log" | sed -n 's|.*http: monitor on \(http://[^ ]*\).*|\1|p' | tail -n 1)
[ -n "$url" ] || fail "no monitor address in a.log"
api=$(curl -fsS -m 10 "${url}api/schedules") || fail "GET /api/schedules"
assert_eq "$json" "$(jq -c '.schedules' <<<"$api")" "GET /api/schedules = jobctl schedules --json"

stop_jobd a
stop_jobd b
echo "schedules: ok"
