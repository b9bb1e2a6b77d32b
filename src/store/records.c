/*
 * records: record collections in Redis (records.h has the layout).
 *
 * Part of the store layer (src/store/): like the job store's files, it
 * talks to hiredis through store_int.h. Each call builds one pipeline of plain
 * commands: the reads it needs first (old label values, existence), then
 * the writes inside one MULTI/EXEC, so one record's hash and index entry
 * change together and a reader never sees half a record.
 *
 * Why plain commands and not a Lua script like the job transitions: these
 * writes touch only the records named in the call, need no check-and-set
 * across keys (a put replaces, a rename of a field already renamed does
 * nothing), and a 1,000-record MULTI costs Redis what the same script
 * would. The read-before-write of a label is not atomic with other
 * writers of the same record; relationship-update only needs "the label
 * changed", and a concurrent writer triggers its own update.
 *
 * Why a sorted set with equal scores for the index: ZRANGEBYLEX gives a
 * total, stable order and a cursor that is just an id, so export and the
 * chunked jobs resume exactly where they stopped; a SET's SSCAN cursor
 * may return elements twice and is meaningless after a rehash.
 */
#include "config.h"

#include "store/records.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store_int.h"

/* Keys and numbers that several commands of a pipeline use are made
 * once into P, a struct store_args used as a pool of strings: they live
 * until P is released. */
static const char *rec_key(struct store_args *p, struct jobd_store *st,
			   const char *coll, const char *id)
{
	return store_args_addf(p, "%s:rec:%s:%s", jobd_store_prefix(st), coll,
			       id);
}

/* The keys of records IDS[0..N-1]; the array is the caller's to free. */
static const char **rec_keys(struct store_args *p, struct jobd_store *st,
			     const char *coll, char *const *ids, size_t n)
{
	const char **keys = calloc(n, sizeof(*keys));

	if (!keys)
		abort();
	for (size_t i = 0; i < n; i++)
		keys[i] = rec_key(p, st, coll, ids[i]);
	return keys;
}

static const char *idx_key(struct store_args *p, struct jobd_store *st,
			   const char *coll)
{
	return store_args_addf(p, "%s:recidx:%s", jobd_store_prefix(st), coll);
}

bool jobd_records_valid_collection(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > 200)
		return false;
	return strspn(name,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_.-") == len;
}

/* Reads N replies; a Redis error reply among them fails the call. */
static int read_replies(struct jobd_store *st, size_t n, redisReply ***out)
{
	redisReply **r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		abort();
	if (jobd_store_pipeline_read(st, n, r) < 0) {
		free(r);
		return JOBD_STORE_ERR_REDIS;
	}
	*out = r;
	return 0;
}

static void free_replies(redisReply **r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		if (r[i])
			freeReplyObject(r[i]);
	free(r);
}

/* An error reply in R[0..n) (a write refused: WRONGTYPE, OOM...). */
static int check_errors(redisReply **r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!r[i])
			continue;
		if (r[i]->type == REDIS_REPLY_ERROR) {
			jobd_warn("redis refused a record write: %s",
				  r[i]->str);
			return JOBD_STORE_ERR_INVALID;
		}
		if (r[i]->type == REDIS_REPLY_NIL && i == n - 1)
			return JOBD_STORE_ERR_REDIS; /* EXEC aborted */
		if (r[i]->type == REDIS_REPLY_ARRAY) {
			for (size_t j = 0; j < r[i]->elements; j++)
				if (r[i]->element[j]->type ==
				    REDIS_REPLY_ERROR) {
					jobd_warn("redis refused a record "
						  "write: %s",
						  r[i]->element[j]->str);
					return JOBD_STORE_ERR_INVALID;
				}
		}
	}
	return 0;
}

