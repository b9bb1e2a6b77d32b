#!/usr/bin/env bash
# tests/integration/jobctl.sh: jobctl end to end against a private redis-server.
#
# submit, list, show, children and the operations through the CLI; the --json
# shapes (docs/design.md, "The job": integer ids, JSON booleans, ISO times with
# ms and Z); exit codes 1 (refused / not found / unknown type), 2 (usage,
# nothing written), 3 (Redis unreachable), one line on stderr each; the actor in
# the audit log; readable hashes; and two operators racing stop/resume/cancel
# over the same jobs, after which every job has a valid status and every
# parent's counters match its children.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need python3 redis-cli
[ -x "$top_builddir/src/jobctl" ] || fail "no $top_builddir/src/jobctl: build first"

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-ctl.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"
cat >"$work/jobd.conf" <<'EOF'
[type.nostop]
handler = noop
stoppable = no
[type.again]
handler = noop
restartable = yes
EOF
export JOBD_CONFIG=$work/jobd.conf
unset JOBD_USER

# Runs jobctl; $out, $err and $rc hold what it did.
run() {
	rc=0
	jobctl "$@" >"$work/out" 2>"$work/err" || rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

# expect_rc CODE ARGS...: jobctl must exit with CODE and, when CODE is not
# 0, print exactly one line on stderr.
expect_rc() {
	local want=$1
	shift
	run "$@"
	[ "$rc" = "$want" ] ||
		fail "jobctl $*: exit $rc, want $want (stderr: $err)"
	if [ "$want" != 0 ]; then
		[ -n "$err" ] || fail "jobctl $*: exit $rc without a message"
		[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] ||
			fail "jobctl $*: more than one line on stderr: $err"
	fi
}

# py CODE: runs python3 with the JSON of $out on stdin.
py() {
	printf '%s' "$out" | python3 -c "import json, re, sys
d = json.load(sys.stdin)
$1" || fail "json check failed: $1 on: $out"
}

jobs_total() {
	rcli hgetall jobd:count | awk 'NR % 2 == 0 { s += $1 } END { print s + 0 }'
}

# --- submit, show, the JSON shape -----------------------------------------
expect_rc 0 --as alice submit noop --payload '{"rows": 3}' --key order-1
root=$out
[[ $root =~ ^[0-9]+$ ]] || fail "submit printed '$root', want an id"
expect_rc 0 submit noop --key order-1
assert_eq "$root" "$out" "same --key, same job"
expect_rc 0 submit noop --parent "$root" --key c1
child1=$out
expect_rc 0 submit noop --parent "$root" --key c2
child2=$out
expect_rc 0 submit noop --count 3
assert_eq 3 "$(printf '%s\n' "$out" | wc -l)" "--count 3 prints 3 ids"

expect_rc 0 show "$root" --json
py '
iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
assert type(d["id"]) is int and d["id"] == '"$root"'
assert d["key"] == "order-1" and d["source"] is None
assert d["type"] == "noop" and d["status"] == "pending"
for b in ("system", "low_priority", "inconsistent"):
    assert type(d[b]) is bool, b
assert d["run_by"] == "alice", d["run_by"]
assert d["parent"] is None and d["root"] == d["id"]
assert iso.match(d["created_at"]), d["created_at"]
assert d["started_at"] is None and d["finished_at"] is None
for i in ("waiting_ms", "duration_ms", "errors", "attempt", "restarts"):
    assert type(d[i]) is int, i
assert d["waiting_ms"] >= 0 and d["attempt"] == 0
assert type(d["progress"]) in (int, float) and d["progress"] == 0
assert type(d["overall_progress"]) in (int, float)
c = d["children"]
for k in ("total", "pending", "in_progress", "stopping", "stopped",
          "finished", "canceled", "errors"):
    assert type(c[k]) is int, k
assert c["total"] == 2 and c["pending"] == 2
assert d["payload"] == {"rows": 3}
'
expect_rc 0 show "$child1" --json
py "assert d['parent'] == $root and d['root'] == $root and type(d['parent']) is int"
py "assert d['status'] == 'pending' and d['payload'] == {}"
# A pending job's hash holds no status, nor a payload of {}: their
# defaults (docs/redis-keys.md); a payload of its own is kept.
assert_eq 0:0 "$(rcli hexists "jobd:job:$child1" status):$(rcli hexists "jobd:job:$child1" payload)" \
	"status and payload of pending child $child1"
assert_eq 0:1 "$(rcli hexists "jobd:job:$root" status):$(rcli hexists "jobd:job:$root" payload)" \
	"status and payload of pending root $root"
expect_rc 0 show "$root"
assert_contains "$out" "pending" "show without --json"

# --- list, children ----------------------------------------------------------
expect_rc 0 list --json
py "
assert set(d) == {'jobs', 'next'} and d['next'] is None
ids = [j['id'] for j in d['jobs']]
assert ids == sorted(ids, reverse=True), ids
assert $root in ids and $child1 not in ids
assert all(j['parent'] is None for j in d['jobs'])
"
expect_rc 0 list --all --json
py "ids = [j['id'] for j in d['jobs']]; assert $child1 in ids and $child2 in ids"
expect_rc 0 list --limit 2 --json
py "assert len(d['jobs']) == 2 and type(d['next']) is int"
next=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["next"])')
expect_rc 0 list --limit 2 --cursor "$next" --json
py "assert all(j['id'] < $next for j in d['jobs'])"
expect_rc 0 list --run-by alice --json
py "assert [j['id'] for j in d['jobs']] == [$root]"
expect_rc 0 list --type nostop --json
py "assert d['jobs'] == []"
expect_rc 0 children "$root" --json
py "
assert [j['id'] for j in d['jobs']] == [$child1, $child2]
assert d['next'] is None
"
expect_rc 0 list
assert_contains "$out" "STATUS" "table header"

