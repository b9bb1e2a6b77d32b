#!/usr/bin/env bash
# tests/integration/stats.sh: the stats role end to end (docs/statistics.md): each closed
# minute is published exactly once on the stats topic, in order, while
# three jobd instances (roles stats + work) share the work, the leader is
# killed with kill -9, and the broker stops answering for a while.
#
# Two scenarios run side by side on one Redis, each under its own key
# prefix, so the real minutes they need (about three) are spent once:
#   e: the embedded broker (held by a fourth jobd with only the consume
#      role, so killing the stats leader does not take the broker's
#      in-memory topic with it), values in msgpack; outage = that jobd
#      frozen with SIGSTOP for 6 s (its broker key lives 10 s);
#   r: a real Apache Kafka broker, values in JSON; outage = the broker
#      frozen with SIGSTOP for 10 s. The broker is our own (scripts/kafka),
#      because freezing the one scripts/test shares ($JOBD_TEST_KAFKA)
#      would disturb the suites running beside us; when ours cannot start,
#      the shared one is used without the outage.
# Both outages straddle a minute's end, so a closed minute waits for the
# broker. Then the marker is set back two minutes and the leader killed,
# as if it had crashed between the broker's ack and the marker's update.
# Last the topic is read with kcat and checked: the keys are every
# minute from the first with statistics to the marker, each once, in
# order; each value is the contract's minute object, equal to that minute
# in `jobctl stats --json`, with `created` equal to the jobs whose
# created_at falls in the minute (`jobctl list --all --system --json`),
# with exactly the fields and types that docs/statistics.md documents
# ("The message's fields"), per type too; and the Redis hash fields
# behind them are named as docs/redis-keys.md says.
# Takes about three to four minutes.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_jobd
need kcat python3

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-stats.XXXXXX")
# JOBD_TEST_KEEP=1 keeps the logs and messages for a post-mortem.
[ -n "${JOBD_TEST_KEEP:-}" ] || on_exit "rm -rf '$work'"
run_id=$$.$RANDOM
t_start=$SECONDS

# --- a real broker ---------------------------------------------------------------

real= real_pid=
if real=$("$top_srcdir/scripts/kafka" start "$work/kafka" 2>"$work/kafka.log"); then
	on_exit "'$top_srcdir/scripts/kafka' stop '$work/kafka'"
	real_pid=$(cat "$work/kafka/pid")
	echo "# real broker at $real (ours: the outage freezes it)"
elif [ "${CI:-}" = true ]; then
	# The outage needs a broker of our own to freeze.
	fail "scripts/kafka cannot start a broker of this test's own (log $work/kafka.log): $(tail -n 2 "$work/kafka.log")"
elif [ -n "${JOBD_TEST_KAFKA:-}" ]; then
	real=$JOBD_TEST_KAFKA
	echo "# real broker at $real (shared: no outage); scripts/kafka: $(tail -n 2 "$work/kafka.log")"
else
	echo "# real broker: none (scripts/kafka failed, JOBD_TEST_KAFKA unset): embedded only"
	real=
fi

# --- jobd instances ----------------------------------------------------------------

# write_conf NAME PREFIX BROKERS TOPIC FORMAT ROLES
write_conf() {
	cat >"$work/$1.conf" <<EOF
[redis]
prefix = $2
[kafka]
brokers = $3
[topics]
stats = $4
[engine]
roles = $6
instance = $1
workers = 2
[stats]
format = $5
EOF
}

leader() {
	rcli get "$1:lease:stats"
}

has_leader() {
	[ -n "$(leader "$1")" ]
}

redis_ms() {
	rcli time | { read -r s; read -r us; echo $((s * 1000 + us / 1000)); }
}

scenarios=(e)
write_conf eb jobd_e embedded jobs.stats msgpack consume
start_jobd eb
broker_key_set() {
	[ -n "$(rcli get jobd_e:broker)" ]
}
wait_for 30 "the embedded broker's key" broker_key_set
for i in 1 2 3; do
	write_conf "e$i" jobd_e embedded jobs.stats msgpack stats,work
	start_jobd "e$i"
done
if [ -n "$real" ]; then
	scenarios+=(r)
	topic_r=jobs.stats.$run_id
	for i in 1 2 3; do
		write_conf "r$i" jobd_r "$real" "$topic_r" json stats,work
		start_jobd "r$i"
	done
fi
for s in "${scenarios[@]}"; do
	wait_for 30 "a stats leader in scenario $s" has_leader "jobd_$s"
done

# --- load, kill -9, outage ------------------------------------------------------

