/*
 * cleanup: the "cleanup" system job, jobd's retention (DESIGN section 4,
 * [retention] jobs). Finished and canceled root jobs older than the
 * retention are deleted with their whole tree, logs and keys; statistics
 * and the log search index expire by themselves.
 */
#ifndef JOBD_SRC_CLEANUP_H
#define JOBD_SRC_CLEANUP_H

#include <stdint.h>

#include "handler.h"

/* How often jobd schedules a cleanup job (ms). */
#define JOBD_CLEANUP_INTERVAL_MS 3600000

/*
 * The handler: purges in bounded batches until nothing is left, holding
 * the "cleanup" lease so that two cleanup jobs never overlap.
 */
int jobd_handler_cleanup(struct jobd_ctx *ctx);

/*
 * Submits this interval's cleanup job (key "cleanup:INTERVAL_START"), so
 * any number of instances calling it create one job per interval. ST is
 * borrowed. Returns 0 or a JOBD_STORE_ERR_* code.
 */
int jobd_cleanup_schedule(struct jobd_store *st);

#endif
