/*
 * job: a job read from its Redis hash, and its JSON form (docs/design.md,
 * "The job").
 *
 * The hash stores times as ms since the epoch and booleans as 0/1 so that
 * the Lua scripts can compute with them; this module turns them into the
 * contract's types: ISO-8601 strings, JSON booleans, integers, and the
 * live values computed from the Redis clock of the read.
 */
#include "config.h"

#include "base/job.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

const char *const jobd_status_names[JOBD_STATUS_COUNT] = {
	"pending", "in_progress", "stopping", "stopped", "finished", "canceled",
};

static const char *const status_labels[JOBD_STATUS_COUNT] = {
	"Pending", "In Progress", "Stopping", "Stopped", "Finished", "Canceled",
};

int jobd_status_parse(const char *s)
{
	for (int i = 0; i < JOBD_STATUS_COUNT; i++)
		if (strcmp(s, jobd_status_names[i]) == 0)
			return i;
	return -1;
}

bool jobd_job_sort_known(const char *by)
{
	static const char *const known[] = { "created", "started", "waiting",
					     "duration", "status" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(by, known[i]) == 0)
			return true;
	return false;
}

const char *jobd_status_label(enum jobd_status s)
{
	return (int)s >= 0 && s < JOBD_STATUS_COUNT ? status_labels[s] : "?";
}

static int64_t i64(const char *v)
{
	return v ? strtoll(v, NULL, 10) : 0;
}

static char *dup_nonempty(const char *v)
{
	return v && *v ? strdup(v) : NULL;
}

struct jobd_job *jobd_job_from_fields(const char *const *names,
				      const char *const *values, size_t n)
{
	struct jobd_job *job = calloc(1, sizeof(*job));
	struct jobd_children *c;

	if (!job)
		return NULL;
	c = &job->children;
	/* The defaults are absent fields: a job without status is pending,
	 * one without payload has {} (docs/redis-keys.md). */
	job->stoppable = true;
	job->status = JOBD_PENDING;
	for (size_t i = 0; i < n; i++) {
		const char *f = names[i], *v = values[i];

		if (!f || !v)
			continue;
		if (strcmp(f, "id") == 0)
			job->id = i64(v);
		else if (strcmp(f, "key") == 0)
			job->key = dup_nonempty(v);
		else if (strcmp(f, "source") == 0)
			job->source = dup_nonempty(v);
		else if (strcmp(f, "type") == 0)
			job->type = strdup(v);
		else if (strcmp(f, "status") == 0)
			job->status = (enum jobd_status)jobd_status_parse(v);
		else if (strcmp(f, "system") == 0)
			job->system = strcmp(v, "1") == 0;
		else if (strcmp(f, "low_priority") == 0)
			job->low_priority = strcmp(v, "1") == 0;
		else if (strcmp(f, "stoppable") == 0)
			job->stoppable = strcmp(v, "0") != 0;
		else if (strcmp(f, "restartable") == 0)
			job->restartable = strcmp(v, "1") == 0;
		else if (strcmp(f, "run_by") == 0)
			job->run_by = dup_nonempty(v);
		else if (strcmp(f, "parent") == 0)
			job->parent = i64(v);
		else if (strcmp(f, "root") == 0)
			job->root = i64(v);
		else if (strcmp(f, "created_at") == 0)
			job->created_at = i64(v);
		else if (strcmp(f, "queued_at") == 0)
			job->queued_at = i64(v);
		else if (strcmp(f, "started_at") == 0)
			job->started_at = i64(v);
		else if (strcmp(f, "finished_at") == 0)
			job->finished_at = i64(v);
		else if (strcmp(f, "run_ms") == 0)
			job->run_ms = i64(v);
		else if (strcmp(f, "run_since") == 0)
			job->run_since = i64(v);
		else if (strcmp(f, "progress") == 0)
			job->progress = strtod(v, NULL);
		else if (strcmp(f, "children_progress") == 0)
			job->children_progress = strtod(v, NULL);
		else if (strcmp(f, "errors") == 0)
			job->errors = i64(v);
		else if (strcmp(f, "with_errors") == 0)
			job->with_errors = strcmp(v, "1") == 0;
		else if (strcmp(f, "attempt") == 0)
			job->attempt = i64(v);
		else if (strcmp(f, "restarts") == 0)
			job->restarts = i64(v);
		else if (strcmp(f, "inconsistent") == 0)
			job->inconsistent = strcmp(v, "1") == 0;
		else if (strcmp(f, "awaiting") == 0)
			job->awaiting = strcmp(v, "1") == 0;
		else if (strcmp(f, "not_before") == 0)
			job->not_before = i64(v);
		else if (strcmp(f, "run_at") == 0)
			job->run_at = i64(v);
		else if (strcmp(f, "instance") == 0)
			job->instance = dup_nonempty(v);
		else if (strcmp(f, "held_by_limit") == 0)
			job->held_by_limit = dup_nonempty(v);
		else if (strcmp(f, "claimed_at") == 0)
			job->claimed_at = i64(v);
		else if (strcmp(f, "created_by") == 0)
			job->created_by = dup_nonempty(v);
		else if (strcmp(f, "payload") == 0)
			job->payload = strdup(v);
		else if (strcmp(f, "checkpoint") == 0)
			job->checkpoint = dup_nonempty(v);
		else if (strncmp(f, "children_", 9) == 0) {
			const char *k = f + 9;
			int64_t x = i64(v);

			if (strcmp(k, "total") == 0)
				c->total = x;
			else if (strcmp(k, "pending") == 0)
				c->pending = x;
			else if (strcmp(k, "in_progress") == 0)
				c->in_progress = x;
			else if (strcmp(k, "stopping") == 0)
				c->stopping = x;
			else if (strcmp(k, "stopped") == 0)
				c->stopped = x;
			else if (strcmp(k, "finished") == 0)
				c->finished = x;
			else if (strcmp(k, "canceled") == 0)
				c->canceled = x;
			else if (strcmp(k, "errors") == 0)
				c->errors = x;
		}
	}
	if (job->id <= 0 || !job->type || (int)job->status < 0) {
		jobd_job_free(job);
		return NULL;
	}
	if (!job->payload)
		job->payload = strdup("{}");
	if (!job->root) /* a root job stores no root: it is its own */
		job->root = job->id;
	/* The first claim writes no claimed_at: it is started_at. */
	if (!job->claimed_at && job->instance)
		job->claimed_at = job->started_at;
	/* A claim writes no run_since: a running attempt started at the
	 * last claim, unless a waiting parent was resumed (lib.lua
	 * run_start). */
	if (job->run_since <= 0 &&
	    (job->status == JOBD_IN_PROGRESS || job->status == JOBD_STOPPING))
		job->run_since = job->claimed_at;
	return job;
}