submit_some() {
	local s
	for s in "${scenarios[@]}"; do
		jobctl -c "$work/${s}1.conf" submit noop --count $((1 + RANDOM % 3)) \
			>/dev/null || fail "submit failed in scenario $s"
	done
}

# run_for SECONDS: submits about once a second.
run_for() {
	local until=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$until" ]; do
		submit_some
		sleep 0.7
	done
}

echo "# load starts"
first_load=$(($(redis_ms) / 60000 * 60000))
run_for 20

for s in "${scenarios[@]}"; do
	name=$(leader "jobd_$s")
	[ -n "${jobd_pids[$name]:-}" ] || fail "unknown stats leader '$name' in scenario $s"
	echo "# kill -9 the stats leader $name"
	kill -KILL "${jobd_pids[$name]}"
	wait "${jobd_pids[$name]}" 2>/dev/null || true
	unset "jobd_pids[$name]"
done
run_for 3

# Freeze the brokers from second 58 of a minute: that minute closes
# (at :02 of the next) while they cannot answer.
while [ $(($(redis_ms) / 1000 % 60)) -ne 58 ]; do
	submit_some
	sleep 0.5
done
# Every instance left is alive (a make check failed here with "kill: No
# such process" for eb, its log removed): say which died, and how.
for name in "${!jobd_pids[@]}"; do
	running "${jobd_pids[$name]}" && continue
	rc=0
	wait "${jobd_pids[$name]}" || rc=$?
	fail "jobd $name died before the outage (exit status $rc): $(tail -n 20 "$work/$name.log")"
done
echo "# outage: brokers frozen"
kill -STOP "${jobd_pids[eb]}"
[ -z "$real_pid" ] || kill -STOP "$real_pid"
on_exit "kill -CONT ${jobd_pids[eb]} ${real_pid} 2>/dev/null"
run_for 6
kill -CONT "${jobd_pids[eb]}"
run_for 4
[ -z "$real_pid" ] || kill -CONT "$real_pid"
echo "# outage over"
# Jobs in at least three minutes.
run_for 10
while [ "$(redis_ms)" -lt $((first_load + 120000)) ]; do
	submit_some
	sleep 0.7
done
last_minute=$(($(redis_ms) / 60000 * 60000))
echo "# load ends in minute $last_minute"

# --- every minute published ----------------------------------------------------------

marker_at_least() {
	local m
	m=$(rcli get "$1:stats:published")
	[ -n "$m" ] && [ "$m" -ge "$2" ]
}
for s in "${scenarios[@]}"; do
	wait_for 120 "scenario $s: minute $last_minute published" \
		marker_at_least "jobd_$s" "$last_minute"
done

# A crash between the broker's ack and the marker's update, simulated:
# the leader is frozen (so it cannot publish again meanwhile), the marker
# goes two minutes back, the leader is killed. The next leader must take
# the minutes from the topic's end, not publish them again.
for s in "${scenarios[@]}"; do
	name=$(leader "jobd_$s")
	[ -n "${jobd_pids[$name]:-}" ] || fail "unknown stats leader '$name' in scenario $s"
	kill -STOP "${jobd_pids[$name]}"
	rcli set "jobd_$s:stats:published" $((last_minute - 120000)) >/dev/null
	echo "# marker of scenario $s set back two minutes; kill -9 its leader $name"
	kill -KILL "${jobd_pids[$name]}"
	wait "${jobd_pids[$name]}" 2>/dev/null || true
	unset "jobd_pids[$name]"
done
for s in "${scenarios[@]}"; do
	wait_for 30 "a new stats leader in scenario $s" has_leader "jobd_$s"
	wait_for 30 "scenario $s: the marker back at minute $last_minute" \
		marker_at_least "jobd_$s" "$last_minute"
done

