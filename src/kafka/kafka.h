/*
 * kafka: every librdkafka call of jobd
 * (CONTRIBUTING.md, "One concept per file").
 *
 * Seven things live here:
 * - a producer that sends a batch of messages (with headers) and waits for
 *   their delivery reports, saying what became of each: the dead-letter
 *   queue, `jobctl send`, stats, sinks;
 * - a consumer in a group with manual offset commits: poll a batch, turn it
 *   into jobs, commit the batch only after Redis acked (offsets are never
 *   stored or committed automatically); pause/resume for backpressure;
 * - the embedded broker (`brokers = embedded`): librdkafka's mock cluster
 *   started inside jobd, its address published in Redis (<prefix>:broker,
 *   through the store's jobd_store_broker_publish(), its TTL refreshed by
 *   jobd_kafka_broker_tick() below) so kcat, jobctl and other jobd
 *   instances find it; a second instance joins the live one and takes over
 *   (starts its own) once the key expires;
 * - reading the last message of a partition (watermarks, then a fetch at
 *   high - 1 without a group): where the stats producer resumes;
 * - a reader of whole partitions from a given offset, without a group:
 *   export from a topic;
 * - a handle that asks a group's committed offsets and the watermarks
 *   without joining the group: the Kafka view's, apart from the consumer;
 * - the pass-through of `[kafka] kafka.<property> = value` to librdkafka,
 *   applied after jobd's defaults so SASL/SSL or any tuning works.
 *
 * librdkafka's own log lines are routed to jobd_log (notices and below at
 * debug level). Handles are used by one thread at a time.
 */
#ifndef JOBD_SRC_KAFKA_KAFKA_H
#define JOBD_SRC_KAFKA_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"

struct jobd_store;

/* How long the embedded broker's Redis key lives without a refresh. */
#define JOBD_KAFKA_BROKER_TTL_MS 10000

/* The version of the librdkafka jobd runs with, e.g. "2.0.2". */
const char *jobd_kafka_version(void);

/* --- where the brokers are ---------------------------------------------- */

struct jobd_kafka_broker;

/*
 * Resolves conf->brokers. A list of host:port is used as is. "embedded"
 * joins the embedded broker whose address is in Redis, or starts one (mock
 * cluster with the five topics of CONF: stats 1 partition, the others 4),
 * claims the key and logs "kafka: embedded broker at 127.0.0.1:PORT".
 * CONF is borrowed and must outlive the handle. Returns NULL with the
 * reason in errstr (Redis unreachable, librdkafka error). Caller frees with
 * jobd_kafka_broker_free().
 */
struct jobd_kafka_broker *jobd_kafka_broker_new(const struct jobd_conf *conf,
						char *errstr,
						size_t errstr_size);

/* Bootstrap address list; borrowed, valid until the next tick or free. */
const char *jobd_kafka_broker_address(const struct jobd_kafka_broker *b);

/* Whether this handle runs the embedded broker itself. */
bool jobd_kafka_broker_owned(const struct jobd_kafka_broker *b);

/*
 * Call about once a second. Embedded: refreshes our key, or checks the
 * peer's and takes over when it expired. Returns 1 when the address
 * changed (recreate consumers and producers), 0 when not (also for a real
 * cluster), or -1 when Redis did not answer (retriable: nothing changed,
 * errstr says why).
 */
int jobd_kafka_broker_tick(struct jobd_kafka_broker *b, char *errstr,
			   size_t errstr_size);

/*
 * For fault tests (tests/drivers/kafka_driver --slow): the embedded
 * broker that B runs answers its next N requests of Kafka protocol
 * API_KEY (e.g. 2 ListOffsets, 9 OffsetFetch) RTT_MS late, each on its
 * own connection; tops up to N what earlier calls left. 0, or -1 when B
 * runs no broker.
 */
int jobd_kafka_broker_delay(struct jobd_kafka_broker *b, int16_t api_key,
			    int rtt_ms, size_t n);

/* Deletes our key (so a peer takes over at once) and stops our broker. */
void jobd_kafka_broker_free(struct jobd_kafka_broker *b);

/* --- producer ----------------------------------------------------------- */

struct jobd_kafka_producer;

struct jobd_kafka_header {
	const char *name;  /* borrowed */
	const void *value; /* borrowed, LEN bytes; NULL = a null value */
	size_t len;	   /* bytes */
};

/* One message to send; every pointer borrowed for the call. */
struct jobd_kafka_out {
	const char *topic;
	int32_t partition; /* -1 = by key (or any) */
	const void *key;   /* NULL = no key */
	size_t key_len;	   /* bytes */
	const void *value; /* NULL = a null value ("" for an empty one) */
	size_t len;	   /* bytes */
	const struct jobd_kafka_header *headers;
	size_t nheaders;
};