void jobd_job_free(struct jobd_job *job)
{
	if (!job)
		return;
	free(job->key);
	free(job->source);
	free(job->type);
	free(job->run_by);
	free(job->instance);
	free(job->held_by_limit);
	free(job->created_by);
	free(job->payload);
	free(job->checkpoint);
	free(job);
}

void jobd_job_list_release(struct jobd_job_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		jobd_job_free(list->jobs[i]);
	free(list->jobs);
	memset(list, 0, sizeof(*list));
}

bool jobd_job_scheduled(const struct jobd_job *job, int64_t now)
{
	return job->status == JOBD_PENDING && job->run_at > now;
}

const char *jobd_job_label(const struct jobd_job *job, int64_t now)
{
	return jobd_job_scheduled(job, now) ? "Scheduled" :
					      jobd_status_label(job->status);
}

int64_t jobd_job_waiting_ms(const struct jobd_job *job, int64_t now)
{
	int64_t from = job->queued_at ? job->queued_at : job->created_at;
	int64_t to;

	if (job->started_at)
		to = job->started_at;
	else if (job->status == JOBD_PENDING)
		to = now;
	else if (job->finished_at)
		to = job->finished_at; /* never started: stopped or canceled */
	else
		to = now;
	return to > from ? to - from : 0;
}

int64_t jobd_job_duration_ms(const struct jobd_job *job, int64_t now)
{
	int64_t ms = job->run_ms;

	if (job->run_since > 0 && now > job->run_since)
		ms += now - job->run_since;
	return ms;
}

double jobd_job_overall_progress(const struct jobd_job *job)
{
	return (job->progress + job->children_progress) /
	       (double)(1 + job->children.total);
}

