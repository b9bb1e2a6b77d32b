#!/usr/bin/env bash
# tests/integration/metrics.sh: GET /metrics by Prometheus' conventions
# (docs/metrics.md), on a real jobd and redis-server:
#  1. counters never go down when the store's clock crosses a minute, an
#     hour and a day: jobd's Redis module is loaded with its test clock
#     (src/store/module/testclock.c; "test-clock-only" with
#     JOBD_TEST_MODULE=no, so that every transition runs in Lua), the
#     clock jumps to 50 s before each boundary, jobs of two types run and
#     a scrape is read; then it jumps to 1 s after the boundary and every
#     counter and histogram series must be there again, none lower, the
#     store's equal; after more jobs, created, finished and errors per
#     type grew by exactly the jobs made;
#  2. every series is either the store's (store="jobd", no instance) or
#     this instance's (instance="metrics-test"), and the types are labels;
#  3. process_*: plausible values of this jobd process;
#  4. promtool check metrics (Debian's prometheus package) finds nothing
#     on a real scrape. Without promtool the test skips (fails with
#     CI=true) after the other parts.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"

need redis-server redis-cli curl python3
need_jobd
dir=$(mktemp -d /tmp/jobd-metrics.XXXXXX) || fail "cannot create a temp dir"
on_exit "rm -rf '$dir'"
start_redis_test_clock "$dir"

cat >"$dir/metrics.conf" <<CONF
[engine]
roles = work,http
instance = metrics-test
workers = 4
lease = 5s
heartbeat = 200ms
[http]
listen = 127.0.0.1:0
[type.alpha]
handler = noop
[type.beta]
handler = noop
CONF
export JOBD_CONFIG=$dir/metrics.conf
start_jobd metrics "$dir"
jobd_pid=${jobd_pids[metrics]}
url=$(monitor_url "$dir/metrics.log") || exit 1

# The store's clock, ms since the epoch.
store_ms() {
	rcli time | { read -r s && read -r us && echo $((s * 1000 + us / 1000)); }
}

scrape() {
	curl -fsS -m 10 "${url}metrics" >"$dir/$1.txt" || fail "GET /metrics ($1)"
}

made=0
# One round: four jobs, three alpha (one of them a child, created in
# Lua) and one beta that finishes with errors; waits until all ended.
round() {
	jobctl submit alpha >/dev/null || fail "submit alpha"
	jobctl submit alpha --payload '{"children": 1}' >/dev/null || fail "submit alpha with a child"
	jobctl submit beta --payload '{"errors": 1}' >/dev/null || fail "submit beta"
	made=$((made + 4))
	wait_for 30 "$made jobs of the test finished" all_finished
}

# Counted by type: jobd's own cleanup job may run meanwhile.
all_finished() {
	local a b

	a=$(rcli hget jobd:stats:total 'finished|alpha')
	b=$(rcli hget jobd:stats:total 'finished|beta')
	[ $((${a:-0} + ${b:-0})) -ge "$made" ]
}

