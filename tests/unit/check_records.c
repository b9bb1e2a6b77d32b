/*
 * check_records: record collections in Redis (src/store/records.c,
 * docs/job-types.md "Record collections") against a real, private
 * redis-server.
 *
 * Everything under test goes through records.h. A second connection, RAW,
 * plays the application that reads and writes the same keys with
 * redis-cli: it checks the documented layout (P:rec:NAME:ID, P:recidx:NAME
 * with every score 0) and breaks things on purpose.
 */
#include "config.h"

#include "store/records.h"
#include "store/store_int.h"

#include "base/conf.h"

#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "t"

static struct jobd_test_redis *redis;
static struct jobd_conf *conf;
static struct jobd_store *st;  /* under test */
static struct jobd_store *raw; /* the application's connection */

static struct jobd_store *store(void)
{
	char err[512];
	struct jobd_store *s = jobd_store_new(conf, err, sizeof(err));

	ck_assert_msg(s != NULL, "store: %s", err);
	return s;
}

static void setup(void)
{
	char text[1024], err[512];

	jobd_test_redis_flush(redis);
	snprintf(text, sizeof(text), "[redis]\naddress = %s\nprefix = %s\n",
		 jobd_test_redis_address(redis), PREFIX);
	conf = jobd_conf_parse(text, strlen(text), "test.conf", err,
			       sizeof(err));
	ck_assert_msg(conf != NULL, "conf: %s", err);
	st = store();
	raw = store();
}

static void teardown(void)
{
	jobd_store_free(raw);
	raw = NULL;
	jobd_store_free(st);
	st = NULL;
	jobd_conf_free(conf);
	conf = NULL;
}

/* --- helpers ------------------------------------------------------------- */

/* A record ID with NULL-terminated name, value pairs (all borrowed). */
static struct jobd_record rec(const char *id, ...)
{
	struct jobd_record r = { .id = (char *)id };
	const char *name;
	va_list ap;

	va_start(ap, id);
	while ((name = va_arg(ap, const char *))) {
		r.fields = realloc(r.fields, (r.n + 1) * sizeof(*r.fields));
		ck_assert_ptr_nonnull(r.fields);
		r.fields[r.n].name = (char *)name;
		r.fields[r.n].value = va_arg(ap, char *);
		r.n++;
	}
	va_end(ap);
	return r;
}

/* Frees what rec() allocated (not the strings: borrowed). */
static void rec_release(struct jobd_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].fields);
}

/* Puts the N records R into COLL and releases them; must succeed. */
static void put(const char *coll, struct jobd_record *r, size_t n)
{
	int rc = jobd_records_put(st, coll, r, n, NULL, NULL);

	ck_assert_msg(rc == 0, "put %zu into %s: %d (%s)", n, coll, rc,
		      jobd_store_errstr(st));
	rec_release(r, n);
}

/* Puts records with IDS (separated by spaces) into COLL, each f = 1. */
static void put_ids(const char *coll, const char *ids)
{
	char *copy = strdup(ids), *save = NULL;
	struct jobd_record r[32];
	size_t n = 0;

	ck_assert_ptr_nonnull(copy);
	for (char *id = strtok_r(copy, " ", &save); id;
	     id = strtok_r(NULL, " ", &save)) {
		ck_assert_uint_lt(n, 32);
		r[n++] = rec(id, "f", "1", NULL);
	}
	put(coll, r, n);
	free(copy);
}

/* Puts one record (id, then name, value pairs) into COLL. */
#define PUT1(coll, ...)                                          \
	do {                                                     \
		struct jobd_record r1_ = rec(__VA_ARGS__, NULL); \
		put((coll), &r1_, 1);                            \
	} while (0)

/* Reads record ID of COLL; free with jobd_records_free(r, 1). */
static struct jobd_record *get1(const char *coll, const char *id)
{
	struct jobd_record *r = NULL;
	char *ids[1] = { (char *)id };

	ck_assert_int_eq(jobd_records_get(st, coll, ids, 1, &r), 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->id, id);
	return r;
}

/* The value of NAME in R, or NULL. */
static const char *field(const struct jobd_record *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->fields[i].name, name) == 0)
			return r->fields[i].value;
	return NULL;
}

/* Field NAME of record ID of COLL, a static copy; NULL when absent. */
static const char *value_of(const char *coll, const char *id, const char *name)
{
	static char buf[4096];
	struct jobd_record *r = get1(coll, id);
	const char *v = field(r, name);

	if (v)
		snprintf(buf, sizeof(buf), "%s", v);
	jobd_records_free(r, 1);
	return v ? buf : NULL;
}

