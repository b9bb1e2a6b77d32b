/*
 * statsjson: struct jobd_stats -> the section 8 JSON. Averages are whole
 * milliseconds (rounded); p95 comes from the log-scale histogram, so it is
 * the upper edge of the bucket holding the 95th percentile, clamped to
 * the minute's min and max.
 */
#include "config.h"

#include "statsjson.h"

#include "util.h"

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
	json_object_set_new(o, "wait_min_ms", any ? ms_or_null(c->wait_min) :
						    json_null());
	json_object_set_new(o, "wait_max_ms", any ? ms_or_null(c->wait_max) :
						    json_null());
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

json_t *jobd_stats_to_json(const struct jobd_stats *s)
{
	json_t *o = json_object();
	json_t *minutes = json_array();
	int64_t span = 60000;

	if (s->n >= 2)
		span = s->minutes[1].minute - s->minutes[0].minute;
	for (size_t i = 0; i < s->n; i++) {
		const struct jobd_stats_minute *m = &s->minutes[i];
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
		json_array_append_new(minutes, j);
	}
	json_object_set_new(o, "minutes", minutes);
	json_object_set_new(o, "span_ms", json_integer(span));
	return o;
}
