/*
 * store_int: for the files of the store layer only (store.c, records.c):
 * the Redis connection behind a struct jobd_store. Every other module uses
 * store.h, so hiredis stays inside the store layer (STYLE rule 1).
 */
#ifndef JOBD_SRC_STORE_STORE_INT_H
#define JOBD_SRC_STORE_STORE_INT_H

#include <hiredis/hiredis.h>

#include "store/store.h"

/*
 * Runs one command (hiredis format). Returns the reply (caller frees with
 * freeReplyObject) or NULL: then the connection was dropped (the next call
 * reconnects) and jobd_store_errstr() says why. An error reply is returned
 * as a reply.
 */
redisReply *jobd_store_command(struct jobd_store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The same with an argument vector (binary-safe; all borrowed). */
redisReply *jobd_store_command_argv(struct jobd_store *st, int argc,
				    const char **argv, const size_t *lens);

/* Sends N commands appended with redisAppendCommand... on the returned
 * context and reads their replies into REPLIES (caller frees each). */
redisContext *jobd_store_pipeline(struct jobd_store *st);
int jobd_store_pipeline_read(struct jobd_store *st, size_t n,
			     redisReply **replies);

/*
 * Adds one field of a statistics hash ("created", "created|noop",
 * "wait|noop_min", "h12") to minute M (counters add up, minima and maxima
 * combine, so several hashes can be read into one M); with ONLY set,
 * per-type fields of other types are skipped. The one parser of that
 * layout.
 */
void jobd_store_stats_field(struct jobd_stats_minute *m, const char *field,
			    int64_t v, const char *only);

/* The key prefix ("jobd"). */
const char *jobd_store_prefix(const struct jobd_store *st);

#endif
