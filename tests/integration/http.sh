#!/usr/bin/env bash
# tests/integration/http.sh: the monitor's HTTP API (src/http/server.c) against a real
# redis-server, through tests/drivers/http_driver: every endpoint, every refusal,
# the token rules, and a payload holding <script> returned as JSON text.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

DRIVER=${HTTP_DRIVER:-$top_builddir/tests/drivers/http_driver}
[ -x "$DRIVER" ] || fail "$DRIVER not built"
need curl python3

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-http.XXXXXX")
on_exit "[ -n \"${KEEP_WORK:-}\" ] || rm -rf '$work'"

write_conf() { # FILE EXTRA-HTTP-LINES EXTRA-SECTIONS
	cat >"$1" <<EOF
[redis]
address = $JOBD_REDIS
[http]
listen = 127.0.0.1:0
$2
[type.imp]
handler = noop
restartable = yes
[type.sys]
handler = noop
system = yes
[type.fixed]
handler = noop
stoppable = no
$3
EOF
}

# start_driver NAME CONF [--worker]: sets BASE (serving) or waits for ready.
start_driver() {
	local name=$1 conf=$2 i
	shift 2
	"$DRIVER" "$conf" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	echo $! >"$work/$name.pid"
	on_exit "kill \$(cat '$work/$name.pid') 2>/dev/null || true"
	for i in $(seq 100); do
		grep -q 'listening\|worker ready' "$work/$name.out" 2>/dev/null && break
		kill -0 "$(cat "$work/$name.pid")" 2>/dev/null ||
			fail "$name exited: $(cat "$work/$name.err")"
		sleep 0.1
	done
	grep -q 'listening\|worker ready' "$work/$name.out" || fail "$name did not start"
	if grep -q listening "$work/$name.out"; then
		BASE=http://$(awk '/listening/ { print $2 }' "$work/$name.out")
	fi
}

stop_driver() {
	local pid rc=0
	pid=$(cat "$work/$1.pid")
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	assert_eq 0 "$rc" "$1 exits 0 on SIGTERM"
}

# req METHOD PATH [BODY] [CURL ARGS...]: sets CODE, BODY, HEADERS.
req() {
	local method=$1 path=$2 data=${3-}
	shift 2
	[ $# -gt 0 ] && shift
	local args=(-s -X "$method" -o "$work/body" -D "$work/headers" -w '%{http_code}')
	[ -n "$data" ] && args+=(--data-binary "$data")
	CODE=$(curl "${args[@]}" "$@" "$BASE$path")
	BODY=$(cat "$work/body")
	HEADERS=$(cat "$work/headers")
}

expect() { # CODE WHAT
	[ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE: $BODY"
}

# j EXPR: evaluates a Python expression on the body parsed as d.
j() {
	python3 -c 'import json, sys; d = json.loads(sys.argv[2]); r = eval(sys.argv[1]); print(json.dumps(r) if not isinstance(r, str) else r)' "$1" "$BODY"
}

wait_status() { # ID STATUS
	local i
	for i in $(seq 100); do
		req GET "/api/jobs/$1"
		[ "$(j 'd["status"]')" = "$2" ] && return 0
		sleep 0.1
	done
	fail "job $1 never became $2 (is $(j 'd["status"]'))"
}

write_conf "$work/open.conf" "" ""
start_driver open "$work/open.conf"
JOBD_CONFIG=$work/open.conf
export JOBD_CONFIG

# --- the page -----------------------------------------------------------
req GET /
expect 200 "GET /"
assert_contains "$HEADERS" "Content-Security-Policy: default-src 'none'; script-src 'self';" "page CSP"
assert_contains "$BODY" '<script src="/app.js"' "page loads app.js"
case $BODY in *"<script>"*) fail "inline script in the page" ;; esac
req GET /app.js
expect 200 "GET /app.js"
assert_contains "$HEADERS" "text/javascript" "app.js type"
case $BODY in *innerHTML*) fail "app.js uses innerHTML" ;; esac
req GET /app.css
expect 200 "GET /app.css"
etag=$(printf '%s\n' "$HEADERS" | awk -F': ' 'tolower($1) == "etag" { print $2 }' | tr -d '\r')
req GET /app.css "" -H "If-None-Match: $etag"
expect 304 "unchanged app.css"
req GET /nope.html
expect 404 "unknown page"
req POST /
expect 405 "POST /"

