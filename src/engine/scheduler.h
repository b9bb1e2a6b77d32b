/*
 * scheduler: the ticker of the [schedule.NAME] sections (docs/schedules.md).
 *
 * Every instance with the work role runs one ticker thread. Each tick of a
 * schedule becomes one job whatever the number of tickers: the job's
 * idempotency key is "schedule:NAME:TICK_MS", so the instances that see
 * the tick all create the same job. No leader is elected, so no tick waits
 * for a failover; the time is Redis's (TIME), the one clock every instance
 * shares. What a ticker did is kept in P:schedule:NAME (store/store.h,
 * jobd_store_schedule_mark): ticks up to its "tick" are handled, so a
 * restart neither repeats nor forgets one.
 *
 * Ticks missed while no ticker ran (every jobd down, Redis down) follow the
 * schedule's catch_up: latest (default) fires the latest missed tick once,
 * none skips them (a tick fires only when seen within
 * JOBD_SCHEDULE_GRACE_MS), all fires every one, oldest first. A schedule
 * never seen before starts at its first tick after now. A disabled
 * schedule fires nothing and its ticks pass as handled, so enabling it
 * again fires nothing old.
 */
#ifndef JOBD_SRC_ENGINE_SCHEDULER_H
#define JOBD_SRC_ENGINE_SCHEDULER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"
#include "store/store.h"

/* How late a tick may be seen and still fire under catch_up = none. */
#define JOBD_SCHEDULE_GRACE_MS 60000

struct jobd_scheduler;

/*
 * Starts the ticker thread over CONF's schedules (CONF borrowed, must
 * outlive it). Returns NULL with the reason in errstr when Redis cannot
 * be reached (retriable).
 */
struct jobd_scheduler *jobd_scheduler_start(const struct jobd_conf *conf,
					    char *errstr, size_t errstr_size);

/* Stops the thread and frees S; NULL is a no-op. */
void jobd_scheduler_stop(struct jobd_scheduler *s);

/*
 * One step of schedule SC at NOW (ms, Redis clock): reads its state,
 * fires what is due by its catch_up, records it. Returns 0 or
 * JOBD_STORE_ERR_REDIS (then nothing was recorded: the next step does it
 * again, and the job's key keeps a repeat from creating a second job).
 */
int jobd_scheduler_step(struct jobd_store *st,
			const struct jobd_schedule_conf *sc, int64_t now);

/*
 * The schedules of CONF with their state, as the JSON array of
 * GET /api/schedules and jobctl schedules --json (docs/schedules.md): a
 * new reference, or NULL with the store's error (jobd_store_errstr).
 */
json_t *jobd_schedules_json(const struct jobd_conf *conf,
			    struct jobd_store *st);

#endif
