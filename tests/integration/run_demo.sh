#!/usr/bin/env bash
# tests/integration/run_demo.sh: scripts/run's demo traffic keeps a
# realistic mix flowing.
#
# scripts/run --speed 3 for about two minutes (six minutes of the demo:
# rounds, job steps and pacing three times as fast). Every 20 s jobs must
# have been created and finished since the last look, and at the end the
# root jobs of users must be mostly finished, with Stopped and Canceled a
# few and those finished with errors a minority, no backlog growing, and
# the jobs fed through Kafka (import, export, action, event) there and
# finishing. Numbers are printed for a look at what the demo does.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need python3 redis-server redis-cli
need_jobd
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-demo.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"

start_run "$work" --speed 3
eval "$run_export"

counts() { # "created finished stopped canceled pending"
	local c
	c=$(redis-cli -s "$JOBD_REDIS" hmget jobd:count finished stopped canceled pending |
		sed 's/^$/0/' | tr '\n' ' ')
	echo "$(redis-cli -s "$JOBD_REDIS" get jobd:seq) $c"
}

read -r created0 finished0 _ <<<"$(counts)"
for round in 1 2 3 4 5 6; do
	sleep 20
	running "$run_pid" || fail "scripts/run exited: $(tail -n 20 "$run_out")"
	read -r created finished stopped canceled pending <<<"$(counts)"
	echo "after $((round * 20)) s: created $created, finished $finished, stopped $stopped, canceled $canceled, pending $pending"
	[ "$created" -gt "$created0" ] || fail "no job created in the last 20 s ($created)"
	[ "$finished" -gt "$finished0" ] ||
		fail "no job finished in the last 20 s ($finished): $(jobctl list --all --limit 20)"
	created0=$created
	finished0=$finished
done

jobctl list --limit 1000 --json >"$work/roots.json"
jobctl list --all --limit 1000 --json >"$work/all.json"
python3 - "$work/roots.json" "$work/all.json" "$pending" <<'PY' || fail "the demo's mix is off"
import json, sys
roots = json.load(open(sys.argv[1]))["jobs"]
alljobs = json.load(open(sys.argv[2]))["jobs"]
pending = int(sys.argv[3])
n = len(roots)
by = {}
for j in roots:
    by[j["status"]] = by.get(j["status"], 0) + 1
failed = sum(1 for j in roots if j["finished_with_errors"])
print(f"{n} root jobs of users: {by}, {failed} finished with errors")
assert n >= 100, f"only {n} root jobs in six minutes of demo"
held = by.get("stopped", 0) + by.get("canceled", 0) + by.get("stopping", 0)
assert held <= 0.15 * n, f"{held} of {n} stopped or canceled"
assert failed <= 0.25 * n, f"{failed} of {n} finished with errors"
assert by.get("finished", 0) >= 0.6 * n, f"only {by.get('finished', 0)} of {n} finished"
# No backlog: what waits is about one round's worth, not piling up.
assert pending <= 60, f"{pending} jobs pending: the workers do not keep up"
types = {}
for j in alljobs:
    t = types.setdefault(j["type"], [0, 0])
    t[0] += 1
    t[1] += j["status"] == "finished"
print("by type (jobs, finished):", types)
for t in ("report", "noop", "import", "export", "action", "event"):
    assert types.get(t, [0, 0])[1] > 0, f"no {t} job finished: {types}"
PY
stop_run TERM
assert_eq 143 "$run_rc" "scripts/run's exit status"
echo "run_demo.sh: ok"
