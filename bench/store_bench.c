/*
 * store_bench: drives the job store the way the engine does, for
 * bench/store. "create N" creates N noop root jobs in batches of BATCH
 * (jobd_store_create); "run N" claims and finishes them in batches
 * (jobd_store_claim, jobd_store_finish with outcome done) until N jobs are
 * finished. "parent" creates a noop root job and claims it, as a handler
 * that spawns runs, and prints its id; "children N" then creates N noop
 * children of the job JOBD_BENCH_PARENT names, BATCH to a call, as
 * jobd_ctx_spawn (a call each) and jobd_ctx_spawn_many (up to
 * JOBD_STORE_BATCH a call) do. Prints the wall time of the phase;
 * bench/store measures the Redis CPU around each phase. JOBD_REDIS names
 * the server; JOBD_BENCH_BATCH sets BATCH (1-200, default 200: the
 * engine's claims under light load are far smaller; for "children"
 * 1-JOBD_STORE_BATCH). Keys carry the process id, so a second "create"
 * into the same Redis makes new jobs. JOBD_BENCH_SHARDS=S drives a store
 * across S shards instead (bench/store-cluster).
 */
#include "config.h"

#include "base/conf.h"
#include "base/util.h"
#include "store/store.h"
#include "store/store_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX 200

static size_t batch = BATCH_MAX;

/* A noop root job, claimed: the parent "children" creates children of. */
static int make_parent(struct jobd_store *st)
{
	struct jobd_spec spec = { .type = "noop" };
	struct jobd_created out;
	struct jobd_claim *cl;
	size_t k;

	if (jobd_store_create(st, "bench", &spec, 1, &out) < 0 || out.id == 0 ||
	    jobd_store_claim(st, "bench-1", 1, 0, 600000, &cl, &k) < 0 ||
	    k != 1 || cl[0].id != out.id) {
		fprintf(stderr, "store_bench: parent: %s%s\n",
			jobd_store_errstr(st), out.error);
		return -1;
	}
	jobd_store_claims_free(cl, k);
	printf("%lld\n", (long long)out.id);
	return 0;
}

static int create_children(struct jobd_store *st, int64_t parent, long n)
{
	static struct jobd_spec specs[JOBD_STORE_BATCH];
	static struct jobd_created out[JOBD_STORE_BATCH];
	static char keys[JOBD_STORE_BATCH][48];

	for (long done = 0; done < n;) {
		size_t k = n - done < (long)batch ? (size_t)(n - done) : batch;

		for (size_t i = 0; i < k; i++) {
			snprintf(keys[i], sizeof(keys[i]), "c%ld",
				 done + (long)i);
			specs[i] = (struct jobd_spec){ .type = "noop",
						       .key = keys[i],
						       .parent = parent };
		}
		if (jobd_store_create(st, "bench", specs, k, out) < 0) {
			fprintf(stderr, "store_bench: children: %s\n",
				jobd_store_errstr(st));
			return -1;
		}
		for (size_t i = 0; i < k; i++)
			if (out[i].error[0] || out[i].existed) {
				fprintf(stderr, "store_bench: child %ld: %s\n",
					done + (long)i,
					out[i].existed ? "existed" :
							 out[i].error);
				return -1;
			}
		done += (long)k;
	}
	return 0;
}

static int create_jobs(struct jobd_store *st, long n)
{
	struct jobd_spec specs[BATCH_MAX];
	struct jobd_created out[BATCH_MAX];
	char keys[BATCH_MAX][48];
	static long seq;

	for (long done = 0; done < n;) {
		size_t k = n - done < (long)batch ? (size_t)(n - done) : batch;

		for (size_t i = 0; i < k; i++) {
			/* Every create carries a key, as the consumers do. */
			snprintf(keys[i], sizeof(keys[i]), "bench-%ld-%ld",
				 (long)getpid(), ++seq);
			specs[i] = (struct jobd_spec){ .type = "noop",
						       .key = keys[i] };
		}
		if (jobd_store_create(st, "bench", specs, k, out) < 0) {
			fprintf(stderr, "store_bench: create: %s\n",
				jobd_store_errstr(st));
			return -1;
		}
		for (size_t i = 0; i < k; i++)
			if (out[i].error[0]) {
				fprintf(stderr, "store_bench: create: %s\n",
					out[i].error);
				return -1;
			}
		done += (long)k;
	}
	return 0;
}

