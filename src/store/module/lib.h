/*
 * module/lib.h: for the files of jobd's Redis module only (module.c,
 * lib.c, claim.c, finish.c, create.c): what lib.c gives the commands.
 * Names follow lib.lua's where they mirror it.
 */
#ifndef JOBD_SRC_STORE_MODULE_LIB_H
#define JOBD_SRC_STORE_MODULE_LIB_H

#include "store/module/rm.h"
#include "store/schema.h" /* generated from src/store/schema.def */
#include "store/shard.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 10000 /* jobs per call, as the Lua functions take */

/* A value borrowed from a RedisModuleString; p NULL: absent. */
struct sv {
	const char *p;
	size_t n;
};

static inline struct sv sv_of(const RedisModuleString *s)
{
	struct sv v = { NULL, 0 };

	if (s)
		v.p = rm_StringPtrLen(s, &v.n);
	return v;
}

static inline int sv_eq(struct sv v, const char *s)
{
	size_t n = strlen(s);

	return v.p && v.n == n && memcmp(v.p, s, n) == 0;
}

/* Present and equal to B. */
static inline int sv_same(struct sv a, struct sv b)
{
	return a.p && a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static inline int sv_empty(struct sv v)
{
	return !v.p || v.n == 0;
}

/* A whole integer (an optional '-' and digits) into *V. */
static inline int sv_ll(struct sv t, long long *v)
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
static inline double sv_num(struct sv v)
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
static inline int sv_double(struct sv t, double *d)
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
static inline int token(const char **p, const char *end, char sep, struct sv *t)
{
	const char *q = memchr(*p, sep, (size_t)(end - *p));

	if (!q || q == *p)
		return 0;
	t->p = *p;
	t->n = (size_t)(q - *p);
	*p = q + 1;
	return 1;
}

static inline RedisModuleString *str_ll(long long v)
{
	return rm_CreateStringFromLongLong(NULL, v);
}

static inline RedisModuleString *str_c(const char *s)
{
	return rm_CreateString(NULL, s, strlen(s));
}

static inline void *xalloc(size_t n)
{
	return rm_Alloc(n ? n : 1);
}

/* Grows *V (elements of SIZE bytes, *CAP of them) to hold one more. */
static inline void grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 16;
	*v = rm_Realloc(*v, *cap * size);
}

/*
 * The names interned at load (module.c), N[] and names[]: the fields of
 * a job (F_..., schema.h), then the statuses (STATUS(S_...)), then three
 * values.
 */
#define STATUS(s) (NFIELDS + (s))
enum { V_ZERO = NFIELDS + NSTATUSES, V_ONE, V_EMPTY, V_ALONE, NNAMES };
extern const char *const names[NNAMES];
extern RedisModuleString *N[NNAMES];
extern size_t name_len[NNAMES];

/* Made at load (module.c): members and fields long enough to make a
 * sorted set a skip list and a hash a hash table (lib.c explains). */
extern RedisModuleString *skiplist_member;
extern RedisModuleString *table_field, *table_value;

/* Names[ID] is V: the same length and bytes. */
static inline int sv_is(struct sv v, int id)
{
	return v.p && v.n == name_len[id] && memcmp(v.p, names[id], v.n) == 0;
}

/* Keys every job of a call may use, made once a call (ckey()). */
enum { CK_LEASES, NCKEYS };

/* One deferred write of a listing index (lib.lua ix_later). */
struct ixop {
	RedisModuleString *member; /* held */
	int add;		   /* 0: remove */
};

/* The writes into one bucket: of a listing index, P:ixb:NAME:BUCKET in
 * directory P:ixd:NAME (member = score = BUCKET); of retention's index
 * (ENDED), P:endb:MINUTE:N in directory P:endd (member "MINUTE:N",
 * score MINUTE). */
