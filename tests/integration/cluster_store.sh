#!/usr/bin/env bash
# tests/integration/cluster_store.sh: jobd's store on a Redis Cluster
# (docs/scaling.md, "On a Redis Cluster today"): 3 primaries with a
# replica each (scripts/redis cluster-start, with jobd's module unless
# JOBD_TEST_MODULE=no) and the prefix {jobd}, so the whole deployment is
# one slot on one primary.
#
# Checks: cluster-start starts a node again on other ports when its port
# or its bus port (+ 10000) was taken after it was found free (another
# process holds them bound). A prefix without a hash tag stops jobd with exit 1 and a
# message naming the key and an example; an unreachable node is named
# (host:port); a dead seed before a live one in [redis] cluster_seeds is
# passed over. Jobs submitted with jobctl run to finished, and stop,
# resume, cancel and restart work. The wake-up channel reaches a
# subscriber on another node. Kafka (the embedded broker): the
# consumer's creates WAIT for the owner's replica before their offsets
# are committed. Then, while 120 jobs flow, CLUSTER FAILOVER (the old
# primary answers MOVED) and kill -9 of the slot's new primary as 100
# more messages come: each time the replica takes over, jobd follows
# it, every job's side effect happens once (none lost, none run twice),
# every message is a job, jobd subscribes again on the
# new primary, and jobctl fsck is clean; the old primary, restarted,
# comes back as a replica.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli jq kcat
need_jobd
[ -x "$top_builddir/src/jobctl" ] || fail "no $top_builddir/src/jobctl: build first"