# --- operations, audit log --------------------------------------------------
expect_rc 0 --as alice stop "$root"
assert_eq "job $root stopped" "$out" "a stop of a pending job: it is stopped"
expect_rc 0 show "$child2" --json
py "assert d['status'] == 'stopped'"
assert_contains "$(rcli xrange "jobd:log:$root" - +)" "stopped by alice" "audit log"
expect_rc 1 stop "$root"
assert_eq "jobctl: job $root is stopped: stop needs pending or in_progress" "$err" "refusal"
expect_rc 1 resume "$child1"
assert_contains "$err" "under stopped job $root" "resume under a stopped parent"
JOBD_USER=bob expect_rc 0 resume "$root"
assert_contains "$(rcli xrange "jobd:log:$root" - +)" "resumed by bob" "JOBD_USER is the actor"
# The option typed on the command line wins over the environment.
JOBD_USER=bob expect_rc 0 --as dave low-priority "$root" --off
assert_contains "$(rcli xrange "jobd:log:$root" - +)" "by dave" "--as wins over JOBD_USER"
expect_rc 0 show "$child1" --json
py "assert d['status'] == 'pending'"
expect_rc 0 low-priority "$root"
expect_rc 0 show "$child1" --json
py "assert d['low_priority'] is True"
expect_rc 0 low-priority "$root" --off
expect_rc 0 show "$child1" --json
py "assert d['low_priority'] is False"
expect_rc 1 cancel "$root"
assert_eq "jobctl: job $root is pending: cancel needs stopped" "$err" "cancel refusal"
expect_rc 1 force-stop "$root"
assert_eq "jobctl: job $root is pending: force-stop needs stopping" "$err" "force-stop refusal"
expect_rc 0 stop "$root"
expect_rc 0 --as carol cancel "$root"
expect_rc 0 show "$child1" --json
py "assert d['status'] == 'canceled' and type(d['finished_at']) is str"
assert_contains "$(rcli xrange "jobd:log:$child1" - +)" "canceled by carol" "cascade audit"
expect_rc 1 submit noop --parent "$root"
assert_contains "$err" "parent $root is canceled: no new children" "child of a canceled job"

expect_rc 0 submit again
again=$out
expect_rc 1 restart "$again"
assert_eq "jobctl: job $again is pending: restart needs finished" "$err" "restart refusal"
expect_rc 0 submit nostop
nostop=$out
expect_rc 1 stop "$nostop"
assert_eq "jobctl: job $nostop (nostop) cannot be stopped: its type is not stoppable" "$err" "non-stoppable"

# Several ids: the refused one is reported, the others done, exit 1.
expect_rc 0 submit noop
a=$out
run stop "$a" 999999
assert_eq 1 "$rc" "a batch with an unknown id"
assert_eq "job $a stopped
1 stopped, 1 refused" "$out" "the known id is stopped, then the summary"
assert_eq "jobctl: job 999999 not found" "$err" "unknown id"

# --- exit codes --------------------------------------------------------------
before=$(jobs_total)
expect_rc 1 show 999999
expect_rc 1 children 999999
expect_rc 1 submit nosuchtype
expect_rc 2 submit noop --payload '{"a":'
expect_rc 2 submit noop --payload '[1, 2]'
expect_rc 2 submit noop --bogus
expect_rc 2 list --status nosuch
expect_rc 2 list --limit 0
expect_rc 2 stop
expect_rc 2 stop abc
expect_rc 2 frobnicate
assert_eq "$before" "$(jobs_total)" "refused submits create nothing"
JOBD_REDIS=$work/no-such.sock expect_rc 3 list
JOBD_REDIS=$work/no-such.sock expect_rc 3 submit noop
JOBD_REDIS=$work/no-such.sock expect_rc 3 stop 1
assert_contains "$err" "no-such.sock" "the unreachable address is named"

