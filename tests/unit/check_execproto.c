/*
 * check_execproto: the exec handler's stdout line protocol
 * (docs/exec-protocol.md, the contract): each command, each refusal with its
 * reason.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "handlers/execproto.h"
#include "testutil.h"

static struct jobd_exec_line line;

static void setup(void)
{
	memset(&line, 0, sizeof(line));
}

static void teardown(void)
{
	jobd_execproto_line_release(&line);
}

static int parse(const char *s)
{
	jobd_execproto_line_release(&line);
	return jobd_execproto_parse(s, strlen(s), &line);
}

static int parse_n(const char *s, size_t n)
{
	jobd_execproto_line_release(&line);
	return jobd_execproto_parse(s, n, &line);
}

#define ck_assert_invalid(rc, reason)                          \
	do {                                                   \
		ck_assert_int_eq((rc), -EINVAL);               \
		ck_assert_int_eq(line.cmd, JOBD_EXEC_INVALID); \
		ck_assert_str_eq(line.text, (reason));         \
		ck_assert_ptr_null(line.json);                 \
		ck_assert_ptr_null(line.child_type);           \
		ck_assert_ptr_null(line.child_key);            \
	} while (0)

/* --- progress ------------------------------------------------------- */

START_TEST(test_progress_percent)
{
	ck_assert_int_eq(parse("progress 42"), 0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_PROGRESS);
	ck_assert_double_eq(line.progress, 42.0);
	ck_assert_ptr_null(line.text);
	ck_assert_int_eq(parse("progress 12.5"), 0);
	ck_assert_double_eq(line.progress, 12.5);
	ck_assert_int_eq(parse("progress 0"), 0);
	ck_assert_double_eq(line.progress, 0.0);
	ck_assert_int_eq(parse("progress 100"), 0);
	ck_assert_double_eq(line.progress, 100.0);
	ck_assert_int_eq(parse("progress 100.0"), 0);
	ck_assert_double_eq(line.progress, 100.0);
	ck_assert_int_eq(parse("progress .5"), 0);
	ck_assert_double_eq(line.progress, 0.5);
}
END_TEST

START_TEST(test_progress_accepts_exponent_as_printed_by_scripts)
{
	/* Python prints 0.00001 as 1e-05. */
	ck_assert_int_eq(parse("progress 1e-05"), 0);
	ck_assert_double_eq_tol(line.progress, 0.00001, 1e-12);
	ck_assert_int_eq(parse("progress 1E2"), 0);
	ck_assert_double_eq(line.progress, 100.0);
}
END_TEST

START_TEST(test_progress_done_of_total)
{
	ck_assert_int_eq(parse("progress 3/4"), 0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_PROGRESS);
	ck_assert_double_eq(line.progress, 75.0);
	ck_assert_int_eq(parse("progress 0/7"), 0);
	ck_assert_double_eq(line.progress, 0.0);
	ck_assert_int_eq(parse("progress 7/7"), 0);
	ck_assert_double_eq(line.progress, 100.0);
	ck_assert_int_eq(
		parse("progress 18446744073709551615/18446744073709551615"), 0);
	ck_assert_double_eq(line.progress, 100.0);
	ck_assert_int_eq(parse("progress 1/3"), 0);
	ck_assert_double_eq_tol(line.progress, 33.333333, 1e-5);
}
END_TEST

START_TEST(test_progress_refused_out_of_range)
{
	ck_assert_invalid(parse("progress 100.01"),
			  "progress 100.01 is out of range 0-100");
	ck_assert_invalid(parse("progress -1"),
			  "progress -1 is out of range 0-100");
	ck_assert_invalid(parse("progress 1e400"),
			  "progress 1e400 is out of range 0-100");
	ck_assert_invalid(
		parse("progress 12345678901234567890123456789012345678901234567890"),
		"progress 12345678901234567890123456789012... is out of range 0-100");
}
END_TEST

START_TEST(test_progress_refused_when_not_a_number)
{
	ck_assert_invalid(parse("progress abc"),
			  "progress \"abc\" is not a number");
	ck_assert_invalid(parse("progress nan"),
			  "progress \"nan\" is not a number");
	ck_assert_invalid(parse("progress inf"),
			  "progress \"inf\" is not a number");
	ck_assert_invalid(parse("progress 0x10"),
			  "progress \"0x10\" is not a number");
	ck_assert_invalid(parse("progress 5%"),
			  "progress \"5%\" is not a number");
	ck_assert_invalid(parse("progress 1e"),
			  "progress \"1e\" is not a number");
	ck_assert_invalid(parse("progress ."),
			  "progress \".\" is not a number");
	ck_assert_invalid(
		parse("progress 12345678901234567890123456789012x"),
		"progress \"12345678901234567890123456789012\"... is not a number");
}
END_TEST

