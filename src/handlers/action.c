/*
 * action: a configured background action over records
 * (docs/job-types.md).
 *
 * Payload: {"action": NAME, "collection": C, "ids": [...]}; "ids" alone,
 * "collection" alone (every record of it) or both (those records of it).
 * The [action.NAME] command runs once per batch of "batch" records (the
 * action's setting, default 500), each batch a child job; the root only
 * splits (a list of ids into slices, a collection into id ranges, so a
 * child's payload stays small), makes the children in batches
 * (handlers/common.h, the spawner) and checkpoints after each. A root
 * whose ids fit in one batch runs it itself.
 *
 * A batch runs the command with the exec protocol: stdin has one JSON
 * object per record ({"id", fields...}, or just {"id"} without a
 * collection), JOBD_ACTION and JOBD_COLLECTION in the environment. It
 * reports per-record failures as "error TEXT" lines (job errors; the
 * batch goes on), progress over its records as "progress DONE/TOTAL", and
 * may save its own checkpoint (given back in JOBD_CHECKPOINT when the
 * batch resumes after a stop: exit 75 on SIGTERM). One line beyond the
 * exec protocol: "update JSON" with {"id": ID, FIELD: VALUE, ...} sets
 * those fields of that record of the collection, which creates a
 * relationship-update job when a relation's label changed. Exit status
 * other than 0 (or 75 after a stop) fails the batch.
 */
#include "config.h"

#include "handlers/builtin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/chunks.h"
#include "handlers/common.h"
#include "handlers/csv.h"
#include "handlers/exec.h"
#include "handlers/ndjson.h"
#include "handlers/relation.h"

struct batch_run {
	struct jobd_ctx *ctx;
	struct jobd_store *st;
	const char *coll; /* NULL: no collection */
	int64_t updates;  /* update lines applied */
};

/* The "update JSON" line: sets fields of one record. */
static bool update_line(void *arg, const char *line, size_t len)
{
	struct batch_run *br = arg;
	struct jobd_ctx *ctx = br->ctx;
	struct jobd_record *olds = NULL, now = { 0 };
	json_error_t e;
	json_t *obj, *v;
	const char *key;
	char *id, *ids[1], *vals[1], kb[64];
	int64_t backoff = 0;
	size_t i = 0;

	if (len < 7 || strncmp(line, "update ", 7) != 0)
		return false;
	obj = json_loadb(line + 7, len - 7, 0, &e);
	if (!json_is_object(obj) ||
	    !json_is_string(json_object_get(obj, "id")) || !br->coll) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN,
			     "bad update line (needs a collection and "
			     "{\"id\": \"...\", field: value}): %.*s",
			     (int)(len > 200 ? 200 : len), line);
		json_decref(obj);
		return true;
	}
	id = jobd_json_text(json_object_get(obj, "id"));
	ids[0] = id;
	while (jobd_records_get(br->st, br->coll, ids, 1, &olds) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, br->st, &backoff))
			goto out;
	if (!olds[0].exists) {
		jobd_ctx_error(ctx, "update of record %s: not in %s", id,
			       br->coll);
		goto out;
	}
	now = olds[0];
	now.fields =
		calloc(olds[0].n + json_object_size(obj), sizeof(*now.fields));
	if (!now.fields)
		abort();
	memcpy(now.fields, olds[0].fields, olds[0].n * sizeof(*now.fields));
	json_object_foreach(obj, key, v)
	{
		size_t j;

		if (strcmp(key, "id") == 0)
			continue;
		vals[0] = jobd_json_text(v);
		while (jobd_records_set_field(br->st, br->coll, ids, vals, 1,
					      key,
					      NULL) == JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, br->st, &backoff))
				break;
		for (j = 0; j < now.n; j++)
			if (strcmp(now.fields[j].name, key) == 0)
				break;
		if (j == now.n)
			now.n++;
		now.fields[j].name = (char *)key;
		now.fields[j].value = vals[0];
		i++;
	}
	br->updates++;
	snprintf(kb, sizeof(kb), "u%" PRId64 "-%" PRId64, jobd_ctx_attempt(ctx),
		 br->updates);
	jobd_handlers_relations(ctx, br->st, br->coll, olds, &now, 1, kb);
	/* Free the values this line made (names are the object's). */
	for (size_t j = olds[0].n; j < now.n; j++)
		free(now.fields[j].value);
	for (size_t j = 0; j < olds[0].n; j++)
		if (now.fields[j].value != olds[0].fields[j].value)
			free(now.fields[j].value);
	free(now.fields);
out:
	jobd_records_free(olds, olds ? 1 : 0);
	free(id);
	json_decref(obj);
	return true;
}

