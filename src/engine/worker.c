/*
 * worker: the worker pool of one instance (the handler context, what a
 * handler calls, is ctx.c).
 *
 * Threads, each with its own store connection when it talks to Redis (a
 * store is used by one thread at a time):
 *
 *   dispatcher  claims up to (free slots) jobs in one jobd_store_claim,
 *               at most (low cap - low claimed) of them low priority, and
 *               queues them for the workers. A slot is a worker, and with
 *               short handlers a few more per worker (claiming ahead,
 *               AHEAD_BUDGET_US). With nothing claimable it blocks in
 *               jobd_store_wait (pub/sub wake-up; 1 s timeout for retries
 *               whose backoff ends, which publish nothing); with every
 *               slot taken it blocks on a condition variable until one is
 *               free. It never polls on the hot path.
 *   workers     conf->workers threads that run one handler at a time.
 *               What a handler reports goes into a per-job buffer (struct
 *               out) under the pool mutex; nothing blocks on Redis except
 *               jobd_ctx_spawn, which needs the child's id.
 *   flusher     every REPORT_MS, or at once when a handler returned or a
 *               buffer grew large, writes the buffers of all jobs in one
 *               jobd_store_report, then the finishes (jobd_store_finish) and
 *               hand-backs of the handlers that returned, in batches. A
 *               job's last buffer goes out in the same report batch just
 *               before its finish, so the finish call itself carries no
 *               logs or error counts.
 *   heartbeat   every conf->heartbeat one jobd_store_heartbeat for all
 *               attempts of this instance; "stop" delivers a stop to the
 *               handler (held back inside an uninterruptible section),
 *               "fenced" abandons it (exec: SIGKILL to its process group)
 *               and drops its writes. Jobs claimed ahead that waited
 *               QUEUED_MAX_MS for a worker go back to pending. The same
 *               thread hands back other instances' expired leases and
 *               continues orphaned cascades.
 *   guard       makes no Redis call: it abandons (fences) an attempt
 *               once its lease may have less than a heartbeat to run,
 *               counted on the monotonic clock from before the last
 *               claim or renewal that succeeded, whatever the heartbeat
 *               thread is doing meanwhile (blocked in a call to a Redis
 *               cut off, say). Another instance can take the job only
 *               once the whole lease has passed in Redis since that
 *               renewal reached it, so an exec job never runs in two
 *               places: its tree is killed a heartbeat before, from the
 *               guard's thread (jobd_ctx_kill_fd). A C handler can only
 *               be asked to return; its writes are dropped.
 *
 * A job's attempt is a struct jobd_ctx, on the live list from its claim
 * until its finish (or hand-back) was written or it was dropped. Every
 * field shared between threads is under w->mu; results coming back from
 * Redis find their ctx again by (id, attempt), so no thread keeps a
 * pointer to a ctx across an unlocked Redis call, and ctxs are freed only
 * by the flusher (or the pool's stop).
 *
 * Redis errors are retriable everywhere: each thread backs off (100 ms
 * doubling to 5 s) and calls again with the same data, so nothing is lost;
 * writes of an attempt that lost its lease meanwhile come back "fenced"
 * and are dropped.
 *
 * Rejected: a thread per job talking to Redis (one round trip per progress
 * line, and N connections); polling claims on a timer (latency or load);
 * killing C handler threads (impossible safely: they are asked to return
 * through jobd_ctx_abandoned and their writes are dropped).
 *
 * The workers find a job's handler in the registry (engine/registry.h),
 * by the job's type, then by its type's "handler"; jobd fills it before
 * the pool starts.
 */
#include "config.h"

#include "engine/worker.h"
#include "engine/worker_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "engine/registry.h"
#include "store/store.h"

#define REPORT_MS 150 /* buffered reports are written this often */
#define COALESCE_MS 2 /* a finish waits this long for company */
#define CLAIM_COALESCE_MS \
	2	     /* under load, a claim waits for more idle workers */
#define WAIT_MS 1000 /* longest block in jobd_store_wait */
#define LOW_CAPPED_WAIT_MS 100 /* ... while the low-priority cap is reached */
#define EXPIRE_MAX 100	       /* leases expired per heartbeat */
#define CASCADE_CALLS 10       /* orphaned cascades continued per heartbeat */
#define VIEW_BEATS 5 /* the workers' view outlives this many heartbeats */
/*
 * Claiming ahead: when handlers are short, each worker may have up to
 * AHEAD_MAX more jobs claimed and queued for it, as many as take about
 * AHEAD_BUDGET_US of its time by the mean run time of the recent ones.
 * Tiny jobs then need a fraction of the claims (the fixed cost of a claim
 * is shared by more jobs) and the workers have work while the next claim
 * is on its way; a queued job waits about a millisecond. Once the mean
 * says handlers are long, nothing more is claimed ahead, so no instance
 * holds work another idle one could run; what was queued before a long
 * handler showed up goes back after QUEUED_MAX_MS (at the next heartbeat:
 * up to one more heartbeat interval).
 */
#define AHEAD_BUDGET_US 1000
#define AHEAD_MAX 8
#define CLAIM_MAX 256	   /* jobs in one claim, at most */
#define QUEUED_MAX_MS 1000 /* a job queued longer goes back (heartbeat) */

/* --- small helpers ------------------------------------------------------- */

