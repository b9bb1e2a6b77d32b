#!/usr/bin/env bash
# http_limits.sh: the monitor under two attacks (issue 17), through a real
# jobd with every role and `ulimit -n 256`. A slowloris client, sending a
# header line every second and never the end of its headers, is cut off at
# [http] request_timeout (3 s here), not held for ever. Then 1,100 idle TCP
# connections, more than jobd may open descriptors, held with three
# slowloris clients: meanwhile a fresh GET /api/counts is answered within
# 1 s, exec jobs submitted all finish without error (no "cannot create
# pipes"), the monitor keeps at most its connection limit, and jobd's log
# stays a few lines long (it used to repeat "accept(): Too many open files"
# millions of times). Last, out of descriptors all the same: accepting
# pauses without spinning or flooding the log.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need curl python3 jq prlimit
need_jobd
start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-limits.XXXXXX")
on_exit "rm -rf '$dir'"
attack=$top_srcdir/tests/fixtures/http_attack.py
mkdir "$dir/data"
cat > "$dir/jobd.conf" <<CONF
[engine]
data_dir = $dir/data
[http]
listen = 127.0.0.1:0
request_timeout = 3s
[type.count]
handler = exec
command = $top_srcdir/tests/fixtures/handlers/example.sh
CONF
export JOBD_CONFIG=$dir/jobd.conf

# 0. jobd raises its soft descriptor limit to the hard one, and refuses a
# connection limit that the descriptor limit cannot hold.
printf '[http]\nmax_connections = 1000000\n' > "$dir/big.conf"
rc=0
# A hard limit of our own (lowering it needs no privilege), so the test
# does not depend on the machine's.
(ulimit -S -n 200 && ulimit -H -n 4096 && exec "$jobd_bin" -c "$dir/big.conf") \
	2> "$dir/big.log" || rc=$?
assert_eq 1 "$rc" "jobd with max_connections over the descriptor limit"
assert_contains "$(cat "$dir/big.log")" \
	"descriptor limit (RLIMIT_NOFILE) raised from 200 to 4096" "raised limit"
assert_contains "$(cat "$dir/big.log")" \
	"error: [http] max_connections 1000000 is more than the descriptor limit leaves: ulimit -n" \
	"max_connections refused"

# With `ulimit -n 256` (soft and hard: jobd cannot raise it) jobd derives
# its connection limit: 256 minus what 8 workers, Redis and Kafka need.
: > "$dir/jobd.log"
(ulimit -n 256 && exec "$jobd_bin") 2> "$dir/jobd.log" &
jobd_pid=$!
on_exit "kill -9 $jobd_pid 2>/dev/null || true"
for ((i = 0; i < 300; i++)); do
	grep -q 'http: monitor on' "$dir/jobd.log" && break
	kill -0 "$jobd_pid" 2>/dev/null || fail "jobd exited: $(cat "$dir/jobd.log")"
	sleep 0.1
done
addr=$(sed -n 's|.*http: monitor on http://\([0-9.:]*\)/.*|\1|p' "$dir/jobd.log")
[ -n "$addr" ] || fail "no monitor address in the log: $(cat "$dir/jobd.log")"
port=${addr##*:}
base=http://$addr

# metric NAME: its value from /metrics (one try, 5 s at most), NAME
# without this instance's label (instance="...", first of the labels).
metric() {
	curl -s -m 5 "$base/metrics" |
		sed -E 's/\{instance="[^"]*",?/{/; s/\{\}//' |
		awk -v m="$1" '$1 == m { print $2 }'
}

# fresh: one GET /api/counts on a new connection; prints its seconds.
fresh() {
	local out
	out=$(curl -s -m 10 -o /dev/null -w '%{http_code} %{time_total}' \
		"$base/api/counts") || true
	[ "${out%% *}" = 200 ] || fail "fresh GET /api/counts: got '$out'"
	echo "${out#* }"
}

# 1. A slowloris client alone is cut off at the deadline, however it
# trickles.
python3 "$attack" slowloris "$port" 1 > "$dir/slow1.out" &
slow=$!
on_exit "kill $slow 2>/dev/null || true"
for ((i = 0; i < 150; i++)); do
	grep -q closed "$dir/slow1.out" && break
	sleep 0.1
done
kill "$slow" 2>/dev/null || true
first=$(grep -m1 closed "$dir/slow1.out" | awk '{ print $4 }' || true)
[ -n "$first" ] || fail "a slowloris connection still open after 15 s"
python3 -c "import sys; t = float(sys.argv[1]); sys.exit(not 2.5 <= t <= 10)" "$first" ||
	fail "the slowloris connection closed after $first s, not about 3 s"

# 2. 1,100 idle connections, replaced as fast as jobd closes them, and
# three slowloris clients at once.
python3 "$attack" flood "$port" 1100 > "$dir/flood.out" &
flood=$!
on_exit "kill $flood 2>/dev/null || true"
slows=()
for s in 1 2 3; do
	python3 "$attack" slowloris "$port" 1 > "$dir/slow-$s.out" &
	slows+=($!)
	on_exit "kill $! 2>/dev/null || true"
done
lines_before=$(wc -l < "$dir/jobd.log")
# Holding: 1,100 connections made (jobd closes some at its limit, and the
# flood makes new ones for them).
made=0
for ((i = 0; i < 300; i++)); do
	last=$(tail -n 1 "$dir/flood.out")
	made=$(echo "$last" | sed -n 's/^flood: \([0-9]*\) connected.*/\1/p')
	[ "${made:-0}" -ge 1100 ] && break
	sleep 0.1
done
echo "$last"
[ "${made:-0}" -ge 1100 ] || fail "the flood made ${made:-0} of 1100 connections in 30 s: $last"
max=$(metric jobd_http_connections_max)
[ -n "$max" ] && [ "$max" -ge 4 ] && [ "$max" -lt 256 ] ||
	fail "connection limit '$max' under ulimit -n 256"

ids=$(jobctl submit count --count 8 --payload '{"steps": 3, "sleep_ms": 50}')
assert_eq 8 "$(wc -w <<<"$ids")" "exec jobs submitted under attack"
slowest=0 fullest=0
for ((i = 0; i < 10; i++)); do
	t=$(fresh)
	slowest=$(python3 -c "import sys; print(max(map(float, sys.argv[1:])))" "$slowest" "$t")
	open=$(metric jobd_http_connections)
	[ "$open" -le "$max" ] || fail "$open connections open, over the limit $max"
	[ "$open" -le "$fullest" ] || fullest=$open
	sleep 0.3
done
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 1)" "$slowest" ||
	fail "a fresh GET /api/counts took $slowest s under attack (limit 1 s)"
