/*
 * store/fsck: checking every job against its indexes, ready queues,
 * leases and parent counters, and repairing them from the job hashes;
 * then the entries of those structures against the jobs they name.
 */
#include "config.h"

#include "store/shard.h"
#include "store/store.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fsck_add(struct jobd_fsck *f, const redisReply *list)
{
	for (size_t i = 0; list && i < list->elements; i++) {
		char **v;

		if (f->nviolations == JOBD_FSCK_MAX_REPORTED) {
			f->more_violations++;
			continue;
		}
		v = realloc(f->violations, (f->nviolations + 1) * sizeof(*v));
		if (!v)
			return;
		f->violations = v;
		v[f->nviolations++] =
			strndup(list->element[i]->str, list->element[i]->len);
	}
}

void jobd_fsck_release(struct jobd_fsck *f)
{
	for (size_t i = 0; i < f->nviolations; i++)
		free(f->violations[i]);
	free(f->violations);
	memset(f, 0, sizeof(*f));
}

/*
 * The ids in a list of roots without children (P:alone, P:alone_low),
 * sorted, once each: fsck.lua is given those of its range, where asking
 * Redis whether a job is listed would read the list (LPOS, O(N)) for
 * every job. Read in bounded calls; on a live store, claims pop the
 * list's head meanwhile and some entries are missed: fsck.lua looks for
 * a job it finds nowhere at the list's tail too, and what is still
 * reported missing is queued again by --repair (a second entry of a job
 * runs it once: lib.lua alone_ok).
 */
struct listed {
	int64_t *v;
	size_t n, cap;
};

#define LISTED_CHUNK 5000

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int listed_read(struct jobd_store *st, const char *list,
		       struct listed *l)
{
	for (long long start = 0;; start += LISTED_CHUNK) {
		redisReply *r = jobd_store_command(st, "LRANGE %s:%s %lld %lld",
						   st->prefix, list, start,
						   start + LISTED_CHUNK - 1);
		size_t got;

		if (!r)
			return -1;
		got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
		for (size_t i = 0; i < got; i++) {
			if (l->n == l->cap) {
				size_t cap = l->cap ? 2 * l->cap : 1024;
				int64_t *v = realloc(l->v, cap * sizeof(*v));

				if (!v) {
					freeReplyObject(r);
					return -1;
				}
				l->v = v;
				l->cap = cap;
			}
			l->v[l->n++] = strtoll(r->element[i]->str, NULL, 10);
		}
		freeReplyObject(r);
		if (got < LISTED_CHUNK)
			break;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
	return 0;
}

/* Adds to A the ids of L in [FROM, FROM + COUNT), separated by spaces. */
static void listed_range(const struct listed *l, int64_t from, int64_t count,
			 struct store_args *a)
{
	struct store_list out = { 0 };
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < l->n && l->v[i] < from + count; i++) {
		if (i > lo && l->v[i] == l->v[i - 1])
			continue;
		store_list_int(&out, l->v[i]);
		store_list_char(&out, ' ');
	}
	store_list_char(&out, ' '); /* never empty: a NULL argument */
	store_list_add(&out, a);
}

