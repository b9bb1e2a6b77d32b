/*
 * check_worker: the worker pool against a real redis-server and the real
 * store: jobs run to the end, parents wait for children without holding a
 * worker, retries, stop/resume from a checkpoint, uninterruptible
 * sections, force stop fencing, low priority, fairness between roots, and
 * claiming ahead.
 *
 * Each test flushes Redis, starts a pool with a conf parsed from text and
 * drives it through the store like jobctl would. Waits poll the store with
 * generous deadlines; the assertions are about order, counts and states.
 */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/conf.h"
#include "base/job.h"
#include "base/util.h"
#include "engine/handler.h"
#include "engine/registry.h"
#include "engine/worker.h"
#include "handlers/builtin.h"
#include "store/records.h"
#include "store/store.h"
#include "testutil.h"

static struct jobd_test_redis *redis;

/* Per test: the conf, a store for the test's own calls, the pool. */
static struct jobd_conf *conf;
static struct jobd_store *st;
static struct jobd_workers *pool;
static struct jobd_test_pool tp;

static void start(int workers, const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "[redis]\naddress = %s\nprefix = t\n"
		 "[engine]\nroles = work\ninstance = test\nworkers = %d\n"
		 "lease = 2s\nheartbeat = 200ms\nlow_priority_share = 0.5\n"
		 "[type.retry]\nhandler = noop\nretries = 2\n"
		 "retry_backoff = 100ms\n%s",
		 jobd_test_redis_address(redis), workers, extra ? extra : "");
	jobd_test_pool_start(&tp, redis, text);
	conf = tp.conf;
	st = tp.st;
	pool = tp.pool;
}

static void teardown(void)
{
	jobd_test_pool_stop(&tp);
	conf = NULL;
	st = NULL;
	pool = NULL;
}

static int64_t submit(const char *type, const char *payload, bool low)
{
	struct jobd_spec spec = { .type = type,
				  .payload = payload,
				  .low_priority = low };
	struct jobd_created out;

	ck_assert_int_eq(jobd_store_create(st, "test", &spec, 1, &out), 0);
	ck_assert_msg(out.id > 0, "create refused: %s", out.error);
	return out.id;
}

static enum jobd_status status_of(int64_t id)
{
	struct jobd_job *job = jobd_test_job(st, id);
	enum jobd_status s = job->status;

	jobd_job_free(job);
	return s;
}

static double progress_of(int64_t id)
{
	struct jobd_job *job = jobd_test_job(st, id);
	double p = job->progress;

	jobd_job_free(job);
	return p;
}

/* Waits until job ID has status S; fails after MS. */
static void wait_status(int64_t id, enum jobd_status s, int ms)
{
	int64_t end = jobd_util_mono_ms() + ms;
	enum jobd_status cur;

	for (;;) {
		cur = status_of(id);
		if (cur == s)
			return;
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "job %lld is %s after %d ms, expected %s",
			      (long long)id, jobd_status_names[cur], ms,
			      jobd_status_names[s]);
		jobd_test_sleep_ms(10);
	}
}

static void op(enum jobd_op o, int64_t id)
{
	struct jobd_op_result r;

	ck_assert_int_eq(jobd_store_op(st, o, "tester", &id, 1, &r), 0);
	ck_assert_msg(r.ok, "%s %lld refused: %s", jobd_op_names[o],
		      (long long)id, r.error);
}

/* "acc" of the job's checkpoint, -1 if none. */
static int64_t checkpoint_field(int64_t id, const char *field)
{
	struct jobd_job *job = jobd_test_job(st, id);
	json_t *j = job->checkpoint ? json_loads(job->checkpoint, 0, NULL) :
				      NULL;
	int64_t v = -1;

	if (json_is_integer(json_object_get(j, field)))
		v = json_integer_value(json_object_get(j, field));
	json_decref(j);
	jobd_job_free(job);
	return v;
}

START_TEST(test_worker_noop_jobs_finish)
{
	int64_t ids[20];
	struct jobd_job *job;

	start(4, NULL);
	for (int i = 0; i < 20; i++)
		ids[i] = submit("noop", "{\"steps\": 3}", false);
	for (int i = 0; i < 20; i++) {
		wait_status(ids[i], JOBD_FINISHED, 10000);
		job = jobd_test_job(st, ids[i]);
		ck_assert(job->progress == 100);
		ck_assert_int_eq(job->errors, 0);
		ck_assert(!job->with_errors);
		ck_assert_int_eq(job->attempt, 1);
		ck_assert_int_eq(checkpoint_field(ids[i], "step"), 3);
		jobd_job_free(job);
	}
	teardown();
}
END_TEST

