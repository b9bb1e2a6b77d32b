#!/usr/bin/env bash
# tests/integration/kafka_view.sh: the Kafka view (issue 25): each jobd
# with the consume role publishes, per input partition it holds, the
# committed offset, the high watermark, the lag, messages/s, dead letters
# of the last minutes and whether it is paused, under a key of its own
# with a TTL; GET /api/kafka lists every live instance; /metrics has the
# same lag. Against a real broker ($JOBD_TEST_KAFKA, or one started here).
#
# jobd "a" (consume and http, pending_limit 5, no worker) takes two bad
# messages (dead letters) and 20 good ones on events/0, so backpressure
# pauses it; then 30 more are written there. Paused, it reads none of
# them, and the lag must say so: events/0 lag = high watermark -
# committed offset >= 30, and jobd_consumer_lag >= 30 on
# /metrics. Before, the lag was the cached watermark of the last fetch
# minus the read position: 0 while messages piled up. Then jobd "b"
# joins the group and appears in the view beside "a"; killed with
# kill -9, it disappears once its view's TTL (10 s) has passed; "a",
# stopped with SIGTERM, deletes its view at once.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need kcat jq curl

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-kview.XXXXXX")
[ -n "${JOBD_TEST_KEEP:-}" ] || on_exit "rm -rf '$work'"
real_broker "$work/kafka"
t=kv$$.$RANDOM

# conf NAME ROLES
conf() {
	cat >"$work/$1.conf" <<C
[redis]
address = $JOBD_REDIS
[kafka]
brokers = $broker
group = $t
pending_limit = 5
kafka.topic.metadata.refresh.interval.ms = 1000
kafka.session.timeout.ms = 6000
kafka.heartbeat.interval.ms = 500
[topics]
events = $t.events
records = $t.records
actions = $t.actions
stats = $t.stats
dlq = $t.dlq
[engine]
roles = $2
instance = $1
[http]
listen = 127.0.0.1:0
C
}

printf 'not json' | kcat -b "$broker" -t "$t.events" -p 0 -P
printf 'not json either' | kcat -b "$broker" -t "$t.events" -p 0 -P
for i in $(seq 1 20); do
	printf '{"id":"a%d","service":"crm","event":"e"}\n' "$i"
done | kcat -b "$broker" -t "$t.events" -p 0 -P -l /dev/stdin ||
	fail "kcat cannot produce to $t.events on $broker"

conf a consume,http
start_jobd a
base=$(monitor_url "$work/a.log")

view() {
	curl -sf "${base}api/kafka"
}
# part INSTANCE TOPIC PARTITION: that partition's entry in the view.
part() {
	view | jq -c --arg i "$1" --arg t "$2" --argjson p "$3" \
		'.instances[] | select(.instance == $i) | .partitions[] |
		 select(.topic == $t and .partition == $p)'
}
paused() {
	[ "$(view | jq -r '.instances[] | select(.instance == "a") | .paused')" = true ]
}
wait_for 60 "jobd a paused by backpressure (20 pending, limit 5)" paused
for i in $(seq 21 50); do
	printf '{"id":"a%d","service":"crm","event":"e"}\n' "$i"
done | kcat -b "$broker" -t "$t.events" -p 0 -P -l /dev/stdin ||
	fail "kcat cannot produce to $t.events on $broker"

lag_grew() {
	local p
	p=$(part a "$t.events" 0)
	[ -n "$p" ] && [ "$(jq '.high_watermark' <<<"$p")" = 52 ] &&
		[ "$(jq '.lag >= 30' <<<"$p")" = true ]
}
wait_for 30 "events/0: high watermark 52 and a lag of 30 or more while paused" lag_grew
p=$(part a "$t.events" 0)
assert_eq "$(jq '.high_watermark - .committed' <<<"$p")" "$(jq .lag <<<"$p")" \
	"events/0: lag = high watermark - committed offset ($p)"
[ "$(jq '.committed >= 2 and .committed <= 22' <<<"$p")" = true ] ||
	fail "events/0: committed offset not within the 22 messages before the pause: $p"
[ "$(jq '.messages_per_s | type' <<<"$p")" = '"number"' ] ||
	fail "events/0: no messages_per_s: $p"
assert_eq 2 "$(jq .dead_letters <<<"$p")" "events/0: two dead letters"
metrics=$(curl -sf "${base}metrics")
lag=$(sed -n 's/^jobd_consumer_lag{[^}]*} \([0-9]*\)$/\1/p' <<<"$metrics")
[ -n "$lag" ] && [ "$lag" -ge 30 ] ||
	fail "/metrics: jobd_consumer_lag '$lag' while 30 messages wait (paused)"
grep -q '^jobd_consumer_paused{[^}]*} 1$' <<<"$metrics" || fail "/metrics: not paused"
echo "# a paused: events/0 $p; /metrics lag $lag"

# A second instance in the group: both in the view; dead, it disappears.
conf b consume
start_jobd b
both() {
	[ "$(view | jq -c '[.instances[].instance]')" = '["a","b"]' ] &&
		[ "$(view | jq '[.instances[].partitions[]] | length')" -gt 0 ]
}
wait_for 60 "instances a and b in the view" both
ttl=$(rcli pttl jobd:kafka:view:b)
[ "$ttl" -gt 0 ] && [ "$ttl" -le 10000 ] || fail "view of b: TTL $ttl ms, want 1..10000"
kill9_jobd b
t_kill=$SECONDS
only_a() {
	[ "$(view | jq -c '[.instances[].instance]')" = '["a"]' ]
}
wait_for 20 "b gone from the view after its TTL" only_a
echo "# b gone from the view $((SECONDS - t_kill)) s after kill -9"
[ "$(rcli sismember jobd:kafka:views b)" = 0 ] ||
	fail "b still in jobd:kafka:views after its view expired"

# Stopped cleanly, an instance takes its view away at once.
stop_jobd a
assert_eq 0 "$(rcli exists jobd:kafka:view:a)" "view of a deleted at stop"
assert_eq 0 "$(rcli sismember jobd:kafka:views a)" "a out of jobd:kafka:views at stop"
echo "PASS"
