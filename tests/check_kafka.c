/*
 * check_kafka: what the producer says became of each message it sent
 * (src/kafka/kafka.h, enum jobd_kafka_fate), and the headers of a message read
 * back, against librdkafka's mock cluster.
 *
 * The test drives the mock itself (its address, injected errors, a
 * broker taken down): that is test code, so it calls librdkafka's mock
 * API directly; everything under test goes through kafka.h.
 */
#include "config.h"

#include "kafka/kafka.h"

#include "testutil.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC "t.dlq"
#define PRODUCE_API 0 /* the Kafka protocol's ApiKey of Produce */

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mc;
static struct jobd_kafka_producer *p;
static char errstr[512];

static void setup(void)
{
	char why[512];

	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), why,
			       sizeof(why));
	ck_assert_msg(mock_rk != NULL, "%s", why);
	mc = rd_kafka_mock_cluster_new(mock_rk, 1);
	ck_assert_ptr_nonnull(mc);
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
	errstr[0] = '\0';
}

static void teardown(void)
{
	jobd_kafka_producer_free(p);
	p = NULL;
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mock_rk);
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

static Suite *kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("producer");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
		       test_send_too_large_for_librdkafka_fails_that_one_only);
	tcase_add_loop_test(tc, test_send_classifies_each_broker_refusal, 0,
			    sizeof(answers) / sizeof(answers[0]));
	tcase_add_test(tc, test_send_gives_up_when_told_and_reports_unsent);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_message_headers_read_back_in_order_null_kept);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(kafka_suite());
}