struct ixkey {
	int ended;	 /* retention's index */
	char *name;	 /* "NAME:BUCKET" or "MINUTE:N", after the mid */
	size_t len;	 /* ... its length */
	size_t namelen;	 /* ... of what comes before the ':' */
	long long score; /* the directory's score: BUCKET, or MINUTE */
	struct ixop *ops;
	size_t n, cap;
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
	long long count[NSTATUSES]; /* lib.lua count_add */
	int wake;
	/* lib.lua VR_FLOOR, VR_MOVED: per priority (0 normal, 1 low), the
	 * floor read (vr_read), the floor (vr_last), whether it moved */
	int vr_read[2], have_vr[2];
	long long vr_last[2];
	struct counters stats, mins, maxs; /* lib.lua STATS, STATS_MIN/MAX */
	struct wait *waits;
	size_t nwaits, capwaits;
	RedisModuleString **alone[2]; /* create: new roots without children */
	size_t nalone[2], capalone[2];
	RedisModuleString *keys[NCKEYS]; /* ckey(), made on first use */
	struct ixkey *ix;		 /* lib.lua IXDEFER, by bucket */
	size_t nix, capix;
	RedisModuleKey *limits; /* P:limits open, or NULL (limit_of) */
	int limits_read;	/* ... once per call */
	/* lib.lua SHARDS, SHARD, IXW: the prefix's shard (jobd_shard_of) and
	 * the ids a bucket of ids covers */
	long long shards, shard, ixw;
};

/* One type's limits, as P:limits holds them (lib.lua limits()). */
struct limit {
	long long c, r, w; /* concurrency, rate per w ms; 0 = none */
};

/* A job hash open for a transition: what was read of it, indexed by
 * field (F_...), and the values made for its write. */
struct job {
	RedisModuleString *k; /* P:job:ID */
	RedisModuleKey *key;
	const int *fields; /* read, NFIELDS of them */
	int nfields;
	RedisModuleString *held[NFIELDS];
	struct sv v[NFIELDS];	   /* views of HELD; p NULL: absent */
	RedisModuleString *own[4]; /* job_own() */
	int nown;
};

/* testclock.c: ms added to Redis' clock, 0 unless a test moved it;
 * registers its commands and the TIME filter. */
extern long long testclock_offset;
int testclock_load(RedisModuleCtx *ctx);

/* Starts a call on PREFIX, whose shard tag jobd_shard_of() accepts. */
void call_begin(struct call *c, RedisModuleCtx *ctx, RedisModuleString *prefix,
		long long ttl);

void call_end(struct call *c);

/* lib.lua limits()[TYPE]: 1 and *L when TYPE has limits in P:limits. */
int limit_of(struct call *c, struct sv type, struct limit *l);

/* claim.lua's first step: 1 when some limited type has held jobs and
 * room for one of them again (claim.lua moves them back to their
 * queues). */
int held_due(struct call *c);

/* PREFIX + MID + the N bytes at S. */
RedisModuleString *keycat(struct call *c, const char *mid, const char *s,
			  size_t n);

/* The key PREFIX + FMT... as a new string. */
RedisModuleString *keyf(struct call *c, const char *fmt, ...);

/* ID in decimal at the end of BUF (24 bytes, one left free before it);
 * returns where it starts. snprintf cost a job hundreds of instructions. */
char *id_text(char *buf, long long id);

/* P:job:ID */
RedisModuleString *job_key(struct call *c, long long id);

/* Key WHICH of the call's prefix; the call owns it. */
RedisModuleString *ckey(struct call *c, int which);

void zset_later(struct call *c, RedisModuleString *key,
		RedisModuleString *member, long long score, int add);

/* lib.lua ix_later(): adds (ADD 1) or removes job ID, MEMBER in text,
 * to or from listing index NAME ("ru:s:pending", NLEN bytes) at the end
 * of the call (flush). */
void ix_later(struct call *c, const char *name, size_t nlen,
	      RedisModuleString *member, long long id, int add);

/* lib.lua ended_later(): adds (ADD 1) or removes root ID, MEMBER in
 * text, to or from the bucket of retention's index of its end AT (ms). */
