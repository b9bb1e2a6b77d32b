/*
 * module_driver: one fixed run of creates, claims, finishes and
 * operations through the store API, for tests/equivalence/module.sh, which runs it
 * against a Redis with jobd's module and one without and compares
 * everything both leave in Redis. It touches every path of the module
 * and every hand-off to the Lua functions: roots with and without keys
 * (repeated within a batch and across batches), system, low-priority,
 * non-stoppable and retried types, children (Lua), a root with children
 * in the claim order (Lua), a due retry (Lua), jobs with a run time
 * (Lua), failed and fenced
 * finishes, a finish while stopping. Prints what each call answered:
 * that must match too.
 */
#include "config.h"

#include "base/conf.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLAIM 200

static struct jobd_store *st;
static struct jobd_claim running[1000];
static char types[1000][16];
static size_t nrunning;

static void die(const char *what)
{
	fprintf(stderr, "module_driver: %s: %s\n", what, jobd_store_errstr(st));
	exit(1);
}

static void create(const struct jobd_spec *specs, size_t n)
{
	struct jobd_created out[64];

	if (jobd_store_create(st, "driver", specs, n, out) < 0)
		die("create");
	printf("create:");
	for (size_t i = 0; i < n; i++)
		if (out[i].error[0])
			printf(" [%s]", out[i].error);
		else
			printf(" %lld%s", (long long)out[i].id,
			       out[i].existed ? "=" : "");
	printf("\n");
}

/* Claims up to MAX (MAX_LOW low priority); returns how many. */
static size_t claim(int max, int max_low)
{
	struct jobd_claim *cl;
	size_t n;

	if (jobd_store_claim(st, "driver", max, max_low, 60000, &cl, &n) < 0)
		die("claim");
	printf("claim %d/%d:", max, max_low);
	for (size_t i = 0; i < n; i++) {
		printf(" %lld.%lld(%s%s)", (long long)cl[i].id,
		       (long long)cl[i].attempt, cl[i].type,
		       cl[i].low_priority ? ",low" : "");
		running[nrunning] = cl[i];
		snprintf(types[nrunning], sizeof(types[0]), "%s", cl[i].type);
		running[nrunning].type = NULL;
		running[nrunning].payload = NULL;
		running[nrunning].checkpoint = NULL;
		nrunning++;
	}
	printf("\n");
	jobd_store_claims_free(cl, n);
	return n;
}

static const struct jobd_claim *find(int64_t id)
{
	for (size_t i = 0; i < nrunning; i++)
		if (running[i].id == id)
			return &running[i];
	fprintf(stderr, "module_driver: job %lld was not claimed\n",
		(long long)id);
	exit(1);
}

static void finish(const struct jobd_report *rep, size_t n)
{
	enum jobd_result res[64];

	if (jobd_store_finish(st, rep, n, res) < 0)
		die("finish");
	printf("finish:");
	for (size_t i = 0; i < n; i++)
		printf(" %lld:%d", (long long)rep[i].id, (int)res[i]);
	printf("\n");
}

static struct jobd_report done(int64_t id, double progress)
{
	const struct jobd_claim *c = find(id);

	return (struct jobd_report){ .id = id,
				     .attempt = c->attempt,
				     .progress = progress,
				     .outcome = JOBD_OUTCOME_DONE };
}

/* Finishes every claimed job not finished yet, done at 100 %. */
static void finish_rest(void)
{
	struct jobd_report rep[64];
	size_t n = 0;

	for (size_t i = 0; i < nrunning; i++) {
		if (running[i].id == 0)
			continue;
		rep[n++] = done(running[i].id, 100);
		running[i].id = 0;
		if (n == 64) {
			finish(rep, n);
			n = 0;
		}
	}
	if (n)
		finish(rep, n);
}

static void op(enum jobd_op what, int64_t id)
{
	struct jobd_op_result out;

	if (jobd_store_op(st, what, "driver", &id, 1, &out) < 0)
		die("op");
	printf("op %s %lld: %s\n", jobd_op_names[what], (long long)id,
	       out.error[0] ? out.error : "ok");
}

/* A claimed job of TYPE not finished yet, 0 if none. */
static int64_t running_of(const char *type)
{
	for (size_t i = 0; i < nrunning; i++)
		if (running[i].id && strcmp(types[i], type) == 0)
			return running[i].id;
	return 0;
}

static void forget(int64_t id)
{
	for (size_t i = 0; i < nrunning; i++)
		if (running[i].id == id)
			running[i].id = 0;
}

