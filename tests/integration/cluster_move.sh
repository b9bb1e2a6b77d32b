#!/usr/bin/env bash
# tests/integration/cluster_move.sh: jobctl cluster move (docs/scaling.md,
# "Moving the slot") on a Redis Cluster of 3 primaries without replicas
# (scripts/redis cluster-start --replicas 0, with jobd's module unless
# JOBD_TEST_MODULE=no), the prefix {jobd}: the deployment's slot moves
# to another primary while jobd runs.
#
# Checks: the refusals (one Redis is not a cluster; a node that cannot be
# reached, or is not in the cluster, is named; a dry run moves nothing;
# the owner itself has nothing to move). While the calls are held (P:hold
# set by hand), a create, a claim and a finish are refused before they
# write anything (HELD), and jobs wait; released, they run. Then, while
# 200 exec jobs run (two instances, short leases) and 200 Kafka messages
# come, the slot moves twice (A to B, B to C): every job's side effect
# happens once (none lost, none run twice), every message is a job,
# jobctl fsck is clean, every key is on the last owner and P:hold is
# gone. Last, a move interrupted half way (the hold, the slot's states
# and some keys moved by hand, as a jobctl killed in the middle leaves
# them) is finished by running the move again; one begun by hand
# (redis-cli --cluster reshard), without the hold, is refused; one cut
# off once the target took the slot, the source still marked migrating,
# is settled. Last, a move on a cluster that speaks TLS only.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli jq kcat
need_jobd
[ -x "$top_builddir/src/jobctl" ] || fail "no $top_builddir/src/jobctl: build first"

