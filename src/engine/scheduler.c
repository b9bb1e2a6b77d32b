/*
 * scheduler: one thread, one store connection. Each pass reads Redis's
 * clock, steps every schedule, then sleeps until the nearest next tick,
 * at most POLL_MS: Redis's clock is the one that counts, and a pass is
 * two cheap calls per schedule (HMGET, and the job and state writes only
 * when a tick is due).
 *
 * Rejected: a leader lease. It would make one instance the only ticker,
 * and a tick falling in its failover window would be late by a lease;
 * the per-tick key makes any number of tickers create one job.
 */
#include "config.h"

#include "engine/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

#define POLL_MS 1000	   /* longest sleep between two passes */
#define BACKOFF_MIN_MS 100 /* while Redis is away */
#define BACKOFF_MAX_MS 5000
#define ALL_PER_STEP 100 /* catch_up = all: jobs per step at most */
#define WALK_MAX 1000000 /* ticks counted when skipping at most */
#define DAY_MS INT64_C(86400000)

struct jobd_scheduler {
	const struct jobd_conf *conf; /* borrowed */
	struct jobd_store *st;	      /* used by the thread only */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled at stop */
	bool stop;	   /* under mu */
};

/* Creates the job of tick TICK of SC; *JOB its id (0 when refused). */
static int fire(struct jobd_store *st, const struct jobd_schedule_conf *sc,
		int64_t tick, int64_t *job)
{
	struct jobd_spec spec = { 0 };
	struct jobd_created out;
	char key[512], actor[300], when[JOBD_ISO_SIZE];
	int rc;

	snprintf(key, sizeof(key), "schedule:%s:%lld", sc->name,
		 (long long)tick);
	snprintf(actor, sizeof(actor), "schedule:%s", sc->name);
	spec.type = sc->type;
	spec.key = key;
	spec.payload = sc->payload;
	spec.low_priority = sc->low_priority;
	spec.payload_checked = true; /* checked by the conf */
	rc = jobd_store_create(st, actor, &spec, 1, &out);
	if (rc < 0)
		return rc;
	*job = out.id;
	jobd_util_iso(tick, when);
	if (out.error[0])
		jobd_error("scheduler: [schedule.%s] tick %s: job refused: %s",
			   sc->name, when, out.error);
	else if (out.existed)
		jobd_debug(
			"scheduler: [schedule.%s] tick %s: job %lld already created",
			sc->name, when, (long long)out.id);
	else
		jobd_info("scheduler: [schedule.%s] tick %s: job %lld created",
			  sc->name, when, (long long)out.id);
	return 0;
}

/*
 * The latest tick of SC at or before NOW, counting from FIRST (a tick,
 * <= NOW) into *COUNT. After a very long outage the count starts a day
 * before NOW instead and is a lower bound.
 */
static int64_t latest_tick(const struct jobd_schedule_conf *sc, int64_t first,
			   int64_t now, int64_t *count)
{
	int64_t last = first, t;

	*count = 1;
	while ((t = jobd_cron_next(&sc->expr, sc->tz, last)) >= 0 && t <= now) {
		last = t;
		if (++*count >= WALK_MAX) {
			/* Only the latest matters from here on. */
			last = jobd_cron_next(&sc->expr, sc->tz, now - DAY_MS);
			while ((t = jobd_cron_next(&sc->expr, sc->tz, last)) >=
				       0 &&
			       t <= now)
				last = t;
			break;
		}
	}
	return last;
}

int jobd_scheduler_step(struct jobd_store *st,
			const struct jobd_schedule_conf *sc, int64_t now)
{
	struct jobd_schedule_state state;
	char when[JOBD_ISO_SIZE];
	int64_t first, last, count, job = 0;
	int rc;

	rc = jobd_store_schedule_get(st, sc->name, &state);
	if (rc < 0)
		return rc;
	if (!state.tick) {
		/* Never seen: from now on, nothing of the past. */
		rc = jobd_store_schedule_mark(st, sc->name, now, 0, 0, 0);
		if (rc == 1)
			jobd_info(
				"scheduler: [schedule.%s] new, first tick at %s",
				sc->name,
				jobd_util_iso(jobd_cron_next(&sc->expr, sc->tz,
							     now),
					      when));
		return rc < 0 ? rc : 0;
	}
	first = jobd_cron_next(&sc->expr, sc->tz, state.tick);
	if (first < 0 || first > now)
		return 0;
	if (!sc->enabled) {
		rc = jobd_store_schedule_mark(st, sc->name, now, 0, 0, 0);
		return rc < 0 ? rc : 0;
	}
	if (sc->catch_up_mode == JOBD_CATCH_UP_ALL) {
		/* Oldest first, a bounded number per step. */
		for (int i = 0; i < ALL_PER_STEP && first >= 0 && first <= now;
		     i++) {
			if ((rc = fire(st, sc, first, &job)) < 0 ||
			    (rc = jobd_store_schedule_mark(st, sc->name, first,
							   first, job, 0)) < 0)
				return rc;
			first = jobd_cron_next(&sc->expr, sc->tz, first);
		}
		return 0;
	}
	last = latest_tick(sc, first, now, &count);
	jobd_util_iso(last, when);
	if (sc->catch_up_mode == JOBD_CATCH_UP_NONE &&
	    now - last > JOBD_SCHEDULE_GRACE_MS) {
		rc = jobd_store_schedule_mark(st, sc->name, last, 0, 0, count);
		if (rc == 1)
			jobd_warn(
				"scheduler: [schedule.%s] %lld missed tick%s skipped, the "
				"latest %s (catch_up = none)",
				sc->name, (long long)count,
				count == 1 ? "" : "s", when);
		return rc < 0 ? rc : 0;
	}
	if ((rc = fire(st, sc, last, &job)) < 0)
		return rc;
	rc = jobd_store_schedule_mark(st, sc->name, last, last, job, count - 1);
	if (rc == 1 && count > 1)
		jobd_warn(
			"scheduler: [schedule.%s] %lld missed tick%s skipped, fired the "
			"latest, %s (catch_up = latest)",
			sc->name, (long long)(count - 1), count == 2 ? "" : "s",
			when);
	return rc < 0 ? rc : 0;
}

