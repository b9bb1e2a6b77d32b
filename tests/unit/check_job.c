/*
 * check_job: the job as read from its Redis hash and its JSON
 * (src/base/job.c, docs/design.md "The job", docs/redis-keys.md). Pure unit
 * tests: field/value pairs in, a struct jobd_job, live values and a JSON
 * object out. The hash stores only what differs from a default, so most
 * tests build a job from a few fields and check what the others become.
 */
#include "config.h"

#include "base/job.h"

#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS_MAX 64
#define T0 1700000000000LL /* ms: 2023-11-14T22:13:20.000Z */

/*
 * The job of the hash given as NULL-terminated name, value pairs (a value
 * may be NULL only when the list says how many pairs: see job_of_n).
 */
static struct jobd_job *job_of_n(size_t n, const char *const *pairs)
{
	const char *names[FIELDS_MAX], *values[FIELDS_MAX];

	ck_assert_uint_le(n, FIELDS_MAX);
	for (size_t i = 0; i < n; i++) {
		names[i] = pairs[2 * i];
		values[i] = pairs[2 * i + 1];
	}
	return jobd_job_from_fields(names, values, n);
}

static struct jobd_job *job_of(const char *first, ...)
{
	const char *pairs[2 * FIELDS_MAX];
	size_t n = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *)) {
		ck_assert_uint_lt(n, 2 * FIELDS_MAX);
		pairs[n++] = s;
	}
	va_end(ap);
	ck_assert_msg(n % 2 == 0, "odd number of strings: %zu", n);
	return job_of_n(n / 2, pairs);
}

/* A job that must be made: the pairs after "id" 7 and "type" noop. */
#define JOB(...) must(job_of("id", "7", "type", "noop", __VA_ARGS__, NULL))

static struct jobd_job *must(struct jobd_job *job)
{
	ck_assert_msg(job != NULL, "the fields made no job");
	return job;
}

/* The JSON of JOB at NOW, as an object; JOB is freed. */
static json_t *json_of(struct jobd_job *job, int64_t now)
{
	json_t *o = jobd_job_to_json(job, now);

	jobd_job_free(job);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_object(o));
	return o;
}

static const char *str_at(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "\"%s\" is not a string", key);
	return json_string_value(v);
}

static json_int_t int_at(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);
	return json_integer_value(v);
}

static double number_at(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_number(v), "\"%s\" is not a number", key);
	return json_number_value(v);
}

static void assert_null_at(const json_t *o, const char *key)
{
	ck_assert_msg(json_is_null(json_object_get(o, key)),
		      "\"%s\" is not null", key);
}

static void assert_bool_at(const json_t *o, const char *key, bool want)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_boolean(v), "\"%s\" is not a boolean", key);
	ck_assert_msg(json_is_true(v) == want, "\"%s\" is %s", key,
		      want ? "false" : "true");
}

/* JOB's waiting time at NOW; JOB is freed. */
static int64_t waiting_once(struct jobd_job *job, int64_t now)
{
	int64_t ms = jobd_job_waiting_ms(job, now);

	jobd_job_free(job);
	return ms;
}

/* JOB's duration at NOW; JOB is freed. */
static int64_t duration_once(struct jobd_job *job, int64_t now)
{
	int64_t ms = jobd_job_duration_ms(job, now);

	jobd_job_free(job);
	return ms;
}

/* --- statuses ------------------------------------------------------------ */

START_TEST(test_status_names_parse_back_to_their_status)
{
	static const char *const names[] = { "pending",	 "in_progress",
					     "stopping", "stopped",
					     "finished", "canceled" };
	static const char *const labels[] = { "Pending",  "In Progress",
					      "Stopping", "Stopped",
					      "Finished", "Canceled" };

	for (int i = 0; i < JOBD_STATUS_COUNT; i++) {
		ck_assert_str_eq(jobd_status_names[i], names[i]);
		ck_assert_int_eq(jobd_status_parse(names[i]), i);
		ck_assert_str_eq(jobd_status_label((enum jobd_status)i),
				 labels[i]);
	}
}
END_TEST

START_TEST(test_status_parse_refuses_labels_and_unknown_names)
{
	ck_assert_int_eq(jobd_status_parse(""), -1);
	ck_assert_int_eq(jobd_status_parse("Pending"), -1);
	ck_assert_int_eq(jobd_status_parse("In Progress"), -1);
	ck_assert_int_eq(jobd_status_parse("running"), -1);
	ck_assert_int_eq(jobd_status_parse("pending "), -1);
	ck_assert_str_eq(jobd_status_label(JOBD_STATUS_COUNT), "?");
	ck_assert_str_eq(jobd_status_label((enum jobd_status) - 1), "?");
}
END_TEST

/* --- from the hash's fields ------------------------------------------------
 */