/* Runs the command over IDS (N, borrowed). */
static int run_batch(struct jobd_ctx *ctx, const struct jobd_action_conf *ac,
		     const char *coll, char *const *ids, size_t n)
{
	struct jobd_store *st = NULL;
	struct jobd_csv_buf in = { 0 };
	struct batch_run br = { .ctx = ctx, .coll = coll };
	struct jobd_exec_spec run = { 0 };
	char why[256], *env[3] = { NULL };
	int64_t backoff = 0, missing = 0;
	int ret = JOBD_HANDLER_DONE;

	if (coll) {
		st = jobd_handlers_store(ctx);
		if (!st)
			return JOBD_HANDLER_FAILED;
	}
	br.st = st;
	for (size_t off = 0; off < n; off += JOBD_HANDLERS_BATCH) {
		size_t m = n - off < JOBD_HANDLERS_BATCH ? n - off :
							   JOBD_HANDLERS_BATCH;
		struct jobd_record *recs = NULL;

		if (coll)
			while (jobd_records_get(st, coll, ids + off, m,
						&recs) == JOBD_STORE_ERR_REDIS)
				if (!jobd_handlers_retry(ctx, st, &backoff)) {
					ret = JOBD_HANDLER_STOPPED;
					goto out;
				}
		for (size_t i = 0; i < m; i++) {
			/* Without a collection a record is its id alone. */
			struct jobd_record only = { .id = ids[off + i] };
			char *s;

			if (recs && !recs[i].exists) {
				jobd_ctx_error(ctx, "record %s: not in %s",
					       ids[off + i], coll);
				missing++;
				continue;
			}
			s = jobd_record_json(recs ? &recs[i] : &only);
			if (jobd_csv_buf_add(&in, s, strlen(s)) < 0 ||
			    jobd_csv_buf_add(&in, "\n", 1) < 0)
				abort();
			free(s);
		}
		jobd_records_free(recs, recs ? m : 0);
	}
	if (asprintf(&env[0], "JOBD_ACTION=%s", ac->name) < 0 ||
	    asprintf(&env[1], "JOBD_COLLECTION=%s", coll ? coll : "") < 0)
		abort();
	run.argv = ac->command;
	run.input = in.data;
	run.input_len = in.len;
	run.env = (const char *const *)env;
	run.checkpoint = jobd_ctx_checkpoint(ctx);
	run.keep_checkpoints = true;
	run.progress_span = 100;
	run.line_hook = update_line;
	run.line_arg = &br;
	jobd_ctx_log(ctx, JOBD_LOG_INFO, "action %s: %zu records%s%s", ac->name,
		     n - (size_t)missing, coll ? " of " : "", coll ? coll : "");
	switch (jobd_exec_run(ctx, &run, why, sizeof(why))) {
	case JOBD_EXEC_OK:
		jobd_ctx_progress(ctx, 100);
		break;
	case JOBD_EXEC_STOPPED:
		ret = JOBD_HANDLER_STOPPED;
		break;
	default:
		ret = jobd_ctx_fail(ctx, "action %s: %s", ac->name, why);
	}
out:
	free(env[0]);
	free(env[1]);
	jobd_csv_buf_release(&in);
	return ret;
}

/* Ids of the range (after, upto] of COLL, all of them. */
static int range_ids(struct jobd_ctx *ctx, struct jobd_store *st,
		     const char *coll, const char *after, const char *upto,
		     char ***out, size_t *nout)
{
	char **all = NULL, **ids = NULL, *cur = strdup(after ? after : "");
	size_t n = 0, total = 0;
	int64_t backoff = 0;
	int rc;

	for (;;) {
		rc = jobd_handlers_ids(ctx, st, coll, cur, upto,
				       JOBD_HANDLERS_BATCH, &ids, &n, &backoff);
		if (rc == JOBD_HANDLERS_STOPPED) {
			jobd_records_ids_free(all, total);
			free(cur);
			return JOBD_HANDLER_STOPPED;
		}
		if (rc < 0 || n == 0)
			break;
		all = realloc(all, (total + n) * sizeof(*all));
		if (!all)
			abort();
		memcpy(all + total, ids, n * sizeof(*ids));
		total += n;
		free(cur);
		cur = strdup(ids[n - 1]);
		free(ids);
		ids = NULL;
	}
	free(ids);
	free(cur);
	*out = all;
	*nout = total;
	return 0;
}

/* Creates SP's held parts, if any, and checkpoints after them, with the
 * progress of the split; returns as split_list. */
static int list_flush(struct jobd_ctx *ctx, struct jobd_handlers_spawner *sp,
		      int64_t token, int64_t batch, int64_t total)
{
	int64_t next = jobd_handlers_spawner_next(sp);
	json_t *nck = json_pack("{s:I, s:I}", "token", (json_int_t)token,
				"part", (json_int_t)next);
	int rc = jobd_handlers_spawner_flush(ctx, sp, nck);

	json_decref(nck);
	if (rc == JOBD_HANDLER_DONE)
		jobd_ctx_progress_of(ctx, next * batch, total);
	return rc;
}