/* Under w->mu: how many jobs may be claimed (queued or running) now. */
static int capacity(const struct jobd_workers *w)
{
	int64_t per;

	if (w->run_us < 0)
		return w->conf->workers; /* nothing known yet */
	per = AHEAD_BUDGET_US / (w->run_us > 0 ? w->run_us : 1);
	if (per > AHEAD_MAX)
		per = AHEAD_MAX;
	return w->conf->workers * (1 + (int)per);
}

static void timespec_at(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Waits on CV until the monotonic time DEADLINE (ms) at the latest. */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			    int64_t deadline)
{
	struct timespec ts;

	timespec_at(&ts, deadline);
	pthread_cond_timedwait(cv, mu, &ts);
}

static int cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

static void out_release(struct out *o)
{
	for (size_t i = 0; i < o->nlogs; i++)
		free(o->logs[i].msg);
	free(o->logs);
	free(o->checkpoint);
	memset(o, 0, sizeof(*o));
	o->progress = -1;
}

static bool out_dirty(const struct out *o)
{
	return o->progress >= 0 || o->errors || o->checkpoint || o->nlogs ||
	       o->dropped;
}

/* Moves SRC into DST (released before), leaving SRC empty. */
static void out_take(struct out *dst, struct out *src)
{
	*dst = *src;
	memset(src, 0, sizeof(*src));
	src->progress = -1;
}

/* --- live attempts (under w->mu) ------------------------------------------ */

static void live_add(struct jobd_workers *w, struct jobd_ctx *ctx)
{
	ctx->prev = NULL;
	ctx->next = w->live;
	if (w->live)
		w->live->prev = ctx;
	w->live = ctx;
}

static void live_remove(struct jobd_workers *w, struct jobd_ctx *ctx)
{
	if (ctx->prev)
		ctx->prev->next = ctx->next;
	else
		w->live = ctx->next;
	if (ctx->next)
		ctx->next->prev = ctx->prev;
	ctx->prev = ctx->next = NULL;
}

static struct jobd_ctx *live_find(struct jobd_workers *w, int64_t id,
				  int64_t attempt)
{
	for (struct jobd_ctx *ctx = w->live; ctx; ctx = ctx->next)
		if (ctx->claim.id == id && ctx->claim.attempt == attempt)
			return ctx;
	return NULL;
}

static void ctx_free(struct jobd_ctx *ctx)
{
	if (!ctx)
		return;
	free(ctx->claim.type);
	free(ctx->claim.payload);
	free(ctx->claim.checkpoint);
	free(ctx->last_ck);
	free(ctx->message);
	out_release(&ctx->out);
	if (ctx->efd >= 0)
		close(ctx->efd);
	free(ctx);
}

/* The attempt is no longer ours: the handler must end, writes dropped. */
static void fence(struct jobd_workers *w, struct jobd_ctx *ctx, const char *why)
{
	if (ctx->fenced)
		return;
	ctx->fenced = true;
	ctx->abandoned = true;
	out_release(&ctx->out);
	w->stats.fenced++;
	jobd_warn("job %lld attempt %lld %s: abandoning its handler",
		  (long long)ctx->claim.id, (long long)ctx->claim.attempt, why);
	ctx_notify(ctx);
}

/* --- workers ------------------------------------------------------------------- */

/* Under w->mu: the handler of CTX returned RC (or never ran). */
static void end_run(struct jobd_workers *w, struct jobd_ctx *ctx, int rc)
{
	w->busy--;
	if (ctx->claim.low_priority)
		w->busy_low--;
	if (ctx->fenced) {
		ctx->end = END_DROP;
	} else if (ctx->shutdown &&
		   (rc != JOBD_HANDLER_DONE || ctx->abandoned)) {
		/* Whatever a handler cut short by our shutdown reports (an
		 * exec process killed by the SIGTERM, say), the job did not
		 * fail: it goes back and resumes at its checkpoint. */
		ctx->end = END_HANDBACK;
	} else {
		ctx->end = END_FINISH;
		switch (rc) {
		case JOBD_HANDLER_DONE:
			ctx->outcome = JOBD_OUTCOME_DONE;
			break;
		case JOBD_HANDLER_STOPPED:
			ctx->outcome = JOBD_OUTCOME_STOPPED;
			break;
		default:
			ctx->outcome = JOBD_OUTCOME_FAILED;
			if (!ctx->message)
				ctx->message =
					jobd_util_xstrdup("handler failed");
		}
	}
	ctx->state = RUN_DONE;
	ctx->qnext = NULL;
	if (w->done_tail)
		w->done_tail->qnext = ctx;
	else
		w->done = ctx;
	w->done_tail = ctx;
	pthread_cond_signal(&w->flush_cv);
	/* Only once there are as many idle workers as a waiter wants: a
	 * wake-up per finished job cost more than the jobs. */
	if (w->idle_wanted > 0 &&
	    (capacity(w) - w->busy >= w->idle_wanted || w->busy == 0)) {
		w->idle_wanted = 0;
		pthread_cond_broadcast(&w->idle_cv);
	}
}

/* Under w->mu: CTX, just taken off the queue, is no longer counted there. */
static void dequeued(struct jobd_workers *w, struct jobd_ctx *ctx)
{
	w->queued--;
	if (ctx->claim.low_priority)
		w->queued_low--;
}