static int64_t count(const char *coll)
{
	int64_t n = -1;

	ck_assert_int_eq(jobd_records_count(st, coll, &n), 0);
	return n;
}

/* The ids of COLL after AFTER up to UPTO, LIMIT at most, joined by ','. */
static const char *ids_joined(const char *coll, const char *after,
			      const char *upto, size_t limit)
{
	static char buf[4096];
	char **ids = NULL;
	size_t n = 99, len = 0;

	ck_assert_int_eq(
		jobd_records_ids(st, coll, after, upto, limit, &ids, &n), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
					i ? "," : "", ids[i]);
	jobd_records_ids_free(ids, n);
	return buf;
}

/* RAW runs a command; the reply is the caller's to free. */
static redisReply *raw_cmd(const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = jobd_store_vcommand(raw, fmt, ap);
	va_end(ap);
	ck_assert_msg(r != NULL, "raw command failed: %s", fmt);
	return r;
}

/* RAW runs a command whose reply is an integer; returns it. */
static long long raw_int(const char *fmt, ...)
{
	redisReply *r;
	long long v;
	va_list ap;

	va_start(ap, fmt);
	r = jobd_store_vcommand(raw, fmt, ap);
	va_end(ap);
	ck_assert_msg(r && r->type == REDIS_REPLY_INTEGER,
		      "%s: not an integer reply", fmt);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* RAW reads a string (or NULL for nil) into a static buffer. */
static const char *raw_str(const char *fmt, ...)
{
	static char buf[4096];
	redisReply *r;
	va_list ap;
	bool nil;

	va_start(ap, fmt);
	r = jobd_store_vcommand(raw, fmt, ap);
	va_end(ap);
	ck_assert_msg(r && (r->type == REDIS_REPLY_STRING ||
			    r->type == REDIS_REPLY_NIL),
		      "%s: not a string reply", fmt);
	nil = r->type == REDIS_REPLY_NIL;
	if (!nil)
		snprintf(buf, sizeof(buf), "%s", r->str);
	freeReplyObject(r);
	return nil ? NULL : buf;
}

/* Keys of record collections (P:rec... and P:recidx...) in Redis; the
 * store keeps keys of its own (P:conf) beside them. */
static size_t record_keys(void)
{
	redisReply *r = raw_cmd("KEYS " PREFIX ":rec*");
	size_t n;

	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	n = r->elements;
	freeReplyObject(r);
	return n;
}

/* --- names ---------------------------------------------------------------- */

START_TEST(test_valid_collection_names)
{
	char name[202];

	ck_assert(jobd_records_valid_collection("contacts"));
	ck_assert(jobd_records_valid_collection("a"));
	ck_assert(jobd_records_valid_collection("Crm_2024.v-1"));
	memset(name, 'x', 200);
	name[200] = '\0';
	ck_assert(jobd_records_valid_collection(name));
	name[200] = 'x';
	name[201] = '\0';
	ck_assert(!jobd_records_valid_collection(name));
	ck_assert(!jobd_records_valid_collection(NULL));
	ck_assert(!jobd_records_valid_collection(""));
	/* ':' would make P:rec:A:B:C ambiguous between collections */
	ck_assert(!jobd_records_valid_collection("a:b"));
	ck_assert(!jobd_records_valid_collection("a b"));
	ck_assert(!jobd_records_valid_collection("a*"));
	ck_assert(!jobd_records_valid_collection("a/b"));
	ck_assert(!jobd_records_valid_collection("café"));
	ck_assert(!jobd_records_valid_collection("tab\there"));
}
END_TEST

START_TEST(test_valid_record_ids)
{
	char id[JOBD_RECORDS_ID_MAX + 2];

	ck_assert(jobd_records_valid_id("c42"));
	ck_assert(jobd_records_valid_id("x"));
	ck_assert(jobd_records_valid_id("with:colon and space"));
	ck_assert(jobd_records_valid_id("Zoë-李-✓"));
	memset(id, 'i', JOBD_RECORDS_ID_MAX);
	id[JOBD_RECORDS_ID_MAX] = '\0';
	ck_assert(jobd_records_valid_id(id));
	id[JOBD_RECORDS_ID_MAX] = 'i';
	id[JOBD_RECORDS_ID_MAX + 1] = '\0';
	ck_assert(!jobd_records_valid_id(id));
	ck_assert(!jobd_records_valid_id(""));
	ck_assert(!jobd_records_valid_id(NULL));
}
END_TEST

START_TEST(test_bad_collection_name_refused_and_nothing_written)
{
	struct jobd_record r = rec("c1", "name", "Ann", NULL);
	struct jobd_record *got = NULL;
	char *ids[1] = { "c1" }, *vals[1] = { "x" }, **page = NULL;
	size_t n = 7, changed = 7;
	int64_t cnt = 7;

	ck_assert_int_eq(jobd_records_put(st, "bad:name", &r, 1, NULL, NULL),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(jobd_records_put(st, "", &r, 1, NULL, NULL),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(jobd_records_count(st, "a b", &cnt),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(cnt, 7);
	ck_assert_int_eq(jobd_records_ids(st, "a*", NULL, NULL, 10, &page, &n),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_ptr_null(page);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(jobd_records_get(st, "a/b", ids, 1, &got),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(jobd_records_names(st, "a/b", ids, 1, &got),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(jobd_records_set_field(st, "a:b", ids, vals, 1, "f",
						&changed),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_uint_eq(changed, 0);
	changed = 7;
	ck_assert_int_eq(jobd_records_rename_field(st, "a:b", ids, 1, "f", "g",
						   &changed),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_uint_eq(changed, 0);
	ck_assert_uint_eq(record_keys(), 0);
	rec_release(&r, 1);
}
END_TEST

/* --- put and get ------------------------------------------------------------ */

START_TEST(test_put_writes_the_documented_layout)
{
	redisReply *r;

	PUT1("contacts", "c42", "id", "c42", "name", "Ann Lee", "email",
	     "ann@example.org");
	r = raw_cmd("HGETALL " PREFIX ":rec:contacts:c42");
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 6);
	freeReplyObject(r);
	ck_assert_str_eq(raw_str("HGET " PREFIX ":rec:contacts:c42 name"),
			 "Ann Lee");
	ck_assert_str_eq(raw_str("ZSCORE " PREFIX ":recidx:contacts c42"), "0");
	ck_assert_uint_eq(record_keys(), 2);
}
END_TEST

START_TEST(test_get_reads_fields_in_the_order_written)
{
	struct jobd_record *r;

	PUT1("c", "k1", "zeta", "1", "alpha", "2", "mid", "3");
	r = get1("c", "k1");
	ck_assert(r->exists);
	ck_assert_uint_eq(r->n, 3);
	ck_assert_str_eq(r->fields[0].name, "zeta");
	ck_assert_str_eq(r->fields[0].value, "1");
	ck_assert_str_eq(r->fields[1].name, "alpha");
	ck_assert_str_eq(r->fields[1].value, "2");
	ck_assert_str_eq(r->fields[2].name, "mid");
	ck_assert_str_eq(r->fields[2].value, "3");
	jobd_records_free(r, 1);
}
END_TEST

START_TEST(test_put_replaces_the_whole_record)
{
	PUT1("c", "k1", "name", "Ann", "phone", "123");
	PUT1("c", "k1", "name", "Bob");
	ck_assert_str_eq(value_of("c", "k1", "name"), "Bob");
	ck_assert_ptr_null(value_of("c", "k1", "phone"));
	ck_assert_int_eq(count("c"), 1);
}
END_TEST

START_TEST(test_put_twice_gives_the_same_state)
{
	struct jobd_record r[2];

	for (int i = 0; i < 2; i++) {
		r[0] = rec("a", "f", "1", NULL);
		r[1] = rec("b", "f", "2", NULL);
		put("c", r, 2);
	}
	ck_assert_int_eq(count("c"), 2);
	ck_assert_uint_eq(record_keys(), 3);
	ck_assert_str_eq(value_of("c", "b", "f"), "2");
}
END_TEST

START_TEST(test_put_empty_and_null_values_are_empty_text)
{
	struct jobd_record *r;

	PUT1("c", "k1", "empty", "", "null", NULL, "", "unnamed");
	r = get1("c", "k1");
	ck_assert_uint_eq(r->n, 3);
	ck_assert_str_eq(field(r, "empty"), "");
	ck_assert_str_eq(field(r, "null"), "");
	ck_assert_str_eq(field(r, ""), "unnamed");
	jobd_records_free(r, 1);
}
END_TEST

START_TEST(test_put_nothing_is_a_no_op)
{
	ck_assert_int_eq(jobd_records_put(st, "c", NULL, 0, NULL, NULL), 0);
	ck_assert_uint_eq(record_keys(), 0);
}
END_TEST

START_TEST(test_unicode_ids_names_and_values_kept_byte_for_byte)
{
	static const char id[] = "Zoë-李-✓-🙂";
	static const char name[] = "naïve field ñ";
	static const char value[] = "Ελληνικά, 日本語, emoji 🎉, tab\t, nl\n";
	struct jobd_record *r;

	PUT1("c", id, name, value, "plain", "x");
	r = get1("c", id);
	ck_assert(r->exists);
	ck_assert_str_eq(r->fields[0].name, name);
	ck_assert_str_eq(r->fields[0].value, value);
	jobd_records_free(r, 1);
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 10), id);
}
END_TEST

START_TEST(test_large_record_round_trips)
{
	enum { NFIELDS = 2000, BIG = 1024 * 1024 };
	struct jobd_record in = { .id = "big" }, *out;
	char *big = malloc(BIG + 1);
	char(*names)[16] = calloc(NFIELDS, sizeof(*names));

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(names);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	big[BIG] = '\0';
	in.fields = calloc(NFIELDS, sizeof(*in.fields));
	ck_assert_ptr_nonnull(in.fields);
	for (int i = 0; i < NFIELDS; i++) {
		snprintf(names[i], sizeof(names[i]), "f%04d", i);
		in.fields[i].name = names[i];
		in.fields[i].value = i == 7 ? big : names[i];
	}
	in.n = NFIELDS;
	put("c", &in, 1);
	out = get1("c", "big");
	ck_assert_uint_eq(out->n, NFIELDS);
	ck_assert_str_eq(field(out, "f1999"), "f1999");
	ck_assert_uint_eq(strlen(field(out, "f0007")), BIG);
	ck_assert(memcmp(field(out, "f0007"), big, BIG) == 0);
	jobd_records_free(out, 1);
	free(names);
	free(big);
}
END_TEST

START_TEST(test_get_of_missing_records_says_so_in_order)
{
	struct jobd_record *r = NULL;
	char *ids[4] = { "nope", "k1", "also-nope", "k2" };

	PUT1("c", "k1", "f", "1");
	PUT1("c", "k2", "f", "2");
	ck_assert_int_eq(jobd_records_get(st, "c", ids, 4, &r), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_str_eq(r[i].id, ids[i]);
	ck_assert(!r[0].exists);
	ck_assert_uint_eq(r[0].n, 0);
	ck_assert(r[1].exists);
	ck_assert_str_eq(field(&r[1], "f"), "1");
	ck_assert(!r[2].exists);
	ck_assert(r[3].exists);
	ck_assert_str_eq(field(&r[3], "f"), "2");
	jobd_records_free(r, 4);

	/* another collection's record of the same id is not this one's */
	r = get1("d", "k1");
	ck_assert(!r->exists);
	jobd_records_free(r, 1);
}
END_TEST

START_TEST(test_names_reads_field_names_without_values)
{
	struct jobd_record *r = NULL;
	char *ids[2] = { "k1", "missing" };

	PUT1("c", "k1", "name", "Ann", "email", "a@x");
	ck_assert_int_eq(jobd_records_names(st, "c", ids, 2, &r), 0);
	ck_assert(r[0].exists);
	ck_assert_uint_eq(r[0].n, 2);
	ck_assert_str_eq(r[0].fields[0].name, "name");
	ck_assert_ptr_null(r[0].fields[0].value);
	ck_assert_str_eq(r[0].fields[1].name, "email");
	ck_assert_ptr_null(r[0].fields[1].value);
	ck_assert(!r[1].exists);
	ck_assert_uint_eq(r[1].n, 0);
	jobd_records_free(r, 2);
}
END_TEST

START_TEST(test_put_returns_earlier_label_values)
{
	struct jobd_record r[3];
	char *old[3] = { "x", "x", "x" };

	PUT1("c", "a", "label", "red", "n", "1");
	PUT1("c", "b", "n", "2"); /* no label */
	r[0] = rec("a", "label", "blue", NULL);
	r[1] = rec("b", "label", "green", NULL);
	r[2] = rec("new", "label", "pink", NULL);
	ck_assert_int_eq(jobd_records_put(st, "c", r, 3, "label", old), 0);
	ck_assert_str_eq(old[0], "red");
	ck_assert_ptr_null(old[1]);
	ck_assert_ptr_null(old[2]);
	ck_assert_str_eq(value_of("c", "a", "label"), "blue");
	ck_assert_str_eq(value_of("c", "new", "label"), "pink");
	for (int i = 0; i < 3; i++)
		free(old[i]);
	rec_release(r, 3);
}
END_TEST

/* --- the index ------------------------------------------------------------- */

START_TEST(test_count_of_a_collection)
{
	ck_assert_int_eq(count("c"), 0);
	put_ids("c", "a b c");
	put_ids("other", "a");
	ck_assert_int_eq(count("c"), 3);
	ck_assert_int_eq(count("other"), 1);
}
END_TEST

START_TEST(test_ids_in_byte_order_after_upto_and_limit)
{
	put_ids("c", "b é a:1 2 B a 10"); /* in another order */
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 100), "10,2,B,a,a:1,b,é");
	ck_assert_str_eq(ids_joined("c", "", NULL, 3), "10,2,B");
	ck_assert_str_eq(ids_joined("c", "B", NULL, 2), "a,a:1");
	ck_assert_str_eq(ids_joined("c", "a", "b", 100), "a:1,b");
	ck_assert_str_eq(ids_joined("c", NULL, "2", 100), "10,2");
	/* an "after" that is no id: from the next one on */
	ck_assert_str_eq(ids_joined("c", "Z", NULL, 100), "a,a:1,b,é");
	ck_assert_str_eq(ids_joined("c", "é", NULL, 100), "");
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 0), "");
}
END_TEST

START_TEST(test_ids_of_an_empty_collection)
{
	char **ids = NULL;
	size_t n = 5;

	ck_assert_int_eq(jobd_records_ids(st, "none", NULL, NULL, 10, &ids, &n),
			 0);
	ck_assert_uint_eq(n, 0);
	jobd_records_ids_free(ids, n);
}
END_TEST

START_TEST(test_ids_that_look_like_range_syntax)
{
	/* ZRANGEBYLEX syntax: '-', '+', '(' and '[' as ids and cursors */
	put_ids("c", "- + (x [y");
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 10), "(x,+,-,[y");
	ck_assert_str_eq(ids_joined("c", "(x", NULL, 10), "+,-,[y");
	ck_assert_str_eq(ids_joined("c", "+", "-", 10), "-");
	ck_assert_str_eq(ids_joined("c", "-", NULL, 10), "[y");
}
END_TEST

START_TEST(test_cursor_stable_while_others_add_and_remove)
{
	char **ids = NULL;
	size_t n = 0;
	char id[16];
	struct jobd_record r[20];

	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "id%02d", i);
		r[i] = rec(strdup(id), "f", "v", NULL);
	}
	ck_assert_int_eq(jobd_records_put(st, "c", r, 20, NULL, NULL), 0);
	ck_assert_int_eq(jobd_records_ids(st, "c", NULL, NULL, 5, &ids, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(ids[4], "id04");
	/* meanwhile: one id added before the cursor, one after, one of the
	 * next page removed */
	ck_assert_int_eq(raw_int("ZADD " PREFIX ":recidx:c 0 id00a"), 1);
	ck_assert_int_eq(raw_int("ZADD " PREFIX ":recidx:c 0 id05a"), 1);
	ck_assert_int_eq(raw_int("ZREM " PREFIX ":recidx:c id06"), 1);
	ck_assert_str_eq(ids_joined("c", ids[4], NULL, 4),
			 "id05,id05a,id07,id08");
	jobd_records_ids_free(ids, n);
	for (int i = 0; i < 20; i++)
		free(r[i].id);
	rec_release(r, 20);
}
END_TEST

START_TEST(test_record_written_by_an_application_is_seen_once_indexed)
{
	ck_assert_int_eq(raw_int("HSET " PREFIX ":rec:c:app1 name Zed"), 1);
	ck_assert_int_eq(count("c"), 0);
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 10), "");
	ck_assert_int_eq(raw_int("ZADD " PREFIX ":recidx:c 0 app1"), 1);
	ck_assert_int_eq(count("c"), 1);
	ck_assert_str_eq(ids_joined("c", NULL, NULL, 10), "app1");
	ck_assert_str_eq(value_of("c", "app1", "name"), "Zed");
}
END_TEST

