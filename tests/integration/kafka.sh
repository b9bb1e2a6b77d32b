#!/usr/bin/env bash
# tests/integration/kafka.sh: the consume role end to end (docs/kafka-messages.md), against
# the embedded broker and a real Apache Kafka broker ($JOBD_TEST_KAFKA, or
# one started here with scripts/kafka).
#
# Runs tests/drivers/kafka_driver (the consume role alone) until src/jobd starts
# the consumer itself. Checks: messages of each topic become jobs with the
# right type, key and source; a repeated id returns the existing job; bad
# messages land in the dead-letter topic with their headers and later
# messages still become jobs; kill -9 mid-stream makes no duplicate and
# loses nothing; Redis frozen for 6 s under load: every message becomes a
# job exactly once. Runs on a Redis Cluster too (JOBD_TEST_ON_CLUSTER=1:
# tests/integration/cluster_suites.sh): the outage then freezes the
# primary that owns the store's slot.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need kcat

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-kafka.XXXXXX")
on_exit "rm -rf '$work'"
run_id=$$.$RANDOM

# --- helpers ----------------------------------------------------------------

# start_driver NAME [ARGS...]: runs the driver with $work/jobd.conf.
start_driver() {
	start_kafka_driver "$1" "$work" -c "$work/jobd.conf" "${@:2}"
}

stop_driver() {
	stop_kafka_driver "$1" "$work"
}

job_count() {
	rcli --scan --pattern "$P:job:*" | grep -cE ':job:[0-9]+$' || true
}

# wait_jobs N SECONDS: until N jobs exist.
wait_jobs() {
	local deadline=$((SECONDS + $2))
	while [ "$(job_count)" -lt "$1" ]; do
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "$1 jobs expected after $2 s, found $(job_count)"
		sleep 0.2
	done
}

# field KEY FIELD: a field of the job with idempotency key KEY.
field() {
	local id
	id=$(key_id "$1")
	[ -n "$id" ] || fail "no job with key '$1'"
	rcli hget "$P:job:$id" "$2"
}

# produce TOPIC FILE...: each file is one message, all to partition 0 so
# that their order is kept.
produce() {
	local topic=$1
	shift
	kcat -b "$broker" -t "$topic" -p 0 -P "$@" ||
		fail "kcat cannot produce to $topic"
}

dlq() {
	kcat -b "$broker" -t "$t_dlq" -C -e -q -J 2>/dev/null
}

write_conf() {
	cat >"$work/jobd.conf" <<EOF
$(redis_conf)
[kafka]
brokers = $1
group = jobd-test-$run_id-$2
max_payload = 1KiB
[topics]
events = $t_events
records = $t_records
actions = $t_actions
stats = $t_stats
dlq = $t_dlq
EOF
	# jobctl (key_id, jobctl key) reads it too: the prefix.
	export JOBD_CONFIG=$work/jobd.conf
}

# --- scenarios ---------------------------------------------------------------

# Messages of every kind, good and bad; the driver must already run.
check_messages() {
	local m=$work/msg dlqout n
	mkdir -p "$m"
	printf '{"id":"r1","type":"import","run_by":"ann","low_priority":true,"payload":{"file":"a.csv"}}' >"$m/r1"
	printf '{"id":"r1","type":"import","payload":{"file":"other.csv"}}' >"$m/r1again"
	printf '{"type":"export","payload":{"q":1}}' >"$m/noid"
	# msgpack {"id": 7, "type": "export"}
	printf '\x82\xa2id\x07\xa4type\xa6export' >"$m/mp"
	printf '[1,2]' >"$m/notmap"
	printf '{"id":"bad","type":' >"$m/badjson"
	printf '\x82\xa2id\xa3ab' >"$m/truncmp"
	printf '{"id":"u1","type":"bogus"}' >"$m/unknown"
	{
		printf '{"id":"big","type":"import","payload":{"x":"'
		head -c 3000 /dev/zero | tr '\0' 'a'
		printf '"}}'
	} >"$m/oversize"
	printf '{"id":"after","type":"import"}' >"$m/after"
	printf '{"id":"e1","service":"crm","event":"order.created","data":{"n":1},"run_by":"bob"}' >"$m/e1"
	printf '{"id":"a1","action":"reindex","payload":{"ids":[1]}}' >"$m/a1"

	# Events and actions first: on the real broker each topic's first
	# message creates it, and the group rebalances when the consumer
	# sees it. The dead letters below are counted exactly, so their
	# batch must not be taken back by a rebalance (that sends them again:
	# docs/kafka-messages.md): its topic comes last.
	produce "$t_events" "$m/e1"
	produce "$t_actions" "$m/a1"
	wait_jobs 2 60
	produce "$t_records" "$m/r1" "$m/r1again" "$m/noid" "$m/mp" \
		"$m/notmap" "$m/badjson" "$m/truncmp" "$m/unknown" \
		"$m/oversize" "$m/after"

	wait_jobs 6 60
	sleep 1
	assert_eq 6 "$(job_count)" "jobs (r1 once, noid, mp, after, e1, a1)"

	assert_eq import "$(field "$t_records:r1" type)" "r1 type"
	assert_eq ann "$(field "$t_records:r1" run_by)" "r1 run_by"
	assert_eq 1 "$(field "$t_records:r1" low_priority)" "r1 low_priority"
	assert_eq "$t_records/0@0" "$(field "$t_records:r1" source)" "r1 source"
	assert_contains "$(field "$t_records:r1" payload)" a.csv "r1 payload kept"
	assert_eq export "$(field "$t_records:7" type)" "msgpack id as text"
	assert_eq "$t_records/0@3" "$(field "$t_records:7" source)" "mp source"
	assert_eq import "$(field "$t_records:after" type)" "after the bad ones"
	assert_eq event "$(field "$t_events:e1" type)" "e1 type"
	assert_eq bob "$(field "$t_events:e1" run_by)" "e1 run_by"
	assert_eq action "$(field "$t_actions:a1" type)" "a1 type"
	n=$(jobctl key --scan "$t_records/0@2@*" | wc -l)
	assert_eq 1 "$n" "key of a message without id: topic/partition@offset@cluster"

	local deadline=$((SECONDS + 30))
	while :; do
		dlqout=$(dlq)
		[ "$(grep -c . <<<"$dlqout")" -ge 5 ] && break
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "5 dead letters expected, got: $dlqout"
		sleep 0.5
	done
	assert_eq 5 "$(grep -c . <<<"$dlqout")" "dead letters"
	for off in 4 5 6 7 8; do
		assert_contains "$dlqout" "\"jobd-source\",\"$t_records/0@$off\"" \
			"dead letter of offset $off"
	done
	assert_contains "$dlqout" '"payload":"[1,2]"' "original bytes kept"
	assert_contains "$dlqout" '"payload":"{\"id\":\"bad\",\"type\":"' \
		"invalid JSON kept"
	assert_contains "$dlqout" '"jobd-reason","cannot decode request at' \
		"reason header"
	assert_contains "$dlqout" "\"$t_records/0@8\"" "oversize dead-lettered"
}

