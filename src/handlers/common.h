/*
 * handlers/common: what every built-in handler uses: a Redis connection
 * per worker thread, retrying while Redis is away, the payload and the
 * checkpoint as JSON. Files in data_dir are datadir.h, work over a
 * collection in chunks chunks.h, the relationship-update trigger
 * relation.h.
 *
 * Internal to src/handlers/; the list of handlers that jobd registers is
 * builtin.h.
 */
#ifndef JOBD_SRC_HANDLERS_COMMON_H
#define JOBD_SRC_HANDLERS_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"
#include "engine/handler.h"
#include "store/records.h"
#include "store/store.h"

/* Records written or read per Redis round trip. */
#define JOBD_HANDLERS_BATCH 500

/*
 * The worker thread's store (jobd_ctx_store), waiting with backoff while
 * Redis cannot be connected to. NULL only when a stop or abandon came
 * meanwhile; then the job has failed with the reason (jobd_ctx_fail), so
 * "return JOBD_HANDLER_FAILED".
 */
struct jobd_store *jobd_handlers_store(struct jobd_ctx *ctx);

/*
 * After a JOBD_STORE_ERR_REDIS: logs, sleeps with backoff (*BACKOFF ms,
 * start at 0) and returns true to call again, or false when a stop or
 * abandon came meanwhile (return JOBD_HANDLER_STOPPED: the last
 * checkpoint is where a resume starts).
 */
bool jobd_handlers_retry(struct jobd_ctx *ctx, struct jobd_store *st,
			 int64_t *backoff);

/* JOBD_HANDLERS_STOPPED: the job was stopped while Redis was away. */
#define JOBD_HANDLERS_STOPPED 1

/* The payload as a JSON object (caller decrefs), or NULL: the job failed. */
json_t *jobd_handlers_payload(struct jobd_ctx *ctx, const char *what);

/* The checkpoint as a JSON object (caller decrefs), NULL when none. */
json_t *jobd_handlers_checkpoint(struct jobd_ctx *ctx);

/* Saves OBJ (borrowed) as the checkpoint. */
void jobd_handlers_save(struct jobd_ctx *ctx, const json_t *obj);

/* OBJ[KEY] as a string, DEF when absent or not a string. */
const char *jobd_handlers_str(const json_t *obj, const char *key,
			      const char *def);

/* OBJ[KEY] as an integer, DEF when absent or not a number. */
int64_t jobd_handlers_int(const json_t *obj, const char *key, int64_t def);

/* Spawns a child with a payload object (borrowed); jobd_ctx_spawn's codes. */
int jobd_handlers_spawn(struct jobd_ctx *ctx, const char *type, const char *key,
			const json_t *payload);

#endif
