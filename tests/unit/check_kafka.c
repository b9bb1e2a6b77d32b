/*
 * check_kafka: the librdkafka wrapper (src/kafka/kafka.h: kafka.c,
 * producer.c, reader.c, mock_broker.c) against librdkafka's mock cluster:
 * what the producer says became of each message it sent (enum
 * jobd_kafka_fate) and how many a delivery got through, the headers of a
 * message read back, a client's properties, a reader of a whole topic,
 * the last message of a partition, the consumer in a group, and the
 * embedded broker, whose address lives in a private redis-server.
 *
 * The test drives the mock itself (its address, injected errors, a
 * broker taken down): that is test code, so it calls librdkafka's mock
 * API directly; everything under test goes through kafka.h.
 */
#include "config.h"

#include "kafka/kafka.h"

#include "base/conf.h"
#include "base/util.h"
#include "store/store.h"

#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC "t.dlq"
#define PRODUCE_API 0 /* the Kafka protocol's ApiKey of Produce */

static struct jobd_test_redis *redis;
static struct jobd_test_mock mock;
static rd_kafka_mock_cluster_t *mc; /* mock.mc */
static struct jobd_kafka_producer *p;
static struct jobd_conf *conf; /* a test's own, when it needs one */
static char errstr[512];

static void setup(void)
{
	jobd_test_mock_start(&mock);
	mc = mock.mc;
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
	errstr[0] = '\0';
}

static void teardown(void)
{
	jobd_kafka_producer_free(p);
	p = NULL;
	jobd_conf_free(conf);
	conf = NULL;
	jobd_test_mock_stop(&mock);
	mc = NULL;
}

/* A producer of the mock with PROPS (NULL-terminated pairs, or NULL). */
static void producer(const char *const *props)
{
	p = jobd_kafka_producer_new_props(NULL,
					  rd_kafka_mock_cluster_bootstraps(mc),
					  props, errstr, sizeof(errstr));
	ck_assert_msg(p != NULL, "%s", errstr);
}

static struct jobd_kafka_out out(const void *value, size_t len)
{
	return (struct jobd_kafka_out){
		.topic = TOPIC,
		.partition = 0,
		.value = value,
		.len = len,
	};
}

START_TEST(test_send_too_large_for_librdkafka_fails_that_one_only)
{
	static const char *const props[] = { "message.max.bytes", "10000",
					     NULL };
	char *big = calloc(1, 20000);
	struct jobd_kafka_out msgs[3];
	enum jobd_kafka_fate fates[3];

	ck_assert_ptr_nonnull(big);
	producer(props);
	msgs[0] = out("first", 5);
	msgs[1] = out(big, 20000);
	msgs[2] = out("third", 5);
	ck_assert_int_eq(jobd_kafka_producer_send(p, msgs, 3, NULL, NULL, fates,
						  errstr, sizeof(errstr)),
			 -1);
	ck_assert_int_eq(fates[0], JOBD_KAFKA_ACKED);
	ck_assert_int_eq(fates[1], JOBD_KAFKA_TOO_LARGE);
	ck_assert_int_eq(fates[2], JOBD_KAFKA_ACKED);
	ck_assert_str_eq(errstr, "cannot deliver to \"" TOPIC
				 "\": Broker: Message size too large");
	free(big);
}
END_TEST

/* A broker's answer to a produce, and what it makes of the message. */
static const struct {
	rd_kafka_resp_err_t err;
	enum jobd_kafka_fate fate;
} answers[] = {
	{ RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, JOBD_KAFKA_TOO_LARGE },
	{ RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, JOBD_KAFKA_TOO_LARGE },
	{ RD_KAFKA_RESP_ERR_INVALID_RECORD, JOBD_KAFKA_INVALID },
	/* an operator can grant the right: sent again, not dropped */
	{ RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, JOBD_KAFKA_UNSENT },
	/* librdkafka retries these itself, within message.timeout.ms */
	{ RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, JOBD_KAFKA_ACKED },
	{ RD_KAFKA_RESP_ERR__TRANSPORT, JOBD_KAFKA_ACKED },
};

START_TEST(test_send_classifies_each_broker_refusal)
{
	struct jobd_kafka_out msg = out("x", 1);
	enum jobd_kafka_fate fate = JOBD_KAFKA_UNSENT;
	int rc;

	producer(NULL);
	/* a first delivery: the idempotent producer has its id */
	ck_assert_int_eq(jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);
	rd_kafka_mock_push_request_errors(mc, PRODUCE_API, 1, answers[_i].err);
	rc = jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, &fate, errstr,
				      sizeof(errstr));
	ck_assert_msg(fate == answers[_i].fate, "%s: fate %d, expected %d",
		      rd_kafka_err2name(answers[_i].err), fate,
		      answers[_i].fate);
	ck_assert_int_eq(rc, fate == JOBD_KAFKA_ACKED ? 0 : -1);
	/* The producer goes on after a refusal; a refused ACL is
	 * remembered until librdkafka's next metadata refresh. */
	for (int i = 0; i < 100; i++) {
		rc = jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, &fate,
					      errstr, sizeof(errstr));
		if (rc == 0)
			break;
		ck_assert_int_eq(fate, JOBD_KAFKA_UNSENT);
		usleep(100000);
	}
	ck_assert_msg(rc == 0, "%s", errstr);
	ck_assert_int_eq(fate, JOBD_KAFKA_ACKED);
}
END_TEST

static bool give_up(void *arg)
{
	(*(int *)arg)++;
	return false;
}