/* --- field updates ------------------------------------------------------------ */

START_TEST(test_set_field_changes_existing_records_only)
{
	char *ids[4] = { "a", "b", "missing", "c" };
	char *vals[4] = { "new", "same", "ghost", "ünï" };
	size_t changed = 99;

	PUT1("c", "a", "label", "old", "n", "1");
	PUT1("c", "b", "label", "same");
	PUT1("c", "c", "n", "3"); /* no label yet */
	ck_assert_int_eq(jobd_records_set_field(st, "c", ids, vals, 4, "label",
						&changed),
			 0);
	ck_assert_uint_eq(changed, 2); /* a, and c that had no label */
	ck_assert_str_eq(value_of("c", "a", "label"), "new");
	ck_assert_str_eq(value_of("c", "a", "n"), "1");
	ck_assert_str_eq(value_of("c", "b", "label"), "same");
	ck_assert_str_eq(value_of("c", "c", "label"), "ünï");
	ck_assert_int_eq(raw_int("EXISTS " PREFIX ":rec:c:missing"), 0);
	/* the same again changes nothing */
	ck_assert_int_eq(jobd_records_set_field(st, "c", ids, vals, 4, "label",
						&changed),
			 0);
	ck_assert_uint_eq(changed, 0);
}
END_TEST

