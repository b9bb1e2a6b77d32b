/*
 * ctx: the handler context (engine/handler.h): what a handler calls while
 * it runs (payload, checkpoint, progress, logs, errors, children, stop
 * and its uninterruptible sections), and how the pool reaches a running
 * attempt (a stop, an abandon). Reports go into the attempt's buffer
 * under the pool's mutex (worker_int.h); the flusher writes them. The
 * pool (worker.c) calls this file, never the other way round.
 */
#include "config.h"

#include "engine/worker.h"
#include "engine/worker_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store.h"

#define LOGS_FLUSH 256 /* buffered lines that trigger a write */

void ctx_notify(struct jobd_ctx *ctx)
{
	uint64_t one = 1;

	if (ctx->abandoned && ctx->kill_fd >= 0 &&
	    write(ctx->kill_fd, "k", 1) < 0 && errno != EAGAIN)
		jobd_warn("cannot end the processes of job %lld: %s",
			  (long long)ctx->claim.id, strerror(errno));
	if (ctx->efd < 0)
		return;
	if (write(ctx->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		jobd_warn("cannot signal job %lld: %s",
			  (long long)ctx->claim.id, strerror(errno));
}

void ctx_out_add_line(struct out *o, int level, char *msg)
{
	if (o->nlogs >= LOGS_MAX) {
		o->dropped++;
		free(msg);
		return;
	}
	if (jobd_util_grow(&o->logs, &o->cap, o->nlogs, sizeof(*o->logs), 16) <
	    0)
		abort(); /* out of memory: nothing sensible to do */
	o->logs[o->nlogs].level = level;
	o->logs[o->nlogs].msg = msg;
	o->nlogs++;
}

void ctx_deliver_stop(struct jobd_ctx *ctx)
{
	if (ctx->stop)
		return;
	if (ctx->uninterruptible > 0) {
		/* The audit trail says why the job stays Stopping (once). */
		if (!ctx->stop_held)
			ctx_out_add_line(
				&ctx->out, JOBD_LOG_INFO,
				jobd_util_xstrdup(
					"stopping deferred: the handler is "
					"in a non-interruptible section"));
		ctx->stop_held = true;
		return;
	}
	ctx->stop = true;
	ctx_notify(ctx);
}

int64_t jobd_ctx_job_id(const struct jobd_ctx *ctx)
{
	return ctx->claim.id;
}

int64_t jobd_ctx_attempt(const struct jobd_ctx *ctx)
{
	return ctx->claim.attempt;
}

const char *jobd_ctx_type(const struct jobd_ctx *ctx)
{
	return ctx->claim.type;
}

const struct jobd_type_conf *jobd_ctx_type_conf(const struct jobd_ctx *ctx)
{
	return ctx->tc;
}

const struct jobd_conf *jobd_ctx_conf(const struct jobd_ctx *ctx)
{
	return ctx->w->conf;
}

/* Each worker thread's own store for its handlers, made on first use. */
static __thread struct jobd_store *thread_st;

struct jobd_store *jobd_ctx_store(struct jobd_ctx *ctx)
{
	char err[256];

	if (!thread_st) {
		thread_st = jobd_store_new(ctx->w->conf, err, sizeof(err));
		if (!thread_st)
			jobd_warn("job %lld: %s", (long long)ctx->claim.id,
				  err);
	}
	return thread_st;
}

void ctx_thread_end(void)
{
	jobd_store_free(thread_st);
	thread_st = NULL;
}

const char *jobd_ctx_payload(const struct jobd_ctx *ctx)
{
	return ctx->claim.payload ? ctx->claim.payload : "{}";
}

const char *jobd_ctx_checkpoint(const struct jobd_ctx *ctx)
{
	const char *ck;

	pthread_mutex_lock(&ctx->w->mu);
	ck = ctx->last_ck ? ctx->last_ck : ctx->claim.checkpoint;
	pthread_mutex_unlock(&ctx->w->mu);
	return ck;
}

void jobd_ctx_save_checkpoint(struct jobd_ctx *ctx, const char *json)
{
	struct jobd_workers *w = ctx->w;
	char *a = jobd_util_xstrdup(json), *b = jobd_util_xstrdup(json);

	pthread_mutex_lock(&w->mu);
	free(ctx->last_ck);
	ctx->last_ck = a;
	if (!ctx->fenced) {
		free(ctx->out.checkpoint);
		ctx->out.checkpoint = b;
		b = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	free(b);
}

void jobd_ctx_progress(struct jobd_ctx *ctx, double pct)
{
	if (!(pct >= 0)) /* also NaN */
		pct = 0;
	if (pct > 100)
		pct = 100;
	pthread_mutex_lock(&ctx->w->mu);
	if (!ctx->fenced)
		ctx->out.progress = pct;
	pthread_mutex_unlock(&ctx->w->mu);
}

void jobd_ctx_progress_of(struct jobd_ctx *ctx, int64_t done, int64_t total)
{
	jobd_ctx_progress(ctx,
			  total > 0 ? 100.0 * (double)done / (double)total : 0);
}

static void add_line(struct jobd_ctx *ctx, int level, int64_t errors,
		     const char *fmt, va_list ap)
{
	struct jobd_workers *w = ctx->w;
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	pthread_mutex_lock(&w->mu);
	if (ctx->fenced) {
		free(msg);
	} else {
		ctx->out.errors += errors;
		ctx_out_add_line(&ctx->out, level, msg);
		if (ctx->out.nlogs >= LOGS_FLUSH && !w->flush_now) {
			w->flush_now = true;
			pthread_cond_signal(&w->flush_cv);
		}
	}
	pthread_mutex_unlock(&w->mu);
}

void jobd_ctx_log(struct jobd_ctx *ctx, enum jobd_log_level level,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_line(ctx, level, 0, fmt, ap);
	va_end(ap);
}

void jobd_ctx_error(struct jobd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_line(ctx, JOBD_LOG_ERROR, 1, fmt, ap);
	va_end(ap);
}

int jobd_ctx_fail(struct jobd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	/* The first failure is the cause: a later one (a handler that
	 * fails to create the children it held while failing) only logs. */
	pthread_mutex_lock(&ctx->w->mu);
	if (!ctx->message) {
		ctx->message = msg;
		msg = NULL;
	}
	pthread_mutex_unlock(&ctx->w->mu);
	if (msg) {
		jobd_ctx_log(ctx, JOBD_LOG_ERROR, "also: %s", msg);
		free(msg);
	}
	return JOBD_HANDLER_FAILED;
}

bool jobd_ctx_stop_requested(const struct jobd_ctx *ctx)
{
	bool stop;

	pthread_mutex_lock(&ctx->w->mu);
	stop = ctx->stop || ctx->abandoned;
	pthread_mutex_unlock(&ctx->w->mu);
	return stop;
}

bool jobd_ctx_abandoned(const struct jobd_ctx *ctx)
{
	bool abandoned;

	pthread_mutex_lock(&ctx->w->mu);
	abandoned = ctx->abandoned;
	pthread_mutex_unlock(&ctx->w->mu);
	return abandoned;
}

void jobd_ctx_uninterruptible_begin(struct jobd_ctx *ctx)
{
	pthread_mutex_lock(&ctx->w->mu);
	ctx->uninterruptible++;
	pthread_mutex_unlock(&ctx->w->mu);
}

void jobd_ctx_uninterruptible_end(struct jobd_ctx *ctx)
{
	pthread_mutex_lock(&ctx->w->mu);
	if (ctx->uninterruptible > 0 && --ctx->uninterruptible == 0 &&
	    ctx->stop_held) {
		ctx->stop_held = false;
		ctx_deliver_stop(ctx);
	}
	pthread_mutex_unlock(&ctx->w->mu);
}

int ctx_event_fd(struct jobd_ctx *ctx)
{
	int fd;

	pthread_mutex_lock(&ctx->w->mu);
	if (ctx->efd < 0 && !ctx->efd_failed) {
		ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctx->efd < 0) {
			ctx->efd_failed = true;
			jobd_warn("cannot create an eventfd for job %lld: %s",
				  (long long)ctx->claim.id, strerror(errno));
		} else if (ctx->stop || ctx->abandoned) {
			ctx_notify(ctx);
		}
	}
	fd = ctx->efd;
	pthread_mutex_unlock(&ctx->w->mu);
	return fd;
}

int jobd_ctx_event_fd(struct jobd_ctx *ctx)
{
	return ctx_event_fd(ctx);
}

void jobd_ctx_kill_fd(struct jobd_ctx *ctx, int fd)
{
	pthread_mutex_lock(&ctx->w->mu);
	ctx->kill_fd = fd;
	if (fd >= 0 && ctx->abandoned)
		ctx_notify(ctx);
	pthread_mutex_unlock(&ctx->w->mu);
}

bool jobd_ctx_sleep(struct jobd_ctx *ctx, int64_t ms)
{
	int64_t end = jobd_util_mono_ms() + ms, left;
	struct pollfd pfd = { .fd = ctx_event_fd(ctx), .events = POLLIN };

	for (;;) {
		if (jobd_ctx_stop_requested(ctx))
			return false;
		left = end - jobd_util_mono_ms();
		if (left <= 0)
			return true;
		if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) > 0)
			return !jobd_ctx_stop_requested(ctx);
	}
}

