/*
 * stats_marker: the Redis state of the stats producer (src/kafka/stats_producer.c)
 * beyond its leader lease: the published-up-to marker, and the closed
 * minutes to publish. A file of the store layer (it uses store_int.h), so
 * hiredis stays there (CONTRIBUTING.md, "One concept per file").
 *
 * Keys (docs/redis-keys.md): P:stats:published (string, ms of the start of
 * the last minute published on the stats topic; no TTL), read together
 * with P:lease:stats (the lease), P:stats:minutes and P:stats:m:MINUTE
 * (written by the transition scripts).
 *
 * The store's jobd_store_stats() answers with hourly rollups for windows
 * over six hours, but a producer catching up after a long Kafka outage
 * needs every minute, in bounded batches: jobd_stats_marker_minutes()
 * reads minute hashes directly. Its field parser must match the store's.
 */
#ifndef JOBD_SRC_STORE_STATS_MARKER_H
#define JOBD_SRC_STORE_STATS_MARKER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The lease name the producers compete for (P:lease:stats). */
#define JOBD_STATS_LEASE "stats"

/*
 * The marker: *MS = start of the last published minute. Returns 1 when
 * set, 0 when not (nothing published yet), or JOBD_STORE_ERR_REDIS.
 */
int jobd_stats_marker_get(struct jobd_store *st, int64_t *ms);

/*
 * Moves the marker forward to MS (never back) if HOLDER (borrowed) holds
 * the lease JOBD_STATS_LEASE: one script, so a producer that lost the
 * lease cannot move it. Returns 1 done (or already at or past MS), 0 when
 * HOLDER does not hold the lease, or JOBD_STORE_ERR_REDIS.
 */
int jobd_stats_marker_advance(struct jobd_store *st, const char *holder,
			      int64_t ms);

/*
 * The oldest minute that has statistics (P:stats:minutes) into *MS, and
 * Redis's clock into *NOW. Returns 1, 0 when no minute has any, or
 * JOBD_STORE_ERR_REDIS.
 */
int jobd_stats_marker_first(struct jobd_store *st, int64_t *ms, int64_t *now);

/*
 * Up to MAX closed minutes from FROM (ms, a minute start) on, oldest
 * first, with zero counts for minutes without activity. A minute is closed
 * once Redis's clock is past its end plus GRACE_MS, so that transitions
 * that began in it and committed a little later are counted. OUT
 * (release with jobd_stats_release) holds 0..MAX minutes, all with
 * closed = true, and out->now = Redis's clock.
 */
int jobd_stats_marker_minutes(struct jobd_store *st, int64_t from, size_t max,
			      int64_t grace_ms, struct jobd_stats *out);

#endif