START_TEST(test_worker_progress_reported_while_running)
{
	int64_t id;
	double p, seen = -1;
	int64_t end;

	start(2, NULL);
	id = submit("noop", "{\"steps\": 10, \"sleep_ms\": 100}", false);
	end = jobd_util_mono_ms() + 10000;
	while (status_of(id) != JOBD_FINISHED && jobd_util_mono_ms() < end) {
		p = progress_of(id);
		if (p > 0 && p < 100)
			seen = p;
		jobd_test_sleep_ms(20);
	}
	ck_assert_int_eq(status_of(id), JOBD_FINISHED);
	ck_assert_msg(seen > 0, "no intermediate progress was visible");
	ck_assert(progress_of(id) == 100);
	teardown();
}
END_TEST

START_TEST(test_worker_parent_waits_for_children_holding_no_worker)
{
	struct jobd_job *job;
	int64_t id;
	int64_t end;
	bool saw_waiting = false;
	struct jobd_workers_stats ws;

	/* One worker: a parent holding it would deadlock its children. */
	start(1, NULL);
	id = submit("noop",
		    "{\"children\": 3, \"child_payload\": "
		    "{\"steps\": 4, \"sleep_ms\": 100}}",
		    false);
	end = jobd_util_mono_ms() + 15000;
	for (;;) {
		job = jobd_test_job(st, id);
		if (job->status == JOBD_FINISHED) {
			jobd_job_free(job);
			break;
		}
		if (job->awaiting) {
			ck_assert_int_eq(job->status, JOBD_IN_PROGRESS);
			saw_waiting = true;
		}
		jobd_job_free(job);
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "parent never finished");
		jobd_test_sleep_ms(20);
	}
	ck_assert(saw_waiting);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->children.total, 3);
	ck_assert_int_eq(job->children.finished, 3);
	ck_assert(!job->with_errors);
	ck_assert(jobd_job_overall_progress(job) == 100);
	jobd_job_free(job);
	jobd_workers_stats(pool, &ws);
	ck_assert_int_eq(ws.claimed, 4);
	teardown();
}
END_TEST

START_TEST(test_worker_parent_finishes_with_errors_when_a_child_failed)
{
	struct jobd_job *job;
	int64_t id;

	start(2, NULL);
	id = submit("noop",
		    "{\"children\": 2, \"child_payload\": "
		    "{\"fail\": true}}",
		    false);
	wait_status(id, JOBD_FINISHED, 10000);
	job = jobd_test_job(st, id);
	ck_assert(job->with_errors);
	ck_assert_int_eq(job->errors, 0);
	ck_assert_int_eq(job->children.errors, 2);
	jobd_job_free(job);
	teardown();
}
END_TEST

START_TEST(test_worker_retries_with_backoff_then_finished_with_errors)
{
	struct jobd_job *job;
	int64_t id, t0 = jobd_util_mono_ms();

	start(2, NULL);
	id = submit("retry", "{\"fail_attempts\": 2}", false);
	wait_status(id, JOBD_FINISHED, 15000);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->attempt, 3);
	ck_assert_int_eq(job->errors, 2);
	ck_assert(job->with_errors);
	jobd_job_free(job);
	/* Backoffs of 100 ms and 200 ms, each jittered by 0.5-1.5. */
	ck_assert_int_ge(jobd_util_mono_ms() - t0, 150);

	/* Out of retries: the failure stands. */
	id = submit("retry", "{\"fail\": true}", false);
	wait_status(id, JOBD_FINISHED, 15000);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->attempt, 3);
	ck_assert_int_eq(job->errors, 3);
	jobd_job_free(job);
	teardown();
}
END_TEST

START_TEST(test_worker_stop_and_resume_continue_from_checkpoint)
{
	const char *payload = "{\"steps\": 20, \"sleep_ms\": 50}";
	int64_t id, ref, step, end;
	double p, stopped_at, low = 100;

	start(2, NULL);
	ref = submit("noop", payload, false);
	id = submit("noop", payload, false);
	end = jobd_util_mono_ms() + 10000;
	while (progress_of(id) < 40) {
		ck_assert(jobd_util_mono_ms() < end);
		jobd_test_sleep_ms(5);
	}
	op(JOBD_OP_STOP, id);
	wait_status(id, JOBD_STOPPED, 5000);
	step = checkpoint_field(id, "step");
	stopped_at = progress_of(id);
	ck_assert_msg(step >= 8 && step < 20, "checkpoint step %lld",
		      (long long)step);
	ck_assert(stopped_at >= 40 && stopped_at < 100);

	op(JOBD_OP_RESUME, id);
	end = jobd_util_mono_ms() + 10000;
	while (status_of(id) != JOBD_FINISHED) {
		p = progress_of(id);
		if (p < low)
			low = p;
		ck_assert(jobd_util_mono_ms() < end);
		jobd_test_sleep_ms(5);
	}
	/* Never back to 0: the second attempt started at the checkpoint. */
	ck_assert_msg(low >= stopped_at,
		      "progress fell to %g after resume "
		      "from %g",
		      low, stopped_at);
	wait_status(ref, JOBD_FINISHED, 10000);
	ck_assert_int_eq(checkpoint_field(id, "step"), 20);
	ck_assert_int_eq(checkpoint_field(id, "acc"),
			 checkpoint_field(ref, "acc"));
	teardown();
}
END_TEST