/*
 * A producer for BROKERS (borrowed for the call; e.g. from
 * jobd_kafka_broker_address) with CONF's kafka.* properties. Returns NULL
 * with librdkafka's reason in errstr.
 */
struct jobd_kafka_producer *
jobd_kafka_producer_new(const struct jobd_conf *conf, const char *brokers,
			char *errstr, size_t errstr_size);

/*
 * What became of one message of a send. Only a refusal of the message
 * itself is final; anything else (brokers or network down, a timeout, a
 * leader moving, a topic that does not exist yet, a missing ACL) may pass
 * and the message is sent again: an operator who grants the right or
 * fixes the broker loses nothing.
 */
enum jobd_kafka_fate {
	JOBD_KAFKA_UNSENT,    /* not acked: send it again */
	JOBD_KAFKA_ACKED,     /* the broker has it */
	JOBD_KAFKA_TOO_LARGE, /* over message.max.bytes, of librdkafka or of
			       * the broker or topic: never goes as it is */
	JOBD_KAFKA_INVALID,   /* refused for what it holds (e.g. no key for
			       * a compacted topic): never goes as it is */
};

/* Asked about once a second while a delivery waits: false = give up. */
typedef bool (*jobd_kafka_wait_fn)(void *arg);

/*
 * Sends N messages and waits for every delivery report for as long as
 * KEEP(ARG) returns true (KEEP NULL: until every report is in; librdkafka
 * gives each within message.timeout.ms, 30 s). When KEEP gives up, the
 * messages not acked yet are purged: they may or may not have arrived.
 * FATES (NULL, or N entries) receives what became of each message, so
 * that a retry sends only those JOBD_KAFKA_UNSENT. Returns 0 when all
 * were acked; -1 when not, with the first failure in errstr (the first
 * message to send again, when there is one); -2 when
 * moreover the producer cannot send any more (an idempotence error
 * librdkafka calls fatal): free it and make a new one.
 */
int jobd_kafka_producer_send(struct jobd_kafka_producer *p,
			     const struct jobd_kafka_out *msgs, size_t n,
			     jobd_kafka_wait_fn keep, void *arg,
			     enum jobd_kafka_fate *fates, char *errstr,
			     size_t errstr_size);

void jobd_kafka_producer_free(struct jobd_kafka_producer *p);

/*
 * Like jobd_kafka_producer_new, with PROPS (name, value pairs,
 * NULL-terminated, borrowed for the call) applied after jobd's producer
 * defaults and before CONF's kafka.* properties (which still win). E.g.
 * "message.timeout.ms", "0" for a producer whose messages never expire:
 * the idempotent producer then retries a message with its original
 * sequence number until the broker has it, so no retry duplicates it.
 */
struct jobd_kafka_producer *
jobd_kafka_producer_new_props(const struct jobd_conf *conf, const char *brokers,
			      const char *const *props, char *errstr,
			      size_t errstr_size);

/*
 * Sends N messages in order and waits for every delivery report for as
 * long as KEEP(ARG) returns true (KEEP NULL: until delivered). *ACKED =
 * how many leading messages were acked (delivery order is send order for
 * one partition of an idempotent producer). Returns 0 when all were acked;
 * -1 when one failed (errstr says why); -2 when KEEP gave up: the rest
 * were purged and may or may not have arrived. After -1 or -2 free the
 * producer and make a new one.
 */
int jobd_kafka_producer_deliver(struct jobd_kafka_producer *p,
				const struct jobd_kafka_out *msgs, size_t n,
				jobd_kafka_wait_fn keep, void *arg,
				size_t *acked, char *errstr,
				size_t errstr_size);

/*
 * One-shot send of BUF (LEN bytes, borrowed) to TOPIC, for `jobctl send`:
 * resolves "embedded" through the Redis key (never starts a broker: an
 * error when none is alive), waits for the delivery report (10 s). Returns
 * 0, or -1 with the reason in errstr (Redis or Kafka unreachable: jobctl
 * exit code 3).
 */
int jobd_kafka_send(const struct jobd_conf *conf, const char *topic,
		    const void *buf, size_t len, char *errstr,
		    size_t errstr_size);

/*
 * The bootstrap list handlers use: CONF's brokers, or for "embedded" the
 * live embedded broker's address read from Redis through ST (borrowed;
 * NULL = a connection of its own for the call). Never starts a broker.
 * Copied into BUF of SIZE. Returns 0, or -1 with the reason in errstr
 * (Redis unreachable, or no embedded broker alive: both retriable).
 */
int jobd_kafka_brokers(const struct jobd_conf *conf, struct jobd_store *st,
		       char *buf, size_t size, char *errstr,
		       size_t errstr_size);

/* --- reading the end of a partition ---------------------------------- */

