# tests/lib.sh: sourced by the shell tests (bash) that make check runs.
#
#	. "$top_srcdir/tests/lib.sh"
#	start_redis
#	id=$(jobctl submit noop) || fail "submit failed"
#	assert_eq "pending" "$(rcli hget "$P:job:$id" status)" "new job state"
#
# make check exports top_srcdir and top_builddir; run by hand, both default
# to the repository root. Exit codes follow automake: 0 pass, 1 fail, 77 skip.
# Services are real processes, always stopped on exit (EXIT trap; INT and
# TERM exit through it). Register more cleanup with on_exit, not trap.
#
# JOBD_TEST_ON_CLUSTER=1 runs a test on a Redis Cluster instead of one
# Redis (tests/integration/cluster_suites.sh runs those that support it):
# start_redis starts 3 primaries, rcli talks to the one that owns the
# store's slot, and $P, the prefix of jobd's keys, is {jobd} (a hash tag:
# docs/scaling.md, "On a Redis Cluster today") instead of jobd; a key
# outside that slot fails the test at exit. A test that supports it
# names keys "$P:...", puts $(redis_conf) in every configuration it
# writes, and reaches the server only through rcli and redis_pid.
if [ "${JOBD_TEST_ON_CLUSTER:-}" = 1 ]; then
	P='{jobd}'
else
	P=jobd
fi

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

# Commands run at exit, last registered first.
jobd_test_cleanups=()

on_exit() {
	jobd_test_cleanups=("$*" "${jobd_test_cleanups[@]}")
}

run_cleanups() {
	local rc=$? cmd

	for cmd in "${jobd_test_cleanups[@]}"; do
		eval "$cmd" || true
	done
	jobd_test_cleanups=()
	# A check made by a cleanup failed a test that had passed.
	if [ "$rc" -eq 0 ] && [ -n "${jobd_test_failed_at_exit:-}" ]; then
		exit 1
	fi
	return "$rc"
}

trap run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# A needed service is missing: skip on a laptop, fail in CI.
skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $* (CI=true: a missing service fails CI)" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 77
}

# need CMD...: each command on PATH, or the test skips (fails in CI).
need() {
	local c
	for c; do
		command -v "$c" >/dev/null 2>&1 ||
			skip_or_fail "$c not found (run scripts/bootstrap)"
	done
}

# need_jobd: jobd_bin is the jobd make built (JOBD_BIN overrides it).
need_jobd() {
	jobd_bin=${JOBD_BIN:-$top_builddir/src/jobd}
	[ -x "$jobd_bin" ] || fail "missing $jobd_bin (make builds it)"
}

assert_eq() {
	[ "$1" = "$2" ] ||
		fail "${3:-assert_eq}: expected '$1', got '$2'"
}

assert_contains() {
	case $1 in
	*"$2"*) ;;
	*) fail "${3:-assert_contains}: '$2' not found in: $1" ;;
	esac
}

# poll SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds
# (returns 0) or SECONDS pass (returns 1).
poll() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds; fails
# naming WHAT after SECONDS.
wait_for() {
	poll "$1" "${@:3}" || fail "timed out after $1 s: $2"
}

# job_is ID JQ-EXPR: the expression is true of `jobctl show ID --json`.
job_is() {
	[ "$(jobctl show "$1" --json | jq -r "$2")" = true ]
}

# wait_job SECONDS ID JQ-EXPR: until the expression is true of the job;
# fails showing the job.
# assert_woken WHAT SUBMIT HGET WAIT: five jobs, each submitted at
# another moment of the second idle workers wait between looks for work
# (SUBMIT: a command that prints the job's id), each started within 250
# ms of its creation: without wake-ups some would wait. HGET KEY FIELD
# reads a field of a job's hash, WAIT SECONDS ID FILTER waits for it.
assert_woken() {
	local what=$1 submit=$2 hget=$3 waitf=$4 i id started created
	for i in 1 2 3 4 5; do
		id=$($submit) || fail "submit ($what)"
		$waitf 20 "$id" '.status == "finished"'
		started=$($hget "jobd:job:$id" started_at)
		created=$($hget "jobd:job:$id" created_at)
		[ $((started - created)) -lt 250 ] ||
			fail "$what: job $i started $((started - created)) ms after it was created: no wake-up?"
		sleep "0.$((i * 17 % 10))"
	done
}

