/*
 * handlers/relation: the trigger of the relationship-update system job,
 * called where records are written (import's collection sink, action).
 */
#ifndef JOBD_SRC_HANDLERS_RELATION_H
#define JOBD_SRC_HANDLERS_RELATION_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/handler.h"
#include "store/records.h"
#include "store/store.h"

/*
 * After records of COLL were replaced or updated: for every
 * [relation.NAME] whose source is COLL and whose label field changed from
 * OLDS[i] (the records before, NULL = did not exist: no change) to
 * NEWS[i], creates one system job "relationship-update" with the changes.
 * KEY_BASE (borrowed) makes its idempotency key, so a retried batch does
 * not create it twice. Redis errors are retried (false: stop requested).
 */
bool jobd_handlers_relations(struct jobd_ctx *ctx, struct jobd_store *st,
			     const char *coll, const struct jobd_record *olds,
			     const struct jobd_record *news, size_t n,
			     const char *key_base);

#endif
