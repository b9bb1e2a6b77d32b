#!/usr/bin/env bash
# tests/unit/check_store_cluster.sh: the store's whole Check suite
# (tests/unit/check_store.c: the state machine's transitions, fairness
# between roots, idempotency keys, lost replies and connections,
# retention and purge, backfills, fsck, statistics, logs, listings)
# against a real Redis Cluster of 3 primaries, started here with
# scripts/redis cluster-start (no replicas: the suite checks the calls,
# not replication, which tests/integration/cluster_store.sh and
# tests/unit/check_cluster.sh fail over) and always stopped. jobd's
# module is loaded on every primary, unless JOBD_TEST_MODULE=no
# (tests/unit/check_store_cluster_lua.sh): then the Lua functions do
# everything. Each takes about 2 minutes, as long as on one Redis.
#
# The suite runs with the prefix {jobd}, as docs/scaling.md ("On a Redis
# Cluster today") says to deploy: every key in the slot of {jobd}. The
# store is given another primary than the slot's and must find the
# slot's from the cluster's map; the suite's own commands (redis-cli, to
# read and corrupt keys) go to the slot's primary, and each test starts
# with FLUSHALL there. One case is added on a cluster (the store works
# on the slot's primary, with the module exactly when it is loaded),
# and one left out (a create refused before anything is sent needs no
# Redis: shown by taking away the address the store would reconnect to,
# which on a cluster it does not use). The suite restarts no Redis and
# needs no second server or test clock, and the connection cases
# (CLIENT PAUSE, CLIENT KILL) hold on the slot's primary.
# At the end, every key on every node is in the slot of {jobd}.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli
bin=$top_builddir/tests/unit/check_store
[ -x "$bin" ] || fail "missing $bin (make check builds it)"
# A unix socket path is limited to 107 bytes.
base=${TMPDIR:-/tmp}
[ ${#base} -le 60 ] || base=/tmp
work=$(mktemp -d "$base/jobd-cluster.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$work' >/dev/null 2>&1"
module=$(module_args)
# shellcheck disable=SC2086 # module_args gives two words or none
JOBD_TEST_CLUSTER=$("$top_srcdir/scripts/redis" cluster-start "$work" --replicas 0 $module) ||
	skip_or_fail "cannot start a redis cluster (logs: $work/node*/redis.log)"
JOBD_TEST_CLUSTER_MODULE=yes
[ -n "$module" ] || JOBD_TEST_CLUSTER_MODULE=no
export JOBD_TEST_CLUSTER JOBD_TEST_CLUSTER_MODULE
echo "check_store on a cluster of 3 primaries, jobd's module: $JOBD_TEST_CLUSTER_MODULE"
"$bin" || fail "check_store on the cluster of $JOBD_TEST_CLUSTER"

slot=$(redis-cli -h "${JOBD_TEST_CLUSTER%:*}" -p "${JOBD_TEST_CLUSTER##*:}" \
	cluster keyslot '{jobd}') || fail "cannot ask $JOBD_TEST_CLUSTER for the slot of {jobd}"
while read -r node; do
	keys=$(redis-cli -h "${node%:*}" -p "${node##*:}" dbsize) &&
		in_slot=$(redis-cli -h "${node%:*}" -p "${node##*:}" \
			cluster countkeysinslot "$slot") ||
		fail "cannot count the keys of $node"
	[ "$keys" = "$in_slot" ] ||
		fail "$node holds $((keys - in_slot)) keys outside the slot $slot of {jobd}"
done <"$work/nodes"
echo "every key of the cluster is in the slot $slot of {jobd}"
