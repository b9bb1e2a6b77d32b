/*
 * codec: one Kafka message -> struct jobd_request.
 *
 * Data flow: either encoding is first turned into one jansson tree (JSON by
 * jansson's parser, msgpack by the small reader below), then one function
 * per topic checks the envelope on that tree and builds the payload tree,
 * which is written out compactly. So JSON and msgpack messages obey the
 * same field rules and are refused with the same words. Plain JSON
 * messages, the most common, take a fast path to the same request
 * without the tree (fast_decode()); every other one, and every refusal,
 * goes the tree's way.
 *
 * Why our own msgpack reader rather than msgpack-c's msgpack_unpack_next():
 * its object unpacker allocates room for the declared element count of an
 * array or map before reading them (the 8-byte message {"a": array32 of
 * 2^32-1} makes 4.0.0 ask malloc for 128 GiB), its nesting stack is fixed
 * at 32 levels (MSGPACK_EMBED_STACK_SIZE) while we allow 64 as for JSON,
 * and its errors carry no position or field name.
 * The format is small; a reader that checks every length and count against
 * the bytes left is short. msgpack-c still writes msgpack (stats, tests).
 *
 * Integers: jansson holds int64 (json_int_t) and refuses bigger JSON
 * numbers, so a msgpack uint64 over INT64_MAX is refused as well, rather
 * than written as digits that no jobd process could read back.
 */
#include "config.h"

#include "kafka/codec.h"

#include "base/schedule.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"

/* Field names quoted in messages longer than this are not quoted. */
#define NAME_QUOTE_MAX 64

