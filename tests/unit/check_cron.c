/*
 * check_cron: cron expressions (src/base/cron.h) and time zones
 * (src/base/tz.h): parsing and its errors, the next tick, DST
 * transitions in Europe/Paris and America/New_York, Feb 29, and the
 * day-of-month/day-of-week OR rule of Vixie cron. The zones come from the
 * system's tzdata (/usr/share/zoneinfo); without it those tests skip.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cron.h"
#include "base/tz.h"
#include "base/util.h"
#include "testutil.h"

static int64_t iso(const char *s)
{
	int64_t ms;

	ck_assert_msg(jobd_util_parse_iso(s, &ms) == 0, "bad time %s", s);
	return ms;
}

static struct jobd_cron parse(const char *expr)
{
	struct jobd_cron c;
	char err[256];

	ck_assert_msg(jobd_cron_parse(expr, &c, err, sizeof(err)) == 0,
		      "%s: %s", expr, err);
	return c;
}

static struct jobd_tz *zone(const char *name)
{
	struct jobd_tz *tz;
	char err[256];

	tz = jobd_tz_load(name, err, sizeof(err));
	ck_assert_msg(tz != NULL, "%s", err);
	return tz;
}

/* The next tick of EXPR in ZONE after AFTER, as ISO text in UTC. */
static const char *next(const char *expr, const char *zname, const char *after)
{
	static char buf[JOBD_ISO_SIZE];
	struct jobd_cron c = parse(expr);
	struct jobd_tz *tz = zone(zname);
	int64_t t = jobd_cron_next(&c, tz, iso(after));

	jobd_tz_free(tz);
	if (t < 0)
		return "none";
	return jobd_util_iso(t, buf);
}

static bool have_tzdata(void)
{
	return access(JOBD_TZ_DIR "/Europe/Paris", R_OK) == 0 &&
	       access(JOBD_TZ_DIR "/America/New_York", R_OK) == 0;
}

START_TEST(test_cron_next_in_utc)
{
	ck_assert_str_eq(next("*/15 * * * *", "UTC", "2026-03-01T10:07:00Z"),
			 "2026-03-01T10:15:00.000Z");
	/* Strictly after: a tick at AFTER is not the next one. */
	ck_assert_str_eq(next("*/15 * * * *", "UTC", "2026-03-01T10:15:00Z"),
			 "2026-03-01T10:30:00.000Z");
	ck_assert_str_eq(next("30 9 * * MON-FRI", "UTC",
			      "2026-03-06T10:00:00Z"), /* a Friday */
			 "2026-03-09T09:30:00.000Z");
	ck_assert_str_eq(next("0 0 1 jan *", "UTC", "2026-03-01T00:00:00Z"),
			 "2027-01-01T00:00:00.000Z");
	ck_assert_str_eq(next("5/20 * * * *", "UTC", "2026-03-01T10:26:00Z"),
			 "2026-03-01T10:45:00.000Z");
	ck_assert_str_eq(next("0 12 * * 7", "UTC", "2026-03-01T13:00:00Z"),
			 "2026-03-08T12:00:00.000Z"); /* 7 = Sunday */
	ck_assert_str_eq(next("1-3,58 * * * *", "UTC", "2026-03-01T10:03:30Z"),
			 "2026-03-01T10:58:00.000Z");
}
END_TEST

