/*
 * module/lib: what the module's commands share, as lib.lua is what the
 * Lua functions share: the interned names (of src/store/schema.def), a
 * call's state and its deferred writes (lib.lua begin / flush), the
 * writes each replicated as its effect, and reading a job. Read it beside
 * src/store/lua/lib.lua.
 */
#include "store/module/lib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const names[NNAMES] = {
	SCHEMA_FIELD_NAMES,  /* F_..., src/store/schema.def */
	SCHEMA_STATUS_NAMES, /* STATUS(S_...) */
	[V_ZERO] = "0",	     /* values: a flag off, a time reset */
	[V_ONE] = "1",	     /* a flag on, the wake-up message */
	[V_EMPTY] = "",	     /* an empty value */
	/* lib.lua ALONE: the roots set's member for the list of roots
	 * without children */
	[V_ALONE] = "alone",
};
RedisModuleString *N[NNAMES];
size_t name_len[NNAMES];

/* The keys of ckey(): MID, and the name of STATUS after it (-1: none). */
static const struct {
	const char *mid;
	int status;
} call_keys[NCKEYS] = {
	[CK_LEASES] = { K_LEASES, -1 },
};

void call_begin(struct call *c, RedisModuleCtx *ctx, RedisModuleString *prefix,
		long long ttl)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->P = rm_StringPtrLen(prefix, &c->plen);
	jobd_shard_of(c->P, c->plen, &c->shards, &c->shard);
	c->ixw = N_IX_BUCKET * c->shards;
	c->now = rm_Milliseconds() + testclock_offset;
	c->minute = c->now - c->now % N_MINUTE_MS;
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

void call_end(struct call *c)
{
	for (int i = 0; i < NCKEYS; i++)
		if (c->keys[i])
			rm_FreeString(NULL, c->keys[i]);
	for (size_t i = 0; i < c->nix; i++) {
		for (size_t j = 0; j < c->ix[i].n; j++)
			rm_FreeString(NULL, c->ix[i].ops[j].member);
		rm_Free(c->ix[i].ops);
		rm_Free(c->ix[i].name);
	}
	rm_Free(c->ix);
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
	if (c->limits)
		rm_CloseKey(c->limits);
}

/* "C R W" (lib.lua limits(): '^(%d+) (%d+) (%d+)$'). */
static int parse_limit(struct sv v, struct limit *l)
{
	const char *p = v.p, *end = v.p + v.n;
	long long *out[3] = { &l->c, &l->r, &l->w };

	for (int i = 0; i < 3; i++) {
		const char *q = p;
		long long x = 0;

		while (q < end && *q >= '0' && *q <= '9' && q - p < 18)
			x = x * 10 + (*q++ - '0');
		if (q == p || (q < end && *q >= '0' && *q <= '9') ||
		    (i < 2 ? q == end || *q != ' ' : q != end))
			return 0;
		*out[i] = x;
		p = q + 1;
	}
	return 1;
}

static RedisModuleKey *limits_key(struct call *c)
{
	if (!c->limits_read) {
		RedisModuleString *k = keyf(c, K_LIMITS);

		c->limits_read = 1;
		c->limits = rm_OpenKey(c->ctx, k, RM_READ);
		if (rm_KeyType(c->limits) != RM_KEYTYPE_HASH) {
			rm_CloseKey(c->limits);
			c->limits = NULL;
		}
		rm_FreeString(NULL, k);
	}
	return c->limits;
}

int limit_of(struct call *c, struct sv type, struct limit *l)
{
	RedisModuleKey *key = limits_key(c);
	RedisModuleString *f, *v = NULL;
	int ok;

	if (!key)
		return 0;
	f = rm_CreateString(NULL, type.p ? type.p : "", type.n);
	rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
	rm_FreeString(NULL, f);
	ok = v && parse_limit(sv_of(v), l);
	if (v)
		rm_FreeString(NULL, v);
	return ok;
}