static void fail(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reasons travel in Kafka headers and log lines, and may quote bytes of
 * the message (jansson's "near '...'"), so anything but printable ASCII
 * becomes '?'.
 */
static void fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (!errstr || errstr_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
	jobd_util_printable(errstr);
}

static int fail_nomem(char *errstr, size_t errstr_size)
{
	fail(errstr, errstr_size, "out of memory");
	return -ENOMEM;
}

bool jobd_codec_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		uint32_t cp;
		size_t n, i;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
			return false;
		if (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
			return false;
		p += n + 1;
	}
	return true;
}

/* Whether NAME can be quoted in a reason as it is. */
static bool quotable(const char *name, size_t len)
{
	size_t i;

	if (!name || len == 0 || len > NAME_QUOTE_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '"')
			return false;
	return true;
}

/* --- msgpack reader ------------------------------------------------- */

struct mp_reader {
	const unsigned char *buf; /* the whole message, borrowed */
	size_t len;		  /* bytes in buf */
	size_t off;		  /* next byte to read, from buf */
	const char
		*key; /* nearest enclosing map key (points into buf), or NULL */
	size_t key_len; /* bytes in key */
	int rc;		/* 0 until the first failure, then -EINVAL or -ENOMEM */
	char *errstr;	/* reason goes here; may be NULL */
	size_t errstr_size; /* bytes at errstr */
};

static json_t *mp_value(struct mp_reader *rd, int depth);

static json_t *mp_nomem(struct mp_reader *rd)
{
	rd->rc = fail_nomem(rd->errstr, rd->errstr_size);
	return NULL;
}

static json_t *mp_truncated(struct mp_reader *rd)
{
	rd->rc = -EINVAL;
	fail(rd->errstr, rd->errstr_size, "truncated msgpack");
	return NULL;
}

/* Whether N more bytes are there to read; fails the reader if not. */
static bool mp_have(struct mp_reader *rd, uint64_t n)
{
	if (rd->len - rd->off >= n)
		return true;
	mp_truncated(rd);
	return false;
}

/* Big-endian unsigned of N bytes at the read position; mp_have() first. */
static uint64_t mp_take(struct mp_reader *rd, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | rd->buf[rd->off + i];
	rd->off += n;
	return v;
}

/* Reads the length of a str/bin/ext/array/map header of N bytes. */
static bool mp_length(struct mp_reader *rd, size_t n, uint64_t *v)
{
	if (!mp_have(rd, n))
		return false;
	*v = mp_take(rd, n);
	return true;
}

/* Checks the N string bytes at the read position; IS_KEY for map keys. */
static bool mp_check_string(struct mp_reader *rd, size_t n, bool is_key)
{
	const char *s = (const char *)rd->buf + rd->off;
	const char *what = NULL;

	if (!jobd_codec_valid_utf8(s, n))
		what = "invalid UTF-8";
	else if (memchr(s, '\0', n))
		what = "NUL byte";
	if (!what)
		return true;
	rd->rc = -EINVAL;
	if (is_key)
		fail(rd->errstr, rd->errstr_size,
		     "%s in a msgpack map key at byte %zu", what, rd->off);
	else if (quotable(rd->key, rd->key_len))
		fail(rd->errstr, rd->errstr_size, "%s in \"%.*s\"", what,
		     (int)rd->key_len, rd->key);
	else
		fail(rd->errstr, rd->errstr_size,
		     "%s in a msgpack string at byte %zu", what, rd->off);
	return false;
}

static json_t *mp_string(struct mp_reader *rd, uint64_t n)
{
	json_t *json;

	if (!mp_have(rd, n) || !mp_check_string(rd, n, false))
		return NULL;
	json = json_stringn_nocheck((const char *)rd->buf + rd->off, n);
	if (!json)
		return mp_nomem(rd);
	rd->off += n;
	return json;
}

static json_t *mp_array(struct mp_reader *rd, uint64_t n, int depth)
{
	json_t *array, *item;
	uint64_t i;

	/* Every element takes at least one byte: a count beyond the bytes
	 * left is a truncated message, whatever it claims. */
	if (!mp_have(rd, n))
		return NULL;
	array = json_array();
	if (!array)
		return mp_nomem(rd);
	for (i = 0; i < n; i++) {
		item = mp_value(rd, depth + 1);
		if (!item)
			goto err_free_array;
		if (json_array_append_new(array, item) < 0) {
			mp_nomem(rd);
			goto err_free_array;
		}
	}
	return array;

err_free_array:
	json_decref(array);
	return NULL;
}

/* Reads a map key: it must be a msgpack str. */
static bool mp_key(struct mp_reader *rd, const char **key, size_t *key_len)
{
	size_t at = rd->off;
	unsigned char c;
	uint64_t n;

	if (!mp_have(rd, 1))
		return false;
	c = rd->buf[rd->off++];
	if (c >= 0xa0 && c <= 0xbf)
		n = c & 0x1f;
	else if (c >= 0xd9 && c <= 0xdb) {
		if (!mp_length(rd, (size_t)1 << (c - 0xd9), &n))
			return false;
	} else {
		rd->rc = -EINVAL;
		fail(rd->errstr, rd->errstr_size,
		     "msgpack map key at byte %zu is not a string", at);
		return false;
	}
	if (!mp_have(rd, n) || !mp_check_string(rd, n, true))
		return false;
	*key = (const char *)rd->buf + rd->off;
	*key_len = n;
	rd->off += n;
	return true;
}

static json_t *mp_map(struct mp_reader *rd, uint64_t n, int depth)
{
	const char *outer_key = rd->key, *key;
	size_t outer_key_len = rd->key_len, key_len;
	json_t *object, *value;
	uint64_t i;

	/* A pair takes at least two bytes. */
	if (n > (rd->len - rd->off) / 2)
		return mp_truncated(rd);
	object = json_object();
	if (!object)
		return mp_nomem(rd);
	for (i = 0; i < n; i++) {
		if (!mp_key(rd, &key, &key_len))
			goto err_free_object;
		rd->key = key;
		rd->key_len = key_len;
		value = mp_value(rd, depth + 1);
		rd->key = outer_key;
		rd->key_len = outer_key_len;
		if (!value)
			goto err_free_object;
		/* Keys were checked for NUL and UTF-8; the last duplicate
		 * wins, as in jansson's JSON parser. */
		if (json_object_setn_new_nocheck(object, key, key_len, value) <
		    0) {
			mp_nomem(rd);
			goto err_free_object;
		}
	}
	return object;

err_free_object:
	json_decref(object);
	return NULL;
}

static json_t *mp_integer(struct mp_reader *rd, int64_t v)
{
	json_t *json = json_integer(v);

	return json ? json : mp_nomem(rd);
}

static json_t *mp_unsigned(struct mp_reader *rd, uint64_t v)
{
	if (v > INT64_MAX) {
		rd->rc = -EINVAL;
		fail(rd->errstr, rd->errstr_size,
		     "msgpack integer %" PRIu64 " is over the int64 range", v);
		return NULL;
	}
	return mp_integer(rd, (int64_t)v);
}

static json_t *mp_real(struct mp_reader *rd, double v)
{
	json_t *json;

	if (!isfinite(v)) {
		rd->rc = -EINVAL;
		fail(rd->errstr, rd->errstr_size,
		     "msgpack float %s has no JSON form",
		     isnan(v) ? "NaN" : "Inf");
		return NULL;
	}
	json = json_real(v);
	return json ? json : mp_nomem(rd);
}

static json_t *mp_refuse(struct mp_reader *rd, const char *what)
{
	rd->rc = -EINVAL;
	fail(rd->errstr, rd->errstr_size, "msgpack %s has no JSON form", what);
	return NULL;
}

static json_t *mp_float(struct mp_reader *rd, size_t n)
{
	uint64_t bits;
	uint32_t bits32;
	float f;
	double d;

	if (!mp_have(rd, n))
		return NULL;
	bits = mp_take(rd, n);
	if (n == 4) {
		bits32 = (uint32_t)bits;
		memcpy(&f, &bits32, sizeof(f));
		return mp_real(rd, f);
	}
	memcpy(&d, &bits, sizeof(d));
	return mp_real(rd, d);
}

static json_t *mp_signed(struct mp_reader *rd, size_t n)
{
	uint64_t v;

	if (!mp_have(rd, n))
		return NULL;
	v = mp_take(rd, n);
	switch (n) {
	case 1:
		return mp_integer(rd, (int8_t)v);
	case 2:
		return mp_integer(rd, (int16_t)v);
	case 4:
		return mp_integer(rd, (int32_t)v);
	default:
		return mp_integer(rd, (int64_t)v);
	}
}

static json_t *mp_value(struct mp_reader *rd, int depth)
{
	size_t at = rd->off;
	unsigned char c;
	uint64_t n;

	if (!mp_have(rd, 1))
		return NULL;
	c = rd->buf[rd->off++];
	if ((c >= 0x80 && c <= 0x9f) || c == 0xdc || c == 0xdd || c == 0xde ||
	    c == 0xdf) {
		if (depth > JOBD_CODEC_MAX_DEPTH) {
			rd->rc = -EINVAL;
			fail(rd->errstr, rd->errstr_size,
			     "nested deeper than %d levels",
			     JOBD_CODEC_MAX_DEPTH);
			return NULL;
		}
	}
	if (c <= 0x7f)
		return mp_integer(rd, c);
	if (c >= 0xe0)
		return mp_integer(rd, (int8_t)c);
	if (c <= 0x8f)
		return mp_map(rd, c & 0x0f, depth);
	if (c <= 0x9f)
		return mp_array(rd, c & 0x0f, depth);
	if (c <= 0xbf)
		return mp_string(rd, c & 0x1f);
	switch (c) {
	case 0xc0:
		return json_null();
	case 0xc2:
		return json_false();
	case 0xc3:
		return json_true();
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return mp_refuse(rd, "binary");
	case 0xc7:
	case 0xc8:
	case 0xc9:
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return mp_refuse(rd, "ext");
	case 0xca:
		return mp_float(rd, 4);
	case 0xcb:
		return mp_float(rd, 8);
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		if (!mp_length(rd, (size_t)1 << (c - 0xcc), &n))
			return NULL;
		return mp_unsigned(rd, n);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		return mp_signed(rd, (size_t)1 << (c - 0xd0));
	case 0xd9:
	case 0xda:
	case 0xdb:
		if (!mp_length(rd, (size_t)1 << (c - 0xd9), &n))
			return NULL;
		return mp_string(rd, n);
	case 0xdc:
	case 0xdd:
		if (!mp_length(rd, (size_t)2 << (c - 0xdc), &n))
			return NULL;
		return mp_array(rd, n, depth);
	case 0xde:
	case 0xdf:
		if (!mp_length(rd, (size_t)2 << (c - 0xde), &n))
			return NULL;
		return mp_map(rd, n, depth);
	default: /* 0xc1, never used */
		rd->rc = -EINVAL;
		fail(rd->errstr, rd->errstr_size,
		     "invalid msgpack byte 0x%02x at byte %zu", c, at);
		return NULL;
	}
}

/* Reads one msgpack value spanning BUF[start..len) exactly into *JSON. */
static int mp_read(const unsigned char *buf, size_t start, size_t len,
		   json_t **json, char *errstr, size_t errstr_size)
{
	struct mp_reader rd = {
		.buf = buf,
		.len = len,
		.off = start,
		.errstr = errstr,
		.errstr_size = errstr_size,
	};

	*json = mp_value(&rd, 1);
	if (!*json)
		return rd.rc ? rd.rc : fail_nomem(errstr, errstr_size);
	if (rd.off != len) {
		fail(errstr, errstr_size,
		     "trailing bytes after the msgpack %s at byte %zu",
		     json_is_object(*json) ? "map" : "value", rd.off);
		json_decref(*json);
		*json = NULL;
		return -EINVAL;
	}
	return 0;
}

/* --- JSON ----------------------------------------------------------- */

/* Whether a container in JSON (at level DEPTH) nests deeper than allowed. */
static bool too_deep(json_t *json, int depth)
{
	void *iter;
	size_t i;

	if (!json_is_object(json) && !json_is_array(json))
		return false;
	if (depth > JOBD_CODEC_MAX_DEPTH)
		return true;
	for (i = 0; i < json_array_size(json); i++)
		if (too_deep(json_array_get(json, i), depth + 1))
			return true;
	for (iter = json_object_iter(json); iter;
	     iter = json_object_iter_next(json, iter))
		if (too_deep(json_object_iter_value(iter), depth + 1))
			return true;
	return false;
}

static int json_read(const char *buf, size_t len, json_t **json, char *errstr,
		     size_t errstr_size)
{
	json_error_t jerr;

	*json = json_loadb(buf, len, 0, &jerr);
	if (!*json) {
		/* jansson returns with no error text when it cannot allocate
		 * its lexer. */
		if (jerr.text[0] == '\0')
			return fail_nomem(errstr, errstr_size);
		switch (json_error_code(&jerr)) {
		case json_error_out_of_memory:
			return fail_nomem(errstr, errstr_size);
		case json_error_stack_overflow:
			fail(errstr, errstr_size,
			     "nested deeper than %d levels",
			     JOBD_CODEC_MAX_DEPTH);
			break;
		case json_error_invalid_utf8:
			fail(errstr, errstr_size,
			     "invalid UTF-8 in JSON at byte %d", jerr.position);
			break;
		default:
			fail(errstr, errstr_size, "invalid JSON at byte %d: %s",
			     jerr.position, jerr.text);
			break;
		}
		return -EINVAL;
	}
	if (too_deep(*json, 1)) {
		json_decref(*json);
		*json = NULL;
		fail(errstr, errstr_size, "nested deeper than %d levels",
		     JOBD_CODEC_MAX_DEPTH);
		return -EINVAL;
	}
	return 0;
}

/* --- writing JSON text ---------------------------------------------- */

struct text_buf {
	char *data; /* NUL-terminated text so far, owned; NULL when over limit */
	size_t len;   /* bytes the whole text takes, even past the limit */
	size_t cap;   /* bytes allocated at data */
	size_t limit; /* most bytes kept; 0 = no limit */
	bool nomem;   /* an allocation failed */
};

static int text_append(const char *s, size_t n, void *arg)
{
	struct text_buf *tb = arg;

	tb->len += n;
	/* Past the limit only the size is still counted, for the message. */
	if (tb->limit && tb->len > tb->limit) {
		free(tb->data);
		tb->data = NULL;
		tb->cap = 0;
		return 0;
	}
	if (jobd_util_grow(&tb->data, &tb->cap, tb->len, 1, 256) < 0) {
		tb->nomem = true;
		return -1;
	}
	memcpy(tb->data + tb->len - n, s, n);
	tb->data[tb->len] = '\0';
	return 0;
}

/* Writes JSON compactly into *TEXT (malloc) and *TEXT_LEN; -EINVAL when the
 * text is over LIMIT bytes (0 = no limit). */
static int write_json(json_t *json, size_t limit, char **text, size_t *text_len,
		      char *errstr, size_t errstr_size)
{
	struct text_buf tb = { .limit = limit };

	if (json_dump_callback(json, text_append, &tb,
			       JSON_COMPACT | JSON_ENCODE_ANY) < 0 ||
	    tb.nomem) {
		free(tb.data);
		return fail_nomem(errstr, errstr_size);
	}
	if (limit && tb.len > limit) {
		fail(errstr, errstr_size,
		     "payload is %zu bytes, over the %zu-byte limit", tb.len,
		     limit);
		return -EINVAL;
	}
	*text = tb.data;
	*text_len = tb.len;
	return 0;
}

int jobd_codec_msgpack_to_json(const void *buf, size_t len, char **json,
			       char *errstr, size_t errstr_size)
{
	json_t *root;
	size_t text_len;
	int rc;

	*json = NULL;
	rc = mp_read(buf, 0, len, &root, errstr, errstr_size);
	if (rc < 0)
		return rc;
	rc = write_json(root, 0, json, &text_len, errstr, errstr_size);
	json_decref(root);
	return rc;
}

/* --- envelope ------------------------------------------------------- */

/* The value of NAME in ROOT, or NULL when absent or null. */
static json_t *field(json_t *root, const char *name)
{
	json_t *v = json_object_get(root, name);

	return json_is_null(v) ? NULL : v;
}

static int copy_string(const char *s, char **out, char *errstr,
		       size_t errstr_size)
{
	*out = strdup(s);
	return *out ? 0 : fail_nomem(errstr, errstr_size);
}

/* A required non-empty string field, copied to *OUT. */
static int take_name(json_t *root, const char *name, char **out, char *errstr,
		     size_t errstr_size)
{
	json_t *v = field(root, name);

	if (!v) {
		fail(errstr, errstr_size, "missing \"%s\"", name);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		fail(errstr, errstr_size, "\"%s\" must be a string", name);
		return -EINVAL;
	}
	if (json_string_length(v) == 0) {
		fail(errstr, errstr_size, "\"%s\" is empty", name);
		return -EINVAL;
	}
	return copy_string(json_string_value(v), out, errstr, errstr_size);
}

static int take_id(json_t *root, char **id, char *errstr, size_t errstr_size)
{
	json_t *v = field(root, "id");
	char num[32];

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return copy_string(num, id, errstr, errstr_size);
	}
	if (!json_is_string(v)) {
		fail(errstr, errstr_size,
		     "\"id\" must be a string or an integer");
		return -EINVAL;
	}
	if (json_string_length(v) == 0) {
		fail(errstr, errstr_size, "\"id\" is empty");
		return -EINVAL;
	}
	return copy_string(json_string_value(v), id, errstr, errstr_size);
}