START_TEST(test_worker_uninterruptible_stays_stopping_until_the_end)
{
	int64_t id, end;
	int status;

	start(2, NULL);
	id = submit("noop",
		    "{\"steps\": 20, \"sleep_ms\": 100, "
		    "\"uninterruptible\": true}",
		    false);
	wait_status(id, JOBD_IN_PROGRESS, 5000);
	jobd_test_sleep_ms(200);
	op(JOBD_OP_STOP, id);
	ck_assert_int_eq(status_of(id), JOBD_STOPPING);
	/* Stopping, never Stopped, until it ends its work: then the job
	 * finishes (polled, not timed: a loaded machine runs it slower). */
	end = jobd_util_mono_ms() + 10000;
	while ((status = status_of(id)) == JOBD_STOPPING) {
		ck_assert(jobd_util_mono_ms() < end);
		jobd_test_sleep_ms(5);
	}
	ck_assert_int_eq(status, JOBD_FINISHED);
	ck_assert_int_eq(checkpoint_field(id, "step"), 20);
	teardown();
}
END_TEST

START_TEST(test_worker_force_stop_fences_the_attempt)
{
	struct jobd_report late = { 0 };
	enum jobd_result res;
	struct jobd_workers_stats ws;
	struct jobd_job *job;
	int64_t id, attempt, end;

	start(2, NULL);
	id = submit("noop",
		    "{\"steps\": 100, \"sleep_ms\": 50, "
		    "\"uninterruptible\": true}",
		    false);
	wait_status(id, JOBD_IN_PROGRESS, 5000);
	jobd_test_sleep_ms(200);
	op(JOBD_OP_STOP, id);
	jobd_test_sleep_ms(300);
	ck_assert_int_eq(status_of(id), JOBD_STOPPING);
	op(JOBD_OP_FORCE_STOP, id);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert(job->inconsistent);
	attempt = job->attempt;
	jobd_job_free(job);

	/* A late write of the fenced attempt is refused. */
	late.id = id;
	late.attempt = attempt;
	late.progress = 99;
	ck_assert_int_eq(jobd_store_report(st, &late, 1, &res), 0);
	ck_assert_int_eq(res, JOBD_RESULT_FENCED);

	/* The worker learns it from the heartbeat and drops the handler. */
	end = jobd_util_mono_ms() + 5000;
	for (;;) {
		jobd_workers_stats(pool, &ws);
		if (ws.fenced >= 1 && ws.running == 0)
			break;
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "handler not abandoned: fenced %lld running %d",
			      (long long)ws.fenced, ws.running);
		jobd_test_sleep_ms(20);
	}
	jobd_test_sleep_ms(300);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert(job->progress < 99);
	jobd_job_free(job);
	teardown();
}
END_TEST

START_TEST(test_worker_low_priority_deferred_under_load)
{
	int64_t normal[4], low[4], last_normal = 0, first_low = INT64_MAX;
	struct jobd_workers_stats ws;
	struct jobd_job *job;

	/* 2 workers, share 0.5: at most one low-priority job at once. */
	start(2, NULL);
	for (int i = 0; i < 4; i++)
		normal[i] = submit("noop", "{\"sleep_ms\": 200}", false);
	for (int i = 0; i < 4; i++)
		low[i] = submit("noop", "{\"sleep_ms\": 200}", true);
	for (int i = 0; i < 4; i++) {
		wait_status(normal[i], JOBD_FINISHED, 10000);
		job = jobd_test_job(st, normal[i]);
		if (job->started_at > last_normal)
			last_normal = job->started_at;
		jobd_job_free(job);
	}
	/* Idle workers take low-priority jobs, one at a time. */
	for (int i = 0; i < 4; i++) {
		wait_status(low[i], JOBD_FINISHED, 10000);
		job = jobd_test_job(st, low[i]);
		if (job->started_at < first_low)
			first_low = job->started_at;
		jobd_job_free(job);
	}
	ck_assert_msg(first_low >= last_normal,
		      "a low-priority job started at %lld before the last "
		      "normal one at %lld",
		      (long long)first_low, (long long)last_normal);
	jobd_workers_stats(pool, &ws);
	ck_assert_int_eq(ws.max_claimed_low, 1);
	teardown();
}
END_TEST

