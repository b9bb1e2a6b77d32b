/*
 * jobd_module.c: the hot path of jobd's state machine as a native Redis
 * module (docs/redis-module.md). Optional: without it every transition
 * runs as a Lua function (src/store/lua/), with it create, claim and finish of
 * the common job (a root job without children) run here, at about half
 * the Redis CPU, and everything else still runs in Lua.
 *
 * Each command writes exactly what its Lua function writes; what it does
 * not handle it hands back, and the client runs the Lua function for that
 * part:
 *
 *   JOBD.VERSION   the version the client must match, else it uses Lua
 *   JOBD.CREATE    create.lua; only batches of root jobs, else "+lua"
 *   JOBD.CLAIM     claim.lua; claims while the next ready entry is a root
 *                  without children and no retry is due, then appends
 *                  "+lua" if it stopped early for the Lua function
 *   JOBD.FINISH    finish.lua for runs done without log lines, listed in
 *                  one argument; per run "lua" for all but a root job
 *                  without children (and for a fractional progress)
 *
 * CLAIM takes the arguments of claim.lua. CREATE takes create.lua's, except
 * that its jobs come in one list argument (parse_jobs()), and it answers one
 * id per job, negative when the key had it already, where create.lua answers
 * {id, existed}. FINISH takes its runs in one list too (parse_runs()): an
 * argument per field would cost Redis a string made and freed for each.
 *
 * Writes go through the key API and are replicated by hand as their
 * effects with literal values (rm_Replicate), as Redis replicates a Lua
 * function's effects: the replica and the AOF never run module code.
 * tests/module.sh compares every key written by the module with the Lua
 * functions' on the same work, and a replica's DEBUG DIGEST with the
 * primary's.
 */
#include "store/module/rm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/module/module.h"
#include "store/scripts.h"

#define RM_DEFINE(ret, name, params) ret(*rm_##name) params;
RM_FUNCTIONS(RM_DEFINE)
#undef RM_DEFINE