static int take_run_by(json_t *root, char **run_by, char *errstr,
		       size_t errstr_size)
{
	json_t *v = field(root, "run_by");

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		fail(errstr, errstr_size,
		     "\"run_by\" must be a string or null");
		return -EINVAL;
	}
	if (json_string_length(v) == 0)
		return 0;
	return copy_string(json_string_value(v), run_by, errstr, errstr_size);
}

static int take_low_priority(json_t *root, bool *low_priority, char *errstr,
			     size_t errstr_size)
{
	json_t *v = field(root, "low_priority");

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		fail(errstr, errstr_size, "\"low_priority\" must be a boolean");
		return -EINVAL;
	}
	*low_priority = json_is_true(v);
	return 0;
}

/* The "payload" object of ROOT with a new reference, or a new {} when absent. */
static int take_payload(json_t *root, json_t **payload, char *errstr,
			size_t errstr_size)
{
	json_t *v = field(root, "payload");

	if (!v) {
		*payload = json_object();
		return *payload ? 0 : fail_nomem(errstr, errstr_size);
	}
	if (!json_is_object(v)) {
		fail(errstr, errstr_size, "\"payload\" must be an object");
		return -EINVAL;
	}
	*payload = json_incref(v);
	return 0;
}

static int decode_event(json_t *root, struct jobd_request *req,
			json_t **payload, char *errstr, size_t errstr_size)
{
	json_t *data;
	int rc;

	if ((rc = take_name(root, "service", &req->service, errstr,
			    errstr_size)) < 0 ||
	    (rc = take_name(root, "event", &req->event, errstr, errstr_size)) <
		    0 ||
	    (rc = take_run_by(root, &req->run_by, errstr, errstr_size)) < 0 ||
	    (rc = copy_string("event", &req->type, errstr, errstr_size)) < 0)
		return rc;
	data = field(root, "data");
	*payload = json_object();
	if (!*payload ||
	    json_object_set_new(*payload, "service",
				json_string(req->service)) < 0 ||
	    json_object_set_new(*payload, "event", json_string(req->event)) <
		    0 ||
	    json_object_set_new(*payload, "data",
				data ? json_incref(data) : json_null()) < 0)
		return fail_nomem(errstr, errstr_size);
	return 0;
}