# --- submit and read -------------------------------------------------------
xss='<script>window.__xss=1</script>'
req POST /api/jobs "{\"type\":\"imp\",\"payload\":{\"note\":\"$xss\"},\"key\":\"k1\"}" -H 'X-Jobd-User: alice'
expect 201 "submit"
id=$(j 'd["ids"][0]')
assert_contains "$HEADERS" "application/json" "JSON content type"
assert_contains "$HEADERS" "X-Content-Type-Options: nosniff" "nosniff"
req POST /api/jobs '{"type":"imp","key":"k1"}' -H 'Content-Type: text/plain'
expect 201 "same key, any content type"
assert_eq "$id" "$(j 'd["ids"][0]')" "a repeated key returns the same job"
assert_eq true "$(j 'd["existed"][0]')" "existed"
req GET "/api/jobs/$id"
expect 200 "GET job"
assert_eq "$xss" "$(j 'd["payload"]["note"]')" "payload comes back intact"
assert_contains "$BODY" '<script>window.__xss=1<\/script>' "payload escaped as JSON text"
assert_eq alice "$(j 'd["run_by"]')" "run_by defaults to the actor"
# Same shape and values as jobctl show --json.
ctl=$(jobctl show "$id" --json)
python3 - "$BODY" "$ctl" <<'EOF' || fail "API and jobctl --json differ"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert list(a) == list(b), (list(a), list(b))
for k in a:
    if k not in ("waiting_ms", "duration_ms"):
        assert a[k] == b[k], (k, a[k], b[k])
EOF
req GET "/api/jobs/$id/" && expect 404 "trailing slash"

parent=$id
req POST /api/jobs "{\"type\":\"imp\",\"parent\":$parent,\"count\":3,\"key\":\"c\",\"low_priority\":true}"
expect 201 "submit children"
assert_eq 3 "$(j 'len(d["ids"])')" "3 children"
child=$(j 'd["ids"][0]')
req POST /api/jobs '{"type":"sys"}'
expect 201 "submit a system job"
sysid=$(j 'd["ids"][0]')
req POST /api/jobs '{"type":"imp","run_by":"bob","count":2}'
expect 201 "submit as bob"

req GET /api/jobs
expect 200 "list"
assert_eq null "$(j 'd["next"]')" "one page"
assert_eq "[]" "$(j '[x["id"] for x in d["jobs"] if x["parent"] is not None or x["system"]]')" "roots of users only"
req GET "/api/jobs?all=1"
assert_contains "$(j '[x["id"] for x in d["jobs"]]')" "$child" "all=1 adds children"
req GET "/api/jobs?system=1"
assert_contains "$(j '[x["id"] for x in d["jobs"]]')" "$sysid" "system=1 adds system jobs"
req GET "/api/jobs?run_by=bob"
assert_eq 2 "$(j 'len(d["jobs"])')" "run_by filter"
req GET "/api/jobs?type=imp&status=pending&limit=1"
assert_eq 1 "$(j 'len(d["jobs"])')" "limit"
next=$(j 'd["next"]')
[ "$next" != null ] || fail "limit=1 gives a next cursor"
first=$(j 'd["jobs"][0]["id"]')
req GET "/api/jobs?type=imp&status=pending&limit=1&cursor=$next"
expect 200 "next page"
[ "$(j 'd["jobs"][0]["id"]')" -lt "$first" ] || fail "the next page holds older jobs"
req GET "/api/jobs/$parent/children?limit=2"
expect 200 "children"
assert_eq 2 "$(j 'len(d["jobs"])')" "children page"
assert_eq true "$(j 'd["jobs"][0]["low_priority"]')" "child low priority"
req GET "/api/jobs/$parent"
assert_eq 3 "$(j 'd["children"]["total"]')" "children counters"
req GET /api/counts
expect 200 "counts"
assert_eq '["pending", "in_progress", "stopping", "stopped", "finished", "canceled"]' "$(j 'list(d)')" "count keys"
[ "$(j 'd["pending"]')" -ge 6 ] || fail "pending count"
req GET /api/types
assert_contains "$(j '[t["name"] for t in d["types"] if t["restartable"]]')" imp "types"

