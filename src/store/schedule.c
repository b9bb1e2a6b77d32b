/*
 * store/schedule: the state of each [schedule.NAME] in P:schedule:NAME,
 * which every instance's ticker reads and writes (engine/scheduler.h).
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

static int64_t field_i64(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

int jobd_store_schedule_get(struct jobd_store *st, const char *name,
			    struct jobd_schedule_state *out)
{
	redisReply *r;

	memset(out, 0, sizeof(*out));
	r = jobd_store_command(st, "HMGET %s:schedule:%s tick fired job missed",
			       jobd_store_prefix(st), name);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
		out->tick = field_i64(r->element[0]);
		out->fired = field_i64(r->element[1]);
		out->job = field_i64(r->element[2]);
		out->missed = field_i64(r->element[3]);
	} else if (r->type == REDIS_REPLY_ERROR) {
		store_set_err(st, "cannot read schedule \"%s\": %s", name,
			      r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_schedule_mark(struct jobd_store *st, const char *name,
			     int64_t tick, int64_t fired, int64_t job,
			     int64_t missed)
{
	struct store_args a = { 0 };
	redisReply *r;
	int moved;

	store_args_add(&a, name);
	store_args_addf(&a, "%lld", (long long)tick);
	store_args_addf(&a, "%lld", (long long)fired);
	store_args_addf(&a, "%lld", (long long)job);
	store_args_addf(&a, "%lld", (long long)missed);
	r = store_eval(st, S_SCHEDULE, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	moved = store_reply_i64(r) == 1;
	freeReplyObject(r);
	return moved;
}