static int decode_record(json_t *root, struct jobd_request *req,
			 json_t **payload, char *errstr, size_t errstr_size)
{
	const char *type;
	json_t *v;
	int rc;

	v = field(root, "type");
	if (!v) {
		fail(errstr, errstr_size, "missing \"type\"");
		return -EINVAL;
	}
	type = json_string_value(v);
	if (!type ||
	    (strcmp(type, "import") != 0 && strcmp(type, "export") != 0)) {
		fail(errstr, errstr_size,
		     "\"type\" must be \"import\" or \"export\"");
		return -EINVAL;
	}
	if ((rc = copy_string(type, &req->type, errstr, errstr_size)) < 0 ||
	    (rc = take_run_by(root, &req->run_by, errstr, errstr_size)) < 0 ||
	    (rc = take_low_priority(root, &req->low_priority, errstr,
				    errstr_size)) < 0)
		return rc;
	return take_payload(root, payload, errstr, errstr_size);
}

static int decode_action(json_t *root, struct jobd_request *req,
			 json_t **payload, char *errstr, size_t errstr_size)
{
	int rc;

	if ((rc = take_name(root, "action", &req->action, errstr,
			    errstr_size)) < 0 ||
	    (rc = copy_string("action", &req->type, errstr, errstr_size)) < 0 ||
	    (rc = take_run_by(root, &req->run_by, errstr, errstr_size)) < 0 ||
	    (rc = take_low_priority(root, &req->low_priority, errstr,
				    errstr_size)) < 0 ||
	    (rc = take_payload(root, payload, errstr, errstr_size)) < 0)
		return rc;
	/* The payload is ours (a subtree of our parse): adding the key in
	 * place is fine, and the envelope's name wins over a payload one. */
	if (json_object_set_new(*payload, "action", json_string(req->action)) <
	    0)
		return fail_nomem(errstr, errstr_size);
	return 0;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A message over twice the payload limit is refused unread. */
static bool over_twice_limit(size_t len, size_t max_payload)
{
	return max_payload && max_payload <= SIZE_MAX / 2 &&
	       len > 2 * max_payload;
}

static bool is_msgpack_map(unsigned char c)
{
	return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
}

/* --- the fast path: plain JSON, read without a tree -------------------- */

/*
 * Most messages are small JSON objects of plain strings, integers and
 * literals. Building jansson's tree of one and writing its payload out
 * again costs about 13,000 instructions, over half of the consumer's work
 * for a message. The fast path reads such a message in one pass and
 * copies the payload's tokens without the whitespace, which is the text
 * jansson writes, since it takes only what jansson writes unchanged:
 * strings without escapes or control characters (valid UTF-8), integers
 * of up to 18 digits but -0, true, false, null, arrays, and objects
 * without a repeated key. Anything else (an escape, a real number, a
 * repeated key, deep nesting, a field of the wrong type, any error) goes
 * the tree's way, which decides and words it: both give the same
 * request (tests/unit/check_codec.c and tests/fuzz/fuzz_codec.c compare them).
 */

#define FAST_DEPTH 16 /* deeper: the tree's way */
#define FAST_KEYS 32  /* keys of an object checked for repeats */

enum {
	FV_NONE,
	FV_STRING,
	FV_INT,
	FV_TRUE,
	FV_FALSE,
	FV_NULL,
	FV_OBJECT,
	FV_ARRAY
};

/* A value read: its kind, its text in the input (a string's without the
 * quotes), and where its compact text is in the output. */
struct fval {
	int kind;
	const char *p;
	size_t n, at, end;
};

struct fast {
	const char *p, *end;
	char *out; /* the compact text of every value read, in turn */
	size_t n, cap;
	int depth;
	bool action_key; /* an object at depth 2 has the key "action" */
};

static void fast_ws(struct fast *f)
{
	while (f->p < f->end && is_space((unsigned char)*f->p))
		f->p++;
}

static bool fast_put(struct fast *f, const char *s, size_t n)
{
	if (n > 0 && jobd_util_grow(&f->out, &f->cap, f->n + n - 1, 1, 64) < 0)
		return false;
	memcpy(f->out + f->n, s, n);
	f->n += n;
	return true;
}

static bool fast_value(struct fast *f, struct fval *v);

static bool fast_string(struct fast *f, struct fval *v)
{
	const char *s = ++f->p;

	while (f->p < f->end && *f->p != '"') {
		if (*f->p == '\\' || (unsigned char)*f->p < 0x20)
			return false;
		f->p++;
	}
	if (f->p == f->end || !jobd_codec_valid_utf8(s, (size_t)(f->p - s)))
		return false;
	v->kind = FV_STRING;
	v->p = s;
	v->n = (size_t)(f->p - s);
	f->p++;
	return fast_put(f, s - 1, v->n + 2);
}

static bool fast_int(struct fast *f, struct fval *v)
{
	const char *s = f->p, *d;

	if (f->p < f->end && *f->p == '-')
		f->p++;
	d = f->p;
	while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
		f->p++;
	/* 0 alone, no leading zero, no fraction or exponent, not -0 */
	if (f->p == d || f->p - d > 18 || (*d == '0' && f->p - d > 1) ||
	    (*d == '0' && d > s) ||
	    (f->p < f->end && (*f->p == '.' || *f->p == 'e' || *f->p == 'E')))
		return false;
	v->kind = FV_INT;
	v->p = s;
	v->n = (size_t)(f->p - s);
	return fast_put(f, s, v->n);
}

static bool fast_word(struct fast *f, struct fval *v, const char *w, int kind)
{
	size_t n = strlen(w);

	if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0)
		return false;
	v->kind = kind;
	v->p = f->p;
	v->n = n;
	f->p += n;
	return fast_put(f, w, n);
}