static int run_jobs(struct jobd_store *st, long n)
{
	struct jobd_report rep[BATCH_MAX];
	enum jobd_result res[BATCH_MAX];
	long finished = 0;
	int64_t claim_ms = 0, finish_ms = 0, t;

	while (finished < n) {
		struct jobd_claim *cl;
		size_t k;

		t = jobd_util_mono_ms();
		if (jobd_store_claim(st, "bench-1", (int)batch, 0, 60000, &cl,
				     &k) < 0) {
			fprintf(stderr, "store_bench: claim: %s\n",
				jobd_store_errstr(st));
			return -1;
		}
		if (k == 0) {
			fprintf(stderr,
				"store_bench: nothing to claim after %ld\n",
				finished);
			return -1;
		}
		for (size_t i = 0; i < k; i++)
			rep[i] = (struct jobd_report){
				.id = cl[i].id,
				.attempt = cl[i].attempt,
				.progress = 100,
				.outcome = JOBD_OUTCOME_DONE
			};
		jobd_store_claims_free(cl, k);
		claim_ms += jobd_util_mono_ms() - t;
		t = jobd_util_mono_ms();
		if (jobd_store_finish(st, rep, k, res) < 0) {
			fprintf(stderr, "store_bench: finish: %s\n",
				jobd_store_errstr(st));
			return -1;
		}
		for (size_t i = 0; i < k; i++)
			if (res[i] != JOBD_RESULT_FINISHED) {
				fprintf(stderr,
					"store_bench: job %lld not finished (%d)\n",
					(long long)rep[i].id, (int)res[i]);
				return -1;
			}
		finish_ms += jobd_util_mono_ms() - t;
		finished += (long)k;
	}
	/* The split, for bench/store to print (stderr: not the result). */
	fprintf(stderr, "claim %lld ms, finish %lld ms\n", (long long)claim_ms,
		(long long)finish_ms);
	return 0;
}

int main(int argc, char **argv)
{
	struct jobd_conf *conf;
	struct jobd_store *st;
	char err[512];
	int64_t t0;
	long n;
	int rc;

	bool kids = argc == 3 && strcmp(argv[1], "children") == 0;
	long batch_max = kids ? JOBD_STORE_BATCH : BATCH_MAX;

	if (!(argc == 2 && strcmp(argv[1], "parent") == 0) &&
	    !(argc == 3 && (kids || strcmp(argv[1], "create") == 0 ||
			    strcmp(argv[1], "run") == 0))) {
		fprintf(stderr,
			"usage: store_bench create|run|children N | parent\n");
		return 2;
	}
	n = argc == 3 ? atol(argv[2]) : 0;
	if (argc == 3 && getenv("JOBD_BENCH_BATCH")) {
		long b = atol(getenv("JOBD_BENCH_BATCH"));

		if (b < 1 || b > batch_max) {
			fprintf(stderr,
				"store_bench: JOBD_BENCH_BATCH must be "
				"1-%ld\n",
				batch_max);
			return 2;
		}
		batch = (size_t)b;
	}
	if (kids && !(getenv("JOBD_BENCH_PARENT") &&
		      atoll(getenv("JOBD_BENCH_PARENT")) > 0)) {
		fprintf(stderr, "store_bench: children: JOBD_BENCH_PARENT "
				"must name the parent's id\n");
		return 2;
	}
	conf = jobd_conf_load(NULL, err, sizeof(err));
	if (!conf) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 2;
	}
	/* JOBD_BENCH_SHARDS=S: a store across S shards (src/store/shards.c)
	 * on the prefix's, for bench/store-cluster. */
	st = getenv("JOBD_BENCH_SHARDS") ?
		     store_shards_new(conf, atoi(getenv("JOBD_BENCH_SHARDS")),
				      err, sizeof(err)) :
		     jobd_store_new(conf, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 3;
	}
	/* Generous: under callgrind (bench/store-instr) a call is slow. */
	jobd_store_set_timeout(st, 600000);
	t0 = jobd_util_mono_ms();
	if (strcmp(argv[1], "parent") == 0)
		rc = make_parent(st);
	else if (kids)
		rc = create_children(st, atoll(getenv("JOBD_BENCH_PARENT")), n);
	else if (strcmp(argv[1], "create") == 0)
		rc = create_jobs(st, n);
	else
		rc = run_jobs(st, n);
	if (strcmp(argv[1], "parent") != 0)
		printf("%lld\n", (long long)(jobd_util_mono_ms() - t0));
	jobd_store_free(st);
	jobd_conf_free(conf);
	return rc < 0 ? 1 : 0;
}
