/*
 * store/transitions: what happens to a job once it exists. The engine's
 * calls (claim, report, finish, hand back, heartbeat, expired leases, the
 * wake-up wait, cascades) and the operators' operations (stop, resume,
 * force stop, cancel, restart, low priority). Each is one Lua function of
 * src/store/lua/ (claim and finish through the module first, where Redis
 * has it).
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

/* --- engine ------------------------------------------------------------ */

/* Claim CL from the eight entries of one job at F (claim.lua's order). */
static void claim_from(struct jobd_claim *cl, redisReply *const *f)
{
	cl->id = store_reply_i64(f[0]);
	cl->attempt = store_reply_i64(f[1]);
	cl->type = store_dup_str(f[2]);
	cl->payload = store_dup_str(f[3]);
	cl->checkpoint = f[4]->len ? store_dup_str(f[4]) : NULL;
	cl->low_priority = store_reply_i64(f[5]) == 1;
	cl->root = store_reply_i64(f[6]);
	cl->progress =
		f[7]->type == REDIS_REPLY_STRING ? strtod(f[7]->str, NULL) : 0;
}

/* Appends the jobs of claim reply R to CL (*n of them); true when the
 * module stopped early and left the rest to claim.lua. JOBD.CLAIM answers
 * a list of eight entries a job, claim.lua the entries of its jobs one
 * after the other (a table a job costs Lua's reply more). */
static bool claims_from(const redisReply *r, struct jobd_claim *cl, size_t *n,
			int *low)
{
	bool rest = false;

	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i];

		if (e->type == REDIS_REPLY_STATUS &&
		    strcmp(e->str, "lua") == 0) {
			rest = true;
			continue;
		}
		if (e->type == REDIS_REPLY_ARRAY && e->elements >= 8) {
			claim_from(&cl[*n], e->element);
		} else if ((e->type == REDIS_REPLY_STRING ||
			    e->type == REDIS_REPLY_INTEGER) &&
			   r->elements - i >= 8) {
			claim_from(&cl[*n], &r->element[i]);
			i += 7;
		} else {
			continue;
		}
		*low += cl[*n].low_priority;
		(*n)++;
	}
	return rest;
}

static void claim_args(struct jobd_store *st, struct store_args *a,
		       const char *instance, int64_t lease_ms, int max,
		       int max_low)
{
	store_args_addf(a, "%lld", (long long)st->conf->retention_stats);
	store_args_add(a, instance);
	store_args_addf(a, "%lld", (long long)lease_ms);
	store_args_addf(a, "%d", max);
	store_args_addf(a, "%d", max_low);
	store_args_add(a, "10");
}

int jobd_store_claim(struct jobd_store *st, const char *instance, int max,
		     int max_low, int64_t lease_ms, struct jobd_claim **claims,
		     size_t *n)
{
	struct store_args a = { 0 };
	struct jobd_claim *cl;
	redisReply *r;
	bool fallback, rest = true;
	int low = 0;

	if (st->nsh)
		return jobd_store_sharded_claim(st, instance, max, max_low,
						lease_ms, claims, n);
	*claims = NULL;
	*n = 0;
	if (max <= 0)
		return 0;
	cl = calloc((size_t)max, sizeof(*cl));
	if (!cl)
		return JOBD_STORE_ERR_REDIS;
	claim_args(st, &a, instance, lease_ms, max, max_low);
	r = store_module_call(st, "JOBD.CLAIM", &a, &fallback);
	store_args_release(&a);
	if (!r && !fallback) {
		free(cl);
		return JOBD_STORE_ERR_REDIS;
	}
	if (r) {
		if (r->type == REDIS_REPLY_ARRAY)
			rest = claims_from(r, cl, n, &low);
		freeReplyObject(r);
	}
	if (rest && (int)*n < max) {
		/* What the module does not claim (a root with children, a
		 * due retry), or no module: claim.lua. */
		memset(&a, 0, sizeof(a));
		claim_args(st, &a, instance, lease_ms, max - (int)*n,
			   max_low > low ? max_low - low : 0);
		r = store_eval(st, S_CLAIM, &a);
		store_args_release(&a);
		if (!r) {
			/* The module's claims stand: hand them out. */
			if (*n == 0) {
				free(cl);
				return JOBD_STORE_ERR_REDIS;
			}
		} else {
			if (r->type == REDIS_REPLY_ARRAY)
				claims_from(r, cl, n, &low);
			freeReplyObject(r);
		}
	}
	if (*n == 0) {
		free(cl);
		return 0;
	}
	*claims = cl;
	return 0;
}