wait_job() {
	poll "$1" job_is "$2" "$3" ||
		fail "job $2: '$3' still false after $1 s: $(jobctl show "$2" --json)"
}

# start_jobd NAME [DIR]: runs src/jobd -c DIR/NAME.conf in the background,
# its output appended to DIR/NAME.log (DIR: $work, or else $dir); its pid
# in jobd_pids[NAME]. JOBD_BIN runs another build of jobd.
declare -A jobd_pids
start_jobd() {
	local d=${2:-${work:-$dir}}
	"${JOBD_BIN:-$top_builddir/src/jobd}" -c "$d/$1.conf" >>"$d/$1.log" 2>&1 &
	jobd_pids[$1]=$!
	on_exit "kill_if KILL $! '$d/$1.conf'"
}

# kill_if SIGNAL PID TEXT: sends SIGNAL to PID only while its command line
# holds TEXT. A kill registered at start runs at exit, long after the
# process may have been stopped and waited for: on a busy machine pids
# wrap within minutes, and the same pid may be another's by then.
kill_if() {
	local cmd

	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$2/cmdline") || return 0
	case $cmd in
	*"$3"*) kill "-$1" "$2" 2>/dev/null ;;
	esac
	return 0
}

# stop_jobd NAME [any]: SIGTERM and wait; fails unless jobd exits 0
# (with "any", whatever it exits with).
stop_jobd() {
	local pid=${jobd_pids[$1]:?stop_jobd: no jobd named $1} rc=0
	unset "jobd_pids[$1]"
	kill -TERM "$pid" 2>/dev/null || [ "${2:-}" = any ] ||
		fail "jobd $1 died before SIGTERM (see its log)"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || [ "${2:-}" = any ] ||
		fail "jobd $1 exited with $rc at SIGTERM (see its log)"
}