/*
 * Under w->mu: the queued jobs claimed before BEFORE (monotonic ms;
 * INT64_MAX: all) go back without running, for REASON (NULL: shutdown).
 * The queue is in claim order, so they are at its front. Returns how
 * many.
 */
static int hand_back_queued(struct jobd_workers *w, const char *reason,
			    int64_t before)
{
	struct jobd_ctx *ctx;
	int n = 0;

	while ((ctx = w->queue) && ctx->queued_at < before) {
		w->queue = ctx->qnext;
		if (!w->queue)
			w->queue_tail = NULL;
		dequeued(w, ctx);
		ctx->shutdown = true;
		ctx->back_why = reason;
		end_run(w, ctx, JOBD_HANDLER_STOPPED);
		n++;
	}
	return n;
}

static void *worker_main(void *arg)
{
	struct jobd_workers *w = arg;
	struct jobd_ctx *ctx;
	int64_t t0;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->queue && !w->workers_quit)
			pthread_cond_wait(&w->work_cv, &w->mu);
		ctx = w->queue;
		if (!ctx)
			break;
		w->queue = ctx->qnext;
		if (!w->queue)
			w->queue_tail = NULL;
		dequeued(w, ctx);
		if (ctx->shutdown || ctx->fenced || ctx->stop) {
			/*
			 * Claimed while closing: back without running. Fenced
			 * or stopped while queued: the handler does not
			 * start (a stopped job ends stopped, at its
			 * checkpoint).
			 */
			end_run(w, ctx, JOBD_HANDLER_STOPPED);
			continue;
		}
		ctx->state = RUN_RUNNING;
		pthread_mutex_unlock(&w->mu);
		t0 = jobd_util_mono_us();
		if (ctx->fn) {
			rc = ctx->fn(ctx);
		} else {
			rc = jobd_ctx_fail(ctx, "%s", ctx->why);
		}
		t0 = jobd_util_mono_us() - t0;
		pthread_mutex_lock(&w->mu);
		/* A mean over the last eight handlers or so. */
		if (ctx->fn)
			w->run_us = w->run_us < 0 ?
					    t0 :
					    w->run_us + (t0 - w->run_us) / 8;
		end_run(w, ctx, rc);
	}
	pthread_mutex_unlock(&w->mu);
	ctx_thread_end();
	return NULL;
}

/* --- dispatcher ------------------------------------------------------------------ */

static void guard_wake(struct jobd_workers *w, int64_t lease_until);

static struct jobd_ctx *ctx_new(struct jobd_workers *w, struct jobd_claim *c)
{
	struct jobd_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		abort();
	ctx->w = w;
	ctx->claim = *c;
	/* The strings are ours now. */
	memset(c, 0, sizeof(*c));
	ctx->out.progress = -1;
	ctx->efd = -1; /* made on first use: ctx_event_fd() */
	ctx->kill_fd = -1;
	ctx->tc = jobd_conf_type(w->conf, ctx->claim.type);
	if (!ctx->tc) {
		snprintf(ctx->why, sizeof(ctx->why),
			 "unknown job type \"%s\": not in the configuration",
			 ctx->claim.type);
		return ctx;
	}
	if (ctx->tc->needs_command) {
		snprintf(ctx->why, sizeof(ctx->why),
			 "job type \"%s\" has no command to run",
			 ctx->claim.type);
		return ctx;
	}
	ctx->fn = jobd_handler_find(ctx->claim.type);
	if (!ctx->fn)
		ctx->fn = jobd_handler_find(ctx->tc->handler);
	if (!ctx->fn)
		snprintf(ctx->why, sizeof(ctx->why),
			 "no handler \"%s\" in this jobd for type \"%s\"",
			 ctx->tc->handler, ctx->claim.type);
	return ctx;
}

/* Sleeps BACKOFF ms unless closing; under w->mu. */
static void dispatcher_backoff(struct jobd_workers *w, int64_t backoff)
{
	int64_t until = jobd_util_mono_ms() + backoff;

	while (!w->closing && jobd_util_mono_ms() < until)
		cond_wait_until(&w->idle_cv, &w->mu, until);
}