int rm_init(RedisModuleCtx *ctx, const char *name, int version)
{
	int (*get)(const char *, void *) =
		(int (*)(const char *, void *))((void **)ctx)[0];

#define RM_FETCH(ret, fn, params)                               \
	if (get("RedisModule_" #fn, (void *)&rm_##fn) != RM_OK) \
		return RM_ERR;
	RM_FUNCTIONS(RM_FETCH)
#undef RM_FETCH
	if (rm_IsModuleNameBusy(name))
		return RM_ERR;
	rm_SetModuleAttribs(ctx, name, version, RM_APIVER_1);
	return RM_OK;
}

#define MAX_BATCH 10000		 /* jobs per call, as the Lua functions take */
#define LOG2x4 5.770780163555854 /* lib.lua: four buckets per doubling */
#define ROLL_GRACE 5000		 /* lib.lua: ms after a minute's end */
#define ROLL_MAX 10		 /* lib.lua: minutes rolled up per call */

/* ---- small helpers ----------------------------------------------------- */

/* A value borrowed from a RedisModuleString; p NULL: absent. */
struct sv {
	const char *p;
	size_t n;
};

static struct sv sv_of(const RedisModuleString *s)
{
	struct sv v = { NULL, 0 };

	if (s)
		v.p = rm_StringPtrLen(s, &v.n);
	return v;
}

static int sv_eq(struct sv v, const char *s)
{
	size_t n = strlen(s);

	return v.p && v.n == n && memcmp(v.p, s, n) == 0;
}

/* Present and equal to B. */
static int sv_same(struct sv a, struct sv b)
{
	return a.p && a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int sv_empty(struct sv v)
{
	return !v.p || v.n == 0;
}

/* A whole integer (an optional '-' and digits) into *V. */
static int sv_ll(struct sv t, long long *v)
{
	size_t i = t.n && t.p[0] == '-';
	long long x = 0;

	if (i == t.n || t.n > 18)
		return 0;
	for (; i < t.n; i++) {
		if (t.p[i] < '0' || t.p[i] > '9')
			return 0;
		x = x * 10 + (t.p[i] - '0');
	}
	*v = t.p[0] == '-' ? -x : x;
	return 1;
}

/* lib.lua num(): absent, empty or not a number is 0. */
static double sv_num(struct sv v)
{
	char buf[64];
	char *end;
	double d;
	long long x;

	if (sv_empty(v) || v.n >= sizeof(buf))
		return 0;
	/* Mostly a time or a count: digits, read without strtod() (the
	 * conversion rounds as strtod() would). */
	if (sv_ll(v, &x))
		return (double)x;
	memcpy(buf, v.p, v.n);
	buf[v.n] = 0;
	d = strtod(buf, &end);
	return *end ? 0 : d;
}

/* A number as strtod() reads it, whole, into *D. */
static int sv_double(struct sv t, double *d)
{
	char buf[32], *e;

	if (t.n >= sizeof(buf))
		return 0;
	memcpy(buf, t.p, t.n);
	buf[t.n] = 0;
	*d = strtod(buf, &e);
	return *e == 0 && !isnan(*d);
}

/* The text before the next SEP in [*P, END) (not empty), and *P past
 * the SEP; 0 when there is none. */
static int token(const char **p, const char *end, char sep, struct sv *t)
{
	const char *q = memchr(*p, sep, (size_t)(end - *p));

	if (!q || q == *p)
		return 0;
	t->p = *p;
	t->n = (size_t)(q - *p);
	*p = q + 1;
	return 1;
}

static RedisModuleString *str_ll(long long v)
{
	return rm_CreateStringFromLongLong(NULL, v);
}

static RedisModuleString *str_c(const char *s)
{
	return rm_CreateString(NULL, s, strlen(s));
}

static void *xalloc(size_t n)
{
	return rm_Alloc(n ? n : 1);
}

/* Grows *V (elements of SIZE bytes, *CAP of them) to hold one more. */
static void grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 16;
	*v = rm_Realloc(*v, *cap * size);
}

/* ---- interned field names ---------------------------------------------- */

enum {
	F_STATUS,
	F_PARENT,
	F_ROOT,
	F_TYPE,
	F_SYSTEM,
	F_LOW,
	F_ATTEMPT,
	F_AWAITING,
	F_PROGRESS,
	F_CH_TOTAL,
	F_ERRORS,
	F_RUN_SINCE,
	F_RUN_MS,
	F_CHARGED,
	F_NOT_BEFORE,
	F_QUEUED_AT,
	F_CREATED_AT,
	F_STARTED_AT,
	F_PAYLOAD,
	F_CHECKPOINT,
	F_INSTANCE,
	F_CLAIMED_AT,
	F_FINISHED_AT,
	F_WITH_ERRORS,
	F_ID,
	F_KEY,
	F_RUN_BY,
	F_SOURCE,
	F_STOPPABLE,
	F_RESTARTABLE,
	F_RETRIES,
	F_BACKOFF_MS,
	F_CREATED_BY,
	V_ZERO,
	V_ONE,
	V_IN_PROGRESS,
	V_FINISHED,
	V_PENDING,
	V_EMPTY,
	NNAMES
};
static const char *const names[NNAMES] = {
	[F_STATUS] = "status",
	[F_PARENT] = "parent",
	[F_ROOT] = "root",
	[F_TYPE] = "type",
	[F_SYSTEM] = "system",
	[F_LOW] = "low_priority",
	[F_ATTEMPT] = "attempt",
	[F_AWAITING] = "awaiting",
	[F_PROGRESS] = "progress",
	[F_CH_TOTAL] = "children_total",
	[F_ERRORS] = "errors",
	[F_RUN_SINCE] = "run_since",
	[F_RUN_MS] = "run_ms",
	[F_CHARGED] = "charged",
	[F_NOT_BEFORE] = "not_before",
	[F_QUEUED_AT] = "queued_at",
	[F_CREATED_AT] = "created_at",
	[F_STARTED_AT] = "started_at",
	[F_PAYLOAD] = "payload",
	[F_CHECKPOINT] = "checkpoint",
	[F_INSTANCE] = "instance",
	[F_CLAIMED_AT] = "claimed_at",
	[F_FINISHED_AT] = "finished_at",
	[F_WITH_ERRORS] = "with_errors",
	[F_ID] = "id",
	[F_KEY] = "key",
	[F_RUN_BY] = "run_by",
	[F_SOURCE] = "source",
	[F_STOPPABLE] = "stoppable",
	[F_RESTARTABLE] = "restartable",
	[F_RETRIES] = "retries",
	[F_BACKOFF_MS] = "backoff_ms",
	[F_CREATED_BY] = "created_by",
	[V_ZERO] = "0",
	[V_ONE] = "1",
	[V_IN_PROGRESS] = "in_progress",
	[V_FINISHED] = "finished",
	[V_PENDING] = "pending",
	[V_EMPTY] = "",
};
static RedisModuleString *N[NNAMES];
static size_t name_len[NNAMES];

/* What claim.lua reads of a root claimed alone (load_alone). */
static const int claim_fields[] = { F_STATUS,	  F_TYPE,	F_SYSTEM,
				    F_LOW,	  F_ATTEMPT,	F_PROGRESS,
				    F_QUEUED_AT,  F_CREATED_AT, F_STARTED_AT,
				    F_NOT_BEFORE, F_PAYLOAD,	F_CHECKPOINT };

#define NCLAIM (int)(sizeof(claim_fields) / sizeof(claim_fields[0]))

/* What the end of a run reads (lib.lua load_run). */
static const int run_fields[] = { F_STATUS,   F_PARENT,	    F_ROOT,
				  F_TYPE,     F_SYSTEM,	    F_ATTEMPT,
				  F_AWAITING, F_PROGRESS,   F_CH_TOTAL,
				  F_ERRORS,   F_RUN_SINCE,  F_RUN_MS,
				  F_CHARGED,  F_CLAIMED_AT, F_STARTED_AT };

#define NRUN (int)(sizeof(run_fields) / sizeof(run_fields[0]))

/* The status counters of P:count (lib.lua count_add). */
enum { ST_PENDING, ST_IN_PROGRESS, ST_STOPPING, ST_FINISHED, NST };
static const char *const status_names[NST] = { "pending", "in_progress",
					       "stopping", "finished" };

/* ---- per call state (lib.lua begin / flush) ---------------------------- */

/* Keys every job of a call may use, made once a call (ckey()). */
enum {
	K_LEASES,
	K_PENDING_RU,
	K_PENDING_RS,
	K_FINISHED_RU,
	K_FINISHED_RS,
	K_ENDED,
	NKEYS
};
static const char *const key_names[NKEYS] = {
	[K_LEASES] = ":leases",
	[K_PENDING_RU] = ":ix:ru:s:pending",
	[K_PENDING_RS] = ":ix:rs:s:pending",
	[K_FINISHED_RU] = ":ix:ru:s:finished",
	[K_FINISHED_RS] = ":ix:rs:s:finished",
	[K_ENDED] = ":ended",
};

/* One deferred sorted-set write (lib.lua zset_later). */
struct zop {
	RedisModuleString *member; /* held */
	long long score;
	int add; /* 0: remove */
};

struct zkey {
	char *name;
	size_t len;
	int churn; /* P:leases: a skip list whatever its size */
	struct zop *ops;
	size_t n, cap;
};

struct counter {
	char *name;
	long long n;
};

struct counters {
	struct counter *v;
	size_t n, cap;
};

struct wait {
	char *type;
	long long n, sum, min, max;
	long long hist[96];
};

struct call {
	RedisModuleCtx *ctx;
	const char *P;
	size_t plen;
	long long now, minute, ttl;
	RedisModuleString *nows;
	struct zkey *zk;
	size_t nzk, capzk;
	long long count[NST];
	int have_vr, wake;
	long long vr_last;
	struct counters stats, mins, maxs; /* lib.lua STATS, STATS_MIN/MAX */
	struct wait *waits;
	size_t nwaits, capwaits;
	RedisModuleString **alone[2]; /* create: new "=ID" roots members */
	size_t nalone[2], capalone[2];
	RedisModuleString *keys[NKEYS]; /* ckey(), made on first use */
	RedisModuleString *type_ix;	/* create: the last type's index key */
	char *type_ix_for;		/* ... its class and type, "ru|noop" */
};

static void call_begin(struct call *c, RedisModuleCtx *ctx,
		       RedisModuleString *prefix, long long ttl)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->P = rm_StringPtrLen(prefix, &c->plen);
	c->now = rm_Milliseconds();
	c->minute = c->now - c->now % 60000;
	c->ttl = ttl;
	c->nows = str_ll(c->now);
}

static void counters_free(struct counters *s)
{
	for (size_t i = 0; i < s->n; i++)
		rm_Free(s->v[i].name);
	rm_Free(s->v);
	memset(s, 0, sizeof(*s));
}

static void call_end(struct call *c)
{
	for (int i = 0; i < NKEYS; i++)
		if (c->keys[i])
			rm_FreeString(NULL, c->keys[i]);
	if (c->type_ix)
		rm_FreeString(NULL, c->type_ix);
	rm_Free(c->type_ix_for);
	for (size_t i = 0; i < c->nzk; i++) {
		for (size_t j = 0; j < c->zk[i].n; j++)
			rm_FreeString(NULL, c->zk[i].ops[j].member);
		rm_Free(c->zk[i].ops);
		rm_Free(c->zk[i].name);
	}
	rm_Free(c->zk);
	counters_free(&c->stats);
	counters_free(&c->mins);
	counters_free(&c->maxs);
	for (size_t i = 0; i < c->nwaits; i++)
		rm_Free(c->waits[i].type);
	rm_Free(c->waits);
	rm_FreeString(NULL, c->nows);
}

/* PREFIX + MID + the N bytes at S. */
static RedisModuleString *keycat(struct call *c, const char *mid, const char *s,
				 size_t n)
{
	size_t ml = strlen(mid), len = c->plen + ml + n;
	char buf[256], *p = len <= sizeof(buf) ? buf : xalloc(len);
	RedisModuleString *k;

	memcpy(p, c->P, c->plen);
	memcpy(p + c->plen, mid, ml);
	memcpy(p + c->plen + ml, s, n);
	k = rm_CreateString(NULL, p, len);
	if (p != buf)
		rm_Free(p);
	return k;
}

/* The key PREFIX + FMT... as a new string. */
static RedisModuleString *keyf(struct call *c, const char *fmt, ...)
{
	char buf[256], *s = buf;
	va_list ap;
	int n;
	RedisModuleString *k;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf)) {
		s = xalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	k = keycat(c, "", s, (size_t)n);
	if (s != buf)
		rm_Free(s);
	return k;
}

/* ID in decimal at the end of BUF (24 bytes, one left free before it);
 * returns where it starts. snprintf cost a job hundreds of instructions. */
static char *id_text(char *buf, long long id)
{
	char *p = buf + 23;
	unsigned long long v = id < 0 ? 0 - (unsigned long long)id :
					(unsigned long long)id;

	*p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	if (id < 0)
		*--p = '-';
	return p;
}

/* P:job:ID */
static RedisModuleString *job_key(struct call *c, long long id)
{
	char buf[24], *p = id_text(buf, id);

	return keycat(c, ":job:", p, (size_t)(buf + 23 - p));
}

