#!/usr/bin/env bash
# tests/integration/run_stop.sh: stopping scripts/run stops everything it
# started.
#
# scripts/run runs on this build (JOBD_RUN_BUILD) in a session of its own,
# as from a terminal, until its demo traffic flows and jobs have run;
# then it is stopped as people stop it: Ctrl-C (SIGINT to its process
# group), and in a second run SIGTERM to its process group (a supervisor's
# kill -- -PGID, which also ends the feeder's current jobctl). Each time it
# must exit with 130 or 143, leave no process of its session (jobd, the
# feeder, their children) and not its redis-server (a daemon in a session
# of its own), and remove its temp dir.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need python3 redis-server redis-cli
need_jobd
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-runstop.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"

# Processes left in session SID, one "pid command" a line.
session_left() {
	ps -e -o sid=,pid=,stat=,args= | awk -v sid="$1" '$1 == sid && $3 !~ /^Z/ { $1 = ""; print }'
}

session_empty() {
	[ -z "$(session_left "$1")" ]
}

# At least N demo jobs have finished.
finished_jobs() {
	local n

	n=$(redis-cli -s "$JOBD_REDIS" hget jobd:count finished)
	[ "${n:-0}" -ge "$1" ]
}

for sig in INT TERM; do
	mkdir -p "$work/$sig"
	start_run "$work/$sig"
	# Demo traffic flows: jobs were created, and some have finished.
	(
		eval "$run_export"
		poll 30 finished_jobs 5
	) || fail "SIG$sig: not 5 demo jobs finished in 30 s: $(cat "$run_state/jobd.log")"
	[ -n "$(session_left "$run_pid" | grep "src/jobd")" ] ||
		fail "SIG$sig: no jobd in scripts/run's session: $(session_left "$run_pid")"

	stop_run "$sig"
	case $sig in
	INT) assert_eq 130 "$run_rc" "scripts/run's exit status after Ctrl-C" ;;
	TERM) assert_eq 143 "$run_rc" "scripts/run's exit status after SIGTERM" ;;
	esac
	# The feeder's last jobctl or sleep may take a moment to go.
	poll 10 session_empty "$run_pid" ||
		fail "SIG$sig: scripts/run left processes behind: $(session_left "$run_pid")"
	running "$run_redis_pid" &&
		fail "SIG$sig: scripts/run left its redis-server (pid $run_redis_pid) running"
	[ ! -e "$run_state" ] || fail "SIG$sig: scripts/run left its temp dir $run_state"
done
echo "run_stop.sh: ok"
