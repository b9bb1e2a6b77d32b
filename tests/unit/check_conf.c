/*
 * check_conf: the configuration parser (src/base/conf.c). Pure unit tests: text
 * in, struct jobd_conf or an error text out. Warnings are read back from
 * stderr, which each test redirects to a temp file when it needs them.
 */
#include "config.h"

#include "base/conf.h"
#include "base/log.h"
#include "http/conn.h"

#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char errstr[1024];

/* Parses TEXT named "t.conf"; errstr holds the reason on NULL. */
static struct jobd_conf *parse(const char *text)
{
	errstr[0] = '\0';
	return jobd_conf_parse(text, strlen(text), "t.conf", errstr,
			       sizeof(errstr));
}

/* Parses TEXT, which must be refused; returns the error text. */
static const char *refuse(const char *text)
{
	struct jobd_conf *conf = parse(text);

	ck_assert_msg(conf == NULL, "accepted: %s", text);
	return errstr;
}

static void clear_env(void)
{
	unsetenv("JOBD_CONFIG");
	unsetenv("JOBD_REDIS");
	unsetenv("JOBD_BROKERS");
	unsetenv("JOBD_REDIS_PASSWORD");
	unsetenv("JOBD_HTTP_TOKEN");
	unsetenv("JOBD_KAFKA_SASL_PASSWORD");
	unsetenv("JOBD_KAFKA_SSL_KEY_PASSWORD");
	unsetenv("JOBD_USERS");
}

/* stderr goes to a temp file between capture_start and capture_end. */
struct capture {
	int saved;  /* the original stderr */
	FILE *file; /* where stderr goes meanwhile */
};

static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	ck_assert_ptr_nonnull(c->file);
	c->saved = dup(STDERR_FILENO);
	ck_assert_int_ge(c->saved, 0);
	ck_assert_int_ge(dup2(fileno(c->file), STDERR_FILENO), 0);
}

/* Restores stderr; returns what was written, caller frees. */
static char *capture_end(struct capture *c)
{
	char *text;
	long n;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	n = ftell(c->file);
	ck_assert_int_ge(n, 0);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	rewind(c->file);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, c->file), (size_t)n);
	fclose(c->file);
	return text;
}