START_TEST(test_worker_fair_between_a_big_root_and_small_ones)
{
	int64_t big, small[20], end;
	struct jobd_job *job;
	int64_t done_before, done_after, total;

	start(4, NULL);
	big = submit("noop",
		     "{\"children\": 2000, \"child_payload\": "
		     "{\"sleep_ms\": 2}}",
		     false);
	/* Let the big root fill its queue first. */
	end = jobd_util_mono_ms() + 30000;
	for (;;) {
		job = jobd_test_job(st, big);
		total = job->children.total;
		jobd_job_free(job);
		if (total >= 500)
			break;
		ck_assert(jobd_util_mono_ms() < end);
		jobd_test_sleep_ms(10);
	}
	job = jobd_test_job(st, big);
	done_before = job->children.finished;
	jobd_job_free(job);
	for (int i = 0; i < 20; i++)
		small[i] = submit("noop", "{\"sleep_ms\": 2}", false);
	for (int i = 0; i < 20; i++)
		wait_status(small[i], JOBD_FINISHED, 10000);
	job = jobd_test_job(st, big);
	done_after = job->children.finished;
	ck_assert_msg(done_after < 1500,
		      "small roots waited for the big one: %lld of 2000 "
		      "children were done first",
		      (long long)done_after);
	jobd_job_free(job);
	/* The big root kept running meanwhile and ends. */
	wait_status(big, JOBD_FINISHED, 120000);
	job = jobd_test_job(st, big);
	ck_assert_int_eq(job->children.finished, 2000);
	jobd_job_free(job);
	(void)done_before;
	teardown();
}
END_TEST

/* Runs 20 no-op jobs: the pool learns that its handlers are short. */
static void learn_short_handlers(void)
{
	int64_t ids[20];

	for (int i = 0; i < 20; i++)
		ids[i] = submit("noop", "{}", false);
	for (int i = 0; i < 20; i++)
		wait_status(ids[i], JOBD_FINISHED, 10000);
}

/*
 * Short handlers let the pool claim a few jobs per worker ahead; a job so
 * claimed that then waits for a worker longer than a second (the one
 * worker is held by a long handler) goes back to pending, and no more are
 * claimed ahead until handlers are short again.
 */
START_TEST(test_worker_claims_ahead_and_hands_back_what_waits)
{
	int64_t slow, ahead[2], end;
	struct jobd_workers_stats ws;
	struct jobd_job *job;

	start(1, NULL);
	learn_short_handlers();
	slow = submit("noop", "{\"sleep_ms\": 4000}", false);
	wait_status(slow, JOBD_IN_PROGRESS, 10000);
	ahead[0] = submit("noop", "{}", false);
	ahead[1] = submit("noop", "{}", false);
	/* Claimed although the only worker is busy. */
	wait_status(ahead[0], JOBD_IN_PROGRESS, 2000);
	wait_status(ahead[1], JOBD_IN_PROGRESS, 2000);
	/* Queued once the claim's reply is in (just after Redis has it). */
	end = jobd_util_mono_ms() + 2000;
	for (;;) {
		jobd_workers_stats(pool, &ws);
		if (ws.queued == 2 || jobd_util_mono_ms() > end)
			break;
		jobd_test_sleep_ms(5);
	}
	ck_assert_int_eq(ws.running, 1);
	ck_assert_int_eq(ws.queued, 2);
	/* Back to pending after about a second, and left there. */
	wait_status(ahead[0], JOBD_PENDING, 3000);
	wait_status(ahead[1], JOBD_PENDING, 3000);
	ck_assert_int_eq(status_of(slow), JOBD_IN_PROGRESS);
	jobd_test_sleep_ms(500);
	ck_assert_int_eq(status_of(ahead[0]), JOBD_PENDING);
	jobd_workers_stats(pool, &ws);
	ck_assert_int_eq(ws.queued, 0);
	ck_assert_int_eq(ws.handed_back, 2);
	/* They run once the worker is free, on their second attempt. */
	wait_status(slow, JOBD_FINISHED, 10000);
	for (int i = 0; i < 2; i++) {
		wait_status(ahead[i], JOBD_FINISHED, 10000);
		job = jobd_test_job(st, ahead[i]);
		ck_assert_int_eq(job->attempt, 2);
		ck_assert(!job->with_errors);
		jobd_job_free(job);
	}
	teardown();
}
END_TEST

/* Handler "count": counts its runs. */
static atomic_int count_runs;

static int count_handler(struct jobd_ctx *ctx)
{
	(void)ctx;
	atomic_fetch_add(&count_runs, 1);
	return JOBD_HANDLER_DONE;
}

/*
 * A job claimed ahead and stopped while it waits for the worker ends
 * Stopped without its handler ever starting; the other one runs.
 */
