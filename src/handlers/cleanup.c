/*
 * cleanup: retention as a system job. jobd schedules one per hour (the
 * job's key names the hour, so several instances still make one); the
 * handler calls the purge script in bounded batches until no expired tree
 * is left. A lease keeps two cleanups from running at once even when one
 * outlives its hour. Not stoppable by policy: it holds no state worth a
 * checkpoint, and the next hour's run continues where it stopped.
 *
 * Before it purges, it builds in the same bounded batches the indexes a
 * store of an earlier version lacks (jobd_store_backfill: retention's
 * index of ended roots, which the purge reads, and the log search
 * index). jobd starts a cleanup for that as soon as it starts on such a
 * store, rather than at the next hour.
 */
#include "config.h"

#include "handlers/cleanup.h"

#include <stdio.h>

#include "base/log.h"
#include "handlers/builtin.h"
#include "store/store.h"

#define PURGE_BATCH 500
/* The key of the cleanup jobd submits on start when the backfill has
 * work: named after the module revision whose steps it adds (ix, keys),
 * since a store that an earlier version backfilled has the key of that
 * job, which would make the submit find it and start none. */
#define BACKFILL_KEY "cleanup:backfill:r10"
#define LEASE_MS 60000

/*
 * The handler: builds the missing indexes, then purges, in bounded
 * batches until nothing is left, holding the "cleanup" lease so that two
 * cleanup jobs never overlap.
 */
int jobd_handler_cleanup(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	struct jobd_store *st = jobd_ctx_store(ctx);
	char holder[64];
	int64_t now, total = 0, indexed = 0, converted = 0, moved = 0;
	size_t deleted, n, m, k;
	bool more = true;
	int rc;

	if (!st)
		return jobd_ctx_fail(ctx, "cleanup: redis is unreachable");
	snprintf(holder, sizeof(holder), "job:%lld",
		 (long long)jobd_ctx_job_id(ctx));
	rc = jobd_store_lease(st, "cleanup", holder, LEASE_MS);
	if (rc == 0) {
		jobd_ctx_log(
			ctx, JOBD_LOG_INFO,
			"cleanup: another cleanup is running; nothing to do");
		return JOBD_HANDLER_DONE;
	}
	if (rc < 0)
		return jobd_ctx_fail(ctx, "cleanup: %s", jobd_store_errstr(st));
	while (more && !jobd_ctx_abandoned(ctx)) {
		if (jobd_store_backfill(st, PURGE_BATCH, &n, &m, &k, &more) <
			    0 ||
		    jobd_store_lease(st, "cleanup", holder, LEASE_MS) < 0)
			return jobd_ctx_fail(ctx, "cleanup: %s",
					     jobd_store_errstr(st));
		indexed += (int64_t)n;
		converted += (int64_t)m;
		moved += (int64_t)k;
	}
	if (indexed || converted || moved)
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "cleanup: indexed %lld ended jobs, %lld log "
			     "minutes and %lld keys of an earlier version",
			     (long long)indexed, (long long)converted,
			     (long long)moved);
	if (more) { /* abandoned: the next cleanup goes on */
		jobd_store_lease(st, "cleanup", holder, 0);
		return JOBD_HANDLER_DONE;
	}
	if (conf->retention_jobs <= 0) {
		jobd_store_lease(st, "cleanup", holder, 0);
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "cleanup: [retention] jobs = 0 keeps every job");
		return JOBD_HANDLER_DONE;
	}
	if (jobd_store_time(st, &now) < 0)
		return jobd_ctx_fail(ctx, "cleanup: %s", jobd_store_errstr(st));
	more = true;
	while (more && !jobd_ctx_abandoned(ctx)) {
		if (jobd_store_purge(st, now - conf->retention_jobs,
				     PURGE_BATCH, &deleted, &more) < 0 ||
		    jobd_store_lease(st, "cleanup", holder, LEASE_MS) < 0)
			return jobd_ctx_fail(ctx, "cleanup: %s",
					     jobd_store_errstr(st));
		total += (int64_t)deleted;
	}
	jobd_store_lease(st, "cleanup", holder, 0);
	jobd_ctx_progress(ctx, 100);
	jobd_ctx_log(
		ctx, JOBD_LOG_INFO,
		"cleanup: deleted %lld jobs that ended before the last %lld s",
		(long long)total, (long long)(conf->retention_jobs / 1000));
	return JOBD_HANDLER_DONE;
}

/* Creates the cleanup job of KEY unless it exists. */
static int submit(struct jobd_store *st, const char *key)
{
	struct jobd_spec spec = { .type = "cleanup", .payload = "{}" };
	struct jobd_created out;
	int rc;

	spec.key = key;
	rc = jobd_store_create(st, "jobd", &spec, 1, &out);
	if (rc == 0 && out.error[0])
		jobd_warn("cannot schedule the cleanup job: %s", out.error);
	return rc;
}

int jobd_cleanup_schedule(struct jobd_store *st, bool starting)
{
	char key[64];
	int64_t now;
	int rc;

	/* A store of an earlier version: its indexes now, not within the
	 * hour (one such job per store: its key is fixed). */
	if (starting && (rc = jobd_store_backfill_pending(st)) != 0) {
		if (rc < 0 || (rc = submit(st, BACKFILL_KEY)) < 0)
			return rc;
	}
	rc = jobd_store_time(st, &now);
	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "cleanup:%lld",
		 (long long)(now - now % JOBD_CLEANUP_INTERVAL_MS));
	return submit(st, key);
}