void jobd_store_claims_free(struct jobd_claim *claims, size_t n)
{
	if (!claims)
		return;
	for (size_t i = 0; i < n; i++) {
		free(claims[i].type);
		free(claims[i].payload);
		free(claims[i].checkpoint);
	}
	free(claims);
}

static enum jobd_result parse_result(const redisReply *e)
{
	static const struct {
		const char *name;
		enum jobd_result result;
	} map[] = {
		{ "ok", JOBD_RESULT_OK },
		{ "stop", JOBD_RESULT_STOP },
		{ "fenced", JOBD_RESULT_FENCED },
		{ "finished", JOBD_RESULT_FINISHED },
		{ "waiting", JOBD_RESULT_WAITING },
		{ "stopped", JOBD_RESULT_STOPPED },
		{ "retry", JOBD_RESULT_RETRY },
		{ "pending", JOBD_RESULT_PENDING },
	};

	if (e && e->type == REDIS_REPLY_STRING)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(e->str, map[i].name) == 0)
				return map[i].result;
	return JOBD_RESULT_FENCED;
}

static int results_from(redisReply *r, size_t n, enum jobd_result *results)
{
	for (size_t i = 0; i < n; i++)
		results[i] =
			parse_result(i < r->elements ? r->element[i] : NULL);
	freeReplyObject(r);
	return 0;
}

/* A progress as the scripts take it (-1 keeps the job's) in BUF (SIZE,
 * at least 32): "%.4g", with no printf for a whole number. */
static const char *progress_text(char *buf, size_t size, double progress)
{
	if (progress < 0)
		return "-1";
	if (progress <= 9999 && progress == floor(progress))
		buf[jobd_util_i64_text((int64_t)progress, buf)] = '\0';
	else
		snprintf(buf, size, "%.4g", progress);
	return buf;
}

static void add_progress(struct store_args *a, double progress)
{
	char buf[32];

	store_args_addf(a, "%s", progress_text(buf, sizeof(buf), progress));
}

int jobd_store_report(struct jobd_store *st, const struct jobd_report *rep,
		      size_t n, enum jobd_result *results)
{
	if (st->nsh)
		return jobd_store_sharded_report(st, rep, n, results);
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct store_args a = { 0 };
		redisReply *r;

		store_args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			store_args_addf(&a, "%lld", (long long)rep[i].id);
			store_args_addf(&a, "%lld", (long long)rep[i].attempt);
			add_progress(&a, rep[i].progress);
			store_args_addf(&a, "%lld", (long long)rep[i].errors);
			store_args_add(&a, rep[i].checkpoint);
			store_args_addf(&a, "%zu", rep[i].nlogs);
			for (size_t j = 0; j < rep[i].nlogs; j++) {
				store_args_add(
					&a,
					store_level_name(rep[i].logs[j].level));
				store_args_add(&a, rep[i].logs[j].msg);
			}
		}
		r = store_eval(st, S_PROGRESS, &a);
		store_args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
	}
	return 0;
}

static bool is_lua(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_STRING && strcmp(e->str, "lua") == 0;
}

/* finish.lua's arguments per run before its log lines, in its order. */
enum {
	R_ID,
	R_ATTEMPT,
	R_OUTCOME,
	R_PROGRESS,
	R_ERRORS,
	R_CHECKPOINT,
	R_JITTER,
	R_MESSAGE,
	R_NLOGS,
	RUN_FIELDS
};

