#!/usr/bin/env bash
# logs.sh: per-job logs and statistics through jobctl, with a real jobd
# running the jobs: every filter of `jobctl logs`, --tree ordering,
# --follow ending with the job, the audit entries of each operation with
# its actor, the bound and its "N earlier entries dropped" marker, the
# global search, and statistics equal to a count made from the jobs.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-logs.XXXXXX")
on_exit "rm -rf '$dir'"
cat >"$dir/jobd.conf" <<CONF
[engine]
roles = work,http
workers = 4
lease = 3s
heartbeat = 200ms
[retention]
logs_max_entries = 100
[http]
listen = 127.0.0.1:0
[type.again]
handler = noop
restartable = yes
CONF
export JOBD_CONFIG=$dir/jobd.conf
"$top_builddir/src/jobd" 2>"$dir/jobd.log" &
jobd_pid=$!
on_exit "kill $jobd_pid 2>/dev/null; wait $jobd_pid 2>/dev/null || true"

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
status() { jobctl show "$1" --json | json 'd["status"]'; }
wait_status() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[ "$(status "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	fail "job $1 is $(status "$1"), not $2 after $3 s"
}

# A parent with two children; one error reported by the parent.
p=$(jobctl --as alice submit noop --payload \
	'{"steps": 4, "sleep_ms": 100, "errors": 1, "children": 2, "child_payload": {"steps": 2, "sleep_ms": 50}}')

# --follow prints entries as they come and ends by itself with the job.
follow=$(timeout 30 "$top_builddir/src/jobctl" logs "$p" --follow) ||
	fail "logs --follow did not end with the job (exit $?)"
assert_eq finished "$(status "$p")" "job after --follow returned"
assert_contains "$follow" "created by alice" "follow: creation"
assert_contains "$follow" "claimed by" "follow: claim"
assert_contains "$follow" "finished with errors" "follow: the end"

all=$(jobctl logs "$p")
assert_contains "$all" "noop: error 1 of 1" "the handler's error"
assert_contains "$all" "progress " "progress audit line"
assert_contains "$all" "child" "child created entry"

# --level: that level and above.
errs=$(jobctl logs "$p" --level error)
assert_contains "$errs" "noop: error 1 of 1" "--level error keeps errors"
case $errs in *" info "*) fail "--level error printed an info line: $errs" ;; esac
warn=$(jobctl logs "$p" --level warn)
assert_contains "$warn" "finished with errors" "--level warn keeps warnings"

# --grep is a case-insensitive substring; --regex an extended regex.
assert_contains "$(jobctl logs "$p" --grep 'NOOP: ERROR')" "noop: error 1 of 1" "--grep"
[ -z "$(jobctl logs "$p" --grep 'no such text')" ] || fail "--grep matched nothing but printed"
n=$(jobctl logs "$p" --regex 'progress [0-9]+0%' | wc -l)
[ "$n" -ge 2 ] || fail "--regex found $n progress lines"
err=$(jobctl logs "$p" --regex '(' 2>&1 >/dev/null) && fail "bad regex accepted"
assert_contains "$err" "bad --regex" "bad regex message"

# --json: one object per entry, with the fields of the API.
jobctl logs "$p" --json | while read -r line; do
	printf '%s' "$line" | json 'd["time"].endswith("Z") and d["job"] == '"$p"' and d["level"] in ("debug","info","warn","error") and isinstance(d["attempt"], int)' |
		grep -qx True || fail "bad --json entry: $line"
done

# --since/--until: absolute times cut the range.
first=$(jobctl logs "$p" --json | head -n 1 | json 'd["time"]')
last=$(jobctl logs "$p" --json | tail -n 1 | json 'd["time"]')
total=$(jobctl logs "$p" | wc -l)
[ "$(jobctl logs "$p" --since "$last" | wc -l)" -lt "$total" ] || fail "--since kept everything"
[ "$(jobctl logs "$p" --until "$first" | wc -l)" -lt "$total" ] || fail "--until kept everything"
[ "$(jobctl logs "$p" --since 1h | wc -l)" -eq "$total" ] || fail "--since 1h lost entries"

# --tree: the children's entries too, tagged with their job, by time.
tree=$(jobctl logs "$p" --tree --json)
printf '%s\n' "$tree" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
jobs = {r["job"] for r in rows}
assert len(jobs) == 3, "tree has jobs %s" % jobs
ids = [(int(r["id"].split("-")[0]), int(r["id"].split("-")[1])) for r in rows]
assert ids == sorted(ids), "tree not in time order"
' || fail "--tree: $tree"

