/*
 * handlers/common: what every built-in handler uses (common.h): the
 * worker thread's store, retrying while Redis is away, the payload and
 * the checkpoint as JSON.
 */
#include "config.h"

#include "handlers/common.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct jobd_store *jobd_handlers_store(struct jobd_ctx *ctx)
{
	struct jobd_store *st;
	int64_t backoff = 0;

	while (!(st = jobd_ctx_store(ctx))) {
		backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
					    BACKOFF_MAX_MS);
		if (!jobd_ctx_sleep(ctx, backoff)) {
			jobd_ctx_fail(ctx, "cannot connect to redis");
			return NULL;
		}
	}
	return st;
}

bool jobd_handlers_retry(struct jobd_ctx *ctx, struct jobd_store *st,
			 int64_t *backoff)
{
	*backoff = jobd_util_backoff(*backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	jobd_warn("job %" PRId64 ": %s (retrying in %" PRId64 " ms)",
		  jobd_ctx_job_id(ctx), jobd_store_errstr(st), *backoff);
	return jobd_ctx_sleep(ctx, *backoff);
}

json_t *jobd_handlers_payload(struct jobd_ctx *ctx, const char *what)
{
	json_error_t e;
	json_t *p = json_loads(jobd_ctx_payload(ctx), 0, &e);

	if (!json_is_object(p)) {
		json_decref(p);
		jobd_ctx_fail(ctx, "%s: the payload is not a JSON object",
			      what);
		return NULL;
	}
	return p;
}

json_t *jobd_handlers_checkpoint(struct jobd_ctx *ctx)
{
	const char *ck = jobd_ctx_checkpoint(ctx);
	json_error_t e;
	json_t *v;

	if (!ck)
		return NULL;
	v = json_loads(ck, 0, &e);
	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

void jobd_handlers_save(struct jobd_ctx *ctx, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!s)
		abort();
	jobd_ctx_save_checkpoint(ctx, s);
	free(s);
}

const char *jobd_handlers_str(const json_t *obj, const char *key,
			      const char *def)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : def;
}

int64_t jobd_handlers_int(const json_t *obj, const char *key, int64_t def)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return def;
}

struct jobd_handlers_spawner {
	struct jobd_ctx_child kids[JOBD_STORE_BATCH]; /* the held children */
	char *keys[JOBD_STORE_BATCH];		      /* owned */
	char *payloads[JOBD_STORE_BATCH];	      /* owned JSON text */
	size_t n;				      /* children held */
	size_t batch;	  /* children the batch being filled takes */
	int64_t first;	  /* the number of kids[0] */
	const char *what; /* borrowed: "cannot create part" */
};

struct jobd_handlers_spawner *jobd_handlers_spawner_new(int64_t next,
							const char *what)
{
	struct jobd_handlers_spawner *sp = calloc(1, sizeof(*sp));

	if (!sp)
		abort();
	sp->batch = 1;
	sp->first = next;
	sp->what = what;
	return sp;
}

static void spawner_clear(struct jobd_handlers_spawner *sp)
{
	for (size_t i = 0; i < sp->n; i++) {
		free(sp->keys[i]);
		free(sp->payloads[i]);
	}
	sp->first += (int64_t)sp->n;
	sp->n = 0;
}

void jobd_handlers_spawner_free(struct jobd_handlers_spawner *sp)
{
	if (!sp)
		return;
	spawner_clear(sp);
	free(sp);
}

bool jobd_handlers_spawner_add(struct jobd_handlers_spawner *sp,
			       const char *type, const char *key,
			       const json_t *payload)
{
	size_t i = sp->n++;

	sp->keys[i] = strdup(key);
	sp->payloads[i] =
		json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!sp->keys[i] || !sp->payloads[i])
		abort();
	sp->kids[i] = (struct jobd_ctx_child){ .type = type,
					       .key = sp->keys[i],
					       .payload = sp->payloads[i] };
	return sp->n >= sp->batch;
}

int64_t jobd_handlers_spawner_next(const struct jobd_handlers_spawner *sp)
{
	return sp->first + (int64_t)sp->n;
}

int jobd_handlers_spawner_flush(struct jobd_ctx *ctx,
				struct jobd_handlers_spawner *sp,
				const json_t *ck)
{
	int64_t first = sp->first;
	size_t bad = 0;
	int rc;

	if (sp->n == 0)
		return JOBD_HANDLER_DONE;
	rc = jobd_ctx_spawn_many(ctx, sp->kids, sp->n, NULL, &bad);
	spawner_clear(sp);
	sp->batch = sp->batch * 2 < JOBD_STORE_BATCH ? sp->batch * 2 :
						       JOBD_STORE_BATCH;
	if (rc == JOBD_CTX_ERR_ABANDONED)
		return JOBD_HANDLER_STOPPED;
	if (rc < 0)
		return jobd_ctx_fail(ctx, "%s %" PRId64, sp->what,
				     first + (int64_t)bad);
	jobd_handlers_save(ctx, ck);
	return JOBD_HANDLER_DONE;
}
