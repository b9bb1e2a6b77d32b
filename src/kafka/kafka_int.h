/*
 * kafka_int: for the files of src/kafka/ that wrap librdkafka only
 * (kafka.c, mock_broker.c, producer.c, reader.c): what they share.
 */
#ifndef JOBD_SRC_KAFKA_KAFKA_INT_H
#define JOBD_SRC_KAFKA_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "base/conf.h"

/*
 * The prefix of the topic the embedded broker's owner creates so that
 * keys of messages without an id never collide with those of an earlier
 * broker (mock_broker.c explains).
 */
#define JOBD_KAFKA_EPOCH_PREFIX "__jobd.epoch."

/* Sets property NAME of KCONF; 0, or -1 with a message naming it. */
int kafka_set(rd_kafka_conf_t *kconf, const char *name, const char *value,
	      char *errstr, size_t errstr_size);

/*
 * A librdkafka conf: DEFAULTS, then EXTRA (name, value pairs, each
 * NULL-terminated or NULL), then the [kafka] kafka.* properties (they
 * win), then BROKERS.
 */
rd_kafka_conf_t *kafka_new_conf2(const struct jobd_conf *conf,
				 const char *brokers,
				 const char *const *defaults,
				 const char *const *extra, char *errstr,
				 size_t errstr_size);

/*
 * A librdkafka conf: DEFAULTS (name, value pairs, NULL-terminated), then
 * the [kafka] kafka.* properties (they win), then BROKERS.
 */
rd_kafka_conf_t *kafka_new_conf(const struct jobd_conf *conf,
				const char *brokers,
				const char *const *defaults, char *errstr,
				size_t errstr_size);

/*
 * A consumer handle made from KCONF (taken, freed on failure too), its
 * main queue forwarded to the consumer queue; NULL with the reason in
 * ERRSTR. For group consumers and for readers that never join one.
 */
rd_kafka_t *kafka_new_consumer(rd_kafka_conf_t *kconf, char *errstr,
			       size_t errstr_size);

#endif
