/*
 * module/create: JOBD.CREATE, create.lua in C for batches of root jobs
 * (read it beside src/store/lua/create.lua).
 */
#include "store/module/lib.h"

#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
enum {
	J_KEY,
	J_TYPE,
	J_PARENT,
	J_RUN_BY,
	J_LOW,
	J_PAYLOAD,
	J_SOURCE,
	J_WHEN,
	NJ
};

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

/* Adds new root ID to the listing indexes of its class (create.lua,
 * lib.lua index_names): its status, type and run_by. */
static void index_new(struct call *c, int sys, RedisModuleString *sid,
		      long long id, RedisModuleString *type,
		      RedisModuleString *run_by)
{
	struct sv ty = sv_of(type), rb = sv_of(run_by);
	char *name;

	ix_status_later(c, sys, S_PENDING, sid, id, 1);
	name = join(sys ? "rs:t" : "ru:t", ':', ty.p ? ty.p : "", ty.n);
	ix_later(c, name, strlen(name), sid, id, 1);
	rm_Free(name);
	if (run_by && rb.n) {
		name = join(sys ? "rs:u" : "ru:u", ':', rb.p, rb.n);
		ix_later(c, name, strlen(name), sid, id, 1);
		rm_Free(name);
	}
}

/* New roots without children wait in the list of roots without children
 * of their priority, and its member "alone" in the roots set at the
 * current virtual runtime floor (lib.lua enqueue): one RPUSH and one
 * ZADD NX per priority for the call, as create.lua does. */
static void enqueue_alone(struct call *c)
{
	for (int low = 0; low < 2; low++) {
		RedisModuleString *sc, *rk, *ak;
		RedisModuleKey *key;
		size_t n = c->nalone[low];
		int fl = RM_ZADD_NX;
		long long floor_vr;

		if (!n)
			continue;
		floor_vr = vr_floor(c, low);
		ak = keyf(c, low ? K_ALONE_LOW : K_ALONE);
		key = open_rw(c, ak);
		for (size_t i = 0; i < n; i++)
			rm_ListPush(key, RM_LIST_TAIL, c->alone[low][i]);
		rm_CloseKey(key);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_LIST, "rpush", ak);
		rm_Replicate(c->ctx, "RPUSH", "sv", ak, c->alone[low], n);
		rk = keyf(c, low ? K_ROOTS_LOW : K_ROOTS);
		sc = str_ll(floor_vr);
		key = open_rw(c, rk);
		rm_ZsetAdd(key, (double)floor_vr, N[V_ALONE], &fl);
		rm_CloseKey(key);
		/* As Redis: a ZADD NX that adds nothing is neither notified
		 * nor replicated. */
		if (fl & RM_ZADD_ADDED) {
			rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET, "zadd",
					       rk);
			rm_Replicate(c->ctx, "ZADD", "scss", rk, "NX", sc,
				     N[V_ALONE]);
		}
		for (size_t i = 0; i < n; i++)
			rm_FreeString(NULL, c->alone[low][i]);
		rm_Free(c->alone[low]);
		c->alone[low] = NULL;
		c->nalone[low] = 0;
		rm_FreeString(NULL, sc);
		rm_FreeString(NULL, rk);
		rm_FreeString(NULL, ak);
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
	/* No status (pending, its default) and no payload {} (create.lua). */
	fv[n++] = N[F_TYPE];
	fv[n++] = e[1];
	fv[n++] = N[F_CREATED_AT];
	fv[n++] = c->nows;
	opt(fv, &n, F_PAYLOAD, e[5], "{}");
	opt(fv, &n, F_SYSTEM, pol[P_SYSTEM], "0");
	opt(fv, &n, F_LOW_PRIORITY, e[4], "0");
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
	c->count[S_PENDING]++;
	{
		int low = sv_eq(sv_of(e[4]), "1");

		grow((void **)&c->alone[low], &c->capalone[low], c->nalone[low],
		     sizeof(*c->alone[0]));
		c->alone[low][c->nalone[low]++] = rm_HoldString(NULL, sid);
	}
	c->wake = 1;
	stat_add(c, W_CREATED, sv_of(e[1]), 1);
	rm_FreeString(NULL, sid);
}