START_TEST(test_from_fields_without_id_or_type_makes_no_job)
{
	ck_assert_ptr_null(job_of("type", "noop", NULL));
	ck_assert_ptr_null(job_of("id", "7", NULL));
	ck_assert_ptr_null(job_of("id", "0", "type", "noop", NULL));
	ck_assert_ptr_null(job_of("id", "-4", "type", "noop", NULL));
	ck_assert_ptr_null(job_of("id", "seven", "type", "noop", NULL));
	ck_assert_ptr_null(job_of(NULL));
}
END_TEST

START_TEST(test_from_fields_unknown_status_makes_no_job)
{
	ck_assert_ptr_null(
		job_of("id", "7", "type", "noop", "status", "running", NULL));
	ck_assert_ptr_null(
		job_of("id", "7", "type", "noop", "status", "", NULL));
}
END_TEST

START_TEST(test_from_fields_absent_fields_are_their_defaults)
{
	struct jobd_job *job = JOB(NULL);
	const struct jobd_children *c = &job->children;

	ck_assert_int_eq(job->id, 7);
	ck_assert_str_eq(job->type, "noop");
	ck_assert_int_eq(job->status, JOBD_PENDING);
	ck_assert_ptr_null(job->key);
	ck_assert_ptr_null(job->source);
	ck_assert_ptr_null(job->run_by);
	ck_assert_ptr_null(job->instance);
	ck_assert_ptr_null(job->created_by);
	ck_assert_ptr_null(job->checkpoint);
	ck_assert_str_eq(job->payload, "{}");
	ck_assert(!job->system);
	ck_assert(!job->low_priority);
	ck_assert(job->stoppable); /* absent = 1 (docs/redis-keys.md) */
	ck_assert(!job->restartable);
	ck_assert(!job->inconsistent);
	ck_assert(!job->awaiting);
	ck_assert(!job->with_errors);
	ck_assert_int_eq(job->parent, 0);
	ck_assert_int_eq(job->root, 7); /* a root job is its own root */
	ck_assert_int_eq(job->created_at, 0);
	ck_assert_int_eq(job->queued_at, 0);
	ck_assert_int_eq(job->started_at, 0);
	ck_assert_int_eq(job->finished_at, 0);
	ck_assert_int_eq(job->claimed_at, 0);
	ck_assert_int_eq(job->run_ms, 0);
	ck_assert_int_eq(job->run_since, 0);
	ck_assert_int_eq(job->not_before, 0);
	ck_assert(job->progress == 0);
	ck_assert(job->children_progress == 0);
	ck_assert_int_eq(job->errors, 0);
	ck_assert_int_eq(job->attempt, 0);
	ck_assert_int_eq(job->restarts, 0);
	ck_assert_int_eq(c->total + c->pending + c->in_progress + c->stopping +
				 c->stopped + c->finished + c->canceled +
				 c->errors,
			 0);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_reads_every_field)
{
	struct jobd_job *job = JOB(
		"key", "k-1", "source", "jobs.records/2@1041", "status",
		"stopping", "system", "1", "low_priority", "1", "stoppable",
		"0", "restartable", "1", "run_by", "ann", "parent", "3", "root",
		"2", "created_at", "1000", "queued_at", "1500", "started_at",
		"2000", "finished_at", "9000", "run_ms", "250", "run_since",
		"2100", "progress", "12.5", "children_progress", "150.25",
		"errors", "4", "with_errors", "1", "attempt", "3", "restarts",
		"2", "inconsistent", "1", "awaiting", "1", "not_before", "7777",
		"instance", "host-1", "claimed_at", "2050", "created_by",
		"alice", "payload", "{\"a\":1}", "checkpoint", "{\"step\":2}",
		"children_total", "5", "children_pending", "1",
		"children_in_progress", "1", "children_stopping", "0",
		"children_stopped", "1", "children_finished", "1",
		"children_canceled", "1", "children_errors", "1", NULL);

	ck_assert_str_eq(job->key, "k-1");
	ck_assert_str_eq(job->source, "jobs.records/2@1041");
	ck_assert_int_eq(job->status, JOBD_STOPPING);
	ck_assert(job->system && job->low_priority && job->restartable);
	ck_assert(!job->stoppable);
	ck_assert_str_eq(job->run_by, "ann");
	ck_assert_int_eq(job->parent, 3);
	ck_assert_int_eq(job->root, 2);
	ck_assert_int_eq(job->created_at, 1000);
	ck_assert_int_eq(job->queued_at, 1500);
	ck_assert_int_eq(job->started_at, 2000);
	ck_assert_int_eq(job->finished_at, 9000);
	ck_assert_int_eq(job->run_ms, 250);
	ck_assert_int_eq(job->run_since, 2100);
	ck_assert_double_eq(job->progress, 12.5);
	ck_assert_double_eq(job->children_progress, 150.25);
	ck_assert_int_eq(job->errors, 4);
	ck_assert(job->with_errors && job->inconsistent && job->awaiting);
	ck_assert_int_eq(job->attempt, 3);
	ck_assert_int_eq(job->restarts, 2);
	ck_assert_int_eq(job->not_before, 7777);
	ck_assert_str_eq(job->instance, "host-1");
	ck_assert_int_eq(job->claimed_at, 2050);
	ck_assert_str_eq(job->created_by, "alice");
	ck_assert_str_eq(job->payload, "{\"a\":1}");
	ck_assert_str_eq(job->checkpoint, "{\"step\":2}");
	ck_assert_int_eq(job->children.total, 5);
	ck_assert_int_eq(job->children.pending, 1);
	ck_assert_int_eq(job->children.in_progress, 1);
	ck_assert_int_eq(job->children.stopping, 0);
	ck_assert_int_eq(job->children.stopped, 1);
	ck_assert_int_eq(job->children.finished, 1);
	ck_assert_int_eq(job->children.canceled, 1);
	ck_assert_int_eq(job->children.errors, 1);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_each_status)
{
	for (int i = 0; i < JOBD_STATUS_COUNT; i++) {
		struct jobd_job *job = JOB("status", jobd_status_names[i]);

		ck_assert_int_eq(job->status, i);
		jobd_job_free(job);
	}
}
END_TEST