START_TEST(test_rename_field_keeps_the_value_and_a_rerun_is_harmless)
{
	char *ids[3] = { "a", "b", "missing" };
	size_t changed = 99;
	struct jobd_record *r;

	PUT1("c", "a", "mail", "a@x", "n", "1");
	PUT1("c", "b", "n", "2"); /* without the field */
	ck_assert_int_eq(jobd_records_rename_field(st, "c", ids, 3, "mail",
						   "email", &changed),
			 0);
	ck_assert_uint_eq(changed, 1);
	r = get1("c", "a");
	ck_assert_uint_eq(r->n, 2);
	ck_assert_ptr_null(field(r, "mail"));
	ck_assert_str_eq(field(r, "email"), "a@x");
	ck_assert_str_eq(field(r, "n"), "1");
	jobd_records_free(r, 1);
	ck_assert_ptr_null(value_of("c", "b", "email"));
	ck_assert_int_eq(raw_int("EXISTS " PREFIX ":rec:c:missing"), 0);
	ck_assert_int_eq(jobd_records_rename_field(st, "c", ids, 3, "mail",
						   "email", &changed),
			 0);
	ck_assert_uint_eq(changed, 0);
	ck_assert_str_eq(value_of("c", "a", "email"), "a@x");
}
END_TEST

