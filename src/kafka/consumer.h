/*
 * consumer: the "consume" role. Turns the messages of jobs.events,
 * jobs.records and jobs.actions into jobs (docs/kafka-messages.md), in its own
 * thread with its own store connection.
 *
 * Loop: poll a batch (up to JOBD_CONSUMER_BATCH messages or 50 ms), decode
 * each message, create all the jobs with one call (sent before the
 * previous batch is finished, so Redis works while the next batch is
 * decoded), send the messages that cannot become jobs to the dead-letter
 * topic, then commit the batch's offsets. Redis or Kafka unreachable: the same batch is
 * retried with a backoff (100 ms doubling to 5 s) and nothing is committed
 * until it went through; idempotency keys make the retries safe.
 */
#ifndef JOBD_SRC_KAFKA_CONSUMER_H
#define JOBD_SRC_KAFKA_CONSUMER_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/conf.h"

/* Most messages turned into jobs per batch. */
#define JOBD_CONSUMER_BATCH 500

struct jobd_consumer;

/* Counters since start, readable from any thread (e.g. for /metrics). */
struct jobd_consumer_stats {
	uint64_t messages;	/* messages consumed and committed */
	uint64_t created;	/* jobs created */
	uint64_t existed;	/* messages whose key named an existing job */
	uint64_t dead_lettered; /* messages sent to the dead-letter topic */
	uint64_t retries;	/* batch retries after Redis or Kafka errors */
	int64_t lag;		/* messages not yet consumed, -1 = unknown */
	bool paused;		/* backpressure: pending_limit reached */
};

/*
 * Connects to Redis, resolves the brokers (starting or joining the embedded
 * one), joins the group conf->group and starts the thread. CONF is borrowed
 * and must outlive the consumer. Returns NULL with the reason in errstr
 * (bad kafka property, Redis unreachable at start).
 */
struct jobd_consumer *jobd_consumer_start(const struct jobd_conf *conf,
					  char *errstr, size_t errstr_size);

/* Copies the counters of C into OUT. */
void jobd_consumer_stats(struct jobd_consumer *c,
			 struct jobd_consumer_stats *out);

/*
 * Stops the thread after its current batch (a batch still waiting for
 * Redis is abandoned uncommitted: it is consumed again later), leaves the
 * group, stops or leaves the embedded broker and frees C. NULL is a no-op.
 */
void jobd_consumer_stop(struct jobd_consumer *c);

#endif