static void *dispatcher_main(void *arg)
{
	struct jobd_workers *w = arg;
	const struct jobd_conf *conf = w->conf;
	struct jobd_claim *claims;
	int64_t backoff = 0, t0;
	size_t n;
	int idle, cap, max_low, rc, timeout;
	bool busy = false; /* the last claim took all it asked for */

	pthread_mutex_lock(&w->mu);
	while (!w->closing) {
		cap = capacity(w);
		idle = cap - w->busy;
		if (idle <= 0) {
			w->idle_wanted = 1;
			pthread_cond_wait(&w->idle_cv, &w->mu);
			w->idle_wanted = 0;
			continue;
		}
		if (busy && idle < (cap + 3) / 4) {
			/*
			 * Under load workers free up one by one: wait a moment
			 * so that one claim serves several of them.
			 */
			w->idle_wanted = (cap + 3) / 4;
			cond_wait_until(&w->idle_cv, &w->mu,
					jobd_util_mono_ms() +
						CLAIM_COALESCE_MS);
			w->idle_wanted = 0;
			idle = capacity(w) - w->busy;
			if (w->closing || idle <= 0)
				continue;
		}
		if (idle > CLAIM_MAX)
			idle = CLAIM_MAX;
		max_low = w->low_cap - w->busy_low;
		if (max_low < 0)
			max_low = 0;
		pthread_mutex_unlock(&w->mu);
		t0 = jobd_util_mono_ms();
		rc = jobd_store_claim(w->st_claim, conf->instance, idle,
				      max_low, conf->lease, &claims, &n);
		pthread_mutex_lock(&w->mu);
		if (rc < 0) {
			backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
						    BACKOFF_MAX_MS);
			jobd_warn("cannot claim jobs: %s (retrying in %lld ms)",
				  jobd_store_errstr(w->st_claim),
				  (long long)backoff);
			dispatcher_backoff(w, backoff);
			continue;
		}
		if (backoff) {
			jobd_info("claiming jobs again");
			backoff = 0;
		}
		for (size_t i = 0; i < n; i++) {
			struct jobd_ctx *ctx = ctx_new(w, &claims[i]);

			/* Redis counts the lease from a moment after T0. */
			ctx->lease_until = t0 + conf->lease;
			ctx->state = RUN_QUEUED;
			ctx->queued_at = jobd_util_mono_ms();
			ctx->shutdown = w->closing;
			live_add(w, ctx);
			ctx->qnext = NULL;
			if (w->queue_tail)
				w->queue_tail->qnext = ctx;
			else
				w->queue = ctx;
			w->queue_tail = ctx;
			w->queued++;
			w->busy++;
			if (ctx->claim.low_priority) {
				w->busy_low++;
				w->queued_low++;
			}
			if (w->busy_low > w->stats.max_claimed_low)
				w->stats.max_claimed_low = w->busy_low;
			w->stats.claimed++;
		}
		jobd_store_claims_free(claims, n);
		if (n)
			guard_wake(w, t0 + conf->lease);
		/*
		 * One worker per job: a broadcast would wake every idle one
		 * to find the queue empty again, a herd that cost jobd more
		 * CPU than its jobs under load.
		 */
		for (size_t i = 0; i < n; i++)
			pthread_cond_signal(&w->work_cv);
		busy = (int)n >= idle;
		if (busy)
			continue;
		/* Nothing more is ready: sleep until a wake-up. */
		timeout = w->busy_low >= w->low_cap ? LOW_CAPPED_WAIT_MS :
						      WAIT_MS;
		pthread_mutex_unlock(&w->mu);
		rc = jobd_store_wait(w->st_claim, timeout);
		pthread_mutex_lock(&w->mu);
		if (rc < 0) {
			backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
						    BACKOFF_MAX_MS);
			jobd_warn(
				"cannot wait for jobs: %s (retrying in %lld ms)",
				jobd_store_errstr(w->st_claim),
				(long long)backoff);
			dispatcher_backoff(w, backoff);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* --- flusher --------------------------------------------------------------------- */

/* One report of a batch: the data moved out of a ctx. */
struct item {
	int64_t id, attempt;
	struct out out;
	struct jobd_log_line *lines; /* point into out.logs */
};

struct batch {
	struct item *items;
	size_t n, cap;
};

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		out_release(&b->items[i].out);
		free(b->items[i].lines);
	}
	free(b->items);
	memset(b, 0, sizeof(*b));
}

/* Under w->mu: moves the dirty buffer of CTX into B. */
static void batch_take(struct batch *b, struct jobd_ctx *ctx)
{
	struct item *it;

	if (ctx->fenced || !out_dirty(&ctx->out))
		return;
	if (jobd_util_grow(&b->items, &b->cap, b->n, sizeof(*b->items), 32) < 0)
		abort();
	it = &b->items[b->n++];
	it->id = ctx->claim.id;
	it->attempt = ctx->claim.attempt;
	out_take(&it->out, &ctx->out);
	it->lines = NULL;
}

/*
 * Calls FN until Redis answers. Gives up (returns false) only when the
 * pool is quitting and the give-up time passed.
 */
