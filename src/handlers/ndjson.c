/*
 * ndjson: one line of an NDJSON import -> a record (ndjson.h).
 */
#include "config.h"

#include "handlers/ndjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jobd_json_text(const json_t *v)
{
	char *s;

	if (json_is_string(v))
		s = strndup(json_string_value(v), json_string_length(v));
	else if (!v || json_is_null(v))
		s = strdup("");
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
					  JSON_PRESERVE_ORDER);
	if (!s)
		abort();
	return s;
}

bool jobd_ndjson_record(const char *line, size_t len, const char *key,
			struct jobd_record *out, size_t *bytes, char *why,
			size_t why_size)
{
	struct jobd_record rec = { 0 };
	json_error_t e;
	json_t *obj, *idv, *v;
	const char *name;
	size_t i = 0;

	obj = json_loadb(line, len, 0, &e);
	if (!obj) {
		snprintf(why, why_size, "invalid JSON at column %d: %s",
			 e.column, e.text);
		return false;
	}
	if (!json_is_object(obj)) {
		snprintf(why, why_size, "not a JSON object");
		json_decref(obj);
		return false;
	}
	idv = json_object_get(obj, key);
	if (!json_is_string(idv) && !json_is_integer(idv)) {
		snprintf(why, why_size,
			 "no \"%s\" string or integer for the record id", key);
		json_decref(obj);
		return false;
	}
	rec.id = jobd_json_text(idv);
	if (!jobd_records_valid_id(rec.id)) {
		snprintf(why, why_size, "%s id in \"%s\"",
			 *rec.id ? "too long an" : "empty", key);
		free(rec.id);
		json_decref(obj);
		return false;
	}
	rec.n = json_object_size(obj);
	rec.fields = calloc(rec.n ? rec.n : 1, sizeof(*rec.fields));
	if (!rec.fields)
		abort();
	json_object_foreach(obj, name, v)
	{
		rec.fields[i].name = strdup(name);
		if (!rec.fields[i].name)
			abort();
		rec.fields[i].value = jobd_json_text(v);
		*bytes += strlen(name) + strlen(rec.fields[i].value);
		i++;
	}
	json_decref(obj);
	*out = rec;
	return true;
}

char *jobd_record_json(const struct jobd_record *rec)
{
	json_t *o = json_object();
	char *text;

	json_object_set_new(o, "id", json_string(rec->id));
	for (size_t j = 0; j < rec->n; j++)
		if (strcmp(rec->fields[j].name, "id") != 0)
			json_object_set_new(o, rec->fields[j].name,
					    json_string(rec->fields[j].value));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		abort();
	return text;
}

void jobd_ndjson_record_clear(struct jobd_record *rec)
{
	for (size_t i = 0; i < rec->n; i++) {
		free(rec->fields[i].name);
		free(rec->fields[i].value);
	}
	free(rec->fields);
	free(rec->id);
	*rec = (struct jobd_record){ 0 };
}
