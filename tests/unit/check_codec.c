/*
 * check_codec: the Kafka message envelope decoder (docs/kafka-messages.md).
 * msgpack messages are written with msgpack-c's packer, as producers do;
 * malformed ones are spelled out byte by byte.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "kafka/codec.h"
#include "testutil.h"

#define LIMIT (1024 * 1024)

static char err[256];
static struct jobd_request req;
static msgpack_sbuffer sbuf;
static msgpack_packer pk;

static void setup(void)
{
	memset(&req, 0, sizeof(req));
	err[0] = '\0';
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
}

static void teardown(void)
{
	jobd_codec_request_release(&req);
	msgpack_sbuffer_destroy(&sbuf);
}

static int decode_json(enum jobd_topic_kind kind, const char *json)
{
	jobd_codec_request_release(&req);
	return jobd_codec_decode(kind, json, strlen(json), LIMIT, &req, err,
				 sizeof(err));
}

static int decode_bytes(enum jobd_topic_kind kind, const void *buf, size_t len)
{
	jobd_codec_request_release(&req);
	return jobd_codec_decode(kind, buf, len, LIMIT, &req, err, sizeof(err));
}

static int decode_packed(enum jobd_topic_kind kind)
{
	return decode_bytes(kind, sbuf.data, sbuf.size);
}

static void pack_str(const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
}

static void pack_kv(const char *key, const char *value)
{
	pack_str(key);
	pack_str(value);
}

#define ck_assert_refused(rc, reason)            \
	do {                                     \
		ck_assert_int_eq((rc), -EINVAL); \
		ck_assert_str_eq(err, (reason)); \
		ck_assert_ptr_null(req.payload); \
		ck_assert_ptr_null(req.type);    \
	} while (0)

/* --- events --------------------------------------------------------- */

START_TEST(test_event_json_becomes_event_job)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_EVENTS,
			    "{\"id\":\"e-1\",\"service\":\"crm\","
			    "\"event\":\"order.created\",\"data\":{\"n\":1,"
			    "\"tags\":[\"a\"]},\"run_by\":\"ann\"}"),
		0);
	ck_assert_str_eq(req.id, "e-1");
	ck_assert_str_eq(req.type, "event");
	ck_assert_str_eq(req.service, "crm");
	ck_assert_str_eq(req.event, "order.created");
	ck_assert_str_eq(req.run_by, "ann");
	ck_assert(!req.low_priority);
	ck_assert_ptr_null(req.action);
	ck_assert_str_eq(req.payload,
			 "{\"service\":\"crm\",\"event\":\"order.created\","
			 "\"data\":{\"n\":1,\"tags\":[\"a\"]}}");
	ck_assert_uint_eq(req.payload_len, strlen(req.payload));
}
END_TEST

START_TEST(test_event_without_data_has_null_data)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_EVENTS,
			    "{\"service\":\"crm\",\"event\":\"ping\"}"),
		0);
	ck_assert_ptr_null(req.id);
	ck_assert_ptr_null(req.run_by);
	ck_assert_str_eq(
		req.payload,
		"{\"service\":\"crm\",\"event\":\"ping\",\"data\":null}");
}
END_TEST

START_TEST(test_event_data_may_be_any_value)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_EVENTS,
			"{\"service\":\"s\",\"event\":\"e\",\"data\":[1,2.5,\"x\"]}"),
		0);
	ck_assert_str_eq(
		req.payload,
		"{\"service\":\"s\",\"event\":\"e\",\"data\":[1,2.5,\"x\"]}");
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_EVENTS,
			    "{\"service\":\"s\",\"event\":\"e\",\"data\":7}"),
		0);
	ck_assert_str_eq(req.payload,
			 "{\"service\":\"s\",\"event\":\"e\",\"data\":7}");
}
END_TEST

START_TEST(test_event_msgpack_becomes_event_job)
{
	msgpack_pack_map(&pk, 5);
	pack_str("id");
	msgpack_pack_uint64(&pk, 77);
	pack_kv("service", "crm");
	pack_kv("event", "order.created");
	pack_str("data");
	msgpack_pack_map(&pk, 2);
	pack_str("n");
	msgpack_pack_int(&pk, -3);
	pack_str("ok");
	msgpack_pack_true(&pk);
	pack_str("run_by");
	msgpack_pack_nil(&pk);
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_EVENTS), 0);
	ck_assert_str_eq(req.id, "77");
	ck_assert_str_eq(req.type, "event");
	ck_assert_str_eq(req.service, "crm");
	ck_assert_str_eq(req.event, "order.created");
	ck_assert_ptr_null(req.run_by);
	ck_assert_str_eq(req.payload,
			 "{\"service\":\"crm\",\"event\":\"order.created\","
			 "\"data\":{\"n\":-3,\"ok\":true}}");
}
END_TEST

START_TEST(test_event_refused_without_service_or_event)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_EVENTS, "{\"event\":\"e\"}"),
			  "missing \"service\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_EVENTS,
				      "{\"service\":null,\"event\":\"e\"}"),
			  "missing \"service\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_EVENTS, "{\"service\":\"s\"}"),
			  "missing \"event\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_EVENTS,
				      "{\"service\":\"\",\"event\":\"e\"}"),
			  "\"service\" is empty");
	ck_assert_refused(decode_json(JOBD_TOPIC_EVENTS,
				      "{\"service\":\"s\",\"event\":5}"),
			  "\"event\" must be a string");
	ck_assert_ptr_null(req.service);
}
END_TEST

START_TEST(test_event_ignores_low_priority)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_EVENTS,
			"{\"service\":\"s\",\"event\":\"e\",\"low_priority\":true}"),
		0);
	ck_assert(!req.low_priority);
}
END_TEST

/* --- records -------------------------------------------------------- */

