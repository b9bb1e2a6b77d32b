/*
 * bench/driver: jobd's side of bench/run, outside the daemon.
 *
 * Creates jobs through jobd_store_create (the call the Kafka consumer
 * makes, with an idempotency key per job as the consumer gives one),
 * waits on the status counters, and reads the created_at/started_at of
 * jobs back for exact waiting-time percentiles. The Redis address comes
 * from JOBD_REDIS (as for jobd and jobctl).
 *
 *   driver create N BATCH RATE PAYLOAD PARENT KEYPREFIX IDSFILE
 *       creates N noop jobs, BATCH per call, RATE jobs/s (0 = as fast as
 *       Redis takes them; paced in 5 ms ticks), children of PARENT (0 =
 *       roots), keys KEYPREFIX-i; writes their ids to IDSFILE ("-" =
 *       nowhere). Prints "START_MS END_MS" (CLOCK_REALTIME).
 *   driver wait STATUS N TIMEOUT_MS
 *       polls the counters every 5 ms until STATUS (pending, finished...)
 *       counts at least N. Prints "FIRST_MS REACH_MS COUNT", FIRST_MS
 *       being when the count was first above 0. Exit 1 on timeout.
 *   driver times IDSFILE
 *       prints "ID CREATED_AT STARTED_AT FINISHED_AT" (ms, Redis clock,
 *       0 = not yet) per id, read with pipelined HMGETs.
 *
 * Direct hiredis calls (times) stay in this bench tool; jobd itself keeps
 * them in the store.
 */
#include "config.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/conf.h"
#include "base/job.h"
#include "store/store.h"

#define TICK_MS 5
#define PIPELINE 1000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static struct jobd_store *open_store(struct jobd_conf **confp)
{
	char errstr[512];
	struct jobd_conf *conf;
	struct jobd_store *st;

	conf = jobd_conf_load(NULL, errstr, sizeof(errstr));
	if (!conf) {
		fprintf(stderr, "driver: %s\n", errstr);
		return NULL;
	}
	st = jobd_store_new(conf, errstr, sizeof(errstr));
	if (!st) {
		fprintf(stderr, "driver: %s\n", errstr);
		jobd_conf_free(conf);
		return NULL;
	}
	jobd_store_set_timeout(st, 60000);
	*confp = conf;
	return st;
}

static int cmd_create(char **argv)
{
	int64_t n = atoll(argv[0]), batch = atoll(argv[1]);
	double rate = atof(argv[2]);
	const char *payload = argv[3], *prefix = argv[5], *idsfile = argv[6];
	int64_t parent = atoll(argv[4]), done = 0, start;
	struct jobd_conf *conf = NULL;
	struct jobd_store *st;
	struct jobd_spec *specs;
	struct jobd_created *out;
	char (*keys)[64];
	FILE *ids = NULL;
	int rc = 1;

	if (n < 1 || batch < 1)
		return 2;
	st = open_store(&conf);
	if (!st)
		return 1;
	specs = calloc((size_t)batch, sizeof(*specs));
	out = calloc((size_t)batch, sizeof(*out));
	keys = calloc((size_t)batch, sizeof(*keys));
	if (strcmp(idsfile, "-") != 0 && !(ids = fopen(idsfile, "w"))) {
		perror(idsfile);
		goto out;
	}
	start = now_ms();
	while (done < n) {
		int64_t want = n - done, k;

		if (rate > 0) {
			int64_t due = (int64_t)((double)(now_ms() - start) *
						rate / 1000.0) + 1;

			want = (due > n ? n : due) - done;
			if (want <= 0) {
				nap_ms(1);
				continue;
			}
		}
		k = want < batch ? want : batch;
		for (int64_t i = 0; i < k; i++) {
			snprintf(keys[i], sizeof(keys[i]), "%s-%" PRId64,
				 prefix, done + i);
			specs[i] = (struct jobd_spec){ .type = "noop",
						       .key = keys[i],
						       .payload = payload,
						       .parent = parent };
		}
		if (jobd_store_create(st, "bench", specs, (size_t)k, out) < 0) {
			fprintf(stderr, "driver: create: %s\n",
				jobd_store_errstr(st));
			goto out;
		}
		for (int64_t i = 0; i < k; i++) {
			if (out[i].error[0]) {
				fprintf(stderr, "driver: refused: %s\n",
					out[i].error);
				goto out;
			}
			if (ids)
				fprintf(ids, "%" PRId64 "\n", out[i].id);
		}
		done += k;
		if (rate > 0 && done < n)
			nap_ms(TICK_MS);
	}
	printf("%" PRId64 " %" PRId64 "\n", start, now_ms());
	rc = 0;
out:
	if (ids)
		fclose(ids);
	free(keys);
	free(out);
	free(specs);
	jobd_store_free(st);
	jobd_conf_free(conf);
	return rc;
}