# --- operations -----------------------------------------------------------
req POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$parent,999999]}" -H 'X-Jobd-User: alice'
expect 200 "stop"
assert_eq true "$(j 'd["results"][0]["ok"]')" "stop ok"
assert_eq null "$(j 'd["results"][0]["error"]')" "no error"
assert_eq stopped "$(j 'd["results"][0]["status"]')" "a pending job is stopped at once"
assert_eq false "$(j 'd["results"][1]["ok"]')" "unknown job refused"
assert_eq null "$(j 'd["results"][1]["status"]')" "a refused job has no status"
assert_contains "$(j 'd["results"][1]["error"]')" "not found" "unknown job says why"
req GET "/api/jobs/$child"
assert_eq stopped "$(j 'd["status"]')" "stop cascades to children"
req POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$parent]}"
assert_eq false "$(j 'd["results"][0]["ok"]')" "second stop refused"
assert_contains "$(j 'd["results"][0]["error"]')" "stop needs" "refusal says why"
req POST /api/jobs/ops "{\"op\":\"low-priority\",\"ids\":[$parent]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "low priority"
assert_eq stopped "$(j 'd["results"][0]["status"]')" "low priority keeps the status"
req POST /api/jobs/ops "{\"op\":\"low-priority-off\",\"ids\":[$parent]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "low priority off"
req POST /api/jobs/ops "{\"op\":\"resume\",\"ids\":[$parent]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "resume"
req POST /api/jobs '{"type":"fixed"}'
fixed=$(j 'd["ids"][0]')
req POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$fixed]}"
assert_eq false "$(j 'd["results"][0]["ok"]')" "non-stoppable type refused"

# --- logs ----------------------------------------------------------------
req GET "/api/jobs/$parent/logs"
expect 200 "logs"
assert_contains "$(j '[e["message"] for e in d["entries"]]')" "stopped by alice" "audit names the actor"
assert_eq '["id", "job", "time", "level", "attempt", "message"]' "$(j 'list(d["entries"][0])')" "entry fields"
assert_eq 0 "$(j 'd["dropped"]')" "dropped"
assert_eq false "$(j 'd["truncated"]')" "truncated"
req GET "/api/jobs/$parent/logs?grep=RESUMED"
assert_eq 1 "$(j 'len(d["entries"])')" "grep is case-insensitive"
req GET "/api/jobs/$parent/logs?regex=%5E(stopped%7Cresumed)+by+ALICE"
assert_eq 1 "$(j 'len(d["entries"])')" "regex (only the stop names alice)"
req GET "/api/jobs/$parent/logs?level=warn"
assert_eq 0 "$(j 'len(d["entries"])')" "level filter"
req GET "/api/jobs/$parent/logs?since=1h&until=$(date -u -d '+1 min' +%Y-%m-%dT%H:%M:%SZ)"
[ "$(j 'len(d["entries"])')" -ge 3 ] || fail "since/until"
req GET "/api/jobs/$parent/logs?until=1h"
assert_eq 0 "$(j 'len(d["entries"])')" "until an hour ago"
req GET "/api/jobs/$parent/logs?limit=1"
assert_eq true "$(j 'd["truncated"]')" "limit truncates"
after=$(j 'd["entries"][0]["id"]')
req GET "/api/jobs/$parent/logs?after=$after"
[ "$(j 'd["entries"][0]["id"]')" != "$after" ] || fail "after skips the entry"
req GET "/api/jobs/$parent/logs?tree=1&grep=stopped"
assert_contains "$(j 'sorted(set(e["job"] for e in d["entries"]))')" "$child" "tree includes children"
req GET "/api/logs?grep=resumed&since=10m"
expect 200 "logs of all jobs"
[ "$(j 'len(d["entries"])')" -ge 1 ] || fail "logs of all jobs"
assert_eq null "$(j 'd["next"]')" "logs of all jobs: one page"
[ "$(j 'd["scanned"]')" -ge 1 ] || fail "logs of all jobs: scanned"
# A page of one entry continues with its cursor, to the same entries.
req GET "/api/logs?since=10m"
all=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print([(e["job"], e["id"], e["message"]) for e in d["entries"]])' "$BODY")
paged="[]"
cursor=
for _ in $(seq 1 200); do
	req GET "/api/logs?since=10m&limit=1${cursor:+&cursor=$cursor}"
	expect 200 "a page of logs"
	paged=$(python3 -c 'import json,sys; a=eval(sys.argv[1]); d=json.loads(sys.argv[2]); print(a + [(e["job"], e["id"], e["message"]) for e in d["entries"]])' "$paged" "$BODY")
	cursor=$(j 'd["next"] or ""')
	[ -n "$cursor" ] || break