START_TEST(test_worker_stopped_while_queued_never_starts)
{
	int64_t slow, a, b;

	/* A handler registered under a type's name runs that type. */
	ck_assert_int_eq(jobd_handler_register("count", count_handler), 0);
	start(1, "[type.count]\nhandler = noop\n");
	learn_short_handlers();
	slow = submit("noop", "{\"sleep_ms\": 700}", false);
	wait_status(slow, JOBD_IN_PROGRESS, 10000);
	a = submit("count", "{}", false);
	b = submit("count", "{}", false);
	wait_status(a, JOBD_IN_PROGRESS, 2000);
	wait_status(b, JOBD_IN_PROGRESS, 2000);
	op(JOBD_OP_STOP, b);
	wait_status(b, JOBD_STOPPED, 5000);
	wait_status(a, JOBD_FINISHED, 5000);
	ck_assert_int_eq(atomic_load(&count_runs), 1);
	teardown();
}
END_TEST

/* Handler "fanout": jobd_ctx_spawn_many of five children, then (first
 * attempt only) of three whose third is bad, and fails once, so that the
 * retry spawns the same five again. */
#define FAN_N 5
static atomic_int fan_runs;
static int64_t fan_run_at;	  /* k4's run time, ms since the epoch */
static int fan_rc[2];		  /* per attempt */
static int64_t fan_ids[2][FAN_N]; /* per attempt */
static int fan_bad_rc;		  /* the bad call's */
static size_t fan_bad_at;	  /* the index it named */
static int64_t fan_bad_ids[3];	  /* the ids it returned */

static int fanout_handler(struct jobd_ctx *ctx)
{
	const struct jobd_ctx_child kids[FAN_N] = {
		{ .type = "kid", .key = "k0" },
		{ .type = "kid", .key = "k1", .payload = "{\"n\":1}" },
		{ .type = "kid", .key = "k2", .low_priority = true },
		{ .type = "kid", .key = "k3", .delay = 3600000 },
		{ .type = "kid", .key = "k4", .run_at = fan_run_at },
	};
	const struct jobd_ctx_child bad[3] = {
		{ .type = "kid", .key = "b0" },
		{ .type = "kid", .key = "b1" },
		{ .type = "nosuch", .key = "b2" },
	};
	int a = jobd_ctx_attempt(ctx) == 1 ? 0 : 1;

	fan_rc[a] = jobd_ctx_spawn_many(ctx, kids, FAN_N, fan_ids[a], NULL);
	if (a == 0) {
		fan_bad_ids[0] = fan_bad_ids[1] = fan_bad_ids[2] = -1;
		fan_bad_rc = jobd_ctx_spawn_many(ctx, bad, 3, fan_bad_ids,
						 &fan_bad_at);
	}
	atomic_fetch_add(&fan_runs, 1);
	return a == 0 ? jobd_ctx_fail(ctx, "fanout: failing once") :
			JOBD_HANDLER_DONE;
}

/*
 * jobd_ctx_spawn_many creates its children with their ids, run times and
 * priority, counts each once in the parent, gives a rerun (the retry)
 * the same children by key, and refuses a batch with a bad child whole,
 * naming its index.
 */
START_TEST(test_worker_spawn_many_creates_children_once_by_key)
{
	struct jobd_log_query q = { .grep = "child 2 (\"b2\")" };
	struct jobd_log_result res = { 0 };
	struct jobd_job *job;
	int64_t id, end;

	ck_assert_int_eq(jobd_handler_register("fanout", fanout_handler), 0);
	start(2, "[type.fanout]\nhandler = noop\nretries = 1\n"
		 "retry_backoff = 100ms\n[type.kid]\nhandler = noop\n");
	fan_run_at = jobd_util_now_ms() + 7200000;
	id = submit("fanout", "{}", false);
	end = jobd_util_mono_ms() + 10000;
	while (atomic_load(&fan_runs) < 2) {
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "fanout ran %d times, not twice",
			      atomic_load(&fan_runs));
		jobd_test_sleep_ms(10);
	}
	ck_assert_int_eq(fan_rc[0], 0);
	ck_assert_int_eq(fan_rc[1], 0);
	for (int i = 0; i < FAN_N; i++) {
		ck_assert_int_gt(fan_ids[0][i], id);
		/* the retry got the same children back */
		ck_assert_int_eq(fan_ids[1][i], fan_ids[0][i]);
		for (int k = 0; k < i; k++)
			ck_assert_int_ne(fan_ids[0][k], fan_ids[0][i]);
		job = jobd_test_job(st, fan_ids[0][i]);
		ck_assert_int_eq(job->parent, id);
		ck_assert_str_eq(job->type, "kid");
		ck_assert_str_eq(job->key, i == 0 ? "k0" :
					   i == 1 ? "k1" :
					   i == 2 ? "k2" :
					   i == 3 ? "k3" :
						    "k4");
		ck_assert(job->low_priority == (i == 2));
		ck_assert_str_eq(job->payload, i == 1 ? "{\"n\":1}" : "{}");
		if (i == 3)
			ck_assert_int_gt(job->run_at,
					 jobd_util_now_ms() + 3500000);
		else if (i == 4)
			ck_assert_int_eq(job->run_at, fan_run_at);
		else
			ck_assert_int_eq(job->run_at, 0);
		jobd_job_free(job);
	}
	/* The bad batch: refused whole, naming the bad child. */
	ck_assert_int_eq(fan_bad_rc, JOBD_CTX_ERR_REFUSED);
	ck_assert_uint_eq(fan_bad_at, 2);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fan_bad_ids[i], 0);
	/* Five children counted, once: neither the retry nor b0 and b1 of
	 * the refused batch added any. */
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->children.total, FAN_N);
	ck_assert_int_eq(job->attempt, 2);
	jobd_job_free(job);
	end = jobd_util_mono_ms() + 5000;
	for (;;) {
		ck_assert_int_eq(jobd_store_logs(st, id, &q, &res), 0);
		if (res.n > 0)
			break;
		jobd_log_result_release(&res);
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "no log line names the bad child");
		jobd_test_sleep_ms(20);
	}
	ck_assert_str_eq(res.entries[0].msg,
			 "cannot create children: child 2 (\"b2\") of type "
			 "\"nosuch\": unknown type \"nosuch\"; none created");
	jobd_log_result_release(&res);
	teardown();
}
END_TEST