/* The length of zset P + MID + TYPE (0 when absent); with SINCE >= 0,
 * only its members scored above SINCE, counted up to MAX. */
static long long zlen(struct call *c, const char *mid, struct sv type,
		      long long since, long long max)
{
	RedisModuleString *k = keycat(c, mid, type.p, type.n);
	RedisModuleKey *key = rm_OpenKey(c->ctx, k, RM_READ);
	long long n = 0;

	if (rm_KeyType(key) == RM_KEYTYPE_ZSET) {
		if (since < 0)
			n = (long long)rm_ValueLength(key);
		else if (rm_ZsetFirstInScoreRange(key, (double)since, HUGE_VAL,
						  1, 0) == RM_OK) {
			while (n < max && !rm_ZsetRangeEndReached(key)) {
				n++;
				rm_ZsetRangeNext(key);
			}
			rm_ZsetRangeStop(key);
		}
	}
	rm_CloseKey(key);
	rm_FreeString(NULL, k);
	return n;
}

struct held_scan {
	struct call *c;
	int due;
};

/* claim.lua: EXISTS P:held:TYPE and room_left(room(TYPE)) > 0. */
static void held_one(RedisModuleKey *key, RedisModuleString *field,
		     RedisModuleString *value, void *priv)
{
	struct held_scan *h = priv;
	struct sv ty = sv_of(field);
	struct limit l;
	long long room = 1000000;

	(void)key;
	if (h->due || !parse_limit(sv_of(value), &l) ||
	    zlen(h->c, K_HELD, ty, -1, 0) == 0)
		return;
	if (l.c > 0)
		room = l.c - zlen(h->c, K_SLOTS, ty, -1, 0);
	if (l.r > 0) {
		long long left =
			l.r - zlen(h->c, K_STARTS, ty, h->c->now - l.w, l.r);

		if (left < room)
			room = left;
	}
	h->due = room > 0;
}

int held_due(struct call *c)
{
	RedisModuleKey *key = limits_key(c);
	RedisModuleScanCursor *cur;
	struct held_scan h = { c, 0 };

	if (!key)
		return 0;
	cur = rm_ScanCursorCreate();
	while (!h.due && rm_ScanKey(key, cur, held_one, &h))
		;
	rm_ScanCursorDestroy(cur);
	return h.due;
}