# The fresh requests met a monitor at its limit, not one the flood had
# left: most of its connections were taken meanwhile.
[ $((fullest * 4)) -ge $((max * 3)) ] ||
	fail "at most $fullest of $max connections open during the fresh requests"
for id in $ids; do
	for ((i = 0; i < 300; i++)); do
		[ "$(jobctl show "$id" --json | jq -r .status)" = finished ] && break
		sleep 0.1
	done
	assert_eq "finished 0" "$(jobctl show "$id" --json | jq -r '"\(.status) \(.errors)"')" \
		"exec job $id under attack"
done
kill -0 "$flood" || fail "the flood client died: $(cat "$dir/flood.out")"
still=$(tail -n 1 "$dir/flood.out")
# No slowloris connection outlived its deadline under the flood (the limit
# may close it sooner), and the limit did close connections.
slow_times=$(cat "$dir"/slow-*.out | sed -n 's/^slowloris: closed after \([0-9.]*\) s$/\1/p')
[ -n "$slow_times" ] || fail "no slowloris connection was closed under the flood"
python3 -c "import sys; sys.exit(max(map(float, sys.argv[1:])) > 4)" $slow_times ||
	fail "a slowloris connection was held past its 3 s deadline under the flood: $slow_times"
deadline=$(metric 'jobd_http_connections_closed_total{reason="deadline"}')
limit=$(metric 'jobd_http_connections_closed_total{reason="limit"}')
[ "${limit:-0}" -ge 1 ] || fail "the limit closed no connection under the flood"
kill "$flood" "${slows[@]}"

lines=$(($(wc -l < "$dir/jobd.log") - lines_before))
[ "$lines" -le 20 ] || fail "jobd logged $lines lines under attack: $(tail -n 5 "$dir/jobd.log")"
if grep -q 'cannot create pipes\|Too many open files' "$dir/jobd.log"; then
	fail "out of descriptors: $(grep -m3 'cannot create pipes\|Too many open files' "$dir/jobd.log")"
fi
for ((i = 0; i < 100; i++)); do
	[ "$(metric jobd_http_connections)" -le 1 ] && break
	sleep 0.1
done
assert_eq 1 "$(metric jobd_http_connections)" "connections once the flood is gone"

# 3. Out of descriptors all the same (here: the soft limit lowered under
# jobd's feet): accepting pauses, no spinning, one warning line; when
# descriptors are back, the monitor answers again.
cpu() { # user + system ticks of jobd
	awk '{ print $14 + $15 }' "/proc/$jobd_pid/stat"
}
fds=$(ls "/proc/$jobd_pid/fd" | wc -l)
prlimit --pid "$jobd_pid" --nofile=$((fds + 10)):256
python3 "$attack" flood "$port" 300 > "$dir/flood2.out" &
flood=$!
on_exit "kill $flood 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do
	[ "$(ls "/proc/$jobd_pid/fd" | wc -l)" -ge $((fds + 10)) ] && break
	sleep 0.1
done
lines_before=$(wc -l < "$dir/jobd.log")
ticks=$(cpu)
sleep 3
ticks=$(($(cpu) - ticks))
emfile_lines=$(($(wc -l < "$dir/jobd.log") - lines_before))
hz=$(getconf CLK_TCK)
[ "$ticks" -lt "$hz" ] || fail "jobd used $ticks/$hz s of CPU in 3 s out of descriptors: spinning?"
[ "$emfile_lines" -le 1 ] || fail "jobd logged $emfile_lines lines in 3 s out of descriptors"
grep -q 'http: cannot accept a connection: Too many open files' "$dir/jobd.log" ||
	fail "no warning about accept errors: $(tail -n 3 "$dir/jobd.log")"
prlimit --pid "$jobd_pid" --nofile=256:256
kill "$flood"
fresh > /dev/null
[ "$(metric jobd_http_accept_errors_total)" -ge 1 ] || fail "no accept error counted"

kill -TERM "$jobd_pid"
rc=0
wait "$jobd_pid" || rc=$?
assert_eq 0 "$rc" "jobd exits 0 on SIGTERM: $(tail -n 5 "$dir/jobd.log")"
echo "limit $max connections; slowloris alone closed after $first s;" \
	"under 1,100 idle connections and 3 slowloris: slowest fresh answer" \
	"$slowest s, $still, closed at deadline $deadline, at the limit" \
	"$limit, $lines log lines, 8 exec jobs finished; out of descriptors:" \
	"$ticks/$hz s of CPU in 3 s, $emfile_lines log lines"
