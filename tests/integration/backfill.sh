#!/usr/bin/env bash
# backfill.sh: a store written by an earlier version (retention's index
# as the sorted set P:ended, the log search index as per-minute sets of
# job ids, P:logmin:MINUTE, the listing indexes as sorted sets,
# P:ix:NAME) is brought up to this version's indexes by jobd itself when
# it starts: the cleanup job "cleanup:backfill:r10" moves the listing
# indexes into their buckets (listings read both meanwhile), moves
# P:ended into the buckets of retention's index and indexes every ended
# root, converts the log sets, the search across jobs then finds what
# was logged before, retention then deletes what expired, and fsck finds
# nothing to repair.
# Its idempotency keys (strings P:key:KEY and P:key:PARENT/KEY) are
# found while they wait, then moved into this version's layout (hash
# buckets per window, P:ckeys:PARENT): a duplicate of an old key makes no
# second job before or after the move.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-backfill.XXXXXX")
on_exit "rm -rf '$dir'"
cat >"$dir/jobd.conf" <<CONF
[engine]
roles = work
workers = 2
CONF
export JOBD_CONFIG=$dir/jobd.conf
jobd_pid=
start() {
	"$top_builddir/src/jobd" 2>>"$dir/jobd.log" &
	jobd_pid=$!
}
stop() {
	kill "$jobd_pid" 2>/dev/null || true
	wait "$jobd_pid" 2>/dev/null || true
	jobd_pid=
}
on_exit 'stop'
wait_finished() { # N
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(rcli hget jobd:count finished)" -ge "$1" ] 2>/dev/null && return 0
		sleep 0.1
	done
	fail "only $(rcli hget jobd:count finished) jobs finished, want $1"
}

# Some history under this version: 30 roots that ended, two with keys,
# one with a child with a key.
jobctl submit noop --count 30 >/dev/null
ka=$(jobctl submit noop --key old-a)
kb=$(jobctl submit noop --key old-b)
kp=$(jobctl submit noop --key old-parent)
kc=$(jobctl submit noop --key old-child --parent "$kp")
start
wait_finished 30
stop
# ... made into the store of an earlier version: retention's index as
# the sorted set P:ended of module revisions up to r9, no backfill done,
# no log index but a set for a minute 10 minutes ago of a job that
# logged then.
now=$(date +%s%3N)
m=$((now - now % 60000 - 600000))
old=$(jobctl submit noop)
rcli xadd "jobd:log:$old" "$((m + 1234))-0" level warn attempt 0 msg "logged by an earlier version" >/dev/null
rcli sadd "jobd:logmin:$m" "$old" >/dev/null
for k in $(rcli --scan --pattern 'jobd:logix:*'); do rcli del "$k" >/dev/null; done
rcli eval "for _, k in ipairs(redis.call('KEYS', 'jobd:endb:*')) do
		for _, id in ipairs(redis.call('SMEMBERS', k)) do
			redis.call('ZADD', 'jobd:ended',
				redis.call('HGET', 'jobd:job:' .. id, 'finished_at'), id)
		end
		redis.call('DEL', k)
	end
	redis.call('DEL', 'jobd:endd')" 0 >/dev/null
[ "$(rcli zcard jobd:ended)" -ge 30 ] || fail "P:ended of the earlier layout: $(rcli zcard jobd:ended)"
rcli del jobd:backfill >/dev/null
# The keys as an earlier version kept them: one string each.
for b in $(rcli --scan --pattern 'jobd:keys:*'); do
	rcli hgetall "$b" | paste - - | while read -r f v; do
		rcli set "jobd:key:$f" "$v" >/dev/null
	done
	rcli del "$b" >/dev/null
done
rcli hgetall "jobd:ckeys:$kp" | paste - - | while read -r f v; do
	rcli set "jobd:key:$kp/$f" "$v" >/dev/null
done
rcli del "jobd:ckeys:$kp" >/dev/null
assert_eq "$kc" "$(rcli get "jobd:key:$kp/old-child")" "the child's key, as it was"
rcli del "jobd:key:cleanup:backfill:r10" >/dev/null
listing() { jobctl list --all --system --json --limit 1000 |
	python3 -c 'import json,sys; print(" ".join(str(j["id"]) for j in json.load(sys.stdin)["jobs"]))'; }
before=$(listing)
# The listing indexes as the sorted sets of module revision r9 and before.
rcli eval "for _, k in ipairs(redis.call('KEYS', 'jobd:ixb:*')) do
		local n = string.match(k, '^jobd:ixb:(.*):%d+$')
		for _, id in ipairs(redis.call('SMEMBERS', k)) do
			redis.call('ZADD', 'jobd:ix:' .. n, id, id)
		end
		redis.call('DEL', k)
	end
	for _, k in ipairs(redis.call('KEYS', 'jobd:ixd:*')) do redis.call('DEL', k) end" 0 >/dev/null
[ -n "$(rcli --scan --pattern 'jobd:ix:*')" ] || fail "no index of the earlier layout"
assert_eq "$before" "$(listing)" "the listing read from the earlier indexes"
# Read where they are until the backfill moved them.
assert_eq "$ka" "$(jobctl submit noop --key old-a)" "a duplicate of an old key before the move"
assert_eq "$kc" "$(jobctl key --parent "$kp" old-child)" "an old child key before the move"
[ -z "$(jobctl logs --all --since 1h --grep 'earlier version')" ] ||
	fail "the earlier version's entry is indexed already"

