#!/usr/bin/env bash
# tests/fault/soak.sh: three jobd instances under a steady mixed load, one of
# them killed with kill -9 every 20 s (issue 8). Two minutes in make
# check; SOAK_SECONDS=1800 tests/fault/soak.sh is the 30-minute soak.
#
# Instances: a, b and c, each with roles consume and work (4 workers,
# lease 2 s), joined to the embedded broker of a fourth jobd with only
# the stats role. The broker keeps its topics in memory and dies with its
# process: in one of the three it would lose, at each kill, the messages
# not yet consumed (by design, docs/reliability.md; nothing to test), and
# its stored messages would count in that instance's RSS. a is the RSS
# witness and is never killed. Every KILL_EVERY (20) s the next of b and
# c, in turn, is killed with kill -9 and started again at once under the
# same name (as a service manager would), so a kill lands every 20 s and
# each of b and c dies every 40 s.
#
# Load, once a second: eight events (a listener runs for each), an import
# of a 20-row CSV (4 chunk children) or an export, every other second an
# action over the imported collection (4 batch children), every fifth
# second an export without an id (its key is its offset), through Kafka
# with kcat; two exec jobs with a counted side effect
# (tests/fixtures/handlers/side.sh) and every other second a noop parent with 4
# children, through jobctl; every sixth second a running tree is stopped,
# and resumed or canceled (in turn) three seconds later.
#
# At the end, with the kills over: sentinels (one message per partition,
# after all others) show every message was read; then every message id
# has exactly one job, the messages without an id one key each, no two
# jobs share a key; every job is finished or canceled; no side effect
# happened more times than its job had attempts (twice only after an
# attempt cut short by a kill); `jobctl fsck` reports 0 violations; the
# minutes published on jobs.stats so far are consecutive, each once.
#
# Figures, in one line: jobs per second (jobs finished over the time from
# the first load to the last job's end), the longest wait (created_at to
# started_at, from the job hashes, jobs of trees we stopped left out: a
# child created under a stopped parent waits for the resume), and RSS
# growth. RSS is measured in a build without sanitizers (ASan's shadow
# memory and quarantine make it meaningless): $JOBD_SOAK_BUILD if set,
# else one built here with -O2 in build/soak (out of tree, as bench/run
# builds build/bench). RSS growth is that of a, the one process that
# lives through the whole run and takes its share of the load and of the
# jobs the killed instances hand back (and holds no broker): the median VmRSS over the 10 s
# after warm-up (a quarter of the run, at most 5 minutes) against the
# median over the last 10 s of load. It must stay within 10 %. b and c
# live 40 s at a time, too short for a leak to show; their growth from
# 10 s after each start to just before each kill is printed, not judged.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

readonly SOAK=${SOAK_SECONDS:-120} KILL_EVERY=20 RSS_LIMIT=10
readonly WARMUP=$((SOAK / 4 < 300 ? SOAK / 4 : 300))
[ "$SOAK" -ge 60 ] || fail "SOAK_SECONDS must be at least 60"

need redis-server kcat jq

work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-soak.XXXXXX")
[ -n "${JOBD_TEST_KEEP:-}" ] || on_exit "rm -rf '$work'"

# --- the build without sanitizers ---------------------------------------------

if [ -n "${JOBD_SOAK_BUILD:-}" ]; then
	build=$JOBD_SOAK_BUILD
else
	build=$top_srcdir/build/soak
	# A read-only source tree (make distcheck): a build of this run only,
	# so that nothing is left in the build tree.
	mkdir -p "$build" 2>/dev/null || build=$work/build
	mkdir -p "$build"
	[ -x "$top_srcdir/configure" ] || fail "no $top_srcdir/configure (run autoreconf -fi)"
	(
		# Two runs at once share the build.
		flock 9
		cd "$build"
		if [ ! -f Makefile ] || [ "$top_srcdir/configure" -nt Makefile ]; then
			echo "# configuring a -O2 build without sanitizers in $build" >&2
			"$top_srcdir/configure" -q CFLAGS=-O2 >configure.log 2>&1 ||
				{ tail -n 20 configure.log; exit 1; }
		fi
		make -j2 src/jobd src/jobctl >make.log 2>&1 ||
			{ tail -n 20 make.log; exit 1; }
	) 9>"$build.lock" >&2 || fail "cannot build jobd in $build (see $build/make.log)"
