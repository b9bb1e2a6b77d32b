#!/usr/bin/env bash
# tests/unit/check_store_cluster_lua.sh: the store's Check suite on a
# Redis Cluster of 3 primaries without jobd's module, so that the Lua
# functions do every transition there too, creates, claims and finishes
# included (the module mirrors those). tests/unit/check_store_cluster.sh
# does the work.
set -euo pipefail
JOBD_TEST_MODULE=no exec bash \
	"${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/unit/check_store_cluster.sh"