# jobd starts: the backfill runs at once, not within the hour.
start
for ((i = 0; i < 600; i++)); do
	[ "$(rcli hget jobd:backfill keys)" = done ] && break
	sleep 0.1
done
assert_eq done "$(rcli hget jobd:backfill ix)" "P:backfill ix"
assert_eq done "$(rcli hget jobd:backfill ended)" "P:backfill ended"
assert_eq done "$(rcli hget jobd:backfill endb)" "P:backfill endb"
assert_eq 0 "$(rcli exists jobd:ended)" "P:ended moved"
assert_eq done "$(rcli hget jobd:backfill logs)" "P:backfill logs"
assert_eq "" "$(rcli --scan --pattern 'jobd:ix:*')" "the earlier indexes moved"
assert_eq done "$(rcli hget jobd:backfill keys)" "P:backfill keys"
id=$(jobctl key cleanup:backfill:r10) || fail "no cleanup:backfill:r10 job"
assert_eq 0 "$(rcli --scan --pattern 'jobd:key:*' | wc -l)" "the old keys moved"
assert_eq "$ka $kb" "$(jobctl key old-a old-b | tr '\n' ' ' | sed 's/ $//')" "the old root keys, moved"
assert_eq "$kc" "$(jobctl key --parent "$kp" old-child)" "the old child key, moved"
assert_eq "$kc" "$(rcli hget "jobd:ckeys:$kp" old-child)" "in its parent's hash"
jobs=$(rcli --scan --pattern 'jobd:job:*' | wc -l)
assert_eq "$ka" "$(jobctl submit noop --key old-a)" "a duplicate of an old key after the move"
assert_eq "$kc" "$(jobctl submit noop --key old-child --parent "$kp" 2>&1 || true)" \
	"a duplicate of an old child key after the move"
assert_eq "$jobs" "$(rcli --scan --pattern 'jobd:job:*' | wc -l)" "no job made by the duplicates"
# 30 noop roots, the old one, and the cleanup jobs, once all ran.
for ((i = 0; i < 600; i++)); do
	[ "$(rcli hget jobd:count pending)" = 0 ] && [ "$(rcli hget jobd:count in_progress)" = 0 ] && break
	sleep 0.1
done
ended=$(jobctl list --status finished --system --json --limit 1000 |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
[ "$ended" -ge 31 ] || fail "only $ended finished roots"
indexed=$(rcli eval "local n = 0
	for _, k in ipairs(redis.call('KEYS', 'jobd:endb:*')) do n = n + redis.call('SCARD', k) end
	return n" 0)
assert_eq "$ended" "$indexed" "every finished root in retention's index"
assert_eq 0 "$(rcli --scan --pattern 'jobd:logmin:*' | wc -l)" "the log sets converted"
found=$(jobctl logs --all --since 1h --grep 'earlier version')
assert_contains "$found" "[$old]" "the search finds the earlier version's entry"
case " $(listing) " in
*" $before ") ;;
*) fail "after the move, the listing $(listing) does not end with $before" ;;
esac
jobctl fsck >"$dir/fsck.out" || fail "fsck after the backfill: $(cat "$dir/fsck.out")"
stop

# Retention then deletes every root that ended (a cutoff in the future).
cat >>"$dir/jobd.conf" <<CONF
[retention]
jobs = 1ms
CONF
# Retention keeps whole minutes: the old job's end two minutes back (the
# repair moves its entry in retention's index).
at=$(rcli hget "jobd:job:$old" finished_at)
rcli hset "jobd:job:$old" finished_at $((at - 120000)) >/dev/null
jobctl fsck --repair >"$dir/fsck.out" 2>&1 || true
assert_contains "$(cat "$dir/fsck.out")" "$old" "fsck finds the old job's end moved"
jobctl fsck >"$dir/fsck.out" || fail "fsck after the repair: $(cat "$dir/fsck.out")"
# Without their keys, the cleanup jobs are submitted again.
for k in $(rcli --scan --pattern 'jobd:keys:*'); do rcli del "$k" >/dev/null; done
start
for ((i = 0; i < 600; i++)); do
	[ "$(rcli exists "jobd:job:$old")" = 0 ] && break
	sleep 0.1
done
assert_eq 0 "$(rcli exists "jobd:job:$old")" "retention deleted the old job"
# An instance without the work role marks a store without a job as
# this version's as it starts (its creates would otherwise also look for
# the earlier layout's keys until a worker starts), and leaves a store
# with jobs to the backfill.
consume_only() { # PREFIX
	printf '[redis]\nprefix = %s\n[engine]\nroles = consume\ninstance = c-%s\n' \
		"$1" "$1" >"$dir/c-$1.conf"
	start_jobd "c-$1" "$dir"
	wait_for 30 "consume-only jobd on prefix $1 running" grep -q ': running' "$dir/c-$1.log"
	stop_jobd "c-$1"
}
consume_only fresh
assert_eq "done done done done done" "$(rcli hmget fresh:backfill ix ended endb logs keys | paste -sd ' ')" \
	"a consume-only jobd marks a new store"
rcli set aged:seq 7 >/dev/null
consume_only aged
assert_eq 0 "$(rcli exists aged:backfill)" "a consume-only jobd leaves a store with jobs to the backfill"
echo "PASS: backfill"
