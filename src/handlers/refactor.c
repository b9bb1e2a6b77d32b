/*
 * refactor: a system job that renames or drops a field in every record of
 * a collection (docs/job-types.md).
 *
 * Payload: {"collection", "field", "rename_to": NEW} or {"collection",
 * "field", "drop": true}. The root job walks the collection's index and
 * spawns a child per chunk_size ids (the id range is in the child's
 * payload); each child renames or drops the field in its range,
 * JOBD_HANDLERS_BATCH records per MULTI, checkpointing the last id done.
 * A record without the field is left alone, so a page redone after a
 * crash changes nothing twice; stop and resume work at page boundaries
 * (the type is stoppable by default).
 */
#include "config.h"

#include "handlers/builtin.h"

#include <inttypes.h>
#include <string.h>

#include "handlers/chunks.h"
#include "handlers/common.h"

struct refactor {
	const char *coll;  /* borrowed from the payload */
	const char *field; /* the field renamed or dropped */
	const char *to;	   /* its new name, NULL = drop */
	int64_t changed;   /* records changed by this attempt */
};

static int page(struct jobd_ctx *ctx, struct jobd_store *st, char **ids,
		size_t n, void *arg)
{
	struct refactor *rf = arg;
	int64_t backoff = 0;
	size_t changed = 0;
	int rc;

	while ((rc = jobd_records_rename_field(st, rf->coll, ids, n, rf->field,
					       rf->to, &changed)) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff))
			return JOBD_HANDLER_STOPPED;
	if (rc < 0)
		return jobd_ctx_fail(ctx, "refactor: redis refused the change "
					  "(see the jobd log)");
	rf->changed += (int64_t)changed;
	return 0;
}

int jobd_handler_refactor(struct jobd_ctx *ctx)
{
	const struct jobd_type_conf *tc = jobd_ctx_type_conf(ctx);
	json_t *p = jobd_handlers_payload(ctx, "refactor");
	struct refactor rf = { 0 };
	struct jobd_store *st;
	int64_t parts = 0;
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	rf.coll = jobd_handlers_str(p, "collection", NULL);
	rf.field = jobd_handlers_str(p, "field", NULL);
	rf.to = jobd_handlers_str(p, "rename_to", NULL);
	if (!jobd_records_valid_collection(rf.coll) || !rf.field ||
	    !*rf.field ||
	    (!rf.to && !json_is_true(json_object_get(p, "drop"))) ||
	    (rf.to && (!*rf.to || strcmp(rf.to, rf.field) == 0))) {
		json_decref(p);
		return jobd_ctx_fail(ctx,
				     "refactor: the payload needs "
				     "\"collection\", \"field\" and "
				     "\"rename_to\" (a new name) or \"drop\": "
				     "true");
	}
	st = jobd_handlers_store(ctx);
	if (!st) {
		json_decref(p);
		return JOBD_HANDLER_FAILED;
	}
	if (!json_object_get(p, "part")) {
		ret = jobd_handlers_split(ctx, st, rf.coll,
					  tc ? tc->chunk_size : 1000, p,
					  &parts);
		if (ret == JOBD_HANDLER_DONE)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "refactor: %s field \"%s\"%s%s of %s in "
				     "%" PRId64 " parts",
				     rf.to ? "renaming" : "dropping", rf.field,
				     rf.to ? " to " : "", rf.to ? rf.to : "",
				     rf.coll, parts);
	} else {
		ret = jobd_handlers_walk(ctx, st, rf.coll,
					 jobd_handlers_str(p, "after", ""),
					 jobd_handlers_str(p, "upto", NULL),
					 tc ? tc->chunk_size : 0, page, &rf);
		if (ret == JOBD_HANDLER_DONE)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "refactor: %" PRId64 " records changed",
				     rf.changed);
	}
	json_decref(p);
	return ret;
}