START_TEST(test_cron_shorthands)
{
	ck_assert_str_eq(next("@hourly", "UTC", "2026-03-01T10:07:00Z"),
			 "2026-03-01T11:00:00.000Z");
	ck_assert_str_eq(next("@daily", "UTC", "2026-03-01T10:07:00Z"),
			 "2026-03-02T00:00:00.000Z");
	ck_assert_str_eq(next("@weekly", "UTC", "2026-03-02T10:07:00Z"),
			 "2026-03-08T00:00:00.000Z");
	ck_assert_str_eq(next("@monthly", "UTC", "2026-03-02T10:07:00Z"),
			 "2026-04-01T00:00:00.000Z");
	ck_assert_str_eq(next("@yearly", "UTC", "2026-03-02T10:07:00Z"),
			 "2027-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(test_cron_feb_29_fires_in_leap_years_only)
{
	ck_assert_str_eq(next("0 0 29 2 *", "UTC", "2025-03-01T00:00:00Z"),
			 "2028-02-29T00:00:00.000Z");
	ck_assert_str_eq(next("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z"),
			 "2104-02-29T00:00:00.000Z"); /* 2100 is no leap year */
}
END_TEST

/* Vixie cron: both day fields restricted = either; one '*' = both. */
START_TEST(test_cron_day_fields_or_when_both_restricted)
{
	/* 2026-03-02 is a Monday; the 13th a Friday. */
	ck_assert_str_eq(next("0 0 13 * FRI", "UTC", "2026-03-02T12:00:00Z"),
			 "2026-03-06T00:00:00.000Z");
	ck_assert_str_eq(next("0 0 13 * FRI", "UTC", "2026-03-12T12:00:00Z"),
			 "2026-03-13T00:00:00.000Z");
	/* "*" in day of week: day of month alone. */
	ck_assert_str_eq(next("0 0 13 * *", "UTC", "2026-03-02T12:00:00Z"),
			 "2026-03-13T00:00:00.000Z");
	/* A field starting with '*' (a step) counts as '*': AND. */
	ck_assert_str_eq(next("0 0 */2 * FRI", "UTC", "2026-03-02T12:00:00Z"),
			 "2026-03-13T00:00:00.000Z");
}
END_TEST

START_TEST(test_cron_refuses_bad_expressions)
{
	static const struct {
		const char *expr, *want;
	} bad[] = {
		{ "61 * * * *", "minute 61 out of range 0-59" },
		{ "* 24 * * *", "hour 24 out of range 0-23" },
		{ "* * 0 * *", "day of month 0 out of range 1-31" },
		{ "* * * 13 *", "month 13 out of range 1-12" },
		{ "* * * * 8", "day of week 8 out of range 0-7" },
		{ "* * * *", "has 4 fields" },
		{ "* * * * * *", "has 6 fields" },
		{ "*/0 * * * *", "bad minute \"*/0\"" },
		{ "5-1 * * * *", "range 5-1 goes backwards" },
		{ "* * * FOO *", "bad month \"FOO\"" },
		{ "* * * * MONDAY", "bad day of week \"MONDAY\"" },
		{ "1,,2 * * * *", "bad minute \"\"" },
		{ "@sometimes", "unknown cron shorthand" },
		{ "0 0 30 2 *", "never fires" },
		{ "", "has 0 fields" },
	};
	struct jobd_cron c;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(jobd_cron_parse(bad[i].expr, &c, err,
					      sizeof(err)) == -1,
			      "\"%s\" accepted", bad[i].expr);
		ck_assert_msg(strstr(err, bad[i].want) != NULL,
			      "\"%s\": \"%s\" lacks \"%s\"", bad[i].expr, err,
			      bad[i].want);
	}
}
END_TEST

START_TEST(test_tz_refuses_unknown_and_bad_names)
{
	char err[256];

	ck_assert_ptr_null(jobd_tz_load("Europe/Pariss", err, sizeof(err)));
	ck_assert_msg(strstr(err, "unknown time zone \"Europe/Pariss\""), "%s",
		      err);
	ck_assert_ptr_null(jobd_tz_load("../../etc/passwd", err, sizeof(err)));
	ck_assert_msg(strstr(err, "bad time zone"), "%s", err);
	ck_assert_ptr_null(jobd_tz_load("/etc/passwd", err, sizeof(err)));
	ck_assert_msg(strstr(err, "bad time zone"), "%s", err);
}
END_TEST

START_TEST(test_tz_offsets_in_paris)
{
	struct jobd_tz *tz;

	if (!have_tzdata())
		return;
	tz = zone("Europe/Paris");
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2026-01-15T12:00:00Z") / 1000),
			 3600);
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2026-07-15T12:00:00Z") / 1000),
			 7200);
	/* The change itself: 01:00 UTC on the last Sunday of March. */
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2026-03-29T00:59:59Z") / 1000),
			 3600);
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2026-03-29T01:00:00Z") / 1000),
			 7200);
	/* After the file's last transition (2037): the footer's rule. */
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2050-07-15T12:00:00Z") / 1000),
			 7200);
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2050-12-15T12:00:00Z") / 1000),
			 3600);
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2050-03-27T00:59:59Z") / 1000),
			 3600);
	ck_assert_int_eq(jobd_tz_offset(tz, iso("2050-03-27T01:00:00Z") / 1000),
			 7200);
	jobd_tz_free(tz);
}
END_TEST

