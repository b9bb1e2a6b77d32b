/*
 * module/finish: JOBD.FINISH, finish.lua in C for runs of roots without
 * children that wrote no log lines (read it beside
 * src/store/lua/finish.lua).
 */
#include "store/module/lib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the end of a run reads (lib.lua load_run). */
static const int run_fields[] = { F_STATUS,   F_PARENT,	    F_ROOT,
				  F_TYPE,     F_SYSTEM,	    F_ATTEMPT,
				  F_AWAITING, F_PROGRESS,   F_CHILDREN_TOTAL,
				  F_ERRORS,   F_RUN_SINCE,  F_RUN_MS,
				  F_CHARGED,  F_CLAIMED_AT, F_STARTED_AT };

#define NRUN (int)(sizeof(run_fields) / sizeof(run_fields[0]))

/* finish.lua for job ID when its outcome is done and it has no logs:
 * "finished", "fenced", or "lua" for what only the Lua function does
 * (a parent, a child, a charged run, a run holding a slot of its type's
 * concurrency). */
static const char *finish_done(struct call *c, struct sv id, struct sv at,
			       double progress, long long errors_delta,
			       struct sv checkpoint)
{
	RedisModuleString *fv[20], *sid;
	struct job j;
	const struct sv *v = j.v;
	const char *res = "lua";
	struct limit lim;
	size_t n = 0;
	int stopping;
	long long errors, since;

	if (!job_open(c, &j, keycat(c, K_JOB, id.p, id.n), run_fields, NRUN) ||
	    !(sv_is(v[F_STATUS], STATUS(S_IN_PROGRESS)) ||
	      sv_is(v[F_STATUS], STATUS(S_STOPPING))) ||
	    !sv_same(v[F_ATTEMPT], at) || sv_eq(v[F_AWAITING], "1")) {
		res = "fenced";
		goto out;
	}
	if (!sv_empty(v[F_PARENT]) || sv_num(v[F_CHILDREN_TOTAL]) != 0 ||
	    !sv_empty(v[F_CHARGED]))
		goto out;
	/* A slot of its type's concurrency to give back (lib.lua
	 * release_slot): Lua's. */
	if (limit_of(c, v[F_TYPE], &lim) && lim.c > 0)
		goto out;
	stopping = sv_is(v[F_STATUS], STATUS(S_STOPPING));
	/* set_progress(quiet): a root's progress moves no parent. */
	if (progress >= 0) {
		if (progress > 100)
			progress = 100;
		fv[n++] = N[F_PROGRESS];
		fv[n++] = job_own(&j, str_ll((long long)progress));
	}
	if (checkpoint.n) {
		fv[n++] = N[F_CHECKPOINT];
		fv[n++] = job_own(&j, rm_CreateString(NULL, checkpoint.p,
						      checkpoint.n));
	}
	errors = (long long)sv_num(v[F_ERRORS]);
	if (errors_delta > 0) {
		errors += errors_delta;
		fv[n++] = N[F_ERRORS];
		fv[n++] = job_own(&j, str_ll(errors));
	}
	/* set_status(running -> finished), lib.lua run_start() */
	since = (long long)sv_num(v[F_RUN_SINCE]);
	if (since <= 0)
		since = (long long)sv_num(v[F_CLAIMED_AT]);
	if (since <= 0)
		since = (long long)sv_num(v[F_STARTED_AT]);
	if (since > 0) {
		fv[n++] = N[F_RUN_MS];
		fv[n++] = job_own(&j, str_ll((long long)sv_num(v[F_RUN_MS]) +
					     c->now - since));
	}
	if (sv_num(v[F_RUN_SINCE]) > 0) {
		fv[n++] = N[F_RUN_SINCE];
		fv[n++] = N[V_ZERO];
	}
	fv[n++] = N[F_FINISHED_AT];
	fv[n++] = c->nows;
	if (errors > 0) {
		fv[n++] = N[F_WITH_ERRORS];
		fv[n++] = N[V_ONE];
	}
	stat_add(c, W_FINISHED, v[F_TYPE], 1);
	if (errors > 0)
		stat_add(c, W_ERRORS, v[F_TYPE], 1);
	fv[n++] = N[F_STATUS];
	fv[n++] = N[STATUS(S_FINISHED)];
	hset(c, j.key, j.k, fv, n);
	sid = rm_CreateString(NULL, id.p, id.n);
	ix_status_later(c, sv_eq(v[F_SYSTEM], "1"), S_FINISHED, sid,
			(long long)sv_num(id), 1);
	/* lib.lua set_status(): a root that ends enters retention's index. */
	ended_later(c, sid, (long long)sv_num(id), c->now, 1);
	zset_later(c, ckey(c, CK_LEASES), sid, 0, 0);
	rm_FreeString(NULL, sid);
	count_move(c, stopping ? S_STOPPING : S_IN_PROGRESS, S_FINISHED);
	res = "finished";
out:
	job_close(&j);
	return res;
}