fi
jobd_bin=$build/src/jobd
jobctl_bin=$build/src/jobctl
[ -x "$jobd_bin" ] && [ -x "$jobctl_bin" ] || fail "no jobd and jobctl in $build/src"
sanitized=no
if ldd "$jobd_bin" | grep -q -E 'libasan|libubsan'; then
	sanitized=yes
	echo "# $jobd_bin has sanitizers: RSS is printed but not judged" >&2
fi
jobctl() {
	"$jobctl_bin" "$@"
}

# --- services ------------------------------------------------------------------

start_redis
side=$work/side.log
: >"$side"
mkdir -p "$work/data"
{
	echo "id,name"
	for i in $(seq -w 1 20); do echo "p0$i,name $i"; done
} >"$work/data/in.csv"

# The session timeout is jobd's default (6000 ms), as in the other Kafka
# tests: the embedded broker's first group join waits about 3 s, and with
# 3000 ms a busy member may never finish joining (docs/kafka-messages.md).
for name in a b c; do
	cat >"$work/$name.conf" <<CONF
[engine]
roles = consume,work
instance = $name
workers = 4
lease = 2s
heartbeat = 200ms
data_dir = $work/data
[kafka]
kafka.heartbeat.interval.ms = 500
$(side_type "$side")
[type.import]
chunk_size = 5
[listener.soak]
service = crm
event = order.created
command = $top_srcdir/tests/fixtures/handlers/listener.sh '$work' soak
[action.touch]
command = $top_srcdir/tests/fixtures/handlers/action.sh '$work' '*7'
batch = 5
CONF
done
export JOBD_CONFIG=$work/a.conf

declare -A pid born
start() {
	"$jobd_bin" -c "$work/$1.conf" 2>>"$work/$1.log" &
	pid[$1]=$!
	born[$1]=$SECONDS
	on_exit "kill -9 $! 2>/dev/null || true"
}

rss_of() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

cat >"$work/broker.conf" <<CONF
[engine]
roles = stats
instance = broker
CONF
start broker
for _ in $(seq 1 100); do
	broker=$(rcli get jobd:broker 2>/dev/null || true)
	[ -n "$broker" ] && break
	sleep 0.1
done
[ -n "$broker" ] || fail "no embedded broker address in redis: $(cat "$work/broker.log")"
start a
start b
start c

# --- load ---------------------------------------------------------------------

: >"$work/ids"     # TOPIC:ID of every message with an id
: >"$work/stopped" # roots of the trees we stopped
noid=0
declare -a parents=() ops=()

# produce TOPIC FILE: the broker (a) never dies, so a failure is a failure.
produce() {
	[ -s "$2" ] || return 0
	kcat -b "$broker" -t "$1" -P -l "$2" || fail "kcat cannot produce to $1"
}

