/*
 * store/query: reading jobs: one job, the list with its filters and
 * cursor, a job's children, the counts by status.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static struct jobd_job *job_from_reply(const redisReply *e)
{
	const char **names, **values;
	struct jobd_job *job;
	size_t n;

	if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2)
		return NULL;
	n = e->elements / 2;
	names = calloc(n, sizeof(*names));
	values = calloc(n, sizeof(*values));
	if (!names || !values) {
		free(names);
		free(values);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = e->element[2 * i]->str;
		values[i] = e->element[2 * i + 1]->str;
	}
	job = jobd_job_from_fields(names, values, n);
	free(names);
	free(values);
	return job;
}

/* Appends the jobs of R's elements from FIRST on to LIST. */
static void append_jobs(struct jobd_job_list *list, const redisReply *r,
			size_t first)
{
	size_t add = r->elements > first ? r->elements - first : 0;
	struct jobd_job **jobs;

	if (add == 0)
		return;
	jobs = realloc(list->jobs, (list->n + add) * sizeof(*jobs));
	if (!jobs)
		return;
	list->jobs = jobs;
	for (size_t i = first; i < r->elements; i++) {
		struct jobd_job *job = job_from_reply(r->element[i]);

		if (job)
			list->jobs[list->n++] = job;
	}
}

static void filter_classes(const struct jobd_filter *f, char classes[16])
{
	strcpy(classes, "ru");
	if (f->system)
		strcat(classes, ",rs");
	if (f->all)
		strcat(classes, f->system ? ",cu,cs" : ",cu");
}

/*
 * A page in F's sort order (sort.lua). Created pages call again, like
 * the newest first list, until the page is full: each call reads at most
 * JOBD_SORT_WINDOW index entries. The other orders are one call.
 */
static int list_sorted(struct jobd_store *st, const struct jobd_filter *f,
		       size_t limit, struct jobd_job_list *out)
{
	bool created = strcmp(f->sort, "created") == 0;
	int64_t deadline = jobd_util_mono_ms() + 2000;
	char classes[16], after[sizeof(out->after)];

	filter_classes(f, classes);
	snprintf(after, sizeof(after), "%s", f->after ? f->after : "");
	out->sorted = true;
	out->complete = true;
	for (;;) {
		struct store_args a = { 0 };
		redisReply *r;

		store_args_add(&a, classes);
		store_args_add(&a, f->status);
		store_args_add(&a, f->type);
		store_args_add(&a, f->run_by);
		store_args_add(&a, f->sort);
		store_args_add(&a, f->desc ? "1" : "0");
		store_args_add(&a, after);
		store_args_addf(&a, "%zu", limit - out->n);
		store_args_addf(&a, "%zu",
				f->window ? f->window : JOBD_SORT_WINDOW);
		r = store_eval(st, S_SORT, &a);
		store_args_release(&a);
		if (!r) {
			jobd_job_list_release(out);
			return JOBD_STORE_ERR_REDIS;
		}
		out->now = store_reply_i64(r->element[0]);
		snprintf(out->after, sizeof(out->after), "%s",
			 r->element[1]->str ? r->element[1]->str : "");
		out->complete = out->complete &&
				store_reply_i64(r->element[2]) == 1;
		out->examined += (size_t)store_reply_i64(r->element[3]);
		append_jobs(out, r, 4);
		freeReplyObject(r);
		if (!created || !out->after[0] || out->n >= limit ||
		    jobd_util_mono_ms() > deadline)
			break;
		snprintf(after, sizeof(after), "%s", out->after);
	}
	return 0;
}

int jobd_store_list(struct jobd_store *st, const struct jobd_filter *f,
		    struct jobd_job_list *out)
{
	char classes[16];
	size_t limit = f->limit ? f->limit : 50;
	int64_t cursor = f->cursor;
	int64_t deadline = jobd_util_mono_ms() + 2000;

	if (st->nsh)
		return jobd_store_sharded_list(st, f, out);
	memset(out, 0, sizeof(*out));
	if (limit > 1000)
		limit = 1000;
	if (f->sort && !(strcmp(f->sort, "created") == 0 && f->desc))
		return list_sorted(st, f, limit, out);
	filter_classes(f, classes);
	/* Each call is bounded; call again until the page is full. */
	for (;;) {
		struct store_args a = { 0 };
		redisReply *r;
		bool more;

		store_args_add(&a, classes);
		store_args_add(&a, f->status);
		store_args_add(&a, f->type);
		store_args_add(&a, f->run_by);
		store_args_addf(&a, "%lld", (long long)cursor);
		store_args_addf(&a, "%zu", limit - out->n);
		store_args_add(&a, "2000");
		r = store_eval(st, S_LIST, &a);
		store_args_release(&a);
		if (!r) {
			jobd_job_list_release(out);
			return JOBD_STORE_ERR_REDIS;
		}
		out->now = store_reply_i64(r->element[0]);
		cursor = store_reply_i64(r->element[1]);
		more = store_reply_i64(r->element[2]) == 1;
		append_jobs(out, r, 3);
		freeReplyObject(r);
		if (!more) {
			out->next = 0;
			break;
		}
		out->next = cursor;
		if (out->n >= limit || jobd_util_mono_ms() > deadline)
			break;
	}
	return 0;
}