/* Handler "twofail": fails, then fails again while cleaning up (as a
 * split that cannot create the children it held). */
static int twofail_handler(struct jobd_ctx *ctx)
{
	jobd_ctx_fail(ctx, "read error at line 7");
	return jobd_ctx_fail(ctx, "cannot create chunk 3");
}

/*
 * The first failure of a run is the job's cause: the failure the finish
 * reports (its error entry, after the handler's lines) is the first one,
 * word for word; a later one is logged as it comes, before it, as
 * "also: ...", and is reported nowhere else.
 */
START_TEST(test_worker_first_failure_is_the_cause)
{
	static const char cause_msg[] = "read error at line 7";
	static const char also_msg[] = "also: cannot create chunk 3";
	struct jobd_log_query q = { .min_level = JOBD_LOG_ERROR };
	struct jobd_log_result res = { 0 };
	int64_t id, end;
	size_t i, cause = SIZE_MAX, also = SIZE_MAX;

	ck_assert_int_eq(jobd_handler_register("twofail", twofail_handler), 0);
	start(1, "[type.twofail]\nhandler = noop\n");
	id = submit("twofail", "{}", false);
	wait_status(id, JOBD_FINISHED, 10000);
	end = jobd_util_mono_ms() + 5000;
	for (;;) {
		ck_assert_int_eq(jobd_store_logs(st, id, &q, &res), 0);
		for (i = 0; i < res.n; i++) {
			if (strcmp(res.entries[i].msg, cause_msg) == 0)
				cause = i;
			if (strcmp(res.entries[i].msg, also_msg) == 0)
				also = i;
		}
		if (cause != SIZE_MAX && also != SIZE_MAX)
			break;
		jobd_log_result_release(&res);
		cause = also = SIZE_MAX;
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "no error entry reports \"%s\" as the failure "
			      "and \"%s\" besides",
			      cause_msg, also_msg);
		jobd_test_sleep_ms(20);
	}
	/* The finish's report is the last error entry of the (only) run. */
	ck_assert_msg(cause == res.n - 1,
		      "the failure reported is \"%s\", not the first one",
		      res.entries[res.n - 1].msg);
	ck_assert_msg(also < cause,
		      "the second failure was logged after the report");
	for (i = 0; i < res.n; i++) {
		ck_assert_int_eq(res.entries[i].attempt, 1);
		ck_assert_msg(i == cause || i == also ||
				      (!strstr(res.entries[i].msg, "line 7") &&
				       !strstr(res.entries[i].msg, "chunk 3")),
			      "a failure reported twice: \"%s\"",
			      res.entries[i].msg);
	}
	jobd_log_result_release(&res);
	teardown();
}
END_TEST

/* Writes data file NAME of DIR: a CSV header and ROWS rows. */
static void write_rows(const char *dir, const char *name, int rows)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "id,name\n");
	for (int i = 0; i < rows; i++)
		fprintf(f, "r%d,name %d\n", i, i);
	ck_assert_int_eq(fclose(f), 0);
}

/* Calls of command NAME so far, by INFO commandstats (0: none yet). */
static long long calls_of(const char *name)
{
	char cmd[512], line[512], want[64];
	long long n = 0;
	size_t len;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "redis-cli -s '%s' INFO commandstats",
		 jobd_test_redis_address(redis));
	len = (size_t)snprintf(want, sizeof(want), "cmdstat_%s:calls=", name);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, want, len) == 0)
			n = strtoll(line + len, NULL, 10);
	pclose(f);
	return n;
}

/*
 * The create calls made so far: JOBD.CREATE's (root jobs to run now,
 * where Redis has the module) and create.lua's, each of which runs one
 * INCRBY of the id sequence (the only INCRBY of jobd's functions; a
 * function's commands count in commandstats). A batch of children goes
 * to create.lua at once, so each call counts once.
 */
