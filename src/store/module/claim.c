/*
 * module/claim: JOBD.CLAIM, claim.lua in C for roots without children
 * (read it beside src/store/lua/claim.lua).
 */
#include "store/module/lib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What claim.lua reads of a root claimed alone (load_alone). */
static const int claim_fields[] = { F_STATUS,	     F_TYPE,	   F_SYSTEM,
				    F_LOW_PRIORITY,  F_ATTEMPT,	   F_PROGRESS,
				    F_QUEUED_AT,     F_CREATED_AT, F_STARTED_AT,
				    F_NOT_BEFORE,    F_PAYLOAD,	   F_CHECKPOINT,
				    F_CHILDREN_TOTAL };

#define NCLAIM (int)(sizeof(claim_fields) / sizeof(claim_fields[0]))

/* True when a retry waits in P:delayed with its time come: claim.lua
 * moves those first. */
static int retries_due(struct call *c)
{
	RedisModuleString *k = keyf(c, K_DELAYED);
	RedisModuleKey *key = rm_OpenKey(c->ctx, k, RM_READ);
	int due = 0;

	if (rm_KeyType(key) == RM_KEYTYPE_ZSET &&
	    rm_ZsetFirstInScoreRange(key, -HUGE_VAL, (double)c->now, 0, 0) ==
		    RM_OK) {
		due = !rm_ZsetRangeEndReached(key);
		rm_ZsetRangeStop(key);
	}
	rm_CloseKey(key);
	rm_FreeString(NULL, k);
	return due;
}

/* The first member of roots set KEY and its score, held; NULL if none. */
static RedisModuleString *first_root(RedisModuleKey *key, double *score)
{
	RedisModuleString *m = NULL;

	if (rm_KeyType(key) != RM_KEYTYPE_ZSET ||
	    rm_ZsetFirstInScoreRange(key, -HUGE_VAL, HUGE_VAL, 0, 0) != RM_OK)
		return NULL;
	if (!rm_ZsetRangeEndReached(key))
		m = rm_ZsetRangeCurrentElement(key, score);
	rm_ZsetRangeStop(key);
	return m;
}

/* The score of the second member of roots set KEY; +inf if none. */
static double second_score(RedisModuleKey *key)
{
	double score = HUGE_VAL;

	if (rm_KeyType(key) != RM_KEYTYPE_ZSET ||
	    rm_ZsetFirstInScoreRange(key, -HUGE_VAL, HUGE_VAL, 0, 0) != RM_OK)
		return score;
	if (rm_ZsetRangeNext(key) && !rm_ZsetRangeEndReached(key))
		rm_FreeString(NULL, rm_ZsetRangeCurrentElement(key, &score));
	rm_ZsetRangeStop(key);
	return score;
}

/* lib.lua is_delayed(): whether job SID, with not_before NB, waits in
 * P:delayed. Membership, never its time: a due job moved into its list
 * keeps its not_before until it is claimed, and a clock that steps back
 * reads before it again. The due ones are claim.lua's (retries_due), so
 * a member here waits for its time: an entry of the list left behind
 * by a run that failed and waits for its retry. */
static int is_delayed(struct call *c, RedisModuleString *sid, struct sv nb)
{
	RedisModuleString *k;
	RedisModuleKey *key;
	double score;
	int in;

	if (sv_num(nb) <= 0)
		return 0;
	k = keyf(c, K_DELAYED);
	key = rm_OpenKey(c->ctx, k, RM_READ);
	in = rm_KeyType(key) == RM_KEYTYPE_ZSET &&
	     rm_ZsetScore(key, sid, &score) == RM_OK;
	rm_CloseKey(key);
	rm_FreeString(NULL, k);
	return in;
}

struct claim_args {
	RedisModuleString *instance;
	long long ttl, lease, max, max_low;
};

/* A bulk string reply of V ("" when absent). */
static void reply_sv(RedisModuleCtx *ctx, struct sv v)
{
	rm_ReplyWithStringBuffer(ctx, v.p ? v.p : "", v.n);
}

/* Claims root ID alone (claim.lua, a "=ID" entry of the roots set of
 * priority LOW or an entry of its list of roots without children):
 * replies with its job when it may run (1, lib.lua alone_ok), else 0 (a
 * stale entry); -1 without a write when its type has limits (claim.lua
 * takes, holds or drops it). */