tick_load() {
	local t=$1 i kind p
	for i in 1 2 3 4 5 6 7 8; do
		echo "{\"id\":\"ev$t-$i\",\"service\":\"crm\",\"event\":\"order.created\",\"data\":{\"t\":$t}}"
		echo "jobs.events:ev$t-$i" >>"$work/ids"
	done >"$work/load.events"
	{
		if ((t % 2)); then
			echo "{\"id\":\"im$t\",\"type\":\"import\",\"payload\":{\"file\":\"in.csv\",\"collection\":\"soak\"}}"
		else
			echo "{\"id\":\"ex$t\",\"type\":\"export\",\"payload\":{\"collection\":\"soak\",\"file\":\"ex$t.csv\"}}"
		fi
		kind=$( ((t % 2)) && echo im || echo ex)
		echo "jobs.records:$kind$t" >>"$work/ids"
		if ((t % 5 == 0)); then
			echo "{\"type\":\"export\",\"payload\":{\"collection\":\"soak\",\"file\":\"noid$t.csv\"}}"
			noid=$((noid + 1))
		fi
	} >"$work/load.records"
	: >"$work/load.actions"
	if ((t % 2 == 0)); then
		echo "{\"id\":\"ac$t\",\"action\":\"touch\",\"payload\":{\"collection\":\"soak\"}}" >"$work/load.actions"
		echo "jobs.actions:ac$t" >>"$work/ids"
	fi
	produce jobs.events "$work/load.events"
	produce jobs.records "$work/load.records"
	produce jobs.actions "$work/load.actions"

	jobctl submit side --payload "{\"sleep_ms\": $((100 + RANDOM % 300))}" --count 2 >/dev/null ||
		fail "jobctl submit side failed"
	if ((t % 2 == 0)); then
		p=$(jobctl submit noop --payload '{"steps": 10, "sleep_ms": 250, "children": 4, "child_payload": {"steps": 10, "sleep_ms": 250}}') ||
			fail "jobctl submit noop failed"
		parents+=("$p")
	fi
	# Stop a tree submitted 2 s ago (it runs now); resume or cancel it 3 s later.
	if ((t % 6 == 0)) && [ "${#parents[@]}" -ge 2 ]; then
		p=${parents[-2]}
		if jobctl stop "$p" >/dev/null 2>&1; then
			echo "$p" >>"$work/stopped"
			ops+=("$((t + 3)) $( ((t % 12)) && echo resume || echo cancel) $p")
		fi
	fi
	local due=() op
	for op in "${ops[@]}"; do
		set -- $op
		if [ "$1" -le "$t" ]; then
			# refused while a descendant is still stopping: try again
			jobctl "$2" "$3" >/dev/null 2>&1 || due+=("$((t + 1)) $2 $3")
		else
			due+=("$op")
		fi
	done
	ops=("${due[@]}")
}

# --- run ------------------------------------------------------------------------

declare -a rss_a=() lifetimes=()
declare -A rss10=()
victims=(b c)
kills=0
t0=$SECONDS
next_kill=$((t0 + KILL_EVERY))
t=0
echo "# soak: $SOAK s, kill -9 every $KILL_EVERY s, warm-up $WARMUP s, jobd from $build"
# The last kill is due at the end of the load.
while [ $((SECONDS - t0)) -lt "$SOAK" ] || [ "$kills" -lt $((SOAK / KILL_EVERY)) ]; do
	tick_start=$(date +%s%N)
	t=$((t + 1))
	tick_load "$t"
	el=$((SECONDS - t0))
	rss_a+=("$el $(rss_of "${pid[a]}")")
	echo "$el ${rss_a[-1]#* } $(rss_of "${pid[b]}") $(rss_of "${pid[c]}")" >>"$work/rss.log"
	for v in b c; do
		# RSS of b and c 10 s after each start
		if [ $((SECONDS - born[$v])) -ge 10 ] && [ -z "${rss10[$v]:-}" ]; then
			rss10[$v]=$(rss_of "${pid[$v]}")
		fi
	done
	if [ "$SECONDS" -ge "$next_kill" ]; then
		v=${victims[$((kills % 2))]}
		kill -0 "${pid[$v]}" 2>/dev/null || fail "instance $v died by itself (see $work/$v.log)"
		before=$(rss_of "${pid[$v]}")
		[ -n "${rss10[$v]:-}" ] && lifetimes+=("$v ${rss10[$v]} $before")
		rss10[$v]=
		kill -9 "${pid[$v]}"
		wait "${pid[$v]}" 2>/dev/null || true
		kills=$((kills + 1))
		echo "# $el s: kill -9 $v (kill $kills), restarted" >&2
		start "$v"
		next_kill=$((next_kill + KILL_EVERY))
	fi
	for v in a broker; do
		kill -0 "${pid[$v]}" 2>/dev/null || fail "jobd $v died (see $work/$v.log)"
	done
	# one tick a second, whatever the load took
	left=$((1000 - ($(date +%s%N) - tick_start) / 1000000))
	[ "$left" -le 0 ] || sleep "$(printf '0.%03d' "$left")"
done
load_s=$((SECONDS - t0))
assert_eq $((SOAK / KILL_EVERY)) "$kills" "kills during the soak"

# --- settle ---------------------------------------------------------------------

