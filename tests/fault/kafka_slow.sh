#!/usr/bin/env bash
# tests/fault/kafka_slow.sh: a broker slow to tell its offsets does not
# slow consumption (the Kafka view refreshes on a thread and a Kafka
# handle of its own, src/kafka/consumer.c).
#
# The embedded broker runs in a kafka_driver --broker-only --slow 3000:
# every ListOffsets and OffsetFetch request is answered 3 s late, so each
# refresh of the Kafka view (three such requests, 500 ms timeout each)
# takes 1.5 s. jobd (role consume) takes the first message, then 30
# messages are sent one by one, 200 ms apart, each carrying the time it
# was sent; the job of each must be created within 1 s of its sending.
# Before, the refresh ran on the consumer thread, which polled nothing
# for 1.5 s of every 2.5 s: about a message in five waited over 1 s.
# The view still appears in Redis (its offsets unknown, null), so the
# refresh did run meanwhile. Bounded: about 25 s.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need kcat jq

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-kslow.XXXXXX")
on_exit "rm -rf '$work'"

cat >"$work/slow.conf" <<EOF
[redis]
address = $JOBD_REDIS
[engine]
roles = consume
instance = slow
[kafka]
brokers = embedded
group = jobd-slow-$$
EOF

start_kafka_driver host "$work" -c "$work/slow.conf" --broker-only --slow 3000
broker=$(embedded_broker) || exit
start_jobd slow

# send ID: one message to jobs.records, its sending time (ms) in it.
send() {
	printf '{"id":"%s","type":"import","payload":{"sent":%s}}' "$1" \
		"$(date +%s%3N)" >"$work/msg"
	kcat -b "$broker" -t jobs.records -p 0 -P "$work/msg" ||
		fail "kcat cannot produce $1"
}
made() { [ -n "$(key_id "jobs.records:$1")" ]; }

# The group joined, the first assignment's offsets read (slowly too).
send warm
wait_for 40 "no job from the first message (log: $(tail -n 5 "$work/slow.log"))" made warm

for i in $(seq 1 30); do
	send "m$i"
	sleep 0.2
done
wait_for 20 "the 30 messages did not all become jobs" made m30

max=0 over=0
for i in $(seq 1 30); do
	id=$(key_id "jobs.records:m$i")
	[ -n "$id" ] || fail "no job for m$i"
	sent=$(rcli hget "jobd:job:$id" payload | jq -r .sent)
	created=$(rcli hget "jobd:job:$id" created_at)
	took=$((created - sent))
	[ "$took" -le "$max" ] || max=$took
	[ "$took" -le 1000 ] || over=$((over + 1))
done
echo "# slowest message to job: $max ms; $over of 30 over 1 s"
[ "$over" -eq 0 ] ||
	fail "$over of 30 messages took over 1 s to become a job (slowest $max ms): the Kafka view holds the consumer up"

# The view was refreshed meanwhile, its offsets unknown: the broker
# answered none in time, so the slowness was real.
view=$(rcli get jobd:kafka:view:slow)
[ -n "$view" ] || fail "no Kafka view published"
assert_eq null "$(jq -c '[.partitions[] | select(.topic == "jobs.records" and .partition == 0)][0].high_watermark' <<<"$view")" \
	"the high watermark, asked of a broker 3 s slow"
stop_jobd slow
stop_kafka_driver host "$work"
echo "PASS: kafka_slow"
