/*
 * store/why: why a pending job has not started (jobctl why, GET
 * /api/jobs/ID/why, the monitor's job detail).
 *
 * The reasons come from the store's own state, read in one call
 * (why.lua: the job, its ancestors, its place in the scheduler), and from
 * what the instances with the work role publish of themselves every
 * heartbeat (P:workers:view:INSTANCE, below): how many workers they have,
 * how many are busy, and which types they can run. Nothing is guessed
 * from a process's memory, so any instance or jobctl answers the same.
 *
 * The reasons are listed from the one that holds the job back the most:
 * a state that keeps it from being claimed at all (not pending, an
 * ancestor stopped, a retry time, not on a queue, no instance alive), then
 * what it waits behind (normal jobs before a low-priority one, its root's
 * turn among roots, the jobs of its own root before it, busy workers).
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* The published view of each instance's workers lives as long as a few
 * heartbeats; a dead instance drops out of the reasons when it expires. */
#define VIEW_KEY "workers:view:"
#define VIEW_SET "workers:views"

int jobd_store_workers_put(struct jobd_store *st, const char *instance,
			   const char *json, int64_t ttl_ms)
{
	return store_view_put(st, VIEW_KEY, VIEW_SET, instance, json, ttl_ms);
}

int jobd_store_workers_drop(struct jobd_store *st, const char *instance)
{
	return store_view_drop(st, VIEW_KEY, VIEW_SET, instance);
}

int jobd_store_workers(struct jobd_store *st, char ***views, size_t *n)
{
	return store_views(st, VIEW_KEY, VIEW_SET, views, n);
}

static void add(struct jobd_why *w, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(struct jobd_why *w, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (w->n == JOBD_WHY_MAX)
		return;
	w->reasons[w->n].code = code;
	va_start(ap, fmt);
	vsnprintf(w->reasons[w->n].text, sizeof(w->reasons[w->n].text), fmt,
		  ap);
	va_end(ap);
	w->n++;
}

/* The value of NAME in why.lua's flat reply, "" when absent. */
static const char *fact(const redisReply *r, const char *name)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, name) == 0)
			return r->element[i + 1]->type == REDIS_REPLY_STRING ?
				       r->element[i + 1]->str :
				       "";
	return "";
}

static int64_t fact_i64(const redisReply *r, const char *name, int64_t dflt)
{
	const char *s = fact(r, name);
	int64_t v;

	return *s && jobd_util_parse_i64(s, &v) == 0 ? v : dflt;
}

/* 1st, 2nd, 3rd, 4th ... 11th, 12th, 13th, 21st. */
static const char *ordinal(int64_t n)
{
	if (n % 100 >= 11 && n % 100 <= 13)
		return "th";
	switch (n % 10) {
	case 1:
		return "st";
	case 2:
		return "nd";
	case 3:
		return "rd";
	default:
		return "th";
	}
}

/* Sums what the live instances published (jobd_store_workers). */
static void add_instances(struct jobd_why *w, char **views, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_loads(views[i], 0, NULL), *types;
		size_t k;
		json_t *t;

		if (!v)
			continue;
		w->instances++;
		w->workers += json_integer_value(json_object_get(v, "workers"));
		w->busy += json_integer_value(json_object_get(v, "busy"));
		w->busy_low +=
			json_integer_value(json_object_get(v, "busy_low"));
		w->low_cap += json_integer_value(json_object_get(v, "low_cap"));
		types = json_object_get(v, "types");
		json_array_foreach(types, k, t)
		{
			if (json_is_string(t) &&
			    strcmp(json_string_value(t), w->type) == 0)
				w->serving++;
		}
		json_decref(v);
	}
}