START_TEST(test_record_json_import_with_every_field)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_RECORDS,
			"{\"id\":\"r-9\",\"type\":\"import\",\"run_by\":\"bob\","
			"\"low_priority\":true,\"payload\":{\"file\":\"a.csv\","
			"\"rows\":[1,2]}}"),
		0);
	ck_assert_str_eq(req.id, "r-9");
	ck_assert_str_eq(req.type, "import");
	ck_assert_str_eq(req.run_by, "bob");
	ck_assert(req.low_priority);
	ck_assert_str_eq(req.payload, "{\"file\":\"a.csv\",\"rows\":[1,2]}");
	ck_assert_ptr_null(req.service);
	ck_assert_ptr_null(req.event);
	ck_assert_ptr_null(req.action);
}
END_TEST

START_TEST(test_record_export_without_payload_gets_empty_object)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_RECORDS, "{\"type\":\"export\"}"), 0);
	ck_assert_str_eq(req.type, "export");
	ck_assert_ptr_null(req.id);
	ck_assert_ptr_null(req.run_by);
	ck_assert(!req.low_priority);
	ck_assert_str_eq(req.payload, "{}");
	ck_assert_uint_eq(req.payload_len, 2);
}
END_TEST

START_TEST(test_record_msgpack_with_every_field)
{
	msgpack_pack_map(&pk, 5);
	pack_kv("id", "r-10");
	pack_kv("type", "export");
	pack_kv("run_by", "cy");
	pack_str("low_priority");
	msgpack_pack_false(&pk);
	pack_str("payload");
	msgpack_pack_map(&pk, 3);
	pack_str("limit");
	msgpack_pack_uint8(&pk, 200);
	pack_str("ratio");
	msgpack_pack_double(&pk, 0.25);
	pack_str("cols");
	msgpack_pack_array(&pk, 2);
	pack_str("a");
	msgpack_pack_nil(&pk);
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
	ck_assert_str_eq(req.id, "r-10");
	ck_assert_str_eq(req.type, "export");
	ck_assert_str_eq(req.run_by, "cy");
	ck_assert(!req.low_priority);
	ck_assert_str_eq(
		req.payload,
		"{\"limit\":200,\"ratio\":0.25,\"cols\":[\"a\",null]}");
}
END_TEST

START_TEST(test_record_refused_without_valid_type)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS, "{\"payload\":{}}"),
			  "missing \"type\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"type\":\"delete\"}"),
			  "\"type\" must be \"import\" or \"export\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS, "{\"type\":1}"),
			  "\"type\" must be \"import\" or \"export\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"type\":\"Import\"}"),
			  "\"type\" must be \"import\" or \"export\"");
}
END_TEST

START_TEST(test_record_refused_when_payload_not_object)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"type\":\"import\",\"payload\":[1]}"),
			  "\"payload\" must be an object");
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"payload\":\"{}\"}"),
		"\"payload\" must be an object");
}
END_TEST

/* --- actions -------------------------------------------------------- */

START_TEST(test_action_json_adds_action_to_payload)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_ACTIONS,
			"{\"id\":5,\"action\":\"reindex\",\"run_by\":\"dee\","
			"\"low_priority\":true,\"payload\":{\"ids\":[1,2]}}"),
		0);
	ck_assert_str_eq(req.id, "5");
	ck_assert_str_eq(req.type, "action");
	ck_assert_str_eq(req.action, "reindex");
	ck_assert_str_eq(req.run_by, "dee");
	ck_assert(req.low_priority);
	ck_assert_str_eq(req.payload, "{\"ids\":[1,2],\"action\":\"reindex\"}");
}
END_TEST

START_TEST(test_action_name_in_envelope_wins_over_payload)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_ACTIONS,
			"{\"action\":\"purge\",\"payload\":{\"action\":\"other\","
			"\"n\":1}}"),
		0);
	ck_assert_str_eq(req.action, "purge");
	ck_assert_str_eq(req.payload, "{\"action\":\"purge\",\"n\":1}");
}
END_TEST

START_TEST(test_action_without_payload_gets_action_only)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_ACTIONS, "{\"action\":\"purge\"}"), 0);
	ck_assert_str_eq(req.payload, "{\"action\":\"purge\"}");
}
END_TEST

START_TEST(test_action_msgpack_adds_action_to_payload)
{
	msgpack_pack_map(&pk, 4);
	pack_kv("action", "notify");
	pack_str("low_priority");
	msgpack_pack_true(&pk);
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_kv("to", "ops");
	pack_str("id");
	msgpack_pack_int64(&pk, INT64_MIN);
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_ACTIONS), 0);
	ck_assert_str_eq(req.id, "-9223372036854775808");
	ck_assert_str_eq(req.type, "action");
	ck_assert_str_eq(req.action, "notify");
	ck_assert(req.low_priority);
	ck_assert_str_eq(req.payload, "{\"to\":\"ops\",\"action\":\"notify\"}");
}
END_TEST

START_TEST(test_action_refused_without_action)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS, "{\"payload\":{}}"),
			  "missing \"action\"");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS, "{\"action\":\"\"}"),
			  "\"action\" is empty");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS,
				      "{\"action\":[\"a\"]}"),
			  "\"action\" must be a string");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS,
				      "{\"action\":\"a\",\"payload\":3}"),
			  "\"payload\" must be an object");
}
END_TEST

/* --- common fields -------------------------------------------------- */

START_TEST(test_integer_id_becomes_decimal_text)
{
	ck_assert_int_eq(decode_json(JOBD_TOPIC_RECORDS,
				     "{\"id\":1041,\"type\":\"import\"}"),
			 0);
	ck_assert_str_eq(req.id, "1041");
	ck_assert_int_eq(decode_json(JOBD_TOPIC_RECORDS,
				     "{\"id\":-12,\"type\":\"import\"}"),
			 0);
	ck_assert_str_eq(req.id, "-12");
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"id\":9223372036854775807,\"type\":\"import\"}"),
		0);
	ck_assert_str_eq(req.id, "9223372036854775807");

	msgpack_pack_map(&pk, 2);
	pack_str("id");
	msgpack_pack_uint64(&pk, INT64_MAX);
	pack_kv("type", "import");
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
	ck_assert_str_eq(req.id, "9223372036854775807");
}
END_TEST

