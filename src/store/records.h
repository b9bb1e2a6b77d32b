/*
 * records: application records in Redis collections (store layer).
 *
 * A collection NAME holds records, each a hash of text fields keyed by a
 * record id (docs/job-types.md, "Record collections"):
 *
 *	P:rec:NAME:ID	hash, field -> value (all text)
 *	P:recidx:NAME	sorted set of the ids, every score 0, so members
 *			sort by their bytes (ZRANGEBYLEX)
 *
 * Applications read and write both with redis-cli; a record written
 * without its index entry is invisible to jobd. Scans walk the index in
 * byte order from an exclusive "after" id, so a cursor is just the last id
 * seen: stable while records are added or removed elsewhere, and cheap to
 * save in a checkpoint.
 *
 * Every call is one round trip (pipelined); a write of several records is
 * one MULTI/EXEC, so a record is never half-written. Calls return 0,
 * JOBD_STORE_ERR_REDIS (retriable, jobd_store_errstr() says why) or
 * JOBD_STORE_ERR_INVALID (a bad name: nothing done).
 */
#ifndef JOBD_SRC_STORE_RECORDS_H
#define JOBD_SRC_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"

#define JOBD_RECORDS_ID_MAX 512 /* bytes of a record id */

/* A field of a record; both borrowed or owned as the record says. */
struct jobd_field {
	char *name;
	char *value;
};

/* A record: id and fields; see each call for who owns the strings. */
struct jobd_record {
	char *id;
	struct jobd_field *fields;
	size_t n;    /* fields */
	bool exists; /* reads: the record was found */
};

/* Whether NAME can name a collection: 1-200 of [A-Za-z0-9_.-]. */
bool jobd_records_valid_collection(const char *name);

/* Whether ID can be a record id: 1-JOBD_RECORDS_ID_MAX bytes, no NUL. */
static inline bool jobd_records_valid_id(const char *id)
{
	size_t len = id ? strlen(id) : 0;

	return len > 0 && len <= JOBD_RECORDS_ID_MAX;
}

/*
 * Replaces N records (borrowed) of collection COLL: each record's hash is
 * deleted and written with its fields, its id added to the index. When
 * LABEL is set (a relation's label field) and OLD is not NULL, OLD[i] is
 * set to the record's earlier LABEL value (caller frees each with free();
 * NULL when the record or the field did not exist).
 */
int jobd_records_put(struct jobd_store *st, const char *coll,
		     const struct jobd_record *recs, size_t n,
		     const char *label, char **old);

/* Records in COLL (ZCARD of the index). */
int jobd_records_count(struct jobd_store *st, const char *coll, int64_t *n);

/*
 * Up to LIMIT ids of COLL after AFTER (exclusive; NULL or "" = from the
 * first), in byte order, up to and including UPTO when set. *IDS is a new
 * array of *N strings: free with jobd_records_ids_free.
 */
int jobd_records_ids(struct jobd_store *st, const char *coll, const char *after,
		     const char *upto, size_t limit, char ***ids, size_t *n);
void jobd_records_ids_free(char **ids, size_t n);

/*
 * Reads N records of COLL by id (borrowed) into *RECS, a new array of N
 * (everything owned; free with jobd_records_free). A missing record has
 * exists false and no fields. Fields come in the hash's order.
 */
int jobd_records_get(struct jobd_store *st, const char *coll, char *const *ids,
		     size_t n, struct jobd_record **recs);
void jobd_records_free(struct jobd_record *recs, size_t n);

/*
 * Like jobd_records_get, but reads only the field names (HKEYS): every
 * field's value is NULL. Free with jobd_records_free.
 */
int jobd_records_names(struct jobd_store *st, const char *coll,
		       char *const *ids, size_t n, struct jobd_record **recs);

/*
 * Sets FIELD to VALUES[i] in the existing records IDS[i] of COLL (a
 * missing record is not created). *CHANGED (may be NULL) = records whose
 * value differed.
 */
int jobd_records_set_field(struct jobd_store *st, const char *coll,
			   char *const *ids, char *const *values, size_t n,
			   const char *field, size_t *changed);

/*
 * Renames field FROM to TO in records IDS of COLL (a record without FROM
 * is left alone, so a rerun is harmless); TO NULL drops FROM instead, and
 * TO equal to FROM changes nothing. *CHANGED (may be NULL) = records
 * changed.
 */
int jobd_records_rename_field(struct jobd_store *st, const char *coll,
			      char *const *ids, size_t n, const char *from,
			      const char *to, size_t *changed);

/* The value of field NAME in REC, NULL when absent. */
const char *jobd_record_field(const struct jobd_record *rec, const char *name);

#endif
