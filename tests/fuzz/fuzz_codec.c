/*
 * fuzz_codec: libFuzzer target for the Kafka message decoder. The first
 * byte picks the topic (low bits) and a small or the default payload limit
 * (high bit); the rest is the message. A decoded request must hold what
 * codec.h promises (valid UTF-8, a compact JSON object payload within the
 * limit, the fields of its topic); a refusal must come with a printable
 * reason and leave the request empty; a message the fast path for plain
 * JSON takes must decode to the same request through jansson's tree.
 * Run with tests/fuzz/run.sh.
 */
#include "config.h"

#include "kafka/codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	if (s && !jobd_codec_valid_utf8(s, strlen(s)))
		abort();
}

static void check_payload(const struct jobd_request *req, size_t limit)
{
	json_error_t jerr;
	json_t *json;
	char *again;

	if (!req->payload || strlen(req->payload) != req->payload_len ||
	    req->payload_len > limit)
		abort();
	json = json_loads(req->payload, 0, &jerr);
	if (!json_is_object(json))
		abort();
	/* Compact output is a fixed point: parsing and writing it again
	 * gives the same text. */
	again = json_dumps(json, JSON_COMPACT);
	if (!again || strcmp(again, req->payload) != 0)
		abort();
	free(again);
	json_decref(json);
}

static void check_request(enum jobd_topic_kind kind,
			  const struct jobd_request *req, size_t limit)
{
	check_text(req->id);
	check_text(req->type);
	check_text(req->run_by);
	check_text(req->service);
	check_text(req->event);
	check_text(req->action);
	if ((req->id && !req->id[0]) || (req->run_by && !req->run_by[0]))
		abort();
	check_payload(req, limit);
	switch (kind) {
	case JOBD_TOPIC_EVENTS:
		if (strcmp(req->type, "event") != 0 || !req->service[0] ||
		    !req->event[0] || req->action || req->low_priority)
			abort();
		break;
	case JOBD_TOPIC_RECORDS:
		if ((strcmp(req->type, "import") != 0 &&
		     strcmp(req->type, "export") != 0) ||
		    req->service || req->event || req->action)
			abort();
		break;
	case JOBD_TOPIC_ACTIONS:
		if (strcmp(req->type, "action") != 0 || !req->action[0] ||
		    req->service || req->event)
			abort();
		break;
	}
}

static void check_refusal(const struct jobd_request *req, const char *errstr)
{
	const char *p;

	if (!errstr[0] || req->id || req->type || req->payload || req->run_by ||
	    req->service || req->event || req->action)
		abort();
	for (p = errstr; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The fast path, when it takes a message, reads what the tree reads. */
static void check_fast_path(enum jobd_topic_kind kind, const uint8_t *data,
			    size_t size, size_t limit)
{
	struct jobd_request plain, tree;
	char errstr[256];

	if (!jobd_codec_decode_plain(kind, data, size, limit, &plain)) {
		if (plain.id || plain.type || plain.payload || plain.run_by)
			abort();
		return;
	}
	if (jobd_codec_decode_tree(kind, data, size, limit, &tree, errstr,
				   sizeof(errstr)) != 0 ||
	    !same_text(plain.id, tree.id) ||
	    !same_text(plain.type, tree.type) ||
	    !same_text(plain.run_by, tree.run_by) ||
	    plain.low_priority != tree.low_priority ||
	    !same_text(plain.payload, tree.payload) ||
	    plain.payload_len != tree.payload_len ||
	    !same_text(plain.service, tree.service) ||
	    !same_text(plain.event, tree.event) ||
	    !same_text(plain.action, tree.action))
		abort();
	jobd_codec_request_release(&plain);
	jobd_codec_request_release(&tree);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum jobd_topic_kind kinds[] = {
		JOBD_TOPIC_EVENTS,
		JOBD_TOPIC_RECORDS,
		JOBD_TOPIC_ACTIONS,
	};
	enum jobd_topic_kind kind;
	struct jobd_request req;
	char errstr[256];
	size_t limit;
	char *json;
	int rc;

	if (size < 1)
		return 0;
	kind = kinds[(data[0] & 0x7f) % 3];
	limit = data[0] & 0x80 ? 64 : 1024 * 1024;
	rc = jobd_codec_decode(kind, data + 1, size - 1, limit, &req, errstr,
			       sizeof(errstr));
	if (rc == 0)
		check_request(kind, &req, limit);
	else if (rc == -EINVAL)
		check_refusal(&req, errstr);
	else
		abort();
	jobd_codec_request_release(&req);
	check_fast_path(kind, data + 1, size - 1, limit);

	rc = jobd_codec_msgpack_to_json(data + 1, size - 1, &json, errstr,
					sizeof(errstr));
	if (rc == 0) {
		check_text(json);
		free(json);
	} else if (rc != -EINVAL || json) {
		abort();
	}
	return 0;
}