int jobd_store_fsck(struct jobd_store *st, bool repair, struct jobd_fsck *f)
{
	/* "ended" and "ix": the buckets of retention's index and of the
	 * listing indexes and their directories, by SCAN (its cursor is the
	 * start); "keys" too. "alone", "alone_low": the lists of roots
	 * without children, whose stale entries are counted. */
	static const char *const structures[] = {
		"leases",    "delayed", "roots",	 "roots_low", "alone",
		"alone_low", "ended",	"logix:minutes", "ix",	      "keys"
	};
	int64_t seen[JOBD_STATUS_COUNT] = { 0 }, counts[JOBD_STATUS_COUNT];
	int64_t before[JOBD_STATUS_COUNT];
	int64_t next = 1;
	redisReply *r;
	struct listed alone = { 0 }, alone_low = { 0 };
	int rc = JOBD_STORE_ERR_REDIS;
	const char *prefix = jobd_store_prefix(st);
	long long shards, shard;

	if (st->nsh)
		return jobd_store_sharded_fsck(st, repair, f);
	/* fsck.lua's cursor counts the shard's ids: the Nth is N x SHARDS +
	 * SHARD (shard.h); the store checked the prefix when it was made. */
	jobd_shard_of(prefix, strlen(prefix), &shards, &shard);

	memset(f, 0, sizeof(*f));
	if (jobd_store_counts(st, before) < 0 ||
	    listed_read(st, "alone", &alone) < 0 ||
	    listed_read(st, "alone_low", &alone_low) < 0)
		goto out;
	/* Every job, from its hash. */
	while (next > 0) {
		struct store_args a = { 0 };

		store_args_addf(&a, "%lld", (long long)next);
		store_args_add(&a, "500");
		store_args_add(&a, repair ? "1" : "0");
		listed_range(&alone, next * shards, 500 * shards, &a);
		listed_range(&alone_low, next * shards, 500 * shards, &a);
		r = store_eval(st, S_FSCK, &a);
		store_args_release(&a);
		if (!r)
			goto out;
		next = store_reply_i64(r->element[0]);
		f->fixed += (size_t)store_reply_i64(r->element[1]);
		fsck_add(f, r->element[2]);
		for (size_t i = 0; i + 1 < r->element[3]->elements; i += 2) {
			int s = jobd_status_parse(
				r->element[3]->element[i]->str);

			if (s >= 0)
				seen[s] += store_reply_i64(
					r->element[3]->element[i + 1]);
		}
		freeReplyObject(r);
	}
	/* The scheduling structures, from their entries. */
	for (size_t k = 0; k < sizeof(structures) / sizeof(*structures); k++) {
		for (int64_t start = 0;;) {
			struct store_args a = { 0 };

			store_args_add(&a, structures[k]);
			store_args_addf(&a, "%lld", (long long)start);
			store_args_add(&a, "500");
			store_args_add(&a, repair ? "1" : "0");
			r = store_eval(st, S_FSCK_REFS, &a);
			store_args_release(&a);
			if (!r)
				goto out;
			start = store_reply_i64(r->element[0]);
			f->fixed += (size_t)store_reply_i64(r->element[1]);
			fsck_add(f, r->element[2]);
			if (r->elements > 3)
				f->stale +=
					(size_t)store_reply_i64(r->element[3]);
			freeReplyObject(r);
			if (start == 0)
				break;
		}
	}
	/* The status counters, from the jobs seen, if they held still. */
	if (jobd_store_counts(st, counts) < 0)
		goto out;
	f->counters_moved = memcmp(before, counts, sizeof(counts)) != 0;
	for (int s = 0; s < JOBD_STATUS_COUNT; s++) {
		char msg[160];

		f->jobs += (size_t)seen[s];
		if (f->counters_moved || counts[s] == seen[s])
			continue;
		snprintf(msg, sizeof(msg),
			 "status counter %s is %lld, the jobs say %lld",
			 jobd_status_names[s], (long long)counts[s],
			 (long long)seen[s]);
		if (f->nviolations < JOBD_FSCK_MAX_REPORTED) {
			char **v = realloc(f->violations,
					   (f->nviolations + 1) * sizeof(*v));

			if (v) {
				f->violations = v;
				v[f->nviolations++] = strdup(msg);
			}
		}
		if (repair) {
			r = jobd_store_command(st, "HSET %s:count %s %lld",
					       st->prefix, jobd_status_names[s],
					       (long long)seen[s]);
			if (!r)
				goto out;
			freeReplyObject(r);
			f->fixed++;
		}
	}
	rc = 0;
out:
	free(alone.v);
	free(alone_low.v);
	return rc;
}