/* Key WHICH of the call's prefix; the call owns it. */
static RedisModuleString *ckey(struct call *c, int which)
{
	if (!c->keys[which])
		c->keys[which] = keycat(c, key_names[which], "", 0);
	return c->keys[which];
}

static char *dup_sv(struct sv v)
{
	char *s = xalloc(v.n + 1);

	if (v.n)
		memcpy(s, v.p, v.n);
	s[v.n] = 0;
	return s;
}

static void zset_later(struct call *c, RedisModuleString *key,
		       RedisModuleString *member, long long score, int add)
{
	size_t kl;
	const char *k = rm_StringPtrLen(key, &kl);
	struct zkey *z = NULL;

	for (size_t i = c->nzk; i-- > 0;)
		if (c->zk[i].len == kl && memcmp(c->zk[i].name, k, kl) == 0) {
			z = &c->zk[i];
			break;
		}
	if (!z) {
		grow((void **)&c->zk, &c->capzk, c->nzk, sizeof(*c->zk));
		z = &c->zk[c->nzk++];
		memset(z, 0, sizeof(*z));
		z->name = dup_sv((struct sv){ k, kl });
		z->len = kl;
		z->churn = kl == c->plen + 7 &&
			   memcmp(k + c->plen, ":leases", 7) == 0;
	}
	grow((void **)&z->ops, &z->cap, z->n, sizeof(*z->ops));
	z->ops[z->n].member = rm_HoldString(NULL, member);
	z->ops[z->n].score = score;
	z->ops[z->n].add = add;
	z->n++;
}

static void counter_add(struct counters *s, const char *name, long long n)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0) {
			s->v[i].n += n;
			return;
		}
	grow((void **)&s->v, &s->cap, s->n, sizeof(*s->v));
	s->v[s->n].name = dup_sv((struct sv){ name, strlen(name) });
	s->v[s->n].n = n;
	s->n++;
}

/* Lowers (MAX 0) or raises (MAX 1) the value NAME of S to N. */
static void counter_extreme(struct counters *s, const char *name, long long n,
			    int max)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0) {
			if (max ? n > s->v[i].n : n < s->v[i].n)
				s->v[i].n = n;
			return;
		}
	counter_add(s, name, n);
}

/* "A|B" (or "A_B" with SEP '_'), allocated. */
static char *join(const char *a, char sep, const char *b, size_t bn)
{
	size_t an = strlen(a);
	char *s = xalloc(an + 1 + bn + 1);

	memcpy(s, a, an);
	s[an] = sep;
	memcpy(s + an + 1, b, bn);
	s[an + 1 + bn] = 0;
	return s;
}

/* lib.lua stat_add(): the field and the field of its type. */
static void stat_add(struct call *c, const char *field, struct sv type,
		     long long n)
{
	char *f = join(field, '|', type.p ? type.p : "", type.n);

	counter_add(&c->stats, field, n);
	counter_add(&c->stats, f, n);
	rm_Free(f);
}

static void stat_wait(struct call *c, struct sv type, long long ms)
{
	struct wait *w = NULL;
	int b = 0;

	for (size_t i = 0; i < c->nwaits; i++)
		if (strlen(c->waits[i].type) == type.n &&
		    memcmp(c->waits[i].type, type.p, type.n) == 0) {
			w = &c->waits[i];
			break;
		}
	if (!w) {
		grow((void **)&c->waits, &c->capwaits, c->nwaits,
		     sizeof(*c->waits));
		w = &c->waits[c->nwaits++];
		memset(w, 0, sizeof(*w));
		w->type = dup_sv(type);
		w->min = w->max = ms;
	}
	w->n++;
	w->sum += ms;
	if (ms < w->min)
		w->min = ms;
	if (ms > w->max)
		w->max = ms;
	if (ms > 0) {
		double d = floor(log((double)ms + 1) * LOG2x4);

		b = d > 95 ? 95 : (int)d;
	}
	w->hist[b]++;
}

static void waits_to_stats(struct call *c)
{
	for (size_t i = 0; i < c->nwaits; i++) {
		struct wait *w = &c->waits[i];
		struct sv ty = { w->type, strlen(w->type) };
		char *f;

		stat_add(c, "started", ty, w->n);
		stat_add(c, "wait_sum", ty, w->sum);
		for (int b = 0; b < 96; b++)
			if (w->hist[b]) {
				char h[8];

				snprintf(h, sizeof(h), "h%d", b);
				stat_add(c, h, ty, w->hist[b]);
			}
		f = join("wait", '|', ty.p, ty.n);
		counter_extreme(&c->mins, "wait", w->min, 0);
		counter_extreme(&c->mins, f, w->min, 0);
		counter_extreme(&c->maxs, "wait", w->max, 1);
		counter_extreme(&c->maxs, f, w->max, 1);
		rm_Free(f);
	}
}

/* ---- writes, each replicated as its effect ------------------------------ */

static RedisModuleKey *open_rw(struct call *c, RedisModuleString *k)
{
	return rm_OpenKey(c->ctx, k, RM_READ | RM_WRITE);
}

/* HSET of N fields and values (FV), in one HashSet call per 8 pairs. */
static void hset(struct call *c, RedisModuleKey *key, RedisModuleString *k,
		 RedisModuleString **fv, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		RedisModuleString *a[17] = { 0 };

		for (size_t j = 0; j < 16 && i + j < n; j++)
			a[j] = fv[i + j];
		rm_HashSet(key, RM_HASH_NONE, a[0], a[1], a[2], a[3], a[4],
			   a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
			   a[13], a[14], a[15], NULL);
	}
	rm_Replicate(c->ctx, "HSET", "sv", k, fv, n);
	rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_HASH, "hset", k);
}

static long long hash_ll(RedisModuleKey *key, RedisModuleString *f, int *found)
{
	RedisModuleString *v = NULL;
	long long n = 0;

	rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
	*found = v != NULL;
	if (v) {
		if (rm_StringToLongLong(v, &n) != RM_OK)
			n = 0;
		rm_FreeString(NULL, v);
	}
	return n;
}

/*
 * A sorted set that takes many members at once, or churns (the running
 * jobs, the roots waiting), is best a skip list from the start: a small
 * set is a listpack, where every insert scans for its place, and Redis
 * converts it only once it has zset-max-listpack-entries (128). A member
 * longer than zset-max-listpack-value (64) converts it at once, and a
 * skip list stays one when that member goes: nothing of it is left or
 * replicated.
 */
#define ZADD_BULK 32
static RedisModuleString *skiplist_member;
static RedisModuleString *table_field, *table_value; /* write_window() */

/* Adds the long member, before the adds (a set left empty in between
 * would be deleted, and made anew as a listpack). */
static void skiplist_begin(RedisModuleKey *key)
{
	rm_ZsetAdd(key, 0, skiplist_member, NULL);
}

/* Removes it, after the adds. */
static void skiplist_end(RedisModuleKey *key)
{
	rm_ZsetRem(key, skiplist_member, NULL);
}

/* The deferred sorted-set writes, one ZADD or ZREM per run of the same
 * kind per key, in order (the last write of a member wins). */