START_TEST(test_from_fields_empty_texts_are_absent)
{
	struct jobd_job *job = JOB("key", "", "source", "", "run_by", "",
				   "instance", "", "created_by", "",
				   "checkpoint", "");

	ck_assert_ptr_null(job->key);
	ck_assert_ptr_null(job->source);
	ck_assert_ptr_null(job->run_by);
	ck_assert_ptr_null(job->instance);
	ck_assert_ptr_null(job->created_by);
	ck_assert_ptr_null(job->checkpoint);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_flags_are_true_only_as_lua_writes_them)
{
	/* Lua writes 1 for a set flag; stoppable is the one stored as 0. */
	struct jobd_job *job = JOB("system", "yes", "low_priority", "true",
				   "restartable", "2", "inconsistent", "0",
				   "stoppable", "1", "with_errors", "",
				   "awaiting", "01");

	ck_assert(!job->system);
	ck_assert(!job->low_priority);
	ck_assert(!job->restartable);
	ck_assert(!job->inconsistent);
	ck_assert(job->stoppable);
	ck_assert(!job->with_errors);
	ck_assert(!job->awaiting);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_unknown_and_null_fields_are_skipped)
{
	static const char *const pairs[] = {
		"id",
		"9",
		"type",
		"noop",
		"depth",
		"3",
		"vruntime",
		"120",
		"run_by",
		NULL,
		NULL,
		"x",
		"charged",
		"5",
		"children_bogus",
		"4",
		"children_total",
		"2",
	};
	struct jobd_job *job = must(job_of_n(9, pairs));

	ck_assert_int_eq(job->id, 9);
	ck_assert_ptr_null(job->run_by);
	ck_assert_int_eq(job->children.total, 2);
	ck_assert_int_eq(job->children.pending, 0);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_bad_numbers_read_their_leading_digits)
{
	struct jobd_job *job = JOB("parent", "abc", "created_at", "12x",
				   "errors", "", "attempt", " 3", "progress",
				   "half", "run_ms", "-5");

	ck_assert_int_eq(job->parent, 0);
	ck_assert_int_eq(job->root, 7);
	ck_assert_int_eq(job->created_at, 12);
	ck_assert_int_eq(job->errors, 0);
	ck_assert_int_eq(job->attempt, 3);
	ck_assert(job->progress == 0);
	ck_assert_int_eq(job->run_ms, -5);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_first_claim_time_is_started_at)
{
	struct jobd_job *job;

	/* claimed once: no claimed_at, the claim was the first start */
	job = JOB("status", "in_progress", "instance", "h", "started_at",
		  "5000");
	ck_assert_int_eq(job->claimed_at, 5000);
	ck_assert_int_eq(job->run_since, 5000);
	jobd_job_free(job);

	/* claimed again later */
	job = JOB("status", "in_progress", "instance", "h", "started_at",
		  "5000", "claimed_at", "8000");
	ck_assert_int_eq(job->claimed_at, 8000);
	ck_assert_int_eq(job->run_since, 8000);
	jobd_job_free(job);

	/* never claimed: no instance, nothing running */
	job = JOB("status", "pending", "started_at", "5000");
	ck_assert_int_eq(job->claimed_at, 0);
	ck_assert_int_eq(job->run_since, 0);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_from_fields_only_a_running_job_runs_since_its_claim)
{
	static const struct {
		const char *status;
		int64_t run_since;
	} cases[] = {
		{ "pending", 0 }, { "in_progress", 4000 }, { "stopping", 4000 },
		{ "stopped", 0 }, { "finished", 0 },	   { "canceled", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jobd_job *job = JOB("status", cases[i].status,
					   "instance", "h", "started_at",
					   "1000", "claimed_at", "4000");

		ck_assert_msg(job->run_since == cases[i].run_since,
			      "%s: run_since %lld, want %lld", cases[i].status,
			      (long long)job->run_since,
			      (long long)cases[i].run_since);
		jobd_job_free(job);
	}
}
END_TEST

START_TEST(test_from_fields_resumed_waiting_parent_keeps_its_run_since)
{
	struct jobd_job *job = JOB("status", "in_progress", "instance", "h",
				   "started_at", "1000", "run_since", "6000",
				   "awaiting", "1");

	ck_assert_int_eq(job->run_since, 6000);
	ck_assert_int_eq(job->claimed_at, 1000);
	jobd_job_free(job);
}
END_TEST

/* --- live values ------------------------------------------------------------
 */

START_TEST(test_waiting_grows_while_pending)
{
	struct jobd_job *job = JOB("created_at", "1000");

	ck_assert_int_eq(jobd_job_waiting_ms(job, 1000), 0);
	ck_assert_int_eq(jobd_job_waiting_ms(job, 4500), 3500);
	ck_assert_int_eq(jobd_job_waiting_ms(job, 9000), 8000);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_waiting_ends_at_the_first_start)
{
	static const char *const statuses[] = { "in_progress", "stopping",
						"stopped", "finished",
						"pending" };

	/* a job handed back to pending keeps its first start too */
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct jobd_job *job = JOB("status", statuses[i], "created_at",
					   "1000", "started_at", "1400",
					   "finished_at", "9000");

		ck_assert_int_eq(jobd_job_waiting_ms(job, 50000), 400);
		jobd_job_free(job);
	}
}
END_TEST

