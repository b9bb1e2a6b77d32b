#!/usr/bin/env bash
# partition.sh: an instance cut off from Redis stops its handler before
# another instance can take the job over (docs/reliability.md, "A worker
# cut off from Redis"). Instance a reaches Redis through a TCP proxy
# (socat); b directly. a runs an exec handler that appends "ATTEMPT MS"
# to a file every 20 ms. The proxy is frozen (SIGSTOP: connections stay
# open, nothing passes, as in a partition), so a's calls block until
# their socket timeout (5 s, longer than the lease) while b keeps
# working. b takes the job over once the lease has expired (attempt 2).
# The last line of attempt 1 must come before the first of attempt 2:
# the overlap of the two attempts' side effects is 0. Twice: with a
# handler that only writes, and with one that also asks for children
# all along, so that a's thread for it is blocked in a call to the frozen
# Redis when the lease runs out (the tree must die all the same).
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need socat jq python3
need_jobd
start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-part.XXXXXX")
on_exit "rm -rf '$dir'"
marks=$dir/marks
: > "$marks"
port=$(free_port)
lease_ms=4000

setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
	"UNIX-CONNECT:$JOBD_REDIS" 2> "$dir/socat.log" &
proxy=$!
on_exit "kill -CONT -$proxy 2>/dev/null; kill -9 -$proxy 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do
	redis-cli -p "$port" ping > /dev/null 2>&1 && break
	sleep 0.05
done
[ "$(redis-cli -p "$port" ping)" = PONG ] || fail "the proxy does not reach Redis"

for name in a b; do
	cat > "$dir/$name.conf" <<CONF
[redis]
address = $([ $name = a ] && echo "127.0.0.1:$port" || echo "$JOBD_REDIS")
[engine]
roles = work
instance = $name
workers = 2
lease = ${lease_ms}ms
heartbeat = 1s
[type.mark]
handler = exec
command = $top_srcdir/tests/fixtures/handlers/mark.sh '$marks'
[type.markspawn]
handler = exec
command = $top_srcdir/tests/fixtures/handlers/mark.sh '$marks' spawn
CONF
done
export JOBD_CONFIG=$dir/b.conf

declare -A pid
start() {
	JOBD_REDIS= "$jobd_bin" -c "$dir/$1.conf" 2>> "$dir/$1.log" &
	pid[$1]=$!
	on_exit "kill -9 $! 2>/dev/null || true"
}

lines_of() { grep -c "^$1 " "$marks" || true; }

# wait_lines ATTEMPT N SECONDS
wait_lines() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[ "$(lines_of "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "attempt $1 wrote $(lines_of "$1") lines in $3 s, not $2"
}

# round TYPE: a takes a job of TYPE, its proxy is frozen, b takes the
# job over; the two attempts' side effects must not overlap.
round() {
	local type=$1 id frozen last1 first2

	: > "$marks"
	: > "$dir/a.log"
	start a
	id=$(jobctl submit "$type")
	wait_lines 1 10 30
	start b
	sleep 1 # b's workers are up: it could take the job at once
	kill -STOP -"$proxy"
	frozen=$(date +%s%3N)
	echo "# proxy of a frozen at $frozen"
	wait_lines 2 10 30
	kill -CONT -"$proxy"

	last1=$(awk '$1 == 1 { t = $2 } END { print t }' "$marks")
	first2=$(awk '$1 == 2 { print $2; exit }' "$marks")
	echo "# attempt 1: last side effect $((last1 - frozen)) ms after the freeze"
	echo "# attempt 2: first side effect $((first2 - frozen)) ms after the freeze"
	echo "# gap between them: $((first2 - last1)) ms (lease $lease_ms ms)"
	[ "$last1" -lt "$first2" ] ||
		fail "attempt 1 wrote $(awk -v t="$first2" '$1 == 1 && $2 >= t' "$marks" | wc -l) lines after attempt 2 started (overlap $((last1 - first2)) ms)"
	assert_contains "$(cat "$dir/a.log")" "could not renew its lease in time" "a's log"
	assert_eq 2 "$(rcli hget "jobd:job:$id" attempt)" "attempt of the job"
	echo "# $type: a's handler ended $((first2 - last1)) ms before b's began ($(lines_of 1) lines of attempt 1, $(jobctl list --all --json | jq '.jobs | length') jobs)"
	if [ "$type" = markspawn ]; then
		[ "$(rcli zcard "jobd:children:$id")" -ge 10 ] ||
			fail "the spawning handler made $(rcli zcard "jobd:children:$id") children"
	fi
	kill -9 "${pid[a]}" "${pid[b]}"
	wait "${pid[a]}" "${pid[b]}" 2>/dev/null || true
	rcli flushall > /dev/null
}

round mark
round markspawn
echo "partition: no overlap, with a handler that writes and one that spawns"