/* Writes TEXT to NAME in a new temp dir; returns the path (caller frees). */
static char *write_file(char **dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	*dir = jobd_test_tmpdir();
	ck_assert_ptr_nonnull(*dir);
	path = malloc(strlen(*dir) + strlen(name) + 2);
	ck_assert_ptr_nonnull(path);
	sprintf(path, "%s/%s", *dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static void assert_argv(char **argv, const char *const *want)
{
	size_t i;

	ck_assert_ptr_nonnull(argv);
	for (i = 0; want[i]; i++) {
		ck_assert_msg(argv[i] != NULL, "argv too short at %zu", i);
		ck_assert_str_eq(argv[i], want[i]);
	}
	ck_assert_ptr_null(argv[i]);
}

START_TEST(test_conf_defaults_without_file)
{
	struct jobd_conf *conf;
	const struct jobd_type_conf *type;
	char host[256], want[300];

	clear_env();
	conf = jobd_conf_load(NULL, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_ptr_null(conf->path);
	ck_assert_str_eq(conf->redis_address, "127.0.0.1:6379");
	ck_assert_ptr_null(conf->redis_password);
	ck_assert_ptr_null(conf->redis_user);
	ck_assert_str_eq(conf->prefix, "jobd");
	ck_assert_str_eq(conf->brokers, "embedded");
	ck_assert_str_eq(conf->group, "jobd");
	ck_assert_int_eq(conf->max_payload, 1048576);
	ck_assert_int_eq(conf->dlq_max_bytes, 921600);
	ck_assert_int_eq(conf->pending_limit, 100000);
	ck_assert_uint_eq(conf->kafka_props_count, 0);
	ck_assert_str_eq(conf->topic_events, "jobs.events");
	ck_assert_str_eq(conf->topic_records, "jobs.records");
	ck_assert_str_eq(conf->topic_actions, "jobs.actions");
	ck_assert_str_eq(conf->topic_stats, "jobs.stats");
	ck_assert_str_eq(conf->topic_dlq, "jobs.dlq");
	ck_assert(conf->role_consume && conf->role_work);
	ck_assert(conf->role_stats && conf->role_http);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "%s-%ld", host, (long)getpid());
	ck_assert_str_eq(conf->instance, want);
	ck_assert_int_eq(conf->workers, 8);
	ck_assert_int_eq(conf->lease, 10000);
	ck_assert_int_eq(conf->heartbeat, 1000);
	ck_assert_double_eq(conf->low_priority_share, 0.5);
	ck_assert_str_eq(conf->data_dir, "/var/lib/jobd");
	ck_assert_int_eq(conf->retention_jobs, 7 * 86400000LL);
	ck_assert_int_eq(conf->logs_max_entries, 10000);
	ck_assert_int_eq(conf->retention_stats, 30 * 86400000LL);
	ck_assert(!conf->stats_msgpack);
	ck_assert_str_eq(conf->http_listen, "127.0.0.1:8080");
	ck_assert_ptr_null(conf->http_token);
	ck_assert(!conf->read_requires_token);
	ck_assert_ptr_null(conf->http_allowed_hosts);
	ck_assert_int_eq(conf->http_max_connections, 0);
	ck_assert_int_eq(conf->http_request_timeout, 10000);
	ck_assert_uint_eq(conf->users_count, 0);
	ck_assert_uint_eq(conf->types_count, 9);
	ck_assert_uint_eq(conf->listeners_count, 0);
	ck_assert_uint_eq(conf->actions_count, 0);
	ck_assert_uint_eq(conf->relations_count, 0);
	ck_assert_uint_eq(conf->warnings, 0);

	type = jobd_conf_type(conf, "noop");
	ck_assert_ptr_nonnull(type);
	ck_assert_str_eq(type->handler, "noop");
	ck_assert(type->stoppable && !type->restartable && !type->system);
	ck_assert_int_eq(type->timeout, 0);
	ck_assert_int_eq(type->retries, 0);
	ck_assert_int_eq(type->retry_backoff, 1000);
	ck_assert_int_eq(type->chunk_size, 1000);
	ck_assert_ptr_null(type->command);
	ck_assert(!type->needs_command);
	type = jobd_conf_type(conf, "exec");
	ck_assert_str_eq(type->handler, "exec");
	ck_assert(type->needs_command);
	ck_assert(jobd_conf_type(conf, "import")->restartable);
	ck_assert(jobd_conf_type(conf, "export")->restartable);
	ck_assert(jobd_conf_type(conf, "event")->stoppable);
	ck_assert_str_eq(jobd_conf_type(conf, "action")->handler, "action");
	type = jobd_conf_type(conf, "refactor");
	ck_assert(type->system && type->stoppable);
	type = jobd_conf_type(conf, "relationship-update");
	ck_assert(type->system && !type->stoppable);
	type = jobd_conf_type(conf, "cleanup");
	ck_assert(type->system && !type->stoppable);
	ck_assert_ptr_null(jobd_conf_type(conf, "report"));
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_config_env_names_file)
{
	struct jobd_conf *conf;
	char *dir, *path;

	clear_env();
	path = write_file(&dir, "jobd.conf", "[engine]\nworkers = 3\n");
	setenv("JOBD_CONFIG", path, 1);
	conf = jobd_conf_load(NULL, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->path, path);
	ck_assert_int_eq(conf->workers, 3);
	jobd_conf_free(conf);
	clear_env();
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_conf_missing_file_refused)
{
	clear_env();
	ck_assert_ptr_null(jobd_conf_load("/nonexistent/jobd.conf", errstr,
					  sizeof(errstr)));
	ck_assert_str_eq(errstr, "cannot read \"/nonexistent/jobd.conf\": "
				 "No such file or directory");
	/* The same through $JOBD_CONFIG. */
	setenv("JOBD_CONFIG", "/nonexistent/other.conf", 1);
	ck_assert_ptr_null(jobd_conf_load(NULL, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, "cannot read \"/nonexistent/other.conf\": "
				 "No such file or directory");
	clear_env();
}
END_TEST

START_TEST(test_conf_bad_duration_names_file_and_line)
{
	struct jobd_conf *conf;
	char *dir, *path, want[1024];

	clear_env();
	path = write_file(&dir, "jobd.conf",
			  "; comment\n[engine]\nworkers = 2\nlease = 5x\n");
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	ck_assert_ptr_null(conf);
	snprintf(want, sizeof(want),
		 "%s:4: bad duration \"5x\" for [engine] lease: use a number "
		 "with ms, s, m, h or d",
		 path);
	ck_assert_str_eq(errstr, want);
	jobd_test_rmrf(dir);
	free(dir);
	free(path);

	ck_assert_str_eq(refuse("[type.noop]\n\ntimeout = 10 s\n"),
			 "t.conf:3: bad duration \"10 s\" for [type.noop] "
			 "timeout: use a number with ms, s, m, h or d");
}
END_TEST

START_TEST(test_conf_durations)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{ "0", 0 },
		{ "0ms", 0 },
		{ "250ms", 250 },
		{ "10s", 10000 },
		{ "5m", 300000 },
		{ "2h", 7200000 },
		{ "7d", 604800000 },
		{ "007s", 7000 },
		{ "9223372036854775807ms", INT64_MAX },
		{ "106751991167d", 106751991167LL * 86400000 },
	};
	static const char *const bad[] = {
		"",
		"10",
		"5x",
		"-1s",
		"+1s",
		"1.5s",
		" 1s",
		"1s ",
		"1S",
		"s",
		"1ms2",
		"10sec",
		"9223372036854775808ms",
		"9223372036854775807s",
		"106751991168d",
		"99999999999999999999999999d",
	};
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		ck_assert_msg(jobd_conf_parse_duration(good[i].s, &ms) == 0,
			      "refused %s", good[i].s);
		ck_assert_int_eq(ms, good[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 42;
		ck_assert_msg(jobd_conf_parse_duration(bad[i], &ms) == -1,
			      "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
}
END_TEST

START_TEST(test_conf_sizes)
{
	static const struct {
		const char *s;
		int64_t bytes;
	} good[] = {
		{ "0", 0 },
		{ "100", 100 },
		{ "100B", 100 },
		{ "1MiB", 1048576 },
		{ "512KiB", 524288 },
		{ "5MB", 5000000 },
		{ "2kB", 2000 },
		{ "2KB", 2000 },
		{ "3GiB", 3LL << 30 },
		{ "1GB", 1000000000 },
		{ "8388607TiB", 8388607LL << 40 },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = {
		"",	      "MiB", "-1",  "1.5MiB",	  "1 MiB",
		"1mib",	      "1M",  "1Mi", "8388608TiB", "9223372036854775808",
		"10000000TB",
	};
	int64_t bytes;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bytes = -1;
		ck_assert_msg(jobd_conf_parse_size(good[i].s, &bytes) == 0,
			      "refused %s", good[i].s);
		ck_assert_int_eq(bytes, good[i].bytes);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(jobd_conf_parse_size(bad[i], &bytes) == -1,
			      "accepted \"%s\"", bad[i]);

	ck_assert_str_eq(refuse("[kafka]\nmax_payload = 1 MiB\n"),
			 "t.conf:2: bad size \"1 MiB\" for [kafka] "
			 "max_payload: use a number of bytes, optionally with "
			 "KiB, MiB, GiB, KB, MB or GB");
	ck_assert_str_eq(refuse("[kafka]\nmax_payload = 2GiB\n"),
			 "t.conf:2: size \"2GiB\" out of range for [kafka] "
			 "max_payload: use from 1 to 1000000000 bytes");
	/* a reference record must fit */
	ck_assert_str_eq(refuse("[kafka]\ndlq_max_bytes = 4095\n"),
			 "t.conf:2: size \"4095\" out of range for [kafka] "
			 "dlq_max_bytes: use from 4096 to 1000000000 bytes");
}
END_TEST

START_TEST(test_conf_values_parsed)
{
	struct jobd_conf *conf;

	conf = parse(
		"[redis]\n"
		"address = /run/redis.sock\n"
		"password = s3cret\n"
		"user = jobd\n"
		"prefix = j2\n"
		"[kafka]\n"
		"brokers = k1:9092,k2:9092\n"
		"group = g\n"
		"max_payload = 512KiB\n"
		"dlq_max_bytes = 4KiB\n"
		"pending_limit = 5\n"
		"[topics]\n"
		"events = e\nrecords = r\nactions = a\nstats = s\ndlq = d\n"
		"allowed = crm.contacts, exports.*, jobs.events\n"
		"[engine]\n"
		"roles = work, http\n"
		"instance = box-1\n"
		"workers = 1024\n"
		"lease = 2m\n"
		"heartbeat = 250ms\n"
		"low_priority_share = 1\n"
		"data_dir = /srv/jobd\n"
		"[retention]\n"
		"jobs = 0\nlogs_max_entries = 7\nstats = 2d\n"
		"[stats]\nformat = msgpack\n"
		"[http]\n"
		"listen = 0.0.0.0:80\ntoken = t0k\n"
		"read_requires_token = YES\n"
		"allowed_hosts = Jobs.Example.com, ops-box ,,\n"
		"max_connections = 40\n"
		"request_timeout = 2500ms\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->path, "t.conf");
	ck_assert_str_eq(conf->redis_address, "/run/redis.sock");
	ck_assert_str_eq(conf->redis_password, "s3cret");
	ck_assert_str_eq(conf->redis_user, "jobd");
	ck_assert_str_eq(conf->prefix, "j2");
	ck_assert_str_eq(conf->brokers, "k1:9092,k2:9092");
	ck_assert_str_eq(conf->group, "g");
	ck_assert_int_eq(conf->max_payload, 524288);
	ck_assert_int_eq(conf->dlq_max_bytes, 4096);
	ck_assert_int_eq(conf->pending_limit, 5);
	ck_assert_str_eq(conf->topic_events, "e");
	ck_assert_str_eq(conf->topic_records, "r");
	ck_assert_str_eq(conf->topic_actions, "a");
	ck_assert_str_eq(conf->topic_stats, "s");
	ck_assert_str_eq(conf->topic_dlq, "d");
	assert_argv(conf->topics_allowed,
		    (const char *const[]){ "crm.contacts", "exports.*",
					   "jobs.events", NULL });
	ck_assert(!conf->role_consume && conf->role_work);
	ck_assert(!conf->role_stats && conf->role_http);
	ck_assert_str_eq(conf->instance, "box-1");
	ck_assert_int_eq(conf->workers, 1024);
	ck_assert_int_eq(conf->lease, 120000);
	ck_assert_int_eq(conf->heartbeat, 250);
	ck_assert_double_eq(conf->low_priority_share, 1.0);
	ck_assert_str_eq(conf->data_dir, "/srv/jobd");
	ck_assert_int_eq(conf->retention_jobs, 0);
	ck_assert_int_eq(conf->logs_max_entries, 7);
	ck_assert_int_eq(conf->retention_stats, 2 * 86400000LL);
	ck_assert(conf->stats_msgpack);
	ck_assert_str_eq(conf->http_listen, "0.0.0.0:80");
	ck_assert_str_eq(conf->http_token, "t0k");
	ck_assert(conf->read_requires_token);
	assert_argv(conf->http_allowed_hosts,
		    (const char *const[]){ "jobs.example.com", "ops-box",
					   NULL });
	ck_assert_int_eq(conf->http_max_connections, 40);
	ck_assert_int_eq(conf->http_request_timeout, 2500);
	ck_assert_uint_eq(conf->warnings, 0);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_http_limits_refused_out_of_range)
{
	struct jobd_conf *conf;

	ck_assert_str_eq(
		refuse("[http]\nmax_connections = -1\n"),
		"t.conf:2: bad number \"-1\" for [http] "
		"max_connections: use a whole number from 0 to 1000000");
	ck_assert_str_eq(refuse("[http]\nrequest_timeout = 0\n"),
			 "t.conf:2: duration \"0\" too short for [http] "
			 "request_timeout: use a duration above 0, e.g. 10s");
	ck_assert_str_eq(refuse("[http]\nrequest_timeout = 61m\n"),
			 "t.conf:2: duration \"61m\" too long for [http] "
			 "request_timeout: use at most 1h");
	ck_assert_str_eq(refuse("[engine]\nlease = 366d\n"),
			 "t.conf:2: duration \"366d\" too long for [engine] "
			 "lease: use at most 365d");
	ck_assert_str_eq(
		refuse("[http]\nallowed_hosts = ok.example, [::1]\n"),
		"t.conf:2: bad host name \"[::1]\" for [http] allowed_hosts: "
		"use host names separated by commas, e.g. jobs.example.com, "
		"ops-box");
	ck_assert_str_eq(refuse("[http]\nallowed_hosts = a b\n"),
			 "t.conf:2: bad host name \"a b\" for [http] "
			 "allowed_hosts: use host names separated by commas, "
			 "e.g. jobs.example.com, ops-box");
	/* A later empty value clears the list. */
	conf = parse("[http]\nallowed_hosts = a\nallowed_hosts =\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_ptr_null(conf->http_allowed_hosts);
	jobd_conf_free(conf);
}
END_TEST

/* [topics] allowed: names or prefixes, never one of jobd's own topics. */
START_TEST(test_conf_topics_allowed)
{
	struct jobd_conf *conf = parse("");

	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_ptr_null(conf->topics_allowed);
	jobd_conf_free(conf);
	conf = parse("[topics]\nallowed = *, a_b-c.D*\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	assert_argv(conf->topics_allowed,
		    (const char *const[]){ "*", "a_b-c.D*", NULL });
	ck_assert_ptr_null(jobd_conf_own_topic(conf, "a_b-c.D"));
	ck_assert_str_eq(jobd_conf_own_topic(conf, "jobs.dlq"), "dlq");
	ck_assert_str_eq(jobd_conf_own_topic(conf, "jobs.events"), "events");
	jobd_conf_free(conf);
	ck_assert_str_eq(refuse("[topics]\nallowed = a*b\n"),
			 "t.conf:2: bad topic \"a*b\" for [topics] allowed: "
			 "use topic names (1-249 of A-Z a-z 0-9 _ . -) or "
			 "prefixes ending in *, separated by commas, e.g. "
			 "crm.contacts, exports.*");
	ck_assert_str_eq(refuse("[topics]\nallowed = crm/x\n"),
			 "t.conf:2: bad topic \"crm/x\" for [topics] allowed: "
			 "use topic names (1-249 of A-Z a-z 0-9 _ . -) or "
			 "prefixes ending in *, separated by commas, e.g. "
			 "crm.contacts, exports.*");
	/* jobd's own topics, as configured, wherever [topics] sets them. */
	ck_assert_str_eq(refuse("[topics]\nallowed = crm.x, jobs.dlq\n"),
			 "t.conf:2: [topics] allowed lists jobs.dlq, jobd's "
			 "dlq topic: jobs may not read or write jobd's own "
			 "topics; remove it");
	ck_assert_str_eq(refuse("[topics]\nallowed = in.x\n"
				"[kafka]\n[topics]\nevents = in.x\n"),
			 "t.conf:2: [topics] allowed lists in.x, jobd's "
			 "events topic: jobs may not read or write jobd's "
			 "own topics; remove it");
}
END_TEST

/*
 * The monitor's connection limit leaves the rest of jobd its descriptors:
 * 64, 12 per worker (an exec's four pipes and pidfd, its Redis, a file),
 * 8 more per worker when jobs may use topics, 32 for Kafka roles.
 */
START_TEST(test_conf_http_limit_keeps_descriptors_for_workers)
{
	struct jobd_conf *conf = parse("[engine]\nworkers = 8\n");
	char why[256] = "";

	ck_assert_msg(conf != NULL, "%s", errstr);
	/* every role: 256 - (64 + 8 * 12 + 32) */
	ck_assert_int_eq(jobd_httpconn_limit(conf, 256, why, sizeof(why)), 64);
	ck_assert_int_eq(jobd_httpconn_limit(conf, 100000, why, sizeof(why)),
			 JOBD_HTTPCONN_DEFAULT_MAX);
	conf->http_max_connections = 900;
	ck_assert_int_eq(jobd_httpconn_limit(conf, 1024, why, sizeof(why)), -1);
	ck_assert_str_eq(why,
			 "[http] max_connections 900 is more than the "
			 "descriptor limit leaves: ulimit -n 1024 minus 192 "
			 "for workers, Redis and Kafka leaves 832; lower it, "
			 "or raise the limit");
	jobd_conf_free(conf);
	/* Topics for jobs: 8 more per worker, so 256 leaves none. */
	conf = parse("[engine]\nworkers = 8\n[topics]\nallowed = crm.*\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_int_eq(jobd_httpconn_limit(conf, 256, why, sizeof(why)), -1);
	ck_assert_int_eq(jobd_httpconn_limit(conf, 512, why, sizeof(why)),
			 512 - (64 + 8 * 20 + 32));
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_booleans)
{
	static const char *const yes[] = { "yes", "true", "on",
					   "1",	  "Yes",  "TRUE" };
	static const char *const no[] = { "no", "false", "off", "0", "OFF" };
	struct jobd_conf *conf;
	char text[128];
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[type.noop]\nrestartable = %s\n",
			 yes[i]);
		conf = parse(text);
		ck_assert_msg(conf != NULL, "%s", errstr);
		ck_assert(jobd_conf_type(conf, "noop")->restartable);
		jobd_conf_free(conf);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text), "[type.noop]\nstoppable = %s\n",
			 no[i]);
		conf = parse(text);
		ck_assert_msg(conf != NULL, "%s", errstr);
		ck_assert(!jobd_conf_type(conf, "noop")->stoppable);
		jobd_conf_free(conf);
	}
	ck_assert_str_eq(refuse("[http]\nread_requires_token = maybe\n"),
			 "t.conf:2: bad boolean \"maybe\" for [http] "
			 "read_requires_token: use yes or no");
}
END_TEST

START_TEST(test_conf_number_ranges_refused)
{
	ck_assert_str_eq(refuse("[engine]\nworkers = 0\n"),
			 "t.conf:2: bad number \"0\" for [engine] workers: "
			 "use a whole number from 1 to 1024");
	ck_assert_str_eq(refuse("[engine]\nworkers = 1025\n"),
			 "t.conf:2: bad number \"1025\" for [engine] workers: "
			 "use a whole number from 1 to 1024");
	ck_assert_str_eq(refuse("[engine]\nworkers = eight\n"),
			 "t.conf:2: bad number \"eight\" for [engine] workers: "
			 "use a whole number from 1 to 1024");
	ck_assert_str_eq(refuse("[engine]\nworkers = 99999999999999999999\n"),
			 "t.conf:2: bad number \"99999999999999999999\" for "
			 "[engine] workers: use a whole number from 1 to 1024");
	ck_assert_ptr_nonnull(strstr(refuse("[type.noop]\nretries = -1\n"),
				     "t.conf:2: bad number \"-1\" for "
				     "[type.noop] retries"));
	ck_assert_ptr_nonnull(
		strstr(refuse("[engine]\nlow_priority_share = 0\n"),
		       "t.conf:2: bad share \"0\" for [engine] "
		       "low_priority_share: use a fraction above 0 and at most "
		       "1, e.g. 0.5"));
	ck_assert_ptr_nonnull(
		strstr(refuse("[engine]\nlow_priority_share = 1.01\n"),
		       "bad share \"1.01\""));
	ck_assert_ptr_nonnull(
		strstr(refuse("[engine]\nlow_priority_share = nan\n"),
		       "bad share \"nan\""));
	ck_assert_str_eq(refuse("[engine]\nlease = 0\n"),
			 "t.conf:2: duration \"0\" too short for [engine] "
			 "lease: use a duration above 0, e.g. 10s");
}
END_TEST

START_TEST(test_conf_lease_must_exceed_heartbeat)
{
	struct jobd_conf *conf;

	ck_assert_str_eq(refuse("[engine]\nlease = 2s\n\nheartbeat = 2s\n"),
			 "t.conf:4: [engine] lease 2.0s is not longer than "
			 "heartbeat 2.0s: make lease longer than heartbeat, "
			 "e.g. 10 times");
	/* Order does not matter: the check runs after the whole file. */
	conf = parse("[engine]\nheartbeat = 20s\nlease = 1m\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_int_eq(conf->lease, 60000);
	jobd_conf_free(conf);
}
END_TEST

/* [schedule.NAME]: defaults, a type defined after the schedule, and each
 * bad value refused on the line that set it. */
START_TEST(test_conf_schedule_parsed_and_refused_by_line)
{
	struct jobd_conf *conf;
	const struct jobd_schedule_conf *sc;

	conf = parse("[schedule.b]\ncron = @daily\ntype = report\n"
		     "[schedule.a]\ncron = */5 9-17 * * MON-FRI\n"
		     "timezone = Europe/Paris\ntype = noop\n"
		     "payload = {\"x\": [1, 2]}\nlow_priority = yes\n"
		     "enabled = no\ncatch_up = all\n"
		     "[type.report]\nhandler = noop\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->schedules_count, 2);
	sc = &conf->schedules[0]; /* sorted by name */
	ck_assert_str_eq(sc->name, "a");
	ck_assert_str_eq(sc->timezone, "Europe/Paris");
	ck_assert(sc->low_priority && !sc->enabled);
	ck_assert_int_eq(sc->catch_up_mode, JOBD_CATCH_UP_ALL);
	ck_assert_uint_eq(sc->expr.hours, 0x3fe00u); /* 9-17 */
	sc = &conf->schedules[1];
	ck_assert_str_eq(sc->name, "b");
	ck_assert_str_eq(sc->timezone, "UTC");
	ck_assert_str_eq(sc->payload, "{}");
	ck_assert(!sc->low_priority && sc->enabled);
	ck_assert_int_eq(sc->catch_up_mode, JOBD_CATCH_UP_LATEST);
	jobd_conf_free(conf);

	ck_assert_str_eq(refuse("[schedule.x]\ntype = noop\n\n"
				"cron = 0 0 * * 9\n"),
			 "t.conf:4: [schedule.x] cron: day of week 9 out of "
			 "range 0-7 in \"0 0 * * 9\": use 5 fields (minute "
			 "hour day month weekday) or @daily");
	ck_assert_ptr_nonnull(
		strstr(refuse("[schedule.x]\ncron = @daily\n"
			      "type = noop\ntimezone = Mars/Base\n"),
		       "t.conf:4: [schedule.x] timezone: unknown "
		       "time zone \"Mars/Base\""));
	ck_assert_str_eq(refuse("[schedule.x]\ncron = @daily\ntype = nope\n"),
			 "t.conf:3: [schedule.x] type: unknown job type "
			 "\"nope\": use a built-in type or one of a "
			 "[type.NAME] section");
	ck_assert_ptr_nonnull(strstr(refuse("[schedule.x]\ncron = @daily\n"
					    "type = noop\npayload = {x}\n"),
				     "t.conf:4: [schedule.x] payload is not "
				     "valid JSON"));
	ck_assert_str_eq(refuse("[schedule.x]\ntype = noop\n"),
			 "t.conf:1: [schedule.x] has no cron: add cron = MIN "
			 "HOUR DAY MONTH WEEKDAY");
}
END_TEST

START_TEST(test_conf_repeated_sections_merge)
{
	struct jobd_conf *conf;
	const struct jobd_type_conf *type;

	conf = parse("[engine]\nworkers = 4\n"
		     "[redis]\nprefix = a\n"
		     "[type.report]\ncommand = /bin/report\n"
		     "[engine]\nlease = 20s\nworkers = 5\n"
		     "[type.report]\ntimeout = 1m\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_int_eq(conf->workers, 5);
	ck_assert_int_eq(conf->lease, 20000);
	ck_assert_str_eq(conf->prefix, "a");
	ck_assert_uint_eq(conf->types_count, 10);
	type = jobd_conf_type(conf, "report");
	ck_assert_ptr_nonnull(type);
	ck_assert_str_eq(type->command[0], "/bin/report");
	ck_assert_int_eq(type->timeout, 60000);
	ck_assert_uint_eq(type->line, 5);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_unknown_key_warns)
{
	struct capture cap;
	struct jobd_conf *conf;
	char *out;

	capture_start(&cap);
	conf = parse("[engine]\nworkers = 2\ncolour = blue\nlease = 30s\n"
		     "[listener.a]\nservice = s\ncommand = x\nfoo = 1\n");
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	/* Parsing went on past the unknown key. */
	ck_assert_int_eq(conf->lease, 30000);
	ck_assert_uint_eq(conf->warnings, 2);
	ck_assert_msg(strstr(out, "t.conf:3: warning: unknown key \"colour\" "
				  "in [engine]; ignored"),
		      "stderr: %s", out);
	ck_assert_msg(strstr(out, "t.conf:8: warning: unknown key \"foo\" in "
				  "[listener.a]; ignored"),
		      "stderr: %s", out);
	free(out);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_unknown_section_warns)
{
	struct capture cap;
	struct jobd_conf *conf;
	char *out;

	capture_start(&cap);
	conf = parse("[metrics]\nport = 9\nother = 1\n[engine]\nworkers = 3\n");
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_int_eq(conf->workers, 3);
	/* One warning for the section, none for its keys. */
	ck_assert_uint_eq(conf->warnings, 1);
	ck_assert_msg(strstr(out, "t.conf:1: warning: unknown section "
				  "[metrics]; its keys are ignored"),
		      "stderr: %s", out);
	free(out);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_comments_whitespace_and_crlf)
{
	struct jobd_conf *conf;

	conf = parse("# top\r\n"
		     "  ; indented comment\r\n"
		     "\t[ redis ]  ; trailing\r\n"
		     "\r\n"
		     "  address\t=\t10.0.0.1:6379   # where\r\n"
		     "password = pa;ss#word ; real comment\r\n"
		     "[http]\r\n"
		     "token = ;\r\n"
		     "listen = x");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_address, "10.0.0.1:6379");
	/* ';' and '#' inside a word are text. */
	ck_assert_str_eq(conf->redis_password, "pa;ss#word");
	ck_assert_ptr_null(conf->http_token);
	/* The last line needs no newline. */
	ck_assert_str_eq(conf->http_listen, "x");
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_syntax_errors_name_line)
{
	ck_assert_str_eq(refuse("[engine]\nworkers 4\n"),
			 "t.conf:2: expected [section] or key = value: "
			 "write key = value");
	ck_assert_str_eq(refuse("\n[engine\n"),
			 "t.conf:2: unterminated section header: close it "
			 "with ]");
	ck_assert_str_eq(refuse("[engine] x\n"),
			 "t.conf:1: text after section header [engine]: put "
			 "nothing but a comment after ]");
	ck_assert_str_eq(refuse("[engine]\n = 4\n"),
			 "t.conf:2: missing key before =: write key = value");
	ck_assert_str_eq(refuse("[type.a b]\n"),
			 "t.conf:1: bad name \"a b\" in [type.a b]: use "
			 "letters, digits, '-', '_' or '.' after the dot");
	ck_assert_str_eq(refuse("[action.]\n"),
			 "t.conf:1: bad name \"\" in [action.]: use letters, "
			 "digits, '-', '_' or '.' after the dot");
}
END_TEST

START_TEST(test_conf_nul_byte_refused)
{
	static const char text[] = "[engine]\nworkers = 4\0 5\n";

	ck_assert_ptr_null(jobd_conf_parse(text, sizeof(text) - 1, "t.conf",
					   errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr,
			 "t.conf:2: NUL byte in line: save the file as text");
}
END_TEST

START_TEST(test_conf_empty_values)
{
	struct jobd_conf *conf;
	char host[256], want[300];

	ck_assert_str_eq(refuse("[redis]\nprefix =\n"),
			 "t.conf:2: empty value for [redis] prefix: give a "
			 "value or remove the line");
	conf = parse("[redis]\npassword = x\npassword =\n"
		     "[engine]\ninstance = a\ninstance =   \n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_ptr_null(conf->redis_password);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "%s-%ld", host, (long)getpid());
	ck_assert_str_eq(conf->instance, want);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_long_line)
{
	const size_t n = 200000;
	struct jobd_conf *conf;
	char *text, *p;

	text = malloc(n + 64);
	ck_assert_ptr_nonnull(text);
	p = text + sprintf(text, "[http]\ntoken = ");
	memset(p, 'k', n);
	strcpy(p + n, "\nlisten = :1\n");
	conf = parse(text);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(strlen(conf->http_token), n);
	ck_assert(conf->http_token[n - 1] == 'k');
	ck_assert_str_eq(conf->http_listen, ":1");
	jobd_conf_free(conf);
	free(text);
}
END_TEST

START_TEST(test_conf_command_split_quotes)
{
	static const char *const want1[] = {
		"/bin/prog",
		"two words",
		"it's",
		"a\"b",
		"x\\y",
		"$HOME",
		"*",
		"",
		"con"
		"cat",
		"esc aped",
		NULL,
	};
	static const char *const want2[] = { "a;b", "#c", "d", NULL };
	static const char *const want3[] = { "echo", "a ; b", "tab\there",
					     NULL };
	struct jobd_conf *conf;

	conf = parse("[type.t1]\n"
		     "command = /bin/prog 'two words' \"it's\" \"a\\\"b\" "
		     "'x\\y' $HOME * '' con\"cat\" esc\\ aped\n"
		     "[type.t2]\n"
		     "command =  a;b  \\#c d ; comment # more\n"
		     "[type.t3]\n"
		     "command = echo \"a ; b\" 'tab\there'\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	assert_argv(jobd_conf_type(conf, "t1")->command, want1);
	assert_argv(jobd_conf_type(conf, "t2")->command, want2);
	assert_argv(jobd_conf_type(conf, "t3")->command, want3);
	ck_assert(!jobd_conf_type(conf, "t1")->needs_command);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_command_double_quote_escapes_like_sh)
{
	static const char *const want[] = { "a\\nb", "q\"", "b\\", "$", NULL };
	struct jobd_conf *conf;

	/* Inside "...", only \" \\ \$ \` lose their backslash. */
	conf = parse("[action.x]\n"
		     "command = \"a\\nb\" \"q\\\"\" \"b\\\\\" \"\\$\"\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	assert_argv(conf->actions[0].command, want);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_unterminated_quote_refused)
{
	ck_assert_str_eq(refuse("[type.r]\ncommand = /bin/r 'oops\n"),
			 "t.conf:2: unterminated single quote in [type.r] "
			 "command: close the quote, or escape the character "
			 "with a backslash");
	ck_assert_str_eq(refuse("[listener.l]\nservice = s\n"
				"command = r \"x ; y\n"),
			 "t.conf:3: unterminated double quote in "
			 "[listener.l] command: close the quote, or escape "
			 "the character with a backslash");
	ck_assert_ptr_nonnull(strstr(refuse("[action.a]\ncommand = r x\\\n"),
				     "t.conf:2: trailing backslash in "
				     "[action.a] command"));
}
END_TEST

START_TEST(test_conf_exec_type_needs_command)
{
	struct jobd_conf *conf;

	ck_assert_str_eq(
		refuse("[type.report]\nhandler = exec\ntimeout = 1m\n"),
		"t.conf:1: [type.report] has handler exec but no "
		"command: add command = /path/to/program args");
	/* A new type is an exec type unless it names another handler. */
	ck_assert_ptr_nonnull(strstr(refuse("\n[type.report]\nretries = 1\n"),
				     "t.conf:2: [type.report] has handler "
				     "exec but no command"));
	/* A comment-only command is no command. */
	ck_assert_ptr_nonnull(strstr(refuse("[type.r]\ncommand = ; later\n"),
				     "[type.r] has handler exec but no "
				     "command"));
	/* Configuring the built-in exec type needs a command as well. */
	ck_assert_ptr_nonnull(strstr(refuse("[type.exec]\ntimeout = 1m\n"),
				     "[type.exec] has handler exec but no "
				     "command"));
	conf = parse("[type.exec]\ncommand = /bin/true\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert(!jobd_conf_type(conf, "exec")->needs_command);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_unknown_handler_refused)
{
	ck_assert_str_eq(refuse("[type.x]\nhandler = shell\n"),
			 "t.conf:2: unknown handler \"shell\" for [type.x] "
			 "handler: use noop, exec, import, export, event, "
			 "action, refactor, relationship-update or cleanup");
}
END_TEST

START_TEST(test_conf_types_override_and_add)
{
	static const char *const want[] = { "/usr/bin/rep", "--fast", NULL };
	struct jobd_conf *conf;
	const struct jobd_type_conf *type;
	struct capture cap;
	char *out;

	capture_start(&cap);
	conf = parse("[type.cleanup]\nstoppable = yes\nretries = 3\n"
		     "[type.report]\nhandler = exec\n"
		     "command = /usr/bin/rep --fast\nrestartable = on\n"
		     "system = 1\ntimeout = 90s\nretry_backoff = 0\n"
		     "chunk_size = 50\n"
		     "[type.demo]\nhandler = noop\n"
		     "[type.quiet]\nhandler = noop\ncommand = /bin/x\n");
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->types_count, 12);
	type = jobd_conf_type(conf, "cleanup");
	ck_assert(type->stoppable && type->system);
	ck_assert_int_eq(type->retries, 3);
	ck_assert_str_eq(type->handler, "cleanup");
	type = jobd_conf_type(conf, "report");
	assert_argv(type->command, want);
	ck_assert(type->restartable && type->system && type->stoppable);
	ck_assert_int_eq(type->timeout, 90000);
	ck_assert_int_eq(type->retry_backoff, 0);
	ck_assert_int_eq(type->chunk_size, 50);
	ck_assert_uint_eq(type->line, 4);
	ck_assert_str_eq(jobd_conf_type(conf, "demo")->handler, "noop");
	/* A command on a non-exec type is pointless: warned, not refused. */
	ck_assert_uint_eq(conf->warnings, 1);
	ck_assert_msg(strstr(out, "t.conf:14: warning: [type.quiet] command "
				  "is ignored by handler noop"),
		      "stderr: %s", out);
	free(out);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_roles)
{
	struct jobd_conf *conf;

	conf = parse("[engine]\nroles = stats,,consume ,stats\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert(conf->role_consume && !conf->role_work);
	ck_assert(conf->role_stats && !conf->role_http);
	jobd_conf_free(conf);
	ck_assert_str_eq(refuse("[engine]\nroles = work,cook\n"),
			 "t.conf:2: unknown role \"cook\" for [engine] roles: "
			 "use a comma list of consume, work, stats, http");
	ck_assert_str_eq(refuse("[engine]\nroles = ,\n"),
			 "t.conf:2: no role in \",\" for [engine] roles: use a "
			 "comma list of consume, work, stats, http");
	ck_assert_str_eq(refuse("[stats]\nformat = xml\n"),
			 "t.conf:2: bad format \"xml\" for [stats] format: "
			 "use json or msgpack");
}
END_TEST

START_TEST(test_conf_log_level_and_format)
{
	struct jobd_conf *conf;

	conf = parse("");
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(conf->log_level, JOBD_LOG_INFO);
	ck_assert(!conf->log_json);
	jobd_conf_free(conf);
	conf = parse("[log]\nlevel = debug\nformat = json\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_int_eq(conf->log_level, JOBD_LOG_DEBUG);
	ck_assert(conf->log_json);
	jobd_conf_free(conf);
	ck_assert_str_eq(refuse("[log]\nlevel = verbose\n"),
			 "t.conf:2: bad level \"verbose\" for [log] level: "
			 "use debug, info, warn or error");
	ck_assert_str_eq(refuse("[log]\nformat = logfmt\n"),
			 "t.conf:2: bad format \"logfmt\" for [log] format: "
			 "use text or json");
}
END_TEST

/* Overwrites PATH with TEXT. */
static void rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_conf_reload_takes_types_and_tokens_and_names_the_rest)
{
	const struct jobd_type_conf *old;
	struct jobd_conf *conf;
	struct capture cap;
	char *dir, *path, *out;

	clear_env();
	path = write_file(&dir, "jobd.conf",
			  "[engine]\nworkers = 2\n[type.a]\nhandler = noop\n"
			  "[listener.l]\nservice = s\ncommand = x\n");
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	old = jobd_conf_type(conf, "a");
	ck_assert_ptr_nonnull(old);

	rewrite(path, "[engine]\nworkers = 3\n[type.b]\nhandler = noop\n"
		      "[listener.l]\nservice = s2\ncommand = x\n"
		      "[http]\ntoken = t\n[users]\nu1 = alice\n"
		      "[log]\nlevel = warn\n");
	capture_start(&cap);
	ck_assert_int_eq(jobd_conf_reload(conf, errstr, sizeof(errstr)), 0);
	out = capture_end(&cap);
	ck_assert_ptr_nonnull(jobd_conf_type(conf, "b"));
	ck_assert_ptr_null(jobd_conf_type(conf, "a"));
	/* Borrowed before the reload, still readable (ASan would say). */
	ck_assert_str_eq(old->name, "a");
	ck_assert_str_eq(conf->http_token, "t");
	ck_assert_uint_eq(conf->users_count, 1);
	ck_assert_int_eq(conf->log_level, JOBD_LOG_WARN);
	ck_assert_int_eq(conf->workers, 2);
	ck_assert_str_eq(conf->listeners[0].service, "s");
	ck_assert_msg(strstr(out, "[engine] workers changed: needs a restart"),
		      "%s", out);
	ck_assert_msg(strstr(out, "[listener.NAME] sections changed: need a "
				  "restart"),
		      "%s", out);
	ck_assert_msg(!strstr(out, "[http] token"), "token named: %s", out);
	ck_assert_msg(strstr(out, "reloaded "), "%s", out);
	free(out);

	/* A bad file: refused with its line, nothing changed. */
	rewrite(path, "[type.c]\nhandler = noop\n[engine]\nlease = 5x\n");
	ck_assert_int_eq(jobd_conf_reload(conf, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "jobd.conf:4: bad duration \"5x\""), "%s",
		      errstr);
	ck_assert_ptr_nonnull(jobd_conf_type(conf, "b"));
	ck_assert_ptr_null(jobd_conf_type(conf, "c"));
	ck_assert_str_eq(conf->http_token, "t");
	jobd_conf_free(conf);

	/* Built-in defaults: no file to read again. */
	conf = jobd_conf_load(NULL, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(jobd_conf_reload(conf, errstr, sizeof(errstr)), -1);
	ck_assert_str_eq(errstr, "no file to reload: jobd started on the "
				 "built-in defaults (give -c FILE or "
				 "JOBD_CONFIG)");
	jobd_conf_free(conf);
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_conf_kafka_properties_pass_through)
{
	struct jobd_conf *conf;

	conf = parse("[kafka]\nkafka.security.protocol = ssl\n"
		     "kafka.linger.ms = 5\n[kafka]\nkafka.linger.ms = 10\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->kafka_props_count, 2);
	ck_assert_str_eq(conf->kafka_props[0].key, "security.protocol");
	ck_assert_str_eq(conf->kafka_props[0].value, "ssl");
	ck_assert_str_eq(conf->kafka_props[1].key, "linger.ms");
	ck_assert_str_eq(conf->kafka_props[1].value, "10");
	ck_assert_uint_eq(conf->warnings, 0);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_users_map_tokens)
{
	struct jobd_conf *conf;

	conf = parse("[users]\nabc123 = alice\ndef456 = bob\nabc123 = carol\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->users_count, 2);
	ck_assert_str_eq(conf->users[0].key, "abc123");
	ck_assert_str_eq(conf->users[0].value, "carol");
	ck_assert_str_eq(conf->users[1].key, "def456");
	ck_assert_str_eq(conf->users[1].value, "bob");
	jobd_conf_free(conf);
	ck_assert_str_eq(refuse("[users]\nabc =\n"),
			 "t.conf:2: empty user name for a token in [users]: "
			 "write TOKEN = user name");
}
END_TEST

/* Writes TEXT to NAME in DIR with MODE; returns the path (caller frees). */
static char *write_secret(const char *dir, const char *name, const char *text,
			  mode_t mode)
{
	char *path;
	FILE *f;

	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

START_TEST(test_conf_secrets_read_from_files)
{
	struct jobd_conf *conf;
	struct capture cap;
	char *dir = jobd_test_tmpdir(), *pw, *tok, *kpw, *users, *text, *out;

	ck_assert_ptr_nonnull(dir);
	pw = write_secret(dir, "pw", "s3 cret\n", 0600);
	tok = write_secret(dir, "tok", "t0k\r\n\n", 0400);
	kpw = write_secret(dir, "kpw", "kafka-pw", 0600);
	users = write_secret(dir, "users",
			     "# operators\nabc = alice\n\ndef = bob, g = c\n",
			     0600);
	ck_assert_int_ge(asprintf(&text,
				  "[redis]\npassword_file = %s ; comment\n"
				  "[http]\ntoken_file = %s\n"
				  "[kafka]\nkafka.sasl.password_file = %s\n"
				  "[users]\ntokens_file = %s\nxyz = carol\n",
				  pw, tok, kpw, users),
			 0);
	capture_start(&cap);
	conf = parse(text);
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_msg(conf->warnings == 0, "warnings: %s", out);
	/* Only the line ends at the end go. */
	ck_assert_str_eq(conf->redis_password, "s3 cret");
	ck_assert_str_eq(conf->http_token, "t0k");
	ck_assert_uint_eq(conf->kafka_props_count, 1);
	ck_assert_str_eq(conf->kafka_props[0].key, "sasl.password");
	ck_assert_str_eq(conf->kafka_props[0].value, "kafka-pw");
	ck_assert_uint_eq(conf->users_count, 4);
	ck_assert_str_eq(conf->users[0].key, "abc");
	ck_assert_str_eq(conf->users[0].value, "alice");
	ck_assert_str_eq(conf->users[2].key, "g");
	ck_assert_str_eq(conf->users[2].value, "c");
	ck_assert_str_eq(conf->users[3].value, "carol");
	/* The one inline secret is the [users] token of line 9. */
	ck_assert_uint_eq(conf->secret_line, 9);
	jobd_conf_free(conf);
	free(out);
	free(text);
	free(pw);
	free(tok);
	free(kpw);
	free(users);
	jobd_test_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_conf_secret_file_refused_naming_key_and_file)
{
	char *dir = jobd_test_tmpdir(), *empty, *bad, *text;

	ck_assert_ptr_nonnull(dir);
	ck_assert_str_eq(
		refuse("[redis]\naddress = x:1\npassword_file = /nonexistent/pw\n"),
		"t.conf:3: cannot read \"/nonexistent/pw\" for [redis] "
		"password_file: No such file or directory: give a file that "
		"jobd's user can read");
	ck_assert_str_eq(refuse("[http]\ntoken_file =\n"),
			 "t.conf:2: empty path for [http] token_file: give the "
			 "path of a file holding the secret");
	empty = write_secret(dir, "empty", "\n", 0600);
	ck_assert_int_ge(asprintf(&text, "[http]\ntoken_file = %s\n", empty),
			 0);
	ck_assert_msg(strstr(refuse(text), "for [http] token_file is empty: "),
		      "%s", errstr);
	free(text);
	bad = write_secret(dir, "bad", "abc = alice\nnoequals\n", 0600);
	ck_assert_int_ge(asprintf(&text, "[users]\ntokens_file = %s\n", bad),
			 0);
	ck_assert_str_eq(refuse(text),
			 "t.conf:2: a pair without '=' in the file of [users] "
			 "tokens_file: write one TOKEN = name a line, or TOKEN "
			 "= name pairs separated by commas");
	free(text);
	/* A directory or a device is not a secret. */
	ck_assert_int_ge(asprintf(&text,
				  "[kafka]\nkafka.sasl.password_file = %s\n",
				  dir),
			 0);
	ck_assert_msg(strstr(refuse(text),
			     "for [kafka] kafka.sasl.password_file is not a "
			     "regular file"),
		      "%s", errstr);
	ck_assert_str_eq(refuse("[redis]\npassword_file = /dev/zero\n"),
			 "t.conf:2: \"/dev/zero\" for [redis] password_file "
			 "is not a regular file: give a file of at most 64 KiB "
			 "holding the secret");
	free(text);
	free(empty);
	free(bad);
	jobd_test_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_conf_secret_file_readable_by_others_warns)
{
	struct jobd_conf *conf;
	struct capture cap;
	char *dir = jobd_test_tmpdir(), *pw, *text, *out, *want;

	ck_assert_ptr_nonnull(dir);
	pw = write_secret(dir, "pw", "s3cret\n", 0640);
	ck_assert_int_ge(asprintf(&text, "[redis]\npassword_file = %s\n", pw),
			 0);
	capture_start(&cap);
	conf = parse(text);
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->warnings, 1);
	ck_assert_int_ge(asprintf(&want,
				  "t.conf:2: warning: \"%s\" for [redis] "
				  "password_file is readable by group or "
				  "others (mode 0640): chmod 600 it",
				  pw),
			 0);
	ck_assert_msg(strstr(out, want), "stderr: %s", out);
	/* The warning never shows the secret. */
	ck_assert_ptr_null(strstr(out, "s3cret"));
	ck_assert_str_eq(conf->redis_password, "s3cret");
	jobd_conf_free(conf);
	free(want);
	free(out);
	free(text);
	free(pw);
	jobd_test_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_conf_config_with_secret_readable_by_others_warns)
{
	struct jobd_conf *conf;
	struct capture cap;
	char *dir, *path, *out;

	clear_env();
	path = write_file(
		&dir, "jobd.conf",
		"[engine]\nworkers = 2\n[redis]\npassword = s3cret\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	capture_start(&cap);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->warnings, 1);
	ck_assert_msg(strstr(out, ":4: warning: a secret in a file that group "
				  "or others may read (mode 0644): chmod 600"),
		      "stderr: %s", out);
	ck_assert_ptr_null(strstr(out, "s3cret"));
	jobd_conf_free(conf);
	free(out);

	/* Mode 600: quiet. */
	ck_assert_int_eq(chmod(path, 0600), 0);
	capture_start(&cap);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_msg(conf->warnings == 0, "stderr: %s", out);
	jobd_conf_free(conf);
	free(out);
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_conf_secret_file_relative_to_config)
{
	struct jobd_conf *conf;
	char *dir, *path, *pw;

	clear_env();
	path = write_file(&dir, "jobd.conf", "[redis]\npassword_file = pw\n");
	pw = write_secret(dir, "pw", "from-dir\n", 0600);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_password, "from-dir");
	ck_assert_uint_eq(conf->secret_line, 0);
	jobd_conf_free(conf);
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
	free(pw);
}
END_TEST

START_TEST(test_conf_secrets_from_env_override_file)
{
	struct jobd_conf *conf;
	char *dir, *path;

	clear_env();
	path = write_file(&dir, "jobd.conf",
			  "[redis]\npassword = file-pw\n[http]\ntoken = t\n"
			  "[users]\nabc = alice\n");
	ck_assert_int_eq(chmod(path, 0600), 0);
	setenv("JOBD_REDIS_PASSWORD", "env-pw", 1);
	setenv("JOBD_HTTP_TOKEN", "env-token", 1);
	setenv("JOBD_KAFKA_SASL_PASSWORD", "env-sasl", 1);
	setenv("JOBD_KAFKA_SSL_KEY_PASSWORD", "env-key", 1);
	setenv("JOBD_USERS", "abc = bob, def=carol\nghi = dan", 1);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_password, "env-pw");
	ck_assert_str_eq(conf->http_token, "env-token");
	ck_assert_uint_eq(conf->kafka_props_count, 2);
	ck_assert_str_eq(conf->kafka_props[0].key, "sasl.password");
	ck_assert_str_eq(conf->kafka_props[0].value, "env-sasl");
	ck_assert_str_eq(conf->kafka_props[1].key, "ssl.key.password");
	ck_assert_str_eq(conf->kafka_props[1].value, "env-key");
	ck_assert_uint_eq(conf->users_count, 3);
	ck_assert_str_eq(conf->users[0].value, "bob");
	ck_assert_str_eq(conf->users[2].key, "ghi");
	jobd_conf_free(conf);

	setenv("JOBD_USERS", "abc", 1);
	ck_assert_ptr_null(jobd_conf_load(path, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, "a pair without '=' in $JOBD_USERS: write "
				 "TOKEN = name pairs separated by commas or "
				 "newlines");
	clear_env();
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_conf_secret_is_a_property_of_the_key)
{
	ck_assert(jobd_conf_secret("redis", "password"));
	ck_assert(!jobd_conf_secret("redis", "user"));
	ck_assert(!jobd_conf_secret("redis", "address"));
	ck_assert(jobd_conf_secret("http", "token"));
	ck_assert(!jobd_conf_secret("http", "listen"));
	ck_assert(jobd_conf_secret("kafka", "kafka.sasl.password"));
	ck_assert(jobd_conf_secret("kafka", "kafka.ssl.key.password"));
	ck_assert(jobd_conf_secret("kafka", "kafka.ssl.key.pem"));
	ck_assert(jobd_conf_secret("kafka",
				   "kafka.sasl.oauthbearer.client.secret"));
	ck_assert(!jobd_conf_secret("kafka", "kafka.sasl.username"));
	ck_assert(!jobd_conf_secret("kafka", "brokers"));
	ck_assert(jobd_conf_secret("users", "abc123"));
	ck_assert(!jobd_conf_secret("engine", "workers"));
	ck_assert(!jobd_conf_secret("type.noop", "command"));
}
END_TEST

START_TEST(test_conf_redis_tls_keys_and_address)
{
	struct jobd_redis_address a;
	struct jobd_conf *conf;
	char err[256];

	conf = jobd_conf_parse(
		"[redis]\naddress = rediss://r.example:6380\n"
		"tls_ca = ca.pem\ntls_cert = c.pem\n"
		"tls_key = /abs/c.key\ntls_server_name = r\n",
		strlen("[redis]\naddress = rediss://r.example:6380\n"
		       "tls_ca = ca.pem\ntls_cert = c.pem\n"
		       "tls_key = /abs/c.key\ntls_server_name = r\n"),
		"/etc/jobd/jobd.conf", errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	/* Relative to the file's directory, as every path key. */
	ck_assert_str_eq(conf->redis_tls_ca, "/etc/jobd/ca.pem");
	ck_assert_str_eq(conf->redis_tls_cert, "/etc/jobd/c.pem");
	ck_assert_str_eq(conf->redis_tls_key, "/abs/c.key");
	ck_assert_str_eq(conf->redis_tls_server_name, "r");
	jobd_conf_free(conf);
	conf = jobd_conf_parse(
		"[http]\ntls_cert = m.pem\ntls_key = m.key\n",
		strlen("[http]\ntls_cert = m.pem\ntls_key = m.key\n"),
		"/etc/jobd/jobd.conf", errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->http_tls_cert, "/etc/jobd/m.pem");
	jobd_conf_free(conf);

	ck_assert_str_eq(refuse("[redis]\naddress = 10.0.0.1:6379\n"
				"tls_ca = /ca.pem\n"),
			 "t.conf:3: [redis] tls_ca is set but address "
			 "\"10.0.0.1:6379\" is not TLS: write "
			 "rediss://host:port, or remove the tls_ keys");
	ck_assert_str_eq(refuse("[redis]\naddress = rediss://h:1\n"
				"tls_cert = /c.pem\n"),
			 "t.conf:3: [redis] tls_cert without tls_key: give "
			 "both tls_cert and tls_key, or neither");
	ck_assert(strstr(refuse("[redis]\naddress = rediss://h:99999\n"),
			 "t.conf:2: bad redis address \"rediss://h:99999\""));
	ck_assert(strstr(refuse("[redis]\naddress = redis://u:pw@h:1\n"),
			 "holds a user or password"));

	ck_assert_int_eq(jobd_conf_redis_address("rediss://[::1]:6380", &a, err,
						 sizeof(err)),
			 0);
	ck_assert(a.tls && !a.unix_socket);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_int_eq(a.port, 6380);
	ck_assert_int_eq(
		jobd_conf_redis_address("redis://h", &a, err, sizeof(err)), 0);
	ck_assert(!a.tls && a.port == 6379);
	ck_assert_str_eq(a.host, "h");
	ck_assert_int_eq(jobd_conf_redis_address("/run/redis.sock", &a, err,
						 sizeof(err)),
			 0);
	ck_assert(a.unix_socket && !a.tls);
	ck_assert_int_eq(jobd_conf_redis_address("127.0.0.1:7000", &a, err,
						 sizeof(err)),
			 0);
	ck_assert(!a.tls && a.port == 7000);
	ck_assert_int_eq(jobd_conf_redis_address("rediss://h:1/0", &a, err,
						 sizeof(err)),
			 -1);
	ck_assert(strstr(err, "has a path"));
}
END_TEST

START_TEST(test_conf_tls_needs_cert_and_key)
{
	struct jobd_conf *conf;

	conf = parse("[http]\ntls_cert = /etc/jobd/cert.pem\n"
		     "tls_key = /etc/jobd/key.pem\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->http_tls_cert, "/etc/jobd/cert.pem");
	ck_assert_str_eq(conf->http_tls_key, "/etc/jobd/key.pem");
	jobd_conf_free(conf);
	conf = parse("[http]\nlisten = 0.0.0.0:8443\n");
	ck_assert_ptr_nonnull(conf);
	ck_assert_ptr_null(conf->http_tls_cert);
	ck_assert_ptr_null(conf->http_tls_key);
	jobd_conf_free(conf);
	ck_assert_str_eq(refuse("[http]\nlisten = 0.0.0.0:8443\n"
				"tls_cert = /etc/jobd/cert.pem\n"),
			 "t.conf:3: [http] tls_cert without tls_key: give both "
			 "tls_cert and tls_key, or neither");
	ck_assert_str_eq(refuse("[http]\ntls_key = /k.pem\n"),
			 "t.conf:2: [http] tls_key without tls_cert: give both "
			 "tls_cert and tls_key, or neither");
}
END_TEST

START_TEST(test_conf_listeners_sorted_by_order_then_name)
{
	struct jobd_conf *conf;

	conf = parse(
		"[listener.zeta]\nservice = crm\ncommand = z\norder = 5\n"
		"[listener.beta]\nservice = crm\ncommand = b\n"
		"event = order.created\norder = 10\n"
		"[listener.alpha]\nservice = erp\ncommand = a\norder = 10\n"
		"[listener.first]\nservice = erp\ncommand = f\n"
		"order = -3\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->listeners_count, 4);
	ck_assert_str_eq(conf->listeners[0].name, "first");
	ck_assert_str_eq(conf->listeners[1].name, "zeta");
	ck_assert_str_eq(conf->listeners[2].name, "alpha");
	ck_assert_str_eq(conf->listeners[3].name, "beta");
	ck_assert_str_eq(conf->listeners[3].service, "crm");
	ck_assert_str_eq(conf->listeners[3].event, "order.created");
	ck_assert_str_eq(conf->listeners[3].command[0], "b");
	/* Without event, a listener hears every event of its service. */
	ck_assert_str_eq(conf->listeners[1].event, "*");
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_incomplete_sections_refused)
{
	ck_assert_str_eq(refuse("[listener.l]\ncommand = x\n"),
			 "t.conf:1: [listener.l] has no service: add "
			 "service = NAME");
	ck_assert_str_eq(refuse("[engine]\n[listener.l]\nservice = s\n"),
			 "t.conf:2: [listener.l] has no command: add command "
			 "= /path/to/program args");
	ck_assert_str_eq(refuse("[action.reindex]\nbatch = 5\n"),
			 "t.conf:1: [action.reindex] has no command: add "
			 "command = /path/to/program args");
	ck_assert_str_eq(refuse("[sink.loader]\n"),
			 "t.conf:1: [sink.loader] has no command: add "
			 "command = /path/to/program args");
	ck_assert_str_eq(refuse("[relation.r]\nsource = a\nlabel = b\n"
				"target = c\nref_field = d\n"),
			 "t.conf:1: [relation.r] has no copy_field: a "
			 "relation needs source, label, target, ref_field and "
			 "copy_field");
}
END_TEST

START_TEST(test_conf_actions_and_relations)
{
	struct jobd_conf *conf;

	conf = parse("[action.reindex]\ncommand = /bin/reindex --all\n"
		     "[action.touch]\ncommand = t\nbatch = 20\n"
		     "[relation.customer-name]\nsource = customers\n"
		     "label = name\ntarget = orders\nref_field = customer_id\n"
		     "copy_field = customer_name\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->actions_count, 2);
	ck_assert_str_eq(conf->actions[0].name, "reindex");
	ck_assert_str_eq(conf->actions[0].command[1], "--all");
	ck_assert_int_eq(conf->actions[0].batch, 500);
	ck_assert_int_eq(conf->actions[1].batch, 20);
	ck_assert_uint_eq(conf->relations_count, 1);
	ck_assert_str_eq(conf->relations[0].name, "customer-name");
	ck_assert_str_eq(conf->relations[0].source, "customers");
	ck_assert_str_eq(conf->relations[0].label, "name");
	ck_assert_str_eq(conf->relations[0].target, "orders");
	ck_assert_str_eq(conf->relations[0].ref_field, "customer_id");
	ck_assert_str_eq(conf->relations[0].copy_field, "customer_name");
	jobd_conf_free(conf);

	/* Import sinks: a command receiving batches of records. */
	conf = parse("[sink.crm]\ncommand = /opt/crm/load --dry\n"
		     "[sink.crm]\ncommand = /opt/crm/load\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_uint_eq(conf->sinks_count, 1);
	ck_assert_str_eq(conf->sinks[0].name, "crm");
	ck_assert_str_eq(conf->sinks[0].command[0], "/opt/crm/load");
	ck_assert_ptr_null(conf->sinks[0].command[1]);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_env_overrides_file)
{
	struct jobd_conf *conf;
	char *dir, *path;

	clear_env();
	path = write_file(&dir, "jobd.conf",
			  "[redis]\naddress = file:1\n"
			  "[kafka]\nbrokers = file:9092\n");
	setenv("JOBD_REDIS", "/tmp/redis.sock", 1);
	setenv("JOBD_BROKERS", "env1:9092,env2:9092", 1);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_address, "/tmp/redis.sock");
	ck_assert_str_eq(conf->brokers, "env1:9092,env2:9092");
	jobd_conf_free(conf);

	/* Also over the built-in defaults; an empty variable is unset. */
	setenv("JOBD_BROKERS", "", 1);
	conf = jobd_conf_load(NULL, errstr, sizeof(errstr));
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_address, "/tmp/redis.sock");
	ck_assert_str_eq(conf->brokers, "embedded");
	jobd_conf_free(conf);

	/* jobd_conf_parse never reads the environment. */
	conf = parse("[engine]\n");
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_str_eq(conf->redis_address, "127.0.0.1:6379");
	jobd_conf_free(conf);
	clear_env();
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_conf_shipped_file_parses)
{
	const char *top = getenv("top_srcdir");
	struct jobd_conf *conf, *defaults;
	struct capture cap;
	char path[4096], *out;

	clear_env();
	snprintf(path, sizeof(path), "%s/config/jobd.conf", top ? top : ".");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "config/jobd.conf");
	capture_start(&cap);
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_msg(conf->warnings == 0 && out[0] == '\0',
		      "warnings in %s: %s", path, out);
	free(out);

	/* Everything in it is commented out: it states the defaults. */
	defaults = jobd_conf_load(NULL, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(defaults);
	ck_assert_str_eq(conf->redis_address, defaults->redis_address);
	ck_assert_str_eq(conf->brokers, defaults->brokers);
	ck_assert_int_eq(conf->workers, defaults->workers);
	ck_assert_int_eq(conf->lease, defaults->lease);
	ck_assert_int_eq(conf->max_payload, defaults->max_payload);
	ck_assert_uint_eq(conf->types_count, defaults->types_count);
	ck_assert_uint_eq(conf->kafka_props_count, 0);
	ck_assert_uint_eq(conf->users_count, 0);
	ck_assert_uint_eq(conf->listeners_count, 0);
	ck_assert_uint_eq(conf->actions_count, 0);
	ck_assert_uint_eq(conf->relations_count, 0);
	jobd_conf_free(defaults);
	jobd_conf_free(conf);
}
END_TEST

/*
 * The shipped file with its samples uncommented must also be valid: the
 * documentation shows working syntax.
 */
START_TEST(test_conf_shipped_samples_parse_when_uncommented)
{
	const char *top = getenv("top_srcdir");
	struct jobd_conf *conf;
	struct capture cap;
	char path[4096], *text, *out, *src, *dst;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/config/jobd.conf", top ? top : ".");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "config/jobd.conf");
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	/* Drop the ';' that starts a line: ';' comments out keys. */
	for (src = dst = text; *src; src++)
		if (!(*src == ';' && (src == text || src[-1] == '\n')))
			*dst++ = *src;
	*dst = '\0';

	capture_start(&cap);
	conf = parse(text);
	out = capture_end(&cap);
	ck_assert_msg(conf != NULL, "%s", errstr);
	ck_assert_msg(conf->warnings == 0, "warnings: %s", out);
	ck_assert_ptr_nonnull(jobd_conf_type(conf, "report"));
	ck_assert_str_eq(jobd_conf_type(conf, "report")->command[2],
			 "monthly summary");
	ck_assert_uint_eq(conf->listeners_count, 1);
	ck_assert_str_eq(conf->listeners[0].name, "crm-orders");
	ck_assert_uint_eq(conf->actions_count, 1);
	ck_assert_str_eq(conf->actions[0].name, "reindex");
	ck_assert_uint_eq(conf->relations_count, 1);
	ck_assert_str_eq(conf->relations[0].name, "customer-name");
	ck_assert_uint_eq(conf->users_count, 1);
	ck_assert_uint_eq(conf->kafka_props_count, 1);
	ck_assert_int_eq(conf->workers, 8);
	ck_assert_int_eq(conf->lease, 10000);
	free(out);
	free(text);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_check_names_every_error_in_line_order)
{
	static const char text[] =
		"[engine]\n"		      /* 1 */
		"workers = lots\n"	      /* 2 */
		"lease = 5x\n"		      /* 3 */
		"wokers = 4\n"		      /* 4: a warning at a start */
		"[type.report]\n"	      /* 5 */
		"handler = nosuch\n"	      /* 6: no "exec but no command" */
		"stoppable = maybe\n"	      /* 7 */
		"[type.runner]\n"	      /* 8: exec without command */
		"[http\n"		      /* 9 */
		"listen = ignored\n"	      /* 10: in no section */
		"[listener.l]\n"	      /* 11 */
		"service = crm\n"	      /* 12 */
		"command = \"unterminated\n"; /* 13 */
	static const char *const want[] = {
		":2: bad number \"lots\" for [engine] workers: use a whole "
		"number from 1 to 1024",
		":3: bad duration \"5x\" for [engine] lease: use a number "
		"with ms, s, m, h or d",
		":4: warning: unknown key \"wokers\" in [engine]; ignored",
		":6: unknown handler \"nosuch\" for [type.report] handler: "
		"use noop, exec, import, export, event, action, refactor, "
		"relationship-update or cleanup",
		":7: bad boolean \"maybe\" for [type.report] stoppable: use "
		"yes or no",
		":8: [type.runner] has handler exec but no command: add "
		"command = /path/to/program args",
		":9: unterminated section header: close it with ]",
		":13: unterminated double quote in [listener.l] command: close "
		"the quote, or escape the character with a backslash",
	};
	struct jobd_conf_errors errors;
	char *dir, *path, msg[1024];
	size_t n = sizeof(want) / sizeof(want[0]);

	clear_env();
	path = write_file(&dir, "jobd.conf", text);
	ck_assert_ptr_null(jobd_conf_check(path, &errors));
	for (size_t i = 0; i < errors.n && i < n; i++) {
		snprintf(msg, sizeof(msg), "%s%s", path, want[i]);
		ck_assert_str_eq(errors.errors[i].msg, msg);
	}
	ck_assert_uint_eq(errors.n, n);
	ck_assert_uint_eq(errors.warnings, 1);
	/* A start stops at the first of them. */
	ck_assert_ptr_null(jobd_conf_load(path, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, errors.errors[0].msg);
	jobd_conf_errors_release(&errors);

	ck_assert_ptr_null(jobd_conf_check("/nonexistent/jobd.conf", &errors));
	ck_assert_uint_eq(errors.n, 1);
	ck_assert_str_eq(errors.errors[0].msg,
			 "cannot read \"/nonexistent/jobd.conf\": No such "
			 "file or directory");
	jobd_conf_errors_release(&errors);
	jobd_test_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

/* CONF written by jobd_conf_write, without its first line (the path). */
static char *written(const struct jobd_conf *conf)
{
	char *text = NULL, *body;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(jobd_conf_write(conf, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	body = strdup(strchr(text, '\n') + 1);
	free(text);
	return body;
}

START_TEST(test_conf_write_reads_back_the_same_without_secrets)
{
	static const char text[] =
		"[redis]\naddress = /run/redis.sock\npassword = s3cr3t-pw\n"
		"[kafka]\nbrokers = k1:9092,k2:9092\nmax_payload = 2MiB\n"
		"kafka.sasl.password = s3cr3t-sasl\n"
		"kafka.socket.timeout.ms = 5000\n"
		"[topics]\nallowed = crm.contacts, exports.*\n"
		"[engine]\nroles = work, http\ninstance = box-1\n"
		"lease = 90s\nheartbeat = 250ms\nlow_priority_share = .25\n"
		"[stats]\nformat = msgpack\n"
		"[http]\ntoken = s3cr3t-token\nallowed_hosts = Jobs.example.com\n"
		"[users]\ns3cr3t-user-token = alice\n"
		"[type.report]\ncommand = /bin/sh -c 'echo \"a b\"; it'\\''s' x\n"
		"timeout = 1h\nretries = 2\n"
		"[type.noop]\nrestartable = yes\n"
		"[listener.mail]\nservice = crm\nevent = order.created\n"
		"command = /usr/bin/mail\norder = -3\n"
		"[action.tag]\ncommand = /bin/tag\nbatch = 20\n"
		"[relation.co]\nsource = companies\nlabel = name\n"
		"target = contacts\nref_field = company_id\n"
		"copy_field = company_name\n"
		"[sink.crm]\ncommand = /bin/sink --fast\n";
	struct jobd_conf *conf, *again;
	char *first, *second;

	conf = parse(text);
	ck_assert_msg(conf != NULL, "%s", errstr);
	first = written(conf);
	ck_assert_msg(!strstr(first, "s3cr3t"), "a secret is shown: %.60s",
		      strstr(first, "s3cr3t"));
	ck_assert_msg(strstr(first, "\npassword = (hidden)\n"), "%.3000s",
		      first);
	ck_assert_msg(strstr(first, "\nkafka.sasl.password = (hidden)\n"), "%s",
		      first);
	ck_assert_msg(strstr(first, "\n; (token hidden) = alice\n"), "%s",
		      first);
	ck_assert_msg(strstr(first, "\nroles = work,http\n"), "%.3000s", first);
	ck_assert_msg(strstr(first, "\nlease = 90s\nheartbeat = 250ms\n"), "%s",
		      first);
	ck_assert_msg(strstr(first, "\n; [type.exec] (built in)\n"), "%s",
		      first);
	again = parse(first);
	ck_assert_msg(again != NULL, "%s: %.3000s", errstr, first);
	ck_assert_str_eq(
		again->types[jobd_conf_type(again, "report") - again->types]
			.command[2],
		"echo \"a b\"; it's");
	/* Every key back as it was, the secrets as "(hidden)". */
	free(conf->redis_password);
	conf->redis_password = strdup("(hidden)");
	free(conf->http_token);
	conf->http_token = strdup("(hidden)");
	free(conf->kafka_props[0].value);
	conf->kafka_props[0].value = strdup("(hidden)");
	free(conf->users[0].key);
	free(conf->users[0].value);
	conf->users_count = 0;
	free(first);
	first = written(conf);
	second = written(again);
	{
		size_t at = 0;

		while (first[at] && first[at] == second[at])
			at++;
		ck_assert_msg(first[at] == second[at],
			      "read back differs at byte %zu: \"%.80s\" vs "
			      "\"%.80s\"",
			      at, first + at, second + at);
	}
	free(first);
	free(second);
	jobd_conf_free(again);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_conf_free_null_is_noop)
{
	jobd_conf_free(NULL);
	ck_assert_ptr_null(jobd_conf_type(NULL, "noop"));
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_conf_defaults_without_file);
	tcase_add_test(tc, test_conf_config_env_names_file);
	tcase_add_test(tc, test_conf_missing_file_refused);
	tcase_add_test(tc, test_conf_bad_duration_names_file_and_line);
	tcase_add_test(tc, test_conf_durations);
	tcase_add_test(tc, test_conf_sizes);
	tcase_add_test(tc, test_conf_values_parsed);
	tcase_add_test(tc, test_conf_booleans);
	tcase_add_test(tc, test_conf_log_level_and_format);
	tcase_add_test(
		tc, test_conf_reload_takes_types_and_tokens_and_names_the_rest);
	tcase_add_test(tc, test_conf_number_ranges_refused);
	tcase_add_test(tc, test_conf_http_limits_refused_out_of_range);
	tcase_add_test(tc, test_conf_topics_allowed);
	tcase_add_test(tc, test_conf_http_limit_keeps_descriptors_for_workers);
	tcase_add_test(tc, test_conf_lease_must_exceed_heartbeat);
	tcase_add_test(tc, test_conf_schedule_parsed_and_refused_by_line);
	tcase_add_test(tc, test_conf_repeated_sections_merge);
	tcase_add_test(tc, test_conf_unknown_key_warns);
	tcase_add_test(tc, test_conf_unknown_section_warns);
	tcase_add_test(tc, test_conf_comments_whitespace_and_crlf);
	tcase_add_test(tc, test_conf_syntax_errors_name_line);
	tcase_add_test(tc, test_conf_nul_byte_refused);
	tcase_add_test(tc, test_conf_empty_values);
	tcase_add_test(tc, test_conf_long_line);
	tcase_add_test(tc, test_conf_command_split_quotes);
	tcase_add_test(tc, test_conf_command_double_quote_escapes_like_sh);
	tcase_add_test(tc, test_conf_unterminated_quote_refused);
	tcase_add_test(tc, test_conf_exec_type_needs_command);
	tcase_add_test(tc, test_conf_unknown_handler_refused);
	tcase_add_test(tc, test_conf_types_override_and_add);
	tcase_add_test(tc, test_conf_roles);
	tcase_add_test(tc, test_conf_kafka_properties_pass_through);
	tcase_add_test(tc, test_conf_users_map_tokens);
	tcase_add_test(tc, test_conf_secrets_read_from_files);
	tcase_add_test(tc, test_conf_secret_file_refused_naming_key_and_file);
	tcase_add_test(tc, test_conf_secret_file_readable_by_others_warns);
	tcase_add_test(tc,
		       test_conf_config_with_secret_readable_by_others_warns);
	tcase_add_test(tc, test_conf_secret_file_relative_to_config);
	tcase_add_test(tc, test_conf_secrets_from_env_override_file);
	tcase_add_test(tc, test_conf_secret_is_a_property_of_the_key);
	tcase_add_test(tc, test_conf_tls_needs_cert_and_key);
	tcase_add_test(tc, test_conf_redis_tls_keys_and_address);
	tcase_add_test(tc, test_conf_listeners_sorted_by_order_then_name);
	tcase_add_test(tc, test_conf_incomplete_sections_refused);
	tcase_add_test(tc, test_conf_actions_and_relations);
	tcase_add_test(tc, test_conf_env_overrides_file);
	tcase_add_test(tc, test_conf_shipped_file_parses);
	tcase_add_test(tc, test_conf_shipped_samples_parse_when_uncommented);
	tcase_add_test(tc, test_conf_check_names_every_error_in_line_order);
	tcase_add_test(tc, test_conf_write_reads_back_the_same_without_secrets);
	tcase_add_test(tc, test_conf_free_null_is_noop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(conf_suite());
}
