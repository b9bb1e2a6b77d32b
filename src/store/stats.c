/*
 * store/stats: the per-minute statistics: reading minutes and hourly
 * rollups into struct jobd_stats, and their percentiles.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jobd_stats_minute_release(struct jobd_stats_minute *m)
{
	for (size_t t = 0; t < m->ntypes; t++)
		free(m->types[t].type);
	free(m->types);
	m->types = NULL;
	m->ntypes = 0;
}

void jobd_stats_release(struct jobd_stats *s)
{
	for (size_t i = 0; i < s->n; i++)
		jobd_stats_minute_release(&s->minutes[i]);
	free(s->minutes);
	memset(s, 0, sizeof(*s));
}

int64_t jobd_stats_percentile(const struct jobd_stats_counts *c, double p)
{
	int64_t rank, seen = 0;

	if (c->started <= 0)
		return -1;
	rank = (int64_t)(p / 100.0 * (double)c->started + 0.999999);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < JOBD_STATS_BUCKETS; b++) {
		seen += c->hist[b];
		if (seen >= rank) {
			/* Upper edge of bucket b, within the seen min/max. */
			int64_t edge = (int64_t)(exp2((b + 1) / 4.0) - 1);

			if (edge > c->wait_max)
				edge = c->wait_max;
			if (edge < c->wait_min)
				edge = c->wait_min;
			return edge;
		}
	}
	return c->wait_max;
}

void jobd_stats_counts_add(struct jobd_stats_counts *sum,
			   const struct jobd_stats_counts *c)
{
	sum->created += c->created;
	sum->started += c->started;
	sum->finished += c->finished;
	sum->errors += c->errors;
	sum->wait_sum += c->wait_sum;
	if (c->wait_min >= 0 &&
	    (sum->wait_min < 0 || c->wait_min < sum->wait_min))
		sum->wait_min = c->wait_min;
	if (c->wait_max > sum->wait_max)
		sum->wait_max = c->wait_max;
	for (int b = 0; b < JOBD_STATS_BUCKETS; b++)
		sum->hist[b] += c->hist[b];
}

static struct jobd_stats_counts *type_counts(struct jobd_stats_minute *m,
					     const char *type, size_t len)
{
	struct jobd_stats_type *v;

	for (size_t i = 0; i < m->ntypes; i++)
		if (strlen(m->types[i].type) == len &&
		    memcmp(m->types[i].type, type, len) == 0)
			return &m->types[i].c;
	v = realloc(m->types, (m->ntypes + 1) * sizeof(*v));
	if (!v)
		return NULL;
	m->types = v;
	memset(&v[m->ntypes], 0, sizeof(v[0]));
	v[m->ntypes].type = strndup(type, len);
	v[m->ntypes].c.wait_min = -1;
	v[m->ntypes].c.wait_max = -1;
	return &v[m->ntypes++].c;
}

void store_stats_minute_add(struct jobd_stats_minute *sum,
			    const struct jobd_stats_minute *m)
{
	jobd_stats_counts_add(&sum->all, &m->all);
	for (size_t i = 0; i < m->ntypes; i++) {
		struct jobd_stats_counts *c = type_counts(
			sum, m->types[i].type, strlen(m->types[i].type));

		if (c)
			jobd_stats_counts_add(c, &m->types[i].c);
	}
}