START_TEST(test_rename_field_to_null_drops_it)
{
	char *ids[1] = { "a" };
	size_t changed = 0;

	PUT1("c", "a", "tmp", "x", "keep", "y");
	ck_assert_int_eq(jobd_records_rename_field(st, "c", ids, 1, "tmp", NULL,
						   &changed),
			 0);
	ck_assert_uint_eq(changed, 1);
	ck_assert_ptr_null(value_of("c", "a", "tmp"));
	ck_assert_str_eq(value_of("c", "a", "keep"), "y");
}
END_TEST

START_TEST(test_rename_field_to_its_own_name_keeps_it)
{
	char *ids[1] = { "a" };
	size_t changed = 9;

	PUT1("c", "a", "name", "Ann");
	ck_assert_int_eq(jobd_records_rename_field(st, "c", ids, 1, "name",
						   "name", &changed),
			 0);
	ck_assert_uint_eq(changed, 0);
	ck_assert_str_eq(value_of("c", "a", "name"), "Ann");
}
END_TEST

START_TEST(test_updates_of_no_records_change_nothing)
{
	size_t changed = 5;

	ck_assert_int_eq(jobd_records_set_field(st, "c", NULL, NULL, 0, "f",
						&changed),
			 0);
	ck_assert_uint_eq(changed, 0);
	changed = 5;
	ck_assert_int_eq(jobd_records_rename_field(st, "c", NULL, 0, "f", "g",
						   &changed),
			 0);
	ck_assert_uint_eq(changed, 0);
	ck_assert_uint_eq(record_keys(), 0);
}
END_TEST

