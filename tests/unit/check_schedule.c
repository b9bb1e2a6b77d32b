/*
 * check_schedule: run times as users write them (src/base/schedule.h):
 * RFC 3339 with its offset or epoch ms for run_at, a duration for delay,
 * and the JSON members of a Kafka message or POST /api/jobs, refused
 * with a reason that names the member.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "base/schedule.h"
#include "testutil.h"

/* 2026-12-06T10:00:00Z */
#define T0 1796551200000LL

START_TEST(test_run_at_takes_rfc3339_with_an_offset_and_epoch_ms)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{ "2026-12-06T10:00:00Z", T0 },
		{ "2026-12-06T10:00:00.250Z", T0 + 250 },
		{ "2026-12-06T10:00:00.5Z", T0 + 500 },
		{ "2026-12-06T10:00:00.123456Z", T0 + 123 },
		{ "2026-12-06T11:00:00+01:00", T0 },
		{ "2026-12-06T05:30:00-04:30", T0 },
		{ "2026-12-06T11:00:00+0100", T0 },
		{ "2026-12-06T10:00:00+00:00", T0 },
		{ "1796551200000", T0 },
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 0;
		ck_assert_msg(jobd_schedule_parse_run_at(ok[i].s, &ms) == 0,
			      "refused %s", ok[i].s);
		ck_assert_msg(ms == ok[i].ms, "%s: %lld", ok[i].s,
			      (long long)ms);
	}
}
END_TEST

START_TEST(test_run_at_refuses_no_offset_and_what_is_not_a_time)
{
	static const char *const bad[] = {
		"",
		"tomorrow",
		"2026-12-06T10:00:00",	      /* no offset: which zone? */
		"2026-12-06 10:00:00Z",	      /* a space, not T */
		"2026-12-06",		      /* no time */
		"2026-13-06T10:00:00Z",	      /* month 13 */
		"2026-12-06T25:00:00Z",	      /* hour 25 */
		"2026-12-06T10:00:00.Z",      /* no fraction digits */
		"2026-12-06T10:00:00+1:00",   /* one hour digit */
		"2026-12-06T10:00:00+01:00x", /* trailing text */
		"2026-12-06T10:00:00+24:00",  /* an offset of a day */
		"0",
		"-5",
		"99999999999999999999",
		"1e12",
		"12:00Z",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(jobd_schedule_parse_run_at(bad[i], &ms) < 0,
			      "took %s", bad[i]);
	ck_assert_int_lt(jobd_schedule_parse_run_at(NULL, &ms), 0);
}
END_TEST

START_TEST(test_delay_takes_durations_with_a_unit)
{
	int64_t ms;

	ck_assert_int_eq(jobd_schedule_parse_delay("30s", &ms), 0);
	ck_assert_int_eq(ms, 30000);
	ck_assert_int_eq(jobd_schedule_parse_delay("5m", &ms), 0);
	ck_assert_int_eq(ms, 300000);
	ck_assert_int_eq(jobd_schedule_parse_delay("2h", &ms), 0);
	ck_assert_int_eq(ms, 7200000);
	ck_assert_int_eq(jobd_schedule_parse_delay("1500ms", &ms), 0);
	ck_assert_int_eq(ms, 1500);
	ck_assert_int_eq(jobd_schedule_parse_delay("0", &ms), 0);
	ck_assert_int_eq(ms, 0);
	ck_assert_int_lt(jobd_schedule_parse_delay("5", &ms), 0);
	ck_assert_int_lt(jobd_schedule_parse_delay("-5s", &ms), 0);
	ck_assert_int_lt(jobd_schedule_parse_delay("5 minutes", &ms), 0);
}
END_TEST

/* The members of JSON text S: 0 with the times, or the refusal. */
static int from_json(const char *s, int64_t *at, int64_t *delay, char *why,
		     size_t why_size)
{
	json_t *o = json_loads(s, 0, NULL);
	int rc;

	ck_assert_ptr_nonnull(o);
	why[0] = 0;
	rc = jobd_schedule_from_json(o, at, delay, why, why_size);
	json_decref(o);
	return rc;
}

START_TEST(test_json_members_strings_integers_and_null)
{
	int64_t at, delay;
	char why[256];

	ck_assert_int_eq(from_json("{}", &at, &delay, why, sizeof(why)), 0);
	ck_assert_int_eq(at, 0);
	ck_assert_int_eq(delay, 0);
	ck_assert_int_eq(from_json("{\"run_at\":\"2026-12-06T10:00:00Z\"}", &at,
				   &delay, why, sizeof(why)),
			 0);
	ck_assert_int_eq(at, T0);
	ck_assert_int_eq(from_json("{\"run_at\":1796551200000,\"delay\":null}",
				   &at, &delay, why, sizeof(why)),
			 0);
	ck_assert_int_eq(at, T0);
	ck_assert_int_eq(from_json("{\"delay\":\"5m\",\"run_at\":null}", &at,
				   &delay, why, sizeof(why)),
			 0);
	ck_assert_int_eq(delay, 300000);
	ck_assert_int_eq(at, 0);
	ck_assert_int_eq(from_json("{\"delay\":1500}", &at, &delay, why,
				   sizeof(why)),
			 0);
	ck_assert_int_eq(delay, 1500);
}
END_TEST

START_TEST(test_json_refusals_name_the_member)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "{\"run_at\":\"next tuesday\"}",
		  "\"run_at\" is not a time: \"next tuesday\": use RFC 3339" },
		{ "{\"run_at\":\"2026-12-06T10:00:00\"}",
		  "\"run_at\" is not a time: \"2026-12-06T10:00:00\"" },
		{ "{\"run_at\":0}", "\"run_at\" is not a time: 0" },
		{ "{\"run_at\":true}",
		  "\"run_at\" must be a string or an integer" },
		{ "{\"delay\":-5}", "\"delay\" is negative: -5" },
		{ "{\"delay\":\"-5s\"}", "\"delay\" is negative: \"-5s\"" },
		{ "{\"delay\":\"5 minutes\"}",
		  "\"delay\" is not a duration: \"5 minutes\": use a number" },
		{ "{\"delay\":1.5}",
		  "\"delay\" must be a string or an integer" },
		{ "{\"delay\":\"1s\",\"run_at\":1}",
		  "\"run_at\" and \"delay\" exclude each other" },
		/* The message's bytes are quoted printable (fuzz_codec). */
		{ "{\"run_at\":\"u\\u007f\\u00e9\\t\"}",
		  "\"run_at\" is not a time: \"u????\"" },
	};
	int64_t at, delay;
	char why[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(from_json(bad[i].json, &at, &delay, why,
					   sizeof(why)),
				 -EINVAL);
		ck_assert_msg(strstr(why, bad[i].why) != NULL,
			      "%s: \"%s\" lacks \"%s\"", bad[i].json, why,
			      bad[i].why);
	}
}
END_TEST

static Suite *schedule_suite(void)
{
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("schedule");

	tcase_add_test(tc,
		       test_run_at_takes_rfc3339_with_an_offset_and_epoch_ms);
	tcase_add_test(tc,
		       test_run_at_refuses_no_offset_and_what_is_not_a_time);
	tcase_add_test(tc, test_delay_takes_durations_with_a_unit);
	tcase_add_test(tc, test_json_members_strings_integers_and_null);
	tcase_add_test(tc, test_json_refusals_name_the_member);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(schedule_suite());
}