START_TEST(test_waiting_counts_from_the_last_restart)
{
	ck_assert_int_eq(
		waiting_once(JOB("created_at", "1000", "queued_at", "7000"),
			     7250),
		250);
	ck_assert_int_eq(waiting_once(JOB("status", "in_progress", "created_at",
					  "1000", "queued_at", "7000",
					  "started_at", "7100"),
				      90000),
			 100);
}
END_TEST

/* A scheduled job: pending with its run_at to come, shown as Scheduled,
 * waiting from run_at (its queued_at) and 0 before. */
START_TEST(test_scheduled_until_run_at_and_waiting_from_it)
{
	struct jobd_job *job = JOB("created_at", "1000", "run_at", "5000",
				   "not_before", "5000", "queued_at", "5000");
	json_t *o;

	ck_assert(jobd_job_scheduled(job, 4999));
	ck_assert_str_eq(jobd_job_label(job, 4999), "Scheduled");
	ck_assert_int_eq(jobd_job_waiting_ms(job, 4999), 0);
	ck_assert(!jobd_job_scheduled(job, 5000));
	ck_assert_str_eq(jobd_job_label(job, 5000), "Pending");
	ck_assert_int_eq(jobd_job_waiting_ms(job, 5750), 750);
	o = json_of(job, 3000);
	ck_assert(json_is_true(json_object_get(o, "scheduled")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "run_at")),
			 "1970-01-01T00:00:05.000Z");
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")),
			 "pending");
	json_decref(o);
	/* Stopped, or run: not scheduled, run_at kept. */
	job = JOB("status", "stopped", "run_at", "5000");
	ck_assert(!jobd_job_scheduled(job, 1000));
	jobd_job_free(job);
	job = JOB("status", "finished", "run_at", "5000", "queued_at", "5000",
		  "started_at", "5200");
	ck_assert_int_eq(jobd_job_waiting_ms(job, 9000), 200);
	o = json_of(job, 9000);
	ck_assert(json_is_false(json_object_get(o, "scheduled")));
	ck_assert(json_is_string(json_object_get(o, "run_at")));
	json_decref(o);
	/* No run time: null. */
	o = json_of(JOB(NULL), T0);
	ck_assert(json_is_null(json_object_get(o, "run_at")));
	json_decref(o);
}
END_TEST

START_TEST(test_waiting_of_a_job_stopped_before_it_started)
{
	struct jobd_job *job;

	/* stopped, never started: still waiting, so it grows */
	job = JOB("status", "stopped", "created_at", "1000");
	ck_assert_int_eq(jobd_job_waiting_ms(job, 3000), 2000);
	ck_assert_int_eq(jobd_job_waiting_ms(job, 5000), 4000);
	jobd_job_free(job);

	/* canceled, never started: waited until it ended */
	ck_assert_int_eq(waiting_once(JOB("status", "canceled", "created_at",
					  "1000", "finished_at", "2500"),
				      9000),
			 1500);
}
END_TEST

START_TEST(test_waiting_is_never_negative_for_times_in_the_future)
{
	/* the reader's clock is behind the writer's */
	ck_assert_int_eq(waiting_once(JOB("created_at", "5000"), 4000), 0);
	ck_assert_int_eq(waiting_once(JOB("status", "in_progress", "created_at",
					  "5000", "started_at", "4000"),
				      9000),
			 0);
}
END_TEST