int jobd_ctx_spawn(struct jobd_ctx *ctx, const char *type, const char *key,
		   const char *payload, int64_t *child_id)
{
	return jobd_ctx_spawn_later(ctx, type, key, payload, 0, child_id);
}

/*
 * Creates the N (at most JOBD_STORE_BATCH) children SPECS in one call of
 * the pool's spawning store, retrying while Redis cannot be reached (the
 * keys make a repeat harmless). Returns 0 with OUT filled, or
 * JOBD_CTX_ERR_ABANDONED.
 */
static int create_children(struct jobd_ctx *ctx, const struct jobd_spec *specs,
			   size_t n, struct jobd_created *out)
{
	struct jobd_workers *w = ctx->w;
	int64_t backoff = 0;

	pthread_mutex_lock(&w->spawn_mu);
	for (;;) {
		if (jobd_ctx_abandoned(ctx)) {
			pthread_mutex_unlock(&w->spawn_mu);
			return JOBD_CTX_ERR_ABANDONED;
		}
		if (jobd_store_create(w->st_spawn, w->conf->instance, specs, n,
				      out) == 0)
			break;
		backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
					    BACKOFF_MAX_MS);
		if (n == 1)
			jobd_warn("cannot create child \"%s\" of job %lld: %s "
				  "(retrying in %lld ms)",
				  specs[0].key, (long long)ctx->claim.id,
				  jobd_store_errstr(w->st_spawn),
				  (long long)backoff);
		else
			jobd_warn("cannot create %zu children of job %lld: %s "
				  "(retrying in %lld ms)",
				  n, (long long)ctx->claim.id,
				  jobd_store_errstr(w->st_spawn),
				  (long long)backoff);
		/* Other handlers' spawns may go on meanwhile, and an abandon
		 * ends the wait within 100 ms. */
		pthread_mutex_unlock(&w->spawn_mu);
		for (int64_t t = 0; t < backoff && !jobd_ctx_abandoned(ctx);
		     t += 100)
			jobd_util_sleep_ms(backoff - t < 100 ? backoff - t :
							       100);
		pthread_mutex_lock(&w->spawn_mu);
	}
	pthread_mutex_unlock(&w->spawn_mu);
	return 0;
}

