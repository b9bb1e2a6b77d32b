/*
 * check_sink: the sinks of an import (src/handlers/sink.c, docs/job-types.md
 * "Sinks"): which topics a job may use, the sinks a payload names and the
 * refusals of bad ones, and a batch written to a collection (a private
 * redis-server), a topic (librdkafka's mock cluster) and a command.
 *
 * jobd_sinks_write needs a handler's context, so the writes run inside a
 * real worker pool: the test registers its own handler, "sinktest", that
 * builds the sinks of its job's payload and writes the batch the test put
 * in RECS; the test then reads what arrived where. The mock cluster is
 * test code and driven with librdkafka's mock API; the topic is read back
 * through kafka.h.
 */
#include "config.h"

#include "handlers/sink.h"

#include "base/conf.h"
#include "base/job.h"
#include "base/util.h"
#include "engine/registry.h"
#include "engine/worker.h"
#include "handlers/builtin.h"
#include "handlers/common.h"
#include "kafka/kafka.h"
#include "store/records.h"
#include "store/store.h"

#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "crm.contacts"

static struct jobd_test_redis *redis;
static char why[512];

/* --- which topics ------------------------------------------------------------ */

/* A conf of TEXT (plus [redis] for the tests that need one); freed by
 * the caller with jobd_conf_free. */
static struct jobd_conf *conf_of(const char *text)
{
	char err[512];
	struct jobd_conf *conf =
		jobd_conf_parse(text, strlen(text), "t.conf", err, sizeof(err));

	ck_assert_msg(conf != NULL, "conf: %s", err);
	return conf;
}

/* Whether CONF's jobs may use NAME; WHY says why not. */
static bool allowed(const struct jobd_conf *conf, const char *name)
{
	why[0] = '\0';
	return jobd_sinks_topic_allowed(conf, name, why, sizeof(why));
}

START_TEST(test_topic_allowed_by_name_or_prefix)
{
	struct jobd_conf *conf = conf_of("[topics]\n"
					 "allowed = crm.contacts, exports.*\n");

	ck_assert(allowed(conf, "crm.contacts"));
	ck_assert(allowed(conf, "exports.daily"));
	ck_assert(allowed(conf, "exports."));
	ck_assert(!allowed(conf, "crm.contacts2"));
	ck_assert_str_eq(why, "topic \"crm.contacts2\" is not in [topics] "
			      "allowed: add it there (a name, or a prefix "
			      "ending in *) to let jobs read or write it");
	ck_assert(!allowed(conf, "exports"));
	ck_assert(!allowed(conf, "crm"));
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_topic_allowed_none_by_default)
{
	struct jobd_conf *conf = conf_of("");

	ck_assert(!allowed(conf, "crm.contacts"));
	ck_assert_str_eq(why, "topic \"crm.contacts\" is not in [topics] "
			      "allowed: add it there (a name, or a prefix "
			      "ending in *) to let jobs read or write it");
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_topic_star_allows_any_but_jobds_and_kafkas_own)
{
	struct jobd_conf *conf = conf_of("[topics]\nallowed = *\n");

	ck_assert(allowed(conf, "anything.at-all_1"));
	ck_assert(!allowed(conf, "jobs.events"));
	ck_assert_str_eq(why, "topic \"jobs.events\" is jobd's events topic "
			      "([topics] events): jobs may not read or write "
			      "it");
	ck_assert(!allowed(conf, "jobs.records"));
	ck_assert(!allowed(conf, "jobs.actions"));
	ck_assert(!allowed(conf, "jobs.stats"));
	ck_assert_str_eq(why, "topic \"jobs.stats\" is jobd's stats topic "
			      "([topics] stats): jobs may not read or write "
			      "it");
	ck_assert(!allowed(conf, "jobs.dlq"));
	ck_assert(!allowed(conf, "__consumer_offsets"));
	ck_assert_str_eq(why, "topic \"__consumer_offsets\" is internal to "
			      "Kafka: jobs may not read or write it");
	ck_assert(!allowed(conf, "__jobd.epoch.00"));
	ck_assert(allowed(conf, "_one_underscore"));
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_topic_a_prefix_does_not_open_jobds_own)
{
	struct jobd_conf *conf = conf_of("[topics]\n"
					 "allowed = jobs.*, in.*\n"
					 "events = in.events\n");

	ck_assert(allowed(conf, "jobs.other"));
	ck_assert(!allowed(conf, "jobs.dlq"));
	/* the configured names count, not the defaults */
	ck_assert(allowed(conf, "jobs.events"));
	ck_assert(!allowed(conf, "in.events"));
	ck_assert_str_eq(why, "topic \"in.events\" is jobd's events topic "
			      "([topics] events): jobs may not read or write "
			      "it");
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_topic_bad_names_refused)
{
	static const char bad_msg[] = "use 1-249 of A-Z a-z 0-9 _ . -";
	struct jobd_conf *conf = conf_of("[topics]\nallowed = *\n");
	char name[JOBD_SINK_TOPIC_MAX + 2];
	const char *bad[] = {
		"", ".", "..", "a b", "a/b", "a:b", "tópico", "a*"
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		ck_assert_msg(!allowed(conf, bad[i]), "\"%s\" allowed", bad[i]);
		snprintf(want, sizeof(want), "bad topic \"%s\": %s", bad[i],
			 bad_msg);
		ck_assert_str_eq(why, want);
	}
	ck_assert(!allowed(conf, NULL));
	ck_assert_str_eq(why, "bad topic \"\": use 1-249 of A-Z a-z 0-9 _ . -");
	memset(name, 'x', JOBD_SINK_TOPIC_MAX);
	name[JOBD_SINK_TOPIC_MAX] = '\0';
	ck_assert(allowed(conf, name));
	ck_assert(allowed(conf, "..."));
	name[JOBD_SINK_TOPIC_MAX] = 'x';
	name[JOBD_SINK_TOPIC_MAX + 1] = '\0';
	ck_assert(!allowed(conf, name));
	jobd_conf_free(conf);
}
END_TEST

