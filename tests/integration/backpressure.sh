#!/usr/bin/env bash
# backpressure.sh: above [kafka] pending_limit pending jobs the consumer
# pauses its partitions, and resumes below it; nothing is dropped.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need kcat
start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-bp.XXXXXX")
on_exit "rm -rf '$dir'"
for role in consume work; do
	cat >"$dir/$role.conf" <<CONF
[engine]
roles = $role
workers = 8
[kafka]
pending_limit = 100
kafka.session.timeout.ms = 6000
kafka.heartbeat.interval.ms = 1000
CONF
done
export JOBD_CONFIG=$dir/consume.conf
"$top_builddir/src/jobd" -c "$dir/consume.conf" 2>"$dir/consume.log" &
cpid=$!
on_exit "kill -9 $cpid 2>/dev/null || true"
for _ in $(seq 1 100); do
	broker=$(rcli get jobd:broker 2>/dev/null || true)
	[ -n "$broker" ] && break
	sleep 0.1
done
[ -n "$broker" ] || fail "no embedded broker: $(cat "$dir/consume.log")"

# 3,000 messages and no worker: consumption stops near the limit (one
# batch of 500 past it at most, and what librdkafka had fetched).
for i in $(seq 1 3000); do
	echo "{\"id\": \"bp-$i\", \"service\": \"crm\", \"event\": \"tick\", \"data\": {}}"
done >"$dir/msgs.ndjson"
kcat -b "$broker" -t jobs.events -P -l "$dir/msgs.ndjson" || fail "kcat could not produce"
pending() { rcli hget jobd:count pending | tr -d '\r'; }
for _ in $(seq 1 150); do
	grep -q "pausing" "$dir/consume.log" && break
	sleep 0.1
done
grep -q "pausing" "$dir/consume.log" || fail "the consumer never paused: $(pending) pending"
sleep 3
p=$(pending)
[ "${p:-0}" -ge 100 ] || fail "paused with $p pending, below the limit"
[ "$p" -lt 3000 ] || fail "all $p messages consumed despite the limit"

# Workers drain the queue: consumption resumes and every message arrives.
"$top_builddir/src/jobd" -c "$dir/work.conf" 2>"$dir/work.log" &
wpid=$!
on_exit "kill -9 $wpid 2>/dev/null || true"
# (The worker instance also runs its hourly cleanup job: count events.)
# The type index of event: the sizes of the buckets its directory lists.
events() {
	rcli eval "local n = 0
		for _, b in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
			n = n + redis.call('SCARD', KEYS[2] .. b)
		end
		return n" 2 jobd:ixd:ru:t:event jobd:ixb:ru:t:event: | tr -d '\r'
}
for _ in $(seq 1 1200); do
	[ "$(events)" -ge 3000 ] && [ "$(pending)" -eq 0 ] && break
	sleep 0.1
done
grep -q "resuming" "$dir/consume.log" || fail "the consumer never resumed"
assert_eq 3000 "$(events)" "event jobs"
assert_eq 0 "$(pending)" "jobs left pending"
kill -TERM "$cpid" "$wpid"
wait "$cpid" || fail "consumer exit status $?"
wait "$wpid" || fail "worker exit status $?"
echo "PASS: backpressure (paused at $p pending, 3000 jobs in the end)"