int jobd_records_put(struct jobd_store *st, const char *coll,
		     const struct jobd_record *recs, size_t n,
		     const char *label, char **old)
{
	struct store_args p = { 0 };
	struct store_args c = { 0 };
	struct store_link *rc;
	redisReply **r = NULL;
	const char *idx, **keys;
	size_t nold = label && old ? n : 0, total = 0;
	int ret;

	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	for (size_t i = 0; i < nold; i++)
		old[i] = NULL;
	if (n == 0)
		return 0;
	rc = jobd_store_pipeline(st);
	if (!rc)
		return JOBD_STORE_ERR_REDIS;
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		abort();
	idx = idx_key(&p, st, coll);
	for (size_t i = 0; i < n; i++)
		keys[i] = rec_key(&p, st, coll, recs[i].id);
	for (size_t i = 0; i < nold; i++) {
		store_args_add(&c, "HGET");
		store_args_add(&c, keys[i]);
		store_args_add(&c, label);
		store_args_pipe(rc, &c);
		total++;
	}
	store_args_add(&c, "MULTI");
	store_args_pipe(rc, &c);
	total++;
	for (size_t i = 0; i < n; i++) {
		store_args_add(&c, "DEL");
		store_args_add(&c, keys[i]);
		store_args_pipe(rc, &c);
		total++;
		if (recs[i].n) {
			store_args_add(&c, "HSET");
			store_args_add(&c, keys[i]);
			for (size_t j = 0; j < recs[i].n; j++) {
				store_args_add(&c, recs[i].fields[j].name);
				store_args_add(&c,
					       recs[i].fields[j].value ?
						       recs[i].fields[j].value :
						       "");
			}
			store_args_pipe(rc, &c);
			total++;
		}
		store_args_add(&c, "ZADD");
		store_args_add(&c, idx);
		store_args_add(&c, "0");
		store_args_add(&c, recs[i].id);
		store_args_pipe(rc, &c);
		total++;
	}
	store_args_add(&c, "EXEC");
	store_args_pipe(rc, &c);
	total++;
	ret = read_replies(st, total, &r);
	if (ret == 0)
		ret = check_errors(r, total);
	if (ret == 0) {
		for (size_t i = 0; i < nold; i++)
			if (r[i]->type == REDIS_REPLY_STRING) {
				old[i] = strdup(r[i]->str);
				if (!old[i])
					abort();
			}
	}
	free_replies(r, total);
	store_args_release(&c);
	store_args_release(&p);
	free(keys);
	return ret;
}

int jobd_records_count(struct jobd_store *st, const char *coll, int64_t *n)
{
	redisReply *r;

	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	r = jobd_store_command(st, "ZCARD %s:recidx:%s", jobd_store_prefix(st),
			       coll);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_INTEGER) {
		jobd_warn("ZCARD of collection %s: unexpected reply", coll);
		freeReplyObject(r);
		return JOBD_STORE_ERR_INVALID;
	}
	*n = r->integer;
	freeReplyObject(r);
	return 0;
}

int jobd_records_ids(struct jobd_store *st, const char *coll, const char *after,
		     const char *upto, size_t limit, char ***ids, size_t *n)
{
	struct store_args p = { 0 };
	struct store_args c = { 0 };
	redisReply *r;
	char **out;
	int ret = 0;

	*ids = NULL;
	*n = 0;
	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	store_args_add(&c, "ZRANGEBYLEX");
	store_args_add(&c, idx_key(&p, st, coll));
	store_args_add(&c, after && *after ? store_args_addf(&p, "(%s", after) :
					     "-");
	store_args_add(&c,
		       upto && *upto ? store_args_addf(&p, "[%s", upto) : "+");
	store_args_add(&c, "LIMIT");
	store_args_add(&c, "0");
	store_args_add(&c, store_args_addf(&p, "%zu", limit));
	r = jobd_store_command_argv(st, (int)c.n, c.v, c.len);
	store_args_release(&c);
	store_args_release(&p);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY) {
		jobd_warn("ZRANGEBYLEX of collection %s: %s", coll,
			  r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
		ret = JOBD_STORE_ERR_INVALID;
		goto out;
	}
	out = calloc(r->elements + 1, sizeof(*out));
	if (!out)
		abort();
	for (size_t i = 0; i < r->elements; i++) {
		out[i] = strndup(r->element[i]->str, r->element[i]->len);
		if (!out[i])
			abort();
	}
	*ids = out;
	*n = r->elements;
out:
	freeReplyObject(r);
	return ret;
}