RedisModuleString *keycat(struct call *c, const char *mid, const char *s,
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

RedisModuleString *keyf(struct call *c, const char *fmt, ...)
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

char *id_text(char *buf, long long id)
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

RedisModuleString *job_key(struct call *c, long long id)
{
	char buf[24], *p = id_text(buf, id);

	return keycat(c, K_JOB, p, (size_t)(buf + 23 - p));
}

RedisModuleString *ckey(struct call *c, int which)
{
	int s = call_keys[which].status;

	if (!c->keys[which])
		c->keys[which] = keycat(c, call_keys[which].mid,
					s < 0 ? "" : names[STATUS(s)],
					s < 0 ? 0 : name_len[STATUS(s)]);
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

void zset_later(struct call *c, RedisModuleString *key,
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
		z->churn = kl == c->plen + sizeof(K_LEASES) - 1 &&
			   memcmp(k + c->plen, K_LEASES, kl - c->plen) == 0;
	}
	grow((void **)&z->ops, &z->cap, z->n, sizeof(*z->ops));
	z->ops[z->n].member = rm_HoldString(NULL, member);
	z->ops[z->n].score = score;
	z->ops[z->n].add = add;
	z->n++;
}

/* The deferred writes of bucket A:B (ENDED: of retention's index, else
 * of listing index A), whose directory scores it SCORE. */
static struct ixkey *bucket_of(struct call *c, int ended, const char *a,
			       size_t an, const char *b, size_t bn,
			       long long score)
{
	size_t len = an + 1 + bn;
	struct ixkey *x;

	for (size_t i = c->nix; i-- > 0;) {
		x = &c->ix[i];
		if (x->ended == ended && x->len == len && x->namelen == an &&
		    memcmp(x->name, a, an) == 0 &&
		    memcmp(x->name + an + 1, b, bn) == 0)
			return x;
	}
	grow((void **)&c->ix, &c->capix, c->nix, sizeof(*c->ix));
	x = &c->ix[c->nix++];
	memset(x, 0, sizeof(*x));
	x->ended = ended;
	x->name = xalloc(len + 1);
	memcpy(x->name, a, an);
	x->name[an] = ':';
	memcpy(x->name + an + 1, b, bn);
	x->name[len] = 0;
	x->len = len;
	x->namelen = an;
	x->score = score;
	return x;
}

static void bucket_add(struct ixkey *x, RedisModuleString *member, int add)
{
	grow((void **)&x->ops, &x->cap, x->n, sizeof(*x->ops));
	x->ops[x->n].member = rm_HoldString(NULL, member);
	x->ops[x->n].add = add;
	x->n++;
}

void ix_later(struct call *c, const char *name, size_t nlen,
	      RedisModuleString *member, long long id, int add)
{
	long long b = id / c->ixw;
	char buf[24], *bt = id_text(buf, b);

	bucket_add(bucket_of(c, 0, name, nlen, bt, (size_t)(buf + 23 - bt), b),
		   member, add);
}

void ended_later(struct call *c, RedisModuleString *member, long long id,
		 long long at, int add)
{
	long long m = at - at % N_MINUTE_MS;
	char mbuf[24], nbuf[24], *mt = id_text(mbuf, m),
				 *nt = id_text(nbuf, id / c->ixw);

	bucket_add(bucket_of(c, 1, mt, (size_t)(mbuf + 23 - mt), nt,
			     (size_t)(nbuf + 23 - nt), m),
		   member, add);
}

void ix_status_later(struct call *c, int sys, int status,
		     RedisModuleString *member, long long id, int add)
{
	char *name = join(sys ? "rs:s" : "ru:s", ':', names[STATUS(status)],
			  name_len[STATUS(status)]);

	ix_later(c, name, strlen(name), member, id, add);
	rm_Free(name);
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

char *join(const char *a, char sep, const char *b, size_t bn)
{
	size_t an = strlen(a);
	char *s = xalloc(an + 1 + bn + 1);

	memcpy(s, a, an);
	s[an] = sep;
	memcpy(s + an + 1, b, bn);
	s[an + 1 + bn] = 0;
	return s;
}

void stat_add(struct call *c, const char *field, struct sv type, long long n)
{
	char *f = join(field, '|', type.p ? type.p : "", type.n);

	counter_add(&c->stats, field, n);
	counter_add(&c->stats, f, n);
	rm_Free(f);
}

void stat_wait(struct call *c, struct sv type, long long ms)
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
		double d = floor(log((double)ms + 1) * N_LOG2X4);

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

		stat_add(c, W_STARTED, ty, w->n);
		stat_add(c, W_WAIT_SUM, ty, w->sum);
		for (int b = 0; b < 96; b++)
			if (w->hist[b]) {
				char h[8];

				snprintf(h, sizeof(h), "h%d", b);
				stat_add(c, h, ty, w->hist[b]);
			}
		f = join(W_WAIT, '|', ty.p, ty.n);
		counter_extreme(&c->mins, W_WAIT, w->min, 0);
		counter_extreme(&c->mins, f, w->min, 0);
		counter_extreme(&c->maxs, W_WAIT, w->max, 1);
		counter_extreme(&c->maxs, f, w->max, 1);
		rm_Free(f);
	}
}

RedisModuleKey *open_rw(struct call *c, RedisModuleString *k)
{
	return rm_OpenKey(c->ctx, k, RM_READ | RM_WRITE);
}

