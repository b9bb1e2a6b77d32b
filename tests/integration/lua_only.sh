#!/usr/bin/env bash
# The store's unit tests once more on a Redis without jobd's module: the
# Lua functions alone must do everything, as on a Redis that loads no
# modules (docs/redis-module.md). The other tests run with the module.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server
JOBD_TEST_MODULE=no "$top_builddir/tests/unit/check_store" ||
	fail "check_store without the module"