/* An array, or an object (OBJ), after its opening bracket. */
static bool fast_list(struct fast *f, struct fval *v, bool obj)
{
	struct fval keys[FAST_KEYS], item;
	size_t nkeys = 0;

	if (++f->depth > FAST_DEPTH || !fast_put(f, obj ? "{" : "[", 1))
		return false;
	f->p++;
	fast_ws(f);
	if (f->p < f->end && *f->p == (obj ? '}' : ']'))
		goto close;
	for (;;) {
		if (obj) {
			if (f->p == f->end || *f->p != '"' ||
			    nkeys == FAST_KEYS || !fast_string(f, &keys[nkeys]))
				return false;
			for (size_t i = 0; i < nkeys; i++)
				if (keys[i].n == keys[nkeys].n &&
				    memcmp(keys[i].p, keys[nkeys].p,
					   keys[i].n) == 0)
					return false;
			if (f->depth == 2 && keys[nkeys].n == 6 &&
			    memcmp(keys[nkeys].p, "action", 6) == 0)
				f->action_key = true;
			nkeys++;
			fast_ws(f);
			if (f->p == f->end || *f->p != ':' ||
			    !fast_put(f, ":", 1))
				return false;
			f->p++;
			fast_ws(f);
		}
		if (!fast_value(f, &item))
			return false;
		fast_ws(f);
		if (f->p < f->end && *f->p == ',') {
			if (!fast_put(f, ",", 1))
				return false;
			f->p++;
			fast_ws(f);
			continue;
		}
		if (f->p < f->end && *f->p == (obj ? '}' : ']'))
			break;
		return false;
	}
close:
	f->p++;
	f->depth--;
	v->kind = obj ? FV_OBJECT : FV_ARRAY;
	return fast_put(f, obj ? "}" : "]", 1);
}