/*
 * Reads the last message of TOPIC/PARTITION on BROKERS (all borrowed for
 * the call): queries the watermark offsets and fetches the message at
 * high - 1 (stepping back over a few offsets that hold no message, such as
 * transaction markers), without a consumer group. *KEY is a new
 * NUL-terminated copy of its key (NULL when it has none; caller frees with
 * free()), *OFFSET its offset. Returns 1, 0 when the partition (or the
 * topic) is empty, or -1 (broker unreachable within TIMEOUT_MS) with the
 * reason in errstr.
 */
int jobd_kafka_last_message(const struct jobd_conf *conf, const char *brokers,
			    const char *topic, int32_t partition,
			    int timeout_ms, char **key, int64_t *offset,
			    char *errstr, size_t errstr_size);

/* --- reading a whole topic --------------------------------------------- */

/*
 * A reader: a consumer without a group (nothing joined, nothing
 * committed) that reads one partition at a time from a given offset, for
 * export from a topic. Used by one thread at a time.
 */
struct jobd_kafka_reader;
struct jobd_kafka_message; /* below, with the consumer */

/*
 * A reader of TOPIC on BROKERS (both borrowed for the call), *NPARTS set
 * to the topic's partition count. Returns NULL with the reason in errstr:
 * `topic "x" does not exist`, or the broker did not answer within
 * TIMEOUT_MS. Caller frees with jobd_kafka_reader_free().
 */
struct jobd_kafka_reader *
jobd_kafka_reader_new(const struct jobd_conf *conf, const char *brokers,
		      const char *topic, int timeout_ms, int32_t *nparts,
		      char *errstr, size_t errstr_size);

/* Asks the broker for PARTITION's low and high watermarks now. 0 or -1. */
int jobd_kafka_reader_watermarks(struct jobd_kafka_reader *r, int32_t partition,
				 int timeout_ms, int64_t *low, int64_t *high,
				 char *errstr, size_t errstr_size);

/*
 * Reads PARTITION from OFFSET on (from the earliest kept message when
 * OFFSET is below it), instead of what was read before. 0 or -1.
 */
int jobd_kafka_reader_seek(struct jobd_kafka_reader *r, int32_t partition,
			   int64_t offset, char *errstr, size_t errstr_size);

/*
 * The next message of the partition sought, waiting up to TIMEOUT_MS:
 * 1 with *MSG filled (borrowed until jobd_kafka_messages_release(MSG,
 * 1)); 0 at a partition's current end, *MSG then naming only its
 * partition and end offset (nothing to release); -1 with the reason in
 * errstr (timed out, broker error: retriable with a new reader).
 */
