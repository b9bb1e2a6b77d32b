/*
 * stats: the "stats" role. Publishes each closed minute of statistics
 * (docs/statistics.md) exactly once on the stats topic (conf->topic_stats,
 * one partition), however many jobd instances run the role, in its own
 * thread with its own store connection. docs/statistics.md describes the
 * messages and the design; the contract is the minute object of
 * `jobctl stats --json`, as JSON or (with [stats] format = msgpack) as a
 * msgpack map, keyed by the minute's ISO time.
 *
 * One instance leads at a time (the Redis lease P:lease:stats, renewed
 * about once a second). The leader publishes the minutes after the marker
 * P:stats:published, in order, waits for their delivery reports, then
 * moves the marker; a new leader first moves the marker to the minute of
 * the topic's last message, so a crash between the broker's ack and the
 * marker's update publishes nothing twice.
 */
#ifndef JOBD_SRC_KAFKA_STATS_PRODUCER_H
#define JOBD_SRC_KAFKA_STATS_PRODUCER_H

#include <stddef.h>

#include "base/conf.h"

/* A minute is closed this long after its end (Redis clock). */
#define JOBD_STATS_GRACE_MS 2000
/* The leader lease's time to live; it is renewed about once a second. */
#define JOBD_STATS_LEASE_MS 10000
/* Most minutes read and published per round (a catch-up takes several). */
#define JOBD_STATS_BATCH 60

struct jobd_stats_producer;

/*
 * Connects to Redis, resolves the brokers (joining the embedded broker, or
 * starting it when none is live) and starts the thread. Kafka need not be
 * reachable: the thread retries. CONF is borrowed and must outlive the
 * producer. Returns NULL with the reason in errstr (Redis unreachable, bad
 * kafka property).
 */
struct jobd_stats_producer *
jobd_stats_producer_start(const struct jobd_conf *conf, char *errstr,
			  size_t errstr_size);

/*
 * Stops the thread (a delivery in progress gets a few seconds to finish),
 * releases the lease so a peer takes over at once, and frees P. NULL is a
 * no-op.
 */
void jobd_stats_producer_stop(struct jobd_stats_producer *p);

#endif