# The audit trail: each operation and its actor.
a=$(jobctl submit again --payload '{"steps": 50, "sleep_ms": 100}')
wait_status "$a" in_progress 10
jobctl --as bob stop "$a" >/dev/null
wait_status "$a" stopped 10
jobctl --as carol resume "$a" >/dev/null
jobctl --as dave low-priority "$a" >/dev/null
jobctl --as dave low-priority --off "$a" >/dev/null
jobctl --as erin stop "$a" >/dev/null
wait_status "$a" stopped 10
jobctl --as frank cancel "$a" >/dev/null
b=$(jobctl submit again --payload '{"steps": 1}')
wait_status "$b" finished 10
jobctl --as gina restart "$b" >/dev/null
# 4 s of work: the stop lands inside it however loaded the machine (at
# 1 s it found the job finished once).
u=$(jobctl submit noop --payload '{"steps": 40, "sleep_ms": 100, "uninterruptible": true}')
wait_status "$u" in_progress 10
jobctl --as hal stop "$u" >/dev/null
# Its one section spans the whole run: it ends done, never interrupted.
wait_status "$u" finished 30
assert_contains "$(jobctl logs "$u")" "stopping deferred" "non-interruptible stop audit"
audit=$(jobctl logs "$a")
for want in "stop requested by bob" "stopped at checkpoint" "resumed by carol" \
	"low priority set by dave" "low priority removed by dave" \
	"stop requested by erin" "canceled by frank"; do
	assert_contains "$audit" "$want" "audit entry"
done
assert_contains "$(jobctl logs "$b")" "restarted by gina" "restart audit"

# The bound: a log keeps about logs_max_entries (whole stream nodes are
# trimmed); what went is counted and shown.
c=$(jobctl submit noop --payload '{"steps": 100, "sleep_ms": 100}')
jobctl stop "$c" >/dev/null
wait_status "$c" stopped 10
for i in $(seq 1 150); do
	jobctl --as "loop$i" low-priority "$c" >/dev/null
	jobctl --as "loop$i" low-priority --off "$c" >/dev/null
done
out=$(jobctl logs "$c")
assert_contains "$out" "earlier entries dropped" "the trimming marker"
kept=$(rcli xlen "jobd:log:$c")
[ "$kept" -le 250 ] || fail "the log kept $kept entries, bound 100"
assert_contains "$out" "low priority removed by loop150" "the newest entries stay"

# The global search: by text, over every job that logged in the window.
found=$(jobctl logs --all --grep 'stop requested' --since 1h)
assert_contains "$found" "[$a]" "global search finds job $a"
# --limit stops at a cursor; --cursor goes on from there with what
# followed (entries logged meanwhile come after).
full=$(jobctl logs --all --since 1h)
first=$(jobctl logs --all --since 1h --limit 5)
cursor=$(printf '%s\n' "$first" | sed -n 's/^(more entries: continue with --cursor \(.*\))$/\1/p')
[ -n "$cursor" ] || fail "logs --all --limit 5 printed no cursor: $first"
assert_eq "$(printf '%s\n' "$full" | head -n 5)" "$(printf '%s\n' "$first" | head -n 5)" "the first page"
rest=$(jobctl logs --all --since 1h --cursor "$cursor")
n=$(printf '%s\n' "$full" | wc -l)
[ "$n" -gt 10 ] || fail "too few entries for pages: $full"
assert_eq "$(printf '%s\n' "$full" | tail -n +6)" "$(printf '%s\n' "$rest" | head -n $((n - 5)))" "the rest after --cursor"
err=$(jobctl logs --all --cursor nonsense 2>&1 >/dev/null) && fail "bad cursor accepted"
assert_contains "$err" "bad --cursor" "bad cursor message"

# Statistics: created per minute equals the jobs made, and every minute
# in the window is there with the open one last.
jobctl stats --json >"$dir/stats.json"
made=$(jobctl list --all --system --json --limit 1000 | json 'len(d["jobs"])')
python3 - "$dir/stats.json" "$made" <<'PY' || fail "stats do not match the jobs"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["minutes"]
assert m and m[-1]["closed"] is False, "the open minute is not last"
assert all(x["closed"] for x in m[:-1]), "a past minute is open"
created = sum(x["created"] for x in m)
assert created == int(sys.argv[2]), "created %d, jobs %s" % (created, sys.argv[2])
for x in m:
    if x["started"] == 0:
        assert x["wait_avg_ms"] is None and x["wait_min_ms"] is None
    else:
        assert x["wait_min_ms"] <= x["wait_avg_ms"] <= x["wait_max_ms"]
        assert x["wait_p95_ms"] is not None
PY
# The table lists the minutes with data: a job made just before gives the
# open minute some, unless the minute turned over in between (try again).
for _ in 1 2 3; do
	jobctl submit noop >/dev/null
	table=$(jobctl stats)
	[[ $table == *"(open)"* ]] && break
done
assert_contains "$table" "(open)" "stats table shows the open minute"

# /metrics adds this instance's worker counters to the store's.
url=$(monitor_url "$dir/jobd.log") || exit 1
metrics=$(curl -fsS "${url}metrics") || fail "GET /metrics"
inst=$(printf '%s\n' "$metrics" | sed -n 's/^jobd_workers{\(instance="[^"]*"\)} .*/\1/p')
[ -n "$inst" ] || fail "metrics: no jobd_workers with an instance label: $metrics"
assert_contains "$metrics" "jobd_workers{$inst} 4" "metrics: workers"
assert_contains "$metrics" "jobd_workers_busy{$inst} " "metrics: utilisation"
claims=$(printf '%s\n' "$metrics" | awk -v s="jobd_worker_claims_total{$inst}" '$1 == s { print $2 }')
[ "${claims:-0}" -ge 5 ] || fail "metrics: $claims claims"
assert_contains "$metrics" 'jobd_jobs{store="jobd",status="finished"}' "metrics: jobs by status"
echo "PASS: logs"