/* The reasons of pending job W from the facts of why.lua (R). */
static void pending_reasons(struct jobd_why *w, const redisReply *r)
{
	const char *stopped_by = fact(r, "stopped_by");
	bool delayed = *fact(r, "delayed") != '\0';
	int64_t not_before = fact_i64(r, "not_before", 0);
	int64_t ahead = fact_i64(r, "ahead", -1);
	int64_t roots_ahead = fact_i64(r, "roots_ahead", -1);
	int64_t roots = fact_i64(r, "roots", 0);
	int64_t normal_roots = fact_i64(r, "normal_roots", 0);
	char when[64], at[32];

	if (*stopped_by) {
		add(w, "ancestor",
		    "its ancestor %s is %s: a worker that takes this job %s "
		    "it instead of running it",
		    stopped_by, fact(r, "how"),
		    strcmp(fact(r, "how"), "canceled") == 0 ? "cancels" :
							      "stops");
	}
	/* A job waits for its time while in P:delayed, never by its
	 * not_before alone (lib.lua is_delayed): one a claim moved to its
	 * queue keeps its not_before until it is claimed, and a Redis clock
	 * that stepped back (a failover, an NTP step) reads it as early
	 * again. A scheduled job's not_before is its run_at until it runs. */
	if (delayed && not_before > w->now &&
	    fact_i64(r, "run_at", 0) == not_before) {
		add(w, "run_at", "it is scheduled: its run_at is in %s (at %s)",
		    jobd_util_human_ms(not_before - w->now, when, sizeof(when)),
		    jobd_util_iso(not_before, at));
		return;
	}
	if (delayed && not_before > w->now) {
		add(w, "retry_at", "it waits for its retry time, in %s (at %s)",
		    jobd_util_human_ms(not_before - w->now, when, sizeof(when)),
		    jobd_util_iso(not_before, at));
		return;
	}
	if (*fact(r, "held")) {
		add(w, "type_limit",
		    "its type's limit holds it back (%s): it starts when the "
		    "type has room again",
		    fact(r, "held"));
		return;
	}
	if (!*fact(r, "queued") || strcmp(fact(r, "queued"), "1") != 0) {
		if (delayed)
			add(w, "retry_due",
			    "its retry time has passed: the next claim makes "
			    "it ready");
		else
			add(w, "no_queue",
			    "it is on no ready queue, so no worker can take "
			    "it: run jobctl fsck");
		return;
	}
	if (w->instances == 0) {
		add(w, "no_workers",
		    "no instance with the work role is running (none has "
		    "reported in the last few heartbeats)");
		return;
	}
	if (w->serving == 0)
		add(w, "type_unknown",
		    "none of the %d running instances knows type \"%s\": the "
		    "first to take it fails it",
		    w->instances, w->type);
	if (w->low_priority) {
		if (normal_roots > 0)
			add(w, "low_priority",
			    "it is low priority: it waits while normal jobs "
			    "are ready (%lld %s with ready normal jobs)",
			    (long long)normal_roots,
			    normal_roots == 1 ? "root" : "roots");
		if (w->low_cap > 0 && w->busy_low >= w->low_cap)
			add(w, "low_share",
			    "the low-priority share is taken: %d of %d "
			    "workers run low-priority jobs",
			    w->busy_low, w->low_cap);
	}
	if (roots_ahead > 0)
		add(w, "turn",
		    "its root %lld is %lld%s of %lld %s in line: roots that "
		    "used less worker time go first",
		    (long long)w->root, (long long)roots_ahead + 1,
		    ordinal(roots_ahead + 1), (long long)roots,
		    w->low_priority ? "low-priority roots" : "roots");
	if (ahead > 0)
		add(w, "ahead", "%lld %s of root %lld %s ahead of it",
		    (long long)ahead, ahead == 1 ? "job" : "jobs",
		    (long long)w->root, ahead == 1 ? "is" : "are");
	if (w->busy >= w->workers)
		add(w, "busy", "every worker is busy: %d of %d, on %d %s",
		    w->busy, w->workers, w->instances,
		    w->instances == 1 ? "instance" : "instances");
	else if (w->n == 0)
		add(w, "next",
		    "nothing holds it back: %d of %d workers are free, the "
		    "next claim takes it",
		    w->workers - w->busy, w->workers);
}

int jobd_store_why(struct jobd_store *st, int64_t id, struct jobd_why *w)
{
	struct store_args a = { 0 };
	char **views = NULL;
	size_t nviews = 0;
	const char *s;
	redisReply *r;
	int rc;

	if (st->nsh)
		return jobd_store_sharded_why(st, id, w);
	memset(w, 0, sizeof(*w));
	w->id = id;
	store_args_addf(&a, "%lld", (long long)id);
	r = store_eval(st, S_WHY, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		store_set_err(st, "job %lld not found", (long long)id);
		return JOBD_STORE_ERR_NOTFOUND;
	}
	/* The workers' views are the deployment's, not a shard's. */
	if ((rc = jobd_store_workers(st->top ? st->top : st, &views, &nviews)) <
	    0) {
		freeReplyObject(r);
		return rc;
	}
	w->now = fact_i64(r, "now", 0);
	s = fact(r, "status");
	w->status = jobd_status_parse(s);
	snprintf(w->type, sizeof(w->type), "%s", fact(r, "type"));
	w->low_priority = strcmp(fact(r, "low_priority"), "1") == 0;
	w->root = fact_i64(r, "root", id);
	w->since = fact_i64(r, "queued_at", 0);
	if (w->since == 0)
		w->since = fact_i64(r, "created_at", 0);
	add_instances(w, views, nviews);
	jobd_store_kafka_views_free(views, nviews);
	if (w->status == JOBD_PENDING)
		pending_reasons(w, r);
	else
		add(w, "not_pending", "it is %s, not waiting to start",
		    w->status >= 0 ? jobd_status_label(w->status) : s);
	freeReplyObject(r);
	return 0;
}

json_t *jobd_why_to_json(const struct jobd_why *w)
{
	json_t *o = json_object(), *reasons = json_array();

	json_object_set_new(o, "id", json_integer(w->id));
	json_object_set_new(o, "status",
			    json_string(w->status >= 0 ?
						jobd_status_names[w->status] :
						"unknown"));
	json_object_set_new(o, "type", json_string(w->type));
	json_object_set_new(o, "waiting_since", json_integer(w->since));
	json_object_set_new(o, "now", json_integer(w->now));
	for (size_t i = 0; i < w->n; i++) {
		json_t *x = json_object();

		json_object_set_new(x, "code", json_string(w->reasons[i].code));
		json_object_set_new(x, "text", json_string(w->reasons[i].text));
		json_array_append_new(reasons, x);
	}
	json_object_set_new(o, "reasons", reasons);
	json_object_set_new(o, "instances", json_integer(w->instances));
	json_object_set_new(o, "workers", json_integer(w->workers));
	json_object_set_new(o, "busy", json_integer(w->busy));
	return o;
}