START_TEST(test_duration_sums_ended_attempts_and_the_running_one)
{
	struct jobd_job *job;

	ck_assert_int_eq(
		duration_once(JOB("status", "finished", "run_ms", "1200"),
			      99999),
		1200);
	job = JOB("status", "in_progress", "run_ms", "1200", "instance", "h",
		  "started_at", "1000", "claimed_at", "5000");
	ck_assert_int_eq(jobd_job_duration_ms(job, 5000), 1200);
	ck_assert_int_eq(jobd_job_duration_ms(job, 5300), 1500);
	ck_assert_int_eq(jobd_job_duration_ms(job, 6000), 2200);
	jobd_job_free(job);
	ck_assert_int_eq(duration_once(JOB("status", "stopping", "instance",
					   "h", "started_at", "1000"),
				       1750),
			 750);
}
END_TEST

START_TEST(test_duration_stands_still_unless_running)
{
	static const char *const statuses[] = { "pending", "stopped",
						"finished", "canceled" };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct jobd_job *job = JOB("status", statuses[i], "run_ms",
					   "300", "instance", "h", "started_at",
					   "1000");

		ck_assert_int_eq(jobd_job_duration_ms(job, 1000), 300);
		ck_assert_int_eq(jobd_job_duration_ms(job, 80000), 300);
		jobd_job_free(job);
	}
}
END_TEST

START_TEST(test_duration_ignores_a_start_in_the_future)
{
	ck_assert_int_eq(duration_once(JOB("status", "in_progress", "run_ms",
					   "40", "instance", "h", "started_at",
					   "9000"),
				       8000),
			 40);
}
END_TEST

START_TEST(test_overall_progress_averages_self_and_children)
{
	struct jobd_job *job;

	job = JOB("progress", "40");
	ck_assert_double_eq(jobd_job_overall_progress(job), 40);
	jobd_job_free(job);

	/* (50 + 100 + 0) / 3 */
	job = JOB("progress", "50", "children_total", "2", "children_progress",
		  "100");
	ck_assert_double_eq(jobd_job_overall_progress(job), 50);
	jobd_job_free(job);

	/* adding a child moves it back: (100 + 100) / 3 */
	job = JOB("progress", "100", "children_total", "2", "children_progress",
		  "100");
	ck_assert_double_eq_tol(jobd_job_overall_progress(job), 200.0 / 3,
				1e-9);
	jobd_job_free(job);
}
END_TEST

/* --- JSON --------------------------------------------------------------------
 */

