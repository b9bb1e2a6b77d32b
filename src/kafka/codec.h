/*
 * codec: turns one Kafka message (a JSON object or a msgpack map) from
 * jobs.events, jobs.records or jobs.actions into a job request: the
 * envelope fields checked and copied out, the payload as compact JSON text.
 * docs/kafka-messages.md is the contract.
 *
 * Pure: no I/O, no globals, safe from any thread.
 */
#ifndef JOBD_SRC_KAFKA_CODEC_H
#define JOBD_SRC_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Containers nested deeper than this (the message's own object is level 1)
 * are refused, in JSON and msgpack alike. */
#define JOBD_CODEC_MAX_DEPTH 64

enum jobd_topic_kind {
	JOBD_TOPIC_EVENTS,
	JOBD_TOPIC_RECORDS,
	JOBD_TOPIC_ACTIONS,
};

/*
 * One decoded message. Every string is NUL-terminated valid UTF-8 without
 * NUL bytes inside, and owned by the request: release with
 * jobd_codec_request_release().
 */
struct jobd_request {
	char *id;     /* "id" as text (integer: decimal); NULL when absent */
	char *type;   /* job type: "event", "import", "export" or "action" */
	char *run_by; /* user name; NULL when absent, null or "" */
	bool low_priority; /* records and actions only; false when absent */
	char *payload; /* job payload, compact JSON object text; never NULL */
	size_t payload_len; /* bytes in payload, without the NUL */
	char *service;	    /* events only: the legacy service; else NULL */
	char *event;	    /* events only: the event name; else NULL */
	char *action;	    /* actions only: the action name; else NULL */
	int64_t run_at;	    /* ms since the epoch; 0 = now */
	int64_t delay;	    /* ms after creation; 0 = none */
};

/*
 * Decodes BUF of LEN bytes (borrowed for the call) taken from a topic of
 * KIND into REQ (overwritten; zeroed on failure, so releasing it is always
 * safe). The payload text may be at most MAX_PAYLOAD bytes, and a message
 * over twice that is refused before it is parsed; 0 means no limit.
 *
 * Rules (docs/kafka-messages.md, "Message format"): leading JSON whitespace is
 * skipped before the format is chosen; a field whose value is null counts as
 * absent; an empty "id" is refused (it would make every such message the same
 * job); unknown fields are ignored; a repeated key: the last one wins.
 *
 * Returns 0; -EINVAL when the message cannot become a job (a poison
 * message: dead-letter it), with the reason in ERRSTR (printable ASCII,
 * e.g. `missing "type"`; byte positions count from 0, for JSON as jansson
 * reports them, just past the offending token); or -ENOMEM (retriable,
 * the message is fine). One gap: jansson's JSON parser reports some
 * allocation failures as syntax errors, so under memory exhaustion a good
 * JSON message can be refused (its bytes are kept in the DLQ).
 * ERRSTR may be NULL.
 */
int jobd_codec_decode(enum jobd_topic_kind kind, const void *buf, size_t len,
		      size_t max_payload, struct jobd_request *req,
		      char *errstr, size_t errstr_size);

/*
 * The two ways of jobd_codec_decode, apart for tests, which compare them:
 * decode_plain reads a plain JSON message in one pass (src/kafka/codec.c, "the
 * fast path"), and returns false, REQ zeroed, for any message it leaves
 * to decode_tree, which reads every message through jansson's tree.
 */
bool jobd_codec_decode_plain(enum jobd_topic_kind kind, const void *buf,
			     size_t len, size_t max_payload,
			     struct jobd_request *req);
int jobd_codec_decode_tree(enum jobd_topic_kind kind, const void *buf,
			   size_t len, size_t max_payload,
			   struct jobd_request *req, char *errstr,
			   size_t errstr_size);

/* Frees what REQ owns and zeroes it. REQ itself is the caller's. */
void jobd_codec_request_release(struct jobd_request *req);

/*
 * Converts one msgpack value of exactly LEN bytes (any type at the top,
 * same rules as messages: no binary, ext, non-string keys, NaN/Inf, and
 * integers only in the int64 range) into compact JSON text. Sets *JSON
 * (caller frees with free()) and returns 0, or returns -EINVAL with the
 * reason in ERRSTR, or -ENOMEM.
 */
int jobd_codec_msgpack_to_json(const void *buf, size_t len, char **json,
			       char *errstr, size_t errstr_size);

/* Whether S[0..LEN) is valid UTF-8 (no overlong forms, no surrogates,
 * nothing over U+10FFFF). NUL bytes are valid UTF-8: check those apart. */
bool jobd_codec_valid_utf8(const char *s, size_t len);

#endif