/*
 * Idempotency keys of root jobs, as lib.lua keys_conf(), key_slot(),
 * key_find() and key_map() (docs/redis-keys.md, "Idempotency keys"):
 * hash buckets per window P:keys:START:B, field the key or its digest.
 */
struct keys {
	long long w;	 /* key_window, ms (P:conf) */
	long long prev;	 /* the window it replaced while keys made under
			  * that one may live (key_window_prev), ms; else 0 */
	long long start; /* the current window's start, ms */
	int old;	 /* mappings of the earlier layout may remain */
};

/* Field NAME of hash K as a number, as Lua's tonumber() reads it (a
 * window like "1e3" counts, "x" does not); 0 when absent or not one. */
static int hash_num(RedisModuleKey *key, const char *name, double *d)
{
	RedisModuleString *f = str_c(name), *v = NULL;
	int ok = 0;

	if (rm_KeyType(key) == RM_KEYTYPE_HASH)
		rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
	if (v) {
		ok = rm_StringToDouble(v, d) == RM_OK;
		rm_FreeString(NULL, v);
	}
	rm_FreeString(NULL, f);
	return ok;
}

/* A window of P:conf, as lib.lua window_of(): whole ms, or 0. */
static long long window_of(RedisModuleKey *key, const char *name)
{
	double d;

	if (!hash_num(key, name, &d) || !(d >= 1 && d < 9.0e15))
		return 0;
	return (long long)d;
}

static void keys_conf(struct call *c, struct keys *ks)
{
	RedisModuleString *k = keyf(c, ":conf"), *v = NULL, *f;
	RedisModuleKey *key = rm_OpenKey(c->ctx, k, RM_READ);
	double at;

	ks->w = window_of(key, "key_window");
	if (ks->w < 1)
		ks->w = N_KEY_WINDOW;
	/* Until the keys made under the window replaced have expired: a
	 * bucket lives two of its windows (key_window.lua). */
	ks->prev = window_of(key, "key_window_prev");
	if (!ks->prev || ks->prev == ks->w ||
	    !hash_num(key, "key_window_changed", &at) ||
	    !((double)c->now < at + 2.0 * (double)ks->prev))
		ks->prev = 0;
	rm_CloseKey(key);
	rm_FreeString(NULL, k);
	k = keyf(c, ":backfill");
	key = rm_OpenKey(c->ctx, k, RM_READ);
	f = str_c("keys");
	if (rm_KeyType(key) == RM_KEYTYPE_HASH)
		rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
	ks->old = !v || !sv_eq(sv_of(v), "done");
	if (v)
		rm_FreeString(NULL, v);
	rm_CloseKey(key);
	rm_FreeString(NULL, f);
	rm_FreeString(NULL, k);
	ks->start = c->now - c->now % ks->w;
}