START_TEST(test_json_has_exactly_the_contract_fields)
{
	static const char *const keys[] = {
		"id",
		"key",
		"source",
		"type",
		"status",
		"system",
		"low_priority",
		"stoppable",
		"restartable",
		"run_by",
		"parent",
		"root",
		"created_at",
		"run_at",
		"scheduled",
		"started_at",
		"finished_at",
		"waiting_ms",
		"duration_ms",
		"progress",
		"overall_progress",
		"errors",
		"finished_with_errors",
		"attempt",
		"restarts",
		"children",
		"inconsistent",
		"waiting_for_children",
		"instance",
		"payload",
		"checkpoint",
		"waiting_for_limit",
	};
	static const char *const child_keys[] = {
		"total",    "pending",	"in_progress", "stopping", "stopped",
		"finished", "canceled", "errors",      "progress",
	};
	json_t *o = json_of(JOB(NULL), T0);
	json_t *ch = json_object_get(o, "children");

	ck_assert_uint_eq(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(json_object_get(o, keys[i]) != NULL, "no \"%s\"",
			      keys[i]);
	ck_assert(json_is_object(ch));
	ck_assert_uint_eq(json_object_size(ch),
			  sizeof(child_keys) / sizeof(child_keys[0]));
	for (size_t i = 0; i < sizeof(child_keys) / sizeof(child_keys[0]); i++)
		ck_assert_msg(
			json_is_number(json_object_get(ch, child_keys[i])),
			"children has no number \"%s\"", child_keys[i]);
	json_decref(o);
}
END_TEST

START_TEST(test_json_of_a_fresh_root_job)
{
	json_t *o = json_of(JOB("created_at", "1700000000000"), T0 + 1234);

	ck_assert_int_eq(int_at(o, "id"), 7);
	assert_null_at(o, "key");
	assert_null_at(o, "source");
	ck_assert_str_eq(str_at(o, "type"), "noop");
	ck_assert_str_eq(str_at(o, "status"), "pending");
	assert_bool_at(o, "system", false);
	assert_bool_at(o, "low_priority", false);
	assert_bool_at(o, "stoppable", true);
	assert_bool_at(o, "restartable", false);
	assert_null_at(o, "run_by");
	assert_null_at(o, "parent");
	ck_assert_int_eq(int_at(o, "root"), 7);
	ck_assert_str_eq(str_at(o, "created_at"), "2023-11-14T22:13:20.000Z");
	assert_null_at(o, "started_at");
	assert_null_at(o, "finished_at");
	ck_assert_int_eq(int_at(o, "waiting_ms"), 1234);
	ck_assert_int_eq(int_at(o, "duration_ms"), 0);
	ck_assert_int_eq(int_at(o, "progress"), 0);
	ck_assert_int_eq(int_at(o, "overall_progress"), 0);
	ck_assert_int_eq(int_at(o, "errors"), 0);
	assert_bool_at(o, "finished_with_errors", false);
	ck_assert_int_eq(int_at(o, "attempt"), 0);
	ck_assert_int_eq(int_at(o, "restarts"), 0);
	assert_bool_at(o, "inconsistent", false);
	assert_bool_at(o, "waiting_for_children", false);
	assert_null_at(o, "instance");
	ck_assert(json_is_object(json_object_get(o, "payload")));
	ck_assert_uint_eq(json_object_size(json_object_get(o, "payload")), 0);
	assert_null_at(o, "checkpoint");
	json_decref(o);
}
END_TEST

START_TEST(test_json_of_a_finished_child_with_errors)
{
	json_t *o = json_of(
		JOB("key", "imp-17", "source", "jobs.records/2@1041", "status",
		    "finished", "low_priority", "1", "restartable", "1",
		    "run_by", "ann", "parent", "3", "root", "2", "created_at",
		    "1700000000000", "started_at", "1700000000250",
		    "finished_at", "1700000061999", "run_ms", "61749",
		    "progress", "100", "errors", "2", "with_errors", "1",
		    "attempt", "2", "restarts", "1", "instance", "host-1",
		    "payload", "{\"file\":\"a.csv\",\"n\":[1,2]}", "checkpoint",
		    "{\"line\":501}"),
		T0 + 999999);
	json_t *payload = json_object_get(o, "payload");

	ck_assert_str_eq(str_at(o, "key"), "imp-17");
	ck_assert_str_eq(str_at(o, "source"), "jobs.records/2@1041");
	ck_assert_str_eq(str_at(o, "status"), "finished");
	assert_bool_at(o, "low_priority", true);
	assert_bool_at(o, "restartable", true);
	ck_assert_str_eq(str_at(o, "run_by"), "ann");
	ck_assert_int_eq(int_at(o, "parent"), 3);
	ck_assert_int_eq(int_at(o, "root"), 2);
	ck_assert_str_eq(str_at(o, "started_at"), "2023-11-14T22:13:20.250Z");
	ck_assert_str_eq(str_at(o, "finished_at"), "2023-11-14T22:14:21.999Z");
	ck_assert_int_eq(int_at(o, "waiting_ms"), 250);
	ck_assert_int_eq(int_at(o, "duration_ms"), 61749);
	ck_assert_int_eq(int_at(o, "progress"), 100);
	ck_assert_int_eq(int_at(o, "errors"), 2);
	assert_bool_at(o, "finished_with_errors", true);
	ck_assert_int_eq(int_at(o, "attempt"), 2);
	ck_assert_int_eq(int_at(o, "restarts"), 1);
	ck_assert_str_eq(str_at(o, "instance"), "host-1");
	ck_assert_str_eq(json_string_value(json_object_get(payload, "file")),
			 "a.csv");
	ck_assert_uint_eq(json_array_size(json_object_get(payload, "n")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(o, "checkpoint"), "line")),
			 501);
	json_decref(o);
}
END_TEST

START_TEST(test_json_status_text_of_each_status)
{
	for (int i = 0; i < JOBD_STATUS_COUNT; i++) {
		json_t *o = json_of(JOB("status", jobd_status_names[i]), T0);

		ck_assert_str_eq(str_at(o, "status"), jobd_status_names[i]);
		json_decref(o);
	}
}
END_TEST

START_TEST(test_json_system_job_runs_for_nobody)
{
	json_t *o = json_of(JOB("system", "1", "run_by", "ann"), T0);

	assert_bool_at(o, "system", true);
	assert_null_at(o, "run_by");
	json_decref(o);
}
END_TEST

START_TEST(test_json_live_values_use_the_clock_given)
{
	struct jobd_job *job = JOB("status", "in_progress", "created_at",
				   "1000", "started_at", "1500", "instance",
				   "h", "run_ms", "100");
	json_t *a = jobd_job_to_json(job, 2000);
	json_t *b = jobd_job_to_json(job, 3000);

	ck_assert_int_eq(int_at(a, "waiting_ms"), 500);
	ck_assert_int_eq(int_at(b, "waiting_ms"), 500);
	ck_assert_int_eq(int_at(a, "duration_ms"), 600);
	ck_assert_int_eq(int_at(b, "duration_ms"), 1600);
	json_decref(a);
	json_decref(b);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_json_progress_rounded_to_two_decimals)
{
	json_t *o;

	o = json_of(JOB("progress", "33.333333"), T0);
	ck_assert_double_eq_tol(number_at(o, "progress"), 33.33, 1e-9);
	json_decref(o);

	/* 99.999 rounds to a whole 100, written as an integer */
	o = json_of(JOB("progress", "99.999"), T0);
	ck_assert_int_eq(int_at(o, "progress"), 100);
	json_decref(o);

	o = json_of(JOB("progress", "0.005"), T0);
	ck_assert_double_eq_tol(number_at(o, "progress"), 0.01, 1e-9);
	json_decref(o);

	/* (0 + 100) / 3 */
	o = json_of(JOB("children_total", "2", "children_progress", "100"), T0);
	ck_assert_double_eq_tol(number_at(o, "overall_progress"), 33.33, 1e-9);
	ck_assert_int_eq(int_at(json_object_get(o, "children"), "progress"),
			 50);
	json_decref(o);
}
END_TEST