static bool fast_value(struct fast *f, struct fval *v)
{
	bool ok;

	v->at = f->n;
	if (f->p == f->end)
		return false;
	switch (*f->p) {
	case '"':
		ok = fast_string(f, v);
		break;
	case '{':
		ok = fast_list(f, v, true);
		break;
	case '[':
		ok = fast_list(f, v, false);
		break;
	case 't':
		ok = fast_word(f, v, "true", FV_TRUE);
		break;
	case 'f':
		ok = fast_word(f, v, "false", FV_FALSE);
		break;
	case 'n':
		ok = fast_word(f, v, "null", FV_NULL);
		break;
	default:
		ok = fast_int(f, v);
		break;
	}
	v->end = f->n;
	return ok;
}

/* The envelope's fields the topics read. */
enum {
	FF_ID,
	FF_TYPE,
	FF_ACTION,
	FF_RUN_BY,
	FF_LOW,
	FF_PAYLOAD,
	FF_SERVICE,
	FF_EVENT,
	FF_DATA,
	FF_RUN_AT,
	FF_DELAY,
	NFF
};
static const char *const fast_fields[NFF] = {
	"id",	   "type",  "action", "run_by", "low_priority", "payload",
	"service", "event", "data",   "run_at", "delay",
};

/* A copy of S (N bytes), or NULL. */
static char *fast_dup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

