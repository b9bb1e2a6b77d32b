/*
 * testutil: helpers for Check test programs that need real services.
 *
 * A test program that needs Redis starts one private redis-server in its
 * main(), before running the suite, and stops it afterwards:
 *
 *	r = jobd_test_redis_start();
 *	if (!r)
 *		jobd_test_skip_or_fail("redis-server not available");
 *	rc = jobd_test_run_suite(suite());
 *	jobd_test_redis_stop(r);
 *	return rc;
 *
 * The server is a child of the test program and dies with it whatever
 * happens: a normal exit, SIGTERM/SIGINT/SIGHUP, or a crash.
 */
#ifndef JOBD_TESTS_TESTUTIL_H
#define JOBD_TESTS_TESTUTIL_H

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

struct jobd_test_redis;

/*
 * Starts a private redis-server: foreground child process (killed by the
 * kernel if the test program dies), unix socket in a fresh temp dir, port 0,
 * no persistence. Waits until it answers PING. Returns NULL and prints why
 * when redis-server is missing or does not start; callers then call
 * jobd_test_skip_or_fail(). Caller stops it with jobd_test_redis_stop().
 * Call it from main(), not from a forked test.
 */
struct jobd_test_redis *jobd_test_redis_start(void);

/* The unix socket path; borrowed, valid until jobd_test_redis_stop(). */
const char *jobd_test_redis_address(const struct jobd_test_redis *r);

/*
 * FLUSHALL over a raw socket. Call it from a test or fixture: a failure
 * fails the current test.
 */
void jobd_test_redis_flush(struct jobd_test_redis *r);

/*
 * Kills the server, waits for it and removes its temp dir; frees R. NULL
 * is a no-op. Only the process that started R acts on it, so a forked
 * Check test that calls this (or exits) leaves the server alone.
 */
void jobd_test_redis_stop(struct jobd_test_redis *r);

/*
 * librdkafka's mock cluster of one broker, for tests of the Kafka wrapper
 * (no external broker in unit tests). The test drives it with librdkafka's
 * mock API (topics, errors, a broker down); the code under test reaches it
 * at rd_kafka_mock_cluster_bootstraps(MC).
 */
struct jobd_test_mock {
	rd_kafka_t *rk;		     /* the handle that owns the cluster */
	rd_kafka_mock_cluster_t *mc; /* the cluster */
};

/* Starts M's cluster; a failure fails the current test. */
void jobd_test_mock_start(struct jobd_test_mock *m);

/* Stops M's cluster, if started, and clears M. */
void jobd_test_mock_stop(struct jobd_test_mock *m);

/*
 * A needed service is missing: exit(77) (automake's "skip") unless $CI is
 * "true", then exit(1), because a missing service fails CI. Prints WHY.
 */
void jobd_test_skip_or_fail(const char *why) __attribute__((noreturn));

/*
 * Runs suite S (taken: freed here) with fork mode and verbosity from the
 * environment (CK_FORK, CK_VERBOSITY). Returns the exit status for main():
 * 0 if every test passed, else 1.
 */
int jobd_test_run_suite(Suite *s);

/*
 * A new test case NAME of S with the checked fixture SETUP and TEARDOWN
 * (each may be NULL) and a timeout of TIMEOUT s; S owns it.
 */
TCase *jobd_test_tcase(Suite *s, const char *name, void (*setup)(void),
		       void (*teardown)(void), int timeout);

/*
 * The main() of a program whose tests need Redis, as above: starts a
 * private redis-server into *R (or skips or fails through
 * jobd_test_skip_or_fail), runs the suite SUITE() makes and stops the
 * server. Returns the exit status for main().
 */
int jobd_test_run_suite_with_redis(Suite *(*suite)(void),
				   struct jobd_test_redis **r);

/*
 * A fresh directory from mkdtemp under $TMPDIR or /tmp. Returns NULL on
 * error (errno set); caller frees the string and removes the directory
 * with jobd_test_rmrf().
 */
char *jobd_test_tmpdir(void);

/* Removes DIR and everything below it; symlinks are not followed. */
void jobd_test_rmrf(const char *dir);

struct jobd_conf;
struct jobd_store;
struct jobd_workers;
struct jobd_job;

/* A worker pool of jobd's on a test's Redis, with a store of the test's. */
struct jobd_test_pool {
	struct jobd_conf *conf;
	struct jobd_store *st;
	struct jobd_workers *pool;
};

/*
 * Flushes R, parses TEXT (a whole conf, its [redis] address pointing at
 * R), opens a store, registers the built-in handlers and starts a worker
 * pool into *P; a failure fails the test. Register a test's own handlers
 * before, or after if the pool has no job of theirs yet.
 */
void jobd_test_pool_start(struct jobd_test_pool *p, struct jobd_test_redis *r,
			  const char *text);

/* Stops the pool and frees what jobd_test_pool_start() made. */
void jobd_test_pool_stop(struct jobd_test_pool *p);

/* Job ID as the store reads it (caller frees); fails the test if absent. */
struct jobd_job *jobd_test_job(struct jobd_store *st, long long id);

/* Sleeps MS milliseconds. */
void jobd_test_sleep_ms(int ms);

#endif