# Sentinels: one message with an id per partition of each topic, after
# all the others: once they are jobs, every message was read.
: >"$work/sentinels"
for topic in jobs.events jobs.records jobs.actions; do
	parts=$(kcat -b "$broker" -L -t "$topic" -J | jq '.topics[0].partitions | length')
	for ((i = 0; i < parts; i++)); do
		case $topic in
		jobs.events) msg="{\"id\":\"s$i\",\"service\":\"crm\",\"event\":\"sentinel\"}" ;;
		jobs.records) msg="{\"id\":\"s$i\",\"type\":\"export\",\"payload\":{\"collection\":\"soak\",\"file\":\"s$i.csv\"}}" ;;
		jobs.actions) msg="{\"id\":\"s$i\",\"action\":\"touch\",\"payload\":{\"ids\":[\"p001\"]}}" ;;
		esac
		printf '%s' "$msg" | kcat -b "$broker" -t "$topic" -p "$i" -P ||
			fail "kcat cannot produce to $topic/$i"
		echo "$topic:s$i" >>"$work/sentinels"
	done
done
cat "$work/sentinels" >>"$work/ids"

open_jobs() {
	rcli hmget jobd:count pending in_progress stopping stopped | tr -d '\r' |
		awk '{ s += $1 } END { print s + 0 }'
}
sentinels_in() {
	[ "$(keys_missing "$work/sentinels")" = 0 ]
}
deadline=$((SECONDS + 180))
until sentinels_in && [ "$(open_jobs)" -eq 0 ]; do
	[ "$SECONDS" -lt "$deadline" ] || {
		rcli hgetall jobd:count >&2
		for st in pending in_progress stopping stopped; do
			jobctl list --all --system --status "$st" --limit 20 --json |
				jq -c '.jobs[] | {id, type, status, parent, attempt, children}' >&2
		done
		fail "not settled 180 s after the load: $(open_jobs) jobs open"
	}
	# a stop that raced a kill, or a resume refused at the end of the load
	for op in "${ops[@]}"; do
		set -- $op
		jobctl "$2" "$3" >/dev/null 2>&1 || true
	done
	sleep 0.5
done
settle_s=$((SECONDS - t0 - load_s))

# --- checks -----------------------------------------------------------------------

# All jobs: id key type status attempt root created_at started_at.
rcli --scan --pattern 'jobd:job:*' | grep -E ':job:[0-9]+$' >"$work/jobkeys" || true
# Tab-separated: an absent field is an empty one (fields at their
# defaults are absent, docs/redis-keys.md). The id is the key's, and a
# root job stores no root: it is its own.
sed 's|^|HMGET |; s|$| key type status attempt root created_at started_at|' \
	"$work/jobkeys" | rcli | paste - - - - - - - |
	paste <(sed 's|.*:||' "$work/jobkeys") - |
	awk -F'\t' -v OFS='\t' '$6 == "" { $6 = $1 } 1' >"$work/jobs"
jobs=$(grep -c . "$work/jobs")
[ "$jobs" -gt 0 ] || fail "no jobs"

# Every message with an id: exactly one job; without: one key each.
missing=$(keys_missing "$work/ids")
assert_eq 0 "$missing" "message ids without a job"
assert_eq "$noid" "$(jobctl key --scan 'jobs.records/*' | wc -l)" \
	"keys of the messages without an id"
from_kafka=$(awk -F'\t' '$2 ~ /^jobs\.(events|records|actions)[:\/]/' "$work/jobs" | wc -l)
assert_eq $(($(grep -c . "$work/ids") + noid)) "$from_kafka" "jobs made from messages"
# (Kafka keys are global; a child's key is scoped to its parent.)
dups=$(awk -F'\t' '$2 ~ /^jobs\./ { print $2 }' "$work/jobs" | sort | uniq -d | head -n 5)
[ -z "$dups" ] || fail "keys held by two jobs: $dups"

# Every job terminal.
notdone=$(awk -F'\t' '$4 != "finished" && $4 != "canceled"' "$work/jobs" | head -n 5)
[ -z "$notdone" ] || fail "jobs not finished or canceled: $notdone"

