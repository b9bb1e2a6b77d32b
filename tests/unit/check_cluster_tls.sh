#!/usr/bin/env bash
# tests/unit/check_cluster_tls.sh: the Check suite of the Redis Cluster
# client (tests/unit/check_cluster.c) against a cluster that speaks TLS
# only (scripts/redis cluster-start --tls: TLS ports, tls-cluster yes,
# tls-replication yes, client certificates required), with the refusals
# of a TLS cluster. tests/unit/check_cluster.sh does the work.
set -euo pipefail
JOBD_TEST_CLUSTER_MODE=tls exec bash \
	"${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/unit/check_cluster.sh"
