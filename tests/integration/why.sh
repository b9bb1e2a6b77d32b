#!/usr/bin/env bash
# tests/integration/why.sh: jobctl why and GET /api/jobs/ID/why against a
# private redis-server and a real jobd.
#
# Each reason is produced by the state it names: no instance alive (before
# jobd starts, and after it is killed -9 and its view expired), a retry
# time, the fair scheduler's line of roots, the jobs of its own root
# before it, low priority behind normal jobs, every worker busy, a job
# that is on no ready queue (fsck), and a job that is not pending.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need jq curl
start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-why.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"
port=$(free_port)
cat >"$work/jobd.conf" <<EOF
[engine]
roles = work,http
workers = 1
lease = 2s
heartbeat = 200ms
[http]
listen = 127.0.0.1:$port
[type.block]
handler = exec
command = /bin/sleep 300
[type.flaky]
handler = exec
command = /bin/false
retries = 1
retry_backoff = 1h
EOF
export JOBD_CONFIG=$work/jobd.conf
unset JOBD_USER

why() { jobctl why "$@"; }
codes() { jobctl why "$1" --json | jq -r '[.reasons[].code] | join(",")'; }
has_code() { [[ ",$(codes "$1")," == *",$2,"* ]]; }

# --- nobody to run it --------------------------------------------------------
first=$(jobctl submit noop)
out=$(why "$first")
assert_contains "$out" "job $first (noop) is Pending, waiting for" "headline"
assert_contains "$out" "no instance with the work role is running" "no instance yet"
assert_eq no_workers "$(codes "$first")" "only reason without instances"

start_jobd jobd "$work"
wait_job 20 "$first" '.status == "finished"'
assert_contains "$(why "$first")" "it is Finished, not waiting to start" "finished job"
assert_eq not_pending "$(codes "$first")" "code of a job that is not pending"

# --- a retry time -------------------------------------------------------------
flaky=$(jobctl submit flaky)
wait_for 20 "flaky job waits for its retry" has_code "$flaky" retry_at
[[ $(why "$flaky") =~ "it waits for its retry time, in "[0-9hm]+" (at 20"[0-9-]+T[0-9:.]+Z")" ]] ||
	fail "retry time not said: $(why "$flaky")"

# --- the worker is busy: the line of roots, and the queue of a root ----------
block=$(jobctl submit block)
wait_job 20 "$block" '.status == "in_progress"'
r1=$(jobctl submit noop)
# The instance publishes how many of its workers are busy once a
# heartbeat (200 ms here): the claim of block may not be in it yet.
wait_for 10 "the instance's view counts the busy worker" has_code "$r1" busy
r2=$(jobctl submit noop)
out=$(why "$r2")
assert_contains "$out" "its root $r2 is 2nd of 2 roots in line" "second root in line"
assert_contains "$out" "every worker is busy: 1 of 1, on 1 instance" "busy workers"
assert_eq "busy" "$(codes "$r1")" "first root in line waits only for a worker"

parent=$(jobctl submit noop)
c1=$(jobctl submit noop --parent "$parent")
c2=$(jobctl submit noop --parent "$parent")
assert_contains "$(why "$c2")" "2 jobs of root $parent are ahead of it" "queue of a root"
assert_contains "$(why "$c1")" "1 job of root $parent is ahead of it" "one ahead"
# Equal virtual runtimes are served in member order, and a root with a
# queue of its own ("8") sorts before the list of roots alone ("alone"):
# it is first.
assert_eq "ahead,busy" "$(codes "$c2")" "the children's root is first in line"

low=$(jobctl submit noop --low-priority)
out=$(why "$low")
assert_contains "$out" "it is low priority: it waits while normal jobs are ready (3 roots with ready normal jobs)" "low priority"
has_code "$low" busy || fail "low-priority job: no busy reason: $(codes "$low")"

# --- the same through the HTTP API ---------------------------------------------
url=$(monitor_url "$work/jobd.log")
json=$(curl -fsS "${url}api/jobs/$r2/why")
assert_eq pending "$(jq -r .status <<<"$json")" "API status"
assert_eq "turn,busy" "$(jq -r '[.reasons[].code] | join(",")' <<<"$json")" "API reasons"
assert_eq 1 "$(jq -r .instances <<<"$json")" "API instances"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url}api/jobs/999999/why")
assert_eq 404 "$code" "unknown job over HTTP"

# --- a job on no queue: the store is inconsistent ------------------------------
rcli lrem jobd:alone 0 "$r1" >/dev/null
assert_contains "$(why "$r1")" "it is on no ready queue, so no worker can take it: run jobctl fsck" "lost from its queue"
jobctl fsck --repair >/dev/null || true
has_code "$r1" busy && ! has_code "$r1" no_queue ||
	fail "fsck --repair did not put it back: $(codes "$r1")"

# --- the only instance dies ------------------------------------------------------
kill9_jobd jobd
wait_for 10 "the dead instance's view expires" has_code "$r2" no_workers

# --- bad input ---------------------------------------------------------------------
rc=0
jobctl why 999999 2>"$work/err" || rc=$?
assert_eq 1 "$rc" "unknown job exits 1"
assert_eq "jobctl: job 999999 not found" "$(cat "$work/err")" "unknown job message"
rc=0
jobctl why abc 2>"$work/err" || rc=$?
assert_eq 2 "$rc" "bad id exits 2"
echo "PASS: why"