void ended_later(struct call *c, RedisModuleString *member, long long id,
		 long long at, int add);

/* ix_later() into the status index of root jobs: STATUS (S_...) of
 * user (SYS 0) or system (SYS 1) roots, "ru:s:pending". */
void ix_status_later(struct call *c, int sys, int status,
		     RedisModuleString *member, long long id, int add);

/* "A|B" (or "A_B" with SEP '_'), allocated. */
char *join(const char *a, char sep, const char *b, size_t bn);

/* lib.lua stat_add(): the field and the field of its type. */
void stat_add(struct call *c, const char *field, struct sv type, long long n);

void stat_wait(struct call *c, struct sv type, long long ms);

RedisModuleKey *open_rw(struct call *c, RedisModuleString *k);

/* HSET of N fields and values (FV), in one HashSet call per 8 pairs. */
void hset(struct call *c, RedisModuleKey *key, RedisModuleString *k,
	  RedisModuleString **fv, size_t n);

/* Adds the long member, before the adds (a set left empty in between
 * would be deleted, and made anew as a listpack). */
void skiplist_begin(RedisModuleKey *key);

/* Removes it, after the adds. */
void skiplist_end(RedisModuleKey *key);

/* After a removal from open KEY (named K): Redis deleted the key if it
 * left it empty, silently for a module, where after ZREM or ZPOPMIN it
 * notifies "del". */
void notify_if_gone(struct call *c, RedisModuleKey *key, RedisModuleString *k);

void set_string(struct call *c, RedisModuleString *k, RedisModuleString *v);

/* The string value of open KEY as a number (lib.lua tonumber(GET));
 * *found 0: absent. */
long long key_ll(RedisModuleKey *key, int *found);

/* String key K as a number; *found 0: absent. */
long long get_ll(struct call *c, RedisModuleString *k, int *found);

/* lib.lua vr_floor(): the virtual runtime floor of priority LOW (0
 * normal, 1 low), read once per call; vr_served(): a root of priority
 * LOW was served at VR, and the floor never goes back. flush() writes
 * the floors that moved. */
long long vr_floor(struct call *c, int low);
void vr_served(struct call *c, long long vr, int low);

/* lib.lua flush(): listing indexes, other indexes, status counters, the virtual runtime floor,
 * the wake-up, statistics. */
void flush(struct call *c);

/*
 * Opens job hash K (taken over) and reads FIELDS (N) of it in one pass
 * into J->v. A lookup per field would scan a small hash once per field,
 * and all of it for each absent one. FIELDS hold F_TYPE and F_STATUS.
 * Returns 0 when the job does not exist (no hash with a type); an absent
 * status reads as pending (lib.lua load_fields). job_close() in any case.
 */
int job_open(struct call *c, struct job *j, RedisModuleString *k,
	     const int *fields, int n);

/* A value made for the job's write, freed with it. */
RedisModuleString *job_own(struct job *j, RedisModuleString *s);

void job_close(struct job *j);

void count_move(struct call *c, int from, int to);

int parse_ll(RedisModuleString *s, long long *v);

/* The commands (claim.c, finish.c, create.c). */
/* JOBD.CLAIM prefix stats_ttl_ms instance lease_ms max max_low estimate */
int cmd_claim(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

/* JOBD.FINISH prefix stats_ttl_ms runs: finish.lua for runs whose
 * outcome is done with no log lines (the client sends the others to
 * finish.lua at once), listed in one argument (parse_runs()): a run's
 * nine arguments cost Redis nine strings made and freed. */
int cmd_finish(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

/*
 * JOBD.CREATE prefix stats_ttl_ms actor n t {type system stoppable
 * restartable retries backoff_ms}*t jobs: create.lua for a batch of root
 * jobs to run now; "+lua" for any other batch (a child, a run time), with
 * nothing written. The jobs come in one argument (parse_jobs():
 * create.lua's eight arguments per job would cost Redis eight strings
 * made and freed each). Replies with the
 * id of each job, negative when its key had it already.
 */
int cmd_create(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