static bool flush_retry(struct jobd_workers *w, const char *what,
			int64_t *backoff)
{
	bool give_up;

	pthread_mutex_lock(&w->mu);
	give_up = w->flush_quit && jobd_util_mono_ms() >= w->flush_give_up;
	pthread_mutex_unlock(&w->mu);
	if (give_up) {
		jobd_error("cannot %s: %s; giving up at shutdown", what,
			   jobd_store_errstr(w->st_flush));
		return false;
	}
	*backoff = jobd_util_backoff(*backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	jobd_warn("cannot %s: %s (retrying in %lld ms)", what,
		  jobd_store_errstr(w->st_flush), (long long)*backoff);
	jobd_util_sleep_ms(*backoff);
	return true;
}

/*
 * Points report R at the buffer of item IT (its lines array made here);
 * with CTX, first moves CTX's buffer into IT (under w->mu).
 */
static void item_to_report(struct item *it, struct jobd_ctx *ctx,
			   struct jobd_report *r)
{
	char note[96];

	if (ctx) {
		it->id = ctx->claim.id;
		it->attempt = ctx->claim.attempt;
		out_take(&it->out, &ctx->out);
	}
	if (it->out.dropped) {
		snprintf(note, sizeof(note),
			 "%zu log lines dropped while redis was unreachable",
			 it->out.dropped);
		ctx_out_add_line(&it->out, JOBD_LOG_WARN,
				 jobd_util_xstrdup(note));
	}
	it->lines = calloc(it->out.nlogs + 1, sizeof(*it->lines));
	if (!it->lines)
		abort();
	for (size_t j = 0; j < it->out.nlogs; j++) {
		it->lines[j].level = it->out.logs[j].level;
		it->lines[j].msg = it->out.logs[j].msg;
	}
	r->id = it->id;
	r->attempt = it->attempt;
	r->progress = it->out.progress;
	r->errors = it->out.errors;
	r->checkpoint = it->out.checkpoint;
	r->logs = it->lines;
	r->nlogs = it->out.nlogs;
}

static void send_reports(struct jobd_workers *w, struct batch *b)
{
	struct jobd_report *r;
	enum jobd_result *res;
	int64_t backoff = 0;

	if (b->n == 0)
		return;
	r = calloc(b->n, sizeof(*r));
	res = calloc(b->n, sizeof(*res));
	if (!r || !res)
		abort();
	for (size_t i = 0; i < b->n; i++)
		item_to_report(&b->items[i], NULL, &r[i]);
	while (jobd_store_report(w->st_flush, r, b->n, res) < 0)
		if (!flush_retry(w, "write job reports", &backoff))
			goto out;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < b->n; i++) {
		struct jobd_ctx *ctx = live_find(w, r[i].id, r[i].attempt);

		if (!ctx)
			continue;
		if (res[i] == JOBD_RESULT_STOP && ctx->state != RUN_DONE)
			ctx_deliver_stop(ctx);
		else if (res[i] == JOBD_RESULT_FENCED)
			fence(w, ctx, "was fenced off");
	}
	pthread_mutex_unlock(&w->mu);
out:
	free(r);
	free(res);
}

static const char *result_name(enum jobd_result r)
{
	static const char *const names[] = { "ok",	 "stop",    "fenced",
					     "finished", "waiting", "stopped",
					     "retry",	 "pending" };

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* Hands back the N jobs of BACK (their ctxs in BCTX), a call per reason;
 * returns how many were written (fewer when giving up at shutdown). */
static size_t hand_back(struct jobd_workers *w, struct jobd_report *back,
			struct jobd_ctx **bctx, size_t n, enum jobd_result *res)
{
	size_t done = 0;

	while (done < n) {
		const char *why = bctx[done]->back_why;
		size_t k = 0;
		int64_t backoff = 0;

		/* Those with reason WHY to the front, from DONE on. */
		for (size_t i = done; i < n; i++)
			if (bctx[i]->back_why == why) {
				struct jobd_report r = back[i];
				struct jobd_ctx *c = bctx[i];

				back[i] = back[done + k];
				bctx[i] = bctx[done + k];
				back[done + k] = r;
				bctx[done + k] = c;
				k++;
			}
		while (jobd_store_handback(w->st_flush, why ? why : "shutdown",
					   back + done, k, res + done) < 0)
			if (!flush_retry(w, "hand back jobs", &backoff))
				return done;
		for (size_t i = done; i < done + k; i++)
			jobd_info("job %lld attempt %lld handed back: %s",
				  (long long)back[i].id,
				  (long long)back[i].attempt,
				  result_name(res[i]));
		done += k;
	}
	return done;
}

/* Writes the finishes and hand-backs of the ctxs on the list DONE. */
static void send_ends(struct jobd_workers *w, struct jobd_ctx *done)
{
	struct jobd_ctx *ctx, *next;
	struct jobd_report *fin, *back;
	struct jobd_ctx **fctx, **bctx;
	struct item *items; /* the finished jobs' last buffers */
	enum jobd_result *res;
	size_t nf = 0, nb = 0, total = 0;
	int64_t backoff = 0;

	for (ctx = done; ctx; ctx = ctx->qnext)
		total++;
	fin = calloc(total + 1, sizeof(*fin));
	back = calloc(total + 1, sizeof(*back));
	fctx = calloc(total + 1, sizeof(*fctx));
	bctx = calloc(total + 1, sizeof(*bctx));
	res = calloc(total + 1, sizeof(*res));
	items = calloc(total + 1, sizeof(*items));
	if (!fin || !back || !fctx || !bctx || !res || !items)
		abort();
	pthread_mutex_lock(&w->mu);
	for (ctx = done; ctx; ctx = ctx->qnext) {
		struct jobd_report *r;

		if (ctx->fenced || ctx->end == END_DROP)
			continue;
		if (ctx->end == END_FINISH) {
			fctx[nf] = ctx;
			r = &fin[nf++];
		} else {
			bctx[nb] = ctx;
			r = &back[nb++];
		}
		r->id = ctx->claim.id;
		r->attempt = ctx->claim.attempt;
		r->progress = -1;
		r->outcome = ctx->outcome;
		r->message = ctx->message ? ctx->message : "";
		if (ctx->end == END_FINISH)
			item_to_report(&items[nf - 1], ctx, r);
	}
	pthread_mutex_unlock(&w->mu);

	while (nf && jobd_store_finish(w->st_flush, fin, nf, res) < 0)
		if (!flush_retry(w, "write finished jobs", &backoff)) {
			nf = 0;
			break;
		}
	for (size_t i = 0; i < nf; i++)
		jobd_debug("job %lld attempt %lld: %s", (long long)fin[i].id,
			   (long long)fin[i].attempt, result_name(res[i]));
	nb = hand_back(w, back, bctx, nb, res);

	pthread_mutex_lock(&w->mu);
	w->stats.finished += (int64_t)nf;
	w->stats.handed_back += (int64_t)nb;
	for (ctx = done; ctx; ctx = next) {
		next = ctx->qnext;
		live_remove(w, ctx);
		ctx_free(ctx);
	}
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < nf; i++) {
		out_release(&items[i].out);
		free(items[i].lines);
	}
	free(items);
	free(fin);
	free(back);
	free(fctx);
	free(bctx);
	free(res);
}