base=${TMPDIR:-/tmp}
[ ${#base} -le 60 ] || base=/tmp
work=$(mktemp -d "$base/jobd-cm.XXXXXX") || fail "cannot create a temp dir"
on_exit "rm -rf '$work'"
cdir=$work/c
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$cdir' >/dev/null 2>&1"
# shellcheck disable=SC2046
seed=$("$top_srcdir/scripts/redis" cluster-start "$cdir" --replicas 0 \
	$(module_args) 2>"$work/cluster-start.err") || {
	cat "$work/cluster-start.err" >&2
	skip_or_fail "cannot start a redis cluster (logs: $cdir/node*/redis.log)"
}
mapfile -t nodes <"$cdir/nodes"
others=$(grep -vx "$seed" "$cdir/nodes" | paste -sd, -)
slot=$(redis-cli -h 127.0.0.1 -p "${seed#*:}" cluster keyslot '{jobd}')
done_log=$work/done.log
: >"$done_log"

owner() {
	cluster_owner "$cdir/nodes" '{jobd}'
}
# keys_elsewhere OWNER: the keys on the primaries other than OWNER.
keys_elsewhere() {
	local n k=0

	for n in "${nodes[@]}"; do
		[ "$n" = "$1" ] && continue
		k=$((k + $(nrcli "$n" dbsize)))
	done
	echo "$k"
}

write_conf() {
	cat >"$work/$1.conf" <<EOF
[redis]
address = $seed
cluster_seeds = $others
prefix = {jobd}
[engine]
roles = $2
instance = $1
workers = 8
lease = 2s
heartbeat = 200ms
$(side_type "$done_log")
${3:-}
EOF
}
write_conf ctl work
export JOBD_CONFIG=$work/ctl.conf

# --- 1. refusals --------------------------------------------------------------

start_redis
printf '[redis]\naddress = %s\n' "$JOBD_REDIS" >"$work/one.conf"
rc=0
out=$(JOBD_CONFIG=$work/one.conf jobctl cluster move --to 127.0.0.1:1 2>&1) || rc=$?
assert_eq 3 "$rc" "cluster move on one Redis: exit code"
assert_contains "$out" "is not a cluster" "cluster move on one Redis"
rc=0
out=$(jobctl cluster move 2>&1) || rc=$?
assert_eq 2 "$rc" "cluster move without --to: exit code"
assert_contains "$out" "usage: jobctl cluster move --to HOST:PORT" "usage"

o=$(owner)
[ -n "$o" ] || fail "no primary owns slot $slot"
mapfile -t rest < <(grep -vx "$o" "$cdir/nodes")
b=${rest[0]} c=${rest[1]}
dead=127.0.0.1:$(free_port)
rc=0
out=$(jobctl cluster move --to "$dead" 2>&1) || rc=$?
assert_eq 3 "$rc" "cluster move to an unreachable node: exit code"
assert_contains "$out" "$dead" "the unreachable node named"
# A Redis that is not in the cluster is refused by name.
rc=0
out=$(jobctl cluster move --to "$JOBD_REDIS" 2>&1) || rc=$?
assert_eq 3 "$rc" "cluster move to a Redis outside the cluster: exit code"
assert_contains "$out" "$JOBD_REDIS" "the Redis outside the cluster named"
# Done with it: JOBD_REDIS would stand for [redis] address from here on.
stop_redis
unset JOBD_REDIS
out=$(jobctl cluster move --to "$o" 2>&1) || fail "cluster move to the owner: $out"
assert_contains "$out" "is at $o already: nothing to move" "the owner itself"
jobctl submit side --payload '{"sleep_ms": 1}' >/dev/null
out=$(jobctl cluster move --to "$b" --dry-run 2>&1) || fail "dry run: $out"
assert_contains "$out" "would move slot $slot" "dry run says what it would move"
assert_eq "$o" "$(owner)" "a dry run moves nothing"
assert_eq 0 "$(nrcli "$o" exists '{jobd}:hold')" "a dry run holds nothing"

# --- 2. a hold refuses every call before it writes; running jobs keep their leases

write_conf a work
start_jobd a
wait_for 20 "a job of the refusals finished" test -s "$done_log"
: >"$done_log"
jobctl submit side --count 6 --payload '{"sleep_ms": 4000}' >"$work/long"
running() { [ "$(jobctl list --status in_progress --json | jq '.jobs | length')" -ge 6 ]; }
wait_for 20 "6 long jobs running" running
# Held for longer than a lease (2 s): no heartbeat renews one meanwhile.
now=$(nrcli "$o" time | head -n 1)000
nrcli "$o" hset '{jobd}:hold' to "$b" by test since "$now" >/dev/null
held_at=$SECONDS
seq0=$(nrcli "$o" get '{jobd}:seq')
rc=0
out=$(jobctl submit side --payload '{"sleep_ms": 1}' 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "a submit went through the hold: $out"
assert_contains "$out" "HELD" "a held submit says why"
assert_eq "$seq0" "$(nrcli "$o" get '{jobd}:seq')" "a held submit wrote no id"
# The functions and the module's commands alike, as jobd sends them.
fn=$(nrcli "$o" function list | grep -o 'jobd_[0-9a-f]*_claim' | head -n 1)
out=$(nrcli "$o" fcall "$fn" 0 '{jobd}' 0 x 1000 1 0 1000 2>&1)
assert_contains "$out" "HELD" "claim.lua held"
if [ "${JOBD_TEST_MODULE:-yes}" != no ]; then
	out=$(nrcli "$o" jobd.claim '{jobd}' 0 x 1000 1 0 1000 2>&1)
	assert_contains "$out" "HELD" "JOBD.CLAIM held"
	out=$(nrcli "$o" jobd.finish '{jobd}' 0 x 2>&1)
	assert_contains "$out" "HELD" "JOBD.FINISH held"
fi
wait_for 10 "jobd a says its leases are held" grep -q "lengthened by the time held" "$work/a.log"
expire_fn=$(nrcli "$o" function list | grep -o 'jobd_[0-9a-f]*_expire' | head -n 1)
while [ $((SECONDS - held_at)) -lt 4 ]; do sleep 0.2; done
# The slot is where it was: the move only lets the calls go. Then at
# once, before jobd's next heartbeat, leases are handed back as jobd
# would hand them back: none has expired.
out=$(jobctl cluster move --to "$o" 2>&1) || fail "releasing the hold: $out"
back=$(nrcli "$o" fcall "$expire_fn" 0 '{jobd}' 0 100)
assert_eq "" "$back" "jobs handed back as expired right after the hold"
assert_contains "$out" "releasing the calls held" "the hold released"
assert_contains "$out" "leases lengthened" "the leases lengthened"
long_done() { [ "$(side_jobs "$done_log")" -ge 6 ]; }
wait_for 30 "the 6 long jobs done after the hold" long_done
while read -r id; do
	wait_job 10 "$id" '.status == "finished" and .attempt == 1'
done <"$work/long"
[ -z "$(side_twice "$done_log")" ] || fail "jobs run twice across the hold: $(cat "$done_log")"
! grep -q "abandoning its handler\|expired" "$work/a.log" ||
	fail "a running job lost its lease across the hold: $(grep "abandoning\|expired" "$work/a.log")"
n=$(jobctl submit side --payload '{"sleep_ms": 1}')
wait_job 20 "$n" '.status == "finished"'
stop_jobd a

# --- 3. two moves while jobs run and messages come ------------------------------

: >"$done_log"
write_conf a consume,work "[kafka]
brokers = embedded
group = cm-$$"
write_conf b work
start_jobd a
start_jobd b
broker=
for _ in $(seq 100); do
	broker=$(nrcli "$o" get '{jobd}:broker')
	[ -n "$broker" ] && break
	sleep 0.1
done
[ -n "$broker" ] || fail "the embedded broker's key is not in the cluster"
jobctl submit side --count 200 --payload '{"sleep_ms": 20}' >"$work/ids"
for i in $(seq 100); do
	printf '{"id":"m%d","service":"crm","event":"order.created"}\n' "$i"
done | kcat -b "$broker" -t jobs.events -p 0 -P || fail "kcat cannot produce"
done_at_least() { [ "$(side_jobs "$done_log")" -ge "$1" ]; }
poll 30 done_at_least 20 || fail "jobs did not start before the move"
out=$(jobctl cluster move --to "$b" 2>&1) || fail "move to $b: $out"
echo "$out"
assert_contains "$out" "slot $slot is at $b" "first move"
assert_eq "$b" "$(owner)" "the slot's owner after the first move"
for i in $(seq 101 200); do
	printf '{"id":"m%d","service":"crm","event":"order.created"}\n' "$i"
done | kcat -b "$broker" -t jobs.events -p 0 -P || fail "kcat cannot produce"
poll 30 done_at_least 100 || fail "jobs stalled after the first move: $(tail -n 20 "$work/a.log")"
out=$(jobctl cluster move --to "$c" 2>&1) || fail "move to $c: $out"
echo "$out"
assert_eq "$c" "$(owner)" "the slot's owner after the second move"
wait_for 90 "the 200 jobs done after two moves" done_at_least 200
dups=$(side_twice "$done_log" | paste -sd' ' -)
[ -z "$dups" ] || fail "jobs run twice across the moves: $dups"
missing=0
while read -r id; do
	job_is "$id" '.status == "finished"' || missing=$((missing + 1))
done <"$work/ids"
assert_eq 0 "$missing" "jobs not finished after the moves"
kafka_all() { [ "$(jobctl key --scan 'jobs.events:m*' | wc -l)" -ge 200 ]; }
poll 60 kafka_all ||
	fail "$(jobctl key --scan 'jobs.events:m*' | wc -l) of 200 messages are jobs after the moves: $(tail -n 20 "$work/a.log")"
out=$(jobctl fsck 2>&1) || fail "jobctl fsck after the moves: $out"
assert_contains "$out" "0 violations" "fsck after the moves"
assert_eq 0 "$(nrcli "$c" exists '{jobd}:hold')" "the hold is gone"
# The wake-up channel is a shard channel: a slot that leaves a node
# unsubscribes its listeners there ("sunsubscribe"), and both jobds listen
# again at the slot's owner.
shard_subs() { nrcli "$1" pubsub shardnumsub '{jobd}:wake' | tail -n 1; }
both_listen() { [ "$(shard_subs "$c")" -ge 2 ]; }
wait_for 10 "both jobds listening for wake-ups at $c" both_listen
assert_eq 0 "$(shard_subs "$b")" "listeners left at $b, which the slot left"
stop_jobd b
stop_jobd a
assert_eq 0 "$(keys_elsewhere "$c")" "keys left on the primaries other than $c"

# --- 4. a move interrupted half way is finished by running it again ----------------

jobctl submit side --count 30 --payload '{"sleep_ms": 1}' >/dev/null
cid=$(nrcli "$c" cluster myid)
aid=$(nrcli "$o" cluster myid)
# A migration begun by hand, without the hold, is not one to go on with.
nrcli "$o" cluster setslot "$slot" importing "$cid" >/dev/null
nrcli "$c" cluster setslot "$slot" migrating "$aid" >/dev/null
rc=0
out=$(jobctl cluster move --to "$o" 2>&1) || rc=$?
assert_eq 3 "$rc" "a move over a reshard by hand: exit code"
assert_contains "$out" "without jobctl cluster move's hold" "a reshard by hand refused"
nrcli "$o" cluster setslot "$slot" stable >/dev/null
nrcli "$c" cluster setslot "$slot" stable >/dev/null
# Interrupted after the hold, the slot's states and 5 keys.
nrcli "$c" hset '{jobd}:hold' to "$o" by test since "$(($(date +%s) * 1000))" node "$aid" >/dev/null
nrcli "$o" cluster setslot "$slot" importing "$cid" >/dev/null
nrcli "$c" cluster setslot "$slot" migrating "$aid" >/dev/null
mapfile -t some < <(nrcli "$c" cluster getkeysinslot "$slot" 5 | grep -vx '{jobd}:hold')
nrcli "$c" migrate "${o%:*}" "${o#*:}" "" 0 5000 keys "${some[@]}" >/dev/null
out=$(jobctl cluster move --to "$o" 2>&1) || fail "resuming the move to $o: $out"
echo "$out"
assert_contains "$out" "resuming a move under way" "the move resumed"
assert_eq "$o" "$(owner)" "the slot's owner after the resumed move"
assert_eq 0 "$(keys_elsewhere "$o")" "keys left elsewhere after the resumed move"
assert_eq 0 "$(nrcli "$o" exists '{jobd}:hold')" "the hold is gone after the resumed move"
out=$(jobctl fsck 2>&1) || fail "jobctl fsck after the resumed move: $out"
assert_contains "$out" "0 violations" "fsck after the resumed move"

# --- 5. a move cut off once the target took the slot, the source still marked

# By hand to B: hold, marks, every key, then SETSLOT NODE on B alone (as
# a jobctl killed right after it leaves them). The source keeps its
# MIGRATING mark (gossip does not clear it) and would answer ASK for
# every key it lacks: the move run again settles it and lets the calls go.
bid=$(nrcli "$b" cluster myid)
nrcli "$o" hset '{jobd}:hold' to "$b" by test since "$(($(date +%s) * 1000))" >/dev/null
nrcli "$b" cluster setslot "$slot" importing "$aid" >/dev/null
nrcli "$o" cluster setslot "$slot" migrating "$bid" >/dev/null
while mapfile -t some < <(nrcli "$o" cluster getkeysinslot "$slot" 1000 | grep .) &&
	[ ${#some[@]} -gt 0 ]; do
	nrcli "$o" migrate "${b%:*}" "${b#*:}" "" 0 5000 keys "${some[@]}" >/dev/null
done
nrcli "$b" cluster setslot "$slot" node "$bid" >/dev/null
at_b() { [ "$(owner)" = "$b" ]; }
wait_for 20 "the slot at $b by gossip" at_b
marked() { nrcli "$o" cluster nodes | grep myself | grep -qF "[$slot->-"; }
marked || fail "the source lost its MIGRATING mark by itself: the case is not tested"
out=$(jobctl cluster move --to "$b" 2>&1) || fail "settling the move to $b: $out"
echo "$out"
assert_contains "$out" "releasing the calls held" "the cut-off move settled"
! marked || fail "$o still marks slot $slot as migrating"
assert_eq 0 "$(nrcli "$b" exists '{jobd}:hold')" "the hold is gone after settling"
n=$(jobctl submit side --payload '{"sleep_ms": 1}')
[ "$n" -gt 0 ] || fail "no job made after settling"
out=$(jobctl fsck 2>&1) || fail "jobctl fsck after settling: $out"
assert_contains "$out" "0 violations" "fsck after settling"

# --- 6. what a move refuses, and the stale marks it clears (the slot at B)

# A move from B under way is not undone by a move --to B.
nrcli "$o" cluster setslot "$slot" importing "$bid" >/dev/null
nrcli "$b" cluster setslot "$slot" migrating "$aid" >/dev/null
rc=0
out=$(jobctl cluster move --to "$b" 2>&1) || rc=$?
assert_eq 3 "$rc" "a move --to the owner while it migrates: exit code"
assert_contains "$out" "a move is under way" "a move under way not undone"
nrcli "$b" cluster setslot "$slot" stable >/dev/null
nrcli "$o" cluster setslot "$slot" stable >/dev/null
# The calls held by another move (to C): a move to A is refused.
nrcli "$b" hset '{jobd}:hold' to "$c" by other since "$(($(date +%s) * 1000))" node "$cid" >/dev/null
rc=0
out=$(jobctl cluster move --to "$o" 2>&1) || rc=$?
assert_eq 3 "$rc" "a move under another move's hold: exit code"
assert_contains "$out" "held by another move, to $c by other" "another move's hold named"
out=$(jobctl cluster move --to "$b" 2>&1) || fail "letting the other move's hold go: $out"
assert_eq 0 "$(nrcli "$b" exists '{jobd}:hold')" "the other move's hold let go"
# Another deployment's key in the slot (a prefix with the same tag):
# not held by this move, so refused.
nrcli "$b" set 'app:{jobd}:x' 1 >/dev/null
rc=0
out=$(jobctl cluster move --to "$o" 2>&1) || rc=$?
assert_eq 3 "$rc" "a move over another deployment's keys: exit code"
assert_contains "$out" "another deployment's" "another deployment's keys named"
nrcli "$b" del 'app:{jobd}:x' >/dev/null
# A stale IMPORTING mark on a third node (C) is cleared by the move.
nrcli "$c" cluster setslot "$slot" importing "$bid" >/dev/null
out=$(jobctl cluster move --to "$o" 2>&1) || fail "a move past a stale mark: $out"
assert_eq "$o" "$(owner)" "the slot's owner after the last move"
! nrcli "$c" cluster nodes | grep myself | grep -qF "[$slot-<-" ||
	fail "$c still marks slot $slot as importing"
assert_eq 0 "$(keys_elsewhere "$o")" "keys left elsewhere after the last move"

# --- 7. over TLS: nodes on TLS ports only, tls-cluster yes -------------------

tdir=$work/t
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$tdir' >/dev/null 2>&1"
# shellcheck disable=SC2046
tseed=$("$top_srcdir/scripts/redis" cluster-start "$tdir" --tls --replicas 0 \
	$(module_args) 2>"$work/tls-start.err") || {
	cat "$work/tls-start.err" >&2
	skip_or_fail "cannot start a TLS redis cluster (logs: $tdir/node*/redis.log)"
}
mapfile -t tnodes <"$tdir/nodes"
cat >"$work/tls.conf" <<CONF
[redis]
address = $tseed
cluster_seeds = $(grep -vx "${tseed#rediss://}" "$tdir/nodes" | sed 's|^|rediss://|' | paste -sd, -)
prefix = {jobd}
tls_ca = $tdir/tls/ca.pem
tls_cert = $tdir/tls/client.pem
tls_key = $tdir/tls/client.key
CONF
export JOBD_CONFIG=$work/tls.conf
jobctl submit noop --count 100 >/dev/null
tto=${tnodes[1]}
[ "rediss://$tto" != "$tseed" ] || tto=${tnodes[2]}
out=$(jobctl cluster move --to "$tto" 2>&1) || fail "a move over TLS: $out"
echo "$out"
assert_contains "$out" "slot $slot is at $tto" "the move over TLS"
out=$(jobctl fsck 2>&1) || fail "jobctl fsck after the move over TLS: $out"
assert_contains "$out" "100 jobs checked, 0 violations" "fsck after the move over TLS"
echo "PASS"