START_TEST(test_send_gives_up_when_told_and_reports_unsent)
{
	struct jobd_kafka_out msg = out("x", 1);
	enum jobd_kafka_fate fate = JOBD_KAFKA_ACKED;
	int asked = 0;

	producer(NULL);
	rd_kafka_mock_broker_set_down(mc, 1);
	ck_assert_int_eq(jobd_kafka_producer_send(p, &msg, 1, give_up, &asked,
						  &fate, errstr,
						  sizeof(errstr)),
			 -1);
	ck_assert_int_eq(asked, 1);
	ck_assert_int_eq(fate, JOBD_KAFKA_UNSENT);
	ck_assert_str_eq(errstr, "cannot deliver to \"" TOPIC
				 "\": gave up waiting for the broker");
}
END_TEST

START_TEST(test_message_headers_read_back_in_order_null_kept)
{
	static const struct jobd_kafka_header hdrs[] = {
		{ "trace", "t-1", 3 },
		{ "trace", "t-2", 3 },
		{ "none", NULL, 0 },
	};
	struct jobd_kafka_out msg = out("x", 1);
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	struct jobd_kafka_header *got;
	int32_t nparts;
	size_t n;

	producer(NULL);
	msg.headers = hdrs;
	msg.nheaders = 3;
	ck_assert_int_eq(jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);
	msg.nheaders = 0;
	ck_assert_int_eq(jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);

	r = jobd_kafka_reader_new(NULL, rd_kafka_mock_cluster_bootstraps(mc),
				  TOPIC, 10000, &nparts, errstr,
				  sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	ck_assert_int_eq(
		jobd_kafka_reader_seek(r, 0, 0, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(jobd_kafka_reader_next(r, &m, 10000, errstr,
						sizeof(errstr)),
			 1);
	ck_assert_int_eq(jobd_kafka_message_headers(&m, &got, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(got[0].name, "trace");
	ck_assert_uint_eq(got[0].len, 3);
	ck_assert_mem_eq(got[0].value, "t-1", 3);
	ck_assert_str_eq(got[1].name, "trace");
	ck_assert_mem_eq(got[1].value, "t-2", 3);
	ck_assert_str_eq(got[2].name, "none");
	ck_assert_ptr_null(got[2].value);
	free(got);
	jobd_kafka_messages_release(&m, 1);

	/* none: no array */
	ck_assert_int_eq(jobd_kafka_reader_next(r, &m, 10000, errstr,
						sizeof(errstr)),
			 1);
	ck_assert_int_eq(jobd_kafka_message_headers(&m, &got, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(got);
	jobd_kafka_messages_release(&m, 1);
	jobd_kafka_reader_free(r);
}
END_TEST

/* --- helpers of the tests below -------------------------------------------- */

static const char *bootstraps(void)
{
	return rd_kafka_mock_cluster_bootstraps(mc);
}

/* CONF of TEXT, with [redis] on the private server and prefix "t". */
static void conf_set(const char *text)
{
	char full[4096], err[512];

	snprintf(full, sizeof(full), "[redis]\naddress = %s\nprefix = t\n%s",
		 jobd_test_redis_address(redis), text);
	jobd_conf_free(conf);
	conf = jobd_conf_parse(full, strlen(full), "t.conf", err, sizeof(err));
	ck_assert_msg(conf != NULL, "conf: %s", err);
}

/* A message of TOPIC for partition PART with KEY and VALUE (strings). */
static struct jobd_kafka_out msg_of(const char *topic, int32_t part,
				    const char *key, const char *value)
{
	return (struct jobd_kafka_out){
		.topic = topic,
		.partition = part,
		.key = key,
		.key_len = key ? strlen(key) : 0,
		.value = value,
		.len = value ? strlen(value) : 0,
	};
}

/* Sends N messages to TOPIC/PART, valued "v0".."vN-1", keyed "k0"..; all
 * must be acked. */
static void send_n(const char *topic, int32_t part, int n)
{
	struct jobd_kafka_out msgs[64];
	char keys[64][8], vals[64][8];

	ck_assert_int_le(n, 64);
	if (!p)
		producer(NULL);
	for (int i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		snprintf(vals[i], sizeof(vals[i]), "v%d", i);
		msgs[i] = msg_of(topic, part, keys[i], vals[i]);
	}
	ck_assert_msg(jobd_kafka_producer_send(p, msgs, (size_t)n, NULL, NULL,
					       NULL, errstr,
					       sizeof(errstr)) == 0,
		      "send: %s", errstr);
}

/*
 * What TOPIC/PART holds from OFFSET on, as "key=value@offset" joined by
 * spaces (static buffer), read with a reader; *END = the offset of the
 * partition's end.
 */
static const char *read_part(const char *topic, int32_t part, int64_t offset,
			     int64_t *end)
{
	static char buf[4096];
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	int32_t nparts;
	size_t len = 0;
	int rc;

	r = jobd_kafka_reader_new(NULL, bootstraps(), topic, 10000, &nparts,
				  errstr, sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	ck_assert_int_eq(jobd_kafka_reader_seek(r, part, offset, errstr,
						sizeof(errstr)),
			 0);
	buf[0] = '\0';
	while ((rc = jobd_kafka_reader_next(r, &m, 10000, errstr,
					    sizeof(errstr))) == 1) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"%s%.*s=%.*s@%lld", len ? " " : "",
					(int)m.key_len, (const char *)m.key,
					(int)m.len, (const char *)m.value,
					(long long)m.offset);
		jobd_kafka_messages_release(&m, 1);
	}
	ck_assert_msg(rc == 0, "read %s/%d: %s", topic, (int)part, errstr);
	ck_assert_int_eq(m.partition, part);
	if (end)
		*end = m.offset;
	jobd_kafka_reader_free(r);
	return buf;
}

/* --- producer ----------------------------------------------------------------- */

START_TEST(test_send_acks_each_message_and_they_arrive_in_order)
{
	struct jobd_kafka_out msgs[3] = {
		msg_of(TOPIC, 0, "a", "one"),
		msg_of(TOPIC, 0, NULL, "two"),
		msg_of(TOPIC, 0, "c", "three"),
	};
	enum jobd_kafka_fate fates[3] = { JOBD_KAFKA_UNSENT, JOBD_KAFKA_UNSENT,
					  JOBD_KAFKA_UNSENT };
	int64_t end;

	producer(NULL);
	ck_assert_int_eq(jobd_kafka_producer_send(p, msgs, 3, NULL, NULL, fates,
						  errstr, sizeof(errstr)),
			 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fates[i], JOBD_KAFKA_ACKED);
	ck_assert_str_eq(read_part(TOPIC, 0, 0, &end),
			 "a=one@0 =two@1 c=three@2");
	ck_assert_int_eq(end, 3);
}
END_TEST

START_TEST(test_send_of_nothing_sends_nothing)
{
	int64_t end = -1;

	producer(NULL);
	ck_assert_int_eq(jobd_kafka_producer_send(p, NULL, 0, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);
	ck_assert_str_eq(read_part(TOPIC, 0, 0, &end), "");
	ck_assert_int_eq(end, 0);
}
END_TEST

START_TEST(test_send_by_key_keeps_a_key_on_one_partition)
{
	struct jobd_kafka_out msgs[12];
	static const char *const keys[] = { "alpha", "beta", "gamma", "delta" };
	int32_t part_of[4] = { -1, -1, -1, -1 };
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	int32_t nparts;
	int seen = 0;

	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "t.keyed", 4, 1), 0);
	producer(NULL);
	for (int i = 0; i < 12; i++)
		msgs[i] = msg_of("t.keyed", -1, keys[i % 4], "x");
	ck_assert_int_eq(jobd_kafka_producer_send(p, msgs, 12, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);
	r = jobd_kafka_reader_new(NULL, bootstraps(), "t.keyed", 10000, &nparts,
				  errstr, sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	ck_assert_int_eq(nparts, 4);
	for (int32_t part = 0; part < nparts; part++) {
		ck_assert_int_eq(jobd_kafka_reader_seek(r, part, 0, errstr,
							sizeof(errstr)),
				 0);
		while (jobd_kafka_reader_next(r, &m, 10000, errstr,
					      sizeof(errstr)) == 1) {
			for (int k = 0; k < 4; k++) {
				if (m.key_len != strlen(keys[k]) ||
				    memcmp(m.key, keys[k], m.key_len) != 0)
					continue;
				ck_assert_msg(part_of[k] < 0 ||
						      part_of[k] == part,
					      "key %s on partitions %d and %d",
					      keys[k], part_of[k], part);
				part_of[k] = part;
			}
			seen++;
			jobd_kafka_messages_release(&m, 1);
		}
	}
	ck_assert_int_eq(seen, 12);
	jobd_kafka_reader_free(r);
}
END_TEST

START_TEST(test_deliver_acks_all_in_order)
{
	struct jobd_kafka_out msgs[2] = { msg_of(TOPIC, 0, "a", "1"),
					  msg_of(TOPIC, 0, "b", "2") };
	size_t acked = 99;

	producer(NULL);
	ck_assert_int_eq(jobd_kafka_producer_deliver(p, msgs, 2, NULL, NULL,
						     &acked, errstr,
						     sizeof(errstr)),
			 0);
	ck_assert_uint_eq(acked, 2);
	ck_assert_str_eq(read_part(TOPIC, 0, 0, NULL), "a=1@0 b=2@1");
}
END_TEST

START_TEST(test_deliver_stops_at_the_first_refusal)
{
	static const char *const props[] = { "message.max.bytes", "10000",
					     NULL };
	char *big = calloc(1, 20000);
	struct jobd_kafka_out msgs[3] = { msg_of(TOPIC, 0, "a", "first"),
					  msg_of(TOPIC, 0, "b", NULL),
					  msg_of(TOPIC, 0, "c", "third") };
	size_t acked = 99;

	ck_assert_ptr_nonnull(big);
	msgs[1].value = big;
	msgs[1].len = 20000;
	producer(props);
	ck_assert_int_eq(jobd_kafka_producer_deliver(p, msgs, 3, NULL, NULL,
						     &acked, errstr,
						     sizeof(errstr)),
			 -1);
	ck_assert_uint_eq(acked, 1);
	ck_assert_str_eq(errstr, "cannot deliver to \"" TOPIC
				 "\": Broker: Message size too large");
	/* the third must not overtake the second: it was never sent */
	ck_assert_str_eq(read_part(TOPIC, 0, 0, NULL), "a=first@0");
	free(big);
}
END_TEST

START_TEST(test_deliver_gives_up_when_told)
{
	struct jobd_kafka_out msg = msg_of(TOPIC, 0, "a", "1");
	size_t acked = 99;
	int asked = 0;

	producer(NULL);
	rd_kafka_mock_broker_set_down(mc, 1);
	ck_assert_int_eq(jobd_kafka_producer_deliver(p, &msg, 1, give_up,
						     &asked, &acked, errstr,
						     sizeof(errstr)),
			 -2);
	ck_assert_int_eq(asked, 1);
	ck_assert_uint_eq(acked, 0);
	ck_assert_str_eq(errstr, "cannot deliver to \"" TOPIC
				 "\": gave up waiting for the broker");
}
END_TEST

START_TEST(test_one_shot_send_arrives)
{
	char text[256];

	snprintf(text, sizeof(text), "[kafka]\nbrokers = %s\n", bootstraps());
	conf_set(text);
	ck_assert_msg(jobd_kafka_send(conf, TOPIC, "hello", 5, errstr,
				      sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_str_eq(read_part(TOPIC, 0, 0, NULL), "=hello@0");
}
END_TEST

START_TEST(test_brokers_of_a_list_and_of_no_embedded_broker)
{
	char buf[64];

	conf_set("[kafka]\nbrokers = k1:9092,k2:9092\n");
	ck_assert_int_eq(jobd_kafka_brokers(conf, NULL, buf, sizeof(buf),
					    errstr, sizeof(errstr)),
			 0);
	ck_assert_str_eq(buf, "k1:9092,k2:9092");
	ck_assert_int_eq(jobd_kafka_brokers(conf, NULL, buf, 10, errstr,
					    sizeof(errstr)),
			 -1);
	ck_assert_str_eq(errstr, "[kafka] brokers is over 9 bytes");

	jobd_test_redis_flush(redis);
	conf_set("[kafka]\nbrokers = embedded\n");
	ck_assert_int_eq(jobd_kafka_brokers(conf, NULL, buf, sizeof(buf),
					    errstr, sizeof(errstr)),
			 -1);
	ck_assert_str_eq(errstr, "no embedded broker is running (redis key "
				 "\"t:broker\" is not set): start jobd with "
				 "the consume role");
	ck_assert_int_eq(jobd_kafka_send(conf, TOPIC, "x", 1, errstr,
					 sizeof(errstr)),
			 -1);
	ck_assert_str_eq(errstr, "no embedded broker is running (redis key "
				 "\"t:broker\" is not set): start jobd with "
				 "the consume role");
}
END_TEST

/* --- properties --------------------------------------------------------------- */

START_TEST(test_bad_kafka_property_refused_by_every_client)
{
	static const char want[] = "bad kafka property \"no.such.thing\": No "
				   "such configuration property: "
				   "\"no.such.thing\"";
	const char *topics[1] = { TOPIC };
	int32_t nparts;
	char *key = NULL;
	int64_t off;

	conf_set("[kafka]\nkafka.no.such.thing = 1\n");
	ck_assert_ptr_null(jobd_kafka_producer_new(conf, bootstraps(), errstr,
						   sizeof(errstr)));
	ck_assert_str_eq(errstr, want);
	errstr[0] = '\0';
	ck_assert_ptr_null(jobd_kafka_consumer_new(
		conf, bootstraps(), "g", topics, 1, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, want);
	errstr[0] = '\0';
	ck_assert_ptr_null(jobd_kafka_reader_new(conf, bootstraps(), TOPIC,
						 1000, &nparts, errstr,
						 sizeof(errstr)));
	ck_assert_str_eq(errstr, want);
	errstr[0] = '\0';
	ck_assert_int_eq(jobd_kafka_last_message(conf, bootstraps(), TOPIC, 0,
						 1000, &key, &off, errstr,
						 sizeof(errstr)),
			 -1);
	ck_assert_str_eq(errstr, want);
	ck_assert_ptr_null(key);
}
END_TEST

START_TEST(test_bad_kafka_property_value_refused_with_the_reason)
{
	static const char *const props[] = { "batch.num.messages", "many",
					     NULL };

	conf_set("[kafka]\nkafka.message.max.bytes = big\n");
	ck_assert_ptr_null(jobd_kafka_producer_new(conf, bootstraps(), errstr,
						   sizeof(errstr)));
	ck_assert_str_eq(errstr, "bad kafka property \"message.max.bytes\": "
				 "Invalid value for configuration property "
				 "\"message.max.bytes\"");
	/* the caller's own properties are checked the same way */
	ck_assert_ptr_null(jobd_kafka_producer_new_props(
		NULL, bootstraps(), props, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, "bad kafka property \"batch.num.messages\": "
				 "Invalid value for configuration property "
				 "\"batch.num.messages\"");
}
END_TEST

START_TEST(test_conf_kafka_properties_win_over_the_callers)
{
	static const char *const props[] = { "message.max.bytes", "1000000",
					     NULL };
	char *big = calloc(1, 20000);
	struct jobd_kafka_out msg = msg_of(TOPIC, 0, "k", NULL);
	enum jobd_kafka_fate fate = JOBD_KAFKA_ACKED;

	ck_assert_ptr_nonnull(big);
	msg.value = big;
	msg.len = 20000;
	conf_set("[kafka]\nkafka.message.max.bytes = 10000\n");
	p = jobd_kafka_producer_new_props(conf, bootstraps(), props, errstr,
					  sizeof(errstr));
	ck_assert_msg(p != NULL, "%s", errstr);
	ck_assert_int_eq(jobd_kafka_producer_send(p, &msg, 1, NULL, NULL, &fate,
						  errstr, sizeof(errstr)),
			 -1);
	ck_assert_int_eq(fate, JOBD_KAFKA_TOO_LARGE);
	free(big);
}
END_TEST

/* --- reading a topic ---------------------------------------------------------- */

START_TEST(test_reader_of_a_missing_topic_refused)
{
	int32_t nparts = 7;

	ck_assert_ptr_null(jobd_kafka_reader_new(NULL, bootstraps(), "t.nope",
						 10000, &nparts, errstr,
						 sizeof(errstr)));
	ck_assert_str_eq(errstr, "topic \"t.nope\" does not exist");
	ck_assert_int_eq(nparts, 0);
}
END_TEST

START_TEST(test_reader_reads_each_partition_from_an_offset_to_its_end)
{
	struct jobd_kafka_reader *r;
	int64_t lo = -1, hi = -1, end = -1;
	int32_t nparts = 0;

	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "t.two", 2, 1), 0);
	send_n("t.two", 0, 4);
	send_n("t.two", 1, 1);
	r = jobd_kafka_reader_new(NULL, bootstraps(), "t.two", 10000, &nparts,
				  errstr, sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	ck_assert_int_eq(nparts, 2);
	ck_assert_int_eq(jobd_kafka_reader_watermarks(r, 0, 10000, &lo, &hi,
						      errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(lo, 0);
	ck_assert_int_eq(hi, 4);
	ck_assert_int_eq(jobd_kafka_reader_watermarks(r, 1, 10000, &lo, &hi,
						      errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(hi, 1);
	jobd_kafka_reader_free(r);

	ck_assert_str_eq(read_part("t.two", 0, 0, &end),
			 "k0=v0@0 k1=v1@1 k2=v2@2 k3=v3@3");
	ck_assert_int_eq(end, 4);
	ck_assert_str_eq(read_part("t.two", 0, 2, &end), "k2=v2@2 k3=v3@3");
	ck_assert_str_eq(read_part("t.two", 1, 0, &end), "k0=v0@0");
	ck_assert_int_eq(end, 1);
	/* at the end: nothing, and the end offset */
	ck_assert_str_eq(read_part("t.two", 0, 4, &end), "");
	ck_assert_int_eq(end, 4);
}
END_TEST

START_TEST(test_reader_seeks_back_and_forth)
{
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	int32_t nparts;

	send_n(TOPIC, 0, 3);
	r = jobd_kafka_reader_new(NULL, bootstraps(), TOPIC, 10000, &nparts,
				  errstr, sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	ck_assert_int_eq(
		jobd_kafka_reader_seek(r, 0, 2, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(jobd_kafka_reader_next(r, &m, 10000, errstr,
						sizeof(errstr)),
			 1);
	ck_assert_int_eq(m.offset, 2);
	jobd_kafka_messages_release(&m, 1);
	ck_assert_int_eq(
		jobd_kafka_reader_seek(r, 0, 0, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(jobd_kafka_reader_next(r, &m, 10000, errstr,
						sizeof(errstr)),
			 1);
	ck_assert_int_eq(m.offset, 0);
	ck_assert_mem_eq(m.value, "v0", 2);
	jobd_kafka_messages_release(&m, 1);
	jobd_kafka_reader_free(r);
}
END_TEST

START_TEST(test_reader_without_a_broker_times_out)
{
	struct jobd_kafka_reader *r;
	struct jobd_kafka_message m;
	int32_t nparts;

	r = jobd_kafka_reader_new(NULL, bootstraps(), TOPIC, 10000, &nparts,
				  errstr, sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	rd_kafka_mock_broker_set_down(mc, 1);
	ck_assert_int_eq(
		jobd_kafka_reader_seek(r, 0, 0, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(
		jobd_kafka_reader_next(r, &m, 500, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strncmp(errstr, "cannot read " TOPIC, 15) == 0, "%s",
		      errstr);
	jobd_kafka_reader_free(r);
}
END_TEST

/* --- the last message of a partition -------------------------------------------- */

START_TEST(test_last_message_of_an_empty_or_missing_topic)
{
	char *key = (char *)"x";
	int64_t off = 7;

	ck_assert_int_eq(jobd_kafka_last_message(NULL, bootstraps(), TOPIC, 0,
						 10000, &key, &off, errstr,
						 sizeof(errstr)),
			 0);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(off, -1);
	key = (char *)"x";
	off = 7;
	ck_assert_int_eq(jobd_kafka_last_message(NULL, bootstraps(), "t.none",
						 0, 10000, &key, &off, errstr,
						 sizeof(errstr)),
			 0);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(off, -1);
}
END_TEST

START_TEST(test_last_message_is_the_newest_with_its_key)
{
	struct jobd_kafka_out last = msg_of(TOPIC, 0, NULL, "no key");
	char *key = NULL;
	int64_t off = -1;

	send_n(TOPIC, 0, 5);
	ck_assert_int_eq(jobd_kafka_last_message(NULL, bootstraps(), TOPIC, 0,
						 10000, &key, &off, errstr,
						 sizeof(errstr)),
			 1);
	ck_assert_str_eq(key, "k4");
	ck_assert_int_eq(off, 4);
	free(key);
	key = NULL;

	ck_assert_int_eq(jobd_kafka_producer_send(p, &last, 1, NULL, NULL, NULL,
						  errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(jobd_kafka_last_message(NULL, bootstraps(), TOPIC, 0,
						 10000, &key, &off, errstr,
						 sizeof(errstr)),
			 1);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(off, 5);
}
END_TEST

START_TEST(test_last_message_without_a_broker_fails)
{
	char *key = NULL;
	int64_t off = 0;

	rd_kafka_mock_broker_set_down(mc, 1);
	ck_assert_int_eq(jobd_kafka_last_message(NULL, bootstraps(), TOPIC, 0,
						 1000, &key, &off, errstr,
						 sizeof(errstr)),
			 -1);
	ck_assert_str_ne(errstr, "");
	ck_assert_ptr_null(key);
}
END_TEST

/* --- the consumer -------------------------------------------------------------- */

static struct jobd_kafka_consumer *consumer(const char *group)
{
	const char *topics[1] = { TOPIC };
	struct jobd_kafka_consumer *kc;

	kc = jobd_kafka_consumer_new(NULL, bootstraps(), group, topics, 1,
				     errstr, sizeof(errstr));
	ck_assert_msg(kc != NULL, "%s", errstr);
	return kc;
}

/*
 * Polls KC until it took WANT messages (20 s at most) into MSGS; returns
 * their values joined by spaces (static buffer). Release MSGS after.
 */
static const char *poll_n(struct jobd_kafka_consumer *kc,
			  struct jobd_kafka_message *msgs, size_t want)
{
	static char buf[1024];
	int64_t end = jobd_util_mono_ms() + 20000;
	size_t got = 0, n, len = 0;

	while (got < want && jobd_util_mono_ms() < end) {
		jobd_kafka_consumer_poll(kc, msgs + got, want - got, &n, 200);
		got += n;
	}
	ck_assert_msg(got == want, "polled %zu messages, want %zu", got, want);
	buf[0] = '\0';
	for (size_t i = 0; i < got; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%.*s",
					i ? " " : "", (int)msgs[i].len,
					(const char *)msgs[i].value);
	return buf;
}

static int revokes;

static void count_revoke(void *arg)
{
	(*(int *)arg)++;
}

START_TEST(test_consumer_resumes_after_its_group_commit)
{
	struct jobd_kafka_consumer *kc;
	struct jobd_kafka_message msgs[8];
	size_t n;

	send_n(TOPIC, 0, 5);
	kc = consumer("g1");
	ck_assert_str_eq(poll_n(kc, msgs, 3), "v0 v1 v2");
	ck_assert_str_eq(msgs[0].topic, TOPIC);
	ck_assert_int_eq(msgs[2].offset, 2);
	ck_assert_mem_eq(msgs[2].key, "k2", 2);
	/* the first two are done; the third comes again */
	ck_assert_int_eq(jobd_kafka_consumer_commit(kc, msgs, 2, errstr,
						    sizeof(errstr)),
			 0);
	jobd_kafka_messages_release(msgs, 3);
	jobd_kafka_consumer_on_revoke(kc, count_revoke, &revokes);
	revokes = 0;
	jobd_kafka_consumer_free(kc);
	/* leaving the group revoked the partition, while still ours */
	ck_assert_int_eq(revokes, 1);

	kc = consumer("g1");
	ck_assert_str_eq(poll_n(kc, msgs, 3), "v2 v3 v4");
	jobd_kafka_messages_release(msgs, 3);
	jobd_kafka_consumer_poll(kc, msgs, 8, &n, 300);
	ck_assert_uint_eq(n, 0);
	jobd_kafka_consumer_free(kc);

	/* another group starts from the earliest */
	kc = consumer("g2");
	ck_assert_str_eq(poll_n(kc, msgs, 1), "v0");
	jobd_kafka_messages_release(msgs, 1);
	jobd_kafka_consumer_free(kc);
}
END_TEST

START_TEST(test_consumer_commit_of_nothing_is_a_no_op)
{
	struct jobd_kafka_consumer *kc = consumer("g1");

	ck_assert_int_eq(jobd_kafka_consumer_commit(kc, NULL, 0, errstr,
						    sizeof(errstr)),
			 0);
	jobd_kafka_consumer_free(kc);
}
END_TEST

START_TEST(test_consumer_paused_takes_nothing_until_resumed)
{
	struct jobd_kafka_consumer *kc;
	struct jobd_kafka_message msgs[8];
	size_t n = 0;

	send_n(TOPIC, 0, 1);
	kc = consumer("g1");
	ck_assert_str_eq(poll_n(kc, msgs, 1), "v0");
	jobd_kafka_messages_release(msgs, 1);
	ck_assert_int_eq(jobd_kafka_consumer_pause(kc, true), 0);
	send_n(TOPIC, 0, 3);
	for (int i = 0; i < 5; i++) {
		jobd_kafka_consumer_poll(kc, msgs, 8, &n, 200);
		ck_assert_uint_eq(n, 0);
	}
	ck_assert_int_eq(jobd_kafka_consumer_pause(kc, false), 0);
	ck_assert_str_eq(poll_n(kc, msgs, 3), "v0 v1 v2");
	ck_assert_int_eq(msgs[0].offset, 1);
	jobd_kafka_messages_release(msgs, 3);
	jobd_kafka_consumer_free(kc);
}
END_TEST

/* Partition PART of KC's view as asked now: its lag, -2 when not held. */
static int64_t lag_of(struct jobd_kafka_consumer *kc, int32_t part)
{
	struct jobd_kafka_partition parts[16];
	size_t n;

	jobd_kafka_consumer_partitions(kc, parts, 16, &n, 2000, errstr,
				       sizeof(errstr));
	for (size_t i = 0; i < n; i++)
		if (parts[i].partition == part)
			return parts[i].lag;
	return -2;
}

/* Waits up to 10 s for partition PART of KC to lag WANT; returns it. */
static int64_t wait_lag(struct jobd_kafka_consumer *kc, int32_t part,
			int64_t want)
{
	int64_t end = jobd_util_mono_ms() + 10000, lag;

	while ((lag = lag_of(kc, part)) != want && jobd_util_mono_ms() < end)
		usleep(100000);
	return lag;
}

START_TEST(test_consumer_lag_is_high_watermark_minus_committed)
{
	struct jobd_kafka_partition parts[16];
	struct jobd_kafka_consumer *kc;
	struct jobd_kafka_message msgs[8];
	size_t n = 1;

	kc = consumer("g1");
	ck_assert_int_eq(jobd_kafka_consumer_partitions(kc, parts, 16, &n, 2000,
							errstr, sizeof(errstr)),
			 0);
	ck_assert_uint_eq(n, 0); /* not assigned yet */
	send_n(TOPIC, 0, 4);
	ck_assert_str_eq(poll_n(kc, msgs, 4), "v0 v1 v2 v3");
	/* read but not committed: every message still counts */
	ck_assert_int_eq(wait_lag(kc, 0, 4), 4);
	ck_assert_int_eq(jobd_kafka_consumer_commit(kc, msgs, 4, errstr,
						    sizeof(errstr)),
			 0);
	jobd_kafka_messages_release(msgs, 4);
	ck_assert_int_eq(wait_lag(kc, 0, 0), 0);
	/*
	 * Paused (or wedged), the consumer fetches nothing: the lag still
	 * grows with what is written, from watermarks asked now. The lag
	 * of the read position and the last fetch's watermark read 0 here.
	 */
	ck_assert_int_eq(jobd_kafka_consumer_pause(kc, true), 0);
	send_n(TOPIC, 0, 2);
	ck_assert_int_eq(wait_lag(kc, 0, 2), 2);
	jobd_kafka_consumer_partitions(kc, parts, 16, &n, 2000, errstr,
				       sizeof(errstr));
	for (size_t i = 0; i < n; i++) {
		if (parts[i].partition != 0)
			continue;
		ck_assert_str_eq(parts[i].topic, TOPIC);
		ck_assert_int_eq(parts[i].committed, 4);
		ck_assert_int_eq(parts[i].high, 6);
	}
	jobd_kafka_consumer_free(kc);
}
END_TEST

START_TEST(test_consumer_cluster_id_carries_the_embedded_epoch)
{
	struct jobd_kafka_consumer *kc;
	char plain[128], id[160];

	kc = consumer("g1");
	ck_assert_int_eq(jobd_kafka_consumer_cluster_id(kc, 10000, plain,
							sizeof(plain)),
			 0);
	ck_assert_str_ne(plain, "");
	ck_assert_ptr_null(strchr(plain, '.'));
	jobd_kafka_consumer_free(kc);

	ck_assert_int_eq(
		rd_kafka_mock_topic_create(mc, "__jobd.epoch.0a1b", 1, 1), 0);
	kc = consumer("g1");
	ck_assert_int_eq(
		jobd_kafka_consumer_cluster_id(kc, 10000, id, sizeof(id)), 0);
	ck_assert_uint_eq(strlen(id), strlen(plain) + 5);
	ck_assert(strncmp(id, plain, strlen(plain)) == 0);
	ck_assert_str_eq(id + strlen(plain), ".0a1b");
	jobd_kafka_consumer_free(kc);
}
END_TEST

/* --- the embedded broker --------------------------------------------------------- */

/* The embedded broker's address in Redis (t:broker), "" when none. */
static const char *broker_key(void)
{
	static char buf[256];

	if (jobd_kafka_brokers(conf, NULL, buf, sizeof(buf), errstr,
			       sizeof(errstr)) < 0) {
		ck_assert_msg(strstr(errstr, "is not set") != NULL, "%s",
			      errstr);
		return "";
	}
	return buf;
}

/* TOPIC's partitions on the broker at ADDR. */
static int32_t partitions(const char *addr, const char *topic)
{
	struct jobd_kafka_reader *r;
	int32_t nparts = 0;

	r = jobd_kafka_reader_new(NULL, addr, topic, 10000, &nparts, errstr,
				  sizeof(errstr));
	ck_assert_msg(r != NULL, "%s", errstr);
	jobd_kafka_reader_free(r);
	return nparts;
}

START_TEST(test_embedded_broker_starts_with_jobds_topics)
{
	struct jobd_kafka_broker *b;

	jobd_test_redis_flush(redis);
	conf_set("[kafka]\nbrokers = embedded\n");
	b = jobd_kafka_broker_new(conf, errstr, sizeof(errstr));
	ck_assert_msg(b != NULL, "%s", errstr);
	ck_assert(jobd_kafka_broker_owned(b));
	ck_assert_str_eq(broker_key(), jobd_kafka_broker_address(b));
	ck_assert_int_eq(
		partitions(jobd_kafka_broker_address(b), "jobs.events"), 4);
	ck_assert_int_eq(partitions(jobd_kafka_broker_address(b), "jobs.dlq"),
			 4);
	ck_assert_int_eq(partitions(jobd_kafka_broker_address(b), "jobs.stats"),
			 1);
	/* a tick of the owner keeps its key */
	ck_assert_int_eq(jobd_kafka_broker_tick(b, errstr, sizeof(errstr)), 0);
	ck_assert_str_eq(broker_key(), jobd_kafka_broker_address(b));
	jobd_kafka_broker_free(b);
	ck_assert_str_eq(broker_key(), "");
}
END_TEST

START_TEST(test_embedded_broker_joined_then_taken_over)
{
	struct jobd_kafka_broker *first, *second;
	char was[256];

	jobd_test_redis_flush(redis);
	conf_set("[kafka]\nbrokers = embedded\n");
	first = jobd_kafka_broker_new(conf, errstr, sizeof(errstr));
	ck_assert_msg(first != NULL, "%s", errstr);
	second = jobd_kafka_broker_new(conf, errstr, sizeof(errstr));
	ck_assert_msg(second != NULL, "%s", errstr);
	ck_assert(!jobd_kafka_broker_owned(second));
	ck_assert_str_eq(jobd_kafka_broker_address(second),
			 jobd_kafka_broker_address(first));
	ck_assert_int_eq(jobd_kafka_broker_tick(second, errstr, sizeof(errstr)),
			 0);
	snprintf(was, sizeof(was), "%s", jobd_kafka_broker_address(first));

	/* the first goes away: its key with it; the second takes over */
	jobd_kafka_broker_free(first);
	ck_assert_int_eq(jobd_kafka_broker_tick(second, errstr, sizeof(errstr)),
			 1);
	ck_assert(jobd_kafka_broker_owned(second));
	ck_assert_str_ne(jobd_kafka_broker_address(second), was);
	ck_assert_str_eq(broker_key(), jobd_kafka_broker_address(second));
	ck_assert_int_eq(partitions(jobd_kafka_broker_address(second),
				    "jobs.records"),
			 4);
	jobd_kafka_broker_free(second);
}
END_TEST

START_TEST(test_broker_of_a_list_is_used_as_is)
{
	struct jobd_kafka_broker *b;

	conf_set("[kafka]\nbrokers = k1:9092,k2:9092\n");
	b = jobd_kafka_broker_new(conf, errstr, sizeof(errstr));
	ck_assert_msg(b != NULL, "%s", errstr);
	ck_assert_str_eq(jobd_kafka_broker_address(b), "k1:9092,k2:9092");
	ck_assert(!jobd_kafka_broker_owned(b));
	ck_assert_int_eq(jobd_kafka_broker_tick(b, errstr, sizeof(errstr)), 0);
	jobd_kafka_broker_free(b);
}
END_TEST

START_TEST(test_version_is_librdkafkas)
{
	ck_assert_str_eq(jobd_kafka_version(), rd_kafka_version_str());
}
END_TEST

static Suite *kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc;

	tc = jobd_test_tcase(s, "producer", setup, teardown, 60);
	tcase_add_test(tc,
		       test_send_too_large_for_librdkafka_fails_that_one_only);
	tcase_add_loop_test(tc, test_send_classifies_each_broker_refusal, 0,
			    sizeof(answers) / sizeof(answers[0]));
	tcase_add_test(tc, test_send_gives_up_when_told_and_reports_unsent);
	tcase_add_test(tc,
		       test_send_acks_each_message_and_they_arrive_in_order);
	tcase_add_test(tc, test_send_of_nothing_sends_nothing);
	tcase_add_test(tc, test_send_by_key_keeps_a_key_on_one_partition);
	tcase_add_test(tc, test_deliver_acks_all_in_order);
	tcase_add_test(tc, test_deliver_stops_at_the_first_refusal);
	tcase_add_test(tc, test_deliver_gives_up_when_told);
	tcase_add_test(tc, test_one_shot_send_arrives);
	tcase_add_test(tc, test_brokers_of_a_list_and_of_no_embedded_broker);

	tc = jobd_test_tcase(s, "properties", setup, teardown, 60);
	tcase_add_test(tc, test_bad_kafka_property_refused_by_every_client);
	tcase_add_test(tc,
		       test_bad_kafka_property_value_refused_with_the_reason);
	tcase_add_test(tc, test_conf_kafka_properties_win_over_the_callers);
	tcase_add_test(tc, test_version_is_librdkafkas);

	tc = jobd_test_tcase(s, "messages", setup, teardown, 60);
	tcase_add_test(tc, test_message_headers_read_back_in_order_null_kept);
	tcase_add_test(tc, test_reader_of_a_missing_topic_refused);
	tcase_add_test(
		tc, test_reader_reads_each_partition_from_an_offset_to_its_end);
	tcase_add_test(tc, test_reader_seeks_back_and_forth);
	tcase_add_test(tc, test_reader_without_a_broker_times_out);
	tcase_add_test(tc, test_last_message_of_an_empty_or_missing_topic);
	tcase_add_test(tc, test_last_message_is_the_newest_with_its_key);
	tcase_add_test(tc, test_last_message_without_a_broker_fails);

	tc = jobd_test_tcase(s, "consumer", setup, teardown, 90);
	tcase_add_test(tc, test_consumer_resumes_after_its_group_commit);
	tcase_add_test(tc, test_consumer_commit_of_nothing_is_a_no_op);
	tcase_add_test(tc, test_consumer_paused_takes_nothing_until_resumed);
	tcase_add_test(tc, test_consumer_lag_is_high_watermark_minus_committed);
	tcase_add_test(tc, test_consumer_cluster_id_carries_the_embedded_epoch);

	tc = jobd_test_tcase(s, "embedded", setup, teardown, 60);
	tcase_add_test(tc, test_embedded_broker_starts_with_jobds_topics);
	tcase_add_test(tc, test_embedded_broker_joined_then_taken_over);
	tcase_add_test(tc, test_broker_of_a_list_is_used_as_is);
	return s;
}

int main(void)
{
	/* the embedded broker keeps its address in Redis */
	return jobd_test_run_suite_with_redis(kafka_suite, &redis);
}