START_TEST(test_id_refused_unless_string_or_integer)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"id\":1.5,\"type\":\"import\"}"),
			  "\"id\" must be a string or an integer");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"id\":true,\"type\":\"import\"}"),
			  "\"id\" must be a string or an integer");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"id\":{},\"type\":\"import\"}"),
			  "\"id\" must be a string or an integer");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS,
				      "{\"id\":\"\",\"type\":\"import\"}"),
			  "\"id\" is empty");
	ck_assert_ptr_null(req.id);
}
END_TEST

START_TEST(test_null_fields_count_as_absent)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"id\":null,\"type\":\"import\",\"run_by\":null,"
			    "\"low_priority\":null,\"payload\":null}"),
		0);
	ck_assert_ptr_null(req.id);
	ck_assert_ptr_null(req.run_by);
	ck_assert(!req.low_priority);
	ck_assert_str_eq(req.payload, "{}");
}
END_TEST

START_TEST(test_empty_run_by_counts_as_absent)
{
	ck_assert_int_eq(decode_json(JOBD_TOPIC_RECORDS,
				     "{\"type\":\"import\",\"run_by\":\"\"}"),
			 0);
	ck_assert_ptr_null(req.run_by);
}
END_TEST

START_TEST(test_run_by_refused_unless_string_or_null)
{
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS,
				      "{\"action\":\"a\",\"run_by\":7}"),
			  "\"run_by\" must be a string or null");
	ck_assert_refused(
		decode_json(
			JOBD_TOPIC_EVENTS,
			"{\"service\":\"s\",\"event\":\"e\",\"run_by\":false}"),
		"\"run_by\" must be a string or null");
}
END_TEST

START_TEST(test_low_priority_refused_unless_boolean)
{
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"low_priority\":\"yes\"}"),
		"\"low_priority\" must be a boolean");
	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("low_priority");
	msgpack_pack_int(&pk, 1);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "\"low_priority\" must be a boolean");
}
END_TEST

START_TEST(test_unknown_fields_are_ignored)
{
	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_RECORDS,
			"{\"type\":\"import\",\"version\":3,\"extra\":{\"a\":[]},"
			"\"service\":\"x\",\"action\":\"y\"}"),
		0);
	ck_assert_str_eq(req.payload, "{}");
	ck_assert_ptr_null(req.service);
	ck_assert_ptr_null(req.action);
}
END_TEST

START_TEST(test_repeated_key_last_wins_in_both_encodings)
{
	ck_assert_int_eq(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"delete\",\"type\":\"import\"}"),
		0);
	ck_assert_str_eq(req.type, "import");
	msgpack_pack_map(&pk, 2);
	pack_kv("type", "delete");
	pack_kv("type", "export");
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
	ck_assert_str_eq(req.type, "export");
}
END_TEST

START_TEST(test_json_and_msgpack_give_same_payload)
{
	char *json_payload;

	ck_assert_int_eq(
		decode_json(
			JOBD_TOPIC_EVENTS,
			"{\"service\":\"s\",\"event\":\"e\",\"data\":{\"a\":[1,-2,"
			"true,null,\"\\u00e9\"],\"b\":{}}}"),
		0);
	json_payload = strdup(req.payload);
	msgpack_pack_map(&pk, 3);
	pack_kv("service", "s");
	pack_kv("event", "e");
	pack_str("data");
	msgpack_pack_map(&pk, 2);
	pack_str("a");
	msgpack_pack_array(&pk, 5);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_int64(&pk, -2);
	msgpack_pack_true(&pk);
	msgpack_pack_nil(&pk);
	pack_str("\xc3\xa9");
	pack_str("b");
	msgpack_pack_map(&pk, 0);
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_EVENTS), 0);
	ck_assert_str_eq(req.payload, json_payload);
	ck_assert_str_eq(req.payload,
			 "{\"service\":\"s\",\"event\":\"e\",\"data\":{\"a\":"
			 "[1,-2,true,null,\"\xc3\xa9\"],\"b\":{}}}");
	free(json_payload);
}
END_TEST

/* --- format detection, framing -------------------------------------- */

START_TEST(test_leading_whitespace_is_skipped)
{
	static const unsigned char mp[] = { ' ', '\n', 0x81, 0xa6, 'a',	 'c',
					    't', 'i',  'o',  'n',  0xa1, 'x' };

	ck_assert_int_eq(decode_json(JOBD_TOPIC_ACTIONS,
				     " \r\n\t{\"action\":\"x\"}\n"),
			 0);
	ck_assert_str_eq(req.action, "x");
	ck_assert_int_eq(decode_bytes(JOBD_TOPIC_ACTIONS, mp, sizeof(mp)), 0);
	ck_assert_str_eq(req.payload, "{\"action\":\"x\"}");
}
END_TEST

START_TEST(test_message_neither_object_nor_map_refused)
{
	static const unsigned char mp_array[] = { 0x91, 0x01 };
	static const unsigned char mp_int[] = { 0x05 };

	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS,
				      "[{\"action\":\"x\"}]"),
			  "not a JSON object or msgpack map");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS, "\"x\""),
			  "not a JSON object or msgpack map");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS, "null"),
			  "not a JSON object or msgpack map");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, mp_array,
				       sizeof(mp_array)),
			  "not a JSON object or msgpack map");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, mp_int,
				       sizeof(mp_int)),
			  "not a JSON object or msgpack map");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, "", 0),
			  "empty message");
	ck_assert_refused(decode_json(JOBD_TOPIC_ACTIONS, " \n "),
			  "empty message");
}
END_TEST