static void *flusher_main(void *arg)
{
	struct jobd_workers *w = arg;
	struct batch b = { 0 };
	struct jobd_ctx *done, *ctx;
	int64_t next = jobd_util_mono_ms() + REPORT_MS;
	bool quit;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->flush_quit && !w->done && !w->flush_now &&
		       jobd_util_mono_ms() < next)
			cond_wait_until(&w->flush_cv, &w->mu, next);
		if (w->done && !w->flush_quit) {
			/* Let finishes of other workers join this batch. */
			pthread_mutex_unlock(&w->mu);
			jobd_util_sleep_ms(COALESCE_MS);
			pthread_mutex_lock(&w->mu);
		}
		quit = w->flush_quit;
		w->flush_now = false;
		next = jobd_util_mono_ms() + REPORT_MS;
		/*
		 * Reports first: a handed-back job's last buffer precedes its
		 * hand-back. A finished job's buffer goes with its finish (one
		 * call, not two).
		 */
		for (ctx = w->live; ctx; ctx = ctx->next)
			if (ctx->state != RUN_DONE || ctx->end != END_FINISH)
				batch_take(&b, ctx);
		done = w->done;
		w->done = w->done_tail = NULL;
		pthread_mutex_unlock(&w->mu);

		send_reports(w, &b);
		batch_release(&b);
		if (done)
			send_ends(w, done);

		pthread_mutex_lock(&w->mu);
		if (quit && !w->done)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* --- heartbeat ------------------------------------------------------------------- */

/*
 * Under w->mu: jobs claimed ahead that still wait for a worker after
 * QUEUED_MAX_MS (every worker is held by a long handler) go back to
 * pending, where another instance's idle workers can claim them.
 */
static void unqueue_stale(struct jobd_workers *w)
{
	int n = hand_back_queued(w, "waited for a worker too long",
				 jobd_util_mono_ms() - QUEUED_MAX_MS);

	if (n) {
		/* The handlers are long now: no claiming ahead until a
		 * run of short ones brings the mean down again. */
		w->run_us = QUEUED_MAX_MS * 1000;
		jobd_info("handing back %d claimed jobs that waited %d ms for "
			  "a worker",
			  n, QUEUED_MAX_MS);
	}
}

/*
 * Publishes this instance's workers (jobd_store_workers_put: what jobctl
 * why reads): their number, how many are busy, and the types this jobd
 * can run. Kept for a few heartbeats, so a dead instance drops out.
 */
static void publish_view(struct jobd_workers *w)
{
	const struct jobd_conf *conf = w->conf;
	json_t *v = json_object(), *types = json_array();
	char *text;

	pthread_mutex_lock(&w->mu);
	json_object_set_new(v, "instance", json_string(conf->instance));
	json_object_set_new(v, "workers", json_integer(conf->workers));
	json_object_set_new(v, "busy", json_integer(w->busy));
	json_object_set_new(v, "busy_low", json_integer(w->busy_low));
	json_object_set_new(v, "low_cap", json_integer(w->low_cap));
	pthread_mutex_unlock(&w->mu);
	jobd_conf_rdlock(conf);
	for (size_t i = 0; i < conf->types_count; i++) {
		const struct jobd_type_conf *t = &conf->types[i];

		if (!t->needs_command && (jobd_handler_find(t->name) ||
					  jobd_handler_find(t->handler)))
			json_array_append_new(types, json_string(t->name));
	}
	jobd_conf_unlock(conf);
	json_object_set_new(v, "types", types);
	text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (text && jobd_store_workers_put(w->st_beat, conf->instance, text,
					   VIEW_BEATS * conf->heartbeat) < 0)
		jobd_debug("cannot publish the workers' view: %s",
			   jobd_store_errstr(w->st_beat));
	free(text);
}

