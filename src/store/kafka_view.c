/*
 * store/kafka_view: what each consumer publishes of its Kafka partitions
 * for the monitor's Kafka view (docs/monitor.md, "Kafka view").
 *
 * Each instance writes its view, a JSON object, to P:kafka:view:INSTANCE
 * with a TTL a few times its refresh, and its name to the set
 * P:kafka:views; a reader takes the set's members, reads their keys and
 * drops the names whose key expired. So a dead instance disappears once
 * its TTL passes, without a clock shared by the instances; one that stops
 * deletes its view at once. Rejected: a
 * SCAN for P:kafka:view:*, which walks every job key of the store.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int jobd_store_kafka_view_put(struct jobd_store *st, const char *instance,
			      const char *json, int64_t ttl_ms)
{
	const char *p = st->conf->prefix;
	redisReply *r;
	bool ok;

	r = jobd_store_command(st, "SET %s:kafka:view:%s %s PX %lld", p,
			       instance, json, (long long)ttl_ms);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	ok = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	if (!ok)
		return JOBD_STORE_ERR_REDIS;
	r = jobd_store_command(st, "SADD %s:kafka:views %s", p, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	ok = r->type == REDIS_REPLY_INTEGER;
	freeReplyObject(r);
	return ok ? 0 : JOBD_STORE_ERR_REDIS;
}

int jobd_store_kafka_view_drop(struct jobd_store *st, const char *instance)
{
	const char *p = st->conf->prefix;
	redisReply *r;

	r = jobd_store_command(st, "DEL %s:kafka:view:%s", p, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	r = jobd_store_command(st, "SREM %s:kafka:views %s", p, instance);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	return 0;
}

int jobd_store_kafka_views(struct jobd_store *st, char ***views, size_t *n)
{
	const char *p = st->conf->prefix;
	redisReply *names, *r;
	char **out = NULL;
	int rc = 0;

	*views = NULL;
	*n = 0;
	names = jobd_store_command(st, "SMEMBERS %s:kafka:views", p);
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

		r = jobd_store_command(st, "GET %s:kafka:view:%s", p, name);
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
			r = jobd_store_command(st, "SREM %s:kafka:views %s", p,
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

void jobd_store_kafka_views_free(char **views, size_t n)
{
	for (size_t i = 0; views && i < n; i++)
		free(views[i]);
	free(views);
}