static long long create_calls(void)
{
	return calls_of("jobd.create") + calls_of("incrby");
}

/*
 * The import's split makes its chunk children in batches, one create
 * call a batch (handlers/common.h, the spawner: 1, 2 and 4 chunks, then
 * the 3 left), where it made one a chunk; each chunk exists once, the
 * checkpoint counts them all. The calls are counted by create_calls().
 */
START_TEST(test_worker_import_split_creates_chunks_in_batches)
{
	char *dir = jobd_test_tmpdir(), extra[4200];
	struct jobd_job *job;
	long long before;
	int64_t id;

	write_rows(dir, "rows.csv", 10);
	snprintf(extra, sizeof(extra),
		 "[engine]\ndata_dir = %s\n[type.import]\nchunk_size = 1\n",
		 dir);
	start(2, extra);
	before = create_calls();
	id = submit("import", "{\"file\":\"rows.csv\",\"collection\":\"rows\"}",
		    false);
	wait_status(id, JOBD_FINISHED, 30000);
	/* The submit, then four batches. */
	ck_assert_int_eq(create_calls() - before, 1 + 4);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->children.total, 10);
	ck_assert_int_eq(job->errors, 0);
	jobd_job_free(job);
	ck_assert_int_eq(checkpoint_field(id, "chunk"), 10);
	ck_assert_int_eq(checkpoint_field(id, "rows"), 10);
	teardown();
	jobd_test_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Checks that the chunk children of import ID are ROWS chunks of one row
 * each, chunk c made once, naming line c + 2 (after the header) under
 * the key c<token>-<c>.
 */
static void chunks_once(int64_t id, int rows)
{
	struct jobd_job_list list = { 0 };
	char *made = calloc((size_t)rows, 1);
	int64_t cursor = 0;
	int n = 0;

	ck_assert_ptr_nonnull(made);
	do {
		ck_assert_int_eq(
			jobd_store_children(st, id, cursor, 1000, &list), 0);
		for (size_t i = 0; i < list.n; i++) {
			const struct jobd_job *c = list.jobs[i];
			json_t *p = json_loads(c->payload, 0, NULL);
			json_int_t chunk =
				json_integer_value(json_object_get(p, "chunk"));
			char suffix[32];

			ck_assert_msg(chunk >= 0 && chunk < rows,
				      "child %lld: chunk %lld",
				      (long long)c->id, (long long)chunk);
			ck_assert_msg(!made[chunk], "chunk %lld made twice",
				      (long long)chunk);
			made[chunk] = 1;
			ck_assert_int_eq(
				json_integer_value(json_object_get(p, "line")),
				chunk + 2);
			ck_assert_int_eq(
				json_integer_value(json_object_get(p, "rows")),
				1);
			snprintf(suffix, sizeof(suffix), "-%lld",
				 (long long)chunk);
			ck_assert_msg(c->key && c->key[0] == 'c' &&
					      strlen(c->key) > strlen(suffix) &&
					      strcmp(c->key + strlen(c->key) -
							     strlen(suffix),
						     suffix) == 0,
				      "chunk %lld has the key %s",
				      (long long)chunk, c->key ? c->key : "");
			json_decref(p);
			n++;
		}
		cursor = list.next;
		jobd_job_list_release(&list);
	} while (cursor);
	ck_assert_int_eq(n, rows);
	free(made);
}

/* Checks that collection COLL holds exactly the ROWS records of
 * write_rows(), each with its name. */
static void records_are_rows(const char *coll, int rows)
{
	char *seen = calloc((size_t)rows, 1), *after = NULL, **ids;
	struct jobd_record *recs;
	int64_t count;
	size_t n;

	ck_assert_ptr_nonnull(seen);
	ck_assert_int_eq(jobd_records_count(st, coll, &count), 0);
	ck_assert_int_eq(count, rows);
	do {
		ck_assert_int_eq(jobd_records_ids(st, coll, after, NULL, 500,
						  &ids, &n),
				 0);
		ck_assert_int_eq(jobd_records_get(st, coll, ids, n, &recs), 0);
		for (size_t i = 0; i < n; i++) {
			char want[64];
			int row = -1;

			ck_assert_msg(sscanf(ids[i], "r%d", &row) == 1 &&
					      row >= 0 && row < rows &&
					      !seen[row],
				      "record %s is no row, or twice", ids[i]);
			seen[row] = 1;
			snprintf(want, sizeof(want), "name %d", row);
			ck_assert(recs[i].exists);
			ck_assert_str_eq(jobd_record_field(&recs[i], "name"),
					 want);
		}
		free(after);
		after = n ? strdup(ids[n - 1]) : NULL;
		jobd_records_free(recs, n);
		jobd_records_ids_free(ids, n);
	} while (n > 0);
	free(after);
	for (int i = 0; i < rows; i++)
		ck_assert_msg(seen[i], "row r%d was not imported", i);
	free(seen);
}