done
[ "$(python3 -c 'import sys; print(len(eval(sys.argv[1])))' "$all")" -ge 3 ] ||
	fail "too few entries to page: $all"
assert_eq "$all" "$paged" "pages of one entry, one after the other"

# --- statistics and metrics -----------------------------------------------
req GET "/api/stats?since=10m"
expect 200 "stats"
assert_eq '["minute", "closed", "created", "started", "finished", "errors", "wait_avg_ms", "wait_min_ms", "wait_max_ms", "wait_p95_ms", "by_type"]' "$(j 'list(d["minutes"][-1])')" "stats fields"
assert_eq false "$(j 'd["minutes"][-1]["closed"]')" "open minute included"
[ "$(j 'sum(m["created"] for m in d["minutes"])')" -ge 8 ] || fail "created counted"
assert_eq null "$(j '[m for m in d["minutes"] if m["started"] == 0][0]["wait_avg_ms"]')" "no start, null wait"
req GET "/api/stats?since=1h&type=imp"
assert_eq '["imp"]' "$(j 'sorted(set(k for m in d["minutes"] for k in m["by_type"]))')" "type filter"
req GET "/api/stats?since=24h"
assert_eq 3600000 "$(j 'd["span_ms"]')" "hourly rollups past 6h"
req GET /metrics
expect 200 "metrics"
assert_contains "$HEADERS" "text/plain; version=0.0.4" "metrics type"
for m in 'jobd_jobs{store="jobd",status="pending"}' '# TYPE jobd_jobs_created_total counter' \
	'jobd_jobs_finished_total{store="jobd",type="' 'le="+Inf"}' \
	'jobd_waiting_seconds_count{store="jobd",type="' ',code="200"}' 'jobd_redis_up{instance="'; do
	assert_contains "$BODY" "$m" "metrics line $m"
done
printf '%s\n' "$BODY" | grep -q -E '^jobd_redis_up\{instance="[^"]+"\} 1$' ||
	fail "metrics: jobd_redis_up is not 1: $BODY"

