#!/usr/bin/env bash
# jobd's Redis module against the Lua functions (docs/redis-module.md).
#
# tests/drivers/module_driver does the same work on a Redis without the module
# and on one with it: every answer must be the same, and so must every
# key, field, value, score and expiry left behind (times, durations and
# waiting-time buckets masked). With the module, a replica that does not
# load it follows the primary to the same DEBUG DIGEST, and so does a
# server without it that loads the primary's AOF: the module replicates
# the effects of its writes (docs/redis-module.md, "Replication and
# persistence").
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli
so=$top_builddir/src/store/module/jobd.so
drv=$top_builddir/tests/drivers/module_driver
[ -f "$so" ] || fail "missing $so (make builds it)"
[ -x "$drv" ] || fail "missing $drv (make check builds it)"

work=$(mktemp -d /tmp/jobd-module.XXXXXX)
on_exit "rm -rf '$work'"
cat >"$work/jobd.conf" <<'EOF'
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
retry_backoff = 10ms
EOF
# appendfsync always: the AOF holds every write once its reply came.
printf 'enable-debug-command local\nappendonly yes\nappendfsync always\n' \
	>"$work/primary.conf"
printf 'enable-debug-command local\nappendonly yes\n' >"$work/replay.conf"

# A closed minute of statistics not yet rolled up into its hour: the
# first statistics write of the run rolls it up.
now=$(date +%s%3N)
old=$((now - now % 60000 - 180000))

# Every key, one line per field, member or entry, sorted; what depends
# on timing masked.
dump() {
	local s=$1 k t ttl
	redis-cli -s "$s" --scan | sort | while read -r k; do
		t=$(redis-cli -s "$s" type "$k")
		case $t in
		hash) redis-cli -s "$s" hgetall "$k" | paste - - | sort ;;
		# Sorted: members whose scores are times (masked below) tie or
		# not from one run to the next; each line keeps its score.
		zset) redis-cli -s "$s" zrange "$k" 0 -1 withscores | paste - - | sort ;;
		set) redis-cli -s "$s" smembers "$k" | sort ;;
		list) redis-cli -s "$s" lrange "$k" 0 -1 ;;
		string) redis-cli -s "$s" get "$k" ;;
		stream) redis-cli -s "$s" xrange "$k" - + |
			grep -v -E '^[0-9]+-[0-9]+$' | paste - - ;;
		*) echo "type $t" ;;
		esac | sed "s|^|$k |"
		ttl=$(redis-cli -s "$s" pttl "$k")
		[ "$ttl" -gt 0 ] && ttl=yes
		echo "$k ttl $ttl"
	done | sed -E 's/[0-9]{13}/T/g
		s/^(jobd:job:[0-9]+ (run_ms|avg_ms|vruntime))\t.*/\1\tN/
		/^jobd:stats:([mh]:T|total) h[0-9]+/d
		s/^(jobd:stats:([mh]:T|total) wait[^\t]*)\t.*/\1\tN/
		s/ in [0-9]+ms/ in Nms/'
}

# agree WHAT DIR: the replica of the primary in DIR, once it caught up,
# and a server without the module that replays the primary's AOF hold
# what the primary holds (DEBUG DIGEST).
agree() {
	local what=$1 p=$2 sock=$2/redis.sock mo ro i

	for i in $(seq 100); do
		mo=$(redis-cli -s "$sock" info replication | tr -d '\r' |
			awk -F: '$1 == "master_repl_offset" { print $2 }')
		ro=$(redis-cli -s "$p-replica/redis.sock" info replication |
			tr -d '\r' | awk -F: '$1 == "slave_repl_offset" { print $2 }')
		[ "$mo" = "$ro" ] && break
		[ "$i" = 100 ] && fail "$what: the replica did not catch up"
		sleep 0.1
	done
	assert_eq "$(redis-cli -s "$sock" debug digest)" \
		"$(redis-cli -s "$p-replica/redis.sock" debug digest)" \
		"$what: the replica's digest"
	rm -rf "$p-replay"
	mkdir -p "$p-replay"
	cp -r "$p/appendonlydir" "$p-replay/"
	"$top_srcdir/scripts/redis" start "$p-replay" \
		--conf "$work/replay.conf" >/dev/null ||
		fail "cannot start a server on the $what AOF"
	on_exit "'$top_srcdir/scripts/redis' stop '$p-replay'"
	assert_eq "$(redis-cli -s "$sock" debug digest)" \
		"$(redis-cli -s "$p-replay/redis.sock" debug digest)" \
		"$what: the digest of its AOF replayed"
	"$top_srcdir/scripts/redis" stop "$p-replay" >/dev/null
}

