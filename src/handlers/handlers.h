/*
 * handlers: the built-in job types over records and events
 * (docs/job-types.md): import, export, event, action, refactor and
 * relationship-update. Each is one file of src/handlers/; common.h holds
 * what they share.
 *
 * Every handler is written against handler.h and finds its Redis
 * connection, data_dir and listener/action/relation config through the
 * context (jobd_ctx_conf).
 */
#ifndef JOBD_SRC_HANDLERS_HANDLERS_H
#define JOBD_SRC_HANDLERS_HANDLERS_H

#include "engine/handler.h"

/*
 * Registers every handler below under its type name with
 * jobd_handler_register(). Call once before the worker pool starts;
 * calling again is harmless.
 */
void jobd_handlers_register_builtin(void);

/* CSV or NDJSON file -> collection, in chunk children. */
int jobd_handler_import(struct jobd_ctx *ctx);

/* Collection -> CSV or NDJSON file, streamed, written atomically. */
int jobd_handler_export(struct jobd_ctx *ctx);

/* A legacy-service event: its listeners in order, uninterruptibly each. */
int jobd_handler_event(struct jobd_ctx *ctx);

/* A configured action over records, in batch children. */
int jobd_handler_action(struct jobd_ctx *ctx);

/* System: rename or drop a field across a collection, in chunks. */
int jobd_handler_refactor(struct jobd_ctx *ctx);

/* System: copy changed labels into the records that reference them. */
int jobd_handler_relationship_update(struct jobd_ctx *ctx);

#endif