static void zflush(struct call *c)
{
	for (size_t i = 0; i < c->nzk; i++) {
		struct zkey *z = &c->zk[i];
		RedisModuleString *k = rm_CreateString(NULL, z->name, z->len);
		RedisModuleKey *key = open_rw(c, k);
		RedisModuleString **v = xalloc(sizeof(*v) * 2 * z->n);
		RedisModuleString **own = xalloc(sizeof(*own) * z->n);
		size_t j = 0, no = 0;

		while (j < z->n) {
			int add = z->ops[j].add, changed = 0;
			size_t nv = 0, from = j;

			while (j < z->n && z->ops[j].add == add)
				j++;
			int bulk = add &&
				   (j - from >= ZADD_BULK ||
				    (z->churn &&
				     rm_KeyType(key) == RM_KEYTYPE_EMPTY));

			if (bulk)
				skiplist_begin(key);
			for (size_t x = from; x < j; x++) {
				struct zop *o = &z->ops[x];
				int fl = 0;

				if (add) {
					rm_ZsetAdd(key, (double)o->score,
						   o->member, &fl);
					v[nv++] = own[no++] = str_ll(o->score);
				} else if (rm_ZsetRem(key, o->member, &fl) !=
						   RM_OK ||
					   !fl) {
					continue;
				}
				changed = 1;
				v[nv++] = o->member;
			}
			if (bulk)
				skiplist_end(key);
			if (changed) {
				rm_Replicate(c->ctx, add ? "ZADD" : "ZREM",
					     "sv", k, v, nv);
				rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET,
						       add ? "zadd" : "zrem",
						       k);
			}
		}
		rm_CloseKey(key);
		for (size_t x = 0; x < no; x++)
			rm_FreeString(NULL, own[x]);
		rm_Free(own);
		rm_Free(v);
		rm_FreeString(NULL, k);
	}
}

static void set_string(struct call *c, RedisModuleString *k,
		       RedisModuleString *v)
{
	RedisModuleKey *key = open_rw(c, k);

	rm_StringSet(key, v);
	rm_CloseKey(key);
	rm_Replicate(c->ctx, "SET", "ss", k, v);
	rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_STRING, "set", k);
}

/* The string value of open KEY as a number (lib.lua tonumber(GET));
 * *found 0: absent. */
static long long key_ll(RedisModuleKey *key, int *found)
{
	long long n = 0;

	*found = 0;
	if (rm_KeyType(key) == RM_KEYTYPE_STRING) {
		size_t len;
		char buf[32];
		const char *p = rm_StringDMA(key, &len, RM_READ);

		*found = 1;
		if (len < sizeof(buf)) {
			memcpy(buf, p, len);
			buf[len] = 0;
			n = (long long)strtod(buf, NULL);
		}
	}
	return n;
}

/* String key K as a number; *found 0: absent. */
static long long get_ll(struct call *c, RedisModuleString *k, int *found)
{
	RedisModuleKey *key = rm_OpenKey(c->ctx, k, RM_READ);
	long long n = key_ll(key, found);

	rm_CloseKey(key);
	return n;
}

/* HINCRBY of every counter of S (one replicated HSET of the results);
 * true when one of them created its field. */
static int hincr_all(RedisModuleKey *key, const struct counters *s,
		     RedisModuleString **fv, size_t *nfv)
{
	int fresh = 0;

	for (size_t i = 0; i < s->n; i++) {
		RedisModuleString *f = str_c(s->v[i].name);
		int found;
		long long v = hash_ll(key, f, &found) + s->v[i].n;

		if (v == s->v[i].n)
			fresh = 1;
		fv[(*nfv)++] = f;
		fv[(*nfv)++] = str_ll(v);
	}
	return fresh;
}

/* lib.lua write_window(): counters into window K (START, SPAN ms long,
 * listed in P..SET), its minima and maxima; the call that creates it
 * registers it and sets its expiry. */
static void write_window(struct call *c, RedisModuleString *k, long long start,
			 long long span, const char *set,
			 const struct counters *counters,
			 const struct counters *mins,
			 const struct counters *maxs)
{
	RedisModuleKey *key = open_rw(c, k);
	size_t cap = 2 * (counters->n + mins->n + maxs->n), nfv = 0;
	RedisModuleString **fv = xalloc(sizeof(*fv) * cap);
	int fresh;

	/*
	 * A window has a hundred fields or so (per type, per waiting-time
	 * bucket), and every call reads and writes a dozen of them: as a
	 * listpack each access scans it. A value longer than
	 * hash-max-listpack-value (64) makes it a hash table, which it stays
	 * when that field goes; nothing of it is left or replicated.
	 */
	rm_HashSet(key, RM_HASH_NONE, table_field, table_value, NULL);
	fresh = hincr_all(key, counters, fv, &nfv);

	for (int mx = 0; mx < 2; mx++) {
		const struct counters *s = mx ? maxs : mins;

		for (size_t i = 0; i < s->n; i++) {
			char *name =
				join(s->v[i].name, '_', mx ? "max" : "min", 3);
			RedisModuleString *f = str_c(name);
			int found;
			long long cur;

			rm_Free(name);
			cur = hash_ll(key, f, &found);
			if (!found ||
			    (mx ? s->v[i].n > cur : s->v[i].n < cur)) {
				fv[nfv++] = f;
				fv[nfv++] = str_ll(s->v[i].n);
			} else {
				rm_FreeString(NULL, f);
			}
		}
	}
	if (nfv)
		hset(c, key, k, fv, nfv);
	rm_HashSet(key, RM_HASH_NONE, table_field, RM_HASH_DELETE, NULL);
	if (fresh) {
		long long at = start + span + c->ttl;
		RedisModuleString *setk = keycat(c, set, "", 0);
		RedisModuleString *m = str_ll(start);
		RedisModuleKey *sk;

		rm_SetAbsExpire(key, at);
		rm_Replicate(c->ctx, "PEXPIREAT", "sl", k, at);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_GENERIC, "expire", k);
		sk = open_rw(c, setk);
		rm_ZsetAdd(sk, (double)start, m, NULL);
		rm_CloseKey(sk);
		rm_Replicate(c->ctx, "ZADD", "sls", setk, start, m);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET, "zadd", setk);
		rm_FreeString(NULL, m);
		rm_FreeString(NULL, setk);
	}
	rm_CloseKey(key);
	for (size_t i = 0; i < nfv; i++)
		rm_FreeString(NULL, fv[i]);
	rm_Free(fv);
}

static void write_hour(struct call *c, long long m,
		       const struct counters *counters,
		       const struct counters *mins, const struct counters *maxs)
{
	long long hour = m - m % 3600000;
	RedisModuleString *k = keyf(c, ":stats:h:%lld", hour);

	write_window(c, k, hour, 3600000, ":stats:hours", counters, mins, maxs);
	rm_FreeString(NULL, k);
}

/* lib.lua roll_mark(). */
static long long roll_mark(struct call *c)
{
	RedisModuleString *k = keyf(c, ":stats:rolled");
	int found;
	long long done = get_ll(c, k, &found);

	if (!found) {
		RedisModuleString *mk = keyf(c, ":stats:minutes");
		RedisModuleKey *key = rm_OpenKey(c->ctx, mk, RM_READ);
		RedisModuleString *v;

		done = c->minute;
		if (rm_KeyType(key) == RM_KEYTYPE_EMPTY)
			done = c->minute - 60000;
		rm_CloseKey(key);
		rm_FreeString(NULL, mk);
		v = str_ll(done);
		set_string(c, k, v);
		rm_FreeString(NULL, v);
	}
	rm_FreeString(NULL, k);
	return done;
}

struct minute_fields {
	struct counters counters, mins, maxs;
};