void hset(struct call *c, RedisModuleKey *key, RedisModuleString *k,
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
RedisModuleString *skiplist_member;
RedisModuleString *table_field, *table_value; /* write_window() */

void skiplist_begin(RedisModuleKey *key)
{
	rm_ZsetAdd(key, 0, skiplist_member, NULL);
}

void skiplist_end(RedisModuleKey *key)
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
					/* As ZADD: replicated whole when it
					 * changed a member, else not at all. */
					changed |= fl & (RM_ZADD_ADDED |
							 RM_ZADD_UPDATED);
				} else if (rm_ZsetRem(key, o->member, &fl) !=
						   RM_OK ||
					   !fl) {
					continue;
				} else {
					changed = 1;
				}
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
				if (!add)
					notify_if_gone(c, key, k);
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

/* SADD or SREM of the N MEMBERS of set K, replicated as it is: how many
 * it added or removed. */
static long long set_call(struct call *c, const char *cmd, RedisModuleString *k,
			  RedisModuleString **members, size_t n)
{
	RedisModuleCallReply *r = rm_Call(c->ctx, cmd, "!sv", k, members, n);
	long long done = r ? rm_CallReplyInteger(r) : 0;

	if (r)
		rm_FreeCallReply(r);
	return done;
}

/* lib.lua ix_flush(): the writes of each bucket, one SADD or SREM per
 * run of the same kind, in order; then its size says whether the
 * bucket is new or gone, which its directory (P:ixd:NAME, P:endd)
 * follows. */
static void ixflush(struct call *c)
{
	for (size_t i = 0; i < c->nix; i++) {
		struct ixkey *x = &c->ix[i];
		RedisModuleString *k =
			keycat(c, x->ended ? K_ENDB : K_IXB, x->name, x->len);
		RedisModuleString **v = xalloc(sizeof(*v) * x->n);
		long long added = 0, removed = 0, after;
		RedisModuleKey *key;
		size_t j = 0;

		while (j < x->n) {
			int add = x->ops[j].add;
			size_t nv = 0;

			while (j < x->n && x->ops[j].add == add)
				v[nv++] = x->ops[j++].member;
			if (add)
				added += set_call(c, "SADD", k, v, nv);
			else
				removed += set_call(c, "SREM", k, v, nv);
		}
		rm_Free(v);
		key = rm_OpenKey(c->ctx, k, RM_READ);
		after = rm_KeyType(key) == RM_KEYTYPE_SET ?
				(long long)rm_ValueLength(key) :
				0;
		rm_CloseKey(key);
		rm_FreeString(NULL, k);
		if (added || removed) {
			long long before = after - added + removed;
			RedisModuleString *dk, *m;
			RedisModuleKey *dir;
			int fl = 0;

			if ((before == 0) == (after == 0))
				continue;
			if (x->ended) {
				dk = keycat(c, K_ENDD, "", 0);
				m = rm_CreateString(NULL, x->name, x->len);
			} else {
				dk = keycat(c, K_IXD, x->name, x->namelen);
				m = rm_CreateString(NULL,
						    x->name + x->namelen + 1,
						    x->len - x->namelen - 1);
			}
			dir = open_rw(c, dk);
			if (after > 0) {
				rm_ZsetAdd(dir, (double)x->score, m, &fl);
				rm_Replicate(c->ctx, "ZADD", "sls", dk,
					     x->score, m);
				rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET,
						       "zadd", dk);
			} else if (rm_ZsetRem(dir, m, &fl) == RM_OK && fl) {
				rm_Replicate(c->ctx, "ZREM", "ss", dk, m);
				rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET,
						       "zrem", dk);
				notify_if_gone(c, dir, dk);
			}
			rm_CloseKey(dir);
			rm_FreeString(NULL, m);
			rm_FreeString(NULL, dk);
		}
	}
}

