/*
 * handlers/chunks: work over a record collection in chunks (chunks.h):
 * the parent splits the ids into children, each child walks its range a
 * page at a time with checkpoints.
 */
#include "config.h"

#include "handlers/chunks.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/common.h"
#include "store/records.h"

int jobd_handlers_ids(struct jobd_ctx *ctx, struct jobd_store *st,
		      const char *coll, const char *after, const char *upto,
		      size_t limit, char ***ids, size_t *n, int64_t *backoff)
{
	int rc;

	while ((rc = jobd_records_ids(st, coll, after, upto, limit, ids, n)) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, backoff))
			return JOBD_HANDLERS_STOPPED;
	return rc;
}

/*
 * The next page of COLL's ids after AFTER up to UPTO (NULL: no end), at
 * most LIMIT, into *IDS and *N, a stop honoured first. True with a page;
 * false when the range is done (*RET JOBD_HANDLER_DONE) or the handler
 * must end with *RET (stopped, or the collection unreadable).
 */
static bool next_page(struct jobd_ctx *ctx, struct jobd_store *st,
		      const char *coll, const char *after, const char *upto,
		      size_t limit, char ***ids, size_t *n, int64_t *backoff,
		      int *ret)
{
	int rc;

	*ret = JOBD_HANDLER_DONE;
	if (jobd_ctx_stop_requested(ctx)) {
		*ret = JOBD_HANDLER_STOPPED;
		return false;
	}
	rc = jobd_handlers_ids(ctx, st, coll, after, upto, limit, ids, n,
			       backoff);
	if (rc == JOBD_HANDLERS_STOPPED)
		*ret = JOBD_HANDLER_STOPPED;
	else if (rc < 0)
		*ret = jobd_ctx_fail(ctx, "cannot read collection %s", coll);
	return rc == 0 && *n > 0;
}

/* Creates SP's held parts, if any, and checkpoints the split after them
 * (the next part starts after AFTER); returns as jobd_handlers_split. */
static int split_flush(struct jobd_ctx *ctx, struct jobd_handlers_spawner *sp,
		       int64_t token, const char *after)
{
	json_t *nck = json_pack("{s:I, s:I, s:s}", "token", (json_int_t)token,
				"part",
				(json_int_t)jobd_handlers_spawner_next(sp),
				"after", after);
	int rc = jobd_handlers_spawner_flush(ctx, sp, nck);

	json_decref(nck);
	return rc;
}

int jobd_handlers_split(struct jobd_ctx *ctx, struct jobd_store *st,
			const char *coll, int64_t chunk, const json_t *payload,
			int64_t *parts)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *child;
	struct jobd_handlers_spawner *sp;
	int64_t token, part, backoff = 0;
	char **ids = NULL, key[64], *after;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	token = ck ? jobd_handlers_int(ck, "token", 0) : jobd_ctx_attempt(ctx);
	part = jobd_handlers_int(ck, "part", 0);
	after = strdup(jobd_handlers_str(ck, "after", ""));
	if (!after)
		abort();
	json_decref(ck);
	sp = jobd_handlers_spawner_new(part, "cannot create part");
	while (next_page(ctx, st, coll, after, NULL, (size_t)chunk, &ids, &n,
			 &backoff, &ret)) {
		bool full;

		part = jobd_handlers_spawner_next(sp);
		child = json_deep_copy(payload);
		json_object_set_new(child, "part", json_integer(part));
		json_object_set_new(child, "after", json_string(after));
		json_object_set_new(child, "upto", json_string(ids[n - 1]));
		snprintf(key, sizeof(key), "p%" PRId64 "-%" PRId64, token,
			 part);
		full = jobd_handlers_spawner_add(sp, jobd_ctx_type(ctx), key,
						 child);
		json_decref(child);
		free(after);
		after = strdup(ids[n - 1]);
		if (!after)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		if (full && (rc = split_flush(ctx, sp, token, after)) !=
				    JOBD_HANDLER_DONE) {
			ret = rc;
			break;
		}
	}
	/* The parts held when the ids ran out, a stop came or the
	 * collection could not be read: made as they were one by one. */
	if (!jobd_ctx_abandoned(ctx) &&
	    (rc = split_flush(ctx, sp, token, after)) != JOBD_HANDLER_DONE &&
	    ret != JOBD_HANDLER_FAILED)
		ret = rc;
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	if (parts)
		*parts = jobd_handlers_spawner_next(sp);
	jobd_handlers_spawner_free(sp);
	jobd_records_ids_free(ids, n);
	free(after);
	return ret;
}

int jobd_handlers_walk(struct jobd_ctx *ctx, struct jobd_store *st,
		       const char *coll, const char *after, const char *upto,
		       int64_t expected, jobd_handlers_page_fn fn, void *arg)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *nck;
	int64_t done, backoff = 0;
	char **ids = NULL, *cur;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	cur = strdup(ck ? jobd_handlers_str(ck, "after", "") :
			  (after ? after : ""));
	done = jobd_handlers_int(ck, "done", 0);
	json_decref(ck);
	if (!cur)
		abort();
	while (next_page(ctx, st, coll, cur, upto, JOBD_HANDLERS_BATCH, &ids,
			 &n, &backoff, &ret)) {
		rc = fn(ctx, st, ids, n, arg);
		if (rc != 0) {
			ret = rc;
			break;
		}
		done += (int64_t)n;
		free(cur);
		cur = strdup(ids[n - 1]);
		if (!cur)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		nck = json_pack("{s:s, s:I}", "after", cur, "done",
				(json_int_t)done);
		jobd_handlers_save(ctx, nck);
		json_decref(nck);
		jobd_ctx_progress_of(ctx, done,
				     expected > done ? expected : done);
	}
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	jobd_records_ids_free(ids, n);
	free(cur);
	return ret;
}