/* Those JOBD.FINISH takes, in the same order: its runs are done and have
 * no log lines, so it needs no outcome, jitter, message or count. */
static const bool run_packed[RUN_FIELDS] = {
	[R_ID] = true,	   [R_ATTEMPT] = true,	  [R_PROGRESS] = true,
	[R_ERRORS] = true, [R_CHECKPOINT] = true,
};

/*
 * The RUN_FIELDS arguments of run P into F, in the order finish.lua and
 * JOBD.FINISH read them; numbers are written into NUM (reused by the
 * next run), the rest is borrowed from P. The jitter of the retry backoff
 * is drawn for finish.lua only (MODULE false). The one place that order
 * is written.
 */
static void run_fields(const struct jobd_report *p, char num[RUN_FIELDS][32],
		       const char *f[RUN_FIELDS], bool module)
{
	static const char *const outcomes[] = { "done", "failed", "stopped" };

	for (int i = 0; i < RUN_FIELDS; i++)
		f[i] = num[i];
	num[R_ID][jobd_util_i64_text(p->id, num[R_ID])] = '\0';
	num[R_ATTEMPT][jobd_util_i64_text(p->attempt, num[R_ATTEMPT])] = '\0';
	f[R_OUTCOME] = outcomes[p->outcome];
	f[R_PROGRESS] = progress_text(num[R_PROGRESS], 32, p->progress);
	num[R_ERRORS][jobd_util_i64_text(p->errors, num[R_ERRORS])] = '\0';
	f[R_CHECKPOINT] = p->checkpoint ? p->checkpoint : "";
	num[R_JITTER][0] = '\0';
	if (!module)
		snprintf(num[R_JITTER], 32, "%.4f",
			 (double)random() / RAND_MAX);
	f[R_MESSAGE] = p->message ? p->message : "";
	snprintf(num[R_NLOGS], 32, "%zu", p->nlogs);
}

/*
 * The arguments of finish.lua, or with MODULE of JOBD.FINISH, for the LEN
 * runs of REP named by IDX into A. For finish.lua an argument per field,
 * then the run's log lines; for JOBD.FINISH (runs done without log lines
 * only) one argument, "ID ATTEMPT PROGRESS ERRORS LEN:CHECKPOINT\n" a run
 * (src/store/module/finish.c parse_runs()).
 */
static void finish_args(struct jobd_store *st, struct store_args *a,
			const struct jobd_report *rep, const size_t *idx,
			size_t len, bool module)
{
	struct store_list l = { 0 };
	char num[RUN_FIELDS][32];
	const char *f[RUN_FIELDS];

	store_args_addf(a, "%lld", (long long)st->conf->retention_stats);
	if (!module)
		store_args_addf(a, "%zu", len);
	for (size_t k = 0; k < len; k++) {
		const struct jobd_report *p = &rep[idx[k]];

		run_fields(p, num, f, module);
		for (int i = 0; i < RUN_FIELDS; i++) {
			if (module && !run_packed[i])
				continue;
			if (module && i == R_CHECKPOINT) {
				store_list_field(&l, f[i]);
				store_list_char(&l, '\n');
			} else if (module) {
				store_list_put(&l, f[i], strlen(f[i]));
				store_list_char(&l, ' ');
			} else if (f[i] == num[i]) { /* a copy: NUM is reused */
				store_args_addf(a, "%s", f[i]);
			} else {
				store_args_add(a, f[i]);
			}
		}
		for (size_t j = 0; !module && j < p->nlogs; j++) {
			store_args_add(a, store_level_name(p->logs[j].level));
			store_args_add(a, p->logs[j].msg);
		}
	}
	if (module)
		store_list_add(&l, a);
}

/*
 * Finishes the LEN runs of REP named by IDX: the module takes the runs
 * done without log lines that it can, finish.lua the rest (and those
 * the module answered "lua" for).
 */