/*
 * An import's split stopped while it makes its chunks, then resumed:
 * the resumed split goes on from the checkpoint of its last batch (its
 * log says so, at the checkpoint's line and chunk), so every chunk is
 * made once (the held ones again under the same keys, the keys naming
 * the same rows), every row lands in one chunk, and every record is
 * imported, once: a chunk of one row writes it in one MULTI/EXEC (the
 * only EXEC of these jobs), so EXEC runs once a row.
 */
START_TEST(test_worker_import_split_stopped_and_resumed_makes_chunks_once)
{
	enum { ROWS = 3000 };
	char *dir = jobd_test_tmpdir(), extra[4200], resumed[128];
	struct jobd_log_query q = { .min_level = JOBD_LOG_INFO,
				    .grep = "resuming the split" };
	struct jobd_log_result res = { 0 };
	struct jobd_job *job;
	int64_t id, end, chunk;
	long long execs;

	write_rows(dir, "many.csv", ROWS);
	snprintf(extra, sizeof(extra),
		 "[engine]\ndata_dir = %s\n[type.import]\nchunk_size = 1\n",
		 dir);
	start(2, extra);
	execs = calls_of("exec");
	id = submit("import", "{\"file\":\"many.csv\",\"collection\":\"many\"}",
		    false);
	end = jobd_util_mono_ms() + 10000;
	for (;;) {
		job = jobd_test_job(st, id);
		if (job->children.total > 0)
			break;
		jobd_job_free(job);
		ck_assert(jobd_util_mono_ms() < end);
		jobd_test_sleep_ms(1);
	}
	jobd_job_free(job);
	op(JOBD_OP_STOP, id);
	wait_status(id, JOBD_STOPPED, 60000);
	chunk = checkpoint_field(id, "chunk");
	ck_assert_msg(chunk > 0 && chunk < ROWS,
		      "the split was not stopped midway: chunk %lld",
		      (long long)chunk);
	job = jobd_test_job(st, id);
	/* The chunks made are those the checkpoint counts, no more. */
	ck_assert_int_eq(job->children.total, chunk);
	jobd_job_free(job);
	op(JOBD_OP_RESUME, id);
	wait_status(id, JOBD_FINISHED, 120000);
	job = jobd_test_job(st, id);
	ck_assert_int_eq(job->children.total, ROWS);
	ck_assert_int_eq(job->errors, 0);
	ck_assert(!job->with_errors);
	jobd_job_free(job);
	ck_assert_int_eq(checkpoint_field(id, "chunk"), ROWS);
	ck_assert_int_eq(checkpoint_field(id, "rows"), ROWS);
	/* Resumed once, where the checkpoint of the stop said: row CHUNK
	 * (line CHUNK + 2, after the header), chunk CHUNK. */
	ck_assert_int_eq(jobd_store_logs(st, id, &q, &res), 0);
	snprintf(resumed, sizeof(resumed),
		 "import: resuming the split at line %lld (chunk %lld)",
		 (long long)chunk + 2, (long long)chunk);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_str_eq(res.entries[0].msg, resumed);
	jobd_log_result_release(&res);
	chunks_once(id, ROWS);
	records_are_rows("many", ROWS);
	ck_assert_int_eq(calls_of("exec") - execs, ROWS);
	teardown();
	jobd_test_rmrf(dir);
	free(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("worker");

	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_worker_noop_jobs_finish);
	tcase_add_test(tc, test_worker_progress_reported_while_running);
	tcase_add_test(tc,
		       test_worker_parent_waits_for_children_holding_no_worker);
	tcase_add_test(
		tc,
		test_worker_parent_finishes_with_errors_when_a_child_failed);
	tcase_add_test(
		tc, test_worker_retries_with_backoff_then_finished_with_errors);
	tcase_add_test(tc,
		       test_worker_stop_and_resume_continue_from_checkpoint);
	tcase_add_test(
		tc, test_worker_uninterruptible_stays_stopping_until_the_end);
	tcase_add_test(tc, test_worker_force_stop_fences_the_attempt);
	tcase_add_test(tc, test_worker_low_priority_deferred_under_load);
	tcase_add_test(tc, test_worker_fair_between_a_big_root_and_small_ones);
	tcase_add_test(tc, test_worker_claims_ahead_and_hands_back_what_waits);
	tcase_add_test(tc, test_worker_stopped_while_queued_never_starts);
	tcase_add_test(tc, test_worker_spawn_many_creates_children_once_by_key);
	tcase_add_test(tc, test_worker_first_failure_is_the_cause);
	tcase_add_test(tc, test_worker_import_split_creates_chunks_in_batches);
	tcase_add_test(
		tc,
		test_worker_import_split_stopped_and_resumed_makes_chunks_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return jobd_test_run_suite_with_redis(suite, &redis);
}