static void *beat_main(void *arg)
{
	struct jobd_workers *w = arg;
	const struct jobd_conf *conf = w->conf;
	int64_t *ids = NULL, *attempts = NULL, t0, next;
	enum jobd_result *res = NULL;
	size_t n, cap = 0, expired, left;
	struct jobd_ctx *ctx;
	bool failing = false;
	/* The hold of a move under way (jobctl cluster move), as its start
	 * names it, and since when (monotonic ms) it surely lasted. */
	int64_t hold_since = 0, hold_at = 0, since;
	int rc;

	pthread_mutex_lock(&w->mu);
	next = jobd_util_mono_ms() + conf->heartbeat;
	while (!w->beat_quit) {
		if (jobd_util_mono_ms() < next) {
			cond_wait_until(&w->beat_cv, &w->mu, next);
			continue;
		}
		next = jobd_util_mono_ms() + conf->heartbeat;
		if (w->queue)
			unqueue_stale(w);
		n = 0;
		for (ctx = w->live; ctx; ctx = ctx->next) {
			if (ctx->fenced)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				if (jobd_util_resize(&ids, cap, sizeof(*ids)) <
					    0 ||
				    jobd_util_resize(&attempts, cap,
						     sizeof(*attempts)) < 0 ||
				    jobd_util_resize(&res, cap, sizeof(*res)) <
					    0)
					abort();
			}
			ids[n] = ctx->claim.id;
			attempts[n] = ctx->claim.attempt;
			n++;
		}
		t0 = jobd_util_mono_ms();
		pthread_mutex_unlock(&w->mu);
		rc = n ? jobd_store_heartbeat(w->st_beat, ids, attempts, n,
					      conf->lease, res) :
			 0;
		pthread_mutex_lock(&w->mu);
		if (rc == 0) {
			if (failing)
				jobd_info("renewing leases again");
			failing = false;
			for (size_t i = 0; i < n; i++) {
				ctx = live_find(w, ids[i], attempts[i]);
				if (!ctx)
					continue;
				if (res[i] == JOBD_RESULT_FENCED) {
					if (ctx->state != RUN_DONE)
						fence(w, ctx, "was fenced off");
				} else {
					ctx->lease_until = t0 + conf->lease;
					if (res[i] == JOBD_RESULT_STOP &&
					    ctx->state != RUN_DONE)
						ctx_deliver_stop(ctx);
				}
			}
		} else if (jobd_store_held(w->st_beat, &since)) {
			/*
			 * A move of the slot holds the calls; Redis lengthens
			 * every lease by the time held when it lets them go.
			 * The hold was there when a refusal came back, and
			 * when this call arrived, sent at T0: the time between
			 * counts as renewed (a shorter span than the hold's,
			 * so the guard stays on the safe side).
			 */
			int64_t now = jobd_util_mono_ms();

			if (since != hold_since) {
				hold_since = since;
				hold_at = now;
				jobd_warn("cannot renew leases: %s; they are "
					  "lengthened by the time held",
					  jobd_store_errstr(w->st_beat));
			} else if (t0 > hold_at) {
				for (ctx = w->live; ctx; ctx = ctx->next)
					if (!ctx->fenced)
						ctx->lease_until +=
							t0 - hold_at;
				hold_at = t0;
			}
			failing = true;
		} else {
			/* The guard abandons what cannot be renewed in time. */
			if (!failing)
				jobd_warn("cannot renew leases: %s",
					  jobd_store_errstr(w->st_beat));
			failing = true;
		}
		pthread_mutex_unlock(&w->mu);
		if (jobd_store_expire(w->st_beat, EXPIRE_MAX, &expired) == 0 &&
		    expired)
			jobd_info("handed back %zu jobs whose lease expired",
				  expired);
		if (jobd_store_cascades_run(w->st_beat, CASCADE_CALLS, &left) <
		    0)
			jobd_debug("cannot continue cascades: %s",
				   jobd_store_errstr(w->st_beat));
		publish_view(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	if (jobd_store_workers_drop(w->st_beat, conf->instance) < 0)
		jobd_debug("cannot drop the workers' view: %s",
			   jobd_store_errstr(w->st_beat));
	free(ids);
	free(attempts);
	free(res);
	return NULL;
}

/* --- guard --------------------------------------------------------------------- */

/* Under w->mu: a lease surely lasts until LEASE_UNTIL (monotonic ms); the
 * guard wakes earlier than planned when it must look at it sooner. */
static void guard_wake(struct jobd_workers *w, int64_t lease_until)
{
	int64_t at = lease_until - w->conf->heartbeat;

	if (at < w->guard_at)
		pthread_cond_signal(&w->guard_cv);
}

/*
 * Abandons every attempt whose lease has less than a heartbeat left by
 * the local clock: the margin covers killing the handler's tree and the
 * rate at which the clocks of this machine and Redis's may differ over
 * one lease. Only the mutex is taken, which no thread holds across a
 * Redis call.
 */
static void *guard_main(void *arg)
{
	struct jobd_workers *w = arg;
	const int64_t margin = w->conf->heartbeat;
	struct jobd_ctx *ctx;
	int64_t now, at;

	pthread_mutex_lock(&w->mu);
	while (!w->guard_quit) {
		now = jobd_util_mono_ms();
		w->guard_at = now + w->conf->lease;
		for (ctx = w->live; ctx; ctx = ctx->next) {
			if (ctx->fenced || ctx->state == RUN_DONE)
				continue;
			at = ctx->lease_until - margin;
			if (at <= now)
				fence(w, ctx,
				      "could not renew its lease in time");
			else if (at < w->guard_at)
				w->guard_at = at;
		}
		cond_wait_until(&w->guard_cv, &w->mu, w->guard_at);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* --- the pool --------------------------------------------------------------------- */

static void pool_free(struct jobd_workers *w)
{
	struct jobd_ctx *ctx, *next;

	for (ctx = w->live; ctx; ctx = next) {
		next = ctx->next;
		ctx_free(ctx);
	}
	jobd_store_free(w->st_claim);
	jobd_store_free(w->st_flush);
	jobd_store_free(w->st_beat);
	jobd_store_free(w->st_spawn);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->idle_cv);
	pthread_cond_destroy(&w->flush_cv);
	pthread_cond_destroy(&w->beat_cv);
	pthread_cond_destroy(&w->guard_cv);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->spawn_mu);
	free(w->threads);
	free(w);
}

struct jobd_workers *jobd_workers_start(const struct jobd_conf *conf,
					char *errstr, size_t errstr_size)
{
	struct jobd_workers *w = calloc(1, sizeof(*w));
	struct jobd_store **stores[4];
	int rc;

	if (!w) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	w->conf = conf;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->spawn_mu, NULL);
	cond_init(&w->work_cv);
	cond_init(&w->idle_cv);
	cond_init(&w->flush_cv);
	cond_init(&w->beat_cv);
	cond_init(&w->guard_cv);
	w->run_us = -1;
	w->low_cap = (int)ceil(conf->low_priority_share * conf->workers);
	if (w->low_cap < 1)
		w->low_cap = 1;
	if (w->low_cap > conf->workers)
		w->low_cap = conf->workers;
	w->threads = calloc((size_t)conf->workers, sizeof(*w->threads));
	if (!w->threads) {
		snprintf(errstr, errstr_size, "out of memory");
		goto err_free;
	}
	stores[0] = &w->st_claim;
	stores[1] = &w->st_flush;
	stores[2] = &w->st_beat;
	stores[3] = &w->st_spawn;
	for (int i = 0; i < 4; i++) {
		*stores[i] = jobd_store_new(conf, errstr, errstr_size);
		if (!*stores[i])
			goto err_free;
	}
	for (w->nthreads = 0; w->nthreads < conf->workers; w->nthreads++) {
		rc = pthread_create(&w->threads[w->nthreads], NULL, worker_main,
				    w);
		if (rc)
			goto err_thread;
	}
	rc = pthread_create(&w->flusher, NULL, flusher_main, w);
	if (rc)
		goto err_thread;
	w->flusher_up = true;
	rc = pthread_create(&w->beat, NULL, beat_main, w);
	if (rc)
		goto err_thread;
	w->beat_up = true;
	rc = pthread_create(&w->guard, NULL, guard_main, w);
	if (rc)
		goto err_thread;
	w->guard_up = true;
	rc = pthread_create(&w->dispatcher, NULL, dispatcher_main, w);
	if (rc)
		goto err_thread;
	w->dispatcher_up = true;
	jobd_info("worker pool of %s: %d workers, at most %d low priority, "
		  "lease %lld ms",
		  conf->instance, conf->workers, w->low_cap,
		  (long long)conf->lease);
	return w;

err_thread:
	snprintf(errstr, errstr_size, "cannot start a worker thread: %s",
		 strerror(rc));
	jobd_workers_stop(w);
	return NULL;
err_free:
	pool_free(w);
	return NULL;
}

