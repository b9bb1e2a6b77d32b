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

/*
 * The children of a split (import's chunks, the parts of action and of
 * the chunked handlers), numbered from 0, created in batches by
 * jobd_ctx_spawn_many: one create call per batch where there was one per
 * child. The first batch is one child, and each next one twice the last
 * up to JOBD_STORE_BATCH, so the first children start at once, as when
 * each was spawned alone, and a long split still makes few calls. The
 * handler checkpoints after each batch (jobd_handlers_spawner_flush),
 * never for a child only held: a resume spawns the held ones again under
 * the same keys, and gets those that exist.
 */
struct jobd_handlers_spawner;

/*
 * A spawner whose next child is number NEXT (a resumed split's). WHAT
 * (borrowed for the spawner's life) names a child in a failure, before
 * its number: "import: cannot create chunk" gives "... chunk 3".
 */
struct jobd_handlers_spawner *jobd_handlers_spawner_new(int64_t next,
							const char *what);
void jobd_handlers_spawner_free(struct jobd_handlers_spawner *sp);

/*
 * Holds the next child: TYPE (borrowed until the next flush), KEY (copied)
 * and PAYLOAD (borrowed; its text is copied). True when the batch is
 * full: flush it before adding more.
 */
bool jobd_handlers_spawner_add(struct jobd_handlers_spawner *sp,
			       const char *type, const char *key,
			       const json_t *payload);

/* The number the next child added gets. */
int64_t jobd_handlers_spawner_next(const struct jobd_handlers_spawner *sp);

/*
 * Creates the held children in one call and lets them go, then saves CK
 * (borrowed) as the checkpoint: where the split goes on after them
 * (jobd_handlers_spawner_next is the number of its next child). None
 * held: nothing done. Returns JOBD_HANDLER_DONE when all exist,
 * JOBD_HANDLER_STOPPED when the attempt was abandoned, or fails the job
 * naming the first child the store refused (the reason is logged; those
 * after it may exist), and then CK is not saved.
 */
int jobd_handlers_spawner_flush(struct jobd_ctx *ctx,
				struct jobd_handlers_spawner *sp,
				const json_t *ck);

#endif