# check BEFORE AFTER [EQUAL]: every counter and histogram series of
# BEFORE is in AFTER and not lower; with EQUAL, those of the test's
# types are equal (no job of theirs ran in between).
check() {
	python3 - "$dir/$1.txt" "$dir/$2.txt" "${3:-}" <<'PY'
import re, sys
def read(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
    return out
before, after = read(sys.argv[1]), read(sys.argv[2])
monotonic = re.compile(r'^[a-z_]+(_total|_bucket|_count|_sum)\{')
bad = []
for series, v in sorted(before.items()):
    if not monotonic.match(series):
        continue
    if series not in after:
        bad.append("%s gone (was %g)" % (series, v))
    elif after[series] < v:
        bad.append("%s went down: %g -> %g" % (series, v, after[series]))
    elif sys.argv[3] and re.search(r'type="(alpha|beta)"', series) and after[series] != v:
        bad.append("%s changed without jobs: %g -> %g" % (series, v, after[series]))
if bad:
    sys.exit("\n".join(bad))
PY
}

# value FILE SERIES: its value, or 0 when absent.
value() {
	awk -v s="$2" '$1 == s { v = $2 } END { print v == "" ? 0 : v }' "$dir/$1.txt"
}

day=86400000
now=$(store_ms)
midnight=$((now - now % day + 2 * day))
# minute: 22:37, hour: 23:00, day: 00:00 of a day after tomorrow (UTC).
for b in minute:$((midnight - 5400000 + 420000)) hour:$((midnight - 3600000)) day:$midnight; do
	name=${b%%:*}
	at=${b#*:}
	set_clock $((at - 50000))
	round
	scrape "$name-before"
	[ "$(store_ms)" -lt "$at" ] ||
		fail "$name: the round took more than 49 s of the store's clock"
	set_clock $((at + 1000))
	scrape "$name-after"
	check "$name-before" "$name-after" equal || fail "across the $name boundary"
	echo "# $name boundary: no counter went down"
done

# More jobs after the last boundary: the store's counters grew by them.
round
scrape last
check day-after last || fail "after the day boundary"
for s in 'created_total{store="jobd",type="alpha"} 3' 'created_total{store="jobd",type="beta"} 1' \
	'finished_total{store="jobd",type="alpha"} 3' 'finished_total{store="jobd",type="beta"} 1' \
	'finished_with_errors_total{store="jobd",type="beta"} 1' \
	'finished_with_errors_total{store="jobd",type="alpha"} 0' \
	'started_total{store="jobd",type="alpha"} 3' \
	'waiting_seconds_count{store="jobd",type="beta"} 1'; do
	series=jobd_jobs_${s% *}
	[[ $s == waiting* ]] && series=jobd_${s% *}
	grew=$(($(value last "$series") - $(value day-after "$series")))
	assert_eq "${s##* }" "$grew" "$series after one more round"
done
# Four rounds: every job of them is counted since the store began.
assert_eq 12 "$(value last 'jobd_jobs_created_total{store="jobd",type="alpha"}')" "alpha jobs created in all"
assert_eq 4 "$(value last 'jobd_jobs_finished_with_errors_total{store="jobd",type="beta"}')" "beta jobs with errors in all"

# Labels: the store's series carry store and no instance; this
# instance's carry instance; the types are labels.
python3 - "$dir/last.txt" <<'PY' || fail "labels"
import re, sys
store_wide = re.compile(r'^(jobd_jobs|jobd_jobs_[a-z_]+_total|jobd_waiting_seconds_(bucket|sum|count))$')
bad, seen = [], set()
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    series = line.rsplit(" ", 1)[0]
    m = re.match(r'^([a-z_]+)\{(.*)\}$', series)
    if not m:
        bad.append("no labels: " + series)
        continue
    name, labels = m.groups()
    seen.add(name)
    if store_wide.match(name):
        if not labels.startswith('store="jobd"') or "instance=" in labels:
            bad.append("store-wide without store, or with instance: " + series)
        if name != "jobd_jobs" and 'type="' not in labels:
            bad.append("no type label: " + series)
    elif not labels.startswith('instance="metrics-test"') or "store=" in labels:
        bad.append("per-instance without instance: " + series)
for want in ["jobd_redis_up", "jobd_workers", "jobd_worker_claims_total",
             "jobd_http_requests_total", "process_cpu_seconds_total",
             "process_resident_memory_bytes", "process_open_fds",
             "process_max_fds", "process_start_time_seconds"]:
    if want not in seen:
        bad.append("missing " + want)
if bad:
    sys.exit("\n".join(bad))
PY
claims=$(value last 'jobd_worker_claims_total{instance="metrics-test"}')
[ "$claims" -ge 16 ] || fail "this instance claimed $claims jobs, ran 16"

# process_*: this jobd's, as the kernel sees it.
start=$(value last 'process_start_time_seconds{instance="metrics-test"}')
started=$(date -d "$(ps -o lstart= -p "$jobd_pid")" +%s)
[ $((${start%.*} - started)) -ge -2 ] && [ $((${start%.*} - started)) -le 2 ] ||
	fail "process_start_time_seconds $start, ps says $started"
fds=$(value last 'process_open_fds{instance="metrics-test"}')
real_fds=$(($(ls "/proc/$jobd_pid/fd" | wc -l)))
[ "$fds" -ge 5 ] && [ "$fds" -le $((real_fds + 5)) ] ||
	fail "process_open_fds $fds, /proc says $real_fds"
assert_eq "$(awk '$1 == "Max" && $3 == "files" { print $4 }' "/proc/$jobd_pid/limits")" \
	"$(value last 'process_max_fds{instance="metrics-test"}')" "process_max_fds"
rss=$(value last 'process_resident_memory_bytes{instance="metrics-test"}')
[ "$rss" -ge 1000000 ] || fail "process_resident_memory_bytes $rss"

# promtool, on the scrape with every kind of series.
if ! command -v promtool >/dev/null 2>&1; then
	skip_or_fail "promtool not found (Debian package prometheus; run scripts/bootstrap)"
fi
promtool check metrics <"$dir/last.txt" >"$dir/promtool.txt" 2>&1 ||
	fail "promtool check metrics: $(cat "$dir/promtool.txt")"
stop_jobd metrics
echo "PASS: metrics"