START_TEST(test_json_trailing_garbage_refused)
{
	ck_assert_refused(
		decode_json(JOBD_TOPIC_ACTIONS, "{\"action\":\"x\"} {}"),
		"invalid JSON at byte 16: end of file expected near '{'");
	ck_assert_refused(
		decode_bytes(JOBD_TOPIC_ACTIONS, "{\"action\":\"x\"}\0", 15),
		"invalid JSON at byte 15: end of file expected near end of file");
}
END_TEST

START_TEST(test_msgpack_trailing_bytes_refused)
{
	msgpack_pack_map(&pk, 1);
	pack_kv("action", "x");
	msgpack_pack_nil(&pk);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "trailing bytes after the msgpack map at byte 10");
}
END_TEST

START_TEST(test_invalid_json_refused_with_byte_position)
{
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS, "{\"type\":\"import\",,}"),
		"invalid JSON at byte 18: string or '}' expected near ','");
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS, "{\"type\":NaN}"),
			  "invalid JSON at byte 11: invalid token near 'NaN'");
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"n\":18446744073709551615}"),
		"invalid JSON at byte 41: too big integer near "
		"'18446744073709551615'");
}
END_TEST

START_TEST(test_json_truncated_at_every_length_refused)
{
	const char *json =
		"{\"id\":12,\"type\":\"import\",\"low_priority\":false,"
		"\"payload\":{\"a\":[1.5,\"x\\u00e9\",{\"b\":null}]}}";
	size_t n, len = strlen(json);

	for (n = 0; n < len; n++) {
		ck_assert_int_eq(decode_bytes(JOBD_TOPIC_RECORDS, json, n),
				 -EINVAL);
		ck_assert_str_ne(err, "");
	}
	ck_assert_int_eq(decode_bytes(JOBD_TOPIC_RECORDS, json, len), 0);
	ck_assert_str_eq(req.payload,
			 "{\"a\":[1.5,\"x\xc3\xa9\",{\"b\":null}]}");
}
END_TEST

/* --- msgpack conversion --------------------------------------------- */

/* A message using every msgpack type that has a JSON form, in several
 * widths (map16, str8, str16, array16, each integer width, both floats). */
static void pack_every_type(void)
{
	char long_str[300];

	memset(long_str, 'z', sizeof(long_str) - 1);
	long_str[sizeof(long_str) - 1] = '\0';
	msgpack_pack_map(&pk, 16); /* map16 */
	pack_kv("type", "import");
	pack_kv("id", "a-string-id-longer-than-thirty-one-bytes-so-str8");
	pack_str("low_priority");
	msgpack_pack_true(&pk);
	pack_str("payload");
	msgpack_pack_map(&pk, 12);
	pack_str("u8");
	msgpack_pack_uint8(&pk, 255);
	pack_str("u16");
	msgpack_pack_uint16(&pk, 65535);
	pack_str("u32");
	msgpack_pack_uint32(&pk, 4294967295u);
	pack_str("u64");
	msgpack_pack_uint64(&pk, 9007199254740993ull);
	pack_str("i8");
	msgpack_pack_int8(&pk, -128);
	pack_str("i16");
	msgpack_pack_int16(&pk, -32768);
	pack_str("i32");
	msgpack_pack_int32(&pk, INT32_MIN);
	pack_str("i64");
	msgpack_pack_int64(&pk, INT64_MIN);
	pack_str("f32");
	msgpack_pack_float(&pk, 1.5f);
	pack_str("f64");
	msgpack_pack_double(&pk, -0.125);
	pack_str("long");
	pack_str(long_str); /* str16 */
	pack_str("list");
	msgpack_pack_array(&pk, 16); /* array16 */
	for (int i = 0; i < 15; i++)
		msgpack_pack_int(&pk, i - 5);
	msgpack_pack_false(&pk);
	for (int i = 0; i < 12; i++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", i);
		pack_str(key);
		msgpack_pack_nil(&pk);
	}
}

START_TEST(test_msgpack_every_type_converts)
{
	const char *head =
		"{\"u8\":255,\"u16\":65535,\"u32\":4294967295,"
		"\"u64\":9007199254740993,\"i8\":-128,\"i16\":-32768,"
		"\"i32\":-2147483648,\"i64\":-9223372036854775808,"
		"\"f32\":1.5,\"f64\":-0.125,\"long\":\"zzz";
	const char *tail =
		"zzz\",\"list\":[-5,-4,-3,-2,-1,0,1,2,3,4,5,6,7,8,9,false]}";

	pack_every_type();
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
	ck_assert_str_eq(req.id,
			 "a-string-id-longer-than-thirty-one-bytes-so-str8");
	ck_assert(req.low_priority);
	ck_assert_int_eq(strncmp(req.payload, head, strlen(head)), 0);
	ck_assert_str_eq(req.payload + req.payload_len - strlen(tail), tail);
	ck_assert_uint_eq(req.payload_len,
			  strlen(head) + 299 - 6 + strlen(tail));
}
END_TEST

START_TEST(test_msgpack_truncated_at_every_length_refused)
{
	size_t n;

	pack_every_type();
	for (n = 1; n < sbuf.size; n++)
		ck_assert_refused(decode_bytes(JOBD_TOPIC_RECORDS, sbuf.data,
					       n),
				  "truncated msgpack");
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
}
END_TEST

START_TEST(test_msgpack_huge_declared_count_is_truncated)
{
	/* {"payload": array32 of 4294967295 elements}, then nothing */
	static const unsigned char arr[] = { 0x81, 0xa7, 'p',  'a',  'y',
					     'l',  'o',	 'a',  'd',  0xdd,
					     0xff, 0xff, 0xff, 0xff, 0x01 };
	static const unsigned char map[] = { 0xdf, 0xff, 0xff, 0xff,
					     0xff, 0xa1, 'a',  0x01 };
	static const unsigned char str[] = { 0x81, 0xa1, 'a',  0xdb, 0xff,
					     0xff, 0xff, 0xff, 'x' };

	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, arr, sizeof(arr)),
			  "truncated msgpack");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, map, sizeof(map)),
			  "truncated msgpack");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, str, sizeof(str)),
			  "truncated msgpack");
}
END_TEST

