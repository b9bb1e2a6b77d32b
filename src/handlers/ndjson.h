/*
 * ndjson: one line of an NDJSON import -> a record (docs/job-types.md), and
 * the text a JSON value is stored as. Pure: no Redis, no I/O, so that
 * tests/fuzz/fuzz_ndjson.c drives it as the import does.
 */
#ifndef JOBD_SRC_HANDLERS_NDJSON_H
#define JOBD_SRC_HANDLERS_NDJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/records.h"

/*
 * The text of a record field holding V: a string as it is, null (or no
 * value) as "", anything else as its compact JSON. Never NULL (aborts when
 * out of memory); free() it.
 */
char *jobd_json_text(const json_t *v);

/*
 * Parses LINE (LEN bytes, one JSON object) into *OUT: its id from member
 * KEY (a string or an integer, 1-JOBD_RECORDS_ID_MAX bytes), each member a
 * field in the object's order. On success OUT owns its strings (free with
 * jobd_ndjson_record_clear) and *BYTES adds the bytes of its names and
 * values. Returns false with the reason in WHY ("not a JSON object", "no
 * \"id\" string or integer for the record id", ...) and OUT untouched.
 */
bool jobd_ndjson_record(const char *line, size_t len, const char *key,
			struct jobd_record *out, size_t *bytes, char *why,
			size_t why_size);

/*
 * REC as one compact JSON object: "id" first, then its fields (a field
 * named "id" is the id already), every value a string. The shape an
 * import publishes, an action's command reads and an NDJSON export of all
 * fields writes. Never NULL (aborts when out of memory); free() it.
 */
char *jobd_record_json(const struct jobd_record *rec);

/* Frees what jobd_ndjson_record put into REC. */
void jobd_ndjson_record_clear(struct jobd_record *rec);

#endif