static int finish_batch(struct jobd_store *st, const struct jobd_report *rep,
			size_t *idx, size_t len, enum jobd_result *results)
{
	struct store_args a = { 0 };
	redisReply *r;
	size_t done[JOBD_STORE_BATCH], ndone = 0, left = 0;

	for (size_t k = 0; k < len; k++) {
		const struct jobd_report *p = &rep[idx[k]];

		if (p->outcome == JOBD_OUTCOME_DONE && p->nlogs == 0)
			done[ndone++] = idx[k];
		else
			idx[left++] = idx[k];
	}
	if (ndone) {
		bool fallback;

		finish_args(st, &a, rep, done, ndone, true);
		r = store_module_call(st, "JOBD.FINISH", &a, &fallback);
		store_args_release(&a);
		if (!r && !fallback)
			return JOBD_STORE_ERR_REDIS;
		for (size_t k = 0; k < ndone; k++) {
			redisReply *e = r && k < r->elements ? r->element[k] :
							       NULL;

			if (!r || is_lua(e))
				idx[left++] = done[k];
			else
				results[done[k]] = parse_result(e);
		}
		freeReplyObject(r);
	}
	if (left == 0)
		return 0;
	finish_args(st, &a, rep, idx, left, false);
	r = store_eval(st, S_FINISH, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t k = 0; k < left; k++)
		results[idx[k]] =
			parse_result(k < r->elements ? r->element[k] : NULL);
	freeReplyObject(r);
	return 0;
}

int jobd_store_finish(struct jobd_store *st, const struct jobd_report *rep,
		      size_t n, enum jobd_result *results)
{
	size_t idx[JOBD_STORE_BATCH];

	if (st->nsh)
		return jobd_store_sharded_finish(st, rep, n, results);
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		int rc;

		for (size_t k = 0; k < len; k++)
			idx[k] = off + k;
		rc = finish_batch(st, rep, idx, len, results);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int jobd_store_handback(struct jobd_store *st, const char *reason,
			const struct jobd_report *rep, size_t n,
			enum jobd_result *results)
{
	if (st->nsh)
		return jobd_store_sharded_handback(st, reason, rep, n, results);
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct store_args a = { 0 };
		redisReply *r;

		store_args_addf(&a, "%lld",
				(long long)st->conf->retention_stats);
		store_args_add(&a, reason);
		store_args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			store_args_addf(&a, "%lld", (long long)rep[i].id);
			store_args_addf(&a, "%lld", (long long)rep[i].attempt);
			add_progress(&a, rep[i].progress);
			store_args_add(&a, rep[i].checkpoint);
		}
		r = store_eval(st, S_HANDBACK, &a);
		store_args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
	}
	return 0;
}

int jobd_store_heartbeat(struct jobd_store *st, const int64_t *ids,
			 const int64_t *attempts, size_t n, int64_t lease_ms,
			 enum jobd_result *results)
{
	if (st->nsh)
		return jobd_store_sharded_heartbeat(st, ids, attempts, n,
						    lease_ms, results);
	for (size_t off = 0; off < n || off == 0; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct store_args a = { 0 };
		redisReply *r;

		store_args_addf(&a, "%lld", (long long)lease_ms);
		store_args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			store_args_addf(&a, "%lld", (long long)ids[i]);
			store_args_addf(&a, "%lld", (long long)attempts[i]);
		}
		r = store_eval(st, S_HEARTBEAT, &a);
		store_args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
		if (n == 0)
			break;
	}
	return 0;
}

int jobd_store_expire(struct jobd_store *st, size_t max, size_t *n)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_expire(st, max, n);
	*n = 0;
	store_args_addf(&a, "%lld", (long long)st->conf->retention_stats);
	store_args_addf(&a, "%zu", max);
	r = store_eval(st, S_EXPIRE, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY)
		*n = r->elements;
	freeReplyObject(r);
	return 0;
}

/*
 * Whether R, a message on the wake-up link, is of KIND (its first
 * element): "subscribe" confirms a SUBSCRIBE; "sunsubscribe" says the
 * node no longer serves the shard channel (Redis Cluster unsubscribes a
 * shard channel's subscribers when its slot leaves the node: a slot
 * moved, jobctl cluster move, docs/scaling.md).
 */