void jobd_records_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}

static char *dup_or_die(const char *s, size_t len)
{
	char *d = strndup(s, len);

	if (!d)
		abort();
	return d;
}

/* HGETALL (NAMES_ONLY false) or HKEYS of N records into *RECS. */
static int read_records(struct jobd_store *st, const char *coll,
			char *const *ids, size_t n, bool names_only,
			struct jobd_record **recs)
{
	struct store_args p = { 0 };
	struct store_args c = { 0 };
	struct jobd_record *out;
	struct store_link *rc;
	redisReply **r = NULL;
	int ret;

	*recs = NULL;
	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	rc = jobd_store_pipeline(st);
	if (!rc)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		store_args_add(&c, names_only ? "HKEYS" : "HGETALL");
		store_args_add(&c, rec_key(&p, st, coll, ids[i]));
		store_args_pipe(rc, &c);
	}
	store_args_release(&c);
	store_args_release(&p);
	ret = read_replies(st, n, &r);
	if (ret < 0)
		return ret;
	ret = check_errors(r, n);
	if (ret < 0) {
		free_replies(r, n);
		return ret;
	}
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		redisReply *e = r[i];

		out[i].id = dup_or_die(ids[i], strlen(ids[i]));
		if (e->type != REDIS_REPLY_ARRAY ||
		    e->elements < (names_only ? 1 : 2))
			continue;
		out[i].exists = true;
		out[i].n = names_only ? e->elements : e->elements / 2;
		out[i].fields = calloc(out[i].n, sizeof(*out[i].fields));
		if (!out[i].fields)
			abort();
		for (size_t j = 0; j < out[i].n; j++) {
			redisReply *k = e->element[names_only ? j : 2 * j];
			redisReply *v = names_only ? NULL :
						     e->element[2 * j + 1];

			out[i].fields[j].name = dup_or_die(k->str, k->len);
			if (v)
				out[i].fields[j].value =
					dup_or_die(v->str, v->len);
		}
	}
	free_replies(r, n);
	*recs = out;
	return 0;
}

int jobd_records_get(struct jobd_store *st, const char *coll, char *const *ids,
		     size_t n, struct jobd_record **recs)
{
	return read_records(st, coll, ids, n, false, recs);
}

int jobd_records_names(struct jobd_store *st, const char *coll,
		       char *const *ids, size_t n, struct jobd_record **recs)
{
	return read_records(st, coll, ids, n, true, recs);
}

void jobd_records_free(struct jobd_record *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++) {
		for (size_t j = 0; j < recs[i].n; j++) {
			free(recs[i].fields[j].name);
			free(recs[i].fields[j].value);
		}
		free(recs[i].fields);
		free(recs[i].id);
	}
	free(recs);
}

/*
 * Reads FIELD of N records (one HGET each); *VALS[i] owned, NULL when
 * absent. Used before a conditional write.
 */
static int read_field(struct jobd_store *st, const char *const *keys, size_t n,
		      const char *field, char ***vals, bool *exists)
{
	struct store_args c = { 0 };
	struct store_link *rc = jobd_store_pipeline(st);
	redisReply **r = NULL;
	char **v;
	size_t w;
	int ret;

	*vals = NULL;
	if (!rc)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		store_args_add(&c, "HGET");
		store_args_add(&c, keys[i]);
		store_args_add(&c, field);
		store_args_pipe(rc, &c);
		if (exists) {
			store_args_add(&c, "EXISTS");
			store_args_add(&c, keys[i]);
			store_args_pipe(rc, &c);
		}
	}
	store_args_release(&c);
	w = exists ? 2 : 1;
	ret = read_replies(st, n * w, &r);
	if (ret < 0)
		return ret;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (r[i * w]->type == REDIS_REPLY_STRING)
			v[i] = dup_or_die(r[i * w]->str, r[i * w]->len);
		if (exists)
			exists[i] = r[i * w + 1]->type == REDIS_REPLY_INTEGER &&
				    r[i * w + 1]->integer == 1;
	}
	free_replies(r, n * w);
	*vals = v;
	return 0;
}