int jobd_kafka_reader_next(struct jobd_kafka_reader *r,
			   struct jobd_kafka_message *msg, int timeout_ms,
			   char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void jobd_kafka_reader_free(struct jobd_kafka_reader *r);

/* --- consumer ----------------------------------------------------------- */

struct jobd_kafka_consumer;

/* A consumed message; borrowed from its batch until the batch is released. */
struct jobd_kafka_message {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *value; /* NULL for an empty (null) message */
	size_t len;	   /* bytes */
	const void *key;   /* NULL when none */
	size_t key_len;	   /* bytes */
	void *priv;	   /* the library's message */
};

/*
 * Joins GROUP on BROKERS (both borrowed for the call) subscribed to NTOPICS
 * TOPICS, manual commits, reading from the earliest offset when the group
 * has none. Returns NULL with the reason in errstr.
 */
struct jobd_kafka_consumer *
jobd_kafka_consumer_new(const struct jobd_conf *conf, const char *brokers,
			const char *group, const char *const *topics,
			size_t ntopics, char *errstr, size_t errstr_size);

/*
 * Fills MSGS with up to MAX messages: waits up to TIMEOUT_MS for the first,
 * then takes what is already fetched. Serves the rebalance callback.
 * *N = how many (0 on timeout). Release them with
 * jobd_kafka_messages_release() before the next poll.
 */
void jobd_kafka_consumer_poll(struct jobd_kafka_consumer *kc,
			      struct jobd_kafka_message *msgs, size_t max,
			      size_t *n, int timeout_ms);

void jobd_kafka_messages_release(struct jobd_kafka_message *msgs, size_t n);

/*
 * The headers of MSG, in their order (a name may repeat; a value may be
 * NULL), as a new array of *N (caller frees it with free(); the names
 * and values in it are borrowed from MSG until it is released). *HDRS is
 * NULL when MSG has none. Read on demand, not for every message polled:
 * only a dead letter needs them. Returns 0, or -ENOMEM.
 */
int jobd_kafka_message_headers(const struct jobd_kafka_message *msg,
			       struct jobd_kafka_header **hdrs, size_t *n);

/*
 * FN(ARG) runs when partitions are about to be revoked (or lost), inside
 * a poll, in the polling thread: the caller commits there what it took
 * in earlier polls and has not committed yet, while the partitions are
 * still its own. Messages of revoked partitions taken in the poll under
 * way are dropped from it (they come again from the last commit).
 */
void jobd_kafka_consumer_on_revoke(struct jobd_kafka_consumer *kc,
				   void (*fn)(void *arg), void *arg);

/*
 * Commits the offset after the highest one of each partition among MSGS,
 * asynchronously: the jobs are in Redis already, so a commit that fails
 * or is lost only makes the messages come again (kafka.c says why).
 * Returns 0, or -1 with the reason in errstr when it cannot even be
 * sent.
 */
int jobd_kafka_consumer_commit(struct jobd_kafka_consumer *kc,
			       const struct jobd_kafka_message *msgs, size_t n,
			       char *errstr, size_t errstr_size);

/*
 * Pauses (PAUSE true) or resumes fetching of every assigned partition,
 * including partitions assigned later while paused. Returns 0 or -1.
 */
int jobd_kafka_consumer_pause(struct jobd_kafka_consumer *kc, bool pause);

/*
 * The cluster id as a key component: librdkafka's cluster id, and for the
 * embedded broker also its start token (the mock's id repeats between
 * runs, e.g. under ASan). Copied into BUF of SIZE. Returns 0 or -1 (no
 * answer within TIMEOUT_MS).
 */
int jobd_kafka_consumer_cluster_id(struct jobd_kafka_consumer *kc,
				   int timeout_ms, char *buf, size_t size);

/* One partition assigned to a consumer, as the Kafka view shows it. */
struct jobd_kafka_partition {
	char topic[256];   /* a topic name has at most 249 bytes */
	int32_t partition; /* its number */
	int64_t committed; /* the group's committed offset; -1 = none yet */
	int64_t low;	   /* low watermark (earliest offset kept) */
	int64_t high;	   /* high watermark (the next offset written) */
	int64_t lag; /* high - committed (high - low with no commit): every
		      * message not committed yet, whether read or not */
};

/*
 * The partitions assigned to KC (at most MAX of them into PARTS, *N set),
 * with the group's committed offsets and the watermarks asked of the
 * brokers now, each request waiting at most TIMEOUT_MS. Not the cached
 * watermarks of the last fetch nor the read position: those stand still
 * while the consumer is paused or wedged, and the lag read 0 while
 * messages piled up (issue 25). Returns 0 (*N = 0 before the first
 * assignment), or -1 with the reason in errstr (a broker or the group
 * coordinator did not answer): PARTS then holds what was read, -1 for
 * the rest. Call from KC's own thread.
 */
int jobd_kafka_consumer_partitions(struct jobd_kafka_consumer *kc,
				   struct jobd_kafka_partition *parts,
				   size_t max, size_t *n, int timeout_ms,
				   char *errstr, size_t errstr_size);

/*
 * The partitions assigned to KC now (at most MAX into PARTS, *N set; the
 * offsets -1): librdkafka's local state, no request. Call from KC's own
 * thread.
 */
void jobd_kafka_consumer_assignment(struct jobd_kafka_consumer *kc,
				    struct jobd_kafka_partition *parts,
				    size_t max, size_t *n);

/* Leaves the group (commits nothing) and frees KC. NULL is a no-op. */
void jobd_kafka_consumer_free(struct jobd_kafka_consumer *kc);

/* --- offsets of a group, asked apart from its consumer ------------------ */

/*
 * A handle of its own (its own connections to the brokers) that asks
 * for the committed offsets of GROUP and the watermarks, never joining
 * the group nor committing: the Kafka view's, so that a slow answer
 * never waits in front of the consumer's fetches. Used by one thread at
 * a time.
 */
struct jobd_kafka_offsets;

/*
 * For BROKERS and GROUP (borrowed for the call). Returns NULL with the
 * reason in errstr. Caller frees with jobd_kafka_offsets_free().
 */
struct jobd_kafka_offsets *
jobd_kafka_offsets_new(const struct jobd_conf *conf, const char *brokers,
		       const char *group, char *errstr, size_t errstr_size);

/*
 * Fills the offsets and the lag of the N partitions of PARTS (topic and
 * partition set), as jobd_kafka_consumer_partitions() does, each request
 * waiting at most TIMEOUT_MS. 0, or -1 with errstr (PARTS then holds what
 * was read, -1 for the rest).
 */
int jobd_kafka_offsets_ask(struct jobd_kafka_offsets *o,
			   struct jobd_kafka_partition *parts, size_t n,
			   int timeout_ms, char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void jobd_kafka_offsets_free(struct jobd_kafka_offsets *o);

#endif