# --- refusals -------------------------------------------------------------
check() { # CODE WORDS METHOD PATH [BODY] [ARGS]
	local code=$1 words=$2
	shift 2
	req "$@"
	expect "$code" "$*"
	assert_contains "$(j 'd["error"]')" "$words" "$*"
}
check 404 "no such path" GET /api/nothing
check 404 "not found" GET /api/jobs/999999
check 404 "not found" GET /api/jobs/999999/children
check 404 "not found" GET /api/jobs/999999/logs
check 404 "no such path" GET "/api/jobs/$parent/nothing"
check 400 "bad job id" GET /api/jobs/abc
check 400 "bad job id" GET /api/jobs/0
check 400 "bad job id" GET /api/jobs/99999999999999999999999
check 405 "method not allowed" DELETE /api/jobs
check 405 "method not allowed" GET /api/jobs/ops
check 405 "method not allowed" POST /api/stats '{}'
check 400 "bad status" GET "/api/jobs?status=running"
check 400 "unknown type" GET "/api/jobs?type=nosuch"
check 400 "unknown parameter" GET "/api/jobs?colour=red"
check 400 "given twice" GET "/api/jobs?limit=1&limit=2"
check 400 "bad limit" GET "/api/jobs?limit=0"
check 400 "bad limit" GET "/api/jobs?limit=1001"
check 400 "bad cursor" GET "/api/jobs?cursor=-1"
check 400 "bad system" GET "/api/jobs?system=maybe"
check 400 "bad level" GET "/api/jobs/$parent/logs?level=loud"
check 400 "bad regex" GET "/api/jobs/$parent/logs?regex=%28"
check 400 "bad since" GET "/api/jobs/$parent/logs?since=yesterday"
check 400 "bad after" GET "/api/jobs/$parent/logs?after=x"
check 400 "bad cursor" GET "/api/logs?cursor=12-x"
check 400 "unknown parameter" GET "/api/jobs/$parent/logs?cursor=1-0"
check 400 "bad since" GET "/api/stats?since=5x"
check 400 "31d" GET "/api/stats?since=60d"
check 400 "unknown type" GET "/api/stats?type=nosuch"
check 400 "invalid JSON body at byte" POST /api/jobs '{"type": "imp",}'
check 400 "invalid JSON body at byte" POST /api/jobs/ops '{"op":"stop","ids":[1,]}'
check 400 "must be a JSON object" POST /api/jobs '[1]'
check 400 "empty body" POST /api/jobs ''
check 400 "unknown type" POST /api/jobs '{"type":"nosuch"}'
check 400 '"type" must be' POST /api/jobs '{"payload":{}}'
check 400 '"payload" must be' POST /api/jobs '{"type":"imp","payload":"x"}'
check 400 '"count" must be' POST /api/jobs '{"type":"imp","count":0}'
check 400 '"parent" must be' POST /api/jobs '{"type":"imp","parent":-1}'
check 400 '"low_priority" must be' POST /api/jobs '{"type":"imp","low_priority":"yes"}'
check 400 "unknown member" POST /api/jobs '{"type":"imp","colour":1}'
check 404 "not found" POST /api/jobs '{"type":"imp","parent":999999}'
check 400 "unknown op" POST /api/jobs/ops '{"op":"explode","ids":[1]}'
check 400 '"ids" must be' POST /api/jobs/ops '{"op":"stop","ids":[]}'
check 400 '"ids" must be' POST /api/jobs/ops '{"op":"stop"}'
check 400 "bad job id at ids[1]" POST /api/jobs/ops '{"op":"stop","ids":[1,"2"]}'
check 400 "bad X-Jobd-User" POST /api/jobs/ops '{"op":"stop","ids":[1]}' -H "X-Jobd-User: $(printf 'x%.0s' $(seq 70))"
check 403 "cross-site" POST /api/jobs/ops '{"op":"stop","ids":[1]}' -H 'Origin: http://evil.example'
check 403 "cross-site" POST /api/jobs '{"type":"imp"}' -H 'Sec-Fetch-Site: cross-site'
python3 -c 'print("{\"type\":\"imp\",\"payload\":{\"x\":\"" + "a" * (1024 * 1024) + "\"}}")' >"$work/big.json"
check 413 "over 1 MiB" POST /api/jobs "@$work/big.json"
check 414 "over 8 KiB" GET "/api/jobs?run_by=$(printf 'a%.0s' $(seq 9000))"
req POST /api/jobs/ops '{"op":"stop","ids":[1]}' -H "Origin: $BASE"
expect 200 "same-origin POST"

