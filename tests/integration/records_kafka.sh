#!/usr/bin/env bash
# tests/integration/records_kafka.sh: import and export with a Kafka topic and an exec
# command as record sink and source (docs/job-types.md, "Sinks" and
# "Sources"), on jobd's embedded broker, checked with kcat.
#
#  1. Import into a collection and a topic at once: one message per row,
#     keyed by the record id, the value the record as a JSON object; a
#     topic-only import leaves the collection alone.
#  2. Export from a topic to CSV (union of fields as columns) and NDJSON:
#     every record, right content; stopped and resumed mid-way, the file
#     is byte-identical to an uninterrupted export.
#  3. Import into a [sink.NAME] command: every row reaches it exactly once
#     as NDJSON; its "error" lines are job errors; a failing command fails
#     the chunk with the reason.
#  4. CSV export of a collection whose records have different fields: the
#     columns are the union, sorted; stopped during the pass over the
#     fields and resumed, still byte-identical.
#  5. Refusals: unknown sink command, missing topic, bad sink objects;
#     topics not in [topics] allowed, jobd's own topics (input, dead
#     letters) and Kafka's internal ones, as sink or source: nothing
#     written to or read from them.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need jq kcat

start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-reckafka.XXXXXX")
on_exit "rm -rf '$dir'"
data=$dir/data
mkdir -p "$data/out"
handlers=$top_srcdir/tests/fixtures/handlers
cat >"$dir/jobd.conf" <<CONF
[engine]
roles = consume,work
workers = 4
lease = 3s
heartbeat = 300ms
data_dir = $data
[topics]
allowed = crm.*, only.topic, keyed.topic, no.such.topic, jobs.*
[type.import]
chunk_size = 1000
[sink.loader]
command = $handlers/sink.sh '$dir'
[sink.broken]
command = false
CONF
export JOBD_CONFIG=$dir/jobd.conf

"$jobd_bin" 2>"$dir/jobd.log" &
jobd_pid=$!
on_exit "kill -9 $jobd_pid 2>/dev/null || true"
for ((i = 0; i < 200; i++)); do
	grep -qs running "$dir/jobd.log" && break
	kill -0 "$jobd_pid" 2>/dev/null || fail "jobd died: $(cat "$dir/jobd.log")"
	sleep 0.05
done
broker=$(rcli get jobd:broker)
[ -n "$broker" ] || fail "no embedded broker address in jobd:broker"

field() { jobctl show "$1" --json | jq -r ".$2"; }
tree_logs() { jobctl logs "$1" --tree; }
count() { rcli zcard "jobd:recidx:$1"; }

send() { # ID JSON: sends to jobs.records, prints the job's id once made
	local i id
	jobctl send jobs.records "$2" >/dev/null || fail "jobctl send failed"
	for ((i = 0; i < 300; i++)); do
		id=$(key_id "jobs.records:$1")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.05
	done
	fail "no job for message $1"
}
import() { send "$1" "{\"id\":\"$1\",\"type\":\"import\",\"payload\":$2}"; }
export_() { send "$1" "{\"id\":\"$1\",\"type\":\"export\",\"payload\":$2}"; }

# Every message of TOPIC as "key<TAB>value" lines.
consume() {
	kcat -b "$broker" -C -t "$1" -e -q -f '%k\t%s\n' 2>"$dir/kcat.err" ||
		fail "kcat cannot read $1: $(cat "$dir/kcat.err")"
}

# --- 1. import into a collection and a topic ------------------------------------
{
	echo 'id,name,email'
	for ((i = 1; i <= 2500; i++)); do
		printf 'c%04d,"Name, %d",c%d@example.org\n' "$i" "$i" "$i"
	done
} >"$data/contacts.csv"
id=$(import imp1 '{"file":"contacts.csv","collection":"contacts","sink":{"topic":"crm.contacts"}}')
wait_job 60 "$id" '.status == "finished"'
assert_eq false "$(field "$id" finished_with_errors)" "clean import to two sinks"
assert_eq 3 "$(field "$id" children.total)" "2500 rows in chunks of 1000"
assert_eq 2500 "$(count contacts)" "the collection got every row"
consume crm.contacts >"$dir/topic.tsv"
assert_eq 2500 "$(wc -l <"$dir/topic.tsv" | tr -d ' ')" "one message per row"
assert_eq 2500 "$(cut -f1 "$dir/topic.tsv" | sort -u | wc -l | tr -d ' ')" "one key per record"
assert_eq "$(tail -n +2 "$data/contacts.csv" | cut -d, -f1 | sort)" \
	"$(cut -f1 "$dir/topic.tsv" | sort)" "the keys are the record ids"