void notify_if_gone(struct call *c, RedisModuleKey *key, RedisModuleString *k)
{
	if (rm_KeyType(key) == RM_KEYTYPE_EMPTY)
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_GENERIC, "del", k);
}

void set_string(struct call *c, RedisModuleString *k, RedisModuleString *v)
{
	RedisModuleKey *key = open_rw(c, k);

	rm_StringSet(key, v);
	rm_CloseKey(key);
	rm_Replicate(c->ctx, "SET", "ss", k, v);
	rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_STRING, "set", k);
}

long long key_ll(RedisModuleKey *key, int *found)
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

long long get_ll(struct call *c, RedisModuleString *k, int *found)
{
	RedisModuleKey *key = rm_OpenKey(c->ctx, k, RM_READ);
	long long n = key_ll(key, found);

	rm_CloseKey(key);
	return n;
}

long long vr_floor(struct call *c, int low)
{
	RedisModuleString *k;
	int found;

	if (c->vr_read[low])
		return c->vr_last[low];
	k = keyf(c, low ? K_VR_FLOOR_LOW : K_VR_FLOOR);
	c->vr_last[low] = get_ll(c, k, &found);
	rm_FreeString(NULL, k);
	if (!found && low) {
		/* A store from before the floor of low priority: it starts
		 * at the shared floor, written at once. */
		k = keyf(c, K_VR_FLOOR);
		c->vr_last[low] = get_ll(c, k, &found);
		rm_FreeString(NULL, k);
		c->have_vr[low] = 1;
	}
	c->vr_read[low] = 1;
	return c->vr_last[low];
}

void vr_served(struct call *c, long long vr, int low)
{
	if (vr > vr_floor(c, low)) {
		c->vr_last[low] = vr;
		c->have_vr[low] = 1;
	}
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
		int fl = 0;

		rm_SetAbsExpire(key, at);
		rm_Replicate(c->ctx, "PEXPIREAT", "sl", k, at);
		rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_GENERIC, "expire", k);
		sk = open_rw(c, setk);
		rm_ZsetAdd(sk, (double)start, m, &fl);
		rm_CloseKey(sk);
		/* A new field of a listed window: a ZADD that changes
		 * nothing, which Redis neither replicates nor notifies. */
		if (fl & (RM_ZADD_ADDED | RM_ZADD_UPDATED)) {
			rm_Replicate(c->ctx, "ZADD", "sls", setk, start, m);
			rm_NotifyKeyspaceEvent(c->ctx, RM_NOTIFY_ZSET, "zadd",
					       setk);
		}
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
	long long hour = m - m % N_HOUR_MS;
	RedisModuleString *k = keyf(c, K_STATS_HOUR "%lld", hour);

	write_window(c, k, hour, N_HOUR_MS, K_STATS_HOURS, counters, mins,
		     maxs);
	rm_FreeString(NULL, k);
}