START_TEST(test_msgpack_binary_and_ext_refused)
{
	static const unsigned char fixext[] = { 0x81, 0xa1, 'd',
						0xd4, 0x01, 0x00 };
	static const unsigned char ext8[] = { 0x81, 0xa1, 'd', 0xc7,
					      0x01, 0x05, 0x00 };
	static const unsigned char timestamp[] = { 0x81, 0xa1, 'd',  0xd6, 0xff,
						   0x00, 0x00, 0x00, 0x01 };

	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_str("blob");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "abc", 3);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "msgpack binary has no JSON form");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, fixext,
				       sizeof(fixext)),
			  "msgpack ext has no JSON form");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, ext8, sizeof(ext8)),
			  "msgpack ext has no JSON form");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, timestamp,
				       sizeof(timestamp)),
			  "msgpack ext has no JSON form");
}
END_TEST

START_TEST(test_msgpack_non_string_key_refused)
{
	static const unsigned char bin_key[] = { 0x81, 0xc4, 0x01, 'a', 0x01 };

	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 2);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "msgpack map key at byte 10 is not a string");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, bin_key,
				       sizeof(bin_key)),
			  "msgpack map key at byte 1 is not a string");
}
END_TEST

START_TEST(test_msgpack_nan_and_inf_refused)
{
	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_str("x");
	msgpack_pack_double(&pk, NAN);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "msgpack float NaN has no JSON form");

	msgpack_sbuffer_clear(&sbuf);
	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_str("x");
	msgpack_pack_float(&pk, -INFINITY);
	ck_assert_refused(decode_packed(JOBD_TOPIC_ACTIONS),
			  "msgpack float Inf has no JSON form");
}
END_TEST

START_TEST(test_msgpack_uint64_over_int64_refused)
{
	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("id");
	msgpack_pack_uint64(&pk, UINT64_MAX);
	ck_assert_refused(
		decode_packed(JOBD_TOPIC_ACTIONS),
		"msgpack integer 18446744073709551615 is over the int64 range");
}
END_TEST

START_TEST(test_msgpack_unused_byte_refused)
{
	static const unsigned char c1[] = { 0x81, 0xa1, 'a', 0xc1 };

	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, c1, sizeof(c1)),
			  "invalid msgpack byte 0xc1 at byte 3");
}
END_TEST

/* --- UTF-8 and NUL -------------------------------------------------- */

START_TEST(test_invalid_utf8_in_json_refused)
{
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"run_by\":\"a\xff\"}"),
		"invalid UTF-8 in JSON at byte 28");
	/* overlong '/' and a UTF-16 surrogate */
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"x\":\"\xc0\xaf\"}"),
		"invalid UTF-8 in JSON at byte 22");
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"x\":\"\xed\xa0\x80\"}"),
		"invalid UTF-8 in JSON at byte 22");
}
END_TEST

START_TEST(test_invalid_utf8_in_msgpack_refused)
{
	static const unsigned char key[] = { 0x81, 0xa2, 0xc3, 0x28, 0x01 };
	static const unsigned char deep[] = { 0x82, 0xa6, 'a',	'c', 't',  'i',
					      'o',  'n',  0xa1, 'a', 0xa7, 'p',
					      'a',  'y',  'l',	'o', 'a',  'd',
					      0x81, 0xa4, 't',	'a', 'g',  's',
					      0x91, 0xa1, 0x80 };

	msgpack_pack_map(&pk, 2);
	pack_kv("type", "import");
	pack_kv("run_by", "\xe2\x82");
	ck_assert_refused(decode_packed(JOBD_TOPIC_RECORDS),
			  "invalid UTF-8 in \"run_by\"");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_RECORDS, key, sizeof(key)),
			  "invalid UTF-8 in a msgpack map key at byte 2");
	ck_assert_refused(decode_bytes(JOBD_TOPIC_ACTIONS, deep, sizeof(deep)),
			  "invalid UTF-8 in \"tags\"");
}
END_TEST

START_TEST(test_nul_in_strings_refused)
{
	ck_assert_refused(
		decode_json(JOBD_TOPIC_RECORDS,
			    "{\"type\":\"import\",\"run_by\":\"a\\u0000b\"}"),
		"invalid JSON at byte 36: \\u0000 is not allowed without "
		"JSON_ALLOW_NUL near '\"a\\u0000b\"'");
	msgpack_pack_map(&pk, 2);
	pack_kv("type", "import");
	pack_str("run_by");
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "a\0b", 3);
	ck_assert_refused(decode_packed(JOBD_TOPIC_RECORDS),
			  "NUL byte in \"run_by\"");
}
END_TEST

START_TEST(test_reason_is_printable_ascii)
{
	const char *p;

	ck_assert_int_eq(decode_json(JOBD_TOPIC_RECORDS,
				     "{\"type\":\"\xc3\xa9\x01\"}"),
			 -EINVAL);
	ck_assert_str_ne(err, "");
	for (p = err; *p; p++)
		ck_assert(*p >= 0x20 && *p <= 0x7e);
}
END_TEST

