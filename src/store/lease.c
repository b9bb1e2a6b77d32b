/*
 * store/lease: leases held in Redis: the embedded broker's address (one
 * instance hosts it) and the leader leases (the stats producer, cleanup).
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdio.h>

/* --- embedded broker -------------------------------------------------------- */

int jobd_store_broker_publish(struct jobd_store *st, const char *addr,
			      int64_t ttl_ms, char *current, size_t size)
{
	struct store_args a = { 0 };
	redisReply *r;
	int won;

	store_args_add(&a, addr);
	store_args_addf(&a, "%lld", (long long)ttl_ms);
	r = store_eval(st, S_BROKER_PUBLISH, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	won = store_reply_i64(r->element[0]) == 1;
	snprintf(current, size, "%.*s", (int)r->element[1]->len,
		 r->element[1]->str);
	freeReplyObject(r);
	return won;
}

int jobd_store_broker_release(struct jobd_store *st, const char *addr)
{
	struct store_args a = { 0 };
	redisReply *r;
	int rc;

	store_args_add(&a, addr);
	r = store_eval(st, S_BROKER_RELEASE, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	rc = (int)store_reply_i64(r);
	freeReplyObject(r);
	return rc;
}

/* --- leader leases ------------------------------------------------------------ */

int jobd_store_lease(struct jobd_store *st, const char *name,
		     const char *holder, int64_t ttl_ms)
{
	struct store_args a = { 0 };
	redisReply *r;
	int held;

	store_args_add(&a, name);
	store_args_add(&a, holder);
	store_args_addf(&a, "%lld", (long long)ttl_ms);
	r = store_eval(st, S_LEASE, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	held = store_reply_i64(r) == 1;
	freeReplyObject(r);
	return held;
}