static void minute_field(RedisModuleKey *key, RedisModuleString *field,
			 RedisModuleString *value, void *pd)
{
	struct minute_fields *m = pd;
	struct sv f = sv_of(field);
	long long x;
	char *name;

	(void)key;
	/* Only integers (a hand-edited field would fail HINCRBY). */
	if (!value || rm_StringToLongLong(value, &x) != RM_OK)
		return;
	name = dup_sv(f);
	/* lib.lua minmax_field() */
	if (f.n > 4 && (sv_eq(f, "wait_min") || sv_eq(f, "wait_max") ||
			strncmp(name, "wait|", 5) == 0)) {
		const char *which = name + f.n - 3;

		if (strcmp(which, "min") == 0 || strcmp(which, "max") == 0) {
			int max = which[1] == 'a';

			name[f.n - 4] = 0;
			counter_add(max ? &m->maxs : &m->mins, name, x);
			rm_Free(name);
			return;
		}
	}
	counter_add(&m->counters, name, x);
	rm_Free(name);
}

/* lib.lua roll_up(): closed minutes after DONE into their hours. */
static void roll_up(struct call *c, long long done)
{
	long long last = c->now - ROLL_GRACE - 60000;
	long long mins[ROLL_MAX];
	int n = 0;
	RedisModuleString *mk, *rk, *v;
	RedisModuleKey *key;

	last -= last % 60000;
	if (done >= last)
		return;
	mk = keyf(c, ":stats:minutes");
	key = rm_OpenKey(c->ctx, mk, RM_READ);
	if (rm_KeyType(key) == RM_KEYTYPE_ZSET &&
	    rm_ZsetFirstInScoreRange(key, (double)done, (double)last, 1, 0) ==
		    RM_OK) {
		while (n < ROLL_MAX && !rm_ZsetRangeEndReached(key)) {
			double score;
			RedisModuleString *e =
				rm_ZsetRangeCurrentElement(key, &score);
			long long m;

			if (rm_StringToLongLong(e, &m) == RM_OK)
				mins[n++] = m;
			rm_FreeString(NULL, e);
			rm_ZsetRangeNext(key);
		}
		rm_ZsetRangeStop(key);
	}
	rm_CloseKey(key);
	rm_FreeString(NULL, mk);
	for (int i = 0; i < n; i++) {
		struct minute_fields f;
		RedisModuleString *k = keyf(c, ":stats:m:%lld", mins[i]);
		RedisModuleScanCursor *cur = rm_ScanCursorCreate();

		memset(&f, 0, sizeof(f));
		key = rm_OpenKey(c->ctx, k, RM_READ);
		if (rm_KeyType(key) == RM_KEYTYPE_HASH)
			while (rm_ScanKey(key, cur, minute_field, &f))
				;
		rm_CloseKey(key);
		rm_ScanCursorDestroy(cur);
		rm_FreeString(NULL, k);
		write_hour(c, mins[i], &f.counters, &f.mins, &f.maxs);
		counters_free(&f.counters);
		counters_free(&f.mins);
		counters_free(&f.maxs);
		done = mins[i];
	}
	/* Fewer than asked for: every closed minute is in. */
	if (n < ROLL_MAX)
		done = last;
	rk = keyf(c, ":stats:rolled");
	v = str_ll(done);
	set_string(c, rk, v);
	rm_FreeString(NULL, v);
	rm_FreeString(NULL, rk);
}

static void flush_stats(struct call *c)
{
	RedisModuleString *k;
	long long done;

	if (c->nwaits)
		waits_to_stats(c);
	if (!c->stats.n)
		return;
	done = roll_mark(c);
	k = keyf(c, ":stats:m:%lld", c->minute);
	write_window(c, k, c->minute, 60000, ":stats:minutes", &c->stats,
		     &c->mins, &c->maxs);
	rm_FreeString(NULL, k);
	if (c->minute <= done)
		write_hour(c, c->minute, &c->stats, &c->mins, &c->maxs);
	roll_up(c, done);
}

/* lib.lua flush(): indexes, status counters, the virtual runtime floor,
 * the wake-up, statistics. */
static void flush(struct call *c)
{
	RedisModuleString *fv[2 * NST];
	size_t nfv = 0;

	zflush(c);
	for (int s = 0; s < NST; s++)
		if (c->count[s]) {
			fv[nfv++] = str_c(status_names[s]);
			fv[nfv++] = NULL;
		}
	if (nfv) {
		RedisModuleString *k = keyf(c, ":count");
		RedisModuleKey *key = open_rw(c, k);

		for (size_t i = 0, s = 0; i < nfv; i += 2, s++) {
			int found;

			while (!c->count[s])
				s++;
			fv[i + 1] = str_ll(hash_ll(key, fv[i], &found) +
					   c->count[s]);
		}
		hset(c, key, k, fv, nfv);
		rm_CloseKey(key);
		rm_FreeString(NULL, k);
		for (size_t i = 0; i < nfv; i++)
			rm_FreeString(NULL, fv[i]);
	}
	if (c->have_vr) {
		RedisModuleString *k = keyf(c, ":vr_floor");
		RedisModuleString *v = str_ll(c->vr_last);

		set_string(c, k, v);
		rm_FreeString(NULL, v);
		rm_FreeString(NULL, k);
	}
	if (c->wake) {
		RedisModuleString *k = keyf(c, ":wake");

		rm_PublishMessage(c->ctx, k, N[V_ONE]);
		/* As Redis replicates a PUBLISH from Lua. */
		rm_Replicate(c->ctx, "PUBLISH", "ss", k, N[V_ONE]);
		rm_FreeString(NULL, k);
	}
	flush_stats(c);
}

/* ---- reading a job ------------------------------------------------------ */

/* A job hash open for a transition: what was read of it, indexed by
 * field (F_...), and the values made for its write. */
struct job {
	RedisModuleString *k; /* P:job:ID */
	RedisModuleKey *key;
	const int *fields; /* read, NFIELDS of them */
	int nfields;
	RedisModuleString *held[NNAMES];
	struct sv v[NNAMES];	   /* views of HELD; p NULL: absent */
	RedisModuleString *own[4]; /* job_own() */
	int nown;
};

static void scan_field(RedisModuleKey *key, RedisModuleString *field,
		       RedisModuleString *value, void *pd)
{
	struct job *j = pd;
	struct sv f = sv_of(field);

	(void)key;
	for (int i = 0; i < j->nfields; i++) {
		int id = j->fields[i];
		const char *name = names[id];

		if (f.n == name_len[id] && f.p[0] == name[0] &&
		    memcmp(f.p, name, f.n) == 0) {
			if (value && !j->held[id])
				j->held[id] = rm_HoldString(NULL, value);
			return;
		}
	}
}

/*
 * Opens job hash K (taken over) and reads FIELDS (N) of it in one pass
 * into J->v. A lookup per field would scan a small hash once per field,
 * and all of it for each absent one. Returns 0 when the job does not
 * exist. job_close() in any case.
 */
static int job_open(struct call *c, struct job *j, RedisModuleString *k,
		    const int *fields, int n)
{
	RedisModuleScanCursor *cur;

	memset(j, 0, sizeof(*j));
	j->k = k;
	j->key = open_rw(c, k);
	j->fields = fields;
	j->nfields = n;
	if (rm_KeyType(j->key) != RM_KEYTYPE_HASH)
		return 0;
	cur = rm_ScanCursorCreate();
	while (rm_ScanKey(j->key, cur, scan_field, j))
		;
	rm_ScanCursorDestroy(cur);
	for (int i = 0; i < n; i++)
		j->v[fields[i]] = sv_of(j->held[fields[i]]);
	return j->v[F_STATUS].p != NULL;
}

/* A value made for the job's write, freed with it. */
static RedisModuleString *job_own(struct job *j, RedisModuleString *s)
{
	j->own[j->nown++] = s;
	return s;
}

static void job_close(struct job *j)
{
	rm_CloseKey(j->key);
	rm_FreeString(NULL, j->k);
	for (int i = 0; i < j->nfields; i++)
		if (j->held[j->fields[i]])
			rm_FreeString(NULL, j->held[j->fields[i]]);
	for (int i = 0; i < j->nown; i++)
		rm_FreeString(NULL, j->own[i]);
}