/* The refusal of child SP by the store, in the job's log. */
static void log_refused(struct jobd_ctx *ctx, const struct jobd_spec *sp,
			const struct jobd_created *out)
{
	jobd_ctx_log(ctx, JOBD_LOG_ERROR,
		     "cannot create child \"%s\" of type \"%s\": %s", sp->key,
		     sp->type ? sp->type : "", out->error);
}

int jobd_ctx_spawn_later(struct jobd_ctx *ctx, const char *type,
			 const char *key, const char *payload, int64_t delay,
			 int64_t *child_id)
{
	struct jobd_spec spec = {
		.type = type,
		.key = key,
		.payload = payload,
		.parent = ctx->claim.id,
		.delay = delay > 0 ? delay : 0,
	};
	struct jobd_created out;
	int rc;

	if (!key || !*key) {
		jobd_ctx_log(ctx, JOBD_LOG_ERROR,
			     "cannot create a child of type \"%s\": no key",
			     type ? type : "");
		return JOBD_CTX_ERR_REFUSED;
	}
	rc = create_children(ctx, &spec, 1, &out);
	if (rc < 0)
		return rc;
	if (out.id == 0) {
		log_refused(ctx, &spec, &out);
		return JOBD_CTX_ERR_REFUSED;
	}
	if (child_id)
		*child_id = out.id;
	return 0;
}