# N messages with ids, M without, to the three input topics' partitions 0.
produce_load() {
	local from=$1 to=$2 f=$work/load.$1
	for ((i = from; i < to; i++)); do
		if ((i % 10 == 0)); then
			printf '{"type":"export","payload":{"i":%d}}\n' "$i"
		else
			printf '{"id":"L%d","type":"import","payload":{"i":%d}}\n' "$i" "$i"
		fi
	done >"$f"
	kcat -b "$broker" -t "$t_records" -P -l "$f" ||
		fail "kcat cannot produce the load"
}

check_kill9() {
	local base n=3000
	base=$(job_count)
	produce_load 0 "$n"
	for delay in 0.3 0.6 0.9 1.2; do
		start_driver c9
		sleep "$delay"
		sleep $((RANDOM % 2))
		kill9_kafka_driver c9
	done
	start_driver c9
	wait_jobs $((base + n)) 120
	sleep 2
	stop_driver c9
	assert_eq $((base + n)) "$(job_count)" "kill -9: each message once"
}

check_redis_outage() {
	local base n=4000 rpid
	base=$(job_count)
	start_driver ro
	produce_load 10000 12000
	wait_jobs $((base + 1)) 60 # the consumer is in the group and busy
	rpid=$(redis_pid)
	kill -STOP "$rpid"
	on_exit "kill -CONT $rpid 2>/dev/null"
	produce_load 12000 14000
	# Longer than three Redis timeouts (5 s each): when the consumer is
	# idle already (it is fast), the once-a-second tick (the broker's key,
	# the pending count) can absorb two of them, a batch's create the
	# third. The Kafka view's refresh waits on a thread and a connection
	# of its own, not in front of the creates.
	sleep 17
	kill -CONT "$rpid"
	wait_jobs $((base + n)) 120
	sleep 2
	stop_driver ro
	assert_eq $((base + n)) "$(job_count)" "redis outage: each message once"
	grep -q 'retries=[1-9]' "$work/ro.out" ||
		fail "redis outage: the consumer never retried ($(cat "$work/ro.out"))"
	: >"$work/ro.out"
}

set_topics() {
	t_events=jobs.events t_records=jobs.records t_actions=jobs.actions
	t_stats=jobs.stats t_dlq=jobs.dlq
	if [ "$1" = real ]; then
		# the shared broker keeps topics between runs: our own names
		t_events=t$run_id.events t_records=t$run_id.records
		t_actions=t$run_id.actions t_stats=t$run_id.stats
		t_dlq=t$run_id.dlq
	fi
}

# --- embedded broker -------------------------------------------------------------

echo "# embedded broker"
set_topics embedded
write_conf embedded e
# a broker-only process hosts the broker, so consumers can be killed
start_driver host --broker-only
broker=$(embedded_broker) || exit
assert_contains "$(cat "$work/host.err")" "kafka: embedded broker at $broker" \
	"broker log line"
start_driver c1
assert_eq "$broker" "$(rcli get "$P:broker")" "a second instance joins"
check_messages
stop_driver c1
check_kill9
check_redis_outage

# takeover: the host dies, a consumer starts its own broker once the key
# expires
start_driver c2
sleep 1
kill9_kafka_driver host
deadline=$((SECONDS + 30))
while [ "$(rcli get "$P:broker")" = "$broker" ] ||
	[ -z "$(rcli get "$P:broker")" ]; do
	[ "$SECONDS" -lt "$deadline" ] || fail "no takeover after the host died"
	sleep 0.5
done
broker=$(rcli get "$P:broker")
before=$(job_count)
printf '{"type":"export"}' >"$work/takeover"
produce "$t_records" "$work/takeover"
wait_jobs $((before + 1)) 60
stop_driver c2
assert_eq 0 "$(rcli exists "$P:broker")" "key released at stop"
rcli flushall >/dev/null

# --- real broker -----------------------------------------------------------------

echo "# real broker"
real_broker "$work/kafka"
set_topics real
write_conf "$broker" r
# Topics are created by the first produce; the consumer, subscribed
# before they exist, sees them at its next metadata refresh: make it soon
# (in [kafka]: appended, the line fell into [topics] and was ignored).
sed -i 's/^\[kafka\]$/&\nkafka.topic.metadata.refresh.interval.ms = 1000/' "$work/jobd.conf"
start_driver c1
sleep 2
check_messages
stop_driver c1
check_kill9
check_redis_outage
echo "PASS"