/* --- the sinks of a payload -------------------------------------------------- */

static const char parse_conf[] = "[topics]\n"
				 "allowed = crm.*\n"
				 "[sink.loader]\n"
				 "command = /bin/true\n";

/* The description of PAYLOAD's sinks; NULL with WHY when refused. */
static const char *sinks_of(const char *payload)
{
	static char desc[512];
	struct jobd_conf *conf = conf_of(parse_conf);
	json_t *p = json_loads(payload, 0, NULL);
	struct jobd_sinks *s;

	ck_assert_msg(p != NULL, "bad JSON in the test: %s", payload);
	why[0] = '\0';
	s = jobd_sinks_new(conf, p, why, sizeof(why));
	if (s)
		snprintf(desc, sizeof(desc), "%s", jobd_sinks_describe(s));
	jobd_sinks_free(s);
	json_decref(p);
	jobd_conf_free(conf);
	return s ? desc : NULL;
}

/* PAYLOAD must be refused; returns the reason. */
static const char *refused(const char *payload)
{
	const char *desc = sinks_of(payload);

	ck_assert_msg(desc == NULL, "accepted as %s: %s", desc, payload);
	ck_assert_str_ne(why, "");
	return why;
}

START_TEST(test_sinks_of_the_original_collection_form)
{
	ck_assert_str_eq(sinks_of("{\"file\": \"a.csv\", \"collection\": "
				  "\"contacts\"}"),
			 "collection contacts");
}
END_TEST

START_TEST(test_sinks_of_one_object_of_each_kind)
{
	ck_assert_str_eq(sinks_of("{\"sink\": {\"topic\": \"crm.contacts\"}}"),
			 "topic crm.contacts");
	ck_assert_str_eq(sinks_of("{\"sink\": {\"command\": \"loader\"}}"),
			 "command loader");
	ck_assert_str_eq(sinks_of("{\"sink\": {\"collection\": \"c\"}}"),
			 "collection c");
}
END_TEST

