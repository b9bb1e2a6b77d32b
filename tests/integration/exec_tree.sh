#!/usr/bin/env bash
# exec_tree.sh: nothing an exec handler starts outlives it or jobd. The
# handler (tests/fixtures/handlers/tree.sh) starts a child with a grandchild and a
# daemon (double fork + setsid), all ignoring SIGTERM; within 1 s of
#   1. the handler exiting (job finished),
#   2. a force stop,
#   3. kill -9 of jobd,
# no process of its tree remains (docs/reliability.md, "Handlers that
# fork"). Runs on a Redis Cluster too (JOBD_TEST_ON_CLUSTER=1:
# tests/integration/cluster_suites.sh).
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need pgrep jq
need_jobd
start_redis
dir=$(mktemp -d "${TMPDIR:-/tmp}/jobd-tree.XXXXXX")
tag=t$$r$RANDOM
on_exit "pkill -9 -f 'jobd-tree-$tag' 2>/dev/null || true; rm -rf '$dir'"
cat > "$dir/jobd.conf" <<CONF
$(redis_conf)
[engine]
roles = work
workers = 2
lease = 2s
heartbeat = 200ms
[type.tree]
handler = exec
command = $top_srcdir/tests/fixtures/handlers/tree.sh $tag '$dir'
CONF
export JOBD_CONFIG=$dir/jobd.conf

start() {
	"$jobd_bin" 2>> "$dir/jobd.log" &
	jobd_pid=$!
	on_exit "kill -9 $jobd_pid 2>/dev/null || true"
}

# Processes of the tree (the handler itself too, before its exec).
tree_count() {
	pgrep -c -f "jobd-tree-$tag|tree\\.sh $tag" || true
}

field() { jobctl show "$1" --json | jq -r ".$2"; }

started() { [ -e "$dir/started.$1" ]; }
status_is() { [ "$(field "$1" status)" = "$2" ]; }
tree_gone() { [ "$(tree_count)" -eq 0 ]; }

# gone_within_1s WHAT: the tree is gone within 1 s of now.
gone_within_1s() {
	local i t0
	t0=$(date +%s%3N)
	for ((i = 0; i < 100; i++)); do
		if tree_gone; then
			echo "# $1: tree gone after $(($(date +%s%3N) - t0)) ms"
			return 0
		fi
		[ $(($(date +%s%3N) - t0)) -lt 1000 ] || break
		sleep 0.01
	done
	pgrep -a -f "jobd-tree-$tag|tree\\.sh $tag" >&2 || true
	fail "$1: $(tree_count) processes of the handler's tree still run 1 s later"
}

start

# 1. The handler exits and leaves its tree behind.
id=$(jobctl submit tree --payload '{"exit": true}')
wait_for 30 "status_is $id finished" status_is "$id" finished
[ "$(cat "$dir/started.$id")" -ge 3 ] ||
	fail "the handler's tree was not up before it exited: $(cat "$dir/started.$id") processes"
assert_eq 0 "$(jobctl show "$id" --json | jq -r .errors)" "the handler that left its tree succeeded"
gone_within_1s "handler exited"

# 2. Force stop: the stop (SIGTERM) is ignored, the force stop kills.
id=$(jobctl submit tree)
wait_for 30 "started $id" started "$id"
[ "$(tree_count)" -ge 4 ] || fail "the tree did not start: $(tree_count) processes"
# The reaper has a name of its own: "pkill jobd" means jobd alone.
assert_eq "$jobd_pid" "$(pgrep -x jobd -P $$ || true)" "the only jobd process of this test"
[ -n "$(pgrep -x jobd-reaper -P "$jobd_pid")" ] || fail "no process named jobd-reaper below jobd"
jobctl stop "$id" >/dev/null
wait_for 10 "status_is $id stopping" status_is "$id" stopping
sleep 0.5
[ "$(tree_count)" -ge 4 ] || fail "a stop ended the tree that ignores SIGTERM"
jobctl force-stop "$id" >/dev/null
gone_within_1s "force stop"
wait_for 10 "status_is $id stopped" status_is "$id" stopped

# 3. kill -9 of jobd in the middle of the handler.
id=$(jobctl submit tree)
wait_for 30 "started $id" started "$id"
[ "$(tree_count)" -ge 4 ] || fail "the tree did not start: $(tree_count) processes"
kill -9 "$jobd_pid"
gone_within_1s "kill -9 of jobd"
echo "exec_tree: handler exit, force stop and kill -9 of jobd left no process"
