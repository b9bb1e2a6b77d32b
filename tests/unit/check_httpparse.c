/*
 * check_httpparse: the monitor's request parsing (src/http/parse.h) without
 * a server: query strings decoded like libevent's (and names too), the
 * refusals that name the parameter, path ids of digits only, body errors
 * that stay printable ASCII, and the operation bodies.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/conf.h"
#include "http/parse.h"
#include "testutil.h"

#define NOW 1764340000000LL /* ms */

static struct jobd_httpparse_query qs;
static char err[512];

static int parse(const char *s)
{
	jobd_httpparse_query_release(&qs);
	err[0] = '\0';
	return jobd_httpparse_query_init(&qs, s, strlen(s), err, sizeof(err));
}

static void teardown(void)
{
	jobd_httpparse_query_release(&qs);
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f)
			return false;
	return true;
}

START_TEST(test_query_decodes_names_values_and_plus)
{
	ck_assert_int_eq(
		parse("run_by=alice+smith&st%61tus=pending&g=%C3%A9%zz&"), 0);
	ck_assert_uint_eq(qs.n, 3);
	ck_assert_str_eq(qs.params[0].value, "alice smith");
	ck_assert_str_eq(qs.params[1].key, "status");
	ck_assert_str_eq(jobd_httpparse_get(&qs, "g"), "\xc3\xa9%zz");
	ck_assert_int_eq(parse("grep="), 0);
	ck_assert_ptr_null(jobd_httpparse_get(&qs, "grep"));
	ck_assert_int_eq(parse(""), 0);
	ck_assert_uint_eq(qs.n, 0);
}
END_TEST