int jobd_store_children(struct jobd_store *st, int64_t id, int64_t cursor,
			size_t limit, struct jobd_job_list *out)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_children(st, id, cursor, limit, out);
	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > 1000)
		limit = limit ? 1000 : 50;
	store_args_addf(&a, "%lld", (long long)id);
	store_args_addf(&a, "%lld", (long long)cursor);
	store_args_addf(&a, "%zu", limit);
	r = store_eval(st, S_CHILDREN, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_STRING) {
		store_set_err(st, "%s", r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_NOTFOUND;
	}
	out->now = store_reply_i64(r->element[0]);
	out->next = store_reply_i64(r->element[1]);
	append_jobs(out, r, 2);
	freeReplyObject(r);
	return 0;
}

int jobd_store_get(struct jobd_store *st, int64_t id, struct jobd_job **job,
		   int64_t *now)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_get(st, id, job, now);
	*job = NULL;
	store_args_addf(&a, "%lld", (long long)id);
	r = store_eval(st, S_SHOW, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	*now = store_reply_i64(r->element[0]);
	if (r->elements > 1)
		*job = job_from_reply(r->element[1]);
	freeReplyObject(r);
	if (!*job) {
		store_set_err(st, "job %lld not found", (long long)id);
		return JOBD_STORE_ERR_NOTFOUND;
	}
	return 0;
}

int jobd_store_counts(struct jobd_store *st, int64_t counts[JOBD_STATUS_COUNT])
{
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_counts(st, counts);
	r = jobd_store_command(
		st,
		"HMGET %s:count pending in_progress stopping stopped "
		"finished canceled",
		st->prefix);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (int i = 0; i < JOBD_STATUS_COUNT; i++)
		counts[i] = i < (int)r->elements ?
				    store_reply_i64(r->element[i]) :
				    0;
	freeReplyObject(r);
	return 0;
}

int jobd_store_key_ids(struct jobd_store *st, int64_t parent,
		       const char *const *keys, size_t n, int64_t *ids)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_key_ids(st, parent, keys, n, ids);
	if (parent)
		store_args_addf(&a, "%lld", (long long)parent);
	else
		store_args_add(&a, "");
	store_args_add(&a, "get");
	for (size_t i = 0; i < n; i++)
		store_args_add(&a, keys[i]);
	r = store_eval(st, S_KEYS, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		ids[i] = 0;
		if (r->type == REDIS_REPLY_ARRAY && i < r->elements &&
		    r->element[i]->type == REDIS_REPLY_STRING)
			jobd_util_parse_i64(r->element[i]->str, &ids[i]);
	}
	freeReplyObject(r);
	return 0;
}

/* The glob of jobctl key --scan as a Lua pattern, anchored: '*' and '?'
 * are the glob's, every other character stands for itself. */
static char *glob_to_lua(const char *glob)
{
	char *p = malloc(strlen(glob) * 2 + 3), *o = p;

	if (!p)
		return NULL;
	*o++ = '^';
	for (; *glob; glob++) {
		if (*glob == '*') {
			*o++ = '.';
			*o++ = '*';
		} else if (*glob == '?') {
			*o++ = '.';
		} else {
			if (!((*glob >= '0' && *glob <= '9') ||
			      (*glob >= 'a' && *glob <= 'z') ||
			      (*glob >= 'A' && *glob <= 'Z')))
				*o++ = '%';
			*o++ = *glob;
		}
	}
	*o++ = '$';
	*o = '\0';
	return p;
}

int jobd_store_key_scan(struct jobd_store *st, int64_t parent, const char *glob,
			jobd_store_key_fn fn, void *arg)
{
	if (st->nsh)
		return jobd_store_sharded_key_scan(st, parent, glob, fn, arg);
	char cursor[32] = "0", *pat = glob_to_lua(glob);
	int rc = 0;

	if (!pat)
		return JOBD_STORE_ERR_REDIS;
	do {
		struct store_args a = { 0 };
		redisReply *r, *found;

		if (parent)
			store_args_addf(&a, "%lld", (long long)parent);
		else
			store_args_add(&a, "");
		store_args_add(&a, "scan");
		store_args_add(&a, cursor);
		store_args_add(&a, pat);
		r = store_eval(st, S_KEYS, &a);
		store_args_release(&a);
		if (!r) {
			rc = JOBD_STORE_ERR_REDIS;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING) {
			freeReplyObject(r);
			rc = JOBD_STORE_ERR_REDIS;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		found = r->element[1];
		for (size_t i = 0; found->type == REDIS_REPLY_ARRAY &&
				   i + 1 < found->elements;
		     i += 2) {
			int64_t id = 0;

			jobd_util_parse_i64(found->element[i + 1]->str, &id);
			fn(found->element[i]->str, id, arg);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	free(pat);
	return rc;
}
