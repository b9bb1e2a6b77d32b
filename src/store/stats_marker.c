/*
 * stats_marker: the stats producer's Redis state (see stats_marker.h).
 *
 * The marker moves through one small script that checks the lease in the
 * same step (a fenced write): a producer that paused past its lease and
 * woke up after a peer took over cannot drag the marker, and never moves
 * it back. The script is sent with EVAL: it runs once per published batch,
 * so caching its SHA would buy nothing.
 */
#include "config.h"

#include "store/stats_marker.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define MINUTE_MS 60000

static const char advance_lua[] =
	"-- KEYS: lease, marker; ARGV: holder, ms\n"
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')\n"
	"if cur < tonumber(ARGV[2]) then\n"
	"	redis.call('SET', KEYS[2], ARGV[2])\n"
	"end\n"
	"return 1\n";

static int64_t str_i64(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

/* An error reply is Redis's answer, but nothing we can use: retriable. */
static int bad_reply(redisReply *r)
{
	freeReplyObject(r);
	return JOBD_STORE_ERR_REDIS;
}

int jobd_stats_marker_get(struct jobd_store *st, int64_t *ms)
{
	redisReply *r;
	int rc = 0;

	r = jobd_store_command(st, "GET %s:stats:published",
			       jobd_store_prefix(st));
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ERROR)
		return bad_reply(r);
	if (r->type == REDIS_REPLY_STRING) {
		*ms = str_i64(r);
		rc = 1;
	}
	freeReplyObject(r);
	return rc;
}

int jobd_stats_marker_advance(struct jobd_store *st, const char *holder,
			      int64_t ms)
{
	const char *p = jobd_store_prefix(st);
	redisReply *r;
	int rc;

	r = jobd_store_command(st,
			       "EVAL %s 2 %s:lease:" JOBD_STATS_LEASE
			       " %s:stats:published %s %lld",
			       advance_lua, p, p, holder, (long long)ms);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_INTEGER)
		return bad_reply(r);
	rc = r->integer == 1;
	freeReplyObject(r);
	return rc;
}

/* Redis's clock in ms. */
static int redis_now(struct jobd_store *st, int64_t *now)
{
	redisReply *r = jobd_store_command(st, "TIME");

	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
		return bad_reply(r);
	*now = str_i64(r->element[0]) * 1000 + str_i64(r->element[1]) / 1000;
	freeReplyObject(r);
	return 0;
}

int jobd_stats_marker_first(struct jobd_store *st, int64_t *ms, int64_t *now)
{
	redisReply *r;
	int rc = 0;

	if (redis_now(st, now) < 0)
		return JOBD_STORE_ERR_REDIS;
	r = jobd_store_command(st, "ZRANGE %s:stats:minutes 0 0",
			       jobd_store_prefix(st));
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY)
		return bad_reply(r);
	if (r->elements == 1) {
		*ms = str_i64(r->element[0]);
		rc = 1;
	}
	freeReplyObject(r);
	return rc;
}

int jobd_stats_marker_minutes(struct jobd_store *st, int64_t from, size_t max,
			      int64_t grace_ms, struct jobd_stats *out)
{
	const char *p = jobd_store_prefix(st);
	size_t n = 0;
	int64_t now;

	memset(out, 0, sizeof(*out));
	if (redis_now(st, &now) < 0)
		return JOBD_STORE_ERR_REDIS;
	out->now = now;
	from -= from % MINUTE_MS;
	while (n < max &&
	       from + (int64_t)n * MINUTE_MS + MINUTE_MS + grace_ms <= now)
		n++;
	if (n == 0)
		return 0;
	out->minutes = calloc(n, sizeof(*out->minutes));
	if (!out->minutes)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		struct jobd_stats_minute *m = &out->minutes[i];
		redisReply *r;

		m->minute = from + (int64_t)i * MINUTE_MS;
		m->closed = true;
		m->all.wait_min = m->all.wait_max = -1;
		out->n = i + 1; /* so a release frees what was read */
		r = jobd_store_command(st, "HGETALL %s:stats:m:%lld", p,
				       (long long)m->minute);
		if (!r)
			goto err_release;
		if (r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			goto err_release;
		}
		for (size_t k = 0; k + 1 < r->elements; k += 2)
			jobd_store_stats_field(m, r->element[k]->str,
					       str_i64(r->element[k + 1]),
					       NULL);
		freeReplyObject(r);
	}
	return 0;
err_release:
	jobd_stats_release(out);
	return JOBD_STORE_ERR_REDIS;
}
