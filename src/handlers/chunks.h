/*
 * handlers/chunks: work over a record collection in chunks, for the
 * handlers whose job is one parent and a child per range of ids (action,
 * refactor, relationship-update).
 */
#ifndef JOBD_SRC_HANDLERS_CHUNKS_H
#define JOBD_SRC_HANDLERS_CHUNKS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/handler.h"
#include "store/store.h"

/*
 * jobd_records_ids() retried with backoff while Redis is unreachable:
 * 0 with the page in *IDS and *N, a negative JOBD_STORE_ERR_* when the store
 * refused, or JOBD_HANDLERS_STOPPED when a stop or abandon came while
 * waiting (return JOBD_HANDLER_STOPPED then).
 */
int jobd_handlers_ids(struct jobd_ctx *ctx, struct jobd_store *st,
		      const char *coll, const char *after, const char *upto,
		      size_t limit, char ***ids, size_t *n, int64_t *backoff);

/*
 * The parent side: walks COLL's ids CHUNK at a time and spawns for each
 * chunk a child of the job's own type with PAYLOAD (borrowed) plus
 * "part", "after" (the id before the chunk, "" for the first) and "upto"
 * (its last id), in batches (handlers/common.h, the spawner).
 * Checkpoints after each batch; child keys carry a token
 * fixed at the first attempt (a restart makes fresh children). Returns a
 * handler result; *PARTS (may be NULL) = children spawned in all.
 */
int jobd_handlers_split(struct jobd_ctx *ctx, struct jobd_store *st,
			const char *coll, int64_t chunk, const json_t *payload,
			int64_t *parts);

/* Works on N ids of a page; returns 0, or a handler result to end with. */
typedef int (*jobd_handlers_page_fn)(struct jobd_ctx *ctx,
				     struct jobd_store *st, char **ids,
				     size_t n, void *arg);

/*
 * The child side: calls FN for the ids of COLL after AFTER up to UPTO
 * (NULL/"" = open ends), JOBD_HANDLERS_BATCH at a time, checkpointing the
 * last id done after each page and honouring a stop between pages. A
 * resumed job continues after its checkpoint. EXPECTED is the id count
 * for progress (0 = unknown). Returns a handler result.
 */
int jobd_handlers_walk(struct jobd_ctx *ctx, struct jobd_store *st,
		       const char *coll, const char *after, const char *upto,
		       int64_t expected, jobd_handlers_page_fn fn, void *arg);

#endif
