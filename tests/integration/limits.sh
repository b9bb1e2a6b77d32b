#!/usr/bin/env bash
# tests/integration/limits.sh: per-type limits (docs/job-types.md,
# "Limits") with real Redis and two jobd instances.
#
#  1. A limit of 0, a negative or malformed one is refused naming
#     file:line, by jobd --check-config as by jobd itself.
#  2. concurrency = 2 across two instances: never more than 2 running
#     (sampled from the jobs themselves, every 50 ms), a pending job says
#     it waits for its type's limit (jobctl show, jobctl why), /metrics has the
#     running count and the limit; jobs of another type, and of another
#     root, are not held up behind them.
#  3. rate = 3/2s: no window of 2 s has more than 3 starts.
#  4. kill -9 of an instance holding both slots: once its leases expire
#     the slots come back and the other instance runs the jobs.
#  5. jobctl fsck finds a running count that disagrees with the jobs,
#     and --repair fixes it.
# Runs on a Redis Cluster too (JOBD_TEST_ON_CLUSTER=1:
# tests/integration/cluster_suites.sh).
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need jq
need curl

dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-limits.XXXXXX")
on_exit "rm -rf '$dir'"
handlers=$top_srcdir/tests/fixtures/handlers

# --- 1. bad limits ----------------------------------------------------------
cat >"$dir/bad.conf" <<'CONF'
[type.a]
handler = noop
concurrency = 0
[type.b]
handler = noop
concurrency = -2
[type.c]
handler = noop
rate = 0/1m
[type.d]
handler = noop
rate = 10
[type.e]
handler = noop
rate = 5/0s
[type.f]
handler = noop
concurrency = lots
CONF
rc=0
out=$("$top_builddir/src/jobd" --check-config "$dir/bad.conf" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "--check-config accepted bad limits"
for want in 'bad.conf:3: bad number "0" for [type.a] concurrency' \
	'bad.conf:6: bad number "-2" for [type.b] concurrency' \
	'bad.conf:9: bad rate "0/1m" for [type.c] rate' \
	'bad.conf:12: bad rate "10" for [type.d] rate' \
	'bad.conf:15: bad rate "5/0s" for [type.e] rate' \
	'bad.conf:18: bad number "lots" for [type.f] concurrency'; do
	assert_contains "$out" "$want" "--check-config names the line"
done
rc=0
out=$("$top_builddir/src/jobd" -c "$dir/bad.conf" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "jobd started with bad limits"
assert_contains "$out" 'bad.conf:3: bad number "0" for [type.a] concurrency' \
	"jobd refuses a limit of 0"

# --- 2. concurrency across two instances ------------------------------------
start_redis
conf() { # NAME ROLES
	cat >"$dir/$1.conf" <<CONF
$(redis_conf)
[engine]
roles = $2
instance = $1
workers = 4
lease = 2s
heartbeat = 200ms
[http]
listen = 127.0.0.1:0
[type.slow]
handler = exec
command = $handlers/example.sh
concurrency = 2
[type.paced]
handler = exec
command = $handlers/example.sh
rate = 3/2s
[type.free]
handler = exec
command = $handlers/example.sh
CONF
}
conf a work,http
conf b work
start_jobd a "$dir"
start_jobd b "$dir"
url=$(monitor_url "$dir/a.log")
export JOBD_CONFIG=$dir/a.conf
limits_written() { [ "$(rcli hget "$P:limits" slow)" = '2 0 0' ]; }
wait_for 10 "limits written to the store" limits_written

# Counted from the jobs themselves, not from the store's running count
# (jobctl is too slow to sample with).
running_slow() {
	rcli eval "local n = 0
		for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
			local v = redis.call('HMGET', '$P:job:' .. id, 'type', 'status')
			if v[1] == 'slow' and v[2] == 'in_progress' then n = n + 1 end
		end
		return n" 1 "$P:leases"
}
finished_slow() {
	rcli eval "local n = 0
		for _, id in ipairs(ARGV) do
			if redis.call('HGET', '$P:job:' .. id, 'status') == 'finished' then
				n = n + 1
			end
		end
		return n" 0 "${slow[@]}"
}
# ms since the epoch, from the job's hash.
at() { rcli hget "$P:job:$1" "$2" | tr -d '\r'; }
# slow_round: 8 slow jobs and a free one; checks the limit held
# throughout; sets instances to how many instances ran the slow ones.
slow_round() {
	local n max=0 samples=0 deadline=$((SECONDS + 60)) fs last
	mapfile -t slow < <(jobctl submit slow --count 8 --payload '{"steps": 8, "sleep_ms": 100}')
	assert_eq 8 "${#slow[@]}" "slow jobs submitted"
	# Another root, with a type of no limit, created after them.
	free=$(jobctl submit free --payload '{"steps": 1, "sleep_ms": 10}')
	while [ "$SECONDS" -lt "$deadline" ] && [ "$(finished_slow)" -lt 8 ]; do
		n=$(running_slow)
		samples=$((samples + 1))
		[ "$n" -gt "$max" ] && max=$n
		[ "$n" -le 2 ] || fail "$n jobs of type slow running at once, limit 2"
		sleep 0.05
	done
	[ "$(finished_slow)" -eq 8 ] ||
		fail "the slow jobs did not all finish: $(jobctl list --type slow)"
	assert_eq 2 "$max" "most slow jobs running at once ($samples samples)"
	# And from the jobs' own times: at no moment did more than 2 run.
	for id in "${slow[@]}"; do
		rcli hmget "$P:job:$id" started_at finished_at | tr -d '\r' |
			paste -sd ' ' | awk '{ print $1, 1; print $2, -1 }'
	done | sort -n -k1,1 -k2,2n | awk '{ n += $2; if (n > m) m = n } END { print m }' >"$dir/overlap"
	assert_eq 2 "$(cat "$dir/overlap")" "most slow jobs running at once, from their times"
	# The free job was not held up behind the slow ones: it started
	# before the last slow job did.
	fs=$(at "$free" started_at)
	last=$(for id in "${slow[@]}"; do at "$id" started_at; done | sort -n | tail -n 1)
	[ "$fs" -lt "$last" ] || fail "the free job started at $fs, after the last slow one ($last)"
	instances=$(for id in "${slow[@]}"; do jobctl show "$id" --json | jq -r .instance; done | sort -u | wc -l)
}
# The limit is only shown to hold across instances when both ran slow
# jobs. Which instance takes a freed slot is a race between the two
# dispatchers, both woken by the finish: with another test running
# beside this one, one instance took all 8 in one round of 12 (none of
# 12 alone), and the test failed. Such a round proves the limit for one
# instance only: run another, at most five in all.
for round in 1 2 3 4 5; do
	slow_round
	[ "$instances" -eq 2 ] && break
	echo "# round $round: every slow job ran on one instance; once more"
done
assert_eq 2 "$instances" "slow jobs ran on both instances (in $round rounds)"
assert_eq 0 "$(rcli zcard "$P:slots:slow")" "slots after the last slow job"

# A root whose only ready job is held does not hold up another root or
# another type: while both slots are taken, a new slow job waits and a
# free one created after it runs.
s1=$(jobctl submit slow --payload '{"steps": 300, "sleep_ms": 100}')
s2=$(jobctl submit slow --payload '{"steps": 300, "sleep_ms": 100}')
wait_job 10 "$s1" '.status == "in_progress"'
wait_job 10 "$s2" '.status == "in_progress"'
s3=$(jobctl submit slow --payload '{"steps": 1, "sleep_ms": 10}')
f2=$(jobctl submit free --payload '{"steps": 1, "sleep_ms": 10}')
wait_job 10 "$f2" '.status == "finished"'
job_is "$s3" '.status == "pending"' || fail "s3 ran beyond the limit"
wait_job 10 "$s3" '.waiting_for_limit == "type slow: concurrency 2 (2 running)"'
assert_contains "$(jobctl show "$s3")" "waiting_for_limit" "jobctl show says it"
assert_contains "$(jobctl why "$s3")" "its type's limit holds it back (type slow: concurrency 2 (2 running))" \
	"jobctl why says it"
m=$(curl -fsS "${url}metrics")
assert_contains "$m" "jobd_type_concurrency_limit{store=\"$P\",type=\"slow\"} 2" "metrics: the limit"
assert_contains "$m" "jobd_type_running{store=\"$P\",type=\"slow\"} 2" "metrics: the running count"
assert_contains "$m" "jobd_type_held{store=\"$P\",type=\"slow\"} 1" "metrics: the held job"
assert_contains "$m" "jobd_type_rate_limit{store=\"$P\",type=\"paced\"} 3" "metrics: a rate"
# A stop gives the slots back: the held job runs.
jobctl stop "$s1" "$s2" >/dev/null
wait_job 30 "$s3" '.status == "finished"'
wait_job 10 "$s1" '.status == "stopped"'
wait_job 10 "$s2" '.status == "stopped"'

# --- 3. rate ----------------------------------------------------------------
mapfile -t paced < <(jobctl submit paced --count 7 --payload '{"steps": 1, "sleep_ms": 10}')
for id in "${paced[@]}"; do wait_job 30 "$id" '.status == "finished"'; done
starts=$(for id in "${paced[@]}"; do at "$id" started_at; done | sort -n)
# Any 4 consecutive starts span 2 s or more.
echo "$starts" | awk '{ t[NR] = $1 } END {
	for (i = 4; i <= NR; i++) if (t[i] - t[i - 3] < 2000) {
		printf "starts %d and %d %d ms apart\n", i - 3, i, t[i] - t[i - 3]; exit 1 } }' ||
	fail "more than 3 starts of type paced within 2 s: $(echo $starts)"
span=$(($(echo "$starts" | tail -n 1) - $(echo "$starts" | head -n 1)))
[ "$span" -ge 4000 ] || fail "7 starts at 3 per 2 s took only $span ms"

# --- 4. kill -9 of an instance holding slots ----------------------------------
stop_jobd b
l1=$(jobctl submit slow --payload '{"steps": 100, "sleep_ms": 100}')
l2=$(jobctl submit slow --payload '{"steps": 100, "sleep_ms": 100}')
wait_job 10 "$l1" '.status == "in_progress"'
wait_job 10 "$l2" '.status == "in_progress"'
l3=$(jobctl submit slow --payload '{"steps": 1, "sleep_ms": 10}')
kill9_jobd a
assert_eq 2 "$(rcli zcard "$P:slots:slow")" "slots held by the killed instance"
start_jobd b "$dir"
# b hands the expired leases back: the slots come back, and b runs two
# of the three (which two is the fair scheduler's choice), never more.
running_on_b() {
	rcli eval "local n = 0
		for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
			local v = redis.call('HMGET', '$P:job:' .. id, 'type', 'status', 'instance')
			if v[1] == 'slow' and v[2] == 'in_progress' and v[3] == 'b' then n = n + 1 end
		end
		return n" 1 "$P:leases"
}
two_on_b() { [ "$(running_on_b)" = 2 ]; }
wait_for 30 "two slow jobs running on b" two_on_b
assert_eq 2 "$(rcli zcard "$P:slots:slow")" "slots after the hand-back"
assert_eq 2 "$(running_slow)" "slow jobs running after the hand-back"
jobctl stop "$l1" "$l2" >/dev/null
wait_job 30 "$l3" '.status == "finished"'
no_slots() { [ "$(rcli zcard "$P:slots:slow")" = 0 ]; }
wait_for 20 "slots released by a stop" no_slots

# --- 5. fsck ----------------------------------------------------------------
rcli zadd "$P:slots:slow" 1 "$l3" >/dev/null
rc=0
out=$(jobctl fsck 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "fsck found nothing: $out"
assert_contains "$out" "running count of type slow" "fsck names the running count"
jobctl fsck --repair >/dev/null 2>&1 || true
jobctl fsck >/dev/null || fail "fsck after --repair: $(jobctl fsck 2>&1)"
assert_eq 0 "$(rcli zcard "$P:slots:slow")" "slots after the repair"
stop_jobd b
echo "limits: ok"