# --- DNS rebinding: a page of rebind.evil.example resolved to 127.0.0.1 ----
port=${BASE##*:}
evil=rebind.evil.example:$port
req GET /api/counts
before=$BODY
check 421 "unknown host \"$evil\"" POST /api/jobs '{"type":"imp"}' -H "Host: $evil" -H "Origin: http://$evil"
check 421 "unknown host" POST /api/jobs/ops '{"op":"stop","ids":[1]}' -H "Host: $evil" -H "Origin: http://$evil"
check 421 "unknown host" GET /api/jobs "" -H "Host: $evil"
check 421 "unknown host" GET "/api/jobs/$parent" "" -H "Host: $evil"
check 421 "unknown host" GET /metrics "" -H "Host: $evil"
check 421 "unknown host" GET / "" -H "Host: $evil"
check 421 "unknown host" GET /api/counts "" -H "Host: localhost.evil.example:$port"
req GET /api/counts
assert_eq "$before" "$BODY" "no job created through a rebound name"
for host in "127.0.0.1:$port" "localhost:$port" "LOCALHOST" "[::1]:$port"; do
	req GET /api/counts "" -H "Host: $host"
	expect 200 "GET with Host: $host"
done
req POST /api/jobs '{"type":"imp"}' -H "Host: localhost:$port" -H "Origin: http://localhost:$port"
expect 201 "POST from the page at localhost"

# --- a worker moves jobs through every status ------------------------------
start_driver worker "$work/open.conf" --worker
req POST /api/jobs '{"type":"imp","payload":{"sim":"run"}}'
run=$(j 'd["ids"][0]')
req POST /api/jobs '{"type":"imp","payload":{"sim":"stuck"}}'
stuck=$(j 'd["ids"][0]')
req POST /api/jobs '{"type":"imp","payload":{"sim":"error"}}'
bad=$(j 'd["ids"][0]')
wait_status "$run" in_progress
wait_status "$stuck" in_progress
wait_status "$bad" finished
assert_eq true "$(j 'd["finished_with_errors"]')" "failed job has errors"
req POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$run,$stuck]}"
assert_eq '["stopping", "stopping"]' "$(j '[r["status"] for r in d["results"]]')" \
	"a stop of a running job is only requested"
wait_status "$run" stopped
wait_status "$stuck" stopping
req POST /api/jobs/ops "{\"op\":\"cancel\",\"ids\":[$stuck]}"
assert_eq false "$(j 'd["results"][0]["ok"]')" "cancel refused while stopping"
req POST /api/jobs/ops "{\"op\":\"force-stop\",\"ids\":[$stuck]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "force stop"
wait_status "$stuck" stopped
assert_eq true "$(j 'd["inconsistent"]')" "force-stopped job is inconsistent"
req POST /api/jobs/ops "{\"op\":\"cancel\",\"ids\":[$stuck]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "cancel"
wait_status "$stuck" canceled
req POST /api/jobs/ops "{\"op\":\"restart\",\"ids\":[$bad]}"
assert_eq true "$(j 'd["results"][0]["ok"]')" "restart a finished root"
assert_eq pending "$(j 'd["results"][0]["status"]')" "a restarted job is pending"
req GET "/api/jobs/$bad"
assert_eq 1 "$(j 'd["restarts"]')" "restarts counted"
req GET "/api/jobs/$run/logs?level=info&grep=step"
[ "$(j 'len(d["entries"])')" -ge 1 ] || fail "handler log lines readable"
req GET "/api/stats?since=5m"
[ "$(j 'sum(m["started"] for m in d["minutes"])')" -ge 3 ] || fail "starts counted"
[ "$(j '[m["wait_avg_ms"] for m in d["minutes"] if m["started"]][0]')" != null ] || fail "waits when started"
stop_driver worker

