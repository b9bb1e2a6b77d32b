#!/usr/bin/env bash
# fault.sh: a mixed load survives faults with nothing lost (issue 8).
#
# Load: event messages through Kafka (embedded broker), exec jobs with a
# counted side effect, parents with children, stops and resumes. Faults,
# one after another while it runs: kill -9 of a worker instance; Redis
# frozen for 10 s (SIGSTOP); Redis restarted from its AOF (appendfsync
# everysec, config/redis.conf). Then: every message became exactly one
# job, every job reached a terminal state, no side effect ran twice except
# for a job whose attempt was cut short, and fsck finds nothing to repair.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

command -v redis-server >/dev/null 2>&1 ||
	skip_or_fail "redis-server not found (run scripts/bootstrap)"
need kcat
dir=$(mktemp -d "/tmp/jobd-fault.XXXXXX")
rdir=$dir/redis
on_exit "'$top_srcdir/scripts/redis' stop '$rdir' >/dev/null 2>&1; rm -rf '$dir'"
mkdir -p "$rdir"
# The production settings, in this directory.
sed "s|^appendfilename.*|appendfilename \"jobd.aof\"|" \
	"$top_srcdir/config/redis.conf" >"$dir/redis.conf"
echo "dir $rdir" >>"$dir/redis.conf"
# shellcheck disable=SC2046
JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$rdir" --conf "$dir/redis.conf" $(module_args)) ||
	fail "cannot start redis-server with AOF"
export JOBD_REDIS
side=$dir/side.log
: >"$side"

conf() {
	cat >"$dir/$1.conf" <<CONF
[engine]
roles = $2
instance = $1
workers = 4
lease = 2s
heartbeat = 200ms
[kafka]
kafka.session.timeout.ms = 6000
kafka.heartbeat.interval.ms = 1000
$(side_type "$side")
CONF
}
conf c consume
conf w1 work
conf w2 work
export JOBD_CONFIG=$dir/c.conf

declare -A pid
start() {
	JOBD_CONFIG=$dir/$1.conf "$top_builddir/src/jobd" 2>>"$dir/$1.log" &
	pid[$1]=$!
	on_exit "kill -9 ${pid[$1]} 2>/dev/null || true"
}
start c
start w1
start w2
for _ in $(seq 1 100); do
	broker=$(rcli get jobd:broker 2>/dev/null || true)
	[ -n "$broker" ] && break
	sleep 0.1
done
[ -n "$broker" ] || fail "no embedded broker address in redis: $(cat "$dir/c.log")"

# Retries a command while Redis is frozen or restarting (exit 3); other
# outcomes (done, refused) are its answer.
again() {
	local i rc
	for i in $(seq 1 200); do
		rc=0
		"$@" || rc=$?
		[ "$rc" -ne 3 ] && return "$rc"
		sleep 0.2
	done
	fail "redis still unreachable after 40 s: $*"
}

messages=0
send_events() {
	local from=$1 to=$2 i
	for i in $(seq "$from" "$to"); do
		echo "{\"id\": \"ev-$i\", \"service\": \"crm\", \"event\": \"order.created\", \"data\": {\"n\": $i}}"
	done >"$dir/batch.ndjson"
	kcat -b "$broker" -t jobs.events -P -l "$dir/batch.ndjson" ||
		fail "kcat could not produce"
	messages=$to
}

# Load, with faults in between.
send_events 1 200
for i in $(seq 1 40); do
	again jobctl submit side --payload '{"sleep_ms": 150}' >/dev/null
done
p=$(again jobctl submit noop --payload '{"steps": 30, "sleep_ms": 200, "children": 6, "child_payload": {"steps": 10, "sleep_ms": 200}}')
sleep 1

echo "# kill -9 worker w1" >&2
kill -9 "${pid[w1]}"
send_events 201 300
again jobctl stop "$p" >/dev/null ||
	fail "the stop of tree $p was refused"

