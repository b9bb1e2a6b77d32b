/*
 * store/fsck: checking every job against its indexes, ready queues,
 * leases and parent counters, and repairing them from the job hashes;
 * then the entries of those structures against the jobs they name.
 */
#include "config.h"

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

int jobd_store_fsck(struct jobd_store *st, bool repair, struct jobd_fsck *f)
{
	/* "ended" and "ix": the buckets of retention's index and of the
	 * listing indexes and their directories, by SCAN (its cursor is the
	 * start); "keys" too. */
	static const char *const structures[] = { "leases", "delayed",
						  "roots",  "roots_low",
						  "ended",  "logix:minutes",
						  "ix",	    "keys" };
	int64_t seen[JOBD_STATUS_COUNT] = { 0 }, counts[JOBD_STATUS_COUNT];
	int64_t before[JOBD_STATUS_COUNT];
	int64_t next = 1;
	redisReply *r;

	memset(f, 0, sizeof(*f));
	if (jobd_store_counts(st, before) < 0)
		return JOBD_STORE_ERR_REDIS;
	/* Every job, from its hash. */
	while (next > 0) {
		struct store_args a = { 0 };

		store_args_addf(&a, "%lld", (long long)next);
		store_args_add(&a, "500");
		store_args_add(&a, repair ? "1" : "0");
		r = store_eval(st, S_FSCK, &a);
		store_args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
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
				return JOBD_STORE_ERR_REDIS;
			start = store_reply_i64(r->element[0]);
			f->fixed += (size_t)store_reply_i64(r->element[1]);
			fsck_add(f, r->element[2]);
			freeReplyObject(r);
			if (start == 0)
				break;
		}
	}
	/* The status counters, from the jobs seen, if they held still. */
	if (jobd_store_counts(st, counts) < 0)
		return JOBD_STORE_ERR_REDIS;
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
					       st->conf->prefix,
					       jobd_status_names[s],
					       (long long)seen[s]);
			if (!r)
				return JOBD_STORE_ERR_REDIS;
			freeReplyObject(r);
			f->fixed++;
		}
	}
	return 0;
}
