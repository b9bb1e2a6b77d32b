#!/usr/bin/env bash
# The differential test of jobd's Redis module (docs/redis-module.md, "One
# behaviour, two implementations").
#
# tests/drivers/module_twin_driver runs seeded random sequences of
# operations (creates with children, claims, finishes, failures, stops,
# resumes, force-stops, cancels, restarts, low priority, hand-backs, lease
# expiry, purges) through the store API against a Redis with the module
# and one without it. After each step the answers, the keyspace
# notifications and every key the step changed (value and expiry time)
# must be alike, and every 25 steps all keys; fsck checks both every 25
# steps and after a purge, and a replica of the module's Redis that does
# not load the module must hold what its primary holds. The servers run
# on a clock the driver moves (tests/drivers/fakeclock.c), so nothing is
# masked.
#
# By default 8 seeds of 1,500 steps, then seed 9 with a prefix that is
# shard 5 of 8; TWIN_SEED=S runs seed S alone (and once as the shard) and
# TWIN_STEPS=N makes N steps a seed, for a longer run:
#
#	cd build/dev && TWIN_SEED=7 TWIN_STEPS=200000 \
#		make check TESTS=tests/equivalence/module_twin.sh
#
# A difference prints the seed, the step, what differs and the steps that
# led there (in tests/equivalence/module_twin.log).
. "$top_srcdir/tests/lib.sh"

need redis-server redis-cli
so=$top_builddir/src/store/module/jobd.so
drv=$top_builddir/tests/drivers/module_twin_driver
clock_so=$top_builddir/tests/drivers/fakeclock.so
[ -f "$so" ] || fail "missing $so (make builds it)"
[ -x "$drv" ] || fail "missing $drv (make check builds it)"
[ -f "$clock_so" ] || fail "missing $clock_so (make check builds it)"

seeds=${TWIN_SEED:-1 2 3 4 5 6 7 8}
steps=${TWIN_STEPS:-1500}
for n in $seeds $steps; do
	case $n in
	'' | *[!0-9]*) fail "TWIN_SEED and TWIN_STEPS take whole numbers, not '$n'" ;;
	esac
done

work=$(mktemp -d /tmp/jobd-twin.XXXXXX)
on_exit "rm -rf '$work'"
cat >"$work/jobd.conf" <<'EOF'
[retention]
logs_max_entries = 25
stats = 10m
[type.sys]
handler = noop
system = yes
[type.fixed]
handler = noop
stoppable = no
restartable = yes
[type.flaky]
handler = noop
retries = 2
retry_backoff = 3s
[type.redo]
handler = noop
restartable = yes
retries = 1
retry_backoff = 500ms
[type.capped]
handler = noop
concurrency = 2
[type.paced]
handler = noop
rate = 2/5s
EOF
# On the driver's clock: replication syncs at once (not after 5 s that
# never pass) and never times out when the clock jumps hours ahead;
# jemalloc's thread would wait for a time that has passed, again and
# again, busy.
cat >"$work/redis.conf" <<'EOF'
enable-debug-command local
repl-diskless-sync-delay 0
repl-timeout 1000000000
jemalloc-bg-thread no
EOF

# The servers start on the driver's clock, and follow it from then on.
export JOBD_FAKECLOCK=$work/clock
"$drv" --clock "$JOBD_FAKECLOCK" --reset-clock ||
	fail "cannot make the clock file"
"$top_srcdir/scripts/redis" start "$work/lua" --conf "$work/redis.conf" \
	--preload "$clock_so" >/dev/null || fail "cannot start the Lua-only redis-server"
on_exit "'$top_srcdir/scripts/redis' stop '$work/lua'"
addr=$("$top_srcdir/scripts/redis" start "$work/module" --tcp \
	--conf "$work/redis.conf" --preload "$clock_so" --module "$so") ||
	fail "cannot start the module's redis-server"
on_exit "'$top_srcdir/scripts/redis' stop '$work/module'"
# Its replica, without the module: it must follow what the module
# replicates (docs/redis-module.md, "Replication and persistence").
{ cat "$work/redis.conf" && echo "replicaof ${addr%:*} ${addr#*:}"; } \
	>"$work/replica.conf"
"$top_srcdir/scripts/redis" start "$work/replica" --conf "$work/replica.conf" \
	--preload "$clock_so" >/dev/null || fail "cannot start the replica"
on_exit "'$top_srcdir/scripts/redis' stop '$work/replica'"
replica_up() {
	redis-cli -s "$work/replica/redis.sock" info replication |
		grep -q master_link_status:up
}
wait_for 10 "the replica to connect to the module's Redis" replica_up
# The clock reaches the servers: TIME answers the driver's epoch.
assert_eq 1767225600 "$(redis-cli -s "$work/lua/redis.sock" time | head -n 1)" \
	"the fake clock in redis"

twin() { # CONF SEED STEPS
	JOBD_CONFIG=$1 "$drv" --lua "$work/lua/redis.sock" \
		--module "$work/module/redis.sock" --clock "$JOBD_FAKECLOCK" \
		--replica "$work/replica/redis.sock" --seed "$2" --steps "$3"
}
for seed in $seeds; do
	twin "$work/jobd.conf" "$seed" "$steps" ||
		fail "seed $seed: the module and the Lua functions differ"
done
# Shard 5 of 8 (docs/scaling.md, "Shards"): ids 8 x SEQ + 5 and buckets of
# 4096 ids, alike in both.
{ printf '[redis]\nprefix = jobd:{5/8}\n'; cat "$work/jobd.conf"; } \
	>"$work/shard.conf"
seed=${TWIN_SEED:-9}
twin "$work/shard.conf" "$seed" "$steps" ||
	fail "seed $seed, prefix jobd:{5/8}: the module and the Lua functions differ"
for s in lua module; do
	ids=$(redis-cli -s "$work/$s/redis.sock" --scan --pattern 'jobd:{5/8}:job:*' |
		sed 's/.*://' | sort -n)
	[ -n "$ids" ] || fail "$s: no job of shard 5 of 8"
	for id in $ids; do
		[ $((id % 8)) = 5 ] || fail "$s: job $id in shard 5 of 8"
	done
done