void jobd_store_stats_field(struct jobd_stats_minute *m, const char *f,
			    int64_t v, const char *only)
{
	struct jobd_stats_counts *c = &m->all;
	char name[64];
	const char *bar = strchr(f, '|');
	size_t flen = strlen(f);

	if (bar) {
		const char *ty = bar + 1;
		size_t tlen = strlen(ty);

		/* "wait|TYPE_min": the suffix follows the type. */
		if (strncmp(f, "wait|", 5) == 0 && tlen > 4 &&
		    (strcmp(f + flen - 4, "_min") == 0 ||
		     strcmp(f + flen - 4, "_max") == 0)) {
			tlen -= 4;
			snprintf(name, sizeof(name), "wait%s", f + flen - 4);
		} else {
			snprintf(name, sizeof(name), "%.*s", (int)(bar - f), f);
		}
		if (only && (strlen(only) != tlen || memcmp(only, ty, tlen)))
			return;
		c = type_counts(m, ty, tlen);
		if (!c)
			return;
	} else {
		snprintf(name, sizeof(name), "%s", f);
	}
	/* Added, not set: an hour adds the minutes not rolled into it. */
	if (strcmp(name, "created") == 0)
		c->created += v;
	else if (strcmp(name, "started") == 0)
		c->started += v;
	else if (strcmp(name, "finished") == 0)
		c->finished += v;
	else if (strcmp(name, "errors") == 0)
		c->errors += v;
	else if (strcmp(name, "wait_sum") == 0)
		c->wait_sum += v;
	else if (strcmp(name, "wait_min") == 0) {
		if (c->wait_min < 0 || v < c->wait_min)
			c->wait_min = v;
	} else if (strcmp(name, "wait_max") == 0) {
		if (v > c->wait_max)
			c->wait_max = v;
	} else if (name[0] == 'h' && v > 0) {
		int b = atoi(name + 1);

		if (b >= 0 && b < JOBD_STATS_BUCKETS)
			c->hist[b] += v;
	}
}

/*
 * The hours of OUT (hourly windows from FIRST) hold their minutes once a
 * script has rolled them up (lib.lua, roll_up); the minutes after ROLLED
 * (P:stats:rolled, read with the hours in one transaction), the last few,
 * are added to their hour here: closed minutes no longer change, and one
 * rolled up since was not in the hours read. ROLLED nil: no statistics
 * were written since hours were written directly.
 */
static int add_unrolled(struct jobd_store *st, const redisReply *rolled,
			int64_t first, const char *type, struct jobd_stats *out)
{
	const char *p = st->prefix;
	long long from;
	redisReply *r, **h = NULL;
	int rc = 0;

	if (rolled->type != REDIS_REPLY_STRING)
		return 0;
	from = strtoll(rolled->str, NULL, 10);
	if (from < first - 1)
		from = first - 1;
	if (!(r = jobd_store_command(
		      st, "ZRANGEBYSCORE %s:stats:minutes (%lld +inf", p,
		      from)))
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return 0;
	}
	h = calloc(r->elements, sizeof(*h));
	if (!h)
		abort();
	for (size_t i = 0; i < r->elements; i++)
		store_link_append(st->c, "HGETALL %s:stats:m:%s", p,
				  r->element[i]->str);
	if (jobd_store_pipeline_read(st, r->elements, h) < 0)
		rc = JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; rc == 0 && i < r->elements; i++) {
		long long m = strtoll(r->element[i]->str, NULL, 10);
		int64_t k = (m - m % 3600000 - first) / 3600000;

		if (k < 0 || k >= (int64_t)out->n)
			continue;
		for (size_t f = 0;
		     h[i]->type == REDIS_REPLY_ARRAY && f + 1 < h[i]->elements;
		     f += 2)
			jobd_store_stats_field(
				&out->minutes[k], h[i]->element[f]->str,
				strtoll(h[i]->element[f + 1]->str, NULL, 10),
				type);
	}
	for (size_t i = 0; rc == 0 && i < r->elements; i++)
		freeReplyObject(h[i]);
	free(h);
	freeReplyObject(r);
	return rc;
}

int jobd_store_stats(struct jobd_store *st, int64_t since, const char *type,
		     struct jobd_stats *out)
{
	int64_t now, span, first, nspans;
	redisReply *r, **replies;
	size_t n;