static void count_move(struct call *c, int from, int to)
{
	c->count[from]--;
	c->count[to]++;
}

/* ---- JOBD.CLAIM ----------------------------------------------------------- */

/* True when a retry waits in P:delayed with its time come: claim.lua
 * moves those first. */
static int retries_due(struct call *c)
{
	RedisModuleString *k = keyf(c, ":delayed");
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
 * priority LOW): replies with its job when it was pending there. */
static int claim_alone(struct call *c, const struct claim_args *a,
		       RedisModuleString *sid, long long id, int low)
{
	RedisModuleString *fv[16];
	struct job j;
	const struct sv *v = j.v;
	size_t n = 0;
	int ok = 0;
	long long attempt;

	if (!job_open(c, &j, job_key(c, id), claim_fields, NCLAIM) ||
	    !sv_eq(v[F_STATUS], "pending") ||
	    (sv_eq(v[F_LOW], "1") ? 1 : 0) != low ||
	    !(sv_empty(v[F_LOW]) || sv_eq(v[F_LOW], "0") ||
	      sv_eq(v[F_LOW], "1")))
		goto out; /* stale: the job moved on, or sits elsewhere */
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
	fv[n++] = N[V_IN_PROGRESS];
	hset(c, j.key, j.k, fv, n);
	/* set_status(pending -> in_progress) */
	zset_later(c,
		   ckey(c,
			sv_eq(v[F_SYSTEM], "1") ? K_PENDING_RS : K_PENDING_RU),
		   sid, 0, 0);
	zset_later(c, ckey(c, K_LEASES), sid, c->now + a->lease, 1);
	count_move(c, ST_PENDING, ST_IN_PROGRESS);
	rm_ReplyWithArray(c->ctx, 8);
	rm_ReplyWithLongLong(c->ctx, id);
	rm_ReplyWithLongLong(c->ctx, attempt);
	reply_sv(c->ctx, v[F_TYPE]);
	reply_sv(c->ctx, v[F_PAYLOAD]);
	reply_sv(c->ctx, v[F_CHECKPOINT]);
	rm_ReplyWithLongLong(c->ctx, (long long)sv_num(v[F_LOW]));
	rm_ReplyWithLongLong(c->ctx, id);
	reply_sv(c->ctx, v[F_PROGRESS]);
	ok = 1;
out:
	job_close(&j);
	return ok;
}

static int parse_ll(RedisModuleString *s, long long *v)
{
	return rm_StringToLongLong(s, v) == RM_OK;
}

