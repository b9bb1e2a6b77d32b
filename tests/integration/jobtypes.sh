#!/usr/bin/env bash
# tests/integration/jobtypes.sh: the record and event job types end to end
# (docs/job-types.md): a Kafka message on the embedded broker (jobctl send)
# becomes a job that jobd (roles consume,work) runs to a finished job with
# the right records or file.
#
#  1. CSV import in chunk children: quoted fields, escaped quotes, embedded
#     newlines; malformed rows (unbalanced quote, ragged, invalid UTF-8)
#     are line-numbered errors, the good rows are imported.
#  2. NDJSON import.
#  3. Import stopped mid-chunk and resumed: every row once, none skipped.
#  4. Export: a stopped and resumed export is byte-identical to an
#     uninterrupted one; NDJSON export.
#  5. Paths escaping data_dir are refused (.., absolute, symlink out), and
#     so is anything but a regular file (a FIFO would block a worker).
#  6. Events: listeners in order; nobody listening; a stop waits for the
#     running listener, resume continues with the next one.
#  7. Actions over a collection in batch children, per-record errors, an
#     update line; over a list of ids.
#  8. relationship-update created by jobd when a label changes; refactor.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need jq

start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-jobtypes.XXXXXX")
on_exit "rm -rf '$dir'"
data=$dir/data
mkdir -p "$data"
handlers=$top_srcdir/tests/fixtures/handlers
cat >"$dir/jobd.conf" <<CONF
[engine]
roles = consume,work
workers = 4
lease = 3s
heartbeat = 300ms
data_dir = $data
[type.import]
chunk_size = 1000
[type.refactor]
chunk_size = 40
[listener.a]
service = crm
event = order.created
command = $handlers/listener.sh '$dir' a
order = 10
[listener.b]
service = crm
event = *
command = $handlers/listener.sh '$dir' b
order = 20
[listener.slow1]
service = billing
event = invoice.sent
command = $handlers/listener.sh '$dir' slow1
order = 1
[listener.slow2]
service = billing
event = invoice.sent
command = $handlers/listener.sh '$dir' slow2
order = 2
[action.tag]
command = $handlers/action.sh '$dir' '*7'
batch = 50
[relation.company]
source = companies
label = name
target = people
ref_field = company_id
copy_field = company_name
CONF
export JOBD_CONFIG=$dir/jobd.conf

"$jobd_bin" 2>"$dir/jobd.log" &
jobd_pid=$!
on_exit "kill -9 $jobd_pid 2>/dev/null || true"
for ((i = 0; i < 200; i++)); do
	grep -q running "$dir/jobd.log" && break
	kill -0 "$jobd_pid" 2>/dev/null || fail "jobd died: $(cat "$dir/jobd.log")"
	sleep 0.05
done

field() { jobctl show "$1" --json | jq -r ".$2"; }
tree_logs() { jobctl logs "$1" --tree; }
count() { rcli zcard "jobd:recidx:$1"; }
rec() { rcli hget "jobd:rec:$1:$2" "$3"; }

# send TOPIC ID JSON: sends the message, prints the job's id once made.
send() {
	local i id
	jobctl send "$1" "$3" >/dev/null || fail "jobctl send $1 failed"
	for ((i = 0; i < 300; i++)); do
		id=$(key_id "$1:$2")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.05
	done
	fail "no job for message $2 on $1"
}

import() { # ID PAYLOAD
	send jobs.records "$1" "{\"id\":\"$1\",\"type\":\"import\",\"payload\":$2}"
}
export_() { # ID PAYLOAD
	send jobs.records "$1" "{\"id\":\"$1\",\"type\":\"export\",\"payload\":$2}"
}

