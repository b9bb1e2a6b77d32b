#!/usr/bin/env bash
# tests/integration/dlq.sh: dead letters too large for the dead-letter topic (issue
# 17), and what a dead letter keeps of its message (issue 25), against the
# embedded broker and a real Apache Kafka broker at its default limits
# ($JOBD_TEST_KAFKA, or one started here with scripts/kafka).
#
# In each case three bad messages come first on one partition: a small
# one with a key and headers (one name twice), a big one (with a key and
# a header) and one that is not JSON; then, once the consumer is at
# work, 20 good ones. Every good one must become a job, each bad one
# exactly one dead letter: the small ones whole with their key and every
# header in order, the big one cut to [kafka] dlq_max_bytes with its
# original size and SHA-256 (or, when the broker or librdkafka refused
# it anyway, its key and headers without the value; or, when they alone
# are over dlq_max_bytes, a reference record). Before the fix of issue 17
# the big dead letter was refused forever, the batch retried every 5 s
# with all its dead letters, and no later message became a job; before
# the emptied form (issue 25) a refused one lost its key and headers.
#
#	embedded, cut:   1.5 MiB, default dlq_max_bytes (900 KiB): truncated
#	embedded, empty: 1.5 MiB, dlq_max_bytes = 2MiB: librdkafka refuses it
#	                 (message.max.bytes 1000000): emptied
#	real, cut:       the issue's 1,010,037 bytes, defaults: truncated
#	real, empty:     1,048,480 bytes, which the broker takes (1 MiB + 12
#	                 for a batch) but not once jobd's headers are added;
#	                 dlq_max_bytes = 2MiB and kafka.message.max.bytes =
#	                 2000000, so only the broker refuses it: emptied
#	real, ref:       the big message has a header of 5,000 bytes more and
#	                 dlq_max_bytes = 4KiB: a reference record
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need kcat jq sha256sum

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-dlq.XXXXXX")
on_exit "rm -rf '$work'"
run_id=$$.$RANDOM
good=20

job_count() {
	jobctl key --scan "$t_events:g*" | grep -c . || true
}

# dlq: the dead-letter topic as kcat's JSON, one record a line.
dlq() {
	kcat -b "$broker" -t "$t_dlq" -C -e -q -J 2>/dev/null || true
}

# wait_for_count WHAT N SECONDS CMD...: until CMD prints at least N.
wait_for_count() {
	local what=$1 n=$2 secs=$3 deadline=$((SECONDS + $3)) got
	shift 3
	while :; do
		got=$("$@")
		[ "$got" -ge "$n" ] && return 0
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "$cur: $n $what expected after $secs s, got $got (log: $work/$cur.err)"
		sleep 0.2
	done
}

dlq_count() {
	dlq | grep -c . || true
}

