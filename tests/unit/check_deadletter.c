/*
 * check_deadletter: the record of a dead letter, whole, truncated to
 * [kafka] dlq_max_bytes, or a reference (src/kafka/deadletter.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/deadletter.h"
#include "testutil.h"

#define REASON "cannot decode request at jobs.events/2@7: missing \"event\""
#define SOURCE "jobs.events/2@7"
/* NIST's SHA-256 of one million 'a' (FIPS 180-2, appendix B.3). */
#define MILLION_A_SHA256 \
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static struct jobd_deadletter dl;
static char *big;

static void teardown(void)
{
	jobd_deadletter_release(&dl);
	free(big);
	big = NULL;
}

/* A message of LEN bytes of 'a', key "k-1". */
static struct jobd_kafka_message message(size_t len)
{
	big = realloc(big, len ? len : 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', len);
	return (struct jobd_kafka_message){
		.topic = "jobs.events",
		.partition = 2,
		.offset = 7,
		.value = big,
		.len = len,
		.key = "k-1",
		.key_len = 3,
	};
}

/* The value of header NAME of the dead letter, NUL-terminated (static). */
static const char *header(const char *name)
{
	static char buf[2048];

	for (size_t i = 0; i < dl.out.nheaders; i++) {
		const struct jobd_kafka_header *h = &dl.out.headers[i];

		if (strcmp(h->name, name) != 0)
			continue;
		ck_assert_uint_lt(h->len, sizeof(buf));
		memcpy(buf, h->value, h->len);
		buf[h->len] = '\0';
		return buf;
	}
	return NULL;
}

static void build(const struct jobd_kafka_message *msg,
		  const struct jobd_kafka_header *hdrs, size_t nhdrs,
		  size_t max, enum jobd_deadletter_form least)
{
	jobd_deadletter_release(&dl);
	ck_assert_int_eq(jobd_deadletter_init(&dl, "jobs.dlq", msg, hdrs, nhdrs,
					      REASON, SOURCE, max, least),
			 0);
	ck_assert_str_eq(dl.out.topic, "jobs.dlq");
	ck_assert_int_eq(dl.out.partition, -1);
	ck_assert_str_eq(header("jobd-reason"), REASON);
	ck_assert_str_eq(header("jobd-source"), SOURCE);
}

START_TEST(test_deadletter_that_fits_keeps_key_value_and_every_header)
{
	static const struct jobd_kafka_header hdrs[] = {
		{ "trace", "t-1", 3 },
		{ "trace", "t-2", 3 }, /* a name may repeat */
		{ "empty", NULL, 0 },  /* a null value stays null */
	};
	struct jobd_kafka_message msg = message(100);

	build(&msg, hdrs, 3, 4096, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_WHOLE);
	ck_assert_ptr_eq(dl.out.key, msg.key);
	ck_assert_uint_eq(dl.out.key_len, 3);
	ck_assert_ptr_eq(dl.out.value, msg.value);
	ck_assert_uint_eq(dl.out.len, 100);
	/* the message's own first, in order, then jobd's two */
	ck_assert_uint_eq(dl.out.nheaders, 5);
	ck_assert_str_eq(dl.out.headers[0].name, "trace");
	ck_assert_mem_eq(dl.out.headers[0].value, "t-1", 3);
	ck_assert_str_eq(dl.out.headers[1].name, "trace");
	ck_assert_mem_eq(dl.out.headers[1].value, "t-2", 3);
	ck_assert_str_eq(dl.out.headers[2].name, "empty");
	ck_assert_ptr_null(dl.out.headers[2].value);
	ck_assert_str_eq(dl.out.headers[3].name, "jobd-reason");
	ck_assert_str_eq(dl.out.headers[4].name, "jobd-source");
	ck_assert_ptr_null(header("jobd-truncated"));
}
END_TEST

START_TEST(test_deadletter_of_a_null_message_has_a_null_value)
{
	struct jobd_kafka_message msg = { .topic = "jobs.events" };

	build(&msg, NULL, 0, 4096, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_WHOLE);
	ck_assert_ptr_null(dl.out.value);
	ck_assert_ptr_null(dl.out.key);
	ck_assert_uint_eq(dl.out.nheaders, 2);
}
END_TEST

START_TEST(test_deadletter_over_the_cap_is_cut_to_the_cap)
{
	static const struct jobd_kafka_header hdrs[] = {
		{ "trace", "t-1", 3 },
	};
	struct jobd_kafka_message msg = message(1000000);

	build(&msg, hdrs, 1, 921600, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_TRUNCATED);
	ck_assert_uint_eq(jobd_deadletter_size(&dl.out), 921600);
	ck_assert_ptr_eq(dl.out.value, msg.value); /* its first bytes */
	ck_assert_uint_lt(dl.out.len, 921600);
	ck_assert_ptr_eq(dl.out.key, msg.key);
	ck_assert_uint_eq(dl.out.key_len, 3);
	ck_assert_str_eq(dl.out.headers[0].name, "trace");
	ck_assert_str_eq(header("trace"), "t-1");
	ck_assert_str_eq(header("jobd-original-size"), "1000000");
	ck_assert_str_eq(header("jobd-original-sha256"), MILLION_A_SHA256);
	ck_assert_str_eq(header("jobd-truncated"), "value");
	ck_assert_uint_eq(dl.out.nheaders, 6);
}
END_TEST

START_TEST(test_deadletter_at_the_cap_is_whole_one_byte_more_is_cut)
{
	struct jobd_kafka_message msg = message(100);
	char want[24];
	size_t size;

	build(&msg, NULL, 0, 1 << 20, JOBD_DEADLETTER_WHOLE);
	size = jobd_deadletter_size(&dl.out);
	/* key, value, and each header's name, value and framing */
	ck_assert_uint_eq(size, 3 + 100 + strlen("jobd-reason") +
					strlen(REASON) + strlen("jobd-source") +
					strlen(SOURCE) +
					2 * JOBD_DEADLETTER_HEADER_BYTES);

	msg = message(5000 - size + 100);
	build(&msg, NULL, 0, 5000, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_WHOLE);
	ck_assert_uint_eq(jobd_deadletter_size(&dl.out), 5000);

	msg = message(5000 - size + 101);
	build(&msg, NULL, 0, 5000, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_TRUNCATED);
	ck_assert_uint_eq(jobd_deadletter_size(&dl.out), 5000);
	snprintf(want, sizeof(want), "%zu", 5000 - size + 101);
	ck_assert_str_eq(header("jobd-original-size"), want);
}
END_TEST

START_TEST(test_deadletter_whose_headers_do_not_fit_is_a_reference)
{
	struct jobd_kafka_header hdrs[1];
	struct jobd_kafka_message msg = message(1000000);

	/* the message's own header alone is over the cap */
	hdrs[0] = (struct jobd_kafka_header){ "blob", big, 5000 };
	build(&msg, hdrs, 1, JOBD_DEADLETTER_MIN_BYTES, JOBD_DEADLETTER_WHOLE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_REFERENCE);
	ck_assert_ptr_null(dl.out.key);
	ck_assert_ptr_nonnull(dl.out.value); /* empty, not null */
	ck_assert_uint_eq(dl.out.len, 0);
	ck_assert_ptr_null(header("blob"));
	ck_assert_uint_eq(dl.out.nheaders, 5);
	ck_assert_str_eq(header("jobd-original-size"), "1000000");
	ck_assert_str_eq(header("jobd-original-sha256"), MILLION_A_SHA256);
	ck_assert_str_eq(header("jobd-truncated"), "record");
	ck_assert_uint_le(jobd_deadletter_size(&dl.out),
			  JOBD_DEADLETTER_MIN_BYTES);
}
END_TEST

START_TEST(test_deadletter_asked_for_a_reference_sends_only_that)
{
	static const struct jobd_kafka_header hdrs[] = {
		{ "trace", "t-1", 3 },
	};
	struct jobd_kafka_message msg = message(3);

	/* e.g. after the broker refused the whole one */
	build(&msg, hdrs, 1, 1 << 20, JOBD_DEADLETTER_REFERENCE);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_REFERENCE);
	ck_assert_uint_eq(dl.out.len, 0);
	ck_assert_ptr_null(header("trace"));
	ck_assert_str_eq(header("jobd-original-size"), "3");
	/* SHA-256 of "aaa" */
	ck_assert_str_eq(
		header("jobd-original-sha256"),
		"9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0");
}
END_TEST