assert_eq '{"id":"c0042","name":"Name, 42","email":"c42@example.org"}' \
	"$(awk -F'\t' '$1 == "c0042" {print $2}' "$dir/topic.tsv")" "value: the record as JSON"
cut -f2 "$dir/topic.tsv" | jq -e -s 'all(.[]; type == "object" and (.id | type) == "string")' >/dev/null ||
	fail "a message value is not a record object"
assert_contains "$(tree_logs "$id")" "into collection contacts, topic crm.contacts" "both sinks logged"

printf '{"id":"n1","v":1}\n{"id":"n2","v":[2]}\n' >"$data/only.ndjson"
id=$(import imp2 '{"file":"only.ndjson","sink":[{"topic":"only.topic"}]}')
wait_job 30 "$id" '.status == "finished"'
assert_eq 0 "$(field "$id" errors)" "topic-only import"
assert_eq 0 "$(count only)" "no collection written"
assert_eq $'n1\t{"id":"n1","v":"1"}\nn2\t{"id":"n2","v":"[2]"}' "$(consume only.topic | sort)" \
	"topic-only messages (values as text, as in a collection)"

# --- 2. export from a topic ----------------------------------------------------------
id=$(export_ exp1 '{"source":{"topic":"crm.contacts"},"file":"out/topic.csv"}')
wait_job 60 "$id" '.status == "finished"'
assert_eq 0 "$(field "$id" errors)" "topic export"
assert_eq $'id,email,name\r' "$(head -n 1 "$data/out/topic.csv")" "header: id, then the union, sorted"
assert_eq 2501 "$(wc -l <"$data/out/topic.csv" | tr -d ' ')" "header + one row per message"
expect=$(tail -n +2 "$data/contacts.csv" | awk -F, '{printf "%s,%s,\"%s,%s\"\r\n", $1, $4, $2, $3}' | tr -d '"' | sort)
got=$(tail -n +2 "$data/out/topic.csv" | tr -d '"' | sort)
[ "$expect" = "$got" ] || fail "topic export rows differ from the imported rows"
grep -q $'^c0042,c42@example.org,"Name, 42"\r$' "$data/out/topic.csv" || fail "a row is not quoted as RFC 4180 says"

id=$(export_ exp2 '{"source":{"topic":"crm.contacts"},"file":"out/paced.csv","pace_ms":250}')
wait_job 60 "$id" '.progress > 55'
jobctl stop "$id" >/dev/null
wait_job 30 "$id" '.status == "stopped"'
ck=$(rcli hget "jobd:job:$id" checkpoint)
assert_eq rows "$(jq -r .phase <<<"$ck")" "stopped while writing rows"
jq -e '(.next | length) == (.ends | length) and (.next | add) < (.ends | add)' <<<"$ck" >/dev/null ||
	fail "checkpoint lacks per-partition offsets short of the ends: $ck"
[ -f "$data/out/paced.csv" ] && fail "a stopped export must not leave the target file"
jobctl resume "$id" >/dev/null
wait_job 60 "$id" '.status == "finished"'
cmp "$data/out/topic.csv" "$data/out/paced.csv" || fail "resumed topic export differs"
assert_contains "$(tree_logs "$id")" "export: resuming after" "topic export resumed"

