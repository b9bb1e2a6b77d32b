/*
 * deadletter: the record jobd sends to the dead-letter topic for a
 * message that cannot become a job (docs/kafka-messages.md).
 *
 * A dead letter is the message as it came (its key, its value, every
 * header in order) plus jobd's headers: jobd-reason (why) and jobd-source
 * (topic/partition@offset). A message that would make a dead letter over
 * [kafka] dlq_max_bytes is cut instead, so that the broker (1 MiB by
 * default) or librdkafka (message.max.bytes, 1,000,000) does not refuse
 * it: four forms, the first that fits is sent.
 *
 * - whole: as above;
 * - truncated: the value cut to its first bytes, key and headers kept,
 *   and three headers more: jobd-original-size (the value's size in
 *   bytes, decimal), jobd-original-sha256 (its SHA-256, 64 lowercase hex
 *   digits), jobd-truncated = "value";
 * - emptied: as truncated, with none of the value kept: sent when the
 *   broker or librdkafka refused the whole or truncated form anyway (a
 *   topic with a smaller max.message.bytes, dlq_max_bytes set too high),
 *   so that the key and headers still reach the topic;
 * - reference: only jobd's five headers (jobd-truncated = "record"), no
 *   key, an empty value: the message itself is still at jobd-source
 *   until the topic's retention drops it. Used when the key and headers
 *   alone do not fit, and when a broker refused the emptied form too (a
 *   record it finds invalid, a limit under the key and headers).
 *
 * The size that dlq_max_bytes bounds is librdkafka's: key, value, and
 * each header's name and value, counted here with 10 bytes of framing a
 * header (librdkafka's two varints take at most that).
 *
 * The digest is OpenSSL's (libcrypto, already linked by librdkafka): this
 * module is its one caller. Rejected: a SHA-256 of our own, 150 lines to
 * get right and test for a value that only needs to match sha256sum.
 */
#ifndef JOBD_SRC_KAFKA_DEADLETTER_H
#define JOBD_SRC_KAFKA_DEADLETTER_H

#include <stddef.h>

#include "kafka/kafka.h"

/* Framing counted for each header, on top of its name and value. */
#define JOBD_DEADLETTER_HEADER_BYTES 10

/*
 * Least dlq_max_bytes: a reference record always fits, with a reason up
 * to 1 KiB and a source up to 1 KiB.
 */
#define JOBD_DEADLETTER_MIN_BYTES 4096

/* The forms of a dead letter, from the most of its message kept. */
enum jobd_deadletter_form {
	JOBD_DEADLETTER_WHOLE,
	JOBD_DEADLETTER_TRUNCATED,
	JOBD_DEADLETTER_EMPTIED,
	JOBD_DEADLETTER_REFERENCE,
};

struct jobd_deadletter {
	struct jobd_kafka_out out; /* the record to send: borrows from the
				    * message and from this struct */
	enum jobd_deadletter_form form;
	size_t original;		   /* bytes of the message's value */
	struct jobd_kafka_header *headers; /* out.headers, owned */
	char size[24];			   /* ORIGINAL in decimal */
	char sha256[65]; /* the value's SHA-256, hex; "" for whole */
};

/*
 * Builds in DL the dead letter for TOPIC of MSG (its key and value),
 * whose headers are HDRS (NHDRS of them), refused because of REASON, from
 * SOURCE ("topic/partition@offset"): the first form from LEAST on that
 * takes at most MAX_BYTES (the reference form whatever it takes). All
 * pointers are borrowed, and DL->out points into them, until
 * jobd_deadletter_release(DL). Returns 0, or -ENOMEM.
 */
int jobd_deadletter_init(struct jobd_deadletter *dl, const char *topic,
			 const struct jobd_kafka_message *msg,
			 const struct jobd_kafka_header *hdrs, size_t nhdrs,
			 const char *reason, const char *source,
			 size_t max_bytes, enum jobd_deadletter_form least);

/* Frees what DL owns. A zeroed DL is a no-op. */
void jobd_deadletter_release(struct jobd_deadletter *dl);

/* The size of OUT as dlq_max_bytes counts it (key, value, headers). */
size_t jobd_deadletter_size(const struct jobd_kafka_out *out);

/* "whole", "truncated", "emptied" or "reference". */
const char *jobd_deadletter_form_name(enum jobd_deadletter_form form);

#endif
