/*
 * store/retention: deleting what [retention] says has expired (purge), and
 * building the indexes a store of an earlier version lacks (backfill).
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

int jobd_store_purge(struct jobd_store *st, int64_t cutoff_ms, size_t max,
		     size_t *deleted, bool *more)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_purge(st, cutoff_ms, max, deleted,
						more);
	*deleted = 0;
	*more = false;
	store_args_addf(&a, "%lld", (long long)cutoff_ms);
	store_args_addf(&a, "%zu", max ? max : 200);
	r = store_eval(st, S_PURGE, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		*deleted = (size_t)store_reply_i64(r->element[0]);
		*more = store_reply_i64(r->element[1]) == 1;
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_backfill(struct jobd_store *st, size_t max, size_t *indexed,
			size_t *converted, size_t *moved, bool *more)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_backfill(st, max, indexed, converted,
						   moved, more);
	*indexed = *converted = *moved = 0;
	*more = false;
	store_args_addf(&a, "%zu", max ? max : 500);
	r = store_eval(st, S_BACKFILL, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
		*more = store_reply_i64(r->element[0]) == 1;
		*indexed = (size_t)store_reply_i64(r->element[1]);
		*converted = (size_t)store_reply_i64(r->element[2]);
		*moved = (size_t)store_reply_i64(r->element[3]);
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_backfill_pending(struct jobd_store *st)
{
	const char *p = st->prefix;
	redisReply *r;
	int pending = 0;

	if (st->nsh)
		return jobd_store_sharded_backfill_pending(st);
	r = jobd_store_command(st, "HMGET %s:backfill ix ended endb logs keys",
			       p);

	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    strcmp(r->element[i]->str, "done") != 0)
			pending = 1;
	freeReplyObject(r);
	if (!pending)
		return 0;
	/* A store without a job yet has nothing of an earlier version. */
	r = jobd_store_command(st, "EXISTS %s:seq", p);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	pending = r->type != REDIS_REPLY_INTEGER || r->integer != 0;
	freeReplyObject(r);
	if (pending)
		return 1;
	r = jobd_store_command(
		st,
		"HSET %s:backfill ix done ended done endb done logs done "
		"keys done",
		p);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	return 0;
}
