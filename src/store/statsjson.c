/*
 * statsjson: struct jobd_stats -> the JSON of docs/statistics.md. Averages are
 * whole milliseconds (rounded); p95 comes from the log-scale histogram, so it
 * is the upper edge of the bucket holding the 95th percentile, clamped to the
 * minute's min and max.
 *
 * The msgpack form (the stats topic with [stats] format = msgpack) packs
 * the very JSON object, so the two forms cannot drift apart: the same keys
 * in the same order, null as nil, integers as the smallest int encoding.
 */
#include "config.h"

#include "store/statsjson.h"

#include <msgpack.h>
#include <string.h>

#include "base/util.h"

static json_t *ms_or_null(int64_t ms)
{
	return ms >= 0 ? json_integer(ms) : json_null();
}

/* Adds the count fields of C to O, in the contract's order. */
static void add_counts(json_t *o, const struct jobd_stats_counts *c)
{
	bool any = c->started > 0;

	json_object_set_new(o, "created", json_integer(c->created));
	json_object_set_new(o, "started", json_integer(c->started));
	json_object_set_new(o, "finished", json_integer(c->finished));
	json_object_set_new(o, "errors", json_integer(c->errors));
	json_object_set_new(o, "wait_avg_ms",
			    any ? json_integer((c->wait_sum + c->started / 2) /
					       c->started) :
				  json_null());
	json_object_set_new(o, "wait_min_ms",
			    any ? ms_or_null(c->wait_min) : json_null());
	json_object_set_new(o, "wait_max_ms",
			    any ? ms_or_null(c->wait_max) : json_null());
	json_object_set_new(o, "wait_p95_ms",
			    any ? ms_or_null(jobd_stats_percentile(c, 95)) :
				  json_null());
}

json_t *jobd_stats_counts_to_json(const struct jobd_stats_counts *c)
{
	json_t *o = json_object();

	add_counts(o, c);
	return o;
}

json_t *jobd_stats_minute_to_json(const struct jobd_stats_minute *m)
{
	json_t *j = json_object();
	json_t *types = json_object();
	char iso[JOBD_ISO_SIZE];

	json_object_set_new(j, "minute",
			    json_string(jobd_util_iso(m->minute, iso)));
	json_object_set_new(j, "closed", json_boolean(m->closed));
	add_counts(j, &m->all);
	for (size_t t = 0; t < m->ntypes; t++)
		if (m->types[t].type)
			json_object_set_new(
				types, m->types[t].type,
				jobd_stats_counts_to_json(&m->types[t].c));
	json_object_set_new(j, "by_type", types);
	return j;
}

json_t *jobd_stats_to_json(const struct jobd_stats *s)
{
	json_t *o = json_object();
	json_t *minutes = json_array();
	int64_t span = 60000;

	if (s->n >= 2)
		span = s->minutes[1].minute - s->minutes[0].minute;
	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(
			minutes, jobd_stats_minute_to_json(&s->minutes[i]));
	json_object_set_new(o, "minutes", minutes);
	json_object_set_new(o, "span_ms", json_integer(span));
	return o;
}

/* Packs J (objects, strings, integers, reals, booleans, null) into PK. */
static int pack_json(msgpack_packer *pk, const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (msgpack_pack_map(pk, json_object_size(j)) < 0)
			return -1;
		json_object_foreach((json_t *)j, key, v)
		{
			size_t len = strlen(key);

			if (msgpack_pack_str(pk, len) < 0 ||
			    msgpack_pack_str_body(pk, key, len) < 0 ||
			    pack_json(pk, v) < 0)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		if (msgpack_pack_array(pk, json_array_size(j)) < 0)
			return -1;
		json_array_foreach(j, i, v) if (pack_json(pk, v) < 0) return -1;
		return 0;
	case JSON_STRING:
		return msgpack_pack_str(pk, json_string_length(j)) < 0 ||
				       msgpack_pack_str_body(
					       pk, json_string_value(j),
					       json_string_length(j)) < 0 ?
			       -1 :
			       0;
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, json_integer_value(j));
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(j));
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	}
	return -1;
}

int jobd_stats_minute_to_msgpack(const struct jobd_stats_minute *m, char **buf,
				 size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *j;
	int rc;

	*buf = NULL;
	*len = 0;
	j = jobd_stats_minute_to_json(m);
	if (!j)
		return -1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc = pack_json(&pk, j);
	json_decref(j);
	if (rc < 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*len = sb.size; /* the release below zeroes it */
	*buf = msgpack_sbuffer_release(&sb);
	return 0;
}