START_TEST(test_progress_refused_without_exactly_one_argument)
{
	ck_assert_invalid(parse("progress"),
			  "progress needs one argument: P or DONE/TOTAL");
	ck_assert_invalid(parse("progress   "),
			  "progress needs one argument: P or DONE/TOTAL");
	ck_assert_invalid(parse("progress 5 of 10"),
			  "progress needs one argument: P or DONE/TOTAL");
}
END_TEST

START_TEST(test_progress_fraction_refusals)
{
	ck_assert_invalid(parse("progress 3/0"),
			  "progress 3/0: total must be over 0");
	ck_assert_invalid(parse("progress 5/3"),
			  "progress 5/3: done is over total");
	ck_assert_invalid(parse("progress 1.5/3"),
			  "progress \"1.5/3\" is not DONE/TOTAL in integers");
	ck_assert_invalid(parse("progress -1/3"),
			  "progress \"-1/3\" is not DONE/TOTAL in integers");
	ck_assert_invalid(parse("progress /3"),
			  "progress \"/3\" is not DONE/TOTAL in integers");
	ck_assert_invalid(parse("progress 3/"),
			  "progress \"3/\" is not DONE/TOTAL in integers");
	ck_assert_invalid(parse("progress 1/2/3"),
			  "progress \"1/2/3\" is not DONE/TOTAL in integers");
	ck_assert_invalid(
		parse("progress 1/18446744073709551616"),
		"progress \"1/18446744073709551616\" is not DONE/TOTAL in integers");
}
END_TEST

/* --- log, error ----------------------------------------------------- */

START_TEST(test_log_each_level)
{
	ck_assert_int_eq(parse("log debug starting"), 0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_LOG);
	ck_assert_int_eq(line.level, JOBD_LOG_DEBUG);
	ck_assert_str_eq(line.text, "starting");
	ck_assert_int_eq(parse("log info read 10 rows"), 0);
	ck_assert_int_eq(line.level, JOBD_LOG_INFO);
	ck_assert_str_eq(line.text, "read 10 rows");
	ck_assert_int_eq(parse("log warn slow  disk\t!"), 0);
	ck_assert_int_eq(line.level, JOBD_LOG_WARN);
	ck_assert_str_eq(line.text, "slow  disk\t!");
	ck_assert_int_eq(parse("log error caf\xc3\xa9 closed"), 0);
	ck_assert_int_eq(line.level, JOBD_LOG_ERROR);
	ck_assert_str_eq(line.text, "caf\xc3\xa9 closed");
}
END_TEST

START_TEST(test_log_refusals)
{
	ck_assert_invalid(parse("log info"), "log needs LEVEL TEXT");
	ck_assert_invalid(parse("log"), "log needs LEVEL TEXT");
	ck_assert_invalid(
		parse("log warning disk full"),
		"unknown log level \"warning\" (debug, info, warn, error)");
	ck_assert_invalid(
		parse("log INFO x"),
		"unknown log level \"INFO\" (debug, info, warn, error)");
}
END_TEST

START_TEST(test_error_counts_at_level_error)
{
	ck_assert_int_eq(parse("error row 7: bad date"), 0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_ERROR);
	ck_assert_int_eq(line.level, JOBD_LOG_ERROR);
	ck_assert_str_eq(line.text, "row 7: bad date");
	ck_assert_invalid(parse("error"), "error needs TEXT");
	ck_assert_invalid(parse("error  \t "), "error needs TEXT");
}
END_TEST

/* --- checkpoint, child ---------------------------------------------- */

START_TEST(test_checkpoint_stored_compact)
{
	ck_assert_int_eq(
		parse("checkpoint { \"offset\" : 1200, \"file\" : \"a.csv\" }"),
		0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_CHECKPOINT);
	ck_assert_str_eq(line.json, "{\"offset\":1200,\"file\":\"a.csv\"}");
	ck_assert_ptr_null(line.text);
	ck_assert_int_eq(parse("checkpoint 17"), 0);
	ck_assert_str_eq(line.json, "17");
	ck_assert_int_eq(parse("checkpoint [1, \"\\u00e9\"]"), 0);
	ck_assert_str_eq(line.json, "[1,\"\xc3\xa9\"]");
}
END_TEST

START_TEST(test_checkpoint_refused_unless_valid_json)
{
	ck_assert_invalid(parse("checkpoint"), "checkpoint needs JSON");
	ck_assert_invalid(
		parse("checkpoint {\"a\":}"),
		"invalid checkpoint JSON at byte 6: unexpected token near '}'");
	ck_assert_invalid(
		parse("checkpoint {\"a\":1} x"),
		"invalid checkpoint JSON at byte 9: end of file expected near 'x'");
	ck_assert_invalid(
		parse("checkpoint \"a\\u0000\""),
		"invalid checkpoint JSON at byte 9: \\u0000 is not allowed without "
		"JSON_ALLOW_NUL near '\"a\\u0000\"'");
}
END_TEST

