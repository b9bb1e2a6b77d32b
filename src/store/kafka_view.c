/*
 * store/kafka_view: what each instance publishes of itself: its Kafka
 * partitions for the monitor's Kafka view (docs/monitor.md, "Kafka
 * view"), and its workers for jobctl why (store/why.c).
 *
 * Each instance writes its view, a JSON object, to P:STEM:INSTANCE
 * (P:kafka:view:INSTANCE) with a TTL a few times its refresh, and its
 * name to a set (P:kafka:views); a reader takes the set's members, reads
 * their keys and drops the names whose key expired. So a dead instance
 * disappears once its TTL passes, without a clock shared by the
 * instances; one that stops deletes its view at once. Rejected: a SCAN
 * for P:kafka:view:*, which walks every job key of the store.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_KEY "kafka:view:"
#define KAFKA_SET "kafka:views"

int store_view_put(struct jobd_store *st, const char *stem, const char *set,
		   const char *instance, const char *json, int64_t ttl_ms)
{
	const char *p = st->prefix;
	redisReply *r;
	bool ok;

	r = jobd_store_command(st, "SET %s:%s%s %s PX %lld", p, stem, instance,
			       json, (long long)ttl_ms);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	ok = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	if (!ok)
		return JOBD_STORE_ERR_REDIS;
	r = jobd_store_command(st, "SADD %s:%s %s", p, set, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	ok = r->type == REDIS_REPLY_INTEGER;
	freeReplyObject(r);
	return ok ? 0 : JOBD_STORE_ERR_REDIS;
}

int store_view_drop(struct jobd_store *st, const char *stem, const char *set,
		    const char *instance)
{
	const char *p = st->prefix;
	redisReply *r;

	r = jobd_store_command(st, "DEL %s:%s%s", p, stem, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	r = jobd_store_command(st, "SREM %s:%s %s", p, set, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	return 0;
}

int store_views(struct jobd_store *st, const char *stem, const char *set,
		char ***views, size_t *n)
{
	const char *p = st->prefix;
	redisReply *names, *r;
	char **out = NULL;
	int rc = 0;

	*views = NULL;
	*n = 0;
	names = jobd_store_command(st, "SMEMBERS %s:%s", p, set);
	if (!names)
		return JOBD_STORE_ERR_REDIS;
	if (names->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(names);
		return JOBD_STORE_ERR_REDIS;
	}
	out = calloc(names->elements + 1, sizeof(*out));
	if (!out) {
		freeReplyObject(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < names->elements; i++) {
		const char *name = names->element[i]->str;

		r = jobd_store_command(st, "GET %s:%s%s", p, stem, name);
		if (!r) {
			rc = JOBD_STORE_ERR_REDIS;
			break;
		}
		if (r->type == REDIS_REPLY_STRING) {
			out[*n] = strdup(r->str);
			if (!out[*n]) {
				freeReplyObject(r);
				rc = -ENOMEM;
				break;
			}
			(*n)++;
		} else if (r->type == REDIS_REPLY_NIL) {
			/* expired: that instance is gone */
			freeReplyObject(r);
			r = jobd_store_command(st, "SREM %s:%s %s", p, set,
					       name);
			if (!r) {
				rc = JOBD_STORE_ERR_REDIS;
				break;
			}
		}
		freeReplyObject(r);
	}
	freeReplyObject(names);
	if (rc < 0) {
		jobd_store_kafka_views_free(out, *n);
		*n = 0;
		return rc;
	}
	*views = out;
	return 0;
}

int jobd_store_kafka_view_put(struct jobd_store *st, const char *instance,
			      const char *json, int64_t ttl_ms)
{
	return store_view_put(st, KAFKA_KEY, KAFKA_SET, instance, json, ttl_ms);
}

int jobd_store_kafka_view_drop(struct jobd_store *st, const char *instance)
{
	return store_view_drop(st, KAFKA_KEY, KAFKA_SET, instance);
}

int jobd_store_kafka_views(struct jobd_store *st, char ***views, size_t *n)
{
	return store_views(st, KAFKA_KEY, KAFKA_SET, views, n);
}

void jobd_store_kafka_views_free(char **views, size_t n)
{
	for (size_t i = 0; views && i < n; i++)
		free(views[i]);
	free(views);
}