static json_t *time_or_null(int64_t ms)
{
	char buf[JOBD_ISO_SIZE];

	return ms > 0 ? json_string(jobd_util_iso(ms, buf)) : json_null();
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/*
 * Rounds to 2 decimals so JSON shows 33.33, not 33.333333333333336. A
 * value outside 0-100 (a hash written by hand: "nan", "1e999") is
 * clamped first: the cast of a value out of int64_t's range is undefined.
 */
static json_t *percent(double p)
{
	double r;

	if (!(p >= 0)) /* also NaN */
		p = 0;
	if (p > 100)
		p = 100;
	r = (double)(int64_t)(p * 100 + 0.5) / 100;

	if (r == (double)(int64_t)r)
		return json_integer((json_int_t)r);
	return json_real(r);
}

json_t *jobd_job_to_json(const struct jobd_job *job, int64_t now)
{
	const struct jobd_children *c = &job->children;
	json_t *o = json_object();
	json_t *ch = json_object();
	json_t *payload = json_loads(job->payload, JSON_DECODE_ANY, NULL);
	json_t *checkpoint =
		job->checkpoint ?
			json_loads(job->checkpoint, JSON_DECODE_ANY, NULL) :
			NULL;

	json_object_set_new(o, "id", json_integer(job->id));
	json_object_set_new(o, "key", str_or_null(job->key));
	json_object_set_new(o, "source", str_or_null(job->source));
	json_object_set_new(o, "type", json_string(job->type));
	json_object_set_new(o, "status",
			    json_string(jobd_status_names[job->status]));
	json_object_set_new(o, "system", json_boolean(job->system));
	json_object_set_new(o, "low_priority", json_boolean(job->low_priority));
	json_object_set_new(o, "stoppable", json_boolean(job->stoppable));
	json_object_set_new(o, "restartable", json_boolean(job->restartable));
	json_object_set_new(o, "run_by",
			    job->system ? json_null() :
					  str_or_null(job->run_by));
	json_object_set_new(o, "parent",
			    job->parent ? json_integer(job->parent) :
					  json_null());
	json_object_set_new(o, "root", json_integer(job->root));
	json_object_set_new(o, "created_at", time_or_null(job->created_at));
	json_object_set_new(o, "run_at", time_or_null(job->run_at));
	json_object_set_new(o, "scheduled",
			    json_boolean(jobd_job_scheduled(job, now)));
	json_object_set_new(o, "started_at", time_or_null(job->started_at));
	json_object_set_new(o, "finished_at", time_or_null(job->finished_at));
	json_object_set_new(o, "waiting_ms",
			    json_integer(jobd_job_waiting_ms(job, now)));
	json_object_set_new(o, "duration_ms",
			    json_integer(jobd_job_duration_ms(job, now)));
	json_object_set_new(o, "progress", percent(job->progress));
	json_object_set_new(o, "overall_progress",
			    percent(jobd_job_overall_progress(job)));
	json_object_set_new(o, "errors", json_integer(job->errors));
	json_object_set_new(o, "finished_with_errors",
			    json_boolean(job->with_errors));
	json_object_set_new(o, "attempt", json_integer(job->attempt));
	json_object_set_new(o, "restarts", json_integer(job->restarts));
	json_object_set_new(ch, "total", json_integer(c->total));
	json_object_set_new(ch, "pending", json_integer(c->pending));
	json_object_set_new(ch, "in_progress", json_integer(c->in_progress));
	json_object_set_new(ch, "stopping", json_integer(c->stopping));
	json_object_set_new(ch, "stopped", json_integer(c->stopped));
	json_object_set_new(ch, "finished", json_integer(c->finished));
	json_object_set_new(ch, "canceled", json_integer(c->canceled));
	json_object_set_new(ch, "errors", json_integer(c->errors));
	/* The children's own bar: the mean of their overall progress. */
	json_object_set_new(
		ch, "progress",
		percent(c->total ? job->children_progress / (double)c->total :
				   0));
	json_object_set_new(o, "children", ch);
	json_object_set_new(o, "inconsistent", json_boolean(job->inconsistent));
	json_object_set_new(o, "waiting_for_children",
			    json_boolean(job->awaiting));
	json_object_set_new(o, "waiting_for_limit",
			    str_or_null(job->held_by_limit));
	json_object_set_new(o, "instance", str_or_null(job->instance));
	json_object_set_new(o, "payload", payload ? payload : json_null());
	json_object_set_new(o, "checkpoint",
			    checkpoint ? checkpoint : json_null());
	return o;
}

json_t *jobd_job_list_to_json(const struct jobd_job_list *list)
{
	json_t *o = json_object();
	json_t *jobs = json_array();

	for (size_t i = 0; i < list->n; i++)
		json_array_append_new(jobs, jobd_job_to_json(list->jobs[i],
							     list->now));
	json_object_set_new(o, "jobs", jobs);
	if (list->sorted) {
		json_object_set_new(o, "next",
				    list->after[0] ? json_string(list->after) :
						     json_null());
		json_object_set_new(o, "complete",
				    json_boolean(list->complete));
		json_object_set_new(o, "examined",
				    json_integer((json_int_t)list->examined));
		return o;
	}
	json_object_set_new(
		o, "next", list->next ? json_integer(list->next) : json_null());
	return o;
}