/* CHILD of CTX's job as the store takes it. */
static void child_spec(const struct jobd_ctx *ctx,
		       const struct jobd_ctx_child *child, struct jobd_spec *sp)
{
	*sp = (struct jobd_spec){
		.type = child->type,
		.key = child->key,
		.payload = child->payload,
		.parent = ctx->claim.id,
		.run_at = child->run_at > 0 ? child->run_at : 0,
		.delay = child->delay > 0 ? child->delay : 0,
		.low_priority = child->low_priority,
	};
}

bool jobd_ctx_child_check(const struct jobd_ctx *ctx,
			  const struct jobd_ctx_child *child, char *why,
			  size_t why_size)
{
	struct jobd_spec sp;

	if (!child->key || !*child->key) {
		snprintf(why, why_size, "no key");
		return false;
	}
	if (child->run_at > 0 && child->delay > 0) {
		snprintf(why, why_size, "both a run_at and a delay");
		return false;
	}
	child_spec(ctx, child, &sp);
	return jobd_store_spec_check(ctx->w->conf, &sp, why, why_size);
}

int jobd_ctx_spawn_many(struct jobd_ctx *ctx,
			const struct jobd_ctx_child *children, size_t n,
			int64_t *ids, size_t *bad)
{
	struct jobd_spec *specs;
	struct jobd_created *out;
	size_t first_bad = n, len;
	char why[200];
	int rc = 0;

	for (size_t i = 0; ids && i < n; i++)
		ids[i] = 0;
	/* All checked before the first call: a bad child leaves nothing
	 * half-made, and the handler can fix or drop it and call again. */
	for (size_t i = 0; i < n; i++) {
		const struct jobd_ctx_child *c = &children[i];

		if (jobd_ctx_child_check(ctx, c, why, sizeof(why)))
			continue;
		jobd_ctx_log(ctx, JOBD_LOG_ERROR,
			     "cannot create children: child %zu (\"%s\") of "
			     "type \"%s\": %s; none created",
			     i, c->key ? c->key : "", c->type ? c->type : "",
			     why);
		if (bad)
			*bad = i;
		return JOBD_CTX_ERR_REFUSED;
	}
	if (n == 0)
		return 0;
	specs = calloc(n, sizeof(*specs));
	out = calloc(n < JOBD_STORE_BATCH ? n : JOBD_STORE_BATCH, sizeof(*out));
	if (!specs || !out)
		abort(); /* out of memory: nothing sensible to do */
	for (size_t i = 0; i < n; i++) {
		child_spec(ctx, &children[i], &specs[i]);
		specs[i].payload_checked = true;
	}
	for (size_t off = 0; off < n; off += len) {
		len = n - off < JOBD_STORE_BATCH ? n - off : JOBD_STORE_BATCH;
		rc = create_children(ctx, specs + off, len, out);
		if (rc < 0)
			break;
		for (size_t k = 0; k < len; k++) {
			if (out[k].id == 0) {
				log_refused(ctx, &specs[off + k], &out[k]);
				if (first_bad == n)
					first_bad = off + k;
			} else if (ids) {
				ids[off + k] = out[k].id;
			}
		}
	}
	free(out);
	free(specs);
	if (rc == 0 && first_bad < n) {
		if (bad)
			*bad = first_bad;
		rc = JOBD_CTX_ERR_REFUSED;
	}
	return rc;
}