# run MODE: the driver on a fresh primary (with the module or not) and
# a replica without it; leaves MODE.out, MODE.dump and MODE.stats.
run() {
	local mode=$1 p=$work/$1 addr sock i
	local load=()

	[ "$mode" = module ] && load=(--module "$so")
	addr=$("$top_srcdir/scripts/redis" start "$p" --tcp \
		--conf "$work/primary.conf" "${load[@]}") ||
		fail "cannot start the $mode primary"
	on_exit "'$top_srcdir/scripts/redis' stop '$p'"
	sock=$p/redis.sock
	printf 'enable-debug-command local\nreplicaof %s %s\n' \
		"${addr%:*}" "${addr#*:}" >"$work/replica.conf"
	"$top_srcdir/scripts/redis" start "$p-replica" \
		--conf "$work/replica.conf" >/dev/null ||
		fail "cannot start the $mode replica"
	on_exit "'$top_srcdir/scripts/redis' stop '$p-replica'"
	for i in $(seq 100); do
		redis-cli -s "$p-replica/redis.sock" info replication |
			grep -q master_link_status:up && break
		[ "$i" = 100 ] && fail "$mode: the replica did not connect"
		sleep 0.1
	done
	redis-cli -s "$sock" zadd jobd:stats:minutes "$old" "$old" >/dev/null
	redis-cli -s "$sock" hset "jobd:stats:m:$old" created 5 \
		'created|noop' 5 wait_min 3 wait_max 9 >/dev/null
	redis-cli -s "$sock" set jobd:stats:rolled $((old - 60000)) >/dev/null
	# Both runs inside one minute each, so both make the same windows.
	while [ $(($(date +%s) % 60)) -ge 50 ]; do sleep 1; done
	JOBD_REDIS=$sock JOBD_CONFIG=$work/jobd.conf "$drv" >"$work/$mode.out" ||
		fail "$mode: module_driver failed"
	agree "$mode" "$p"
	dump "$sock" >"$work/$mode.dump"
	redis-cli -s "$sock" info commandstats | tr -d '\r' |
		grep -o -E '^cmdstat_(jobd\.[a-z]+|fcall):calls=[0-9]+' >"$work/$mode.stats" || true
}

run lua
run module

# Each module command ran; without the module none did.
grep -q '^cmdstat_jobd\.' "$work/lua.stats" &&
	fail "module commands ran without the module"
for c in create claim finish; do
	grep -q "^cmdstat_jobd\.$c:" "$work/module.stats" ||
		fail "JOBD.${c^^} never ran: $(cat "$work/module.stats")"
done
# And did the work themselves: a module that handed every call to Lua
# would leave the same keys. The driver's roots-only creates, claims of
# lone roots and plain finishes (at least 10 calls) need no Lua at all.
fcalls() { sed -n 's/^cmdstat_fcall:calls=//p' "$1"; }
lua_calls=$(fcalls "$work/lua.stats")
mod_calls=$(fcalls "$work/module.stats")
[ "${mod_calls:-0}" -le $((lua_calls - 10)) ] ||
	fail "the module did too little itself: $mod_calls Lua calls with it, $lua_calls without"
# The Lua functions took their part too: children, the root with a
# queue, the retry.
grep -q "^claim 60/2: " "$work/module.out" || fail "driver output"

diff -u "$work/lua.out" "$work/module.out" >&2 ||
	fail "the module answered differently from the Lua functions"
diff -u "$work/lua.dump" "$work/module.dump" >&2 ||
	fail "the module left Redis different from the Lua functions"
echo "module: $(wc -l <"$work/module.out") calls answered alike," \
	"$(wc -l <"$work/module.dump") lines of keys alike"

# JOBD.FINISH takes its runs as one list: a malformed list is refused
# whole, with nothing written, even after a well-formed run.
sock=$work/module/redis.sock
digest=$(redis-cli -s "$sock" debug digest)
for list in '1 1 100 0 0:' '1 1 100 0 5:ab\n' 'x 1 100 0 0:\n' \
	'1 1 abc 0 0:\n' '1 1 100 0 -1:\n' '1  1 100 0 0:\n' \
	'1 1 100 0 0:\n2 1 100 0 0:x'; do
	out=$(printf "$list" | redis-cli -s "$sock" -x jobd.finish jobd 60000)
	assert_eq "ERR jobd.finish: bad arguments" "$out" "list '$list'"