START_TEST(test_child_with_type_key_and_payload)
{
	ck_assert_int_eq(
		parse("child import part-3 {\"file\": \"p3.csv\", \"n\": [1, 2]}"),
		0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_CHILD);
	ck_assert_str_eq(line.child_type, "import");
	ck_assert_str_eq(line.child_key, "part-3");
	ck_assert_str_eq(line.json, "{\"file\":\"p3.csv\",\"n\":[1,2]}");
	ck_assert_int_eq(parse("child\tnoop\tk\t{}"), 0);
	ck_assert_str_eq(line.child_type, "noop");
	ck_assert_str_eq(line.child_key, "k");
	ck_assert_str_eq(line.json, "{}");
	ck_assert_int_eq(line.child_run_at, 0);
	ck_assert_int_eq(line.child_delay, 0);
}
END_TEST

START_TEST(test_child_with_a_run_time)
{
	ck_assert_int_eq(parse("child noop k1 delay=1500 {\"a\": 1}"), 0);
	ck_assert_int_eq(line.cmd, JOBD_EXEC_CHILD);
	ck_assert_str_eq(line.child_key, "k1");
	ck_assert_int_eq(line.child_delay, 1500);
	ck_assert_int_eq(line.child_run_at, 0);
	ck_assert_str_eq(line.json, "{\"a\":1}");
	ck_assert_int_eq(parse("child noop k2\tat=1796000000000\t{}"), 0);
	ck_assert_int_eq(line.child_run_at, 1796000000000LL);
	ck_assert_int_eq(line.child_delay, 0);
	ck_assert_str_eq(line.json, "{}");
	ck_assert_int_eq(parse("child noop k3 delay=0 {}"), 0);
	ck_assert_int_eq(line.child_delay, 0);
	ck_assert_int_eq(parse("child noop k4 at=1000000000000000 {}"), 0);
	ck_assert_int_eq(line.child_run_at, JOBD_EXEC_RUN_TIME_MAX);
}
END_TEST

START_TEST(test_child_run_time_refusals)
{
	ck_assert_invalid(parse("child noop k delay=1.5 {}"),
			  "child run time \"delay=1.5\" is not a whole number "
			  "of ms");
	ck_assert_invalid(parse("child noop k at= {}"),
			  "child run time \"at=\" is not a whole number of ms");
	ck_assert_invalid(parse("child noop k delay=-5 {}"),
			  "child run time \"delay=-5\" is not a whole number "
			  "of ms");
	ck_assert_invalid(parse("child noop k at=1000000000000001 {}"),
			  "child run time \"at=1000000000000001\" is over "
			  "1000000000000000 ms");
	ck_assert_invalid(parse("child noop k delay=99999999999999999999 {}"),
			  "child run time \"delay=99999999999999999999\" is "
			  "not a whole number of ms");
	/* one run time only: a second is where the JSON should be */
	ck_assert_invalid(parse("child noop k at=5 delay=6 {}"),
			  "invalid child JSON at byte 5: invalid token near "
			  "'delay'");
	ck_assert_invalid(parse("child noop k delay=5"),
			  "child needs TYPE KEY JSON");
}
END_TEST

START_TEST(test_child_refusals)
{
	ck_assert_invalid(parse("child"), "child needs TYPE KEY JSON");
	ck_assert_invalid(parse("child import"), "child needs TYPE KEY JSON");
	ck_assert_invalid(parse("child import k1"),
			  "child needs TYPE KEY JSON");
	ck_assert_invalid(parse("child import k1 [1]"),
			  "child JSON must be an object");
	ck_assert_invalid(parse("child import k1 \"x\""),
			  "child JSON must be an object");
	ck_assert_invalid(parse("child import {\"a\":1}"),
			  "child needs TYPE KEY JSON");
	ck_assert_invalid(
		parse("child import k1 {\"a\":1"),
		"invalid child JSON at byte 6: '}' expected near end of file");
}
END_TEST

/* --- whole line ----------------------------------------------------- */

