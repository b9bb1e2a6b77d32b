/*
 * handlers/sink: where an import writes its records (docs/job-types.md,
 * "Sinks"): a Redis collection, a Kafka topic, or a [sink.NAME] command.
 *
 * An import names one or more sinks in its payload; every batch of
 * records goes to each of them in the order given, and the chunk
 * checkpoints only after all of them took it. Internal to src/handlers/.
 */
#ifndef JOBD_SRC_HANDLERS_SINK_H
#define JOBD_SRC_HANDLERS_SINK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/handler.h"
#include "store/records.h"
#include "store/store.h"

/* Longest Kafka topic name (Kafka's own limit). */
#define JOBD_SINK_TOPIC_MAX 249

/*
 * Whether a job may read or write topic NAME (an import's sink, an
 * export's source): it must be a valid topic name (1-249 of
 * [A-Za-z0-9._-], not "." or ".."), be listed in CONF's [topics] allowed
 * (exactly, or by a prefix ending in '*'), and be neither one of jobd's
 * own topics (input, stats, dead letters) nor Kafka's internal ("__...").
 * When not, false with the reason in WHY.
 */
bool jobd_sinks_topic_allowed(const struct jobd_conf *conf, const char *name,
			      char *why, size_t why_size);

/* The sinks of one import job. */
struct jobd_sinks;

/*
 * The sinks of PAYLOAD (borrowed for the call): "collection": NAME (the
 * original form) and/or "sink": an object, or an array of objects, each
 * with exactly one of "collection", "topic" or "command" (a [sink.NAME]
 * of CONF, borrowed until jobd_sinks_free). Returns a new set, or NULL
 * with the reason in WHY (no sink, a bad name, an unknown command).
 */
struct jobd_sinks *jobd_sinks_new(const struct jobd_conf *conf,
				  const json_t *payload, char *why,
				  size_t why_size);

/* "collection contacts, topic crm.contacts"; borrowed from S. */
const char *jobd_sinks_describe(const struct jobd_sinks *s);

/*
 * Writes N records (borrowed) to every sink of S, in order: a collection
 * with retries while Redis is away (relationship-updates keyed by
 * KEY_BASE), a topic with delivery confirmed (retried, then failed), a
 * command run uninterruptibly (its exit status decides). LINES names the
 * rows for messages ("lines 2-501"). Returns 0 when every sink took the
 * batch, JOBD_HANDLER_STOPPED (stop or abandon while waiting: the batch
 * is not done) or JOBD_HANDLER_FAILED (the job failed with the reason).
 */
int jobd_sinks_write(struct jobd_sinks *s, struct jobd_ctx *ctx,
		     struct jobd_store *st, const struct jobd_record *recs,
		     size_t n, const char *key_base, const char *lines);

/* Frees S and its producer. NULL is a no-op. */
void jobd_sinks_free(struct jobd_sinks *s);

#endif