/* A non-empty string field (take_name()). */
static bool fast_name(const struct fval *v, char **out)
{
	if (v->kind != FV_STRING || v->n == 0)
		return false;
	*out = fast_dup(v->p, v->n);
	return *out != NULL;
}

/* run_by and low_priority as take_run_by() and take_low_priority(). A
 * run time is left to the tree (jobd_schedule_from_json()). */
static bool fast_common(const struct fval *fv, struct jobd_request *req,
			bool low)
{
	const struct fval *r = &fv[FF_RUN_BY], *l = &fv[FF_LOW];

	if ((fv[FF_RUN_AT].kind != FV_NONE && fv[FF_RUN_AT].kind != FV_NULL) ||
	    (fv[FF_DELAY].kind != FV_NONE && fv[FF_DELAY].kind != FV_NULL))
		return false;

	if (r->kind == FV_STRING && r->n) {
		if (!(req->run_by = fast_dup(r->p, r->n)))
			return false;
	} else if (r->kind != FV_NONE && r->kind != FV_NULL &&
		   r->kind != FV_STRING) {
		return false;
	}
	if (!low || l->kind == FV_NONE || l->kind == FV_NULL)
		return true;
	if (l->kind != FV_TRUE && l->kind != FV_FALSE)
		return false;
	req->low_priority = l->kind == FV_TRUE;
	return true;
}

/* The compact text of value V of F, or "{}"/"null" (DEF) when absent or
 * null, appended to *T. */
static bool fast_text(struct fast *f, const struct fval *v, const char *def,
		      struct fast *t)
{
	if (v->kind == FV_NONE || v->kind == FV_NULL)
		return fast_put(t, def, strlen(def));
	return fast_put(t, f->out + v->at, v->end - v->at);
}

/* The request of the JSON object at BUF (LEN bytes, from its '{'). */
static bool fast_decode(enum jobd_topic_kind kind, const char *buf, size_t len,
			size_t max_payload, struct jobd_request *req)
{
	struct fast f = { .p = buf, .end = buf + len };
	struct fast t = { 0 }; /* the payload's text */
	struct fval fv[NFF];
	const struct fval *id = &fv[FF_ID], *pl = &fv[FF_PAYLOAD];
	bool ok = false;

	memset(fv, 0, sizeof(fv));
	f.depth = 1;
	f.p++;
	fast_ws(&f);
	if (f.p < f.end && *f.p == '}')
		f.p++;
	else
		for (;;) {
			struct fval key, val = { .kind = FV_NONE },
					 *slot = &val;

			if (f.p == f.end || *f.p != '"' ||
			    !fast_string(&f, &key))
				goto out;
			for (int i = 0; i < NFF; i++)
				if (strlen(fast_fields[i]) == key.n &&
				    memcmp(fast_fields[i], key.p, key.n) == 0)
					slot = &fv[i];
			if (slot->kind != FV_NONE) /* repeated: last wins */
				goto out;
			fast_ws(&f);
			if (f.p == f.end || *f.p != ':')
				goto out;
			f.p++;
			fast_ws(&f);
			if (!fast_value(&f, slot))
				goto out;
			fast_ws(&f);
			if (f.p < f.end && *f.p == ',') {
				f.p++;
				fast_ws(&f);
				continue;
			}
			if (f.p == f.end || *f.p != '}')
				goto out;
			f.p++;
			break;
		}
	fast_ws(&f);
	if (f.p != f.end)
		goto out;
	/* take_id() */
	if (id->kind == FV_INT || (id->kind == FV_STRING && id->n)) {
		if (!(req->id = fast_dup(id->p, id->n)))
			goto out;
	} else if (id->kind != FV_NONE && id->kind != FV_NULL) {
		goto out;
	}
	switch (kind) {
	case JOBD_TOPIC_EVENTS: /* decode_event() */
		if (!fast_name(&fv[FF_SERVICE], &req->service) ||
		    !fast_name(&fv[FF_EVENT], &req->event) ||
		    !fast_common(fv, req, false) ||
		    !(req->type = fast_dup("event", 5)) ||
		    !fast_put(&t, "{\"service\":", 11) ||
		    !fast_text(&f, &fv[FF_SERVICE], "", &t) ||
		    !fast_put(&t, ",\"event\":", 9) ||
		    !fast_text(&f, &fv[FF_EVENT], "", &t) ||
		    !fast_put(&t, ",\"data\":", 8) ||
		    !fast_text(&f, &fv[FF_DATA], "null", &t) ||
		    !fast_put(&t, "}", 1))
			goto out;
		break;
	case JOBD_TOPIC_RECORDS: /* decode_record() */
		if (fv[FF_TYPE].kind != FV_STRING ||
		    !((fv[FF_TYPE].n == 6 &&
		       (memcmp(fv[FF_TYPE].p, "import", 6) == 0 ||
			memcmp(fv[FF_TYPE].p, "export", 6) == 0))) ||
		    !(req->type = fast_dup(fv[FF_TYPE].p, 6)) ||
		    !fast_common(fv, req, true) ||
		    (pl->kind != FV_OBJECT && pl->kind != FV_NONE &&
		     pl->kind != FV_NULL) ||
		    !fast_text(&f, pl, "{}", &t))
			goto out;
		break;
	case JOBD_TOPIC_ACTIONS: /* decode_action() */
		/* The action goes last into the payload, unless the payload
		 * has the key already (the tree replaces it in place). */
		if (!fast_name(&fv[FF_ACTION], &req->action) ||
		    !(req->type = fast_dup("action", 6)) ||
		    !fast_common(fv, req, true) ||
		    (pl->kind != FV_OBJECT && pl->kind != FV_NONE &&
		     pl->kind != FV_NULL) ||
		    (pl->kind == FV_OBJECT && f.action_key) ||
		    !fast_text(&f, pl, "{}", &t))
			goto out;
		t.n--; /* the closing brace */
		if ((t.n > 1 && !fast_put(&t, ",", 1)) ||
		    !fast_put(&t, "\"action\":", 9) ||
		    !fast_text(&f, &fv[FF_ACTION], "", &t) ||
		    !fast_put(&t, "}", 1))
			goto out;
		break;
	default:
		goto out;
	}
	if ((max_payload && t.n > max_payload) || !fast_put(&t, "", 1))
		goto out;
	req->payload = t.out;
	req->payload_len = t.n - 1;
	t.out = NULL;
	ok = true;
out:
	if (!ok)
		jobd_codec_request_release(req);
	free(t.out);
	free(f.out);
	return ok;
}