# --- tokens -----------------------------------------------------------------
write_conf "$work/tok.conf" "token = s3cret" "[users]
c4rol-token = carol"
start_driver tok "$work/tok.conf"
req GET /api/jobs
expect 200 "reads stay open"
check 401 "Authorization: Bearer" POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$parent]}"
assert_contains "$HEADERS" "WWW-Authenticate: Bearer" "401 challenge"
check 401 "wrong token" POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$parent]}" -H 'Authorization: Bearer s3cre'
check 401 "wrong token" POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$parent]}" -H 'Authorization: Bearer s3cret2'
req POST /api/jobs '{"type":"imp"}' -H 'Authorization: Bearer c4rol-token'
expect 201 "submit with a user token"
tjob=$(j 'd["ids"][0]')
req GET "/api/jobs/$tjob"
assert_eq carol "$(j 'd["run_by"]')" "run_by is the token's user"
req POST /api/jobs/ops "{\"op\":\"stop\",\"ids\":[$tjob]}" -H 'Authorization: Bearer c4rol-token' -H 'X-Jobd-User: mallory'
expect 200 "user token"
assert_eq true "$(j 'd["results"][0]["ok"]')" "stop with a user token"
req POST /api/jobs/ops "{\"op\":\"resume\",\"ids\":[$tjob]}" -H 'Authorization: bearer s3cret'
expect 200 "main token"
assert_eq true "$(j 'd["results"][0]["ok"]')" "resume with the main token"
req GET "/api/jobs/$tjob/logs?grep=by"
msgs=$(j '[e["message"] for e in d["entries"]]')
assert_contains "$msgs" "stopped by carol" "a user token acts as its user"
assert_contains "$msgs" "resumed by admin" "the main token acts as admin"
case $msgs in *mallory*) fail "X-Jobd-User ignored with tokens" ;; esac
stop_driver tok

write_conf "$work/ro.conf" "token = s3cret
read_requires_token = yes" ""
start_driver ro "$work/ro.conf"
check 401 "Authorization" GET /api/jobs
check 401 "Authorization" GET /metrics
req GET /api/jobs "" -H 'Authorization: Bearer s3cret'
expect 200 "read with token"
req GET /
expect 200 "the page itself needs no token"

# --- the address in use ------------------------------------------------------
port=${BASE##*:}
write_conf "$work/busy.conf" "" ""
sed -i "s/^listen = .*/listen = 127.0.0.1:$port/" "$work/busy.conf"
rc=0
"$DRIVER" "$work/busy.conf" >"$work/busy.out" 2>"$work/busy.err" || rc=$?
assert_eq 1 "$rc" "a busy address fails"
assert_contains "$(cat "$work/busy.err")" "cannot listen on 127.0.0.1:$port: Address already in use" "busy message"
stop_driver ro

# --- [http] allowed_hosts: more names for the monitor -----------------------
write_conf "$work/hosts.conf" "allowed_hosts = jobs.example.test, Ops-Box" ""
start_driver hosts "$work/hosts.conf"
port=${BASE##*:}
req GET /api/counts "" -H "Host: jobs.example.test:$port"
expect 200 "a configured name"
req GET / "" -H "Host: ops-box"
expect 200 "a configured name, any case, no port"
req POST /api/jobs '{"type":"imp"}' -H "Host: jobs.example.test:$port" -H "Origin: http://jobs.example.test:$port"
expect 201 "POST from the page at a configured name"
check 421 "unknown host" GET /api/counts "" -H "Host: rebind.evil.example:$port"
stop_driver hosts

# --- Redis down, shutdown -----------------------------------------------------
start_driver open2 "$work/open.conf"
stop_redis
check 503 "redis" GET /api/jobs
check 503 "redis" POST /api/jobs/ops '{"op":"stop","ids":[1]}'
check 400 "bad status" GET "/api/jobs?status=x"
req GET /
expect 200 "the page without Redis"
req GET /metrics
expect 200 "metrics without Redis"
printf '%s\n' "$BODY" | grep -q -E '^jobd_redis_up\{instance="[^"]+"\} 0$' ||
	fail "metrics: jobd_redis_up is not 0 with Redis down: $BODY"
stop_driver open2
echo "PASS: http"