static bool push_is(const redisReply *r, const char *kind)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(r->element[0]->str, kind) == 0;
}

int jobd_store_wait(struct jobd_store *st, int timeout_ms)
{
	redisReply *r = NULL;
	bool moved = false;
	int woken = 0, rc;

	if (!st->sub) {
		if (st->nsh)
			return store_sharded_subscribe(st);
		st->sub = store_connect_to(st);
		if (!st->sub)
			return JOBD_STORE_ERR_REDIS;
		/*
		 * The functions and the module publish a wake-up on the shard
		 * channel PREFIX:wake (SPUBLISH, which a cluster sends to the
		 * nodes of the slot's shard, not to every node); a jobd of an
		 * earlier version, and a user whose ACL rule allows no
		 * SPUBLISH, on the classic channel of the same name. Both are
		 * listened to. SSUBSCRIBE first: nothing else is subscribed
		 * yet, so the reply read is its own.
		 */
		r = store_link_command(st->sub, "SSUBSCRIBE %s:wake",
				       st->prefix);
		if (!r)
			goto err_lost;
		if (store_redirected(st, r)) {
			/* The slot moved since the map was read: listen anew
			 * at its owner on the next call. */
			freeReplyObject(r);
			store_drop(&st->sub);
			return 1;
		}
		if (r->type == REDIS_REPLY_ERROR && !st->warned_wake) {
			/* An ACL rule with SPUBLISH but not SSUBSCRIBE would
			 * leave jobd deaf to every wake-up: say it once. */
			jobd_warn(
				"store: redis at %s refused SSUBSCRIBE %s:wake "
				"(%s): idle workers hear only wake-ups on the "
				"classic channel, and otherwise look for work "
				"once a second; grant +ssubscribe +spublish "
				"(docs/security.md)",
				store_where(st), st->prefix, r->str);
			st->warned_wake = true;
		}
		freeReplyObject(r);
		/* Its confirmation may come after shard messages (dropped:
		 * the caller claims at once anyway). */
		store_link_append(st->sub, "SUBSCRIBE %s:wake", st->prefix);
		for (;;) {
			bool confirmed;

			if (store_link_reply(st->sub, &r) < 0)
				goto err_lost;
			confirmed = r->type == REDIS_REPLY_ERROR ||
				    push_is(r, "subscribe");
			moved = moved || push_is(r, "sunsubscribe");
			freeReplyObject(r);
			r = NULL;
			if (confirmed)
				break;
		}
		/* (the slot left this node meanwhile: listen anew) */
		if (moved)
			store_drop(&st->sub);
		/* Jobs may have become ready before we listened. */
		return 1;
	}
	/*
	 * Wait on the socket here, not with a read timeout: a timed-out
	 * read would leave the link unusable and we would miss wake-ups
	 * while resubscribing. One wake-up is as good as many: drain what
	 * arrived.
	 */
	while ((rc = store_link_wait(st->sub, woken ? 0 : timeout_ms, &r)) >
	       0) {
		moved = moved || push_is(r, "sunsubscribe");
		freeReplyObject(r);
		r = NULL;
		woken = 1;
	}
	if (rc < 0)
		goto err_lost;
	if (moved) {
		/* Listen at the slot's new owner from the next call on; this
		 * one wakes the caller, whose claim finds the owner too. */
		store_drop(&st->sub);
	}
	return woken;

err_lost:
	store_set_err(st, "redis at %s: subscription lost: %s", store_where(st),
		      st->sub ? store_link_errstr(st->sub) : "");
	store_drop(&st->sub);
	return JOBD_STORE_ERR_REDIS;
}

static int cascade_run(struct jobd_store *st, const char *task)
{
	for (;;) {
		struct store_args a = { 0 };
		redisReply *r;
		int64_t left;

		store_args_addf(&a, "%lld",
				(long long)st->conf->retention_stats);
		store_args_add(&a, task);
		store_args_add(&a, "200");
		r = store_eval(st, S_CASCADE, &a);
		store_args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		left = store_reply_i64(r);
		freeReplyObject(r);
		if (left == 0)
			return 0;
	}
}