START_TEST(test_json_progress_outside_0_100_is_clamped)
{
	static const struct {
		const char *stored;
		int shown;
	} cases[] = {
		{ "nan", 0 },	  { "-inf", 0 },    { "-3", 0 },
		{ "inf", 100 },	  { "1e999", 100 }, { "1e300", 100 },
		{ "100.4", 100 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o = json_of(JOB("progress", cases[i].stored,
					"children_total", "1",
					"children_progress", cases[i].stored),
				    T0);
		json_t *ch = json_object_get(o, "children");

		ck_assert_msg(json_is_integer(json_object_get(o, "progress")) &&
				      int_at(o, "progress") == cases[i].shown,
			      "progress %s: shown as %s, want %d",
			      cases[i].stored,
			      json_dumps(json_object_get(o, "progress"),
					 JSON_ENCODE_ANY),
			      cases[i].shown);
		ck_assert_int_eq(int_at(o, "overall_progress"), cases[i].shown);
		ck_assert_int_eq(int_at(ch, "progress"), cases[i].shown);
		json_decref(o);
	}
}
END_TEST

START_TEST(test_json_children_counts)
{
	json_t *o =
		json_of(JOB("children_total", "7", "children_pending", "1",
			    "children_in_progress", "2", "children_stopping",
			    "1", "children_stopped", "1", "children_finished",
			    "1", "children_canceled", "1", "children_errors",
			    "1", "children_progress", "350"),
			T0);
	json_t *ch = json_object_get(o, "children");

	ck_assert_int_eq(int_at(ch, "total"), 7);
	ck_assert_int_eq(int_at(ch, "pending"), 1);
	ck_assert_int_eq(int_at(ch, "in_progress"), 2);
	ck_assert_int_eq(int_at(ch, "stopping"), 1);
	ck_assert_int_eq(int_at(ch, "stopped"), 1);
	ck_assert_int_eq(int_at(ch, "finished"), 1);
	ck_assert_int_eq(int_at(ch, "canceled"), 1);
	ck_assert_int_eq(int_at(ch, "errors"), 1);
	ck_assert_int_eq(int_at(ch, "progress"), 50);
	ck_assert_double_eq_tol(number_at(o, "overall_progress"), 43.75, 1e-9);
	json_decref(o);
}
END_TEST

START_TEST(test_json_payload_and_checkpoint_any_json_or_null)
{
	json_t *o;

	/* a payload that is not JSON shows as null, never as text */
	o = json_of(JOB("payload", "{not json", "checkpoint", "[1, 2"), T0);
	assert_null_at(o, "payload");
	assert_null_at(o, "checkpoint");
	json_decref(o);

	o = json_of(JOB("payload", "\"just text\"", "checkpoint", "42"), T0);
	ck_assert_str_eq(str_at(o, "payload"), "just text");
	ck_assert_int_eq(int_at(o, "checkpoint"), 42);
	json_decref(o);
}
END_TEST

START_TEST(test_json_unicode_texts_kept)
{
	json_t *o = json_of(JOB("run_by", "Zoë 李", "key", "clé-✓", "payload",
				"{\"name\":\"Ann \\u00e9\"}"),
			    T0);

	ck_assert_str_eq(str_at(o, "run_by"), "Zoë 李");
	ck_assert_str_eq(str_at(o, "key"), "clé-✓");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(o, "payload"), "name")),
			 "Ann é");
	json_decref(o);
}
END_TEST

START_TEST(test_json_times_before_the_epoch_or_zero_are_null)
{
	json_t *o = json_of(JOB("created_at", "0", "started_at", "-5",
				"finished_at", "1"),
			    T0);

	assert_null_at(o, "created_at");
	assert_null_at(o, "started_at");
	ck_assert_str_eq(str_at(o, "finished_at"), "1970-01-01T00:00:00.001Z");
	json_decref(o);
}
END_TEST

START_TEST(test_json_time_far_in_the_future)
{
	/* 9999-12-31T23:59:59.999Z */
	json_t *o = json_of(JOB("created_at", "253402300799999"), T0);

	ck_assert_str_eq(str_at(o, "created_at"), "9999-12-31T23:59:59.999Z");
	ck_assert_int_eq(int_at(o, "waiting_ms"), 0);
	json_decref(o);
}
END_TEST