START_TEST(test_sinks_collection_first_then_the_array_in_order)
{
	ck_assert_str_eq(sinks_of("{\"sink\": [{\"command\": \"loader\"}, "
				  "{\"topic\": \"crm.a\"}, "
				  "{\"collection\": \"b\"}], "
				  "\"collection\": \"a\"}"),
			 "collection a, command loader, topic crm.a, "
			 "collection b");
	/* an empty array beside a collection adds nothing */
	ck_assert_str_eq(sinks_of("{\"collection\": \"a\", \"sink\": []}"),
			 "collection a");
}
END_TEST

START_TEST(test_sinks_none_refused)
{
	static const char want[] = "no \"collection\" or \"sink\" to import "
				   "into";

	ck_assert_str_eq(refused("{\"file\": \"a.csv\"}"), want);
	ck_assert_str_eq(refused("{\"sink\": []}"), want);
	ck_assert_str_eq(refused("{\"collection\": null}"),
			 "\"collection\" is not a string");
}
END_TEST

START_TEST(test_sinks_bad_collection_refused)
{
	ck_assert_str_eq(refused("{\"collection\": 5}"),
			 "\"collection\" is not a string");
	ck_assert_str_eq(refused("{\"collection\": \"a:b\"}"),
			 "bad collection \"a:b\": use 1-200 of A-Z a-z 0-9 _ "
			 ". -");
	ck_assert_str_eq(refused("{\"sink\": {\"collection\": \"\"}}"),
			 "bad collection \"\": use 1-200 of A-Z a-z 0-9 _ . -");
}
END_TEST

START_TEST(test_sinks_objects_need_exactly_one_kind)
{
	ck_assert_str_eq(refused("{\"sink\": \"crm.contacts\"}"),
			 "\"sink\" is not an object like {\"topic\": "
			 "\"name\"}");
	ck_assert_str_eq(refused("{\"sink\": [{\"collection\": \"a\"}, 7]}"),
			 "\"sink\"[1] is not an object like {\"topic\": "
			 "\"name\"}");
	ck_assert_str_eq(refused("{\"sink\": [{\"name\": \"a\"}]}"),
			 "\"sink\"[0] names no \"collection\", \"topic\" or "
			 "\"command\"");
	ck_assert_str_eq(refused("{\"sink\": {\"collection\": \"a\", "
				 "\"topic\": \"crm.a\"}}"),
			 "\"sink\" needs exactly one of \"collection\", "
			 "\"topic\" or \"command\", a string");
	ck_assert_str_eq(refused("{\"sink\": {\"topic\": 3}}"),
			 "\"sink\" needs exactly one of \"collection\", "
			 "\"topic\" or \"command\", a string");
}
END_TEST

START_TEST(test_sinks_topic_not_allowed_refused)
{
	ck_assert_str_eq(refused("{\"sink\": {\"topic\": \"jobs.records\"}}"),
			 "topic \"jobs.records\" is jobd's records topic "
			 "([topics] records): jobs may not read or write it");
	ck_assert_str_eq(refused("{\"collection\": \"a\", \"sink\": "
				 "[{\"topic\": \"hr.people\"}]}"),
			 "topic \"hr.people\" is not in [topics] allowed: add "
			 "it there (a name, or a prefix ending in *) to let "
			 "jobs read or write it");
}
END_TEST

START_TEST(test_sinks_unknown_command_refused)
{
	ck_assert_str_eq(refused("{\"sink\": {\"command\": \"crm-loader\"}}"),
			 "unknown sink command \"crm-loader\": no "
			 "[sink.crm-loader] in the conf");
}
END_TEST

START_TEST(test_sinks_free_null_is_noop)
{
	jobd_sinks_free(NULL);
}
END_TEST

/* --- writing a batch ------------------------------------------------------------ */

static struct jobd_conf *conf;
static struct jobd_store *st;
static struct jobd_workers *pool;
static struct jobd_test_pool tp;
static struct jobd_test_mock mock; /* the topics' broker, when started */
static char *dir;		   /* a temp dir for the command sinks */

/* The batch the handler writes, and what the write returned. */
static struct jobd_record *batch;
static size_t batch_n;
static atomic_int write_rc;

