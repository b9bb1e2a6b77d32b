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
	pthread_mutex_lock(&ctx->w->mu);
	free(ctx->message);
	ctx->message = msg;
	pthread_mutex_unlock(&ctx->w->mu);
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

int jobd_ctx_spawn_later(struct jobd_ctx *ctx, const char *type,
			 const char *key, const char *payload, int64_t delay,
			 int64_t *child_id)
{
	struct jobd_workers *w = ctx->w;
	struct jobd_spec spec = {
		.type = type,
		.key = key,
		.payload = payload,
		.parent = ctx->claim.id,
		.delay = delay > 0 ? delay : 0,
	};
	struct jobd_created out;
	int64_t backoff = 0;
	int rc;

	if (!key || !*key) {
		jobd_ctx_log(ctx, JOBD_LOG_ERROR,
			     "cannot create a child of type \"%s\": no key",
			     type ? type : "");
		return JOBD_CTX_ERR_REFUSED;
	}
	pthread_mutex_lock(&w->spawn_mu);
	for (;;) {
		if (jobd_ctx_abandoned(ctx)) {
			pthread_mutex_unlock(&w->spawn_mu);
			return JOBD_CTX_ERR_ABANDONED;
		}
		rc = jobd_store_create(w->st_spawn, w->conf->instance, &spec, 1,
				       &out);
		if (rc == 0)
			break;
		backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
					    BACKOFF_MAX_MS);
		jobd_warn("cannot create child \"%s\" of job %lld: %s "
			  "(retrying in %lld ms)",
			  key, (long long)ctx->claim.id,
			  jobd_store_errstr(w->st_spawn), (long long)backoff);
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
	if (out.id == 0) {
		jobd_ctx_log(ctx, JOBD_LOG_ERROR,
			     "cannot create child \"%s\" of type \"%s\": %s",
			     key, type ? type : "", out.error);
		return JOBD_CTX_ERR_REFUSED;
	}
	if (child_id)
		*child_id = out.id;
	return 0;
}