done
assert_eq "$digest" "$(redis-cli -s "$sock" debug digest)" \
	"Redis after the refused lists"
assert_eq fenced "$(printf '999999 1 100 0 0:\n' |
	redis-cli -s "$sock" -x jobd.finish jobd 60000)" "an unknown job"

# JOBD.CREATE takes its jobs as one list: likewise refused whole.
pol=(sys 1 1 0 0 0)
job='0:3:sys0:0:1:02:{}0:0:\n'
for list in "${job%??}" "${job}0:" '0:3:sys0:0:1:09:{}0:0:\n' "$job$job" \
	"x${job#0}" "$job\n"; do
	out=$(printf "$list" | redis-cli -s "$sock" -x jobd.create jobd 60000 \
		test 1 1 "${pol[@]}")
	assert_eq "ERR jobd.create: bad arguments" "$out" "list '$list'"
done
assert_eq "$digest" "$(redis-cli -s "$sock" debug digest)" \
	"Redis after the refused lists"
# The same list, well formed, makes the job.
out=$(printf "$job" | redis-cli -s "$sock" -x jobd.create \
	jobd 60000 test 1 1 "${pol[@]}")
case $out in
[1-9]*) assert_eq sys "$(redis-cli -s "$sock" hget "jobd:job:$out" type)" \
	"the job made from a list" ;;
*) fail "a well-formed list: $out" ;;
esac
# A job with a run time (the eighth field) is create.lua's: nothing written.
digest=$(redis-cli -s "$sock" debug digest)
out=$(printf '0:3:sys0:0:1:02:{}0:6:+60000\n' | redis-cli -s "$sock" -x \
	jobd.create jobd 60000 test 1 1 "${pol[@]}")
assert_eq lua "$out" "a job with a run time"
assert_eq "$digest" "$(redis-cli -s "$sock" debug digest)" \
	"Redis after a batch left to create.lua"
# A policy count whose size overflows is refused, not read past argv.
out=$(printf "$job" | redis-cli -s "$sock" -x jobd.create jobd 60000 test 1 \
	3074457345618258603 sys 1)
assert_eq "ERR jobd.create: bad arguments" "$out" "an overflowing policy count"
# A key whose mapping (of the earlier layout, read until the backfill
# moved it) is not a job id counts as none: the job is made and mapped.
redis-cli -s "$sock" set jobd:key:k1 junk >/dev/null
out=$(printf '2:k13:sys0:0:1:02:{}0:0:\n' | redis-cli -s "$sock" -x \
	jobd.create jobd 60000 test 1 1 "${pol[@]}")
case $out in
[1-9]*) assert_eq k1 "$(redis-cli -s "$sock" hget "jobd:job:$out" key)" \
	"the job of a key whose mapping was junk" ;;
*) fail "a broken key mapping: $out" ;;
esac
again=$(printf '2:k13:sys0:0:1:02:{}0:0:\n' | redis-cli -s "$sock" -x \
	jobd.create jobd 60000 test 1 1 "${pol[@]}")
assert_eq "-$out" "$again" "the same key again"

# Long lists replicated in one command each: 8,500 roots in one
# JOBD.CREATE (their RPUSH), 4,200 of them claimed in one JOBD.CLAIM (the
# leases' ZADD of 8,400 values), then finished in one JOBD.FINISH; the
# replica and the AOF's replay still hold what the primary holds.
awk 'BEGIN { for (i = 0; i < 8500; i++) printf "0:3:sys0:0:1:02:{}0:0:\n" }' |
	redis-cli -s "$sock" -x jobd.create jobd 60000 test 8500 1 "${pol[@]}" \
	>"$work/big.ids"
assert_eq 8500 "$(grep -c -E '^[1-9][0-9]*$' "$work/big.ids")" "ids of the big create"
before=$(redis-cli -s "$sock" zcard jobd:leases)
# Each job claimed is 8 lines of the reply, its id first.
redis-cli -s "$sock" jobd.claim jobd 60000 big 600000 4200 0 1 >"$work/big.claimed"
assert_eq $((before + 4200)) "$(redis-cli -s "$sock" zcard jobd:leases)" \
	"the leases after the big claim"
awk 'NR % 8 == 1 { printf "%s 1 100 0 0:\n", $1 }' "$work/big.claimed" |
	redis-cli -s "$sock" -x jobd.finish jobd 60000 >"$work/big.finished"
assert_eq 4200 "$(grep -c '^finished$' "$work/big.finished")" "runs of the big finish"
agree "big lists" "$work/module"