/* lib.lua roll_mark(). */
static long long roll_mark(struct call *c)
{
	RedisModuleString *k = keyf(c, K_STATS_ROLLED);
	int found;
	long long done = get_ll(c, k, &found);

	if (!found) {
		RedisModuleString *mk = keyf(c, K_STATS_MINUTES);
		RedisModuleKey *key = rm_OpenKey(c->ctx, mk, RM_READ);
		RedisModuleString *v;

		done = c->minute;
		if (rm_KeyType(key) == RM_KEYTYPE_EMPTY)
			done = c->minute - N_MINUTE_MS;
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
	if (f.n > 4 && (sv_eq(f, W_WAIT "_min") || sv_eq(f, W_WAIT "_max") ||
			strncmp(name, W_WAIT "|", sizeof(W_WAIT)) == 0)) {
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
	long long last = c->now - N_ROLL_GRACE - N_MINUTE_MS;
	long long mins[N_ROLL_MAX];
	int n = 0;
	RedisModuleString *mk, *rk, *v;
	RedisModuleKey *key;

	last -= last % N_MINUTE_MS;
	if (done >= last)
		return;
	mk = keyf(c, K_STATS_MINUTES);
	key = rm_OpenKey(c->ctx, mk, RM_READ);
	if (rm_KeyType(key) == RM_KEYTYPE_ZSET &&
	    rm_ZsetFirstInScoreRange(key, (double)done, (double)last, 1, 0) ==
		    RM_OK) {
		while (n < N_ROLL_MAX && !rm_ZsetRangeEndReached(key)) {
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
		RedisModuleString *k = keyf(c, K_STATS_MINUTE "%lld", mins[i]);
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
	if (n < N_ROLL_MAX)
		done = last;
	rk = keyf(c, K_STATS_ROLLED);
	v = str_ll(done);
	set_string(c, rk, v);
	rm_FreeString(NULL, v);
	rm_FreeString(NULL, rk);
}

/*
 * Whether the user running the call may SPUBLISH on CH. The module API
 * publishes without asking the ACL; lib.lua's wake() asks Redis, which
 * refuses it under a rule without +spublish, and falls back. The answer
 * is kept a second for its user (asking costs about 9,000 instructions,
 * a fifth of a create of one job): a rule changed meanwhile is followed
 * within that second, and jobd's subscriptions follow a rule only when
 * they are made anyway.
 */
static int may_spublish(RedisModuleCtx *ctx, RedisModuleString *ch)
{
	static char last[256];
	static size_t last_len;
	static long long until;
	static int last_ok;
	RedisModuleString *name = rm_GetCurrentUserName(ctx), *argv[3];
	RedisModuleUser *user;
	long long now = rm_Milliseconds();
	char key[sizeof(last)];
	const char *u, *c;
	size_t ulen, clen, len = 0;
	int ok;

	if (!name)
		return 1;
	/* The answer's key: the user's name and the channel. */
	u = rm_StringPtrLen(name, &ulen);
	c = rm_StringPtrLen(ch, &clen);
	if (ulen + 1 + clen <= sizeof(key)) {
		memcpy(key, u, ulen);
		key[ulen] = '\n';
		memcpy(key + ulen + 1, c, clen);
		len = ulen + 1 + clen;
	}
	if (len && now < until && len == last_len &&
	    memcmp(key, last, len) == 0) {
		rm_FreeString(ctx, name);
		return last_ok;
	}
	user = rm_GetModuleUserFromUserName(name);
	rm_FreeString(ctx, name);
	if (!user)
		return 1;
	argv[0] = rm_CreateString(ctx, "SPUBLISH", 8);
	argv[1] = ch;
	argv[2] = N[V_ONE];
	ok = rm_ACLCheckCommandPermissions(user, argv, 3) == RM_OK;
	rm_FreeString(ctx, argv[0]);
	rm_FreeModuleUser(user);
	if (len) {
		memcpy(last, key, len);
		last_len = len;
		until = now + 1000;
		last_ok = ok;
	}
	return ok;
}

/*
 * Wakes idle workers, as lib.lua's wake(): on the shard channel, or on
 * the classic one for a user whose ACL rule has no SPUBLISH (then jobd's
 * SSUBSCRIBE was refused too, and it listens on the classic channel
 * only). Replicated as Redis replicates either from Lua: down the
 * replication stream out of cluster mode only; a cluster sends it to
 * the nodes it goes to itself.
 */
static void wake(struct call *c)
{
	RedisModuleString *k = keyf(c, K_WAKE);
	int shard = may_spublish(c->ctx, k);

	if (shard)
		rm_PublishMessageShard(c->ctx, k, N[V_ONE]);
	else
		rm_PublishMessage(c->ctx, k, N[V_ONE]);
	if (!(rm_GetContextFlags(c->ctx) & RM_CTX_FLAGS_CLUSTER))
		rm_Replicate(c->ctx, shard ? "SPUBLISH" : "PUBLISH", "ss", k,
			     N[V_ONE]);
	rm_FreeString(NULL, k);
}

/* lib.lua write_total(): the per-type counters into P:stats:total. */
static void write_total(struct call *c, const struct counters *counters)
{
	RedisModuleString *k = keyf(c, ":stats:total");
	RedisModuleKey *key = open_rw(c, k);
	RedisModuleString **fv = xalloc(sizeof(*fv) * 2 * counters->n);
	size_t nfv = 0;

	for (size_t i = 0; i < counters->n; i++) {
		RedisModuleString *f;
		int found;

		if (!strchr(counters->v[i].name, '|'))
			continue;
		f = str_c(counters->v[i].name);
		fv[nfv++] = f;
		fv[nfv++] = str_ll(hash_ll(key, f, &found) + counters->v[i].n);
	}
	if (nfv)
		hset(c, key, k, fv, nfv);
	rm_CloseKey(key);
	for (size_t i = 0; i < nfv; i++)
		rm_FreeString(NULL, fv[i]);
	rm_Free(fv);
	rm_FreeString(NULL, k);
}

static void flush_stats(struct call *c)
{
	RedisModuleString *k;
	long long done;

	if (c->nwaits)
		waits_to_stats(c);
	if (!c->stats.n)
		return;
	write_total(c, &c->stats);
	done = roll_mark(c);
	k = keyf(c, K_STATS_MINUTE "%lld", c->minute);
	write_window(c, k, c->minute, N_MINUTE_MS, K_STATS_MINUTES, &c->stats,
		     &c->mins, &c->maxs);
	rm_FreeString(NULL, k);
	if (c->minute <= done)
		write_hour(c, c->minute, &c->stats, &c->mins, &c->maxs);
	roll_up(c, done);
}

void flush(struct call *c)
{
	RedisModuleString *fv[2 * NSTATUSES];
	size_t nfv = 0;

	ixflush(c);
	zflush(c);
	for (int s = 0; s < NSTATUSES; s++)
		if (c->count[s]) {
			fv[nfv++] = str_c(names[STATUS(s)]);
			fv[nfv++] = NULL;
		}
	if (nfv) {
		RedisModuleString *k = keyf(c, K_COUNT);
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
	for (int low = 0; low < 2; low++) {
		RedisModuleString *k, *v;

		if (!c->have_vr[low])
			continue;
		k = keyf(c, low ? K_VR_FLOOR_LOW : K_VR_FLOOR);
		v = str_ll(c->vr_last[low]);
		set_string(c, k, v);
		rm_FreeString(NULL, v);
		rm_FreeString(NULL, k);
	}
	if (c->wake)
		wake(c);
	flush_stats(c);
}

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

int job_open(struct call *c, struct job *j, RedisModuleString *k,
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
	/* lib.lua load_fields: a job is a hash with a type, and one without
	 * status is pending (create writes none). */
	if (!j->v[F_TYPE].p)
		return 0;
	if (!j->v[F_STATUS].p)
		j->v[F_STATUS] = sv_of(N[STATUS(S_PENDING)]);
	return 1;
}

RedisModuleString *job_own(struct job *j, RedisModuleString *s)
{
	j->own[j->nown++] = s;
	return s;
}

void job_close(struct job *j)
{
	rm_CloseKey(j->key);
	rm_FreeString(NULL, j->k);
	for (int i = 0; i < j->nfields; i++)
		if (j->held[j->fields[i]])
			rm_FreeString(NULL, j->held[j->fields[i]]);
	for (int i = 0; i < j->nown; i++)
		rm_FreeString(NULL, j->own[i]);
}

void count_move(struct call *c, int from, int to)
{
	c->count[from]--;
	c->count[to]++;
}

int parse_ll(RedisModuleString *s, long long *v)
{
	return rm_StringToLongLong(s, v) == RM_OK;
}