/* Waits MS or until stop; returns true when stopping. */
static bool nap(struct jobd_scheduler *s, int64_t ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stop &&
	       pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
		;
	stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static void *thread_main(void *arg)
{
	struct jobd_scheduler *s = arg;
	const struct jobd_conf *conf = s->conf;
	int64_t backoff = 0, now, wait, next;
	bool failed;

	do {
		failed = jobd_store_time(s->st, &now) < 0;
		wait = POLL_MS;
		for (size_t i = 0; !failed && i < conf->schedules_count; i++) {
			const struct jobd_schedule_conf *sc =
				&conf->schedules[i];

			if (jobd_scheduler_step(s->st, sc, now) < 0) {
				failed = true;
				break;
			}
			next = jobd_cron_next(&sc->expr, sc->tz, now);
			/* Just past the tick, so Redis's clock has it. */
			if (sc->enabled && next >= 0 && next - now + 5 < wait)
				wait = next - now + 5;
		}
		if (failed) {
			backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
						    BACKOFF_MAX_MS);
			jobd_warn("scheduler: %s (retrying in %lld ms)",
				  jobd_store_errstr(s->st), (long long)backoff);
			wait = backoff;
		} else {
			backoff = 0;
		}
	} while (!nap(s, wait));
	return NULL;
}

struct jobd_scheduler *jobd_scheduler_start(const struct jobd_conf *conf,
					    char *errstr, size_t errstr_size)
{
	struct jobd_scheduler *s;
	pthread_condattr_t ca;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	s->conf = conf;
	s->st = jobd_store_new(conf, errstr, errstr_size);
	if (!s->st)
		goto err_free;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&s->thread, NULL, thread_main, s);
	if (err) {
		snprintf(errstr, errstr_size,
			 "cannot start the scheduler thread: %s",
			 strerror(err));
		goto err_sync;
	}
	jobd_info("scheduler: %zu schedule%s", conf->schedules_count,
		  conf->schedules_count == 1 ? "" : "s");
	return s;

err_sync:
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	jobd_store_free(s->st);
err_free:
	free(s);
	return NULL;
}

void jobd_scheduler_stop(struct jobd_scheduler *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	jobd_store_free(s->st);
	free(s);
}

/* --- the list ----------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
	char buf[JOBD_ISO_SIZE];

	return ms > 0 ? json_string(jobd_util_iso(ms, buf)) : json_null();
}

static const char *const catch_up_names[] = { "latest", "none", "all" };

json_t *jobd_schedules_json(const struct jobd_conf *conf, struct jobd_store *st)
{
	json_t *arr = json_array();
	int64_t now;

	if (!arr)
		return NULL;
	if (jobd_store_time(st, &now) < 0)
		goto err;
	for (size_t i = 0; i < conf->schedules_count; i++) {
		const struct jobd_schedule_conf *sc = &conf->schedules[i];
		struct jobd_schedule_state state;
		struct jobd_job *job = NULL;
		json_t *o, *last = json_null();
		int64_t next;

		if (jobd_store_schedule_get(st, sc->name, &state) < 0)
			goto err;
		if (state.job > 0) {
			int64_t jnow;
			int rc = jobd_store_get(st, state.job, &job, &jnow);

			if (rc == JOBD_STORE_ERR_REDIS)
				goto err;
			last = json_pack("{s:I, s:s?, s:o}", "id",
					 (json_int_t)state.job, "status",
					 job ? jobd_status_names[job->status] :
					       NULL,
					 "tick", time_json(state.fired));
			jobd_job_free(job);
		}
		next = sc->enabled ?
			       jobd_cron_next(&sc->expr, sc->tz,
					      state.tick > now ? state.tick :
								 now) :
			       -1;
		o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:s, s:o, "
			      "s:o, s:I}",
			      "name", sc->name, "cron", sc->cron, "timezone",
			      sc->timezone, "type", sc->type, "payload",
			      json_loads(sc->payload, JSON_DECODE_ANY, NULL),
			      "low_priority", sc->low_priority, "enabled",
			      sc->enabled, "catch_up",
			      catch_up_names[sc->catch_up_mode], "next_run",
			      time_json(next), "last", last, "missed",
			      (json_int_t)state.missed);
		if (!o || json_array_append_new(arr, o) < 0)
			goto err;
	}
	return arr;

err:
	json_decref(arr);
	return NULL;
}