int main(void)
{
	char err[512], keys[80][16];
	struct jobd_conf *conf = jobd_conf_load(NULL, err, sizeof(err));
	struct jobd_spec a[50], b[3], kids[3];
	struct jobd_report rep[8];
	int64_t id[3];
	size_t n = 0;

	if (!conf || !(st = jobd_store_new(conf, err, sizeof(err)))) {
		fprintf(stderr, "module_driver: %s\n", err);
		return 1;
	}
	/* Roots of every kind, 40 plain ones to pass the bulk paths. */
	a[n++] = (struct jobd_spec){ .type = "noop",
				     .key = "a1",
				     .run_by = "alice" };
	a[n++] = (struct jobd_spec){ .type = "noop",
				     .key = "a2",
				     .low_priority = true };
	a[n++] = (struct jobd_spec){ .type = "sys",
				     .key = "s1",
				     .run_by = "bob" };
	a[n++] = (struct jobd_spec){ .type = "fixed" };
	a[n++] = (struct jobd_spec){ .type = "flaky",
				     .key = "f1",
				     .payload = "{\"x\":1}",
				     .source = "jobs.events/0@5" };
	a[n++] = (struct jobd_spec){ .type = "noop", .key = "a1" };
	a[n++] = (struct jobd_spec){ .type = "noop",
				     .key = "p1",
				     .run_by = "alice" };
	for (int i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof(keys[i]), "n%d", i);
		a[n++] = (struct jobd_spec){ .type = "noop", .key = keys[i] };
	}
	/* A key longer than a bucket's listpack value (64 bytes) is mapped
	 * by its digest; repeated, it finds its job. */
	for (int i = 0; i < 2; i++)
		a[n++] = (struct jobd_spec){
			.type = "noop",
			.key = "long-key-of-more-than-sixty-four-bytes-"
			       "0123456789012345678901234567890123456789"
		};
	create(a, n);
	b[0] = (struct jobd_spec){ .type = "noop", .key = "a2" };
	b[1] = (struct jobd_spec){ .type = "noop",
				   .key = "b1",
				   .low_priority = true };
	b[2] = (struct jobd_spec){ .type = "sys" };
	create(b, 3);
	/* Run times: a batch with one goes to create.lua whole; one in an
	 * hour waits in P:delayed through the run, one past runs now. */
	b[0] = (struct jobd_spec){ .type = "noop",
				   .key = "t1",
				   .delay = 3600000 };
	b[1] = (struct jobd_spec){ .type = "noop", .key = "t2", .run_at = 1 };
	b[2] = (struct jobd_spec){ .type = "sys", .run_at = 4102444800000 };
	create(b, 3);

	/* Lone roots, in the module where there is one. */
	claim(3, 0);
	id[0] = running[0].id;
	id[1] = running[1].id;
	id[2] = running[2].id;
	/* Done; done with progress, errors and a checkpoint; a stop while
	 * it runs, then done from stopping; an old attempt (fenced). */
	op(JOBD_OP_STOP, id[2]);
	rep[0] = done(id[0], 100);
	rep[1] = done(id[1], 33.3);
	rep[1].errors = 2;
	rep[1].checkpoint = "{\"at\":1}";
	rep[2] = done(id[2], 100);
	rep[3] = done(id[0], 100);
	finish(rep, 3);
	finish(rep + 3, 1);
	forget(id[0]);
	forget(id[1]);
	forget(id[2]);
	/* A finished parent takes no children (the Lua function says so);
	 * a pending root becomes a queue of its own with its children. */
	kids[0] = (struct jobd_spec){ .type = "noop", .parent = id[0] };
	create(kids, 1);
	for (int i = 0; i < 3; i++)
		kids[i] = (struct jobd_spec){ .type = "noop",
					      .key = i == 0 ? "k0" : NULL,
					      .parent = 7 };
	create(kids, 3);
	/* That queue comes first: claim.lua claims, the module hands on. */
	claim(60, 2);
	/* Failed: retried (Lua); a wrong attempt of a running job. */
	rep[0] = done(running_of("flaky"), -1);
	rep[0].outcome = JOBD_OUTCOME_FAILED;
	rep[0].message = "boom";
	rep[1] = done(running_of("noop"), 50);
	rep[1].attempt = 9;
	finish(rep, 2);
	forget(rep[0].id);
	finish_rest();
	/* New roots, two of low priority; the retry is due after its
	 * backoff, and claim.lua moves it. */
	n = 0;
	for (int i = 0; i < 40; i++) {
		snprintf(keys[40 + i], sizeof(keys[40 + i]), "c%d", i);
		a[n++] = (struct jobd_spec){ .type = "noop",
					     .key = keys[40 + i],
					     .low_priority = i < 2 };
	}
	create(a, n);
	nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
	claim(5, 0);
	finish_rest();
	while (claim(20, 2) > 0)
		finish_rest();
	jobd_store_free(st);
	jobd_conf_free(conf);
	return 0;
}
