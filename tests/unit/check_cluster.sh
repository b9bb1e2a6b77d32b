#!/usr/bin/env bash
# tests/unit/check_cluster.sh: runs the Check suite of the Redis Cluster
# client (tests/unit/check_cluster.c) against a real cluster of 3
# primaries with a replica each, started here with scripts/redis
# cluster-start and always stopped. With JOBD_TEST_CLUSTER_MODE=tls
# (tests/unit/check_cluster_tls.sh) the cluster is cluster-start --tls's;
# then a cluster of 3 primaries with a TLS and a clear port each
# (--tls --clear) runs the case "both-ports": a client of either scheme
# keeps to its own ports on every node.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli
tls=()
if [ "${JOBD_TEST_CLUSTER_MODE:-}" = tls ]; then
	need openssl
	case $(ldd "$(command -v redis-server)" 2>/dev/null) in
	*libssl*) ;;
	*) skip_or_fail "this redis-server has no TLS" ;;
	esac
	tls=(--tls)
fi
bin=$top_builddir/tests/unit/check_cluster
[ -x "$bin" ] || fail "missing $bin (make check builds it)"
# A unix socket path is limited to 107 bytes.
base=${TMPDIR:-/tmp}
[ ${#base} -le 60 ] || base=/tmp
work=$(mktemp -d "$base/jobd-cluster.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$work' >/dev/null 2>&1"
JOBD_TEST_CLUSTER=$("$top_srcdir/scripts/redis" cluster-start "$work" "${tls[@]}") ||
	skip_or_fail "cannot start a redis cluster (logs: $work/node*/redis.log)"
JOBD_TEST_CLUSTER_DIR=$work
export JOBD_TEST_CLUSTER JOBD_TEST_CLUSTER_DIR
"$bin"
[ ${#tls[@]} -gt 0 ] || exit 0

"$top_srcdir/scripts/redis" cluster-stop "$work" >/dev/null
both=$(mktemp -d "$base/jobd-cluster.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$both"
on_exit "'$top_srcdir/scripts/redis' cluster-stop '$both' >/dev/null 2>&1"
JOBD_TEST_CLUSTER=$("$top_srcdir/scripts/redis" cluster-start "$both" --tls --clear --replicas 0) ||
	fail "cannot start a redis cluster with both ports (logs: $both/node*/redis.log)"
JOBD_TEST_CLUSTER_CLEAR=$(cat "$both/clear-seed")
JOBD_TEST_CLUSTER_DIR=$both
export JOBD_TEST_CLUSTER_CLEAR
out=$(CK_RUN_CASE=both-ports "$bin" 2>&1) || fail "$out"
echo "$out"
# A case that is not there runs nothing and passes.
case $out in *"Checks: 1,"*) ;; *) fail "the case both-ports did not run" ;; esac
