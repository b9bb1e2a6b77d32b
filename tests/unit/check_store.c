/*
 * check_store: the job store (the C files of src/store/ and its Lua functions)
 * against a real, private redis-server, or against a Redis Cluster of 3
 * primaries with the prefix {jobd} when tests/unit/check_store_cluster.sh
 * runs it (every case, and one of the cluster's; below).
 *
 * Each test drives the store the way its callers do: the engine's calls
 * (create, claim, report, finish, handback, heartbeat, expire) and the
 * operator's operations (jobd_store_op), then reads the jobs back and
 * asserts their statuses, fields and refusal texts (docs/design.md,
 * "State machine").
 * check_tree() verifies after each step that every parent's children_*
 * counters and overall progress agree with what its children really are.
 */
#include "config.h"

#include "store/cluster.h"
#include "store/scripts.h"
#include "store/store.h"
#include "store/store_int.h"

#include "base/log.h"
#include "base/util.h"

#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct jobd_test_redis *redis; /* the private redis-server, or NULL */
static struct jobd_conf *conf;
static struct jobd_store *st;

/*
 * On a Redis Cluster (tests/unit/check_store_cluster.sh exports its seed
 * as $JOBD_TEST_CLUSTER) the suite runs with the prefix "{jobd}": its
 * hash tag puts every key in one slot, as docs/scaling.md says to
 * deploy. The store finds the slot's primary from the seed; the test's
 * own commands (redis-cli, to read and corrupt keys) go to that primary,
 * found once in main(). The tests name keys as on one Redis, "jobd:...";
 * with_prefix() writes them with the cluster's prefix.
 */
static const char *cluster_seed; /* $JOBD_TEST_CLUSTER; NULL: one Redis */
static const char *prefix = "jobd";
static char cluster_owner[300];	   /* redis-cli's options for the primary */
static char cluster_owner_at[300]; /* its host:port */
static char cluster_address[300];  /* another primary's: the store's address */

static const char conf_text[] = "[type.nostop]\n"
				"handler = noop\n"
				"stoppable = no\n"
				"[type.again]\n"
				"handler = noop\n"
				"restartable = yes\n"
				"[type.flaky]\n"
				"handler = noop\n"
				"retries = 2\n"
				"retry_backoff = 1ms\n"
				"[type.sys]\n"
				"handler = noop\n"
				"system = yes\n";

static void flush(void);

static void setup(void)
{
	char err[512];

	flush();
	conf = jobd_conf_parse(conf_text, strlen(conf_text), "test", err,
			       sizeof(err));
	ck_assert_msg(conf != NULL, "conf: %s", err);
	free(conf->redis_address);
	conf->redis_address = strdup(cluster_seed ?
					     cluster_address :
					     jobd_test_redis_address(redis));
	free(conf->prefix);
	conf->prefix = strdup(prefix);
	st = jobd_store_new(conf, err, sizeof(err));
	ck_assert_msg(st != NULL, "store: %s", err);
}

