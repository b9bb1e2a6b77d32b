/*
 * cleanup: the "cleanup" system job, jobd's retention ([retention] jobs; its
 * keys: docs/redis-keys.md, "Housekeeping"). Finished and canceled root jobs
 * older than the retention are deleted with their whole tree, logs and keys,
 * and the log search index of the minutes before the retention with them;
 * statistics expire by themselves. It also builds the indexes that a store of
 * an earlier version lacks (jobd_store_backfill).
 */
#ifndef JOBD_SRC_HANDLERS_CLEANUP_H
#define JOBD_SRC_HANDLERS_CLEANUP_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/handler.h"

/* How often jobd schedules a cleanup job (ms). */
#define JOBD_CLEANUP_INTERVAL_MS 3600000

/*
 * Submits this interval's cleanup job (key "cleanup:INTERVAL_START"), so
 * any number of instances calling it create one job per interval; with
 * STARTING (jobd's first call) also the job "cleanup:backfill:r10" when the
 * store still lacks an index of this version. ST is borrowed. Returns 0
 * or a JOBD_STORE_ERR_* code.
 */
int jobd_cleanup_schedule(struct jobd_store *st, bool starting);

#endif