/* --- Redis refusing, Redis away ------------------------------------------------- */

START_TEST(test_wrong_type_keys_are_refused_not_read_as_empty)
{
	struct jobd_record *r = NULL;
	char **ids = NULL, *one[1] = { "k" };
	size_t n = 0;
	int64_t cnt = 0;
	redisReply *rep;

	/* an application broke the collection's keys */
	rep = raw_cmd("SADD " PREFIX ":recidx:c k");
	freeReplyObject(rep);
	rep = raw_cmd("SET " PREFIX ":rec:c:k text");
	freeReplyObject(rep);
	ck_assert_int_eq(jobd_records_count(st, "c", &cnt),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(jobd_records_ids(st, "c", NULL, NULL, 10, &ids, &n),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_int_eq(jobd_records_get(st, "c", one, 1, &r),
			 JOBD_STORE_ERR_INVALID);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_put_into_a_broken_index_is_refused)
{
	struct jobd_record r = rec("k", "f", "1", NULL);
	redisReply *rep = raw_cmd("SET " PREFIX ":recidx:c notazset");

	freeReplyObject(rep);
	ck_assert_int_eq(jobd_records_put(st, "c", &r, 1, NULL, NULL),
			 JOBD_STORE_ERR_INVALID);
	rec_release(&r, 1);
	/* the connection is still in step: the next call works */
	PUT1("d", "k", "f", "2");
	ck_assert_str_eq(value_of("d", "k", "f"), "2");
}
END_TEST

START_TEST(test_dropped_connection_is_retriable_and_the_next_call_works)
{
	struct jobd_record r = rec("k", "f", "1", NULL);
	redisReply *rep;
	int rc;

	signal(SIGPIPE, SIG_IGN); /* as jobd does */
	rep = raw_cmd("CLIENT KILL TYPE normal SKIPME yes");
	freeReplyObject(rep);
	/* the write goes out, the reply never comes: a retriable error */
	ck_assert_int_eq(jobd_records_put(st, "c", &r, 1, NULL, NULL),
			 JOBD_STORE_ERR_REDIS);
	ck_assert_str_ne(jobd_store_errstr(st), "");
	rc = jobd_records_put(st, "c", &r, 1, NULL, NULL);
	ck_assert_msg(rc == 0, "put after reconnect: %d (%s)", rc,
		      jobd_store_errstr(st));
	ck_assert_str_eq(value_of("c", "k", "f"), "1");
	rec_release(&r, 1);
}
END_TEST

/* --- concurrency: what MULTI/EXEC promises --------------------------------------- */

#define CONC_IDS 100
#define CONC_ROUNDS 40

struct writer {
	const char *tag; /* written into every field of its records */
	int rounds;
	int failures;
};

/* Puts CONC_IDS records whose fields a and b both hold TAG:ROUND. */
static void *write_rounds(void *arg)
{
	struct writer *w = arg;
	struct jobd_store *s = store();
	char ids[CONC_IDS][8];
	struct jobd_record r[CONC_IDS];
	struct jobd_field f[CONC_IDS][2];
	char val[32];

	for (int i = 0; i < CONC_IDS; i++)
		snprintf(ids[i], sizeof(ids[i]), "r%03d", i);
	for (int round = 0; round < w->rounds; round++) {
		snprintf(val, sizeof(val), "%s:%d", w->tag, round);
		for (int i = 0; i < CONC_IDS; i++) {
			f[i][0] = (struct jobd_field){ "a", val };
			f[i][1] = (struct jobd_field){ "b", val };
			r[i] = (struct jobd_record){ .id = ids[i],
						     .fields = f[i],
						     .n = 2 };
		}
		if (jobd_records_put(s, "conc", r, CONC_IDS, NULL, NULL) != 0)
			w->failures++;
	}
	jobd_store_free(s);
	return NULL;
}

/* Every record of "conc" is whole: it exists with a == b. */
static int torn_records(struct jobd_store *s, int *missing)
{
	char **ids = NULL;
	struct jobd_record *r = NULL;
	size_t n = 0;
	int torn = 0;

	ck_assert_int_eq(
		jobd_records_ids(s, "conc", NULL, NULL, 1000, &ids, &n), 0);
	if (n == 0) {
		jobd_records_ids_free(ids, n);
		return 0;
	}
	ck_assert_int_eq(jobd_records_get(s, "conc", ids, n, &r), 0);
	for (size_t i = 0; i < n; i++) {
		const char *a = field(&r[i], "a"), *b = field(&r[i], "b");

		if (!r[i].exists)
			(*missing)++;
		else if (!a || !b || strcmp(a, b) != 0 || r[i].n != 2)
			torn++;
	}
	jobd_records_free(r, n);
	jobd_records_ids_free(ids, n);
	return torn;
}

START_TEST(test_readers_never_see_half_a_replaced_record)
{
	struct writer w = { .tag = "w", .rounds = CONC_ROUNDS };
	pthread_t t;
	int torn = 0, missing = 0, reads = 0;
	void *done;

	ck_assert_int_eq(pthread_create(&t, NULL, write_rounds, &w), 0);
	/* read while the writer replaces the records over and over */
	while (pthread_tryjoin_np(t, &done) != 0) {
		torn += torn_records(st, &missing);
		reads++;
	}
	torn += torn_records(st, &missing);
	ck_assert_int_eq(w.failures, 0);
	ck_assert_msg(reads > 1, "the writer ended before a read");
	ck_assert_int_eq(torn, 0);
	/* a record replaced (DEL, HSET) is never seen missing meanwhile */
	ck_assert_int_eq(missing, 0);
	ck_assert_int_eq(count("conc"), CONC_IDS);
}
END_TEST

/* How many different values field a has across the records of "conc". */
static int distinct_values(struct jobd_store *s)
{
	char **ids = NULL, *seen[CONC_IDS];
	struct jobd_record *r = NULL;
	size_t n = 0;
	int k = 0;

	ck_assert_int_eq(
		jobd_records_ids(s, "conc", NULL, NULL, 1000, &ids, &n), 0);
	ck_assert_int_eq(jobd_records_get(s, "conc", ids, n, &r), 0);
	for (size_t i = 0; i < n; i++) {
		const char *a = field(&r[i], "a");
		int j = 0;

		while (j < k && a && strcmp(seen[j], a) != 0)
			j++;
		if (a && j == k && k < CONC_IDS)
			seen[k++] = strdup(a);
	}
	for (int j = 0; j < k; j++)
		free(seen[j]);
	jobd_records_free(r, n);
	jobd_records_ids_free(ids, n);
	return k;
}

/*
 * Two writers put the same 100 records, round after round, each round's
 * value in every field: every record ends whole, and all of them hold
 * the value of one round, the last put applied (a put is one MULTI/EXEC:
 * per-record writes interleaved between the writers would mix rounds).
 */
START_TEST(test_concurrent_writers_leave_each_record_whole)
{
	struct writer w[2] = { { .tag = "x", .rounds = CONC_ROUNDS / 2 },
			       { .tag = "y", .rounds = CONC_ROUNDS / 2 } };
	pthread_t t[2];
	int missing = 0;

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, write_rounds, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(w[0].failures + w[1].failures, 0);
	ck_assert_int_eq(torn_records(st, &missing), 0);
	ck_assert_int_eq(missing, 0);
	ck_assert_int_eq(count("conc"), CONC_IDS);
	ck_assert_int_eq(distinct_values(st), 1);
}
END_TEST

static Suite *records_suite(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("names");

	tcase_add_test(tc, test_valid_collection_names);
	tcase_add_test(tc, test_valid_record_ids);
	suite_add_tcase(s, tc);

	tc = jobd_test_tcase(s, "records", setup, teardown, 30);
	tcase_add_test(tc,
		       test_bad_collection_name_refused_and_nothing_written);
	tcase_add_test(tc, test_put_writes_the_documented_layout);
	tcase_add_test(tc, test_get_reads_fields_in_the_order_written);
	tcase_add_test(tc, test_put_replaces_the_whole_record);
	tcase_add_test(tc, test_put_twice_gives_the_same_state);
	tcase_add_test(tc, test_put_empty_and_null_values_are_empty_text);
	tcase_add_test(tc, test_put_nothing_is_a_no_op);
	tcase_add_test(tc,
		       test_unicode_ids_names_and_values_kept_byte_for_byte);
	tcase_add_test(tc, test_large_record_round_trips);
	tcase_add_test(tc, test_get_of_missing_records_says_so_in_order);
	tcase_add_test(tc, test_names_reads_field_names_without_values);
	tcase_add_test(tc, test_put_returns_earlier_label_values);

	tc = jobd_test_tcase(s, "index", setup, teardown, 30);
	tcase_add_test(tc, test_count_of_a_collection);
	tcase_add_test(tc, test_ids_in_byte_order_after_upto_and_limit);
	tcase_add_test(tc, test_ids_of_an_empty_collection);
	tcase_add_test(tc, test_ids_that_look_like_range_syntax);
	tcase_add_test(tc, test_cursor_stable_while_others_add_and_remove);
	tcase_add_test(
		tc, test_record_written_by_an_application_is_seen_once_indexed);

	tc = jobd_test_tcase(s, "fields", setup, teardown, 30);
	tcase_add_test(tc, test_set_field_changes_existing_records_only);
	tcase_add_test(
		tc, test_rename_field_keeps_the_value_and_a_rerun_is_harmless);
	tcase_add_test(tc, test_rename_field_to_null_drops_it);
	tcase_add_test(tc, test_rename_field_to_its_own_name_keeps_it);
	tcase_add_test(tc, test_updates_of_no_records_change_nothing);

	tc = jobd_test_tcase(s, "failures", setup, teardown, 30);
	tcase_add_test(tc, test_wrong_type_keys_are_refused_not_read_as_empty);
	tcase_add_test(tc, test_put_into_a_broken_index_is_refused);
	tcase_add_test(
		tc,
		test_dropped_connection_is_retriable_and_the_next_call_works);

	tc = jobd_test_tcase(s, "concurrency", setup, teardown, 60);
	tcase_add_test(tc, test_readers_never_see_half_a_replaced_record);
	tcase_add_test(tc, test_concurrent_writers_leave_each_record_whole);
	return s;
}

int main(void)
{
	return jobd_test_run_suite_with_redis(records_suite, &redis);
}