# record OFFSET: a summary of the dead letter of input offset OFFSET:
# key, value length and first bytes, headers, and its size as
# dlq_max_bytes counts it.
record() {
	dlq | jq -c --arg src "$t_events/0@$1" '
		select([.headers | _nwise(2)] |
		       any(.[0] == "jobd-source" and .[1] == $src)) |
		{key, len: (.payload // "" | length),
		 head: (.payload // "" | .[0:11]),
		 value: (if (.payload // "" | length) < 100 then .payload
			 else null end),
		 names: [.headers | _nwise(2) | .[0]],
		 h: ([.headers | _nwise(2) | {(.[0]): .[1]}] | add),
		 size: ((.key // "" | length) + (.payload // "" | length) +
			([.headers | _nwise(2) |
			  (.[0] | length) + (.[1] // "" | length) + 10] |
			 add))}'
}

field() {
	jq -cr "$2" <<<"$1"
}

# check_case NAME BROKERS BIG FORM [KAFKA_LINE...]: one case (above).
check_case() {
	local name=$1 brokers=$2 big=$3 form=$4 line rec sum t0 ms
	shift 4
	cur=$name
	local prefix=d$run_id.$name
	t_events=$prefix.events t_dlq=$prefix.dlq
	{
		echo "[redis]"
		echo "address = $JOBD_REDIS"
		echo "[kafka]"
		echo "brokers = $brokers"
		echo "group = $prefix"
		# a topic created after the subscription is seen soon
		echo "kafka.topic.metadata.refresh.interval.ms = 1000"
		for line; do echo "$line"; done
		echo "[topics]"
		echo "events = $t_events"
		echo "records = $prefix.records"
		echo "actions = $prefix.actions"
		echo "stats = $prefix.stats"
		echo "dlq = $t_dlq"
	} >"$work/$name.conf"

	printf '{"id":"sb1","service":"crm"}' >"$work/small"
	{
		printf '{"id":"big","service":"crm","data":"'
		head -c $((big - 38)) /dev/zero | tr '\0' 'a'
		printf '"}'
	} >"$work/big"
	[ "$(stat -c %s "$work/big")" -eq "$big" ] || fail "big message size"
	sum=$(sha256sum "$work/big" | cut -d' ' -f1)
	printf 'not json' >"$work/notjson"
	# partition 0, in this order: offsets 0, 1, 2
	local blob=()
	[ "$form" != reference ] ||
		blob=(-H "blob=$(head -c 5000 /dev/zero | tr '\0' b)")
	kcat -b "$broker" -t "$t_events" -p 0 -P -k key-sb1 \
		-H trace=t-1 -H trace=t-2 -H team=ops "$work/small" &&
		kcat -b "$broker" -t "$t_events" -p 0 -P -k key-big \
			-H trace=t-big "${blob[@]}" \
			-X message.max.bytes=2000000 "$work/big" &&
		kcat -b "$broker" -t "$t_events" -p 0 -P "$work/notjson" ||
		fail "$name: kcat cannot produce the bad messages"

	start_kafka_driver "$name" "$work" -c "$work/$name.conf"
	wait_for_count "dead letters" 3 60 dlq_count
	for i in $(seq 1 "$good"); do
		printf '{"id":"g%d","service":"crm","event":"e"}\n' "$i"
	done >"$work/good"
	t0=$(date +%s%N)
	kcat -b "$broker" -t "$t_events" -p 0 -P -l "$work/good" ||
		fail "$name: kcat cannot produce the good messages"
	# Before the fix: never (the batch of the big one retried forever).
	wait_for_count "jobs after the big dead letter" "$good" 60 job_count
	ms=$((($(date +%s%N) - t0) / 1000000))
	stop_kafka_driver "$name" "$work"
	assert_contains "$(cat "$work/$name.out")" "dead_lettered=3 " \
		"$name: dead letters counted"
	assert_eq "$good" "$(job_count)" "$name: jobs"
	assert_eq 3 "$(dlq_count)" "$name: each dead letter once"

	rec=$(record 0)
	assert_eq key-sb1 "$(field "$rec" .key)" "$name: small: key kept"
	assert_eq '["trace","trace","team","jobd-reason","jobd-source"]' \
		"$(field "$rec" .names)" "$name: small: every header, in order"
	assert_eq "$(cat "$work/small")" "$(field "$rec" .value)" \
		"$name: small: value kept"
	assert_contains "$(field "$rec" '.h["jobd-reason"]')" \
		"cannot decode request at $t_events/0@0" "$name: small: reason"

	rec=$(record 2)
	assert_eq null "$(field "$rec" .key)" "$name: no key stays none"
	assert_eq "not json" "$(field "$rec" .value)" "$name: not json: kept"
	assert_eq '["jobd-reason","jobd-source"]' "$(field "$rec" .names)" \
		"$name: not json: jobd's headers only"

	rec=$(record 1)
	assert_eq "$big" "$(field "$rec" '.h["jobd-original-size"]')" \
		"$name: big: original size"
	assert_eq "$sum" "$(field "$rec" '.h["jobd-original-sha256"]')" \
		"$name: big: original sha256"
	assert_eq "$t_events/0@1" "$(field "$rec" '.h["jobd-source"]')" \
		"$name: big: source"
	case $form in
	truncated)
		assert_eq value "$(field "$rec" '.h["jobd-truncated"]')" \
			"$name: big: truncated"
		assert_eq key-big "$(field "$rec" .key)" "$name: big: key kept"
		assert_eq '["trace","jobd-reason","jobd-source","jobd-original-size","jobd-original-sha256","jobd-truncated"]' \
			"$(field "$rec" .names)" "$name: big: headers"
		assert_eq '{"id":"big"' "$(field "$rec" .head)" \
			"$name: big: its first bytes"
		[ "$(field "$rec" .size)" -le 921600 ] ||
			fail "$name: big: $(field "$rec" .size) bytes, over dlq_max_bytes"
		[ "$(field "$rec" .len)" -gt 900000 ] ||
			fail "$name: big: only $(field "$rec" .len) bytes kept"
		;;
	emptied)
		assert_eq value "$(field "$rec" '.h["jobd-truncated"]')" \
			"$name: big: cut"
		assert_eq 0 "$(field "$rec" .len)" "$name: big: no value"
		assert_eq key-big "$(field "$rec" .key)" "$name: big: key kept"
		assert_eq '["trace","jobd-reason","jobd-source","jobd-original-size","jobd-original-sha256","jobd-truncated"]' \
			"$(field "$rec" .names)" "$name: big: headers kept"
		assert_eq t-big "$(field "$rec" '.h.trace')" \
			"$name: big: header value kept"
		assert_contains "$(cat "$work/$name.err")" \
			"refused the dead letter of $t_events/0@1 (too large" \
			"$name: the refusal is logged"
		;;
	reference)
		assert_eq record "$(field "$rec" '.h["jobd-truncated"]')" \
			"$name: big: a reference record"
		assert_eq null "$(field "$rec" .key)" "$name: big: no key"
		assert_eq 0 "$(field "$rec" .len)" "$name: big: no value"
		assert_eq '["jobd-reason","jobd-source","jobd-original-size","jobd-original-sha256","jobd-truncated"]' \
			"$(field "$rec" .names)" "$name: big: jobd's headers only"
		assert_contains "$(cat "$work/$name.err")" \
			"as a reference record (${big} bytes at $t_events/0@1)" \
			"$name: the reference is logged"
		;;
	esac
	echo "# $name: a dead letter of $big bytes sent $form, each of 3 once; $good later messages were jobs $ms ms after they were sent"
}

# --- embedded broker --------------------------------------------------------------

{
	echo "[redis]"
	echo "address = $JOBD_REDIS"
} >"$work/host.conf"
start_kafka_driver host "$work" -c "$work/host.conf" --broker-only
broker=$(embedded_broker) || exit
check_case embedded_cut embedded $((3 << 19)) truncated
check_case embedded_empty embedded $((3 << 19)) emptied "dlq_max_bytes = 2MiB"
stop_kafka_driver host "$work"
rcli flushall >/dev/null

# --- real broker --------------------------------------------------------------------

real_broker "$work/kafka"
check_case real_cut "$broker" 1010037 truncated
check_case real_empty "$broker" 1048480 emptied "dlq_max_bytes = 2MiB" \
	"kafka.message.max.bytes = 2000000"
check_case real_ref "$broker" 1010037 reference "dlq_max_bytes = 4KiB"
echo "PASS"
