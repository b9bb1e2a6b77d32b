#!/usr/bin/env bash
# tests/integration/cluster_suites.sh: shell tests written for one Redis,
# run as they are on a Redis Cluster (docs/scaling.md, "On a Redis
# Cluster today"). Each runs with JOBD_TEST_ON_CLUSTER=1 (tests/lib.sh):
# its start_redis starts a cluster of 3 primaries without replicas
# (scripts/redis cluster-start, with jobd's module on every node unless
# JOBD_TEST_MODULE=no), the prefix is {jobd}, so every key is in the
# slot of {jobd} on one primary, jobd and jobctl are given another
# primary's address (they find the owner in the slot map), and rcli
# talks to the owner; when the test exits, a key on another node fails
# it (all that jobd writes belongs in the slot), and the cluster is
# stopped.
#
#   tests/fault/crash.sh            kill -9 of jobd running 100 jobs:
#                                   another instance finishes them all
#                                   after the leases expire, none twice
#                                   outside the kill window, no lease
#                                   left; SIGTERM hands running jobs
#                                   back; three instances share the work.
#   tests/integration/kafka.sh      Kafka ingestion (embedded and real
#                                   broker): a repeated message id makes
#                                   no second job, bad messages are dead
#                                   letters; kill -9 of the consumer
#                                   mid-stream, and the slot's primary
#                                   frozen for 17 s under load: every
#                                   message a job exactly once.
#   tests/integration/exec_tree.sh  nothing an exec handler starts
#                                   outlives it, a force stop or kill -9
#                                   of jobd.
#   tests/integration/limits.sh     per-type limits across two
#                                   instances: concurrency 2 never
#                                   exceeded, another type or root not
#                                   held up behind it, rate 3/2s, the
#                                   slots of a killed instance handed
#                                   back, jobctl fsck --repair.
#
# Fails when one of them fails. One that cannot run (exit 77: no kcat, no
# Kafka broker, no cluster) is reported as SKIP, and then this test skips
# too unless another failed: a part skipped is never a pass. With CI=true
# a missing service fails the test that needs it (tests/lib.sh), so it
# fails this one.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli

failed=() skipped=()
for t in tests/fault/crash.sh tests/integration/kafka.sh tests/integration/exec_tree.sh \
	tests/integration/limits.sh; do
	echo "# --- $t on a Redis Cluster"
	t0=$SECONDS
	rc=0
	JOBD_TEST_ON_CLUSTER=1 bash "$top_srcdir/$t" || rc=$?
	case $rc in
	0) result=PASS ;;
	77) result=SKIP skipped+=("$t") ;;
	*) result=FAIL failed+=("$t") ;;
	esac
	echo "# $result: $t on a Redis Cluster (exit $rc, $((SECONDS - t0)) s)"
done
if [ ${#failed[@]} -gt 0 ]; then
	fail "on a Redis Cluster: ${failed[*]} failed${skipped[*]:+; ${skipped[*]} skipped}"
fi
if [ ${#skipped[@]} -gt 0 ]; then
	echo "SKIP: on a Redis Cluster: ${skipped[*]} could not run" >&2
	exit 77
fi
echo "PASS: crash, Kafka ingestion, exec handler trees and limits on a Redis Cluster"