/* Runs the commands queued in RC (COUNT of them) inside MULTI/EXEC. */
static int exec_queued(struct jobd_store *st, size_t count)
{
	redisReply **r = NULL;
	int ret = read_replies(st, count, &r);

	if (ret == 0)
		ret = check_errors(r, count);
	free_replies(r, count);
	return ret;
}

int jobd_records_set_field(struct jobd_store *st, const char *coll,
			   char *const *ids, char *const *values, size_t n,
			   const char *field, size_t *changed)
{
	struct store_args p = { 0 };
	struct store_args c = { 0 };
	const char **keys;
	char **cur = NULL;
	bool *exists;
	struct store_link *rc;
	size_t count = 0, nch = 0;
	int ret;

	if (changed)
		*changed = 0;
	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	if (n == 0)
		return 0;
	keys = rec_keys(&p, st, coll, ids, n);
	exists = calloc(n, sizeof(*exists));
	if (!exists)
		abort();
	/* A missing record must not be created by the HSET. */
	ret = read_field(st, keys, n, field, &cur, exists);
	if (ret < 0)
		goto out;
	rc = jobd_store_pipeline(st);
	if (!rc) {
		ret = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	store_args_add(&c, "MULTI");
	store_args_pipe(rc, &c);
	count++;
	for (size_t i = 0; i < n; i++) {
		if (!exists[i] || (cur[i] && strcmp(cur[i], values[i]) == 0))
			continue;
		store_args_add(&c, "HSET");
		store_args_add(&c, keys[i]);
		store_args_add(&c, field);
		store_args_add(&c, values[i]);
		store_args_pipe(rc, &c);
		count++;
		nch++;
	}
	store_args_add(&c, "EXEC");
	store_args_pipe(rc, &c);
	count++;
	ret = exec_queued(st, count);
	if (ret == 0 && changed)
		*changed = nch;
out:
	for (size_t i = 0; cur && i < n; i++)
		free(cur[i]);
	free(cur);
	free(exists);
	free(keys);
	store_args_release(&c);
	store_args_release(&p);
	return ret;
}

int jobd_records_rename_field(struct jobd_store *st, const char *coll,
			      char *const *ids, size_t n, const char *from,
			      const char *to, size_t *changed)
{
	struct store_args p = { 0 };
	struct store_args c = { 0 };
	const char **keys;
	char **cur = NULL;
	struct store_link *rc;
	size_t count = 0, nch = 0;
	int ret;

	if (changed)
		*changed = 0;
	if (!jobd_records_valid_collection(coll))
		return JOBD_STORE_ERR_INVALID;
	/* The HSET of TO then the HDEL of FROM would drop the field. */
	if (n == 0 || (to && strcmp(from, to) == 0))
		return 0;
	keys = rec_keys(&p, st, coll, ids, n);
	ret = read_field(st, keys, n, from, &cur, NULL);
	if (ret < 0)
		goto out;
	rc = jobd_store_pipeline(st);
	if (!rc) {
		ret = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	store_args_add(&c, "MULTI");
	store_args_pipe(rc, &c);
	count++;
	for (size_t i = 0; i < n; i++) {
		if (!cur[i])
			continue;
		if (to) {
			store_args_add(&c, "HSET");
			store_args_add(&c, keys[i]);
			store_args_add(&c, to);
			store_args_add(&c, cur[i]);
			store_args_pipe(rc, &c);
			count++;
		}
		store_args_add(&c, "HDEL");
		store_args_add(&c, keys[i]);
		store_args_add(&c, from);
		store_args_pipe(rc, &c);
		count++;
		nch++;
	}
	store_args_add(&c, "EXEC");
	store_args_pipe(rc, &c);
	count++;
	ret = exec_queued(st, count);
	if (ret == 0 && changed)
		*changed = nch;
out:
	for (size_t i = 0; cur && i < n; i++)
		free(cur[i]);
	free(cur);
	free(keys);
	store_args_release(&c);
	store_args_release(&p);
	return ret;
}

const char *jobd_record_field(const struct jobd_record *rec, const char *name)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strcmp(rec->fields[i].name, name) == 0)
			return rec->fields[i].value;
	return NULL;
}