START_TEST(test_unknown_command_refused)
{
	ck_assert_invalid(parse("foo bar"), "unknown command \"foo\"");
	ck_assert_invalid(parse("Progress 5"), "unknown command \"Progress\"");
	ck_assert_invalid(parse("progress:5"),
			  "unknown command \"progress:5\"");
	ck_assert_invalid(parse("\x1b[31mred"), "unknown command \"?[31mred\"");
	ck_assert_invalid(
		parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzz"),
		"unknown command \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"...");
}
END_TEST

START_TEST(test_empty_line_refused)
{
	ck_assert_invalid(parse(""), "empty line");
	ck_assert_invalid(parse(" \t "), "empty line");
	ck_assert_invalid(parse("\r"), "empty line");
	ck_assert_invalid(parse_n(NULL, 0), "empty line");
}
END_TEST

START_TEST(test_trailing_cr_tolerated)
{
	ck_assert_int_eq(parse("progress 50\r"), 0);
	ck_assert_double_eq(line.progress, 50.0);
	ck_assert_int_eq(parse("log info done\r"), 0);
	ck_assert_str_eq(line.text, "done");
	ck_assert_int_eq(parse("checkpoint {}\r"), 0);
	ck_assert_str_eq(line.json, "{}");
}
END_TEST

START_TEST(test_leading_blanks_tolerated)
{
	ck_assert_int_eq(parse("  progress   7"), 0);
	ck_assert_double_eq(line.progress, 7.0);
}
END_TEST

START_TEST(test_line_length_limit)
{
	size_t prefix = strlen("log info ");
	char *s = malloc(JOBD_EXEC_LINE_MAX + 2);

	memcpy(s, "log info ", prefix);
	memset(s + prefix, 'x', JOBD_EXEC_LINE_MAX + 2 - prefix);
	ck_assert_int_eq(parse_n(s, JOBD_EXEC_LINE_MAX), 0);
	ck_assert_uint_eq(strlen(line.text), JOBD_EXEC_LINE_MAX - prefix);
	s[JOBD_EXEC_LINE_MAX] = '\r';
	ck_assert_int_eq(parse_n(s, JOBD_EXEC_LINE_MAX + 1), 0);
	s[JOBD_EXEC_LINE_MAX] = 'x';
	ck_assert_invalid(parse_n(s, JOBD_EXEC_LINE_MAX + 1),
			  "line over 65536 bytes");
	ck_assert_invalid(parse_n(s, JOBD_EXEC_LINE_MAX + 2),
			  "line over 65536 bytes");
	free(s);
}
END_TEST

START_TEST(test_invalid_utf8_refused)
{
	ck_assert_invalid(parse("log info caf\xe9"), "invalid UTF-8 in line");
	ck_assert_invalid(parse("error \xc0\xaf"), "invalid UTF-8 in line");
	ck_assert_invalid(parse("log info \xed\xa0\x80"),
			  "invalid UTF-8 in line");
}
END_TEST

START_TEST(test_nul_byte_refused)
{
	ck_assert_invalid(parse_n("log info a\0b", 12), "NUL byte in line");
}
END_TEST

START_TEST(test_release_is_safe_on_zeroed_and_twice)
{
	struct jobd_exec_line l;

	memset(&l, 0, sizeof(l));
	jobd_execproto_line_release(&l);
	ck_assert_int_eq(jobd_execproto_parse("child a b {}", 12, &l), 0);
	jobd_execproto_line_release(&l);
	ck_assert_ptr_null(l.json);
	jobd_execproto_line_release(&l);
	jobd_execproto_line_release(NULL);
}
END_TEST

static Suite *execproto_suite(void)
{
	Suite *s = suite_create("execproto");
	TCase *tc;

	tc = tcase_create("progress");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_progress_percent);
	tcase_add_test(tc,
		       test_progress_accepts_exponent_as_printed_by_scripts);
	tcase_add_test(tc, test_progress_done_of_total);
	tcase_add_test(tc, test_progress_refused_out_of_range);
	tcase_add_test(tc, test_progress_refused_when_not_a_number);
	tcase_add_test(tc, test_progress_refused_without_exactly_one_argument);
	tcase_add_test(tc, test_progress_fraction_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_log_each_level);
	tcase_add_test(tc, test_log_refusals);
	tcase_add_test(tc, test_error_counts_at_level_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_checkpoint_stored_compact);
	tcase_add_test(tc, test_checkpoint_refused_unless_valid_json);
	tcase_add_test(tc, test_child_with_type_key_and_payload);
	tcase_add_test(tc, test_child_refusals);
	tcase_add_test(tc, test_child_with_a_run_time);
	tcase_add_test(tc, test_child_run_time_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("line");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unknown_command_refused);
	tcase_add_test(tc, test_empty_line_refused);
	tcase_add_test(tc, test_trailing_cr_tolerated);
	tcase_add_test(tc, test_leading_blanks_tolerated);
	tcase_add_test(tc, test_line_length_limit);
	tcase_add_test(tc, test_invalid_utf8_refused);
	tcase_add_test(tc, test_nul_byte_refused);
	tcase_add_test(tc, test_release_is_safe_on_zeroed_and_twice);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return jobd_test_run_suite(execproto_suite());
}