int jobd_store_cascades_run(struct jobd_store *st, size_t max_calls,
			    size_t *left)
{
	redisReply *r;
	int rc = 0;

	if (st->nsh)
		return jobd_store_sharded_cascades_run(st, max_calls, left);
	*left = 0;
	if (store_ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	/* hiredis 0.14 formats no %zu. */
	r = jobd_store_command(st, "ZRANGE %s:cascades 0 %lld", st->prefix,
			       (long long)(max_calls ? max_calls - 1 : 0));
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < r->elements && rc == 0; i++)
		rc = cascade_run(st, r->element[i]->str);
	*left = r->elements;
	freeReplyObject(r);
	return rc;
}

/* --- operations -------------------------------------------------------- */

const char *const jobd_op_names[JOBD_OP_COUNT] = {
	"stop",	   "resume",	   "force-stop",       "cancel",
	"restart", "low-priority", "low-priority-off",
};

int jobd_op_parse(const char *name)
{
	for (int i = 0; i < JOBD_OP_COUNT; i++)
		if (strcmp(name, jobd_op_names[i]) == 0)
			return i;
	return -1;
}

static int op_batch(struct jobd_store *st, enum jobd_op op, const char *actor,
		    const int64_t *ids, size_t n, struct jobd_op_result *out)
{
	static const enum script_id scripts[JOBD_OP_COUNT] = {
		S_STOP,	   S_RESUME,	   S_FORCE_STOP,   S_CANCEL,
		S_RESTART, S_LOW_PRIORITY, S_LOW_PRIORITY,
	};
	struct store_args a = { 0 };
	redisReply *r;
	int rc = 0;

	store_args_addf(&a, "%lld", (long long)st->conf->retention_stats);
	store_args_add(&a, actor);
	if (op == JOBD_OP_LOW_PRIORITY || op == JOBD_OP_LOW_PRIORITY_OFF)
		store_args_add(&a, op == JOBD_OP_LOW_PRIORITY ? "1" : "0");
	for (size_t i = 0; i < n; i++)
		store_args_addf(&a, "%lld", (long long)ids[i]);
	r = store_eval(st, scripts[op], &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		redisReply *e = i < r->elements ? r->element[i] : NULL;

		out[i].id = ids[i];
		out[i].ok = false;
		out[i].status = -1;
		out[i].error[0] = '\0';
		if (!e || e->type != REDIS_REPLY_STRING) {
			snprintf(out[i].error, sizeof(out[i].error),
				 "no answer from redis");
			continue;
		}
		if (strncmp(e->str, "ok ", 3) == 0) {
			/* "ok STATUS" or "ok STATUS:TASK" */
			size_t len = strcspn(e->str + 3, ":");
			const char *task = e->str + 3 + len;
			char status[16];

			snprintf(status, sizeof(status), "%.*s", (int)len,
				 e->str + 3);
			out[i].ok = true;
			out[i].status = jobd_status_parse(status);
			/* Descendants first, before the operator hears "done". */
			if (*task == ':' && rc == 0)
				rc = cascade_run(st, task + 1);
		} else {
			snprintf(out[i].error, sizeof(out[i].error), "%s",
				 e->str);
		}
	}
	freeReplyObject(r);
	return rc;
}

int jobd_store_op(struct jobd_store *st, enum jobd_op op, const char *actor,
		  const int64_t *ids, size_t n, struct jobd_op_result *out)
{
	if ((int)op < 0 || op >= JOBD_OP_COUNT)
		return JOBD_STORE_ERR_INVALID;
	if (st->nsh)
		return jobd_store_sharded_op(st, op, actor, ids, n, out);
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		int rc = op_batch(st, op, actor, ids + off, len, out + off);

		if (rc < 0)
			return rc;
	}
	return 0;
}