START_TEST(test_list_json_has_jobs_in_order_and_cursor)
{
	struct jobd_job_list list = { 0 };
	json_t *o, *jobs;

	list.jobs = calloc(2, sizeof(*list.jobs));
	ck_assert_ptr_nonnull(list.jobs);
	list.jobs[0] = must(
		job_of("id", "12", "type", "a", "created_at", "1000", NULL));
	list.jobs[1] = must(
		job_of("id", "5", "type", "b", "created_at", "1500", NULL));
	list.n = 2;
	list.next = 4;
	list.now = 2000;
	o = jobd_job_list_to_json(&list);
	jobs = json_object_get(o, "jobs");
	ck_assert_uint_eq(json_array_size(jobs), 2);
	ck_assert_int_eq(int_at(json_array_get(jobs, 0), "id"), 12);
	ck_assert_int_eq(int_at(json_array_get(jobs, 0), "waiting_ms"), 1000);
	ck_assert_int_eq(int_at(json_array_get(jobs, 1), "id"), 5);
	ck_assert_int_eq(int_at(json_array_get(jobs, 1), "waiting_ms"), 500);
	ck_assert_int_eq(int_at(o, "next"), 4);
	json_decref(o);

	jobd_job_list_release(&list);
	ck_assert_ptr_null(list.jobs);
	ck_assert_uint_eq(list.n, 0);
	o = jobd_job_list_to_json(&list);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "jobs")), 0);
	assert_null_at(o, "next");
	json_decref(o);
}
END_TEST

START_TEST(test_job_free_null_is_noop)
{
	jobd_job_free(NULL);
}
END_TEST

static Suite *job_suite(void)
{
	Suite *s = suite_create("job");
	TCase *tc = tcase_create("status");

	tcase_add_test(tc, test_status_names_parse_back_to_their_status);
	tcase_add_test(tc, test_status_parse_refuses_labels_and_unknown_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_from_fields_without_id_or_type_makes_no_job);
	tcase_add_test(tc, test_from_fields_unknown_status_makes_no_job);
	tcase_add_test(tc, test_from_fields_absent_fields_are_their_defaults);
	tcase_add_test(tc, test_from_fields_reads_every_field);
	tcase_add_test(tc, test_from_fields_each_status);
	tcase_add_test(tc, test_from_fields_empty_texts_are_absent);
	tcase_add_test(tc,
		       test_from_fields_flags_are_true_only_as_lua_writes_them);
	tcase_add_test(tc,
		       test_from_fields_unknown_and_null_fields_are_skipped);
	tcase_add_test(tc,
		       test_from_fields_bad_numbers_read_their_leading_digits);
	tcase_add_test(tc, test_from_fields_first_claim_time_is_started_at);
	tcase_add_test(
		tc, test_from_fields_only_a_running_job_runs_since_its_claim);
	tcase_add_test(
		tc,
		test_from_fields_resumed_waiting_parent_keeps_its_run_since);
	suite_add_tcase(s, tc);

	tc = tcase_create("live");
	tcase_add_test(tc, test_waiting_grows_while_pending);
	tcase_add_test(tc, test_waiting_ends_at_the_first_start);
	tcase_add_test(tc, test_waiting_counts_from_the_last_restart);
	tcase_add_test(tc, test_waiting_of_a_job_stopped_before_it_started);
	tcase_add_test(tc, test_scheduled_until_run_at_and_waiting_from_it);
	tcase_add_test(tc,
		       test_waiting_is_never_negative_for_times_in_the_future);
	tcase_add_test(tc,
		       test_duration_sums_ended_attempts_and_the_running_one);
	tcase_add_test(tc, test_duration_stands_still_unless_running);
	tcase_add_test(tc, test_duration_ignores_a_start_in_the_future);
	tcase_add_test(tc, test_overall_progress_averages_self_and_children);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_has_exactly_the_contract_fields);
	tcase_add_test(tc, test_json_of_a_fresh_root_job);
	tcase_add_test(tc, test_json_of_a_finished_child_with_errors);
	tcase_add_test(tc, test_json_status_text_of_each_status);
	tcase_add_test(tc, test_json_system_job_runs_for_nobody);
	tcase_add_test(tc, test_json_live_values_use_the_clock_given);
	tcase_add_test(tc, test_json_progress_rounded_to_two_decimals);
	tcase_add_test(tc, test_json_progress_outside_0_100_is_clamped);
	tcase_add_test(tc, test_json_children_counts);
	tcase_add_test(tc, test_json_payload_and_checkpoint_any_json_or_null);
	tcase_add_test(tc, test_json_unicode_texts_kept);
	tcase_add_test(tc, test_json_times_before_the_epoch_or_zero_are_null);
	tcase_add_test(tc, test_json_time_far_in_the_future);
	tcase_add_test(tc, test_list_json_has_jobs_in_order_and_cursor);
	tcase_add_test(tc, test_job_free_null_is_noop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(job_suite());
}