/* FNV-1a, 32 bits, of the N bytes at S from H. */
static uint32_t fnv(const char *s, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* Root key KEY's field (new) in its bucket, and the bucket's number: of
 * N_KEY_BUCKETS / shards a window in a shard (lib.lua key_slot). */
static RedisModuleString *key_slot(const struct call *c, struct sv key,
				   unsigned *b)
{
	uint32_t h = fnv(key.p, key.n, 2166136261u);
	long long n = N_KEY_BUCKETS / c->shards;
	char buf[24];

	*b = h % (unsigned)(n > 0 ? n : 1);
	if (key.n <= N_KEY_FIELD_MAX)
		return rm_CreateString(NULL, key.p, key.n);
	snprintf(buf, sizeof(buf), "#%08x%08x", (unsigned)h,
		 (unsigned)fnv(key.p, key.n, h));
	return str_c(buf);
}

/* Bucket B of the window starting at START, named without printf: a
 * create names two buckets a root (bench/README.md, "Where a create's
 * time goes with a deep backlog"). */
static RedisModuleString *keys_bucket(struct call *c, long long start,
				      unsigned b)
{
	char sb[24], bb[24], name[48];
	char *s = id_text(sb, start), *t = id_text(bb, (long long)b);
	size_t sn = (size_t)(sb + 23 - s), tn = (size_t)(bb + 23 - t);

	memcpy(name, s, sn);
	name[sn] = ':';
	memcpy(name + sn + 1, t, tn);
	return keycat(c, K_KEYS, name, sn + 1 + tn);
}

/* Field F of hash KEY as a job id; 0 when absent. */
static long long hash_id(RedisModuleKey *key, RedisModuleString *f, int *found)
{
	RedisModuleString *v = NULL;
	long long id = 0;

	*found = 0;
	if (rm_KeyType(key) == RM_KEYTYPE_HASH)
		rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
	if (v) {
		*found = 1;
		if (rm_StringToLongLong(v, &id) != RM_OK || id < 0)
			id = 0;
		rm_FreeString(NULL, v);
	}
	return id;
}

/* A root key's place: its field, its bucket's number, and its bucket in
 * the current window, open for writing (key_find() reads it, key_map()
 * writes it: one lookup of the bucket and one hash of the key a root). */
struct slot {
	RedisModuleString *f, *k;
	RedisModuleKey *h;
	unsigned b;
};

static void slot_open(struct call *c, const struct keys *ks, struct sv key,
		      struct slot *s)
{
	s->f = key_slot(c, key, &s->b);
	s->k = keys_bucket(c, ks->start, s->b);
	s->h = open_rw(c, s->k);
}

static void slot_close(struct slot *s)
{
	rm_CloseKey(s->h);
	rm_FreeString(NULL, s->k);
	rm_FreeString(NULL, s->f);
}

/* The id root key KEY (its place S) maps to, or 0. */
static long long key_find(struct call *c, const struct keys *ks, struct sv key,
			  const struct slot *s)
{
	RedisModuleString *k;
	int found = 0;
	long long id = hash_id(s->h, s->f, &found);

	/* Then the previous window's bucket, and those of the window a
	 * change replaced, as a lookup before the change would have read
	 * them. */
	for (int w = 1; w < 4 && !found; w++) {
		long long len = w < 2 ? ks->w : ks->prev;
		RedisModuleKey *h;

		if (!len)
			break;
		k = keys_bucket(c, c->now - c->now % len - (w % 2) * len, s->b);
		h = rm_OpenKey(c->ctx, k, RM_READ);
		id = hash_id(h, s->f, &found);
		rm_CloseKey(h);
		rm_FreeString(NULL, k);
	}
	if (!found && ks->old) {
		k = keycat(c, K_KEY, key.p, key.n);
		id = get_ll(c, k, &found);
		rm_FreeString(NULL, k);
	}
	/* Counts only when the job's key is this one (a digest may
	 * collide, retention may have deleted the job). */
	if (found && id > 0) {
		int same = 0;
		RedisModuleString *v = NULL;
		RedisModuleKey *jk;

		k = job_key(c, id);
		jk = rm_OpenKey(c->ctx, k, RM_READ);
		if (rm_KeyType(jk) == RM_KEYTYPE_HASH)
			rm_HashGet(jk, RM_HASH_NONE, N[F_KEY], &v, NULL);
		if (v) {
			same = sv_same(sv_of(v), key);
			rm_FreeString(NULL, v);
		}
		rm_CloseKey(jk);
		rm_FreeString(NULL, k);
		if (same)
			return id;
	}
	return 0;
}

/* Maps the root key of place S to job SID in the current window. */
static void key_map(struct call *c, const struct keys *ks, const struct slot *s,
		    RedisModuleString *sid)
{
	/* By Redis' own clock, as lib.lua's PEXPIRE: a test may have moved
	 * the clock the transitions read (testclock.c). */
	long long real_at = ks->start + 2 * ks->w - testclock_offset;
	RedisModuleString *at = str_ll(real_at);
	/* A bucket gets its expiry with its first key, as lib.lua's
	 * PEXPIRE NX: the others add nothing to the AOF or the replicas. */
	int fresh = rm_KeyType(s->h) == RM_KEYTYPE_EMPTY;

	rm_HashSet(s->h, RM_HASH_NONE, s->f, sid, NULL);
	rm_Replicate(c->ctx, "HSET", "sss", s->k, s->f, sid);
	rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_HASH, "hset", s->k);
	/* A start both windows share names one bucket of each: one made
	 * under a shorter old window would expire too soon, as lib.lua's
	 * key_map() says. */
	if (!fresh && ks->prev && ks->prev < ks->w &&
	    ks->start % ks->prev == 0) {
		/* No expiry (-1) too: Lua's PEXPIRE NX would have set one. */
		fresh = rm_GetAbsExpire(s->h) < real_at - (ks->w - ks->prev);
	}
	if (fresh) {
		rm_SetAbsExpire(s->h, real_at);
		rm_Replicate(c->ctx, "PEXPIREAT", "ss", s->k, at);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_GENERIC, "expire",
				       s->k);
	}
	rm_FreeString(NULL, at);
}