# Side effects: each finished side job at least once; never more often
# than it had attempts (a second time only after a cut attempt).
awk -F'\t' 'NR == FNR { split($0, f, " "); n[f[1]]++; next }
	$3 == "side" {
		if ($4 == "finished" && !n[$1]) { print "job " $1 " finished without its side effect"; bad = 1 }
		if (n[$1] > $5 + 0) { print "job " $1 ": side effect " n[$1] " times in " $5 " attempts"; bad = 1 }
		if (n[$1] > 1) twice++
	}
	END { print "# side effects twice after a cut attempt: " twice + 0 > "/dev/stderr"; exit bad }' \
	"$side" "$work/jobs" || fail "side effects (log $side)"
sides=$(awk -F'\t' '$3 == "side"' "$work/jobs" | wc -l)

out=$(jobctl fsck) || fail "fsck found violations: $out"
assert_contains "$out" "0 violations" "fsck"

# The minutes published so far: consecutive, each once.
timeout 60 kcat -b "$broker" -t jobs.stats -C -e -q -f '%k\n' >"$work/minutes" ||
	fail "kcat cannot read jobs.stats"
minutes=$(grep -c . "$work/minutes" || true)
[ "$minutes" -ge $((load_s / 60 - 1)) ] ||
	fail "$minutes minutes on jobs.stats after $load_s s"
date -u -f "$work/minutes" +%s |
	awk 'NR > 1 && $1 != last + 60 { print "after " last ": " $1; bad = 1 }
	{ last = $1 } END { exit bad }' ||
	fail "minutes on jobs.stats not consecutive or repeated: $(tr '\n' ' ' <"$work/minutes")"

# --- figures --------------------------------------------------------------------

# Waits of jobs outside the trees we stopped (a child made under a stopped
# parent waits for the resume by design).
max_wait=$(awk -F'\t' 'NR == FNR { s[$1] = 1; next }
	!($6 in s) && $8 != "" && $7 != "" { w = $8 - $7; if (w > m) m = w }
	END { print m + 0 }' "$work/stopped" "$work/jobs")
# Jobs/s: every job ended within load + settle.
rate=$(awk -v n="$jobs" -v s="$((load_s + settle_s))" 'BEGIN { printf "%.1f", n / s }')
median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }'
}
base=$(printf '%s\n' "${rss_a[@]}" |
	awk -v a="$WARMUP" '$1 >= a && $1 < a + 10 { print $2 }' | median)
end=$(printf '%s\n' "${rss_a[@]}" |
	awk -v e="$load_s" '$1 >= e - 10 { print $2 }' | median)
[ "$base" -gt 0 ] || fail "no RSS sample of a after warm-up"
growth=$(awk -v b="$base" -v e="$end" 'BEGIN { printf "%.1f", (e - b) * 100 / b }')
lives=$(printf '%s\n' "${lifetimes[@]}" |
	awk '$2 > 0 { g = ($3 - $2) * 100 / $2; if (g > m) m = g; n++ }
	END { printf "%d lifetimes of b and c, at most %+.1f %%", n, m }')
echo "# RSS of a: ${base} kB after warm-up, ${end} kB at the end; $lives" >&2
summary="soak: $load_s s, 3 instances, $kills kills, $jobs jobs ($sides side effects), $rate jobs/s, max wait $max_wait ms, RSS growth $growth %"
[ "$sanitized" = no ] || summary="$summary (sanitizer build: RSS not judged)"
echo "$summary"

if [ "$sanitized" = no ]; then
	awk -v g="$growth" -v l="$RSS_LIMIT" 'BEGIN { exit !(g <= l) }' ||
		fail "RSS of a grew by $growth % (over $RSS_LIMIT %): $base kB -> $end kB"
fi

for n in a b c; do
	kill -TERM "${pid[$n]}" 2>/dev/null || true
done
for n in b c a broker; do
	[ "$n" != broker ] || kill -TERM "${pid[$n]}"
	rc=0
	wait "${pid[$n]}" || rc=$?
	[ "$rc" -eq 0 ] || fail "instance $n exited with $rc after SIGTERM (see $work/$n.log)"
done
if grep -l "ERROR: AddressSanitizer\|runtime error:" "$work"/*.log; then
	fail "sanitizer reports in the jobd logs"
fi
echo "PASS: soak"