static void teardown(void)
{
	jobd_store_free(st);
	st = NULL;
	jobd_conf_free(conf);
	conf = NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* --- helpers ----------------------------------------------------------- */

static int64_t create_full(const char *type, int64_t parent, const char *key,
			   bool low, const char *run_by, bool *existed)
{
	struct jobd_spec spec = { .type = type,
				  .parent = parent,
				  .key = key,
				  .low_priority = low,
				  .run_by = run_by };
	struct jobd_created out;

	ck_assert_int_eq(jobd_store_create(st, "tester", &spec, 1, &out), 0);
	ck_assert_msg(out.error[0] == '\0', "create %s under %lld: %s", type,
		      (long long)parent, out.error);
	ck_assert_int_gt(out.id, 0);
	if (existed)
		*existed = out.existed;
	return out.id;
}

static int64_t create(const char *type, int64_t parent)
{
	return create_full(type, parent, NULL, false, NULL, NULL);
}

/* Creation refused: returns the reason (static buffer). */
static const char *create_refused(const char *type, int64_t parent)
{
	static char why[200];
	struct jobd_spec spec = { .type = type, .parent = parent };
	struct jobd_created out;

	ck_assert_int_eq(jobd_store_create(st, "tester", &spec, 1, &out), 0);
	ck_assert_int_eq(out.id, 0);
	ck_assert_msg(out.error[0], "create %s under %lld was not refused",
		      type, (long long)parent);
	snprintf(why, sizeof(why), "%s", out.error);
	return why;
}

static struct jobd_job *get(int64_t id)
{
	struct jobd_job *job;
	int64_t now;

	ck_assert_int_eq(jobd_store_get(st, id, &job, &now), 0);
	return job;
}

static const char *status(int64_t id)
{
	struct jobd_job *job = get(id);
	const char *s = jobd_status_names[job->status];

	jobd_job_free(job);
	return s;
}

#define assert_status(id, want) ck_assert_str_eq(status(id), (want))

/* Claims every ready job (up to 1000); caller frees. */
static struct jobd_claim *claim(int max, int max_low, int64_t lease_ms,
				size_t *n)
{
	struct jobd_claim *cl;

	ck_assert_int_eq(jobd_store_claim(st, "test-1", max, max_low, lease_ms,
					  &cl, n),
			 0);
	return cl;
}

/* Claims ready jobs and expects exactly ID among them: its attempt. */
static int64_t claim_only(int64_t id)
{
	size_t n;
	struct jobd_claim *cl = claim(100, 100, 60000, &n);
	int64_t attempt;

	ck_assert_msg(n == 1, "claimed %zu jobs, want only job %lld", n,
		      (long long)id);
	ck_assert_int_eq(cl[0].id, id);
	attempt = cl[0].attempt;
	jobd_store_claims_free(cl, n);
	return attempt;
}

/* Claims at most MAX jobs: how many it got. */
static size_t claim_count_of(int max)
{
	size_t n;
	struct jobd_claim *cl = claim(max, max, 60000, &n);

	jobd_store_claims_free(cl, n);
	return n;
}

static size_t claim_count(void)
{
	return claim_count_of(1000);
}

static enum jobd_result finish_full(int64_t id, int64_t attempt,
				    enum jobd_outcome outcome, double progress,
				    int64_t errors, const char *checkpoint)
{
	struct jobd_report r = { .id = id,
				 .attempt = attempt,
				 .progress = progress,
				 .errors = errors,
				 .checkpoint = checkpoint,
				 .outcome = outcome,
				 .message = "it broke" };
	enum jobd_result res;

	ck_assert_int_eq(jobd_store_finish(st, &r, 1, &res), 0);
	return res;
}

static enum jobd_result finish(int64_t id, int64_t attempt,
			       enum jobd_outcome outcome)
{
	return finish_full(id, attempt, outcome, -1, 0, NULL);
}

static enum jobd_result report(int64_t id, int64_t attempt, double progress,
			       const char *checkpoint)
{
	struct jobd_report r = { .id = id,
				 .attempt = attempt,
				 .progress = progress,
				 .checkpoint = checkpoint };
	enum jobd_result res;

	ck_assert_int_eq(jobd_store_report(st, &r, 1, &res), 0);
	return res;
}

static enum jobd_result heartbeat(int64_t id, int64_t attempt)
{
	enum jobd_result res;

	ck_assert_int_eq(
		jobd_store_heartbeat(st, &id, &attempt, 1, 60000, &res), 0);
	return res;
}

static enum jobd_result handback(int64_t id, int64_t attempt,
				 const char *checkpoint)
{
	struct jobd_report r = { .id = id,
				 .attempt = attempt,
				 .progress = -1,
				 .checkpoint = checkpoint };
	enum jobd_result res;

	ck_assert_int_eq(jobd_store_handback(st, "shutdown", &r, 1, &res), 0);
	return res;
}

static void op_ok(enum jobd_op op, int64_t id)
{
	struct jobd_op_result out;

	ck_assert_int_eq(jobd_store_op(st, op, "alice", &id, 1, &out), 0);
	ck_assert_msg(out.ok, "%s %lld refused: %s", jobd_op_names[op],
		      (long long)id, out.error);
	ck_assert_int_eq(out.id, id);
}

/* OP on ID must be refused with exactly WANT; nothing may change. */
static void op_refused(enum jobd_op op, int64_t id, const char *want)
{
	struct jobd_op_result out;
	struct jobd_job *before = NULL, *after = NULL;
	int64_t now;

	jobd_store_get(st, id, &before, &now);
	ck_assert_int_eq(jobd_store_op(st, op, "alice", &id, 1, &out), 0);
	ck_assert_msg(!out.ok, "%s %lld was not refused", jobd_op_names[op],
		      (long long)id);
	ck_assert_str_eq(out.error, want);
	jobd_store_get(st, id, &after, &now);
	if (before) {
		ck_assert_ptr_nonnull(after);
		ck_assert_int_eq(after->status, before->status);
		ck_assert_int_eq(after->low_priority, before->low_priority);
		ck_assert_int_eq(after->attempt, before->attempt);
		ck_assert_int_eq(after->restarts, before->restarts);
	}
	jobd_job_free(before);
	jobd_job_free(after);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];
	va_list ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

/*
 * The invariant of every tree: a parent's children_* counters equal a count
 * of its direct children's statuses, and its children_progress equals the
 * sum of their overall progress. Checked recursively; returns the number of
 * jobs in the subtree.
 */
static size_t check_tree(int64_t id)
{
	struct jobd_job *job = get(id);
	struct jobd_children c = { 0 };
	double sum = 0;
	size_t jobs = 1;
	int64_t cursor = 0;

	for (;;) {
		struct jobd_job_list list;

		ck_assert_int_eq(
			jobd_store_children(st, id, cursor, 1000, &list), 0);
		for (size_t i = 0; i < list.n; i++) {
			struct jobd_job *k = list.jobs[i];

			ck_assert_int_eq(k->parent, id);
			ck_assert_int_eq(k->root, job->root);
			c.total++;
			switch (k->status) {
			case JOBD_PENDING:
				c.pending++;
				break;
			case JOBD_IN_PROGRESS:
				c.in_progress++;
				break;
			case JOBD_STOPPING:
				c.stopping++;
				break;
			case JOBD_STOPPED:
				c.stopped++;
				break;
			case JOBD_FINISHED:
				c.finished++;
				if (k->with_errors)
					c.errors++;
				break;
			case JOBD_CANCELED:
				c.canceled++;
				break;
			default:
				ck_abort_msg("bad status");
			}
			sum += jobd_job_overall_progress(k);
			if (k->children.total)
				jobs += check_tree(k->id);
			else
				jobs++;
		}
		cursor = list.next;
		jobd_job_list_release(&list);
		if (!cursor)
			break;
	}
#define SAME(f)                                                         \
	ck_assert_msg(job->children.f == c.f,                           \
		      "job %lld: children_" #f " = %lld, counted %lld", \
		      (long long)id, (long long)job->children.f,        \
		      (long long)c.f)
	SAME(total);
	SAME(pending);
	SAME(in_progress);
	SAME(stopping);
	SAME(stopped);
	SAME(finished);
	SAME(canceled);
	SAME(errors);
#undef SAME
	ck_assert_msg(
		fabs(job->children_progress - sum) < 1e-6,
		"job %lld: children_progress %f, children's overall sum %f",
		(long long)id, job->children_progress, sum);
	ck_assert_msg(fabs(jobd_job_overall_progress(job) -
			   (job->progress + sum) / (1.0 + (double)c.total)) <
			      1e-6,
		      "job %lld: overall progress does not match the formula",
		      (long long)id);
	jobd_job_free(job);
	return jobs;
}

static int64_t count_of(enum jobd_status s)
{
	int64_t counts[JOBD_STATUS_COUNT];

	ck_assert_int_eq(jobd_store_counts(st, counts), 0);
	return counts[s];
}

/* --- create ------------------------------------------------------------ */

START_TEST(test_create_makes_pending_job_with_policy_and_fields)
{
	struct jobd_spec spec = { .type = "noop",
				  .key = "k1",
				  .source = "jobs.records/2@1041",
				  .payload = "{\"a\":1}",
				  .run_by = "bob" };
	struct jobd_created out;
	struct jobd_job *job;

	ck_assert_int_eq(jobd_store_create(st, "tester", &spec, 1, &out), 0);
	ck_assert_str_eq(out.error, "");
	ck_assert(!out.existed);
	job = get(out.id);
	ck_assert_int_eq(job->status, JOBD_PENDING);
	ck_assert_str_eq(job->type, "noop");
	ck_assert_str_eq(job->key, "k1");
	ck_assert_str_eq(job->source, "jobs.records/2@1041");
	ck_assert_str_eq(job->payload, "{\"a\":1}");
	ck_assert_str_eq(job->run_by, "bob");
	ck_assert_int_eq(job->parent, 0);
	ck_assert_int_eq(job->root, out.id);
	ck_assert_int_eq(job->attempt, 0);
	ck_assert_int_gt(job->created_at, 1600000000000LL);
	ck_assert_int_eq(job->started_at, 0);
	ck_assert(!job->system);
	ck_assert(!job->low_priority);
	ck_assert(job->stoppable);
	ck_assert(!job->restartable);
	jobd_job_free(job);
	ck_assert_int_eq(count_of(JOBD_PENDING), 1);
	/* The policy copied into the job, shown in its JSON (the monitor
	 * enables Stop and Restart by it). */
	for (int i = 0; i < 2; i++) {
		json_t *o;

		job = get(create(i ? "again" : "nostop", 0));
		o = jobd_job_to_json(job, job->created_at);
		ck_assert(json_is_true(json_object_get(o, "stoppable")) == i);
		ck_assert(json_is_true(json_object_get(o, "restartable")) == i);
		json_decref(o);
		jobd_job_free(job);
	}
}
END_TEST

static long long keys_matching(const char *pattern);
static void rcli(const char *args);
static void fsck_clean(const char *when);
static long long rcli_int(const char *args);

/* Whether job ID's hash holds FIELD (HEXISTS). */
static bool has_field(int64_t id, const char *field)
{
	return rcli_int(fmt("HEXISTS jobd:job:%lld %s", (long long)id,
			    field)) == 1;
}

/* Whether a violation that fsck reports holds WANT. */
static bool fsck_finds(const char *want)
{
	struct jobd_fsck f;
	bool found = false;

	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	for (size_t i = 0; i < f.nviolations; i++)
		if (strstr(f.violations[i], want))
			found = true;
	jobd_fsck_release(&f);
	return found;
}

/*
 * A pending job's hash holds neither status (pending, its default) nor a
 * payload of {} (docs/redis-keys.md): create writes neither, and every
 * reader takes an absent status as pending and an absent payload as {}.
 * A hash of an earlier version, with both, reads the same. A hash
 * without a type is no job, whatever its status.
 */
START_TEST(test_a_pending_job_stores_no_status_nor_empty_payload)
{
	struct jobd_spec spec = { .type = "noop", .payload = "{\"a\":1}" };
	struct jobd_filter f = { .status = "pending", .all = true };
	struct jobd_created out;
	struct jobd_job_list list;
	struct jobd_claim *cl;
	struct jobd_why w;
	struct jobd_job *job;
	int64_t a = create("noop", 0), kid = create("noop", a), b, old, gone;
	int64_t stop = create("noop", 0), cancel = create("noop", 0);
	size_t n, seen = 0;

	ck_assert_int_eq(jobd_store_create(st, "tester", &spec, 1, &out), 0);
	b = out.id;
	old = create("noop", 0);
	rcli(fmt("HSET jobd:job:%lld status pending payload {}",
		 (long long)old));
	for (int64_t id = a; id < old; id++) {
		ck_assert_msg(!has_field(id, "status"), "job %lld: status",
			      (long long)id);
		ck_assert_int_eq(has_field(id, "payload"), id == b);
		job = get(id);
		ck_assert_int_eq(job->status, JOBD_PENDING);
		ck_assert_str_eq(job->payload, id == b ? "{\"a\":1}" : "{}");
		jobd_job_free(job);
	}
	ck_assert_int_eq(count_of(JOBD_PENDING), 6);
	fsck_clean("fresh jobs");
	/* Listed as pending, newest first and sorted by status. */
	for (int sorted = 0; sorted < 2; sorted++) {
		f.sort = sorted ? "status" : NULL;
		f.limit = 100;
		ck_assert_int_eq(jobd_store_list(st, &f, &list), 0);
		ck_assert_uint_eq(list.n, 6);
		for (size_t i = 0; i < list.n; i++)
			ck_assert_int_eq(list.jobs[i]->status, JOBD_PENDING);
		jobd_job_list_release(&list);
	}
	ck_assert_int_eq(jobd_store_why(st, a, &w), 0);
	ck_assert_int_eq(w.status, JOBD_PENDING);
	ck_assert_str_ne(w.reasons[0].code, "not_pending");
	/* Stopped from pending; a cancel needs stopped. */
	op_ok(JOBD_OP_STOP, stop);
	assert_status(stop, "stopped");
	op_refused(JOBD_OP_CANCEL, cancel,
		   fmt("job %lld is pending: cancel needs stopped",
		       (long long)cancel));
	op_ok(JOBD_OP_STOP, cancel);
	op_ok(JOBD_OP_CANCEL, cancel);
	assert_status(cancel, "canceled");
	/* Claimed with their payloads, {} for those without. */
	cl = claim(100, 100, 60000, &n);
	for (size_t i = 0; i < n; i++) {
		int64_t id = cl[i].id;

		ck_assert_msg(id == a || id == kid || id == b || id == old,
			      "claimed job %lld", (long long)id);
		ck_assert_str_eq(cl[i].payload, id == b ? "{\"a\":1}" : "{}");
		seen++;
	}
	ck_assert_uint_eq(seen, 4);
	jobd_store_claims_free(cl, n);
	assert_status(a, "in_progress");
	assert_status(old, "in_progress");
	/* Back to pending: the status is written (handback). */
	ck_assert_int_eq(handback(b, 1, NULL), JOBD_RESULT_PENDING);
	ck_assert_int_eq(
		rcli_int(fmt("HSTRLEN jobd:job:%lld status", (long long)b)),
		strlen("pending"));
	assert_status(b, "pending");
	ck_assert_int_eq(claim_only(b), 2);
	fsck_clean("after the transitions");
	/* A hash without a type is no job, with a status or without. */
	gone = create("noop", 0);
	rcli(fmt("HDEL jobd:job:%lld type", (long long)gone));
	ck_assert(fsck_finds("not a job"));
	rcli(fmt("HSET jobd:job:%lld status pending", (long long)gone));
	ck_assert(fsck_finds("not a job"));
	ck_assert_int_eq(jobd_store_get(st, gone, &job, &out.id),
			 JOBD_STORE_ERR_NOTFOUND);
	/* Nor is it claimed (its entry in P:alone is stale). */
	ck_assert_uint_eq(claim_count(), 0);
}
END_TEST

START_TEST(test_create_system_job_has_no_run_by)
{
	int64_t id = create_full("sys", 0, NULL, false, "bob", NULL);
	struct jobd_job *job = get(id);

	ck_assert(job->system);
	ck_assert_ptr_null(job->run_by);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_create_refuses_unknown_type_bad_payload_missing_parent)
{
	struct jobd_spec specs[3] = {
		{ .type = "nosuch" },
		{ .type = "noop", .payload = "{bad" },
		{ .type = "noop", .parent = 999 },
	};
	struct jobd_created out[3];

	ck_assert_int_eq(jobd_store_create(st, "t", specs, 3, out), 0);
	ck_assert_str_eq(out[0].error, "unknown type \"nosuch\"");
	ck_assert_int_eq(out[0].id, 0);
	ck_assert_msg(strstr(out[1].error, "payload is not valid JSON"), "%s",
		      out[1].error);
	ck_assert_int_eq(out[1].id, 0);
	ck_assert_str_eq(out[2].error, "parent 999 not found");
	ck_assert_int_eq(out[2].id, 0);
	ck_assert_int_eq(count_of(JOBD_PENDING), 0);
}
END_TEST

START_TEST(test_create_same_key_returns_same_job)
{
	bool existed;
	int64_t a = create_full("noop", 0, "order-1", false, NULL, &existed);
	int64_t b;

	ck_assert(!existed);
	b = create_full("noop", 0, "order-1", false, NULL, &existed);
	ck_assert(existed);
	ck_assert_int_eq(a, b);
	ck_assert_int_eq(count_of(JOBD_PENDING), 1);
	/* A key is scoped to the parent: the same key under a job is new. */
	b = create_full("noop", a, "order-1", false, NULL, &existed);
	ck_assert(!existed);
	ck_assert_int_ne(a, b);
}
END_TEST

START_TEST(test_create_retried_after_lost_reply_makes_no_second_job)
{
	struct jobd_spec specs[4] = {
		{ .type = "noop", .key = "m-1" },
		{ .type = "noop", .key = "m-2" },
		{ .type = "noop",
		  .key = "m-1" }, /* retried in the same batch */
		{ .type = "noop", .key = "m-2" },
	};
	struct jobd_created out[4], again[2];

	ck_assert_int_eq(jobd_store_create(st, "t", specs, 4, out), 0);
	ck_assert(!out[0].existed && !out[1].existed);
	ck_assert(out[2].existed && out[3].existed);
	ck_assert_int_eq(out[2].id, out[0].id);
	ck_assert_int_eq(out[3].id, out[1].id);
	/* The whole batch again, as after a dropped connection. */
	ck_assert_int_eq(jobd_store_create(st, "t", specs, 2, again), 0);
	ck_assert(again[0].existed && again[1].existed);
	ck_assert_int_eq(again[0].id, out[0].id);
	ck_assert_int_eq(again[1].id, out[1].id);
	ck_assert_int_eq(count_of(JOBD_PENDING), 2);
}
END_TEST

START_TEST(test_create_in_halves_with_two_calls_on_their_way)
{
	struct jobd_spec a[2] = { { .type = "noop", .key = "h-1" },
				  { .type = "nosuch", .key = "h-2" } };
	struct jobd_spec b[1] = { { .type = "noop",
				    .key = "h-3",
				    .payload = "{\"x\":1}",
				    .payload_checked = true } };
	struct jobd_spec c[1] = { { .type = "nosuch", .key = "h-4" } };
	struct jobd_created oa[2], ob[1], oc[1];
	struct jobd_job *job;

	ck_assert_int_eq(jobd_store_create_send(st, "t", a, 2, oa), 0);
	ck_assert_int_eq(jobd_store_create_send(st, "t", b, 1, ob), 0);
	/* Two on their way at most. */
	ck_assert_int_eq(jobd_store_create_send(st, "t", c, 1, oc),
			 JOBD_STORE_ERR_REDIS);
	/* Replies come oldest first. */
	ck_assert_int_eq(jobd_store_create_recv(st, oa), 0);
	ck_assert_int_gt(oa[0].id, 0);
	ck_assert(!oa[0].existed);
	ck_assert_str_eq(oa[1].error, "unknown type \"nosuch\"");
	ck_assert_int_eq(oa[1].id, 0);
	/* All refused here: no call, and a "reply" all the same. */
	ck_assert_int_eq(jobd_store_create_send(st, "t", c, 1, oc), 0);
	ck_assert_int_eq(jobd_store_create_recv(st, ob), 0);
	ck_assert_int_gt(ob[0].id, oa[0].id);
	ck_assert_int_eq(jobd_store_create_recv(st, oc), 0);
	ck_assert_str_eq(oc[0].error, "unknown type \"nosuch\"");
	ck_assert_int_eq(jobd_store_create_recv(st, oc), JOBD_STORE_ERR_REDIS);
	/* The store takes other calls again; the jobs are whole. */
	ck_assert_int_eq(count_of(JOBD_PENDING), 2);
	job = get(ob[0].id);
	ck_assert_str_eq(job->payload, "{\"x\":1}");
	ck_assert_str_eq(job->key, "h-3");
	jobd_job_free(job);
}
END_TEST

START_TEST(test_create_sent_then_connection_lost_is_made_again)
{
	struct jobd_spec a[2] = { { .type = "noop", .key = "l-1" },
				  { .type = "noop", .key = "l-2" } };
	struct jobd_spec b[1] = { { .type = "noop", .key = "l-3" } };
	struct jobd_spec d[1] = { { .type = "noop", .key = "l-4" } };
	struct jobd_created oa[2], ob[1], od[1];
	struct jobd_store *other;
	redisReply *r;
	char err[512];

	other = jobd_store_new(conf, err, sizeof(err));
	ck_assert_msg(other != NULL, "store: %s", err);
	/* Writes wait while paused: the calls are sent, not run. */
	r = jobd_store_command(other, "CLIENT PAUSE 10000 WRITE");
	ck_assert(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	ck_assert_int_eq(jobd_store_create_send(st, "t", a, 2, oa), 0);
	ck_assert_int_eq(jobd_store_create_send(st, "t", b, 1, ob), 0);
	r = jobd_store_command(other, "CLIENT KILL TYPE normal SKIPME yes");
	ck_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
	freeReplyObject(r);
	r = jobd_store_command(other, "CLIENT UNPAUSE");
	freeReplyObject(r);
	/* Both replies are lost with the connection... */
	ck_assert_int_eq(jobd_store_create_recv(st, oa), JOBD_STORE_ERR_REDIS);
	/* ...even when a new call went out on a new one in between: the
	 * second reply read is that call's, not the lost one's. */
	ck_assert_int_eq(jobd_store_create_send(st, "t", d, 1, od), 0);
	ck_assert_int_eq(jobd_store_create_recv(st, ob), JOBD_STORE_ERR_REDIS);
	ck_assert_int_eq(jobd_store_create_recv(st, od), 0);
	ck_assert_int_gt(od[0].id, 0);
	ck_assert(!od[0].existed);
	ck_assert_int_eq(count_of(JOBD_PENDING), 1);
	/* ...and the calls made again create each job once. */
	ck_assert_int_eq(jobd_store_create(st, "t", a, 2, oa), 0);
	ck_assert_int_eq(jobd_store_create(st, "t", b, 1, ob), 0);
	ck_assert(!oa[0].existed && !oa[1].existed && !ob[0].existed);
	ck_assert_int_eq(jobd_store_create(st, "t", b, 1, ob), 0);
	ck_assert(ob[0].existed);
	ck_assert_int_eq(count_of(JOBD_PENDING), 4);
	jobd_store_free(other);
}
END_TEST

/* Specs refused before anything is sent need no Redis: a consumer
 * dead-letters them even while Redis is unreachable. */
START_TEST(test_create_refused_here_needs_no_redis)
{
	struct jobd_spec good = { .type = "noop" }, bad = { .type = "nosuch" };
	struct jobd_created out;
	struct jobd_store *other;
	redisReply *r;
	char err[512];

	signal(SIGPIPE, SIG_IGN); /* as jobd does: a write to the dropped
				     connection fails instead */
	other = jobd_store_new(conf, err, sizeof(err));
	ck_assert_msg(other != NULL, "store: %s", err);
	/* Redis gone for st: its connection dropped, no server at the
	 * address it would reconnect to. */
	free(conf->redis_address);
	conf->redis_address = strdup("/nonexistent/jobd-check-store.sock");
	r = jobd_store_command(other, "CLIENT KILL TYPE normal SKIPME yes");
	ck_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
	freeReplyObject(r);
	ck_assert_int_eq(jobd_store_create(st, "t", &good, 1, &out),
			 JOBD_STORE_ERR_REDIS);
	ck_assert_int_eq(jobd_store_create(st, "t", &bad, 1, &out), 0);
	ck_assert_str_eq(out.error, "unknown type \"nosuch\"");
	jobd_store_free(other);
}
END_TEST

START_TEST(test_create_child_derives_root_and_inherits_low_priority)
{
	int64_t r = create_full("noop", 0, NULL, true, NULL, NULL);
	int64_t c = create("noop", r);
	int64_t g = create("noop", c);
	struct jobd_job *job = get(g);

	ck_assert_int_eq(job->root, r);
	ck_assert_int_eq(job->parent, c);
	ck_assert(job->low_priority);
	jobd_job_free(job);
	job = get(r);
	ck_assert_int_eq(job->children.total, 1);
	ck_assert_int_eq(job->children.pending, 1);
	jobd_job_free(job);
	check_tree(r);
}
END_TEST

START_TEST(test_create_child_under_stopping_or_stopped_parent_is_stopped)
{
	int64_t p = create("noop", 0), c1, c2;
	int64_t a = claim_only(p);

	op_ok(JOBD_OP_STOP, p);
	assert_status(p, "stopping");
	c1 = create("noop", p);
	assert_status(c1, "stopped");
	ck_assert_int_eq(finish(p, a, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	assert_status(p, "stopped");
	c2 = create("noop", p);
	assert_status(c2, "stopped");
	ck_assert_int_eq(claim_count(), 0);
	check_tree(p);
}
END_TEST

START_TEST(test_create_child_refused_under_finished_parent)
{
	int64_t f = create("noop", 0);
	int64_t a = claim_only(f);

	ck_assert_int_eq(finish(f, a, JOBD_OUTCOME_DONE), JOBD_RESULT_FINISHED);
	ck_assert_str_eq(create_refused("noop", f),
			 fmt("parent %lld is finished: no new children",
			     (long long)f));
	check_tree(f);
}
END_TEST

START_TEST(test_create_child_refused_under_canceled_parent)
{
	int64_t p = create("noop", 0);

	op_ok(JOBD_OP_STOP, p);
	op_ok(JOBD_OP_CANCEL, p);
	assert_status(p, "canceled");
	ck_assert_str_eq(create_refused("noop", p),
			 fmt("parent %lld is canceled: no new children",
			     (long long)p));
}
END_TEST

/* --- claim ------------------------------------------------------------- */

START_TEST(test_claim_increments_attempt_and_sets_in_progress)
{
	int64_t id = create("noop", 0);
	struct jobd_job *job;
	int64_t a = claim_only(id);

	ck_assert_int_eq(a, 1);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_IN_PROGRESS);
	ck_assert_int_eq(job->attempt, 1);
	ck_assert_int_gt(job->started_at, 0);
	ck_assert_str_eq(job->instance, "test-1");
	jobd_job_free(job);
	ck_assert_int_eq(handback(id, a, "{\"at\":3}"), JOBD_RESULT_PENDING);
	a = claim_only(id);
	ck_assert_int_eq(a, 2);
	ck_assert_int_eq(claim_count(), 0);
}
END_TEST

START_TEST(test_claim_is_fair_between_roots)
{
	int64_t big = create("noop", 0), small;
	size_t n;
	struct jobd_claim *cl;
	int big_seen = 0;

	for (int i = 0; i < 20; i++)
		create("noop", big);
	small = create("noop", 0);
	/* The small root arrived last but is served within the first two. */
	cl = claim(2, 0, 60000, &n);
	ck_assert_int_eq(n, 2);
	ck_assert_msg(cl[0].id == small || cl[1].id == small,
		      "small root not among the first claims: %lld %lld",
		      (long long)cl[0].id, (long long)cl[1].id);
	for (size_t i = 0; i < n; i++) {
		if (cl[i].id != small) {
			ck_assert_int_eq(cl[i].root, big);
			big_seen++;
		}
	}
	ck_assert_int_eq(big_seen, 1);
	jobd_store_claims_free(cl, n);
}
END_TEST

/* Claims one job at a time, N times: the ids in claim order. */
static void claim_one_by_one(int64_t *ids, int n)
{
	for (int i = 0; i < n; i++) {
		size_t got;
		struct jobd_claim *cl = claim(1, 0, 60000, &got);

		ck_assert_uint_eq(got, 1);
		ids[i] = cl[0].id;
		jobd_store_claims_free(cl, got);
	}
}

/*
 * Roots without children wait in one list (lib.lua enqueue), served in
 * arrival order, and take their turn beside a root with thousands of
 * ready children created before them: each is served within the first
 * claims, not after the tree.
 */
START_TEST(test_claim_serves_roots_without_children_in_order_beside_a_big_tree)
{
	static struct jobd_spec kids[500];
	static struct jobd_created out[500];
	int64_t big = create("noop", 0), small[5], order[8];
	int seen = 0;

	for (int i = 0; i < 500; i++)
		kids[i] = (struct jobd_spec){ .type = "noop", .parent = big };
	for (int b = 0; b < 4; b++)
		ck_assert_int_eq(
			jobd_store_create(st, "tester", kids, 500, out), 0);
	for (int i = 0; i < 5; i++)
		small[i] = create("noop", 0);
	claim_one_by_one(order, 8);
	for (int i = 0; i < 8; i++) {
		if (seen < 5 && order[i] == small[seen])
			seen++;
		else
			ck_assert_msg(
				order[i] < small[0],
				"claim %d: %lld, a small root out of order", i,
				(long long)order[i]);
	}
	ck_assert_msg(seen == 5, "only %d small roots in the first 8 claims",
		      seen);
}
END_TEST

/*
 * A root left in the list more than once (stopped and resumed, moved to
 * low priority and back), stopped, or given a child leaves stale entries
 * behind: each pending state runs once, and fsck counts the stale
 * entries without calling them violations.
 */
START_TEST(test_stale_entries_of_roots_without_children_run_nothing_twice)
{
	int64_t x = create("flaky", 0), y = create("noop", 0);
	int64_t p = create("noop", 0), c, ids[2];
	struct jobd_fsck f;
	size_t n;
	struct jobd_claim *cl;
	int xs = 0, ps = 0, cs = 0;

	op_ok(JOBD_OP_STOP, x);
	op_ok(JOBD_OP_RESUME, x);
	op_ok(JOBD_OP_LOW_PRIORITY, x);
	op_ok(JOBD_OP_LOW_PRIORITY_OFF, x);
	op_ok(JOBD_OP_STOP, y);
	c = create("noop", p);
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_msg(f.nviolations == 0, "%s",
		      f.nviolations ? f.violations[0] : "");
	/* alone: x (first, runs), p (has a child), x, y (stopped), x;
	 * alone_low: x (not low now). */
	ck_assert_uint_eq(f.stale, 3);
	jobd_fsck_release(&f);
	/* One at a time, so the stale entries outlive a run of x. p, a
	 * queue of its own at the floor, sorts before the list. */
	claim_one_by_one(ids, 2);
	ck_assert_int_eq(ids[0], p);
	ck_assert_int_eq(ids[1], x);
	ps = 1;
	ck_assert_int_eq(finish(x, 1, JOBD_OUTCOME_FAILED), JOBD_RESULT_RETRY);
	assert_status(x, "pending");
	sleep_ms(20); /* the retry's backoff, 1 ms */
	for (;;) {
		cl = claim(1, 1, 60000, &n);
		for (size_t i = 0; i < n; i++) {
			xs += cl[i].id == x;
			ps += cl[i].id == p;
			cs += cl[i].id == c;
			ck_assert_int_ne(cl[i].id, y);
			if (cl[i].id == x)
				ck_assert_int_eq(cl[i].attempt, 2);
		}
		jobd_store_claims_free(cl, n);
		if (n == 0)
			break;
	}
	ck_assert_int_eq(xs, 1);
	ck_assert_int_eq(ps, 1);
	ck_assert_int_eq(cs, 1);
	assert_status(y, "stopped");
	ck_assert_int_eq(keys_matching("jobd:alone*"), 0);
	ck_assert_int_eq(keys_matching("jobd:roots*"), 0);
}
END_TEST

/*
 * A claim moves a due job from the delayed set into its queue with its
 * not_before, which stays until the job is claimed; a Redis clock that
 * steps back (a failover to a node behind, an NTP step) reads before it
 * again. Waiting for its time is membership of the delayed set, never
 * the time: the root in the list is claimed (the module's claim and
 * claim.lua), and one that gets its first child moves to its own queue
 * (lib.lua root_to_tree) and runs. not_before set ahead by hand is the
 * state a clock stepped back leaves.
 */
START_TEST(test_a_queued_job_is_claimed_when_the_clock_steps_back)
{
	int64_t a = create("noop", 0), p, c, ahead;
	struct jobd_job *job = get(a);
	size_t n;
	struct jobd_claim *cl;
	int ps = 0, cs = 0;

	ahead = job->created_at + 3600000;
	jobd_job_free(job);
	rcli(fmt("HSET jobd:job:%lld not_before %lld", (long long)a,
		 (long long)ahead));
	ck_assert_int_eq(claim_only(a), 1);
	job = get(a);
	ck_assert_int_eq(job->not_before, 0);
	jobd_job_free(job);

	p = create("noop", 0);
	rcli(fmt("HSET jobd:job:%lld not_before %lld", (long long)p,
		 (long long)ahead));
	c = create("noop", p);
	cl = claim(100, 100, 60000, &n);
	for (size_t i = 0; i < n; i++) {
		ps += cl[i].id == p;
		cs += cl[i].id == c;
	}
	jobd_store_claims_free(cl, n);
	ck_assert_int_eq(ps, 1);
	ck_assert_int_eq(cs, 1);
	ck_assert_uint_eq(n, 2);
	assert_status(p, "in_progress");
}
END_TEST

/* A claim that spends its tries on stale entries (a cancel of many
 * waiting roots leaves them in the list) wakes the workers, which claim
 * again at once: the root behind them is not left for their next wait. */
START_TEST(test_a_claim_out_of_tries_on_stale_entries_wakes_the_workers)
{
	int64_t stopped[20], v, got = 0;

	for (int i = 0; i < 20; i++)
		stopped[i] = create("noop", 0);
	for (int i = 0; i < 20; i++)
		op_ok(JOBD_OP_STOP, stopped[i]);
	v = create("noop", 0);
	ck_assert_int_eq(jobd_store_wait(st, 0), 1); /* subscribes */
	ck_assert_int_eq(jobd_store_wait(st, 100), 0);
	/* 12 tries for one job: the stale entries outnumber them. */
	ck_assert_uint_eq(claim_count_of(1), 0);
	ck_assert_int_eq(jobd_store_wait(st, 1000), 1);
	for (int i = 0; i < 3 && !got; i++) {
		size_t n;
		struct jobd_claim *cl = claim(1, 0, 60000, &n);

		if (n)
			got = cl[0].id;
		jobd_store_claims_free(cl, n);
	}
	ck_assert_int_eq(got, v);
}
END_TEST

static const char *server_opts(void);
static long long number_of(const char *cmd);
static const char *with_prefix(const char *text, char *buf, size_t size);

/* Subscribers of channel CHAN (jobd: for the prefix), classic ("numsub")
 * or shard ("shardnumsub"). */
static long long subscribers(const char *kind, const char *chan)
{
	char cmd[1024], keyed[256];

	snprintf(cmd, sizeof(cmd), "redis-cli %s pubsub %s '%s' | tail -n 1",
		 server_opts(), kind, with_prefix(chan, keyed, sizeof(keyed)));
	return number_of(cmd);
}

/* A call that makes work ready wakes the workers on the shard channel
 * (SPUBLISH, which a cluster keeps to the nodes of the slot's shard),
 * and jobd listens there and on the classic channel of the same name,
 * where a jobd of an earlier version, or a user whose ACL rule has no
 * SPUBLISH, publishes. */
START_TEST(test_a_wake_up_goes_on_the_shard_channel_and_both_are_heard)
{
	char path[] = "/tmp/jobd-wake-XXXXXX", cmd[1200], keyed[256];
	int fd = mkstemp(path);
	bool seen = false;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(jobd_store_wait(st, 0), 1); /* subscribes */
	ck_assert_int_eq(subscribers("numsub", "jobd:wake"), 1);
	ck_assert_int_eq(subscribers("shardnumsub", "jobd:wake"), 1);
	/* Another listener on the shard channel alone, and one on the
	 * classic channel alone. */
	snprintf(cmd, sizeof(cmd),
		 "(timeout 5 redis-cli %s ssubscribe '%s' >'%s' 2>&1 &)",
		 server_opts(), with_prefix("jobd:wake", keyed, sizeof(keyed)),
		 path);
	ck_assert_int_eq(system(cmd), 0);
	for (int i = 0; i < 100 && subscribers("shardnumsub", "jobd:wake") < 2;
	     i++)
		sleep_ms(20);
	ck_assert_int_eq(subscribers("shardnumsub", "jobd:wake"), 2);

	create("noop", 0);
	ck_assert_int_eq(jobd_store_wait(st, 1000), 1);
	for (int i = 0; i < 100 && !seen; i++) {
		FILE *f = fopen(path, "r");
		char line[256];

		while (f && fgets(line, sizeof(line), f))
			seen = seen || strncmp(line, "smessage", 8) == 0;
		if (f)
			fclose(f);
		if (!seen)
			sleep_ms(20);
	}
	unlink(path);
	ck_assert_msg(seen, "no smessage on the shard channel");
	/* Nothing more: the one wake-up was drained. */
	ck_assert_int_eq(jobd_store_wait(st, 100), 0);
	/* The classic channel wakes it too. */
	rcli("PUBLISH jobd:wake 1");
	ck_assert_int_eq(jobd_store_wait(st, 1000), 1);
}
END_TEST

/* The roots set's member for the list, deleted by hand, comes back with
 * the next root the list takes, and the roots waiting run, in order. */
START_TEST(test_a_lost_alone_member_comes_back_with_the_next_root)
{
	int64_t a = create("noop", 0), b, ids[2];

	rcli("ZREM jobd:roots alone");
	ck_assert_uint_eq(claim_count(), 0);
	b = create("noop", 0);
	claim_one_by_one(ids, 2);
	ck_assert_int_eq(ids[0], a);
	ck_assert_int_eq(ids[1], b);
	ck_assert_uint_eq(claim_count(), 0);
}
END_TEST

/* A store of revision r10 has its roots without children as "=ID"
 * members: they run beside the list's roots, and the store drains. */
START_TEST(test_old_alone_members_and_list_entries_drain)
{
	int64_t a = create("noop", 0), b, c;
	size_t n;
	struct jobd_claim *cl;

	rcli(fmt("LREM jobd:alone 0 %lld", (long long)a));
	rcli("DEL jobd:roots");
	rcli(fmt("ZADD jobd:roots 0 =%lld", (long long)a));
	b = create("noop", 0);
	c = create_full("noop", 0, NULL, true, NULL, NULL);
	fsck_clean("clean store");
	cl = claim(100, 100, 60000, &n);
	ck_assert_uint_eq(n, 3);
	/* Normal first; "=ID" sorts before the list's member. */
	ck_assert_int_eq(cl[0].id, a);
	ck_assert_int_eq(cl[1].id, b);
	ck_assert_int_eq(cl[2].id, c);
	jobd_store_claims_free(cl, n);
	ck_assert_uint_eq(claim_count(), 0);
	ck_assert_int_eq(keys_matching("jobd:roots*"), 0);
	ck_assert_int_eq(keys_matching("jobd:alone*"), 0);
}
END_TEST

START_TEST(test_claim_takes_low_priority_only_when_no_normal_job_is_ready)
{
	int64_t low[3], normal[2];
	size_t n;
	struct jobd_claim *cl;

	for (int i = 0; i < 3; i++)
		low[i] = create_full("noop", 0, NULL, true, NULL, NULL);
	for (int i = 0; i < 2; i++)
		normal[i] = create("noop", 0);
	/* No low-priority job while normal ones are ready... */
	cl = claim(2, 2, 60000, &n);
	ck_assert_int_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		ck_assert(!cl[i].low_priority &&
			  (cl[i].id == normal[0] || cl[i].id == normal[1]));
	jobd_store_claims_free(cl, n);
	/* ...then at most max_low of them. */
	cl = claim(10, 2, 60000, &n);
	ck_assert_int_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		ck_assert(cl[i].low_priority);
	jobd_store_claims_free(cl, n);
	cl = claim(10, 0, 60000, &n);
	ck_assert_int_eq(n, 0);
	jobd_store_claims_free(cl, n);
	cl = claim(10, 1, 60000, &n);
	ck_assert_int_eq(n, 1);
	ck_assert(cl[0].id == low[0] || cl[0].id == low[1] ||
		  cl[0].id == low[2]);
	jobd_store_claims_free(cl, n);
}
END_TEST

START_TEST(test_claim_normal_before_low_in_one_batch)
{
	int64_t low = create_full("noop", 0, NULL, true, NULL, NULL);
	int64_t normal = create("noop", 0);
	size_t n;
	struct jobd_claim *cl = claim(10, 1, 60000, &n);

	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(cl[0].id, normal);
	ck_assert_int_eq(cl[1].id, low);
	jobd_store_claims_free(cl, n);
}
END_TEST

/* Claims one job, low priority allowed, and expects a low-priority one:
 * its id. */
static int64_t claim_one_low(void)
{
	size_t n;
	struct jobd_claim *cl = claim(1, 1, 60000, &n);
	int64_t id;

	ck_assert_uint_eq(n, 1);
	ck_assert(cl[0].low_priority);
	id = cl[0].id;
	jobd_store_claims_free(cl, n);
	return id;
}

/*
 * Each priority has its own virtual runtime floor. Low-priority jobs are
 * claimed only when no normal one is ready, so normal claims in between
 * must not raise the floor low-priority trees start at while the list of
 * low-priority roots without children waits at an older score: a
 * low-priority tree that became ready after the list's first root takes
 * its turn before the roots that arrive after it, as a normal tree does
 * (test_claim_serves_roots_without_children_in_order_beside_a_big_tree),
 * and the list's member, charged for the roots it serves, lets the tree
 * take its turn again (a longer stream:
 * test_a_low_priority_stream_does_not_starve_a_low_priority_tree).
 */
START_TEST(test_low_priority_trees_take_turns_with_roots_without_children)
{
	int64_t first = create_full("noop", 0, NULL, true, NULL, NULL);
	int64_t normal = create("noop", 0), tree, kid, stream[6], order[6];
	int64_t normals[21];

	/* Normal claims, each charged: the normal floor rises. */
	for (int i = 0; i < 20; i++)
		create("noop", normal);
	claim_one_by_one(normals, 21);
	ck_assert_int_eq(rcli_int("GET jobd:vr_floor"), 200);
	tree = create_full("noop", 0, NULL, true, NULL, NULL);
	kid = create("noop", tree); /* low priority, as its parent */
	for (int i = 0; i < 2; i++)
		create("noop", tree);
	/* A root without children arrives before each claim. */
	for (int i = 0; i < 6; i++) {
		stream[i] = create_full("noop", 0, NULL, true, NULL, NULL);
		order[i] = claim_one_low();
	}
	/*
	 * The tree at the floor (0) sorts before the list and goes to 10
	 * (the estimate); then the list in arrival order, its member
	 * charged 10 over the entries it holds for each root served: first
	 * at 0 of 4 entries (to 2.5), stream[0] at 2.5 of 3 (the tree's
	 * entry before it is stale: to 5.83), stream[1] at 5.83 of 3 (to
	 * 9.17), stream[2] at 9.17 of 3 (to 12.5); then the tree at 10
	 * again.
	 */
	ck_assert_msg(order[0] == tree, "claim 0: %lld, want the tree %lld",
		      (long long)order[0], (long long)tree);
	ck_assert_int_eq(order[1], first);
	for (int i = 2; i < 5; i++)
		ck_assert_int_eq(order[i], stream[i - 2]);
	ck_assert_int_eq(order[5], kid);
	ck_assert_int_eq(rcli_int("GET jobd:vr_floor_low"), 10);
	ck_assert_int_eq(rcli_int("GET jobd:vr_floor"), 200);
}
END_TEST

/*
 * A tree root (50 ready children) beside a sustained stream of roots
 * without children of the same priority: a new one arrives for each one
 * claimed, so W wait in the list at every claim. The list's member is
 * charged as a group of W roots (claim.lua pick: the estimate over the
 * list's length for each root it serves), so the tree takes about one
 * claim in W + 1. Were the member left at its score while the list is
 * not empty, the floor would stay there and the tree would get its
 * first claim and no other; with W = 1 the list empties at every claim,
 * and the floor must keep what it was charged. The floor never goes
 * back meanwhile, and rises.
 */
static void tree_claims_beside_a_stream(bool low, int w, int claims)
{
	int64_t tree = create_full("noop", 0, NULL, low, NULL, NULL);
	const char *floor_key = low ? "jobd:vr_floor_low" : "jobd:vr_floor";
	long long fl = 0;
	int got = 0, want = claims / (w + 1), slack = want / 6 + 2;

	for (int i = 0; i < 50; i++)
		create("noop", tree); /* its priority, as its parent */
	for (int i = 0; i < w; i++)
		create_full("noop", 0, NULL, low, NULL, NULL);
	for (int i = 0; i < claims; i++) {
		size_t n;
		struct jobd_claim *cl = claim(1, low ? 1 : 0, 60000, &n);
		long long now;

		ck_assert_uint_eq(n, 1);
		ck_assert_int_eq(cl[0].low_priority, low);
		if (cl[0].root == tree)
			got++;
		else
			create_full("noop", 0, NULL, low, NULL, NULL);
		jobd_store_claims_free(cl, n);
		now = rcli_int(fmt("EXISTS %s", floor_key)) ?
			      rcli_int(fmt("GET %s", floor_key)) :
			      0;
		ck_assert_msg(now >= fl,
			      "claim %d: the floor went back from %lld to %lld",
			      i, fl, now);
		fl = now;
	}
	ck_assert_msg(got >= want - slack && got <= want + slack,
		      "W = %d: the tree took %d of %d claims, want about %d", w,
		      got, claims, want);
	ck_assert_msg(fl > 0, "the floor stayed at 0");
}

START_TEST(test_a_stream_of_roots_without_children_does_not_starve_a_tree)
{
	tree_claims_beside_a_stream(false, 5, 200);
}
END_TEST

START_TEST(test_one_root_without_children_at_a_time_does_not_starve_a_tree)
{
	/* The tree has 51 jobs: about half of 80 claims. */
	tree_claims_beside_a_stream(false, 1, 80);
}
END_TEST

START_TEST(test_a_low_priority_stream_does_not_starve_a_low_priority_tree)
{
	tree_claims_beside_a_stream(true, 5, 200);
}
END_TEST

/* A tree root with 30 ready children, then 12 roots without children;
 * the tree's id. */
static int64_t tree_and_list(void)
{
	int64_t tree = create("noop", 0);

	for (int i = 0; i < 30; i++)
		create("noop", tree);
	for (int i = 0; i < 12; i++)
		create("noop", 0);
	return tree;
}

/*
 * How claims are batched does not change the order (docs/design.md,
 * "Fair share between roots"): a tree beside a list of roots without
 * children, claimed one job a call, then the same store made again and
 * claimed ten a call: the same jobs in the same order, and the same
 * floor after. A claim of ten serves the list while the score charged
 * to its member stays below the tree's, then the tree (with the module,
 * by handing the call to claim.lua) and the list again, in one call.
 */
START_TEST(test_claims_of_many_take_the_order_of_claims_of_one)
{
	int64_t one[43], many[43];
	size_t n2 = 0;
	long long floor1;

	tree_and_list();
	claim_one_by_one(one, 43);
	floor1 = rcli_int("GET jobd:vr_floor");
	flush();
	tree_and_list();
	while (n2 < 43) {
		size_t n;
		struct jobd_claim *cl = claim(10, 0, 60000, &n);

		ck_assert_msg(n > 0 && n2 + n <= 43, "a claim of 10 took %zu",
			      n);
		for (size_t i = 0; i < n; i++)
			many[n2++] = cl[i].id;
		jobd_store_claims_free(cl, n);
	}
	for (size_t i = 0; i < 43; i++)
		ck_assert_msg(one[i] == many[i],
			      "job %zu: %lld claimed one a call, %lld ten a "
			      "call",
			      i, (long long)one[i], (long long)many[i]);
	ck_assert_int_eq(rcli_int("GET jobd:vr_floor"), floor1);
}
END_TEST

static const char *server_opts(void);
static long long number_of(const char *cmd);

/* Calls of COMMAND (lower case) since the last CONFIG RESETSTAT. */
static long long command_calls(const char *command)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "redis-cli %s info commandstats | tr -d '\\r' | "
		 "awk -F'[:=,]' '$1 == \"cmdstat_%s\" { n = $3 } "
		 "END { print n + 0 }'",
		 server_opts(), command);
	return number_of(cmd);
}

/*
 * A claim that alternates between the list of roots without children and
 * a tree reads the list's entries once: those read ahead and not served
 * at the end of the list's turn wait for its next turn in the call
 * (claim.lua pick(); the module hands such a call to claim.lua). One
 * LRANGE for the 12 roots, and at most one more that finds the list
 * empty, where every turn of the list read them again.
 */
START_TEST(test_a_claim_reads_the_list_once_across_its_turns)
{
	int64_t tree = tree_and_list();
	int turns = 0;
	bool listed = false;
	struct jobd_claim *cl;
	size_t n;

	rcli("CONFIG RESETSTAT");
	cl = claim(43, 0, 60000, &n);
	ck_assert_int_eq(n, 43);
	/* The roots of the list are the 12 ids after the tree's 31. */
	for (size_t i = 0; i < n; i++) {
		bool alone = cl[i].id > tree + 30;

		if (alone && !listed)
			turns++;
		listed = alone;
	}
	jobd_store_claims_free(cl, n);
	ck_assert_msg(turns >= 3, "the list had %d turns in the claim", turns);
	ck_assert_int_le(command_calls("lrange"), 2);
}
END_TEST

static bool zscore(const char *key, long long member, long long *score);

/*
 * The low-priority move keeps a waiting root's lead over its floor
 * (docs/design.md, "Low priority"): a tree root at virtual runtime V
 * moves from P:roots to P:roots_low at V - F + F_low and back at V
 * (floors F = P:vr_floor, F_low = P:vr_floor_low, set apart by hand,
 * with the root's V, as claims leave them), its vruntime with it. Moved
 * to low priority, it then runs after a low-priority root that entered
 * at F_low: unshifted (V), at V - F or at F_low it would run first.
 */
START_TEST(test_low_priority_move_keeps_a_roots_lead_over_its_floor)
{
	int64_t x = create("noop", 0), xc = create("noop", x), z, order[3];
	char rq[64], rq_low[64];

	snprintf(rq, sizeof(rq), "jobd:ready:%lld", (long long)x);
	snprintf(rq_low, sizeof(rq_low), "jobd:ready_low:%lld", (long long)x);
	rcli("SET jobd:vr_floor 1000");
	rcli("SET jobd:vr_floor_low 3000");
	rcli(fmt("HSET jobd:job:%lld vruntime 1500", (long long)x));
	rcli(fmt("ZADD jobd:roots XX 1500 %lld", (long long)x));
	for (int i = 0; i < 3; i++) {
		bool low = i != 1;
		long long sc = -1, want = low ? 3500 : 1500;

		op_ok(low ? JOBD_OP_LOW_PRIORITY : JOBD_OP_LOW_PRIORITY_OFF, x);
		ck_assert_msg(zscore(low ? "jobd:roots_low" : "jobd:roots", x,
				     &sc) &&
				      sc == want,
			      "move %d: root at %lld, want %lld", i, sc, want);
		ck_assert(!zscore(low ? "jobd:roots" : "jobd:roots_low", x,
				  NULL));
		ck_assert_int_eq(rcli_int(fmt("HGET jobd:job:%lld vruntime",
					      (long long)x)),
				 want);
		ck_assert(zscore(low ? rq_low : rq, x, NULL));
		ck_assert(zscore(low ? rq_low : rq, xc, NULL));
		ck_assert_int_eq(rcli_int(fmt("EXISTS %s", low ? rq : rq_low)),
				 0);
	}
	z = create_full("noop", 0, NULL, true, NULL, NULL);
	for (int i = 0; i < 3; i++)
		order[i] = claim_one_low();
	ck_assert_msg(order[0] == z, "claim 0: %lld, want the root %lld",
		      (long long)order[0], (long long)z);
	ck_assert(order[1] != order[2] && (order[1] == x || order[1] == xc) &&
		  (order[2] == x || order[2] == xc));
	ck_assert_uint_eq(claim_count(), 0);
}
END_TEST

/* --- finish ------------------------------------------------------------ */

START_TEST(test_finish_done_finishes_job)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;

	ck_assert_int_eq(finish_full(id, a, JOBD_OUTCOME_DONE, 100, 0, NULL),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_FINISHED);
	ck_assert_int_gt(job->finished_at, 0);
	ck_assert(!job->with_errors);
	ck_assert(job->progress == 100);
	ck_assert_int_eq(job->run_since, 0);
	jobd_job_free(job);
	ck_assert_int_eq(count_of(JOBD_FINISHED), 1);
	ck_assert_int_eq(count_of(JOBD_IN_PROGRESS), 0);
	/* Finishing twice is fenced: the run is over. */
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE), JOBD_RESULT_FENCED);
}
END_TEST