	if (st->nsh)
		return jobd_store_sharded_stats(st, since, type, out);
	memset(out, 0, sizeof(*out));
	if (store_ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	r = store_link_command(st->c, "TIME");
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		if (r)
			freeReplyObject(r);
		store_set_err(st, "redis at %s: no TIME", store_where(st));
		store_drop(&st->c);
		return JOBD_STORE_ERR_REDIS;
	}
	now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	      strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	out->now = now;
	if (since <= 0 || since > now)
		since = now - 3600000;
	/* Minutes up to six hours; hourly rollups for longer windows. */
	span = now - since > 6 * 3600000LL ? 3600000 : 60000;
	first = since - since % span;
	nspans = (now - first) / span + 1;
	out->minutes = calloc((size_t)nspans, sizeof(*out->minutes));
	if (!out->minutes)
		return JOBD_STORE_ERR_REDIS;
	/* The windows and the roll-up mark in one transaction (see
	 * add_unrolled): MULTI, GET, NSPANS HGETALL, EXEC. Every reply is
	 * read through the store's pipeline, which checks each for a
	 * redirect: on a cluster whose slot moved, the queued commands say
	 * MOVED and EXEC only EXECABORT. */
	n = (size_t)nspans + 3;
	replies = calloc(n, sizeof(*replies));
	if (!replies)
		abort(); /* out of memory */
	store_link_append(st->c, "MULTI");
	store_link_append(st->c, "GET %s:stats:rolled", st->prefix);
	for (int64_t i = 0; i < nspans; i++)
		store_link_append(st->c, "HGETALL %s:stats:%s:%lld", st->prefix,
				  span == 60000 ? "m" : "h",
				  (long long)(first + i * span));
	store_link_append(st->c, "EXEC");
	if (jobd_store_pipeline_read(st, n, replies) < 0) {
		free(replies);
		free(out->minutes);
		out->minutes = NULL;
		return JOBD_STORE_ERR_REDIS;
	}
	r = replies[n - 1];
	for (size_t i = 0; i + 1 < n; i++)
		freeReplyObject(replies[i]);
	free(replies);
	if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)nspans + 1) {
		store_set_err(st,
			      "redis at %s: statistics transaction failed%s%s",
			      store_where(st),
			      r->type == REDIS_REPLY_ERROR ? ": " : "",
			      r->type == REDIS_REPLY_ERROR ? r->str : "");
		freeReplyObject(r);
		free(out->minutes);
		out->minutes = NULL;
		return JOBD_STORE_ERR_REDIS;
	}
	for (int64_t i = 0; i < nspans; i++) {
		struct jobd_stats_minute *m = &out->minutes[i];
		const redisReply *h = r->element[i + 1];

		m->minute = first + i * span;
		m->closed = m->minute + span <= now;
		m->all.wait_min = m->all.wait_max = -1;
		for (size_t k = 0;
		     h->type == REDIS_REPLY_ARRAY && k + 1 < h->elements;
		     k += 2)
			jobd_store_stats_field(m, h->element[k]->str,
					       strtoll(h->element[k + 1]->str,
						       NULL, 10),
					       type);
	}
	out->n = (size_t)nspans;
	if (span == 3600000 &&
	    add_unrolled(st, r->element[0], first, type, out) < 0) {
		freeReplyObject(r);
		jobd_stats_release(out);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_totals(struct jobd_store *st, struct jobd_stats_minute *out)
{
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_totals(st, out);
	memset(out, 0, sizeof(*out));
	out->all.wait_min = out->all.wait_max = -1;
	r = jobd_store_command(st, "HGETALL %s:stats:total", st->prefix);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ERROR) {
		store_set_err(st, "redis at %s: HGETALL %s:stats:total: %s",
			      store_where(st), st->prefix, r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements;
	     k += 2)
		jobd_store_stats_field(
			out, r->element[k]->str,
			strtoll(r->element[k + 1]->str, NULL, 10), NULL);
	freeReplyObject(r);
	/* Only the per-type fields are kept: the overall ones are sums. */
	for (size_t t = 0; t < out->ntypes; t++) {
		const struct jobd_stats_counts *c = &out->types[t].c;

		out->all.created += c->created;
		out->all.started += c->started;
		out->all.finished += c->finished;
		out->all.errors += c->errors;
		out->all.wait_sum += c->wait_sum;
		for (int b = 0; b < JOBD_STATS_BUCKETS; b++)
			out->all.hist[b] += c->hist[b];
	}
	return 0;
}