static int claim_alone(struct call *c, const struct claim_args *a,
		       RedisModuleString *sid, long long id, int low)
{
	RedisModuleString *fv[16];
	struct job j;
	const struct sv *v = j.v;
	struct limit lim;
	size_t n = 0;
	int ok = 0;
	long long attempt;

	if (!job_open(c, &j, job_key(c, id), claim_fields, NCLAIM) ||
	    !sv_is(v[F_STATUS], STATUS(S_PENDING)) ||
	    (sv_eq(v[F_LOW_PRIORITY], "1") ? 1 : 0) != low ||
	    !(sv_empty(v[F_LOW_PRIORITY]) || sv_eq(v[F_LOW_PRIORITY], "0") ||
	      sv_eq(v[F_LOW_PRIORITY], "1")) ||
	    sv_num(v[F_CHILDREN_TOTAL]) != 0 ||
	    is_delayed(c, sid, v[F_NOT_BEFORE]))
		goto out; /* stale: the job moved on, or sits elsewhere */
	if (limit_of(c, v[F_TYPE], &lim)) {
		ok = -1; /* its type's limits: claim.lua's part */
		goto out;
	}
	attempt = (long long)sv_num(v[F_ATTEMPT]) + 1;
	fv[n++] = N[F_ATTEMPT];
	fv[n++] = job_own(&j, str_ll(attempt));
	fv[n++] = N[F_INSTANCE];
	fv[n++] = a->instance;
	/* No run_since: the attempt starts at the claim (lib.lua
	 * run_start), and the first claim's time is started_at. */
	if (!sv_empty(v[F_STARTED_AT])) {
		fv[n++] = N[F_CLAIMED_AT];
		fv[n++] = c->nows;
	}
	if (sv_num(v[F_NOT_BEFORE]) > 0) {
		fv[n++] = N[F_NOT_BEFORE];
		fv[n++] = N[V_ZERO];
	}
	if (sv_empty(v[F_STARTED_AT])) {
		struct sv from = sv_empty(v[F_QUEUED_AT]) ? v[F_CREATED_AT] :
							    v[F_QUEUED_AT];

		fv[n++] = N[F_STARTED_AT];
		fv[n++] = c->nows;
		stat_wait(c, v[F_TYPE], c->now - (long long)sv_num(from));
	}
	fv[n++] = N[F_STATUS];
	fv[n++] = N[STATUS(S_IN_PROGRESS)];
	hset(c, j.key, j.k, fv, n);
	/* set_status(pending -> in_progress) */
	ix_status_later(c, sv_eq(v[F_SYSTEM], "1"), S_PENDING, sid, id, 0);
	zset_later(c, ckey(c, CK_LEASES), sid, c->now + a->lease, 1);
	count_move(c, S_PENDING, S_IN_PROGRESS);
	rm_ReplyWithArray(c->ctx, 8);
	rm_ReplyWithLongLong(c->ctx, id);
	rm_ReplyWithLongLong(c->ctx, attempt);
	reply_sv(c->ctx, v[F_TYPE]);
	/* (a job without payload has {}: create writes none) */
	if (sv_empty(v[F_PAYLOAD]))
		rm_ReplyWithStringBuffer(c->ctx, "{}", 2);
	else
		reply_sv(c->ctx, v[F_PAYLOAD]);
	reply_sv(c->ctx, v[F_CHECKPOINT]);
	rm_ReplyWithLongLong(c->ctx, (long long)sv_num(v[F_LOW_PRIORITY]));
	rm_ReplyWithLongLong(c->ctx, id);
	reply_sv(c->ctx, v[F_PROGRESS]);
	ok = 1;
out:
	job_close(&j);
	return ok;
}

/* The head of list LIST of roots without children of priority LOW, whose
 * member "alone" is the least of its roots set (claim.lua pick): as
 * claim_alone(), and popped unless -1. *GONE: the list has no entry
 * left (the member leaves the set); *NONE: it had none to begin with. */
