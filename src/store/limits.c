/*
 * store/limits: the per-type limits in the store (docs/job-types.md,
 * "Limits"): writing one configuration's into P:limits (limits.lua), and
 * reading where each limited type stands, for /metrics.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool limited(const struct jobd_type_conf *t)
{
	return t->concurrency > 0 || t->rate.per_ms > 0;
}

/*
 * A store across shards: each shard's claims read its own P:limits, so a
 * limit would hold per shard, not across the deployment, until the
 * escrow of docs/scaling.md ("Limits across shards") is built: refused
 * while a type has one; else every shard's limits are cleared.
 */
static int limits_write_shards(struct jobd_store *st, const char *instance,
			       bool *changed, char *by, size_t by_size)
{
	const struct jobd_conf *conf = st->conf;
	const char *named = NULL;

	jobd_conf_rdlock(conf);
	for (size_t i = 0; i < conf->types_count && !named; i++)
		if (limited(&conf->types[i]))
			named = conf->types[i].name;
	if (named)
		store_set_err(st,
			      "[type.%s]: per-type limits do not hold across "
			      "shards yet (docs/scaling.md, \"Shards\")",
			      named);
	jobd_conf_unlock(conf);
	if (named)
		return JOBD_STORE_ERR_INVALID;
	for (size_t k = 0; k < st->nsh; k++) {
		bool c;
		int rc = jobd_store_limits_write(st->sh[k], instance, &c, by,
						 by_size);

		if (rc < 0) {
			store_set_err(st, "%s: %s",
				      jobd_store_prefix(st->sh[k]),
				      jobd_store_errstr(st->sh[k]));
			return rc;
		}
		*changed = *changed || c;
	}
	return 0;
}

int jobd_store_limits_write(struct jobd_store *st, const char *instance,
			    bool *changed, char *by, size_t by_size)
{
	const struct jobd_conf *conf = st->conf;
	struct store_args a = { 0 };
	size_t n = 0;
	redisReply *r;

	*changed = false;
	if (by_size)
		by[0] = '\0';
	if (st->nsh)
		return limits_write_shards(st, instance, changed, by, by_size);
	store_args_add(&a, instance);
	jobd_conf_rdlock(conf);
	for (size_t i = 0; i < conf->types_count; i++)
		if (limited(&conf->types[i]))
			n++;
	store_args_addf(&a, "%zu", n);
	for (size_t i = 0; i < conf->types_count; i++) {
		const struct jobd_type_conf *t = &conf->types[i];

		if (!limited(t))
			continue;
		store_args_add(&a, t->name);
		store_args_addf(&a, "%d",
				t->concurrency > 0 ? t->concurrency : 0);
		store_args_addf(&a, "%lld",
				(long long)(t->rate.per_ms > 0 ? t->rate.n :
								 0));
		store_args_addf(&a, "%lld", (long long)t->rate.per_ms);
	}
	jobd_conf_unlock(conf);
	r = store_eval(st, S_LIMITS, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	*changed = store_reply_i64(r->element[0]) == 1;
	if (by_size && r->element[1]->type == REDIS_REPLY_STRING)
		snprintf(by, by_size, "%s", r->element[1]->str);
	freeReplyObject(r);
	return 0;
}

void jobd_store_limits_release(struct jobd_type_limit *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].type);
	free(l);
}

int jobd_store_limits(struct jobd_store *st, struct jobd_type_limit **out,
		      size_t *n)
{
	struct store_args a = { 0 };
	struct jobd_type_limit *l = NULL;
	redisReply *r;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	/* Across shards there are none (limits_write_shards). */
	if (st->nsh)
		return 0;
	r = store_eval(st, S_LIMITS_SHOW, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->elements)
		l = calloc(r->elements, sizeof(*l));
	for (size_t i = 0; l && i < r->elements; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 7 ||
		    !(l[k].type = store_dup_str(e->element[0])))
			continue;
		l[k].concurrency = store_reply_i64(e->element[1]);
		l[k].rate = store_reply_i64(e->element[2]);
		l[k].rate_ms = store_reply_i64(e->element[3]);
		l[k].running = store_reply_i64(e->element[4]);
		l[k].held = store_reply_i64(e->element[5]);
		l[k].started = store_reply_i64(e->element[6]);
		k++;
	}
	freeReplyObject(r);
	*out = l;
	*n = k;
	return 0;
}
