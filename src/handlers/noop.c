/*
 * noop: the built-in "noop" handler, for demos, benchmarks and tests.
 *
 * Payload fields, all optional: "steps" (default 1), "sleep_ms" per step
 * (default 0), "errors" (errors to report in the first step), "fail": true
 * (fail at the end), "fail_attempts": N (fail while the attempt is <= N),
 * "uninterruptible": true (the whole run), "children": N (spawned first,
 * keys "c0".., of "child_type", default the job's own type, with payload
 * "child_payload", default {}, scheduled "child_delay_ms" after their
 * creation, default at once; SPAWN_BATCH to a Redis call, with a stop
 * honoured between calls). Progress and a checkpoint {"spawned",
 * "step", "acc"} after every step; honours stop between steps; "acc" sums
 * a function of each step, so a resumed run ends with the same value as
 * an uninterrupted one.
 */
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/handler.h"
#include "handlers/builtin.h"
#include "handlers/common.h"

/* Children created per Redis call, and between two looks for a stop. */
#define SPAWN_BATCH 100

static void noop_checkpoint(struct jobd_ctx *ctx, int64_t spawned, int64_t step,
			    int64_t acc)
{
	char buf[128];

	snprintf(buf, sizeof(buf),
		 "{\"spawned\":%lld,\"step\":%lld,\"acc\":%lld}",
		 (long long)spawned, (long long)step, (long long)acc);
	jobd_ctx_save_checkpoint(ctx, buf);
}

int jobd_handler_noop(struct jobd_ctx *ctx)
{
	json_t *p, *ck = NULL;
	json_error_t e;
	const char *ckt = jobd_ctx_checkpoint(ctx);
	const char *child_type;
	char *child_payload = NULL;
	int64_t steps, sleep_ms_, errors, children, fail_attempts, child_delay;
	int64_t spawned = 0, step = 0, acc = 0;
	bool fail, unint;
	int rc = JOBD_HANDLER_DONE;

	p = json_loads(jobd_ctx_payload(ctx), 0, &e);
	if (!json_is_object(p)) {
		json_decref(p);
		return jobd_ctx_fail(ctx, "noop: payload is not a JSON object");
	}
	steps = jobd_handlers_int(p, "steps", 1);
	sleep_ms_ = jobd_handlers_int(p, "sleep_ms", 0);
	errors = jobd_handlers_int(p, "errors", 0);
	children = jobd_handlers_int(p, "children", 0);
	child_delay = jobd_handlers_int(p, "child_delay_ms", 0);
	fail_attempts = jobd_handlers_int(p, "fail_attempts", 0);
	fail = json_is_true(json_object_get(p, "fail"));
	unint = json_is_true(json_object_get(p, "uninterruptible"));
	child_type = json_string_value(json_object_get(p, "child_type"));
	if (!child_type)
		child_type = jobd_ctx_type(ctx);
	if (json_object_get(p, "child_payload"))
		child_payload = json_dumps(json_object_get(p, "child_payload"),
					   JSON_COMPACT | JSON_ENCODE_ANY);
	if (ckt)
		ck = json_loads(ckt, 0, &e);
	if (json_is_object(ck)) {
		spawned = jobd_handlers_int(ck, "spawned", 0);
		step = jobd_handlers_int(ck, "step", 0);
		acc = jobd_handlers_int(ck, "acc", 0);
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "noop: resuming at step %lld of %lld",
			     (long long)step, (long long)steps);
	}
	json_decref(ck);

	if (unint)
		jobd_ctx_uninterruptible_begin(ctx);
	while (spawned < children) {
		struct jobd_ctx_child batch[SPAWN_BATCH];
		char keys[SPAWN_BATCH][32];
		size_t n = 0;

		if (jobd_ctx_stop_requested(ctx)) {
			rc = JOBD_HANDLER_STOPPED;
			goto out;
		}
		for (; n < SPAWN_BATCH && spawned + (int64_t)n < children;
		     n++) {
			snprintf(keys[n], sizeof(keys[n]), "c%lld",
				 (long long)(spawned + (int64_t)n));
			batch[n] = (struct jobd_ctx_child){
				.type = child_type,
				.key = keys[n],
				.payload = child_payload,
				.delay = child_delay,
			};
		}
		/* A refused child (its reason logged) is skipped, as before. */
		if (jobd_ctx_spawn_many(ctx, batch, n, NULL, NULL) ==
		    JOBD_CTX_ERR_ABANDONED) {
			rc = JOBD_HANDLER_STOPPED;
			goto out;
		}
		spawned += (int64_t)n;
		noop_checkpoint(ctx, spawned, step, acc);
	}
	for (; step < steps; step++) {
		if (jobd_ctx_stop_requested(ctx)) {
			rc = JOBD_HANDLER_STOPPED;
			goto out;
		}
		if (step == 0)
			for (int64_t i = 0; i < errors; i++)
				jobd_ctx_error(ctx, "noop: error %lld of %lld",
					       (long long)i + 1,
					       (long long)errors);
		/* An interrupted step did not happen: resume redoes it. */
		if (sleep_ms_ > 0 && !jobd_ctx_sleep(ctx, sleep_ms_)) {
			rc = JOBD_HANDLER_STOPPED;
			goto out;
		}
		acc = (acc * 31 + step + 1) % 1000000007;
		/* A one-step job has nothing to resume: the true no-op that
		 * benchmarks run writes nothing but its finish. */
		if (steps > 1 || children > 0)
			noop_checkpoint(ctx, spawned, step + 1, acc);
		jobd_ctx_progress_of(ctx, step + 1, steps);
	}
	if (steps > 1 || children > 0)
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "noop: done %lld steps, acc %lld",
			     (long long)steps, (long long)acc);
	if (fail || jobd_ctx_attempt(ctx) <= fail_attempts)
		rc = jobd_ctx_fail(ctx,
				   "noop: failing on request (attempt %lld)",
				   (long long)jobd_ctx_attempt(ctx));
out:
	if (unint)
		jobd_ctx_uninterruptible_end(ctx);
	free(child_payload);
	json_decref(p);
	return rc;
}
