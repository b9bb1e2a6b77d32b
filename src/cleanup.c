/*
 * cleanup: retention as a system job. jobd schedules one per hour (the
 * job's key names the hour, so several instances still make one); the
 * handler calls the purge script in bounded batches until no expired tree
 * is left. A lease keeps two cleanups from running at once even when one
 * outlives its hour. Not stoppable by policy: it holds no state worth a
 * checkpoint, and the next hour's run continues where it stopped.
 */
#include "config.h"

#include "cleanup.h"

#include <stdio.h>

#include "log.h"
#include "store.h"

#define PURGE_BATCH 500
#define LEASE_MS 60000

int jobd_handler_cleanup(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	struct jobd_store *st = jobd_ctx_store(ctx);
	char holder[64];
	int64_t now, total = 0;
	size_t deleted;
	bool more = true;
	int rc;

	if (!st)
		return jobd_ctx_fail(ctx, "cleanup: redis is unreachable");
	if (conf->retention_jobs <= 0) {
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "cleanup: [retention] jobs = 0 keeps every job");
		return JOBD_HANDLER_DONE;
	}
	snprintf(holder, sizeof(holder), "job:%lld",
		 (long long)jobd_ctx_job_id(ctx));
	rc = jobd_store_lease(st, "cleanup", holder, LEASE_MS);
	if (rc == 0) {
		jobd_ctx_log(
			ctx, JOBD_LOG_INFO,
			"cleanup: another cleanup is running; nothing to do");
		return JOBD_HANDLER_DONE;
	}
	if (rc < 0 || jobd_store_time(st, &now) < 0)
		return jobd_ctx_fail(ctx, "cleanup: %s", jobd_store_errstr(st));
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

int jobd_cleanup_schedule(struct jobd_store *st)
{
	struct jobd_spec spec = { .type = "cleanup", .payload = "{}" };
	struct jobd_created out;
	char key[64];
	int64_t now;
	int rc;

	rc = jobd_store_time(st, &now);
	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "cleanup:%lld",
		 (long long)(now - now % JOBD_CLEANUP_INTERVAL_MS));
	spec.key = key;
	rc = jobd_store_create(st, "jobd", &spec, 1, &out);
	if (rc == 0 && out.error[0])
		jobd_warn("cannot schedule the cleanup job: %s", out.error);
	return rc;
}