check_scenario() {
	local s=$1 broker=$2 topic=$3 format=$4 p=jobd_$1

	# %K %S: key and value lengths, so msgpack bytes survive intact.
	timeout 60 kcat -b "$broker" -t "$topic" -C -e -q -f '%K %S\n%k%s' \
		>"$work/$s.msgs" 2>"$work/$s.kcat.err" ||
		fail "scenario $s: kcat cannot read $topic (see $work/$s.kcat.err)"
	jobctl -c "$work/${s}2.conf" list --all --system --json --limit 1000 \
		>"$work/$s.jobs.json" || fail "scenario $s: jobctl list failed"
	jobctl -c "$work/${s}2.conf" stats --since 30m --json \
		>"$work/$s.stats.json" || fail "scenario $s: jobctl stats failed"
	python3 - "$work/$s.msgs" "$work/$s.jobs.json" "$work/$s.stats.json" \
		"$format" "$(rcli get "$p:stats:published")" \
		"$(rcli zrange "$p:stats:minutes" 0 0)" "$s" \
		"$top_srcdir/docs/statistics.md" <<'EOF' ||
import json, re, struct, sys
from datetime import datetime, timezone

msgs_path, jobs_path, stats_path, fmt, marker, first, name, doc = sys.argv[1:]
marker, first = int(marker), int(first)

def bad(why):
    print("FAIL: scenario %s: %s" % (name, why), file=sys.stderr)
    sys.exit(1)

# The documented schema: the rows of the tables under "The message's
# fields" in docs/statistics.md: (field, type, example).
def documented():
    text = open(doc).read()
    part = text.split("### The message's fields", 1)
    if len(part) != 2:
        bad("%s has no section \"The message's fields\"" % doc)
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|[^\n]*\| `([^`]*)` \|$",
                      part[1].split("\n## ", 1)[0], re.M)
    return [(f, t.strip(), json.loads(e)) for f, t, e in rows]

TYPES = {"string": (str,), "boolean": (bool,), "object": (dict,),
         "integer": (int,), "integer or null": (int, type(None))}

def of_type(v, t):
    if t not in TYPES: bad("%s: unknown documented type %r" % (doc, t))
    if isinstance(v, bool) and bool not in TYPES[t]: return False
    return isinstance(v, TYPES[t])

schema = documented()
fields = [f for f, _, _ in schema if "." not in f]
per_type = [f.split(".")[-1] for f, _, _ in schema if f.startswith("by_type.TYPE.")]
types = {f: t for f, t, _ in schema}
if not fields or not per_type:
    bad("%s documents no message fields (%s) or no per-type fields (%s)"
        % (doc, fields, per_type))
for f, t, e in schema:
    if not of_type(e, t): bad("%s: the example of %s is not %s: %r" % (doc, f, t, e))

def unpack(b, i=0):
    """A msgpack decoder for what jobd writes: maps, arrays, str, ints,
    floats, nil and booleans. Returns (value, next index)."""
    t = b[i]
    if t <= 0x7f: return t, i + 1
    if t >= 0xe0: return t - 0x100, i + 1
    if 0x80 <= t <= 0x8f: return unpack_map(b, i + 1, t & 0x0f)
    if 0x90 <= t <= 0x9f: return unpack_arr(b, i + 1, t & 0x0f)
    if 0xa0 <= t <= 0xbf: n = t & 0x1f; return b[i+1:i+1+n].decode(), i + 1 + n
    if t == 0xc0: return None, i + 1
    if t == 0xc2: return False, i + 1
    if t == 0xc3: return True, i + 1
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b",
             0xd1: ">h", 0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in fixed:
        n = struct.calcsize(fixed[t])
        return struct.unpack(fixed[t], b[i+1:i+1+n])[0], i + 1 + n
    lens = {0xd9: ">B", 0xda: ">H", 0xdb: ">I"}
    if t in lens:
        h = struct.calcsize(lens[t]); n = struct.unpack(lens[t], b[i+1:i+1+h])[0]
        return b[i+1+h:i+1+h+n].decode(), i + 1 + h + n
    if t in (0xdc, 0xdd, 0xde, 0xdf):
        f = ">H" if t in (0xdc, 0xde) else ">I"; h = struct.calcsize(f)
        n = struct.unpack(f, b[i+1:i+1+h])[0]
        return (unpack_arr if t < 0xde else unpack_map)(b, i + 1 + h, n)
    bad("unexpected msgpack byte 0x%02x at %d" % (t, i))

def unpack_map(b, i, n):
    o = {}
    for _ in range(n):
        k, i = unpack(b, i); v, i = unpack(b, i); o[k] = v
    return o, i

def unpack_arr(b, i, n):
    a = []
    for _ in range(n):
        v, i = unpack(b, i); a.append(v)
    return a, i

def ms(iso):
    return int(datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")
               .replace(tzinfo=timezone.utc).timestamp() * 1000)

data = open(msgs_path, "rb").read()
msgs, i = [], 0
while i < len(data):
    nl = data.index(b"\n", i)
    klen, vlen = map(int, data[i:nl].split())
    i = nl + 1
    key = data[i:i+klen].decode(); i += klen
    val = data[i:i+vlen]; i += vlen
    if fmt == "msgpack":
        if val[:1] == b"{": bad("a JSON value in msgpack mode: %r" % val[:40])
        obj, end = unpack(val)
        if end != len(val): bad("trailing bytes after the msgpack map of %s" % key)
    else:
        obj = json.loads(val)
    msgs.append((key, obj))

keys = [ms(k) for k, _ in msgs]
want = list(range(first, marker + 60000, 60000))
if keys != want:
    dup = sorted({k for k in keys if keys.count(k) > 1})
    bad("published minutes %s, want every minute %s..%s once in order "
        "(duplicates %s)" % ([k for k, _ in msgs], first, marker, dup))

created = {}
for job in json.load(open(jobs_path))["jobs"]:
    m = ms(job["created_at"]) // 60000 * 60000
    created[m] = created.get(m, 0) + 1
if json.load(open(jobs_path))["next"] is not None:
    bad("more than one page of jobs")
minutes = {ms(m["minute"]): m for m in json.load(open(stats_path))["minutes"]}

total = 0
seen_type = False
for (key, obj), m in zip(msgs, keys):
    if list(obj) != fields:
        bad("minute %s has fields %s, %s documents %s" % (key, list(obj), doc, fields))
    for f in fields:
        if not of_type(obj[f], types[f]):
            bad("minute %s: %s is %r, documented as %s" % (key, f, obj[f], types[f]))
    for ty, c in obj["by_type"].items():
        seen_type = True
        if list(c) != per_type:
            bad("minute %s: by_type.%s has fields %s, %s documents %s"
                % (key, ty, list(c), doc, per_type))
        for f in per_type:
            t = types["by_type.TYPE." + f]
            if not of_type(c[f], t):
                bad("minute %s: by_type.%s.%s is %r, documented as %s"
                    % (key, ty, f, c[f], t))
    if obj["minute"] != key: bad("key %s holds minute %s" % (key, obj["minute"]))
    if obj["closed"] is not True: bad("minute %s is not closed" % key)
    if obj["created"] != created.get(m, 0):
        bad("minute %s: created %s, but %s jobs were created in it"
            % (key, obj["created"], created.get(m, 0)))
    if m in minutes and minutes[m] != obj:
        bad("minute %s differs from jobctl stats: %s vs %s" % (key, obj, minutes[m]))
    total += obj["created"]
if not seen_type:
    bad("no minute has a by_type entry: the per-type fields went unchecked")
if total != sum(created.values()):
    bad("%d jobs created, %d counted in the messages" % (sum(created.values()), total))
print("# scenario %s: %d minutes published once each, in order, %d jobs (%s)"
      % (name, len(msgs), total, fmt))
EOF
		exit 1
}

check_scenario e "$(rcli get jobd_e:broker)" jobs.stats msgpack
[ -z "$real" ] || check_scenario r "$real" "$topic_r" json

# The Redis fields behind the messages are named as docs/redis-keys.md
# says (P:stats:m:MINUTE): FIELD and FIELD|TYPE, but the waits' extremes
# per type are wait|TYPE_min and wait|TYPE_max.
for k in $(rcli --scan --pattern 'jobd_e:stats:m:*'); do
	rcli hkeys "$k"
done | sort -u >"$work/stats.fields"
grep -q '^wait|noop_min$' "$work/stats.fields" ||
	fail "no wait|noop_min field among the statistics of the noop jobs: $(tr '\n' ' ' <"$work/stats.fields")"
if grep -v -E '^((created|started|finished|errors|wait_sum|h[0-9]+)(\|.+)?|wait_(min|max)|wait\|.+_(min|max))$' \
	"$work/stats.fields" >"$work/stats.odd"; then
	fail "statistics fields not in docs/redis-keys.md: $(tr '\n' ' ' <"$work/stats.odd")"
fi

# The kills were survived, not avoided: three leaders in turn.
for s in "${scenarios[@]}"; do
	n=$(cat "$work/${s}"[123].log | grep -c "stats: leading the stats producers" || true)
	[ "$n" -ge 3 ] || fail "scenario $s: expected three leaders in turn, saw $n"
done

# The broker's owner last, so the others need not wait for it.
for name in "${!jobd_pids[@]}"; do
	[ "$name" = eb ] || stop_jobd "$name"
done
stop_jobd eb
if grep -l -E 'ERROR: AddressSanitizer|runtime error:' "$work"/*.log; then
	fail "sanitizer reports in the logs above"
fi
if [ -z "$real" ] || [ -z "$real_pid" ]; then
	# A pass must mean every part ran: the real broker's outage too.
	why="no broker"
	[ -z "$real" ] || why="a shared broker, which is not frozen"
	echo "SKIP: stats.sh: the real-broker outage was not run ($why); the rest passed in $((SECONDS - t_start)) s" >&2
	exit 77
fi
echo "# stats.sh: passed in $((SECONDS - t_start)) s"
