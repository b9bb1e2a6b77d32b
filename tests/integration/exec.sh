#!/usr/bin/env bash
# exec.sh: the exec handler contract (docs/exec-protocol.md) through a real jobd
# and jobctl: progress, log and error lines, stderr, checkpoint + stop/resume
# continuing from it, exit 75 on stop, SIGKILL on force stop (the process is
# gone), timeouts kill, other exit statuses fail; child lines read together
# are created in one Redis call, with the run times they name.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-exec.XXXXXX")
on_exit "rm -rf '$dir'"
handlers=$top_srcdir/tests/fixtures/handlers
cat > "$dir/jobd.conf" <<CONF
[engine]
roles = work
workers = 4
lease = 2s
heartbeat = 200ms
[type.count]
handler = exec
command = $handlers/example.sh
[type.stubborn]
handler = exec
command = $handlers/stubborn.sh '$dir'
[type.slow]
handler = exec
command = $handlers/stubborn.sh '$dir'
timeout = 1s
[type.brood]
handler = exec
command = $handlers/kids.sh
[type.kid]
handler = noop
CONF
export JOBD_CONFIG=$dir/jobd.conf

"$top_builddir/src/jobd" 2> "$dir/jobd.log" &
jobd_pid=$!
on_exit "kill -9 $jobd_pid 2>/dev/null || true"

field() { jobctl show "$1" --json | jq -r ".$2"; }
logs() { rcli xrange "jobd:log:$1" - + | tr -d '\r'; }

# 1. Runs to the end: progress lines, log lines.
id=$(jobctl submit count --payload '{"steps": 5, "sleep_ms": 50}')
wait_job 20 "$id" '.status == "finished"'
assert_eq 100 "$(field "$id" progress)" "progress after the last step"
assert_eq 0 "$(field "$id" errors)" "errors of a clean run"
assert_eq '{"next":5}' "$(rcli hget "jobd:job:$id" checkpoint | jq -c .)" "last checkpoint"
assert_contains "$(logs "$id")" "starts at step 0 of 5" "log line"

# 2. Stop at a checkpoint (exit 75), resume continues from it.
id=$(jobctl submit count --payload '{"steps": 20, "sleep_ms": 100}')
wait_job 20 "$id" '.progress >= 30'
jobctl stop "$id" >/dev/null
wait_job 10 "$id" '.status == "stopped"'
at=$(rcli hget "jobd:job:$id" checkpoint | sed 's/[^0-9]//g')
[ "$at" -ge 6 ] && [ "$at" -lt 20 ] || fail "stopped at checkpoint $at"
assert_contains "$(logs "$id")" "stopping at step $at" "handler saw SIGTERM"
assert_contains "$(logs "$id")" "stopped at checkpoint" "exit 75 is stopped"
jobctl resume "$id" >/dev/null
wait_job 20 "$id" '.status == "finished"'
assert_contains "$(logs "$id")" "attempt 2 starts at step $at of 20" "resumed from the checkpoint"
assert_eq 0 "$(field "$id" errors)" "a stop is not an error"

# 3. Exit 75 without a stop request is a failure.
id=$(jobctl submit stubborn --payload '{"exit": 75}')
wait_job 20 "$id" '.status == "finished"'
assert_eq 2 "$(field "$id" errors)" "error line + failure counted"
assert_contains "$(logs "$id")" "without a stop request" "75 without stop"

# 4. log, error, unknown and stderr lines; another exit status fails.
id=$(jobctl submit stubborn --payload '{"exit": 3}')
wait_job 20 "$id" '.status == "finished"'
l=$(logs "$id")
assert_contains "$l" "stubborn job $id" "log line"
assert_contains "$l" "something went wrong" "error line"
assert_contains "$l" "complaint on stderr" "stderr line"
assert_contains "$l" "exited with status 3" "exit status logged"
assert_contains "$l" "bad line on stdout" "unknown line warned"
assert_eq 2 "$(field "$id" errors)" "one error line + one failure"

# 5. Force stop: SIGKILL to the process group, the process is gone.
id=$(jobctl submit stubborn)
for ((i = 0; i < 100; i++)); do [ -s "$dir/$id.pid" ] && break; sleep 0.05; done
pid=$(cat "$dir/$id.pid") || fail "stubborn handler did not start"
jobctl stop "$id" >/dev/null
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "SIGTERM killed a handler that ignores it"
assert_eq stopping "$(field "$id" status)" "ignores SIGTERM: still stopping"
jobctl force-stop "$id" >/dev/null
assert_eq stopped "$(field "$id" status)" "force-stopped"
assert_eq true "$(field "$id" inconsistent)" "force stop marks inconsistent"
for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "process $pid still runs after force stop"

# 6. Timeout: SIGTERM (ignored), SIGKILL after the grace period: failed.
id=$(jobctl submit slow)
for ((i = 0; i < 100; i++)); do [ -s "$dir/$id.pid" ] && break; sleep 0.05; done
pid=$(cat "$dir/$id.pid") || fail "slow handler did not start"
wait_job 15 "$id" '.status == "finished"'
kill -0 "$pid" 2>/dev/null && fail "process $pid survived its timeout"
assert_contains "$(logs "$id")" "timed out after 1000 ms: killed by signal 9" "timeout"

# 7. Child lines written at once: one create call for the 52 good ones
# (MONITOR sees every call; a line per child made 52), delay= and at= as
# run times, the child of an unknown type refused alone, and the
# checkpoint after them.
at=$(($(date +%s%3N) + 7200000))
rcli monitor > "$dir/monitor" &
mon=$!
on_exit "kill $mon 2>/dev/null || true"
sleep 0.2
id=$(jobctl submit brood --payload "{\"n\": 50, \"at\": $at}")
wait_job 20 "$id" '.children.total == 52 and .children.finished == 50'
sleep 0.2
kill "$mon"
wait "$mon" 2>/dev/null || true
calls=$(grep -c '_create" .*"kid"' "$dir/monitor" || true)
echo "# create calls for 52 children: $calls"
assert_eq 1 "$calls" "create calls for children written at once"
assert_eq '{"sent":50}' "$(rcli hget "jobd:job:$id" checkpoint | jq -c .)" "checkpoint after the children"
assert_contains "$(logs "$id")" 'cannot create child "kx" of type "nosuch": unknown type "nosuch"' "unknown child type refused"
declare -A kid
for c in $(rcli zrange "jobd:children:$id" 0 -1); do
	kid[$(rcli hget "jobd:job:$c" key)]=$c
done
assert_eq 52 "${#kid[@]}" "children by key"
assert_eq '{"i":7}' "$(rcli hget "jobd:job:${kid[k7]}" payload)" "payload of k7"
assert_eq "$at" "$(rcli hget "jobd:job:${kid[ka]}" run_at)" "run time of at="
kd_at=$(rcli hget "jobd:job:${kid[kd]}" run_at)
now=$(date +%s%3N)
[ "$kd_at" -gt $((now + 3500000)) ] && [ "$kd_at" -le $((now + 3600000)) ] ||
	fail "run time of delay=3600000 is $kd_at at $now"
for k in ka kd; do
	assert_eq true "$(field "${kid[$k]}" scheduled)" "$k scheduled"
	assert_eq pending "$(field "${kid[$k]}" status)" "$k waits for its time"
done
assert_eq in_progress "$(field "$id" status)" "parent waits for its scheduled children"

# 8. SIGTERM to jobd: exits 0.
kill -TERM "$jobd_pid"
rc=0; wait "$jobd_pid" || rc=$?
assert_eq 0 "$rc" "jobd exit status after SIGTERM"
echo "PASS: exec"