/* The root with an explicit id list longer than a batch: slices, their
 * children made in batches (handlers/common.h, the spawner). */
static int split_list(struct jobd_ctx *ctx, const json_t *p, const json_t *list,
		      int64_t batch)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *child, *slice;
	struct jobd_handlers_spawner *sp;
	int64_t token, part, total = (int64_t)json_array_size(list);
	char key[64];
	int ret = JOBD_HANDLER_DONE, rc;

	token = ck ? jobd_handlers_int(ck, "token", 0) : jobd_ctx_attempt(ctx);
	part = jobd_handlers_int(ck, "part", 0);
	json_decref(ck);
	sp = jobd_handlers_spawner_new(part, "cannot create part");
	for (; part * batch < total; part++) {
		bool full;

		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		slice = json_array();
		for (int64_t i = part * batch;
		     i < total && i < (part + 1) * batch; i++)
			json_array_append(slice,
					  json_array_get(list, (size_t)i));
		child = json_deep_copy(p);
		json_object_set_new(child, "ids", slice);
		json_object_set_new(child, "part", json_integer(part));
		snprintf(key, sizeof(key), "p%" PRId64 "-%" PRId64, token,
			 part);
		full = jobd_handlers_spawner_add(sp, jobd_ctx_type(ctx), key,
						 child);
		json_decref(child);
		if (full && (rc = list_flush(ctx, sp, token, batch, total)) !=
				    JOBD_HANDLER_DONE) {
			jobd_handlers_spawner_free(sp);
			return rc;
		}
	}
	/* The slices held when the list ended or a stop came. */
	rc = list_flush(ctx, sp, token, batch, total);
	jobd_handlers_spawner_free(sp);
	if (rc != JOBD_HANDLER_DONE || ret != JOBD_HANDLER_DONE)
		return rc != JOBD_HANDLER_DONE ? rc : ret;
	jobd_ctx_progress(ctx, 100);
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "action: %" PRId64 " ids in %" PRId64 " batches", total,
		     part);
	return JOBD_HANDLER_DONE;
}

int jobd_handler_action(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	const struct jobd_action_conf *ac = NULL;
	json_t *p = jobd_handlers_payload(ctx, "action"), *list;
	struct jobd_store *st;
	const char *name, *coll;
	char **ids = NULL;
	size_t n = 0;
	int64_t parts = 0;
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	name = jobd_handlers_str(p, "action", "");
	for (size_t i = 0; i < conf->actions_count; i++)
		if (strcmp(conf->actions[i].name, name) == 0)
			ac = &conf->actions[i];
	coll = jobd_handlers_str(p, "collection", NULL);
	list = json_object_get(p, "ids");
	if (!ac) {
		ret = jobd_ctx_fail(ctx,
				    "action: unknown action \"%s\": no "
				    "[action.%s] in the conf",
				    name, name);
		goto out;
	}
	if (coll && !jobd_records_valid_collection(coll)) {
		ret = jobd_ctx_fail(ctx, "action: bad \"collection\" \"%s\"",
				    coll);
		goto out;
	}
	if (!coll && !json_is_array(list)) {
		ret = jobd_ctx_fail(ctx, "action: the payload needs \"ids\" "
					 "(an array) or \"collection\"");
		goto out;
	}
	if (json_is_array(list)) {
		size_t i;
		json_t *v;

		if (!json_object_get(p, "part") &&
		    (int64_t)json_array_size(list) > ac->batch) {
			ret = split_list(ctx, p, list, ac->batch);
			goto out;
		}
		ids = calloc(json_array_size(list) + 1, sizeof(*ids));
		if (!ids)
			abort();
		json_array_foreach(list, i, v)
		{
			char *id = jobd_json_text(v);

			if (!jobd_records_valid_id(id)) {
				jobd_ctx_error(ctx, "ids[%zu]: not a record id",
					       i);
				free(id);
				continue;
			}
			ids[n++] = id;
		}
		ret = run_batch(ctx, ac, coll, ids, n);
		goto out;
	}
	st = jobd_handlers_store(ctx);
	if (!st) {
		ret = JOBD_HANDLER_FAILED;
		goto out;
	}
	if (!json_object_get(p, "part")) {
		ret = jobd_handlers_split(ctx, st, coll, ac->batch, p, &parts);
		if (ret == JOBD_HANDLER_DONE)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "action %s: %s in %" PRId64 " batches",
				     ac->name, coll, parts);
		goto out;
	}
	ret = range_ids(ctx, st, coll, jobd_handlers_str(p, "after", ""),
			jobd_handlers_str(p, "upto", NULL), &ids, &n);
	if (ret == 0)
		ret = run_batch(ctx, ac, coll, ids, n);
out:
	jobd_records_ids_free(ids, n);
	json_decref(p);
	return ret;
}