static int claim_head(struct call *c, const struct claim_args *a,
		      RedisModuleKey *list, int low, long long *popped,
		      int *gone, int *none)
{
	RedisModuleString *e = NULL;
	long long id;
	int rc = 0;

	if (rm_KeyType(list) == RM_KEYTYPE_LIST)
		e = rm_ListGet(list, 0);
	if (!e) {
		*gone = *none = 1;
		return 0;
	}
	if (parse_ll(e, &id))
		rc = claim_alone(c, a, e, id, low);
	if (rc >= 0) {
		rm_FreeString(NULL, rm_ListPop(list, RM_LIST_HEAD));
		(*popped)++;
	}
	rm_FreeString(NULL, e);
	*gone = rm_KeyType(list) != RM_KEYTYPE_LIST ||
		rm_ValueLength(list) == 0;
	*none = 0;
	return rc;
}

/* The entries of list LIST (0: none). */
static long long list_len(RedisModuleKey *list)
{
	return rm_KeyType(list) == RM_KEYTYPE_LIST ?
		       (long long)rm_ValueLength(list) :
		       0;
}

/* The member "alone" of roots set KEY (named K), charged for the roots
 * its list served (cmd_claim): its score, replicated exactly (%.17g
 * reads back as the same double), and notified, as claim.lua's ZADD. A
 * member that left with its list's last entry is the ZREM's. */
static void alone_charged(struct call *c, RedisModuleKey *key,
			  RedisModuleString *k)
{
	char sc[32];
	double score;

	if (rm_KeyType(key) != RM_KEYTYPE_ZSET ||
	    rm_ZsetScore(key, N[V_ALONE], &score) != RM_OK)
		return;
	snprintf(sc, sizeof(sc), "%.17g", score);
	rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET, "zadd", k);
	rm_Replicate(c->ctx, "ZADD", "scs", k, sc, N[V_ALONE]);
}