static int cmd_wait(char **argv)
{
	int64_t n = atoll(argv[1]), timeout = atoll(argv[2]), first = 0;
	int64_t counts[JOBD_STATUS_COUNT], start = now_ms(), t;
	struct jobd_conf *conf = NULL;
	struct jobd_store *st;
	int status = -1, rc = 1;

	status = jobd_status_parse(argv[0]);
	if (status < 0) {
		fprintf(stderr, "driver: unknown status \"%s\"\n", argv[0]);
		return 2;
	}
	st = open_store(&conf);
	if (!st)
		return 1;
	for (;;) {
		if (jobd_store_counts(st, counts) < 0) {
			fprintf(stderr, "driver: counts: %s\n",
				jobd_store_errstr(st));
			break;
		}
		t = now_ms();
		if (!first && counts[status] > 0)
			first = t;
		if (counts[status] >= n) {
			printf("%" PRId64 " %" PRId64 " %" PRId64 "\n", first,
			       t, counts[status]);
			rc = 0;
			break;
		}
		if (t - start > timeout) {
			printf("%" PRId64 " %" PRId64 " %" PRId64 "\n", first,
			       t, counts[status]);
			break;
		}
		nap_ms(TICK_MS);
	}
	jobd_store_free(st);
	jobd_conf_free(conf);
	return rc;
}

static int64_t field(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
}

static int cmd_times(char **argv)
{
	const char *addr = getenv("JOBD_REDIS");
	int64_t *ids = NULL, id;
	size_t n = 0, cap = 0;
	redisContext *c;
	FILE *f;

	f = fopen(argv[0], "r");
	if (!f) {
		perror(argv[0]);
		return 1;
	}
	while (fscanf(f, "%" SCNd64, &id) == 1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				return 1;
		}
		ids[n++] = id;
	}
	fclose(f);
	if (!addr)
		addr = "127.0.0.1:6379";
	if (addr[0] == '/') {
		c = redisConnectUnix(addr);
	} else {
		char host[256];
		const char *colon = strrchr(addr, ':');

		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		c = redisConnect(host, atoi(colon + 1));
	}
	if (!c || c->err) {
		fprintf(stderr, "driver: cannot connect to %s\n", addr);
		return 1;
	}
	for (size_t i = 0; i < n; i += PIPELINE) {
		size_t k = n - i < PIPELINE ? n - i : PIPELINE;

		for (size_t j = 0; j < k; j++)
			redisAppendCommand(c,
					   "HMGET jobd:job:%" PRId64
					   " created_at started_at finished_at",
					   ids[i + j]);
		for (size_t j = 0; j < k; j++) {
			redisReply *r;

			if (redisGetReply(c, (void **)&r) != REDIS_OK || !r ||
			    r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
				fprintf(stderr, "driver: bad HMGET reply\n");
				return 1;
			}
			printf("%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
			       "\n",
			       ids[i + j], field(r->element[0]),
			       field(r->element[1]), field(r->element[2]));
			freeReplyObject(r);
		}
	}
	redisFree(c);
	free(ids);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 9 && strcmp(argv[1], "create") == 0)
		return cmd_create(argv + 2);
	if (argc == 5 && strcmp(argv[1], "wait") == 0)
		return cmd_wait(argv + 2);
	if (argc == 3 && strcmp(argv[1], "times") == 0)
		return cmd_times(argv + 2);
	fprintf(stderr,
		"usage: driver create N BATCH RATE PAYLOAD PARENT KEYPREFIX IDSFILE\n"
		"       driver wait STATUS N TIMEOUT_MS\n"
		"       driver times IDSFILE\n");
	return 2;
}