int cmd_create(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	struct call c;
	long long ttl, n, t, next_id;
	RedisModuleString **pol, *k, *v;
	struct sv *f;
	struct keys ks;
	struct slot s;
	long long *ids;
	int *existed, found;

	if (argc < 7 || !parse_ll(argv[2], &ttl) || !parse_ll(argv[4], &n) ||
	    !parse_ll(argv[5], &t) || n < 0 || n > MAX_BATCH || t < 0 ||
	    t > (argc - 7) / NPOLICY || 7 + NPOLICY * t != argc ||
	    !parse_jobs(argv[argc - 1], n, &f))
		return rm_ReplyWithError(ctx, "ERR jobd.create: bad arguments");
	pol = argv + 6;
	for (long long i = 0; i < n; i++) {
		const struct sv *e = f + i * NJ;

		/* A child, or a job with a run time: create.lua's. */
		if (e[J_PARENT].n || e[J_WHEN].n) {
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
	/* Ids for the whole batch in one step, as INCRBY seq n: P:seq
	 * counts the shard's ids, the Nth is N x shards + shard (jobd_shard_of). */
	k = keyf(&c, K_SEQ);
	next_id = get_ll(&c, k, &found);
	v = str_ll(next_id + n);
	set_string(&c, k, v);
	rm_FreeString(NULL, v);
	rm_FreeString(NULL, k);
	keys_conf(&c, &ks);
	for (long long i = 0; i < n; i++) {
		const struct sv *fi = f + i * NJ;
		struct sv key = fi[J_KEY];
		RedisModuleString **ip = policy_of(pol, t, fi[J_TYPE]);
		RedisModuleString *e[NJ], *own[NJ];
		int nown = 0;

		existed[i] = 0;
		/* Written at once, so a key repeated later in the batch
		 * finds it. */
		if (key.n) {
			slot_open(&c, &ks, key, &s);
			if ((ids[i] = key_find(&c, &ks, key, &s)) > 0) {
				existed[i] = 1;
				slot_close(&s);
				continue;
			}
		}
		ids[i] = ++next_id * c.shards + c.shard;
		job_strings(fi, ip, e, own, &nown);
		create_root(&c, ids[i], e, ip, argv[3]);
		while (nown)
			rm_FreeString(NULL, own[--nown]);
		if (key.n) {
			RedisModuleString *sid = str_ll(ids[i]);

			key_map(&c, &ks, &s, sid);
			rm_FreeString(NULL, sid);
			slot_close(&s);
		}
	}
	enqueue_alone(&c);
	flush(&c);
	call_end(&c);
	rm_ReplyWithArray(ctx, n);
	for (long long i = 0; i < n; i++)
		rm_ReplyWithLongLong(ctx, existed[i] ? -ids[i] : ids[i]);
	rm_Free(f);
	rm_Free(ids);
	rm_Free(existed);
	return RM_OK;
}