START_TEST(test_query_refusals_name_the_parameter)
{
	static const char *const allowed[] = { "limit", NULL };

	ck_assert_int_eq(parse("limit"), JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "bad query string: \"limit\" is not NAME=VALUE");
	ck_assert_int_eq(parse("=1"), JOBD_HTTPPARSE_BAD);
	ck_assert_int_eq(parse("&limit=1"), JOBD_HTTPPARSE_BAD);
	/* libevent cut the value at %00; it is refused now. */
	ck_assert_int_eq(parse("run_by=a%00b"), JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "bad query string: a NUL byte in \"run_by\"");
	/* A repeated name is quoted like any input: the message stays ASCII. */
	ck_assert_int_eq(parse("%C3%A9=1&%C3%A9=2"), 0);
	ck_assert_int_eq(jobd_httpparse_allowed(&qs, allowed, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "unknown parameter \"??\": use limit");
	ck_assert_int_eq(parse("limit=1&limit=2"), 0);
	ck_assert_int_eq(jobd_httpparse_allowed(&qs, allowed, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "parameter \"limit\" given twice");
}
END_TEST

START_TEST(test_query_over_8k_is_too_big)
{
	char *s = malloc(JOBD_HTTPPARSE_MAX_QUERY + 2);

	ck_assert_ptr_nonnull(s);
	memset(s, 'a', JOBD_HTTPPARSE_MAX_QUERY + 1);
	s[0] = 'x';
	s[1] = '=';
	s[JOBD_HTTPPARSE_MAX_QUERY + 1] = '\0';
	ck_assert_int_eq(parse(s), JOBD_HTTPPARSE_TOO_BIG);
	s[JOBD_HTTPPARSE_MAX_QUERY] = '\0';
	ck_assert_int_eq(parse(s), 0);
	free(s);
}
END_TEST

START_TEST(test_jobs_and_logs_queries)
{
	struct jobd_conf *conf;
	struct jobd_httpparse_logs lp;
	struct jobd_filter f;

	conf = jobd_conf_parse("[type.imp]\nhandler = noop\n", 26, "t.conf",
			       err, sizeof(err));
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(parse("type=imp&status=pending&limit=7&all=yes"), 0);
	ck_assert_int_eq(jobd_httpparse_jobs(&qs, conf, &f, err, sizeof(err)),
			 0);
	ck_assert_str_eq(f.type, "imp");
	ck_assert_uint_eq(f.limit, 7);
	ck_assert(f.all && !f.system);
	ck_assert_int_eq(parse("limit=1001"), 0);
	ck_assert_int_eq(jobd_httpparse_jobs(&qs, conf, &f, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err,
			 "bad limit \"1001\": use an integer from 1 to 1000");
	ck_assert_int_eq(parse("type=nosuch"), 0);
	ck_assert_int_eq(jobd_httpparse_jobs(&qs, conf, &f, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "unknown type \"nosuch\": see GET /api/types");

	ck_assert_int_eq(parse("since=10m&regex=st(op|art)&level=warn"), 0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, true, NOW, &lp, err, sizeof(err)), 0);
	ck_assert_int_eq(lp.lq.since, NOW - 600000);
	ck_assert_int_eq(lp.lq.min_level, 2);
	ck_assert(lp.lq.match(&(struct jobd_log_entry){ .msg = "STOPPED" },
			      lp.lq.match_arg));
	jobd_httpparse_logs_release(&lp);
	/* Regexes that would hold the monitor's thread for seconds. */
	ck_assert_int_eq(parse("regex=(ab)%5C1x"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(
		err,
		"bad regex \"(ab)\\1x\": back-references (\\1) are not supported");
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("regex=((a{1,255}){1,255}){1,255}"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	jobd_httpparse_logs_release(&lp);
	/* found by fuzz_http: glibc reads "{,N}" as "{0,N}" */
	ck_assert_int_eq(parse("regex=((a{1,2}){,1255}){1,255}"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	jobd_httpparse_logs_release(&lp);
	/* nested counts: "((a?){,255}){1,27}" took 1 GB (fuzz_http) */
	ck_assert_int_eq(parse("regex=((ab){1,2}){2,255}"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(
		err,
		"bad regex \"((ab){1,2}){2,255}\": a count {m,n} cannot be repeated or repeat a repetition");
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("regex=a{600}b{600}"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(
		err,
		"bad regex \"a{600}b{600}\": counted repetitions make it over 1000 atoms long");
	jobd_httpparse_logs_release(&lp);
	/* found by fuzz_http: "x$$T" and 120 stars take 10 s to compile */
	ck_assert_int_eq(parse("regex=x$$T***********1"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(
		err,
		"bad regex \"x$$T***********1\": it repeats what can match nothing, like (a*)*");
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("regex=%5E(T*)*(T*)*(T*)*(T*)*"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(
		parse("regex=((((((((((ab%2B)%2B)%2B)%2B)%2B)%2B)%2B)%2B)%2B)%2B)%2B"),
		0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_ptr_nonnull(strstr(err, "repetitions nested over 10 deep"));
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("regex=(a*b+)*c?d*e*f*g*h*i*j*k*"), 0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, true, NOW, &lp, err, sizeof(err)), 0);
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(
		parse("regex=(ab){2}[{9}%5C1[:alpha:]]x{3,}|[0-9]{4}-c{900}"),
		0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, true, NOW, &lp, err, sizeof(err)), 0);
	jobd_httpparse_logs_release(&lp);
	/* tree and after belong to one job's log only */
	ck_assert_int_eq(parse("tree=1"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, false, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	jobd_httpparse_logs_release(&lp);
	/* cursor belongs to the search across jobs: a next it gave */
	ck_assert_int_eq(parse("cursor=1764340000000-3"), 0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, false, NOW, &lp, err, sizeof(err)), 0);
	ck_assert_str_eq(lp.lq.cursor, "1764340000000-3");
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("cursor=1764340000000-0%2F42"), 0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, false, NOW, &lp, err, sizeof(err)), 0);
	jobd_httpparse_logs_release(&lp);
	ck_assert_int_eq(parse("cursor=1764340000000-3"), 0);
	ck_assert_int_eq(jobd_httpparse_logs(&qs, true, NOW, &lp, err,
					     sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	jobd_httpparse_logs_release(&lp);
	/* Empty: the first page, as for any parameter. */
	ck_assert_int_eq(parse("cursor="), 0);
	ck_assert_int_eq(
		jobd_httpparse_logs(&qs, false, NOW, &lp, err, sizeof(err)), 0);
	ck_assert_ptr_null(lp.lq.cursor);
	jobd_httpparse_logs_release(&lp);
	for (int i = 0; i < 4; i++) {
		static const char *const bad[] = { "cursor=12", "cursor=12-",
						   "cursor=12-3%2F",
						   "cursor=12-3%2F4x" };

		ck_assert_int_eq(parse(bad[i]), 0);
		ck_assert_int_eq(jobd_httpparse_logs(&qs, false, NOW, &lp, err,
						     sizeof(err)),
				 JOBD_HTTPPARSE_BAD);
		ck_assert_ptr_nonnull(strstr(err, "bad cursor"));
		jobd_httpparse_logs_release(&lp);
	}
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_path_id_is_digits_only)
{
	int64_t id = 0;

	ck_assert_int_eq(jobd_httpparse_id("42", 2, &id, err, sizeof(err)), 0);
	ck_assert_int_eq(id, 42);
	/* strtoll alone took these as 42. */
	ck_assert_int_eq(jobd_httpparse_id(" 42", 3, &id, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_int_eq(jobd_httpparse_id("+42", 3, &id, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_int_eq(jobd_httpparse_id("4\0002", 3, &id, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_int_eq(jobd_httpparse_id("0", 1, &id, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "bad job id \"0\": use a positive integer");
	ck_assert_int_eq(jobd_httpparse_id("99999999999999999999", 20, &id, err,
					   sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
}
END_TEST

START_TEST(test_body_errors_stay_ascii)
{
	static const char bad_utf8[] = "{\"type\": \xc3\xa9\xff}";
	json_t *body;

	ck_assert_int_eq(jobd_httpparse_body(bad_utf8, sizeof(bad_utf8) - 1,
					     &body, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_ptr_null(body);
	ck_assert_msg(printable(err), "not ASCII: %s", err);
	ck_assert_int_eq(jobd_httpparse_body("{\"a\":1,\"a\":2}", 13, &body,
					     err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_int_eq(jobd_httpparse_body("", 0, &body, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_str_eq(err, "empty body: send a JSON object");
	ck_assert_int_eq(jobd_httpparse_body("{}", JOBD_HTTPPARSE_MAX_BODY + 1,
					     &body, err, sizeof(err)),
			 JOBD_HTTPPARSE_TOO_BIG);
}
END_TEST

START_TEST(test_ops_body)
{
	const char *op;
	int64_t *ids;
	size_t n;
	json_t *body;

	body = json_loads("{\"op\":\"stop\",\"ids\":[3,1]}", 0, NULL);
	ck_assert_int_eq(jobd_httpparse_op(body, &op, err, sizeof(err)), 0);
	ck_assert_str_eq(op, "stop");
	ck_assert_int_eq(jobd_httpparse_ids(body, &ids, &n, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(ids[0], 3);
	free(ids);
	json_decref(body);
	body = json_loads("{\"op\":\"stop\",\"ids\":[1,\"2\"]}", 0, NULL);
	ck_assert_int_eq(jobd_httpparse_ids(body, &ids, &n, err, sizeof(err)),
			 JOBD_HTTPPARSE_BAD);
	ck_assert_ptr_null(ids);
	ck_assert_str_eq(err, "bad job id at ids[1]: use a positive integer");
	json_decref(body);
}
END_TEST

START_TEST(test_host_refused_unless_address_localhost_or_listed)
{
	static const char *const names[] = { "jobs.example.com", "ops-box",
					     NULL };
	static const char *const ok[] = {
		"127.0.0.1",	"127.0.0.1:8080",   "localhost:8080",
		"LocalHost",	"[::1]:8080",	    "[::1]",
		"10.0.0.5:",	"jobs.example.com", "JOBS.example.com:443",
		"ops-box:8080",
	};
	static const char *const refused[] = {
		"rebind.evil.example:8080",
		"rebind.evil.example",
		"localhost.evil.example",
		"jobs.example.com.evil.example",
		"example.com",
		"",
		":8080",
		"[::1",
		"[evil.example]:80",
		"::1",
		"127.0.0.1:80x",
		"127.0.0.1:123456",
		"127.0.0.1:80:80",
		"localhost/x",
		"1.2.3",
		"evil.example@127.0.0.1",
	};
	size_t i;

	ck_assert(jobd_httpparse_host_allowed(NULL, names));
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(jobd_httpparse_host_allowed(ok[i], names),
			      "refused \"%s\"", ok[i]);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_msg(!jobd_httpparse_host_allowed(refused[i], names),
			      "allowed \"%s\"", refused[i]);
	ck_assert(!jobd_httpparse_host_allowed("ops-box", NULL));
	ck_assert(jobd_httpparse_host_allowed("localhost", NULL));
}
END_TEST

static Suite *httpparse_suite(void)
{
	Suite *s = suite_create("httpparse");
	TCase *tc = tcase_create("query");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_query_decodes_names_values_and_plus);
	tcase_add_test(tc, test_query_refusals_name_the_parameter);
	tcase_add_test(tc, test_query_over_8k_is_too_big);
	tcase_add_test(tc, test_jobs_and_logs_queries);
	tcase_add_test(tc, test_path_id_is_digits_only);
	suite_add_tcase(s, tc);
	tc = tcase_create("body");
	tcase_add_test(tc, test_body_errors_stay_ascii);
	tcase_add_test(tc, test_ops_body);
	tcase_add_test(tc,
		       test_host_refused_unless_address_localhost_or_listed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(httpparse_suite());
}