START_TEST(test_deadletter_emptied_keeps_key_and_headers_without_value)
{
	static const struct jobd_kafka_header hdrs[] = {
		{ "trace", "t-1", 3 },
		{ "empty", NULL, 0 },
	};
	struct jobd_kafka_message msg = message(1000000);

	/* e.g. after the broker refused the truncated one */
	build(&msg, hdrs, 2, 921600, JOBD_DEADLETTER_EMPTIED);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_EMPTIED);
	ck_assert_str_eq(jobd_deadletter_form_name(dl.form), "emptied");
	ck_assert_ptr_eq(dl.out.key, msg.key);
	ck_assert_uint_eq(dl.out.key_len, 3);
	ck_assert_ptr_nonnull(dl.out.value); /* empty, not null */
	ck_assert_uint_eq(dl.out.len, 0);
	ck_assert_uint_eq(dl.out.nheaders, 7);
	ck_assert_str_eq(dl.out.headers[0].name, "trace");
	ck_assert_str_eq(header("trace"), "t-1");
	ck_assert_str_eq(dl.out.headers[1].name, "empty");
	ck_assert_ptr_null(dl.out.headers[1].value);
	ck_assert_str_eq(header("jobd-original-size"), "1000000");
	ck_assert_str_eq(header("jobd-original-sha256"), MILLION_A_SHA256);
	ck_assert_str_eq(header("jobd-truncated"), "value");

	/* key and headers over the cap: a reference all the same */
	build(&msg, hdrs, 2, 100, JOBD_DEADLETTER_EMPTIED);
	ck_assert_int_eq(dl.form, JOBD_DEADLETTER_REFERENCE);
	ck_assert_ptr_null(dl.out.key);
	ck_assert_ptr_null(header("trace"));
}
END_TEST

static Suite *deadletter_suite(void)
{
	Suite *s = suite_create("deadletter");
	TCase *tc = tcase_create("forms");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(
		tc, test_deadletter_that_fits_keeps_key_value_and_every_header);
	tcase_add_test(tc, test_deadletter_of_a_null_message_has_a_null_value);
	tcase_add_test(tc, test_deadletter_over_the_cap_is_cut_to_the_cap);
	tcase_add_test(
		tc, test_deadletter_at_the_cap_is_whole_one_byte_more_is_cut);
	tcase_add_test(tc,
		       test_deadletter_whose_headers_do_not_fit_is_a_reference);
	tcase_add_test(tc,
		       test_deadletter_asked_for_a_reference_sends_only_that);
	tcase_add_test(
		tc,
		test_deadletter_emptied_keeps_key_and_headers_without_value);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(deadletter_suite());
}
