/*
 * event: runs the listeners of a legacy-service event (docs/job-types.md).
 *
 * The payload is what the consumer built from a jobs.events message:
 * {"service", "event", "data"}. The listeners are the [listener.NAME]
 * sections whose service matches and whose event matches (or is "*"), in
 * the conf's order (order, then name). Each runs its command with the
 * exec protocol, the payload on stdin, JOBD_LISTENER, JOBD_SERVICE and
 * JOBD_EVENT in its environment.
 *
 * A listener cannot be interrupted: it runs inside an uninterruptible
 * section, so a stop leaves the job Stopping until the listener ends; the
 * job then stops before the next listener, and a resume continues with it
 * (the checkpoint is {"next": index}). A force stop still kills it. A
 * listener that fails is an error of the job (with its reason) and the
 * following listeners still run: one broken subscriber must not starve the
 * others. A listener's own checkpoint lines are ignored (the job's
 * checkpoint is the listener index); its progress maps into its share.
 */
#include "config.h"

#include "handlers/builtin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/common.h"
#include "handlers/exec.h"

static bool listens(const struct jobd_listener_conf *l, const char *service,
		    const char *event)
{
	return strcmp(l->service, service) == 0 &&
	       (strcmp(l->event, "*") == 0 || strcmp(l->event, event) == 0);
}

int jobd_handler_event(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	const struct jobd_listener_conf **ls;
	json_t *p = jobd_handlers_payload(ctx, "event"), *ck;
	const char *service, *event, *payload = jobd_ctx_payload(ctx);
	char why[256], prefix[160], *env[4] = { NULL };
	size_t n = 0;
	int64_t next = 0;
	int ret = JOBD_HANDLER_DONE;

	if (!p)
		return JOBD_HANDLER_FAILED;
	service = jobd_handlers_str(p, "service", NULL);
	event = jobd_handlers_str(p, "event", NULL);
	if (!service || !event) {
		json_decref(p);
		return jobd_ctx_fail(ctx,
				     "event: the payload needs \"service\" "
				     "and \"event\"");
	}
	ls = calloc(conf->listeners_count + 1, sizeof(*ls));
	if (!ls)
		abort();
	for (size_t i = 0; i < conf->listeners_count; i++)
		if (listens(&conf->listeners[i], service, event))
			ls[n++] = &conf->listeners[i];
	if (n == 0) {
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "event: nobody listens to %s/%s", service, event);
		jobd_ctx_progress(ctx, 100);
		goto out;
	}
	ck = jobd_handlers_checkpoint(ctx);
	next = jobd_handlers_int(ck, "next", 0);
	json_decref(ck);
	if (next > 0)
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "event: resuming at listener %" PRId64 " of %zu",
			     next + 1, n);
	for (; next < (int64_t)n; next++) {
		const struct jobd_listener_conf *l = ls[next];
		struct jobd_exec_spec run = { 0 };
		enum jobd_exec_result rr;
		char ckbuf[64];

		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
		if (asprintf(&env[0], "JOBD_LISTENER=%s", l->name) < 0 ||
		    asprintf(&env[1], "JOBD_SERVICE=%s", service) < 0 ||
		    asprintf(&env[2], "JOBD_EVENT=%s", event) < 0)
			abort();
		snprintf(prefix, sizeof(prefix), "%s-", l->name);
		run.argv = l->command;
		run.input = payload;
		run.input_len = strlen(payload);
		run.env = (const char *const *)env;
		run.progress_base = 100.0 * (double)next / (double)n;
		run.progress_span = 100.0 / (double)n;
		run.child_prefix = prefix;
		jobd_ctx_log(ctx, JOBD_LOG_INFO, "event: listener %s starts",
			     l->name);
		jobd_ctx_uninterruptible_begin(ctx);
		rr = jobd_exec_run(ctx, &run, why, sizeof(why));
		jobd_ctx_uninterruptible_end(ctx);
		for (int i = 0; i < 3; i++) {
			free(env[i]);
			env[i] = NULL;
		}
		if (jobd_ctx_abandoned(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
		if (rr == JOBD_EXEC_FAILED)
			jobd_ctx_error(ctx, "event: listener %s failed: %s",
				       l->name, why);
		else
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "event: listener %s done", l->name);
		snprintf(ckbuf, sizeof(ckbuf), "{\"next\":%" PRId64 "}",
			 next + 1);
		jobd_ctx_save_checkpoint(ctx, ckbuf);
		jobd_ctx_progress_of(ctx, next + 1, (int64_t)n);
	}
out:
	free(ls);
	json_decref(p);
	return ret;
}