# kill9_jobd NAME: kill -9, as a crash does.
kill9_jobd() {
	local pid=${jobd_pids[$1]:?kill9_jobd: no jobd named $1}
	unset "jobd_pids[$1]"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# The scripts/redis arguments that load jobd's Redis module (make builds
# it): every test runs with it unless JOBD_TEST_MODULE=no, so the module's
# paths are tested by all of them; tests/equivalence/module.sh compares it with the
# Lua functions alone. JOBD_TEST_MODULE_SO loads another build of it.
module_args() {
	local so=${JOBD_TEST_MODULE_SO:-$top_builddir/src/store/module/jobd.so}

	[ "${JOBD_TEST_MODULE:-yes}" = no ] || [ ! -f "$so" ] ||
		echo "--module $so"
}

# Starts a private redis-server (unix socket only, no persistence) in a
# fresh temp dir and exports JOBD_REDIS = its socket path. With
# JOBD_TEST_ON_CLUSTER=1, a Redis Cluster of 3 primaries without replicas
# (scripts/redis cluster-start, jobd's module on each node as module_args
# says) in that dir instead: JOBD_TEST_REDIS_OWNER is the primary that
# owns the slot of $P, and JOBD_REDIS (host:port) another primary, so
# that jobd and jobctl reach the owner through the cluster's slot map.
start_redis() {
	local base=${TMPDIR:-/tmp}

	command -v redis-server >/dev/null 2>&1 ||
		skip_or_fail "redis-server not found (run scripts/bootstrap)"
	# A unix socket path is limited to 107 bytes.
	[ ${#base} -le 60 ] || base=/tmp
	JOBD_TEST_REDIS_DIR=$(mktemp -d "$base/jobd-sh.XXXXXX") ||
		fail "cannot create a temp dir in $base"
	on_exit stop_redis
	if [ "${JOBD_TEST_ON_CLUSTER:-}" = 1 ]; then
		# shellcheck disable=SC2046
		"$top_srcdir/scripts/redis" cluster-start "$JOBD_TEST_REDIS_DIR" \
			--replicas 0 $(module_args) >/dev/null ||
			skip_or_fail "cannot start a redis cluster (logs: $JOBD_TEST_REDIS_DIR/node*/redis.log)"
		JOBD_TEST_REDIS_OWNER=$(cluster_owner "$JOBD_TEST_REDIS_DIR/nodes" "$P")
		[ -n "$JOBD_TEST_REDIS_OWNER" ] ||
			fail "no primary of the cluster in $JOBD_TEST_REDIS_DIR owns the slot of $P"
		JOBD_REDIS=$(grep -m 1 -vxF "$JOBD_TEST_REDIS_OWNER" "$JOBD_TEST_REDIS_DIR/nodes")
		echo "# on a Redis Cluster: address $JOBD_REDIS, slot of $P on $JOBD_TEST_REDIS_OWNER" >&2
		export JOBD_REDIS
		return
	fi
	# shellcheck disable=SC2046
	JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$JOBD_TEST_REDIS_DIR" $(module_args)) ||
		fail "cannot start redis-server (log: $JOBD_TEST_REDIS_DIR/redis.log)"
	export JOBD_REDIS
}

# On a cluster, stop_redis fails the test when a node other than the
# owner of the slot of $P holds a key: all that jobd and jobctl write
# belongs in that slot (a key without the tag would go elsewhere).
stop_redis() {
	local stray

	[ -n "${JOBD_TEST_REDIS_DIR:-}" ] || return 0
	if [ "${JOBD_TEST_ON_CLUSTER:-}" = 1 ]; then
		stray=$(cluster_strays)
		if [ -n "$stray" ]; then
			echo "FAIL: keys outside the slot of $P: $stray" >&2
			jobd_test_failed_at_exit=1
		fi
		"$top_srcdir/scripts/redis" cluster-stop "$JOBD_TEST_REDIS_DIR" || true
	else
		"$top_srcdir/scripts/redis" stop "$JOBD_TEST_REDIS_DIR" || true
	fi
	rm -rf "$JOBD_TEST_REDIS_DIR"
	JOBD_TEST_REDIS_DIR=
}

# cluster_strays: "HOST:PORT KEY..." (5 keys at most) for each node of
# the cluster of start_redis but the owner of the slot of $P that holds
# keys.
cluster_strays() {
	local n keys

	[ -f "$JOBD_TEST_REDIS_DIR/nodes" ] || return 0
	while read -r n; do
		[ "$n" != "${JOBD_TEST_REDIS_OWNER:-}" ] || continue
		keys=$(redis-cli -h "${n%:*}" -p "${n#*:}" --scan 2>/dev/null |
			sort | head -n 5 | paste -sd ' ' -) || true
		[ -z "$keys" ] || echo "$n $keys"
	done <"$JOBD_TEST_REDIS_DIR/nodes"
}

# nrcli HOST:PORT ARGS...: redis-cli on one node of a cluster.
nrcli() {
	local at=$1
	shift
	redis-cli -h "${at%:*}" -p "${at#*:}" "$@"
}

# cluster_owner NODES KEY: host:port of the primary that owns the slot
# of KEY, as the first node of the file NODES (host:port a line) that
# answers sees it; nothing while no primary does (during a failover).
cluster_owner() {
	local n

	# Each node that answers prints the slot, then the nodes it knows.
	while read -r n; do
		if redis-cli -h "${n%:*}" -p "${n#*:}" cluster keyslot "$2" 2>/dev/null &&
			redis-cli -h "${n%:*}" -p "${n#*:}" cluster nodes 2>/dev/null; then
			break
		fi
	done <"$1" | awk '
		NR == 1 { s = $0; next }
		$3 ~ /master/ && $3 !~ /fail/ && o == "" {
			for (i = 9; i <= NF; i++) {
				split($i, r, "-")
				if (r[2] == "") r[2] = r[1]
				if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0)
					o = $2
			}
		}
		END { sub(/@.*/, "", o); if (o != "") print o }'
}

# redis_pid: the pid of the redis-server that holds the store (with
# JOBD_TEST_ON_CLUSTER=1, the primary that owns the slot of $P).
redis_pid() {
	local d=$JOBD_TEST_REDIS_DIR

	if [ "${JOBD_TEST_ON_CLUSTER:-}" = 1 ]; then
		d=$(dirname "$(grep -lx "port ${JOBD_TEST_REDIS_OWNER#*:}" "$d"/node*/redis.conf)")
	fi
	cat "$d/redis.pid"
}

# redis_conf: the [redis] section of a configuration for the Redis of
# start_redis: its address and the prefix $P.
redis_conf() {
	printf '[redis]\naddress = %s\nprefix = %s\n' "$JOBD_REDIS" "$P"
}

# start_redis_test_clock DIR: a redis-server in DIR/redis with jobd's
# module and its test clock (src/store/module/testclock.c; the clock
# without jobd's commands when JOBD_TEST_MODULE=no, so that every
# transition runs in Lua); exports JOBD_REDIS. Move the clock with
# set_clock.
start_redis_test_clock() {
	local so=$top_builddir/src/store/module/jobd.so clock=test-clock

	[ -f "$so" ] || fail "missing $so (make builds it)"
	[ "${JOBD_TEST_MODULE:-yes}" = no ] && clock=test-clock-only
	echo "loadmodule $so $clock" >"$1/clock.conf"
	JOBD_REDIS=$("$top_srcdir/scripts/redis" start "$1/redis" --conf "$1/clock.conf") ||
		fail "cannot start redis-server with the test clock (log: $1/redis/redis.log)"
	on_exit "'$top_srcdir/scripts/redis' stop '$1/redis'"
	export JOBD_REDIS
}

# set_clock MS: the test clock jumps to MS (ms since the epoch) and runs
# on at the real pace from there.
set_clock() {
	rcli jobd.testclock "$1" >/dev/null || fail "JOBD.TESTCLOCK $1 refused"
}

jobctl() {
	"$top_builddir/src/jobctl" "$@"
}

# rcli ARGS...: redis-cli on the Redis of start_redis (on a cluster, the
# primary that owns the slot of $P, following redirections).
rcli() {
	if [ "${JOBD_TEST_ON_CLUSTER:-}" = 1 ]; then
		redis-cli -c -h "${JOBD_TEST_REDIS_OWNER%:*}" -p "${JOBD_TEST_REDIS_OWNER#*:}" "$@"
	else
		redis-cli -s "$JOBD_REDIS" "$@"
	fi
}

# key_id [JOBCTL_OPTIONS...] KEY: the id of the job the idempotency key
# KEY names (jobctl key), or nothing.
key_id() {
	local id
	id=$(jobctl key "$@" 2>/dev/null) || true
	[ "$id" = - ] || echo "$id"
}

# keys_missing FILE [JOBCTL_OPTIONS...]: how many of the idempotency keys
# in FILE (one a line) name no job.
keys_missing() {
	local f=$1
	shift
	[ -s "$f" ] || { echo 0; return; }
	xargs -d '\n' "$top_builddir/src/jobctl" "$@" key -- <"$f" |
		grep -c '^-$' || true
}

# side_type LOG: the [type.side] section of a jobd.conf, an exec handler
# (tests/fixtures/handlers/side.sh) that appends "ID ATTEMPT" to LOG as
# its side effect; side_jobs LOG: how many jobs had one; side_twice LOG:
# the ids of the jobs that had more than one.
side_type() {
	printf "[type.side]\nhandler = exec\ncommand = %s/tests/fixtures/handlers/side.sh '%s'\n" \
		"$top_srcdir" "$1"
}
side_jobs() {
	cut -d' ' -f1 "$1" | sort -u | wc -l
}
side_twice() {
	cut -d' ' -f1 "$1" | sort | uniq -d
}

# Prints the monitor's base URL ("http://127.0.0.1:8080/") from the
# "http: monitor on URL (...)" line of jobd's log LOG, waiting up to 10 s
# for it; fails the test without one.
monitor_url() {
	local url i

	for ((i = 0; i < 100; i++)); do
		url=$(sed -n 's|.*http: monitor on \(http://[^ ]*\).*|\1|p' "$1" | head -n 1)
		[ -n "$url" ] && echo "$url" && return 0
		sleep 0.1
	done
	fail "no monitor address in $1: $(cat "$1")"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the shared Kafka broker's address (scripts/test starts one). In a
# command substitution the skip only leaves the subshell, so write
# addr=$(kafka_address) || exit
kafka_address() {
	[ -n "${JOBD_TEST_KAFKA:-}" ] ||
		skip_or_fail "no Kafka broker: JOBD_TEST_KAFKA is not set (scripts/test starts one)"
	echo "$JOBD_TEST_KAFKA"
}

# The consume role alone: tests/drivers/kafka_driver (JOBD_KAFKA_DRIVER overrides).
# start_kafka_driver NAME DIR ARGS...: runs it with ARGS in the background,
# its output appended to DIR/NAME.out and DIR/NAME.err, its pid in
# $pid_NAME (NAME is a shell name); killed at exit.
start_kafka_driver() {
	local name=$1 dir=$2 bin=${JOBD_KAFKA_DRIVER:-$top_builddir/tests/drivers/kafka_driver}
	shift 2
	[ -x "$bin" ] || fail "missing $bin (make check builds it)"
	"$bin" "$@" >>"$dir/$name.out" 2>>"$dir/$name.err" &
	eval "pid_$name=$!"
	on_exit "kill_if KILL $! '$bin'"
}

# stop_kafka_driver NAME DIR: SIGTERM, waits; fails when it did not exit 0.
stop_kafka_driver() {
	local pid
	eval "pid=\$pid_$1"
	kill -TERM "$pid"
	wait "$pid" || fail "driver $1 exited with $? (see $2/$1.err)"
}

kill9_kafka_driver() {
	local pid
	eval "pid=\$pid_$1"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
}

# Prints the embedded broker's address once its Redis key is there (10 s
# at most). In a command substitution the failure only leaves the
# subshell, so write broker=$(embedded_broker) || exit
embedded_broker() {
	local addr
	for _ in $(seq 100); do
		addr=$(rcli get "$P:broker")
		[ -n "$addr" ] && break
		sleep 0.1
	done
	[ -n "$addr" ] || fail "embedded broker key not published"
	echo "$addr"
}

# real_broker DIR: sets broker to a real Kafka broker's address:
# $JOBD_TEST_KAFKA (scripts/test starts one), else one started here in DIR
# with scripts/kafka and stopped at exit; skips (fails in CI) without.
real_broker() {
	if [ -n "${JOBD_TEST_KAFKA:-}" ]; then
		broker=$JOBD_TEST_KAFKA
		return
	fi
	broker=$("$top_srcdir/scripts/kafka" start "$1" 2>"$1.log") ||
		skip_or_fail "cannot start a Kafka broker (scripts/kafka, log $1.log)"
	on_exit "'$top_srcdir/scripts/kafka' stop '$1'"
}

# running PID: the process exists and has not exited (a zombie, exited
# but not yet waited for, has).
running() {
	local stat

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) } # the name in parentheses may hold spaces
	[ "${stat%% *}" != Z ]
}

exited() {
	! running "$1"
}

# scripts/run printed its export line, or will not any more.
run_ready() {
	grep -q '^export ' "$run_out" || exited "$run_pid"
}

# start_run DIR [ARGS...]: scripts/run on this build (JOBD_RUN_BUILD, so
# it builds nothing), in a session of its own as a terminal starts it:
# its pid is also its process group's and its session's. Waits until it
# printed its export line. Sets run_pid, run_out (its output, in DIR),
# run_export (the line), run_state (its temp dir) and run_redis_pid.
# Stopped at exit unless stop_run did.
start_run() {
	local dir=$1
	shift
	run_out=$dir/run.out
	# A background command of a script starts with SIGINT ignored, which
	# a shell cannot undo: Python resets it, as a terminal's shell would.
	JOBD_RUN_BUILD=$top_builddir python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' "$top_srcdir/scripts/run" "$@" >"$run_out" 2>&1 &
	run_pid=$!
	on_exit "kill -TERM -- -$run_pid 2>/dev/null; wait $run_pid 2>/dev/null"
	poll 60 run_ready || fail "scripts/run printed no export line in 60 s: $(cat "$run_out")"
	running "$run_pid" || fail "scripts/run exited: $(cat "$run_out")"
	run_export=$(grep '^export ' "$run_out")
	run_state=$(sed -n 's|^jobd is running (log: \(.*\)/jobd.log).$|\1|p' "$run_out")
	[ -d "$run_state" ] || fail "scripts/run names no temp dir: $(cat "$run_out")"
	run_redis_pid=$(cat "$run_state/redis/redis.pid") || fail "no redis.pid in $run_state/redis"
	# Should scripts/run fail to clean up, the test still does.
	on_exit "'$top_srcdir/scripts/redis' stop '$run_state/redis' >/dev/null 2>&1; rm -rf '$run_state'"
}

# stop_run SIGNAL: sends SIGNAL to scripts/run's process group, as Ctrl-C
# (INT) or a supervisor (TERM) does; waits for it (30 s at most) and sets
# run_rc to its exit status.
stop_run() {
	kill "-$1" -- "-$run_pid" || fail "cannot signal scripts/run's group $run_pid"
	wait_for 30 "scripts/run to exit after SIG$1" exited "$run_pid"
	run_rc=0
	wait "$run_pid" || run_rc=$?
}

# What src/jobctl.c accepts, read from the source, for the tests that
# check the manuals and the completion against it. jobctl_commands: one
# command a line (main()'s dispatch and its ops[]). jobctl_options: "CMD
# OPTION" a line, without "--"; CMD is "jobctl" for main()'s own, and
# cmd_op's --off belongs to low-priority alone.
jobctl_commands() {
	awk '
	/^int main\(/ { inmain = 1 }
	inmain && /strcmp\(cmd, "[a-z-]+"\) == 0/ {
		match($0, /"[a-z-]+"/); print substr($0, RSTART + 1, RLENGTH - 2)
	}
	inmain && /ops\[\] = \{/ { inops = 1 }
	inops {
		s = $0
		while (match(s, /"[a-z-]+"/)) {
			print substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
		}
	}
	inops && /\};/ { inops = 0 }
	' "$top_srcdir/src/jobctl.c" | sort -u
}

jobctl_options() {
	awk '
	/^static int cmd_[a-z_]+\(/ {
		match($0, /cmd_[a-z_]+/); fn = substr($0, RSTART + 4, RLENGTH - 4)
		gsub(/_/, "-", fn); if (fn == "op") fn = "low-priority"
	}
	/^int main\(/ { fn = "jobctl" }
	fn && /\{ "[a-z-]+", (no|required|optional)_argument/ {
		match($0, /"[a-z-]+"/); print fn, substr($0, RSTART + 1, RLENGTH - 2)
	}
	' "$top_srcdir/src/jobctl.c"
}