echo "# redis frozen for 10 s" >&2
rpid=$(cat "$rdir/redis.pid")
kill -STOP "$rpid"
sleep 10
kill -CONT "$rpid"
again jobctl resume "$p" >/dev/null 2>&1 || true
send_events 301 400
for i in $(seq 41 60); do
	again jobctl submit side --payload '{"sleep_ms": 100}' >/dev/null
done
start w1
sleep 2

echo "# redis restarted from its AOF" >&2
sleep 1.5 # appendfsync everysec: let the last second reach the disk
"$top_srcdir/scripts/redis" stop "$rdir" >/dev/null
# shellcheck disable=SC2046
JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$rdir" --conf "$dir/redis.conf" $(module_args)) ||
	fail "cannot restart redis-server from its AOF"
send_events 401 500

# Everything settles: no job left pending, running, stopping or stopped
# (the stopped tree is resumed, so none may stay stopped).
open_jobs() {
	rcli hmget jobd:count pending in_progress stopping stopped | tr -d '\r' |
		awk '{ s += $1 } END { print s + 0 }'
}
# The resume above is refused while a descendant is still stopping (its
# handler not yet at a point where it can stop, or its worker just
# killed); the tree then ends Stopped. It is resumed once, when Stopped:
# a tree stuck in Stopping, or stopped again, stays open and fails below.
resumed_late=no
for i in $(seq 1 600); do
	if [ "$resumed_late" = no ] &&
		[ "$(jobctl show "$p" --json | jq -r .status)" = stopped ]; then
		out=$(jobctl resume "$p" 2>&1) ||
			fail "resume of the stopped tree $p refused: $out"
		resumed_late=yes
		echo "# tree $p resumed once more after it stopped" >&2
	fi
	events=$(jobctl list --type event --all --limit 1000 --json | jq '.jobs | length')
	if [ "$events" -ge "$messages" ] && [ "$(open_jobs)" -eq 0 ]; then
		break
	fi
	sleep 0.2
done
echo "# settled after faults: $events event jobs, $(open_jobs) open" >&2
if [ "$(open_jobs)" -ne 0 ]; then
	for st in pending in_progress stopping stopped; do
		jobctl list --all --system --status "$st" --json | jq -c '.jobs[] | {id, type, status, parent, attempt, waiting_for_children, children, instance}' >&2
	done
	jobctl fsck >&2 || true
	rcli hgetall jobd:count >&2
	tail -n 20 "$dir"/w*.log >&2
fi

# Every message: exactly one job, with its key.
assert_eq "$messages" "$events" "event jobs for $messages messages"
dups=$(jobctl list --type event --all --limit 1000 --json |
	jq -r '.jobs[].key' | sort | uniq -d | wc -l)
assert_eq 0 "$dups" "event keys made twice"
assert_eq 0 "$(open_jobs)" "jobs still open"
assert_eq finished "$(jobctl show "$p" --json | jq -r .status)" "the stopped and resumed tree $p"

# Side effects: all 60 jobs completed; twice only after a cut attempt.
made=$(sort -u -k1,1 "$side" | wc -l)
assert_eq 60 "$made" "side-effect jobs completed"
sort -k1,1 "$side" | awk '{ n[$1]++; a[$1] = ($2 > a[$1] ? $2 : a[$1]) }
	END { for (id in n) if (n[id] > 1 && a[id] < 2) { print id; bad = 1 } exit bad }' ||
	fail "a job completed twice within one attempt: $(cat "$side")"

# The store is consistent.
out=$(jobctl fsck) || fail "fsck found violations: $out"
assert_contains "$out" "0 violations" "fsck"
for n in c w1 w2; do
	kill -TERM "${pid[$n]}" 2>/dev/null || true
done
for n in c w1 w2; do
	wait "${pid[$n]}" 2>/dev/null || true
done
if grep -l "ERROR: AddressSanitizer\|runtime error:" "$dir"/*.log; then
	fail "sanitizer reports in the jobd logs"
fi
echo "PASS: fault ($messages messages, 60 side jobs, faults survived)"