START_TEST(test_valid_utf8_predicate)
{
	ck_assert(jobd_codec_valid_utf8("", 0));
	ck_assert(jobd_codec_valid_utf8("plain", 5));
	ck_assert(jobd_codec_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
					9));
	ck_assert(jobd_codec_valid_utf8("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	ck_assert(jobd_codec_valid_utf8("a\0b", 3));
	ck_assert(!jobd_codec_valid_utf8("\x80", 1));
	ck_assert(!jobd_codec_valid_utf8("\xc3", 1));
	ck_assert(!jobd_codec_valid_utf8("\xc0\x80", 2));
	ck_assert(!jobd_codec_valid_utf8("\xe0\x80\xaf", 3));
	ck_assert(!jobd_codec_valid_utf8("\xed\xbf\xbf", 3));
	ck_assert(!jobd_codec_valid_utf8("\xf4\x90\x80\x80", 4));
	ck_assert(!jobd_codec_valid_utf8("\xf8\x88\x80\x80\x80", 5));
	ck_assert(!jobd_codec_valid_utf8("\xe2\x82\xac", 2));
}
END_TEST

/* --- limits --------------------------------------------------------- */

/* A records message whose payload nests arrays so the deepest container is
 * at LEVELS (the message object is level 1, its payload level 2). */
static char *nested_json(int levels)
{
	size_t size = 64 + 2 * (size_t)levels;
	char *s = malloc(size), *p;
	int i, arrays = levels - 2;

	p = s + sprintf(s, "{\"type\":\"import\",\"payload\":{\"a\":");
	for (i = 0; i < arrays; i++)
		*p++ = '[';
	for (i = 0; i < arrays; i++)
		*p++ = ']';
	strcpy(p, "}}");
	return s;
}

static void pack_nested(int levels)
{
	int i;

	msgpack_pack_map(&pk, 2);
	pack_kv("type", "import");
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_str("a");
	for (i = 0; i < levels - 3; i++)
		msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 0);
}

START_TEST(test_json_depth_limit)
{
	char *s;

	s = nested_json(JOBD_CODEC_MAX_DEPTH);
	ck_assert_int_eq(decode_json(JOBD_TOPIC_RECORDS, s), 0);
	free(s);
	s = nested_json(JOBD_CODEC_MAX_DEPTH + 1);
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS, s),
			  "nested deeper than 64 levels");
	free(s);
	/* deeper than jansson's own parser limit */
	s = nested_json(5000);
	ck_assert_refused(decode_json(JOBD_TOPIC_RECORDS, s),
			  "nested deeper than 64 levels");
	free(s);
}
END_TEST

START_TEST(test_msgpack_depth_limit)
{
	pack_nested(JOBD_CODEC_MAX_DEPTH);
	ck_assert_int_eq(decode_packed(JOBD_TOPIC_RECORDS), 0);
	msgpack_sbuffer_clear(&sbuf);
	pack_nested(JOBD_CODEC_MAX_DEPTH + 1);
	ck_assert_refused(decode_packed(JOBD_TOPIC_RECORDS),
			  "nested deeper than 64 levels");
	msgpack_sbuffer_clear(&sbuf);
	pack_nested(100000);
	ck_assert_refused(decode_packed(JOBD_TOPIC_RECORDS),
			  "nested deeper than 64 levels");
}
END_TEST

START_TEST(test_payload_size_limit_boundary)
{
	const char *json = "{\"type\":\"import\",\"payload\":{ \"text\" : "
			   "\"abcdefghijklmnopqrstuvwxyz0123456789\" }}";
	char want[128];
	size_t len = strlen(json);
	size_t payload_len =
		strlen("{\"text\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}");

	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_RECORDS, json, len,
					   payload_len, &req, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(req.payload_len, payload_len);
	jobd_codec_request_release(&req);

	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_RECORDS, json, len,
					   payload_len - 1, &req, err,
					   sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "payload is %zu bytes, over the %zu-byte limit", payload_len,
		 payload_len - 1);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(req.payload);
}
END_TEST

START_TEST(test_payload_limit_counts_json_text_of_msgpack)
{
	const char *want =
		"{\"n\":[-1,-1,-1,-1,-1,-1,-1,-1,-1,-1],\"action\":\"a\"}";
	char reason[128];

	/* Each -1 is one byte of msgpack and two of JSON: the limit is on
	 * the JSON text. */
	msgpack_pack_map(&pk, 2);
	pack_kv("action", "a");
	pack_str("payload");
	msgpack_pack_map(&pk, 1);
	pack_str("n");
	msgpack_pack_array(&pk, 10);
	for (int i = 0; i < 10; i++)
		msgpack_pack_int(&pk, -1);
	ck_assert_uint_lt(sbuf.size, strlen(want));
	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS, sbuf.data,
					   sbuf.size, strlen(want), &req, err,
					   sizeof(err)),
			 0);
	ck_assert_str_eq(req.payload, want);
	jobd_codec_request_release(&req);
	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS, sbuf.data,
					   sbuf.size, strlen(want) - 1, &req,
					   err, sizeof(err)),
			 -EINVAL);
	snprintf(reason, sizeof(reason),
		 "payload is %zu bytes, over the %zu-byte limit", strlen(want),
		 strlen(want) - 1);
	ck_assert_str_eq(err, reason);
}
END_TEST

START_TEST(test_message_over_twice_limit_refused_before_parsing)
{
	const char *json = "{\"action\":\"a\"}    "; /* 18 bytes */

	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS, json, 18, 9,
					   &req, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "payload is 14 bytes, over the 9-byte limit");
	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS, json, 18, 8,
					   &req, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(
		err,
		"message is 18 bytes, over twice the 8-byte payload limit");
}
END_TEST

START_TEST(test_zero_limit_means_no_limit)
{
	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS,
					   "{\"action\":\"a\"}", 14, 0, &req,
					   err, sizeof(err)),
			 0);
	ck_assert_str_eq(req.payload, "{\"action\":\"a\"}");
}
END_TEST

/* --- helpers -------------------------------------------------------- */