/* One run of JOBD.FINISH's list. */
struct done_run {
	struct sv id, attempt, checkpoint;
	double progress;
	long long errors;
};

/*
 * Parses JOBD.FINISH's list of runs, each "ID ATTEMPT PROGRESS ERRORS
 * LEN:CHECKPOINT\n" (the checkpoint LEN bytes long), into *RUNS (N of
 * them, rm_Free). Returns 0 when a run is malformed.
 */
static int parse_runs(RedisModuleString *list, struct done_run **runs,
		      size_t *n)
{
	size_t len, cap = 0;
	const char *p = rm_StringPtrLen(list, &len), *end = p + len;

	*runs = NULL;
	*n = 0;
	while (p < end) {
		struct done_run r;
		struct sv pr, t;
		long long x, cp;

		if (*n == MAX_BATCH || !token(&p, end, ' ', &r.id) ||
		    !sv_ll(r.id, &x) || x <= 0 ||
		    !token(&p, end, ' ', &r.attempt) || !sv_ll(r.attempt, &x) ||
		    !token(&p, end, ' ', &pr) || !sv_double(pr, &r.progress) ||
		    !token(&p, end, ' ', &t) || !sv_ll(t, &r.errors) ||
		    !token(&p, end, ':', &t) || !sv_ll(t, &cp) || cp < 0 ||
		    cp >= end - p || p[cp] != '\n')
			goto bad;
		r.checkpoint.p = p;
		r.checkpoint.n = (size_t)cp;
		p += cp + 1;
		grow((void **)runs, &cap, *n, sizeof(**runs));
		(*runs)[(*n)++] = r;
	}
	return 1;
bad:
	rm_Free(*runs);
	*runs = NULL;
	return 0;
}

int cmd_finish(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	struct call c;
	struct done_run *runs;
	long long ttl;
	size_t n;
	const char **res;

	/* Checked whole before anything is written. */
	if (argc != 4 || !parse_ll(argv[2], &ttl) ||
	    !parse_runs(argv[3], &runs, &n))
		return rm_ReplyWithError(ctx, "ERR jobd.finish: bad arguments");
	res = xalloc(sizeof(*res) * n);
	call_begin(&c, ctx, argv[1], ttl);
	for (size_t i = 0; i < n; i++) {
		struct done_run *r = &runs[i];

		res[i] = "lua";
		/* A fractional progress too: Lua writes it as its Redis
		 * version formats numbers ("%.17g" in 7.0, shortest in 7.2). */
		if (r->progress == floor(r->progress))
			res[i] = finish_done(&c, r->id, r->attempt, r->progress,
					     r->errors, r->checkpoint);
	}
	rm_Free(runs);
	flush(&c);
	call_end(&c);
	rm_ReplyWithArray(ctx, (long)n);
	for (size_t i = 0; i < n; i++)
		rm_ReplyWithStringBuffer(ctx, res[i], strlen(res[i]));
	rm_Free((void *)res);
	return RM_OK;
}