# --- readable hashes ------------------------------------------------------------
hash=$(rcli hgetall "jobd:job:$a")
py_hash=$(printf '%s\n' "$hash" | python3 -c '
import sys
l = sys.stdin.read().split("\n")
h = dict(zip(l[0::2], l[1::2]))
assert h["status"] == "stopped" and h["type"] == "noop", h
assert h["created_at"].isdigit()
# The key holds the id; a root job is its own root (docs/redis-keys.md).
assert "id" not in h and "root" not in h and "parent" not in h, h
# A payload of {} is its default: not written (nor a pending status).
assert "payload" not in h, h
print("ok")') || fail "hash jobd:job:$a not readable: $hash"
assert_eq ok "$py_hash" "readable hash"

# --- two operators racing --------------------------------------------------------
race=()
for i in $(seq 1 14); do
	run submit noop
	race+=("$out")
done
for p in 0 1 2; do
	for _ in 1 2; do
		run submit noop --parent "${race[$p]}"
		race+=("$out")
	done
done
[ "${#race[@]}" = 20 ] || fail "race setup made ${#race[@]} jobs"

# operator SEED: 1,000 operations in batches of 20 ids.
operator() {
	local seed=$1 i op code ids
	local ops=(stop resume stop resume stop resume stop resume stop cancel)

	for i in $(seq 1 50); do
		op=${ops[$(((i + seed) % 10))]}
		code=0
		mapfile -t ids < <(printf '%s\n' "${race[@]}" |
			shuf --random-source=<(yes "$seed$i"))
		jobctl "$op" "${ids[@]}" >/dev/null 2>>"$work/race-$seed.err" || code=$?
		[ "$code" -le 1 ] || { echo "exit $code" >>"$work/race-$seed.fail"; return 1; }
	done
}
operator 1 &
p1=$!
operator 2 &
p2=$!
wait "$p1" || fail "operator 1: $(cat "$work/race-1.fail" 2>/dev/null)"
wait "$p2" || fail "operator 2: $(cat "$work/race-2.fail" 2>/dev/null)"
grep -v -E 'needs|not found|under stopped job|descendants still stopping' \
	"$work"/race-*.err >"$work/odd" || true
[ ! -s "$work/odd" ] || fail "unexpected refusals: $(head -3 "$work/odd")"

python3 - "$top_builddir/src/jobctl" "${race[@]}" <<'EOF' || fail "race left an inconsistent state"
import json, subprocess, sys
ctl, ids = sys.argv[1], [int(x) for x in sys.argv[2:]]
def call(*a):
    return json.loads(subprocess.run([ctl, *a], check=True, capture_output=True, text=True).stdout)
valid = {"pending", "stopped", "canceled"}
jobs = {i: call("show", str(i), "--json") for i in ids}
for i, j in jobs.items():
    assert j["status"] in valid, (i, j["status"])
for i, j in jobs.items():
    kids = call("children", str(i), "--limit", "1000", "--json")["jobs"]
    if not kids:
        continue
    c = j["children"]
    assert c["total"] == len(kids), (i, c, len(kids))
    for s in ("pending", "in_progress", "stopping", "stopped", "finished", "canceled"):
        n = sum(1 for k in kids if k["status"] == s)
        assert c[s] == n, (i, s, c[s], n)
    # No child runs under a stopped or canceled parent.
    if j["status"] in ("stopped", "canceled"):
        assert all(k["status"] != "pending" for k in kids), (i, j["status"], [k["status"] for k in kids])
print("race ok")
EOF

# Status counters agree with the jobs.
expect_rc 0 list --all --system --limit 1000 --json
counts=$(rcli hgetall jobd:count)
py "
l = '''$counts'''.split()
c = {k: int(v) for k, v in zip(l[0::2], l[1::2])}
for s in ('pending', 'in_progress', 'stopping', 'stopped', 'finished', 'canceled'):
    n = sum(1 for j in d['jobs'] if j['status'] == s)
    assert c.get(s, 0) == n, (s, c.get(s, 0), n)
"
# --- stats: the window's summary first, then only the minutes with jobs ------
# The last job is created in the open minute (a second try when a minute
# began in between), so the open minute is shown, and marked.
agains=1 # the one submitted above
for _ in 1 2; do
	expect_rc 0 submit again
	agains=$((agains + 1))
	expect_rc 0 stats --since 30m
	[ "$(printf '%s\n' "$out" | grep -c '(open)')" = 1 ] && break
done
stats=$out
expect_rc 0 stats --since 30m --json
printf '%s' "$stats" | python3 -c '
import json, re, sys
text, d, total = sys.stdin.read(), json.loads(sys.argv[1]), int(sys.argv[2])
lines = text.split("\n")
first = re.match(r"all types from \S+ \S+ to \S+ \S+ UTC: (\d+) created, \d+ started, \d+ finished, \d+ with errors$", lines[0])
assert first, "no summary first: %r" % lines[0]
assert int(first.group(1)) == total, (first.group(1), total)
rows = [l for l in lines if re.match(r"\d{4}-\d\d-\d\d ", l)]
assert rows, text
created = 0
for r in rows:
    f = r.replace("(open)", "").split()
    counts = [int(x) for x in f[2:6]]
    assert any(counts), "a row of zeros: %r" % r
    created += counts[0]
assert created == total, (created, total)
assert "(open)" in rows[-1] and all("(open)" not in r for r in rows[:-1]), rows
quiet = re.search(r"^\((\d+) minutes without jobs not shown\)$", text, re.M)
assert quiet, "no count of the quiet minutes: %r" % text
# The JSON was read a moment later: a minute may have begun since.
assert len(d["minutes"]) - len(rows) - int(quiet.group(1)) in (0, 1), (len(d["minutes"]), len(rows), quiet.group(1))
' "$out" "$(jobs_total)" || fail "jobctl stats: $stats"
expect_rc 0 stats --since 30m --type again
assert_contains "$(printf '%s\n' "$out" | head -n 1)" "type again from " "stats --type: its summary"
assert_contains "$(printf '%s\n' "$out" | head -n 1)" ": $agains created," "the jobs of that type only"
expect_rc 0 stats --since 30m --type nosuch
assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "stats of a type without jobs: the summary alone"
assert_contains "$out" ": 0 created, 0 started" "stats of a type without jobs"

# --- the actor without $USER (cron, systemd) ---------------------------------
USER= expect_rc 0 submit noop
nouser=$out
expect_rc 0 show "$nouser" --json
py "assert d['run_by'] == '$(id -un)', d['run_by']"
USER= expect_rc 0 stop "$nouser"
assert_contains "$(rcli xrange "jobd:log:$nouser" - +)" "stopped by $(id -un)" \
	"the uid's user name is the actor without \$USER"
# A uid without a user name (a container's): the uid itself. unshare maps
# us to uid 4242 in a user namespace, where no passwd entry names it.
if ! unshare --user --map-user=4242 --map-group=4242 true 2>/dev/null; then
	skip_or_fail "unshare --user is not allowed here: the uid fallback of the actor is untested"
fi
getent passwd 4242 >/dev/null && fail "uid 4242 has a user name here: pick another"
nouid=$(USER= unshare --user --map-user=4242 --map-group=4242 \
	"$top_builddir/src/jobctl" submit noop) || fail "jobctl as uid 4242 failed"
expect_rc 0 show "$nouid" --json
py "assert d['run_by'] == 'uid 4242', d['run_by']"

# --- a stop of a running job is a request -------------------------------------
# The worker stops the job at its next step: until then it is Stopping,
# and jobctl must not say "stopped" (one would cancel it too soon).
printf '[engine]\nroles = work\nworkers = 2\n' >"$work/run.conf"
JOBD_CONFIG=$work/run.conf start_jobd run
expect_rc 0 submit noop --payload '{"steps": 600, "sleep_ms": 100}'
slow=$out
wait_job 30 "$slow" '.status == "in_progress"'
expect_rc 0 submit noop --payload '{"steps": 600, "sleep_ms": 100}'
slow2=$out
wait_job 30 "$slow2" '.status == "in_progress"'
expect_rc 0 --as erin stop "$slow"
assert_eq "stop requested: job $slow is Stopping" "$out" "a stop of a running job"
wait_job 30 "$slow" '.status == "stopped"'
run stop "$slow2" 999999 "$slow"
assert_eq 1 "$rc" "a bulk stop with a refused id"
assert_contains "$out" "stop requested: job $slow2 is Stopping" "bulk: the running one"
assert_eq "1 stop requested, 2 refused" "$(printf '%s\n' "$out" | tail -n 1)" \
	"bulk: a summary of what happened"
wait_job 30 "$slow2" '.status == "stopped"'
stop_jobd run

echo "jobctl.sh: ok"