/* Builds the sinks of the job's payload and writes BATCH to them. */
static int sinktest(struct jobd_ctx *ctx)
{
	json_t *p = json_loads(jobd_ctx_payload(ctx), 0, NULL);
	char err[512];
	struct jobd_sinks *s =
		jobd_sinks_new(jobd_ctx_conf(ctx), p, err, sizeof(err));
	struct jobd_store *ts;
	int rc;

	json_decref(p);
	if (!s)
		return jobd_ctx_fail(ctx, "sinktest: %s", err);
	ts = jobd_handlers_store(ctx);
	rc = ts ? jobd_sinks_write(s, ctx, ts, batch, batch_n, "k1",
				   "lines 2-3") :
		  JOBD_HANDLER_FAILED;
	atomic_store(&write_rc, rc);
	jobd_sinks_free(s);
	return rc;
}

/* Starts the mock cluster with TOPIC in 2 partitions. */
static void mock_start(void)
{
	jobd_test_mock_start(&mock);
	ck_assert_int_eq(rd_kafka_mock_topic_create(mock.mc, TOPIC, 2, 1), 0);
}

/* A worker pool on a fresh Redis with EXTRA conf lines; brokers are the
 * mock cluster's when it runs. */
static void start(const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "[redis]\naddress = %s\nprefix = t\n"
		 "[engine]\nroles = work\ninstance = test\nworkers = 1\n"
		 "lease = 2s\nheartbeat = 200ms\n"
		 "[kafka]\nbrokers = %s\n"
		 "[topics]\nallowed = crm.*\n"
		 "[type.sinktest]\nhandler = noop\n%s",
		 jobd_test_redis_address(redis),
		 mock.mc ? rd_kafka_mock_cluster_bootstraps(mock.mc) :
			   "127.0.0.1:1",
		 extra ? extra : "");
	ck_assert_int_eq(jobd_handler_register("sinktest", sinktest), 0);
	jobd_test_pool_start(&tp, redis, text);
	conf = tp.conf;
	st = tp.st;
	pool = tp.pool;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	dir = jobd_test_tmpdir();
	ck_assert_ptr_nonnull(dir);
	atomic_store(&write_rc, -100);
}

static void teardown(void)
{
	jobd_test_pool_stop(&tp);
	conf = NULL;
	st = NULL;
	pool = NULL;
	jobd_test_mock_stop(&mock);
	jobd_test_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* The batch: c1 (name Ann, email) and c2 (name "Zoë 李", empty email). */
static struct jobd_field c1_fields[] = { { "name", "Ann Lee" },
					 { "email", "ann@example.org" } };
static struct jobd_field c2_fields[] = { { "name", "Zoë 李" },
					 { "email", "" } };
/* The records of TWO as a command sink gets them. */
#define TWO_NDJSON                                                             \
	"{\"id\":\"c1\",\"name\":\"Ann Lee\",\"email\":\"ann@example.org\"}\n" \
	"{\"id\":\"c2\",\"name\":\"Zoë 李\",\"email\":\"\"}\n"

static struct jobd_record two[] = {
	{ .id = "c1", .fields = c1_fields, .n = 2 },
	{ .id = "c2", .fields = c2_fields, .n = 2 },
};

/* Waits until job ID has status S (20 s at most); returns the job. */
static struct jobd_job *wait_status(int64_t id, enum jobd_status s)
{
	int64_t end = jobd_util_mono_ms() + 20000;

	for (;;) {
		struct jobd_job *job = jobd_test_job(st, id);

		if (job->status == s)
			return job;
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "job %lld is %s, expected %s", (long long)id,
			      jobd_status_names[job->status],
			      jobd_status_names[s]);
		jobd_job_free(job);
		jobd_test_sleep_ms(20);
	}
}

/* Runs a sinktest job with PAYLOAD writing RECS; returns it finished. */
static struct jobd_job *run(const char *payload, struct jobd_record *recs,
			    size_t n)
{
	struct jobd_spec spec = { .type = "sinktest", .payload = payload };
	struct jobd_created out;

	batch = recs;
	batch_n = n;
	ck_assert_int_eq(jobd_store_create(st, "test", &spec, 1, &out), 0);
	ck_assert_msg(out.id > 0, "create refused: %s", out.error);
	return wait_status(out.id, JOBD_FINISHED);
}