START_TEST(test_finish_failed_without_retries_finishes_with_errors)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;

	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_FAILED),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_FINISHED);
	ck_assert(job->with_errors);
	ck_assert_int_eq(job->errors, 1);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_finish_stopped_without_stop_request_is_a_failure)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;

	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert(job->with_errors);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_finish_counts_reported_errors_once_with_logs)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_log_line line = { 1, "last words" };
	struct jobd_report r = { .id = id,
				 .attempt = a,
				 .progress = 50,
				 .errors = 1,
				 .logs = &line,
				 .nlogs = 1,
				 .outcome = JOBD_OUTCOME_DONE };
	enum jobd_result res;
	struct jobd_job *job;

	ck_assert_int_eq(jobd_store_finish(st, &r, 1, &res), 0);
	ck_assert_int_eq(res, JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_msg(job->errors == 1, "errors = %lld, one was reported",
		      (long long)job->errors);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_finish_parent_waits_for_children_up_a_three_level_tree)
{
	int64_t r = create("noop", 0);
	int64_t c1, c2, g1, g2, ar, a1, a2, ag1, ag2;
	size_t n;
	struct jobd_claim *cl;
	struct jobd_job *job;

	ar = claim_only(r);
	c1 = create("noop", r);
	c2 = create("noop", r);
	ck_assert_int_eq(finish_full(r, ar, JOBD_OUTCOME_DONE, 100, 0, NULL),
			 JOBD_RESULT_WAITING);
	assert_status(r, "in_progress");
	/* Waiting holds no worker and no lease: heartbeats are refused. */
	ck_assert_int_eq(heartbeat(r, ar), JOBD_RESULT_FENCED);
	cl = claim(10, 10, 60000, &n);
	ck_assert_int_eq(n, 2);
	a1 = cl[0].id == c1 ? cl[0].attempt : cl[1].attempt;
	a2 = cl[0].id == c2 ? cl[0].attempt : cl[1].attempt;
	jobd_store_claims_free(cl, n);
	g1 = create("noop", c1);
	g2 = create("noop", c1);
	ck_assert_int_eq(finish_full(c1, a1, JOBD_OUTCOME_DONE, 100, 0, NULL),
			 JOBD_RESULT_WAITING);
	ck_assert_int_eq(finish_full(c2, a2, JOBD_OUTCOME_DONE, 100, 0, NULL),
			 JOBD_RESULT_FINISHED);
	check_tree(r);
	assert_status(r, "in_progress");
	cl = claim(10, 10, 60000, &n);
	ck_assert_int_eq(n, 2);
	ag1 = cl[0].id == g1 ? cl[0].attempt : cl[1].attempt;
	ag2 = cl[0].id == g2 ? cl[0].attempt : cl[1].attempt;
	jobd_store_claims_free(cl, n);
	ck_assert_int_eq(finish(g1, ag1, JOBD_OUTCOME_FAILED),
			 JOBD_RESULT_FINISHED);
	assert_status(c1, "in_progress");
	assert_status(r, "in_progress");
	check_tree(r);
	ck_assert_int_eq(finish_full(g2, ag2, JOBD_OUTCOME_DONE, 100, 0, NULL),
			 JOBD_RESULT_FINISHED);
	/* The last grandchild finishes its parent and then the root. */
	assert_status(c1, "finished");
	assert_status(r, "finished");
	job = get(c1);
	ck_assert(job->with_errors);
	ck_assert_int_eq(job->errors, 0);
	ck_assert_int_eq(job->children.errors, 1);
	ck_assert(!job->awaiting);
	jobd_job_free(job);
	job = get(r);
	ck_assert(job->with_errors);
	ck_assert_int_eq(job->children.errors, 1);
	ck_assert_int_eq(job->children.finished, 2);
	ck_assert_int_gt(job->finished_at, 0);
	/* g1 failed at 0 %: (100 + (100 + (0 + 100) / 3) ... ) */
	ck_assert(fabs(jobd_job_overall_progress(job) -
		       (100 + (100 + 0 + 100) / 3.0 + 100) / 3.0) < 1e-6);
	jobd_job_free(job);
	check_tree(r);
}
END_TEST

START_TEST(test_finish_progress_moves_overall_progress_up_the_tree)
{
	int64_t r = create("noop", 0), c, g;
	int64_t ar, ac, ag;
	struct jobd_job *job;

	ar = claim_only(r);
	c = create("noop", r);
	ac = claim_only(c);
	g = create("noop", c);
	ag = claim_only(g);
	ck_assert_int_eq(report(g, ag, 60, NULL), JOBD_RESULT_OK);
	ck_assert_int_eq(report(c, ac, 30, NULL), JOBD_RESULT_OK);
	ck_assert_int_eq(report(r, ar, 10, NULL), JOBD_RESULT_OK);
	job = get(r);
	/* c: (30 + 60) / 2 = 45; r: (10 + 45) / 2 = 27.5 */
	ck_assert(fabs(jobd_job_overall_progress(job) - 27.5) < 1e-6);
	jobd_job_free(job);
	check_tree(r);
	/* A new child moves the overall progress back. */
	create("noop", r);
	job = get(r);
	ck_assert(fabs(jobd_job_overall_progress(job) - 55.0 / 3) < 1e-6);
	jobd_job_free(job);
	check_tree(r);
}
END_TEST

START_TEST(test_finish_failed_with_retries_is_claimable_after_backoff)
{
	int64_t id = create("flaky", 0);
	struct jobd_job *job;
	int64_t a = claim_only(id);

	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_FAILED), JOBD_RESULT_RETRY);
	assert_status(id, "pending");
	sleep_ms(20);
	a = claim_only(id);
	ck_assert_int_eq(a, 2);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_FAILED), JOBD_RESULT_RETRY);
	sleep_ms(20);
	a = claim_only(id);
	ck_assert_int_eq(a, 3);
	/* Retries are used up: finished with errors. */
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_FAILED),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_FINISHED);
	ck_assert(job->with_errors);
	ck_assert_int_eq(job->errors, 3);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_finish_retry_waits_for_its_not_before_time)
{
	/* A type with a long backoff is not claimable right away. */
	int64_t id;
	int64_t a;
	struct jobd_type_conf *ty = NULL;

	for (size_t i = 0; i < conf->types_count; i++)
		if (strcmp(conf->types[i].name, "flaky") == 0)
			ty = &conf->types[i];
	ck_assert_ptr_nonnull(ty);
	ty->retry_backoff = 60000;
	id = create("flaky", 0);
	a = claim_only(id);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_FAILED), JOBD_RESULT_RETRY);
	assert_status(id, "pending");
	ck_assert_int_eq(claim_count(), 0);
	/* It can still be stopped and canceled while it waits. */
	op_ok(JOBD_OP_STOP, id);
	assert_status(id, "stopped");
}
END_TEST

/* --- stop, resume ------------------------------------------------------- */

START_TEST(test_stop_pending_job_is_stopped)
{
	int64_t id = create("noop", 0);

	op_ok(JOBD_OP_STOP, id);
	assert_status(id, "stopped");
	ck_assert_int_eq(claim_count(), 0);
	ck_assert_int_eq(count_of(JOBD_STOPPED), 1);
	ck_assert_int_eq(count_of(JOBD_PENDING), 0);
}
END_TEST

START_TEST(test_stop_running_job_asks_handler_then_stops_at_checkpoint)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;
	size_t n;
	struct jobd_claim *cl;

	ck_assert_int_eq(report(id, a, 40, "{\"row\":400}"), JOBD_RESULT_OK);
	op_ok(JOBD_OP_STOP, id);
	assert_status(id, "stopping");
	ck_assert_int_eq(heartbeat(id, a), JOBD_RESULT_STOP);
	ck_assert_int_eq(report(id, a, 50, "{\"row\":500}"), JOBD_RESULT_STOP);
	ck_assert_int_eq(finish_full(id, a, JOBD_OUTCOME_STOPPED, -1, 0,
				     "{\"row\":512}"),
			 JOBD_RESULT_STOPPED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert_str_eq(job->checkpoint, "{\"row\":512}");
	ck_assert(job->progress == 50);
	ck_assert(!job->inconsistent);
	jobd_job_free(job);
	ck_assert_int_eq(claim_count(), 0);
	/* Resume: pending again, and the next claim gets the checkpoint. */
	op_ok(JOBD_OP_RESUME, id);
	assert_status(id, "pending");
	cl = claim(10, 10, 60000, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(cl[0].id, id);
	ck_assert_int_eq(cl[0].attempt, 2);
	ck_assert_str_eq(cl[0].checkpoint, "{\"row\":512}");
	ck_assert(cl[0].progress == 50);
	jobd_store_claims_free(cl, n);
}
END_TEST

START_TEST(test_finish_done_while_stopping_finishes)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);

	op_ok(JOBD_OP_STOP, id);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	assert_status(id, "finished");
}
END_TEST

START_TEST(test_stop_refused_for_non_stoppable_type_in_every_status)
{
	int64_t id = create("nostop", 0);
	const char *why = fmt(
		"job %lld (nostop) cannot be stopped: its type is not stoppable",
		(long long)id);
	char want[256];
	int64_t a;

	snprintf(want, sizeof(want), "%s", why);
	op_refused(JOBD_OP_STOP, id, want);
	a = claim_only(id);
	op_refused(JOBD_OP_STOP, id, want);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	op_refused(JOBD_OP_STOP, id, want);
}
END_TEST

START_TEST(test_stop_refused_when_finished_or_stopping)
{
	int64_t id = create("noop", 0), s = create("noop", 0);
	size_t n;
	struct jobd_claim *cl = claim(10, 10, 60000, &n);
	int64_t a = cl[0].id == id ? cl[0].attempt : cl[1].attempt;

	jobd_store_claims_free(cl, n);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	op_refused(
		JOBD_OP_STOP, id,
		fmt("job %lld is finished: stop needs pending or in_progress",
		    (long long)id));
	op_ok(JOBD_OP_STOP, s);
	op_refused(
		JOBD_OP_STOP, s,
		fmt("job %lld is stopping: stop needs pending or in_progress",
		    (long long)s));
}
END_TEST

START_TEST(test_operations_refuse_unknown_id)
{
	static const enum jobd_op ops[] = {
		JOBD_OP_STOP,
		JOBD_OP_RESUME,
		JOBD_OP_FORCE_STOP,
		JOBD_OP_CANCEL,
		JOBD_OP_RESTART,
		JOBD_OP_LOW_PRIORITY,
		JOBD_OP_LOW_PRIORITY_OFF,
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		op_refused(ops[i], 424242, "job 424242 not found");
	ck_assert_int_eq(jobd_store_get(st, 424242, &(struct jobd_job *){ 0 },
					&(int64_t){ 0 }),
			 JOBD_STORE_ERR_NOTFOUND);
}
END_TEST

START_TEST(test_operations_on_a_batch_answer_per_id)
{
	int64_t ids[3] = { create("noop", 0), 9999, create("noop", 0) };
	struct jobd_op_result out[3];

	ck_assert_int_eq(jobd_store_op(st, JOBD_OP_STOP, "alice", ids, 3, out),
			 0);
	ck_assert(out[0].ok && !out[1].ok && out[2].ok);
	ck_assert_str_eq(out[1].error, "job 9999 not found");
	assert_status(ids[0], "stopped");
	assert_status(ids[2], "stopped");
}
END_TEST

START_TEST(test_resume_refused_unless_stopped_or_under_stopped_ancestor)
{
	int64_t p = create("noop", 0), c = create("noop", p);

	op_refused(JOBD_OP_RESUME, p,
		   fmt("job %lld is pending: resume needs stopped",
		       (long long)p));
	op_ok(JOBD_OP_STOP, p);
	assert_status(c, "stopped");
	op_refused(JOBD_OP_RESUME, c,
		   fmt("job %lld is under stopped job %lld: resume that one",
		       (long long)c, (long long)p));
	op_ok(JOBD_OP_RESUME, p);
	assert_status(p, "pending");
	assert_status(c, "pending");
	check_tree(p);
}
END_TEST

START_TEST(test_stop_waiting_parent_is_stopped_once_no_child_runs)
{
	int64_t p = create("noop", 0), c1, c2, ap, a1;
	size_t n;
	struct jobd_claim *cl;

	ap = claim_only(p);
	c1 = create("noop", p);
	c2 = create("noop", p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_DONE), JOBD_RESULT_WAITING);
	cl = claim(1, 0, 60000, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(cl[0].id, c1);
	a1 = cl[0].attempt;
	jobd_store_claims_free(cl, n);
	op_ok(JOBD_OP_STOP, p);
	assert_status(p, "stopping");
	assert_status(c1, "stopping");
	assert_status(c2, "stopped");
	check_tree(p);
	ck_assert_int_eq(heartbeat(c1, a1), JOBD_RESULT_STOP);
	ck_assert_int_eq(finish(c1, a1, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	assert_status(p, "stopped");
	check_tree(p);
	/* Resume: the parent waits again, its handler is not run again. */
	op_ok(JOBD_OP_RESUME, p);
	assert_status(p, "in_progress");
	assert_status(c1, "pending");
	assert_status(c2, "pending");
	cl = claim(10, 10, 60000, &n);
	ck_assert_int_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert(cl[i].id == c1 || cl[i].id == c2);
		ck_assert_int_eq(finish(cl[i].id, cl[i].attempt,
					JOBD_OUTCOME_DONE),
				 JOBD_RESULT_FINISHED);
	}
	jobd_store_claims_free(cl, n);
	assert_status(p, "finished");
	check_tree(p);
}
END_TEST

START_TEST(test_stop_waiting_parent_without_running_children_stops_at_once)
{
	int64_t p = create("noop", 0), c, ap;

	ap = claim_only(p);
	c = create("noop", p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_DONE), JOBD_RESULT_WAITING);
	op_ok(JOBD_OP_STOP, p);
	assert_status(p, "stopped");
	assert_status(c, "stopped");
	check_tree(p);
}
END_TEST

START_TEST(test_resume_waiting_parent_with_all_children_done_finishes)
{
	int64_t p = create("noop", 0), c, ap;

	ap = claim_only(p);
	c = create("noop", p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_DONE), JOBD_RESULT_WAITING);
	op_ok(JOBD_OP_STOP, p);
	/* The parent stays stopped while its child is canceled alone. */
	op_ok(JOBD_OP_CANCEL, c);
	assert_status(p, "stopped");
	op_ok(JOBD_OP_RESUME, p);
	assert_status(p, "finished");
	check_tree(p);
}
END_TEST

START_TEST(test_resumed_waiting_parent_runs_and_its_duration_grows)
{
	int64_t p = create("noop", 0), c, ap;
	struct jobd_job *job;
	json_t *o;

	ap = claim_only(p);
	c = create("noop", p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_DONE), JOBD_RESULT_WAITING);
	op_ok(JOBD_OP_STOP, p);
	assert_status(p, "stopped");
	job = get(p);
	ck_assert_int_eq(job->run_since, 0);
	jobd_job_free(job);
	/* Back to waiting for its child: in progress, so running. */
	op_ok(JOBD_OP_RESUME, p);
	assert_status(p, "in_progress");
	job = get(p);
	ck_assert_int_gt(job->run_since, 0);
	ck_assert_int_ge(jobd_job_duration_ms(job, job->run_since + 500), 500);
	jobd_job_free(job);
	/* The child finishes at 40 % (and so its parent): the children's
	 * bar shows 40, the parent's overall (0 + 40) / 2. */
	ck_assert_int_eq(finish_full(c, claim_only(c), JOBD_OUTCOME_DONE, 40, 0,
				     NULL),
			 JOBD_RESULT_FINISHED);
	job = get(p);
	o = jobd_job_to_json(job, job->run_since);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(o, "children"), "progress")),
			 40);
	ck_assert_int_eq(
		json_integer_value(json_object_get(o, "overall_progress")), 20);
	json_decref(o);
	jobd_job_free(job);
	check_tree(p);
}
END_TEST

START_TEST(test_waiting_grows_until_first_start_then_duration_while_running)
{
	int64_t id = create("noop", 0), a;
	struct jobd_job *job = get(id);

	/* Pending: waiting is creation to now, and grows. */
	ck_assert_int_eq(jobd_job_waiting_ms(job, job->created_at + 100), 100);
	ck_assert_int_eq(jobd_job_waiting_ms(job, job->created_at + 900), 900);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->created_at + 900), 0);
	jobd_job_free(job);
	/* Running: waiting stops at the start, duration grows. */
	a = claim_only(id);
	job = get(id);
	ck_assert_int_eq(jobd_job_waiting_ms(job, job->started_at + 5000),
			 job->started_at - job->created_at);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->run_since + 300), 300);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->run_since + 700), 700);
	jobd_job_free(job);
	/* Finished: both are fixed. */
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->finished_at + 60000),
			 jobd_job_duration_ms(job, job->finished_at));
	ck_assert_int_eq(jobd_job_waiting_ms(job, job->finished_at + 60000),
			 job->started_at - job->created_at);
	jobd_job_free(job);
}
END_TEST

/* --- force stop --------------------------------------------------------- */

START_TEST(test_force_stop_fences_the_running_attempt)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;
	enum jobd_result res;

	ck_assert_int_eq(report(id, a, 20, "{\"n\":1}"), JOBD_RESULT_OK);
	op_refused(JOBD_OP_FORCE_STOP, id,
		   fmt("job %lld is in_progress: force-stop needs stopping",
		       (long long)id));
	op_ok(JOBD_OP_STOP, id);
	op_ok(JOBD_OP_FORCE_STOP, id);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert(job->inconsistent);
	jobd_job_free(job);
	/* The old attempt writes nothing any more. */
	ck_assert_int_eq(report(id, a, 90, "{\"n\":9}"), JOBD_RESULT_FENCED);
	ck_assert_int_eq(heartbeat(id, a), JOBD_RESULT_FENCED);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE), JOBD_RESULT_FENCED);
	ck_assert_int_eq(handback(id, a, "{\"n\":8}"), JOBD_RESULT_FENCED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert(job->progress == 20);
	ck_assert_str_eq(job->checkpoint, "{\"n\":1}");
	ck_assert_int_eq(job->errors, 0);
	jobd_job_free(job);
	ck_assert_int_eq(jobd_store_heartbeat(st, &id, &a, 1, 1000, &res), 0);
	ck_assert_int_eq(res, JOBD_RESULT_FENCED);
	/* Resumed, it runs again with a new attempt. */
	op_ok(JOBD_OP_RESUME, id);
	ck_assert_int_eq(claim_only(id), a + 1);
}
END_TEST