/* JOBD.CLAIM prefix stats_ttl_ms instance lease_ms max max_low estimate */
static int cmd_claim(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	struct claim_args a;
	struct call c;
	RedisModuleString *rk[2], **pop[2] = { NULL, NULL };
	RedisModuleKey *roots[2];
	size_t npop[2] = { 0, 0 }, cap[2] = { 0, 0 };
	long long est, out = 0, tries = 0, low_taken = 0;
	int handoff = 0;

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
	if (retries_due(&c)) {
		handoff = 1;
		goto done;
	}
	rk[0] = keyf(&c, ":roots");
	rk[1] = keyf(&c, ":roots_low");
	roots[0] = open_rw(&c, rk[0]);
	roots[1] = open_rw(&c, rk[1]);
	while (out < a.max && tries < a.max * 4 + 8) {
		double score = 0;
		int low = 0;
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
		if (mv.n < 2 || mv.p[0] != '=') {
			/* A root with a ready queue: claim.lua's part. */
			rm_FreeString(NULL, m);
			handoff = 1;
			break;
		}
		rm_ZsetRem(roots[low], m, NULL);
		grow((void **)&pop[low], &cap[low], npop[low], sizeof(*pop[0]));
		pop[low][npop[low]++] = rm_HoldString(NULL, m);
		c.vr_last = (long long)score;
		c.have_vr = 1;
		{
			RedisModuleString *sid =
				rm_CreateString(NULL, mv.p + 1, mv.n - 1);

			if (parse_ll(sid, &id) &&
			    claim_alone(&c, &a, sid, id, low)) {
				out++;
				if (low)
					low_taken++;
			}
			rm_FreeString(NULL, sid);
		}
		rm_FreeString(NULL, m);
	}
	rm_CloseKey(roots[0]);
	rm_CloseKey(roots[1]);
	/* The pops (ZPOPMIN in claim.lua), one ZREM per set. */
	for (int low = 0; low < 2; low++) {
		if (npop[low]) {
			rm_Replicate(ctx, "ZREM", "sv", rk[low], pop[low],
				     npop[low]);
			rm_NotifyKeyspaceEvent(ctx, RM_NOTIFY_ZSET, "zpopmin",
					       rk[low]);
		}
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

/* ---- JOBD.FINISH -------------------------------------------------------- */

/* finish.lua for job ID when its outcome is done and it has no logs:
 * "finished", "fenced", or "lua" for what only the Lua function does
 * (a parent, a child, a charged run). */
static const char *finish_done(struct call *c, struct sv id, struct sv at,
			       double progress, long long errors_delta,
			       struct sv checkpoint)
{
	RedisModuleString *fv[20], *sid;
	struct job j;
	const struct sv *v = j.v;
	const char *res = "lua";
	size_t n = 0;
	int stopping;
	long long errors, since;

	if (!job_open(c, &j, keycat(c, ":job:", id.p, id.n), run_fields,
		      NRUN) ||
	    !(sv_eq(v[F_STATUS], "in_progress") ||
	      sv_eq(v[F_STATUS], "stopping")) ||
	    !sv_same(v[F_ATTEMPT], at) || sv_eq(v[F_AWAITING], "1")) {
		res = "fenced";
		goto out;
	}
	if (!sv_empty(v[F_PARENT]) || sv_num(v[F_CH_TOTAL]) != 0 ||
	    !sv_empty(v[F_CHARGED]))
		goto out;
	stopping = sv_eq(v[F_STATUS], "stopping");
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
	stat_add(c, "finished", v[F_TYPE], 1);
	if (errors > 0)
		stat_add(c, "errors", v[F_TYPE], 1);
	fv[n++] = N[F_STATUS];
	fv[n++] = N[V_FINISHED];
	hset(c, j.key, j.k, fv, n);
	sid = rm_CreateString(NULL, id.p, id.n);
	zset_later(c,
		   ckey(c, sv_eq(v[F_SYSTEM], "1") ? K_FINISHED_RS :
						     K_FINISHED_RU),
		   sid, (long long)sv_num(id), 1);
	/* lib.lua set_status(): a root that ends enters retention's index. */
	zset_later(c, ckey(c, K_ENDED), sid, c->now, 1);
	zset_later(c, ckey(c, K_LEASES), sid, 0, 0);
	rm_FreeString(NULL, sid);
	count_move(c, stopping ? ST_STOPPING : ST_IN_PROGRESS, ST_FINISHED);
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

/* JOBD.FINISH prefix stats_ttl_ms runs: finish.lua for runs whose
 * outcome is done with no log lines (the client sends the others to
 * finish.lua at once), listed in one argument (parse_runs()): a run's
 * nine arguments cost Redis nine strings made and freed. */
static int cmd_finish(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
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

/* ---- JOBD.CREATE -------------------------------------------------------- */

/* A type's policy as create.lua takes it: type, system, stoppable,
 * restartable, retries, backoff_ms. */
enum {
	P_TYPE,
	P_SYSTEM,
	P_STOPPABLE,
	P_RESTARTABLE,
	P_RETRIES,
	P_BACKOFF,
	NPOLICY
};

static int str_is(RedisModuleString *s, struct sv v)
{
	struct sv a = sv_of(s);

	return a.n == v.n && memcmp(a.p, v.p, v.n) == 0;
}

/* create.lua opt(): field NAME only when V differs from its default. */
static void opt(RedisModuleString **fv, size_t *n, int name,
		RedisModuleString *v, const char *def)
{
	if (!v || sv_eq(sv_of(v), def) || (!*def && !sv_of(v).n))
		return;
	fv[(*n)++] = N[name];
	fv[(*n)++] = v;
}

/* The policy (NPOLICY strings) of type TY among the T of POL, or NULL. */
static RedisModuleString **policy_of(RedisModuleString **pol, long long t,
				     struct sv ty)
{
	for (long long j = 0; j < t; j++)
		if (str_is(pol[j * NPOLICY + P_TYPE], ty))
			return pol + j * NPOLICY;
	return NULL;
}

/* The fields of a job to create, as JOBD.CREATE lists them. */
enum { J_KEY, J_TYPE, J_PARENT, J_RUN_BY, J_LOW, J_PAYLOAD, J_SOURCE, NJ };

/*
 * Parses JOBD.CREATE's list of N jobs, each NJ fields "LEN:BYTES" and a
 * newline, into *F (NJ views per job, into LIST; rm_Free). Returns 0
 * when the list is malformed or has another number of jobs.
 */
static int parse_jobs(RedisModuleString *list, long long n, struct sv **f)
{
	size_t len;
	const char *p = rm_StringPtrLen(list, &len), *end = p + len;

	*f = xalloc(sizeof(**f) * NJ * (size_t)n);
	for (long long i = 0; i < n; i++) {
		for (int j = 0; j < NJ; j++) {
			struct sv t, *v = &(*f)[i * NJ + j];
			long long flen;

			if (!token(&p, end, ':', &t) || !sv_ll(t, &flen) ||
			    flen < 0 || flen > end - p)
				goto bad;
			v->p = p;
			v->n = (size_t)flen;
			p += flen;
		}
		if (p == end || *p++ != '\n')
			goto bad;
	}
	if (p == end)
		return 1;
bad:
	rm_Free(*f);
	*f = NULL;
	return 0;
}

/* The strings create_root() writes for job fields F of type policy
 * POL into E; those made here go into OWN (*NOWN of them). */
static void job_strings(const struct sv *f, RedisModuleString **pol,
			RedisModuleString **e, RedisModuleString **own,
			int *nown)
{
	for (int j = 0; j < NJ; j++) {
		struct sv v = f[j];

		if (j == J_TYPE)
			e[j] = pol[P_TYPE];
		else if (!v.n)
			e[j] = N[V_EMPTY];
		else if (sv_eq(v, "0"))
			e[j] = N[V_ZERO];
		else if (sv_eq(v, "1"))
			e[j] = N[V_ONE];
		else
			e[j] = own[(*nown)++] = rm_CreateString(NULL, v.p, v.n);
	}
}

/* Adds new root ID to the indexes of class CLS (create.lua). */
static void index_new(struct call *c, int sys, RedisModuleString *sid,
		      long long id, RedisModuleString *type,
		      RedisModuleString *run_by)
{
	const char *cls = sys ? "rs" : "ru";
	struct sv ty = sv_of(type), rb = sv_of(run_by);
	RedisModuleString *ix;

	zset_later(c, ckey(c, sys ? K_PENDING_RS : K_PENDING_RU), sid, id, 1);
	/* A batch is mostly of one type: its index key is kept. */
	if (!c->type_ix || strncmp(c->type_ix_for, cls, 2) != 0 ||
	    !sv_eq(ty, c->type_ix_for + 3)) {
		if (c->type_ix)
			rm_FreeString(NULL, c->type_ix);
		rm_Free(c->type_ix_for);
		c->type_ix = keyf(c, ":ix:%s:t:%.*s", cls, (int)ty.n, ty.p);
		c->type_ix_for = join(cls, '|', ty.p, ty.n);
	}
	zset_later(c, c->type_ix, sid, id, 1);
	if (run_by && rb.n) {
		ix = keyf(c, ":ix:%s:u:%.*s", cls, (int)rb.n, rb.p);
		zset_later(c, ix, sid, id, 1);
		rm_FreeString(NULL, ix);
	}
}

/* New roots without children wait alone, as "=ID" in the roots set of
 * their priority at the current virtual runtime floor (lib.lua
 * enqueue): one ZADD NX per set for the call, as create.lua does. */
static void enqueue_alone(struct call *c, long long floor_vr)
{
	for (int low = 0; low < 2; low++) {
		RedisModuleString **v, *sc, *rk;
		RedisModuleKey *key;
		size_t n = c->nalone[low];

		if (!n)
			continue;
		rk = keyf(c, low ? ":roots_low" : ":roots");
		sc = str_ll(floor_vr);
		v = xalloc(sizeof(*v) * 2 * n);
		for (size_t i = 0; i < n; i++) {
			v[2 * i] = sc;
			v[2 * i + 1] = c->alone[low][i];
		}
		key = open_rw(c, rk);
		skiplist_begin(key);
		for (size_t i = 0; i < n; i++) {
			int fl = RM_ZADD_NX;

			rm_ZsetAdd(key, (double)floor_vr, c->alone[low][i],
				   &fl);
		}
		skiplist_end(key);
		rm_CloseKey(key);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET, "zadd", rk);
		rm_Replicate(c->ctx, "ZADD", "scv", rk, "NX", v, 2 * n);
		for (size_t i = 0; i < n; i++)
			rm_FreeString(NULL, c->alone[low][i]);
		rm_Free(c->alone[low]);
		c->alone[low] = NULL;
		c->nalone[low] = 0;
		rm_Free(v);
		rm_FreeString(NULL, sc);
		rm_FreeString(NULL, rk);
	}
}

/* Writes new root job ID from entry E (key type parent run_by low
 * payload source) with policy POL, created by ACTOR. */
static void create_root(struct call *c, long long id, RedisModuleString **e,
			RedisModuleString **pol, RedisModuleString *actor)
{
	RedisModuleString *fv[40], *sid = str_ll(id), *k;
	RedisModuleString *run_by = e[3];
	RedisModuleKey *key;
	int sys = sv_eq(sv_of(pol[P_SYSTEM]), "1");
	size_t n = 0;

	if (sys)
		run_by = NULL; /* a system job runs for no one */
	/* No id (the key has it), no root (a root job is its own). */
	fv[n++] = N[F_TYPE];
	fv[n++] = e[1];
	fv[n++] = N[F_STATUS];
	fv[n++] = N[V_PENDING];
	fv[n++] = N[F_CREATED_AT];
	fv[n++] = c->nows;
	fv[n++] = N[F_PAYLOAD];
	fv[n++] = e[5];
	opt(fv, &n, F_SYSTEM, pol[P_SYSTEM], "0");
	opt(fv, &n, F_LOW, e[4], "0");
	opt(fv, &n, F_KEY, e[0], "");
	opt(fv, &n, F_RUN_BY, run_by, "");
	opt(fv, &n, F_SOURCE, e[6], "");
	opt(fv, &n, F_STOPPABLE, pol[P_STOPPABLE], "1");
	opt(fv, &n, F_RESTARTABLE, pol[P_RESTARTABLE], "0");
	opt(fv, &n, F_RETRIES, pol[P_RETRIES], "0");
	if (!sv_eq(sv_of(pol[P_RETRIES]), "0"))
		opt(fv, &n, F_BACKOFF_MS, pol[P_BACKOFF], "");
	/* The audit log reads "created by ACTOR" from here; a job with a
	 * source came from the consumer, which the log names itself. */
	if (sv_of(actor).n && !(run_by && str_is(actor, sv_of(run_by))) &&
	    !sv_of(e[6]).n) {
		fv[n++] = N[F_CREATED_BY];
		fv[n++] = actor;
	}
	k = job_key(c, id);
	key = open_rw(c, k);
	hset(c, key, k, fv, n);
	rm_CloseKey(key);
	rm_FreeString(NULL, k);
	index_new(c, sys, sid, id, e[1], run_by);
	c->count[ST_PENDING]++;
	{
		int low = sv_eq(sv_of(e[4]), "1");
		char buf[24], *p = id_text(buf, id);

		*--p = '=';
		grow((void **)&c->alone[low], &c->capalone[low], c->nalone[low],
		     sizeof(*c->alone[0]));
		c->alone[low][c->nalone[low]++] =
			rm_CreateString(NULL, p, (size_t)(buf + 23 - p));
	}
	c->wake = 1;
	stat_add(c, "created", sv_of(e[1]), 1);
	rm_FreeString(NULL, sid);
}

/*
 * JOBD.CREATE prefix stats_ttl_ms actor n t {type system stoppable
 * restartable retries backoff_ms}*t jobs: create.lua for a batch of root
 * jobs; "+lua" for any other batch, with nothing written. The jobs come
 * in one argument (parse_jobs(): create.lua's seven arguments per job
 * would cost Redis seven strings made and freed each). Replies with the
 * id of each job, negative when its key had it already.
 */
static int cmd_create(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	struct call c;
	long long ttl, n, t, next_id, floor_vr;
	RedisModuleString **pol, **newkeys, *k, *v;
	static const char bad_mapping[] = "its key maps to no job id";
	struct sv *f;
	long long *ids;
	int *existed, found;
	size_t nnew = 0;

	if (argc < 7 || !parse_ll(argv[2], &ttl) || !parse_ll(argv[4], &n) ||
	    !parse_ll(argv[5], &t) || n < 0 || n > MAX_BATCH || t < 0 ||
	    t > (argc - 7) / NPOLICY || 7 + NPOLICY * t != argc ||
	    !parse_jobs(argv[argc - 1], n, &f))
		return rm_ReplyWithError(ctx, "ERR jobd.create: bad arguments");
	pol = argv + 6;
	for (long long i = 0; i < n; i++) {
		const struct sv *e = f + i * NJ;

		if (e[J_PARENT].n) { /* a child: create.lua's */
			rm_Free(f);
			return rm_ReplyWithSimpleString(ctx, "lua");
		}
		if (!policy_of(pol, t, e[J_TYPE])) {
			rm_Free(f);
			return rm_ReplyWithError(ctx,
						 "ERR jobd.create: a job's "
						 "type has no policy");
		}
	}
	call_begin(&c, ctx, argv[1], ttl);
	ids = xalloc(sizeof(*ids) * (size_t)n);
	existed = xalloc(sizeof(*existed) * (size_t)n);
	newkeys = xalloc(sizeof(*newkeys) * 2 * (size_t)n);
	/* Ids for the whole batch in one step, as INCRBY seq n. */
	k = keyf(&c, ":seq");
	next_id = get_ll(&c, k, &found);
	v = str_ll(next_id + n);
	set_string(&c, k, v);
	rm_FreeString(NULL, v);
	rm_FreeString(NULL, k);
	k = keyf(&c, ":vr_floor");
	floor_vr = get_ll(&c, k, &found);
	rm_FreeString(NULL, k);
	for (long long i = 0; i < n; i++) {
		const struct sv *fi = f + i * NJ;
		struct sv key = fi[J_KEY];
		RedisModuleString **ip = policy_of(pol, t, fi[J_TYPE]);
		RedisModuleString *e[NJ], *own[NJ], *kk = NULL;
		RedisModuleKey *mk = NULL;
		int mapped = 0, nown = 0;

		existed[i] = 0;
		if (key.n) {
			/* The mapping is written at once, so a key repeated
			 * later in the batch finds it (create.lua: NEWKEY). */
			kk = keycat(&c, ":key:", key.p, key.n);
			mk = open_rw(&c, kk);
			ids[i] = key_ll(mk, &mapped);
			if (mapped) {
				existed[i] = 1;
				rm_CloseKey(mk);
				rm_FreeString(NULL, kk);
				continue;
			}
		}
		ids[i] = ++next_id;
		job_strings(fi, ip, e, own, &nown);
		create_root(&c, ids[i], e, ip, argv[3]);
		while (nown)
			rm_FreeString(NULL, own[--nown]);
		if (kk) {
			newkeys[2 * nnew] = kk;
			newkeys[2 * nnew + 1] = str_ll(ids[i]);
			rm_StringSet(mk, newkeys[2 * nnew + 1]);
			rm_CloseKey(mk);
			nnew++;
		}
	}
	enqueue_alone(&c, floor_vr);
	if (nnew)
		rm_Replicate(ctx, "MSET", "v", newkeys, 2 * nnew);
	for (size_t j = 0; j < 2 * nnew; j++)
		rm_FreeString(NULL, newkeys[j]);
	flush(&c);
	call_end(&c);
	rm_ReplyWithArray(ctx, n);
	for (long long i = 0; i < n; i++)
		if (ids[i] > 0)
			rm_ReplyWithLongLong(ctx,
					     existed[i] ? -ids[i] : ids[i]);
		else /* a mapping that is not a job id: refused */
			rm_ReplyWithStringBuffer(ctx, bad_mapping,
						 strlen(bad_mapping));
	rm_Free(f);
	rm_Free(ids);
	rm_Free(existed);
	rm_Free(newkeys);
	return RM_OK;
}

/* ---- loading ------------------------------------------------------------ */

/* The module and the Lua library it mirrors: a client uses the module
 * only when this equals its own (src/store/conn.c). */
static int cmd_version(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	static const char version[] = JOBD_MODULE_REVISION;
	char buf[128];

	(void)argv;
	if (argc != 1)
		return rm_WrongArity(ctx);
	snprintf(buf, sizeof(buf), "%s%s", jobd_library_prefix, version);
	return rm_ReplyWithSimpleString(ctx, buf);
}

/* The one symbol Redis looks up (the build hides all others). */
__attribute__((visibility("default"))) int
RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

__attribute__((visibility("default"))) int
RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	static const struct {
		const char *name;
		rm_cmd_fn fn;
		const char *flags;
	} cmds[] = {
		{ "jobd.version", cmd_version, "readonly fast" },
		{ "jobd.create", cmd_create, "write deny-oom" },
		{ "jobd.claim", cmd_claim, "write deny-oom" },
		{ "jobd.finish", cmd_finish, "write deny-oom" },
	};

	(void)argv;
	(void)argc;
	if (rm_init(ctx, "jobd", 1) != RM_OK)
		return RM_ERR;
	for (int i = 0; i < NNAMES; i++) {
		N[i] = str_c(names[i]);
		name_len[i] = strlen(names[i]);
	}
	table_field = str_c("jobd:table");
	table_value = str_c("jobd: a value long enough to make a hash a hash "
			    "table, removed at once");
	skiplist_member = str_c("jobd: a member long enough to make a sorted "
				"set a skip list, removed at once");
	/* Keys are derived from the prefix inside each command, as in the
	 * Lua functions: no key positions (one Redis primary, no cluster;
	 * docs/scaling.md). */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (rm_CreateCommand(ctx, cmds[i].name, cmds[i].fn,
				     cmds[i].flags, 0, 0, 0) != RM_OK)
			return RM_ERR;
	return RM_OK;
}
