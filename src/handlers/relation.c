/*
 * relationship-update: a system job jobd creates itself when records of a
 * collection that is a [relation.NAME] source change their label field
 * (import and action writes call jobd_handlers_relations). It copies the
 * new labels into the records of the target collection that reference
 * them (docs/job-types.md).
 *
 * Payload: {"relation": NAME, "changes": {SOURCE_ID: NEW_LABEL, ...},
 * "cause": JOB_ID}. There is no reverse index of references, so the root
 * job walks the target collection in chunk_size parts (children, like
 * refactor) and each child reads JOBD_HANDLERS_BATCH target records at a
 * time and sets copy_field where ref_field names a changed source record.
 * Setting a copy to the value it has is skipped, so redoing a page is
 * harmless. Not stoppable by default: a half-applied label change would
 * leave copies disagreeing with their source.
 */
#include "config.h"

#include "handlers/builtin.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/chunks.h"
#include "handlers/common.h"
#include "handlers/relation.h"
#include "store/records.h"
#include "store/store.h"

struct relupd {
	const struct jobd_relation_conf *rel; /* borrowed from the conf */
	const json_t *changes;		      /* borrowed from the payload */
	int64_t changed;		      /* copies updated */
};

static int page(struct jobd_ctx *ctx, struct jobd_store *st, char **ids,
		size_t n, void *arg)
{
	struct relupd *ru = arg;
	struct jobd_record *recs = NULL;
	char **hit_ids, **hit_vals;
	size_t hits = 0, changed = 0;
	int64_t backoff = 0;
	int rc, ret = 0;

	while ((rc = jobd_records_get(st, ru->rel->target, ids, n, &recs)) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff))
			return JOBD_HANDLER_STOPPED;
	if (rc < 0)
		return jobd_ctx_fail(ctx,
				     "relationship-update: cannot read "
				     "collection %s",
				     ru->rel->target);
	hit_ids = calloc(n, sizeof(*hit_ids));
	hit_vals = calloc(n, sizeof(*hit_vals));
	if (!hit_ids || !hit_vals)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *ref =
			jobd_record_field(&recs[i], ru->rel->ref_field);
		const char *label;

		if (!ref)
			continue;
		label = json_string_value(json_object_get(ru->changes, ref));
		if (!label)
			continue;
		hit_ids[hits] = recs[i].id;
		hit_vals[hits] = (char *)label;
		hits++;
	}
	while (hits &&
	       (rc = jobd_records_set_field(st, ru->rel->target, hit_ids,
					    hit_vals, hits, ru->rel->copy_field,
					    &changed)) == JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff)) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
	if (hits && rc < 0)
		ret = jobd_ctx_fail(ctx, "relationship-update: redis refused "
					 "the change (see the jobd log)");
	ru->changed += (int64_t)changed;
out:
	free(hit_ids);
	free(hit_vals);
	jobd_records_free(recs, n);
	return ret;
}

int jobd_handler_relationship_update(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	const struct jobd_type_conf *tc = jobd_ctx_type_conf(ctx);
	json_t *p = jobd_handlers_payload(ctx, "relationship-update");
	struct relupd ru = { 0 };
	struct jobd_store *st;
	const char *name;
	int64_t parts = 0;
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	name = jobd_handlers_str(p, "relation", "");
	for (size_t i = 0; i < conf->relations_count; i++)
		if (strcmp(conf->relations[i].name, name) == 0)
			ru.rel = &conf->relations[i];
	ru.changes = json_object_get(p, "changes");
	if (!ru.rel || !json_is_object(ru.changes)) {
		json_decref(p);
		return jobd_ctx_fail(ctx,
				     "relationship-update: no [relation.%s] in "
				     "the conf, or no \"changes\" object",
				     name);
	}
	st = jobd_handlers_store(ctx);
	if (!st) {
		json_decref(p);
		return JOBD_HANDLER_FAILED;
	}
	if (!json_object_get(p, "part")) {
		ret = jobd_handlers_split(ctx, st, ru.rel->target,
					  tc ? tc->chunk_size : 1000, p,
					  &parts);
		if (ret == JOBD_HANDLER_DONE)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "relationship-update: %zu labels of %s "
				     "to copy into %s.%s, %" PRId64 " parts",
				     json_object_size(ru.changes),
				     ru.rel->source, ru.rel->target,
				     ru.rel->copy_field, parts);
	} else {
		ret = jobd_handlers_walk(ctx, st, ru.rel->target,
					 jobd_handlers_str(p, "after", ""),
					 jobd_handlers_str(p, "upto", NULL),
					 tc ? tc->chunk_size : 0, page, &ru);
		if (ret == JOBD_HANDLER_DONE)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "relationship-update: %" PRId64
				     " copies updated",
				     ru.changed);
	}
	json_decref(p);
	return ret;
}

/* --- the trigger (relation.h) ------------------------------------------------ */

bool jobd_handlers_relations(struct jobd_ctx *ctx, struct jobd_store *st,
			     const char *coll, const struct jobd_record *olds,
			     const struct jobd_record *news, size_t n,
			     const char *key_base)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);

	for (size_t r = 0; r < conf->relations_count; r++) {
		const struct jobd_relation_conf *rel = &conf->relations[r];
		json_t *changes, *payload;
		struct jobd_spec spec = { 0 };
		struct jobd_created out;
		int64_t backoff = 0;
		char key[512];
		char *text;

		if (strcmp(rel->source, coll) != 0)
			continue;
		changes = json_object();
		for (size_t i = 0; i < n; i++) {
			const char *was, *now;

			if (!olds[i].exists)
				continue;
			was = jobd_record_field(&olds[i], rel->label);
			now = jobd_record_field(&news[i], rel->label);
			if (!now || (was && strcmp(was, now) == 0))
				continue;
			json_object_set_new(changes, news[i].id,
					    json_string(now));
		}
		if (json_object_size(changes) == 0) {
			json_decref(changes);
			continue;
		}
		payload = json_pack("{s:s, s:o, s:I}", "relation", rel->name,
				    "changes", changes, "cause",
				    (json_int_t)jobd_ctx_job_id(ctx));
		text = json_dumps(payload, JSON_COMPACT);
		if (!text)
			abort();
		snprintf(key, sizeof(key), "relupd:%s:%" PRId64 ":%s",
			 rel->name, jobd_ctx_job_id(ctx), key_base);
		spec.type = "relationship-update";
		spec.key = key;
		spec.payload = text;
		while (jobd_store_create(st, "jobd", &spec, 1, &out) < 0)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				free(text);
				json_decref(payload);
				return false;
			}
		if (out.id == 0)
			jobd_ctx_error(ctx,
				       "cannot create relationship-update for "
				       "relation %s: %s",
				       rel->name, out.error);
		else if (!out.existed)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "%zu %s labels changed: relationship-"
				     "update job %" PRId64 " (relation %s)",
				     json_object_size(changes), coll, out.id,
				     rel->name);
		free(text);
		json_decref(payload);
	}
	return true;
}