/* Whether job ID's log has a line containing TEXT. */
static bool logged(int64_t id, const char *text)
{
	struct jobd_log_query q = { .grep = text };
	struct jobd_log_result res = { 0 };
	bool found;

	ck_assert_int_eq(jobd_store_logs(st, id, &q, &res), 0);
	found = res.n > 0;
	jobd_log_result_release(&res);
	return found;
}

/* The content of file NAME in DIR, a static copy ("" when missing). */
static const char *file_text(const char *name)
{
	static char buf[4096];
	char path[1024];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

START_TEST(test_write_to_a_collection_replaces_the_records)
{
	struct jobd_record *got = NULL;
	char *ids[2] = { "c1", "c2" };
	struct jobd_job *job;
	int64_t n = 0;

	start(NULL);
	job = run("{\"collection\": \"contacts\"}", two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	ck_assert(!job->with_errors);
	jobd_job_free(job);
	ck_assert_int_eq(jobd_records_count(st, "contacts", &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(jobd_records_get(st, "contacts", ids, 2, &got), 0);
	ck_assert(got[0].exists && got[1].exists);
	ck_assert_uint_eq(got[0].n, 2);
	ck_assert_str_eq(got[0].fields[0].name, "name");
	ck_assert_str_eq(got[0].fields[0].value, "Ann Lee");
	ck_assert_str_eq(got[1].fields[0].value, "Zoë 李");
	ck_assert_str_eq(got[1].fields[1].value, "");
	jobd_records_free(got, 2);
}
END_TEST

START_TEST(test_write_of_a_changed_label_starts_a_relationship_update)
{
	static struct jobd_field renamed[] = { { "name", "Ann Smith" },
					       { "email", "ann@example.org" } };
	struct jobd_record one = { .id = "c1", .fields = renamed, .n = 2 };
	struct jobd_job *job;

	start("[relation.cust]\nsource = contacts\nlabel = name\n"
	      "target = orders\nref_field = cid\ncopy_field = cname\n");
	/* new records: no label changed */
	job = run("{\"collection\": \"contacts\"}", two, 2);
	ck_assert(!logged(job->id, "relationship-update"));
	jobd_job_free(job);
	job = run("{\"collection\": \"contacts\"}", &one, 1);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	ck_assert_msg(logged(job->id, "1 contacts labels changed: "
				      "relationship-update job"),
		      "no relationship-update in the log of job %lld",
		      (long long)job->id);
	jobd_job_free(job);
}
END_TEST

/*
 * Reads every message of TOPIC on the mock cluster: each must be c1's or
 * c2's record keyed by its id; counts them per record into SEEN[0..1].
 */
static void read_two(int seen[2])
{
	static const char *const want[2] = {
		"{\"id\":\"c1\",\"name\":\"Ann Lee\",\"email\":\"ann@example.org\"}",
		"{\"id\":\"c2\",\"name\":\"Zoë 李\",\"email\":\"\"}",
	};
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	int32_t nparts = 0;

	seen[0] = seen[1] = 0;
	r = jobd_kafka_reader_new(NULL,
				  rd_kafka_mock_cluster_bootstraps(mock.mc),
				  TOPIC, 10000, &nparts, why, sizeof(why));
	ck_assert_msg(r != NULL, "%s", why);
	ck_assert_int_eq(nparts, 2);
	for (int32_t part = 0; part < nparts; part++) {
		ck_assert_int_eq(jobd_kafka_reader_seek(r, part, 0, why,
							sizeof(why)),
				 0);
		while (jobd_kafka_reader_next(r, &m, 10000, why, sizeof(why)) ==
		       1) {
			int k = m.key_len == 2 && memcmp(m.key, "c1", 2) == 0 ?
					0 :
				m.key_len == 2 && memcmp(m.key, "c2", 2) == 0 ?
					1 :
					-1;

			ck_assert_msg(k >= 0, "a message keyed \"%.*s\"",
				      (int)m.key_len,
				      m.key ? (const char *)m.key : "");
			ck_assert_uint_eq(m.len, strlen(want[k]));
			ck_assert_mem_eq(m.value, want[k], m.len);
			seen[k]++;
			jobd_kafka_messages_release(&m, 1);
		}
	}
	jobd_kafka_reader_free(r);
}

START_TEST(test_write_to_a_topic_one_message_per_record_keyed_by_id)
{
	struct jobd_job *job;
	int seen[2];

	mock_start();
	start(NULL);
	job = run("{\"sink\": {\"topic\": \"" TOPIC "\"}}", two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	jobd_job_free(job);
	read_two(seen);
	ck_assert_int_eq(seen[0], 1);
	ck_assert_int_eq(seen[1], 1);
}
END_TEST

START_TEST(test_write_reaches_every_sink)
{
	char extra[1024];
	struct jobd_job *job;
	int64_t n = 0;
	int seen[2];

	mock_start();
	snprintf(extra, sizeof(extra),
		 "[sink.copy]\ncommand = /bin/sh -c 'cat >%s/in'\n", dir);
	start(extra);
	job = run("{\"collection\": \"a\", \"sink\": [{\"topic\": \"" TOPIC
		  "\"}, {\"command\": \"copy\"}, {\"collection\": \"b\"}]}",
		  two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	jobd_job_free(job);
	ck_assert_int_eq(jobd_records_count(st, "a", &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(jobd_records_count(st, "b", &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(file_text("in"), TWO_NDJSON);
	read_two(seen);
	ck_assert_int_eq(seen[0], 1);
	ck_assert_int_eq(seen[1], 1);
}
END_TEST

/* Waits until job ID's log has a line containing TEXT (20 s at most). */
static void wait_logged(int64_t id, const char *text)
{
	int64_t end = jobd_util_mono_ms() + 20000;

	while (!logged(id, text)) {
		ck_assert_msg(jobd_util_mono_ms() < end,
			      "job %lld never logged \"%s\"", (long long)id,
			      text);
		jobd_test_sleep_ms(50);
	}
}

START_TEST(test_write_to_a_topic_waits_for_the_broker_and_can_be_stopped)
{
	struct jobd_spec spec = { .type = "sinktest",
				  .payload = "{\"sink\": {\"topic\": \"" TOPIC
					     "\"}}" };
	struct jobd_created out;
	struct jobd_op_result res;
	struct jobd_job *job;

	mock_start();
	rd_kafka_mock_broker_set_down(mock.mc, 1);
	start("[kafka]\nkafka.message.timeout.ms = 300\n");
	batch = two;
	batch_n = 2;
	ck_assert_int_eq(jobd_store_create(st, "test", &spec, 1, &out), 0);
	ck_assert_int_gt(out.id, 0);
	wait_logged(out.id, "import: cannot publish the records of lines 2-3 "
			    "to topic " TOPIC " (try 1, again in 1000 ms)");
	job = jobd_test_job(st, out.id);
	ck_assert_int_eq(job->status, JOBD_IN_PROGRESS);
	jobd_job_free(job);
	ck_assert_int_eq(
		jobd_store_op(st, JOBD_OP_STOP, "tester", &out.id, 1, &res), 0);
	ck_assert_msg(res.ok, "stop refused: %s", res.error);
	job = wait_status(out.id, JOBD_STOPPED);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_STOPPED);
	ck_assert(!job->with_errors);
	jobd_job_free(job);
}
END_TEST

START_TEST(test_write_to_a_command_sends_ndjson_and_names_the_sink)
{
	char extra[1024];
	struct jobd_job *job;

	snprintf(extra, sizeof(extra),
		 "[sink.copy]\ncommand = /bin/sh -c "
		 "'echo \"$JOBD_SINK\" >%s/env && cat >%s/in'\n",
		 dir, dir);
	start(extra);
	job = run("{\"sink\": {\"command\": \"copy\"}}", two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	ck_assert(!job->with_errors);
	jobd_job_free(job);
	ck_assert_str_eq(file_text("in"), TWO_NDJSON);
	ck_assert_str_eq(file_text("env"), "copy\n");
}
END_TEST

START_TEST(test_write_a_command_error_line_is_an_error_of_the_job)
{
	struct jobd_job *job;

	start("[sink.picky]\ncommand = /bin/sh -c "
	      "'cat >/dev/null && echo \"error c2 has no email\"'\n");
	job = run("{\"sink\": {\"command\": \"picky\"}}", two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	ck_assert_int_eq(job->errors, 1);
	ck_assert(job->with_errors);
	ck_assert(logged(job->id, "c2 has no email"));
	jobd_job_free(job);
}
END_TEST

START_TEST(test_write_a_failing_command_fails_the_batch_and_stops_there)
{
	struct jobd_job *job;
	int64_t n = -1;

	start("[sink.bad]\ncommand = /bin/sh -c 'cat >/dev/null; exit 3'\n");
	job = run("{\"sink\": [{\"command\": \"bad\"}, {\"collection\": "
		  "\"after\"}]}",
		  two, 2);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_FAILED);
	ck_assert(job->with_errors);
	ck_assert_msg(logged(job->id, "import: sink bad failed on lines 2-3: "
				      "exited with status 3"),
		      "no failure line in the log of job %lld",
		      (long long)job->id);
	jobd_job_free(job);
	/* the sinks after the failed one did not get the batch */
	ck_assert_int_eq(jobd_records_count(st, "after", &n), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_write_of_no_records_touches_no_sink)
{
	struct jobd_job *job;

	start("[sink.bad]\ncommand = /bin/sh -c 'exit 3'\n");
	job = run("{\"sink\": {\"command\": \"bad\"}}", NULL, 0);
	ck_assert_int_eq(atomic_load(&write_rc), JOBD_HANDLER_DONE);
	ck_assert(!job->with_errors);
	jobd_job_free(job);
}
END_TEST

static Suite *sink_suite(void)
{
	Suite *s = suite_create("sink");
	TCase *tc = tcase_create("topics");

	tcase_add_test(tc, test_topic_allowed_by_name_or_prefix);
	tcase_add_test(tc, test_topic_allowed_none_by_default);
	tcase_add_test(tc, test_topic_star_allows_any_but_jobds_and_kafkas_own);
	tcase_add_test(tc, test_topic_a_prefix_does_not_open_jobds_own);
	tcase_add_test(tc, test_topic_bad_names_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_sinks_of_the_original_collection_form);
	tcase_add_test(tc, test_sinks_of_one_object_of_each_kind);
	tcase_add_test(tc, test_sinks_collection_first_then_the_array_in_order);
	tcase_add_test(tc, test_sinks_none_refused);
	tcase_add_test(tc, test_sinks_bad_collection_refused);
	tcase_add_test(tc, test_sinks_objects_need_exactly_one_kind);
	tcase_add_test(tc, test_sinks_topic_not_allowed_refused);
	tcase_add_test(tc, test_sinks_unknown_command_refused);
	tcase_add_test(tc, test_sinks_free_null_is_noop);
	suite_add_tcase(s, tc);

	tc = jobd_test_tcase(s, "write", setup, teardown, 60);
	tcase_add_test(tc, test_write_to_a_collection_replaces_the_records);
	tcase_add_test(
		tc, test_write_of_a_changed_label_starts_a_relationship_update);
	tcase_add_test(
		tc, test_write_to_a_topic_one_message_per_record_keyed_by_id);
	tcase_add_test(
		tc,
		test_write_to_a_topic_waits_for_the_broker_and_can_be_stopped);
	tcase_add_test(tc, test_write_reaches_every_sink);
	tcase_add_test(tc,
		       test_write_to_a_command_sends_ndjson_and_names_the_sink);
	tcase_add_test(tc,
		       test_write_a_command_error_line_is_an_error_of_the_job);
	tcase_add_test(
		tc,
		test_write_a_failing_command_fails_the_batch_and_stops_there);
	tcase_add_test(tc, test_write_of_no_records_touches_no_sink);
	return s;
}

int main(void)
{
	return jobd_test_run_suite_with_redis(sink_suite, &redis);
}