START_TEST(test_msgpack_to_json_takes_any_value)
{
	char *json;

	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	pack_str("a");
	msgpack_pack_nil(&pk);
	ck_assert_int_eq(jobd_codec_msgpack_to_json(sbuf.data, sbuf.size, &json,
						    err, sizeof(err)),
			 0);
	ck_assert_str_eq(json, "[1,\"a\",null]");
	free(json);

	ck_assert_int_eq(jobd_codec_msgpack_to_json("\xc4\x00", 2, &json, err,
						    sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_null(json);
	ck_assert_str_eq(err, "msgpack binary has no JSON form");
	ck_assert_int_eq(jobd_codec_msgpack_to_json("\x01\x02", 2, &json, err,
						    sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err,
			 "trailing bytes after the msgpack value at byte 1");
}
END_TEST

START_TEST(test_release_is_safe_on_zeroed_and_twice)
{
	struct jobd_request r;

	memset(&r, 0, sizeof(r));
	jobd_codec_request_release(&r);
	ck_assert_int_eq(jobd_codec_decode(JOBD_TOPIC_ACTIONS,
					   "{\"action\":\"a\"}", 14, 0, &r,
					   NULL, 0),
			 0);
	jobd_codec_request_release(&r);
	ck_assert_ptr_null(r.payload);
	jobd_codec_request_release(&r);
	jobd_codec_request_release(NULL);
}
END_TEST

/* jansson allocations fail after a countdown: every outcome must be
 * success or -ENOMEM, never a refusal, so a good message is retried rather
 * than dead-lettered. msgpack only: jansson's own JSON parser reports some
 * allocation failures as syntax errors (see codec.h). */
static int alloc_budget;

static void *failing_malloc(size_t size)
{
	if (alloc_budget-- <= 0)
		return NULL;
	return malloc(size);
}

START_TEST(test_out_of_memory_is_not_a_refusal)
{
	int budget, rc = -ENOMEM;

	msgpack_pack_map(&pk, 4);
	pack_str("id");
	msgpack_pack_int(&pk, 3);
	pack_kv("type", "import");
	pack_kv("run_by", "ann");
	pack_str("payload");
	msgpack_pack_map(&pk, 2);
	pack_str("a");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_map(&pk, 1);
	pack_kv("b", "c");
	pack_kv("d", "e");
	for (budget = 0; rc == -ENOMEM; budget++) {
		alloc_budget = budget;
		json_set_alloc_funcs(failing_malloc, free);
		rc = decode_packed(JOBD_TOPIC_RECORDS);
		json_set_alloc_funcs(malloc, free);
		ck_assert_msg(rc == 0 || rc == -ENOMEM, "budget %d: rc %d, %s",
			      budget, rc, err);
		if (rc == -ENOMEM)
			ck_assert_str_eq(err, "out of memory");
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_gt(budget, 5);
	ck_assert_str_eq(req.payload,
			 "{\"a\":[1,1.5,{\"b\":\"c\"}],\"d\":\"e\"}");
}
END_TEST

/* --- the fast path for plain JSON ------------------------------------- */

static void assert_same_text(const char *a, const char *b, const char *what,
			     const char *json)
{
	ck_assert_msg(a == b || (a && b && strcmp(a, b) == 0),
		      "%s: %s: fast '%s', tree '%s'", json, what,
		      a ? a : "(null)", b ? b : "(null)");
}

/* Decodes JSON both ways; returns whether the fast path took it. */
static bool fast_and_tree(enum jobd_topic_kind kind, const char *json,
			  size_t limit)
{
	struct jobd_request plain, tree;
	bool fast = jobd_codec_decode_plain(kind, json, strlen(json), limit,
					    &plain);
	int rc = jobd_codec_decode_tree(kind, json, strlen(json), limit, &tree,
					err, sizeof(err));

	if (fast) {
		ck_assert_msg(rc == 0, "%s: the tree refuses it: %s", json,
			      err);
		assert_same_text(plain.id, tree.id, "id", json);
		assert_same_text(plain.type, tree.type, "type", json);
		assert_same_text(plain.run_by, tree.run_by, "run_by", json);
		assert_same_text(plain.payload, tree.payload, "payload", json);
		assert_same_text(plain.service, tree.service, "service", json);
		assert_same_text(plain.event, tree.event, "event", json);
		assert_same_text(plain.action, tree.action, "action", json);
		ck_assert_int_eq(plain.payload_len, tree.payload_len);
		ck_assert_int_eq(plain.low_priority, tree.low_priority);
	} else {
		ck_assert_ptr_null(plain.payload);
	}
	jobd_codec_request_release(&plain);
	jobd_codec_request_release(&tree);
	return fast;
}

struct message {
	enum jobd_topic_kind kind;
	const char *json;
};

START_TEST(test_fast_path_reads_plain_json_as_the_tree_does)
{
	static const struct message plain[] = {
		{ JOBD_TOPIC_ACTIONS, "{\"id\":\"m1\",\"action\":\"bench\","
				      "\"payload\":{}}" },
		{ JOBD_TOPIC_ACTIONS, " { \"action\" : \"a\" , \"id\" : 42 ,"
				      " \"payload\" : { \"x\" : [ 1 , -2 , true"
				      " , null , { } , [ ] , \"\xc3\xa9\" ] } ,"
				      " \"low_priority\" : true } \n" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"run_by\":\"\","
				      "\"payload\":null,\"low_priority\":null,"
				      "\"other\":{\"action\":1}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"id\":0,\"run_by\":"
				      "\"ann\",\"low_priority\":false}" },
		{ JOBD_TOPIC_RECORDS, "{\"type\":\"import\",\"payload\":{\"a\":"
				      "{\"b\":{\"c\":[0]}}},\"extra\":[1,2]}" },
		{ JOBD_TOPIC_RECORDS, "{\"type\":\"export\",\"id\":null}" },
		{ JOBD_TOPIC_EVENTS, "{\"id\":\"e\",\"service\":\"crm\","
				     "\"event\":\"moved\",\"data\":{\"to\":"
				     "[1,2]},\"low_priority\":7}" },
		{ JOBD_TOPIC_EVENTS, "{\"service\":\"crm\",\"event\":\"x\"}" },
	};
	/* Left to the tree: what it decides or writes otherwise. */
	static const struct message tree[] = {
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"k\":"
				      "\"\\u00e9\"}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"k\":"
				      "1.5}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"k\":"
				      "-0}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"k\":"
				      "1,\"k\":2}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"action"
				      "\":\"b\"}}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"action\":\"b\"}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"\"}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":[]}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"low_priority\":1}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"id\":\"\"}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"id\":true}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"id\":"
				      "1234567890123456789}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\"} x" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\xff\"}" },
		{ JOBD_TOPIC_ACTIONS, "{\"action\":\"a\",\"payload\":{\"k\":"
				      "01}}" },
		{ JOBD_TOPIC_RECORDS, "{\"type\":\"other\"}" },
		{ JOBD_TOPIC_RECORDS, "{\"payload\":{}}" },
		{ JOBD_TOPIC_EVENTS, "{\"service\":\"crm\"}" },
		{ JOBD_TOPIC_EVENTS, "{\"service\":\"crm\",\"event\":\"x\","
				     "\"run_by\":5}" },
	};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		ck_assert_msg(fast_and_tree(plain[i].kind, plain[i].json,
					    LIMIT),
			      "not taken: %s", plain[i].json);
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		ck_assert_msg(!fast_and_tree(tree[i].kind, tree[i].json, LIMIT),
			      "taken: %s", tree[i].json);
	/* Deeper than the fast path goes, and over the payload limit. */
	ck_assert(!fast_and_tree(
		JOBD_TOPIC_RECORDS,
		"{\"type\":\"import\",\"payload\":{\"a\":[[[[[[[["
		"[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}",
		LIMIT));
	ck_assert(fast_and_tree(JOBD_TOPIC_ACTIONS,
				"{\"action\":\"ab\",\"payload\":{}}", 15));
	ck_assert(!fast_and_tree(JOBD_TOPIC_ACTIONS,
				 "{\"action\":\"ab\",\"payload\":{}}", 14));
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("events");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_event_json_becomes_event_job);
	tcase_add_test(tc, test_event_without_data_has_null_data);
	tcase_add_test(tc, test_event_data_may_be_any_value);
	tcase_add_test(tc, test_event_msgpack_becomes_event_job);
	tcase_add_test(tc, test_event_refused_without_service_or_event);
	tcase_add_test(tc, test_event_ignores_low_priority);
	suite_add_tcase(s, tc);

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_record_json_import_with_every_field);
	tcase_add_test(tc,
		       test_record_export_without_payload_gets_empty_object);
	tcase_add_test(tc, test_record_msgpack_with_every_field);
	tcase_add_test(tc, test_record_refused_without_valid_type);
	tcase_add_test(tc, test_record_refused_when_payload_not_object);
	suite_add_tcase(s, tc);

	tc = tcase_create("actions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_action_json_adds_action_to_payload);
	tcase_add_test(tc, test_action_name_in_envelope_wins_over_payload);
	tcase_add_test(tc, test_action_without_payload_gets_action_only);
	tcase_add_test(tc, test_action_msgpack_adds_action_to_payload);
	tcase_add_test(tc, test_action_refused_without_action);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_integer_id_becomes_decimal_text);
	tcase_add_test(tc, test_id_refused_unless_string_or_integer);
	tcase_add_test(tc, test_null_fields_count_as_absent);
	tcase_add_test(tc, test_empty_run_by_counts_as_absent);
	tcase_add_test(tc, test_run_by_refused_unless_string_or_null);
	tcase_add_test(tc, test_low_priority_refused_unless_boolean);
	tcase_add_test(tc, test_unknown_fields_are_ignored);
	tcase_add_test(tc, test_repeated_key_last_wins_in_both_encodings);
	tcase_add_test(tc, test_json_and_msgpack_give_same_payload);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_leading_whitespace_is_skipped);
	tcase_add_test(tc, test_message_neither_object_nor_map_refused);
	tcase_add_test(tc, test_json_trailing_garbage_refused);
	tcase_add_test(tc, test_msgpack_trailing_bytes_refused);
	tcase_add_test(tc, test_invalid_json_refused_with_byte_position);
	tcase_add_test(tc, test_json_truncated_at_every_length_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("msgpack");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_msgpack_every_type_converts);
	tcase_add_test(tc, test_msgpack_truncated_at_every_length_refused);
	tcase_add_test(tc, test_msgpack_huge_declared_count_is_truncated);
	tcase_add_test(tc, test_msgpack_binary_and_ext_refused);
	tcase_add_test(tc, test_msgpack_non_string_key_refused);
	tcase_add_test(tc, test_msgpack_nan_and_inf_refused);
	tcase_add_test(tc, test_msgpack_uint64_over_int64_refused);
	tcase_add_test(tc, test_msgpack_unused_byte_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_invalid_utf8_in_json_refused);
	tcase_add_test(tc, test_invalid_utf8_in_msgpack_refused);
	tcase_add_test(tc, test_nul_in_strings_refused);
	tcase_add_test(tc, test_reason_is_printable_ascii);
	tcase_add_test(tc, test_valid_utf8_predicate);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_depth_limit);
	tcase_add_test(tc, test_msgpack_depth_limit);
	tcase_add_test(tc, test_payload_size_limit_boundary);
	tcase_add_test(tc, test_payload_limit_counts_json_text_of_msgpack);
	tcase_add_test(tc,
		       test_message_over_twice_limit_refused_before_parsing);
	tcase_add_test(tc, test_zero_limit_means_no_limit);
	tcase_add_test(tc, test_fast_path_reads_plain_json_as_the_tree_does);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_msgpack_to_json_takes_any_value);
	tcase_add_test(tc, test_release_is_safe_on_zeroed_and_twice);
	tcase_add_test(tc, test_out_of_memory_is_not_a_refusal);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return jobd_test_run_suite(codec_suite());
}