/* Sets *QUIT under w->mu, wakes the thread on CV and joins it. */
static void quit_thread(struct jobd_workers *w, bool *quit, pthread_cond_t *cv,
			pthread_t thread)
{
	pthread_mutex_lock(&w->mu);
	*quit = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(thread, NULL);
}

void jobd_workers_stop(struct jobd_workers *w)
{
	struct jobd_ctx *ctx;
	int64_t deadline;
	int abandoned = 0;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->closing = true;
	for (ctx = w->live; ctx; ctx = ctx->next) {
		if (ctx->state == RUN_DONE)
			continue;
		ctx->shutdown = true;
		ctx_deliver_stop(ctx);
	}
	pthread_cond_broadcast(&w->idle_cv);
	pthread_mutex_unlock(&w->mu);
	if (w->dispatcher_up)
		pthread_join(w->dispatcher, NULL);

	pthread_mutex_lock(&w->mu);
	/* Queued (claimed ahead, or meanwhile): back now, without running,
	 * not after the running handlers have returned. */
	hand_back_queued(w, NULL, INT64_MAX);
	w->workers_quit = true;
	pthread_cond_broadcast(&w->work_cv);
	/* Half a lease to stop at a checkpoint, then abandon. */
	deadline = jobd_util_mono_ms() + w->conf->lease / 2;
	while (w->busy > 0 && jobd_util_mono_ms() < deadline) {
		w->idle_wanted = capacity(w);
		cond_wait_until(&w->idle_cv, &w->mu, deadline);
	}
	w->idle_wanted = 0;
	for (ctx = w->live; ctx; ctx = ctx->next) {
		if (ctx->state == RUN_RUNNING && !ctx->abandoned) {
			ctx->abandoned = true;
			ctx_notify(ctx);
			abandoned++;
		}
	}
	pthread_mutex_unlock(&w->mu);
	if (abandoned)
		jobd_warn("abandoning %d handlers that did not stop within "
			  "%lld ms; handing their jobs back",
			  abandoned, (long long)w->conf->lease / 2);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);

	if (w->flusher_up) {
		pthread_mutex_lock(&w->mu);
		w->flush_quit = true;
		w->flush_give_up = jobd_util_mono_ms() + w->conf->lease / 2;
		pthread_cond_signal(&w->flush_cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->flusher, NULL);
	}
	if (w->beat_up)
		quit_thread(w, &w->beat_quit, &w->beat_cv, w->beat);
	if (w->guard_up)
		quit_thread(w, &w->guard_quit, &w->guard_cv, w->guard);
	pool_free(w);
}

void jobd_workers_stats(struct jobd_workers *w, struct jobd_workers_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	out->running = w->busy - w->queued;
	out->queued = w->queued;
	out->running_low = w->busy_low - w->queued_low;
	pthread_mutex_unlock(&w->mu);
}