id=$(export_ exp3 '{"source":{"topic":"only.topic"},"file":"out/only.ndjson"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq $'{"id":"n1","v":"1"}\n{"id":"n2","v":"[2]"}' "$(sort "$data/out/only.ndjson")" "ndjson export of a topic"

# Without an "id" member the message key is the id, if it is UTF-8.
printf 'k1\t{"v":"1"}\n\377\t{"v":"2"}\n' |
	kcat -b "$broker" -t keyed.topic -P -K $'\t' || fail "kcat could not produce"
id=$(export_ expk '{"source":{"topic":"keyed.topic"},"file":"out/keyed.ndjson"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq '{"id":"k1","v":"1"}' "$(cat "$data/out/keyed.ndjson")" "the key as the id"
assert_contains "$(tree_logs "$id")" "no record id (an \"id\" member or a UTF-8 message key" \
	"a key that is not UTF-8 is refused"

# --- 3. import into a command ------------------------------------------------------------
{
	echo 'id,n'
	for ((i = 1; i <= 1200; i++)); do echo "x$i,$i"; done
} >"$data/cmd.csv"
id=$(import imp3 '{"file":"cmd.csv","sink":{"command":"loader"}}')
wait_job 60 "$id" '.status == "finished"'
assert_eq 1200 "$(wc -l <"$dir/sink.ndjson" | tr -d ' ')" "the command got 1200 rows"
assert_eq "$(tail -n +2 "$data/cmd.csv" | cut -d, -f1 | sort)" \
	"$(jq -r .id "$dir/sink.ndjson" | sort)" "every row exactly once"
assert_eq '{"id":"x7","n":"7"}' "$(grep '"x7"' "$dir/sink.ndjson")" "a row as NDJSON"
assert_eq loader "$(sort -u "$dir/sink.name")" "JOBD_SINK names the sink"
assert_eq 0 "$(count cmd)" "no collection written"
assert_eq true "$(field "$id" finished_with_errors)" "error lines make errors"
l=$(tree_logs "$id")
assert_contains "$l" "record x13: rejected by the loader" "an error line in the job's log"
assert_contains "$l" "record x1113: rejected by the loader" "error lines of the second chunk"
assert_eq 12 "$(grep -c 'rejected by the loader' <<<"$l")" "one error per error line"

printf 'id,n\nb1,1\nb2,2\n' >"$data/broken.csv"
id=$(import imp4 '{"file":"broken.csv","sink":{"command":"broken"}}')
wait_job 30 "$id" '.status == "finished"'
assert_eq true "$(field "$id" finished_with_errors)" "a failing command fails the chunk"
assert_contains "$(tree_logs "$id")" "import: sink broken failed on lines 2-3: exited with status 1" "failing command's reason"

# --- 4. CSV export columns: the union of the fields -------------------------------------------
printf '{"id":"a","x":"1"}\n{"id":"b","y":"2"}\n{"id":"c","x":"3","z":"4"}\n' >"$data/mixed.ndjson"
id=$(import imp5 '{"file":"mixed.ndjson","collection":"mixed"}')
wait_job 30 "$id" '.status == "finished"'
id=$(export_ exp4 '{"collection":"mixed","file":"out/mixed.csv"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq $'id,x,y,z\r\na,1,,\r\nb,,2,\r\nc,3,,4\r' "$(cat "$data/out/mixed.csv")" "union of fields, sorted"

# Fields beyond the first record's, in a collection of 2500 + 1 odd one.
rcli hset jobd:rec:contacts:c9999 id c9999 phone 555 >/dev/null
rcli zadd jobd:recidx:contacts 0 c9999 >/dev/null
id=$(export_ exp5 '{"collection":"contacts","file":"out/contacts.csv"}')
wait_job 60 "$id" '.status == "finished"'
assert_eq $'id,email,name,phone\r' "$(head -n 1 "$data/out/contacts.csv")" "a field of the last record only"
assert_eq $'c9999,,,555\r' "$(tail -n 1 "$data/out/contacts.csv")" "its value is exported"

id=$(export_ exp6 '{"collection":"contacts","file":"out/contacts2.csv","pace_ms":300}')
wait_job 30 "$id" '.progress > 0'
jobctl stop "$id" >/dev/null
wait_job 30 "$id" '.status == "stopped"'
assert_eq columns "$(rcli hget "jobd:job:$id" checkpoint | jq -r .phase)" "stopped in the pass over the fields"
jobctl resume "$id" >/dev/null
wait_job 60 "$id" '.status == "finished"'
cmp "$data/out/contacts.csv" "$data/out/contacts2.csv" || fail "export resumed in the fields pass differs"
assert_contains "$(tree_logs "$id")" "export: resuming the pass over the fields" "fields pass resumed"

# --- 5. refusals -------------------------------------------------------------------------------
# refused import|export_ ID PAYLOAD WANT WHAT: the job ends with WANT in its log.
refused() {
	id=$("$1" "$2" "$3")
	wait_job 60 "$id" '.status == "finished"'
	assert_contains "$(tree_logs "$id")" "$4" "$5"
}
refused import bad1 '{"file":"cmd.csv","sink":{"command":"nosuch"}}' \
	'unknown sink command "nosuch": no [sink.nosuch] in the conf' "unknown sink"
refused import bad2 '{"file":"cmd.csv","sink":{"topic":"a","collection":"b"}}' \
	'needs exactly one of "collection", "topic" or "command"' "ambiguous sink"
refused import bad3 '{"file":"cmd.csv"}' 'no "collection" or "sink" to import into' "no sink"
refused export_ bad4 '{"source":{"topic":"no.such.topic"},"file":"out/x.csv"}' \
	'topic "no.such.topic" does not exist' "missing topic"
# A payload names topics with jobd's credentials: only those listed, and
# never jobd's own (the "jobs.*" listed above covers them) or Kafka's.
# A marker first, so the topic exists and a kcat that fails fails the test.
printf 'marker\n' | kcat -b "$broker" -t jobs.dlq -P || fail "kcat could not write jobs.dlq"
dlq_lines() { consume jobs.dlq | wc -l; }
dlq_before=$(dlq_lines)
[ "$dlq_before" -ge 1 ] || fail "the marker is not on jobs.dlq"
refused import bad5 '{"file":"cmd.csv","sink":{"topic":"secret.topic"}}' \
	'topic "secret.topic" is not in [topics] allowed' "unlisted sink topic"
refused import bad6 '{"file":"cmd.csv","sink":[{"collection":"x6"},{"topic":"jobs.dlq"}]}' \
	"topic \"jobs.dlq\" is jobd's dlq topic ([topics] dlq): jobs may not read or write it" "dlq as a sink"
assert_eq 0 "$(count x6)" "a refused import writes none of its sinks"
assert_eq "$dlq_before" "$(dlq_lines)" "nothing written to the dlq"
refused import bad7 '{"file":"cmd.csv","sink":{"topic":"jobs.events"}}' \
	"topic \"jobs.events\" is jobd's events topic" "input topic as a sink"
refused export_ bad8 '{"source":{"topic":"jobs.events"},"file":"out/events.csv"}' \
	"export: topic \"jobs.events\" is jobd's events topic" "input topic as a source"
[ ! -e "$data/out/events.csv" ] || fail "a refused export wrote its file"
refused export_ bad9 '{"source":{"topic":"secret.topic"},"file":"out/s.csv"}' \
	'export: topic "secret.topic" is not in [topics] allowed' "unlisted source topic"
refused export_ bad10 '{"source":{"topic":"__consumer_offsets"},"file":"out/o.csv"}' \
	'topic "__consumer_offsets" is internal to Kafka' "Kafka's internal topic"

kill -TERM "$jobd_pid"
rc=0
wait "$jobd_pid" || rc=$?
assert_eq 0 "$rc" "jobd exit status after SIGTERM"

# --- 6. the broker away while an import publishes -----------------------------------
# The embedded broker now lives in its own jobd (stats role), frozen with
# SIGSTOP for 7 s mid-import; deliveries time out after 2 s, so the sink
# retries. The import waits the outage out and every row arrives.
rcli del jobd:broker >/dev/null
cat >"$dir/eb.conf" <<CONF
[engine]
roles = stats
instance = eb
CONF
cat >"$dir/w.conf" <<CONF
[engine]
roles = work
instance = w
workers = 4
lease = 3s
heartbeat = 300ms
data_dir = $data
[kafka]
kafka.message.timeout.ms = 2000
[topics]
allowed = crm.*
[type.import]
chunk_size = 1000
CONF
"$jobd_bin" -c "$dir/eb.conf" 2>"$dir/eb.log" &
eb_pid=$!
on_exit "kill -CONT $eb_pid 2>/dev/null; kill -9 $eb_pid 2>/dev/null || true"
for ((i = 0; i < 200; i++)); do
	broker=$(rcli get jobd:broker)
	[ -n "$broker" ] && break
	sleep 0.05
done
[ -n "$broker" ] || fail "no embedded broker in the stats instance: $(cat "$dir/eb.log")"
JOBD_CONFIG=$dir/w.conf "$jobd_bin" -c "$dir/w.conf" 2>"$dir/w.log" &
w_pid=$!
on_exit "kill -9 $w_pid 2>/dev/null || true"
id=$(JOBD_CONFIG=$dir/w.conf jobctl submit import --payload \
	'{"file":"contacts.csv","sink":{"topic":"crm.outage"},"pace_ms":700}') ||
	fail "cannot submit the import"
JOBD_CONFIG=$dir/w.conf wait_job 30 "$id" '.children.total > 0'
kill -STOP "$eb_pid"
sleep 7
kill -CONT "$eb_pid"
JOBD_CONFIG=$dir/w.conf wait_job 120 "$id" '.status == "finished"'
assert_eq false "$(JOBD_CONFIG=$dir/w.conf field "$id" finished_with_errors)" "import through the outage: no errors"
assert_contains "$(JOBD_CONFIG=$dir/w.conf tree_logs "$id")" "cannot publish the records of" "the sink retried"
assert_eq 2500 "$(consume crm.outage | cut -f1 | sort -u | wc -l)" "every row published through the outage"
kill -TERM "$w_pid" "$eb_pid"
wait "$w_pid" || fail "worker exit status $?"
wait "$eb_pid" || fail "broker instance exit status $?"
echo "PASS: records_kafka"