START_TEST(test_force_stop_stops_stopping_descendants)
{
	int64_t p = create("noop", 0), c, g, ap, ac, ag;
	struct jobd_job *job;

	ap = claim_only(p);
	c = create("noop", p);
	ac = claim_only(c);
	g = create("noop", c);
	ag = claim_only(g);
	op_ok(JOBD_OP_STOP, p);
	assert_status(p, "stopping");
	assert_status(c, "stopping");
	assert_status(g, "stopping");
	op_refused(JOBD_OP_CANCEL, p,
		   fmt("job %lld is stopping: cancel needs stopped",
		       (long long)p));
	op_ok(JOBD_OP_FORCE_STOP, p);
	assert_status(p, "stopped");
	assert_status(c, "stopped");
	assert_status(g, "stopped");
	job = get(g);
	ck_assert(job->inconsistent);
	jobd_job_free(job);
	ck_assert_int_eq(heartbeat(p, ap), JOBD_RESULT_FENCED);
	ck_assert_int_eq(heartbeat(c, ac), JOBD_RESULT_FENCED);
	ck_assert_int_eq(finish(g, ag, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_FENCED);
	check_tree(p);
	op_ok(JOBD_OP_CANCEL, p);
	assert_status(g, "canceled");
	check_tree(p);
}
END_TEST

/* --- cancel ------------------------------------------------------------- */

START_TEST(test_cancel_refused_unless_stopped)
{
	int64_t id = create("noop", 0);

	op_refused(JOBD_OP_CANCEL, id,
		   fmt("job %lld is pending: cancel needs stopped",
		       (long long)id));
	op_ok(JOBD_OP_STOP, id);
	op_ok(JOBD_OP_CANCEL, id);
	assert_status(id, "canceled");
	op_refused(JOBD_OP_CANCEL, id,
		   fmt("job %lld is canceled: cancel needs stopped",
		       (long long)id));
	op_refused(JOBD_OP_RESUME, id,
		   fmt("job %lld is canceled: resume needs stopped",
		       (long long)id));
	ck_assert_int_eq(claim_count(), 0);
	ck_assert_int_eq(count_of(JOBD_CANCELED), 1);
}
END_TEST

START_TEST(test_cancel_refused_while_a_descendant_is_stopping)
{
	int64_t p = create("noop", 0), c, g, ap, ac, ag;

	ap = claim_only(p);
	c = create("noop", p);
	ac = claim_only(c);
	g = create("noop", c);
	ag = claim_only(g);
	op_ok(JOBD_OP_STOP, p);
	/* The parent's handler honours the stop first; its children not. */
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	assert_status(p, "stopped");
	op_refused(
		JOBD_OP_CANCEL, p,
		fmt("job %lld has 2 descendants still stopping: cancel needs them stopped",
		    (long long)p));
	ck_assert_int_eq(finish(g, ag, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	op_refused(
		JOBD_OP_CANCEL, p,
		fmt("job %lld has 1 descendants still stopping: cancel needs them stopped",
		    (long long)p));
	ck_assert_int_eq(finish(c, ac, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	op_ok(JOBD_OP_CANCEL, p);
	assert_status(p, "canceled");
	assert_status(c, "canceled");
	assert_status(g, "canceled");
	check_tree(p);
}
END_TEST

/* Regression (tests/fault/fault.sh): a parent resumed while a child was still
 * stopping waited forever for that child, stopped after the cascade. */
START_TEST(test_resume_refused_while_a_descendant_is_stopping)
{
	int64_t p = create("noop", 0), c, ap, ac;

	ap = claim_only(p);
	c = create("noop", p);
	ac = claim_only(c);
	op_ok(JOBD_OP_STOP, p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	op_refused(
		JOBD_OP_RESUME, p,
		fmt("job %lld has 1 descendants still stopping: resume needs them stopped",
		    (long long)p));
	ck_assert_int_eq(finish(c, ac, JOBD_OUTCOME_STOPPED),
			 JOBD_RESULT_STOPPED);
	op_ok(JOBD_OP_RESUME, p);
	assert_status(p, "pending");
	assert_status(c, "pending");
	check_tree(p);
}
END_TEST

START_TEST(test_canceled_child_is_not_an_error)
{
	int64_t p = create("noop", 0), c1, c2, ap, a1;

	ap = claim_only(p);
	c1 = create("noop", p);
	c2 = create("noop", p);
	ck_assert_int_eq(finish(p, ap, JOBD_OUTCOME_DONE), JOBD_RESULT_WAITING);
	op_ok(JOBD_OP_STOP, c2);
	op_ok(JOBD_OP_CANCEL, c2);
	assert_status(p, "in_progress");
	a1 = claim_only(c1);
	ck_assert_int_eq(finish(c1, a1, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	assert_status(p, "finished");
	{
		struct jobd_job *job = get(p);

		ck_assert(!job->with_errors);
		ck_assert_int_eq(job->children.canceled, 1);
		ck_assert_int_eq(job->children.errors, 0);
		jobd_job_free(job);
	}
	check_tree(p);
}
END_TEST

/* --- hand back, lease expiry -------------------------------------------- */

START_TEST(test_handback_running_job_goes_pending_with_checkpoint)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	size_t n;
	struct jobd_claim *cl;

	ck_assert_int_eq(handback(id, a, "{\"k\":7}"), JOBD_RESULT_PENDING);
	assert_status(id, "pending");
	ck_assert_int_eq(heartbeat(id, a), JOBD_RESULT_FENCED);
	cl = claim(10, 10, 60000, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(cl[0].checkpoint, "{\"k\":7}");
	ck_assert_int_eq(cl[0].attempt, a + 1);
	jobd_store_claims_free(cl, n);
}
END_TEST

START_TEST(test_handback_stopping_job_is_stopped)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);
	struct jobd_job *job;

	op_ok(JOBD_OP_STOP, id);
	ck_assert_int_eq(handback(id, a, "{\"k\":1}"), JOBD_RESULT_STOPPED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_STOPPED);
	ck_assert_str_eq(job->checkpoint, "{\"k\":1}");
	jobd_job_free(job);
}
END_TEST

START_TEST(test_expire_hands_back_jobs_whose_lease_ran_out)
{
	int64_t a1 = create("noop", 0), b = create("noop", 0), keep;
	int64_t aa, ab;
	size_t n;
	/* (a lease long enough for the calls before the first expire, on a
	 * cluster under load: 50 ms was not) */
	struct jobd_claim *cl = claim(2, 0, 500, &n);

	ck_assert_int_eq(n, 2);
	aa = cl[0].id == a1 ? cl[0].attempt : cl[1].attempt;
	ab = cl[0].id == b ? cl[0].attempt : cl[1].attempt;
	jobd_store_claims_free(cl, n);
	keep = create("noop", 0);
	cl = claim(1, 0, 60000, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(cl[0].id, keep);
	jobd_store_claims_free(cl, n);
	op_ok(JOBD_OP_STOP, b);
	ck_assert_int_eq(jobd_store_expire(st, 100, &n), 0);
	ck_assert_int_eq(n, 0);
	sleep_ms(600);
	ck_assert_int_eq(jobd_store_expire(st, 100, &n), 0);
	ck_assert_int_eq(n, 2);
	assert_status(a1, "pending");
	assert_status(b, "stopped");
	assert_status(keep, "in_progress");
	ck_assert_int_eq(heartbeat(a1, aa), JOBD_RESULT_FENCED);
	ck_assert_int_eq(finish(b, ab, JOBD_OUTCOME_DONE), JOBD_RESULT_FENCED);
	ck_assert_int_eq(claim_only(a1), aa + 1);
}
END_TEST

START_TEST(test_heartbeat_renews_the_lease)
{
	int64_t id = create("noop", 0);
	size_t n;
	struct jobd_claim *cl = claim(1, 0, 80, &n);
	int64_t a = cl[0].attempt;
	enum jobd_result res;

	jobd_store_claims_free(cl, n);
	for (int i = 0; i < 4; i++) {
		sleep_ms(40);
		ck_assert_int_eq(jobd_store_heartbeat(st, &id, &a, 1, 80, &res),
				 0);
		ck_assert_int_eq(res, JOBD_RESULT_OK);
		ck_assert_int_eq(jobd_store_expire(st, 10, &n), 0);
		ck_assert_int_eq(n, 0);
	}
	assert_status(id, "in_progress");
}
END_TEST

/* --- restart ------------------------------------------------------------ */

START_TEST(test_restart_resets_run_and_detaches_children)
{
	int64_t r = create("again", 0), c, ar, ac;
	struct jobd_job *job;
	struct jobd_job_list list;

	ar = claim_only(r);
	c = create("again", r);
	ck_assert_int_eq(finish_full(r, ar, JOBD_OUTCOME_DONE, 100, 2,
				     "{\"x\":1}"),
			 JOBD_RESULT_WAITING);
	ac = claim_only(c);
	op_refused(JOBD_OP_RESTART, r,
		   fmt("job %lld is in_progress: restart needs finished",
		       (long long)r));
	ck_assert_int_eq(finish(c, ac, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	assert_status(r, "finished");
	op_refused(JOBD_OP_RESTART, c,
		   fmt("job %lld is a child of %lld: only root jobs restart",
		       (long long)c, (long long)r));
	op_ok(JOBD_OP_RESTART, r);
	job = get(r);
	ck_assert_int_eq(job->status, JOBD_PENDING);
	ck_assert(job->progress == 0);
	ck_assert_int_eq(job->errors, 0);
	ck_assert(!job->with_errors);
	ck_assert_ptr_null(job->checkpoint);
	ck_assert_int_eq(job->finished_at, 0);
	ck_assert_int_eq(job->started_at, 0);
	ck_assert_int_eq(job->restarts, 1);
	ck_assert_int_eq(job->children.total, 0);
	ck_assert_int_eq(job->children.finished, 0);
	ck_assert(jobd_job_overall_progress(job) == 0);
	jobd_job_free(job);
	ck_assert_int_eq(jobd_store_children(st, r, 0, 100, &list), 0);
	ck_assert_int_eq(list.n, 0);
	jobd_job_list_release(&list);
	/* The old child is kept for history, untouched. */
	assert_status(c, "finished");
	check_tree(r);
	/* The new run finishes without waiting for the old children. */
	ar = claim_only(r);
	ck_assert_int_gt(ar, 1);
	ck_assert_int_eq(finish(r, ar, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
}
END_TEST

START_TEST(test_restart_refused_for_non_restartable_type)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);

	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	op_refused(
		JOBD_OP_RESTART, id,
		fmt("job %lld (noop) cannot be restarted: its type is not restartable",
		    (long long)id));
}
END_TEST

/* --- low priority ------------------------------------------------------- */

START_TEST(test_low_priority_applies_to_descendants_and_later_children)
{
	int64_t r = create("noop", 0), c = create("noop", r), g, later;
	struct jobd_job *job;
	size_t n;
	struct jobd_claim *cl;

	g = create("noop", c);
	op_ok(JOBD_OP_LOW_PRIORITY, r);
	job = get(g);
	ck_assert(job->low_priority);
	jobd_job_free(job);
	later = create("noop", c);
	job = get(later);
	ck_assert(job->low_priority);
	jobd_job_free(job);
	/* Low-priority jobs are not claimed without a low slot. */
	cl = claim(10, 0, 60000, &n);
	ck_assert_int_eq(n, 0);
	jobd_store_claims_free(cl, n);
	op_ok(JOBD_OP_LOW_PRIORITY_OFF, r);
	job = get(later);
	ck_assert(!job->low_priority);
	jobd_job_free(job);
	cl = claim(10, 0, 60000, &n);
	ck_assert_int_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		ck_assert(!cl[i].low_priority);
	jobd_store_claims_free(cl, n);
}
END_TEST

START_TEST(test_low_priority_refused_for_terminal_job)
{
	int64_t id = create("noop", 0);
	int64_t a = claim_only(id);

	op_ok(JOBD_OP_LOW_PRIORITY, id); /* in progress: fine */
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	op_refused(
		JOBD_OP_LOW_PRIORITY, id,
		fmt("job %lld is finished: low-priority needs a job that is not finished or canceled",
		    (long long)id));
}
END_TEST

/* --- cascades ------------------------------------------------------------ */

/* A root with WIDE children, the first and last having WIDE children each. */
static int64_t big_tree(int wide, int64_t *first, int64_t *last)
{
	int64_t r = create("noop", 0);
	struct jobd_spec *specs = calloc((size_t)wide, sizeof(*specs));
	struct jobd_created *out = calloc((size_t)wide, sizeof(*out));
	int64_t mid[2];

	for (int i = 0; i < wide; i++)
		specs[i] = (struct jobd_spec){ .type = "noop", .parent = r };
	ck_assert_int_eq(jobd_store_create(st, "t", specs, (size_t)wide, out),
			 0);
	mid[0] = out[0].id;
	mid[1] = out[wide - 1].id;
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < wide; i++)
			specs[i] = (struct jobd_spec){ .type = "noop",
						       .parent = mid[k] };
		ck_assert_int_eq(jobd_store_create(st, "t", specs, (size_t)wide,
						   out),
				 0);
		for (int i = 0; i < wide; i++)
			ck_assert_int_gt(out[i].id, 0);
	}
	free(specs);
	free(out);
	*first = mid[0];
	*last = mid[1];
	return r;
}

/* How many jobs of the subtree of ID have status S (recursively). */
static size_t count_status(int64_t id, enum jobd_status s)
{
	struct jobd_job *job = get(id);
	size_t n = job->status == s;
	int64_t cursor = 0;

	jobd_job_free(job);
	for (;;) {
		struct jobd_job_list list;

		ck_assert_int_eq(
			jobd_store_children(st, id, cursor, 1000, &list), 0);
		for (size_t i = 0; i < list.n; i++)
			n += list.jobs[i]->children.total ?
				     count_status(list.jobs[i]->id, s) :
				     list.jobs[i]->status == s;
		cursor = list.next;
		jobd_job_list_release(&list);
		if (!cursor)
			return n;
	}
}

START_TEST(test_cascade_over_wide_three_level_tree)
{
	int64_t first, last, r = big_tree(250, &first, &last);
	size_t total = 1 + 250 + 2 * 250;
	struct jobd_job *job;
	size_t n, left;
	struct jobd_claim *cl;

	ck_assert_uint_eq(check_tree(r), total);
	op_ok(JOBD_OP_STOP, r);
	ck_assert_uint_eq(count_status(r, JOBD_STOPPED), total);
	ck_assert_int_eq(claim_count(), 0);
	check_tree(r);
	ck_assert_int_eq(jobd_store_cascades_run(st, 10, &left), 0);
	ck_assert_uint_eq(left, 0);

	op_ok(JOBD_OP_RESUME, r);
	ck_assert_uint_eq(count_status(r, JOBD_PENDING), total);
	check_tree(r);

	op_ok(JOBD_OP_LOW_PRIORITY, r);
	job = get(last);
	ck_assert(job->low_priority);
	jobd_job_free(job);
	cl = claim(10, 0, 60000, &n);
	ck_assert_int_eq(n, 0);
	jobd_store_claims_free(cl, n);
	op_ok(JOBD_OP_LOW_PRIORITY_OFF, r);

	op_ok(JOBD_OP_STOP, r);
	op_ok(JOBD_OP_CANCEL, r);
	ck_assert_uint_eq(count_status(r, JOBD_CANCELED), total);
	ck_assert_int_eq(count_of(JOBD_CANCELED), (int64_t)total);
	ck_assert_int_eq(count_of(JOBD_PENDING), 0);
	check_tree(r);
	ck_assert_int_eq(claim_count(), 0);
	(void)first;
}
END_TEST

START_TEST(test_stop_leaves_no_job_of_the_subtree_claimable)
{
	int64_t first, last, r = big_tree(220, &first, &last);
	int64_t other = create("noop", 0);
	size_t n, stopping = 0;
	struct jobd_claim *cl;

	/* Some jobs of the tree run, the rest wait. */
	cl = claim(30, 0, 60000, &n);
	ck_assert_int_eq(n, 30);
	jobd_store_claims_free(cl, n);
	op_ok(JOBD_OP_STOP, r);
	cl = claim(1000, 1000, 60000, &n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(cl[i].root != r,
			      "job %lld of the stopped tree claimed",
			      (long long)cl[i].id);
	jobd_store_claims_free(cl, n);
	ck_assert_int_le(n, 1);
	stopping = count_status(r, JOBD_STOPPING);
	ck_assert_uint_le(stopping, 30);
	ck_assert_uint_eq(count_status(r, JOBD_PENDING), 0);
	ck_assert_uint_eq(count_status(r, JOBD_IN_PROGRESS), 0);
	check_tree(r);
	(void)other;
	(void)first;
	(void)last;
}
END_TEST

START_TEST(test_cancel_leaves_no_job_of_the_subtree_claimable)
{
	/* A non-stoppable child is skipped by the stop cascade... */
	int64_t p = create("noop", 0), c = create("nostop", p);
	size_t n;
	struct jobd_claim *cl;

	op_ok(JOBD_OP_STOP, p);
	op_ok(JOBD_OP_CANCEL, p);
	assert_status(p, "canceled");
	/* ...but once its tree is canceled it must not run. */
	cl = claim(10, 10, 60000, &n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(cl[i].root != p,
			      "job %lld (%s) of canceled tree %lld claimed",
			      (long long)cl[i].id, cl[i].type, (long long)p);
	jobd_store_claims_free(cl, n);
	check_tree(p);
	(void)c;
}
END_TEST

/* --- fencing ------------------------------------------------------------- */

START_TEST(test_report_with_old_attempt_is_fenced_and_writes_nothing)
{
	int64_t id = create("noop", 0);
	int64_t a1 = claim_only(id), a2;
	struct jobd_report r = { .id = id,
				 .attempt = a1,
				 .progress = 90,
				 .errors = 3,
				 .checkpoint = "{\"old\":1}" };
	enum jobd_result res;
	struct jobd_job *job;

	ck_assert_int_eq(handback(id, a1, NULL), JOBD_RESULT_PENDING);
	a2 = claim_only(id);
	ck_assert_int_eq(a2, a1 + 1);
	ck_assert_int_eq(jobd_store_report(st, &r, 1, &res), 0);
	ck_assert_int_eq(res, JOBD_RESULT_FENCED);
	r.outcome = JOBD_OUTCOME_FAILED;
	ck_assert_int_eq(jobd_store_finish(st, &r, 1, &res), 0);
	ck_assert_int_eq(res, JOBD_RESULT_FENCED);
	job = get(id);
	ck_assert_int_eq(job->status, JOBD_IN_PROGRESS);
	ck_assert(job->progress == 0);
	ck_assert_int_eq(job->errors, 0);
	ck_assert_ptr_null(job->checkpoint);
	ck_assert_int_eq(job->attempt, a2);
	jobd_job_free(job);
	ck_assert_int_eq(heartbeat(id, a2), JOBD_RESULT_OK);
	ck_assert_int_eq(finish(id, a2, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
}
END_TEST

/* --- list ---------------------------------------------------------------- */

START_TEST(test_list_filters_by_status_type_run_by_system_and_all)
{
	int64_t a = create_full("noop", 0, NULL, false, "alice", NULL);
	int64_t b = create_full("again", 0, NULL, false, "bob", NULL);
	int64_t s = create_full("sys", 0, NULL, false, NULL, NULL);
	int64_t c = create_full("noop", a, NULL, false, "alice", NULL);
	struct jobd_filter f = { .limit = 100 };
	struct jobd_job_list list;

	op_ok(JOBD_OP_STOP, b);
#define LIST(...)                                                    \
	do {                                                         \
		f = (struct jobd_filter){ __VA_ARGS__ };             \
		if (!f.limit)                                        \
			f.limit = 100;                               \
		ck_assert_int_eq(jobd_store_list(st, &f, &list), 0); \
	} while (0)
	LIST(.cursor = 0);
	ck_assert_int_eq(list.n, 2);
	ck_assert_int_eq(list.jobs[0]->id, b); /* newest first */
	ck_assert_int_eq(list.jobs[1]->id, a);
	ck_assert_int_eq(list.next, 0);
	ck_assert_int_gt(list.now, 0);
	jobd_job_list_release(&list);
	LIST(.all = true);
	ck_assert_int_eq(list.n, 3);
	ck_assert_int_eq(list.jobs[0]->id, c);
	jobd_job_list_release(&list);
	LIST(.system = true);
	ck_assert_int_eq(list.n, 3);
	ck_assert_int_eq(list.jobs[0]->id, s);
	jobd_job_list_release(&list);
	LIST(.system = true, .all = true);
	ck_assert_int_eq(list.n, 4);
	jobd_job_list_release(&list);
	LIST(.status = "stopped");
	ck_assert_int_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, b);
	jobd_job_list_release(&list);
	LIST(.type = "noop", .all = true);
	ck_assert_int_eq(list.n, 2);
	ck_assert_int_eq(list.jobs[0]->id, c);
	ck_assert_int_eq(list.jobs[1]->id, a);
	jobd_job_list_release(&list);
	LIST(.run_by = "alice");
	ck_assert_int_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, a);
	jobd_job_list_release(&list);
	LIST(.run_by = "alice", .status = "stopped");
	ck_assert_int_eq(list.n, 0);
	jobd_job_list_release(&list);
	LIST(.limit = 1);
	ck_assert_int_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, b);
	ck_assert_int_eq(list.next, b);
	jobd_job_list_release(&list);
	LIST(.cursor = b);
	ck_assert_int_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, a);
	ck_assert_int_eq(list.next, 0);
	jobd_job_list_release(&list);
}
END_TEST

/*
 * TEXT (a command, a key pattern, a message of fsck) with every "jobd:"
 * written with the suite's prefix, into BUF of SIZE bytes; fails the test
 * when it does not fit.
 */
static const char *with_prefix(const char *text, char *buf, size_t size)
{
	size_t len = 0, plen = strlen(prefix);
	const char *p = text, *at;

	while ((at = strstr(p, "jobd:"))) {
		ck_assert_msg(len + (size_t)(at - p) + plen < size,
			      "too long with the prefix: %s", text);
		memcpy(buf + len, p, (size_t)(at - p));
		len += (size_t)(at - p);
		memcpy(buf + len, prefix, plen);
		len += plen;
		p = at + 4; /* from the ':' on */
	}
	ck_assert_msg(len + strlen(p) < size, "too long with the prefix: %s",
		      text);
	strcpy(buf + len, p);
	return buf;
}

/* redis-cli's options that reach the server holding the suite's keys. */
static const char *server_opts(void)
{
	static char opts[300];

	if (cluster_seed)
		return cluster_owner;
	snprintf(opts, sizeof(opts), "-s '%s'", jobd_test_redis_address(redis));
	return opts;
}

/* The number the shell command CMD prints first. */
static long long number_of(const char *cmd)
{
	long long n = 0;
	FILE *f = popen(cmd, "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_msg(fscanf(f, "%lld", &n) == 1, "no number from %s", cmd);
	pclose(f);
	return n;
}

/* How many keys exist with the prefix (SCAN is fine in a test). */
static long long keys_matching(const char *pattern)
{
	char cmd[512], pat[256];

	snprintf(cmd, sizeof(cmd), "redis-cli %s --scan --pattern '%s' | wc -l",
		 server_opts(), with_prefix(pattern, pat, sizeof(pat)));
	return number_of(cmd);
}

/* The integers redis-cli prints for a command into V (an absent value
 * prints an empty line, which fscanf skips: read one field at a time). */
static size_t rcli_ints(long long *v, size_t max, const char *fmt, ...)
{
	char cmd[1536], args[512], keyed[1024];
	size_t n = 0;
	va_list ap;
	int len;
	FILE *f;

	va_start(ap, fmt);
	len = vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	ck_assert_msg(len < (int)sizeof(args), "command too long: %s", args);
	snprintf(cmd, sizeof(cmd), "redis-cli %s %s", server_opts(),
		 with_prefix(args, keyed, sizeof(keyed)));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (n < max && fscanf(f, "%lld", &v[n]) == 1)
		n++;
	pclose(f);
	return n;
}

/* A claim writes when it took place only from the second claim on: the
 * running attempt starts at the last claim (lib.lua run_start). */
START_TEST(test_duration_counts_each_attempt_from_its_claim)
{
	int64_t id = create("noop", 0), a = claim_only(id), first;
	struct jobd_job *job = get(id);
	long long v[2];

	ck_assert_int_eq(rcli_ints(v, 1, "hexists jobd:job:%lld claimed_at",
				   (long long)id),
			 1);
	ck_assert_int_eq(rcli_ints(v + 1, 1, "hexists jobd:job:%lld run_since",
				   (long long)id),
			 1);
	ck_assert_int_eq(v[0] + v[1], 0);
	ck_assert_int_eq(job->claimed_at, job->started_at);
	ck_assert_int_eq(job->run_since, job->started_at);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->started_at + 250), 250);
	jobd_job_free(job);
	sleep_ms(30);
	ck_assert_int_eq(handback(id, a, ""), JOBD_RESULT_PENDING);
	job = get(id);
	first = job->run_ms;
	ck_assert_int_ge(first, 30);
	ck_assert_int_eq(job->run_since, 0);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->started_at + 99999),
			 first);
	jobd_job_free(job);
	sleep_ms(30);
	a = claim_only(id);
	job = get(id);
	ck_assert_int_ge(job->claimed_at, job->started_at + 60);
	ck_assert_int_eq(job->run_since, job->claimed_at);
	ck_assert_int_eq(jobd_job_duration_ms(job, job->claimed_at + 100),
			 first + 100);
	jobd_job_free(job);
	sleep_ms(20);
	ck_assert_int_eq(finish(id, a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	job = get(id);
	ck_assert_int_eq(job->run_since, 0);
	ck_assert_int_eq(job->run_ms,
			 first + job->finished_at - job->claimed_at);
	ck_assert_int_ge(job->run_ms, first + 20);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_stats_minutes_are_registered_and_expire_after_retention)
{
	long long starts[8], v[2], created = 0;
	size_t n;

	for (int i = 0; i < 2; i++) {
		int64_t id = create("noop", 0);

		ck_assert_int_eq(finish(id, claim_only(id), JOBD_OUTCOME_DONE),
				 JOBD_RESULT_FINISHED);
	}
	/* Each minute the jobs touched is listed, expires at its end plus
	 * the retention (not counted from its last write), and their
	 * counters add up over the minutes (one may turn meanwhile). */
	n = rcli_ints(starts, 8, "zrange jobd:stats:minutes 0 -1");
	ck_assert_uint_ge(n, 1);
	for (size_t k = 0; k < n; k++) {
		ck_assert_uint_eq(rcli_ints(v, 1,
					    "pexpiretime jobd:stats:m:%lld",
					    starts[k]),
				  1);
		ck_assert_int_eq(v[0],
				 starts[k] + 60000 + conf->retention_stats);
		if (rcli_ints(v, 1, "hget jobd:stats:m:%lld created",
			      starts[k]))
			created += v[0];
		if (rcli_ints(v, 2, "hmget jobd:stats:m:%lld wait_min wait_max",
			      starts[k]) == 2)
			ck_assert_int_le(v[0], v[1]);
	}
	ck_assert_int_eq(created, 2);
	/* On a Redis with no statistics before, the roll-up starts before
	 * the first minute: no hour is written until a minute closes. */
	ck_assert_uint_eq(rcli_ints(v, 1, "get jobd:stats:rolled"), 1);
	ck_assert_int_lt(v[0], starts[0]);
	ck_assert_uint_eq(rcli_ints(v, 1, "zcard jobd:stats:hours"), 1);
	ck_assert_int_eq(v[0], 0);
}
END_TEST

START_TEST(test_stats_waiting_times_are_the_jobs_waits)
{
	int64_t now;
	struct jobd_stats stats;
	struct jobd_claim *cl;
	size_t n;
	int64_t started = 0, sum = 0, lo = -1, hi = -1;

	create("noop", 0);
	sleep_ms(300);
	create("noop", 0);
	cl = claim(10, 10, 60000, &n);
	ck_assert_uint_eq(n, 2);
	jobd_store_claims_free(cl, n);
	/* A waited 300 ms or more, B a few: the minute's started, sum,
	 * min and max say so (wait_min of B, wait_max of A). */
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	ck_assert_int_eq(jobd_store_stats(st, now - 600000, NULL, &stats), 0);
	for (size_t k = 0; k < stats.n; k++) {
		const struct jobd_stats_counts *c = &stats.minutes[k].all;

		started += c->started;
		sum += c->wait_sum;
		if (c->wait_min >= 0 && (lo < 0 || c->wait_min < lo))
			lo = c->wait_min;
		if (c->wait_max > hi)
			hi = c->wait_max;
	}
	jobd_stats_release(&stats);
	ck_assert_int_eq(started, 2);
	ck_assert_int_lt(lo, 100);
	ck_assert_int_ge(hi, 300);
	ck_assert_int_eq(sum, hi + lo);
}
END_TEST

/* Jobs created over the hourly windows of the last 8 hours. */
static long long created_in_hours(long long now_ms)
{
	struct jobd_stats stats;
	long long created = 0;

	ck_assert_int_eq(
		jobd_store_stats(st, now_ms - 8 * 3600000LL, NULL, &stats), 0);
	for (size_t k = 0; k < stats.n; k++) {
		ck_assert_int_eq(stats.minutes[k].minute % 3600000, 0);
		created += stats.minutes[k].all.created;
	}
	jobd_stats_release(&stats);
	return created;
}

START_TEST(test_stats_closed_minutes_roll_up_into_hours_once)
{
	long long v[4], t[2], old, hour;

	/* Before any other statistics: a closed minute two hours back, not
	 * rolled up yet. The next call that writes statistics adds it to
	 * its hour, once. */
	ck_assert_uint_eq(rcli_ints(t, 2, "time"), 2);
	old = t[0] * 1000 - 7200000;
	old -= old % 60000;
	hour = old - old % 3600000;
	rcli_ints(v, 1,
		  "hset jobd:stats:m:%lld created 5 'created|noop' 5 "
		  "wait_min 3 wait_max 9 'wait|noop_min' 3 'wait|noop_max' 9",
		  old);
	rcli_ints(v, 1, "zadd jobd:stats:minutes %lld %lld", old, old);
	rcli_ints(v, 1, "set jobd:stats:rolled %lld", old - 60000);
	create("noop", 0);
	create("noop", 0);
	ck_assert_uint_eq(rcli_ints(v, 4,
				    "hmget jobd:stats:h:%lld created wait_min "
				    "wait_max 'created|noop'",
				    hour),
			  4);
	ck_assert_int_eq(v[0], 5);
	ck_assert_int_eq(v[1], 3);
	ck_assert_int_eq(v[2], 9);
	ck_assert_int_eq(v[3], 5);
	ck_assert_uint_eq(
		rcli_ints(v, 1, "pexpiretime jobd:stats:h:%lld", hour), 1);
	ck_assert_int_eq(v[0], hour + 3600000 + conf->retention_stats);
	ck_assert_uint_eq(rcli_ints(v, 1, "zscore jobd:stats:hours %lld", hour),
			  1);
	ck_assert_uint_eq(rcli_ints(v, 1, "get jobd:stats:rolled"), 1);
	ck_assert_int_ge(v[0], old);
	/* A long window reads hours: the rolled minute once, and the
	 * minutes not rolled up yet added to their hour. */
	ck_assert_int_eq(created_in_hours(t[0] * 1000), 5 + 2);
}
END_TEST

START_TEST(test_stats_first_call_after_upgrade_counts_each_job_once)
{
	long long v[2], t[2], minute, hour;

	/* What an earlier version left: the current minute written into
	 * both its minute and its hour, and no roll-up mark. */
	ck_assert_uint_eq(rcli_ints(t, 2, "time"), 2);
	minute = t[0] * 1000 - t[0] * 1000 % 60000;
	hour = minute - minute % 3600000;
	rcli_ints(v, 1, "hset jobd:stats:m:%lld created 7", minute);
	rcli_ints(v, 1, "hset jobd:stats:h:%lld created 7", hour);
	rcli_ints(v, 1, "zadd jobd:stats:minutes %lld %lld", minute, minute);
	rcli_ints(v, 1, "zadd jobd:stats:hours %lld %lld", hour, hour);
	create("noop", 0);
	ck_assert_int_eq(created_in_hours(t[0] * 1000), 7 + 1);
}
END_TEST

/* The start of the minute after the one of AT: a cutoff that expires
 * the roots that ended by AT's minute (retention's index is per minute). */
static int64_t after_minute(int64_t at)
{
	return at - at % 60000 + 60000;
}

START_TEST(test_purge_deletes_expired_trees_and_every_key)
{
	int64_t done = create_full("noop", 0, "k-done", false, "alice", NULL);
	int64_t kid = create("noop", done);
	int64_t grand = create_full("noop", kid, "k-grand", false, NULL, NULL);
	int64_t live, live_kid;
	int64_t counts_before[JOBD_STATUS_COUNT];
	size_t deleted, total = 0, n;
	bool more = true;
	int64_t now;
	struct jobd_claim *cl = claim(100, 100, 60000, &n);

	/* Run the first tree, finishing from the leaves up. */
	ck_assert_uint_eq(n, 3);
	jobd_store_claims_free(cl, n);
	ck_assert_int_eq(finish(done, 1, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_WAITING);
	ck_assert_int_eq(finish(kid, 1, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_WAITING);
	ck_assert_int_eq(finish(grand, 1, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	assert_status(done, "finished");
	/* A second tree that is not over stays. */
	live = create("noop", 0);
	live_kid = create("noop", live);
	op_ok(JOBD_OP_STOP, live);
	ck_assert_int_eq(jobd_store_counts(st, counts_before), 0);

	/* A cutoff before the finish deletes nothing. */
	ck_assert_int_eq(jobd_store_purge(st, 1, 100, &deleted, &more), 0);
	ck_assert_uint_eq(deleted, 0);

	ck_assert(!more);
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	for (more = true; more;) {
		/* A batch of 1 proves the work list carries over calls. */
		ck_assert_int_eq(jobd_store_purge(st, after_minute(now), 1,
						  &deleted, &more),
				 0);
		total += deleted;
	}
	ck_assert_uint_eq(total, 3);
	ck_assert_int_eq(keys_matching("jobd:job:*"), 2);
	ck_assert_int_eq(keys_matching(fmt("jobd:log:%lld", (long long)done)),
			 0);
	ck_assert_int_eq(keys_matching("jobd:keys:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:ckeys:*"), 0);
	ck_assert_int_eq(
		keys_matching(fmt("jobd:children:%lld", (long long)done)), 0);
	ck_assert_int_eq(keys_matching("jobd:ixb:*:s:finished:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:ixd:*:s:finished"), 0);
	ck_assert_int_eq(keys_matching("jobd:ixb:*:u:alice:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:ixd:*:u:alice"), 0);
	ck_assert_int_eq(keys_matching("jobd:purge"), 0);
	ck_assert_int_eq(count_of(JOBD_FINISHED),
			 counts_before[JOBD_FINISHED] - 3);
	/* The live tree is untouched and still consistent. */
	assert_status(live, "stopped");
	assert_status(live_kid, "stopped");
	check_tree(live);
}
END_TEST

/* Runs a redis-cli command against the test server (to corrupt it). */
static void rcli(const char *args)
{
	char cmd[2048], keyed[1536];

	snprintf(cmd, sizeof(cmd), "redis-cli %s %s >/dev/null", server_opts(),
		 with_prefix(args, keyed, sizeof(keyed)));
	ck_assert_int_eq(system(cmd), 0);
}

/*
 * Empties the test's Redis: on a cluster, the primary that holds every
 * key of the suite (tests/unit/check_store_cluster.sh checks at the end
 * that the other primaries got none).
 */
static void flush(void)
{
	char cmd[1024];
	long long all, in_slot;

	if (!cluster_seed) {
		jobd_test_redis_flush(redis);
		return;
	}
	/* What the case before wrote is all in the slot of the prefix
	 * (the module could write a key of another slot on this node;
	 * check_store_cluster.sh looks at the other nodes at the end). */
	snprintf(cmd, sizeof(cmd), "redis-cli %s dbsize", server_opts());
	all = number_of(cmd);
	snprintf(cmd, sizeof(cmd),
		 "redis-cli %s cluster countkeysinslot "
		 "\"$(redis-cli %s cluster keyslot '%s')\"",
		 server_opts(), server_opts(), prefix);
	in_slot = number_of(cmd);
	ck_assert_msg(all == in_slot,
		      "%lld keys on the slot's primary, %lld of them in the "
		      "slot of %s",
		      all, in_slot, prefix);
	rcli("FLUSHALL");
}

/* fsck finds no violation (WHEN says at which point, in the message). */
static void fsck_clean(const char *when)
{
	struct jobd_fsck f;

	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_msg(f.nviolations == 0, "%s: %s", when,
		      f.nviolations ? f.violations[0] : "");
	jobd_fsck_release(&f);
}

/* fsck finds at least N violations and fixes nothing; with repair it
 * fixes at least N, after which it finds none. */
static void fsck_then_repair(size_t n)
{
	struct jobd_fsck f;

	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_ge(f.nviolations, n);
	ck_assert_uint_eq(f.fixed, 0);
	jobd_fsck_release(&f);
	ck_assert_int_eq(jobd_store_fsck(st, true, &f), 0);
	ck_assert_uint_ge(f.fixed, n);
	jobd_fsck_release(&f);
	fsck_clean("after repair");
}

/*
 * Claims every ready job and finishes it done, each with one log line
 * (LOG: a format with one %lld, the job's id; NULL = none), until no job
 * is ready. Returns how many finished their run.
 */
static size_t run_ready(const char *log)
{
	size_t total = 0;

	for (;;) {
		size_t n;
		struct jobd_claim *cl = claim(1000, 1000, 60000, &n);
		struct jobd_report *r = calloc(n ? n : 1, sizeof(*r));
		struct jobd_log_line *lines = calloc(n ? n : 1, sizeof(*lines));
		char(*text)[64] = calloc(n ? n : 1, sizeof(*text));
		enum jobd_result *res = calloc(n ? n : 1, sizeof(*res));

		for (size_t i = 0; i < n; i++) {
			if (log) {
				snprintf(text[i], sizeof(text[i]), log,
					 (long long)cl[i].id);
				lines[i] = (struct jobd_log_line){ 1, text[i] };
			}
			r[i] = (struct jobd_report){
				.id = cl[i].id,
				.attempt = cl[i].attempt,
				.progress = -1,
				.logs = log ? &lines[i] : NULL,
				.nlogs = log ? 1 : 0,
				.outcome = JOBD_OUTCOME_DONE,
			};
		}
		if (n)
			ck_assert_int_eq(jobd_store_finish(st, r, n, res), 0);
		jobd_store_claims_free(cl, n);
		free(r);
		free(lines);
		free(text);
		free(res);
		if (n == 0)
			return total;
		total += n;
	}
}

/* Whether MEMBER is in the sorted set KEY (its score into *SCORE). */
static bool zscore(const char *key, long long member, long long *score)
{
	long long v = 0;
	bool in = rcli_ints(&v, 1, "zscore %s %lld", key, member) == 1;

	if (score)
		*score = v;
	return in;
}

/* Whether job ID is in listing index NAME: in the bucket of its id. */
static bool in_index(const char *name, long long id)
{
	long long v = 0;

	ck_assert_uint_eq(rcli_ints(&v, 1, "sismember jobd:ixb:%s:%lld %lld",
				    name, id / 512, id),
			  1);
	return v == 1;
}

static int64_t finished_at(int64_t id)
{
	struct jobd_job *job = get(id);
	int64_t at = job->finished_at;

	jobd_job_free(job);
	return at;
}

static long long rcli_int(const char *args)
{
	long long v = -1;

	ck_assert_uint_eq(rcli_ints(&v, 1, "%s", args), 1);
	return v;
}

/* Sets [retention] key_window to MS as jobd does as it starts and
 * reloads; returns the window it replaced (0: the same). */
static int64_t set_key_window(int64_t ms)
{
	int64_t was = -1;

	conf->key_window = ms;
	ck_assert_int_eq(jobd_store_key_window_write(st, &was), 0);
	return was;
}

/* The job root key KEY names, as jobctl key reads it; 0 when none. */
static int64_t key_id(const char *key)
{
	int64_t id = -1;

	ck_assert_int_eq(jobd_store_key_ids(st, 0, &key, 1, &id), 0);
	return id;
}

/* Redis' clock, ms. */
static int64_t redis_now(void)
{
	int64_t now;

	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	return now;
}

/* Root key KEY's bucket in the window of length W that holds AT
 * (lib.lua key_slot, keys_bucket: FNV-1a mod 16384). */
static const char *key_bucket(const char *key, int64_t w, int64_t at)
{
	static char name[64];
	uint32_t h = 2166136261u;

	for (const char *p = key; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	snprintf(name, sizeof(name), "jobd:keys:%lld:%u",
		 (long long)(at - at % w), (unsigned)(h % 16384));
	return name;
}

/* Sleeps until Redis' clock is at least AT. */
static void sleep_until(int64_t at)
{
	int64_t now;

	while ((now = redis_now()) < at)
		sleep_ms((long)(at - now));
}

/*
 * A key made under one key window is found after the window changes, to
 * a shorter and to a longer one (a duplicate of a Kafka message after a
 * reload makes no second job), until two of the old windows have passed:
 * then the old window's buckets are no longer read. Its bucket made
 * never to expire shows that it is the lookup that stops.
 */
START_TEST(test_key_found_after_the_key_window_changes)
{
	static const int64_t old = 300, to[] = { 100, 1200 };

	/* A new store: no keys of an earlier version to read too, and none
	 * of the window replaced to keep. */
	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	ck_assert_int_eq(set_key_window(old), 0);
	ck_assert_int_eq(rcli_int("HEXISTS jobd:conf key_window_prev"), 0);
	ck_assert_int_eq(rcli_int("HGET jobd:conf key_window"), old);
	for (size_t i = 0; i < 2; i++) {
		char key[32], bucket[64];
		int64_t a, changed, now, cur, start;
		struct jobd_job *job;
		bool existed;

		snprintf(key, sizeof(key), "kw-%zu", i);
		set_key_window(old);
		a = create_full("noop", 0, key, false, NULL, &existed);
		ck_assert(!existed);
		job = get(a);
		snprintf(bucket, sizeof(bucket), "%s",
			 key_bucket(key, old, job->created_at));
		start = job->created_at - job->created_at % old;
		jobd_job_free(job);
		changed = redis_now();
		ck_assert_int_eq(set_key_window(to[i]), old);
		ck_assert_int_eq(rcli_int("HGET jobd:conf key_window_prev"),
				 old);
		/* The same window again keeps the change as it was. */
		ck_assert_int_eq(set_key_window(to[i]), 0);
		ck_assert_int_eq(rcli_int("HGET jobd:conf key_window_prev"),
				 old);
		ck_assert_int_eq(key_id(key), a);
		ck_assert_int_eq(
			create_full("noop", 0, key, false, NULL, &existed), a);
		ck_assert(existed);

		rcli(fmt("PERSIST %s", bucket));
		/* Two old windows after the change, in the first half of a
		 * new window, so that no window starts during the lookup. */
		sleep_until(changed + 2 * old + 10);
		now = redis_now();
		if (now % to[i] > to[i] / 2)
			sleep_until(now - now % to[i] + to[i] + 1);
		now = redis_now();
		cur = now - now % to[i];
		/* The old bucket is read only when its name is one of the new
		 * window's (a start both windows share). */
		ck_assert_int_eq(key_id(key),
				 start == cur || start == cur - to[i] ? a : 0);
		ck_assert_int_eq(rcli_int(fmt("EXISTS %s", bucket)), 1);
	}
}
END_TEST

/*
 * A longer window whose start is one of the old window's names the same
 * bucket as the old one: a key mapped there after the change keeps it
 * alive for two of the new windows, not the old bucket's two old ones.
 */
START_TEST(test_key_bucket_shared_by_two_windows_lives_the_longer)
{
	const char *x = "shared-x";
	char y[32], bucket[64];
	int64_t a, b, now;
	size_t n = 0;

	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	set_key_window(300);
	/* The start of a 900 ms window: also one of a 300 ms window. */
	now = redis_now();
	sleep_until(now - now % 900 + 900);
	a = create_full("noop", 0, x, false, NULL, NULL);
	now = redis_now();
	ck_assert_int_lt(now % 900, 300);
	snprintf(bucket, sizeof(bucket), "%s", key_bucket(x, 900, now));
	ck_assert_str_eq(bucket, key_bucket(x, 300, now));
	ck_assert_int_eq(set_key_window(900), 300);
	/* Another key of the same bucket. */
	do
		snprintf(y, sizeof(y), "shared-%zu", n++);
	while (strcmp(key_bucket(y, 900, now), bucket) != 0);
	b = create_full("noop", 0, y, false, NULL, NULL);
	now = redis_now();
	ck_assert_str_eq(key_bucket(y, 900, now), bucket);
	/* Its start + 2 x 900, not + 2 x 300. */
	ck_assert_int_gt(rcli_int(fmt("PTTL %s", bucket)),
			 now - now % 900 + 1200 - now);
	ck_assert_int_eq(key_id(x), a);
	ck_assert_int_eq(key_id(y), b);
}
END_TEST

/* fsck --repair maps a key again from the job's own key field: a
 * child's into its parent's P:ckeys (the run it was made in), a root's
 * into the bucket of the window it was made in. */
START_TEST(test_fsck_repairs_a_lost_key_mapping_from_the_job)
{
	int64_t root, kid, id = 0;
	const char *k = "fk-kid";
	struct jobd_job *job;
	bool existed;

	/* A new store: no keys of an earlier version, so fsck checks. */
	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	root = create_full("noop", 0, "fk-root", false, NULL, NULL);
	kid = create_full("noop", root, "fk-kid", false, NULL, NULL);
	job = get(root);

	rcli(fmt("HDEL jobd:ckeys:%lld fk-kid", (long long)root));
	rcli(fmt("HDEL %s fk-root",
		 key_bucket("fk-root", conf->key_window, job->created_at)));
	jobd_job_free(job);
	ck_assert_int_eq(jobd_store_key_ids(st, root, &k, 1, &id), 0);
	ck_assert_int_eq(id, 0);
	ck_assert_int_eq(key_id("fk-root"), 0);
	fsck_then_repair(2);
	ck_assert_int_eq(jobd_store_key_ids(st, root, &k, 1, &id), 0);
	ck_assert_int_eq(id, kid);
	ck_assert_int_eq(key_id("fk-root"), root);
	ck_assert_int_eq(create_full("noop", root, "fk-kid", false, NULL,
				     &existed),
			 kid);
	ck_assert(existed);
}
END_TEST

/* fsck checks and repairs the key of a root made under the window a
 * change replaced, in that window's bucket, while its keys live: made
 * 2 s before, it is older than the new 1 s window's lookup reads. */
START_TEST(test_fsck_repairs_a_key_of_the_window_replaced)
{
	int64_t a, made;
	struct jobd_job *job;

	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	set_key_window(3000);
	a = create_full("noop", 0, "fsck-old", false, NULL, NULL);
	job = get(a);
	made = job->created_at;
	jobd_job_free(job);
	/* A root made in the millisecond of the change counts as made
	 * under the new window (fsck compares the times): change it later. */
	sleep_until(made + 1);
	ck_assert_int_eq(set_key_window(1000), 3000);
	rcli(fmt("HDEL %s fsck-old", key_bucket("fsck-old", 3000, made)));
	sleep_until(made + 2050);
	fsck_then_repair(1);
	ck_assert_int_lt(redis_now(), made + 3000);
	ck_assert_int_eq(key_id("fsck-old"), a);
	ck_assert_int_eq(rcli_int(fmt("HGET %s fsck-old",
				      key_bucket("fsck-old", 3000, made))),
			 a);
}
END_TEST

/*
 * A root made after a change of the window has its key under the new
 * window, in a bucket that expires after two new windows: fsck does not
 * take it for one of the window replaced (whose keys live longer here),
 * and neither reports nor maps back a key that expired as it should.
 */
START_TEST(test_fsck_leaves_a_key_made_after_the_window_changed_expired)
{
	int64_t a, made;
	struct jobd_job *job;
	struct jobd_fsck f;

	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	set_key_window(3000);
	create("noop", 0); /* a store with jobs keeps the old window */
	ck_assert_int_eq(set_key_window(1000), 3000);
	a = create_full("noop", 0, "fsck-new", false, NULL, NULL);
	job = get(a);
	made = job->created_at;
	jobd_job_free(job);
	ck_assert_int_eq(key_id("fsck-new"), a);
	sleep_until(made + 2100);
	ck_assert_int_eq(key_id("fsck-new"), 0);
	ck_assert_int_eq(jobd_store_fsck(st, true, &f), 0);
	ck_assert_msg(f.nviolations == 0, "%s",
		      f.nviolations ? f.violations[0] : "");
	ck_assert_uint_eq(f.fixed, 0);
	jobd_fsck_release(&f);
	/* The old window's keys still live: the case the check tells. */
	ck_assert_int_lt(redis_now(), made + 3000);
	ck_assert_int_eq(key_id("fsck-new"), 0);
}
END_TEST

/* The bucket of retention's index that holds root ID ended at AT
 * (lib.lua ended_bucket): "MINUTE:N", after jobd:endb:. */
static const char *ended_bucket(int64_t id, int64_t at)
{
	return fmt("%lld:%lld", (long long)(at - at % 60000),
		   (long long)(id / 512));
}

/* Whether root ID is in retention's index, in the bucket of its end AT. */
static bool in_ended(int64_t id, int64_t at)
{
	return rcli_int(fmt("sismember jobd:endb:%s %lld", ended_bucket(id, at),
			    (long long)id)) == 1;
}

/* The ids in retention's index, every bucket. */
static long long ended_total(void)
{
	return rcli_int("eval \"local n = 0 for _, k in ipairs(redis.call("
			"'KEYS', 'jobd:endb:*')) do n = n + redis.call("
			"'SCARD', k) end return n\" 0");
}

/* Purges everything that ended before CUTOFF, in batches of 500 (the
 * cleanup job's): the jobs deleted. */
static size_t purge_all(int64_t cutoff)
{
	size_t deleted, total = 0;
	bool more = true;

	for (int calls = 0; more; calls++) {
		ck_assert_int_lt(calls, 1000);
		ck_assert_int_eq(
			jobd_store_purge(st, cutoff, 500, &deleted, &more), 0);
		total += deleted;
	}
	return total;
}

/* Moves the end of each root of IDS (N of them) back by MS: its
 * finished_at, then fsck --repair moves its entry in retention's index
 * (it finds it missing from its new bucket and stale in its old one). */
static void end_earlier(const int64_t *ids, size_t n, int64_t ms)
{
	struct jobd_fsck f;

	for (size_t i = 0; i < n; i++)
		rcli(fmt("hset jobd:job:%lld finished_at %lld",
			 (long long)ids[i],
			 (long long)(finished_at(ids[i]) - ms)));
	ck_assert_int_eq(jobd_store_fsck(st, true, &f), 0);
	ck_assert_uint_eq(f.fixed, 2 * n);
	jobd_fsck_release(&f);
	for (size_t i = 0; i < n; i++)
		ck_assert(in_ended(ids[i], finished_at(ids[i])));
}

#define OLD_ROOTS 500

/*
 * Issue 17 item 6: retention read the 500 lowest ids of each terminal
 * index, so 500 old roots restarted and ended again after the cutoff hid
 * every later job from it ("deleted 0 jobs" while job 502 had ended long
 * before). It now reads the roots by the minute they ended.
 */
START_TEST(test_purge_is_not_blocked_by_restarted_old_roots_that_ended_late)
{
	struct jobd_spec specs[OLD_ROOTS];
	struct jobd_created out[OLD_ROOTS];
	struct jobd_op_result res[OLD_ROOTS];
	int64_t ids[OLD_ROOTS], old, kid, cutoff, now;

	for (int i = 0; i < OLD_ROOTS; i++)
		specs[i] = (struct jobd_spec){ .type = "again" };
	ck_assert_int_eq(jobd_store_create(st, "t", specs, OLD_ROOTS, out), 0);
	for (int i = 0; i < OLD_ROOTS; i++)
		ids[i] = out[i].id;
	ck_assert_uint_eq(run_ready(NULL), OLD_ROOTS);
	/* The job that expires: a root with a child, a key, a user, logs,
	 * that ended two minutes ago. */
	old = create_full("noop", 0, "k-old", false, "carol", NULL);
	kid = create("noop", old);
	ck_assert_int_gt(old, ids[OLD_ROOTS - 1]);
	ck_assert_uint_eq(run_ready("work of %lld"), 2);
	assert_status(old, "finished");
	end_earlier(&old, 1, 120000);
	cutoff = after_minute(finished_at(old));
	/* The old roots run again and end after the cutoff. */
	ck_assert_int_eq(jobd_store_op(st, JOBD_OP_RESTART, "t", ids, OLD_ROOTS,
				       res),
			 0);
	for (int i = 0; i < OLD_ROOTS; i++)
		ck_assert_msg(res[i].ok, "restart: %s", res[i].error);
	ck_assert_int_eq(ended_total(), 1);
	ck_assert_uint_eq(run_ready(NULL), OLD_ROOTS);

	ck_assert_uint_eq(purge_all(cutoff), 2);
	ck_assert_int_eq(keys_matching(fmt("jobd:job:%lld", (long long)old)),
			 0);
	ck_assert_int_eq(keys_matching(fmt("jobd:job:%lld", (long long)kid)),
			 0);
	ck_assert_int_eq(keys_matching(fmt("jobd:log:%lld", (long long)old)),
			 0);
	ck_assert_int_eq(keys_matching("jobd:keys:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:ckeys:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:ixb:*:u:carol:*"), 0);
	ck_assert(!in_index("ru:s:finished", old));
	ck_assert(!in_index("cu:s:finished", kid));
	/* Exactly those: every old root stays, indexed at its new end. */
	ck_assert_int_eq(ended_total(), OLD_ROOTS);
	ck_assert_int_eq(count_of(JOBD_FINISHED), OLD_ROOTS);
	for (int i = 0; i < OLD_ROOTS; i++) {
		int64_t at = finished_at(ids[i]);

		ck_assert(in_ended(ids[i], at));
		ck_assert_int_ge(at, cutoff);
	}
	/* Later, past their end, they go too. */
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	ck_assert_uint_eq(purge_all(after_minute(now)), OLD_ROOTS);
	ck_assert_int_eq(keys_matching("jobd:job:*"), 0);
	ck_assert_int_eq(keys_matching("jobd:end*"), 0);
}
END_TEST

/* A restart takes a root out of retention's index (the bucket of the end
 * it had, read before the restart clears it); its next end puts it back. */
START_TEST(test_restart_takes_a_root_out_of_the_ended_index)
{
	int64_t a = create("again", 0), at;

	ck_assert_uint_eq(run_ready(NULL), 1);
	at = finished_at(a);
	ck_assert(in_ended(a, at));
	ck_assert_int_eq(rcli_int("zcard jobd:endd"), 1);
	op_ok(JOBD_OP_RESTART, a);
	ck_assert(!in_ended(a, at));
	ck_assert_int_eq(keys_matching("jobd:end*"), 0);
	ck_assert_uint_eq(run_ready(NULL), 1);
	ck_assert(in_ended(a, finished_at(a)));
	ck_assert_int_eq(ended_total(), 1);
	ck_assert_int_eq(rcli_int(fmt("zscore jobd:endd %s",
				      ended_bucket(a, finished_at(a)))),
			 finished_at(a) - finished_at(a) % 60000);
}
END_TEST

/* More than set-max-intset-entries (512) roots ending in a minute still
 * make intsets: a bucket holds a range of 512 ids of its minute. */
START_TEST(test_ended_buckets_stay_intsets_past_512_roots_a_minute)
{
	struct jobd_spec specs[300];
	struct jobd_created out[300];

	for (int i = 0; i < 300; i++)
		specs[i] = (struct jobd_spec){ .type = "noop" };
	for (int b = 0; b < 2; b++)
		ck_assert_int_eq(jobd_store_create(st, "t", specs, 300, out),
				 0);
	ck_assert_uint_eq(run_ready(NULL), 600);
	ck_assert_int_eq(ended_total(), 600);
	ck_assert_int_ge(rcli_int("zcard jobd:endd"), 2);
	ck_assert_int_eq(
		rcli_int("eval \"local n = 0 for _, k in ipairs(redis.call("
			 "'KEYS', 'jobd:endb:*')) do if redis.call('OBJECT', "
			 "'ENCODING', k) ~= 'intset' then n = n + 1 end end "
			 "return n\" 0"),
		0);
}
END_TEST

/* P:leases is a skip list from its first running job (module and Lua),
 * where a listpack of up to 128 members is scanned on every claim and
 * finish; the member that converts it is gone, and it stays one. */
START_TEST(test_leases_are_a_skiplist_from_the_first_claim)
{
	const char *enc =
		"eval \"return redis.call('OBJECT', 'ENCODING', KEYS[1]) == "
		"'skiplist' and 1 or 0\" 1 jobd:leases";

	for (int round = 0; round < 2; round++) {
		int64_t a = create("noop", 0), at_a, b, at_b;

		ck_assert_int_eq(rcli_int("exists jobd:leases"), 0);
		at_a = claim_only(a);
		ck_assert_int_eq(rcli_int("zcard jobd:leases"), 1);
		ck_assert_int_eq(rcli_int(enc), 1);
		b = create("noop", 0);
		at_b = claim_only(b);
		ck_assert_int_eq(rcli_int("zcard jobd:leases"), 2);
		ck_assert_int_eq(rcli_int(enc), 1);
		/* Empty, the set goes; the next claim makes it again. */
		ck_assert_int_eq(finish(a, at_a, JOBD_OUTCOME_DONE),
				 JOBD_RESULT_FINISHED);
		ck_assert_int_eq(finish(b, at_b, JOBD_OUTCOME_DONE),
				 JOBD_RESULT_FINISHED);
	}
}
END_TEST

/*
 * While P:hold exists (jobctl cluster move, docs/scaling.md "Moving the
 * slot"), a create, a claim, a finish and a heartbeat are refused before
 * they write anything, with the error that names the hold
 * (jobd_store_held: when it began); hold.lua's release lengthens every
 * lease by the time held and lets the calls go. The module's commands
 * and the Lua functions alike (both modes).
 */
START_TEST(test_a_hold_refuses_every_call_before_it_writes)
{
	struct jobd_spec spec = { .type = "noop" };
	struct jobd_report r = { .outcome = JOBD_OUTCOME_DONE };
	int64_t a = create("noop", 0), b, at_a, since = 0;
	long long seq, lease, now;
	struct jobd_created out;
	struct jobd_claim *cl;
	enum jobd_result res;
	char cmd[512];
	size_t n;

	at_a = claim_only(a);
	b = create("noop", 0);
	ck_assert_uint_eq(rcli_ints(&lease, 1, "zscore jobd:leases %lld",
				    (long long)a),
			  1);
	ck_assert_uint_eq(rcli_ints(&now, 1, "time"), 1);
	now *= 1000;
	ck_assert_uint_eq(rcli_ints(&seq, 1, "get jobd:seq"), 1);
	snprintf(cmd, sizeof(cmd),
		 "hset jobd:hold to 127.0.0.1:1 by test since %lld",
		 now - 5000);
	rcli(cmd);

	ck_assert_int_lt(jobd_store_create(st, "tester", &spec, 1, &out), 0);
	ck_assert_msg(jobd_store_held(st, &since), "create: %s",
		      jobd_store_errstr(st));
	ck_assert_int_eq(since, now - 5000);
	ck_assert_int_lt(jobd_store_claim(st, "test-1", 10, 10, 60000, &cl, &n),
			 0);
	ck_assert_msg(jobd_store_held(st, &since), "claim: %s",
		      jobd_store_errstr(st));
	r.id = a;
	r.attempt = at_a;
	ck_assert_int_lt(jobd_store_finish(st, &r, 1, &res), 0);
	ck_assert_msg(jobd_store_held(st, &since), "finish: %s",
		      jobd_store_errstr(st));
	ck_assert_int_lt(jobd_store_heartbeat(st, &a, &at_a, 1, 60000, &res),
			 0);
	ck_assert(jobd_store_held(st, &since));
	ck_assert_int_eq(rcli_int("get jobd:seq"), seq);
	ck_assert_int_eq(rcli_int("zcard jobd:leases"), 1);

	/* Released: the lease is 5 s longer (the hold's age), a lease
	 * without end (a parent waiting for its children) stays so, and
	 * every call goes on. Only by the move it names, or by any. */
	rcli("zadd jobd:leases +inf 999999");
	ck_assert_uint_eq(rcli_ints(&now, 1,
				    "fcall %shold 0 %s release "
				    "127.0.0.1:2 0",
				    jobd_library_prefix, prefix),
			  0); /* refused: another move's hold */
	ck_assert_int_eq(rcli_int("exists jobd:hold"), 1);
	snprintf(cmd, sizeof(cmd), "fcall %shold 0 %s release '' 0",
		 jobd_library_prefix, prefix);
	ck_assert_int_eq(rcli_int(cmd), 1);
	ck_assert_int_eq(rcli_int("exists jobd:hold"), 0);
	ck_assert_int_eq(rcli_int("zcount jobd:leases +inf +inf"), 1);
	rcli("zrem jobd:leases 999999");
	ck_assert_uint_eq(
		rcli_ints(&now, 1, "zscore jobd:leases %lld", (long long)a), 1);
	ck_assert_int_ge(now, lease + 5000);
	ck_assert_int_lt(now, lease + 10000);
	ck_assert_uint_eq(claim_count_of(10), 1);
	ck_assert_int_eq(finish(a, at_a, JOBD_OUTCOME_DONE),
			 JOBD_RESULT_FINISHED);
	assert_status(a, "finished");
	ck_assert_int_gt(create("noop", 0), b);
}
END_TEST

/* Retention reads the oldest minutes first, a bounded batch a call: with
 * a budget of one, the roots of a minute all go before any of the next,
 * and a minute after the cutoff stays. */
START_TEST(test_purge_deletes_the_oldest_minutes_first_in_small_batches)
{
	int64_t ids[6], cutoff;
	size_t deleted, total = 0;
	bool more = true;
	int calls = 0;

	for (int i = 0; i < 6; i++)
		ids[i] = create("noop", 0);
	ck_assert_uint_eq(run_ready(NULL), 6);
	/* Two roots per minute, 5, 4 and 3 minutes ago, the oldest the
	 * highest ids (retention reads minutes, not ids). */
	end_earlier(&ids[4], 2, 300000);
	end_earlier(&ids[2], 2, 240000);
	end_earlier(&ids[0], 2, 180000);
	ck_assert_int_eq(rcli_int("zcard jobd:endd"), 3);
	cutoff = after_minute(finished_at(ids[2]));
	while (more) {
		ck_assert_int_lt(calls++, 50);
		ck_assert_int_eq(
			jobd_store_purge(st, cutoff, 1, &deleted, &more), 0);
		ck_assert_uint_le(deleted, 1);
		total += deleted;
		/* The minute of ids 2 and 3 only once that of 4 and 5 is gone. */
		if (keys_matching(fmt("jobd:job:%lld", (long long)ids[2])) +
			    keys_matching(
				    fmt("jobd:job:%lld", (long long)ids[3])) <
		    2)
			ck_assert_int_eq(
				keys_matching(fmt("jobd:job:%lld",
						  (long long)ids[4])) +
					keys_matching(fmt("jobd:job:%lld",
							  (long long)ids[5])),
				0);
	}
	ck_assert_uint_eq(total, 4);
	ck_assert_int_ge(calls, 4);
	for (int i = 0; i < 2; i++) {
		assert_status(ids[i], "finished");
		ck_assert(in_ended(ids[i], finished_at(ids[i])));
	}
	ck_assert_int_eq(ended_total(), 2);
	ck_assert_int_eq(rcli_int("zcard jobd:endd"), 1);
}
END_TEST

/* An entry of retention's index that no longer says when a root ended is
 * settled by the purge that meets it, never read again. */
START_TEST(test_purge_settles_stale_entries_of_the_ended_index)
{
	int64_t gone = create("noop", 0), late = create("noop", 0), live, now;
	long long v;

	ck_assert_uint_eq(run_ready(NULL), 2);
	live = create("noop", 0);
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	rcli(fmt("SREM jobd:endb:%s %lld",
		 ended_bucket(gone, finished_at(gone)), (long long)gone));
	rcli(fmt("DEL jobd:job:%lld", (long long)gone));
	/* All three in a bucket of minute 0, long expired. */
	rcli(fmt("SADD jobd:endb:%s %lld %lld %lld", ended_bucket(gone, 0),
		 (long long)gone, (long long)live, (long long)late));
	rcli(fmt("ZADD jobd:endd 0 %s", ended_bucket(gone, 0)));
	ck_assert_uint_eq(purge_all(now - 60000), 0);
	ck_assert_int_eq(
		keys_matching(fmt("jobd:endb:%s", ended_bucket(gone, 0))), 0);
	ck_assert_uint_eq(rcli_ints(&v, 1, "zscore jobd:endd %s",
				    ended_bucket(gone, 0)),
			  0);
	ck_assert(in_ended(late, finished_at(late)));
	ck_assert_int_eq(ended_total(), 1);
	ck_assert_int_eq(rcli_int("zcard jobd:endd"), 1);
	assert_status(live, "pending");
}
END_TEST

/*
 * A cancel whose operator died before the cascade leaves the canceled
 * root's descendants as they were: a child that the stop before skipped
 * (its type is not stoppable) still waits in its root's ready queue. A
 * purge in that window deleted the child but not its queue entries,
 * which named no job until a claim of that priority dropped them.
 */
START_TEST(test_purge_of_a_root_canceled_mid_cascade_leaves_no_queue_behind)
{
	int64_t root = create("noop", 0);
	int64_t kid = create_full("nostop", root, NULL, true, NULL, NULL);
	int64_t late = create_full("flaky", root, NULL, false, NULL, NULL);
	struct store_args a = { 0 };
	redisReply *r;
	size_t left;
	int64_t now;

	op_ok(JOBD_OP_STOP, root);
	assert_status(kid, "pending");
	assert_status(late, "stopped");
	/* The cancel alone, as from an operator that died after it. */
	store_args_addf(&a, "%lld", (long long)conf->retention_stats);
	store_args_add(&a, "tester");
	store_args_addf(&a, "%lld", (long long)root);
	r = store_eval(st, S_CANCEL, &a);
	store_args_release(&a);
	ck_assert_ptr_nonnull(r);
	/* ok, and its cascade left to do ("ok canceled:TASK") */
	ck_assert_int_eq(strncmp(r->element[0]->str, "ok canceled:", 12), 0);
	freeReplyObject(r);
	assert_status(kid, "pending");
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	ck_assert_uint_eq(purge_all(after_minute(now)), 3);
	ck_assert_int_eq(keys_matching("jobd:ready*"), 0);
	/* The root's entry in the list of roots without children (made
	 * stale by its first child) is left for a claim to drop: taking it
	 * out of a list would read the whole list. */
	ck_assert_int_eq(keys_matching("jobd:roots*"), 1);
	ck_assert_int_eq(claim_count(), 0);
	ck_assert_int_eq(keys_matching("jobd:roots*"), 0);
	ck_assert_int_eq(keys_matching("jobd:alone*"), 0);
	fsck_clean("after the purge");
	/* Housekeeping finds nothing left to cascade to. */
	ck_assert_int_eq(jobd_store_cascades_run(st, 10, &left), 0);
	ck_assert_int_eq(keys_matching("jobd:cascades"), 0);
	ck_assert_int_eq(keys_matching("jobd:cascade:*"), 0);
}
END_TEST

/* The ids of every page of F, two a page (so that paging crosses the
 * buckets), as text: "1030 1029 ..." (caller frees). */
static char *listed(struct jobd_filter f)
{
	char *out = calloc(1, 8192), after[64];
	size_t len = 0;

	ck_assert_ptr_nonnull(out);
	f.limit = 2;
	for (int pages = 0; pages < 200; pages++) {
		struct jobd_job_list list;
		bool more;

		ck_assert_int_eq(jobd_store_list(st, &f, &list), 0);
		for (size_t i = 0; i < list.n; i++)
			len += (size_t)snprintf(out + len, 8192 - len, "%lld ",
						(long long)list.jobs[i]->id);
		more = f.sort ? list.after[0] != 0 : list.next != 0;
		snprintf(after, sizeof(after), "%s", list.after);
		f.after = after;
		f.cursor = list.next;
		jobd_job_list_release(&list);
		if (!more)
			return out;
	}
	ck_abort_msg("more than 200 pages");
	return out;
}

/* The listings test_upgrade_* compares, by filter. */
static const struct jobd_filter upgrade_filters[] = {
	{ .all = true, .system = true },
	{ .status = "pending", .all = true },
	{ .status = "finished", .system = true },
	{ .status = "stopped" },
	{ .type = "noop", .all = true },
	{ .run_by = "carol" },
	{ .all = true, .system = true, .sort = "created" },
	{ .status = "pending", .sort = "created", .desc = true },
};
#define NFILTERS (sizeof(upgrade_filters) / sizeof(upgrade_filters[0]))

/*
 * A store written with the sorted-set indexes of module revisions up to
 * r9 (P:ix:NAME, score = id): listings read them until the backfill has
 * moved them into the buckets, a transition meanwhile writes only the
 * buckets (its old entry goes stale, and listings skip it), and the
 * backfill, in batches, leaves every job in exactly its buckets: fsck
 * finds nothing, and every listing is what it was.
 */
START_TEST(test_upgrade_moves_the_sorted_set_indexes_into_buckets)
{
	char *want[NFILTERS], *got;
	int64_t ids[12], stop;
	size_t n, m, k, calls = 0;
	bool more = true;

	/* Ids across the bucket of 512 to 1023 and the next. */
	rcli("SET jobd:seq 1015");
	for (int i = 0; i < 12; i++)
		ids[i] = create_full(i % 3 == 0 ? "sys" : "noop",
				     i == 4 ? ids[3] : 0, NULL, false,
				     i % 2 ? "carol" : NULL, NULL);
	ck_assert_int_eq(ids[11], 1027);
	op_ok(JOBD_OP_STOP, ids[1]);
	ck_assert_uint_ge(run_ready(NULL), 1);
	stop = create_full("noop", 0, NULL, false, NULL, NULL);
	create_full("noop", 0, NULL, false, "carol", NULL);
	create_full("sys", 0, NULL, false, NULL, NULL);
	for (size_t i = 0; i < NFILTERS; i++)
		want[i] = listed(upgrade_filters[i]);
	ck_assert_str_ne(want[1], "");

	/* The earlier layout: each bucket into its index's sorted set, an
	 * index of running jobs as the oldest versions wrote, and no
	 * backfill of it done. */
	rcli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'jobd:ixb:*')) do "
	     "local n = string.match(k, '^jobd:ixb:(.*):%d+$') "
	     "for _, id in ipairs(redis.call('SMEMBERS', k)) do "
	     "redis.call('ZADD', 'jobd:ix:' .. n, id, id) end "
	     "redis.call('DEL', k) end "
	     "for _, k in ipairs(redis.call('KEYS', 'jobd:ixd:*')) do "
	     "redis.call('DEL', k) end\" 0");
	rcli(fmt("ZADD jobd:ix:ru:s:in_progress %lld %lld", (long long)stop,
		 (long long)stop));
	rcli("HDEL jobd:backfill ix");
	ck_assert_int_eq(keys_matching("jobd:ix[bd]:*"), 0);
	for (size_t i = 0; i < NFILTERS; i++) {
		got = listed(upgrade_filters[i]);
		ck_assert_str_eq(got, want[i]);
		free(got);
	}

	/* A stop before the backfill: pending in the old index, stopped in
	 * a bucket; listed once, as stopped. */
	op_ok(JOBD_OP_STOP, stop);
	got = listed(upgrade_filters[1]);
	ck_assert_ptr_null(strstr(got, fmt("%lld ", (long long)stop)));
	free(got);
	got = listed(upgrade_filters[3]);
	ck_assert_str_eq(got, fmt("%lld %s", (long long)stop, want[3]));
	free(got);
	free(want[0]);
	want[0] = listed(upgrade_filters[0]);
	ck_assert_ptr_nonnull(strstr(want[0], fmt("%lld ", (long long)stop)));
	ck_assert_ptr_null(
		strstr(strstr(want[0], fmt("%lld ", (long long)stop)) + 1,
		       fmt(" %lld ", (long long)stop)));
	free(want[1]);
	want[1] = listed(upgrade_filters[1]);
	free(want[3]);
	want[3] = listed(upgrade_filters[3]);
	free(want[7]);
	want[7] = listed(upgrade_filters[7]);

	ck_assert_int_eq(jobd_store_backfill_pending(st), 1);
	/* Batches of 2 prove that the move carries over calls; then the
	 * month of log minutes in larger ones. */
	while (more && !rcli_int("EVAL \"return redis.call('HGET', "
				 "'jobd:backfill', 'ix') == 'done' and 1 "
				 "or 0\" 0")) {
		ck_assert_uint_lt(++calls, 100);
		ck_assert_int_eq(jobd_store_backfill(st, 2, &n, &m, &k, &more),
				 0);
	}
	ck_assert_uint_gt(calls, 5);
	while (more) {
		ck_assert_uint_lt(++calls, 200);
		ck_assert_int_eq(
			jobd_store_backfill(st, 10000, &n, &m, &k, &more), 0);
	}
	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	ck_assert_int_eq(keys_matching("jobd:ix:*"), 0);
	ck_assert(in_index("ru:s:stopped", stop));
	ck_assert(!in_index("ru:s:pending", stop));
	for (size_t i = 0; i < NFILTERS; i++) {
		got = listed(upgrade_filters[i]);
		ck_assert_str_eq(got, want[i]);
		free(got);
		free(want[i]);
	}
	fsck_clean("after the upgrade");
}
END_TEST

/* The listing index buckets against the jobs and their directories:
 * an entry of a job of another type, a job out of its bucket, a bucket
 * its directory does not list, a directory entry without its bucket. */
START_TEST(test_fsck_checks_and_repairs_the_index_buckets)
{
	int64_t a = create("noop", 0), b = create("sys", 0);

	(void)b;
	rcli(fmt("SADD jobd:ixb:ru:t:other:0 %lld", (long long)a));
	rcli("ZADD jobd:ixd:ru:t:other 0 0");
	rcli(fmt("SREM jobd:ixb:ru:t:noop:0 %lld", (long long)a));
	rcli("ZREM jobd:ixd:rs:t:sys 0");
	rcli("ZADD jobd:ixd:ru:s:pending 7 7");
	fsck_then_repair(4);
	ck_assert(in_index("ru:t:noop", a));
	ck_assert_int_eq(rcli_int("zcard jobd:ixd:ru:t:noop"), 1);
	ck_assert_int_eq(keys_matching("jobd:ix?:ru:t:other*"), 0);
	ck_assert_int_eq(rcli_int("zcard jobd:ixd:rs:t:sys"), 1);
	ck_assert_int_eq(rcli_int("zcard jobd:ixd:ru:s:pending"), 1);
}
END_TEST

/*
 * A prefix whose hash tag is {N/S} is shard N of S (docs/scaling.md,
 * "Shards"), read alike by the functions and the module: its job ids
 * are SEQ x S + N, so an id names its shard, and a bucket of ids covers
 * 512 x S of them, 512 of the shard's, so its indexes stay sets of up to
 * 512 ids however many shards there are. Everything else works as in a
 * store of one shard: keys, children, claims, finishes, listing pages,
 * fsck. A tag N/S that names no shard is refused by the store, the
 * functions and the module. (Not on a cluster: the suite's keys and
 * commands are those of the slot of {jobd}.)
 */
START_TEST(test_a_shard_prefix_makes_ids_of_its_shard)
{
	enum { N = 1100 };
	struct jobd_spec *specs = calloc(N, sizeof(*specs));
	struct jobd_created *out = calloc(N, sizeof(*out));
	char(*keys)[16] = calloc(N, sizeof(*keys));
	struct jobd_filter f = { .limit = 300 };
	struct jobd_claim *cl;
	struct jobd_conf *bad;
	char err[512];
	int64_t kid, prev = INT64_MAX;
	size_t n, listed = 0;
	bool existed;
	redisReply *r;

	jobd_store_free(st);
	free(conf->prefix);
	conf->prefix = strdup("jobd:{3/4}");
	prefix = conf->prefix;
	st = jobd_store_new(conf, err, sizeof(err));
	ck_assert_msg(st != NULL, "store: %s", err);
	for (size_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k-%zu", i);
		specs[i] = (struct jobd_spec){ .type = "noop", .key = keys[i] };
	}
	for (size_t off = 0; off < N; off += 500)
		ck_assert_int_eq(jobd_store_create(st, "t", specs + off,
						   N - off < 500 ? N - off :
								   500,
						   out + off),
				 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(out[i].id, (int64_t)(i + 1) * 4 + 3);
	ck_assert_int_eq(rcli_int("get jobd:seq"), N);
	/* Buckets of 2048 ids: seq 1-511, 512-1023, 1024-1100. */
	ck_assert_int_eq(rcli_int("scard jobd:ixb:ru:s:pending:0"), 511);
	ck_assert_int_eq(rcli_int("scard jobd:ixb:ru:s:pending:1"), 512);
	ck_assert_int_eq(rcli_int("scard jobd:ixb:ru:s:pending:2"), N - 1023);
	ck_assert_int_eq(rcli_int("zcard jobd:ixd:ru:s:pending"), 3);
	/* Keys in 16,384 / 4 buckets a window: none numbered 5000 or more
	 * (of 16,384, about 70 % of 1,100 keys would be). */
	ck_assert_int_gt(keys_matching("jobd:keys:*"), 500);
	ck_assert_int_eq(keys_matching("jobd:keys:*:[5-9]???") +
				 keys_matching("jobd:keys:*:1????"),
			 0);
	/* Claimed and finished: retention's index by the same buckets. */
	cl = claim(3, 3, 60000, &n);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(cl[i].id % 4, 3);
		ck_assert_int_eq(finish(cl[i].id, cl[i].attempt,
					JOBD_OUTCOME_DONE),
				 JOBD_RESULT_FINISHED);
	}
	jobd_store_claims_free(cl, n);
	ck_assert_int_eq(keys_matching("jobd:endb:*:0"), 1);
	ck_assert_int_eq(keys_matching("jobd:endb:*"), 1);
	/* A child (create.lua) takes the shard's next id; a key finds its
	 * job again. */
	kid = create("noop", out[9].id);
	ck_assert_int_eq(kid, (N + 1) * 4 + 3);
	ck_assert_int_eq(create_full("noop", 0, "k-5", false, NULL, &existed),
			 out[5].id);
	ck_assert(existed);
	/* Listed newest first, page by page, every root once. */
	do {
		struct jobd_job_list list;

		ck_assert_int_eq(jobd_store_list(st, &f, &list), 0);
		for (size_t i = 0; i < list.n; i++) {
			ck_assert_int_lt(list.jobs[i]->id, prev);
			ck_assert_int_eq(list.jobs[i]->id % 4, 3);
			prev = list.jobs[i]->id;
			listed++;
		}
		f.cursor = list.next;
		jobd_job_list_release(&list);
	} while (f.cursor);
	ck_assert_uint_eq(listed, N);
	fsck_clean("a shard");

	/* Refused: by the store, by name; by a function and the module. */
	bad = jobd_conf_parse(conf_text, strlen(conf_text), "test", err,
			      sizeof(err));
	free(bad->redis_address);
	bad->redis_address = strdup(jobd_test_redis_address(redis));
	free(bad->prefix);
	bad->prefix = strdup("jobd:{4/4}");
	ck_assert_ptr_null(jobd_store_new(bad, err, sizeof(err)));
	ck_assert_msg(strstr(err, "[redis] prefix = jobd:{4/4}: ") == err, "%s",
		      err);
	jobd_conf_free(bad);
	r = jobd_store_command(st, "FCALL %swhy 0 x:{9/2} 1",
			       jobd_library_prefix);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	ck_assert_msg(strstr(r->str, "x:{9/2}: its tag names no shard"), "%s",
		      r->str);
	freeReplyObject(r);
	r = jobd_store_command(st, "FCALL %swhy 0 x:{01/2} 1",
			       jobd_library_prefix);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->type == REDIS_REPLY_ERROR &&
			      strstr(r->str,
				     "x:{01/2}: its tag names no shard"),
		      "a leading zero: %s", r->str ? r->str : "");
	freeReplyObject(r);
	if (jobd_store_has_module(st)) {
		r = jobd_store_command(st,
				       "JOBD.CLAIM x:{0/0} 0 i 1000 1 1 10");
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
		ck_assert_msg(strstr(r->str, "x:{0/0}: its tag names no shard"),
			      "%s", r->str);
		freeReplyObject(r);
		r = jobd_store_command(st, "JOBD.CLAIM x:{1/02} 0 i 1 1 1 10");
		ck_assert_ptr_nonnull(r);
		ck_assert_msg(r->type == REDIS_REPLY_ERROR &&
				      strstr(r->str, "its tag names no shard"),
			      "a leading zero: %s", r->str ? r->str : "");
		freeReplyObject(r);
	}
	prefix = "jobd";
	free(keys);
	free(out);
	free(specs);
}
END_TEST

/*
 * A store across shards (src/store/shards.c; docs/scaling.md, "Shards"):
 * four shards on one Redis. A root with a key goes to the shard its key
 * hashes to, so a duplicate finds its first copy; roots without a key go
 * to the shards in turn; a child to its parent's shard. Reads,
 * operations, claims and the workers' reports reach every job through
 * its id, batches split over the shards come back in the caller's order,
 * and each shard stays consistent (fsck). (Not on a cluster: the suite's
 * keys are those of the slot of {jobd}.)
 */
static void count_key(const char *key, int64_t id, void *arg)
{
	(void)key;
	(void)id;
	++*(size_t *)arg;
}

START_TEST(test_a_store_across_shards_places_and_routes_jobs)
{
	enum { KEYED = 200, BARE = 40, ALL = KEYED + BARE + 1 };
	struct jobd_spec specs[KEYED + BARE];
	struct jobd_created out[KEYED + BARE], again[KEYED];
	char keys[KEYED][16];
	size_t per[4] = { 0 }, n, got = 0;
	struct jobd_store *sh;
	struct jobd_report *rep = calloc(ALL, sizeof(*rep));
	enum jobd_result *res = calloc(ALL, sizeof(*res));
	int64_t *ids = calloc(ALL, sizeof(*ids)),
		*att = calloc(ALL, sizeof(*att));
	struct jobd_op_result ops[3];
	struct jobd_claim *cl;
	struct jobd_job *job;
	struct jobd_job_list list;
	struct jobd_log_query lq = { .limit = 10 };
	struct jobd_log_result logs;
	struct jobd_why w;
	struct jobd_stats stats;
	struct jobd_stats_minute total;
	struct jobd_fsck f;
	const char *kp[KEYED];
	int64_t kids[KEYED], counts[JOBD_STATUS_COUNT], created = 0;
	size_t scanned = 0, listed = 0;
	unsigned woken = 0;
	int64_t prev = INT64_MAX;
	bool more;
	char err[512];
	int64_t now, kid;

	/* (On a cluster the suite's prefix is {jobd}: the shards' tags are
	 * their own.) */
	free(conf->prefix);
	conf->prefix = strdup("jobd");
	sh = store_shards_new(conf, 4, err, sizeof(err));
	ck_assert_msg(sh != NULL, "store: %s", err);
	for (size_t i = 0; i < KEYED + BARE; i++) {
		if (i < KEYED)
			snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
		specs[i] =
			(struct jobd_spec){ .type = "noop",
					    .key = i < KEYED ? keys[i] : NULL };
	}
	ck_assert_int_eq(jobd_store_create(sh, "t", specs, KEYED + BARE, out),
			 0);
	for (size_t i = 0; i < KEYED + BARE; i++) {
		ck_assert_msg(out[i].id > 0 && !out[i].existed, "%zu: %s", i,
			      out[i].error);
		per[out[i].id % 4]++;
		if (i >= KEYED) /* in turn: 10 a shard */
			ck_assert_int_eq(
				out[i].id % 4,
				(out[KEYED].id + (int64_t)(i - KEYED)) % 4);
	}
	for (int k = 0; k < 4; k++)
		ck_assert_msg(per[k] >= 10 + 20, "shard %d has %zu of %d", k,
			      per[k], KEYED + BARE);
	/* A key made again finds its job, in its shard. */
	ck_assert_int_eq(jobd_store_create(sh, "t", specs, KEYED, again), 0);
	for (size_t i = 0; i < KEYED; i++) {
		ck_assert(again[i].existed);
		ck_assert_int_eq(again[i].id, out[i].id);
	}
	/* A child in its parent's shard. */
	specs[0] = (struct jobd_spec){ .type = "noop", .parent = out[1].id };
	ck_assert_int_eq(jobd_store_create(sh, "t", specs, 1, again), 0);
	kid = again[0].id;
	ck_assert_int_eq(kid % 4, out[1].id % 4);
	ck_assert_int_eq(jobd_store_get(sh, kid, &job, &now), 0);
	ck_assert_int_eq(job->parent, out[1].id);
	jobd_job_free(job);
	/* Listed newest first across the shards, page by page: every root
	 * once, ids falling; no sort but by creation yet. */
	for (struct jobd_filter lf = { .limit = 37 };;) {
		ck_assert_int_eq(jobd_store_list(sh, &lf, &list), 0);
		for (size_t i = 0; i < list.n; i++) {
			ck_assert_int_lt(list.jobs[i]->id, prev);
			prev = list.jobs[i]->id;
			listed++;
		}
		lf.cursor = list.next;
		jobd_job_list_release(&list);
		if (!lf.cursor)
			break;
	}
	ck_assert_uint_eq(listed, KEYED + BARE);
	ck_assert_int_eq(
		jobd_store_list(sh, &(struct jobd_filter){ .sort = "duration" },
				&list),
		JOBD_STORE_ERR_INVALID);
	ck_assert_msg(strstr(jobd_store_errstr(sh), "across shards"), "%s",
		      jobd_store_errstr(sh));
	/* Not across shards yet, and said so: per-type limits (each shard
	 * would hold its own), the search of every job's logs. */
	{
		static const char capped[] = "[type.capped]\n"
					     "handler = noop\n"
					     "concurrency = 2\n";
		struct jobd_conf *lc = jobd_conf_parse(
			capped, strlen(capped), "test", err, sizeof(err));
		struct jobd_store *ls;
		struct jobd_log_query all = { .limit = 10 };
		bool changed;
		char by[64];

		ck_assert_ptr_nonnull(lc);
		free(lc->redis_address);
		lc->redis_address = strdup(conf->redis_address);
		free(lc->prefix);
		lc->prefix = strdup("jobdlim");
		ls = store_shards_new(lc, 2, err, sizeof(err));
		ck_assert_msg(ls != NULL, "store: %s", err);
		ck_assert_int_eq(jobd_store_limits_write(ls, "t", &changed, by,
							 sizeof(by)),
				 JOBD_STORE_ERR_INVALID);
		ck_assert_msg(strstr(jobd_store_errstr(ls),
				     "[type.capped]: per-type limits do not "
				     "hold across shards"),
			      "%s", jobd_store_errstr(ls));
		jobd_store_free(ls);
		jobd_conf_free(lc);
		ck_assert_int_eq(jobd_store_limits_write(sh, "t", &changed, by,
							 sizeof(by)),
				 0);
		ck_assert_int_eq(jobd_store_logs_all(sh, &all, &logs),
				 JOBD_STORE_ERR_INVALID);
		ck_assert_msg(strstr(jobd_store_errstr(sh), "across shards"),
			      "%s", jobd_store_errstr(sh));
	}
	/* Operations by id over three shards, answered in order. */
	for (int i = 0; i < 3; i++)
		ids[i] = out[KEYED + 1 + i].id;
	ck_assert_int_eq(jobd_store_op(sh, JOBD_OP_STOP, "t", ids, 3, ops), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert(ops[i].ok);
		ck_assert_int_eq(ops[i].id, ids[i]);
		ck_assert_int_eq(ops[i].status, JOBD_STOPPED);
	}
	ck_assert_int_eq(jobd_store_op(sh, JOBD_OP_RESUME, "t", ids, 3, ops),
			 0);
	for (int i = 0; i < 3; i++)
		ck_assert(ops[i].ok);
	/* Claimed from every shard, each job once. */
	while (got < ALL) {
		ck_assert_int_eq(jobd_store_claim(sh, "test-1", 64, 64, 60000,
						  &cl, &n),
				 0);
		ck_assert_msg(n > 0, "claimed %zu of %d", got, ALL);
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < got; j++)
				ck_assert_int_ne(ids[j], cl[i].id);
			ids[got] = cl[i].id;
			att[got++] = cl[i].attempt;
		}
		jobd_store_claims_free(cl, n);
	}
	ck_assert_int_eq(jobd_store_heartbeat(sh, ids, att, ALL, 60000, res),
			 0);
	for (size_t i = 0; i < ALL; i++) {
		ck_assert_int_eq(res[i], JOBD_RESULT_OK);
		rep[i] = (struct jobd_report){ .id = ids[i],
					       .attempt = att[i],
					       .progress = 50,
					       .outcome = JOBD_OUTCOME_DONE };
	}
	/* A fenced attempt is told so, in its place. */
	rep[7].attempt++;
	ck_assert_int_eq(jobd_store_report(sh, rep, ALL, res), 0);
	for (size_t i = 0; i < ALL; i++)
		ck_assert_int_eq(res[i],
				 i == 7 ? JOBD_RESULT_FENCED : JOBD_RESULT_OK);
	rep[7].attempt--;
	ck_assert_int_eq(jobd_store_finish(sh, rep, ALL, res), 0);
	for (size_t i = 0; i < ALL; i++)
		ck_assert_msg(res[i] == JOBD_RESULT_FINISHED ||
				      res[i] == JOBD_RESULT_WAITING,
			      "job %lld: %d", (long long)ids[i], res[i]);
	for (size_t i = 0; i < ALL; i++) {
		ck_assert_int_eq(jobd_store_get(sh, ids[i], &job, &now), 0);
		ck_assert_int_eq(job->status, JOBD_FINISHED);
		jobd_job_free(job);
	}
	/* Read across the shards: counts, children, logs, why, keys,
	 * statistics, fsck; housekeeping in each. */
	ck_assert_int_eq(jobd_store_counts(sh, counts), 0);
	ck_assert_int_eq(counts[JOBD_FINISHED], ALL);
	ck_assert_int_eq(counts[JOBD_PENDING], 0);
	ck_assert_int_eq(jobd_store_children(sh, out[1].id, 0, 10, &list), 0);
	ck_assert_uint_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, kid);
	jobd_job_list_release(&list);
	ck_assert_int_eq(jobd_store_logs(sh, kid, &lq, &logs), 0);
	ck_assert_uint_gt(logs.n, 0);
	jobd_log_result_release(&logs);
	ck_assert_int_eq(jobd_store_why(sh, out[2].id, &w), 0);
	ck_assert_int_eq(w.status, JOBD_FINISHED);
	for (size_t i = 0; i < KEYED; i++)
		kp[i] = keys[i];
	ck_assert_int_eq(jobd_store_key_ids(sh, 0, kp, KEYED, kids), 0);
	for (size_t i = 0; i < KEYED; i++)
		ck_assert_int_eq(kids[i], out[i].id);
	ck_assert_int_eq(
		jobd_store_key_scan(sh, 0, "key-1*", count_key, &scanned), 0);
	ck_assert_uint_eq(scanned, 111); /* key-1, key-10.., key-100.. */
	ck_assert_int_eq(jobd_store_time(sh, &now), 0);
	ck_assert_int_eq(jobd_store_stats(sh, now - 600000, NULL, &stats), 0);
	for (size_t i = 0; i < stats.n; i++)
		created += stats.minutes[i].all.created;
	ck_assert_int_eq(created, ALL);
	jobd_stats_release(&stats);
	ck_assert_int_eq(jobd_store_stats(sh, 0, NULL, &stats), 0); /* 1 h */
	for (size_t i = 0; i < stats.n; i++)
		created -= stats.minutes[i].all.created;
	ck_assert_int_eq(created, 0);
	jobd_stats_release(&stats);
	ck_assert_int_eq(jobd_store_totals(sh, &total), 0);
	ck_assert_int_eq(total.all.created, ALL);
	ck_assert_int_eq(total.all.finished, ALL);
	jobd_stats_minute_release(&total);
	ck_assert_int_eq(jobd_store_expire(sh, 100, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(jobd_store_cascades_run(sh, 10, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(jobd_store_fsck(sh, false, &f), 0);
	ck_assert_msg(f.nviolations == 0, "%s",
		      f.nviolations ? f.violations[0] : "");
	ck_assert_uint_eq(f.jobs, ALL);
	jobd_fsck_release(&f);
	/* A violation names its shard. (The suite's redis-cli reaches the
	 * slot of {jobd} alone on a cluster.) */
	if (!cluster_seed) {
		snprintf(err, sizeof(err), "jobd:{%lld/4}: job %lld",
			 (long long)(out[3].id % 4), (long long)out[3].id);
		rcli(fmt("SREM jobd:{%lld/4}:ixb:ru:t:noop:0 %lld",
			 (long long)(out[3].id % 4), (long long)out[3].id));
		ck_assert_int_eq(jobd_store_fsck(sh, false, &f), 0);
		ck_assert_uint_ge(f.nviolations, 1);
		ck_assert_msg(strncmp(f.violations[0], err, strlen(err)) == 0,
			      "%s, want %s", f.violations[0], err);
		jobd_fsck_release(&f);
		ck_assert_int_eq(jobd_store_fsck(sh, true, &f), 0);
		jobd_fsck_release(&f);
		ck_assert_int_eq(jobd_store_fsck(sh, false, &f), 0);
		ck_assert_uint_eq(f.nviolations, 0);
		jobd_fsck_release(&f);
	}
	/* A filter each shard checks job by job over several of its own
	 * calls (the status index drives, the type is read from each job: 6
	 * "again" jobs among 12,000 pending "noop"), 2 a page: each of the
	 * 6 once. */
	{
		enum { MANY = 12000 };
		struct jobd_spec *many = calloc(MANY, sizeof(*many));
		struct jobd_created *made = calloc(MANY, sizeof(*made));
		struct jobd_filter lf = { .status = "pending",
					  .type = "again",
					  .limit = 2 };
		int64_t seen[6];
		size_t nseen = 0;

		for (size_t i = 0; i < MANY; i++)
			many[i] = (struct jobd_spec){ .type = i % 2000 == 1999 ?
								      "again" :
								      "noop" };
		ck_assert_int_eq(jobd_store_create(sh, "t", many, MANY, made),
				 0);
		for (int pages = 0;; pages++) {
			ck_assert_int_lt(pages, 100);
			ck_assert_int_eq(jobd_store_list(sh, &lf, &list), 0);
			for (size_t i = 0; i < list.n; i++) {
				ck_assert_str_eq(list.jobs[i]->type, "again");
				for (size_t j = 0; j < nseen; j++)
					ck_assert_int_ne(seen[j],
							 list.jobs[i]->id);
				ck_assert_uint_lt(nseen, 6);
				seen[nseen++] = list.jobs[i]->id;
			}
			lf.cursor = list.next;
			jobd_job_list_release(&list);
			if (!lf.cursor)
				break;
		}
		ck_assert_uint_eq(nseen, 6);
		free(many);
		free(made);
	}
	/* Retention deletes them in every shard. */
	do {
		size_t d;

		ck_assert_int_eq(
			jobd_store_purge(sh, now + 120000, 1000, &d, &more), 0);
	} while (more);
	ck_assert_int_eq(jobd_store_counts(sh, counts), 0);
	ck_assert_int_eq(counts[JOBD_FINISHED], 0);
	ck_assert_int_eq(jobd_store_get(sh, out[5].id, &job, &now),
			 JOBD_STORE_ERR_NOTFOUND);
	/* On a cluster: every primary holds shards, and nothing else is
	 * built there yet (the wake-up needs a link per primary). The
	 * next case starts with the cluster empty. */
	if (cluster_seed) {
		size_t nodes = 0;

		for (size_t k = 0; k < sh->nsh; k++)
			nodes += strcmp(store_where(sh->sh[k]),
					store_where(sh->sh[0])) != 0;
		ck_assert_msg(nodes > 0, "every shard at %s",
			      store_where(sh->sh[0]));
		ck_assert_int_eq(system(fmt("redis-cli --cluster call %s "
					    "FLUSHALL >/dev/null",
					    cluster_seed)),
				 0);
		goto done;
	}
	/* Idle workers are woken by a job made in any shard. */
	ck_assert_int_eq(jobd_store_wait(sh, 100), 1); /* (subscribes) */
	for (int i = 0; i < 20 && jobd_store_wait(sh, 100) == 1; i++)
		;
	ck_assert_int_eq(jobd_store_wait(sh, 100), 0);
	for (int i = 0; i < 4; i++) {
		int64_t t0;

		specs[0] = (struct jobd_spec){ .type = "noop" };
		ck_assert_int_eq(jobd_store_create(sh, "t", specs, 1, again),
				 0);
		t0 = jobd_util_mono_ms();
		ck_assert_msg(jobd_store_wait(sh, 3000) == 1,
			      "not woken by job %lld", (long long)again[0].id);
		ck_assert_int_lt(jobd_util_mono_ms() - t0, 1000);
		woken |= 1u << (again[0].id % 4);
		ck_assert_int_eq(jobd_store_wait(sh, 50), 0);
	}
	ck_assert_uint_eq(woken, 15); /* by each shard */
done:
	jobd_store_free(sh);
	free(rep);
	free(res);
	free(ids);
	free(att);
}
END_TEST

/* Deletes retention's index (every bucket, the directory). */
static void drop_ended_index(void)
{
	rcli("eval \"for _, k in ipairs(redis.call('KEYS', 'jobd:endb:*')) do "
	     "redis.call('DEL', k) end\" 0");
	rcli("DEL jobd:endd");
}

/* A store of a version before r7 has no index of ended roots: the
 * backfill builds it from the terminal indexes, in batches, and the
 * purge then works. */
START_TEST(test_backfill_indexes_the_ended_roots_of_an_earlier_version)
{
	int64_t a = create("noop", 0), b = create("sys", 0),
		c = create("noop", 0);
	int64_t kid = create("noop", a), p, now;
	size_t indexed = 0, n, m, k;
	bool more = true;

	op_ok(JOBD_OP_STOP, c);
	op_ok(JOBD_OP_CANCEL, c);
	ck_assert_uint_eq(run_ready(NULL), 3);
	p = create("noop", 0);
	drop_ended_index();
	rcli("DEL jobd:backfill");
	ck_assert_int_eq(jobd_store_backfill_pending(st), 1);
	/* Batches of 1 prove that the cursor carries over calls. */
	for (int calls = 0; more && calls < 20; calls++) {
		ck_assert_int_eq(jobd_store_backfill(st, 1, &n, &m, &k, &more),
				 0);
		indexed += n;
	}
	ck_assert_uint_eq(indexed, 3);
	/* The log minutes of a month: a few larger batches. */
	for (int calls = 0; more; calls++) {
		ck_assert_int_lt(calls, 10);
		ck_assert_int_eq(
			jobd_store_backfill(st, 10000, &n, &m, &k, &more), 0);
		ck_assert_uint_eq(n, 0);
	}
	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	ck_assert_int_eq(ended_total(), 3);
	ck_assert(in_ended(a, finished_at(a)));
	ck_assert(in_ended(b, finished_at(b)));
	ck_assert(in_ended(c, finished_at(c)));
	ck_assert(!in_ended(kid, finished_at(kid)));
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	ck_assert_uint_eq(purge_all(after_minute(now)), 4);
	assert_status(p, "pending");
}
END_TEST

/*
 * A store of module revisions r7 to r9 keeps retention's index as the
 * sorted set P:ended (score = finished_at): the backfill's step endb
 * moves it into the buckets, a bounded batch a call, each entry checked
 * against its job (a root restarted since, a child, a job gone are
 * dropped). fsck takes an entry of the old set for indexed meanwhile,
 * and finds the store clean after.
 */
START_TEST(test_backfill_moves_the_ended_index_of_r9)
{
	int64_t ids[5], kid, re, now;
	size_t indexed = 0, n, m, k;
	bool more = true;
	int calls = 0;

	for (int i = 0; i < 5; i++)
		ids[i] = create(i == 4 ? "again" : "noop", 0);
	kid = create("noop", ids[0]);
	ck_assert_uint_eq(run_ready(NULL), 6);
	re = ids[4];
	/* The r9 shape: every bucket into P:ended at its job's end, and a
	 * child and a job gone in it too. */
	rcli("eval \"for _, k in ipairs(redis.call('KEYS', 'jobd:endb:*')) do "
	     "for _, id in ipairs(redis.call('SMEMBERS', k)) do "
	     "redis.call('ZADD', 'jobd:ended', redis.call('HGET', "
	     "'jobd:job:' .. id, 'finished_at'), id) end end\" 0");
	drop_ended_index();
	ck_assert_int_eq(rcli_int("zcard jobd:ended"), 5);
	rcli(fmt("ZADD jobd:ended 1 %lld 2 999999", (long long)kid));
	/* r9's steps done, this one not. */
	rcli("HSET jobd:backfill ix done ended done logs done keys done");
	rcli("HDEL jobd:backfill endb");
	ck_assert_int_eq(jobd_store_backfill_pending(st), 1);
	fsck_clean("a store of r9");
	/* A root restarted before the move: its entry is stale. */
	op_ok(JOBD_OP_RESTART, re);
	while (more) {
		ck_assert_int_lt(calls++, 20);
		ck_assert_int_eq(jobd_store_backfill(st, 2, &n, &m, &k, &more),
				 0);
		indexed += n;
		ck_assert_uint_le(n, 2);
	}
	ck_assert_int_ge(calls, 4);
	ck_assert_uint_eq(indexed, 4);
	ck_assert_int_eq(jobd_store_backfill_pending(st), 0);
	ck_assert_int_eq(keys_matching("jobd:ended"), 0);
	ck_assert_int_eq(ended_total(), 4);
	for (int i = 0; i < 4; i++)
		ck_assert(in_ended(ids[i], finished_at(ids[i])));
	fsck_clean("after the move");
	/* A P:ended left after the move is reported; the repair has the
	 * step run again, which moves it. */
	rcli(fmt("ZADD jobd:ended 1 %lld", (long long)ids[1]));
	fsck_then_repair(1);
	ck_assert_int_eq(jobd_store_backfill_pending(st), 1);
	ck_assert_int_eq(jobd_store_backfill(st, 10, &n, &m, &k, &more), 0);
	ck_assert(!more);
	ck_assert_int_eq(keys_matching("jobd:ended"), 0);
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	ck_assert_uint_eq(purge_all(after_minute(now)), 5);
	assert_status(re, "pending");
}
END_TEST

START_TEST(test_fsck_checks_and_repairs_the_ended_index)
{
	int64_t a = create("noop", 0), b = create("noop", 0);
	int64_t kid = create("noop", b), d;

	ck_assert_uint_eq(run_ready(NULL), 3);
	d = create("noop", 0);
	fsck_clean("clean store");
	/* Missing; at a wrong time, a child, a pending job in a bucket the
	 * directory lacks; no such job; a directory entry without its
	 * bucket; and a minute of the log index without its stream. */
	rcli("ZADD jobd:logix:minutes 60000 60000");
	rcli(fmt("SREM jobd:endb:%s %lld", ended_bucket(a, finished_at(a)),
		 (long long)a));
	rcli(fmt("SADD jobd:endb:%s %lld %lld %lld", ended_bucket(b, 0),
		 (long long)b, (long long)kid, (long long)d));
	rcli("SADD jobd:endb:0:1953 999999");
	rcli("ZADD jobd:endd 0 0:1953 60000 60000:0");
	fsck_then_repair(8);
	ck_assert(!zscore("jobd:logix:minutes", 60000, NULL));
	ck_assert_int_eq(ended_total(), 2);
	ck_assert(in_ended(a, finished_at(a)));
	ck_assert(in_ended(b, finished_at(b)));
	ck_assert_int_eq(keys_matching("jobd:endb:0:*"), 0);
	ck_assert_int_eq(rcli_int("zcard jobd:endd"), 1);
}
END_TEST

START_TEST(test_fsck_finds_and_repairs_corruption)
{
	int64_t a = create("noop", 0), b = create("noop", 0);
	int64_t p = create("noop", 0), c1 = create("noop", p);
	struct jobd_fsck f;
	size_t n;
	struct jobd_claim *cl;

	create("noop", p);
	op_ok(JOBD_OP_STOP, a);
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_eq(f.jobs, 5);
	ck_assert_uint_eq(f.nviolations, 0);
	jobd_fsck_release(&f);

	/* Each kind of damage: a stopped job still ready, a pending job out
	 * of its index, a lease for a pending job, wrong parent counters,
	 * a status counter off. */
	rcli(fmt("ZADD jobd:roots 0 =%lld", (long long)a));
	rcli(fmt("SREM jobd:ixb:ru:s:pending:%lld %lld", (long long)b / 512,
		 (long long)b));
	rcli(fmt("ZADD jobd:leases 0 %lld", (long long)c1));
	rcli(fmt("HSET jobd:job:%lld children_total 9 children_pending 0",
		 (long long)p));
	rcli("HINCRBY jobd:count finished 4");
	fsck_then_repair(5);
	check_tree(p);
	ck_assert_int_eq(count_of(JOBD_FINISHED), 0);
	/* The repaired queues run exactly the pending jobs, a not. */
	cl = claim(100, 100, 60000, &n);
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_ne(cl[i].id, a);
	jobd_store_claims_free(cl, n);
}
END_TEST

/*
 * The lists of roots without children: a list with entries has its
 * member in the roots set, the member stands for a list with entries,
 * and a pending root without children is in its list. fsck names each
 * and --repair restores it; the roots then run once each.
 */
START_TEST(test_fsck_checks_the_lists_of_roots_without_children)
{
	int64_t a = create("noop", 0), b = create("noop", 0);
	struct jobd_fsck f;
	char msg[128];
	size_t n;
	struct jobd_claim *cl;

	rcli("ZREM jobd:roots alone");
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_eq(f.nviolations, 1);
	ck_assert_msg(strstr(f.violations[0],
			     with_prefix("jobd:alone: not in jobd:roots", msg,
					 sizeof(msg))),
		      "%s", f.violations[0]);
	jobd_fsck_release(&f);
	fsck_then_repair(1);

	rcli(fmt("LREM jobd:alone 0 %lld", (long long)a));
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_eq(f.nviolations, 1);
	ck_assert_str_eq(f.violations[0],
			 fmt("job %lld: pending job in 0 ready structures",
			     (long long)a));
	jobd_fsck_release(&f);
	fsck_then_repair(1);

	rcli("DEL jobd:alone");
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_eq(f.nviolations, 3);
	ck_assert_msg(strstr(f.violations[2],
			     with_prefix("jobd:roots: alone: stands for "
					 "jobd:alone, which is empty",
					 msg, sizeof(msg))),
		      "%s", f.violations[2]);
	jobd_fsck_release(&f);
	/* Two repairs: a and b queued again, which makes the member right. */
	fsck_then_repair(2);

	cl = claim(100, 100, 60000, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(cl[0].id != cl[1].id && (cl[0].id == a || cl[0].id == b) &&
		  (cl[1].id == a || cl[1].id == b));
	jobd_store_claims_free(cl, n);
	ck_assert_uint_eq(claim_count(), 0);
}
END_TEST

/*
 * A job waits for its time only while in P:delayed (lib.lua is_delayed):
 * a due job the claim moved into its queue keeps its not_before until
 * it is claimed, and a clock that steps back reads before it again.
 * fsck takes that state for sound and --repair changes nothing; a job in
 * P:delayed and a ready queue, in neither, or in P:delayed without a
 * not_before is still found and repaired. not_before set ahead by hand
 * is the state a clock stepped back leaves.
 */
START_TEST(test_fsck_leaves_a_queued_job_whose_not_before_is_to_come)
{
	int64_t a = create("noop", 0), p = create("noop", 0), c, b, ahead;
	int64_t queued[3];
	char rq[64], msg[128];
	struct jobd_fsck f;
	size_t n;
	struct jobd_claim *cl;

	c = create("noop", p);
	b = create("noop", 0);
	snprintf(rq, sizeof(rq), "jobd:ready:%lld", (long long)p);
	ahead = redis_now() + 3600000;
	queued[0] = a;
	queued[1] = p;
	queued[2] = c;
	for (int i = 0; i < 3; i++)
		rcli(fmt("HSET jobd:job:%lld not_before %lld",
			 (long long)queued[i], (long long)ahead));
	for (int repair = 0; repair < 2; repair++) {
		ck_assert_int_eq(jobd_store_fsck(st, repair, &f), 0);
		ck_assert_msg(f.nviolations == 0, "%s",
			      f.nviolations ? f.violations[0] : "");
		ck_assert_uint_eq(f.fixed, 0);
		/* p's entry in the list, left by its first child. */
		ck_assert_uint_eq(f.stale, 1);
		jobd_fsck_release(&f);
	}
	ck_assert_int_eq(rcli_int(fmt("LPOS jobd:alone %lld", (long long)a)),
			 0);
	ck_assert(zscore(rq, p, NULL));
	ck_assert(zscore(rq, c, NULL));
	ck_assert_int_eq(rcli_int("EXISTS jobd:delayed"), 0);

	/* c in P:delayed as well, a in no structure, b in P:delayed with
	 * no time. */
	rcli(fmt("ZADD jobd:delayed %lld %lld", (long long)ahead,
		 (long long)c));
	rcli(fmt("LREM jobd:alone 0 %lld", (long long)a));
	rcli(fmt("ZADD jobd:delayed 0 %lld", (long long)b));
	ck_assert_int_eq(jobd_store_fsck(st, false, &f), 0);
	ck_assert_uint_eq(f.nviolations, 3);
	ck_assert_str_eq(f.violations[0],
			 fmt("job %lld: pending job in 0 ready structures",
			     (long long)a));
	ck_assert_str_eq(f.violations[1],
			 fmt("job %lld: pending job in 2 ready structures",
			     (long long)c));
	ck_assert_str_eq(
		f.violations[2],
		with_prefix(fmt("job %lld: in jobd:delayed without a not_before",
				(long long)b),
			    msg, sizeof(msg)));
	jobd_fsck_release(&f);
	fsck_then_repair(3);
	/* Queued again from their hashes: a and c wait for their time. */
	ck_assert(zscore("jobd:delayed", a, NULL));
	ck_assert(zscore("jobd:delayed", c, NULL));
	ck_assert(!zscore(rq, c, NULL));
	ck_assert(!zscore("jobd:delayed", b, NULL));
	cl = claim(100, 100, 60000, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(cl[0].id != cl[1].id && (cl[0].id == p || cl[0].id == b) &&
		  (cl[1].id == p || cl[1].id == b));
	jobd_store_claims_free(cl, n);
}
END_TEST

/* The code of the first reason jobctl why gives for ID, and how many. */
static const char *why_first(int64_t id, size_t *n)
{
	static struct jobd_why w;

	ck_assert_int_eq(jobd_store_why(st, id, &w), 0);
	ck_assert_uint_ge(w.n, 1);
	*n = w.n;
	return w.reasons[0].code;
}

/*
 * jobctl why agrees with the claim: a job waits for its time only while
 * in P:delayed (lib.lua is_delayed). One on its queue whose not_before
 * the clock reads as to come (a clock stepped back; set ahead by hand)
 * gets its other reasons, here that no instance runs; in P:delayed it
 * waits for its retry time, or its run_at when it is scheduled.
 */
START_TEST(test_why_a_queued_job_does_not_wait_for_a_not_before_to_come)
{
	int64_t a = create("noop", 0), ahead = redis_now() + 3600000;
	size_t n;

	rcli(fmt("HSET jobd:job:%lld not_before %lld", (long long)a,
		 (long long)ahead));
	ck_assert_str_eq(why_first(a, &n), "no_workers");
	ck_assert_uint_eq(n, 1);
	rcli(fmt("ZADD jobd:delayed %lld %lld", (long long)ahead,
		 (long long)a));
	ck_assert_str_eq(why_first(a, &n), "retry_at");
	rcli(fmt("HSET jobd:job:%lld run_at %lld", (long long)a,
		 (long long)ahead));
	ck_assert_str_eq(why_first(a, &n), "run_at");
}
END_TEST

/* A page of the search across jobs, asserting its bound. */
static void logs_page(const struct jobd_log_query *q,
		      struct jobd_log_result *res)
{
	size_t cap = q->scan_max ? q->scan_max : JOBD_LOG_SCAN_MAX;

	ck_assert_int_eq(jobd_store_logs_all(st, q, res), 0);
	ck_assert_msg(res->scanned <= cap, "a page read %zu index entries",
		      res->scanned);
	ck_assert_uint_le(res->n, q->limit ? q->limit : 1000);
	ck_assert(res->truncated == (res->next[0] != '\0'));
}

#define LOGGED 20000

/*
 * Issue 17 item 7: the search across jobs read every job that logged in
 * the window (a round trip per minute, two or more per job). A page now
 * reads at most its scan bound of index entries, whatever the window
 * holds, and the cursor continues exactly where it stopped: 20,000 jobs
 * logged, every entry found once, in order, page after page.
 */
START_TEST(test_logs_all_pages_are_bounded_and_continue_by_cursor)
{
	struct jobd_spec *specs = calloc(LOGGED, sizeof(*specs));
	struct jobd_created *out = calloc(LOGGED, sizeof(*out));
	unsigned char *seen = calloc(LOGGED + 1, 1);
	struct jobd_log_query q = { .grep = "work of" };
	struct jobd_log_result res;
	char cursor[JOBD_LOG_CURSOR_SIZE];
	size_t pages = 0, found = 0, scanned = 0, n;
	int64_t base, last_ms = 0;

	for (size_t i = 0; i < LOGGED; i++)
		specs[i] = (struct jobd_spec){ .type = "noop" };
	for (size_t off = 0; off < LOGGED; off += 500)
		ck_assert_int_eq(jobd_store_create(st, "t", specs + off, 500,
						   out + off),
				 0);
	base = out[0].id - 1;
	ck_assert_uint_eq(run_ready("work of %lld"), LOGGED);

	/* Every entry once, by the order of the index, in bounded pages. */
	do {
		logs_page(&q, &res);
		pages++;
		scanned += res.scanned;
		for (size_t i = 0; i < res.n; i++) {
			const struct jobd_log_entry *e = &res.entries[i];
			int64_t k = e->job - base;

			ck_assert(k >= 1 && k <= LOGGED);
			ck_assert_msg(!seen[k], "job %lld found twice",
				      (long long)e->job);
			seen[k] = 1;
			ck_assert_str_eq(e->msg, fmt("work of %lld",
						     (long long)e->job));
			ck_assert_int_ge(e->ms, last_ms);
			last_ms = e->ms;
			found++;
		}
		snprintf(cursor, sizeof(cursor), "%s", res.next);
		q.cursor = cursor;
		jobd_log_result_release(&res);
	} while (cursor[0]);
	ck_assert_uint_eq(found, LOGGED);
	ck_assert_uint_eq(scanned, LOGGED);
	ck_assert_uint_ge(pages, LOGGED / 1000);

	/* A search that matches nothing reads the window in bounded pages,
	 * each continuing the last: one index entry per entry written. */
	q = (struct jobd_log_query){ .grep = "no such text", .scan_max = 3000 };
	pages = scanned = 0;
	do {
		logs_page(&q, &res);
		ck_assert_uint_eq(res.n, 0);
		pages++;
		scanned += res.scanned;
		snprintf(cursor, sizeof(cursor), "%s", res.next);
		q.cursor = cursor;
		jobd_log_result_release(&res);
	} while (cursor[0]);
	ck_assert_uint_eq(scanned, LOGGED);
	ck_assert_uint_eq(pages, (LOGGED + 2999) / 3000 + (LOGGED % 3000 == 0));

	/* Everything (lifecycle entries too), small pages: no entry twice,
	 * every logged one there, all in key order. */
	memset(seen, 0, LOGGED + 1);
	q = (struct jobd_log_query){ .limit = 700, .scan_max = 2500 };
	found = n = 0;
	last_ms = 0;
	do {
		logs_page(&q, &res);
		for (size_t i = 0; i < res.n; i++) {
			const struct jobd_log_entry *e = &res.entries[i];
			int64_t k = e->job - base;

			ck_assert_int_ge(e->ms, last_ms);
			last_ms = e->ms;
			if (strncmp(e->msg, "work of ", 8) == 0) {
				ck_assert(!(seen[k] & 1));
				seen[k] |= 1;
				found++;
			} else if (strncmp(e->msg, "created by", 10) == 0) {
				ck_assert(!(seen[k] & 2));
				seen[k] |= 2;
			} else if (strcmp(e->msg, "finished") == 0) {
				ck_assert(!(seen[k] & 4));
				seen[k] |= 4;
			}
			n++;
		}
		snprintf(cursor, sizeof(cursor), "%s", res.next);
		q.cursor = cursor;
		jobd_log_result_release(&res);
	} while (cursor[0]);
	ck_assert_uint_eq(found, LOGGED);
	ck_assert_uint_gt(n, LOGGED);
	free(specs);
	free(out);
	free(seen);
}
END_TEST

/* A small search is one page, with the lifecycle entries of the jobs
 * that logged, as before; a bad cursor is refused. */
START_TEST(test_logs_all_one_page_has_entries_and_lifecycle_of_jobs)
{
	int64_t a = create("noop", 0), b = create("noop", 0);
	int64_t c = create("noop", 0);
	struct jobd_log_query q = { .grep = "" };
	struct jobd_log_result res;
	bool created_a = false, finished_b = false, work_a = false;
	bool created_d = false;
	int64_t d;

	op_ok(JOBD_OP_STOP, c); /* logs, is no job that ran */
	ck_assert_uint_eq(run_ready("work of %lld"), 2);
	/* Logs and stays pending: a hash without status has its lifecycle
	 * entries too. */
	d = create("noop", 0);
	op_ok(JOBD_OP_LOW_PRIORITY, d);
	logs_page(&q, &res);
	ck_assert_str_eq(res.next, "");
	for (size_t i = 0; i < res.n; i++) {
		const struct jobd_log_entry *e = &res.entries[i];

		if (e->job == a && strcmp(e->msg, "created by tester") == 0)
			created_a = true;
		if (e->job == a &&
		    strcmp(e->msg, fmt("work of %lld", (long long)a)) == 0)
			work_a = true;
		if (e->job == b && strcmp(e->msg, "finished") == 0)
			finished_b = true;
		if (e->job == d && strcmp(e->msg, "created by tester") == 0)
			created_d = true;
		if (i > 0)
			ck_assert_int_ge(e->ms, res.entries[i - 1].ms);
	}
	ck_assert_msg(created_a && work_a && finished_b && created_d,
		      "%d %d %d %d, %zu entries", created_a, work_a, finished_b,
		      created_d, res.n);
	jobd_log_result_release(&res);
	/* level and regex filter as for one job. */
	q = (struct jobd_log_query){ .grep = "stopped by", .min_level = 1 };
	logs_page(&q, &res);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_int_eq(res.entries[0].job, c);
	jobd_log_result_release(&res);
	q.cursor = "12-x";
	ck_assert_int_eq(jobd_store_logs_all(st, &q, &res),
			 JOBD_STORE_ERR_INVALID);
	ck_assert(!jobd_store_log_cursor_valid("12-x"));
	ck_assert(jobd_store_log_cursor_valid("1764340000000-3"));
	ck_assert(jobd_store_log_cursor_valid("1764340000000-0/42"));
}
END_TEST

/*
 * A job created, claimed and finished in one millisecond has three
 * lifecycle entries with one time: pages of one entry each still give
 * every one of them once (the cursor "MS-0/JOB" of the first once hid
 * the others, seen as a flaky tests/integration/logs.sh).
 */
START_TEST(test_logs_all_pages_keep_lifecycle_entries_of_one_millisecond)
{
	int64_t a = create("noop", 0);
	struct jobd_log_query q = { .limit = 1 };
	struct jobd_log_result res;
	char cursor[JOBD_LOG_CURSOR_SIZE];
	unsigned seen = 0;
	size_t pages = 0;

	long long t = (long long)jobd_util_now_ms() - 5000;

	ck_assert_uint_eq(run_ready("work of %lld"), 1);
	rcli(fmt("HSET jobd:job:%lld created_at %lld claimed_at %lld "
		 "finished_at %lld",
		 (long long)a, t, t, t));
	do {
		logs_page(&q, &res);
		ck_assert_uint_le(res.n, 1);
		for (size_t i = 0; i < res.n; i++) {
			const char *m = res.entries[i].msg;
			unsigned bit = strncmp(m, "created by", 10) == 0 ? 1 :
				       strncmp(m, "claimed by", 10) == 0 ? 2 :
				       strcmp(m, "finished") == 0	 ? 4 :
									   8;

			ck_assert_msg(!(seen & bit) || bit == 8,
				      "\"%s\" found twice", m);
			seen |= bit;
		}
		snprintf(cursor, sizeof(cursor), "%s", res.next);
		q.cursor = cursor;
		jobd_log_result_release(&res);
		ck_assert_uint_lt(++pages, 20);
	} while (cursor[0]);
	ck_assert_uint_eq(seen, 15);
}
END_TEST

/*
 * A store of an earlier version indexed logs by minute in sets of job
 * ids (P:logmin:MINUTE): the backfill turns them into the index, merged
 * in time order with what this version indexed in the same minute.
 */
START_TEST(test_backfill_converts_the_log_sets_of_an_earlier_version)
{
	int64_t j = create("noop", 0), k = create("noop", 0), now, m;
	struct jobd_log_query q = { 0 };
	struct jobd_log_result res;
	size_t n, conv, moved, converted = 0;
	bool more = true;

	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	m = now - now % 60000 - 5 * 60000;
	/* J logged twice in minute M under the earlier version, K once
	 * under this one, between. */
	rcli(fmt("XADD jobd:log:%lld %lld-0 level info attempt 0 msg old-one",
		 (long long)j, (long long)(m + 500)));
	rcli(fmt("XADD jobd:log:%lld %lld-0 level warn attempt 0 msg old-two",
		 (long long)j, (long long)(m + 2000)));
	rcli(fmt("SADD jobd:logmin:%lld %lld", (long long)m, (long long)j));
	rcli(fmt("XADD jobd:log:%lld %lld-0 level info attempt 0 msg new-one",
		 (long long)k, (long long)(m + 1000)));
	rcli(fmt("XADD jobd:logix:m:%lld %lld-0 job %lld sid %lld-0",
		 (long long)m, (long long)(m + 1000), (long long)k,
		 (long long)(m + 1000)));
	rcli(fmt("ZADD jobd:logix:minutes %lld %lld", (long long)m,
		 (long long)m));
	q.since = m;
	q.grep = "-";
	logs_page(&q, &res);
	ck_assert_uint_eq(res.n, 1);
	jobd_log_result_release(&res);

	rcli("DEL jobd:backfill");
	for (int calls = 0; more; calls++) {
		ck_assert_int_lt(calls, 100);
		ck_assert_int_eq(jobd_store_backfill(st, 5000, &n, &conv,
						     &moved, &more),
				 0);
		converted += conv;
	}
	ck_assert_uint_eq(converted, 1);
	ck_assert_int_eq(keys_matching("jobd:logmin:*"), 0);
	logs_page(&q, &res);
	ck_assert_uint_eq(res.n, 3);
	ck_assert_str_eq(res.entries[0].msg, "old-one");
	ck_assert_str_eq(res.entries[1].msg, "new-one");
	ck_assert_str_eq(res.entries[2].msg, "old-two");
	ck_assert_int_eq(res.entries[2].level, JOBD_LOG_WARN);
	ck_assert_int_eq(res.entries[2].job, j);
	jobd_log_result_release(&res);
	/* The converted minute expires like one this version wrote. */
	ck_assert_int_gt(rcli_int(fmt("pttl jobd:logix:m:%lld", (long long)m)),
			 0);
}
END_TEST

/* Retention deletes the index of the minutes before its cutoff. */
START_TEST(test_purge_deletes_the_log_index_before_the_cutoff)
{
	int64_t a = create("noop", 0), now, m;

	ck_assert_uint_eq(run_ready("work of %lld"), 1);
	ck_assert_int_eq(jobd_store_time(st, &now), 0);
	m = now - now % 60000;
	ck_assert_int_eq(rcli_int("zcard jobd:logix:minutes"), 1);
	rcli(fmt("ZADD jobd:logix:minutes %lld %lld", (long long)(m - 120000),
		 (long long)(m - 120000)));
	rcli(fmt("XADD jobd:logix:m:%lld %lld-0 job %lld sid 1-1",
		 (long long)(m - 120000), (long long)(m - 120000),
		 (long long)a));
	/* A cutoff within this minute keeps it, drops the old one. */
	ck_assert_uint_eq(purge_all(m + 1), 0);
	ck_assert_int_eq(rcli_int("zcard jobd:logix:minutes"), 1);
	ck_assert_int_eq(keys_matching(fmt("jobd:logix:m:%lld",
					   (long long)(m - 120000))),
			 0);
	ck_assert_int_eq(keys_matching(fmt("jobd:logix:m:%lld", (long long)m)),
			 1);
}
END_TEST

START_TEST(test_children_pages_oldest_first)
{
	int64_t p = create("noop", 0), ids[5];
	struct jobd_job_list list;

	for (int i = 0; i < 5; i++)
		ids[i] = create("noop", p);
	ck_assert_int_eq(jobd_store_children(st, p, 0, 2, &list), 0);
	ck_assert_int_eq(list.n, 2);
	ck_assert_int_eq(list.jobs[0]->id, ids[0]);
	ck_assert_int_eq(list.jobs[1]->id, ids[1]);
	ck_assert_int_eq(list.next, ids[1]);
	jobd_job_list_release(&list);
	ck_assert_int_eq(jobd_store_children(st, p, ids[3], 2, &list), 0);
	ck_assert_int_eq(list.n, 1);
	ck_assert_int_eq(list.jobs[0]->id, ids[4]);
	ck_assert_int_eq(list.next, 0);
	jobd_job_list_release(&list);
	ck_assert_int_eq(jobd_store_children(st, 777777, 0, 2, &list),
			 JOBD_STORE_ERR_NOTFOUND);
}
END_TEST

#define BIG 100000

struct big_meta {
	unsigned char kind; /* 0 root user, 1 root system, 2 child */
	bool again;	    /* type again (else noop / sys) */
	bool alice;	    /* run_by alice (else bob) */
	bool stopped;
};

/* Walks every page of F (limit 1000); checks order, filter and returns
 * how many jobs matched. SEEN counts each id. */
static size_t walk(struct jobd_filter f, const struct big_meta *meta,
		   int64_t base, unsigned char *seen)
{
	size_t total = 0;
	int64_t prev = INT64_MAX;

	f.limit = 1000;
	f.cursor = 0;
	memset(seen, 0, BIG + 1);
	for (int pages = 0; pages < 1000; pages++) {
		struct jobd_job_list list;

		ck_assert_int_eq(jobd_store_list(st, &f, &list), 0);
		for (size_t i = 0; i < list.n; i++) {
			const struct jobd_job *job = list.jobs[i];
			int64_t k = job->id - base;
			const struct big_meta *m;

			ck_assert_msg(job->id < prev,
				      "not newest first: %lld after %lld",
				      (long long)job->id, (long long)prev);
			prev = job->id;
			ck_assert(k >= 0 && k <= BIG);
			m = &meta[k];
			ck_assert_int_eq(seen[k], 0);
			seen[k] = 1;
			if (!f.all)
				ck_assert_int_eq(job->parent, 0);
			if (!f.system)
				ck_assert(!job->system);
			if (f.status)
				ck_assert_str_eq(jobd_status_names[job->status],
						 f.status);
			if (f.type)
				ck_assert_str_eq(job->type, f.type);
			if (f.run_by)
				ck_assert_str_eq(job->run_by, f.run_by);
			ck_assert_int_eq(m->kind == 1, job->system);
			ck_assert_int_eq(m->kind == 2, job->parent != 0);
			total++;
		}
		ck_assert(list.n > 0 || list.next == 0);
		f.cursor = list.next;
		jobd_job_list_release(&list);
		if (!f.cursor)
			return total;
	}
	ck_abort_msg("more than 1000 pages");
	return 0;
}

START_TEST(test_list_pages_over_100000_jobs)
{
	struct big_meta *meta = calloc(BIG + 1, sizeof(*meta));
	unsigned char *seen = malloc(BIG + 1);
	struct jobd_spec *specs = calloc(BIG, sizeof(*specs));
	struct jobd_created *out = calloc(BIG, sizeof(*out));
	int64_t parent = create("noop", 0), base = parent;
	int64_t *stop_ids = calloc(BIG, sizeof(*stop_ids));
	struct jobd_op_result *res;
	size_t nstop = 0, want;

	/* id = base + k; job 0 is the parent of the children. */
	meta[0].kind = 0;
	for (size_t i = 0; i < BIG; i++) {
		size_t k = i + 1;
		struct big_meta *m = &meta[k];

		m->kind = k % 10 == 0 ? 1 : (k % 7 == 0 ? 2 : 0);
		m->again = m->kind != 1 && k % 2 == 0;
		m->alice = k % 3 == 0;
		specs[i] = (struct jobd_spec){
			.type = m->kind == 1 ? "sys" :
					       (m->again ? "again" : "noop"),
			.run_by = m->alice ? "alice" : "bob",
			.parent = m->kind == 2 ? parent : 0,
		};
	}
	for (size_t off = 0; off < BIG; off += 5000)
		ck_assert_int_eq(jobd_store_create(st, "t", specs + off, 5000,
						   out + off),
				 0);
	for (size_t i = 0; i < BIG; i++) {
		ck_assert_int_eq(out[i].id, base + (int64_t)i + 1);
		if (i % 13 == 0 && meta[i + 1].kind != 2) {
			stop_ids[nstop++] = out[i].id;
			meta[i + 1].stopped = true;
		}
	}
	res = calloc(nstop, sizeof(*res));
	ck_assert_int_eq(
		jobd_store_op(st, JOBD_OP_STOP, "t", stop_ids, nstop, res), 0);
	for (size_t i = 0; i < nstop; i++)
		ck_assert(res[i].ok);

	/* Default: user roots. */
	want = 0;
	for (size_t k = 0; k <= BIG; k++)
		want += meta[k].kind == 0;
	ck_assert_uint_eq(walk((struct jobd_filter){ 0 }, meta, base, seen),
			  want);
	for (size_t k = 0; k <= BIG; k++)
		ck_assert_int_eq(seen[k], meta[k].kind == 0);
	/* --all --system: everything exactly once. */
	ck_assert_uint_eq(
		walk((struct jobd_filter){ .all = true, .system = true }, meta,
		     base, seen),
		BIG + 1);
	/* --status stopped (roots, system included). */
	want = 0;
	for (size_t k = 0; k <= BIG; k++)
		want += meta[k].stopped;
	ck_assert_uint_eq(walk((struct jobd_filter){ .status = "stopped",
						     .system = true },
			       meta, base, seen),
			  want);
	/* --type again --run-by alice --all */
	want = 0;
	for (size_t k = 1; k <= BIG; k++)
		want += meta[k].again && meta[k].alice;
	ck_assert_uint_eq(walk((struct jobd_filter){ .type = "again",
						     .run_by = "alice",
						     .all = true },
			       meta, base, seen),
			  want);
	free(meta);
	free(seen);
	free(specs);
	free(out);
	free(stop_ids);
	free(res);
}
END_TEST

/*
 * On a cluster: the store, given another primary than the slot's, works
 * on the slot's primary, with jobd's module exactly when
 * tests/unit/check_store_cluster.sh loaded it on every primary
 * ($JOBD_TEST_CLUSTER_MODULE).
 */
START_TEST(test_cluster_store_works_on_the_primary_of_its_slot)
{
	const char *module = getenv("JOBD_TEST_CLUSTER_MODULE");
	int64_t id = create("noop", 0);
	const char *colon = strrchr(cluster_address, ':');
	long long n;

	ck_assert_str_ne(conf->redis_address, cluster_owner_at);
	ck_assert_int_eq(keys_matching(fmt("jobd:job:%lld", (long long)id)), 1);
	n = number_of(fmt("redis-cli -h '%.*s' -p %s dbsize",
			  (int)(colon - cluster_address), cluster_address,
			  colon + 1));
	ck_assert_msg(n == 0, "%lld keys on %s, which does not own the slot", n,
		      cluster_address);
	if (module && *module)
		ck_assert_msg(jobd_store_has_module(st) ==
				      (strcmp(module, "yes") == 0),
			      "the store %s jobd's module; "
			      "JOBD_TEST_CLUSTER_MODULE=%s",
			      jobd_store_has_module(st) ? "uses" :
							  "does not use",
			      module);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	TCase *big = tcase_create("big");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	if (cluster_seed)
		tcase_add_test(
			tc,
			test_cluster_store_works_on_the_primary_of_its_slot);
	tcase_add_test(tc,
		       test_create_makes_pending_job_with_policy_and_fields);
	tcase_add_test(tc,
		       test_a_pending_job_stores_no_status_nor_empty_payload);
	tcase_add_test(tc, test_create_system_job_has_no_run_by);
	tcase_add_test(
		tc,
		test_create_refuses_unknown_type_bad_payload_missing_parent);
	tcase_add_test(tc, test_create_same_key_returns_same_job);
	tcase_add_test(tc, test_fsck_repairs_a_lost_key_mapping_from_the_job);
	tcase_add_test(tc, test_fsck_repairs_a_key_of_the_window_replaced);
	tcase_add_test(
		tc,
		test_fsck_leaves_a_key_made_after_the_window_changed_expired);
	tcase_add_test(tc, test_key_found_after_the_key_window_changes);
	tcase_add_test(tc,
		       test_key_bucket_shared_by_two_windows_lives_the_longer);
	tcase_add_test(
		tc, test_create_retried_after_lost_reply_makes_no_second_job);
	tcase_add_test(tc, test_create_in_halves_with_two_calls_on_their_way);
	tcase_add_test(tc, test_create_sent_then_connection_lost_is_made_again);
	/* On a cluster the store reconnects through the slot map, not
	 * the address this case takes away: it could not fail there. */
	if (!cluster_seed)
		tcase_add_test(tc, test_create_refused_here_needs_no_redis);
	tcase_add_test(
		tc, test_create_child_derives_root_and_inherits_low_priority);
	tcase_add_test(
		tc,
		test_create_child_under_stopping_or_stopped_parent_is_stopped);
	tcase_add_test(tc, test_create_child_refused_under_finished_parent);
	tcase_add_test(tc, test_create_child_refused_under_canceled_parent);
	tcase_add_test(tc, test_claim_increments_attempt_and_sets_in_progress);
	tcase_add_test(tc, test_claim_is_fair_between_roots);
	tcase_add_test(
		tc,
		test_claim_serves_roots_without_children_in_order_beside_a_big_tree);
	tcase_add_test(
		tc,
		test_stale_entries_of_roots_without_children_run_nothing_twice);
	tcase_add_test(tc,
		       test_a_queued_job_is_claimed_when_the_clock_steps_back);
	tcase_add_test(tc,
		       test_a_lost_alone_member_comes_back_with_the_next_root);
	tcase_add_test(tc, test_old_alone_members_and_list_entries_drain);
	tcase_add_test(
		tc,
		test_a_claim_out_of_tries_on_stale_entries_wakes_the_workers);
	tcase_add_test(
		tc,
		test_a_wake_up_goes_on_the_shard_channel_and_both_are_heard);
	tcase_add_test(
		tc,
		test_claim_takes_low_priority_only_when_no_normal_job_is_ready);
	tcase_add_test(tc, test_claim_normal_before_low_in_one_batch);
	tcase_add_test(
		tc,
		test_a_stream_of_roots_without_children_does_not_starve_a_tree);
	tcase_add_test(
		tc,
		test_a_low_priority_stream_does_not_starve_a_low_priority_tree);
	tcase_add_test(
		tc,
		test_one_root_without_children_at_a_time_does_not_starve_a_tree);
	tcase_add_test(
		tc,
		test_low_priority_trees_take_turns_with_roots_without_children);
	tcase_add_test(
		tc, test_low_priority_move_keeps_a_roots_lead_over_its_floor);
	tcase_add_test(tc, test_claims_of_many_take_the_order_of_claims_of_one);
	tcase_add_test(tc, test_a_claim_reads_the_list_once_across_its_turns);
	tcase_add_test(tc, test_finish_done_finishes_job);
	tcase_add_test(tc,
		       test_finish_failed_without_retries_finishes_with_errors);
	tcase_add_test(tc,
		       test_finish_stopped_without_stop_request_is_a_failure);
	tcase_add_test(tc, test_finish_counts_reported_errors_once_with_logs);
	tcase_add_test(
		tc,
		test_finish_parent_waits_for_children_up_a_three_level_tree);
	tcase_add_test(tc,
		       test_finish_progress_moves_overall_progress_up_the_tree);
	tcase_add_test(
		tc, test_finish_failed_with_retries_is_claimable_after_backoff);
	tcase_add_test(tc, test_finish_retry_waits_for_its_not_before_time);
	tcase_add_test(tc, test_stop_pending_job_is_stopped);
	tcase_add_test(
		tc,
		test_stop_running_job_asks_handler_then_stops_at_checkpoint);
	tcase_add_test(tc, test_finish_done_while_stopping_finishes);
	tcase_add_test(
		tc, test_stop_refused_for_non_stoppable_type_in_every_status);
	tcase_add_test(tc, test_stop_refused_when_finished_or_stopping);
	tcase_add_test(tc, test_operations_refuse_unknown_id);
	tcase_add_test(tc, test_operations_on_a_batch_answer_per_id);
	tcase_add_test(
		tc,
		test_resume_refused_unless_stopped_or_under_stopped_ancestor);
	tcase_add_test(tc,
		       test_stop_waiting_parent_is_stopped_once_no_child_runs);
	tcase_add_test(
		tc,
		test_stop_waiting_parent_without_running_children_stops_at_once);
	tcase_add_test(
		tc, test_resume_waiting_parent_with_all_children_done_finishes);
	tcase_add_test(tc,
		       test_resumed_waiting_parent_runs_and_its_duration_grows);
	tcase_add_test(
		tc,
		test_waiting_grows_until_first_start_then_duration_while_running);
	tcase_add_test(tc, test_force_stop_fences_the_running_attempt);
	tcase_add_test(tc, test_force_stop_stops_stopping_descendants);
	tcase_add_test(tc, test_cancel_refused_unless_stopped);
	tcase_add_test(tc, test_cancel_refused_while_a_descendant_is_stopping);
	tcase_add_test(tc, test_resume_refused_while_a_descendant_is_stopping);
	tcase_add_test(tc, test_canceled_child_is_not_an_error);
	tcase_add_test(tc,
		       test_handback_running_job_goes_pending_with_checkpoint);
	tcase_add_test(tc, test_handback_stopping_job_is_stopped);
	tcase_add_test(tc, test_expire_hands_back_jobs_whose_lease_ran_out);
	tcase_add_test(tc, test_heartbeat_renews_the_lease);
	tcase_add_test(tc, test_restart_resets_run_and_detaches_children);
	tcase_add_test(tc, test_restart_refused_for_non_restartable_type);
	tcase_add_test(
		tc,
		test_low_priority_applies_to_descendants_and_later_children);
	tcase_add_test(tc, test_low_priority_refused_for_terminal_job);
	tcase_add_test(tc, test_cascade_over_wide_three_level_tree);
	tcase_add_test(tc, test_stop_leaves_no_job_of_the_subtree_claimable);
	tcase_add_test(tc, test_cancel_leaves_no_job_of_the_subtree_claimable);
	tcase_add_test(
		tc, test_report_with_old_attempt_is_fenced_and_writes_nothing);
	tcase_add_test(tc,
		       test_list_filters_by_status_type_run_by_system_and_all);
	tcase_add_test(tc, test_children_pages_oldest_first);
	tcase_add_test(tc, test_purge_deletes_expired_trees_and_every_key);
	tcase_add_test(
		tc,
		test_purge_is_not_blocked_by_restarted_old_roots_that_ended_late);
	tcase_add_test(tc, test_restart_takes_a_root_out_of_the_ended_index);
	tcase_add_test(tc,
		       test_ended_buckets_stay_intsets_past_512_roots_a_minute);
	tcase_add_test(tc, test_leases_are_a_skiplist_from_the_first_claim);
	tcase_add_test(tc, test_a_hold_refuses_every_call_before_it_writes);
	tcase_add_test(
		tc,
		test_purge_deletes_the_oldest_minutes_first_in_small_batches);
	tcase_add_test(tc, test_purge_settles_stale_entries_of_the_ended_index);
	tcase_add_test(
		tc,
		test_purge_of_a_root_canceled_mid_cascade_leaves_no_queue_behind);
	tcase_add_test(
		tc,
		test_backfill_indexes_the_ended_roots_of_an_earlier_version);
	tcase_add_test(tc, test_backfill_moves_the_ended_index_of_r9);
	tcase_add_test(tc, test_fsck_checks_and_repairs_the_ended_index);
	tcase_add_test(
		tc, test_logs_all_one_page_has_entries_and_lifecycle_of_jobs);
	tcase_add_test(
		tc, test_backfill_converts_the_log_sets_of_an_earlier_version);
	tcase_add_test(tc, test_purge_deletes_the_log_index_before_the_cutoff);
	tcase_add_test(
		tc,
		test_logs_all_pages_keep_lifecycle_entries_of_one_millisecond);
	tcase_add_test(
		tc,
		test_stats_minutes_are_registered_and_expire_after_retention);
	tcase_add_test(tc, test_duration_counts_each_attempt_from_its_claim);
	tcase_add_test(tc, test_stats_closed_minutes_roll_up_into_hours_once);
	tcase_add_test(tc, test_stats_waiting_times_are_the_jobs_waits);
	tcase_add_test(
		tc, test_stats_first_call_after_upgrade_counts_each_job_once);
	tcase_add_test(tc, test_fsck_finds_and_repairs_corruption);
	tcase_add_test(tc,
		       test_fsck_checks_the_lists_of_roots_without_children);
	tcase_add_test(
		tc, test_fsck_leaves_a_queued_job_whose_not_before_is_to_come);
	tcase_add_test(
		tc,
		test_why_a_queued_job_does_not_wait_for_a_not_before_to_come);
	tcase_add_test(tc,
		       test_upgrade_moves_the_sorted_set_indexes_into_buckets);
	tcase_add_test(tc, test_fsck_checks_and_repairs_the_index_buckets);
	/* The suite's commands go to the slot of {jobd} on a cluster. */
	if (!cluster_seed)
		tcase_add_test(tc, test_a_shard_prefix_makes_ids_of_its_shard);
	tcase_add_test(tc, test_a_store_across_shards_places_and_routes_jobs);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(big, setup, teardown);
	tcase_set_timeout(big, 120);
	tcase_add_test(big, test_list_pages_over_100000_jobs);
	tcase_add_test(big,
		       test_logs_all_pages_are_bounded_and_continue_by_cursor);
	suite_add_tcase(s, big);
	return s;
}

/*
 * On a cluster: the primary that owns the slot of the prefix, from the
 * map the seed gives, into cluster_owner (redis-cli's options) and
 * cluster_owner_at; another primary into cluster_address, the store's
 * [redis] address, so that the store has to find the owner from the
 * map itself. Exits 1 when the cluster has no such primaries.
 */
static void find_cluster_owner(void)
{
	struct jobd_cluster_opts opts = { .map_only = true };
	struct jobd_cluster *cl;
	const char *addr, *colon, *other;
	char err[512];

	cl = jobd_cluster_new(cluster_seed, &opts, err, sizeof(err));
	if (!cl) {
		fprintf(stderr, "check_store: cluster at %s: %s\n",
			cluster_seed, err);
		exit(1);
	}
	addr = jobd_cluster_slot_node(
		cl, jobd_cluster_key_slot(prefix, strlen(prefix)));
	colon = addr ? strrchr(addr, ':') : NULL;
	if (!colon) {
		fprintf(stderr,
			"check_store: no primary owns the slot of %s in the "
			"map of %s\n",
			prefix, cluster_seed);
		exit(1);
	}
	snprintf(cluster_owner, sizeof(cluster_owner), "-h '%.*s' -p %s",
		 (int)(colon - addr), addr, colon + 1);
	snprintf(cluster_owner_at, sizeof(cluster_owner_at), "%s", addr);
	for (int i = 0; jobd_cluster_primary(cl, i, &other) >= 0; i++) {
		if (strcmp(other, cluster_owner_at) != 0) {
			snprintf(cluster_address, sizeof(cluster_address), "%s",
				 other);
			break;
		}
	}
	if (!cluster_address[0]) {
		fprintf(stderr,
			"check_store: the cluster of %s has one primary\n",
			cluster_seed);
		exit(1);
	}
	printf("check_store: on the cluster of %s with the prefix %s: the "
	       "store is given %s, its slot's primary is %s\n",
	       cluster_seed, prefix, cluster_address, cluster_owner_at);
	jobd_cluster_free(cl);
}

int main(void)
{
	cluster_seed = getenv("JOBD_TEST_CLUSTER");
	if (!cluster_seed || !*cluster_seed)
		return jobd_test_run_suite_with_redis(store_suite, &redis);
	prefix = "{jobd}";
	find_cluster_owner();
	fflush(stdout);
	return jobd_test_run_suite(store_suite());
}