# --- 1. CSV import with bad rows ------------------------------------------------
{
	printf 'id,name,note\r\n'
	printf 'c1,Ann,"quoted, with comma"\r\n'
	printf 'c2,"Bob ""the"" Builder","two\r\nlines"\r\n'
	printf 'c3,bad"quote,x\r\n'
	printf 'c4,ragged\r\n'
	printf 'c5,\xff\xfe,invalid utf-8\r\n'
	printf 'c6,Eve,last good\r\n'
	printf 'c7,"never closed,x\r\nc8,y,z\r\n'
} >"$data/bad.csv"
id=$(import bad '{"file":"bad.csv","collection":"mixed"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq true "$(field "$id" finished_with_errors)" "bad rows: finished with errors"
assert_eq 3 "$(count mixed)" "good rows imported"
assert_eq 'Bob "the" Builder' "$(rec mixed c2 name)" "escaped quotes"
assert_eq $'two\r\nlines' "$(rec mixed c2 note)" "embedded newline"
assert_eq 'quoted, with comma' "$(rec mixed c1 note)" "quoted comma"
l=$(tree_logs "$id")
assert_contains "$l" "line 5: quote inside unquoted field 2" "stray quote"
assert_contains "$l" "line 6: 2 fields, the header has 3" "ragged row"
assert_contains "$l" "line 7: invalid UTF-8 in field 2" "invalid UTF-8"
assert_contains "$l" "line 9: unterminated quoted field 2 (opened on line 9)" "unbalanced quote"
kill -0 "$jobd_pid" || fail "jobd died on malformed CSV"

# --- 2. NDJSON import, chunked CSV import -------------------------------------------
printf '{"id": 1, "name": "one", "n": 5}\n\n{"id": "two", "tags": ["a"]}\n[1]\n{"name": "no id"}\n' >"$data/r.ndjson"
id=$(import nd '{"file":"r.ndjson","collection":"nd"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq 2 "$(count nd)" "ndjson rows"
assert_eq 5 "$(rec nd 1 n)" "number as text"
assert_eq '["a"]' "$(rec nd two tags)" "array as JSON text"
l=$(tree_logs "$id")
assert_contains "$l" "line 4: not a JSON object" "ndjson non-object"
assert_contains "$l" 'line 5: no "id" string or integer' "ndjson without id"

{
	echo 'id,name,email,company_id'
	for ((i = 1; i <= 3500; i++)); do
		printf 'p%04d,"Person %d","p%d@example.org",co%d\n' "$i" "$i" "$i" $((i % 3))
	done
} >"$data/people.csv"
id=$(import people '{"file":"people.csv","collection":"people"}')
wait_job 60 "$id" '.status == "finished"'
assert_eq 4 "$(field "$id" children.total)" "3500 rows in chunks of 1000"
assert_eq 3500 "$(count people)" "all rows imported"
assert_eq false "$(field "$id" finished_with_errors)" "clean import"
assert_eq 100 "$(field "$id" overall_progress)" "overall progress"
assert_eq "Person 3500" "$(rec people p3500 name)" "last row"
jobctl restart "$id" >/dev/null
wait_job 60 "$id" '.restarts == 1 and .status == "finished"'
assert_eq 4 "$(field "$id" children.total)" "restart: fresh chunk children"
assert_eq 3500 "$(count people)" "restart re-imports by id"

# --- 3. import stopped mid-chunk and resumed: 20 chunks over 4 workers, so
# the stop lands while chunks still run or wait, however fast they are -----
{
	echo 'id,v'
	for ((i = 0; i < 20000; i++)); do echo "s$i,$i"; done
} >"$data/slow.csv"
id=$(import slow '{"file":"slow.csv","collection":"slow","pace_ms":400}')
wait_job 30 "$id" '.children.in_progress >= 1 and .overall_progress > 0'
jobctl stop "$id" >/dev/null
wait_job 30 "$id" '.status == "stopped"'
n=$(count slow)
[ "$n" -gt 0 ] && [ "$n" -lt 20000 ] || fail "stopped import holds $n of 20000 rows"
jobctl resume "$id" >/dev/null
wait_job 60 "$id" '.status == "finished"'
assert_eq 20000 "$(count slow)" "resumed import: every row"
assert_eq false "$(field "$id" finished_with_errors)" "a stop is not an error"
l=$(tree_logs "$id")
assert_contains "$l" "import: resuming at line" "a chunk resumed at its row checkpoint"
# Each chunk counted its rows exactly once across the stop.
total=$(grep -o 'chunk [0-9]*: [0-9]* rows' <<<"$l" | awk '{s += $3} END {print s}')
assert_eq 20000 "$total" "rows done over all chunks, across the stop"

# --- 4. export: stop/resume byte-identical ----------------------------------------------------
mkdir -p "$data/out"
id=$(export_ full '{"collection":"people","file":"out/full.csv"}')
wait_job 30 "$id" '.status == "finished"'
[ -f "$data/out/full.csv" ] || fail "export wrote no file"
assert_eq 3501 "$(wc -l <"$data/out/full.csv" | tr -d ' ')" "header + 3500 rows"
assert_eq $'id,company_id,email,name\r' "$(head -n 1 "$data/out/full.csv")" "csv header: id, then every field, sorted"

id=$(export_ part '{"collection":"people","file":"out/part.csv","pace_ms":300}')
# past the pass over the fields (the first half): the file is being written
wait_job 30 "$id" '.progress > 55'
jobctl stop "$id" >/dev/null
wait_job 30 "$id" '.status == "stopped"'
[ -f "$data/out/part.csv" ] && fail "a stopped export must not leave the target file"
ls -a "$data/out" | grep -q '\.part\.csv\.jobd-.*\.part$' || fail "no partial file kept"
jobctl resume "$id" >/dev/null
wait_job 60 "$id" '.status == "finished"'
cmp "$data/out/full.csv" "$data/out/part.csv" || fail "resumed export differs"
assert_contains "$(tree_logs "$id")" "export: resuming after" "export resumed"
ls -a "$data/out" | grep -q '\.part$' && fail "temp file left behind"

id=$(export_ ndx '{"collection":"nd","file":"nd.ndjson"}')
wait_job 30 "$id" '.status == "finished"'
assert_eq '{"id":"1","name":"one","n":"5"}' "$(head -n 1 "$data/nd.ndjson")" "ndjson export"

# --- 5. paths escaping data_dir ---------------------------------------------------------------
ln -s /etc/passwd "$data/link.csv"
ln -s /etc "$data/etc"
for case in '../x.csv:escapes data_dir' '/etc/passwd:is outside data_dir' \
	'link.csv:through a symlink' 'etc/passwd:through a symlink'; do
	f=${case%%:*} want=${case#*:}
	k=esc$RANDOM
	id=$(import "$k" "{\"file\":\"$f\",\"collection\":\"x\"}")
	wait_job 30 "$id" '.status == "finished"'
	assert_eq 1 "$(field "$id" errors)" "import of $f fails"
	assert_contains "$(tree_logs "$id")" "$want" "import of $f refused"
done
# A FIFO would block the worker's open() (no writer comes) for good.
mkfifo "$data/fifo.csv"
id=$(import fifo "{\"file\":\"fifo.csv\",\"collection\":\"x\"}")
wait_job 30 "$id" '.status == "finished"'
assert_eq 1 "$(field "$id" errors)" "import of a FIFO fails"
assert_contains "$(tree_logs "$id")" '"fifo.csv" is not a regular file' "import of a FIFO refused"
id=$(export_ escx '{"collection":"people","file":"../out.csv"}')
wait_job 30 "$id" '.status == "finished"'
assert_contains "$(tree_logs "$id")" "escapes data_dir" "export outside refused"
[ -e "$dir/out.csv" ] && fail "export wrote outside data_dir"

# --- 6. events ------------------------------------------------------------------------------
id=$(send jobs.events ev1 '{"id":"ev1","service":"crm","event":"order.created","data":{"order":1}}')
wait_job 30 "$id" '.status == "finished"'
assert_eq $'a crm order.created\nb crm order.created' "$(cat "$dir/events.log")" "listeners in order"
assert_eq 0 "$(field "$id" errors)" "listeners ok"

id=$(send jobs.events ev2 '{"id":"ev2","service":"shop","event":"cart.lost","data":{}}')
wait_job 30 "$id" '.status == "finished"'
assert_contains "$(tree_logs "$id")" "nobody listens to shop/cart.lost" "no listener"

: >"$dir/events.log"
id=$(send jobs.events ev3 '{"id":"ev3","service":"billing","event":"invoice.sent","data":{"sleep":2}}')
for ((i = 0; i < 100; i++)); do [ -e "$dir/slow1.started" ] && break; sleep 0.05; done
[ -e "$dir/slow1.started" ] || fail "listener slow1 did not start"
jobctl stop "$id" >/dev/null
sleep 0.5
assert_eq stopping "$(field "$id" status)" "stopping while a listener runs"
wait_job 30 "$id" '.status == "stopped"'
assert_eq "slow1 billing invoice.sent" "$(cat "$dir/events.log")" "stopped before the next listener"
assert_eq '{"next":1}' "$(rcli hget "jobd:job:$id" checkpoint)" "checkpoint: next listener"
jobctl resume "$id" >/dev/null
wait_job 30 "$id" '.status == "finished"'
assert_eq $'slow1 billing invoice.sent\nslow2 billing invoice.sent' "$(cat "$dir/events.log")" "resumed with the next listener"
assert_eq 0 "$(field "$id" errors)" "uninterrupted listeners did not fail"

# --- 7. actions ------------------------------------------------------------------------------
{
	echo 'id,name'
	for ((i = 1; i <= 120; i++)); do printf 'p%03d,n%d\n' "$i" "$i"; done
} >"$data/small.csv"
id=$(import small '{"file":"small.csv","collection":"small"}')
wait_job 30 "$id" '.status == "finished"'
: >"$dir/action.ids"
id=$(send jobs.actions act1 '{"id":"act1","action":"tag","payload":{"collection":"small"}}')
wait_job 60 "$id" '.status == "finished"'
assert_eq 3 "$(field "$id" children.total)" "120 records in batches of 50"
assert_eq 120 "$(sort -u "$dir/action.ids" | wc -l | tr -d ' ')" "every record once"
assert_eq 120 "$(wc -l <"$dir/action.ids" | tr -d ' ')" "no record twice"
assert_eq true "$(field "$id" finished_with_errors)" "per-record failures"
assert_eq 12 "$(tree_logs "$id" | grep -c 'cannot tag it')" "one error per failed record"
assert_eq vip "$(rec small p001 tag)" "update line applied"

: >"$dir/action.ids"
id=$(send jobs.actions act2 '{"id":"act2","action":"tag","payload":{"ids":["x1","x2","x3"]}}')
wait_job 30 "$id" '.status == "finished"'
assert_eq $'x1\nx2\nx3' "$(cat "$dir/action.ids")" "action over a list of ids"
assert_eq 0 "$(field "$id" children.total)" "one batch runs in the root"

id=$(send jobs.actions act3 '{"id":"act3","action":"nosuch","payload":{"ids":["x"]}}')
wait_job 30 "$id" '.status == "finished"'
assert_contains "$(tree_logs "$id")" 'unknown action "nosuch"' "unknown action"

# --- 8. relationship-update and refactor ------------------------------------------------------
printf 'id,name\nco0,Acme\nco1,Globex\nco2,Initech\n' >"$data/co.csv"
id=$(import co1 '{"file":"co.csv","collection":"companies"}')
wait_job 30 "$id" '.status == "finished"'
before=$(jobctl list --system --all --type relationship-update --json | jq '.jobs | length')
assert_eq 0 "$before" "no label changed on first import"
printf 'id,name\nco0,Acme\nco1,Globex Corp\nco2,Initech\n' >"$data/co.csv"
id=$(import co2 '{"file":"co.csv","collection":"companies"}')
wait_job 30 "$id" '.status == "finished"'
ru=
for ((i = 0; i < 100; i++)); do
	ru=$(jobctl list --system --type relationship-update --json | jq -r '.jobs[0].id // empty')
	[ -n "$ru" ] && break
	sleep 0.1
done
[ -n "$ru" ] || fail "no relationship-update job after a label change"
assert_eq true "$(field "$ru" system)" "relationship-update is a system job"
assert_eq null "$(field "$ru" run_by)" "run by nobody"
jobctl list --json | jq -e ".jobs | map(.id) | index($ru) == null" >/dev/null ||
	fail "system job shown without --system"
wait_job 60 "$ru" '.status == "finished"'
assert_eq "Globex Corp" "$(rec people p0001 company_name)" "label copied (co1)"
assert_eq "" "$(rec people p0003 company_name)" "other references untouched (co0)"
n=0
for p in p0001 p0004 p3499; do
	[ "$(rec people $p company_name)" = "Globex Corp" ] && n=$((n + 1))
done
assert_eq 3 "$n" "every reference to co1 updated"

id=$(jobctl submit refactor --payload '{"collection":"small","field":"name","rename_to":"title"}')
wait_job 60 "$id" '.status == "finished"'
assert_eq 3 "$(field "$id" children.total)" "refactor in chunks of 40"
assert_eq n7 "$(rec small p007 title)" "field renamed"
assert_eq "" "$(rec small p007 name)" "old field gone"
id=$(jobctl submit refactor --payload '{"collection":"small","field":"tag","drop":true}')
wait_job 60 "$id" '.status == "finished"'
assert_eq "" "$(rec small p001 tag)" "field dropped"

kill -TERM "$jobd_pid"
rc=0
wait "$jobd_pid" || rc=$?
assert_eq 0 "$rc" "jobd exit status after SIGTERM"
echo "PASS: jobtypes"