int cmd_claim(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	struct claim_args a;
	struct call c;
	RedisModuleString *rk[2], **pop[2] = { NULL, NULL };
	RedisModuleString *ak[2];
	RedisModuleKey *roots[2], *lists[2];
	size_t npop[2] = { 0, 0 }, cap[2] = { 0, 0 };
	long long est, out = 0, tries = 0, low_taken = 0, lpop[2] = { 0, 0 };
	int handoff = 0, charged[2] = { 0, 0 };
	/* "alone"'s score as charged in this call, written to its set
	 * once (below) rather than once a root served: while it stays
	 * below the next member's (NEXT), "alone" is still the least. */
	int pending[2] = { 0, 0 };
	double charge[2] = { 0, 0 }, next[2] = { 0, 0 };

	if (argc != 8)
		return rm_WrongArity(ctx);
	a.instance = argv[3];
	if (!parse_ll(argv[2], &a.ttl) || !parse_ll(argv[4], &a.lease) ||
	    !parse_ll(argv[5], &a.max) || !parse_ll(argv[6], &a.max_low) ||
	    !parse_ll(argv[7], &est))
		return rm_ReplyWithError(ctx, "ERR jobd.claim: an argument "
					      "is not an integer");
	call_begin(&c, ctx, argv[1], a.ttl);
	rm_ReplyWithArray(ctx, RM_POSTPONED_LEN);
	if (retries_due(&c) || held_due(&c)) {
		handoff = 1;
		goto done;
	}
	rk[0] = keyf(&c, K_ROOTS);
	rk[1] = keyf(&c, K_ROOTS_LOW);
	roots[0] = open_rw(&c, rk[0]);
	roots[1] = open_rw(&c, rk[1]);
	ak[0] = keyf(&c, K_ALONE);
	ak[1] = keyf(&c, K_ALONE_LOW);
	lists[0] = open_rw(&c, ak[0]);
	lists[1] = open_rw(&c, ak[1]);
	while (out < a.max && tries < a.max * 4 + 8) {
		double score = 0;
		int low = 0, rc = 0, gone = 1, none = 0;
		RedisModuleString *m = first_root(roots[0], &score);
		struct sv mv;
		long long id;

		tries++;
		if (!m && low_taken < a.max_low) {
			low = 1;
			m = first_root(roots[1], &score);
		}
		if (!m)
			break;
		mv = sv_of(m);
		if (sv_eq(mv, "alone") && pending[low]) {
			if (charge[low] >= next[low]) {
				/* Charged past the next member, which
				 * goes first (at the same score too):
				 * the set as claim.lua would have it. */
				rm_ZsetAdd(roots[low], charge[low], m, NULL);
				pending[low] = 0;
				rm_FreeString(NULL, m);
				tries--;
				continue;
			}
			score = charge[low];
		}
		if (sv_eq(mv, "alone")) {
			/* The list's head (claim.lua pick), charged the
			 * estimate over the entries the list holds for a
			 * root it serves: claim.lua's double, in the same
			 * order. The member goes with the list's last
			 * entry, and its charge stays in the floor. */
			long long w = list_len(lists[low]);
			double to =
				score + (double)est / (double)(w > 1 ? w : 1);

			rc = claim_head(&c, &a, lists[low], low, &lpop[low],
					&gone, &none);
			if (rc <= 0)
				to = score; /* stale, or claim.lua's */
			if (gone && !none) {
				vr_served(&c, (long long)to, low);
				pending[low] = 0;
			} else if (to != score || pending[low]) {
				if (!pending[low])
					next[low] = second_score(roots[low]);
				charge[low] = to;
				pending[low] = 1;
				charged[low] = 1;
			}
		} else if (mv.n < 2 || mv.p[0] != '=') {
			/* A root with a ready queue: claim.lua's part. */
			rm_FreeString(NULL, m);
			handoff = 1;
			break;
		} else {
			RedisModuleString *sid =
				rm_CreateString(NULL, mv.p + 1, mv.n - 1);

			rc = parse_ll(sid, &id) ?
				     claim_alone(&c, &a, sid, id, low) :
				     0;
			rm_FreeString(NULL, sid);
		}
		if (rc < 0) {
			/* Left where it is, for claim.lua. */
			rm_FreeString(NULL, m);
			handoff = 1;
			break;
		}
		if (gone) {
			rm_ZsetRem(roots[low], m, NULL);
			grow((void **)&pop[low], &cap[low], npop[low],
			     sizeof(*pop[0]));
			pop[low][npop[low]++] = rm_HoldString(NULL, m);
		}
		rm_FreeString(NULL, m);
		if (none) {
			/* "alone" with no list: claim.lua pops the next
			 * member in the same try. */
			tries--;
			continue;
		}
		vr_served(&c, (long long)score, low);
		if (rc > 0) {
			out++;
			if (low)
				low_taken++;
		}
	}
	for (int low = 0; low < 2; low++)
		if (pending[low])
			rm_ZsetAdd(roots[low], charge[low], N[V_ALONE], NULL);
	/* Out of tries with room left: claim.lua's wake-up. */
	if (!handoff && out < a.max && tries >= a.max * 4 + 8)
		c.wake = 1;
	/* The pops (ZPOPMIN in claim.lua), one ZREM per set; one LPOP per
	 * list. */
	for (int low = 0; low < 2; low++) {
		if (lpop[low]) {
			rm_Replicate(ctx, "LPOP", "sl", ak[low], lpop[low]);
			rm_NotifyKeyspaceEvent(ctx, RM_NOTIFY_LIST, "lpop",
					       ak[low]);
			notify_if_gone(&c, lists[low], ak[low]);
		}
		rm_CloseKey(lists[low]);
		rm_FreeString(NULL, ak[low]);
		if (charged[low])
			alone_charged(&c, roots[low], rk[low]);
		if (npop[low]) {
			rm_Replicate(ctx, "ZREM", "sv", rk[low], pop[low],
				     npop[low]);
			rm_NotifyKeyspaceEvent(ctx, RM_NOTIFY_ZSET, "zpopmin",
					       rk[low]);
			notify_if_gone(&c, roots[low], rk[low]);
		}
		rm_CloseKey(roots[low]);
		for (size_t i = 0; i < npop[low]; i++)
			rm_FreeString(NULL, pop[low][i]);
		rm_Free(pop[low]);
		rm_FreeString(NULL, rk[low]);
	}
done:
	if (handoff)
		rm_ReplyWithSimpleString(ctx, "lua");
	rm_ReplySetArrayLength(ctx, out + handoff);
	flush(&c);
	call_end(&c);
	return RM_OK;
}
