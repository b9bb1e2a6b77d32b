/*
 * worker: the worker pool of one jobd instance (role "work").
 *
 * Claims ready jobs from the store in batches (fair per root, low priority
 * capped at ceil(low_priority_share * workers), at least one), runs their
 * handlers (handler.h) on conf->workers threads, writes what they report
 * in batches, renews their leases with one heartbeat call per interval and
 * acts on what the heartbeat answers (stop, fenced). See worker.c for the
 * threads and how they share work.
 */
#ifndef JOBD_SRC_ENGINE_WORKER_H
#define JOBD_SRC_ENGINE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"

struct jobd_workers;

/*
 * Connects to Redis (one connection per thread that talks to it) and
 * starts the threads. CONF is borrowed and must outlive the pool. Returns
 * NULL with the reason in errstr (Redis unreachable, no threads).
 */
struct jobd_workers *jobd_workers_start(const struct jobd_conf *conf,
					char *errstr, size_t errstr_size);

/*
 * Graceful stop, then frees W (NULL is a no-op): stops claiming, asks the
 * running handlers to checkpoint and stop, hands their jobs back
 * ("shutdown": in progress -> pending, stopping -> stopped) and returns
 * before their leases would expire. Handlers still running after half a
 * lease are abandoned (exec processes killed) and handed back at their last
 * checkpoint.
 */
void jobd_workers_stop(struct jobd_workers *w);

/* Counters for tests and the metrics page (a consistent snapshot). */
struct jobd_workers_stats {
	int64_t claimed;     /* jobs claimed since start */
	int64_t finished;    /* finish calls written (any outcome) */
	int64_t handed_back; /* jobs handed back */
	int64_t fenced;	     /* attempts abandoned: fenced or lease lost */
	int running;	     /* handlers running now */
	int queued;	     /* jobs claimed ahead, waiting for a worker */
	int running_low;     /* of the running ones low priority */
	int max_claimed_low; /* most low-priority jobs claimed (running or
			      * queued) at once: low_priority_share */
};

void jobd_workers_stats(struct jobd_workers *w, struct jobd_workers_stats *out);

#endif