# A unix socket path is limited to 107 bytes.
base=${TMPDIR:-/tmp}
[ ${#base} -le 60 ] || base=/tmp
work=$(mktemp -d "$base/jobd-cs.XXXXXX") || fail "cannot create a temp dir"
on_exit "rm -rf '$work'"
cdir=$work/c
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$cdir' >/dev/null 2>&1"
# The first port cluster-start hands out, and the bus port of the second
# (JOBD_REDIS_TEST_PORTS), bound by another process but not listening:
# a connect finds them free, the node's bind fails.
python3 -c '
import random, socket, time
held, out = [], []
while len(out) < 2:
    p = random.randrange(20000, 50000)
    s = socket.socket()
    try:
        if out:
            # The second port is the port of a node once its bus port is
            # refused: free too, so that is the only refusal.
            f = socket.socket()
            f.bind(("127.0.0.1", p))
            f.close()
        s.bind(("127.0.0.1", p + 10000 * len(out)))
    except OSError:
        s.close()
        continue
    held.append(s)
    out.append(p)
print(*out, flush=True)
time.sleep(3600)
' >"$work/held" 2>"$work/held.err" &
holder=$!
on_exit "kill $holder 2>/dev/null"
wait_for 10 "ports held" test -s "$work/held"
read -r held_port held_bus <"$work/held"
# shellcheck disable=SC2046
seed=$(JOBD_REDIS_TEST_PORTS="$held_port $held_bus" \
	"$top_srcdir/scripts/redis" cluster-start "$cdir" $(module_args) \
	2>"$work/cluster-start.err") || {
	cat "$work/cluster-start.err" >&2
	# Not a missing service: the retries past the held ports failed.
	! grep -q "Address already in use" "$work/cluster-start.err" ||
		fail "cluster-start did not get past the ports held for it"
	skip_or_fail "cannot start a redis cluster (logs: $cdir/node*/redis.log)"
}
# Killed at exit otherwise; gone already, it held nothing for a while.
kill "$holder" 2>/dev/null ||
	fail "the process holding ports $held_port and $held_bus exited during cluster-start: $(cat "$work/held.err")"
start_err=$(cat "$work/cluster-start.err")
echo "$start_err" >&2
assert_contains "$start_err" "127.0.0.1:$held_port: bind: Address already in use" \
	"cluster-start: the held port"
assert_contains "$start_err" "127.0.0.1:$((held_bus + 10000)): bind: Address already in use" \
	"cluster-start: the held bus port"
# At least the two held: a port another process took meanwhile (tests
# run side by side on a developer's machine) is one retry more.
retries=$(grep -c 'was taken before it bound them; trying others' <<<"$start_err" || true)
[ "$retries" -ge 2 ] ||
	fail "cluster-start: tried again $retries times, want at least 2 (the ports held)"
! grep -Eq ":($held_port|$held_bus)\$" "$cdir/nodes" ||
	fail "a node on a port that was in use: $(cat "$cdir/nodes")"
mapfile -t nodes <"$cdir/nodes"
others=$(grep -vx "$seed" "$cdir/nodes" | paste -sd, -)
slot=$(redis-cli -h 127.0.0.1 -p "${seed#*:}" cluster keyslot '{jobd}')
done_log=$work/done.log
: >"$done_log"

# owner: host:port of the primary that owns the slot of {jobd}, as the
# first node that answers sees it (nothing during a failover).
owner() {
	cluster_owner "$cdir/nodes" '{jobd}'
}

# node_dir HOST:PORT: the directory scripts/redis started that node in.
node_dir() {
	dirname "$(grep -lx "port ${1#*:}" "$cdir"/node*/redis.conf)"
}

# write_conf NAME ROLES [MORE]: jobd's configuration NAME.conf.
write_conf() {
	cat >"$work/$1.conf" <<EOF
[redis]
address = $seed
cluster_seeds = $others
prefix = {jobd}
[engine]
roles = $2
instance = $1
workers = 6
lease = 2s
heartbeat = 200ms
$(side_type "$done_log")
restartable = yes
${3:-}
EOF
}

count_status() {
	jobctl list --status "$1" --limit 1000 --json | jq '.jobs | length'
}

at_least() {
	[ "$(count_status "$1")" -ge "$2" ]
}

done_at_least() {
	[ "$(side_jobs "$done_log")" -ge "$1" ]
}

# --- 1. refusals -------------------------------------------------------------

# A prefix without a hash tag: exit 1, naming the key, its value and an example.
cat >"$work/untagged.conf" <<EOF
[redis]
address = $seed
prefix = app
[engine]
roles = work
EOF
rc=0
timeout 20 "$jobd_bin" -c "$work/untagged.conf" >"$work/untagged.log" 2>&1 || rc=$?
assert_eq 1 "$rc" "jobd with an untagged prefix on a cluster: exit code"
assert_contains "$(cat "$work/untagged.log")" \
	'[redis] prefix "app" has no hash tag' "untagged prefix message"
assert_contains "$(cat "$work/untagged.log")" 'for example prefix = {app}' \
	"untagged prefix example"

# An unreachable node is named.
dead=127.0.0.1:$(free_port)
printf '[redis]\naddress = %s\nprefix = {jobd}\n' "$dead" >"$work/dead.conf"
rc=0
err=$(JOBD_CONFIG=$work/dead.conf jobctl list 2>&1) || rc=$?
assert_eq 3 "$rc" "jobctl with an unreachable address: exit code"
assert_contains "$err" "$dead" "unreachable address named"
printf '[redis]\naddress = %s\ncluster_seeds = %s\nprefix = {jobd}\n' \
	"$seed" "$dead" >"$work/deadseed.conf"
out=$(JOBD_CONFIG=$work/deadseed.conf jobctl list 2>&1) ||
	fail "jobctl with a live address and a dead seed: $out"
printf '[redis]\naddress = %s\ncluster_seeds = %s\nprefix = {jobd}\n' \
	"$dead" "$seed" >"$work/deadfirst.conf"
out=$(JOBD_CONFIG=$work/deadfirst.conf jobctl list 2>&1) ||
	fail "jobctl with a dead address and a live seed: $out"

# --- 2. jobs run, operations work ---------------------------------------------

write_conf a work
export JOBD_CONFIG=$work/a.conf
start_jobd a
jobctl submit side --count 50 --payload '{"sleep_ms": 1}' >"$work/ids1"
wait_for 30 "50 jobs finished on the cluster" done_at_least 50
poll 10 at_least finished 50 || fail "only $(count_status finished) of 50 jobs finished"
# Every key is the slot's, on its primary: nothing on the others.
o=$(owner)
[ -n "$o" ] || fail "no primary owns slot $slot"
for n in "${nodes[@]}"; do
	[ "$n" = "$o" ] && continue
	[ "$(nrcli "$n" role | head -n 1)" = master ] || continue
	assert_eq 0 "$(nrcli "$n" dbsize)" "keys on primary $n, which does not own slot $slot"
done
assert_eq 1 "$(nrcli "$o" exists '{jobd}:job:1')" "job 1 on the slot's primary $o"

# stop and resume a waiting job, cancel a stopped one, restart a finished one
slow=$(jobctl submit side --delay 1h)
wait_job 10 "$slow" '.status == "pending"'
jobctl stop "$slow" >/dev/null
wait_job 10 "$slow" '.status == "stopped"'
jobctl resume "$slow" >/dev/null
wait_job 10 "$slow" '.status == "pending"'
jobctl stop "$slow" >/dev/null
wait_job 10 "$slow" '.status == "stopped"'
jobctl cancel "$slow" >/dev/null
wait_job 10 "$slow" '.status == "canceled"'
first=$(head -n 1 "$work/ids1")
jobctl restart "$first" >/dev/null
wait_job 10 "$first" '.status == "finished" and .restarts == 1'

# The wake-up goes on the shard channel (SPUBLISH): a listener at the
# slot's primary hears it, a classic one on another node does not (a
# classic PUBLISH would reach every node of the cluster).
other=$(grep -vx "$o" "$cdir/nodes" | head -n 1)
timeout 3 redis-cli -h "${o%:*}" -p "${o#*:}" ssubscribe '{jobd}:wake' \
	>"$work/wake.out" 2>&1 &
sub=$!
timeout 3 redis-cli -h "${other%:*}" -p "${other#*:}" subscribe '{jobd}:wake' \
	>"$work/wake_other.out" 2>&1 &
sub2=$!
sleep 0.5
jobctl submit side --payload '{"sleep_ms": 1}' >/dev/null
wait "$sub" || true
wait "$sub2" || true
assert_contains "$(cat "$work/wake.out")" smessage "a wake-up seen at $o"
assert_contains "$(cat "$work/wake_other.out")" subscribe "a classic listener at $other"
case $(cat "$work/wake_other.out") in
*message*) fail "a wake-up broadcast to $other: $(cat "$work/wake_other.out")" ;;
esac
stop_jobd a

# --- 3. Kafka: creates wait for the replica -----------------------------------

write_conf k consume,work "[kafka]
brokers = embedded
group = cs-$$"
start_jobd k
broker=
for _ in $(seq 100); do
	broker=$(nrcli "$o" get '{jobd}:broker')
	[ -n "$broker" ] && break
	sleep 0.1
done
[ -n "$broker" ] || fail "the embedded broker's key is not in the cluster"
waits0=$(nrcli "$o" info commandstats | sed -n 's/^cmdstat_wait:calls=\([0-9]*\).*/\1/p')
for i in $(seq 100); do
	printf '{"id":"k%d","service":"crm","event":"order.created","data":{"n":%d}}\n' "$i" "$i"
done | kcat -b "$broker" -t jobs.events -p 0 -P || fail "kcat cannot produce"
kafka_done() { [ "$(jobctl key --scan 'jobs.events:k*' | wc -l)" -ge 100 ]; }
poll 60 kafka_done ||
	fail "$(jobctl key --scan 'jobs.events:k*' | wc -l) of 100 jobs from Kafka after 60 s: $(tail -n 20 "$work/k.log")"
waits1=$(nrcli "$o" info commandstats | sed -n 's/^cmdstat_wait:calls=\([0-9]*\).*/\1/p')
[ "${waits1:-0}" -gt "${waits0:-0}" ] ||
	fail "the consumer's creates did not WAIT for the replica (WAIT calls ${waits0:-0} -> ${waits1:-0})"

# --- 4. failovers while jobs flow (k consumes and works on) ---------------------

: >"$done_log"
jobctl submit side --count 120 --payload '{"sleep_ms": 10}' >"$work/ids2"
poll 20 done_at_least 15 || fail "jobs did not start before the failover"
# A manual failover: the replica takes over, the old primary answers
# MOVED on jobd's open connections.
o=$(owner)
id=$(nrcli "$o" cluster myid)
r=$(for n in "${nodes[@]}"; do nrcli "$n" cluster nodes 2>/dev/null && break; done |
	awk -v id="$id" '$3 ~ /slave/ && $4 == id { sub(/@.*/, "", $2); print $2; exit }')
[ -n "$r" ] || fail "no replica of $o"
nrcli "$r" cluster failover >/dev/null || fail "CLUSTER FAILOVER refused by $r"
new_owner() { n=$(owner); [ -n "$n" ] && [ "$n" != "$o" ]; }
wait_for 20 "$r takes slot $slot over from $o (CLUSTER FAILOVER)" new_owner
o=$(owner)
assert_eq "$r" "$o" "the slot's primary after CLUSTER FAILOVER"
poll 20 done_at_least 50 || fail "jobs stalled after CLUSTER FAILOVER"
# kill -9 of the new primary: its replica (the old primary) takes over,
# while the consumer creates jobs from 100 more messages.
for i in $(seq 101 200); do
	printf '{"id":"k%d","service":"crm","event":"order.created","data":{"n":%d}}\n' "$i" "$i"
done | kcat -b "$broker" -t jobs.events -p 0 -P || fail "kcat cannot produce"
odir=$(node_dir "$o")
kill -KILL "$(cat "$odir/redis.pid")"
wait_for 20 "a replica takes slot $slot over from $o" new_owner
o2=$(owner)
wait_for 60 "120 jobs done after the failover to $o2" done_at_least 120
dups=$(side_twice "$done_log" | paste -sd' ' -)
[ -z "$dups" ] || fail "jobs run twice across the failover: $dups ($(grep -cE . "$done_log") runs)"
missing=0
while read -r id; do
	job_is "$id" '.status == "finished"' || missing=$((missing + 1))
done <"$work/ids2"
assert_eq 0 "$missing" "jobs not finished after the failover"
grep -q "claiming jobs again" "$work/k.log" ||
	fail "jobd did not say it claims again: $(tail -n 20 "$work/k.log")"
kafka_all() { [ "$(jobctl key --scan 'jobs.events:k*' | wc -l)" -ge 200 ]; }
poll 30 kafka_all ||
	fail "$(jobctl key --scan 'jobs.events:k*' | wc -l) of 200 jobs from Kafka after the failover: $(tail -n 20 "$work/k.log")"
# Idle, jobd listens for wake-ups on the new primary.
subscribed() { [ "$(nrcli "$o2" pubsub shardnumsub '{jobd}:wake' | tail -n 1)" -ge 1 ]; }
wait_for 10 "jobd subscribed on $o2" subscribed
out=$(jobctl fsck 2>&1) || fail "jobctl fsck after the failover: $out"
assert_contains "$out" "0 violations" "fsck after the failover"
# The old primary comes back as a replica of the new one.
redis-server "$odir/redis.conf" >/dev/null || fail "cannot restart $o"
replica_back() { [ "$(nrcli "$o" role 2>/dev/null | head -n 1)" = slave ]; }
wait_for 20 "$o back as a replica" replica_back
id=$(jobctl submit side --payload '{"sleep_ms": 1}')
wait_job 10 "$id" '.status == "finished"'
stop_jobd k
echo "failovers: slot $slot from $r to $o2, 120 jobs done once each"