int jobd_codec_decode_tree(enum jobd_topic_kind kind, const void *buf,
			   size_t len, size_t max_payload,
			   struct jobd_request *req, char *errstr,
			   size_t errstr_size)
{
	const unsigned char *bytes = buf;
	json_t *root = NULL, *payload = NULL;
	size_t start = 0;
	int rc;

	memset(req, 0, sizeof(*req));
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (over_twice_limit(len, max_payload)) {
		fail(errstr, errstr_size,
		     "message is %zu bytes, over twice the %zu-byte payload limit",
		     len, max_payload);
		return -EINVAL;
	}
	while (start < len && is_space(bytes[start]))
		start++;
	if (start == len) {
		fail(errstr, errstr_size, "empty message");
		return -EINVAL;
	}
	if (bytes[start] == '{')
		rc = json_read(buf, len, &root, errstr, errstr_size);
	else if (is_msgpack_map(bytes[start]))
		rc = mp_read(bytes, start, len, &root, errstr, errstr_size);
	else {
		fail(errstr, errstr_size, "not a JSON object or msgpack map");
		return -EINVAL;
	}
	if (rc < 0)
		return rc;

	if ((rc = take_id(root, &req->id, errstr, errstr_size)) < 0 ||
	    (rc = jobd_schedule_from_json(root, &req->run_at, &req->delay,
					  errstr, errstr_size)) < 0)
		goto err_release;
	switch (kind) {
	case JOBD_TOPIC_EVENTS:
		rc = decode_event(root, req, &payload, errstr, errstr_size);
		break;
	case JOBD_TOPIC_RECORDS:
		rc = decode_record(root, req, &payload, errstr, errstr_size);
		break;
	case JOBD_TOPIC_ACTIONS:
		rc = decode_action(root, req, &payload, errstr, errstr_size);
		break;
	default:
		fail(errstr, errstr_size, "unknown topic kind %d", (int)kind);
		rc = -EINVAL;
		break;
	}
	if (rc < 0)
		goto err_release;
	rc = write_json(payload, max_payload, &req->payload, &req->payload_len,
			errstr, errstr_size);
	if (rc < 0)
		goto err_release;
	json_decref(payload);
	json_decref(root);
	return 0;

err_release:
	json_decref(payload);
	json_decref(root);
	jobd_codec_request_release(req);
	return rc;
}

bool jobd_codec_decode_plain(enum jobd_topic_kind kind, const void *buf,
			     size_t len, size_t max_payload,
			     struct jobd_request *req)
{
	const char *s = buf;
	size_t start = 0;

	memset(req, 0, sizeof(*req));
	while (start < len && is_space((unsigned char)s[start]))
		start++;
	return start < len && s[start] == '{' &&
	       !over_twice_limit(len, max_payload) &&
	       fast_decode(kind, s + start, len - start, max_payload, req);
}

int jobd_codec_decode(enum jobd_topic_kind kind, const void *buf, size_t len,
		      size_t max_payload, struct jobd_request *req,
		      char *errstr, size_t errstr_size)
{
	if (jobd_codec_decode_plain(kind, buf, len, max_payload, req)) {
		if (errstr && errstr_size)
			errstr[0] = '\0';
		return 0;
	}
	return jobd_codec_decode_tree(kind, buf, len, max_payload, req, errstr,
				      errstr_size);
}

void jobd_codec_request_release(struct jobd_request *req)
{
	if (!req)
		return;
	free(req->id);
	free(req->type);
	free(req->run_by);
	free(req->payload);
	free(req->service);
	free(req->event);
	free(req->action);
	memset(req, 0, sizeof(*req));
}