START_TEST(test_cron_in_paris_across_dst)
{
	if (!have_tzdata())
		return;
	/* 09:00 in Paris: 08:00 UTC in winter, 07:00 UTC in summer. */
	ck_assert_str_eq(next("0 9 * * *", "Europe/Paris",
			      "2026-03-28T12:00:00Z"),
			 "2026-03-29T07:00:00.000Z");
	ck_assert_str_eq(next("0 9 * * *", "Europe/Paris",
			      "2026-03-27T12:00:00Z"),
			 "2026-03-28T08:00:00.000Z");
	/* Spring forward, 2026-03-29: 02:30 never happens that night. */
	ck_assert_str_eq(next("30 2 * * *", "Europe/Paris",
			      "2026-03-28T12:00:00Z"),
			 "2026-03-30T00:30:00.000Z");
	/* Fall back, 2026-10-25: 02:30 happens twice, fires once (the
	 * first, 00:30 UTC), then the next day. */
	ck_assert_str_eq(next("30 2 * * *", "Europe/Paris",
			      "2026-10-24T12:00:00Z"),
			 "2026-10-25T00:30:00.000Z");
	ck_assert_str_eq(next("30 2 * * *", "Europe/Paris",
			      "2026-10-25T00:30:00Z"),
			 "2026-10-26T01:30:00.000Z");
	/* Hourly across the fall back: 02:00 local once, then 03:00 CET. */
	ck_assert_str_eq(next("0 * * * *", "Europe/Paris",
			      "2026-10-25T00:00:00Z"),
			 "2026-10-25T02:00:00.000Z");
	/* Every 15 minutes across spring forward: 01:45 CET, then 03:00. */
	ck_assert_str_eq(next("*/15 * * * *", "Europe/Paris",
			      "2026-03-29T00:45:00Z"),
			 "2026-03-29T01:00:00.000Z");
}
END_TEST

START_TEST(test_cron_in_new_york_across_dst)
{
	if (!have_tzdata())
		return;
	/* 2026-03-08 02:00 EST -> 03:00 EDT: 02:15 is skipped. */
	ck_assert_str_eq(next("15 2 * * *", "America/New_York",
			      "2026-03-07T12:00:00Z"),
			 "2026-03-09T06:15:00.000Z");
	ck_assert_str_eq(next("15 2 * * *", "America/New_York",
			      "2026-03-06T12:00:00Z"),
			 "2026-03-07T07:15:00.000Z");
	/* 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 twice, fires once. */
	ck_assert_str_eq(next("30 1 * * *", "America/New_York",
			      "2026-10-31T12:00:00Z"),
			 "2026-11-01T05:30:00.000Z");
	ck_assert_str_eq(next("30 1 * * *", "America/New_York",
			      "2026-11-01T05:30:00Z"),
			 "2026-11-02T06:30:00.000Z");
	/* Midnight is unaffected either way. */
	ck_assert_str_eq(next("@daily", "America/New_York",
			      "2026-11-01T03:00:00Z"),
			 "2026-11-01T04:00:00.000Z");
	ck_assert_str_eq(next("@daily", "America/New_York",
			      "2026-11-01T04:00:00Z"),
			 "2026-11-02T05:00:00.000Z");
}
END_TEST

/* Walking tick by tick through a year of a zone gives each local hour
 * once, except the skipped one: 8760 - 1 ticks in Paris's 2026. */
START_TEST(test_cron_hourly_for_a_year_in_paris)
{
	struct jobd_cron c;
	struct jobd_tz *tz;
	int64_t t, end;
	int n = 0;

	if (!have_tzdata())
		return;
	c = parse("0 * * * *");
	tz = zone("Europe/Paris");
	t = iso("2025-12-31T23:00:00Z") - 1; /* 2026-01-01 00:00 CET */
	end = iso("2026-12-31T23:00:00Z");
	while ((t = jobd_cron_next(&c, tz, t)) < end) {
		ck_assert_int_gt(t, 0);
		n++;
	}
	/* 8760 local hours: the skipped one never fires, the repeated
	 * one once. */
	ck_assert_int_eq(n, 8760 - 1);
	jobd_tz_free(tz);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("cron");

	tcase_add_test(tc, test_cron_next_in_utc);
	tcase_add_test(tc, test_cron_shorthands);
	tcase_add_test(tc, test_cron_feb_29_fires_in_leap_years_only);
	tcase_add_test(tc, test_cron_day_fields_or_when_both_restricted);
	tcase_add_test(tc, test_cron_refuses_bad_expressions);
	tcase_add_test(tc, test_tz_refuses_unknown_and_bad_names);
	tcase_add_test(tc, test_tz_offsets_in_paris);
	tcase_add_test(tc, test_cron_in_paris_across_dst);
	tcase_add_test(tc, test_cron_in_new_york_across_dst);
	tcase_add_test(tc, test_cron_hourly_for_a_year_in_paris);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!have_tzdata() && getenv("CI") &&
	    strcmp(getenv("CI"), "true") == 0) {
		fprintf(stderr,
			"FAIL: no tzdata in " JOBD_TZ_DIR " (CI=true)\n");
		return 1;
	}
	return jobd_test_run_suite(suite());
}
